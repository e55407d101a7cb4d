//! Every git2 call lives here; the rest of the crate asks this module. So far: finding the
//! repository a path is in, reading a file as it was at a revision, committing (files as they
//! are, or exactly the bytes a caller checked), pushing, the server's mirror, and creating the
//! demo's bare "remote" and its working clone. Never parses TOML, and
//! never reads an object whose header says it is over the caller's size limit.

use std::path::{Path, PathBuf};

use git2::Repository;

mod network;
mod workflow;
use network::{Credentials, ensure_transport, fetch_with_credentials};
pub use workflow::{
    CommitInfo, PushOutcome, RepoStatus, ResetOutcome, fetch, log, log_paths, log_range, pull,
    push_reconciling, push_reconciling_with_progress, push_resolving, reset_to_upstream, status,
    text_diff, text_diff_texts,
};

/// Git failures, worded for the person who typed the revision or path.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0} is not inside a git repository")]
    NotARepository(String),
    #[error("{rev:?} is not a revision of {repo}: {detail}")]
    Revision {
        rev: String,
        repo: String,
        detail: String,
    },
    #[error("{path} does not exist at revision {rev}")]
    NoSuchFile { rev: String, path: String },
    #[error("{path} at revision {rev} is not UTF-8 text")]
    NotText { rev: String, path: String },
    #[error(
        "{what} at {rev} is {size} bytes, over the {limit}-byte limit; it was not read (the limit is --max-policy-bytes)"
    )]
    TooLarge {
        what: String,
        rev: String,
        size: u64,
        limit: u64,
    },
    #[error(
        "{0} has no author configured; set user.name and user.email (git config) — commits are never made under an invented name"
    )]
    NoAuthor(String),
    #[error("the push to {remote} was rejected: {reason}")]
    Rejected { remote: String, reason: String },
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error(
        "{remote} ({url}) needs the {transport} transport, and this build has none: rebuild with `--features network-git`, or use a local path / file:// remote"
    )]
    TransportNotBuilt {
        remote: String,
        url: String,
        transport: &'static str,
    },
    #[error(
        "cannot authenticate to {remote} ({url}): {reason}; tried {tried}. Credentials come from ssh-agent and ~/.ssh/id_ed25519, id_ecdsa, id_rsa (ssh) and from git credential helpers (http/https); nothing is prompted for"
    )]
    Authentication {
        remote: String,
        url: String,
        reason: String,
        tried: String,
    },
    #[error(
        "the branch and {upstream} have diverged ({local} local and {remote} upstream commits); push to reconcile them"
    )]
    Diverged {
        local: usize,
        remote: usize,
        upstream: String,
    },
    #[error(
        "your commits conflict with the upstream's; nothing was changed locally. Upstream version:\n{theirs}\nYour version:\n{ours}"
    )]
    Conflict { ours: String, theirs: String },
    #[error(
        "your commits conflict with {upstream}'s ({commit}); nothing was changed locally. {} conflict(s):\n{}",
        conflicts.len(),
        conflicts.iter().map(|c| format!("  - {c}")).collect::<Vec<_>>().join("\n")
    )]
    PolicyConflict {
        upstream: String,
        commit: String,
        conflicts: Vec<crate::policy::rebase::Conflict>,
    },
    #[error("cannot rebase {commit} onto the upstream: {reason}; nothing was changed locally")]
    RebaseRefused { commit: String, reason: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

impl GitError {
    /// The revision an object was refused at (for `TooLarge`; empty for the others).
    pub fn revision(&self) -> String {
        match self {
            GitError::TooLarge { rev, .. } => rev.clone(),
            _ => String::new(),
        }
    }
}

/// The working-tree root of the repository containing `start`.
pub fn repository_root(start: &Path) -> Result<PathBuf, GitError> {
    let repo = Repository::discover(start)
        .map_err(|_| GitError::NotARepository(start.display().to_string()))?;
    repo.workdir()
        .map(Path::to_path_buf)
        .ok_or_else(|| GitError::NotARepository(format!("{} (a bare repository)", start.display())))
}

/// The commit `rev` names (an id, a branch, a tag, `HEAD`, `@{upstream}`), in full.
pub fn commit_id(repo_root: &Path, rev: &str) -> Result<String, GitError> {
    let repo = Repository::open(repo_root)
        .map_err(|_| GitError::NotARepository(repo_root.display().to_string()))?;
    let id = resolve(&repo, rev, repo_root)?;
    repo.find_object(id, None)
        .and_then(|object| object.peel_to_commit())
        .map(|commit| commit.id().to_string())
        .map_err(|e| GitError::Revision {
            rev: rev.to_string(),
            repo: repo_root.display().to_string(),
            detail: e.message().to_string(),
        })
}

/// The largest object read from git by default, policy files included: 8 MiB, about 600 times
/// the demo policy and 40 times a generated 1,000-client one, so only a mistake or an attack is
/// refused.
pub const DEFAULT_MAX_POLICY_BYTES: u64 = 8 * 1024 * 1024;

/// The contents of `relative` (a path inside the repository) at revision `rev`, refused unread
/// when its blob is over `DEFAULT_MAX_POLICY_BYTES`.
pub fn read_at_revision(repo_root: &Path, rev: &str, relative: &Path) -> Result<String, GitError> {
    read_at_revision_within(repo_root, rev, relative, DEFAULT_MAX_POLICY_BYTES)
}

/// `read_at_revision` with the size limit given: the commit, its tree and the blob are each
/// refused from their object header when over `limit`, before any is inflated.
pub fn read_at_revision_within(
    repo_root: &Path,
    rev: &str,
    relative: &Path,
    limit: u64,
) -> Result<String, GitError> {
    let repo = Repository::open(repo_root)
        .map_err(|_| GitError::NotARepository(repo_root.display().to_string()))?;
    let id = resolve(&repo, rev, repo_root)?;
    let tree = tree_within(&repo, id, rev, limit)?;
    text_within(&repo, &tree, rev, relative, limit)
}

/// The contents of `relative` at the tip of `branch` of a repository (bare or not), with the
/// commit id; refused unread over `limit` bytes, like `read_at_revision_within`.
pub fn read_branch_file_within(
    repo_path: &Path,
    branch: &str,
    relative: &Path,
    limit: u64,
) -> Result<(String, String), GitError> {
    let repo = Repository::open(repo_path)
        .map_err(|_| GitError::NotARepository(repo_path.display().to_string()))?;
    let reference = repo
        .find_branch(branch, git2::BranchType::Local)
        .map_err(|e| GitError::Revision {
            rev: branch.to_string(),
            repo: repo_path.display().to_string(),
            detail: e.message().to_string(),
        })?;
    let id = reference
        .get()
        .resolve()?
        .target()
        .ok_or_else(|| GitError::Git(git2::Error::from_str("the branch points nowhere")))?;
    let commit = id.to_string();
    let tree = tree_within(&repo, id, &commit, limit)?;
    let text = text_within(&repo, &tree, &commit, relative, limit)?;
    Ok((text, commit))
}

/// `read_branch_file_within` at the default limit.
pub fn read_branch_file(
    repo_path: &Path,
    branch: &str,
    relative: &Path,
) -> Result<(String, String), GitError> {
    read_branch_file_within(repo_path, branch, relative, DEFAULT_MAX_POLICY_BYTES)
}

/// The object `rev` names, without reading it when it is a full id or a reference (a spec such
/// as `HEAD~1` is resolved by libgit2, which reads the commits it walks).
pub(crate) fn resolve(
    repo: &Repository,
    rev: &str,
    repo_path: &Path,
) -> Result<git2::Oid, GitError> {
    if rev.len() == 40
        && let Ok(id) = git2::Oid::from_str(rev)
    {
        return Ok(id);
    }
    if let Ok(reference) = repo.resolve_reference_from_short_name(rev)
        && let Some(id) = reference.resolve().ok().and_then(|r| r.target())
    {
        return Ok(id);
    }
    repo.revparse_single(rev)
        .map(|object| object.id())
        .map_err(|e| GitError::Revision {
            rev: rev.to_string(),
            repo: repo_path.display().to_string(),
            detail: e.message().to_string(),
        })
}

/// An object's size and kind from its header (git2 reads a loose object's first bytes, or a
/// packed one's entry header, without inflating the rest), refused when over `limit`.
fn header_within(
    repo: &Repository,
    id: git2::Oid,
    what: &str,
    rev: &str,
    limit: u64,
) -> Result<git2::ObjectType, GitError> {
    let (size, kind) = repo.odb()?.read_header(id)?;
    let size = size as u64;
    if size > limit {
        return Err(GitError::TooLarge {
            what: what.to_string(),
            rev: rev.to_string(),
            size,
            limit,
        });
    }
    Ok(kind)
}

/// The root tree of the commit (or tag of a commit) `id`, each object checked before it is read.
fn tree_within<'r>(
    repo: &'r Repository,
    id: git2::Oid,
    rev: &str,
    limit: u64,
) -> Result<git2::Tree<'r>, GitError> {
    let mut id = id;
    // A chain of tags ends at a commit; ten links is more than any repository uses.
    for _ in 0..10 {
        match header_within(repo, id, "the commit", rev, limit)? {
            git2::ObjectType::Tag => id = repo.find_tag(id)?.target_id(),
            git2::ObjectType::Commit => {
                let tree = repo.find_commit(id)?.tree_id();
                header_within(repo, tree, "the root tree", rev, limit)?;
                return Ok(repo.find_tree(tree)?);
            }
            git2::ObjectType::Tree => return Ok(repo.find_tree(id)?),
            _ => break,
        }
    }
    Err(GitError::Revision {
        rev: rev.to_string(),
        repo: repo.path().display().to_string(),
        detail: "it names no commit".into(),
    })
}

