//! Screen 5, Changes: git status, the semantic diff of the working buffer (unsaved edits
//! included) against HEAD, widening changes marked and revocations listed, or the text diff of
//! the same two things; the recent decisions this change would alter (replaying the server's
//! audit feed), commit (refused while the policy is invalid; the confirmation names every file
//! it commits), push, pull, and history (revocation-only commits included) with each commit's
//! semantic diff.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{ListItem, ListState, Paragraph, Wrap};

use std::collections::VecDeque;
use std::sync::Arc;

use std::any::Any;

use super::{Cx, Hint, Screen, hints};
use crate::console::app::{App, Level};
use crate::console::jobs::{GitView, HistoryEntry, Job, JobResult};
use crate::console::keymap::{Action, Scope};
use crate::console::screens::clients::move_cursor;
use crate::console::ui::{list_pane, pane};
use crate::gitops::PushOutcome;
use crate::policy::{self, LoadedPolicy, Policy, PolicyDiff, ReplayRow, Request};
use crate::wire::AuditEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChangesPane {
    #[default]
    Diff,
    History,
}

#[derive(Default)]
pub struct ChangesState {
    pub git: Option<Result<GitView, String>>,
    /// The policy at HEAD, parsed (empty before the first commit; None until known); shared
    /// with the workers that diff an edit against it.
    pub head: Option<Arc<Policy>>,
    /// The text `head` was read from, so an unchanged HEAD is not parsed again.
    head_text: Option<String>,
    pub diff: PolicyDiff,
    /// Recent server decisions that the working policy would decide differently.
    pub replay: Vec<ReplayRow>,
    pub replayed: usize,
    pub show_text: bool,
    /// The text diff of the working buffer against HEAD: (HEAD's text, the buffer's, the diff),
    /// recomputed on a worker whenever either text changes while the text view is shown.
    pub buffer_diff: Option<(String, String, Result<String, String>)>,
    pub history: Option<Result<Vec<HistoryEntry>, String>>,
    pub history_selected: usize,
    pub focus: ChangesPane,
    /// The last push's progress, or how it ended.
    pub last_push: Option<String>,
    /// Progress reports seen for pushes (how far the status line has followed them).
    pub push_steps: usize,
    /// The commit the console just made, until a git status taken after it arrives: a status
    /// from before the commit cannot say how far ahead the branch is.
    pending_head: Option<String>,
}

/// The Changes screen's view of a policy against HEAD's: the semantic diff (revocations aside:
/// they come with the git status) and the recent decisions it would alter. An edit's worker
/// builds it with the policy it read, so a 10,000-client diff does not run on the UI thread.
#[derive(Debug, Clone)]
pub struct ChangesView {
    /// What it was built against: installed only if they are still HEAD's policy and the feed's
    /// recent requests.
    head: Arc<Policy>,
    requests: Vec<Request>,
    diff: PolicyDiff,
    replay: Vec<ReplayRow>,
}

impl ChangesView {
    pub fn build(head: Arc<Policy>, policy: &Policy, requests: Vec<Request>) -> ChangesView {
        let diff = policy::diff(&head, policy);
        let replay = policy::replay(&head, policy, &requests)
            .into_iter()
            .filter(ReplayRow::changed)
            .collect();
        ChangesView {
            head,
            requests,
            diff,
            replay,
        }
    }
}

/// The distinct requests of the feed's latest events (at most 200), newest first: what the
/// Changes screen replays against the edited policy.
pub fn recent_requests(events: &VecDeque<AuditEvent>) -> Vec<Request> {
    let mut requests: Vec<Request> = Vec::new();
    for event in events.iter().rev() {
        let (Some(identity), Some(resource), Some(operation)) =
            (&event.caller, &event.resource, &event.operation)
        else {
            continue;
        };
        let request = Request {
            identity: identity.clone(),
            resource: resource.clone(),
            operation: operation.clone(),
            domain: None,
        };
        if !requests.contains(&request) {
            requests.push(request);
        }
        if requests.len() >= 200 {
            break;
        }
    }
    requests
}

