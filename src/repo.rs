//! The policy repository: `clients.toml`, `revocations.toml` and the root keys' public part
//! (`keys.toml`) beside it, and the git working tree they live in. The one layer the CLI and
//! the console both go through to commit (only a valid policy, revocation list and key set,
//! checked on the exact bytes committed) and to write revocations.
//! Parsing and validation stay in `policy`, git calls in `gitops`; this module holds the rules
//! that join them, and never edits a policy itself.

use std::path::{Path, PathBuf};

use crate::gitops::{self, GitError};
use crate::policy::{self, Finding, LoadedPolicy, NewRevocation, RevocationList, Revoked};

/// A policy file and the repository it is committed in (if any: revocations can be written
/// without one, commits cannot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRepo {
    policy_path: PathBuf,
    root: Option<PathBuf>,
}

/// Why the repository layer did nothing. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{0} is not in a git repository; commit, push and pull need one")]
    NotInRepository(String),
    #[error("a commit message is required: say what changed and why")]
    NoMessage,
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}; it was left as it was")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(CommitRefusal),
    /// A revocation that could not be written (bad id, no reason, already revoked, a file with
    /// errors); the file is unchanged.
    #[error("{path}: {message}")]
    Revocation { path: String, message: String },
    /// The root key set beside the policy (`keys.toml`) is invalid or names private keys.
    #[error("{0}; nothing was committed")]
    Keys(String),
    /// A change of the working clone's key set that was refused or failed; `keys.toml` is
    /// unchanged.
    #[error(transparent)]
    KeySet(#[from] crate::keyset::KeySetError),
    #[error(
        "{0} is not there: the key set is not in this repository yet (`hessra-console keys publish`)"
    )]
    NoKeySet(String),
    /// The policy beside `keys.toml` does not load, so how long tokens live is unknown.
    #[error(
        "{path}: {message}; an activation is bounded by the longest token lifetime it allows, so fix it first"
    )]
    PolicyUnusable { path: String, message: String },
    #[error(transparent)]
    Git(#[from] GitError),
}

/// A commit refused because a file has errors: the file (as the repository names it) and every
/// error, each with its line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRefusal {
    pub file: String,
    pub errors: Vec<Finding>,
}

impl CommitRefusal {
    /// One line: the file, how many errors, and the first with its place.
    pub fn summary(&self) -> String {
        let first = self
            .errors
            .first()
            .map_or(String::new(), |f| format!("; first: {}:{f}", self.file));
        format!("{} has {} error(s){first}", self.file, self.errors.len())
    }
}

impl std::fmt::Display for CommitRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refused: {} has validation errors; nothing was committed and the file is as it was. Fix them, then commit again:",
            self.file
        )?;
        for error in &self.errors {
            write!(f, "\n{}:{error}", self.file)?;
        }
        Ok(())
    }
}

/// The commit rule, for a policy already read (the console checks it before offering a commit)
/// and for the bytes about to be committed: no error in the policy, none in the revocation
/// list. Warnings never block.
pub fn commit_refusal(
    policy_file: &str,
    policy: Result<&LoadedPolicy, &Finding>,
    revocations_file: &str,
    revocation_findings: &[Finding],
) -> Option<CommitRefusal> {
    let policy_errors: Vec<Finding> = match policy {
        Ok(loaded) => loaded.errors().cloned().collect(),
        Err(syntax) => vec![syntax.clone()],
    };
    if !policy_errors.is_empty() {
        return Some(CommitRefusal {
            file: policy_file.to_string(),
            errors: policy_errors,
        });
    }
    let revocation_errors: Vec<Finding> = revocation_findings
        .iter()
        .filter(|f| f.is_error())
        .cloned()
        .collect();
    (!revocation_errors.is_empty()).then(|| CommitRefusal {
        file: revocations_file.to_string(),
        errors: revocation_errors,
    })
}

/// What `commit` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub id: String,
    /// The policy file, relative to the repository root.
    pub policy: PathBuf,
}

