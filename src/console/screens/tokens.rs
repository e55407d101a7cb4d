//! Screen 4, Tokens: paste or load a token; its blocks with Datalog highlighted, block roles,
//! signer keys and revocation ids with each block's revocation status (revocations.toml at HEAD
//! and in the working copy, and the server's list when connected); the identity chain; expiry as a live countdown; verification
//! against the server's key (or one given with `:key`) with the explanation of a failure; and the
//! demo flow against the server, each token shown as it is produced.

use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui_textarea::TextArea;

use std::any::Any;
use std::collections::BTreeSet;

use super::{Cx, Hint, Screen, hint, hints};
use crate::console::app::{App, Level, expand_home};
use crate::console::complete::Choices;
use crate::console::jobs::{FlowStep, Job, JobResult, RootKeyText};
use crate::console::keymap::{Action, Scope};
use crate::console::revocation_status::RevocationLists;
use crate::console::theme::Theme;
use crate::console::ui::pane;
use crate::token::{self, Inspection, SignatureStatus};

/// The pane ↑/↓ move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokensPane {
    /// The demo flow's steps (Enter loads a step's token).
    #[default]
    Flow,
    Blocks,
    /// The token's summary, scrolled.
    Token,
}

impl TokensPane {
    fn next(self, forward: bool) -> TokensPane {
        let order = [TokensPane::Flow, TokensPane::Blocks, TokensPane::Token];
        let at = order.iter().position(|p| *p == self).unwrap_or(0);
        let step = if forward { 1 } else { order.len() - 1 };
        order[(at + step) % order.len()]
    }
}

#[derive(Default)]
pub struct TokensState {
    /// The paste box, while open.
    pub input: Option<TextArea<'static>>,
    pub token: Option<String>,
    pub source: String,
    pub inspection: Option<Result<Inspection, String>>,
    pub verification: Option<Result<String, String>>,
    pub flow: Vec<FlowStep>,
    pub flow_selected: usize,
    /// The server's root public keys (those a verifier may meet), once fetched.
    pub server_key: Option<Result<Vec<RootKeyText>, String>>,
    /// A key given with `:key`, preferred over the server's.
    pub custom_key: Option<String>,
    pub scroll: u16,
    /// Tab moves between the demo flow, the blocks (a selected block can be revoked) and the
    /// token's summary (it scrolls; its expiry and verdict stay put).
    pub focus: TokensPane,
    /// How far the token's summary is scrolled, and how far it can be (as last drawn).
    pub summary_scroll: u16,
    pub summary_max: std::cell::Cell<u16>,
    pub block_selected: usize,
    /// The revocation lists the blocks are checked against, once read.
    pub revocations: Option<RevocationLists>,
    /// The picker's rows for the stored tokens it lists (label, name).
    pub stored: Vec<(String, String)>,
}

/// A stored token's picker row: its name, then whose it is and when it expires.
pub fn stored_label(token: &crate::token_store::StoredToken, now: i64) -> String {
    format!("{:<24} {}", token.name, token.summary(now))
}

const FILE_ITEM: &str = "(read a file…)";