impl ChangesState {
    pub fn recompute(&mut self, loaded: &LoadedPolicy, events: &VecDeque<AuditEvent>) {
        let Some(head) = self.head.clone() else {
            self.diff = PolicyDiff::default();
            self.replay.clear();
            self.replayed = 0;
            return;
        };
        let view = ChangesView::build(head, &loaded.policy, recent_requests(events));
        self.show(view, events);
    }

    /// A view built on a worker for `loaded`; built here instead when HEAD's policy or the feed
    /// changed meanwhile.
    pub fn view_ready(
        &mut self,
        view: ChangesView,
        loaded: &LoadedPolicy,
        events: &VecDeque<AuditEvent>,
    ) {
        let current = self
            .head
            .as_ref()
            .is_some_and(|head| Arc::ptr_eq(head, &view.head));
        if current && view.requests == recent_requests(events) {
            self.show(view, events);
        } else {
            crate::console::discard(view);
            self.recompute(loaded, events);
        }
    }

    /// What the screen and the commit dialog read: the view, with the working tree's
    /// revocations (named from the feed where it knows the token).
    fn show(&mut self, view: ChangesView, events: &VecDeque<AuditEvent>) {
        let ChangesView {
            requests,
            mut diff,
            replay,
            ..
        } = view;
        if let Some(Ok(git)) = &self.git {
            let mut revocations = git.revocation_changes.clone();
            for change in &mut revocations {
                name_revoked_token(change, events);
            }
            diff.changes.extend(revocations);
        }
        self.replayed = requests.len();
        let old = (
            std::mem::replace(&mut self.diff, diff),
            std::mem::replace(&mut self.replay, replay),
        );
        crate::console::discard(old);
    }

    /// Commits not yet pushed, when the last status is known to be current.
    fn ahead(&self) -> Option<usize> {
        match &self.git {
            Some(Ok(view))
                if self.pending_head.is_none()
                    || view.status.head.as_deref() == self.pending_head.as_deref() =>
            {
                Some(view.status.ahead)
            }
            _ => None,
        }
    }

    /// The files a commit would take: the policy when it has changes (saved or not), and
    /// revocations.toml and keys.toml when they have.
    fn files_to_commit(&self, policy_name: &str, dirty: bool, saved: &str) -> Vec<String> {
        let mut files = Vec::new();
        let view = match &self.git {
            Some(Ok(view)) => Some(view),
            _ => None,
        };
        if dirty || view.is_none_or(|v| !v.policy_clean(saved)) {
            files.push(policy_name.to_string());
        }
        if view.is_some_and(|v| !matches!(v.revocations_file.as_str(), "clean" | "missing")) {
            files.push(policy::revocations::FILE.to_string());
        }
        if view.is_some_and(|v| !matches!(v.keys_file.as_str(), "clean" | "missing")) {
            files.push(crate::keyset::MANIFEST.to_string());
        }
        files
    }

    /// Nothing to commit in any of the files, as far as the last status knows; `saved` is the text
    /// the console last wrote, so a status taken before that write does not count.
    fn file_clean(&self, saved: &str) -> bool {
        matches!(&self.git, Some(Ok(view))
            if view.policy_clean(saved)
                && matches!(view.revocations_file.as_str(), "clean" | "missing")
                && matches!(view.keys_file.as_str(), "clean" | "missing"))
    }
}

impl Screen for ChangesState {
    fn title(&self) -> &'static str {
        "Changes"
    }

    fn scope(&self) -> Scope {
        Scope::Changes
    }

    fn hints(&self) -> Vec<Hint> {
        match self.focus {
            ChangesPane::Diff => hints(&[
                Action::Commit,
                Action::Push,
                Action::Pull,
                Action::ToggleDiff,
                Action::FocusNext,
            ]),
            ChangesPane::History => hints(&[
                Action::FocusNext,
                Action::Commit,
                Action::Push,
                Action::Pull,
            ]),
        }
    }

    fn on_enter(&mut self, cx: &mut Cx) {
        if cx.has_repo {
            cx.refresh_git();
            if self.history.is_none() {
                cx.submit(Job::History);
            }
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, app: &App) {
        render(frame, area, app);
    }

    fn on_action(&mut self, action: Action, cx: &mut Cx) {
        self.act(action, cx);
    }

    fn on_prompt(&mut self, what: &dyn Any, text: &str, cx: &mut Cx) -> Result<(), String> {
        if let Some(ChangesAsk::CommitMessage) = what.downcast_ref::<ChangesAsk>() {
            self.commit_message_entered(text.to_string(), cx);
        }
        Ok(())
    }

    fn on_confirm(&mut self, what: &dyn Any, cx: &mut Cx) {
        if let Some(ChangesAsk::Commit(message)) = what.downcast_ref::<ChangesAsk>() {
            // The status may have changed while the dialog was open.
            match self.commit_disabled(cx) {
                Some(reason) => cx.flash(Level::Warn, reason),
                None => cx.commit(message.clone()),
            }
        }
    }

    fn on_result(&mut self, result: JobResult, cx: &mut Cx) -> Option<JobResult> {
        self.result(result, cx)
    }
}

