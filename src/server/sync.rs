//! Reading the policy from its source: a file, a repository read directly, or — for a server
//! with a state directory — a mirror of the remote branch that is fetched on every sync and
//! remembers the last good commit, so a restart works with the remote gone. With a key
//! directory, the revision's `keys.toml` is read and checked with the policy: a revision whose
//! active key this replica has no private key for is refused whole.

use std::path::{Path, PathBuf};

use super::state::{PolicySnapshot, PolicySource, ReloadError};
use crate::gitops::{self, Mirror};
use crate::policy::{self, Finding, RevocationList, revocations};
use crate::token::clock::unix_now;

const POLICY_FILE: &str = "clients.toml";
const KEYS_FILE: &str = crate::keyset::MANIFEST;

pub(super) struct PolicyReader {
    source: PolicySource,
    mirror: Option<Mirror>,
    last_good: Option<PathBuf>,
    /// Largest policy file read, in bytes; a larger one is refused from its size alone.
    limit: u64,
    /// Where this replica's private root keys are, when its keys come from the repository.
    key_dir: Option<PathBuf>,
}

/// The files of one revision, as read.
struct Revision {
    policy: String,
    revocations: String,
    /// `None`: the server does not take its keys from the repository; `Some("")`: no file.
    keys: Option<String>,
    id: String,
}

fn failure(revision: Option<String>, message: String, findings: Vec<Finding>) -> ReloadError {
    ReloadError {
        at: unix_now(),
        revision,
        message,
        findings,
    }
}