impl Screen for TokensState {
    fn title(&self) -> &'static str {
        "Tokens"
    }

    fn scope(&self) -> Scope {
        Scope::Tokens
    }

    fn hints(&self) -> Vec<Hint> {
        if self.input.is_some() {
            return vec![hint(Action::Select, "load"), hint(Action::Back, "cancel")];
        }
        if self.focus == TokensPane::Token {
            return vec![
                hint(Action::Down, "scroll"),
                hint(Action::FocusNext, "pane"),
                hint(Action::Verify, "verify"),
                hint(Action::Copy, "copy"),
            ];
        }
        if self.focus == TokensPane::Blocks {
            return hints(&[
                Action::FocusNext,
                Action::RevokeToken,
                Action::Verify,
                Action::Copy,
            ]);
        }
        hints(&[
            Action::PasteToken,
            Action::LoadToken,
            Action::Verify,
            Action::DemoFlow,
            Action::Copy,
        ])
    }

    fn typing(&self) -> bool {
        self.input.is_some()
    }

    fn render(&self, frame: &mut Frame, area: Rect, app: &App) {
        render(frame, area, app);
    }

    fn on_action(&mut self, action: Action, cx: &mut Cx) {
        self.act(action, cx);
    }

    fn on_key(&mut self, key: KeyEvent, cx: &mut Cx) -> bool {
        self.input_key(key, cx)
    }

    /// A pasted token is loaded at once (the paste box closes).
    fn on_paste(&mut self, text: &str, cx: &mut Cx) -> bool {
        self.input = None;
        self.load_token(text.trim().to_string(), "pasted".into(), cx);
        true
    }

    fn on_prompt(&mut self, what: &dyn Any, text: &str, cx: &mut Cx) -> Result<(), String> {
        match what.downcast_ref::<TokensPrompt>() {
            Some(TokensPrompt::VerifyAs) => self.verify_as(text, cx),
            Some(TokensPrompt::LoadTokenFile) => cx.submit(Job::LoadTokenFile {
                path: expand_home(text),
            }),
            Some(TokensPrompt::DemoFlow) => self.start_demo_flow(text, cx)?,
            Some(TokensPrompt::Stored) if text == FILE_ITEM => ask_token_file(cx),
            Some(TokensPrompt::Stored) => {
                let stored = self.stored.iter().find(|(label, _)| label == text);
                if let Some((_, name)) = stored {
                    let name = name.clone();
                    cx.submit(Job::LoadStoredToken { name });
                }
            }
            None => {}
        }
        Ok(())
    }

    fn on_result(&mut self, result: JobResult, cx: &mut Cx) -> Option<JobResult> {
        self.result(result, cx)
    }
}

/// What a Tokens prompt (or pick-list) asks for.
enum TokensPrompt {
    VerifyAs,
    LoadTokenFile,
    DemoFlow,
    /// A stored token, or "read a file".
    Stored,
}

impl TokensState {
    fn act(&mut self, action: Action, cx: &mut Cx) {
        match action {
            Action::PasteToken => {
                let mut input = TextArea::new(vec![String::new()]);
                input.set_placeholder_text("paste a token, then Enter");
                self.input = Some(input);
            }
            Action::LoadToken => cx.submit(Job::ListStoredTokens),
            Action::Verify => {
                if self.token.is_none() {
                    cx.flash(Level::Info, "Verify: load or paste a token first (p, o)");
                    return;
                }
                let suggested = self
                    .inspection
                    .as_ref()
                    .and_then(|i| i.as_ref().ok())
                    .and_then(|i| i.effective_identity.clone())
                    .unwrap_or_default();
                let identities = cx.identities();
                cx.prompt_or_empty_choosing(
                    TokensPrompt::VerifyAs,
                    "Verify as",
                    "IDENTITY [DOMAIN] — empty: the token's own identity",
                    &suggested,
                    Choices::Words(vec![identities.clone(), identities]),
                );
            }
            Action::DemoFlow => ask_demo_flow(cx),
            Action::FocusNext | Action::FocusPrev => {
                self.focus = self.focus.next(action == Action::FocusNext)
            }
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom
                if self.focus == TokensPane::Token =>
            {
                let max = self.summary_max.get();
                self.summary_scroll = match action {
                    Action::Up => self.summary_scroll.saturating_sub(1),
                    Action::Down => self.summary_scroll.saturating_add(1),
                    Action::PageUp => self.summary_scroll.saturating_sub(5),
                    Action::PageDown => self.summary_scroll.saturating_add(5),
                    Action::Top => 0,
                    _ => max,
                }
                .min(max);
            }
            Action::Up if self.focus == TokensPane::Blocks => {
                self.block_selected = self.block_selected.saturating_sub(1)
            }
            Action::Down if self.focus == TokensPane::Blocks => {
                let last = self.block_count().saturating_sub(1);
                self.block_selected = (self.block_selected + 1).min(last)
            }
            Action::Up => self.flow_selected = self.flow_selected.saturating_sub(1),
            Action::Down => {
                self.flow_selected = (self.flow_selected + 1).min(self.flow.len().saturating_sub(1))
            }
            Action::RevokeToken => self.revoke_selected_block(cx),
            Action::PageDown => self.scroll = self.scroll.saturating_add(10),
            Action::PageUp => self.scroll = self.scroll.saturating_sub(10),
            Action::Select => {
                let token = self
                    .flow
                    .get(self.flow_selected)
                    .and_then(|s| s.token.clone());
                if let Some(token) = token {
                    let source = format!("demo flow step {}", self.flow_selected + 1);
                    self.load_token(token, source, cx);
                }
            }
            Action::Copy => match self.token.clone() {
                Some(token) => cx.copy("token", token),
                None => cx.flash(Level::Info, "no token loaded"),
            },
            _ => {}
        }
    }

