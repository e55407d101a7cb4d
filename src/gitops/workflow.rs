//! The operator's git workflow on a policy clone: status, history of the policy file, pull
//! (fast-forward only), and push that reconciles with an upstream that moved on. Reconciling is a
//! *semantic* rebase (`policy::rebase`): each local commit's policy edits are replayed as
//! operations on the upstream's version of `clients.toml` (and its revocations joined to the
//! upstream's), keeping each commit's message and author. Only a true conflict stops it, and
//! then nothing local has changed: the conflicts are returned, shown semantically, to be
//! resolved (mine or theirs, per conflict) or abandoned. A clone can also be reset to the
//! upstream, its local work kept in a recovery directory first.

use std::path::{Path, PathBuf};

use git2::{BranchType, Commit, Oid, Repository};
use serde::Serialize;

use super::{GitError, PushProgress, fetch_with_credentials, push_with_progress};
use crate::policy;
use crate::policy::rebase::{Formatting, Resolutions, rebase};

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
        /// What the operator should know about the rebase (comment changes that could not be
        /// carried, a removed revocation the upstream keeps, conflicts resolved).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
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
    commits_touching(&repo, walk, paths, limit)
}

/// Commits reachable from `to` and not from `from` (all of `to`'s history when `from` is
/// None) that changed any of `paths`, newest first; at most `limit`. Revisions are anything
/// git names a commit by (an id, a branch, a tag, `HEAD~3`).
pub fn log_range(
    repo_root: &Path,
    paths: &[&Path],
    from: Option<&str>,
    to: &str,
    limit: usize,
) -> Result<Vec<CommitInfo>, GitError> {
    let repo = open(repo_root)?;
    let commit_of = |rev: &str| -> Result<git2::Oid, GitError> {
        let id = super::resolve(&repo, rev, repo_root)?;
        let commit = repo
            .find_object(id, None)
            .and_then(|object| object.peel_to_commit())
            .map_err(|e| GitError::Revision {
                rev: rev.to_string(),
                repo: repo_root.display().to_string(),
                detail: e.message().to_string(),
            })?;
        Ok(commit.id())
    };
    let mut walk = repo.revwalk()?;
    walk.push(commit_of(to)?)?;
    if let Some(from) = from {
        walk.hide(commit_of(from)?)?;
    }
    commits_touching(&repo, walk, paths, limit)
}

