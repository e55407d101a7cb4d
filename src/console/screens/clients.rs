//! Screen 1, Clients: the filterable client list, the selected client's detail, the findings
//! of validation, form edits through prompts, and the raw `clients.toml` editor with live
//! validation (Enter on a finding jumps to it).

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};
use ratatui_textarea::{CursorMove, TextArea};

use super::{Cx, Hint, Screen, hint, hints};
use crate::console::app::{App, Confirmation, Level, PromptKind};
use crate::console::jobs::{PolicyInput, PolicyPurpose};
use crate::console::keymap::{Action, Scope};
use crate::console::ui::{finding_line, pane, selected_marker};
use crate::policy::{self, Finding, Policy};

/// Which pane has focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientsPane {
    #[default]
    List,
    Findings,
}

/// The raw editor and what validation says about its text.
pub struct RawEditor {
    pub area: TextArea<'static>,
    /// The text it opened with.
    pub original: String,
    pub findings: Vec<Finding>,
    /// The syntax error, when the text does not parse.
    pub syntax: Option<Finding>,
    pub selected_finding: usize,
    pub findings_focused: bool,
}

impl RawEditor {
    fn new(text: &str, now: i64) -> RawEditor {
        let mut area = TextArea::new(text.lines().map(str::to_string).collect());
        area.set_line_number_style(
            ratatui::style::Style::new().add_modifier(ratatui::style::Modifier::DIM),
        );
        area.set_max_histories(1_000);
        let mut editor = RawEditor {
            area,
            original: text.to_string(),
            findings: Vec::new(),
            syntax: None,
            selected_finding: 0,
            findings_focused: false,
        };
        editor.revalidate(now);
        editor
    }

    pub fn text(&self) -> String {
        let mut text = self.area.lines().join("\n");
        if self.original.ends_with('\n') || self.original.is_empty() {
            text.push('\n');
        }
        text
    }

    pub fn modified(&self) -> bool {
        self.text() != self.original
    }

    fn revalidate(&mut self, now: i64) {
        match policy::load(&self.text(), now) {
            Ok(loaded) => {
                self.syntax = None;
                self.findings = loaded.findings;
            }
            Err(finding) => {
                self.syntax = Some(finding.clone());
                self.findings = vec![finding];
            }
        }
        self.selected_finding = self
            .selected_finding
            .min(self.findings.len().saturating_sub(1));
    }

    fn jump_to(&mut self, finding: usize) {
        let Some(at) = self.findings.get(finding).and_then(|f| f.location) else {
            return;
        };
        let row = at.line.saturating_sub(1) as u16;
        let col = at.column.saturating_sub(1) as u16;
        self.area.move_cursor(CursorMove::Jump(row, col));
        self.findings_focused = false;
    }
}

#[derive(Default)]
pub struct ClientsState {
    pub filter: String,
    /// Indices into `policy.clients` that match the filter.
    pub rows: Vec<usize>,
    pub selected: usize,
    pub focus: ClientsPane,
    pub finding_selected: usize,
    pub editor: Option<RawEditor>,
}