impl PolicyRepo {
    /// The policy file and the repository root the caller already knows (`None`: not in one).
    pub fn new(policy_path: PathBuf, root: Option<PathBuf>) -> PolicyRepo {
        PolicyRepo { policy_path, root }
    }

    /// The policy file and the git repository it is in, found from its directory.
    pub fn discover(policy_path: &Path) -> PolicyRepo {
        let absolute =
            std::path::absolute(policy_path).unwrap_or_else(|_| policy_path.to_path_buf());
        let directory = absolute.parent().unwrap_or(Path::new("."));
        let root = gitops::repository_root(directory)
            .ok()
            .map(|root| root.canonicalize().unwrap_or(root));
        PolicyRepo {
            policy_path: policy_path.to_path_buf(),
            root,
        }
    }

    pub fn policy_path(&self) -> &Path {
        &self.policy_path
    }

    /// `revocations.toml`, beside the policy file.
    pub fn revocations_path(&self) -> PathBuf {
        self.policy_path.with_file_name(policy::revocations::FILE)
    }

    /// The repository root, or why there is none.
    pub fn root(&self) -> Result<&Path, RepoError> {
        self.root
            .as_deref()
            .ok_or_else(|| RepoError::NotInRepository(self.policy_path.display().to_string()))
    }

    /// The root and the policy file relative to it (`clients.toml` when the path cannot be
    /// related to the root, as git would name it at the root).
    pub fn relative_policy(&self) -> Result<(&Path, PathBuf), RepoError> {
        let root = self.root()?;
        if let Ok(relative) = self.policy_path.strip_prefix(root) {
            return Ok((root, relative.to_path_buf()));
        }
        let absolute =
            std::path::absolute(&self.policy_path).unwrap_or_else(|_| self.policy_path.clone());
        let canonical = absolute.canonicalize().unwrap_or(absolute);
        let relative = canonical
            .strip_prefix(root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| PathBuf::from("clients.toml"));
        Ok((root, relative))
    }

    /// `revocations.toml` relative to the root.
    pub fn relative_revocations(&self) -> Result<PathBuf, RepoError> {
        let (_, relative) = self.relative_policy()?;
        Ok(relative.with_file_name(policy::revocations::FILE))
    }

    /// Commits `clients.toml` and `revocations.toml` as they are on disk now, after checking
    /// those very bytes (`commit_refusal`): what was checked is what is committed, even if a
    /// file changes again meanwhile. A refusal creates no commit and changes no file.
    pub fn commit(&self, message: &str, now: i64) -> Result<Committed, RepoError> {
        self.commit_approving(message, now, |_| Ok(()))
    }

    /// `commit`, asking `approve_activation(id)` first when the `keys.toml` being committed
    /// makes key `id` active where HEAD's has another (the CLI asks the fleet whether every
    /// replica holds the key); its `Err` is the refusal. Asked on the very bytes committed.
    pub fn commit_approving(
        &self,
        message: &str,
        now: i64,
        approve_activation: impl FnOnce(u32) -> Result<(), String>,
    ) -> Result<Committed, RepoError> {
        if message.trim().is_empty() {
            return Err(RepoError::NoMessage);
        }
        let (root, policy_relative) = self.relative_policy()?;
        let revocations_relative = policy_relative.with_file_name(policy::revocations::FILE);
        let policy_bytes = read(&self.policy_path)?;
        let revocation_bytes = read_optional(&self.revocations_path())?;
        let policy_name = policy_relative.display().to_string();
        let revocations_name = revocations_relative.display().to_string();
        let policy_text = text(&policy_name, &policy_bytes)?;
        let revocation_text = match &revocation_bytes {
            Some(bytes) => text(&revocations_name, bytes)?,
            None => "",
        };
        let loaded = policy::load(policy_text, now);
        let (_, revocation_findings) = RevocationList::load(revocation_text);
        if let Some(refusal) = commit_refusal(
            &policy_name,
            loaded.as_ref(),
            &revocations_name,
            &revocation_findings,
        ) {
            return Err(RepoError::Refused(refusal));
        }
        let keys_relative = policy_relative.with_file_name(crate::keyset::MANIFEST);
        let keys_path = self.policy_path.with_file_name(crate::keyset::MANIFEST);
        let keys_bytes = read_optional(&keys_path)?;
        if let Some(bytes) = &keys_bytes {
            let keys_text = text(&keys_relative.display().to_string(), bytes)?;
            // Parsed as the replicas will: public part only. No key directory is read here.
            let edited =
                crate::keyset::KeySet::from_repository(&keys_path, keys_text, Path::new(""))
                    .map_err(|e| RepoError::Keys(e.to_string()))?;
            if let Some(committed) = self.committed_keys(root, &keys_relative)? {
                if let Some(refusal) = crate::keyset::premature_retirement(&committed, &edited, now)
                {
                    return Err(RepoError::Keys(refusal));
                }
                let activating = edited.active().id;
                if committed.active().id != activating {
                    approve_activation(activating).map_err(RepoError::Keys)?;
                }
            }
        }
        let id = gitops::commit_contents(
            root,
            &[
                (policy_relative.as_path(), Some(&policy_bytes)),
                (revocations_relative.as_path(), revocation_bytes.as_deref()),
                (keys_relative.as_path(), keys_bytes.as_deref()),
            ],
            message,
        )?;
        Ok(Committed {
            id,
            policy: policy_relative,
        })
    }

