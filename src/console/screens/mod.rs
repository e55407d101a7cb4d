//! The six screens. Each owns its state and says, through the `Screen` trait, what it is called,
//! which keymap scope it reads and which keys the hint bar shows for its focused pane.

pub mod activity;
pub mod changes;
pub mod clients;
pub mod delegations;
pub mod roles;
pub mod server;
pub mod tokens;

use super::keymap::Action;

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

/// What every screen offers the frame around it.
pub trait Screen {
    /// The keys worth showing for the focused pane, most useful first. While `typing`, only
    /// these are shown (no palette, help or quit: those keys type text).
    fn hints(&self) -> Vec<Hint>;
    /// Keys go into a text field the screen has open (an editor, a paste box).
    fn typing(&self) -> bool {
        false
    }
}
