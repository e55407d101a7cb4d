//! The operator's git workflow on a policy clone: status, history of the policy file, pull
//! (fast-forward only), and push that reconciles with an upstream that moved on — rebasing the
//! local commits when they apply cleanly, stopping with both sides shown when they do not.
//! Nothing local is ever lost: a failed reconciliation leaves the branch as it was.

use std::path::Path;

use git2::{BranchType, Oid, Repository};
use serde::Serialize;

use super::{GitError, PushProgress, fetch_with_credentials, push_with_progress};

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoStatus {
    pub branch: String,
    pub upstream: Option<String>,
    /// `clean`, `modified`, `staged`, `untracked` or `missing`.
    pub file: String,
    pub ahead: usize,
    pub behind: usize,
    /// The commit HEAD points at (None in an empty repository).
    pub head: Option<String>,
}

/// One commit that changed the policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    pub id: String,
    pub author: String,
    pub email: String,
    pub time: i64,
    pub message: String,
    pub parent: Option<String>,
}

/// The outcome of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum PushOutcome {
    Pushed {
        commits: usize,
    },
    UpToDate,
    /// The upstream had moved on; the local commits were rebased onto it, then pushed.
    Rebased {
        upstream: String,
        commits: usize,
    },
}

fn open(repo_root: &Path) -> Result<Repository, GitError> {
    Repository::open(repo_root)
        .map_err(|_| GitError::NotARepository(repo_root.display().to_string()))
}

fn current_branch(repo: &Repository) -> Result<String, GitError> {
    let head = repo.head()?;
    head.shorthand()
        .ok()
        .filter(|_| head.is_branch())
        .map(str::to_string)
        .ok_or_else(|| GitError::Revision {
            rev: "HEAD".into(),
            repo: repo.path().display().to_string(),
            detail: "HEAD is not on a branch (detached); check out a branch first".into(),
        })
}

fn upstream_of(repo: &Repository, branch: &str) -> Option<(String, Oid)> {
    let local = repo.find_branch(branch, BranchType::Local).ok()?;
    let upstream = local.upstream().ok()?;
    let name = upstream.name().ok().flatten()?.to_string();
    let id = upstream.get().target()?;
    Some((name, id))
}

/// Branch, upstream, the policy file's state and ahead/behind counts (as of the last fetch).
pub fn status(repo_root: &Path, relative: &Path) -> Result<RepoStatus, GitError> {
    let repo = open(repo_root)?;
    let branch = current_branch(&repo)?;
    let file = match repo.status_file(relative) {
        Ok(flags) if flags.is_empty() => "clean",
        Ok(flags) if flags.is_wt_new() => "untracked",
        Ok(flags) if flags.is_wt_deleted() => "missing",
        Ok(flags) if flags.is_wt_modified() => "modified",
        Ok(_) => "staged",
        Err(_) => "missing",
    };
    let head = repo.head()?.target();
    let (upstream, ahead, behind) = match (upstream_of(&repo, &branch), head) {
        (Some((name, upstream)), Some(head)) => {
            let (ahead, behind) = repo.graph_ahead_behind(head, upstream)?;
            (Some(name), ahead, behind)
        }
        _ => (None, 0, 0),
    };
    Ok(RepoStatus {
        branch,
        upstream,
        file: file.into(),
        ahead,
        behind,
        head: head.map(|id| id.to_string()),
    })
}

/// Commits reachable from HEAD that changed `relative`, newest first.
pub fn log(repo_root: &Path, relative: &Path, limit: usize) -> Result<Vec<CommitInfo>, GitError> {
    log_paths(repo_root, &[relative], limit)
}

