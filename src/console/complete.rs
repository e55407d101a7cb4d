//! Pick-lists and fuzzy completion for the console's one-line inputs (prompts and the `:`
//! palette): what a line completes from (`Choices`), the candidates for the part being typed
//! (`Stage`), ranked by a fuzzy matcher (`rank`, helix's `nucleo-matcher`), and which one has
//! been chosen into the input (`Completion`). Free text stays allowed: a candidate only fills
//! the input when it is chosen (Tab, Shift-Tab, ↑, ↓); Enter takes what the input holds.
//! Nothing here draws or waits on the disk: a path's directory is read by a job
//! (`Listing::read`) and its entries complete the path once they are in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use nucleo_matcher::pattern::{Atom, AtomKind, CaseMatching, Normalization};
use nucleo_matcher::{Config, Matcher, Utf32Str};

use crate::policy::{Policy, Resource};

/// How many entries of a directory a path completion reads.
pub const PATH_ENTRIES: usize = 500;

/// The indices of the `candidates` that match `query`, best first; ties keep their order. An
/// empty query matches every candidate, in order. Matching is fuzzy (the query's characters in
/// order, gaps allowed) and ignores case; a match at the start or at a word boundary ranks
/// above a scattered one.
pub fn rank<S: AsRef<str>>(query: &str, candidates: &[S]) -> Vec<usize> {
    let query = query.trim();
    if query.is_empty() {
        return (0..candidates.len()).collect();
    }
    let mut config = Config::DEFAULT;
    // Completion: what is typed is usually the start of what is wanted.
    config.prefer_prefix = true;
    let mut matcher = Matcher::new(config);
    let atom = Atom::new(
        query,
        CaseMatching::Ignore,
        Normalization::Smart,
        AtomKind::Fuzzy,
        false,
    );
    let mut buf = Vec::new();
    let mut scored: Vec<(u16, usize)> = candidates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            atom.score(Utf32Str::new(c.as_ref(), &mut buf), &mut matcher)
                .map(|score| (score, i))
        })
        .collect();
    // Stable: equal scores keep the candidates' own order.
    scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    scored.into_iter().map(|(_, i)| i).collect()
}

/// One thing a part of the line may be: its text, what it is (the palette shows a command's
/// description beside it), and whether more words follow it (a space is typed after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub text: String,
    pub note: String,
    pub more: bool,
}

impl Candidate {
    pub fn plain(text: impl Into<String>) -> Candidate {
        Candidate {
            text: text.into(),
            note: String::new(),
            more: false,
        }
    }
}

/// What a prompt's line completes from. The line stays free text: these are suggestions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Choices {
    /// No pick-list.
    #[default]
    None,
    /// The whole line is one of these (an identity, a role name).
    Line(Vec<String>),
    /// Word `i` of the line is one of `words[i]` (a setting, then its value).
    Words(Vec<Vec<String>>),
    /// `RESOURCE OPERATION`: the resources, then the operations of the resource typed (every
    /// operation listed when that resource is a new one).
    Grants(Vec<(String, Vec<String>)>),
    /// A file path: the entries of the directory typed so far (directories end in `/`).
    Path,
}

impl From<Vec<String>> for Choices {
    fn from(items: Vec<String>) -> Choices {
        Choices::Line(items)
    }
}

impl Choices {
    pub fn is_none(&self) -> bool {
        matches!(self, Choices::None)
    }