/// The text of the blob at `relative` in `tree`, read only once its header shows a blob of at
/// most `limit` bytes. Files live at the repository's root here, so only the root tree (checked
/// by `tree_within`) is walked.
fn text_within(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    rev: &str,
    relative: &Path,
    limit: u64,
) -> Result<String, GitError> {
    let missing = || GitError::NoSuchFile {
        rev: rev.to_string(),
        path: relative.display().to_string(),
    };
    let entry = tree.get_path(relative).map_err(|_| missing())?;
    let what = relative.display().to_string();
    if header_within(repo, entry.id(), &what, rev, limit)? != git2::ObjectType::Blob {
        return Err(missing());
    }
    let blob = repo.find_blob(entry.id()).map_err(|_| missing())?;
    String::from_utf8(blob.content().to_vec()).map_err(|_| GitError::NotText {
        rev: rev.to_string(),
        path: what,
    })
}

/// Commits the working-tree file `relative` with `message`, as the author the repository's git
/// configuration names. Returns the new commit id.
pub fn commit_file(repo_root: &Path, relative: &Path, message: &str) -> Result<String, GitError> {
    commit_files(repo_root, &[relative], message)
}

/// Commits the working-tree state of several files at once (a file that is gone from the working
/// tree is removed from the commit; one that was never there is skipped).
pub fn commit_files(
    repo_root: &Path,
    relatives: &[&Path],
    message: &str,
) -> Result<String, GitError> {
    let (repo, author) = open_for_commit(repo_root)?;
    let mut index = repo.index()?;
    for relative in relatives {
        if repo_root.join(relative).exists() {
            index.add_path(relative)?;
        } else if index.get_path(relative, 0).is_some() {
            index.remove_path(relative)?;
        }
    }
    commit_index(&repo, &mut index, &author, message)
}

