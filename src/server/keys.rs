//! The server's root keys at run time: the key that signs, the keys that verify, the PEM that
//! `/public_key` serves. With a key set (`keys.toml`) they follow the manifest — re-read on
//! every sync tick, changed through the operator endpoints — and an invalid manifest is refused
//! while the last good keys stay in use.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use super::audit::AuditEvent;
use crate::keyset::{KeyEntry, KeySet, KeySetError, KeyState, LiveToken, Transition};
use crate::token::{KeyPair, KeyRing, PublicKey, RootKey, TokenError, VerifyingRoots, keys};

/// Where a server's root keys come from.
pub enum RootKeySource {
    /// One key file, no ids: tokens are minted without `root_key_id`, as before rotation.
    Single(Box<KeyPair>),
    /// A key set's manifest.
    Set(PathBuf),
}

/// The keys tokens verify with.
pub enum Verifier {
    Single(PublicKey),
    Ring(KeyRing),
}

impl VerifyingRoots for Verifier {
    fn by_id(&self, id: u32) -> Result<PublicKey, TokenError> {
        match self {
            Verifier::Single(key) => key.by_id(id),
            Verifier::Ring(ring) => ring.by_id(id),
        }
    }

    fn candidates(&self) -> Vec<PublicKey> {
        match self {
            Verifier::Single(key) => key.candidates(),
            Verifier::Ring(ring) => ring.candidates(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Verifier::Single(key) => key.describe(),
            Verifier::Ring(ring) => ring.describe(),
        }
    }

    fn retired_by_force(&self, id: u32) -> bool {
        match self {
            Verifier::Single(_) => false,
            Verifier::Ring(ring) => ring.retired_by_force(id),
        }
    }

    fn id_of(&self, key: &PublicKey) -> Option<u32> {
        match self {
            Verifier::Single(_) => None,
            Verifier::Ring(ring) => ring.id_of(key),
        }
    }
}

/// One loaded generation of keys; requests keep the one they started with.
pub struct ServerKeys {
    pub signing: RootKey,
    pub verifier: Verifier,
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
            verifier: Verifier::Single(public),
            set: None,
            manifest_text: None,
        })
    }

    fn from_set(set: KeySet, text: String) -> Result<ServerKeys, KeySetError> {
        let signing = set.signing_key()?;
        let active_pem = keys::public_key_pem(&signing.pair.public()).map_err(|e| {
            KeySetError::Refused(format!("the active key cannot be served as PEM: {e}"))
        })?;
        Ok(ServerKeys {
            signing,
            verifier: Verifier::Ring(set.ring()),
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

/// A key as `/keys`, `/public_keys` and `/status` show it (never its private key's file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct KeyInfo {
    /// `None` for a single key file (tokens carry no key id).
    pub id: Option<u32>,
    pub state: KeyState,
    pub public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_since: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
}

impl From<&KeyEntry> for KeyInfo {
    fn from(e: &KeyEntry) -> KeyInfo {
        KeyInfo {
            id: Some(e.id),
            state: e.state,
            public_key: e.public_key.clone(),
            created_at: Some(e.created_at),
            activated_at: e.activated_at,
            retiring_since: e.retiring_since,
            verify_until: e.verify_until,
            retired_at: e.retired_at,
        }
    }
}

/// Why the key set on disk was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct KeySetFailure {
    pub at: i64,
    pub message: String,
}

/// The keys in use, and the manifest they follow.
pub struct KeyHolder {
    current: RwLock<Arc<ServerKeys>>,
    manifest: Option<PathBuf>,
    last_error: Mutex<Option<KeySetFailure>>,
    /// Serialises transitions made through the API.
    changing: Mutex<()>,
}

impl KeyHolder {
    pub fn new(source: RootKeySource) -> Result<KeyHolder, String> {
        let (keys, manifest) = match source {
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

    /// Applies a transition to the manifest on disk (read fresh, so edits made meanwhile by
    /// another process are kept), saves it, and starts using the result.
    pub fn change(
        &self,
        now: i64,
        apply: impl FnOnce(&mut KeySet) -> Result<Transition, KeySetError>,
    ) -> Result<Transition, KeySetError> {
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

/// Most live tokens a key-change report lists (the ones expiring last: the decision needs only
/// whether there is one and the latest expiry, which these keep). ~100 bytes each.
pub const MAX_LIVE_LISTED: usize = 10_000;

/// Identity tokens seen issued in `[from, to]` that are still live at `now`: the tokens a key
/// that signed during that window would cut off. Reads `events` once, in any order, keeping at
/// most `MAX_LIVE_LISTED`, latest expiry first.
fn live_issued(
    events: impl IntoIterator<Item = AuditEvent>,
    from: i64,
    to: i64,
    now: i64,
) -> Vec<LiveToken> {
    // A min-heap on expiry: the earliest-expiring token is dropped when it is full.
    let mut kept: std::collections::BinaryHeap<std::cmp::Reverse<(i64, i64, String)>> =
        std::collections::BinaryHeap::new();
    for event in events {
        if event.result != "allow" || event.time < from || event.time > to {
            continue;
        }
        let Some(expires_at) = event.expires_at.filter(|at| *at > now) else {
            continue;
        };
        let identity = format!(
            "{} via {}",
            event.caller.as_deref().unwrap_or("(anonymous)"),
            event.endpoint
        );
        kept.push(std::cmp::Reverse((expires_at, event.time, identity)));
        if kept.len() > MAX_LIVE_LISTED {
            kept.pop();
        }
    }
    kept.into_sorted_vec()
        .into_iter()
        .map(
            |std::cmp::Reverse((expires_at, issued_at, identity))| LiveToken {
                identity,
                issued_at,
                expires_at,
            },
        )
        .collect()
}

/// The identity tokens key `id` signed that are still live at `now`, from the audit trail: those
/// issued while it was the active key (none for a key not in the set). `events` is streamed.
pub fn signed_by(
    set: &KeySet,
    id: u32,
    events: impl IntoIterator<Item = AuditEvent>,
    now: i64,
) -> Vec<LiveToken> {
    let Some(entry) = set.entries().iter().find(|e| e.id == id) else {
        return Vec::new();
    };
    let (from, to) = signing_window(entry, now);
    live_issued(events, from, to, now)
}

/// The window during which a key signed: from its activation to when it stopped (or now).
fn signing_window(entry: &KeyEntry, now: i64) -> (i64, i64) {
    (
        entry.activated_at.unwrap_or(entry.created_at),
        entry.retiring_since.unwrap_or(now),
    )
}