    fn block_count(&self) -> usize {
        match &self.inspection {
            Some(Ok(inspection)) => inspection.blocks.len(),
            _ => 0,
        }
    }

    /// Revokes the selected block (the last one unless the blocks pane chose another).
    fn revoke_selected_block(&mut self, cx: &mut Cx) {
        let Some(Ok(inspection)) = &self.inspection else {
            cx.flash(Level::Info, "Revoke: load or paste a token first (p, o)");
            return;
        };
        let index = if self.focus == TokensPane::Blocks {
            self.block_selected
        } else {
            inspection.blocks.len() - 1
        };
        let Some(block) = inspection.blocks.get(index) else {
            return;
        };
        let whose = inspection
            .effective_identity
            .clone()
            .unwrap_or_else(|| "(no identity)".into());
        let reach = if index == 0 {
            "the whole token and everything minted or delegated from it".to_string()
        } else {
            format!("this token (usable by {whose}) and everything delegated from it")
        };
        let what = format!("block {index} ({}): {reach}", block.role);
        cx.revoke(block.revocation_id.clone(), what);
    }

    /// Keys typed into the paste box.
    fn input_key(&mut self, key: KeyEvent, cx: &mut Cx) -> bool {
        let action = cx.typing_action(&key);
        let Some(input) = self.input.as_mut() else {
            return false;
        };
        match action {
            Some(Action::Back) => self.input = None,
            Some(Action::Select) => {
                let text: String = input.lines().join("");
                self.input = None;
                self.load_token(text.trim().to_string(), "pasted".into(), cx);
            }
            _ => {
                input.input(key);
            }
        }
        true
    }

    /// Shows `token` (read from `source`), its chain in the delegation tree, and this screen.
    pub fn load_token(&mut self, token: String, source: String, cx: &mut Cx) {
        if token.is_empty() {
            cx.flash(Level::Info, "no token entered");
            return;
        }
        let inspection = token::inspect(&token, None, cx.now).map_err(|e| e.to_string());
        if let Ok(inspection) = &inspection {
            cx.show_chain(inspection.chain.clone());
        }
        self.block_selected = match &inspection {
            Ok(inspection) => inspection.blocks.len().saturating_sub(1),
            _ => 0,
        };
        self.inspection = Some(inspection);
        self.verification = None;
        self.token = Some(token);
        self.source = source;
        cx.submit(Job::ReadRevocations);
        self.scroll = 0;
        self.summary_scroll = 0;
        cx.go_to(super::ScreenId::Tokens);
    }

    /// Verifies the loaded token as `text` (IDENTITY [DOMAIN]; empty: its own identity).
    pub fn verify_as(&mut self, text: &str, cx: &mut Cx) {
        let Some(token) = self.token.clone() else {
            cx.flash(Level::Info, "verify: load or paste a token first");
            return;
        };
        let roots = match (&self.custom_key, &self.server_key) {
            (Some(key), _) => vec![RootKeyText::single(key.clone())],
            (None, Some(Ok(keys))) => keys.clone(),
            (None, Some(Err(e))) => {
                cx.flash(
                    Level::Error,
                    format!("no root key: the server's could not be fetched ({e}); give one with :key KEY"),
                );
                return;
            }
            (None, None) => {
                cx.flash(Level::Error, "no root key yet: give one with :key KEY");
                return;
            }
        };
        let mut words = text.split_whitespace();
        let identity = words.next().map(str::to_string);
        let domain = words.next().map(str::to_string);
        self.verification = None;
        cx.submit(Job::Verify {
            token,
            roots,
            identity,
            domain,
        });
    }

