//! The eight screens and the contract they keep with the console (`Screen`). Each screen owns its
//! state, its prompts, confirmations and pick-lists (its own types, handed back to it with the
//! answer), its job results and its hints; it reaches the console only through `Cx` (read what
//! it needs, ask for the rest), never through `App`, so it cannot reach another screen's state.
//! `Screens` is the one place that lists them. Adding a screen touches three files: its module,
//! this one (`ScreenId`, a `Screens` field and its arms) and `keymap.rs` (its scope, its go-to
//! action and its keys).

pub mod activity;
pub mod changes;
pub mod clients;
pub mod delegations;
pub mod fleet;
pub mod messages;
pub mod review;
pub mod roles;
pub mod server;
pub mod tokens;

use std::any::Any;
use std::fmt;
use std::path::Path;
use std::rc::Rc;

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

use super::app::{App, Flash, Level};
use super::complete::{self, Choices};
use super::jobs::{Job, JobResult};
use super::keymap::{Action, Keymap, Scope};
use crate::policy::{DelegationTree, Edit, LoadedPolicy};
use changes::ChangesState;
use clients::ClientsState;
use delegations::DelegationsState;
use messages::MessagesState;
use review::ReviewState;
use roles::RolesState;
use server::ServerState;
use tokens::TokensState;

/// One entry of the hint bar: an action (its key comes from the live keymap) and the word shown,
/// when it is not the action's own short label ("esc apply" in the editor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub action: Action,
    pub label: Option<&'static str>,
}

impl Hint {
    pub fn label(self) -> &'static str {
        self.label.unwrap_or_else(|| self.action.short())
    }
}

/// Hints of actions under their own short labels.
pub fn hints(actions: &[Action]) -> Vec<Hint> {
    actions
        .iter()
        .map(|&action| Hint {
            action,
            label: None,
        })
        .collect()
}

/// A hint under another word than the action's short label.
pub fn hint(action: Action, label: &'static str) -> Hint {
    Hint {
        action,
        label: Some(label),
    }
}

/// What every screen offers the console, and all the console knows of a screen: keys reach it
/// as actions (`on_action`) or, while it has a text field open, as keys (`on_key`, `on_paste`);
/// the answers to its own prompts, confirmations and pick-lists come back to it with what it
/// asked (`on_prompt`, `on_confirm`); it takes the job results it asked for (`on_result`).
pub trait Screen {
    fn title(&self) -> &'static str;
    /// The title when the terminal is narrow.
    fn short_title(&self) -> &'static str {
        self.title()
    }
    /// Whose bindings (besides the global ones) keys are looked up in.
    fn scope(&self) -> Scope;
    /// The keys worth showing for the focused pane, most useful first. While `typing`, only
    /// these are shown (no palette, help or quit: those keys type text).
    fn hints(&self) -> Vec<Hint>;
    /// Keys go into a text field the screen has open (an editor, a paste box).
    fn typing(&self) -> bool {
        false
    }
    /// The `/` filter's text, or `None` when the screen has no filter.
    fn filter(&self) -> Option<&str> {
        None
    }
    fn set_filter(&mut self, _text: String, _cx: &mut Cx) {}
    /// How many items the filter lets through, of how many (for the status bar).
    fn match_count(
        &self,
        _policy: Option<&LoadedPolicy>,
        _tree: &DelegationTree,
    ) -> Option<(usize, usize)> {
        None
    }
    /// The screen was switched to.
    fn on_enter(&mut self, _cx: &mut Cx) {}
    fn on_action(&mut self, _action: Action, _cx: &mut Cx) {}
    /// A key, before the keymap sees it, while the screen has a text field open (`typing`):
    /// true when the screen took it.
    fn on_key(&mut self, _key: KeyEvent, _cx: &mut Cx) -> bool {
        false
    }
    /// Pasted text (bracketed paste) while no popup is open: true when the screen took it.
    fn on_paste(&mut self, _text: &str, _cx: &mut Cx) -> bool {
        false
    }
    /// The text typed into a prompt this screen asked for, or the item picked from a list it
    /// offered (`what` is what it asked with). An `Err` says why the text is refused; the
    /// prompt stays open with it.
    fn on_prompt(&mut self, _what: &dyn Any, _text: &str, _cx: &mut Cx) -> Result<(), String> {
        Ok(())
    }
    /// A confirmation this screen asked for was confirmed.
    fn on_confirm(&mut self, _what: &dyn Any, _cx: &mut Cx) {}
    /// A job's result: the screen takes the results it asked for and hands back the others.
    fn on_result(&mut self, result: JobResult, _cx: &mut Cx) -> Option<JobResult> {
        Some(result)
    }
    /// Drawing is a pure function of the screen's state and what `app` shows read-only.
    fn render(&self, frame: &mut Frame, area: Rect, app: &App);
}