/// What a Changes prompt or confirmation is about.
enum ChangesAsk {
    CommitMessage,
    Commit(String),
}

impl ChangesState {
    fn act(&mut self, action: Action, cx: &mut Cx) {
        let history_len = match &self.history {
            Some(Ok(entries)) => entries.len(),
            _ => 0,
        };
        if self.focus == ChangesPane::History
            && move_cursor(&mut self.history_selected, history_len, action)
        {
            return;
        }
        match action {
            Action::FocusNext | Action::FocusPrev => {
                self.focus = match self.focus {
                    ChangesPane::Diff => ChangesPane::History,
                    ChangesPane::History => ChangesPane::Diff,
                }
            }
            Action::ToggleDiff => {
                self.show_text = !self.show_text;
                self.request_text_diff(cx);
            }
            Action::Commit => self.start_commit(cx),
            Action::Push => self.start_push(cx),
            Action::Pull => match pull_disabled(cx) {
                Some(reason) => cx.flash(Level::Warn, reason),
                None => cx.submit(Job::Pull),
            },
            _ => {}
        }
    }

    /// Why a commit would be refused now, or `None` when it may go ahead.
    pub fn commit_disabled(&self, cx: &Cx) -> Option<String> {
        if let Some(reason) = git_required(cx) {
            return Some(format!("Commit disabled: {reason}"));
        }
        if cx.editor_unapplied {
            return Some("Commit disabled: close the editor first (Esc applies)".into());
        }
        let Some(loaded) = cx.policy() else {
            return Some("Commit refused: the policy does not parse".into());
        };
        let revocation_errors = match &self.git {
            Some(Ok(view)) => view.revocation_errors.as_slice(),
            _ => &[],
        };
        if let Some(refusal) = crate::repo::commit_refusal(
            &cx.policy_file_name(),
            Ok(loaded),
            crate::policy::revocations::FILE,
            revocation_errors,
        ) {
            return Some(format!("Commit refused: {}", refusal.summary()));
        }
        if !cx.dirty() && self.file_clean(cx.saved_text()) {
            return Some("Commit disabled: nothing to commit".into());
        }
        None
    }

    fn push_disabled(&self, cx: &Cx) -> Option<String> {
        if let Some(reason) = git_required(cx) {
            return Some(format!("Push disabled: {reason}"));
        }
        if self.ahead() == Some(0) {
            return Some("Push disabled: nothing committed".into());
        }
        None
    }

    /// The files a commit would take, joined by "and" ("clients.toml and keys.toml").
    fn committed_files(&self, cx: &Cx) -> String {
        let files = self.files_to_commit(&cx.policy_file_name(), cx.dirty(), cx.saved_text());
        if files.is_empty() {
            cx.policy_file_name()
        } else {
            files.join(" and ")
        }
    }