/// Commits exactly `contents` for each file (`None`: the file is removed from the commit if it
/// was in it), whatever the working tree holds by now: a caller that validated those bytes
/// commits those bytes, never a file swapped in after its check. The working tree is not
/// touched, so a file changed meanwhile shows as modified afterwards.
pub fn commit_contents(
    repo_root: &Path,
    contents: &[(&Path, Option<&[u8]>)],
    message: &str,
) -> Result<String, GitError> {
    let (repo, author) = open_for_commit(repo_root)?;
    let mut index = repo.index()?;
    for (relative, content) in contents {
        let existing = index.get_path(relative, 0);
        match content {
            Some(bytes) => {
                let path = relative.to_string_lossy().replace('\\', "/").into_bytes();
                let zero = git2::IndexTime::new(0, 0);
                // Stat fields stay zero: git re-reads the file to compare, never trusts them.
                let entry = git2::IndexEntry {
                    ctime: zero,
                    mtime: zero,
                    dev: 0,
                    ino: 0,
                    mode: existing.as_ref().map_or(0o100644, |e| e.mode),
                    uid: 0,
                    gid: 0,
                    file_size: 0,
                    id: git2::Oid::ZERO_SHA1,
                    flags: 0,
                    flags_extended: 0,
                    path,
                };
                index.add_frombuffer(&entry, bytes)?;
            }
            None if existing.is_some() => index.remove_path(relative)?,
            None => {}
        }
    }
    commit_index(&repo, &mut index, &author, message)
}