/// Commits reachable from HEAD that changed any of `paths` (e.g. `clients.toml` and
/// `revocations.toml`, so a revocation-only commit is listed too), newest first.
pub fn log_paths(
    repo_root: &Path,
    paths: &[&Path],
    limit: usize,
) -> Result<Vec<CommitInfo>, GitError> {
    let repo = open(repo_root)?;
    let mut walk = repo.revwalk()?;
    walk.push_head()?;
    walk.set_sorting(git2::Sort::TIME | git2::Sort::TOPOLOGICAL)?;
    let blob_at = |commit: &git2::Commit<'_>| {
        let tree = commit.tree().ok();
        paths
            .iter()
            .map(|path| {
                tree.as_ref()
                    .and_then(|t| t.get_path(path).ok())
                    .map(|e| e.id())
            })
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    for id in walk {
        let commit = repo.find_commit(id?)?;
        let mine = blob_at(&commit);
        let parent = commit.parents().next();
        let before = match parent.as_ref() {
            Some(parent) => blob_at(parent),
            None => vec![None; paths.len()],
        };
        if mine == before {
            continue;
        }
        let author = commit.author();
        out.push(CommitInfo {
            id: commit.id().to_string(),
            author: author.name().unwrap_or("?").to_string(),
            email: author.email().unwrap_or("").to_string(),
            time: commit.time().seconds(),
            message: commit.message().unwrap_or("").trim().to_string(),
            parent: parent.map(|p| p.id().to_string()),
        });
        if out.len() == limit {
            break;
        }
    }
    Ok(out)
}

/// Fetches the current branch's upstream.
pub fn fetch(repo_root: &Path) -> Result<(), GitError> {
    let repo = open(repo_root)?;
    let branch = current_branch(&repo)?;
    let mut remote = repo.find_remote("origin")?;
    let url = remote.url().unwrap_or("origin").to_string();
    let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
    fetch_with_credentials(&repo, &mut remote, "origin", &url, &refspec)
}

/// Fetches and fast-forwards. A clone with local commits the upstream lacks is left alone, with
/// an error that says so (push or reconcile first).
pub fn pull(repo_root: &Path) -> Result<usize, GitError> {
    fetch(repo_root)?;
    let repo = open(repo_root)?;
    let branch = current_branch(&repo)?;
    let Some((name, upstream)) = upstream_of(&repo, &branch) else {
        return Ok(0);
    };
    let head = repo
        .head()?
        .target()
        .ok_or_else(|| GitError::Git(git2::Error::from_str("HEAD has no commit")))?;
    let (ahead, behind) = repo.graph_ahead_behind(head, upstream)?;
    if behind == 0 {
        return Ok(0);
    }
    if ahead > 0 {
        return Err(GitError::Diverged {
            local: ahead,
            remote: behind,
            upstream: name,
        });
    }
    let target = repo.find_object(upstream, None)?;
    repo.checkout_tree(&target, Some(git2::build::CheckoutBuilder::new().safe()))?;
    repo.find_reference(&format!("refs/heads/{branch}"))?
        .set_target(upstream, "pull: fast-forward")?;
    repo.set_head(&format!("refs/heads/{branch}"))?;
    Ok(behind)
}

/// Pushes; when the upstream moved on, fetches, rebases the local commits onto it if they apply
/// cleanly and pushes again; if they conflict, aborts the rebase (the branch is as it was) and
/// reports both sides.
pub fn push_reconciling(repo_root: &Path, relative: &Path) -> Result<PushOutcome, GitError> {
    push_reconciling_with_progress(repo_root, relative, &|_| {})
}

/// `push_reconciling`, reporting progress as it goes.
pub fn push_reconciling_with_progress(
    repo_root: &Path,
    relative: &Path,
    progress: &dyn Fn(PushProgress),
) -> Result<PushOutcome, GitError> {
    let repo = open(repo_root)?;
    let branch = current_branch(&repo)?;
    let head = repo
        .head()?
        .target()
        .ok_or_else(|| GitError::Git(git2::Error::from_str("HEAD has no commit")))?;
    let ahead_before = upstream_of(&repo, &branch)
        .map(|(_, upstream)| repo.graph_ahead_behind(head, upstream).map(|(a, _)| a))
        .transpose()?;
    if ahead_before == Some(0) {
        return Ok(PushOutcome::UpToDate);
    }
    match push_with_progress(repo_root, "origin", &branch, progress) {
        Ok(()) => {
            return Ok(PushOutcome::Pushed {
                commits: ahead_before.unwrap_or(1),
            });
        }
        Err(GitError::Rejected { .. }) => {}
        Err(other) => return Err(other),
    }
    progress(PushProgress::Fetching);
    fetch(repo_root)?;
    let (upstream_name, upstream) = upstream_of(&repo, &branch).ok_or_else(|| {
        GitError::Git(git2::Error::from_str(
            "the branch has no upstream to reconcile with",
        ))
    })?;
    progress(PushProgress::Rebasing);
    let commits = rebase_onto(&repo, &branch, upstream, relative)?;
    push_with_progress(repo_root, "origin", &branch, progress)?;
    Ok(PushOutcome::Rebased {
        upstream: upstream_name,
        commits,
    })
}