/// The screens, in number-key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenId {
    Clients,
    Delegations,
    Roles,
    Tokens,
    Changes,
    Server,
    Messages,
    Review,
}

impl ScreenId {
    pub const ALL: [ScreenId; 8] = [
        ScreenId::Clients,
        ScreenId::Delegations,
        ScreenId::Roles,
        ScreenId::Tokens,
        ScreenId::Changes,
        ScreenId::Server,
        ScreenId::Messages,
        ScreenId::Review,
    ];
}

/// Every screen's state, each owned by its screen. The one place that maps a `ScreenId` to
/// its screen: adding a screen is its module, a field and an arm here, and its keys.
/// `App` reads a few screens' state directly where the whole console depends on it: the raw
/// editor's text (unsaved work at save, quit and recovery) and the views rebuilt when the
/// policy changes.
#[derive(Default)]
pub struct Screens {
    pub clients: ClientsState,
    pub delegations: DelegationsState,
    pub roles: RolesState,
    pub tokens: TokensState,
    pub changes: ChangesState,
    pub server: ServerState,
    pub messages: MessagesState,
    pub review: ReviewState,
}

impl Screens {
    pub fn get(&self, id: ScreenId) -> &dyn Screen {
        match id {
            ScreenId::Clients => &self.clients,
            ScreenId::Delegations => &self.delegations,
            ScreenId::Roles => &self.roles,
            ScreenId::Tokens => &self.tokens,
            ScreenId::Changes => &self.changes,
            ScreenId::Server => &self.server,
            ScreenId::Messages => &self.messages,
            ScreenId::Review => &self.review,
        }
    }

    pub fn get_mut(&mut self, id: ScreenId) -> &mut dyn Screen {
        match id {
            ScreenId::Clients => &mut self.clients,
            ScreenId::Delegations => &mut self.delegations,
            ScreenId::Roles => &mut self.roles,
            ScreenId::Tokens => &mut self.tokens,
            ScreenId::Changes => &mut self.changes,
            ScreenId::Server => &mut self.server,
            ScreenId::Messages => &mut self.messages,
            ScreenId::Review => &mut self.review,
        }
    }
}

/// A question a screen asked (a prompt or a confirmation), in the screen's own terms: handed
/// back to that screen with the answer. Only the screen that asked knows its type.
#[derive(Clone)]
pub struct Asked {
    pub screen: ScreenId,
    pub what: Rc<dyn Any>,
}

impl fmt::Debug for Asked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Asked({:?})", self.screen)
    }
}

