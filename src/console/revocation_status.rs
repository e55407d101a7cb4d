//! Whether a token's blocks are revoked, and where that is said: `revocations.toml` at HEAD
//! (what the server applies once pushed), in the working copy (revoked or withdrawn, not yet
//! committed), and at the server itself when the console is connected to one. Used by `v`
//! (verify) and by the Tokens screen's per-block status. Read on a worker; a list that cannot
//! be read fully makes the answer "cannot tell", never "not revoked".

use std::path::Path;

use crate::gitops::{self, GitError};
use crate::policy::revocations::{self, RevocationList, Revoked};
use crate::token::{self, RevocationIds};

/// One list and what was wrong reading it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationSource {
    pub list: RevocationList,
    /// Why the list may be incomplete: unreadable, or entries with errors.
    pub problem: Option<String>,
}

impl RevocationSource {
    fn from_text(text: &str, place: &str) -> RevocationSource {
        let (list, findings) = RevocationList::load(text);
        let problem = findings
            .iter()
            .find(|f| f.is_error())
            .map(|f| format!("{} {place} has errors ({f})", revocations::FILE));
        RevocationSource { list, problem }
    }

    fn unreadable(why: String) -> RevocationSource {
        RevocationSource {
            list: RevocationList::default(),
            problem: Some(why),
        }
    }
}

/// The lists a token is checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationLists {
    /// `revocations.toml` at HEAD; None outside a git repository.
    pub head: Option<RevocationSource>,
    /// `revocations.toml` beside the policy file, as saved.
    pub working: RevocationSource,
    /// The list the server applies, when connected (or why it could not be read).
    pub server: Option<RevocationSource>,
}

/// Reads HEAD's and the working copy's lists (the server's is added by the caller).
pub fn read_local(policy_path: &Path, repo: Option<(&Path, &Path)>) -> RevocationLists {
    let working_path = policy_path.with_file_name(revocations::FILE);
    let working = match std::fs::read_to_string(&working_path) {
        Ok(text) => RevocationSource::from_text(&text, "in the working copy"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RevocationSource::default(),
        Err(e) => {
            RevocationSource::unreadable(format!("cannot read {}: {e}", working_path.display()))
        }
    };
    let head = repo.map(|(root, relative)| {
        let path = relative.with_file_name(revocations::FILE);
        match gitops::read_at_revision(root, "HEAD", &path) {
            Ok(text) => RevocationSource::from_text(&text, "at HEAD"),
            // Not committed yet, or no commit at all: HEAD revokes nothing.
            Err(GitError::NoSuchFile { .. } | GitError::Revision { .. }) => {
                RevocationSource::default()
            }
            Err(e) => RevocationSource::unreadable(format!(
                "cannot read {} at HEAD: {e}",
                revocations::FILE
            )),
        }
    });
    RevocationLists {
        head,
        working,
        server: None,
    }
}

/// Where an id is revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    pub place: &'static str,
    pub entry: &'a Revoked,
}

impl RevocationLists {
    fn sources(&self) -> Vec<(&'static str, &RevocationSource)> {
        let mut out = Vec::new();
        if let Some(head) = &self.head {
            out.push(("at HEAD", head));
        }
        out.push(("in the working copy", &self.working));
        if let Some(server) = &self.server {
            out.push(("at the server", server));
        }
        out
    }

