//! Reading the policy from its source: a file, a repository read directly, or — for a server
//! with a state directory — a mirror of the remote branch that is fetched on every sync and
//! remembers the last good commit, so a restart works with the remote gone.

use std::path::{Path, PathBuf};

use super::state::{ClientIndex, PolicySnapshot, PolicySource, ReloadError};
use crate::gitops::{self, Mirror};
use crate::policy::{self, Finding, RevocationList, revocations};
use crate::token::clock::unix_now;

const POLICY_FILE: &str = "clients.toml";

pub(super) struct PolicyReader {
    source: PolicySource,
    mirror: Option<Mirror>,
    last_good: Option<PathBuf>,
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
    /// Git sources get a mirror under `state_dir` when one is given.
    pub fn new(source: PolicySource, state_dir: Option<&Path>) -> Result<PolicyReader, String> {
        let (mirror, last_good) = match (&source, state_dir) {
            (PolicySource::Git { repo, branch }, Some(dir)) => {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let url = repo.display().to_string();
                let mirror = Mirror::open(&dir.join("mirror.git"), &url, branch)
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
        let text = read(POLICY_FILE).map_err(|_| error.clone())?;
        let revocations = optional(read(revocations::FILE)).map_err(|_| error.clone())?;
        let snapshot = validate(&text, &revocations, remembered).map_err(|_| error.clone())?;
        Ok((snapshot, Some(error)))
    }

    /// Reads the policy unless its revision is `current`. `Ok(None)` means unchanged.
    pub fn load(&self, current: Option<&str>) -> Result<Option<PolicySnapshot>, ReloadError> {
        let (text, revocations, revision) = match (&self.source, &self.mirror) {
            (PolicySource::File(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    failure(
                        None,
                        format!("cannot read {}: {e}", path.display()),
                        Vec::new(),
                    )
                })?;
                let beside = path.with_file_name(revocations::FILE);
                let revocations = match std::fs::read_to_string(&beside) {
                    Ok(text) => text,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(e) => {
                        return Err(failure(
                            None,
                            format!("cannot read {}: {e}", beside.display()),
                            Vec::new(),
                        ));
                    }
                };
                let revision = content_hash(&format!("{text}\0{revocations}"));
                (text, revocations, revision)
            }
            (PolicySource::Git { .. }, Some(mirror)) => {
                let tip = match mirror.fetch() {
                    Ok(tip) => tip,
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
                    .map_err(|e| failure(Some(tip.clone()), e.to_string(), Vec::new()))?;
                let revocations = optional(mirror.read(&tip, Path::new(revocations::FILE)))
                    .map_err(|e| failure(Some(tip.clone()), e, Vec::new()))?;
                (text, revocations, tip)
            }
            (PolicySource::Git { repo, branch }, None) => {
                let (text, revision) =
                    gitops::read_branch_file(repo, branch, Path::new(POLICY_FILE))
                        .map_err(|e| failure(None, e.to_string(), Vec::new()))?;
                let revocations = optional(gitops::read_at_revision(
                    repo,
                    &revision,
                    Path::new(revocations::FILE),
                ))
                .map_err(|e| failure(Some(revision.clone()), e, Vec::new()))?;
                (text, revocations, revision)
            }
        };
        if Some(revision.as_str()) == current {
            return Ok(None);
        }
        validate(&text, &revocations, revision).map(Some)
    }
}

/// A file that may be absent at a revision: absent reads as empty.
fn optional(read: Result<String, gitops::GitError>) -> Result<String, String> {
    match read {
        Ok(text) => Ok(text),
        Err(gitops::GitError::NoSuchFile { .. }) => Ok(String::new()),
        Err(e) => Err(e.to_string()),
    }
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
    Ok(PolicySnapshot {
        index: ClientIndex::build(&loaded.policy),
        policy: loaded.policy,
        revoked,
        source: String::new(),
        revision,
        loaded_at: now,
    })
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
            let err = PolicyReader::new(source, None).err().expect("refused");
            assert!(err.contains("--state-dir") && err.contains(url), "{err}");
        }
        for local in ["/srv/policy.git", "file:///srv/policy.git", "policy"] {
            assert!(!is_remote(Path::new(local)), "{local}");
        }
    }
}
