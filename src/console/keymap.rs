//! The keymap is data, and the one place keys are described: named actions, the keys bound to
//! them per screen, what an action changes (so `--readonly` can refuse it and say why), and the
//! words the help overlay, hint bar and palette show. Nothing here draws or mutates state.

use std::collections::BTreeMap;
use std::fmt;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Global,
    Clients,
    Delegations,
    Roles,
    Tokens,
    Changes,
    Server,
    Messages,
    Review,
    /// A confirmation dialog.
    Confirm,
    /// The dialog asking what to do with unsaved edits at quit.
    QuitDialog,
    /// The dialog choosing sides of rebase conflicts.
    Conflicts,
    /// The `:` command palette (its own keys besides the text field's).
    Palette,
}

impl Scope {
    /// A dialog's scope: its keys work only while the dialog is open, and its actions are not
    /// palette commands.
    pub fn is_dialog(self) -> bool {
        matches!(
            self,
            Scope::Confirm | Scope::QuitDialog | Scope::Conflicts | Scope::Palette
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Clients => "clients",
            Scope::Delegations => "delegations",
            Scope::Roles => "roles",
            Scope::Tokens => "tokens",
            Scope::Changes => "changes",
            Scope::Server => "server",
            Scope::Messages => "messages",
            Scope::Review => "review",
            Scope::Confirm => "confirm dialog",
            Scope::QuitDialog => "quit dialog",
            Scope::Conflicts => "conflicts dialog",
            Scope::Palette => "command palette",
        }
    }
}

macro_rules! actions {
    ($($variant:ident => $name:literal, $short:literal, $help:literal, $changes:literal;)*) => {
        /// Everything a key can do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Action { $($variant),* }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            /// The name used in the config file's `[keys]` table and the command palette.
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name),* }
            }

            /// The word the hint bar shows next to the key (the name when it is short enough).
            pub fn short(self) -> &'static str {
                match self { $(Action::$variant => if $short.is_empty() { $name } else { $short }),* }
            }

            /// What the help overlay and the palette say the action does.
            pub fn help(self) -> &'static str {
                match self { $(Action::$variant => $help),* }
            }

            /// What the action changes ("changes the policy"), or `None` when it only looks:
            /// the ones that change something are refused in read-only mode, saying this.
            pub fn changes(self) -> Option<&'static str> {
                match self { $(Action::$variant => Some($changes).filter(|c| !c.is_empty())),* }
            }

            /// Changes the policy, the repository, tokens or the server: refused in read-only
            /// mode.
            pub fn is_dangerous(self) -> bool {
                self.changes().is_some()
            }

            /// For the go-to actions, the index of the screen they show (in number-key
            /// order, `screens::ScreenId::ALL`).
            pub fn screen_index(self) -> Option<usize> {
                let go_to = [
                    Action::Screen1,
                    Action::Screen2,
                    Action::Screen3,
                    Action::Screen4,
                    Action::Screen5,
                    Action::Screen6,
                    Action::Screen7,
                    Action::Screen8,
                ];
                go_to.iter().position(|a| *a == self)
            }

            pub fn from_name(name: &str) -> Option<Action> {
                Action::ALL.iter().copied().find(|a| a.name() == name)
            }
        }
    };
}