/// The repository and the author its configuration names (never an invented one).
fn open_for_commit(repo_root: &Path) -> Result<(Repository, git2::Signature<'static>), GitError> {
    let repo = Repository::open(repo_root)
        .map_err(|_| GitError::NotARepository(repo_root.display().to_string()))?;
    let author = repo
        .signature()
        .map_err(|_| GitError::NoAuthor(repo_root.display().to_string()))?;
    Ok((repo, author.to_owned()))
}

/// Writes `index` and commits its tree on HEAD.
fn commit_index(
    repo: &Repository,
    index: &mut git2::Index,
    author: &git2::Signature<'_>,
    message: &str,
) -> Result<String, GitError> {
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo.commit(Some("HEAD"), author, author, message, &tree, &parents)?;
    Ok(id.to_string())
}

/// How far a push has got, as libgit2 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushProgress {
    /// Building the pack: objects counted or deltified so far.
    Packing { current: usize, total: usize },
    /// Sending the pack to the remote.
    Sending {
        current: usize,
        total: usize,
        bytes: usize,
    },
    /// The remote had moved on: fetching it to rebase onto.
    Fetching,
    /// Rebasing the local commits onto the remote's.
    Rebasing,
}

impl std::fmt::Display for PushProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushProgress::Packing { current, total } => {
                write!(f, "packing {current}/{total} objects")
            }
            PushProgress::Sending {
                current,
                total,
                bytes,
            } => write!(f, "sending {current}/{total} objects ({bytes} bytes)"),
            PushProgress::Fetching => write!(f, "the remote moved on: fetching it"),
            PushProgress::Rebasing => write!(f, "rebasing onto the remote"),
        }
    }
}

/// Pushes `branch` to `remote`; a rejection (non-fast-forward, a hook refusing) is an error
/// with the remote's reason, never a success.
pub fn push(repo_root: &Path, remote_name: &str, branch: &str) -> Result<(), GitError> {
    push_with_progress(repo_root, remote_name, branch, &|_| {})
}

/// `push`, reporting progress as it goes.
pub fn push_with_progress(
    repo_root: &Path,
    remote_name: &str,
    branch: &str,
    progress: &dyn Fn(PushProgress),
) -> Result<(), GitError> {
    let repo = Repository::open(repo_root)
        .map_err(|_| GitError::NotARepository(repo_root.display().to_string()))?;
    let mut remote = repo.find_remote(remote_name)?;
    let url = match (remote.pushurl(), remote.url()) {
        (Ok(Some(push_url)), _) => push_url.to_string(),
        (_, Ok(url)) => url.to_string(),
        _ => remote_name.to_string(),
    };
    ensure_transport(remote_name, &url)?;
    let credentials = Credentials::from_environment(remote_name, &url, repo.config().ok());
    let rejected = std::cell::RefCell::new(None::<String>);
    let mut callbacks = credentials.callbacks();
    callbacks.push_update_reference(|reference, status| {
        if let Some(reason) = status {
            *rejected.borrow_mut() = Some(format!("{reference}: {reason}"));
        }
        Ok(())
    });
    callbacks.pack_progress(|_, current, total| {
        progress(PushProgress::Packing { current, total });
    });
    callbacks.push_transfer_progress(|current, total, bytes| {
        progress(PushProgress::Sending {
            current,
            total,
            bytes,
        });
    });
    let mut options = git2::PushOptions::new();
    options.remote_callbacks(callbacks);
    let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
    let result = remote.push(&[refspec.as_str()], Some(&mut options));
    drop(options);
    let reason = rejected.into_inner();
    match (result, reason) {
        (Err(e), _) => Err(credentials
            .explain(&e)
            .unwrap_or_else(|| GitError::Rejected {
                remote: remote_name.to_string(),
                reason: e.message().to_string(),
            })),
        (Ok(()), Some(reason)) => Err(GitError::Rejected {
            remote: remote_name.to_string(),
            reason,
        }),
        (Ok(()), None) => Ok(()),
    }
}

