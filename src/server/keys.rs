//! The server's root keys at run time: the key that signs, the keys that verify, the PEM that
//! `/public_key` serves. With a key set (`keys.toml`) they follow the manifest — re-read on
//! every sync tick, changed through the operator endpoints — and an invalid manifest is refused
//! while the last good keys stay in use. From the policy repository (`--key-dir`) they arrive
//! with each applied revision instead, and the operator endpoints point at git.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use crate::keyset::{KeySet, KeySetError, KeyState, Transition};
use crate::token::{KeyPair, RootKey, VerifyingKeys, keys};
pub use crate::wire::{KeyInfo, KeySetFailure};

/// Where a server's root keys come from.
pub enum RootKeySource {
    /// One key file, no ids: tokens are minted without `root_key_id`, as before rotation.
    Single(Box<KeyPair>),
    /// A key set's manifest.
    Set(PathBuf),
    /// `keys.toml` at each applied revision of the policy repository, with the private keys in
    /// this directory.
    Repository { key_dir: PathBuf },
}

/// One loaded generation of keys; requests keep the one they started with.
pub struct ServerKeys {
    pub signing: RootKey,
    pub verifier: VerifyingKeys,
    /// SPKI PEM of the signing key: what `/public_key` serves.
    pub active_pem: String,
    /// The set as loaded (`None` for a single key file).
    pub set: Option<KeySet>,
    manifest_text: Option<String>,
}

impl ServerKeys {
    fn single(pair: KeyPair) -> Result<ServerKeys, String> {
        let public = pair.public();
        Ok(ServerKeys {
            active_pem: keys::public_key_pem(&public).map_err(|e| e.to_string())?,
            signing: RootKey { id: None, pair },
            verifier: VerifyingKeys::Single(public),
            set: None,
            manifest_text: None,
        })
    }

    /// A repository key set as a revision brings it.
    pub(super) fn from_repository(set: KeySet) -> Result<ServerKeys, KeySetError> {
        let text = set.public_manifest();
        ServerKeys::from_set(set, text)
    }

    fn from_set(set: KeySet, text: String) -> Result<ServerKeys, KeySetError> {
        let signing = set.signing_key()?;
        let active_pem = keys::public_key_pem(&signing.pair.public()).map_err(|e| {
            KeySetError::Refused(format!("the active key cannot be served as PEM: {e}"))
        })?;
        Ok(ServerKeys {
            signing,
            verifier: VerifyingKeys::Ring(set.ring()),
            active_pem,
            set: Some(set),
            manifest_text: Some(text),
        })
    }

    /// The set's keys as the API shows them.
    pub fn infos(&self) -> Vec<KeyInfo> {
        match &self.set {
            Some(set) => set.entries().iter().map(KeyInfo::from).collect(),
            None => vec![KeyInfo {
                id: None,
                state: KeyState::Active,
                public_key: keys::key_string(&self.signing.pair.public()),
                created_at: None,
                activated_at: None,
                retiring_since: None,
                verify_until: None,
                retired_at: None,
            }],
        }
    }
}

/// The keys in use, and the manifest they follow.
pub struct KeyHolder {
    current: RwLock<Arc<ServerKeys>>,
    manifest: Option<PathBuf>,
    /// Where keys come from when they come with policy revisions (`install`), not from a file
    /// or the API: the git path an operator changes them at.
    repository: Option<String>,
    last_error: Mutex<Option<KeySetFailure>>,
    /// Serialises transitions made through the API.
    changing: Mutex<()>,
}

impl KeyHolder {
    /// `initial`: the key set of the first applied revision, and `policy` where it was read
    /// (a repository source needs both).
    pub fn new(
        source: RootKeySource,
        initial: Option<&KeySet>,
        policy: &super::PolicySource,
    ) -> Result<KeyHolder, String> {
        let repository = match (&source, policy) {
            (RootKeySource::Repository { .. }, super::PolicySource::Git { repo, branch }) => {
                Some(format!(
                    "{} on branch {branch} of the policy repository {}",
                    crate::keyset::MANIFEST,
                    repo.display()
                ))
            }
            _ => None,
        };
        let (keys, manifest) = match source {
            RootKeySource::Repository { key_dir } => {
                let set = initial.cloned().ok_or_else(|| {
                    format!(
                        "the policy revision carries no keys.toml for the keys in {}",
                        key_dir.display()
                    )
                })?;
                (
                    ServerKeys::from_repository(set).map_err(|e| e.to_string())?,
                    None,
                )
            }
            RootKeySource::Single(pair) => (ServerKeys::single(*pair)?, None),
            RootKeySource::Set(manifest) => {
                let text = std::fs::read_to_string(&manifest)
                    .map_err(|e| format!("{}: {e}", manifest.display()))?;
                let set = KeySet::load(&manifest).map_err(|e| e.to_string())?;
                (
                    ServerKeys::from_set(set, text).map_err(|e| e.to_string())?,
                    Some(manifest),
                )
            }
        };
        Ok(KeyHolder {
            current: RwLock::new(Arc::new(keys)),
            manifest,
            repository,
            last_error: Mutex::new(None),
            changing: Mutex::new(()),
        })
    }

    pub fn current(&self) -> Arc<ServerKeys> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn last_error(&self) -> Option<KeySetFailure> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Takes a changed manifest (edited by `keys` on the workspace, say). Returns whether the
    /// keys changed; an invalid manifest keeps the keys in use and is reported.
    pub fn reload(&self, now: i64) -> Result<bool, KeySetFailure> {
        let Some(manifest) = &self.manifest else {
            return Ok(false);
        };
        let fail = |message: String| {
            let failure = KeySetFailure {
                at: now,
                message: format!("{message}; keeping the keys in use"),
            };
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(failure.clone());
            Err(failure)
        };
        let text = match std::fs::read_to_string(manifest) {
            Ok(text) => text,
            Err(e) => return fail(format!("{}: {e}", manifest.display())),
        };
        if self.current().manifest_text.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        match KeySet::load(manifest).and_then(|set| ServerKeys::from_set(set, text)) {
            Ok(keys) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(true)
            }
            Err(e) => fail(e.to_string()),
        }
    }

    /// Starts using the keys an applied revision brought.
    pub(super) fn install(&self, keys: ServerKeys) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
    }

    /// Applies a transition to the manifest on disk (read fresh, so edits made meanwhile by
    /// another process are kept), saves it, and starts using the result.
    pub fn change(
        &self,
        now: i64,
        apply: impl FnOnce(&mut KeySet) -> Result<Transition, KeySetError>,
    ) -> Result<Transition, KeySetError> {
        if let Some(location) = &self.repository {
            return Err(KeySetError::InRepository {
                location: location.clone(),
            });
        }
        let manifest = self.manifest.as_ref().ok_or(KeySetError::Unmanaged)?;
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let mut set = KeySet::load(manifest)?;
        let transition = apply(&mut set)?;
        set.save()?;
        self.reload(now)
            .map_err(|f| KeySetError::Refused(f.message))?;
        Ok(transition)
    }
}