impl ClientsState {
    pub fn refilter(&mut self, policy: &Policy) {
        let needle = self.filter.to_lowercase();
        self.rows = policy
            .clients
            .iter()
            .enumerate()
            .filter(|(_, c)| needle.is_empty() || matches_client(c, &needle))
            .map(|(i, _)| i)
            .collect();
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    pub fn selected_client<'p>(&self, policy: &'p Policy) -> Option<&'p policy::Client> {
        self.rows
            .get(self.selected)
            .and_then(|&i| policy.clients.get(i))
    }

    pub fn select_identity(&mut self, identity: &str, loaded: Option<&policy::LoadedPolicy>) {
        let Some(loaded) = loaded else { return };
        if let Some(at) = self
            .rows
            .iter()
            .position(|&i| loaded.policy.clients[i].identity == identity)
        {
            self.selected = at;
        }
    }

    pub fn open_editor(&mut self, text: &str, now: i64) {
        self.editor = Some(RawEditor::new(text, now));
    }

    /// Reopens the editor on `text` typed in an earlier session over `original` (what the
    /// policy is now), so it shows as modified and Esc applies it.
    pub fn restore_editor(&mut self, original: &str, text: &str, now: i64) {
        let mut editor = RawEditor::new(text, now);
        editor.original = original.to_string();
        self.editor = Some(editor);
    }

    /// Pasted text goes into the raw editor, when it is open; true when it went in.
    pub fn paste(&mut self, text: &str) -> bool {
        let Some(editor) = self.editor.as_mut() else {
            return false;
        };
        editor.area.insert_str(text);
        true
    }

    pub fn editor_modified(&self) -> bool {
        self.editor.as_ref().is_some_and(RawEditor::modified)
    }

    pub fn editor_broken(&self) -> bool {
        self.editor.as_ref().is_some_and(|e| e.syntax.is_some())
    }
}

fn matches_client(client: &policy::Client, needle: &str) -> bool {
    client.identity.to_lowercase().contains(needle)
        || client
            .resources
            .iter()
            .any(|r| r.name.to_lowercase().contains(needle))
}

impl Screen for ClientsState {
    fn title(&self) -> &'static str {
        "Clients"
    }

    fn scope(&self) -> Scope {
        Scope::Clients
    }

    fn hints(&self) -> Vec<Hint> {
        match &self.editor {
            Some(editor) if editor.findings_focused => vec![
                hint(Action::Select, "jump"),
                hint(Action::FocusNext, "editor"),
                hint(Action::Back, "apply"),
            ],
            Some(_) => vec![
                hint(Action::Back, "apply"),
                hint(Action::Save, "apply+save"),
                hint(Action::FocusNext, "findings"),
            ],
            None => hints(&[
                Action::Filter,
                Action::EditRaw,
                Action::AddClient,
                Action::Grant,
                Action::Revoke,
                Action::RemoveClient,
                Action::Save,
                Action::Undo,
            ]),
        }
    }

    fn typing(&self) -> bool {
        self.editor.as_ref().is_some_and(|e| !e.findings_focused)
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.filter)
    }

    fn set_filter(&mut self, text: String, cx: &mut Cx) {
        self.filter = text;
        if let Some(loaded) = cx.policy() {
            self.refilter(&loaded.policy);
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, app: &App) {
        render(frame, area, app);
    }

    fn match_count(
        &self,
        policy: Option<&policy::LoadedPolicy>,
        _tree: &policy::DelegationTree,
    ) -> Option<(usize, usize)> {
        Some((
            self.rows.len(),
            policy.map_or(0, |l| l.policy.clients.len()),
        ))
    }
}