    /// The candidates for the part of `line` being typed; a path's come from `listing` (when
    /// it is of another directory, the stage asks for that one: `Stage::wants_dir`).
    pub fn stage(&self, line: &str, listing: &Listing) -> Stage {
        match self {
            Choices::None => Stage::default(),
            Choices::Line(items) => Stage {
                base: String::new(),
                query: line.to_string(),
                candidates: items.iter().map(Candidate::plain).collect(),
                wants_dir: None,
            },
            Choices::Words(words) => {
                let (base, query, index) = last_word(line);
                let candidates = words
                    .get(index)
                    .map(|list| {
                        list.iter()
                            .map(|w| Candidate {
                                more: index + 1 < words.len(),
                                ..Candidate::plain(w)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Stage {
                    base,
                    query,
                    candidates,
                    wants_dir: None,
                }
            }
            Choices::Grants(grants) => {
                let (base, query, index) = last_word(line);
                let candidates = match index {
                    0 => grants
                        .iter()
                        .map(|(resource, _)| Candidate {
                            more: true,
                            ..Candidate::plain(resource)
                        })
                        .collect(),
                    1 => {
                        let resource = base.trim();
                        let operations: Vec<String> =
                            match grants.iter().find(|(r, _)| r == resource) {
                                Some((_, operations)) => operations.clone(),
                                None => grants
                                    .iter()
                                    .flat_map(|(_, ops)| ops.iter().cloned())
                                    .collect::<BTreeSet<_>>()
                                    .into_iter()
                                    .collect(),
                            };
                        operations.into_iter().map(Candidate::plain).collect()
                    }
                    _ => Vec::new(),
                };
                Stage {
                    base,
                    query,
                    candidates,
                    wants_dir: None,
                }
            }
            Choices::Path => path_stage(line, listing),
        }
    }
}

/// `line` split before its last word: what comes before (with the space), the last word, and
/// how many words come before it.
fn last_word(line: &str) -> (String, String, usize) {
    match line.rfind(' ') {
        Some(at) => (
            line[..=at].to_string(),
            line[at + 1..].to_string(),
            line[..at].split_whitespace().count(),
        ),
        None => (String::new(), line.to_string(), 0),
    }
}

/// The candidates of a line: the text kept before the part being completed (`base`), that
/// part as typed (`query`), and what it may be, in their natural order; for a path whose
/// directory has not been read yet, that directory (as typed) to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stage {
    pub base: String,
    pub query: String,
    pub candidates: Vec<Candidate>,
    pub wants_dir: Option<String>,
}

/// The entries of one directory, as a job read them: `dir` as typed (`""` is the working
/// directory, `~/` is not expanded), at most `PATH_ENTRIES` names, sorted, directories ending
/// in `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub dir: Option<String>,
    pub entries: Vec<String>,
}

impl Listing {
    /// Reads `dir` (on a worker: a slow disk never stalls typing).
    pub fn read(dir: String) -> Listing {
        let path = if dir.is_empty() {
            std::path::PathBuf::from(".")
        } else {
            super::app::expand_home(&dir)
        };
        Listing {
            entries: directory_entries(&path, PATH_ENTRIES),
            dir: Some(dir),
        }
    }
}

/// A path typed so far: the entries of its directory (the part up to the last `/`; the
/// working directory when there is none) from `listing`, or a request to read it. Hidden
/// entries are listed once a `.` is typed.
pub fn path_stage(line: &str, listing: &Listing) -> Stage {
    let (base, query) = match line.rfind('/') {
        Some(at) => (&line[..=at], &line[at + 1..]),
        None => ("", line),
    };
    let mut stage = Stage {
        base: base.to_string(),
        query: query.to_string(),
        ..Stage::default()
    };
    if listing.dir.as_deref() != Some(base) {
        stage.wants_dir = Some(base.to_string());
        return stage;
    }
    let hidden = query.starts_with('.');
    stage.candidates = listing
        .entries
        .iter()
        .filter(|name| hidden || !name.starts_with('.'))
        .map(Candidate::plain)
        .collect();
    stage
}

/// Up to `limit` entry names of `dir`, sorted, directories with a trailing `/`; nothing when
/// it cannot be read.
pub fn directory_entries(dir: &Path, limit: usize) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .take(limit)
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Follows symlinks: a link to a directory completes as one.
            if entry.path().is_dir() {
                format!("{name}/")
            } else {
                name
            }
        })
        .collect();
    names.sort();
    names
}

/// The completion of one input line: the candidates matching what was typed, best first, how
/// many there were before matching, and the one chosen into the input (Tab and the arrows
/// move through the list without re-ranking it; typing ranks again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    pub base: String,
    pub items: Vec<Candidate>,
    pub total: usize,
    pub chosen: Option<usize>,
}

impl Completion {
    pub fn new(stage: Stage) -> Completion {
        let texts: Vec<&str> = stage.candidates.iter().map(|c| c.text.as_str()).collect();
        let order = rank(&stage.query, &texts);
        let total = stage.candidates.len();
        let mut slots: Vec<Option<Candidate>> = stage.candidates.into_iter().map(Some).collect();
        let items = order.into_iter().filter_map(|i| slots[i].take()).collect();
        Completion {
            base: stage.base,
            items,
            total,
            chosen: None,
        }
    }

    /// Chooses the next candidate (the first when none is chosen yet) or, backwards, the
    /// previous one (the last), wrapping around; the line with it filled in, or `None` when
    /// nothing matches.
    pub fn step(&mut self, forward: bool) -> Option<String> {
        let count = self.items.len();
        if count == 0 {
            return None;
        }
        let next = match (self.chosen, forward) {
            (None, true) => 0,
            (None, false) => count - 1,
            (Some(at), true) => (at + 1) % count,
            (Some(at), false) => (at + count - 1) % count,
        };
        self.chosen = Some(next);
        Some(self.line(next))
    }

    /// The line with candidate `index` filled in (and a space after it when more follows).
    pub fn line(&self, index: usize) -> String {
        let item = &self.items[index];
        let space = if item.more { " " } else { "" };
        format!("{}{}{space}", self.base, item.text)
    }

    /// "3 of 40": how many candidates match, of how many.
    pub fn count(&self) -> String {
        format!("{} of {}", self.items.len(), self.total)
    }
}

/// Every resource any client or role grants, each with every operation granted on it
/// anywhere, sorted: what a grant is likely to name.
pub fn policy_grants(policy: &Policy) -> Vec<(String, Vec<String>)> {
    let mut grants: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for client in &policy.clients {
        let roles = client.domain.iter().flat_map(|d| {
            d.default_role
                .iter()
                .chain(d.roles.iter())
                .flat_map(|r| r.resources.iter())
        });
        for resource in client.resources.iter().chain(roles) {
            let operations = grants.entry(resource.name.as_str()).or_default();
            operations.extend(resource.operations.iter().map(String::as_str));
        }
    }
    grants
        .into_iter()
        .map(|(r, ops)| (r.to_string(), ops.into_iter().map(str::to_string).collect()))
        .collect()
}