    /// Starts the demo flow typed in the prompt; refuses (keeping the prompt) what cannot run.
    fn start_demo_flow(&mut self, text: &str, cx: &mut Cx) -> Result<(), String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [client, delegate_to, resource, operation] = parts.as_slice() else {
            return Err("type CLIENT DELEGATE-TO RESOURCE OPERATION, e.g. uri:urn:company:alice uri:urn:company:alice:agent1 production_api read".into());
        };
        if !cx.demo_clients().iter().any(|c| c == client) {
            return Err(format!(
                "no client certificate for {client}: the flow authenticates with one of {}",
                cx.demo_clients().join(", ")
            ));
        }
        self.flow.clear();
        self.flow_selected = 0;
        cx.submit(Job::DemoFlow {
            client: client.to_string(),
            delegate_to: delegate_to.to_string(),
            resource: resource.to_string(),
            operation: operation.to_string(),
        });
        Ok(())
    }

    /// A job result this screen asked for; the others are handed back.
    fn result(&mut self, result: JobResult, cx: &mut Cx) -> Option<JobResult> {
        match result {
            JobResult::TokenLoaded { source, token } => match token {
                Ok(token) => self.load_token(token, source, cx),
                Err(e) => cx.flash(Level::Error, e),
            },
            JobResult::StoredTokens(Ok(tokens)) => {
                self.stored = tokens
                    .iter()
                    .map(|t| (stored_label(t, cx.now), t.name.clone()))
                    .collect();
                let items = std::iter::once(FILE_ITEM.to_string())
                    .chain(self.stored.iter().map(|(label, _)| label.clone()))
                    .collect();
                cx.pick(
                    TokensPrompt::Stored,
                    "Load a token (name, whose, expiry)",
                    items,
                );
            }
            JobResult::StoredTokens(Err(e)) => {
                cx.flash(Level::Warn, format!("token store: {e}"));
                ask_token_file(cx);
            }
            JobResult::Revocations(lists) => self.revocations = Some(*lists),
            JobResult::ServerPublicKey(result) => self.server_key = Some(result),
            JobResult::Verified(result) => {
                let level = if result.is_ok() {
                    Level::Success
                } else {
                    Level::Error
                };
                let text = match &result {
                    Ok(s) => s.clone(),
                    Err(e) if e.starts_with("revoked") => e.clone(),
                    Err(e) => format!("invalid: {e}"),
                };
                cx.flash(level, text);
                self.verification = Some(result);
            }
            JobResult::FlowStep(step) => {
                let ok = step.ok;
                let token = step.token.clone();
                let title = step.title.clone();
                self.flow.push(step);
                self.flow_selected = self.flow.len() - 1;
                if let Some(token) = token {
                    self.load_token(token, format!("demo flow: {title}"), cx);
                }
                if !ok {
                    cx.flash(Level::Error, format!("demo flow stopped at {title}"));
                }
            }
            other => return Some(other),
        }
        None
    }
}

fn ask_token_file(cx: &mut Cx) {
    cx.prompt_choosing(
        TokensPrompt::LoadTokenFile,
        "Load a token file",
        "path",
        "",
        Choices::Path,
    );
}

fn ask_demo_flow(cx: &mut Cx) {
    if !cx.has_server {
        cx.flash(
            Level::Warn,
            "Demo flow: no server (start with the demo workspace)",
        );
        return;
    }
    let clients = cx.demo_clients();
    let Some(client) = clients
        .iter()
        .find(|c| c.ends_with(":alice"))
        .or(clients.first())
        .cloned()
    else {
        cx.flash(
            Level::Warn,
            "Demo flow: it authenticates with a client certificate and this console has none (the --cert of --server names no uri: identity); open a workspace (--workspace DIR, or no flags for the demo one) to run it",
        );
        return;
    };
    let (resource, operation) = first_grant(cx, &client);
    let initial = format!("{client} {client}:agent1 {resource} {operation}");
    let identities = cx.identities();
    let grants = cx.policy_grants();
    let resources = grants.iter().map(|(r, _)| r.clone()).collect();
    let operations: BTreeSet<String> = grants.into_iter().flat_map(|(_, ops)| ops).collect();
    cx.prompt_choosing(
        TokensPrompt::DemoFlow,
        "Demo flow",
        "CLIENT DELEGATE-TO RESOURCE OPERATION",
        &initial,
        Choices::Words(vec![
            clients.to_vec(),
            identities,
            resources,
            operations.into_iter().collect(),
        ]),
    );
}