impl App {
    pub(crate) fn clients_action(&mut self, action: Action) {
        let Some(loaded) = self.loaded() else {
            if action == Action::EditRaw {
                let text = self.saved_text.clone();
                self.screens.clients.open_editor(&text, self.now);
            } else {
                self.flash(Level::Error, "the policy does not parse; press i to fix it");
            }
            return;
        };
        let selected = self
            .screens
            .clients
            .selected_client(&loaded.policy)
            .map(|c| (c.identity.clone(), c.at));
        let findings = loaded.findings.len();
        let rows = self.screens.clients.rows.len();
        let state = &mut self.screens.clients;
        let (cursor, len) = match state.focus {
            ClientsPane::List => (&mut state.selected, rows),
            ClientsPane::Findings => (&mut state.finding_selected, findings),
        };
        if move_cursor(cursor, len, action) {
            return;
        }
        match action {
            Action::FocusNext | Action::FocusPrev => {
                state.focus = match state.focus {
                    ClientsPane::List => ClientsPane::Findings,
                    ClientsPane::Findings => ClientsPane::List,
                };
            }
            Action::Back => {
                if !state.filter.is_empty() {
                    state.filter.clear();
                    self.policy_changed();
                }
            }
            Action::Select if state.focus == ClientsPane::Findings => {
                let at = state.finding_selected;
                let text = self.text().to_string();
                self.screens.clients.open_editor(&text, self.now);
                if let Some(editor) = self.screens.clients.editor.as_mut() {
                    editor.selected_finding = at;
                    editor.jump_to(at);
                }
            }
            Action::Select | Action::EditRaw => {
                let text = self.text().to_string();
                self.screens.clients.open_editor(&text, self.now);
                if let (Some(editor), Some((_, at))) =
                    (self.screens.clients.editor.as_mut(), selected)
                {
                    editor
                        .area
                        .move_cursor(CursorMove::Jump(at.line.saturating_sub(1) as u16, 0));
                }
            }
            Action::ExternalEditor => {
                if self.is_dirty() {
                    self.flash(
                        Level::Warn,
                        "external editor: save your edits first (ctrl-s), so neither copy is lost",
                    );
                } else {
                    self.external_edit = Some(self.policy_path.clone());
                }
            }
            Action::AddClient => self.prompt(
                PromptKind::AddClient,
                "Add client",
                "identity, e.g. uri:urn:company:bob",
                "uri:urn:",
            ),
            Action::Copy => match selected {
                Some((identity, _)) => self.copy("identity", identity),
                None => self.flash(Level::Info, "nothing selected"),
            },
            _ => {
                let Some((identity, _)) = selected else {
                    self.flash(Level::Info, "no client selected");
                    return;
                };
                self.client_form_action(action, identity);
            }
        }
    }

    fn client_form_action(&mut self, action: Action, identity: String) {
        match action {
            Action::RemoveClient => self.confirm(
                Confirmation::RemoveClient {
                    identity: identity.clone(),
                },
                "Remove client",
                vec![
                    format!("Remove {identity} from clients.toml?"),
                    "It can no longer authenticate or get tokens once this is pushed.".into(),
                ],
            ),
            Action::Grant => self.prompt(
                PromptKind::Grant {
                    identity: identity.clone(),
                },
                &format!("Grant to {identity}"),
                "RESOURCE OPERATION, e.g. production_api read",
                "",
            ),
            Action::Revoke => self.prompt(
                PromptKind::Revoke {
                    identity: identity.clone(),
                },
                &format!("Revoke from {identity}"),
                "RESOURCE OPERATION",
                "",
            ),
            Action::IdentityTtl => {
                let current = self
                    .loaded()
                    .and_then(|l| l.policy.client(&identity))
                    .and_then(policy::Client::identity_token_cap)
                    .map_or("0".to_string(), policy::duration::format);
                self.prompt(
                    PromptKind::IdentityTtl {
                        identity: identity.clone(),
                    },
                    &format!("Identity token lifetime for {identity}"),
                    "8h, 30m, 1h30m, 7d or seconds; 0 turns identity tokens off",
                    &current,
                )
            }
            Action::WhatCan => self.what_can(&identity),
            Action::RenameClient => self.prompt(
                PromptKind::RenameClient {
                    identity: identity.clone(),
                },
                &format!("Rename {identity}"),
                "the new identifier (its delegations keep pointing at the old one: check the tree)",
                &identity,
            ),
            Action::SetSetting => self.prompt(
                PromptKind::SetSetting {
                    identity: identity.clone(),
                },
                &format!("Setting of {identity}"),
                "SETTING VALUE: delegatable true|false, operator true|false, authorization_token_duration 5m, max_delegation_depth N; VALUE default removes it",
                "",
            ),
            _ => {}
        }
    }

    pub(crate) fn what_can(&mut self, identity: &str) {
        let Some(loaded) = self.loaded() else { return };
        let text = what_can(&loaded.policy, identity);
        self.flash(Level::Info, text);
    }

