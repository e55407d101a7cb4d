//! The console's state and `update`: keys become actions through the keymap, actions change
//! state or queue jobs, job results change state. Nothing here touches the terminal, the disk,
//! git or the network; drawing is `ui::render`, work is `jobs::execute`.

use std::collections::VecDeque;
use std::path::PathBuf;

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui_textarea::TextArea;

use super::complete::{Choices, Completion, Listing, Stage};
use super::jobs::{Derived, Job, JobResult, PolicyInput, PolicyPurpose, ViewInputs};
use super::keymap::{Action, Keymap, Scope};
use super::screens::{Asked, Cx, CxView, Request, ScreenId, Screens};
use super::screens::{changes::ChangesView, delegations::TreeView};
use super::theme::Theme;
use crate::policy::{DelegationTree, EditSession, Finding, LoadedPolicy};

/// How often the console asks the fleet how it stands when no push is being followed.
const FLEET_POLL_SECONDS: i64 = 3;

/// How loud a flash message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Success,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub level: Level,
    pub text: String,
    pub at: i64,
}

/// How long a flash stays, in seconds (errors stay until replaced).
const FLASH_SECONDS: i64 = 6;

/// How many status messages the Messages screen keeps (the oldest are dropped first).
pub const MESSAGES_KEPT: usize = 1_000;

/// Something that must be confirmed before it happens. Focus starts on Cancel. Besides the
/// screens' own questions, only what is the whole console's: revocation (several screens start
/// it), restoring what a previous session left, and the conflicts dialog's reset.
#[derive(Debug, Clone)]
pub enum Confirmation {
    /// A screen's own question, answered to that screen.
    Screen(Asked),
    /// Revoke a block id (`what` says which token and what it cuts off).
    RevokeToken {
        id: String,
        what: String,
        reason: String,
    },
    /// Restore unsaved edits a previous session left behind.
    Recover { text: String },
    /// Reopen the raw editor on text a previous session typed there and never applied.
    RecoverEditor { text: String },
    /// Reset the branch to its upstream (local work kept in recovery).
    ResetToUpstream,
    /// Stage a tightening proposal's edits, each as its own undoable edit.
    Tighten { edits: Vec<crate::policy::Edit> },
}

/// What a one-line prompt is for: a screen's own prompt, or the console's revocation reason.
#[derive(Debug, Clone)]
pub enum PromptKind {
    /// A screen's own prompt, answered to that screen; an empty answer cancels unless
    /// `empty_ok`.
    Screen { asked: Asked, empty_ok: bool },
    /// The reason for revoking `id`; `what` names the token.
    RevocationReason { id: String, what: String },
}

/// Modal overlays; at most one at a time.
pub enum Popup {
    Help {
        filter: String,
        scroll: usize,
    },
    Confirm {
        what: Confirmation,
        title: String,
        lines: Vec<String>,
        yes_focused: bool,
    },
    Prompt {
        kind: PromptKind,
        title: String,
        hint: String,
        input: TextArea<'static>,
        /// Why the last Enter was refused (the text stays for fixing).
        error: Option<String>,
        /// What the line completes from, and the candidates for what is typed.
        choices: Choices,
        completion: Completion,
    },
    Palette {
        input: TextArea<'static>,
        history_at: Option<usize>,
        /// The commands (or a command's arguments) matching what is typed; with nothing
        /// typed, every command.
        completion: Completion,
    },
    /// Unsaved edits at quit: save, discard or cancel.
    QuitDirty {
        choice: usize,
    },
    /// A list a screen offered; the item picked goes to its `on_prompt`.
    Picker {
        asked: Asked,
        title: String,
        items: Vec<String>,
        selected: usize,
    },
    /// What start-up found wrong (config, keys, ports): every notice, not just the first.
    Notices {
        scroll: usize,
    },
    /// Conflicts of a rebase (unsaved edits vs the file, or commits vs the upstream).
    Conflicts(super::disk::ConflictsDialog),
    /// All of one entry (an audit event, a key, a finding, a message), wrapped and scrolled
    /// by whole wrapped lines; `y` copies the text.
    Detail {
        title: String,
        lines: Vec<String>,
        scroll: usize,
    },
}

/// Where the console points and how it runs; built by the launcher (or a test).
pub struct Context {
    pub policy_path: PathBuf,
    pub policy_text: String,
    pub has_repo: bool,
    /// The server's URL and whether this process runs it.
    pub server: Option<(String, bool)>,
    pub operator: Option<String>,
    /// Identities with a client certificate in the workspace (for demo flows).
    pub demo_clients: Vec<String>,
    pub readonly: bool,
    pub theme: Theme,
    pub keymap: Keymap,
    pub now: i64,
    /// Frozen clock for tests and snapshots.
    pub frozen_clock: bool,
    /// Problems found at start-up (config file, keys) to show once.
    pub notices: Vec<String>,
    /// Where `y` copies.
    pub clipboard: super::clipboard::Clipboard,
    pub mouse: bool,
    /// Seconds without activity after which an identity is marked quiet.
    pub quiet_after: i64,
    /// Seconds between background fetches of the upstream (0: never).
    pub fetch_interval: i64,
    /// The audit trail of the server this console runs (its live file; rotated files beside
    /// it), read for the unused-access marks; `None` when the console runs none.
    pub audit_trail: Option<PathBuf>,
    /// Access unused this many seconds is marked unused.
    pub unused_window: i64,
    /// The demo workspace this run created (its first run): said inside the console, where
    /// it is read, not only on the terminal before the console took it over.
    pub first_run: Option<PathBuf>,
    /// Unsaved edits a previous session left behind (offered for restoring), and whether this
    /// session keeps its own unsaved edits for recovery.
    pub recovered: Option<String>,
    pub keep_unsaved: bool,
    /// Text a previous session typed in the raw editor and never applied (offered for
    /// reopening the editor with it).
    pub recovered_editor: Option<String>,
}

impl Context {
    /// A console on `policy_text` (read from `policy_path`) with every other setting at its
    /// default: no repository, no server, read-write, the default theme and keys, the clock
    /// frozen at `now`. Callers change what they need with struct update syntax.
    pub fn new(policy_path: PathBuf, policy_text: String, now: i64) -> Context {
        Context {
            policy_path,
            policy_text,
            has_repo: false,
            server: None,
            operator: None,
            demo_clients: Vec::new(),
            readonly: false,
            theme: Theme::built_in("default").expect("the default theme is built in"),
            keymap: Keymap::defaults(),
            now,
            frozen_clock: true,
            notices: Vec::new(),
            clipboard: super::clipboard::Clipboard::Osc52,
            mouse: false,
            quiet_after: 3_600,
            fetch_interval: super::config::DEFAULT_FETCH_INTERVAL,
            audit_trail: None,
            unused_window: super::config::DEFAULT_UNUSED_WINDOW,
            first_run: None,
            recovered: None,
            keep_unsaved: false,
            recovered_editor: None,
        }
    }
}

pub struct App {
    screen: ScreenId,
    pub(crate) running: bool,
    pub(crate) popup: Option<Popup>,
    pub(crate) flash: Option<Flash>,
    /// Every status message, oldest first (at most `MESSAGES_KEPT`): the Messages screen.
    pub(crate) messages: VecDeque<Flash>,
    pub(crate) keymap: Keymap,
    pub(crate) theme: Theme,
    pub(crate) readonly: bool,
    pub(crate) now: i64,
    frozen_clock: bool,
    pub(crate) policy_path: PathBuf,
    pub(crate) has_repo: bool,
    pub(crate) server: Option<(String, bool)>,
    pub(crate) operator: Option<String>,
    pub(crate) demo_clients: Vec<String>,
    pub(crate) clipboard: super::clipboard::Clipboard,
    pub(crate) mouse: bool,

    /// The policy being edited; `None` while the file on disk does not parse.
    pub(crate) session: Option<EditSession>,
    /// The text on disk (as last read or saved).
    pub(crate) saved_text: String,
    /// Why the file does not parse, when it does not.
    pub(crate) broken: Option<Finding>,
    pub(crate) tree: DelegationTree,

    /// Every screen's state; each screen owns its own (see `screens::Screen`).
    pub(crate) screens: Screens,

    /// A `/` filter being typed (the screen's filter updates as it changes).
    pub(crate) filter_input: Option<TextArea<'static>>,
    pub(crate) palette_history: Vec<String>,
    /// The directory a path's pick-list was last read from (by a job), and the one being read.
    pub(crate) listing: Listing,
    listing_asked: Option<String>,

    /// Jobs queued for the workers, with ids.
    pub(crate) outbox: Vec<(u64, Job)>,
    /// Jobs running, by id, with what the spinner says.
    pub(crate) in_flight: Vec<(u64, Job)>,
    next_job: u64,
    pub(crate) spinner: usize,
    /// Text to put on the clipboard (the terminal loop writes it as OSC 52).
    pub(crate) copied: Option<String>,
    /// The terminal loop should hand the terminal to `$EDITOR` on this file.
    pub(crate) external_edit: Option<PathBuf>,
    last_poll: i64,
    last_fleet_poll: i64,
    last_git: i64,
    /// Seconds between background fetches (0: never), when the last one started, and the
    /// error the last one failed with (said once in Messages, not every interval).
    fetch_interval: i64,
    last_fetch: i64,
    fetch_failing: Option<String>,
    /// Saves in flight, oldest first: the text each one writes.
    saving: VecDeque<String>,
    /// Quit once the save in flight succeeds (the quit dialog's "save").
    quit_after_save: bool,
    /// The job reading an edited policy, while one runs: input waits for it (and is replayed
    /// in order after), so no key acts on a policy about to change.
    pub(crate) policy_pending: Option<u64>,
    typeahead: Vec<Typed>,
    /// The width of the last frame (the title bar's layout depends on it) and its height
    /// (how far the detail popup scrolls).
    pub(crate) screen_width: std::cell::Cell<u16>,
    pub(crate) screen_height: std::cell::Cell<u16>,
    keep_unsaved: bool,
    /// What the recovery file holds (None: no file), so it is written only on change.
    kept: Option<String>,
    /// What the raw editor's recovery file holds, and since when (first, last keystroke) the
    /// editor has changes not yet written there.
    editor_kept: Option<String>,
    editor_unwritten: Option<(i64, i64)>,
    /// Start-up notices (config, keys, ports), shown at start and with `:notices`.
    pub(crate) notices: Vec<String>,
    /// Dialogs waiting for the one on screen to close, in order.
    deferred: VecDeque<Popup>,
    /// The watch on the working files (see `console::disk`).
    pub(crate) disk: super::disk::DiskWatch,
    /// Unused access: the audit trail's usage and the marks of the policy.
    pub(crate) unused: super::unused_marks::UnusedMarks,
    /// A tightening proposal's edits being applied one at a time (each its own undo step).
    staging: Option<Staging>,
}