/// What a screen asks the console to do. Carried out in order once the screen returns.
pub enum Request {
    Flash(Level, String),
    Submit(Job),
    RefreshGit,
    Edit {
        edit: Edit,
        select: Option<String>,
    },
    ReplaceText {
        text: String,
        save: bool,
    },
    SaveText(String),
    EditorChanged,
    ExternalEdit,
    Commit(String),
    SavedTextUnknown,
    Reload(Option<String>),
    RebuildViews,
    ShowChain(Vec<String>),
    Confirm {
        what: Rc<dyn Any>,
        title: String,
        lines: Vec<String>,
    },
    Prompt {
        what: Rc<dyn Any>,
        title: String,
        hint: String,
        initial: String,
        /// An empty answer means something (else it cancels the prompt).
        empty_ok: bool,
        /// What the line completes from (a pick-list under the input; free text still goes).
        choices: Choices,
    },
    Pick {
        what: Rc<dyn Any>,
        title: String,
        items: Vec<String>,
    },
    Copy(&'static str, String),
    /// Shows `lines` in a scrolling popup titled `title` (Enter on an entry: all of it).
    Detail {
        title: String,
        lines: Vec<String>,
    },
    GoTo(ScreenId),
    Revoke {
        id: String,
        what: String,
    },
}

/// What a screen may read and ask for while it handles a key, an action, an answer or a job
/// result: the policy (its text, the text on disk, whether there are unsaved edits), the
/// delegation tree, the clock, the mode and the jobs running to read; flash, submit a job,
/// apply an edit, confirm, prompt, copy and go to another screen to ask. A screen never holds
/// `App`, so it cannot reach another screen's state.
pub struct Cx<'a> {
    pub now: i64,
    pub readonly: bool,
    /// The policy file is in a git repository.
    pub has_repo: bool,
    /// A server is configured (embedded or remote).
    pub has_server: bool,
    /// The raw editor is open with text not yet applied to the policy.
    pub editor_unapplied: bool,
    view: CxView<'a>,
    requests: Vec<Request>,
}

/// What a screen reads through `Cx`, borrowed from the console.
pub struct CxView<'a> {
    pub policy: Option<&'a LoadedPolicy>,
    pub tree: &'a DelegationTree,
    /// The policy's text as edited (unsaved edits included) and as last read or saved.
    pub text: &'a str,
    pub saved_text: &'a str,
    pub policy_path: &'a Path,
    /// Identities with a client certificate in the workspace (for demo flows).
    pub demo_clients: &'a [String],
    pub keymap: &'a Keymap,
    pub in_flight: &'a [(u64, Job)],
    /// Every status message kept, oldest first.
    pub messages: &'a std::collections::VecDeque<Flash>,
    /// The embedded server's audit file and the unused-access window (seconds), when this
    /// console runs a server.
    pub audit_trail: Option<(&'a Path, u64)>,
}