    /// `keys.toml` beside the policy file.
    pub fn keys_path(&self) -> PathBuf {
        self.policy_path.with_file_name(crate::keyset::MANIFEST)
    }

    /// Changes the root key set in the working clone's `keys.toml`, with the private keys in
    /// `key_dir` (an added key is written there, 0600; a retired key's file is deleted), bounded
    /// as a server bounds it: an activation by the longest token lifetime this clone's policy
    /// allows, a retirement by the live tokens `audit` (a server's trail, when given) saw the
    /// key sign. Nothing is committed: `commit` takes the file along. Returns what changed and
    /// the set as saved.
    pub fn change_keys(
        &self,
        key_dir: &Path,
        change: crate::keyset::KeyChange,
        audit: Option<&Path>,
        now: i64,
    ) -> Result<(crate::keyset::Transition, crate::keyset::KeySet), RepoError> {
        let manifest = self.keys_path();
        if !manifest.exists() {
            return Err(RepoError::NoKeySet(manifest.display().to_string()));
        }
        let mut set = crate::keyset::KeySet::open_repository(&manifest, key_dir)?;
        let policy_text = text(
            &self.policy_path.display().to_string(),
            &read(&self.policy_path)?,
        )?
        .to_string();
        let policy =
            policy::load(&policy_text, now).map_err(|finding| RepoError::PolicyUnusable {
                path: self.policy_path.display().to_string(),
                message: finding.to_string(),
            })?;
        let lifetime = crate::keyset::Lifetime::of_policy(&policy.policy);
        // A trail that is there but cannot be read stops the change: it may name live tokens.
        if let Some(path) = audit
            && let Err(source) = std::fs::File::open(path)
            && source.kind() != std::io::ErrorKind::NotFound
        {
            return Err(RepoError::Read {
                path: path.display().to_string(),
                source,
            });
        }
        let events = audit
            .map(crate::audit_trail::read_trail)
            .into_iter()
            .flatten();
        let transition = set.apply(change, now, Some(&lifetime), |set, id| {
            crate::audit_trail::signed_by(set, id, events, now)
        })?;
        set.save()?;
        Ok((transition, set))
    }