/// The edits of a confirmed tightening not applied yet, and how many there were.
struct Staging {
    rest: VecDeque<crate::policy::Edit>,
    total: usize,
}

/// The raw editor's text is written for recovery once typing pauses this long (seconds)…
const EDITOR_KEEP_QUIET: i64 = 1;
/// …or, during non-stop typing, at least this often.
const EDITOR_KEEP_AT_MOST: i64 = 5;

/// Input that arrived while the policy was being read.
enum Typed {
    Key(KeyEvent),
    Paste(String),
}

impl App {
    /// The console with the policy read and its views built before it returns (tests, benches).
    pub fn new(context: Context) -> App {
        App::open(context, false)
    }

    /// The console as a terminal opens it: the policy is read on a worker, so the first frame
    /// (saying what is being read) is drawn at once whatever the file's size; keys typed
    /// meanwhile wait for it, as they wait for an edit.
    pub fn start(context: Context) -> App {
        App::open(context, true)
    }

    fn open(context: Context, read_on_worker: bool) -> App {
        let keymap = if context.readonly {
            context.keymap.read_only()
        } else {
            context.keymap
        };
        let mut app = App {
            screen: ScreenId::Clients,
            running: true,
            popup: None,
            flash: None,
            messages: VecDeque::new(),
            keymap,
            theme: context.theme,
            readonly: context.readonly,
            now: context.now,
            frozen_clock: context.frozen_clock,
            policy_path: context.policy_path,
            has_repo: context.has_repo,
            server: context.server,
            operator: context.operator,
            demo_clients: context.demo_clients,
            clipboard: context.clipboard,
            mouse: context.mouse,
            session: None,
            saved_text: String::new(),
            broken: None,
            tree: DelegationTree::default(),
            screens: Screens::default(),
            filter_input: None,
            palette_history: Vec::new(),
            listing: Listing::default(),
            listing_asked: None,
            outbox: Vec::new(),
            in_flight: Vec::new(),
            next_job: 1,
            spinner: 0,
            copied: None,
            external_edit: None,
            last_poll: i64::MIN,
            last_fleet_poll: i64::MIN,
            last_git: i64::MIN,
            fetch_interval: context.fetch_interval,
            last_fetch: context.now,
            fetch_failing: None,
            saving: VecDeque::new(),
            quit_after_save: false,
            policy_pending: None,
            typeahead: Vec::new(),
            screen_width: std::cell::Cell::new(0),
            screen_height: std::cell::Cell::new(0),
            keep_unsaved: context.keep_unsaved,
            kept: None,
            editor_kept: None,
            editor_unwritten: None,
            notices: context.notices,
            deferred: VecDeque::new(),
            disk: Default::default(),
            unused: super::unused_marks::UnusedMarks::new(
                context.audit_trail,
                context.unused_window,
            ),
            staging: None,
        };
        app.screens.server.quiet_after = context.quiet_after;
        if read_on_worker {
            app.saved_text = context.policy_text;
            app.derive(
                PolicyInput::Text(app.saved_text.clone()),
                PolicyPurpose::Start,
            );
        } else {
            app.load_text(&context.policy_text);
        }
        if !app.notices.is_empty() {
            app.popup = Some(Popup::Notices { scroll: 0 });
        }
        if let Some(dir) = &context.first_run {
            app.welcome(dir);
        }
        if app.has_repo {
            app.submit(Job::GitStatus);
            app.last_git = app.now;
        }
        if app.server.is_some() {
            app.submit(Job::ServerPublicKey);
        }
        app.read_audit_trail();
        if app.readonly {
            // A read-only console is a reviewer's: it opens on the review of the history.
            app.go_to(ScreenId::Review);
        }
        let recovered_editor = context.recovered_editor.filter(|t| *t != app.saved_text);
        let recovered = context.recovered.filter(|t| *t != app.saved_text);
        if app.readonly && (recovered.is_some() || recovered_editor.is_some()) {
            // Restoring is an edit: read-only mode leaves the kept text on disk, untouched.
            app.notices.push(
                "a previous session left unsaved edits; they stay kept: start without read-only to restore them".into(),
            );
            app.popup = Some(Popup::Notices { scroll: 0 });
        } else if let Some(text) = recovered_editor {
            // The editor opened on the session's text, so its text carries those edits too.
            // The kept file is this session's to replace or remove only once it is restored.
            app.kept = recovered;
            let (added, removed) = line_changes(&app.saved_text, &text);
            app.offer(
                Confirmation::RecoverEditor { text },
                "Unapplied editor text found",
                vec![
                    "A previous session ended with text typed in the raw editor (i) that was"
                        .into(),
                    format!(
                        "never applied: {added} line(s) added, {removed} removed against the file."
                    ),
                    "Restore opens the editor with it (Esc applies, ctrl-s saves).".into(),
                    "Cancel leaves it on disk until this session edits or saves.".into(),
                ],
            );
        } else if let Some(text) = recovered {
            app.kept = Some(text.clone());
            let (added, removed) = line_changes(&app.saved_text, &text);
            app.offer(
                Confirmation::Recover { text },
                "Unsaved edits found",
                vec![
                    "A previous session ended with unsaved edits to this clients.toml".into(),
                    format!(
                        "({added} line(s) added, {removed} removed against the file). Restore them as unsaved edits?"
                    ),
                    "Cancel leaves them on disk until this session edits or saves.".into(),
                ],
            );
        }
        app
    }

    /// The first run's notice: where the demo workspace is, and what to try first (keys from
    /// the keymap). Kept in Messages too.
    fn welcome(&mut self, dir: &std::path::Path) {
        let key = |scope, action| super::ui::key_of(self, scope, action);
        let lines = vec![
            format!("Created the demo workspace in {} (first run).", dir.display()),
            String::new(),
            "It holds a demo CA and client certificates, a policy repository (clients.toml) with its own remote, and the embedded server's root keys; the console is signed in as its operator.".into(),
            String::new(),
            format!(
                "Try: {} Tokens, then {} for the demo flow · {} Clients to edit who may do what · {} Messages for everything said so far · {} every key.",
                key(Scope::Global, Action::Screen4),
                key(Scope::Tokens, Action::DemoFlow),
                key(Scope::Global, Action::Screen1),
                key(Scope::Global, Action::Screen7),
                key(Scope::Global, Action::Help),
            ),
        ];
        self.note(Level::Info, lines.join("\n"));
        self.show_detail("Welcome".into(), lines);
    }

    /// Shows a confirmation now, or after the dialog on screen closes.
    fn offer(&mut self, what: Confirmation, title: &str, lines: Vec<String>) {
        let popup = Popup::Confirm {
            what,
            title: title.to_string(),
            lines,
            yes_focused: false,
        };
        if self.popup.is_some() {
            self.deferred.push_back(popup);
        } else {
            self.popup = Some(popup);
        }
    }

    /// The raw editor's text changed: it is kept for recovery once typing pauses.
    pub(crate) fn editor_text_changed(&mut self) {
        if !self.keep_unsaved {
            return;
        }
        let first = self.editor_unwritten.map_or(self.now, |(first, _)| first);
        self.editor_unwritten = Some((first, self.now));
    }

    /// Writes the raw editor's unapplied text where a later session finds it (debounced), or
    /// forgets it once the editor is closed or back to what it opened with.
    fn keep_editor_text(&mut self) {
        if !self.keep_unsaved {
            return;
        }
        let closed = self.screens.clients.editor.is_none();
        if closed {
            self.editor_unwritten = None;
            if self.editor_kept.take().is_some() {
                self.submit(Job::KeepEditorText { text: None });
            }
            return;
        }
        let Some((first, last)) = self.editor_unwritten else {
            return;
        };
        if self.now - last < EDITOR_KEEP_QUIET && self.now - first < EDITOR_KEEP_AT_MOST {
            return;
        }
        self.editor_unwritten = None;
        let wanted = self
            .screens
            .clients
            .editor
            .as_ref()
            .filter(|e| e.modified())
            .map(|e| e.text());
        if wanted != self.editor_kept {
            self.editor_kept = wanted.clone();
            self.submit(Job::KeepEditorText { text: wanted });
        }
    }

    /// Keeps unsaved edits where a later session finds them, or forgets them once saved.
    fn keep_unsaved_edits(&mut self) {
        if !self.keep_unsaved {
            return;
        }
        let wanted = (self.text() != self.saved_text).then(|| self.text().to_string());
        if wanted != self.kept {
            self.kept = wanted.clone();
            self.submit(Job::KeepUnsaved { text: wanted });
        }
    }

    // ---- policy -------------------------------------------------------------------------

    /// Replaces the whole policy with text read from disk.
    pub fn load_text(&mut self, text: &str) {
        self.saved_text = text.to_string();
        match EditSession::open(text, self.now) {
            Ok(session) => {
                self.session = Some(session);
                self.broken = None;
            }
            Err(finding) => {
                self.open_broken(finding);
                return;
            }
        }
        self.policy_changed();
    }

    pub fn loaded(&self) -> Option<&LoadedPolicy> {
        self.session.as_ref().map(EditSession::current)
    }

    pub fn text(&self) -> &str {
        self.session
            .as_ref()
            .map_or(self.saved_text.as_str(), EditSession::text)
    }

    /// Unsaved edits (in the session, or an open editor whose text differs).
    pub fn is_dirty(&self) -> bool {
        self.text() != self.saved_text || self.screens.clients.editor_modified()
    }