// One row per action: name (config and palette), short hint label ("" = the name), help text,
// and what it changes ("" = nothing: allowed in read-only mode).
actions! {
    Quit => "quit", "", "quit (asks when there are unsaved edits)", "";
    ForceQuit => "force-quit", "", "quit now, even with unsaved edits", "";
    Help => "help", "", "show or hide this help", "";
    Palette => "palette", "cmd", "command palette", "";
    Filter => "filter", "", "filter the list or tree", "";
    NextMatch => "next-match", "", "next filter match", "";
    PrevMatch => "prev-match", "", "previous filter match", "";
    Screen1 => "screen-clients", "", "go to 1 Clients", "";
    Screen2 => "screen-delegations", "", "go to 2 Delegations", "";
    Screen3 => "screen-roles", "", "go to 3 Domains & roles", "";
    Screen4 => "screen-tokens", "", "go to 4 Tokens", "";
    Screen5 => "screen-changes", "", "go to 5 Changes", "";
    Screen6 => "screen-server", "", "go to 6 Server", "";
    Screen7 => "screen-messages", "", "go to 7 Messages: every status message, with its time", "";
    Screen8 => "screen-review", "", "go to 8 Review: step through the widening changes between two revisions", "";
    FocusNext => "focus-next", "pane", "focus the next pane", "";
    FocusPrev => "focus-prev", "", "focus the previous pane", "";
    Up => "up", "", "move up", "";
    Down => "down", "", "move down", "";
    Left => "left", "", "collapse / move left", "";
    Right => "right", "", "expand / move right", "";
    PageUp => "page-up", "", "page up", "";
    PageDown => "page-down", "", "page down", "";
    Top => "top", "", "first item", "";
    Bottom => "bottom", "", "last item", "";
    Select => "select", "open", "open the selected item: all of it in a popup, or jump to it", "";
    Back => "back", "", "close, cancel, go back", "";
    Copy => "copy", "", "copy the selected item", "";
    Refresh => "refresh", "", "reload from disk, git and the server", "";
    Theme => "theme", "", "cycle the theme", "";
    Mouse => "mouse", "", "turn mouse capture on or off", "";
    Undo => "undo", "", "undo the last policy edit", "changes the policy";
    Redo => "redo", "", "redo", "changes the policy";
    Save => "save", "", "save clients.toml", "changes the policy";
    EditRaw => "edit-toml", "edit", "edit the raw clients.toml (live validation)", "changes the policy";
    ExternalEditor => "external-editor", "", "open clients.toml in $VISUAL / $EDITOR", "changes the policy";
    AddClient => "add-client", "add", "add a client", "changes the policy";
    RemoveClient => "remove-client", "remove", "remove the selected client", "changes the policy";
    Grant => "grant", "", "grant OPERATION on RESOURCE to the selected client", "changes the policy";
    Revoke => "revoke", "", "revoke OPERATION on RESOURCE from the selected client", "changes the policy";
    IdentityTtl => "identity-ttl", "ttl", "set identity token lifetime (0 disables)", "changes the policy";
    RenameClient => "rename-client", "rename", "change the selected client's identifier", "changes the policy";
    SetSetting => "set-setting", "set", "set delegatable, operator, authorization_token_duration or max_delegation_depth", "changes the policy";
    WhatCan => "what-can", "can?", "what can the selected identity do", "";
    AddRole => "add-role", "add role", "add a role to the realm", "changes the policy";
    Assign => "assign", "", "assign SUBJECT a ROLE", "changes the policy";
    Unassign => "unassign", "unassign", "remove the selected assignment", "changes the policy";
    RoleGrant => "role-grant", "grant", "grant OPERATION on RESOURCE to the selected role", "changes the policy";
    RoleRevoke => "role-revoke", "revoke", "revoke OPERATION on RESOURCE from the selected role", "changes the policy";
    RenameRole => "rename-role", "rename", "rename the selected role", "changes the policy";
    RemoveRole => "remove-role", "remove", "remove the selected role", "changes the policy";
    DefaultRole => "default-role", "default", "make the selected role the realm's default", "changes the policy";
    Tighten => "tighten", "", "propose removing access unused in the audit trail", "changes the policy";
    PasteToken => "paste-token", "paste", "paste or type a token", "";
    LoadToken => "load-token", "load", "load a token from a file or the token store", "";
    Verify => "verify", "", "verify as IDENTITY [DOMAIN]", "";
    DemoFlow => "demo-flow", "flow", "run the demo flow: mTLS → delegate → authorize → verify", "mints tokens";
    RevokeToken => "revoke-token", "revoke", "revoke the selected block's token and everything delegated from it", "writes revocations.toml";
    Commit => "commit", "", "commit clients.toml", "writes to the repository";
    Push => "push", "", "push to the remote", "writes to the remote";
    Pull => "pull", "", "pull (fast-forward) from the remote", "rewrites the working copy";
    ToggleDiff => "toggle-diff", "diff", "switch semantic / text diff", "";
    Sync => "sync", "", "ask the server (with a fleet.toml, every replica) to sync now", "";
    ShowFleet => "replicas", "replicas", "select among the fleet's replicas (Enter: all of one) or go back to the audit feed", "";
    ShowActivity => "activity", "activity", "switch between the audit feed and per-identity activity", "";
    SortActivity => "sort", "sort", "change the activity order (last seen, identity, issued, denials)", "";
    ShowKeys => "keys", "keys", "switch between the audit feed and the root key set", "";
    AddKey => "add-key", "add key", "add a root key: published as next, not signing", "changes the server's root keys";
    ActivateKey => "activate-key", "activate", "make the selected root key sign; the active one starts retiring", "changes the server's root keys";
    RetireKey => "retire-key", "retire", "retire the selected root key (refused while tokens it signed may be live)", "changes the server's root keys";
    Yes => "yes", "confirm", "confirm what the dialog asks", "";
    No => "no", "cancel", "cancel the dialog", "";
    SaveAndQuit => "save-and-quit", "save", "save the unsaved edits, then quit", "";
    DiscardAndQuit => "discard-and-quit", "discard", "quit, discarding the unsaved edits", "";
    StayOpen => "stay", "cancel", "do not quit", "";
    TakeMine => "take-mine", "mine", "keep my side of the selected conflict", "";
    TakeTheirs => "take-theirs", "theirs", "take their side of the selected conflict", "";
    AllMine => "all-mine", "all mine", "keep my side of every conflict", "";
    AllTheirs => "all-theirs", "all theirs", "take their side of every conflict", "";
    Abandon => "abandon", "abort", "abandon the rebase (nothing changes)", "";
    ResetToUpstream => "reset-to-upstream", "reset to the upstream", "reset the branch to its upstream (local work kept in recovery)", "";
    MarkReviewed => "mark-reviewed", "reviewed", "mark the change reviewed (again: not reviewed); kept in the repository's git directory", "";
    NextUnreviewed => "next-unreviewed", "next", "the next change not reviewed yet", "";
    ReviewRange => "review-range", "range", "choose the revisions to review: FROM..TO", "";
    ExportReport => "export-report", "export", "write the review report (HTML, Markdown or JSON) for the range", "";
    HistoryBack => "history-back", "history", "palette: the previous command line run", "";
    HistoryForward => "history-forward", "", "palette: the next command line run", "";
}