/// A bare mirror of one branch of a remote, kept by the server. Fetching follows the branch even
/// when its history is rewritten; every commit fetched once stays readable when the remote is
/// gone. No object over the mirror's size limit is read, whichever transport brings it.
pub struct Mirror {
    path: PathBuf,
    url: String,
    branch: String,
    limit: u64,
}

/// Most objects a tip copied from a local remote may hold: a policy repository has a handful,
/// and a tree of millions of files is refused instead of copied.
pub const MAX_TIP_OBJECTS: usize = 100_000;

impl Mirror {
    /// Opens the mirror at `path`, creating it if needed; objects over `limit` bytes (policy
    /// files, commits, trees) are never read.
    pub fn open(path: &Path, url: &str, branch: &str, limit: u64) -> Result<Mirror, GitError> {
        if Repository::open_bare(path).is_err() {
            Repository::init_bare(path)?;
        }
        Ok(Mirror {
            path: path.to_path_buf(),
            url: url.to_string(),
            branch: branch.to_string(),
            limit,
        })
    }

    fn tracking(&self) -> String {
        format!("refs/remotes/origin/{}", self.branch)
    }

    /// Fetches the branch; returns the tip.
    pub fn fetch(&self) -> Result<String, GitError> {
        if network::Transport::of(&self.url) == network::Transport::Local {
            return self.copy_local_tip();
        }
        let repo = Repository::open_bare(&self.path)?;
        let mut remote = repo.remote_anonymous(&self.url)?;
        let refspec = format!("+refs/heads/{}:{}", self.branch, self.tracking());
        fetch_with_credentials(&repo, &mut remote, "the policy remote", &self.url, &refspec)?;
        self.tip()?.ok_or_else(|| self.no_branch())
    }

    fn no_branch(&self) -> GitError {
        GitError::Revision {
            rev: self.branch.clone(),
            repo: self.url.clone(),
            detail: "the branch does not exist on the remote".into(),
        }
    }

    /// The fetch from a repository on this machine. libgit2's local transport packs every new
    /// object whole in memory (its packbuilder reads each one), so a 4 GiB blob of spaces, a
    /// 4 MB push, would cost 4 GiB; here the tip's objects are copied one by one, each checked
    /// from its header first. Blobs over the limit are left out (the server reads no such file,
    /// and `read` reports one it is asked for); history is not copied, only tips are read.
    fn copy_local_tip(&self) -> Result<String, GitError> {
        let source =
            Repository::open(local_path(&self.url)).map_err(|e| GitError::Unreachable {
                url: self.url.clone(),
                detail: e.message().to_string(),
            })?;
        let tip = source
            .find_branch(&self.branch, git2::BranchType::Local)
            .ok()
            .and_then(|branch| branch.get().resolve().ok())
            .and_then(|reference| reference.target())
            .ok_or_else(|| self.no_branch())?;
        let mirror = Repository::open_bare(&self.path)?;
        if !mirror.odb()?.exists(tip) {
            self.copy_commit(&source, &mirror, tip)?;
        }
        mirror.reference(&self.tracking(), tip, true, "fetch from a local remote")?;
        Ok(tip.to_string())
    }