fn commits_touching(
    repo: &Repository,
    mut walk: git2::Revwalk<'_>,
    paths: &[&Path],
    limit: usize,
) -> Result<Vec<CommitInfo>, GitError> {
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

/// Pushes; when the upstream moved on, fetches, replays the local commits onto it (a semantic
/// rebase, see the module docs) and pushes again; on a true conflict nothing local changes and
/// `GitError::PolicyConflict` lists the conflicts.
pub fn push_reconciling(repo_root: &Path, relative: &Path) -> Result<PushOutcome, GitError> {
    push_reconciling_with_progress(repo_root, relative, &|_| {})
}

/// `push_reconciling`, reporting progress as it goes.
pub fn push_reconciling_with_progress(
    repo_root: &Path,
    relative: &Path,
    progress: &dyn Fn(PushProgress),
) -> Result<PushOutcome, GitError> {
    push_resolving(repo_root, relative, &Resolutions::new(), progress)
}

/// `push_reconciling`, with conflicts resolved as `resolutions` says (the operator's choices
/// after a `PolicyConflict`); conflicts it does not name still stop the push.
pub fn push_resolving(
    repo_root: &Path,
    relative: &Path,
    resolutions: &Resolutions,
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
    let (commits, notes) = semantic_rebase(
        &repo,
        &branch,
        upstream,
        &upstream_name,
        relative,
        resolutions,
    )?;
    push_with_progress(repo_root, "origin", &branch, progress)?;
    Ok(PushOutcome::Rebased {
        upstream: upstream_name,
        commits,
        notes,
    })
}

/// The text of `path` in a commit's tree (`None` when the commit has no such file).
fn text_in(
    repo: &Repository,
    commit: &Commit<'_>,
    path: &Path,
) -> Result<Option<String>, GitError> {
    let tree = commit.tree()?;
    let Ok(entry) = tree.get_path(path) else {
        return Ok(None);
    };
    let blob = repo.find_blob(entry.id())?;
    String::from_utf8(blob.content().to_vec())
        .map(Some)
        .map_err(|_| GitError::NotText {
            rev: commit.id().to_string(),
            path: path.display().to_string(),
        })
}

fn describe_commit(commit: &Commit<'_>) -> String {
    let id = commit.id().to_string();
    let summary = commit.summary().ok().flatten().unwrap_or("").to_string();
    format!("{} \"{summary}\"", &id[..8.min(id.len())])
}

/// Replays the local commits (those the upstream lacks) onto `upstream`, one new commit each
/// with the original's message and author. `clients.toml` is rebased semantically and
/// `revocations.toml` joined; other files are cherry-picked and must merge cleanly. The branch
/// and working tree move only when every commit replayed; any failure leaves them as they were.
/// Returns the number of commits and notes for the operator.
fn semantic_rebase(
    repo: &Repository,
    branch: &str,
    upstream: Oid,
    upstream_name: &str,
    relative: &Path,
    resolutions: &Resolutions,
) -> Result<(usize, Vec<String>), GitError> {
    let refused = |commit: String, reason: String| GitError::RebaseRefused { commit, reason };
    let head = repo.head()?.peel_to_commit()?;
    let base = repo.find_commit(repo.merge_base(head.id(), upstream)?)?;
    let mut walk = repo.revwalk()?;
    walk.push(head.id())?;
    walk.hide(upstream)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    let mut commits = Vec::new();
    for id in walk {
        let commit = repo.find_commit(id?)?;
        if commit.parent_count() != 1 {
            return Err(refused(
                describe_commit(&commit),
                "it is a merge commit; rebase it by hand".into(),
            ));
        }
        commits.push(commit);
    }
    let revocations_path = relative.with_file_name(policy::revocations::FILE);
    let onto_commit = repo.find_commit(upstream)?;
    // All the conflicts at once, from the whole of the local work against the upstream.
    let upstream_text = text_in(repo, &onto_commit, relative)?;
    if let (Some(b), Some(o), Some(t)) = (
        text_in(repo, &base, relative)?,
        text_in(repo, &head, relative)?,
        upstream_text.as_ref(),
    ) {
        let whole = rebase(&b, &o, t, resolutions)
            .map_err(|e| refused(format!("{} local commit(s)", commits.len()), e.to_string()))?;
        if !whole.is_clean() {
            return Err(GitError::PolicyConflict {
                upstream: upstream_name.to_string(),
                commit: format!("{} local commit(s)", commits.len()),
                conflicts: whole.conflicts,
            });
        }
    }
    let committer = repo
        .signature()
        .map_err(|_| GitError::NoAuthor(repo.path().display().to_string()))?;
    let mut notes = Vec::new();
    let mut onto = onto_commit;
    for commit in &commits {
        let parent = commit.parent(0)?;
        let mut index = repo.cherrypick_commit(commit, &onto, 0, None)?;
        let which = describe_commit(commit);
        let (b, o, t) = (
            text_in(repo, &parent, relative)?,
            text_in(repo, commit, relative)?,
            text_in(repo, &onto, relative)?,
        );
        if b != o {
            let (Some(b), Some(o), Some(t)) = (b, o, t) else {
                return Err(refused(
                    which,
                    format!(
                        "it adds or removes {}; rebase it by hand",
                        relative.display()
                    ),
                ));
            };
            let out = rebase(&b, &o, &t, resolutions)
                .map_err(|e| refused(which.clone(), e.to_string()))?;
            if !out.is_clean() {
                return Err(GitError::PolicyConflict {
                    upstream: upstream_name.to_string(),
                    commit: which,
                    conflicts: out.conflicts,
                });
            }
            if out.formatting == Formatting::Dropped || out.resolved > 0 {
                notes.push(format!("{which}: {}", out.summary()));
            }
            put(repo, &mut index, relative, &out.text)?;
        }
        let (b, o, t) = (
            text_in(repo, &parent, &revocations_path)?,
            text_in(repo, commit, &revocations_path)?,
            text_in(repo, &onto, &revocations_path)?,
        );
        if b != o {
            let empty = String::new();
            let out = policy::rebase::rebase_revocations(
                b.as_ref().unwrap_or(&empty),
                o.as_ref().unwrap_or(&empty),
                t.as_ref().unwrap_or(&empty),
            )
            .map_err(|e| refused(which.clone(), e))?;
            for id in &out.kept {
                notes.push(format!(
                    "{which}: removed revocation {}… stays: the upstream still revokes it",
                    &id[..16.min(id.len())]
                ));
            }
            put(repo, &mut index, &revocations_path, &out.text)?;
        }
        if index.has_conflicts() {
            let paths: Vec<String> = index
                .conflicts()?
                .filter_map(Result::ok)
                .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                .collect();
            return Err(refused(
                which,
                format!(
                    "{} conflict(s) with the upstream; rebase by hand",
                    paths.join(", ")
                ),
            ));
        }
        let tree = repo.find_tree(index.write_tree_to(repo)?)?;
        let message = commit.message().unwrap_or("");
        let id = repo.commit(None, &commit.author(), &committer, message, &tree, &[&onto])?;
        onto = repo.find_commit(id)?;
    }
    // Move the working tree first: a safe checkout refuses (changing nothing) when it would
    // overwrite uncommitted changes.
    repo.checkout_tree(
        onto.as_object(),
        Some(git2::build::CheckoutBuilder::new().safe()),
    )
    .map_err(|e| {
        refused(
            format!("{} local commit(s)", commits.len()),
            format!("the working tree has uncommitted changes the rebase would overwrite; commit or discard them first ({})", e.message()),
        )
    })?;
    repo.find_reference(&format!("refs/heads/{branch}"))?
        .set_target(onto.id(), "push: semantic rebase onto the upstream")?;
    repo.set_head(&format!("refs/heads/{branch}"))?;
    Ok((commits.len(), notes))
}

/// Stages `text` as `path` in `index` (replacing whatever, conflicts included, was there).
fn put(
    repo: &Repository,
    index: &mut git2::Index,
    path: &Path,
    text: &str,
) -> Result<(), GitError> {
    let _ = index.conflict_remove(path);
    let id = repo.blob(text.as_bytes())?;
    let path_bytes = path
        .to_str()
        .ok_or_else(|| GitError::Git(git2::Error::from_str("the policy path is not UTF-8")))?
        .replace('\\', "/")
        .into_bytes();
    index.add(&git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        file_size: text.len() as u32,
        id,
        flags: 0,
        flags_extended: 0,
        path: path_bytes,
    })?;
    Ok(())
}

