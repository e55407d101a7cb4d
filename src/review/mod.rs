//! The reviewer's workbench over a policy repository: the commits between two revisions that
//! changed the policy or its revocations, each change with its decision replay (what the
//! console's review mode steps through and the review report lists), and the report itself.

pub mod marks;
pub mod report;

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::gitops::{self, CommitInfo, GitError};
use crate::policy::{self, Change, Policy, ReplayRow, RevocationList};

/// The most commits a report reads: a range longer than this is cut (and says so).
pub const COMMIT_LIMIT: usize = 1000;

/// One change of a commit, with the requests it decides differently.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewedChange {
    #[serde(flatten)]
    pub change: Change,
    /// The change in words, as `policy diff` prints it.
    pub text: String,
    /// Its decision replay: requests denied before and allowed after (widening changes only).
    pub replay: Vec<ReplayRow>,
}

/// A commit that changed the policy or its revocations, and what it changed.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewedCommit {
    pub commit: CommitInfo,
    pub changes: Vec<ReviewedChange>,
    /// Why the changes could not be computed (the policy at this commit or its parent does not
    /// parse): a reviewer must read this commit's text diff by hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ReviewedCommit {
    pub fn widening(&self) -> impl Iterator<Item = &ReviewedChange> {
        self.changes.iter().filter(|c| c.change.widens)
    }
}

/// The policy history between two revisions, newest first.
#[derive(Debug, Clone, Default, Serialize)]
pub struct History {
    pub commits: Vec<ReviewedCommit>,
    /// True when the range had more than [`COMMIT_LIMIT`] commits and the oldest were left out.
    pub truncated: bool,
}

impl History {
    /// Every widening change, newest commit first, with its commit.
    pub fn widening(&self) -> impl Iterator<Item = (&ReviewedCommit, &ReviewedChange)> {
        self.commits
            .iter()
            .flat_map(|commit| commit.widening().map(move |change| (commit, change)))
    }

    /// Commits whose changes could not be computed.
    pub fn unreadable(&self) -> impl Iterator<Item = &ReviewedCommit> {
        self.commits.iter().filter(|c| c.error.is_some())
    }
}

/// The newest `limit` commits reachable from `to` and not from `from` (all of `to`'s history
/// without `from`) that changed the policy file `relative` or the `revocations.toml` beside it,
/// each with its semantic changes against its first parent and the decision replay of every
/// widening one.
pub fn history(
    root: &Path,
    relative: &Path,
    from: Option<&str>,
    to: &str,
    limit: usize,
    now: i64,
) -> Result<History, GitError> {
    let revocations = relative.with_file_name(policy::revocations::FILE);
    let mut commits = gitops::log_range(root, &[relative, &revocations], from, to, limit + 1)?;
    let truncated = commits.len() > limit;
    commits.truncate(limit);
    let mut reader = Reader {
        root,
        relative,
        revocations: &revocations,
        now,
        policies: HashMap::new(),
    };
    let commits = commits
        .into_iter()
        .map(|commit| reader.review(commit))
        .collect();
    Ok(History { commits, truncated })
}

/// The changes from `old` to `new` (policies and their revocation lists), each widening one
/// with its decision replay.
pub fn review_changes(
    old: &Policy,
    new: &Policy,
    old_revoked: &RevocationList,
    new_revoked: &RevocationList,
) -> Vec<ReviewedChange> {
    let mut changes = policy::diff(old, new).changes;
    changes.extend(policy::revocation_changes(old_revoked, new_revoked));
    changes
        .into_iter()
        .map(|change| ReviewedChange {
            text: change.to_string(),
            replay: if change.widens {
                policy::change_replay(old, new, &change)
            } else {
                Vec::new()
            },
            change,
        })
        .collect()
}

/// Reads policies at revisions, each once (a commit's policy is its child's parent policy).
struct Reader<'a> {
    root: &'a Path,
    relative: &'a Path,
    revocations: &'a Path,
    now: i64,
    policies: HashMap<String, Result<Policy, String>>,
}

impl Reader<'_> {
    fn review(&mut self, commit: CommitInfo) -> ReviewedCommit {
        let new = self.policy(&commit.id);
        let old = match &commit.parent {
            Some(parent) => self.policy(parent),
            None => Ok(Policy::default()),
        };
        let (changes, error) = match (old, new) {
            (Ok(old), Ok(new)) => {
                let old_revoked = commit
                    .parent
                    .as_deref()
                    .map(|p| self.revoked(p))
                    .unwrap_or_default();
                let new_revoked = self.revoked(&commit.id);
                (review_changes(&old, &new, &old_revoked, &new_revoked), None)
            }
            (Err(e), _) => (Vec::new(), Some(format!("at its parent: {e}"))),
            (_, Err(e)) => (Vec::new(), Some(e)),
        };
        ReviewedCommit {
            commit,
            changes,
            error,
        }
    }

    fn policy(&mut self, rev: &str) -> Result<Policy, String> {
        if let Some(policy) = self.policies.get(rev) {
            return policy.clone();
        }
        let policy = match gitops::read_at_revision(self.root, rev, self.relative) {
            Ok(text) => policy::load(&text, self.now)
                .map(|loaded| loaded.policy)
                .map_err(|f| format!("{}:{f}", self.relative.display())),
            // A commit before the policy existed (revocations only) has none.
            Err(GitError::NoSuchFile { .. }) => Ok(Policy::default()),
            Err(e) => Err(e.to_string()),
        };
        // Only the last two are ever asked for again (history is walked child to parent).
        if self.policies.len() > 4 {
            self.policies.clear();
        }
        self.policies.insert(rev.to_string(), policy.clone());
        policy
    }

    fn revoked(&self, rev: &str) -> RevocationList {
        let text = gitops::read_at_revision(self.root, rev, self.revocations).unwrap_or_default();
        RevocationList::load(&text).0
    }
}