    /// Recomputes what depends on the policy.
    pub fn policy_changed(&mut self) {
        let Some(loaded) = self.session.as_ref().map(EditSession::current) else {
            self.tree = DelegationTree::default();
            return;
        };
        self.tree = DelegationTree::build(&loaded.policy, &loaded.findings);
        self.views_changed();
    }

    /// Recomputes the screens' views of the policy and tree.
    fn views_changed(&mut self) {
        self.policy_changed_for_marks();
        self.keep_unsaved_edits();
        self.keep_editor_text();
        let Some(loaded) = self.session.as_ref().map(EditSession::current) else {
            return;
        };
        self.screens.clients.refilter(&loaded.policy);
        self.screens.delegations.tree_changed(&self.tree);
        self.screens.roles.clamp(&loaded.policy);
        self.recompute_changes();
        super::release_free_memory();
    }

    /// A policy read on a worker is in the session: its tree and the views built with it
    /// replace the old ones (views whose inputs changed meanwhile are rebuilt here). What is
    /// replaced is dropped off the UI thread: at 10,000 clients that alone took ~20 ms.
    fn views_ready(
        &mut self,
        (tree, tree_view, changes): (DelegationTree, TreeView, Option<ChangesView>),
    ) {
        super::discard(std::mem::replace(&mut self.tree, tree));
        self.policy_changed_for_marks();
        self.keep_unsaved_edits();
        self.keep_editor_text();
        let Some(loaded) = self.session.as_ref().map(EditSession::current) else {
            return;
        };
        self.screens.clients.refilter(&loaded.policy);
        self.screens
            .delegations
            .tree_view_ready(&self.tree, tree_view);
        self.screens.roles.clamp(&loaded.policy);
        match changes {
            Some(view) => {
                self.screens
                    .changes
                    .view_ready(view, loaded, &self.screens.server.events)
            }
            None => self
                .screens
                .changes
                .recompute(loaded, &self.screens.server.events),
        }
        self.request_text_diff();
    }

    /// Rebuilds the Changes screen's view: it replays the Server screen's audit feed against
    /// the edited policy, so it is built here, where both are in reach.
    pub(crate) fn recompute_changes(&mut self) {
        if let Some(loaded) = self.session.as_ref().map(|s| s.current()) {
            self.screens
                .changes
                .recompute(loaded, &self.screens.server.events);
        }
        self.request_text_diff();
    }

    fn request_text_diff(&mut self) {
        self.with_screens(ScreenId::Changes, |s, cx| s.changes.request_text_diff(cx));
    }

    /// Makes the raw editor's text the policy; with `save`, writes it too.
    fn apply_editor(&mut self, save: bool) {
        self.with_screens(ScreenId::Clients, |s, cx| s.clients.apply_editor(save, cx));
    }

    /// Shows `token` on the Tokens screen (read from `source`).
    pub fn load_token(&mut self, token: String, source: String) {
        self.with_screens(ScreenId::Tokens, |s, cx| {
            s.tokens.load_token(token, source, cx)
        });
    }

    /// Commits (saving unsaved edits first, over the text this console last read or wrote).
    fn commit_now(&mut self, message: String) {
        let save = self.is_dirty().then(|| self.text().to_string());
        let expected = self.saved_text.clone();
        if let Some(text) = &save {
            self.saved_text = text.clone();
        }
        self.submit(Job::Commit {
            message,
            save,
            expected,
        });
    }

    /// Applies an edit through the lossless document; refuses what the document refuses. The
    /// edit and the re-read of the result run on a worker; input waits until it is in.
    pub fn apply_edit(&mut self, edit: crate::policy::Edit) {
        self.submit_edit(edit, None);
    }

    /// `apply_edit`, then select `select` in the client list.
    pub fn submit_edit(&mut self, edit: crate::policy::Edit, select: Option<String>) {
        if self.readonly {
            self.flash(Level::Warn, "read-only mode: edits are disabled");
            return;
        }
        let Some(session) = self.session.as_ref() else {
            self.flash(
                Level::Error,
                "the policy does not parse; fix it in the editor (i)",
            );
            return;
        };
        let purpose = PolicyPurpose::Edit {
            describe: describe_edit(&edit),
            errors_before: session.current().errors().count(),
            select,
        };
        let document = std::sync::Arc::new(session.current().document.clone());
        self.derive(PolicyInput::Edit(document, edit), purpose);
    }

    /// Reads a policy (an edit's result, a step of history, a replaced text) on a worker.
    pub(crate) fn derive(&mut self, input: PolicyInput, purpose: PolicyPurpose) {
        let views = ViewInputs {
            tree_filter: self.screens.delegations.filter.clone(),
            chain: self.screens.delegations.chain.clone(),
            head: self.screens.changes.head.clone(),
            requests: super::screens::changes::recent_requests(&self.screens.server.events),
        };
        let id = self.submit(Job::DerivePolicy {
            input,
            purpose,
            views,
        });
        self.policy_pending = Some(id);
    }

    fn policy_derived(&mut self, purpose: PolicyPurpose, result: Result<Box<Derived>, Finding>) {
        self.policy_pending = None;
        match (purpose, result) {
            (purpose, Ok(derived)) => self.install(purpose, *derived),
            (PolicyPurpose::Open | PolicyPurpose::Start, Err(finding)) => self.open_broken(finding),
            (PolicyPurpose::Replace { .. }, Err(finding)) => {
                self.flash(Level::Error, format!("not applied: {finding}"))
            }
            (_, Err(finding)) => match self.staging.take() {
                Some(staging) => {
                    let done = staging.total - staging.rest.len() - 1;
                    self.flash(
                        Level::Error,
                        format!(
                            "staged {done} of {} edits from the tightening proposal; the next was refused: {}",
                            staging.total, finding.message
                        ),
                    )
                }
                None => self.flash(Level::Error, finding.message),
            },
        }
        for typed in std::mem::take(&mut self.typeahead) {
            match typed {
                Typed::Key(key) => self.handle_key(key),
                Typed::Paste(text) => self.handle_paste(&text),
            }
        }
    }

    fn install(&mut self, purpose: PolicyPurpose, derived: Derived) {
        let Derived {
            loaded,
            tree,
            tree_view,
            changes,
        } = derived;
        let views = (tree, tree_view, changes);
        let now = self.now;
        match purpose {
            PolicyPurpose::Edit {
                describe,
                errors_before,
                select,
            } => {
                let Some(session) = self.session.as_mut() else {
                    return;
                };
                super::discard(session.install(loaded));
                let errors: Vec<String> = session
                    .current()
                    .errors()
                    .map(ToString::to_string)
                    .collect();
                if errors.len() > errors_before {
                    self.flash(
                        Level::Warn,
                        format!("edited; it introduced a problem: {}", errors[0]),
                    );
                } else {
                    self.flash(Level::Success, describe);
                }
                self.views_ready(views);
                if let Some(identity) = select {
                    let loaded = self.session.as_ref().map(EditSession::current);
                    self.screens.clients.select_identity(&identity, loaded);
                }
                self.stage_next();
            }
            PolicyPurpose::Undo | PolicyPurpose::Redo => {
                let back = purpose == PolicyPurpose::Undo;
                let Some(session) = self.session.as_mut() else {
                    return;
                };
                if let Ok(old) = session.install_step(back, loaded) {
                    super::discard(old);
                    self.views_ready(views);
                    self.flash(Level::Info, if back { "undone" } else { "redone" });
                }
            }
            PolicyPurpose::Replace { save } => {
                let text = loaded.document.text().to_string();
                match self.session.as_mut() {
                    Some(session) => super::discard(session.install(loaded)),
                    None => self.session = Some(EditSession::from_loaded(loaded, now)),
                }
                self.broken = None;
                self.screens.clients.editor = None;
                self.views_ready(views);
                if save {
                    self.save_text(text);
                } else {
                    self.flash(
                        Level::Info,
                        "editor text applied (unsaved; ctrl-s saves, u undoes)",
                    );
                }
            }
            PolicyPurpose::Open | PolicyPurpose::Start | PolicyPurpose::Reopen { .. } => {
                self.saved_text = loaded.document.text().to_string();
                self.session = Some(EditSession::from_loaded(loaded, now));
                self.broken = None;
                self.views_ready(views);
                match purpose {
                    PolicyPurpose::Reopen { why } => self.flash(Level::Info, why),
                    PolicyPurpose::Start => {}
                    _ => self.flash(Level::Info, "reloaded clients.toml from disk"),
                }
            }
            PolicyPurpose::Rebased { disk, why } => {
                self.saved_text = disk;
                match self.session.as_mut() {
                    Some(session) => super::discard(session.install(loaded)),
                    None => self.session = Some(EditSession::from_loaded(loaded, now)),
                }
                self.views_ready(views);
                self.flash(Level::Success, why);
            }
        }
    }

    pub(crate) fn typeahead_paste(&mut self, text: &str) {
        self.typeahead.push(Typed::Paste(text.to_string()));
    }

    /// The file on disk does not parse: open the editor on it.
    fn open_broken(&mut self, finding: Finding) {
        self.session = None;
        self.flash(
            Level::Error,
            format!(
                "{} does not parse: {finding}; fix it in the editor",
                self.policy_path.display()
            ),
        );
        self.broken = Some(finding);
        let text = self.saved_text.clone();
        self.screens.clients.open_editor(&text, self.now);
        self.tree = DelegationTree::default();
    }

    // ---- unused access ------------------------------------------------------------------

    /// Reads the audit trail (at start and on f5) on a worker; the feed keeps it current after.
    fn read_audit_trail(&mut self) {
        let Some(path) = self.unused.path.clone() else {
            return;
        };
        if !self
            .in_flight
            .iter()
            .any(|(_, j)| matches!(j, Job::ReadUsage { .. }))
        {
            self.submit(Job::ReadUsage { path });
        }
    }

    fn policy_changed_for_marks(&mut self) {
        self.unused.stale = true;
        self.mark_unused();
    }

    /// Recomputes the marks on a worker when the policy or the usage changed: one at a time,
    /// so a burst of edits or feed pages costs one run after the one in flight, not one each.
    fn mark_unused(&mut self) {
        if !self.unused.stale || self.unused.computing || self.session.is_none() {
            return;
        }
        let Some(usage) = self.unused.usage() else {
            return;
        };
        self.unused.stale = false;
        self.unused.computing = true;
        self.submit(Job::MarkUnused {
            text: self.text().to_string(),
            usage,
            since: self.unused.since(self.now),
        });
    }