    fn start_commit(&mut self, cx: &mut Cx) {
        if let Some(reason) = self.commit_disabled(cx) {
            cx.flash(Level::Warn, reason);
            return;
        }
        let changes = &self.diff.changes;
        let revocations = changes
            .iter()
            .filter(|c| matches!(c.kind, policy::ChangeKind::Revocation { added: true, .. }))
            .count();
        let summary = match changes.as_slice() {
            [] => format!("Update {}", self.committed_files(cx)),
            [
                policy::Change {
                    kind:
                        policy::ChangeKind::Revocation {
                            id,
                            reason,
                            added: true,
                            ..
                        },
                    ..
                },
            ] => format!(
                "Revoke {}…: {reason}",
                id.chars().take(16).collect::<String>()
            ),
            many if revocations == many.len() => {
                format!("Revoke {revocations} token blocks")
            }
            [one] => one
                .to_string()
                .trim_start_matches("+ WIDENS ")
                .trim_start_matches("+ ")
                .trim_start_matches("- ")
                .to_string(),
            many => format!(
                "Update {}: {} changes",
                self.committed_files(cx),
                many.len()
            ),
        };
        cx.prompt(
            ChangesAsk::CommitMessage,
            "Commit message",
            "Enter reviews the commit",
            &summary,
        );
    }

    /// Shows what a commit with `message` takes, to confirm.
    pub fn commit_message_entered(&mut self, message: String, cx: &mut Cx) {
        let mut lines = vec![format!(
            "Commit {}: \"{message}\"",
            self.committed_files(cx)
        )];
        if cx.dirty() {
            lines.push("(unsaved edits are saved first)".into());
        }
        for change in self.diff.changes.iter().take(8) {
            lines.push(change.to_string());
        }
        if self.diff.changes.len() > 8 {
            lines.push(format!("… and {} more", self.diff.changes.len() - 8));
        }
        cx.confirm(ChangesAsk::Commit(message), "Commit", lines);
    }

    /// HEAD's text arrived with the git status: reuse the current policy when the text is the
    /// same (the usual, clean case), parse it on a worker when it changed, else keep what we have.
    fn head_read(&mut self, head_text: Option<String>, cx: &mut Cx) {
        let Some(text) = head_text else {
            self.head = Some(Arc::new(Policy::default()));
            self.head_text = None;
            cx.rebuild_views();
            return;
        };
        if self.head_text.as_deref() == Some(text.as_str()) {
            return;
        }
        if text == cx.text()
            && let Some(loaded) = cx.policy()
        {
            self.head = Some(Arc::new(loaded.policy.clone()));
            self.head_text = Some(text);
            cx.rebuild_views();
            return;
        }
        if !cx.job_running(|job| matches!(job, Job::ParsePolicy { text: t } if *t == text)) {
            cx.submit(Job::ParsePolicy { text });
        }
    }

    /// While the text diff is shown, diffs the working buffer against HEAD on a worker when
    /// either changed since the last diff (and no such diff is already running).
    pub fn request_text_diff(&mut self, cx: &mut Cx) {
        if !self.show_text || cx.policy().is_none() {
            return;
        }
        let Some(Ok(view)) = &self.git else {
            return;
        };
        let head = view.head_text.clone().unwrap_or_default();
        let working = cx.text();
        let fresh = self
            .buffer_diff
            .as_ref()
            .is_some_and(|(h, w, _)| *h == head && w == working);
        let running = cx.job_running(
            |job| matches!(job, Job::TextDiff { head: h, working: w } if *h == head && w == working),
        );
        if !fresh && !running {
            cx.submit(Job::TextDiff {
                head,
                working: working.to_string(),
            });
        }
    }

    fn start_push(&mut self, cx: &mut Cx) {
        if let Some(reason) = self.push_disabled(cx) {
            cx.flash(Level::Warn, reason);
            return;
        }
        self.last_push = Some("pushing…".into());
        cx.submit(Job::Push);
    }