    /// Every place that revokes `id` (canonical hex).
    pub fn find(&self, id: &str) -> Vec<Found<'_>> {
        self.sources()
            .into_iter()
            .filter_map(|(place, source)| {
                source
                    .list
                    .first_revoked(std::slice::from_ref(&id.to_string()))
                    .map(|(_, entry)| Found { place, entry })
            })
            .collect()
    }

    /// The places that were checked, for "not revoked (checked …)".
    pub fn checked(&self) -> String {
        join_places(self.sources().iter().map(|(place, _)| *place))
    }

    /// Problems that keep a "not revoked" from being certain.
    pub fn problems(&self) -> Vec<String> {
        self.sources()
            .into_iter()
            .filter_map(|(_, s)| s.problem.clone())
            .collect()
    }

    /// One block's status, for the Tokens screen: "revoked at HEAD and in the working copy by
    /// …", "revoked in the working copy only (not committed: the server still accepts it)",
    /// "not revoked", or why that cannot be told.
    pub fn block_status(&self, id: &str) -> (bool, String) {
        let found = self.find(id);
        if let Some(first) = found.first() {
            let places: Vec<&str> = found.iter().map(|f| f.place).collect();
            let mut text = format!(
                "revoked {}{}",
                join_places(places.iter().copied()),
                said(first.entry)
            );
            let committed = places.contains(&"at HEAD") || places.contains(&"at the server");
            if !committed {
                text.push_str(" (not committed yet: the server still accepts it until pushed)");
            } else if self.head.is_some() && !places.contains(&"in the working copy") {
                text.push_str(" (withdrawn in the working copy, not committed)");
            }
            return (true, text);
        }
        match self.problems().first() {
            Some(problem) => (false, format!("revocation unknown: {problem}")),
            None => (false, format!("not revoked ({})", self.checked())),
        }
    }

    /// Why a token is refused by these lists: its first revoked block (which, by whom, when,
    /// why and where), or a revoked ancestor it was refreshed from. None when no list revokes
    /// it; Err when a list could not be read fully (so "not revoked" cannot be said).
    pub fn refusal(&self, ids: &RevocationIds) -> Result<Option<String>, String> {
        for (block, id) in ids.blocks.iter().enumerate() {
            let found = self.find(id);
            if let Some(first) = found.first() {
                let places = join_places(found.iter().map(|f| f.place));
                return Ok(Some(format!(
                    "revoked: block {block} (revocation id {}) was revoked{} — in {} {places}",
                    short(id),
                    said(first.entry),
                    revocations::FILE
                )));
            }
        }
        for ancestor in &ids.lineage {
            let found = self.find(&ancestor.revocation_id);
            if let Some(first) = found.first() {
                let places = join_places(found.iter().map(|f| f.place));
                return Ok(Some(format!(
                    "revoked: refreshed from a revoked token (generation {}, revocation id {}), revoked{} — in {} {places}",
                    ancestor.generation,
                    short(&ancestor.revocation_id),
                    said(first.entry),
                    revocations::FILE
                )));
            }
        }
        match self.problems().first() {
            Some(problem) => Err(format!("cannot tell whether it is revoked: {problem}")),
            None => Ok(None),
        }
    }
}

/// " by WHO at WHEN: REASON".
fn said(entry: &Revoked) -> String {
    let by = entry
        .by
        .as_deref()
        .map_or(String::new(), |by| format!(" by {by}"));
    let at = entry.at.map_or(String::new(), |at| {
        format!(" at {}", token::clock::format_unix(at))
    });
    format!("{by}{at}: {}", entry.reason)
}

fn join_places<'a>(places: impl Iterator<Item = &'a str>) -> String {
    let places: Vec<&str> = places.collect();
    match places.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn short(id: &str) -> String {
    let head: String = id.chars().take(16).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::NewRevocation;

    const ID: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

    fn listed() -> RevocationSource {
        let text = revocations::append(
            "",
            &NewRevocation {
                id: ID.into(),
                reason: "leaked in a log".into(),
                by: Some("uri:urn:company:ops".into()),
                at: 1_790_000_000,
            },
        )
        .unwrap();
        RevocationSource::from_text(&text, "at HEAD")
    }

    fn ids(blocks: &[&str]) -> RevocationIds {
        RevocationIds {
            blocks: blocks.iter().map(|b| b.to_string()).collect(),
            lineage: Vec::new(),
        }
    }

    #[test]
    fn a_refusal_names_block_who_when_why_and_where() {
        let lists = RevocationLists {
            head: Some(listed()),
            working: listed(),
            server: None,
        };
        let why = lists
            .refusal(&ids(&[&"00".repeat(32), ID]))
            .unwrap()
            .unwrap();
        assert_eq!(
            why,
            "revoked: block 1 (revocation id cdcdcdcdcdcdcdcd…) was revoked by uri:urn:company:ops at 2026-09-21 14:13:20 UTC: leaked in a log — in revocations.toml at HEAD and in the working copy"
        );
        let (revoked, status) = lists.block_status(ID);
        assert!(revoked && status.starts_with("revoked at HEAD and in the working copy by"));
        let (revoked, status) = lists.block_status(&"00".repeat(32));
        assert!(!revoked);
        assert_eq!(status, "not revoked (at HEAD and in the working copy)");
    }

    #[test]
    fn working_copy_only_and_unreadable_lists_are_said() {
        let lists = RevocationLists {
            head: Some(RevocationSource::default()),
            working: listed(),
            server: None,
        };
        assert!(lists.block_status(ID).1.contains("not committed yet"));
        let broken = RevocationLists {
            head: Some(RevocationSource::default()),
            working: RevocationSource::from_text("[[revoked]\n", "in the working copy"),
            server: None,
        };
        let why = broken.refusal(&ids(&[ID])).unwrap_err();
        assert!(
            why.starts_with(
                "cannot tell whether it is revoked: revocations.toml in the working copy has errors"
            ),
            "{why}"
        );
        assert!(broken.block_status(ID).1.starts_with("revocation unknown"));
    }
}