    /// Proposes removing the access the audit trail shows unused (on a worker); the proposal
    /// is confirmed before anything changes.
    fn tighten(&mut self) {
        use super::unused_marks::Trail;
        if self.readonly {
            self.flash(Level::Warn, "read-only mode: edits are disabled");
            return;
        }
        let usage = match (&self.unused.trail, self.unused.usage()) {
            (_, Some(usage)) => usage,
            (Trail::None, _) => {
                self.flash(
                    Level::Warn,
                    "tighten needs an audit trail: this console runs no server (use `hessra-console policy tighten --audit FILE`)",
                );
                return;
            }
            (Trail::Unreadable(why), _) => {
                let why = why.clone();
                self.flash(Level::Warn, format!("cannot tighten: {why}"));
                return;
            }
            _ => {
                self.flash(
                    Level::Info,
                    "the audit trail is still being read; try again in a moment",
                );
                return;
            }
        };
        if self.session.is_none() {
            self.flash(
                Level::Error,
                "the policy does not parse; fix it in the editor (i)",
            );
            return;
        }
        self.submit(Job::Tighten {
            text: self.text().to_string(),
            usage,
            since: self.unused.since(self.now),
        });
    }

    fn tightened(&mut self, text: String, proposal: Result<Box<crate::policy::Proposal>, String>) {
        let proposal = match proposal {
            Ok(proposal) => proposal,
            Err(e) => {
                self.flash(Level::Error, format!("no tightening: {e}"));
                return;
            }
        };
        if text != self.text() {
            self.flash(
                Level::Warn,
                "the policy changed while the tightening was proposed; ask again",
            );
            return;
        }
        let window =
            crate::policy::duration::format(u64::try_from(self.unused.window).unwrap_or(0));
        if let Some(finding) = proposal.findings.first() {
            self.flash(
                Level::Error,
                format!(
                    "the tightened policy would not validate ({}); nothing staged",
                    finding.message
                ),
            );
            return;
        }
        if proposal.items.is_empty() {
            let needed = if proposal.blocked.is_empty() {
                ""
            } else {
                " or is needed by a request seen"
            };
            self.flash(
                Level::Info,
                format!("nothing to tighten: all access was used in the last {window}{needed}"),
            );
            return;
        }
        let since = self.unused.since(self.now);
        let short_trail = self
            .unused
            .usage()
            .is_none_or(|usage| usage.first.is_none_or(|first| first > since));
        let lines = tightening_lines(&proposal, &window, short_trail, self.now);
        if proposal.items.len() > TIGHTENING_SHOWN {
            let all: Vec<String> = proposal
                .items
                .iter()
                .map(|item| format!("  - {}", item.describe_edit()))
                .collect();
            self.note(
                Level::Info,
                format!(
                    "tightening proposal ({} edits):\n{}",
                    all.len(),
                    all.join("\n")
                ),
            );
        }
        let edits = proposal
            .items
            .iter()
            .map(|item| item.edit.clone())
            .collect();
        self.confirm(
            Confirmation::Tighten { edits },
            "Tighten: remove unused access",
            lines,
        );
    }

    /// Applies the next staged edit, or says the staging is done.
    fn stage_next(&mut self) {
        let Some(staging) = self.staging.as_mut() else {
            return;
        };
        match staging.rest.pop_front() {
            Some(edit) => self.submit_edit(edit, None),
            None => {
                let total = staging.total;
                self.staging = None;
                self.flash(
                    Level::Success,
                    format!("staged {total} edits from the tightening proposal; review on Changes, u undoes"),
                );
            }
        }
    }

    // ---- jobs ---------------------------------------------------------------------------

    pub fn submit(&mut self, job: Job) -> u64 {
        let id = self.next_job;
        self.next_job += 1;
        self.in_flight.push((id, job.clone()));
        self.outbox.push((id, job));
        id
    }

    pub fn take_jobs(&mut self) -> Vec<(u64, Job)> {
        std::mem::take(&mut self.outbox)
    }