    /// A job result this screen asked for; the others are handed back.
    fn result(&mut self, result: JobResult, cx: &mut Cx) -> Option<JobResult> {
        match result {
            JobResult::Git(result) => {
                if let Ok(view) = &result
                    && view.status.head.is_some()
                    && view.status.head == self.pending_head
                {
                    self.pending_head = None;
                }
                let head_text = result.as_ref().ok().map(|view| view.head_text.clone());
                self.git = Some(result);
                if let Some(head_text) = head_text {
                    self.head_read(head_text, cx);
                }
                cx.rebuild_views();
            }
            JobResult::TextDiff {
                head,
                working,
                diff,
            } => self.buffer_diff = Some((head, working, diff)),
            JobResult::Committed(Ok(id)) => {
                let short: String = id.chars().take(8).collect();
                self.pending_head = Some(id.clone());
                cx.flash(Level::Success, format!("committed {short}; p pushes"));
                cx.refresh_git();
                cx.submit(Job::History);
                cx.submit(Job::ReadRevocations);
            }
            JobResult::Committed(Err(e)) => {
                cx.saved_text_unknown();
                cx.flash(Level::Error, format!("not committed (edits kept): {e}"));
                cx.refresh_git();
            }
            JobResult::PushProgress(step) => {
                self.push_steps += 1;
                self.last_push = Some(format!("pushing: {step}"));
            }
            JobResult::Pushed(Ok(outcome)) => self.pushed(outcome, cx),
            JobResult::Pushed(Err(e)) => {
                self.last_push = Some(format!("failed: {e}"));
                cx.flash(
                    Level::Error,
                    format!("push failed (your commits are kept): {e}"),
                );
                cx.refresh_git();
            }
            JobResult::Pulled(Ok(n)) => {
                cx.flash(Level::Success, format!("pulled {n} commit(s)"));
                cx.reload(None);
                cx.submit(Job::ReadRevocations);
                cx.refresh_git();
                cx.submit(Job::History);
            }
            JobResult::Pulled(Err(e)) => cx.flash(Level::Error, format!("pull failed: {e}")),
            JobResult::HeadParsed { text, policy } => {
                match policy {
                    Ok(policy) => self.head = Some(Arc::new(policy)),
                    Err(e) => {
                        self.head = None;
                        cx.flash(
                            Level::Warn,
                            format!("clients.toml at HEAD does not parse: {e}"),
                        );
                    }
                }
                self.head_text = Some(text);
                cx.rebuild_views();
                crate::console::release_free_memory();
            }
            JobResult::History(result) => {
                self.history = Some(result);
                self.history_selected = 0;
            }
            other => return Some(other),
        }
        None
    }

    fn pushed(&mut self, outcome: PushOutcome, cx: &mut Cx) {
        let text = match outcome {
            PushOutcome::Pushed { commits } => format!("pushed {commits} commit(s)"),
            PushOutcome::UpToDate => "already up to date".to_string(),
            PushOutcome::Rebased {
                upstream,
                commits,
                notes,
            } => {
                let mut text = format!(
                    "the remote had moved on: replayed {commits} commit(s) onto {upstream} and pushed"
                );
                for note in notes {
                    text.push_str(&format!("; {note}"));
                }
                // The rebase rewrote the working files: the buffer follows them.
                cx.reload(Some(text.clone()));
                text
            }
        };
        self.last_push = Some(text.clone());
        // A rebased push rewrote the commit: the next status is the one to believe.
        self.pending_head = None;
        cx.flash(Level::Success, text);
        cx.refresh_git();
        cx.submit(Job::History);
        if cx.has_server {
            cx.submit(Job::ServerSync);
            // With a fleet.toml every replica is nudged and the push followed to each.
            cx.submit(Job::FleetNudge);
        }
    }
}

fn git_required(cx: &Cx) -> Option<String> {
    (!cx.has_repo).then(|| format!("{} is not in a git repository", cx.policy_path().display()))
}