    /// Copies commit `tip` and its tree, children before parents, so an object present in the
    /// mirror always has everything under it (a copy cut short is redone at the next fetch).
    fn copy_commit(
        &self,
        source: &Repository,
        mirror: &Repository,
        tip: git2::Oid,
    ) -> Result<(), GitError> {
        let rev = tip.to_string();
        let (from, to) = (source.odb()?, mirror.odb()?);
        if header_within(source, tip, "the commit", &rev, self.limit)? != git2::ObjectType::Commit {
            return Err(GitError::Revision {
                rev: self.branch.clone(),
                repo: self.url.clone(),
                detail: "the branch does not point at a commit".into(),
            });
        }
        let root = source.find_commit(tip)?.tree_id();
        let mut pending = vec![root];
        let mut trees = Vec::new();
        let mut blobs = Vec::new();
        while let Some(id) = pending.pop() {
            if to.exists(id) {
                continue;
            }
            header_within(source, id, "a tree", &rev, self.limit)?;
            trees.push(id);
            for entry in source.find_tree(id)?.iter() {
                match entry.kind() {
                    Some(git2::ObjectType::Tree) => pending.push(entry.id()),
                    Some(git2::ObjectType::Blob) if !to.exists(entry.id()) => {
                        blobs.push(entry.id())
                    }
                    _ => {}
                }
            }
            if trees.len() + blobs.len() > MAX_TIP_OBJECTS {
                return Err(GitError::Revision {
                    rev,
                    repo: self.url.clone(),
                    detail: format!(
                        "its tree holds more than {MAX_TIP_OBJECTS} new objects; a policy repository needs a handful"
                    ),
                });
            }
        }
        for id in blobs {
            let (size, _) = from.read_header(id)?;
            if size as u64 <= self.limit {
                copy_object(&from, &to, id)?;
            }
        }
        for id in trees.into_iter().rev() {
            copy_object(&from, &to, id)?;
        }
        copy_object(&from, &to, tip)
    }

    /// The tip fetched last, without touching the network.
    pub fn tip(&self) -> Result<Option<String>, GitError> {
        let repo = Repository::open_bare(&self.path)?;
        let tip = repo
            .refname_to_id(&self.tracking())
            .ok()
            .map(|id| id.to_string());
        Ok(tip)
    }

    /// `relative` as it was at `commit`, refused unread over the limit.
    pub fn read(&self, commit: &str, relative: &Path) -> Result<String, GitError> {
        let repo = Repository::open_bare(&self.path)?;
        let id = resolve(&repo, commit, &self.path)?;
        let tree = tree_within(&repo, id, commit, self.limit)?;
        match text_within(&repo, &tree, commit, relative, self.limit) {
            Err(GitError::Git(e)) if e.code() == git2::ErrorCode::NotFound => Err(self
                .left_out(&tree, commit, relative)
                .unwrap_or(GitError::Git(e))),
            other => other,
        }
    }

    /// Why a file of a copied tip is missing from the mirror: a blob left out for its size, as
    /// the local remote's header tells (`None` when the remote cannot say).
    fn left_out(&self, tree: &git2::Tree<'_>, commit: &str, relative: &Path) -> Option<GitError> {
        let id = tree.get_path(relative).ok()?.id();
        let source = Repository::open(local_path(&self.url)).ok()?;
        let (size, _) = source.odb().ok()?.read_header(id).ok()?;
        let size = size as u64;
        (size > self.limit).then(|| GitError::TooLarge {
            what: relative.display().to_string(),
            rev: commit.to_string(),
            size,
            limit: self.limit,
        })
    }
}

/// Copies one object, already checked to be within the limit, between object databases.
fn copy_object(from: &git2::Odb<'_>, to: &git2::Odb<'_>, id: git2::Oid) -> Result<(), GitError> {
    let object = from.read(id)?;
    let written = to.write(object.kind(), object.data())?;
    if written != id {
        return Err(GitError::Git(git2::Error::from_str(&format!(
            "object {id} was copied as {written}: the source repository is corrupt"
        ))));
    }
    Ok(())
}

/// The path of a local remote given as a path or a `file://` URL.
fn local_path(url: &str) -> PathBuf {
    PathBuf::from(url.strip_prefix("file://").unwrap_or(url))
}

/// Who the demo's initial commit is by (the tool itself, not a person).
const DEMO_AUTHOR: (&str, &str) = ("hessra-console demo", "demo@hessra-console.invalid");

/// Creates a bare repository at `bare` whose `main` branch holds one commit adding `file`.
pub fn init_bare_with_file(
    bare: &Path,
    file: &str,
    contents: &str,
    message: &str,
) -> Result<(), GitError> {
    init_bare_with_files(bare, &[(file, contents)], message)
}