/// A resource and operation `identity` is granted (the demo flow's default request); the
/// demo policy's `production_api read` when it has none.
fn first_grant(cx: &Cx, identity: &str) -> (String, String) {
    cx.policy()
        .and_then(|l| l.policy.client(identity))
        .and_then(|c| {
            c.resources
                .iter()
                .find_map(|r| Some((r.name.clone(), r.operations.first()?.clone())))
        })
        .unwrap_or_else(|| ("production_api".into(), "read".into()))
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let state = &app.screens.tokens;
    let wide = area.width >= 100;
    let [left, right] = if wide {
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area)
    } else {
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area)
    };
    let [summary_area, flow_area] = Layout::vertical([
        Constraint::Min(6),
        Constraint::Length(if state.flow.is_empty() { 3 } else { 11 }),
    ])
    .areas(left);
    if let Some(input) = &state.input {
        let mut widget = input.clone();
        widget.set_block(pane(app, "Paste a token — Enter loads, Esc cancels", true));
        frame.render_widget(&widget, summary_area);
    } else {
        render_summary(frame, summary_area, app);
    }
    let flow: Vec<Line> = if state.flow.is_empty() {
        vec![Line::from(Span::styled(
            "f runs the demo flow: mTLS → delegate → authorize → verify",
            app.theme.muted(),
        ))]
    } else {
        state
            .flow
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let (glyph, style) = if step.ok {
                    ("✓", app.theme.ok())
                } else {
                    ("✗", app.theme.error())
                };
                let marker = if i == state.flow_selected {
                    "▶ "
                } else {
                    "  "
                };
                Line::from(vec![
                    Span::raw(marker),
                    Span::styled(format!("{glyph} {}", step.title), style),
                    Span::raw(format!("  {}", step.detail)),
                ])
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(flow).wrap(Wrap { trim: false }).block(pane(
            app,
            "Demo flow (Enter loads a step's token)",
            state.focus == TokensPane::Flow,
        )),
        flow_area,
    );
    let (lines, selected_line) = block_lines(app);
    let blocks_focused = state.focus == TokensPane::Blocks;
    let scroll = match (blocks_focused, selected_line) {
        (true, Some(line)) => line.saturating_sub(1) as u16,
        _ => state.scroll,
    };
    let title = if blocks_focused {
        "Blocks — ↑↓ select, X revokes"
    } else {
        "Blocks (Tab to select one)"
    };
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .wrap(Wrap { trim: false })
            .block(pane(app, title, blocks_focused)),
        right,
    );
}

/// The token's summary: what scrolls above, and below it what always stays in view at any
/// height (the expiry, the signature and the verdict).
fn render_summary(frame: &mut Frame, area: Rect, app: &App) {
    let state = &app.screens.tokens;
    let (body, pinned) = summary_lines(app);
    let focused = state.focus == TokensPane::Token;
    let inner = pane(app, "Token", focused).inner(area);
    let plain: Vec<String> = body
        .iter()
        .map(|line| line.spans.iter().map(|s| s.content.as_ref()).collect())
        .collect();
    let wrapped = crate::console::ui::wrap_lines(&plain, usize::from(inner.width)).len();
    if wrapped + pinned.len() <= usize::from(inner.height) {
        // It all fits: one text, the pinned lines right after the rest.
        state.summary_max.set(0);
        let mut lines = body;
        lines.extend(pinned);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(pane(app, "Token", focused)),
            area,
        );
        return;
    }
    let pinned_height = u16::try_from(pinned.len())
        .unwrap_or(u16::MAX)
        .min(inner.height.saturating_sub(1));
    let [body_area, pinned_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(pinned_height)]).areas(inner);
    let wrapped = crate::console::ui::wrap_lines(&plain, usize::from(body_area.width)).len();
    let max =
        u16::try_from(wrapped.saturating_sub(usize::from(body_area.height))).unwrap_or(u16::MAX);
    state.summary_max.set(max);
    let scroll = state.summary_scroll.min(max);
    let key = |action| crate::console::ui::key_of(app, Scope::Tokens, action);
    let title = match (max > 0, focused) {
        (false, _) => "Token".to_string(),
        (true, true) => format!(
            "Token — {}/{} scroll ({}/{})",
            key(Action::Up),
            key(Action::Down),
            scroll,
            max
        ),
        (true, false) => format!("Token — more: {} to scroll", key(Action::FocusPrev)),
    };
    frame.render_widget(pane(app, &title, focused), area);
    frame.render_widget(
        Paragraph::new(body)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        body_area,
    );
    frame.render_widget(Paragraph::new(pinned), pinned_area);
}