fn pull_disabled(cx: &Cx) -> Option<String> {
    if let Some(reason) = git_required(cx) {
        return Some(format!("Pull disabled: {reason}"));
    }
    if cx.dirty() {
        return Some("Pull disabled: save or undo your edits first".into());
    }
    None
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let state = &app.screens.changes;
    let [status_area, body] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(4)]).areas(area);
    frame.render_widget(
        Paragraph::new(status_line(app)).block(pane(app, "Status", false)),
        status_area,
    );
    let [diff_area, history_area] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(body);
    let [diff_area, replay_area] = Layout::vertical([
        Constraint::Min(4),
        Constraint::Length(if state.replay.is_empty() { 3 } else { 6 }),
    ])
    .areas(diff_area);

    let (title, lines) = if state.focus == ChangesPane::History {
        selected_commit_lines(app)
    } else if state.head.is_none() {
        let why = if app.has_repo {
            "reading the committed policy…"
        } else {
            "not a git repository: there is no committed policy to compare with"
        };
        (
            diff_title("Semantic diff", "", diff_area.width),
            vec![Line::from(Span::styled(why, app.theme.muted()))],
        )
    } else if state.show_text {
        (
            diff_title("Text diff", " (t: semantic)", diff_area.width),
            text_diff_lines(app),
        )
    } else {
        (
            diff_title("Semantic diff", " (t: text)", diff_area.width),
            semantic_lines(app, &state.diff),
        )
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane(
            app,
            &title,
            state.focus == ChangesPane::Diff,
        )),
        diff_area,
    );

    let replay: Vec<Line> = if state.replay.is_empty() {
        vec![Line::from(Span::styled(
            format!(
                "no recent decision changes ({} recent requests replayed)",
                state.replayed
            ),
            app.theme.muted(),
        ))]
    } else {
        state
            .replay
            .iter()
            .map(|row| {
                let (from, to) = (verdict(row.before.allowed), verdict(row.after.allowed));
                let style = if row.after.allowed {
                    app.theme.warn()
                } else {
                    app.theme.text()
                };
                Line::from(Span::styled(
                    format!("{}: {from} → {to}", row.request),
                    style,
                ))
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(replay)
            .wrap(Wrap { trim: false })
            .block(pane(app, "Decisions this change alters", false)),
        replay_area,
    );

    let items: Vec<ListItem> = match &state.history {
        None => vec![ListItem::new("(loading…)")],
        Some(Err(e)) => vec![ListItem::new(format!("✗ {e}"))],
        Some(Ok(entries)) => entries
            .iter()
            .map(|entry| {
                let short: String = entry.commit.id.chars().take(7).collect();
                let widening = match &entry.changes {
                    Ok(diff) if diff.widening().next().is_some() => " +widens",
                    _ => "",
                };
                let revokes = match &entry.changes {
                    Ok(diff)
                        if diff.changes.iter().any(|c| {
                            matches!(c.kind, policy::ChangeKind::Revocation { added: true, .. })
                        }) =>
                    {
                        " +revokes"
                    }
                    _ => "",
                };
                ListItem::new(Line::from(vec![
                    Span::styled(short, app.theme.accent()),
                    Span::raw(format!(" {}", first_line(&entry.commit.message))),
                    Span::styled(widening, app.theme.warn()),
                    Span::styled(revokes, app.theme.accent()),
                ]))
            })
            .collect(),
    };
    let focused = state.focus == ChangesPane::History;
    let mut list_state =
        ListState::default().with_selected(focused.then_some(state.history_selected));
    frame.render_stateful_widget(
        list_pane(app, "History", focused, items),
        history_area,
        &mut list_state,
    );
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("")
}

fn status_line(app: &App) -> Line<'static> {
    if !app.has_repo {
        return Line::from("not a git repository: edits are saved to the file only");
    }
    let dirty = if app.is_dirty() {
        "unsaved edits · "
    } else {
        ""
    };
    match &app.screens.changes.git {
        None => Line::from(format!("{dirty}reading git status…")),
        Some(Err(e)) => Line::from(Span::styled(format!("✗ git: {e}"), app.theme.error())),
        Some(Ok(view)) => {
            let status = &view.status;
            let upstream = status.upstream.clone().unwrap_or("(no upstream)".into());
            let push = app
                .screens
                .changes
                .last_push
                .as_ref()
                .map_or(String::new(), |p| format!(" · last push: {p}"));
            let mut revocations = match view.revocations_file.as_str() {
                "clean" | "missing" => String::new(),
                state => format!(" · revocations.toml {state}"),
            };
            if !matches!(view.keys_file.as_str(), "clean" | "missing") {
                revocations.push_str(&format!(" · keys.toml {}", view.keys_file));
            }
            let server = &app.screens.server;
            let rollout = server.rollout.as_ref().map_or(String::new(), |rollout| {
                let view = server.fleet.as_ref().and_then(|f| f.as_ref().ok());
                format!(" · {}", rollout.summary(view))
            });
            Line::from(format!(
                "{dirty}branch {} → {upstream} · ahead {} behind {} · clients.toml {}{revocations}{push}{rollout}",
                status.branch, status.ahead, status.behind, status.file
            ))
        }
    }
}

