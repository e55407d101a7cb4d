//! The six screens and the contract they keep with the console (`Screen`). Each screen owns its
//! state, its prompts and confirmations (its own types, handed back to it with the answer) and
//! its hints; it reaches the console only through `Cx`, never through `App`. `Screens` is the
//! one place that lists them.

pub mod activity;
pub mod changes;
pub mod clients;
pub mod delegations;
pub mod roles;
pub mod server;
pub mod tokens;

use std::any::Any;
use std::fmt;
use std::rc::Rc;

use ratatui::Frame;
use ratatui::layout::Rect;

use super::app::{App, Level};
use super::jobs::{Job, JobResult};
use super::keymap::{Action, Scope};
use crate::policy::{DelegationTree, Edit, LoadedPolicy};
use changes::ChangesState;
use clients::ClientsState;
use delegations::DelegationsState;
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

/// What every screen offers the console. Screens not yet moved behind `on_action` (Clients,
/// Tokens, Changes, Server) still act through `impl App` blocks in their modules.
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
    /// The text typed into a prompt this screen asked for (`what` is what it asked with). An
    /// `Err` says why the text is refused; the prompt stays open with it.
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
}

impl ScreenId {
    pub const ALL: [ScreenId; 6] = [
        ScreenId::Clients,
        ScreenId::Delegations,
        ScreenId::Roles,
        ScreenId::Tokens,
        ScreenId::Changes,
        ScreenId::Server,
    ];
}

/// Every screen's state, each owned by its screen. The one place that maps a `ScreenId` to
/// its screen: adding a screen is its module, a field and an arm here, and its keys.
#[derive(Default)]
pub struct Screens {
    pub clients: ClientsState,
    pub delegations: DelegationsState,
    pub roles: RolesState,
    pub tokens: TokensState,
    pub changes: ChangesState,
    pub server: ServerState,
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
    Edit(Edit),
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
    },
    Copy(&'static str, String),
    GoTo(ScreenId),
    Revoke {
        id: String,
        what: String,
    },
}

/// What a screen may read and ask for while it handles a key, an action, an answer or a job
/// result: the policy, the delegation tree, the clock and the mode to read; flash, submit a
/// job, apply an edit, confirm, prompt, copy and go to another screen to ask. A screen never
/// holds `App`, so it cannot reach another screen's state.
pub struct Cx<'a> {
    pub now: i64,
    pub readonly: bool,
    /// The policy file is in a git repository.
    pub has_repo: bool,
    /// A server is configured (embedded or remote).
    pub has_server: bool,
    policy: Option<&'a LoadedPolicy>,
    tree: &'a DelegationTree,
    requests: Vec<Request>,
}

impl<'a> Cx<'a> {
    pub fn new(
        now: i64,
        readonly: bool,
        has_repo: bool,
        has_server: bool,
        policy: Option<&'a LoadedPolicy>,
        tree: &'a DelegationTree,
    ) -> Cx<'a> {
        Cx {
            now,
            readonly,
            has_repo,
            has_server,
            policy,
            tree,
            requests: Vec::new(),
        }
    }

    /// The policy being edited; `None` while the file does not parse.
    pub fn policy(&self) -> Option<&'a LoadedPolicy> {
        self.policy
    }

    pub fn tree(&self) -> &'a DelegationTree {
        self.tree
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
        self.requests.push(Request::Edit(edit));
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

    /// Asks for a line of text; the screen's `on_prompt` gets `what` and the text.
    pub fn prompt<T: Any>(&mut self, what: T, title: &str, hint: &str, initial: &str) {
        self.requests.push(Request::Prompt {
            what: Rc::new(what),
            title: title.to_string(),
            hint: hint.to_string(),
            initial: initial.to_string(),
        });
    }

    pub fn copy(&mut self, what: &'static str, text: String) {
        self.requests.push(Request::Copy(what, text));
    }

    pub fn go_to(&mut self, screen: ScreenId) {
        self.requests.push(Request::GoTo(screen));
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