/// What a review report covers.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// The policy file (its working copy: uncommitted edits are reported as such).
    pub file: std::path::PathBuf,
    /// List the changes since this revision; all of history without it.
    pub since: Option<String>,
    /// The audit trail's files (rotated ones included) and the window, for unused access.
    pub audit: Option<(Vec<std::path::PathBuf>, u64)>,
    /// The root key set's manifest; found beside the policy or in its workspace without it.
    pub key_set: Option<std::path::PathBuf>,
    pub now: i64,
}

/// Reads everything a report needs: the working policy and revocations, the history since the
/// revision asked for, the key set and the audit trail. Fails only on what the reviewer asked
/// for and cannot have (an unreadable policy file, an unknown revision, a missing audit file);
/// a key set that cannot be read is said in the report.
pub fn gather(request: &ReportRequest) -> Result<report::Report, String> {
    let file = &request.file;
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut loaded =
        policy::load(&text, request.now).map_err(|f| format!("{}:{f}", file.display()))?;
    let repo = crate::repo::PolicyRepo::discover(file);
    let (revocations, revocation_findings) = repo.revocations().map_err(|e| e.to_string())?;
    loaded
        .findings
        .extend(revocation_findings.into_iter().map(|mut finding| {
            finding.message = format!("{}: {}", policy::revocations::FILE, finding.message);
            finding
        }));
    let mut repository = None;
    let mut head = None;
    let mut uncommitted = None;
    let mut history_read = None;
    match repo.relative_policy() {
        Ok((root, relative)) => {
            repository = Some(root.display().to_string());
            let status = gitops::status(root, &relative).map_err(|e| e.to_string())?;
            head = status.head.clone();
            if head.is_some() {
                let at_head = |path: &Path| gitops::read_at_revision(root, "HEAD", path);
                let head_policy = match at_head(&relative) {
                    Ok(text) => policy::load(&text, request.now)
                        .map(|l| l.policy)
                        .unwrap_or_default(),
                    Err(_) => Policy::default(),
                };
                let revocations_file = relative.with_file_name(policy::revocations::FILE);
                let head_revoked =
                    RevocationList::load(&at_head(&revocations_file).unwrap_or_default()).0;
                uncommitted = Some(review_changes(
                    &head_policy,
                    &loaded.policy,
                    &head_revoked,
                    &revocations,
                ));
                history_read = Some(
                    history(
                        root,
                        &relative,
                        request.since.as_deref(),
                        "HEAD",
                        COMMIT_LIMIT,
                        request.now,
                    )
                    .map_err(|e| e.to_string())?,
                );
            } else if let Some(since) = &request.since {
                return Err(format!(
                    "--since {since}: {} has no commits yet",
                    root.display()
                ));
            }
        }
        Err(e) => {
            if let Some(since) = &request.since {
                return Err(format!("--since {since}: {e}"));
            }
        }
    }
    let unused = match &request.audit {
        None => None,
        Some((files, window)) => {
            if let Some(missing) = files.iter().find(|f| !f.is_file()) {
                return Err(format!("{}: no such audit file", missing.display()));
            }
            let usage = crate::audit_trail::read_usage(files);
            let from = request
                .now
                .saturating_sub(i64::try_from(*window).unwrap_or(i64::MAX));
            let (entries, _) = policy::unused(&loaded.policy, &usage, from);
            Some(report::UnusedSection {
                window: policy::duration::format(*window),
                files: files.iter().map(|f| f.display().to_string()).collect(),
                events: usage.events,
                entries,
            })
        }
    };
    Ok(report::Report::build(report::Sources {
        file: file.display().to_string(),
        loaded: &loaded,
        repository,
        head,
        since: request.since.clone(),
        uncommitted,
        history: history_read,
        revocations: revocations.entries,
        keys: key_set(request.key_set.as_deref(), file),
        unused,
        now: request.now,
    }))
}

/// The key set: the manifest given; else `keys.toml` beside the policy; else, for a policy in
/// a workspace's clone, the workspace's.
fn key_set(given: Option<&Path>, policy_file: &Path) -> report::Keys {
    let beside = policy_file.with_file_name(crate::keyset::MANIFEST);
    let in_workspace = || {
        let clone = policy_file.parent()?;
        let root = clone.parent()?;
        let workspace = crate::workspace::open(root).ok()?;
        Some(workspace.key_manifest())
    };
    let manifest = match given {
        Some(path) => path.to_path_buf(),
        None if beside.is_file() => beside,
        None => match in_workspace() {
            Some(manifest) => manifest,
            None => {
                return report::Keys::NotRead {
                    why: "no key set beside the policy or in a workspace; pass --key-set FILE"
                        .to_string(),
                };
            }
        },
    };
    match crate::keyset::KeySet::read_public(&manifest) {
        Ok(set) => report::Keys::Read {
            manifest: manifest.display().to_string(),
            keys: set.entries().to_vec(),
        },
        Err(e) => report::Keys::NotRead {
            why: format!("{}: {e}", manifest.display()),
        },
    }
}