impl<'a> Cx<'a> {
    pub fn new(
        now: i64,
        readonly: bool,
        (has_repo, has_server): (bool, bool),
        editor_unapplied: bool,
        view: CxView<'a>,
    ) -> Cx<'a> {
        Cx {
            now,
            readonly,
            has_repo,
            has_server,
            editor_unapplied,
            view,
            requests: Vec::new(),
        }
    }

    /// The policy being edited; `None` while the file does not parse.
    pub fn policy(&self) -> Option<&'a LoadedPolicy> {
        self.view.policy
    }

    pub fn tree(&self) -> &'a DelegationTree {
        self.view.tree
    }

    /// The policy's text as edited (the text on disk while it does not parse).
    pub fn text(&self) -> &'a str {
        self.view.text
    }

    /// Unsaved edits: in the policy, or typed in the raw editor and not yet applied. Asked
    /// only when needed: at 10,000 clients the comparison reads a megabyte.
    pub fn dirty(&self) -> bool {
        self.editor_unapplied || self.view.text != self.view.saved_text
    }

    /// The text on disk, as last read or saved.
    pub fn saved_text(&self) -> &'a str {
        self.view.saved_text
    }

    pub fn policy_path(&self) -> &'a Path {
        self.view.policy_path
    }

    /// The policy file's name ("clients.toml").
    pub fn policy_file_name(&self) -> String {
        self.view
            .policy_path
            .file_name()
            .map_or("clients.toml".into(), |n| n.to_string_lossy().into_owned())
    }

    pub fn demo_clients(&self) -> &'a [String] {
        self.view.demo_clients
    }

    /// Every client identity of the policy (a pick-list's candidates).
    pub fn identities(&self) -> Vec<String> {
        self.policy()
            .map(|l| complete::identities(&l.policy))
            .unwrap_or_default()
    }

    /// Every resource granted anywhere in the policy, with the operations granted on it.
    pub fn policy_grants(&self) -> Vec<(String, Vec<String>)> {
        self.policy()
            .map(|l| complete::policy_grants(&l.policy))
            .unwrap_or_default()
    }

    /// Whether a job like this is queued or running (so it is not asked for twice).
    pub fn job_running(&self, like: impl Fn(&Job) -> bool) -> bool {
        self.view.in_flight.iter().any(|(_, job)| like(job))
    }

    /// The navigation a key is, inside a text field: only keys that cannot be text (enter,
    /// esc, tab, arrows, ctrl-…) count, so a letter bound to an action still types itself.
    pub fn typing_action(&self, key: &KeyEvent) -> Option<Action> {
        typing_action(self.view.keymap, key)
    }

    pub fn flash(&mut self, level: Level, text: impl Into<String>) {
        self.requests.push(Request::Flash(level, text.into()));
    }

    pub fn submit(&mut self, job: Job) {
        self.requests.push(Request::Submit(job));
    }

    /// Asks git for the repository's status again (the status bar and Changes show it).
    pub fn refresh_git(&mut self) {
        self.requests.push(Request::RefreshGit);
    }

    /// Applies an edit to the policy (on a worker; input waits for it).
    pub fn edit(&mut self, edit: Edit) {
        self.requests.push(Request::Edit { edit, select: None });
    }

    /// `edit`, then selects client `identity` in the client list (an added or renamed one).
    pub fn edit_then_select(&mut self, edit: Edit, identity: String) {
        self.requests.push(Request::Edit {
            edit,
            select: Some(identity),
        });
    }

    /// Makes `text` the policy, as one undo step (the raw editor's apply); with `save`,
    /// writes it too. Once it is in, the raw editor closes.
    pub fn replace_text(&mut self, text: String, save: bool) {
        self.requests.push(Request::ReplaceText { text, save });
    }

    /// Writes `text` to the policy file (over what this console last read or wrote).
    pub fn save_text(&mut self, text: String) {
        self.requests.push(Request::SaveText(text));
    }

    /// The raw editor's text changed: the console keeps it for recovery once typing pauses.
    pub fn editor_changed(&mut self) {
        self.requests.push(Request::EditorChanged);
    }

    /// Hands the terminal to `$VISUAL` / `$EDITOR` on the policy file.
    pub fn external_edit(&mut self) {
        self.requests.push(Request::ExternalEdit);
    }

    /// Commits the policy (and revocations.toml) with `message`, saving unsaved edits first.
    pub fn commit(&mut self, message: String) {
        self.requests.push(Request::Commit(message));
    }

    /// A commit that saved first failed: the console no longer knows what the file holds.
    pub fn saved_text_unknown(&mut self) {
        self.requests.push(Request::SavedTextUnknown);
    }

    /// Reads the working files again (a rebase rewrote them); `note` says why, once read.
    pub fn reload(&mut self, note: Option<String>) {
        self.requests.push(Request::Reload(note));
    }

    /// Rebuilds the views that read more than one screen's state (the Changes screen replays
    /// the Server screen's audit feed against the edited policy).
    pub fn rebuild_views(&mut self) {
        self.requests.push(Request::RebuildViews);
    }

    /// Highlights a token's identity chain (root first) in the delegation tree.
    pub fn show_chain(&mut self, chain: Vec<String>) {
        self.requests.push(Request::ShowChain(chain));
    }

    /// Offers a list to pick from; the screen's `on_prompt` gets `what` and the item picked.
    pub fn pick<T: Any>(&mut self, what: T, title: &str, items: Vec<String>) {
        self.requests.push(Request::Pick {
            what: Rc::new(what),
            title: title.to_string(),
            items,
        });
    }

    /// Asks to confirm `what`; the screen's `on_confirm` gets it back if confirmed. Focus
    /// starts on Cancel.
    pub fn confirm<T: Any>(&mut self, what: T, title: &str, lines: Vec<String>) {
        self.requests.push(Request::Confirm {
            what: Rc::new(what),
            title: title.to_string(),
            lines,
        });
    }

    /// The prompt every `prompt…` asks for.
    fn ask<T: Any>(
        &mut self,
        what: T,
        title: &str,
        hint: &str,
        initial: &str,
        empty_ok: bool,
        choices: Choices,
    ) {
        self.requests.push(Request::Prompt {
            what: Rc::new(what),
            title: title.to_string(),
            hint: hint.to_string(),
            initial: initial.to_string(),
            empty_ok,
            choices,
        });
    }

    /// Asks for a line of text; the screen's `on_prompt` gets `what` and the text. An empty
    /// answer cancels.
    pub fn prompt<T: Any>(&mut self, what: T, title: &str, hint: &str, initial: &str) {
        self.ask(what, title, hint, initial, false, Choices::None);
    }

    /// `prompt` with a pick-list under the input: the candidates of `choices` that match what
    /// is typed, best first; Tab (or an arrow) fills one in. Free text is still an answer.
    pub fn prompt_choosing<T: Any>(
        &mut self,
        what: T,
        title: &str,
        hint: &str,
        initial: &str,
        choices: impl Into<Choices>,
    ) {
        self.ask(what, title, hint, initial, false, choices.into());
    }

    /// `prompt`, where an empty answer is an answer too ("verify as the token's own
    /// identity").
    pub fn prompt_or_empty<T: Any>(&mut self, what: T, title: &str, hint: &str, initial: &str) {
        self.ask(what, title, hint, initial, true, Choices::None);
    }

    /// `prompt_or_empty` with a pick-list (see `prompt_choosing`).
    pub fn prompt_or_empty_choosing<T: Any>(
        &mut self,
        what: T,
        title: &str,
        hint: &str,
        initial: &str,
        choices: impl Into<Choices>,
    ) {
        self.ask(what, title, hint, initial, true, choices.into());
    }

    pub fn copy(&mut self, what: &'static str, text: String) {
        self.requests.push(Request::Copy(what, text));
    }

    pub fn go_to(&mut self, screen: ScreenId) {
        self.requests.push(Request::GoTo(screen));
    }

    /// Shows all of an entry in a popup that scrolls, closes with Esc and copies with `y`.
    pub fn detail(&mut self, title: impl Into<String>, lines: Vec<String>) {
        self.requests.push(Request::Detail {
            title: title.into(),
            lines,
        });
    }

    /// The embedded server's audit file and the unused-access window, if any.
    pub fn audit_trail(&self) -> Option<(&'a Path, u64)> {
        self.view.audit_trail
    }

    /// Every status message kept, oldest first (the Messages screen lists them).
    pub fn messages(&self) -> &'a std::collections::VecDeque<Flash> {
        self.view.messages
    }

    /// Starts revoking the token with revocation id `id` (`what` names it): the console asks
    /// for a reason, then confirms naming what it cuts off.
    pub fn revoke(&mut self, id: String, what: String) {
        self.requests.push(Request::Revoke { id, what });
    }

    pub fn into_requests(self) -> Vec<Request> {
        self.requests
    }
}

/// The navigation a key is inside a text field (see `Cx::typing_action`).
pub fn typing_action(keymap: &Keymap, key: &KeyEvent) -> Option<Action> {
    typing_action_in(keymap, Scope::Global, key)
}

/// `typing_action` in a dialog with keys of its own (`scope`, then the global ones).
pub fn typing_action_in(keymap: &Keymap, scope: Scope, key: &KeyEvent) -> Option<Action> {
    let plain_char = matches!(key.code, KeyCode::Char(_))
        && !key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    if plain_char {
        return None;
    }
    keymap.lookup(scope, key)
}