    /// Keys for the raw editor while it is open.
    pub(crate) fn clients_editor_key(&mut self, key: KeyEvent) -> bool {
        let now = self.now;
        let action = self.typing_action(&key);
        let Some(editor) = self.screens.clients.editor.as_mut() else {
            return false;
        };
        match action {
            Some(Action::Back) => self.close_editor(),
            Some(Action::Save) => self.apply_editor(true),
            Some(Action::FocusNext | Action::FocusPrev) => {
                editor.findings_focused = !editor.findings_focused
            }
            Some(Action::Up) if editor.findings_focused => {
                editor.selected_finding = editor.selected_finding.saturating_sub(1)
            }
            Some(Action::Down) if editor.findings_focused => {
                editor.selected_finding =
                    (editor.selected_finding + 1).min(editor.findings.len().saturating_sub(1))
            }
            Some(Action::Select) if editor.findings_focused => {
                let at = editor.selected_finding;
                editor.jump_to(at);
            }
            _ if editor.findings_focused => {}
            _ if self.readonly => {
                let moved = matches!(
                    key.code,
                    KeyCode::Up
                        | KeyCode::Down
                        | KeyCode::Left
                        | KeyCode::Right
                        | KeyCode::PageUp
                        | KeyCode::PageDown
                        | KeyCode::Home
                        | KeyCode::End
                );
                if moved {
                    editor.area.input(key);
                } else {
                    self.flash(Level::Warn, "read-only mode: the editor only views");
                }
            }
            _ => {
                if editor.area.input(key) {
                    editor.revalidate(now);
                    self.editor_text_changed();
                }
            }
        }
        true
    }

    fn close_editor(&mut self) {
        let Some(editor) = self.screens.clients.editor.as_ref() else {
            return;
        };
        if !editor.modified() {
            self.screens.clients.editor = None;
            return;
        }
        if let Some(syntax) = &editor.syntax {
            let where_ = syntax
                .location
                .map_or(String::new(), |at| format!(" at {at}"));
            self.confirm(
                Confirmation::DiscardEditor,
                "Discard editor changes",
                vec![
                    format!("The text does not parse{where_}: {}", syntax.message),
                    "Discard what you typed in the editor?".into(),
                ],
            );
            return;
        }
        self.apply_editor(false);
    }

    /// Makes the editor's text the policy (one undo step); with `save`, writes it too.
    pub(crate) fn apply_editor(&mut self, save: bool) {
        let Some(editor) = self.screens.clients.editor.as_ref() else {
            return;
        };
        if self.readonly {
            self.screens.clients.editor = None;
            return;
        }
        if let Some(syntax) = &editor.syntax {
            self.flash(
                Level::Error,
                format!("not applied: {syntax} (Tab lists findings, Enter jumps)"),
            );
            return;
        }
        let text = editor.text();
        if self.session.is_some() && text == self.text() {
            self.screens.clients.editor = None;
            if save {
                self.save_text(text);
            }
            return;
        }
        self.derive(PolicyInput::Text(text), PolicyPurpose::Replace { save });
    }
}

/// What `identity` may do under `policy`, in one line.
pub fn what_can(policy: &Policy, identity: &str) -> String {
    match policy::permissions(policy, identity) {
        Some(permissions) if permissions.0.is_empty() => format!("{identity} may do nothing"),
        Some(permissions) => {
            let pairs: Vec<String> = permissions
                .0
                .iter()
                .map(|(r, ops)| {
                    format!("{r}: {}", ops.iter().cloned().collect::<Vec<_>>().join(","))
                })
                .collect();
            format!("{identity} may {}", pairs.join("; "))
        }
        None => format!("{identity} is not configured: it may do nothing"),
    }
}

