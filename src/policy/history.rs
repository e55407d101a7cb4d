//! Undo and redo over edits: an edit session keeps the text before each edit, so undo restores
//! the file exactly, byte for byte.

use super::document::{Edit, EditError};
use super::{LoadedPolicy, load};
use crate::policy::findings::Finding;

/// An editable policy with history. Every state is re-read, so `current` is always the typed
/// view and findings of the current text.
#[derive(Debug, Clone)]
pub struct EditSession {
    current: LoadedPolicy,
    text: String,
    undo: Vec<String>,
    redo: Vec<String>,
    now: i64,
}

impl EditSession {
    /// Starts a session; fails only on a syntax error.
    pub fn open(text: &str, now: i64) -> Result<EditSession, Finding> {
        Ok(EditSession {
            current: load(text, now)?,
            text: text.to_string(),
            undo: Vec::new(),
            redo: Vec::new(),
            now,
        })
    }

    /// A session over a policy read elsewhere (on another thread, say).
    pub fn from_loaded(loaded: LoadedPolicy, now: i64) -> EditSession {
        EditSession {
            text: loaded.document.text().to_string(),
            current: loaded,
            undo: Vec::new(),
            redo: Vec::new(),
            now,
        }
    }

    /// Makes a policy read elsewhere (an edit's result, or a replaced text) the next state, as
    /// one undoable step. Reading is the slow part of an edit; this lets it happen off the
    /// thread that owns the session. Returns the policy it replaces, for the caller to drop
    /// where it likes (freeing a large one is not free either).
    pub fn install(&mut self, loaded: LoadedPolicy) -> LoadedPolicy {
        let text = loaded.document.text().to_string();
        self.undo.push(std::mem::replace(&mut self.text, text));
        self.redo.clear();
        std::mem::replace(&mut self.current, loaded)
    }

    /// The text undo (`back`) or redo would restore.
    pub fn step_text(&self, back: bool) -> Option<&str> {
        let stack = if back { &self.undo } else { &self.redo };
        stack.last().map(String::as_str)
    }

    /// Completes an undo or redo whose text was read elsewhere, returning the policy it
    /// replaces; `Err` gives `loaded` back (and nothing changes) when it is not the text that
    /// step restores.
    pub fn install_step(
        &mut self,
        back: bool,
        loaded: LoadedPolicy,
    ) -> Result<LoadedPolicy, Box<LoadedPolicy>> {
        if self.step_text(back) != Some(loaded.document.text()) {
            return Err(Box::new(loaded));
        }
        let (from, to) = if back {
            (&mut self.undo, &mut self.redo)
        } else {
            (&mut self.redo, &mut self.undo)
        };
        let text = from.pop().expect("step_text saw it");
        to.push(std::mem::replace(&mut self.text, text));
        Ok(std::mem::replace(&mut self.current, loaded))
    }

    pub fn current(&self) -> &LoadedPolicy {
        &self.current
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Applies an edit; on error nothing changes.
    pub fn apply(&mut self, edit: &Edit) -> Result<(), EditError> {
        // A failed edit leaves the document as it was, so it is edited in place rather than on a
        // copy of the whole tree (at 10,000 clients the copy cost more than the edit).
        self.current.document.apply(edit)?;
        let text = self.current.document.text().to_string();
        match load(&text, self.now) {
            Ok(loaded) => {
                self.undo.push(std::mem::replace(&mut self.text, text));
                self.redo.clear();
                self.current = loaded;
                Ok(())
            }
            Err(finding) => {
                // The edit printed text that does not parse: put the previous state back.
                self.current =
                    load(&self.text, self.now).expect("the current text parsed when it was made");
                Err(EditError::Layout(format!("the result ({finding})")))
            }
        }
    }

    /// Replaces the whole text (the raw editor), as one undoable step. Syntax errors refuse it.
    pub fn replace_text(&mut self, text: &str) -> Result<(), Finding> {
        let loaded = load(text, self.now)?;
        self.undo
            .push(std::mem::replace(&mut self.text, text.to_string()));
        self.redo.clear();
        self.current = loaded;
        Ok(())
    }

    pub fn undo(&mut self) -> bool {
        self.step(true)
    }

    pub fn redo(&mut self) -> bool {
        self.step(false)
    }

    fn step(&mut self, back: bool) -> bool {
        let (from, to) = if back {
            (&mut self.undo, &mut self.redo)
        } else {
            (&mut self.redo, &mut self.undo)
        };
        let Some(text) = from.pop() else { return false };
        let loaded = load(&text, self.now).expect("every text in the history parsed before");
        to.push(std::mem::replace(&mut self.text, text));
        self.current = loaded;
        true
    }
}