pub fn semantic_lines(app: &App, diff: &PolicyDiff) -> Vec<Line<'static>> {
    if diff.changes.is_empty() {
        return vec![Line::from(Span::styled(
            "no policy changes",
            app.theme.muted(),
        ))];
    }
    diff.changes
        .iter()
        .map(|change| {
            let style = if change.widens {
                app.theme.warn()
            } else {
                app.theme.text()
            };
            Line::from(Span::styled(change.to_string(), style))
        })
        .collect()
}

/// What both diff views compare, as their titles say.
const BUFFER_VS_HEAD: &str = "working buffer (unsaved edits included) vs HEAD";

/// "Semantic diff: working buffer (unsaved edits included) vs HEAD (t: text)", shortened to
/// "Semantic: buffer+unsaved vs HEAD (t: text)" where the pane is too narrow for it.
fn diff_title(what: &str, hint: &str, width: u16) -> String {
    let full = format!("{what}: {BUFFER_VS_HEAD}{hint}");
    if full.chars().count() + 4 <= usize::from(width) {
        full
    } else {
        let what = what.trim_end_matches(" diff");
        format!("{what}: buffer+unsaved vs HEAD{hint}")
    }
}

fn text_diff_lines(app: &App) -> Vec<Line<'static>> {
    let Some(Ok(view)) = &app.screens.changes.git else {
        return vec![Line::from("(no git status yet)")];
    };
    let head = view.head_text.as_deref().unwrap_or_default();
    let (policy_diff, stale) = match &app.screens.changes.buffer_diff {
        Some((h, w, diff)) => (Some(diff), h != head || w != app.text()),
        None => (None, true),
    };
    let mut text = String::new();
    match policy_diff {
        Some(Ok(diff)) => text.push_str(diff),
        Some(Err(e)) => text.push_str(&format!("(cannot diff the buffer: {e})\n")),
        None => {}
    }
    text.push_str(&view.revocations_diff);
    let mut lines = Vec::new();
    if stale {
        lines.push(Line::from(Span::styled(
            "(diffing the working buffer…)",
            app.theme.muted(),
        )));
    }
    if text.is_empty() {
        if !stale {
            lines.push(Line::from(Span::styled("no changes", app.theme.muted())));
        }
        return lines;
    }
    lines.extend(text.lines().map(|line| {
        let style = match line.chars().next() {
            Some('+') => app.theme.added(),
            Some('-') => app.theme.removed(),
            _ => app.theme.text(),
        };
        Line::from(Span::styled(line.to_string(), style))
    }));
    lines
}

/// Names a revoked block by the caller the server saw use it, when the audit feed has it.
fn name_revoked_token(
    change: &mut policy::Change,
    events: &std::collections::VecDeque<AuditEvent>,
) {
    if let policy::ChangeKind::Revocation { id, what, .. } = &mut change.kind
        && what.is_none()
        && let Some(caller) = events
            .iter()
            .rev()
            .find(|e| e.revocation_id.as_deref() == Some(id.as_str()))
            .and_then(|e| e.caller.as_deref())
    {
        *what = Some(format!(
            "the token {caller} used (seen at the server) and every token delegated from it"
        ));
    }
}

fn selected_commit_lines(app: &App) -> (String, Vec<Line<'static>>) {
    let Some(Ok(entries)) = &app.screens.changes.history else {
        return ("Commit".into(), vec![]);
    };
    let Some(entry) = entries.get(app.screens.changes.history_selected) else {
        return ("Commit".into(), vec![]);
    };
    let short: String = entry.commit.id.chars().take(8).collect();
    let mut lines = vec![Line::from(format!(
        "{} <{}> · {}",
        entry.commit.author,
        entry.commit.email,
        first_line(&entry.commit.message)
    ))];
    match &entry.changes {
        Ok(diff) => lines.extend(semantic_lines(app, diff)),
        Err(e) => lines.push(Line::from(format!("cannot read this commit's policy: {e}"))),
    }
    (format!("Commit {short}"), lines)
}