/// `init_bare_with_file` with several files at the root in the first commit.
pub fn init_bare_with_files(
    bare: &Path,
    files: &[(&str, &str)],
    message: &str,
) -> Result<(), GitError> {
    let mut options = git2::RepositoryInitOptions::new();
    options.bare(true).initial_head("main");
    let repo = Repository::init_opts(bare, &options)?;
    let mut tree = repo.treebuilder(None)?;
    for (file, contents) in files {
        let blob = repo.blob(contents.as_bytes())?;
        tree.insert(file, blob, 0o100644)?;
    }
    let tree = repo.find_tree(tree.write()?)?;
    let author = git2::Signature::now(DEMO_AUTHOR.0, DEMO_AUTHOR.1)?;
    repo.commit(
        Some("refs/heads/main"),
        &author,
        &author,
        message,
        &tree,
        &[],
    )?;
    Ok(())
}

/// Clones `url` into `destination`, with the same transports and credentials as a fetch.
pub fn clone(url: &str, destination: &Path) -> Result<(), GitError> {
    ensure_transport("the clone's source", url)?;
    let credentials = Credentials::from_environment("the clone's source", url, None);
    let mut options = git2::FetchOptions::new();
    options.remote_callbacks(credentials.callbacks());
    git2::build::RepoBuilder::new()
        .fetch_options(options)
        .clone(url, destination)
        .map_err(|e| credentials.explain(&e).unwrap_or(GitError::Git(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, file: &str, text: &str, message: &str) {
        let root = repo.workdir().unwrap();
        std::fs::write(root.join(file), text).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new(file)).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = git2::Signature::now("Test", "test@example.com").unwrap();
        let parents: Vec<git2::Commit<'_>> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .unwrap();
    }

    #[test]
    fn reads_files_at_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        commit(&repo, "clients.toml", "one", "first");
        commit(&repo, "clients.toml", "two", "second");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let root = repository_root(&dir.path().join("sub")).unwrap();
        assert_eq!(
            root.canonicalize().unwrap(),
            dir.path().canonicalize().unwrap()
        );
        assert_eq!(
            read_at_revision(&root, "HEAD", Path::new("clients.toml")).unwrap(),
            "two"
        );
        assert_eq!(
            read_at_revision(&root, "HEAD~1", Path::new("clients.toml")).unwrap(),
            "one"
        );
        let err = read_at_revision(&root, "nope", Path::new("clients.toml")).unwrap_err();
        assert!(
            err.to_string().contains("\"nope\" is not a revision"),
            "{err}"
        );
        let err = read_at_revision(&root, "HEAD", Path::new("other.toml")).unwrap_err();
        assert!(
            err.to_string().contains("does not exist at revision HEAD"),
            "{err}"
        );
        let outside = tempfile::tempdir().unwrap();
        assert!(matches!(
            repository_root(outside.path()),
            Err(GitError::NotARepository(_))
        ));
    }

    #[test]
    fn commit_push_and_a_mirror_that_outlives_its_remote() {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("origin.git");
        init_bare_with_file(&bare, "clients.toml", "v = 1\n", "one").unwrap();
        let clone_dir = dir.path().join("clone");
        clone(bare.to_str().unwrap(), &clone_dir).unwrap();
        std::fs::write(clone_dir.join("clients.toml"), "v = 2\n").unwrap();
        let repo = Repository::open(&clone_dir).unwrap();
        let mut config = repo.config().unwrap();
        config.set_str("user.name", "Operator").unwrap();
        config.set_str("user.email", "ops@example.com").unwrap();
        let second = commit_file(&clone_dir, Path::new("clients.toml"), "two").unwrap();
        push(&clone_dir, "origin", "main").unwrap();

        let mirror = Mirror::open(
            &dir.path().join("mirror.git"),
            bare.to_str().unwrap(),
            "main",
            DEFAULT_MAX_POLICY_BYTES,
        )
        .unwrap();
        assert_eq!(mirror.tip().unwrap(), None);
        assert_eq!(mirror.fetch().unwrap(), second);
        assert_eq!(
            mirror.read(&second, Path::new("clients.toml")).unwrap(),
            "v = 2\n"
        );

        // A second clone that did not pull is rejected, with the reason.
        let stale = dir.path().join("stale");
        clone(bare.to_str().unwrap(), &stale).unwrap();
        std::fs::write(clone_dir.join("clients.toml"), "v = 3\n").unwrap();
        commit_file(&clone_dir, Path::new("clients.toml"), "three").unwrap();
        push(&clone_dir, "origin", "main").unwrap();
        let stale_repo = Repository::open(&stale).unwrap();
        let mut config = stale_repo.config().unwrap();
        config.set_str("user.name", "Other").unwrap();
        config.set_str("user.email", "other@example.com").unwrap();
        std::fs::write(stale.join("clients.toml"), "v = 99\n").unwrap();
        commit_file(&stale, Path::new("clients.toml"), "conflict").unwrap();
        let err = push(&stale, "origin", "main").unwrap_err();
        assert!(matches!(err, GitError::Rejected { .. }), "{err}");

        // The remote disappears: the mirror still knows the last tip and its files.
        std::fs::remove_dir_all(&bare).unwrap();
        assert!(matches!(mirror.fetch(), Err(GitError::Unreachable { .. })));
        assert_eq!(mirror.tip().unwrap(), Some(second.clone()));
        assert_eq!(
            mirror.read(&second, Path::new("clients.toml")).unwrap(),
            "v = 2\n"
        );
    }

    #[test]
    fn objects_over_the_limit_are_refused_from_their_header() {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("origin.git");
        init_bare_with_file(&bare, "clients.toml", &" ".repeat(2_048), "big").unwrap();
        let file = Path::new("clients.toml");
        let too_large = |error: GitError, what: &str, limit: u64| match error {
            GitError::TooLarge {
                what: named,
                size,
                limit: said,
                ..
            } => {
                assert_eq!((named.as_str(), said), (what, limit));
                size
            }
            other => panic!("{other}"),
        };
        let err = read_at_revision_within(&bare, "main", file, 1_024).unwrap_err();
        assert!(
            err.to_string()
                .contains("2048 bytes, over the 1024-byte limit")
        );
        assert_eq!(too_large(err, "clients.toml", 1_024), 2_048);
        let (_, tip) = read_branch_file_within(&bare, "main", file, 4_096).unwrap();
        let err = read_branch_file_within(&bare, "main", file, 1_024).unwrap_err();
        assert_eq!(err.revision(), tip, "the refusal names the commit");
        // A commit is an object too: one over the limit is not read either.
        let err = read_at_revision_within(&bare, &tip, file, 64).unwrap_err();
        assert!(too_large(err, "the commit", 64) > 64);

        // The mirror copies the tip without the oversized blob and says how large it was.
        let mirror = Mirror::open(
            &dir.path().join("mirror.git"),
            bare.to_str().unwrap(),
            "main",
            1_024,
        )
        .unwrap();
        assert_eq!(mirror.fetch().unwrap(), tip);
        let blob = Repository::open_bare(&bare)
            .unwrap()
            .find_commit(git2::Oid::from_str(&tip).unwrap())
            .unwrap()
            .tree()
            .unwrap()
            .get_name("clients.toml")
            .unwrap()
            .id();
        let copied = Repository::open_bare(dir.path().join("mirror.git")).unwrap();
        assert!(!copied.odb().unwrap().exists(blob), "never copied");
        let err = mirror.read(&tip, file).unwrap_err();
        assert_eq!(too_large(err, "clients.toml", 1_024), 2_048);
    }

    #[test]
    fn a_bare_remote_and_its_clone() {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("origin.git");
        init_bare_with_file(&bare, "clients.toml", "x = 1\n", "Demo policy").unwrap();
        let clone_dir = dir.path().join("policy");
        clone(bare.to_str().unwrap(), &clone_dir).unwrap();
        let text = std::fs::read_to_string(clone_dir.join("clients.toml")).unwrap();
        assert_eq!(text, "x = 1\n");
        let at_origin =
            read_at_revision(&clone_dir, "origin/main", Path::new("clients.toml")).unwrap();
        assert_eq!(at_origin, "x = 1\n");
    }
}