/// Where `reset_to_upstream` kept the local work, and what it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetOutcome {
    pub kept_in: PathBuf,
    pub commits: usize,
    pub upstream: String,
}

/// Resets the branch and working tree to the upstream, after keeping the local work in a new
/// directory under `recovery_dir`: the working `clients.toml` and `revocations.toml`, each local
/// commit's versions of them, and `commits.txt` naming the commits. Refuses, changing nothing,
/// when the work cannot be kept.
pub fn reset_to_upstream(
    repo_root: &Path,
    relative: &Path,
    recovery_dir: &Path,
) -> Result<ResetOutcome, GitError> {
    let repo = open(repo_root)?;
    let branch = current_branch(&repo)?;
    let (upstream_name, upstream) = upstream_of(&repo, &branch).ok_or_else(|| {
        GitError::Git(git2::Error::from_str(
            "the branch has no upstream to reset to",
        ))
    })?;
    let head = repo.head()?.peel_to_commit()?;
    let stamp = crate::token::clock::unix_now();
    let kept_in = recovery_dir.join(format!(
        "reset-{branch}-{stamp}-{}",
        &head.id().to_string()[..8]
    ));
    let keep_failed = |e: std::io::Error| {
        GitError::Git(git2::Error::from_str(&format!(
            "cannot keep the local work in {} ({e}); nothing was reset",
            kept_in.display()
        )))
    };
    crate::fsutil::create_private_dir(&kept_in).map_err(keep_failed)?;
    let revocations_path = relative.with_file_name(policy::revocations::FILE);
    let mut listing = format!(
        "Local work kept before resetting {branch} to {upstream_name} ({upstream}).
"
    );
    for path in [relative, revocations_path.as_path()] {
        if let Ok(text) = std::fs::read(repo_root.join(path)) {
            let name = format!("working.{}", file_name(path));
            crate::fsutil::write_private(&kept_in.join(name), &text).map_err(keep_failed)?;
        }
    }
    let mut walk = repo.revwalk()?;
    walk.push(head.id())?;
    walk.hide(upstream)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    let mut count = 0;
    for id in walk {
        let commit = repo.find_commit(id?)?;
        count += 1;
        let short = &commit.id().to_string()[..8];
        listing.push_str(&format!(
            "{:02} {} {} <{}>: {}
",
            count,
            commit.id(),
            commit.author().name().unwrap_or("?"),
            commit.author().email().unwrap_or(""),
            commit.summary().ok().flatten().unwrap_or("")
        ));
        for path in [relative, revocations_path.as_path()] {
            if let Some(text) = text_in(&repo, &commit, path)? {
                let name = format!("{count:02}-{short}.{}", file_name(path));
                crate::fsutil::write_private(&kept_in.join(name), text.as_bytes())
                    .map_err(keep_failed)?;
            }
        }
    }
    crate::fsutil::write_private(&kept_in.join("commits.txt"), listing.as_bytes())
        .map_err(keep_failed)?;
    let target = repo.find_commit(upstream)?;
    repo.checkout_tree(
        target.as_object(),
        Some(git2::build::CheckoutBuilder::new().force()),
    )?;
    repo.find_reference(&format!("refs/heads/{branch}"))?
        .set_target(
            upstream,
            "reset to the upstream (local work kept in recovery)",
        )?;
    repo.set_head(&format!("refs/heads/{branch}"))?;
    Ok(ResetOutcome {
        kept_in,
        commits: count,
        upstream: upstream_name,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into())
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