    /// User-visible work in progress (polls excluded).
    pub fn busy(&self) -> Option<&'static str> {
        self.in_flight
            .iter()
            .find(|(_, j)| !j.is_poll())
            .map(|(_, j)| j.describe())
    }

    pub fn job_done(&mut self, id: u64) {
        self.in_flight.retain(|(i, _)| *i != id);
    }

    /// A background poll other than a fetch runs (a fetch over a slow network must not hold
    /// up the server's status).
    fn polling(&self) -> bool {
        self.in_flight
            .iter()
            .any(|(_, j)| j.is_poll() && !matches!(j, Job::Fetch | Job::FleetStatus))
    }

    pub fn handle_result(&mut self, result: JobResult) {
        // Each screen takes the results it asked for; what none takes is the console's.
        let mut result = result;
        for id in ScreenId::ALL {
            match self.with_screen(id, |s, cx| s.on_result(result, cx)) {
                Some(unclaimed) => result = unclaimed,
                None => return,
            }
        }
        match result {
            JobResult::Saved(Ok(path)) => {
                if let Some(text) = self.saving.pop_front() {
                    self.saved_text = text;
                }
                self.flash(Level::Success, format!("saved {path}"));
                self.keep_unsaved_edits();
                self.refresh_git();
                if self.quit_after_save && self.saving.is_empty() {
                    self.running = false;
                }
            }
            JobResult::Saved(Err(e)) => {
                self.saving.pop_front();
                self.quit_after_save = false;
                self.flash(
                    Level::Error,
                    format!("not saved (your edits are kept): {e}"),
                );
            }
            JobResult::Reloaded(Ok(text)) => self.disk_changed(text, true),
            JobResult::Reloaded(Err(e)) => self.flash(Level::Error, e),
            JobResult::PolicyDerived { purpose, result } => self.policy_derived(purpose, result),
            JobResult::Revoked(Ok(id)) => {
                let short: String = id.chars().take(16).collect();
                self.flash(
                    Level::Success,
                    format!("revoked {short}… in revocations.toml; commit and push (5, c, p) to apply it"),
                );
                self.refresh_git();
                self.submit(Job::ReadRevocations);
            }
            JobResult::Revoked(Err(e)) => self.flash(Level::Error, format!("not revoked: {e}")),
            JobResult::Copied { what, to } => self.copy_done(what, to),
            JobResult::DirectoryListed(listing) => self.listing_read(listing),
            JobResult::Fetched(result) => self.fetched(result),
            JobResult::UsageRead(result) => {
                if let Some(note) = self.unused.trail_read(result) {
                    self.note(Level::Info, note);
                }
                self.mark_unused();
            }
            JobResult::UnusedMarked { text, marks } => {
                self.unused.computing = false;
                match marks {
                    Ok(marks) if text == self.text() => self.unused.computed(marks),
                    Ok(_) => self.unused.stale = true,
                    Err(e) => tracing::info!("unused access not marked: {e}"),
                }
                self.mark_unused();
            }
            JobResult::Tightened { text, proposal } => self.tightened(text, proposal),
            result @ (JobResult::Watched { .. }
            | JobResult::DiskChanged { .. }
            | JobResult::RebasedBuffer { .. }
            | JobResult::PushConflicts { .. }
            | JobResult::Reset(_)) => self.disk_result(result),
            // The screens take the rest (see `Screen::on_result`).
            other => tracing::warn!("a job result no screen took: {other:?}"),
        }
    }

    pub fn refresh_git(&mut self) {
        if self.has_repo {
            self.submit(Job::GitStatus);
            self.last_git = self.now;
        }
    }

    /// Time passes: the clock, the spinner, flash expiry and background polls.
    pub fn tick(&mut self, now: i64) {
        if !self.frozen_clock {
            self.now = now;
        }
        self.spinner = self.spinner.wrapping_add(1);
        if let Some(flash) = &self.flash
            && flash.level != Level::Error
            && self.now - flash.at >= FLASH_SECONDS
        {
            self.flash = None;
        }
        if self.server.is_some() && !self.polling() && self.now.saturating_sub(self.last_poll) >= 1
        {
            self.last_poll = self.now;
            self.submit(Job::ServerStatus);
            let after = self.screens.server.next_seq;
            self.submit(Job::ServerAudit { after });
        }
        self.fleet_tick();
        self.keep_editor_text();
        self.watch_tick();
        self.fetch_tick();
        if self.has_repo
            && self.now.saturating_sub(self.last_git) >= 5
            && !self
                .in_flight
                .iter()
                .any(|(_, j)| matches!(j, Job::GitStatus))
        {
            self.refresh_git();
        }
    }

    /// Asks the fleet of the repository's `fleet.toml` how it stands: every second while a push
    /// is followed across it, every few seconds otherwise; never two asks at once (a replica
    /// that is down may take seconds to say so).
    fn fleet_tick(&mut self) {
        if !self.has_repo || self.server.is_none() {
            return;
        }
        let following = self
            .screens
            .server
            .rollout
            .as_ref()
            .is_some_and(|r| r.running());
        let every = if following { 1 } else { FLEET_POLL_SECONDS };
        if self.now.saturating_sub(self.last_fleet_poll) < every
            || self
                .in_flight
                .iter()
                .any(|(_, job)| matches!(job, Job::FleetStatus))
        {
            return;
        }
        self.last_fleet_poll = self.now;
        self.submit(Job::FleetStatus);
        // The other replicas' audit, merged into the feed, once the fleet is known.
        if matches!(self.screens.server.fleet, Some(Ok(_)))
            && !self
                .in_flight
                .iter()
                .any(|(_, job)| matches!(job, Job::FleetAudit { .. }))
        {
            let cursors = self.screens.server.fleet_cursors.clone();
            self.submit(Job::FleetAudit { cursors });
        }
    }

    /// Fetches the upstream every `fetch_interval` seconds, so the status bar's ahead/behind
    /// stays live: only with a repository whose branch has an upstream, and never while a job
    /// that moves refs (commit, push, pull, reset, another fetch) runs.
    fn fetch_tick(&mut self) {
        let has_upstream = matches!(
            &self.screens.changes.git,
            Some(Ok(view)) if view.status.upstream.is_some()
        );
        let due = self.now.saturating_sub(self.last_fetch) >= self.fetch_interval;
        if self.fetch_interval <= 0 || !self.has_repo || !has_upstream || !due {
            return;
        }
        if self.in_flight.iter().any(|(_, job)| job.moves_refs()) {
            return;
        }
        self.last_fetch = self.now;
        self.submit(Job::Fetch);
    }

    fn fetched(&mut self, result: Result<(), String>) {
        match result {
            Ok(()) => {
                if self.fetch_failing.take().is_some() {
                    self.note(Level::Info, "background fetch works again");
                }
                self.refresh_git();
            }
            Err(e) => {
                if self.fetch_failing.as_ref() != Some(&e) {
                    self.note(
                        Level::Warn,
                        format!(
                            "background fetch failed (ahead/behind may be stale; retrying every {} s): {e}",
                            self.fetch_interval
                        ),
                    );
                }
                self.fetch_failing = Some(e);
            }
        }
    }

    // ---- messages -----------------------------------------------------------------------

    /// Shows `text` in the status bar and keeps it in the Messages screen.
    pub fn flash(&mut self, level: Level, text: impl Into<String>) {
        let text = text.into();
        self.note(level, text.clone());
        self.flash = Some(Flash {
            level,
            text,
            at: self.now,
        });
    }

    /// Keeps `text` in the Messages screen without showing it in the status bar (what is worth
    /// a look later, not an interruption now: a background fetch failing).
    pub fn note(&mut self, level: Level, text: impl Into<String>) {
        let text = text.into();
        match level {
            Level::Error | Level::Warn => tracing::warn!("{text}"),
            _ => tracing::info!("{text}"),
        }
        if self.messages.len() == MESSAGES_KEPT {
            self.messages.pop_front();
        }
        self.messages.push_back(Flash {
            level,
            text,
            at: self.now,
        });
    }

    /// Every status message kept, oldest first.
    pub fn messages(&self) -> &VecDeque<Flash> {
        &self.messages
    }

    /// Says why an action is not available, or `None` when it is.
    pub fn disabled_reason(&self, action: Action) -> Option<String> {
        if self.readonly && action.is_dangerous() {
            let what = action.changes().unwrap_or("changes something");
            return Some(format!(
                "read-only: {} {what}; start without --readonly to edit",
                action.name()
            ));
        }
        None
    }

    /// The dialog on screen, if any.
    pub fn popup(&self) -> Option<&Popup> {
        self.popup.as_ref()
    }

    /// Closes the dialog on screen (without answering it).
    pub fn close_popup(&mut self) {
        self.popup = None;
    }

    /// The status bar's message, if any.
    pub fn flash_message(&self) -> Option<&Flash> {
        self.flash.as_ref()
    }

    /// False once the console has quit.
    pub fn running(&self) -> bool {
        self.running
    }

    /// The console's clock (frozen in tests and snapshots).
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Lets `seconds` pass on the clock (frozen or not) and ticks.
    pub fn advance(&mut self, seconds: i64) {
        self.now += seconds;
        self.tick(self.now);
    }

    pub fn policy_path(&self) -> &std::path::Path {
        &self.policy_path
    }

    /// The text on disk, as last read or saved.
    pub fn saved_text(&self) -> &str {
        &self.saved_text
    }

    pub fn readonly(&self) -> bool {
        self.readonly
    }

    pub fn keymap(&self) -> &Keymap {
        &self.keymap
    }

    /// What start-up found wrong (config, keys, ports).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// Whether an edited policy is being read (input waits for it meanwhile).
    /// The size of the policy being read at start-up, while no policy (or broken file) is in.
    pub fn reading_policy(&self) -> Option<usize> {
        (self.session.is_none() && self.broken.is_none() && self.policy_pending.is_some())
            .then_some(self.saved_text.len())
    }

    pub fn policy_pending(&self) -> bool {
        self.policy_pending.is_some()
    }

    /// The screen on display, through the contract every screen keeps.
    pub fn current(&self) -> &dyn super::screens::Screen {
        self.screens.get(self.screen)
    }

    /// Which screen is on display.
    pub fn screen(&self) -> ScreenId {
        self.screen
    }

    /// Every screen's state, to read.
    pub fn screens(&self) -> &Screens {
        &self.screens
    }

    /// Shows `screen`; it is told it was entered (the Changes screen refreshes git then).
    pub fn go_to(&mut self, screen: ScreenId) {
        self.screen = screen;
        self.with_screen(screen, |s, cx| s.on_enter(cx));
    }

    /// The screen a palette command names: its number, or the first word of its title or
    /// short title (`:roles`, `:domains`).
    pub fn screen_named(&self, name: &str) -> Option<ScreenId> {
        let name = name.to_lowercase();
        ScreenId::ALL.iter().enumerate().find_map(|(i, id)| {
            let named = self.screen_words(*id).contains(&name);
            (name == (i + 1).to_string() || named).then_some(*id)
        })
    }

    /// The words a palette command may name a screen by.
    pub fn screen_words(&self, id: ScreenId) -> Vec<String> {
        let screen = self.screens.get(id);
        let mut words: Vec<String> = [screen.title(), screen.short_title()]
            .iter()
            .filter_map(|t| t.split_whitespace().next())
            .map(str::to_lowercase)
            .collect();
        words.dedup();
        words
    }

    /// Runs `f` on screen `id` with a context onto the console, then carries out what the
    /// screen asked for. The screen borrows only its own state; the context borrows the rest.
    pub(crate) fn with_screen<R>(
        &mut self,
        id: ScreenId,
        f: impl FnOnce(&mut dyn super::screens::Screen, &mut Cx) -> R,
    ) -> R {
        self.with_screens(id, |screens, cx| f(screens.get_mut(id), cx))
    }

    /// `with_screen` for a caller that names the screen's own type (the palette's commands
    /// with an argument, `load_token`): what `f` asks for is asked as screen `id`.
    pub(crate) fn with_screens<R>(
        &mut self,
        id: ScreenId,
        f: impl FnOnce(&mut Screens, &mut Cx) -> R,
    ) -> R {
        let editor_unapplied = self.screens.clients.editor_modified();
        let App {
            screens,
            session,
            saved_text,
            tree,
            now,
            readonly,
            has_repo,
            server,
            policy_path,
            demo_clients,
            keymap,
            in_flight,
            messages,
            unused,
            ..
        } = self;
        let policy = session.as_ref().map(EditSession::current);
        let text = session
            .as_ref()
            .map_or(saved_text.as_str(), EditSession::text);
        let view = CxView {
            policy,
            tree,
            text,
            saved_text,
            policy_path,
            demo_clients,
            keymap,
            in_flight,
            messages,
            audit_trail: unused
                .path
                .as_deref()
                .map(|path| (path, u64::try_from(unused.window).unwrap_or(0))),
        };
        let mut cx = Cx::new(
            *now,
            *readonly,
            (*has_repo, server.is_some()),
            editor_unapplied,
            view,
        );
        let result = f(screens, &mut cx);
        let requests = cx.into_requests();
        self.carry_out(id, requests);
        result
    }

    fn carry_out(&mut self, from: ScreenId, requests: Vec<Request>) {
        let mut rebuild = false;
        for request in requests {
            match request {
                Request::Flash(level, text) => self.flash(level, text),
                Request::Submit(job) => {
                    self.submit(job);
                }
                Request::RefreshGit => self.refresh_git(),
                Request::Edit { edit, select } => self.submit_edit(edit, select),
                Request::ReplaceText { text, save } => {
                    self.derive(PolicyInput::Text(text), PolicyPurpose::Replace { save })
                }
                Request::SaveText(text) => self.save_text(text),
                Request::EditorChanged => self.editor_text_changed(),
                Request::ExternalEdit => self.external_edit = Some(self.policy_path.clone()),
                Request::Commit(message) => self.commit_now(message),
                Request::SavedTextUnknown => self.saved_text.clear(),
                Request::Reload(note) => {
                    if note.is_some() {
                        self.disk.reload_note = note;
                    }
                    self.submit(Job::Reload);
                }
                Request::RebuildViews => rebuild = true,
                Request::ShowChain(chain) => self.show_chain(chain),
                Request::Confirm { what, title, lines } => self.confirm(
                    Confirmation::Screen(Asked { screen: from, what }),
                    &title,
                    lines,
                ),
                Request::Prompt {
                    what,
                    title,
                    hint,
                    initial,
                    empty_ok,
                    choices,
                } => self.prompt_choosing(
                    PromptKind::Screen {
                        asked: Asked { screen: from, what },
                        empty_ok,
                    },
                    &title,
                    &hint,
                    &initial,
                    choices,
                ),
                Request::Pick { what, title, items } => {
                    self.popup = Some(Popup::Picker {
                        asked: Asked { screen: from, what },
                        title,
                        items,
                        selected: 0,
                    })
                }
                Request::Copy(what, text) => self.copy(what, text),
                Request::Detail { title, lines } => self.show_detail(title, lines),
                Request::GoTo(screen) => self.go_to(screen),
                Request::Revoke { id, what } => self.start_revocation(id, what),
            }
        }
        if rebuild {
            if self.unused.fold(&self.screens.server.events) {
                self.mark_unused();
            } else if self.unused.wants_reread(&self.screens.server.events) {
                self.read_audit_trail();
            }
            self.recompute_changes();
        }
    }

    /// The hint bar's entries, and whether keys are being typed as text (then only these
    /// hints apply).
    pub fn hints(&self) -> (Vec<super::screens::Hint>, bool) {
        use super::screens::hint;
        match &self.popup {
            Some(Popup::Prompt { choices, .. }) => {
                let mut hints = vec![hint(Action::Select, "ok"), hint(Action::Back, "cancel")];
                if !choices.is_none() {
                    hints.insert(1, hint(Action::FocusNext, "complete"));
                }
                return (hints, true);
            }
            Some(Popup::Detail { .. }) => {
                return (
                    vec![
                        hint(Action::Down, "scroll"),
                        hint(Action::Copy, "copy"),
                        hint(Action::Back, "close"),
                    ],
                    false,
                );
            }
            Some(Popup::Palette { .. }) => {
                return (
                    vec![
                        hint(Action::Select, "run"),
                        hint(Action::FocusNext, "complete"),
                        hint(Action::Back, "cancel"),
                    ],
                    true,
                );
            }
            _ => {}
        }
        if self.filter_input.is_some() {
            return (
                vec![hint(Action::Select, "keep"), hint(Action::Back, "clear")],
                true,
            );
        }
        let screen = self.current();
        (screen.hints(), screen.typing())
    }

    /// The navigation a key is, inside a text field (see `Cx::typing_action`).
    pub(crate) fn typing_action(&self, key: &KeyEvent) -> Option<Action> {
        super::screens::typing_action(&self.keymap, key)
    }

    // ---- input --------------------------------------------------------------------------

    pub fn handle_key(&mut self, key: KeyEvent) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.popup = None;
            self.dispatch(Action::ForceQuit);
            return;
        }
        if self.policy_pending.is_some() {
            self.typeahead.push(Typed::Key(key));
            return;
        }
        if let Some(popup) = self.popup.take() {
            self.popup_key(popup, key);
            if self.popup.is_none() {
                self.popup = self.deferred.pop_front();
            }
            return;
        }
        if self.filter_input.is_some() {
            self.filter_key(key);
            return;
        }
        if self.screen_captures_key(key) {
            return;
        }
        if let Some(action) = self.keymap.lookup(self.current().scope(), &key) {
            match self.keymap.refusal(&key, action) {
                Some(why) => self.flash(Level::Warn, why),
                None => self.dispatch(action),
            }
        }
    }

    /// Bracketed paste: into a prompt, the Tokens screen (a token), or the raw editor.
    pub fn handle_paste(&mut self, text: &str) {
        if self.policy_pending.is_some() {
            self.typeahead_paste(text);
            return;
        }
        if let Some(Popup::Prompt {
            kind,
            title,
            hint,
            mut input,
            error,
            choices,
            ..
        }) = self.popup.take()
        {
            input.insert_str(text.replace(['\n', '\r'], ""));
            let completion = self.completion(choices.stage(&input.lines().join(""), &self.listing));
            self.popup = Some(Popup::Prompt {
                kind,
                title,
                hint,
                input,
                error,
                choices,
                completion,
            });
            return;
        }
        // The screen on display, else the raw editor (it stays open across screens).
        if !self.with_screen(self.screen, |s, cx| s.on_paste(text, cx)) {
            self.with_screen(ScreenId::Clients, |s, cx| s.on_paste(text, cx));
        }
    }

    /// Mouse events, when capture is on: the wheel moves, a click on a tab switches screens.
    pub fn handle_mouse(&mut self, event: MouseEvent) {
        if !self.mouse || self.popup.is_some() {
            return;
        }
        match event.kind {
            MouseEventKind::ScrollDown => self.dispatch(Action::Down),
            MouseEventKind::ScrollUp => self.dispatch(Action::Up),
            MouseEventKind::Down(MouseButton::Left) if event.row == 0 => {
                if let Some(screen) = super::ui::tab_at(
                    &self.screens,
                    self.screen,
                    event.column,
                    self.screen_width.get(),
                ) {
                    self.go_to(screen);
                }
            }
            _ => {}
        }
    }

    /// Keys typed into a text field the current screen has open.
    fn screen_captures_key(&mut self, key: KeyEvent) -> bool {
        self.with_screen(self.screen, |s, cx| s.on_key(key, cx))
    }

    pub fn dispatch(&mut self, action: Action) {
        if let Some(reason) = self.disabled_reason(action) {
            self.flash(Level::Warn, reason);
            return;
        }
        match action {
            Action::Quit => self.request_quit(),
            Action::ForceQuit => self.running = false,
            Action::Help => {
                self.popup = Some(Popup::Help {
                    filter: String::new(),
                    scroll: 0,
                })
            }
            Action::Palette => self.open_palette(),
            Action::Filter => self.open_filter(),
            go_to if go_to.screen_index().is_some() => {
                if let Some(screen) = go_to.screen_index().and_then(|i| ScreenId::ALL.get(i)) {
                    self.go_to(*screen);
                }
            }
            Action::Theme => self.cycle_theme(),
            Action::Mouse => {
                self.mouse = !self.mouse;
                let state = if self.mouse { "on" } else { "off" };
                self.flash(Level::Info, format!("mouse capture {state}"));
            }
            Action::Undo => self.undo(true),
            Action::Redo => self.undo(false),
            Action::Save => self.save(),
            Action::Refresh => self.refresh(),
            Action::Tighten => self.tighten(),
            _ => self.with_screen(self.screen, |s, cx| s.on_action(action, cx)),
        }
    }

    fn refresh(&mut self) {
        self.submit(Job::Reload);
        self.refresh_git();
        if self.screen == ScreenId::Changes && self.has_repo {
            self.submit(Job::History);
        }
        self.last_poll = i64::MIN;
        self.last_fleet_poll = i64::MIN;
        self.read_audit_trail();
        self.flash(Level::Info, "refreshing");
    }

    pub fn cycle_theme(&mut self) {
        let next = self.theme.next_name();
        self.set_theme(next);
    }

    pub fn set_theme(&mut self, name: &str) {
        match Theme::built_in(name) {
            Ok(theme) => {
                self.theme = if self.theme.monochrome {
                    theme.without_color()
                } else {
                    theme
                };
                self.flash(Level::Info, format!("theme {name}"));
            }
            Err(e) => self.flash(Level::Error, e),
        }
    }

    fn undo(&mut self, back: bool) {
        let Some(text) = self
            .session
            .as_ref()
            .and_then(|s| s.step_text(back))
            .map(str::to_string)
        else {
            let word = if back {
                "nothing to undo"
            } else {
                "nothing to redo"
            };
            self.flash(Level::Info, word);
            return;
        };
        let purpose = if back {
            PolicyPurpose::Undo
        } else {
            PolicyPurpose::Redo
        };
        self.derive(PolicyInput::Text(text), purpose);
    }

    pub fn save(&mut self) {
        if self.screens.clients.editor.is_some() {
            self.apply_editor(true);
            return;
        }
        if !self.is_dirty() {
            self.flash(Level::Info, "nothing to save");
            return;
        }
        let text = self.text().to_string();
        self.save_text(text);
    }

    pub fn save_text(&mut self, text: String) {
        // Written only over the text this console last loaded or wrote (see `console::disk`).
        let expected = self
            .saving
            .back()
            .cloned()
            .unwrap_or_else(|| self.saved_text.clone());
        self.saving.push_back(text.clone());
        self.submit(Job::Save { text, expected });
    }

    fn request_quit(&mut self) {
        if self.is_dirty() {
            self.popup = Some(Popup::QuitDirty { choice: 2 });
        } else {
            self.running = false;
        }
    }

    pub fn confirm(&mut self, what: Confirmation, title: &str, lines: Vec<String>) {
        self.popup = Some(Popup::Confirm {
            what,
            title: title.to_string(),
            lines,
            yes_focused: false,
        });
    }

    /// Starts revoking `id`: asks for a reason, then confirms naming what it cuts off.
    pub(crate) fn start_revocation(&mut self, id: String, what: String) {
        self.prompt(
            PromptKind::RevocationReason {
                id,
                what: what.clone(),
            },
            &format!("Revoke {what}"),
            "why (reviewers read it)",
            "",
        );
    }

    pub fn prompt(&mut self, kind: PromptKind, title: &str, hint: &str, initial: &str) {
        self.prompt_choosing(kind, title, hint, initial, Choices::None);
    }

    /// `prompt` with a pick-list: the candidates of `choices` for what is typed.
    pub fn prompt_choosing(
        &mut self,
        kind: PromptKind,
        title: &str,
        hint: &str,
        initial: &str,
        choices: Choices,
    ) {
        let mut input = TextArea::new(vec![initial.to_string()]);
        input.move_cursor(ratatui_textarea::CursorMove::End);
        // A directory read for an earlier dialog may be stale: read it again.
        self.listing = Listing::default();
        let completion = self.completion(choices.stage(initial, &self.listing));
        self.popup = Some(Popup::Prompt {
            kind,
            title: title.to_string(),
            hint: hint.to_string(),
            input,
            error: None,
            choices,
            completion,
        });
    }

    fn popup_key(&mut self, popup: Popup, key: KeyEvent) {
        match popup {
            Popup::Help { mut filter, scroll } => match key.code {
                KeyCode::Esc | KeyCode::Char('?') if filter.is_empty() => {}
                KeyCode::Esc => self.popup = None,
                KeyCode::F(1) => {}
                KeyCode::Down => {
                    self.popup = Some(Popup::Help {
                        filter,
                        scroll: scroll + 1,
                    })
                }
                KeyCode::Up => {
                    self.popup = Some(Popup::Help {
                        filter,
                        scroll: scroll.saturating_sub(1),
                    })
                }
                KeyCode::Backspace => {
                    filter.pop();
                    self.popup = Some(Popup::Help { filter, scroll: 0 });
                }
                KeyCode::Char(c) => {
                    filter.push(c);
                    self.popup = Some(Popup::Help { filter, scroll: 0 });
                }
                _ => self.popup = Some(Popup::Help { filter, scroll }),
            },
            Popup::Confirm {
                what,
                title,
                lines,
                yes_focused,
            } => match self.keymap.lookup(Scope::Confirm, &key) {
                Some(Action::Back | Action::No) => self.flash(Level::Info, "cancelled"),
                Some(Action::Yes) => self.confirmed(what),
                Some(Action::Select) if yes_focused => self.confirmed(what),
                Some(Action::Select) => self.flash(Level::Info, "cancelled"),
                Some(Action::Left | Action::Right | Action::FocusNext | Action::FocusPrev) => {
                    self.popup = Some(Popup::Confirm {
                        what,
                        title,
                        lines,
                        yes_focused: !yes_focused,
                    })
                }
                _ => {
                    self.popup = Some(Popup::Confirm {
                        what,
                        title,
                        lines,
                        yes_focused,
                    })
                }
            },
            Popup::Prompt {
                kind,
                title,
                hint,
                mut input,
                error,
                choices,
                mut completion,
            } => match self.typing_action(&key) {
                Some(Action::Back) => self.flash(Level::Info, "cancelled"),
                Some(Action::Select) => {
                    let text = input.lines().join("");
                    if let Err(why) = self.prompt_submitted(kind.clone(), text.trim().to_string()) {
                        self.flash(Level::Error, why.clone());
                        self.popup = Some(Popup::Prompt {
                            kind,
                            title,
                            hint,
                            input,
                            error: Some(why),
                            choices,
                            completion,
                        });
                    }
                }
                Some(
                    action @ (Action::FocusNext | Action::FocusPrev | Action::Up | Action::Down),
                ) if !choices.is_none() => {
                    let forward = matches!(action, Action::FocusNext | Action::Down);
                    if let Some(line) = completion.step(forward) {
                        input = one_line(line);
                    }
                    self.popup = Some(Popup::Prompt {
                        kind,
                        title,
                        hint,
                        input,
                        error,
                        choices,
                        completion,
                    });
                }
                _ => {
                    if input.input(key) {
                        let line = input.lines().join("");
                        completion = self.completion(choices.stage(&line, &self.listing));
                    }
                    self.popup = Some(Popup::Prompt {
                        kind,
                        title,
                        hint,
                        input,
                        error,
                        choices,
                        completion,
                    });
                }
            },
            Popup::Palette {
                input,
                history_at,
                completion,
            } => self.palette_key(input, history_at, completion, key),
            Popup::QuitDirty { choice } => match self.keymap.lookup(Scope::QuitDialog, &key) {
                Some(Action::Back | Action::StayOpen) => {}
                Some(Action::SaveAndQuit) => self.quit_choice(0),
                Some(Action::DiscardAndQuit) => self.quit_choice(1),
                Some(Action::Select) => self.quit_choice(choice),
                Some(Action::Left | Action::FocusPrev) => {
                    self.popup = Some(Popup::QuitDirty {
                        choice: (choice + 2) % 3,
                    })
                }
                Some(Action::Right | Action::FocusNext) => {
                    self.popup = Some(Popup::QuitDirty {
                        choice: (choice + 1) % 3,
                    })
                }
                _ => self.popup = Some(Popup::QuitDirty { choice }),
            },
            Popup::Notices { scroll } => match self.keymap.lookup(Scope::Global, &key) {
                Some(Action::Back | Action::Select | Action::Quit) => {}
                Some(Action::Down) => {
                    let last = self.notices.len().saturating_sub(1);
                    self.popup = Some(Popup::Notices {
                        scroll: (scroll + 1).min(last),
                    })
                }
                Some(Action::Up) => {
                    self.popup = Some(Popup::Notices {
                        scroll: scroll.saturating_sub(1),
                    })
                }
                _ => self.popup = Some(Popup::Notices { scroll }),
            },
            Popup::Conflicts(dialog) => self.conflicts_key(dialog, key),
            Popup::Detail {
                title,
                lines,
                scroll,
            } => self.detail_key(title, lines, scroll, key),
            Popup::Picker {
                asked,
                title,
                items,
                selected,
            } => match self.keymap.lookup(Scope::Global, &key) {
                Some(Action::Back) => {}
                Some(Action::Select) => {
                    if let Some(item) = items.get(selected) {
                        let item = item.clone();
                        let answer = self.with_screen(asked.screen, |s, cx| {
                            s.on_prompt(&*asked.what, &item, cx)
                        });
                        if let Err(why) = answer {
                            self.flash(Level::Error, why);
                        }
                    }
                }
                Some(Action::Down) => {
                    self.popup = Some(Popup::Picker {
                        asked,
                        title,
                        selected: (selected + 1).min(items.len().saturating_sub(1)),
                        items,
                    })
                }
                Some(Action::Up) => {
                    self.popup = Some(Popup::Picker {
                        asked,
                        title,
                        items,
                        selected: selected.saturating_sub(1),
                    })
                }
                _ => {
                    self.popup = Some(Popup::Picker {
                        asked,
                        title,
                        items,
                        selected,
                    })
                }
            },
        }
    }

    /// Shows all of an entry in a popup (now, or once the dialog on screen closes).
    pub fn show_detail(&mut self, title: String, lines: Vec<String>) {
        let popup = Popup::Detail {
            title,
            lines,
            scroll: 0,
        };
        if self.popup.is_some() {
            self.deferred.push_back(popup);
        } else {
            self.popup = Some(popup);
        }
    }

    fn detail_key(&mut self, title: String, lines: Vec<String>, scroll: usize, key: KeyEvent) {
        let width = self.screen_width.get();
        let last = super::ui::detail_scroll_limit(&lines, width, self.screen_height.get());
        let page = 10;
        let scroll = match self.keymap.lookup(Scope::Global, &key) {
            Some(Action::Back | Action::Select | Action::Quit) => return,
            Some(Action::Copy) => {
                self.copy("detail", lines.join("\n"));
                scroll
            }
            Some(Action::Down) => scroll + 1,
            Some(Action::Up) => scroll.saturating_sub(1),
            Some(Action::PageDown) => scroll + page,
            Some(Action::PageUp) => scroll.saturating_sub(page),
            Some(Action::Top) => 0,
            Some(Action::Bottom) => last,
            _ => scroll,
        };
        self.popup = Some(Popup::Detail {
            title,
            lines,
            scroll: scroll.min(last),
        });
    }

    fn quit_choice(&mut self, choice: usize) {
        match choice {
            0 => {
                if self.loaded().is_none() || self.screens.clients.editor_broken() {
                    self.flash(
                        Level::Error,
                        "cannot save: the policy does not parse; fix it or discard",
                    );
                    return;
                }
                self.quit_after_save = true;
                if self.screens.clients.editor.is_some() {
                    self.apply_editor(true);
                } else {
                    let text = self.text().to_string();
                    self.save_text(text);
                }
            }
            1 => {
                if self.kept.is_some() && self.keep_unsaved {
                    self.kept = None;
                    self.submit(Job::KeepUnsaved { text: None });
                }
                if self.editor_kept.is_some() && self.keep_unsaved {
                    self.editor_kept = None;
                    self.submit(Job::KeepEditorText { text: None });
                }
                self.running = false;
            }
            _ => {}
        }
    }

    fn confirmed(&mut self, what: Confirmation) {
        match what {
            Confirmation::Screen(asked) => {
                self.with_screen(asked.screen, |s, cx| s.on_confirm(&*asked.what, cx));
            }
            Confirmation::RevokeToken { id, reason, .. } => {
                let entry = crate::policy::NewRevocation {
                    id,
                    reason,
                    by: self.operator.clone(),
                    at: self.now,
                };
                self.submit(Job::Revoke { entry });
            }
            Confirmation::Recover { text } => {
                self.derive(
                    PolicyInput::Text(text),
                    PolicyPurpose::Replace { save: false },
                );
            }
            Confirmation::RecoverEditor { text } => {
                self.editor_kept = Some(text.clone());
                let original = self.text().to_string();
                self.screens
                    .clients
                    .restore_editor(&original, &text, self.now);
                self.screen = ScreenId::Clients;
                self.flash(
                    Level::Info,
                    "restored the editor's unapplied text: Esc applies, ctrl-s saves",
                );
            }
            Confirmation::ResetToUpstream => {
                self.screens.changes.last_push = Some("resetting to the upstream…".into());
                self.submit(Job::ResetToUpstream);
            }
            Confirmation::Tighten { edits } => {
                self.staging = Some(Staging {
                    total: edits.len(),
                    rest: edits.into(),
                });
                self.stage_next();
            }
        }
    }

    /// Acts on a prompt's text. An `Err` says why the text is refused; the prompt stays open
    /// with what was typed, so nothing has to be typed again.
    fn prompt_submitted(&mut self, kind: PromptKind, text: String) -> Result<(), String> {
        let empty_ok = matches!(kind, PromptKind::Screen { empty_ok: true, .. });
        if text.is_empty() && !empty_ok {
            self.flash(Level::Info, "cancelled: nothing entered");
            return Ok(());
        }
        match kind {
            PromptKind::Screen { asked, .. } => {
                return self
                    .with_screen(asked.screen, |s, cx| s.on_prompt(&*asked.what, &text, cx));
            }
            PromptKind::RevocationReason { id, what } => {
                let lines = vec![
                    format!("Revoke {what}?"),
                    "Every token delegated from it is refused too, once this is committed, pushed"
                        .into(),
                    "and the server has synced. Reason:".into(),
                    format!("  {text}"),
                ];
                self.confirm(
                    Confirmation::RevokeToken {
                        id,
                        what,
                        reason: text,
                    },
                    "Revoke token",
                    lines,
                );
            }
        }
        Ok(())
    }

    // ---- filter -------------------------------------------------------------------------

    fn open_filter(&mut self) {
        let current = self.current_filter().to_string();
        let mut input = TextArea::new(vec![current]);
        input.move_cursor(ratatui_textarea::CursorMove::End);
        self.filter_input = Some(input);
    }

    pub fn current_filter(&self) -> &str {
        self.current().filter().unwrap_or_default()
    }

    pub(crate) fn set_filter_text(&mut self, text: String) {
        self.with_screen(self.screen, |s, cx| s.set_filter(text, cx));
    }

    fn filter_key(&mut self, key: KeyEvent) {
        let Some(mut input) = self.filter_input.take() else {
            return;
        };
        match self.typing_action(&key) {
            Some(Action::Back) => {
                self.set_filter_text(String::new());
            }
            Some(Action::Select) => {}
            _ => {
                input.input(key);
                let text = input.lines().join("");
                self.set_filter_text(text);
                self.filter_input = Some(input);
            }
        }
    }

    /// How many items the current filter matches (for the status bar).
    pub fn match_count(&self) -> Option<(usize, usize)> {
        self.current().match_count(self.loaded(), &self.tree)
    }

    // ---- palette ------------------------------------------------------------------------

    fn open_palette(&mut self) {
        self.listing = Listing::default();
        let completion = self.completion(super::palette::stage(self, ""));
        self.popup = Some(Popup::Palette {
            input: TextArea::new(vec![String::new()]),
            history_at: None,
            completion,
        });
    }

    /// A key in the palette: ↑/↓ and tab/shift-tab choose among the commands listed (filling
    /// the input), the palette's own keys step through the history, enter runs the line.
    fn palette_key(
        &mut self,
        mut input: TextArea<'static>,
        mut history_at: Option<usize>,
        mut completion: Completion,
        key: KeyEvent,
    ) {
        let action = super::screens::typing_action_in(&self.keymap, Scope::Palette, &key);
        match action {
            Some(Action::Back) => return,
            Some(Action::Select) => {
                let line = input.lines().join("");
                let line = line.trim().to_string();
                if !line.is_empty() {
                    self.palette_history.retain(|h| *h != line);
                    self.palette_history.push(line.clone());
                    self.run_command(&line);
                }
                return;
            }
            Some(action @ (Action::FocusNext | Action::FocusPrev | Action::Up | Action::Down)) => {
                let forward = matches!(action, Action::FocusNext | Action::Down);
                if let Some(line) = completion.step(forward) {
                    input = one_line(line);
                }
            }
            Some(action @ (Action::HistoryBack | Action::HistoryForward))
                if !self.palette_history.is_empty() =>
            {
                let last = self.palette_history.len() - 1;
                history_at = Some(match (history_at, action) {
                    (None, _) => last,
                    (Some(at), Action::HistoryBack) => at.saturating_sub(1),
                    (Some(at), _) => (at + 1).min(last),
                });
                let entry = self.palette_history[history_at.unwrap_or(last)].clone();
                completion = self.completion(super::palette::stage(self, &entry));
                input = one_line(entry);
            }
            _ => {
                if input.input(key) {
                    let line = input.lines().join("");
                    completion = self.completion(super::palette::stage(self, &line));
                }
            }
        }
        self.popup = Some(Popup::Palette {
            input,
            history_at,
            completion,
        });
    }

    /// Ranks a stage's candidates; a path whose directory has not been read yet asks a worker
    /// to read it (once), and the list fills in when it is read (`listing_read`).
    fn completion(&mut self, stage: Stage) -> Completion {
        if let Some(dir) = &stage.wants_dir
            && self.listing_asked.as_deref() != Some(dir)
        {
            self.listing_asked = Some(dir.clone());
            self.submit(Job::ListDirectory { dir: dir.clone() });
        }
        Completion::new(stage)
    }

    /// A directory was read for a path's pick-list: the open prompt or palette lists it.
    fn listing_read(&mut self, listing: Listing) {
        if self.listing_asked == listing.dir {
            self.listing_asked = None;
        }
        self.listing = listing;
        match self.popup.take() {
            Some(Popup::Prompt {
                kind,
                title,
                hint,
                input,
                error,
                choices,
                completion,
            }) => {
                let line = input.lines().join("");
                let stage = choices.stage(&line, &self.listing);
                let completion = if stage.wants_dir.is_none() && completion.chosen.is_none() {
                    Completion::new(stage)
                } else {
                    completion
                };
                self.popup = Some(Popup::Prompt {
                    kind,
                    title,
                    hint,
                    input,
                    error,
                    choices,
                    completion,
                });
            }
            Some(Popup::Palette {
                input,
                history_at,
                completion,
            }) => {
                let stage = super::palette::stage(self, &input.lines().join(""));
                let completion = if stage.wants_dir.is_none() && completion.chosen.is_none() {
                    Completion::new(stage)
                } else {
                    completion
                };
                self.popup = Some(Popup::Palette {
                    input,
                    history_at,
                    completion,
                });
            }
            other => self.popup = other,
        }
    }

    pub fn run_command(&mut self, line: &str) {
        super::palette::run(self, line);
    }

    /// Copies `text` where the clipboard setting says: OSC 52 from the terminal loop, or
    /// tmux's buffer or a private file from a worker (the flash says where once it is there).
    pub fn copy(&mut self, what: &str, text: String) {
        use super::clipboard::Clipboard;
        match &self.clipboard {
            Clipboard::Off => self.flash(
                Level::Warn,
                "copying is off (clipboard = \"off\" in the config, or no OSC 52 and no state directory)",
            ),
            Clipboard::Osc52 => {
                self.flash(Level::Success, format!("copied {what} (osc52)"));
                self.copied = Some(text);
            }
            to @ (Clipboard::Tmux { .. } | Clipboard::File(_)) => {
                let to = to.clone();
                self.submit(Job::Copy {
                    what: what.to_string(),
                    text,
                    to,
                    fallback: super::clipboard::default_file(),
                });
            }
        }
    }

    fn copy_done(&mut self, what: String, to: Result<String, String>) {
        match to {
            Ok(place) => self.flash(Level::Success, format!("copied {what} to {place}")),
            Err(why) => self.flash(Level::Error, format!("{what} not copied: {why}")),
        }
    }
}