/// Palette commands that take an argument or have no key: each with what it takes and does.
/// The rest of the palette's commands are the actions above (see `commands`).
pub const ARGUMENT_COMMANDS: &[(&str, &str)] = &[
    ("client", "IDENTITY — show a client"),
    ("theme", "NAME — switch theme (no name: the next one)"),
    ("commit", "[MESSAGE] — commit clients.toml"),
    ("verify", "[IDENTITY [DOMAIN]] — verify the loaded token"),
    (
        "key",
        "KEY — root public key for verification (PEM or ed25519/…)",
    ),
    ("load", "PATH — load a token file"),
    ("filter", "TEXT — filter the current screen"),
    (
        "notices",
        "— what start-up found wrong (config, keys, ports)",
    ),
];

/// Every palette command with its description: the actions `keymap` allows that are not a
/// dialog's own, then the commands of `ARGUMENT_COMMANDS` (which describe the action of the
/// same name, when there is one, with its argument).
pub fn commands(keymap: &Keymap) -> Vec<(&'static str, &'static str)> {
    let mut commands: Vec<(&'static str, &'static str)> = Action::ALL
        .iter()
        .filter(|a| a.is_command() && keymap.is_enabled(**a))
        .filter(|a| !ARGUMENT_COMMANDS.iter().any(|(name, _)| *name == a.name()))
        .map(|a| (a.name(), a.help()))
        .collect();
    let argument = ARGUMENT_COMMANDS
        .iter()
        .filter(|(name, _)| Action::from_name(name).is_none_or(|a| keymap.is_enabled(a)));
    commands.extend(argument.copied());
    commands
}

impl Action {
    /// Whether the palette runs it: every action but a dialog's own (those only answer the
    /// dialog on screen).
    pub fn is_command(self) -> bool {
        let mut scopes = DEFAULTS
            .iter()
            .filter(|(_, action, _)| *action == self)
            .map(|(scope, _, _)| *scope)
            .peekable();
        scopes.peek().is_none() || !scopes.all(Scope::is_dialog)
    }
}