/// The grants of one holder (a client's or a role's resources): what a revoke can name.
pub fn own_grants(resources: &[Resource]) -> Vec<(String, Vec<String>)> {
    resources
        .iter()
        .map(|r| (r.name.clone(), r.operations.clone()))
        .collect()
}

/// Every client identity, in the policy's order.
pub fn identities(policy: &Policy) -> Vec<String> {
    policy.clients.iter().map(|c| c.identity.clone()).collect()
}

/// Every role name of every domain (the default roles included), sorted.
pub fn role_names(policy: &Policy) -> Vec<String> {
    let names: BTreeSet<&str> = policy
        .clients
        .iter()
        .filter_map(|c| c.domain.as_ref())
        .flat_map(|d| d.default_role.iter().chain(d.roles.iter()))
        .map(|r| r.name.as_str())
        .collect();
    names.into_iter().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked<'a>(query: &str, candidates: &[&'a str]) -> Vec<&'a str> {
        rank(query, candidates)
            .into_iter()
            .map(|i| candidates[i])
            .collect()
    }

    #[test]
    fn an_empty_query_keeps_every_candidate_in_order() {
        let list = ["zeta", "alpha", "mid"];
        assert_eq!(ranked("", &list), list);
        assert_eq!(ranked("  ", &list), list);
    }

    #[test]
    fn a_prefix_ranks_above_a_scattered_match() {
        let list = ["parrot_fold", "my_production_api", "production_api"];
        let got = ranked("prod", &list);
        assert_eq!(got.first(), Some(&"production_api"), "{got:?}");
        assert_eq!(got.last(), Some(&"parrot_fold"), "{got:?}");
    }

    #[test]
    fn matching_ignores_case() {
        assert_eq!(ranked("STAG", &["staging_api", "prod"]), ["staging_api"]);
        assert_eq!(ranked("stag", &["Staging_API"]), ["Staging_API"]);
    }

    #[test]
    fn no_match_is_an_empty_list() {
        assert!(ranked("xyz", &["staging_api", "prod"]).is_empty());
        assert!(rank::<&str>("a", &[]).is_empty());
    }

    #[test]
    fn grants_complete_resources_then_that_resources_operations() {
        let choices = Choices::Grants(vec![
            ("db".into(), vec!["read".into()]),
            ("api".into(), vec!["read".into(), "write".into()]),
        ]);
        let stage = |line| choices.stage(line, &Listing::default());
        let first = Completion::new(stage("a"));
        assert_eq!(first.items[0].text, "api");
        let mut second = Completion::new(stage("api "));
        assert_eq!(second.base, "api ");
        assert_eq!(second.items.len(), 2);
        assert_eq!(second.step(false).as_deref(), Some("api write"));
        let new_resource = Completion::new(stage("cache w"));
        assert_eq!(new_resource.items[0].text, "write");
        assert!(Completion::new(stage("api read x")).items.is_empty());
    }

    #[test]
    fn stepping_wraps_and_fills_with_a_space_when_more_follows() {
        let choices = Choices::Words(vec![
            vec!["delegatable".into(), "operator".into()],
            vec!["true".into(), "false".into()],
        ]);
        let stage = |line| choices.stage(line, &Listing::default());
        let mut c = Completion::new(stage(""));
        assert_eq!(c.count(), "2 of 2");
        assert_eq!(c.step(true).as_deref(), Some("delegatable "));
        assert_eq!(c.step(true).as_deref(), Some("operator "));
        assert_eq!(c.step(true).as_deref(), Some("delegatable "));
        assert_eq!(c.step(false).as_deref(), Some("operator "));
        let mut value = Completion::new(stage("operator f"));
        assert_eq!(value.step(true).as_deref(), Some("operator false"));
        assert_eq!(Completion::new(stage("zzz")).step(true), None);
    }

    #[test]
    fn paths_list_the_typed_directory_with_directories_marked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token.txt"), "x").unwrap();
        std::fs::write(dir.path().join(".hidden"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let typed = format!("{}/", dir.path().display());
        // Not read yet: the stage asks for the directory.
        let unread = path_stage(&format!("{typed}to"), &Listing::default());
        assert_eq!(unread.wants_dir.as_deref(), Some(typed.as_str()));
        assert!(unread.candidates.is_empty());
        let listing = Listing::read(typed.clone());
        let stage = path_stage(&typed, &listing);
        assert_eq!(
            (stage.base.as_str(), stage.wants_dir),
            (typed.as_str(), None)
        );
        let names: Vec<&str> = stage.candidates.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(names, ["sub/", "token.txt"]);
        let hidden = path_stage(&format!("{typed}.h"), &listing);
        assert_eq!(hidden.candidates.len(), 3);
        assert!(Listing::read("/no/such/dir/".into()).entries.is_empty());
    }
}
