//! Screen 1, Clients: the filterable client list, the selected client's detail, the findings
//! of validation, form edits through prompts, and the raw `clients.toml` editor with live
//! validation (Enter on a finding jumps to it).

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{ListItem, ListState, Paragraph, Wrap};
use ratatui_textarea::{CursorMove, TextArea};

use std::any::Any;

use super::{Cx, Hint, Screen, hint, hints};
use crate::console::app::{App, Level, check_identity, two_words};
use crate::console::complete::{self, Choices};
use crate::console::keymap::{Action, Scope};
use crate::console::ui::{finding_line, list_pane, pane};
use crate::console::unused_marks;
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
            None if self.focus == ClientsPane::Findings => vec![
                hint(Action::Select, "detail"),
                hint(Action::EditRaw, "jump"),
                hint(Action::FocusNext, "clients"),
            ],
            // Most useful first: at 80 columns the hint bar keeps what fits, in this order.
            None => hints(&[
                Action::Filter,
                Action::EditRaw,
                Action::AddClient,
                Action::Grant,
                Action::Revoke,
                Action::Save,
                Action::Undo,
                Action::RemoveClient,
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

    fn on_action(&mut self, action: Action, cx: &mut Cx) {
        self.act(action, cx);
    }

    fn on_key(&mut self, key: KeyEvent, cx: &mut Cx) -> bool {
        self.editor_key(key, cx)
    }

    fn on_paste(&mut self, text: &str, cx: &mut Cx) -> bool {
        if cx.readonly || !self.paste(text) {
            return false;
        }
        cx.editor_changed();
        true
    }

    fn on_prompt(&mut self, what: &dyn Any, text: &str, cx: &mut Cx) -> Result<(), String> {
        match what.downcast_ref::<ClientPrompt>() {
            Some(what) => self.prompted(what, text, cx),
            None => Ok(()),
        }
    }

    fn on_confirm(&mut self, what: &dyn Any, cx: &mut Cx) {
        match what.downcast_ref::<ClientConfirm>() {
            Some(ClientConfirm::Remove(identity)) => cx.edit(policy::Edit::RemoveClient {
                identity: identity.clone(),
            }),
            Some(ClientConfirm::DiscardEditor) => {
                self.editor = None;
                if cx.policy().is_none() {
                    cx.flash(Level::Warn, "the file still does not parse");
                } else {
                    cx.flash(Level::Info, "editor changes discarded");
                }
            }
            None => {}
        }
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

/// What a Clients prompt asks for, about which client.
enum ClientPrompt {
    Add,
    Grant(String),
    Revoke(String),
    IdentityTtl(String),
    Rename(String),
    SetSetting(String),
}

/// What a Clients confirmation is about.
enum ClientConfirm {
    Remove(String),
    DiscardEditor,
}

impl ClientsState {
    fn act(&mut self, action: Action, cx: &mut Cx) {
        let Some(loaded) = cx.policy() else {
            if action == Action::EditRaw {
                self.open_editor(cx.saved_text(), cx.now);
            } else {
                cx.flash(Level::Error, "the policy does not parse; press i to fix it");
            }
            return;
        };
        let selected = self
            .selected_client(&loaded.policy)
            .map(|c| (c.identity.clone(), c.at));
        let (cursor, len) = match self.focus {
            ClientsPane::List => (&mut self.selected, self.rows.len()),
            ClientsPane::Findings => (&mut self.finding_selected, loaded.findings.len()),
        };
        if move_cursor(cursor, len, action) {
            return;
        }
        match action {
            Action::FocusNext | Action::FocusPrev => {
                self.focus = match self.focus {
                    ClientsPane::List => ClientsPane::Findings,
                    ClientsPane::Findings => ClientsPane::List,
                };
            }
            Action::Back => {
                if !self.filter.is_empty() {
                    self.filter.clear();
                    self.refilter(&loaded.policy);
                }
            }
            Action::Select if self.focus == ClientsPane::Findings => {
                match loaded.findings.get(self.finding_selected) {
                    Some(finding) => cx.detail("Finding", finding_detail(finding)),
                    None => cx.flash(Level::Info, "no findings: the policy is valid"),
                }
            }
            Action::EditRaw if self.focus == ClientsPane::Findings => {
                let at = self.finding_selected;
                self.open_editor(cx.text(), cx.now);
                if let Some(editor) = self.editor.as_mut() {
                    editor.selected_finding = at;
                    editor.jump_to(at);
                }
            }
            Action::Select | Action::EditRaw => {
                self.open_editor(cx.text(), cx.now);
                if let (Some(editor), Some((_, at))) = (self.editor.as_mut(), selected) {
                    editor
                        .area
                        .move_cursor(CursorMove::Jump(at.line.saturating_sub(1) as u16, 0));
                }
            }
            Action::ExternalEditor => {
                if cx.dirty() {
                    cx.flash(
                        Level::Warn,
                        "external editor: save your edits first (ctrl-s), so neither copy is lost",
                    );
                } else {
                    cx.external_edit();
                }
            }
            // A new client is often a delegate of one there is: the identities are listed.
            Action::AddClient => {
                let identities = cx.identities();
                cx.prompt_choosing(
                    ClientPrompt::Add,
                    "Add client",
                    "identity, e.g. uri:urn:company:bob",
                    "uri:urn:",
                    identities,
                )
            }
            Action::Copy => match selected {
                Some((identity, _)) => cx.copy("identity", identity),
                None => cx.flash(Level::Info, "nothing selected"),
            },
            _ => {
                let Some((identity, _)) = selected else {
                    cx.flash(Level::Info, "no client selected");
                    return;
                };
                client_form_action(action, identity, cx);
            }
        }
    }

    /// Keys for the raw editor while it is open.
    fn editor_key(&mut self, key: KeyEvent, cx: &mut Cx) -> bool {
        let action = cx.typing_action(&key);
        let Some(editor) = self.editor.as_mut() else {
            return false;
        };
        match action {
            Some(Action::Back) => self.close_editor(cx),
            Some(Action::Save) => self.apply_editor(true, cx),
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
            _ if cx.readonly => {
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
                    cx.flash(Level::Warn, "read-only mode: the editor only views");
                }
            }
            _ => {
                if editor.area.input(key) {
                    editor.revalidate(cx.now);
                    cx.editor_changed();
                }
            }
        }
        true
    }

    fn close_editor(&mut self, cx: &mut Cx) {
        let Some(editor) = self.editor.as_ref() else {
            return;
        };
        if !editor.modified() {
            self.editor = None;
            return;
        }
        if let Some(syntax) = &editor.syntax {
            let where_ = syntax
                .location
                .map_or(String::new(), |at| format!(" at {at}"));
            cx.confirm(
                ClientConfirm::DiscardEditor,
                "Discard editor changes",
                vec![
                    format!("The text does not parse{where_}: {}", syntax.message),
                    "Discard what you typed in the editor?".into(),
                ],
            );
            return;
        }
        self.apply_editor(false, cx);
    }

    /// Makes the editor's text the policy (one undo step); with `save`, writes it too.
    pub(crate) fn apply_editor(&mut self, save: bool, cx: &mut Cx) {
        let Some(editor) = self.editor.as_ref() else {
            return;
        };
        if cx.readonly {
            self.editor = None;
            return;
        }
        if let Some(syntax) = &editor.syntax {
            cx.flash(
                Level::Error,
                format!("not applied: {syntax} (Tab lists findings, Enter jumps)"),
            );
            return;
        }
        let text = editor.text();
        if cx.policy().is_some() && text == cx.text() {
            self.editor = None;
            if save {
                cx.save_text(text);
            }
            return;
        }
        cx.replace_text(text, save);
    }

    fn prompted(&mut self, what: &ClientPrompt, text: &str, cx: &mut Cx) -> Result<(), String> {
        use crate::policy::Edit;
        let usage = "type RESOURCE OPERATION, e.g. `production_api read`";
        let edit = match what {
            ClientPrompt::Add => {
                check_identity(text)?;
                let identity = text.to_string();
                cx.edit_then_select(Edit::AddClient { identity }, text.to_string());
                return Ok(());
            }
            ClientPrompt::Rename(from) => {
                check_identity(text)?;
                let (from, to) = (from.clone(), text.to_string());
                cx.edit_then_select(Edit::RenameClient { from, to }, text.to_string());
                return Ok(());
            }
            ClientPrompt::Grant(identity) => {
                let (resource, operation) = two_words(text, usage)?;
                Edit::Grant {
                    identity: identity.clone(),
                    resource,
                    operation,
                }
            }
            ClientPrompt::Revoke(identity) => {
                let (resource, operation) = two_words(text, usage)?;
                Edit::Revoke {
                    identity: identity.clone(),
                    resource,
                    operation,
                }
            }
            ClientPrompt::IdentityTtl(identity) => {
                let duration = match text {
                    "0" | "off" => None,
                    other => Some(lifetime(other)?),
                };
                Edit::SetIdentityTokens {
                    identity: identity.clone(),
                    enabled: duration.is_some(),
                    duration,
                }
            }
            ClientPrompt::SetSetting(identity) => {
                let (key, value) = two_words(text, "type SETTING VALUE, e.g. `delegatable false`")?;
                let setting = crate::policy::Setting::from_key(&key).ok_or_else(|| {
                    format!("no setting {key:?}: delegatable, operator, authorization_token_duration, max_delegation_depth")
                })?;
                let value = setting.parse_value(&value)?;
                Edit::SetSetting {
                    identity: identity.clone(),
                    setting,
                    value,
                }
            }
        };
        cx.edit(edit);
        Ok(())
    }
}

fn client_form_action(action: Action, identity: String, cx: &mut Cx) {
    match action {
        Action::RemoveClient => cx.confirm(
            ClientConfirm::Remove(identity.clone()),
            "Remove client",
            vec![
                format!("Remove {identity} from clients.toml?"),
                "It can no longer authenticate or get tokens once this is pushed.".into(),
            ],
        ),
        Action::Grant => {
            let grants = cx.policy_grants();
            cx.prompt_choosing(
                ClientPrompt::Grant(identity.clone()),
                &format!("Grant to {identity}"),
                "RESOURCE OPERATION, e.g. production_api read",
                "",
                Choices::Grants(grants),
            )
        }
        // What can be revoked is what the client holds.
        Action::Revoke => {
            let held = cx
                .policy()
                .and_then(|l| l.policy.client(&identity))
                .map(|c| complete::own_grants(&c.resources))
                .unwrap_or_default();
            cx.prompt_choosing(
                ClientPrompt::Revoke(identity.clone()),
                &format!("Revoke from {identity}"),
                "RESOURCE OPERATION",
                "",
                Choices::Grants(held),
            )
        }
        Action::IdentityTtl => {
            let current = cx
                .policy()
                .and_then(|l| l.policy.client(&identity))
                .and_then(policy::Client::identity_token_cap)
                .map_or("0".to_string(), policy::duration::format);
            cx.prompt(
                ClientPrompt::IdentityTtl(identity.clone()),
                &format!("Identity token lifetime for {identity}"),
                "8h, 30m, 1h30m, 7d or seconds; 0 turns identity tokens off",
                &current,
            )
        }
        Action::WhatCan => {
            if let Some(loaded) = cx.policy() {
                let text = what_can(&loaded.policy, &identity);
                cx.flash(Level::Info, text);
            }
        }
        Action::RenameClient => cx.prompt(
            ClientPrompt::Rename(identity.clone()),
            &format!("Rename {identity}"),
            "the new identifier (its delegations keep pointing at the old one: check the tree)",
            &identity,
        ),
        Action::SetSetting => cx.prompt_choosing(
            ClientPrompt::SetSetting(identity.clone()),
            &format!("Setting of {identity}"),
            "SETTING VALUE: delegatable true|false, operator true|false, authorization_token_duration 5m, max_delegation_depth N; VALUE default removes it",
            "",
            Choices::Words(vec![
                [
                    "delegatable",
                    "operator",
                    "authorization_token_duration",
                    "max_delegation_depth",
                ]
                .map(String::from)
                .to_vec(),
                ["true", "false", "default"].map(String::from).to_vec(),
            ]),
        ),
        _ => {}
    }
}

/// All of a finding, for the detail popup: what, where, about whom, and the message whole.
pub fn finding_detail(finding: &Finding) -> Vec<String> {
    let severity = match finding.severity {
        policy::Severity::Error => "error",
        policy::Severity::Warning => "warning",
    };
    let mut lines = vec![format!("{severity} ({})", finding.code)];
    if let Some(at) = finding.location {
        lines.push(format!(
            "at line {}, column {} (i opens the editor there)",
            at.line, at.column
        ));
    }
    if let Some(subject) = &finding.subject {
        lines.push(format!("about {subject}"));
    }
    lines.push(String::new());
    lines.extend(finding.message.lines().map(str::to_string));
    lines
}

/// A token lifetime, read as everywhere else: `8h`, `1h30m`, `7d`, or seconds.
fn lifetime(text: &str) -> Result<u64, String> {
    crate::policy::duration::parse(text).map_err(|e| e.to_string())
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
    let findings = wrapped_findings(app, &loaded.findings, area.width);
    let [top, bottom] = Layout::vertical([
        Constraint::Min(6),
        Constraint::Length(findings_height(area, &findings)),
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
            if app.unused.identity(&client.identity).is_some() {
                tags.push("unused");
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
    let mut title = format!(
        "Clients ({}/{})",
        state.rows.len(),
        loaded.policy.clients.len()
    );
    if let Some(summary) = app.unused.summary() {
        title.push_str(&format!(" · {summary}"));
    }
    let list = list_pane(app, &title, state.focus == ClientsPane::List, items);
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

    let title = if loaded.findings.is_empty() {
        "Findings: none, the policy is valid".to_string()
    } else {
        format!(
            "Findings ({}) — Tab, then Enter shows one, i jumps to its line",
            loaded.findings.len()
        )
    };
    let focused = state.focus == ClientsPane::Findings;
    let mut finding_state =
        ListState::default().with_selected(focused.then_some(state.finding_selected));
    frame.render_stateful_widget(
        list_pane(app, &title, focused, findings),
        bottom,
        &mut finding_state,
    );
}

/// The findings as list items wrapped to a pane `width` columns wide (long messages are read
/// whole, not cut at the border): the first line keeps the severity and location.
fn wrapped_findings<'a>(app: &App, findings: &[Finding], width: u16) -> Vec<ListItem<'a>> {
    // Borders and the selection marker.
    let text_width = usize::from(width.saturating_sub(4)).max(10);
    findings
        .iter()
        .map(|finding| {
            let first = finding_line(app, finding);
            let plain: String = first.spans.iter().map(|s| s.content.as_ref()).collect();
            let wrapped = crate::console::ui::wrap_lines(&[plain], text_width);
            if wrapped.len() <= 1 {
                return ListItem::new(first);
            }
            // The styled head (severity and location) and the message as wrapped lines.
            let head: Vec<Span> = first.spans[..first.spans.len() - 1].to_vec();
            let head_width: usize = head.iter().map(|s| s.content.chars().count()).sum();
            let mut lines = vec![];
            let first_rest: String = wrapped[0].chars().skip(head_width).collect();
            let mut spans = head;
            spans.push(Span::raw(first_rest));
            lines.push(Line::from(spans));
            lines.extend(wrapped[1..].iter().map(|l| Line::from(l.clone())));
            ListItem::new(lines)
        })
        .collect()
}

/// The findings pane's height: as tall as its wrapped findings, up to a third of `area`.
fn findings_height(area: Rect, findings: &[ListItem]) -> u16 {
    let lines: usize = findings.iter().map(ListItem::height).sum();
    let wanted = u16::try_from(lines).unwrap_or(u16::MAX).max(1) + 2;
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
    if let Some(unused) = app.unused.identity(&client.identity) {
        lines.push(Line::from(Span::styled(
            format!(
                "{} (no allowed request)",
                unused_marks::tag(unused, app.now)
            ),
            theme.muted(),
        )));
    }
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
        for operation in &resource.operations {
            if let Some(unused) = app
                .unused
                .grant(&client.identity, &resource.name, operation)
            {
                lines.push(Line::from(Span::styled(
                    format!("    {operation}: {}", unused_marks::tag(unused, app.now)),
                    theme.muted(),
                )));
            }
        }
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
    let items = wrapped_findings(app, &editor.findings, area.width);
    let [text_area, findings_area] = Layout::vertical([
        Constraint::Min(5),
        Constraint::Length(findings_height(area, &items)),
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
    let title = match (&editor.syntax, editor.findings.len()) {
        (Some(_), _) => "Does not parse".to_string(),
        (None, 0) => "Valid".to_string(),
        (None, n) => format!("Findings ({n}) — Tab, then Enter jumps"),
    };
    let mut state = ListState::default()
        .with_selected(editor.findings_focused.then_some(editor.selected_finding));
    frame.render_stateful_widget(
        list_pane(app, &title, editor.findings_focused, items),
        findings_area,
        &mut state,
    );
}
