//! The keymap is data: named actions, the keys bound to them per screen, whether an action
//! changes anything (so `--readonly` can drop it), and the words the help overlay and hint bar
//! show. Nothing here draws or mutates console state.

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
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Clients => "clients",
            Scope::Delegations => "delegations",
            Scope::Roles => "roles",
            Scope::Tokens => "tokens",
            Scope::Changes => "changes",
            Scope::Server => "server",
        }
    }
}

macro_rules! actions {
    ($($variant:ident => $name:literal, $help:literal, $dangerous:literal;)*) => {
        /// Everything a key can do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Action { $($variant),* }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            /// The name used in the config file's `[keys]` table and the command palette.
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name),* }
            }

            /// What the help overlay says the action does.
            pub fn help(self) -> &'static str {
                match self { $(Action::$variant => $help),* }
            }

            /// Changes the policy, the repository or tokens: removed in read-only mode.
            pub fn is_dangerous(self) -> bool {
                match self { $(Action::$variant => $dangerous),* }
            }

            pub fn from_name(name: &str) -> Option<Action> {
                Action::ALL.iter().copied().find(|a| a.name() == name)
            }
        }
    };
}

actions! {
    Quit => "quit", "quit (asks when there are unsaved edits)", false;
    ForceQuit => "force-quit", "quit now, even with unsaved edits", false;
    Help => "help", "show or hide this help", false;
    Palette => "palette", "command palette", false;
    Filter => "filter", "filter the list or tree", false;
    NextMatch => "next-match", "next filter match", false;
    PrevMatch => "prev-match", "previous filter match", false;
    Screen1 => "screen-clients", "go to 1 Clients", false;
    Screen2 => "screen-delegations", "go to 2 Delegations", false;
    Screen3 => "screen-roles", "go to 3 Domains & roles", false;
    Screen4 => "screen-tokens", "go to 4 Tokens", false;
    Screen5 => "screen-changes", "go to 5 Changes", false;
    Screen6 => "screen-server", "go to 6 Server", false;
    FocusNext => "focus-next", "focus the next pane", false;
    FocusPrev => "focus-prev", "focus the previous pane", false;
    Up => "up", "move up", false;
    Down => "down", "move down", false;
    Left => "left", "collapse / move left", false;
    Right => "right", "expand / move right", false;
    PageUp => "page-up", "page up", false;
    PageDown => "page-down", "page down", false;
    Top => "top", "first item", false;
    Bottom => "bottom", "last item", false;
    Select => "select", "open / jump to the selected item", false;
    Back => "back", "close, cancel, go back", false;
    Copy => "copy", "copy the selected item", false;
    Refresh => "refresh", "reload from disk, git and the server", false;
    Theme => "theme", "cycle the theme", false;
    Mouse => "mouse", "turn mouse capture on or off", false;
    Undo => "undo", "undo the last policy edit", true;
    Redo => "redo", "redo", true;
    Save => "save", "save clients.toml", true;
    EditRaw => "edit-toml", "edit the raw clients.toml (live validation)", true;
    ExternalEditor => "external-editor", "open clients.toml in $VISUAL / $EDITOR", true;
    AddClient => "add-client", "add a client", true;
    RemoveClient => "remove-client", "remove the selected client", true;
    Grant => "grant", "grant OPERATION on RESOURCE to the selected client", true;
    Revoke => "revoke", "revoke OPERATION on RESOURCE from the selected client", true;
    IdentityTtl => "identity-ttl", "set identity token lifetime (0 disables)", true;
    RenameClient => "rename-client", "change the selected client's identifier", true;
    SetSetting => "set-setting", "set delegatable, operator, authorization_token_duration or max_delegation_depth", true;
    WhatCan => "what-can", "what can the selected identity do", false;
    AddRole => "add-role", "add a role to the realm", true;
    Assign => "assign", "assign SUBJECT a ROLE", true;
    Unassign => "unassign", "remove the selected assignment", true;
    RoleGrant => "role-grant", "grant OPERATION on RESOURCE to the selected role", true;
    RoleRevoke => "role-revoke", "revoke OPERATION on RESOURCE from the selected role", true;
    RenameRole => "rename-role", "rename the selected role", true;
    RemoveRole => "remove-role", "remove the selected role", true;
    DefaultRole => "default-role", "make the selected role the realm's default", true;
    PasteToken => "paste-token", "paste or type a token", false;
    LoadToken => "load-token", "load a token from a file or the token store", false;
    Verify => "verify", "verify as IDENTITY [DOMAIN]", false;
    DemoFlow => "demo-flow", "run the demo flow: mTLS → delegate → authorize → verify", true;
    RevokeToken => "revoke-token", "revoke the selected block's token and everything delegated from it", true;
    Commit => "commit", "commit clients.toml", true;
    Push => "push", "push to the remote", true;
    Pull => "pull", "pull (fast-forward) from the remote", true;
    ToggleDiff => "toggle-diff", "switch semantic / text diff", false;
    Sync => "sync", "ask the server to sync now", false;
    ShowActivity => "activity", "switch between the audit feed and per-identity activity", false;
    SortActivity => "sort", "change the activity order (last seen, identity, issued, denials)", false;
    ShowKeys => "keys", "switch between the audit feed and the root key set", false;
    AddKey => "add-key", "add a root key: published as next, not signing", true;
    ActivateKey => "activate-key", "make the selected root key sign; the active one starts retiring", true;
    RetireKey => "retire-key", "retire the selected root key (refused while tokens it signed may be live)", true;
}