/// Moves a list cursor for navigation actions; true when the action was one.
pub fn move_cursor(cursor: &mut usize, len: usize, action: Action) -> bool {
    let last = len.saturating_sub(1);
    let page = 10;
    *cursor = match action {
        Action::Up => cursor.saturating_sub(1),
        Action::Down => (*cursor + 1).min(last),
        Action::PageUp => cursor.saturating_sub(page),
        Action::PageDown => (*cursor + page).min(last),
        Action::Top => 0,
        Action::Bottom => last,
        _ => return false,
    };
    true
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    if let Some(editor) = &app.screens.clients.editor {
        render_editor(frame, area, app, editor);
        return;
    }
    let Some(loaded) = app.loaded() else {
        let text = Paragraph::new("The policy does not parse. Press i to open the editor.")
            .block(pane(app, "Clients", true));
        frame.render_widget(text, area);
        return;
    };
    let [top, bottom] = Layout::vertical([
        Constraint::Min(6),
        Constraint::Length(findings_height(area, loaded.findings.len())),
    ])
    .areas(area);
    let wide = top.width >= 100;
    let [list_area, detail_area] = if wide {
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top)
    } else {
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top)
    };
    let state = &app.screens.clients;
    let height = list_area.height.saturating_sub(2) as usize;
    let offset = state.selected.saturating_sub(height.saturating_sub(1));
    let items: Vec<ListItem> = state
        .rows
        .iter()
        .skip(offset)
        .take(height)
        .map(|&i| {
            let client = &loaded.policy.clients[i];
            let node = app.tree.find(&client.identity).map(|n| &app.tree.nodes[n]);
            let flag = match node {
                Some(n) if n.has_errors() => Span::styled(" ✗", app.theme.error()),
                Some(n) if !n.violations.is_empty() => Span::styled(" !", app.theme.warn()),
                _ => Span::raw(""),
            };
            let mut tags = Vec::new();
            if client.domain.is_some() {
                tags.push("realm");
            }
            if client.operator {
                tags.push("operator");
            }
            let tags = if tags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", tags.join(","))
            };
            ListItem::new(Line::from(vec![
                Span::styled(client.identity.clone(), app.theme.text()),
                Span::styled(tags, app.theme.muted()),
                flag,
            ]))
        })
        .collect();
    let mut list_state = ListState::default()
        .with_selected((!state.rows.is_empty()).then_some(state.selected - offset));
    let title = format!(
        "Clients ({}/{})",
        state.rows.len(),
        loaded.policy.clients.len()
    );
    let list = List::new(items)
        .block(pane(app, &title, state.focus == ClientsPane::List))
        .highlight_style(app.theme.selected())
        .highlight_symbol(selected_marker());
    frame.render_stateful_widget(list, list_area, &mut list_state);

    let detail = match state.selected_client(&loaded.policy) {
        Some(client) => detail_lines(app, client, &loaded.findings),
        None => vec![Line::from("No client matches the filter.")],
    };
    frame.render_widget(
        Paragraph::new(detail)
            .wrap(Wrap { trim: false })
            .block(pane(app, "Detail", false)),
        detail_area,
    );

    let findings: Vec<ListItem> = loaded
        .findings
        .iter()
        .map(|f| ListItem::new(finding_line(app, f)))
        .collect();
    let title = if loaded.findings.is_empty() {
        "Findings: none, the policy is valid".to_string()
    } else {
        format!(
            "Findings ({}) — Enter jumps to the line",
            loaded.findings.len()
        )
    };
    let focused = state.focus == ClientsPane::Findings;
    let mut finding_state =
        ListState::default().with_selected(focused.then_some(state.finding_selected));
    frame.render_stateful_widget(
        List::new(findings)
            .block(pane(app, &title, focused))
            .highlight_style(app.theme.selected())
            .highlight_symbol(selected_marker()),
        bottom,
        &mut finding_state,
    );
}

fn findings_height(area: Rect, count: usize) -> u16 {
    let wanted = (count as u16).clamp(1, 6) + 2;
    wanted.min(area.height / 3).max(3)
}