/// Named keys: the spelling shown everywhere (hint bar, help, messages), then the other
/// spellings the config also accepts. One table, so whatever is shown can be typed into
/// `[keys]` as it is.
const NAMED_KEYS: &[(KeyCode, &str, &[&str])] = &[
    (KeyCode::Enter, "enter", &["return"]),
    (KeyCode::Esc, "esc", &["escape"]),
    (KeyCode::Tab, "tab", &[]),
    (KeyCode::BackTab, "shift-tab", &["backtab"]),
    (KeyCode::Up, "↑", &["up"]),
    (KeyCode::Down, "↓", &["down"]),
    (KeyCode::Left, "←", &["left"]),
    (KeyCode::Right, "→", &["right"]),
    (KeyCode::PageUp, "pgup", &["pageup", "page-up"]),
    (KeyCode::PageDown, "pgdn", &["pagedown", "page-down"]),
    (KeyCode::Home, "home", &[]),
    (KeyCode::End, "end", &[]),
    (KeyCode::Insert, "insert", &["ins"]),
    (KeyCode::Delete, "delete", &["del"]),
    (KeyCode::Backspace, "backspace", &[]),
    (KeyCode::Char(' '), "space", &[]),
];

/// A key with modifiers, as written in config and shown in hints (`ctrl-s`, `shift-tab`, `G`,
/// `?`, `f5`, `↑` or `up`, `pgdn` or `pagedown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl KeySpec {
    pub fn parse(text: &str) -> Result<KeySpec, String> {
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text;
        // `shift-tab` is a key of its own (BackTab), not shift + tab.
        while !NAMED_KEYS.iter().any(|(_, shown, _)| *shown == rest) {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                modifiers |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                modifiers |= KeyModifiers::ALT;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("shift-") {
                modifiers |= KeyModifiers::SHIFT;
                rest = r;
            } else {
                break;
            }
        }
        let named = NAMED_KEYS
            .iter()
            .find(|(_, shown, also)| *shown == rest || also.contains(&rest))
            .map(|(code, _, _)| *code);
        let code = match named {
            Some(code) => code,
            None if rest.len() > 1 && rest.starts_with('f') && rest[1..].parse::<u8>().is_ok() => {
                KeyCode::F(rest[1..].parse().expect("checked just above"))
            }
            None if rest.chars().count() == 1 => {
                KeyCode::Char(rest.chars().next().expect("one char"))
            }
            None => return Err(format!("unknown key {rest:?} in {text:?}")),
        };
        Ok(KeySpec { code, modifiers })
    }

    /// The key a press was, for saying which key did (or did not do) something.
    pub fn pressed(key: &KeyEvent) -> KeySpec {
        let modifiers = match key.code {
            // Shift is already in the character (`G`, `+`) or in the key (shift-tab).
            KeyCode::Char(_) | KeyCode::BackTab => key.modifiers - KeyModifiers::SHIFT,
            _ => key.modifiers,
        };
        KeySpec {
            code: key.code,
            modifiers,
        }
    }

    /// Whether a key press is this key. Shift is implied by an upper-case or symbol character,
    /// so terminals that do or do not report it both match.
    pub fn matches(&self, key: &KeyEvent) -> bool {
        if key.code != self.code {
            return false;
        }
        // Shift is part of some keys: terminals send ESC [ Z as BackTab with SHIFT set (or
        // not), and an upper-case letter with or without it.
        let significant = |m: KeyModifiers| match key.code {
            KeyCode::Char(_) | KeyCode::BackTab => m - KeyModifiers::SHIFT,
            _ => m,
        };
        significant(key.modifiers) == significant(self.modifiers)
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            write!(f, "ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            write!(f, "alt-")?;
        }
        let shifted = matches!(self.code, KeyCode::Char(_) | KeyCode::BackTab);
        if self.modifiers.contains(KeyModifiers::SHIFT) && !shifted {
            write!(f, "shift-")?;
        }
        if let Some((_, shown, _)) = NAMED_KEYS.iter().find(|(code, _, _)| *code == self.code) {
            return write!(f, "{shown}");
        }
        match self.code {
            KeyCode::F(n) => write!(f, "f{n}"),
            KeyCode::Char(c) => write!(f, "{c}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One binding: these keys do this action in this scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub scope: Scope,
    pub action: Action,
    pub keys: Vec<KeySpec>,
}

/// All bindings in force.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<Binding>,
    /// Read-only mode: actions that change something stay bound, so pressing one says why it
    /// does nothing, but hints, help and the palette leave them out.
    read_only: bool,
}

const DEFAULTS: &[(Scope, Action, &[&str])] = &[
    (Scope::Global, Action::Quit, &["q"]),
    (Scope::Global, Action::ForceQuit, &["ctrl-c"]),
    (Scope::Global, Action::Help, &["?", "f1"]),
    (Scope::Global, Action::Palette, &[":"]),
    (Scope::Global, Action::Filter, &["/"]),
    (Scope::Global, Action::Screen1, &["1"]),
    (Scope::Global, Action::Screen2, &["2"]),
    (Scope::Global, Action::Screen3, &["3"]),
    (Scope::Global, Action::Screen4, &["4"]),
    (Scope::Global, Action::Screen5, &["5"]),
    (Scope::Global, Action::Screen6, &["6"]),
    (Scope::Global, Action::Screen7, &["7"]),
    (Scope::Global, Action::Screen8, &["8"]),
    (Scope::Global, Action::FocusNext, &["tab"]),
    (Scope::Global, Action::FocusPrev, &["shift-tab"]),
    (Scope::Global, Action::Up, &["↑", "k"]),
    (Scope::Global, Action::Down, &["↓", "j"]),
    (Scope::Global, Action::Left, &["←", "h"]),
    (Scope::Global, Action::Right, &["→", "l"]),
    (Scope::Global, Action::PageUp, &["pgup", "ctrl-u"]),
    (Scope::Global, Action::PageDown, &["pgdn", "ctrl-d"]),
    (Scope::Global, Action::Top, &["home", "g"]),
    (Scope::Global, Action::Bottom, &["end", "G"]),
    (Scope::Global, Action::Select, &["enter"]),
    (Scope::Global, Action::Back, &["esc"]),
    (Scope::Global, Action::Copy, &["y"]),
    (Scope::Global, Action::Refresh, &["ctrl-l", "f5"]),
    (Scope::Global, Action::Theme, &["T"]),
    (Scope::Global, Action::Mouse, &["M"]),
    (Scope::Global, Action::Undo, &["u", "ctrl-z"]),
    (Scope::Global, Action::Redo, &["U", "ctrl-y"]),
    (Scope::Global, Action::Save, &["ctrl-s"]),
    (Scope::Clients, Action::EditRaw, &["i"]),
    (Scope::Clients, Action::ExternalEditor, &["e"]),
    (Scope::Clients, Action::AddClient, &["a"]),
    (Scope::Clients, Action::RemoveClient, &["D"]),
    (Scope::Clients, Action::Grant, &["+"]),
    (Scope::Clients, Action::Revoke, &["-"]),
    (Scope::Clients, Action::IdentityTtl, &["t"]),
    (Scope::Clients, Action::WhatCan, &["w"]),
    (Scope::Clients, Action::RenameClient, &["r"]),
    (Scope::Clients, Action::SetSetting, &["s"]),
    (Scope::Clients, Action::Tighten, &["ctrl-t"]),
    (Scope::Delegations, Action::WhatCan, &["w"]),
    // Only the tree marks filter matches among other rows; the other filters narrow their
    // lists, so there is nothing to step through there.
    (Scope::Delegations, Action::NextMatch, &["n"]),
    (Scope::Delegations, Action::PrevMatch, &["N"]),
    (Scope::Roles, Action::AddRole, &["r"]),
    (Scope::Roles, Action::Assign, &["a"]),
    (Scope::Roles, Action::Unassign, &["D"]),
    (Scope::Roles, Action::RoleGrant, &["+"]),
    (Scope::Roles, Action::RoleRevoke, &["-"]),
    (Scope::Roles, Action::RenameRole, &["R"]),
    (Scope::Roles, Action::RemoveRole, &["x"]),
    (Scope::Roles, Action::DefaultRole, &["d"]),
    (Scope::Roles, Action::Tighten, &["ctrl-t"]),
    (Scope::Tokens, Action::PasteToken, &["i", "p"]),
    (Scope::Tokens, Action::LoadToken, &["o"]),
    (Scope::Tokens, Action::Verify, &["v"]),
    (Scope::Tokens, Action::DemoFlow, &["f"]),
    (Scope::Tokens, Action::RevokeToken, &["X"]),
    (Scope::Server, Action::RevokeToken, &["X"]),
    (Scope::Changes, Action::Commit, &["c"]),
    (Scope::Changes, Action::Push, &["p"]),
    (Scope::Changes, Action::Pull, &["P"]),
    (Scope::Changes, Action::ToggleDiff, &["t"]),
    (Scope::Server, Action::Sync, &["s"]),
    (Scope::Server, Action::ShowActivity, &["v"]),
    (Scope::Server, Action::SortActivity, &["o"]),
    (Scope::Server, Action::ShowKeys, &["K"]),
    (Scope::Server, Action::ShowFleet, &["F"]),
    (Scope::Server, Action::AddKey, &["a"]),
    (Scope::Server, Action::ActivateKey, &["A"]),
    (Scope::Server, Action::RetireKey, &["D"]),
    (Scope::Review, Action::MarkReviewed, &["space", "m"]),
    (Scope::Review, Action::NextUnreviewed, &["n"]),
    (Scope::Review, Action::ReviewRange, &["r"]),
    (Scope::Review, Action::ExportReport, &["E"]),
    // Dialogs: besides these, enter, esc and the arrow and tab keys do what they do anywhere.
    (Scope::Confirm, Action::Yes, &["y"]),
    (Scope::Confirm, Action::No, &["n"]),
    (Scope::QuitDialog, Action::SaveAndQuit, &["s"]),
    (Scope::QuitDialog, Action::DiscardAndQuit, &["d"]),
    (Scope::QuitDialog, Action::StayOpen, &["c"]),
    (Scope::Conflicts, Action::TakeMine, &["m"]),
    (Scope::Conflicts, Action::TakeTheirs, &["t"]),
    (Scope::Conflicts, Action::AllMine, &["M"]),
    (Scope::Conflicts, Action::AllTheirs, &["T"]),
    (Scope::Conflicts, Action::Abandon, &["a"]),
    (Scope::Conflicts, Action::ResetToUpstream, &["r"]),
    // The palette: ↑/↓ and tab/shift-tab move through the commands listed, so its history
    // takes keys that cannot be text.
    (Scope::Palette, Action::HistoryBack, &["ctrl-p"]),
    (Scope::Palette, Action::HistoryForward, &["ctrl-n"]),
];

/// A problem in the `[keys]` table of the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConfigError(pub String);

impl Keymap {
    pub fn defaults() -> Keymap {
        let bindings = DEFAULTS
            .iter()
            .map(|(scope, action, keys)| Binding {
                scope: *scope,
                action: *action,
                keys: keys
                    .iter()
                    .map(|k| KeySpec::parse(k).expect("default keys parse"))
                    .collect(),
            })
            .collect();
        Keymap {
            bindings,
            read_only: false,
        }
    }

    /// Replaces the keys of the named actions (in every scope they are bound in); reports
    /// unknown actions and keys instead of ignoring them.
    pub fn with_overrides(
        mut self,
        overrides: &BTreeMap<String, Vec<String>>,
    ) -> (Keymap, Vec<KeyConfigError>) {
        let mut errors = Vec::new();
        for (name, keys) in overrides {
            let Some(action) = Action::from_name(name) else {
                errors.push(KeyConfigError(format!(
                    "[keys] {name}: no such action (see `?` for the names)"
                )));
                continue;
            };
            let mut parsed = Vec::new();
            for key in keys {
                match KeySpec::parse(key) {
                    Ok(spec) => parsed.push(spec),
                    Err(e) => errors.push(KeyConfigError(format!("[keys] {name}: {e}"))),
                }
            }
            let mut bound = false;
            for binding in self.bindings.iter_mut().filter(|b| b.action == action) {
                binding.keys = parsed.clone();
                bound = true;
            }
            if !bound {
                self.bindings.push(Binding {
                    scope: Scope::Global,
                    action,
                    keys: parsed,
                });
            }
        }
        (self, errors)
    }

    /// Read-only mode: every action that changes something is refused (see `refusal`) and
    /// left out of hints, help and the palette.
    pub fn read_only(mut self) -> Keymap {
        self.read_only = true;
        self
    }

    /// Whether an action may run: everything, except what changes something in read-only mode.
    pub fn is_enabled(&self, action: Action) -> bool {
        !(self.read_only && action.is_dangerous())
    }

    /// Why pressing `key` for `action` does nothing, or `None` when it is allowed.
    pub fn refusal(&self, key: &KeyEvent, action: Action) -> Option<String> {
        if self.is_enabled(action) {
            return None;
        }
        let what = action.changes().unwrap_or("changes something");
        Some(format!(
            "read-only: `{}` ({}) {what}; start without --readonly to edit",
            KeySpec::pressed(key),
            action.name()
        ))
    }

    /// The action a key does on a screen: the screen's own bindings first, then global ones.
    pub fn lookup(&self, scope: Scope, key: &KeyEvent) -> Option<Action> {
        let find = |s: Scope| {
            self.bindings
                .iter()
                .find(|b| b.scope == s && b.keys.iter().any(|k| k.matches(key)))
                .map(|b| b.action)
        };
        find(scope).or_else(|| find(Scope::Global))
    }

    /// The first key bound to an action on a screen, for hints ("c commit"); `None` when it
    /// is unbound or disabled (read-only mode).
    pub fn key_for(&self, scope: Scope, action: Action) -> Option<KeySpec> {
        if !self.is_enabled(action) {
            return None;
        }
        self.bindings
            .iter()
            .filter(|b| b.action == action && (b.scope == scope || b.scope == Scope::Global))
            .find_map(|b| b.keys.first().copied())
    }

    pub fn is_bound(&self, action: Action) -> bool {
        self.bindings.iter().any(|b| b.action == action)
    }

    /// The bindings the help overlay lists for a screen: the screen's own, global ones, then
    /// the dialogs' (without the disabled ones in read-only mode).
    pub fn help_rows(&self, scope: Scope) -> Vec<(Scope, String, Action)> {
        let mut rows = Vec::new();
        let dialogs = [
            Scope::Confirm,
            Scope::QuitDialog,
            Scope::Conflicts,
            Scope::Palette,
        ];
        for wanted in [scope, Scope::Global].into_iter().chain(dialogs) {
            for binding in self
                .bindings
                .iter()
                .filter(|b| b.scope == wanted && self.is_enabled(b.action))
            {
                let keys: Vec<String> = binding.keys.iter().map(|k| k.to_string()).collect();
                rows.push((wanted, keys.join(" "), binding.action));
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn screen_bindings_win_over_global_ones() {
        let map = Keymap::defaults();
        let t = press(KeyCode::Char('t'), KeyModifiers::NONE);
        assert_eq!(map.lookup(Scope::Changes, &t), Some(Action::ToggleDiff));
        assert_eq!(map.lookup(Scope::Clients, &t), Some(Action::IdentityTtl));
        assert_eq!(map.lookup(Scope::Server, &t), None);
    }

    #[test]
    fn shift_tab_matches_as_terminals_send_it() {
        let map = Keymap::defaults();
        // crossterm reports ESC [ Z as BackTab with SHIFT; some terminals leave SHIFT out.
        for modifiers in [KeyModifiers::SHIFT, KeyModifiers::NONE] {
            let key = press(KeyCode::BackTab, modifiers);
            for scope in [Scope::Clients, Scope::Roles, Scope::Tokens, Scope::Changes] {
                assert_eq!(
                    map.lookup(scope, &key),
                    Some(Action::FocusPrev),
                    "{scope:?}"
                );
            }
        }
    }

    #[test]
    fn next_match_is_bound_only_where_matches_are_stepped_through() {
        let map = Keymap::defaults();
        let n = press(KeyCode::Char('n'), KeyModifiers::NONE);
        assert_eq!(map.lookup(Scope::Delegations, &n), Some(Action::NextMatch));
        for scope in [Scope::Clients, Scope::Roles, Scope::Tokens, Scope::Server] {
            assert_eq!(map.lookup(scope, &n), None, "{scope:?}");
            let rows = map.help_rows(scope);
            assert!(
                !rows.iter().any(|(_, _, a)| *a == Action::NextMatch),
                "{scope:?} help lists n"
            );
        }
    }

    #[test]
    fn shifted_characters_match_with_or_without_the_shift_flag() {
        let map = Keymap::defaults();
        for modifiers in [KeyModifiers::NONE, KeyModifiers::SHIFT] {
            let key = press(KeyCode::Char('G'), modifiers);
            assert_eq!(map.lookup(Scope::Clients, &key), Some(Action::Bottom));
        }
        let ctrl_g = press(KeyCode::Char('g'), KeyModifiers::CONTROL);
        assert_eq!(map.lookup(Scope::Clients, &ctrl_g), None);
    }

    #[test]
    fn overrides_replace_keys_and_report_mistakes() {
        let mut overrides = BTreeMap::new();
        overrides.insert("commit".to_string(), vec!["ctrl-k".to_string()]);
        overrides.insert("comit".to_string(), vec!["x".to_string()]);
        overrides.insert("push".to_string(), vec!["hyper-p".to_string()]);
        let (map, errors) = Keymap::defaults().with_overrides(&overrides);
        let ctrl_k = press(KeyCode::Char('k'), KeyModifiers::CONTROL);
        assert_eq!(map.lookup(Scope::Changes, &ctrl_k), Some(Action::Commit));
        let c = press(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(map.lookup(Scope::Changes, &c), None);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].0.contains("comit"));
        assert!(errors[1].0.contains("hyper-p"));
    }

    #[test]
    fn read_only_refuses_every_mutating_action_and_says_why() {
        let map = Keymap::defaults().read_only();
        for action in Action::ALL.iter().filter(|a| a.is_dangerous()) {
            assert!(!map.is_enabled(*action), "{action:?} still enabled");
            assert_eq!(
                map.key_for(Scope::Clients, *action),
                None,
                "{action:?} hinted"
            );
        }
        assert!(map.is_enabled(Action::Verify));
        let plus = press(KeyCode::Char('+'), KeyModifiers::SHIFT);
        assert_eq!(map.lookup(Scope::Clients, &plus), Some(Action::Grant));
        assert_eq!(
            map.refusal(&plus, Action::Grant).as_deref(),
            Some("read-only: `+` (grant) changes the policy; start without --readonly to edit")
        );
        assert_eq!(Keymap::defaults().refusal(&plus, Action::Grant), None);
        let help = map.help_rows(Scope::Clients);
        assert!(!help.iter().any(|(_, _, a)| a.is_dangerous()), "{help:?}");
    }

    #[test]
    fn key_specs_round_trip_through_their_names() {
        for text in [
            "ctrl-s",
            "shift-tab",
            "G",
            "?",
            "f5",
            "enter",
            "space",
            "↑",
            "pgdn",
        ] {
            let spec = KeySpec::parse(text).unwrap();
            assert_eq!(spec.to_string(), text);
        }
        assert!(KeySpec::parse("ctrl-").is_err());
    }

    #[test]
    fn every_key_shown_can_be_typed_into_the_config_as_shown() {
        let map = Keymap::defaults();
        for binding in &map.bindings {
            for key in &binding.keys {
                let shown = key.to_string();
                assert_eq!(KeySpec::parse(&shown), Ok(*key), "{shown}");
            }
        }
    }

    #[test]
    fn config_spellings_and_shown_spellings_are_the_same_keys() {
        for (config, shown) in [
            ("up", "↑"),
            ("down", "↓"),
            ("left", "←"),
            ("right", "→"),
            ("pageup", "pgup"),
            ("pagedown", "pgdn"),
            ("escape", "esc"),
            ("backtab", "shift-tab"),
            ("ctrl-pageup", "ctrl-pgup"),
            ("shift-up", "shift-↑"),
            ("del", "delete"),
        ] {
            let spec = KeySpec::parse(config).unwrap();
            assert_eq!(spec, KeySpec::parse(shown).unwrap(), "{config}");
            assert_eq!(spec.to_string(), shown, "{config}");
        }
    }
}