    /// `keys.toml` as HEAD has it, when it does and it parses (a broken committed file bounds
    /// nothing: the edit replacing it is checked on its own).
    fn committed_keys(
        &self,
        root: &Path,
        relative: &Path,
    ) -> Result<Option<crate::keyset::KeySet>, RepoError> {
        let text = match gitops::read_at_revision(root, "HEAD", relative) {
            Ok(text) => text,
            Err(GitError::NoSuchFile { .. }) => return Ok(None),
            // A repository without a commit yet has nothing to compare with.
            Err(_) if gitops::commit_id(root, "HEAD").is_err() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(crate::keyset::KeySet::from_repository(relative, &text, Path::new("")).ok())
    }

    /// The revocation list on disk and its findings (an absent file is an empty list).
    pub fn revocations(&self) -> Result<(RevocationList, Vec<Finding>), RepoError> {
        let path = self.revocations_path();
        let bytes = read_optional(&path)?.unwrap_or_default();
        let text = text(&path.display().to_string(), &bytes)?;
        Ok(RevocationList::load(text))
    }

    /// Adds a revocation to `revocations.toml` (created with its explanatory header if absent),
    /// keeping every other byte. Returns the id as written (canonical).
    pub fn revoke(&self, entry: &NewRevocation) -> Result<String, RepoError> {
        let id = policy::revocations::canonical_id(&entry.id.to_lowercase())
            .map_err(|message| self.revocation_error(message))?;
        let entry = NewRevocation {
            id: id.clone(),
            ..entry.clone()
        };
        self.rewrite_revocations(None, |text| policy::revocations::append(text, &entry))?;
        Ok(id)
    }

    /// Withdraws the revocation of `id` (either twin of a P-256 pair): the token is accepted
    /// again once this is committed and pushed. Every other entry and comment stays.
    pub fn withdraw(&self, id: &str) -> Result<Revoked, RepoError> {
        let id = policy::revocations::canonical_id(&id.to_lowercase())
            .map_err(|message| self.revocation_error(message))?;
        let mut withdrawn = None;
        self.rewrite_revocations(Some(&id), |text| {
            let (updated, entry) = policy::revocations::withdraw(text, &id)?;
            withdrawn = Some(entry);
            Ok(updated)
        })?;
        withdrawn.ok_or_else(|| self.revocation_error(format!("{id} is not revoked")))
    }

    /// Reads the file, applies `change`, checks that every entry but `dropping` survived, and
    /// replaces the file atomically with its permissions kept.
    fn rewrite_revocations(
        &self,
        dropping: Option<&str>,
        change: impl FnOnce(&str) -> Result<String, String>,
    ) -> Result<(), RepoError> {
        let path = self.revocations_path();
        let shown = path.display().to_string();
        let before = match read_optional(&path)? {
            Some(bytes) => String::from_utf8(bytes)
                .map_err(|_| self.revocation_error("the file is not UTF-8 text".into()))?,
            None => policy::revocations::HEADER.to_string(),
        };
        let after = change(&before).map_err(|message| self.revocation_error(message))?;
        let (old, _) = RevocationList::load(&before);
        let (new, findings) = RevocationList::load(&after);
        let lost: Vec<&str> = old
            .entries
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| Some(*id) != dropping)
            .filter(|id| new.first_revoked(&[id.to_string()]).is_none())
            .collect();
        if !lost.is_empty() || findings.iter().any(Finding::is_error) {
            return Err(self.revocation_error(format!(
                "the rewrite would have lost {} entr(ies) or left errors; nothing was written",
                lost.len()
            )));
        }
        crate::fsutil::replace_preserving_mode(&path, after.as_bytes()).map_err(|source| {
            RepoError::Write {
                path: shown,
                source,
            }
        })
    }

    fn revocation_error(&self, message: String) -> RepoError {
        RepoError::Revocation {
            path: self.revocations_path().display().to_string(),
            message,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, RepoError> {
    std::fs::read(path).map_err(|source| RepoError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, RepoError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RepoError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The bytes as text; a file that is not UTF-8 is refused like one with an error.
fn text<'b>(file: &str, bytes: &'b [u8]) -> Result<&'b str, RepoError> {
    std::str::from_utf8(bytes).map_err(|e| {
        RepoError::Refused(CommitRefusal {
            file: file.to_string(),
            errors: vec![Finding::error(
                "encoding",
                None,
                format!(
                    "the file is not UTF-8 text (invalid byte at offset {})",
                    e.valid_up_to()
                ),
            )],
        })
    })
}