/// The summary's lines that scroll, and those that stay in view (expiry, signature, verdict).
fn summary_lines(app: &App) -> (Vec<Line<'static>>, Vec<Line<'static>>) {
    let state = &app.screens.tokens;
    let theme = &app.theme;
    let Some(inspection) = &state.inspection else {
        let empty = vec![
            Line::from("No token loaded."),
            Line::from(Span::styled(
                "p paste · o load from the token store or a file · f demo flow",
                theme.muted(),
            )),
        ];
        return (empty, Vec::new());
    };
    let inspection = match inspection {
        Ok(i) => i,
        Err(e) => {
            let unreadable = vec![
                Line::from(Span::styled("✗ not a readable token", theme.error())),
                Line::from(e.clone()),
                Line::from(Span::styled(
                    format!("source: {}", state.source),
                    theme.muted(),
                )),
            ];
            return (unreadable, Vec::new());
        }
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(inspection.kind.describe().to_string(), theme.title()),
            Span::styled(
                format!(
                    "  {} chars · {} blocks · {}",
                    inspection.size_chars,
                    inspection.blocks.len(),
                    state.source
                ),
                theme.muted(),
            ),
        ]),
        field(
            "subject",
            inspection.subject.clone().unwrap_or("(none)".into()),
        ),
        field(
            "usable by",
            inspection
                .effective_identity
                .clone()
                .unwrap_or("(none)".into()),
        ),
    ];
    if inspection.chain.len() > 1 {
        lines.push(field("chain", inspection.chain.join(" → ")));
    }
    if let Some(domain) = &inspection.domain {
        lines.push(field("domain", domain.clone()));
    }
    lines.push(field(
        "delegation",
        format!(
            "depth {}{}",
            inspection.delegation_depth,
            if inspection.delegatable {
                ", may delegate further"
            } else {
                ""
            }
        ),
    ));
    let mut pinned = vec![expiry_line(app, inspection)];
    if !inspection.lineage.is_empty() {
        let generations: Vec<String> = inspection
            .lineage
            .iter()
            .map(|a| {
                let id: String = a.revocation_id.chars().take(12).collect();
                let key = a.root_key_id.map_or(String::new(), |k| format!(" key {k}"));
                format!("g{} {id}…{key}", a.generation)
            })
            .collect();
        lines.push(field(
            "lineage",
            format!(
                "refreshed {} time(s) from {} (revoking one refuses this token)",
                inspection.lineage.len(),
                generations.join(" → ")
            ),
        ));
    }
    pinned.push(match &inspection.signature {
        SignatureStatus::NotChecked => Line::from(Span::styled(
            "signature: not checked yet (v verifies)",
            theme.muted(),
        )),
        SignatureStatus::Valid => Line::from(Span::styled("✓ signature valid", theme.ok())),
        SignatureStatus::Invalid(why) => {
            Line::from(Span::styled(format!("✗ signature: {why}"), theme.error()))
        }
    });
    if let Some(refused) = &inspection.refused {
        pinned.push(Line::from(Span::styled(
            format!("✗ {refused}"),
            theme.error(),
        )));
    }
    match &state.verification {
        Some(Ok(text)) => pinned.push(Line::from(Span::styled(format!("✓ {text}"), theme.ok()))),
        Some(Err(text)) => {
            let verdict = if text.starts_with("revoked") {
                "✗ revoked"
            } else {
                "✗ invalid"
            };
            // The verdict stays in view; why scrolls with the rest.
            pinned.push(Line::from(Span::styled(verdict, theme.error())));
            for part in text.split("; ") {
                lines.push(Line::from(format!("  {part}")));
            }
        }
        None => {}
    }
    (lines, pinned)
}