/// A key with modifiers, as written in config (`ctrl-s`, `shift-tab`, `G`, `?`, `f5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl KeySpec {
    pub fn parse(text: &str) -> Result<KeySpec, String> {
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text;
        loop {
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
        let code = match rest {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" if modifiers.contains(KeyModifiers::SHIFT) => {
                modifiers -= KeyModifiers::SHIFT;
                KeyCode::BackTab
            }
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "delete" => KeyCode::Delete,
            "backspace" => KeyCode::Backspace,
            "space" => KeyCode::Char(' '),
            f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().expect("checked just above"))
            }
            one if one.chars().count() == 1 => KeyCode::Char(one.chars().next().expect("one char")),
            other => return Err(format!("unknown key {other:?} in {text:?}")),
        };
        Ok(KeySpec { code, modifiers })
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
        match self.code {
            KeyCode::Enter => write!(f, "enter"),
            KeyCode::Esc => write!(f, "esc"),
            KeyCode::Tab => write!(f, "tab"),
            KeyCode::BackTab => write!(f, "shift-tab"),
            KeyCode::Up => write!(f, "↑"),
            KeyCode::Down => write!(f, "↓"),
            KeyCode::Left => write!(f, "←"),
            KeyCode::Right => write!(f, "→"),
            KeyCode::PageUp => write!(f, "pgup"),
            KeyCode::PageDown => write!(f, "pgdn"),
            KeyCode::Home => write!(f, "home"),
            KeyCode::End => write!(f, "end"),
            KeyCode::F(n) => write!(f, "f{n}"),
            KeyCode::Char(' ') => write!(f, "space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            _ => write!(f, "?"),
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
    (Scope::Global, Action::FocusNext, &["tab"]),
    (Scope::Global, Action::FocusPrev, &["shift-tab"]),
    (Scope::Global, Action::Up, &["up", "k"]),
    (Scope::Global, Action::Down, &["down", "j"]),
    (Scope::Global, Action::Left, &["left", "h"]),
    (Scope::Global, Action::Right, &["right", "l"]),
    (Scope::Global, Action::PageUp, &["pageup", "ctrl-u"]),
    (Scope::Global, Action::PageDown, &["pagedown", "ctrl-d"]),
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
    (Scope::Server, Action::AddKey, &["a"]),
    (Scope::Server, Action::ActivateKey, &["A"]),
    (Scope::Server, Action::RetireKey, &["D"]),
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
        Keymap { bindings }
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

    /// Drops every action that changes something (read-only mode).
    pub fn without_dangerous(mut self) -> Keymap {
        self.bindings.retain(|b| !b.action.is_dangerous());
        self
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

    /// The first key bound to an action on a screen, for hints ("c commit").
    pub fn key_for(&self, scope: Scope, action: Action) -> Option<KeySpec> {
        self.bindings
            .iter()
            .filter(|b| b.action == action && (b.scope == scope || b.scope == Scope::Global))
            .find_map(|b| b.keys.first().copied())
    }

    pub fn is_bound(&self, action: Action) -> bool {
        self.bindings.iter().any(|b| b.action == action)
    }

    /// The bindings the help overlay lists for a screen: the screen's own, then global ones.
    pub fn help_rows(&self, scope: Scope) -> Vec<(Scope, String, Action)> {
        let mut rows = Vec::new();
        for wanted in [scope, Scope::Global] {
            for binding in self.bindings.iter().filter(|b| b.scope == wanted) {
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
    fn read_only_drops_every_mutating_action() {
        let map = Keymap::defaults().without_dangerous();
        for action in Action::ALL.iter().filter(|a| a.is_dangerous()) {
            assert!(!map.is_bound(*action), "{action:?} still bound");
        }
        assert!(map.is_bound(Action::Verify));
    }

    #[test]
    fn key_specs_round_trip_through_their_names() {
        for text in ["ctrl-s", "shift-tab", "G", "?", "f5", "enter", "space"] {
            let spec = KeySpec::parse(text).unwrap();
            let shown = spec.to_string();
            assert!(!shown.is_empty(), "{text}");
        }
        assert!(KeySpec::parse("ctrl-").is_err());
    }
}