impl PolicyReader {
    /// Git sources get a mirror under `state_dir` when one is given. Policy files over `limit`
    /// bytes are refused without being read.
    pub fn new(
        source: PolicySource,
        state_dir: Option<&Path>,
        limit: u64,
        key_dir: Option<PathBuf>,
    ) -> Result<PolicyReader, String> {
        if let (PolicySource::File(path), Some(_)) = (&source, &key_dir) {
            return Err(format!(
                "root keys from the repository (--key-dir) need a git policy source; {} is a file: give the server a local --key-set",
                path.display()
            ));
        }
        let (mirror, last_good) = match (&source, state_dir) {
            (PolicySource::Git { repo, branch }, Some(dir)) => {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let url = repo.display().to_string();
                let mirror = Mirror::open(&dir.join("mirror.git"), &url, branch, limit)
                    .map_err(|e| e.to_string())?;
                (Some(mirror), Some(dir.join("last-good")))
            }
            (PolicySource::Git { repo, .. }, None) if is_remote(repo) => {
                return Err(format!(
                    "the policy repository {} is remote: give a state directory (--state-dir), where the server keeps its mirror and the last good commit",
                    repo.display()
                ));
            }
            _ => (None, None),
        };
        Ok(PolicyReader {
            source,
            mirror,
            last_good,
            limit,
            key_dir,
        })
    }

    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// The last commit applied successfully, as remembered on disk.
    fn remembered(&self) -> Option<String> {
        let file = self.last_good.as_ref()?;
        std::fs::read_to_string(file)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Records an applied revision (mirrored sources only).
    pub fn remember(&self, revision: &str) {
        if let Some(file) = &self.last_good {
            // Replaced atomically: a server killed mid-write restarts from the old revision,
            // never from a truncated one. Losing it only costs a restart without the remote its
            // starting point.
            let _ = crate::fsutil::replace_preserving_mode(file, revision.as_bytes());
        }
    }

    /// The first read at start-up. When the source's current policy is refused (the remote's
    /// tip is invalid, say) but a good commit was applied before, starts from that one and
    /// returns the refusal too, so a restart never turns a bad push into an outage.
    pub fn load_initial(&self) -> Result<(PolicySnapshot, Option<ReloadError>), ReloadError> {
        let error = match self.load(None) {
            Ok(Some(snapshot)) => return Ok((snapshot, None)),
            Ok(None) => unreachable!("a load without a current revision always reads"),
            Err(error) => error,
        };
        let (Some(mirror), Some(remembered)) = (&self.mirror, self.remembered()) else {
            return Err(error);
        };
        let read = |relative: &str| mirror.read(&remembered, Path::new(relative));
        let revision = Revision {
            policy: read(POLICY_FILE).map_err(|_| error.clone())?,
            revocations: optional(read(revocations::FILE)).map_err(|_| error.clone())?,
            keys: self
                .key_dir
                .as_ref()
                .map(|_| optional(read(KEYS_FILE)))
                .transpose()
                .map_err(|_| error.clone())?,
            id: remembered,
        };
        let snapshot = self.validate(revision).map_err(|_| error.clone())?;
        Ok((snapshot, Some(error)))
    }

    /// Reads the policy unless its revision is `current`. `Ok(None)` means unchanged.
    pub fn load(&self, current: Option<&str>) -> Result<Option<PolicySnapshot>, ReloadError> {
        let (text, revocations, keys, revision) = match (&self.source, &self.mirror) {
            (PolicySource::File(path), _) => {
                let text = read_file_within(path, self.limit)
                    .map_err(|message| failure(None, message, Vec::new()))?;
                let beside = path.with_file_name(revocations::FILE);
                let revocations = match read_file_within(&beside, self.limit) {
                    Ok(text) => text,
                    Err(_) if !beside.exists() => String::new(),
                    Err(message) => return Err(failure(None, message, Vec::new())),
                };
                let revision = content_hash(&format!("{text}\0{revocations}"));
                (text, revocations, None, revision)
            }
            (PolicySource::Git { .. }, Some(mirror)) => {
                let tip = match mirror.fetch() {
                    Ok(tip) => tip,
                    // The remote is there and its tip is refused: a bad commit, not an outage.
                    Err(error @ gitops::GitError::TooLarge { .. }) => {
                        return Err(refused_read(error.revision(), error));
                    }
                    Err(error) if current.is_none() => {
                        // Starting without the remote: serve the last good commit we have.
                        self.remembered().ok_or_else(|| {
                            failure(
                                None,
                                format!("{error}; no earlier policy to start from"),
                                Vec::new(),
                            )
                        })?
                    }
                    Err(error) => {
                        return Err(failure(
                            None,
                            format!("{error}; keeping the last good policy"),
                            Vec::new(),
                        ));
                    }
                };
                if Some(tip.as_str()) == current {
                    return Ok(None);
                }
                let text = mirror
                    .read(&tip, Path::new(POLICY_FILE))
                    .map_err(|e| refused_read(tip.clone(), e))?;
                let revocations = optional(mirror.read(&tip, Path::new(revocations::FILE)))
                    .map_err(|e| refused_read(tip.clone(), e))?;
                let keys = self
                    .key_dir
                    .as_ref()
                    .map(|_| optional(mirror.read(&tip, Path::new(KEYS_FILE))))
                    .transpose()
                    .map_err(|e| refused_read(tip.clone(), e))?;
                (text, revocations, keys, tip)
            }
            (PolicySource::Git { repo, branch }, None) => {
                let (text, revision) = gitops::read_branch_file_within(
                    repo,
                    branch,
                    Path::new(POLICY_FILE),
                    self.limit,
                )
                .map_err(|e| match &e {
                    gitops::GitError::TooLarge { .. } => refused_read(e.revision(), e),
                    _ => failure(None, e.to_string(), Vec::new()),
                })?;
                let revocations = optional(gitops::read_at_revision_within(
                    repo,
                    &revision,
                    Path::new(revocations::FILE),
                    self.limit,
                ))
                .map_err(|e| refused_read(revision.clone(), e))?;
                let keys = self
                    .key_dir
                    .as_ref()
                    .map(|_| {
                        optional(gitops::read_at_revision_within(
                            repo,
                            &revision,
                            Path::new(KEYS_FILE),
                            self.limit,
                        ))
                    })
                    .transpose()
                    .map_err(|e| refused_read(revision.clone(), e))?;
                (text, revocations, keys, revision)
            }
        };
        if Some(revision.as_str()) == current {
            return Ok(None);
        }
        self.validate(Revision {
            policy: text,
            revocations,
            keys,
            id: revision,
        })
        .map(Some)
    }

    /// The policy and revocations validated, and, for a server with a key directory, the key
    /// set: a revision this replica cannot sign under is refused whole.
    fn validate(&self, revision: Revision) -> Result<PolicySnapshot, ReloadError> {
        let snapshot = validate(&revision.policy, &revision.revocations, revision.id)?;
        let (Some(key_dir), Some(keys)) = (&self.key_dir, &revision.keys) else {
            return Ok(snapshot);
        };
        let short = &snapshot.revision[..snapshot.revision.len().min(12)];
        let refuse = |message: String| {
            Err(failure(
                Some(snapshot.revision.clone()),
                format!("{message}; keeping the last good policy"),
                Vec::new(),
            ))
        };
        if keys.trim().is_empty() {
            return refuse(format!(
                "the revision {short} has no {KEYS_FILE}, and this server takes its root keys from the repository (--key-dir)"
            ));
        }
        let set = match crate::keyset::KeySet::from_repository(Path::new(KEYS_FILE), keys, key_dir)
            .and_then(|set| set.signing_key().map(|_| set))
        {
            Ok(set) => set,
            Err(e) => return refuse(format!("{KEYS_FILE} at {short}: {e}")),
        };
        Ok(PolicySnapshot {
            keys: Some(set),
            ..snapshot
        })
    }
}

/// A file that may be absent at a revision: absent reads as empty.
fn optional(read: Result<String, gitops::GitError>) -> Result<String, gitops::GitError> {
    match read {
        Err(gitops::GitError::NoSuchFile { .. }) => Ok(String::new()),
        other => other,
    }
}

/// A policy file at `revision` that could not be taken (too large, missing, not text): the
/// commit is refused like an invalid one, and the last good policy stays.
fn refused_read(revision: String, error: gitops::GitError) -> ReloadError {
    failure(
        Some(revision),
        format!("{error}; keeping the last good policy"),
        Vec::new(),
    )
}

/// A policy file from disk, refused from its size before it is read: more than `limit` bytes
/// is an error naming the file, its size and the limit.
fn read_file_within(path: &Path, limit: u64) -> Result<String, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(cannot)?;
    let size = file.metadata().map_err(cannot)?.len();
    let too_large = |size: u64| {
        format!(
            "{} is {size} bytes, over the {limit}-byte limit (--max-policy-bytes); it was not read",
            path.display()
        )
    };
    if size > limit {
        return Err(too_large(size));
    }
    // The file may grow between the size check and the read: read one byte past the limit at
    // most, and refuse if it is there.
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

fn validate(
    text: &str,
    revocations: &str,
    revision: String,
) -> Result<PolicySnapshot, ReloadError> {
    let now = unix_now();
    let short = &revision[..revision.len().min(12)];
    let (revoked, findings) = RevocationList::load(revocations);
    let errors: Vec<Finding> = findings.into_iter().filter(Finding::is_error).collect();
    if !errors.is_empty() {
        return Err(failure(
            Some(revision.clone()),
            format!(
                "{} at {short} has {} error(s); keeping the last good policy",
                revocations::FILE,
                errors.len()
            ),
            errors,
        ));
    }
    let loaded = policy::load(text, now).map_err(|finding| {
        failure(
            Some(revision.clone()),
            format!("clients.toml at {short} does not parse; keeping the last good policy"),
            vec![finding],
        )
    })?;
    let errors: Vec<Finding> = loaded.errors().cloned().collect();
    if !errors.is_empty() {
        return Err(failure(
            Some(revision.clone()),
            format!(
                "clients.toml at {short} has {} error(s); keeping the last good policy",
                errors.len()
            ),
            errors,
        ));
    }
    Ok(PolicySnapshot::new(loaded.policy, revoked, revision, now))
}

/// A short, stable name for a file's content (FNV-1a, not a security measure).
fn content_hash(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("sha-{hash:016x}")
}

/// A repository reached over the network (`https://`, `ssh://`, `git://`, `git@host:path`),
/// which can only be read through a mirror.
fn is_remote(repo: &Path) -> bool {
    let text = repo.display().to_string();
    if let Some((scheme, _)) = text.split_once("://") {
        return scheme != "file";
    }
    match text.split_once(':') {
        Some((host, _)) => host.len() > 1 && !host.contains('/') && !repo.exists(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_repository_needs_a_state_directory() {
        for url in [
            "https://git.example.com/policy.git",
            "ssh://git@example.com/policy.git",
            "git://example.com/policy.git",
            "git@example.com:ops/policy.git",
        ] {
            let source = PolicySource::Git {
                repo: PathBuf::from(url),
                branch: "main".into(),
            };
            let err = PolicyReader::new(source, None, gitops::DEFAULT_MAX_POLICY_BYTES, None)
                .err()
                .expect("refused");
            assert!(err.contains("--state-dir") && err.contains(url), "{err}");
        }
        for local in ["/srv/policy.git", "file:///srv/policy.git", "policy"] {
            assert!(!is_remote(Path::new(local)), "{local}");
        }
    }
}