fn rebase_onto(
    repo: &Repository,
    branch: &str,
    upstream: Oid,
    relative: &Path,
) -> Result<usize, GitError> {
    let local =
        repo.reference_to_annotated_commit(&repo.find_reference(&format!("refs/heads/{branch}"))?)?;
    let onto = repo.find_annotated_commit(upstream)?;
    let committer = repo
        .signature()
        .map_err(|_| GitError::NoAuthor(repo.path().display().to_string()))?;
    let mut rebase = repo.rebase(Some(&local), Some(&onto), None, None)?;
    let mut count = 0;
    while let Some(operation) = rebase.next() {
        operation?;
        if repo.index()?.has_conflicts() {
            let ours = super::read_at_revision(
                repo.workdir().unwrap_or(repo.path()),
                &format!("refs/heads/{branch}"),
                relative,
            )
            .unwrap_or_default();
            let theirs = super::read_at_revision(
                repo.workdir().unwrap_or(repo.path()),
                &upstream.to_string(),
                relative,
            )
            .unwrap_or_default();
            rebase.abort()?;
            return Err(GitError::Conflict { ours, theirs });
        }
        rebase.commit(None, &committer, None)?;
        count += 1;
    }
    rebase.finish(Some(&committer))?;
    Ok(count)
}

/// A unified text diff between two texts of `path` (e.g. HEAD's and the console's working
/// buffer, unsaved edits included), `a/` and `b/` prefixed like git's.
pub fn text_diff_texts(old: &str, new: &str, path: &Path) -> Result<String, GitError> {
    let mut options = git2::DiffOptions::new();
    options.context_lines(3);
    let patch = git2::Patch::from_buffers(
        old.as_bytes(),
        Some(path),
        new.as_bytes(),
        Some(path),
        Some(&mut options),
    )?;
    if patch.num_hunks() == 0 {
        return Ok(String::new());
    }
    let mut patch = patch;
    let buf = patch.to_buf()?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A unified text diff of `relative` from revision `old` to `new` (a revision, or the working
/// tree when `None`).
pub fn text_diff(
    repo_root: &Path,
    old: &str,
    new: Option<&str>,
    relative: &Path,
) -> Result<String, GitError> {
    let repo = open(repo_root)?;
    let tree_of = |rev: &str| -> Result<git2::Tree<'_>, GitError> {
        repo.revparse_single(rev)
            .map_err(|e| GitError::Revision {
                rev: rev.to_string(),
                repo: repo_root.display().to_string(),
                detail: e.message().to_string(),
            })?
            .peel_to_tree()
            .map_err(GitError::from)
    };
    let old_tree = tree_of(old)?;
    let mut options = git2::DiffOptions::new();
    // Over the limit a file is shown as binary: libgit2 then takes its size from the object
    // header (or the file's metadata) and never loads it.
    options
        .pathspec(relative)
        .context_lines(3)
        .max_size(i64::try_from(super::DEFAULT_MAX_POLICY_BYTES).unwrap_or(i64::MAX));
    let diff = match new {
        Some(rev) => {
            repo.diff_tree_to_tree(Some(&old_tree), Some(&tree_of(rev)?), Some(&mut options))?
        }
        None => repo.diff_tree_to_workdir_with_index(Some(&old_tree), Some(&mut options))?,
    };
    let mut out = String::new();
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        let prefix = match line.origin() {
            origin @ ('+' | '-' | ' ') => origin.to_string(),
            _ => String::new(),
        };
        out.push_str(&prefix);
        out.push_str(&String::from_utf8_lossy(line.content()));
        true
    })?;
    Ok(out)
}