/// Lines added and removed from `old` to `new`, by a real line diff (git's).
fn line_changes(old: &str, new: &str) -> (usize, usize) {
    git2::Patch::from_buffers(old.as_bytes(), None, new.as_bytes(), None, None)
        .and_then(|patch| patch.line_stats())
        .map(|(_, added, removed)| (added, removed))
        .unwrap_or_else(|_| {
            // git cannot diff them (it always can for text): count lines, never less than 1.
            let (a, b) = (old.lines().count(), new.lines().count());
            (b.saturating_sub(a).max(1), a.saturating_sub(b))
        })
}

/// Exactly two words, or `usage` as the reason.
pub(crate) fn two_words(text: &str, usage: &str) -> Result<(String, String), String> {
    match text.split_whitespace().collect::<Vec<_>>().as_slice() {
        [first, second] => Ok((first.to_string(), second.to_string())),
        _ => Err(usage.to_string()),
    }
}

pub(crate) fn one_word(text: &str, what: &str) -> Result<String, String> {
    match text.split_whitespace().collect::<Vec<_>>().as_slice() {
        [word] => Ok(word.to_string()),
        _ => Err(format!("{what}, without spaces: {text:?}")),
    }
}

/// An identity as clients.toml takes it: one token (no spaces, quotes or empty `:` segments)
/// in the `uri:` scheme that certificates and tokens use.
pub(crate) fn check_identity(text: &str) -> Result<(), String> {
    let why =
        "an identity is one word with no spaces, starting with uri:, e.g. uri:urn:company:bob";
    if text.split_whitespace().count() != 1 {
        return Err(format!("{text:?} is not an identity: {why}"));
    }
    crate::token::validate_identity(text).map_err(|e| format!("{e}; {why}"))?;
    if !text.starts_with("uri:") {
        return Err(format!("{text:?} does not start with uri:; {why}"));
    }
    Ok(())
}