fn detail_lines<'a>(app: &App, client: &'a policy::Client, findings: &[Finding]) -> Vec<Line<'a>> {
    let theme = &app.theme;
    let mut lines = vec![
        Line::from(vec![Span::styled(client.identity.as_str(), theme.title())]),
        Line::from(Span::styled(
            format!("{} · line {}", client.identifier_type, client.at.line),
            theme.muted(),
        )),
    ];
    let token = match client.identity_token_cap() {
        Some(cap) => format!(
            "identity tokens: on, up to {}",
            crate::policy::duration::format(cap)
        ),
        None => "identity tokens: off".to_string(),
    };
    lines.push(Line::from(token));
    let mut flags = vec![format!(
        "delegatable: {}",
        if client.delegatable { "yes" } else { "no" }
    )];
    if let Some(depth) = client.max_delegation_depth {
        flags.push(format!("max depth {depth}"));
    }
    if let Some(authz) = client.authorization_token_duration {
        flags.push(format!(
            "authz tokens {}",
            crate::policy::duration::format(authz)
        ));
    }
    if client.operator {
        flags.push("operator".into());
    }
    lines.push(Line::from(flags.join(" · ")));
    lines.push(Line::from(Span::styled("Resources", theme.accent())));
    if client.resources.is_empty() {
        lines.push(Line::from("  (none)"));
    }
    for resource in &client.resources {
        lines.push(Line::from(vec![
            Span::raw("  "),
            Span::styled(resource.name.as_str(), theme.keyword()),
            Span::raw(": "),
            Span::raw(resource.operations.join(", ")),
        ]));
        if !resource.service_chain.is_empty() {
            let chain: Vec<&str> = resource
                .service_chain
                .iter()
                .map(|n| n.component.as_str())
                .collect();
            lines.push(Line::from(format!(
                "    service chain: {}",
                chain.join(" → ")
            )));
        }
        for signer in &resource.signers {
            lines.push(Line::from(format!("    signoff: {}", signer.component)));
        }
    }
    if let Some(domain) = &client.domain {
        lines.push(Line::from(Span::styled("Realm", theme.accent())));
        let default = domain
            .default_role
            .as_ref()
            .map_or("(none)", |r| r.name.as_str());
        lines.push(Line::from(format!(
            "  default role {default} · {} roles · {} assignments",
            domain.roles.len(),
            domain.role_assignments.len()
        )));
    }
    let about: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.subject.as_deref() == Some(client.identity.as_str()))
        .collect();
    for finding in about {
        lines.push(finding_line(app, finding));
    }
    lines
}

fn render_editor(frame: &mut Frame, area: Rect, app: &App, editor: &RawEditor) {
    let [text_area, findings_area] = Layout::vertical([
        Constraint::Min(5),
        Constraint::Length(findings_height(area, editor.findings.len())),
    ])
    .areas(area);
    let modified = if editor.modified() { " [modified]" } else { "" };
    let mode = if app.readonly { " (read-only)" } else { "" };
    let title =
        format!("clients.toml{modified}{mode} — Esc apply & close · ctrl-s save · Tab findings");
    let mut area_widget = editor.area.clone();
    area_widget.set_block(pane(app, &title, !editor.findings_focused));
    area_widget.set_cursor_line_style(ratatui::style::Style::new());
    frame.render_widget(&area_widget, text_area);
    let items: Vec<ListItem> = editor
        .findings
        .iter()
        .map(|f| ListItem::new(finding_line(app, f)))
        .collect();
    let title = match (&editor.syntax, editor.findings.len()) {
        (Some(_), _) => "Does not parse".to_string(),
        (None, 0) => "Valid".to_string(),
        (None, n) => format!("Findings ({n}) — Tab, then Enter jumps"),
    };
    let mut state = ListState::default()
        .with_selected(editor.findings_focused.then_some(editor.selected_finding));
    frame.render_stateful_widget(
        List::new(items)
            .block(pane(app, &title, editor.findings_focused))
            .highlight_style(app.theme.selected())
            .highlight_symbol(selected_marker()),
        findings_area,
        &mut state,
    );
}