fn field(name: &str, value: String) -> Line<'static> {
    Line::from(vec![Span::raw(format!("{name:>10}: ")), Span::raw(value)])
}

fn expiry_line(app: &App, inspection: &Inspection) -> Line<'static> {
    let Some(expiry) = inspection.effective_expiry else {
        return field("expires", "never (no time check)".into());
    };
    let left = expiry - app.now;
    let block = inspection
        .expiring_block
        .map_or(String::new(), |b| format!(" (set by block {b})"));
    if left <= 0 {
        Line::from(Span::styled(
            format!("   expires: ✗ expired {} ago{block}", countdown(-left)),
            app.theme.error(),
        ))
    } else {
        let style = if left < 300 {
            app.theme.warn()
        } else {
            app.theme.text()
        };
        Line::from(Span::styled(
            format!("   expires: in {}{block}", countdown(left)),
            style,
        ))
    }
}

fn countdown(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The blocks' lines, and which line is the selected block's header.
fn block_lines(app: &App) -> (Vec<Line<'static>>, Option<usize>) {
    let Some(Ok(inspection)) = &app.screens.tokens.inspection else {
        return (vec![], None);
    };
    let theme = &app.theme;
    let state = &app.screens.tokens;
    let mut lines = Vec::new();
    let mut selected_line = None;
    for block in &inspection.blocks {
        let selected = state.focus == TokensPane::Blocks && block.index == state.block_selected;
        if selected {
            selected_line = Some(lines.len());
        }
        let (marker, title_style) = if selected {
            ("▶ ", theme.selected())
        } else {
            ("", theme.title())
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{marker}block {}", block.index), title_style),
            Span::styled(format!("  {}", block.role), theme.accent()),
        ]));
        if let Some(key) = &block.external_key {
            let short: String = key.chars().take(24).collect();
            lines.push(Line::from(Span::styled(
                format!("signed by {short}… (y copies the token)"),
                theme.muted(),
            )));
        }
        let short: String = block.revocation_id.chars().take(16).collect();
        let mut id_line = vec![Span::styled(
            format!("revocation id {short}…"),
            theme.muted(),
        )];
        match &state.revocations {
            Some(lists) => {
                let (revoked, status) = lists.block_status(&block.revocation_id);
                let style = if revoked {
                    theme.error()
                } else {
                    theme.muted()
                };
                let glyph = if revoked { "✗ " } else { "" };
                id_line.push(Span::styled(format!(" · {glyph}{status}"), style));
            }
            None => id_line.push(Span::styled(" · checking revocations…", theme.muted())),
        }
        lines.push(Line::from(id_line));
        for source in block.source.lines() {
            lines.push(highlight_datalog(source, theme));
        }
        lines.push(Line::from(""));
    }
    (lines, selected_line)
}

const KEYWORDS: &[&str] = &[
    "check if",
    "check all",
    "allow if",
    "deny if",
    "trusting",
    "reject if",
];

/// Keywords and string literals picked out; the rest plain.
pub fn highlight_datalog(line: &str, theme: &Theme) -> Line<'static> {
    let mut spans = Vec::new();
    let mut rest = line;
    let mut plain = String::new();
    while !rest.is_empty() {
        if let Some(keyword) = KEYWORDS.iter().find(|k| rest.starts_with(**k)) {
            spans.push(Span::raw(std::mem::take(&mut plain)));
            spans.push(Span::styled(keyword.to_string(), theme.keyword()));
            rest = &rest[keyword.len()..];
            continue;
        }
        if rest.starts_with('"')
            && let Some(end) = rest[1..].find('"')
        {
            spans.push(Span::raw(std::mem::take(&mut plain)));
            spans.push(Span::styled(rest[..end + 2].to_string(), theme.literal()));
            rest = &rest[end + 2..];
            continue;
        }
        let c = rest.chars().next().expect("rest is not empty");
        plain.push(c);
        rest = &rest[c.len_utf8()..];
    }
    spans.push(Span::raw(plain));
    Line::from(spans)
}