/// `~` and `~/…` are the home directory, as in a shell (`~user` is left alone); without HOME
/// the path stays as typed.
/// A one-line text field holding `text`, the cursor at its end.
fn one_line(text: String) -> TextArea<'static> {
    let mut input = TextArea::new(vec![text]);
    input.move_cursor(ratatui_textarea::CursorMove::End);
    input
}

pub(crate) fn expand_home(text: &str) -> PathBuf {
    let rest = match text {
        "~" => "",
        _ => match text.strip_prefix("~/") {
            Some(rest) => rest,
            None => return PathBuf::from(text),
        },
    };
    match std::env::var_os("HOME") {
        Some(home) if rest.is_empty() => PathBuf::from(home),
        Some(home) => PathBuf::from(home).join(rest),
        None => PathBuf::from(text),
    }
}

/// How many of a tightening's edits its confirmation lists (the rest are counted, and all are
/// kept in Messages): the proof and the buttons stay on an 80×24 screen.
const TIGHTENING_SHOWN: usize = 10;

/// The confirmation of a tightening: the proof, each edit and the access it removes, what was
/// left out and why.
fn tightening_lines(
    proposal: &crate::policy::Proposal,
    window: &str,
    short_trail: bool,
    now: i64,
) -> Vec<String> {
    let proof = &proposal.proof;
    let mut lines = vec![
        format!(
            "Stage {} edits removing access unused in the last {window}?",
            proposal.items.len()
        ),
        format!(
            "proof: {} requests replayed, {} changed; {} identities seen still served",
            proof.replayed, proof.changed, proof.identities
        ),
    ];
    for item in proposal.items.iter().take(TIGHTENING_SHOWN) {
        lines.push(format!(
            "  - {} ({})",
            item.describe_edit(),
            item.unused.last_use(now)
        ));
    }
    if proposal.items.len() > TIGHTENING_SHOWN {
        lines.push(format!(
            "  … and {} more (every edit is listed in Messages, 7)",
            proposal.items.len() - TIGHTENING_SHOWN
        ));
    }
    for blocked in &proposal.blocked {
        lines.push(format!(
            "left out: {} — it would deny {} ({})",
            blocked.item.describe_edit(),
            blocked.request,
            blocked.would_be.reason
        ));
    }
    for (unused, why) in &proposal.kept {
        lines.push(format!("not removed: {} — {why}", unused.what()));
    }
    if short_trail {
        lines.push(format!(
            "note: the audit trail does not reach back {window}: access used only before it began counts as unused"
        ));
    }
    lines.push("Nothing is saved or committed; each edit is one undo step (u).".into());
    lines
}

fn describe_edit(edit: &crate::policy::Edit) -> String {
    use crate::policy::Edit;
    match edit {
        Edit::AddClient { identity } => format!("added {identity} (unsaved; ctrl-s saves)"),
        Edit::RemoveClient { identity } => format!("removed {identity} (unsaved; u undoes)"),
        Edit::Grant {
            identity,
            resource,
            operation,
        } => format!("{identity} may {operation} on {resource} (unsaved)"),
        Edit::Revoke {
            identity,
            resource,
            operation,
        } => format!("{identity} may no longer {operation} on {resource} (unsaved)"),
        Edit::Assign { subject, role, .. } => format!("{subject} is now {role} (unsaved)"),
        Edit::Unassign { subject, .. } => format!("{subject} back to the default role (unsaved)"),
        other => format!("edited: {} (unsaved)", edit_name(other)),
    }
}

fn edit_name(edit: &crate::policy::Edit) -> String {
    serde_json::to_value(edit)
        .ok()
        .and_then(|v| v.get("edit").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| "edit".into())
}
