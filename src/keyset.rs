//! The authorization server's root key set: keys with ids and states, kept in a manifest
//! (`keys.toml`) beside their private keys (mode 0600).
//!
//! A key moves one way: **next** (published so verifiers can fetch it ahead of use, not
//! signing) → **active** (signs every token, exactly one) → **retiring** (verifies only, until
//! the tokens it signed have expired) → **retired** (neither; its private key is deleted).
//! Transitions that would break live tokens are refused and say which tokens.
//!
//! A fleet keeps the set's public part in the policy repository (`keys.toml` beside
//! `clients.toml`, no private key paths) and each replica's private keys in a key directory,
//! where a key is found by its public key, never by its file name alone.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fsutil;
use crate::token::keys::{self, KeyAlgorithm};
use crate::token::{KeyPair, KeyRing, PublicKey, RootKey, Unusable, key_ids};
use crate::wire::KeyChangeRequest;

/// The manifest's file name in a workspace's server directory.
pub const MANIFEST: &str = "keys.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Active,
    Retiring,
    Retired,
}

impl KeyState {
    pub const ALL: [KeyState; 4] = [
        KeyState::Next,
        KeyState::Active,
        KeyState::Retiring,
        KeyState::Retired,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }

    fn parse(text: &str) -> Option<KeyState> {
        KeyState::ALL.into_iter().find(|s| s.name() == text)
    }
}

/// One key of the set, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyEntry {
    pub id: u32,
    pub state: KeyState,
    /// `ed25519/<hex>` or `secp256r1/<hex>`.
    pub public_key: String,
    /// The private key's file, relative to the manifest; gone once retired.
    pub private_key: Option<String>,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    /// When it stopped signing.
    pub retiring_since: Option<i64>,
    /// Until when it keeps verifying: the last token it signed may live this long.
    pub verify_until: Option<i64>,
    pub retired_at: Option<i64>,
    /// Retired with `--force` (a compromised key): tokens refreshed from tokens it signed are
    /// refused too, where a key retired after its tokens expired leaves them alone.
    pub forced: bool,
}

/// The longest lifetime the policy allows a token, and what allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifetime {
    pub seconds: u64,
    pub what: String,
}

impl Lifetime {
    /// The bound a policy puts on token lifetimes.
    pub fn of_policy(policy: &crate::policy::Policy) -> Lifetime {
        let (seconds, what) = policy.longest_token_lifetime();
        Lifetime {
            seconds,
            what: format!(
                "the longest lifetime the policy allows is {}, for {what}",
                crate::policy::duration::format(seconds)
            ),
        }
    }
}

/// A token the server issued that has not expired yet (from the audit feed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveToken {
    pub identity: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("no key {id} in the key set (keys: {known})")]
    NoSuchKey { id: u32, known: String },
    #[error("{0}")]
    Refused(String),
    #[error(
        "activating needs the policy, to know how long the tokens the current key signed may live: give --policy clients.toml"
    )]
    LifetimeUnknown,
    #[error(
        "the server's root key was given as a single file (--root-key); key rotation needs a key set: start it with --key-set FILE (see `hessra-console keys init`)"
    )]
    Unmanaged,
    #[error(
        "this server takes its root keys from {location}, so every replica applies the same set: change keys.toml in a clone (`hessra-console keys add|activate|retire --workspace DIR`, or `--repo PATH --key-dir DIR`), then `policy commit` and `policy push`"
    )]
    InRepository {
        /// Where the key set lives: the file, branch and repository.
        location: String,
    },
    #[error(
        "no private key for key {id} ({public_key}) in the key directory {key_dir}: copy that key's file there (mode 0600)"
    )]
    MissingPrivateKey {
        id: u32,
        public_key: String,
        key_dir: String,
    },
}

impl KeySetError {
    fn invalid(path: &Path, message: impl Into<String>) -> KeySetError {
        KeySetError::Invalid {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeySetError + '_ {
    move |source| KeySetError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The key set and where its manifest lives.
#[derive(Debug, Clone)]
pub struct KeySet {
    manifest: PathBuf,
    entries: Vec<KeyEntry>,
    /// Private keys of keys retired since loading: deleted once the manifest no longer names
    /// them, so a failed save never leaves a manifest pointing at a deleted key.
    doomed: Vec<PathBuf>,
    /// For the repository's public manifest: where the private keys are, found by public key.
    key_dir: Option<PathBuf>,
}

/// A transition of the key set, as `keys add|activate|retire`, the console's Server screen and
/// the server's operator endpoints ask for it. `KeySet::apply` is the one implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChange {
    /// Generate a key in state next.
    Add(KeyAlgorithm),
    /// Make the key the signing key; the active key becomes retiring.
    Activate(u32),
    /// Retire the key; `force`: even though tokens it signed are live (a compromised key).
    Retire { id: u32, force: bool },
}

impl KeyChange {
    /// The operator endpoint that makes this change on a running server.
    pub fn endpoint(self) -> &'static str {
        match self {
            KeyChange::Add(_) => "/keys/add",
            KeyChange::Activate(_) => "/keys/activate",
            KeyChange::Retire { .. } => "/keys/retire",
        }
    }

    /// What is being done, while it runs.
    pub fn describe(self) -> &'static str {
        match self {
            KeyChange::Add(_) => "adding a root key",
            KeyChange::Activate(_) => "activating a root key",
            KeyChange::Retire { .. } => "retiring a root key",
        }
    }

    /// The body `endpoint` takes.
    pub fn request(self) -> KeyChangeRequest {
        match self {
            KeyChange::Add(algorithm) => KeyChangeRequest {
                algorithm: Some(algorithm.name().to_string()),
                ..KeyChangeRequest::default()
            },
            KeyChange::Activate(id) => KeyChangeRequest {
                id: Some(id),
                ..KeyChangeRequest::default()
            },
            KeyChange::Retire { id, force } => KeyChangeRequest {
                id: Some(id),
                force,
                ..KeyChangeRequest::default()
            },
        }
    }

    /// The change an endpoint's body asks for (the server's side of `request`).
    pub fn from_request(endpoint: &str, request: &KeyChangeRequest) -> Result<KeyChange, String> {
        let id = || {
            request
                .id
                .ok_or_else(|| "give the key's \"id\"".to_string())
        };
        match endpoint {
            "/keys/add" => match request.algorithm.as_deref().unwrap_or("ed25519") {
                "ed25519" => Ok(KeyChange::Add(KeyAlgorithm::Ed25519)),
                "secp256r1" => Ok(KeyChange::Add(KeyAlgorithm::Secp256r1)),
                other => Err(format!("unknown algorithm {other:?}: ed25519 or secp256r1")),
            },
            "/keys/activate" => Ok(KeyChange::Activate(id()?)),
            "/keys/retire" => Ok(KeyChange::Retire {
                id: id()?,
                force: request.force,
            }),
            other => Err(format!("{other} changes no key")),
        }
    }
}

/// What a transition did, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub summary: String,
    /// Live tokens a forced retirement cut off.
    pub broken: Vec<LiveToken>,
}

impl KeySet {
    /// A new manifest holding `private_key` (a file beside it) as the active key 1.
    pub fn create(manifest: &Path, private_key: &Path, now: i64) -> Result<KeySet, KeySetError> {
        let pair = keys::read_private_key_file(private_key)
            .map_err(|e| KeySetError::invalid(private_key, e.to_string()))?;
        let mut set = KeySet {
            manifest: manifest.to_path_buf(),
            entries: vec![KeyEntry {
                id: 1,
                state: KeyState::Active,
                public_key: keys::key_string(&pair.public()),
                private_key: Some(relative_to(manifest, private_key)),
                created_at: now,
                activated_at: Some(now),
                retiring_since: None,
                verify_until: None,
                retired_at: None,
                forced: false,
            }],
            doomed: Vec::new(),
            key_dir: None,
        };
        set.save()?;
        Ok(set)
    }

    /// Reads and checks a manifest: one active key, unique ids, private keys present (and
    /// readable by nobody else) for every key that is not retired, each matching its public key.
    pub fn load(manifest: &Path) -> Result<KeySet, KeySetError> {
        let text = std::fs::read_to_string(manifest).map_err(io(manifest))?;
        let set = KeySet::parse(manifest, &text)?;
        for entry in &set.entries {
            if entry.state != KeyState::Retired {
                set.private_key(entry)?;
            }
        }
        Ok(set)
    }

    fn parse(manifest: &Path, text: &str) -> Result<KeySet, KeySetError> {
        let invalid = |message: String| KeySetError::invalid(manifest, message);
        let doc: toml_edit::Document<String> = text
            .parse()
            .map_err(|e: toml_edit::TomlError| invalid(e.to_string()))?;
        let mut entries = Vec::new();
        if let Some(item) = doc.get("keys") {
            let tables = item
                .as_array_of_tables()
                .ok_or_else(|| invalid("`keys` must be an array of [[keys]] tables".into()))?;
            for (index, table) in tables.iter().enumerate() {
                entries.push(read_entry(table).map_err(|message| {
                    let line = table
                        .span()
                        .map(|span| text[..span.start].lines().count() + 1);
                    let at = line.map_or(format!("key #{}", index + 1), |l| format!("line {l}"));
                    invalid(format!("{at}: {message}"))
                })?);
            }
        }
        let set = KeySet {
            manifest: manifest.to_path_buf(),
            entries,
            doomed: Vec::new(),
            key_dir: None,
        };
        set.check().map_err(invalid)?;
        Ok(set)
    }

    /// The repository's public manifest (`text`, read from `manifest` or from a commit) with
    /// the private keys in `key_dir`. Nothing in `key_dir` is read here: a replica asks for the
    /// key it signs with (`signing_key`), an operator's activation for the key it activates.
    pub fn from_repository(
        manifest: &Path,
        text: &str,
        key_dir: &Path,
    ) -> Result<KeySet, KeySetError> {
        let mut set = KeySet::parse(manifest, text)?;
        if let Some(entry) = set.entries.iter().find(|e| e.private_key.is_some()) {
            return Err(KeySetError::invalid(
                manifest,
                format!(
                    "key {} names a private key file; the repository's keys.toml holds public keys only (private keys stay in each replica's key directory)",
                    entry.id
                ),
            ));
        }
        set.key_dir = Some(key_dir.to_path_buf());
        Ok(set)
    }

    /// A manifest's keys as written, private keys untouched: for reports, which read a
    /// server's manifest and a repository's public `keys.toml` alike.
    pub fn read_public(manifest: &Path) -> Result<KeySet, KeySetError> {
        let text = std::fs::read_to_string(manifest).map_err(io(manifest))?;
        KeySet::parse(manifest, &text)
    }

    /// `from_repository` on the manifest file in a working clone.
    pub fn open_repository(manifest: &Path, key_dir: &Path) -> Result<KeySet, KeySetError> {
        let text = std::fs::read_to_string(manifest).map_err(io(manifest))?;
        KeySet::from_repository(manifest, &text, key_dir)
    }

    /// The key directory of a repository key set.
    pub fn key_dir(&self) -> Option<&Path> {
        self.key_dir.as_deref()
    }

    /// For a repository set: the keys that sign or may be made to sign (next and active) with
    /// no usable private key in the key directory, by id. A replica reports them, so that an
    /// activation it would refuse is not committed.
    pub fn missing_private_keys(&self) -> Vec<u32> {
        let Some(key_dir) = &self.key_dir else {
            return Vec::new();
        };
        self.entries
            .iter()
            .filter(|e| matches!(e.state, KeyState::Next | KeyState::Active))
            .filter(|e| self.find_in_key_dir(key_dir, e).is_err())
            .map(|e| e.id)
            .collect()
    }

    /// Moves this set into a policy repository: its public part written as `manifest` (the
    /// clone's `keys.toml`, which must not exist yet) and the private keys of the keys still in
    /// use copied into `key_dir` (created 0700; `root-ID.key`, 0600). A file already there is
    /// kept when it holds that very key, and refused otherwise. Returns the files written.
    pub fn publish_to(&self, manifest: &Path, key_dir: &Path) -> Result<Vec<PathBuf>, KeySetError> {
        if manifest.exists() {
            return Err(KeySetError::Refused(format!(
                "{} exists: the key set is in the repository already; change it with `keys add|activate|retire`",
                manifest.display()
            )));
        }
        fsutil::create_private_dir(key_dir).map_err(io(key_dir))?;
        let mut written = Vec::new();
        for entry in self.entries.iter().filter(|e| e.state != KeyState::Retired) {
            let pair = self.private_key(entry)?;
            let path = key_dir.join(format!("root-{}.key", entry.id));
            if path.exists() {
                let same = keys::read_private_key_file(&path)
                    .is_ok_and(|there| keys::key_string(&there.public()) == entry.public_key);
                if same {
                    continue;
                }
                return Err(KeySetError::Refused(format!(
                    "{} exists and holds another key; move it away first",
                    path.display()
                )));
            }
            keys::write_private_key_file(&path, &pair)
                .map_err(|e| KeySetError::invalid(&path, e.to_string()))?;
            written.push(path);
        }
        std::fs::write(manifest, self.public_manifest()).map_err(io(manifest))?;
        Ok(written)
    }

    /// The set's public part, as the repository keeps it.
    pub fn public_manifest(&self) -> String {
        self.render_with(false)
    }

    fn check(&self) -> Result<(), String> {
        let mut ids: Vec<u32> = self.entries.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("key id {} appears twice", pair[0]));
        }
        let active: Vec<u32> = self
            .entries
            .iter()
            .filter(|e| e.state == KeyState::Active)
            .map(|e| e.id)
            .collect();
        match active.as_slice() {
            [_] => Ok(()),
            [] => Err("no active key: one key must sign (hessra-console keys activate ID)".into()),
            many => Err(format!(
                "keys {} are all active; exactly one key signs",
                key_ids(many)
            )),
        }
    }

    pub fn manifest(&self) -> &Path {
        &self.manifest
    }

    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    pub fn active(&self) -> &KeyEntry {
        self.entries
            .iter()
            .find(|e| e.state == KeyState::Active)
            .expect("a loaded key set has an active key")
    }

    /// The active key, to sign with.
    pub fn signing_key(&self) -> Result<RootKey, KeySetError> {
        let active = self.active();
        Ok(RootKey {
            id: Some(active.id),
            pair: self.private_key(active)?,
        })
    }

    /// The private key of key `id` (from its file, or found in the key directory).
    pub fn private_key_of(&self, id: u32) -> Result<KeyPair, KeySetError> {
        self.private_key(self.entry(id)?)
    }

    /// The keys tokens verify with (`ring_of`).
    pub fn ring(&self) -> KeyRing {
        ring_of(self.entries.iter().map(|e| RingKey {
            id: e.id,
            state: e.state,
            forced: e.forced,
            public: keys::parse_key_string(&e.public_key).ok(),
        }))
    }

    /// The public key of a key in the set.
    pub fn public_key(&self, id: u32) -> Option<PublicKey> {
        self.entry(id)
            .ok()
            .and_then(|e| keys::parse_key_string(&e.public_key).ok())
    }

    fn entry(&self, id: u32) -> Result<&KeyEntry, KeySetError> {
        self.entries
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| KeySetError::NoSuchKey {
                id,
                known: key_ids(&self.entries.iter().map(|e| e.id).collect::<Vec<_>>()),
            })
    }

    fn entry_mut(&mut self, id: u32) -> Result<&mut KeyEntry, KeySetError> {
        self.entry(id)?;
        Ok(self.entries.iter_mut().find(|e| e.id == id).expect("found"))
    }

    fn private_path(&self, file: &str) -> PathBuf {
        self.manifest.parent().unwrap_or(Path::new(".")).join(file)
    }

    /// The file in the key directory holding `entry`'s private key: the one whose public key
    /// matches (a file named like it but holding another key is not it). Files that are not
    /// keys are passed over; the matching one must be readable by its owner only.
    fn find_in_key_dir(
        &self,
        key_dir: &Path,
        entry: &KeyEntry,
    ) -> Result<(PathBuf, KeyPair), KeySetError> {
        let missing = || KeySetError::MissingPrivateKey {
            id: entry.id,
            public_key: entry.public_key.clone(),
            key_dir: key_dir.display().to_string(),
        };
        let listing = match std::fs::read_dir(key_dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(io(key_dir)(e)),
        };
        let mut paths: Vec<PathBuf> = listing
            .filter_map(|item| item.ok().map(|item| item.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "key"))
            .collect();
        paths.sort();
        for path in paths {
            let Ok(pair) = keys::read_private_key_file(&path) else {
                continue;
            };
            if keys::key_string(&pair.public()) == entry.public_key {
                check_private(&path)?;
                return Ok((path, pair));
            }
        }
        Err(missing())
    }

    fn private_key(&self, entry: &KeyEntry) -> Result<KeyPair, KeySetError> {
        if let Some(key_dir) = &self.key_dir {
            return self.find_in_key_dir(key_dir, entry).map(|(_, pair)| pair);
        }
        let Some(file) = &entry.private_key else {
            return Err(KeySetError::invalid(
                &self.manifest,
                format!(
                    "key {} is {} but has no private_key file",
                    entry.id,
                    entry.state.name()
                ),
            ));
        };
        let path = self.private_path(file);
        check_private(&path)?;
        let pair = keys::read_private_key_file(&path)
            .map_err(|e| KeySetError::invalid(&path, e.to_string()))?;
        if keys::key_string(&pair.public()) != entry.public_key {
            return Err(KeySetError::invalid(
                &path,
                format!(
                    "this private key does not match key {}'s public key {} in {}",
                    entry.id,
                    entry.public_key,
                    self.manifest.display()
                ),
            ));
        }
        Ok(pair)
    }

    /// Applies `change` in memory (`save` writes it). `lifetime`: the longest a token may live,
    /// which bounds how long an activation keeps the old key verifying (required to activate);
    /// `signed_by(set, id)`: the live tokens key `id` signed, asked only when a transition needs
    /// them (the current active key on activation, the key itself on retirement).
    pub fn apply(
        &mut self,
        change: KeyChange,
        now: i64,
        lifetime: Option<&Lifetime>,
        signed_by: impl FnOnce(&KeySet, u32) -> Vec<LiveToken>,
    ) -> Result<Transition, KeySetError> {
        match change {
            KeyChange::Add(algorithm) => self.add(algorithm, now),
            KeyChange::Activate(id) => {
                let lifetime = lifetime.ok_or(KeySetError::LifetimeUnknown)?;
                let issued = signed_by(self, self.active().id);
                self.activate(id, now, lifetime, &issued)
            }
            KeyChange::Retire { id, force } => {
                let live = signed_by(self, id);
                self.retire(id, now, &live, force)
            }
        }
    }

    /// Generates a key in state next (its private key written 0600 beside the manifest).
    pub fn add(&mut self, algorithm: KeyAlgorithm, now: i64) -> Result<Transition, KeySetError> {
        let id = self.entries.iter().map(|e| e.id).max().unwrap_or(0) + 1;
        let file = format!("root-{id}.key");
        let path = match &self.key_dir {
            Some(key_dir) => {
                fsutil::create_private_dir(key_dir).map_err(io(key_dir))?;
                key_dir.join(&file)
            }
            None => self.private_path(&file),
        };
        if path.exists() {
            return Err(KeySetError::Refused(format!(
                "{} already exists and is not in the key set; move it away first",
                path.display()
            )));
        }
        let pair = keys::generate(algorithm);
        keys::write_private_key_file(&path, &pair)
            .map_err(|e| KeySetError::invalid(&path, e.to_string()))?;
        let public_key = keys::key_string(&pair.public());
        self.entries.push(KeyEntry {
            id,
            state: KeyState::Next,
            public_key: public_key.clone(),
            // The repository's manifest names no private key file.
            private_key: self.key_dir.is_none().then_some(file),
            created_at: now,
            activated_at: None,
            retiring_since: None,
            verify_until: None,
            retired_at: None,
            forced: false,
        });
        Ok(Transition {
            summary: format!(
                "added key {id} ({public_key}) as next: published, not signing; activate it with `keys activate {id}`"
            ),
            broken: Vec::new(),
        })
    }

    /// Makes `id` the signing key. The active key becomes retiring and keeps verifying until
    /// every token it may have signed has expired: `longest` past now, or the latest expiry
    /// among `issued` (tokens seen issued), whichever is later.
    pub fn activate(
        &mut self,
        id: u32,
        now: i64,
        longest: &Lifetime,
        issued: &[LiveToken],
    ) -> Result<Transition, KeySetError> {
        let target = self.entry(id)?.clone();
        match target.state {
            KeyState::Active => {
                return Err(KeySetError::Refused(format!("key {id} is already active")));
            }
            KeyState::Retired => {
                return Err(KeySetError::Refused(format!(
                    "key {id} is retired and its private key is gone; add a new key (`keys add`) and activate that"
                )));
            }
            KeyState::Next | KeyState::Retiring => {}
        }
        // The key must be usable before anything changes.
        self.private_key(&target)?;
        let previous = self.active().id;
        let latest_issued = issued.iter().map(|t| t.expires_at).max().unwrap_or(now);
        let until = (now + longest.seconds as i64).max(latest_issued);
        let old = self.entry_mut(previous)?;
        old.state = KeyState::Retiring;
        old.retiring_since = Some(now);
        old.verify_until = Some(until);
        let new = self.entry_mut(id)?;
        new.state = KeyState::Active;
        new.activated_at = Some(now);
        new.retiring_since = None;
        new.verify_until = None;
        Ok(Transition {
            summary: format!(
                "key {id} now signs; key {previous} is retiring and verifies until {} ({})",
                crate::token::clock::format_unix(until),
                longest.what
            ),
            broken: Vec::new(),
        })
    }

    /// Retires `id`: it neither signs nor verifies, and its private key is deleted. Refused
    /// while tokens it signed may still be live, unless `force` (a compromised key), in which
    /// case the report names what was cut off.
    pub fn retire(
        &mut self,
        id: u32,
        now: i64,
        live: &[LiveToken],
        force: bool,
    ) -> Result<Transition, KeySetError> {
        let entry = self.entry(id)?.clone();
        let broken: Vec<LiveToken> = match entry.state {
            KeyState::Retired => {
                return Err(KeySetError::Refused(format!("key {id} is already retired")));
            }
            KeyState::Active => {
                return Err(KeySetError::Refused(format!(
                    "key {id} is the active key and signs every token; add a key (`keys add`) and activate it first, which makes key {id} retiring"
                )));
            }
            KeyState::Next => Vec::new(),
            KeyState::Retiring => {
                let until = entry.verify_until.unwrap_or(now);
                let breaks: Vec<LiveToken> = live
                    .iter()
                    .filter(|t| t.expires_at > now)
                    .cloned()
                    .collect();
                if (until > now || !breaks.is_empty()) && !force {
                    return Err(KeySetError::Refused(refusal(id, until, now, &breaks)));
                }
                breaks
            }
        };
        if let Some(file) = &entry.private_key {
            self.doomed.push(self.private_path(file));
        }
        if let Some(key_dir) = &self.key_dir
            && let Ok((path, _)) = self.find_in_key_dir(key_dir, &entry)
        {
            self.doomed.push(path);
        }
        let retired = self.entry_mut(id)?;
        retired.state = KeyState::Retired;
        retired.private_key = None;
        retired.retired_at = Some(now);
        retired.forced = force;
        let summary = if broken.is_empty() && entry.state == KeyState::Retiring {
            format!("key {id} retired: it no longer verifies, and its private key is deleted")
        } else if broken.is_empty() {
            format!("key {id} retired before it signed anything; its private key is deleted")
        } else {
            format!(
                "key {id} retired by force: {} live token(s) it signed are no longer accepted",
                broken.len()
            )
        };
        Ok(Transition { summary, broken })
    }

    /// Writes the manifest atomically (0600: it names the private key files), then deletes the
    /// private keys of keys retired since loading.
    /// The repository's public manifest is written like the policy beside it (it is committed).
    pub fn save(&mut self) -> Result<(), KeySetError> {
        let written = match self.key_dir {
            Some(_) => fsutil::replace_preserving_mode(&self.manifest, self.render().as_bytes()),
            None => fsutil::write_private(&self.manifest, self.render().as_bytes()),
        };
        written.map_err(io(&self.manifest))?;
        for path in std::mem::take(&mut self.doomed) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(KeySetError::Io {
                        path: path.display().to_string(),
                        source: std::io::Error::new(
                            e.kind(),
                            format!("the key is retired, but its private key is still here: {e}"),
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn render(&self) -> String {
        self.render_with(self.key_dir.is_none())
    }

    fn render_with(&self, private_paths: bool) -> String {
        let mut out = String::from(
            "# Root keys of the authorization server. Managed by `hessra-console keys`:\n\
             # next (published, not signing) -> active (signs) -> retiring (verifies only)\n",
        );
        out.push_str(if private_paths {
            "# -> retired. Private keys are the files named here, mode 0600.\n"
        } else {
            "# -> retired. Public part only: replicas find private keys in --key-dir.\n"
        });
        for e in &self.entries {
            out.push_str(&format!(
                "\n[[keys]]\nid = {}\nstate = \"{}\"\npublic_key = \"{}\"\n",
                e.id,
                e.state.name(),
                e.public_key
            ));
            if let Some(file) = e.private_key.as_ref().filter(|_| private_paths) {
                out.push_str(&format!(
                    "private_key = {}\n",
                    toml_edit::Value::from(file.as_str())
                ));
            }
            let times = [
                ("created_at", Some(e.created_at)),
                ("activated_at", e.activated_at),
                ("retiring_since", e.retiring_since),
                ("verify_until", e.verify_until),
                ("retired_at", e.retired_at),
            ];
            for (key, value) in times {
                if let Some(value) = value {
                    out.push_str(&format!("{key} = {value}\n"));
                }
            }
            if e.forced {
                out.push_str("forced = true\n");
            }
        }
        out
    }
}

/// A key as a verifier sees it. `public` is needed only for a key that verifies (active or
/// retiring); one without it is left out of the ring.
#[derive(Debug, Clone)]
pub struct RingKey {
    pub id: u32,
    pub state: KeyState,
    /// Retired by force (tokens refreshed from tokens it signed are refused too).
    pub forced: bool,
    pub public: Option<PublicKey>,
}

/// What each state lets a key do, as one ring: active and retiring keys verify (the active one
/// first, then retiring ones, newest first); a next or retired key is known by id and refused
/// with why. The server's key set and the console's view of a server's keys both use it.
pub fn ring_of(keys: impl IntoIterator<Item = RingKey>) -> KeyRing {
    let mut keys: Vec<RingKey> = keys.into_iter().collect();
    keys.sort_by_key(|k| (k.state != KeyState::Active, std::cmp::Reverse(k.id)));
    let mut ring = KeyRing::new();
    for key in &keys {
        if let (KeyState::Active | KeyState::Retiring, Some(public)) = (key.state, &key.public) {
            ring = ring.verifying(key.id, *public);
        }
    }
    for key in &keys {
        ring = match key.state {
            KeyState::Next => ring.unusable(key.id, Unusable::NotYetActive),
            KeyState::Retired if key.forced => ring.unusable(key.id, Unusable::RetiredByForce),
            KeyState::Retired => ring.unusable(key.id, Unusable::Retired),
            KeyState::Active | KeyState::Retiring => ring,
        };
    }
    ring
}

/// Why `edited` may not replace `committed` (the set as last committed) at `now`: it retires —
/// or drops — a key whose tokens may still live (an active key, or a retiring one verifying
/// past `now`) without recording the retirement as forced. A hand edit of the repository's
/// `keys.toml` is held to the rule `keys retire` keeps.
pub fn premature_retirement(committed: &KeySet, edited: &KeySet, now: i64) -> Option<String> {
    committed.entries.iter().find_map(|before| {
        let until = match before.state {
            KeyState::Active => now.saturating_add(1),
            KeyState::Retiring => before.verify_until.unwrap_or(now),
            KeyState::Next | KeyState::Retired => return None,
        };
        let after = edited.entries.iter().find(|e| e.id == before.id);
        let cut_off = match after {
            None => true,
            Some(after) => after.state == KeyState::Retired && !after.forced,
        };
        (cut_off && until > now).then(|| {
            let what = if after.is_none() { "drops" } else { "retires" };
            format!(
                "{} {what} key {}, which may still verify live tokens until {}: wait until then, or record the retirement as forced (`keys retire {} --force`, a compromised key)",
                edited.manifest.display(),
                before.id,
                crate::token::clock::format_unix(until),
                before.id
            )
        })
    })
}

fn refusal(id: u32, until: i64, now: i64, live: &[LiveToken]) -> String {
    let mut message = format!("key {id} may still verify live tokens, so it cannot be retired yet");
    if until > now {
        message.push_str(&format!(
            ": tokens it signed may live until {} ({})",
            crate::token::clock::format_unix(until),
            crate::token::clock::describe_instant(until, now)
        ));
    }
    if !live.is_empty() {
        message.push_str(&format!("; {} issued token(s) are still live:", live.len()));
        for token in live.iter().take(5) {
            message.push_str(&format!(
                "\n  {} (identity token, expires {})",
                token.identity,
                crate::token::clock::format_unix(token.expires_at)
            ));
        }
        if live.len() > 5 {
            message.push_str(&format!("\n  … and {} more", live.len() - 5));
        }
    }
    message.push_str(
        "\nRetire it after that, or now with --force if the key is compromised (those tokens stop working).",
    );
    message
}

fn read_entry(table: &toml_edit::Table) -> Result<KeyEntry, String> {
    for (key, _) in table.iter() {
        if ![
            "id",
            "state",
            "public_key",
            "private_key",
            "created_at",
            "activated_at",
            "retiring_since",
            "verify_until",
            "retired_at",
            "forced",
        ]
        .contains(&key)
        {
            return Err(format!("unknown key `{key}`"));
        }
    }
    let integer = |key: &str| -> Result<Option<i64>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(item) => item
                .as_integer()
                .map(Some)
                .ok_or_else(|| format!("`{key}` must be an integer (Unix seconds)")),
        }
    };
    let string = |key: &str| -> Result<Option<String>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(item) => item
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| format!("`{key}` must be a string")),
        }
    };
    let id = integer("id")?.ok_or("`id` is missing")?;
    let id = u32::try_from(id).map_err(|_| format!("id {id} is not between 0 and 4294967295"))?;
    let state = string("state")?.ok_or(format!("key {id}: `state` is missing"))?;
    let state = KeyState::parse(&state).ok_or(format!(
        "key {id}: state {state:?} is not one of next, active, retiring, retired"
    ))?;
    let public_key = string("public_key")?.ok_or(format!("key {id}: `public_key` is missing"))?;
    keys::parse_key_string(&public_key).map_err(|e| format!("key {id}: public_key: {e}"))?;
    Ok(KeyEntry {
        id,
        state,
        public_key,
        private_key: string("private_key")?,
        created_at: integer("created_at")?.unwrap_or(0),
        activated_at: integer("activated_at")?,
        retiring_since: integer("retiring_since")?,
        verify_until: integer("verify_until")?,
        retired_at: integer("retired_at")?,
        forced: match table.get("forced") {
            None => false,
            Some(item) => item
                .as_bool()
                .ok_or(format!("key {id}: `forced` must be true or false"))?,
        },
    })
}

fn check_private(path: &Path) -> Result<(), KeySetError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(io(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeySetError::invalid(
            path,
            format!(
                "readable by other users (mode {:o}); run: chmod 600 {}",
                mode & 0o777,
                path.display()
            ),
        ));
    }
    Ok(())
}

fn relative_to(manifest: &Path, file: &Path) -> String {
    let dir = manifest.parent().unwrap_or(Path::new(""));
    file.strip_prefix(dir).unwrap_or(file).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::VerifyingRoots;
    use std::os::unix::fs::PermissionsExt;

    const HOUR: Lifetime = Lifetime {
        seconds: 3600,
        what: String::new(),
    };

    fn fresh() -> (tempfile::TempDir, KeySet) {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("root.key");
        keys::write_private_key_file(&key, &keys::generate(KeyAlgorithm::Ed25519)).unwrap();
        let set = KeySet::create(&dir.path().join(MANIFEST), &key, 1_000).unwrap();
        (dir, set)
    }

    fn states(set: &KeySet) -> Vec<(u32, KeyState)> {
        set.entries().iter().map(|e| (e.id, e.state)).collect()
    }

    #[test]
    fn a_key_moves_next_active_retiring_retired_and_the_manifest_round_trips() {
        let (dir, mut set) = fresh();
        set.add(KeyAlgorithm::Secp256r1, 1_100).unwrap();
        assert_eq!(
            states(&set),
            vec![(1, KeyState::Active), (2, KeyState::Next)]
        );
        assert_eq!(set.ring().verifying_ids(), vec![1], "next does not verify");
        set.activate(2, 2_000, &HOUR, &[]).unwrap();
        assert_eq!(set.signing_key().unwrap().id, Some(2));
        assert_eq!(
            set.ring().verifying_ids(),
            vec![2, 1],
            "the active key is tried first"
        );
        assert_eq!(set.entries()[0].verify_until, Some(2_000 + 3_600));
        set.save().unwrap();
        let reread = KeySet::load(set.manifest()).unwrap();
        assert_eq!(reread.entries(), set.entries());
        let mode = std::fs::metadata(set.manifest())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let early = set.retire(1, 3_000, &[], false).unwrap_err().to_string();
        assert!(
            early.contains("may live until") && early.contains("--force"),
            "{early}"
        );
        set.retire(1, 5_600, &[], false).unwrap();
        assert!(
            !set.ring().retired_by_force(1),
            "a key retired after its tokens expired leaves tokens refreshed from them alone"
        );
        assert_eq!(
            states(&set),
            vec![(1, KeyState::Retired), (2, KeyState::Active)]
        );
        assert!(
            dir.path().join("root.key").exists(),
            "kept until the manifest stops naming it"
        );
        set.save().unwrap();
        assert!(!dir.path().join("root.key").exists(), "private key deleted");
        let again = set.activate(1, 6_000, &HOUR, &[]).unwrap_err().to_string();
        assert!(again.contains("retired"), "{again}");
    }

    #[test]
    fn changes_go_through_apply_which_asks_for_live_tokens_only_when_a_transition_needs_them() {
        let (_dir, mut set) = fresh();
        let unused = |_: &KeySet, id: u32| -> Vec<LiveToken> {
            panic!("adding a key asks about no tokens (asked about key {id})")
        };
        let add = KeyChange::Add(KeyAlgorithm::Ed25519);
        set.apply(add, 1_100, None, unused).unwrap();
        assert_eq!(
            states(&set),
            vec![(1, KeyState::Active), (2, KeyState::Next)]
        );

        // Activation needs the policy's lifetime bound, and refuses before changing anything.
        let error = set
            .apply(KeyChange::Activate(2), 2_000, None, |_, _| Vec::new())
            .unwrap_err();
        assert!(matches!(error, KeySetError::LifetimeUnknown), "{error}");
        assert!(error.to_string().contains("--policy"), "{error}");
        assert_eq!(
            states(&set),
            vec![(1, KeyState::Active), (2, KeyState::Next)]
        );

        // It asks about the tokens the current active key signed; one outliving the bound
        // extends how long that key keeps verifying.
        let live = LiveToken {
            identity: "uri:urn:company:alice via /request_identity_token".into(),
            issued_at: 1_500,
            expires_at: 9_000,
        };
        let mut asked = Vec::new();
        set.apply(KeyChange::Activate(2), 2_000, Some(&HOUR), |_, id| {
            asked.push(id);
            vec![live.clone()]
        })
        .unwrap();
        assert_eq!(asked, [1]);
        assert_eq!(
            states(&set),
            vec![(1, KeyState::Retiring), (2, KeyState::Active)]
        );
        assert_eq!(set.entries()[0].verify_until, Some(9_000));

        // Retirement asks about the key itself; refused while it may verify, forced by name.
        let retire = |force| KeyChange::Retire { id: 1, force };
        let refused = set
            .apply(retire(false), 3_000, None, |_, id| {
                assert_eq!(id, 1);
                vec![live.clone()]
            })
            .unwrap_err();
        assert!(matches!(refused, KeySetError::Refused(_)), "{refused}");
        assert_eq!(set.entries()[0].state, KeyState::Retiring);
        let forced = set
            .apply(retire(true), 3_000, None, |_, _| vec![live.clone()])
            .unwrap();
        assert_eq!(forced.broken, vec![live.clone()]);
        assert_eq!(
            states(&set),
            vec![(1, KeyState::Retired), (2, KeyState::Active)]
        );
        assert!(set.ring().retired_by_force(1));

        // Illegal moves are refused whatever the caller.
        let active = set.apply(retire(true), 3_100, None, |_, _| Vec::new());
        assert!(active.unwrap_err().to_string().contains("already retired"));
        let retire_active = KeyChange::Retire { id: 2, force: true };
        let error = set.apply(retire_active, 3_100, None, |_, _| Vec::new());
        assert!(error.unwrap_err().to_string().contains("is the active key"));
    }

    #[test]
    fn a_change_travels_to_the_server_and_back_unchanged() {
        let changes = [
            KeyChange::Add(KeyAlgorithm::Ed25519),
            KeyChange::Add(KeyAlgorithm::Secp256r1),
            KeyChange::Activate(3),
            KeyChange::Retire {
                id: 2,
                force: false,
            },
            KeyChange::Retire { id: 2, force: true },
        ];
        for change in changes {
            let back = KeyChange::from_request(change.endpoint(), &change.request());
            assert_eq!(back, Ok(change));
        }
        let no_id = KeyChangeRequest::default();
        let error = KeyChange::from_request("/keys/activate", &no_id).unwrap_err();
        assert!(error.contains("\"id\""), "{error}");
        let rsa = KeyChangeRequest {
            algorithm: Some("rsa".into()),
            ..KeyChangeRequest::default()
        };
        let error = KeyChange::from_request("/keys/add", &rsa).unwrap_err();
        assert!(error.contains("ed25519 or secp256r1"), "{error}");
        // A server that never said which algorithm gets the default.
        let default = KeyChange::from_request("/keys/add", &no_id);
        assert_eq!(default, Ok(KeyChange::Add(KeyAlgorithm::Ed25519)));
    }

    #[test]
    fn a_ring_from_states_verifies_active_then_retiring_and_names_the_rest() {
        let key = |id, state| RingKey {
            id,
            state,
            forced: false,
            public: Some(keys::generate(KeyAlgorithm::Ed25519).public()),
        };
        let ring = ring_of([
            key(1, KeyState::Retiring),
            key(2, KeyState::Retired),
            key(3, KeyState::Retiring),
            key(4, KeyState::Active),
            key(5, KeyState::Next),
        ]);
        assert_eq!(ring.verifying_ids(), vec![4, 3, 1]);
        for (id, why) in [(2, "retired"), (5, "not")] {
            let error = ring.by_id(id).unwrap_err().to_string();
            assert!(error.contains(why), "key {id}: {error}");
        }
    }

    #[test]
    fn tokens_seen_issued_extend_the_verifying_window_and_block_retirement() {
        let (_dir, mut set) = fresh();
        set.add(KeyAlgorithm::Ed25519, 1_000).unwrap();
        let issued = [LiveToken {
            identity: "uri:urn:company:alice via /request_identity_token".into(),
            issued_at: 1_500,
            expires_at: 90_000,
        }];
        set.activate(2, 2_000, &HOUR, &issued).unwrap();
        assert_eq!(
            set.entries()[0].verify_until,
            Some(90_000),
            "a token issued under an older, longer policy still counts"
        );
        let refused = set
            .retire(1, 80_000, &issued, false)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("uri:urn:company:alice via"), "{refused}");
        let forced = set.retire(1, 80_000, &issued, true).unwrap();
        assert_eq!(forced.broken.len(), 1);
        assert!(forced.summary.contains("by force"), "{}", forced.summary);
        set.save().unwrap();
        let reread = KeySet::load(set.manifest()).unwrap();
        assert!(
            reread.entries()[0].forced,
            "a forced retirement is recorded"
        );
        assert!(
            reread.ring().retired_by_force(1),
            "tokens refreshed from key 1's are refused with it"
        );
    }

    #[test]
    fn refusals_say_what_to_do() {
        let (_dir, mut set) = fresh();
        let active = set.retire(1, 2_000, &[], false).unwrap_err().to_string();
        assert!(
            active.contains("keys add") && active.contains("activate"),
            "{active}"
        );
        let missing = set.activate(9, 2_000, &HOUR, &[]).unwrap_err().to_string();
        assert_eq!(missing, "no key 9 in the key set (keys: 1)");
        set.add(KeyAlgorithm::Ed25519, 1_000).unwrap();
        set.retire(2, 2_000, &[], false).unwrap();
        assert_eq!(
            states(&set),
            vec![(1, KeyState::Active), (2, KeyState::Retired)],
            "a key that never signed retires at once"
        );
    }

    #[test]
    fn a_repository_key_set_is_public_and_finds_private_keys_by_public_key() {
        let (dir, mut local) = fresh();
        local.save().unwrap();
        let key_dir = dir.path().join("keys");
        let public = local.public_manifest();
        assert!(!public.contains("private_key"), "{public}");
        let manifest = dir.path().join("repo-keys.toml");
        std::fs::write(&manifest, &public).unwrap();

        // No key directory yet: the active key is missing, named with the directory.
        let set = KeySet::open_repository(&manifest, &key_dir).unwrap();
        let missing = set.signing_key().unwrap_err().to_string();
        assert!(
            missing.contains("key 1") && missing.contains(&key_dir.display().to_string()),
            "{missing}"
        );

        // A file named like the key but holding another key is not that key.
        fsutil::create_private_dir(&key_dir).unwrap();
        let impostor = keys::generate(KeyAlgorithm::Ed25519);
        keys::write_private_key_file(&key_dir.join("root-1.key"), &impostor).unwrap();
        let error = set.signing_key().unwrap_err();
        assert!(
            matches!(error, KeySetError::MissingPrivateKey { id: 1, .. }),
            "{error}"
        );
        std::fs::copy(dir.path().join("root.key"), key_dir.join("any-name.key")).unwrap();
        assert_eq!(set.signing_key().unwrap().id, Some(1));

        // Adding writes the private key into the key directory (0600), not the manifest.
        let mut set = KeySet::open_repository(&manifest, &key_dir).unwrap();
        set.add(KeyAlgorithm::Ed25519, 1_100).unwrap();
        set.activate(2, 2_000, &HOUR, &[]).unwrap();
        set.save().unwrap();
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(!text.contains("private_key"), "{text}");
        let mode = std::fs::metadata(key_dir.join("root-2.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let reread = KeySet::open_repository(&manifest, &key_dir).unwrap();
        assert_eq!(reread.signing_key().unwrap().id, Some(2));

        // Retiring deletes the key's private key from the key directory.
        let mut set = reread;
        set.retire(1, 9_000, &[], false).unwrap();
        set.save().unwrap();
        assert!(!key_dir.join("any-name.key").exists());

        // A private key path in the repository's manifest is refused.
        let leaked = KeySet::from_repository(
            &manifest,
            &std::fs::read_to_string(local.manifest()).unwrap(),
            &key_dir,
        )
        .unwrap_err()
        .to_string();
        assert!(leaked.contains("public keys only"), "{leaked}");
    }

    #[test]
    fn a_retirement_edited_by_hand_is_held_to_the_verifying_window() {
        let (dir, mut set) = fresh();
        set.add(KeyAlgorithm::Ed25519, 1_000).unwrap();
        set.activate(2, 2_000, &HOUR, &[]).unwrap();
        let committed = set.clone();
        let until = 2_000 + HOUR.seconds as i64;
        let retire_by_hand = |forced: bool| {
            let mut edited = committed.clone();
            let entry = edited.entry_mut(1).unwrap();
            entry.state = KeyState::Retired;
            entry.forced = forced;
            edited
        };
        let early = premature_retirement(&committed, &retire_by_hand(false), until - 1).unwrap();
        assert!(
            early.contains("retires key 1") && early.contains("--force"),
            "{early}"
        );
        assert_eq!(
            premature_retirement(&committed, &retire_by_hand(false), until),
            None
        );
        assert_eq!(
            premature_retirement(&committed, &retire_by_hand(true), until - 1),
            None,
            "a forced retirement is the operator's recorded choice"
        );
        let mut dropped = committed.clone();
        dropped.entries.retain(|e| e.id != 2);
        let active = premature_retirement(&committed, &dropped, until + 10).unwrap();
        assert!(active.contains("drops key 2"), "{active}");
        drop(dir);
    }

    #[test]
    fn a_bad_manifest_is_refused_with_where_and_why() {
        let (dir, mut set) = fresh();
        set.save().unwrap();
        let text = std::fs::read_to_string(set.manifest()).unwrap();
        let write = |body: &str| {
            let path = dir.path().join("bad.toml");
            std::fs::write(&path, body).unwrap();
            KeySet::load(&path).unwrap_err().to_string()
        };
        let misspelt = write(&text.replace("\"active\"", "\"actve\""));
        assert!(
            misspelt.contains("line 5") && misspelt.contains("\"actve\" is not one of"),
            "{misspelt}"
        );
        let twice = write(&format!(
            "{text}{}",
            &text[text.find("[[keys]]").unwrap()..]
        ));
        assert!(twice.contains("key id 1 appears twice"), "{twice}");
        let none = write(&text.replace("\"active\"", "\"retiring\""));
        assert!(none.contains("no active key"), "{none}");
        let unknown = write(&text.replace("created_at", "made_at"));
        assert!(unknown.contains("unknown key `made_at`"), "{unknown}");
        let junk = write("[[keys]\nid = ");
        assert!(junk.contains("bad.toml"), "{junk}");

        let other = keys::generate(KeyAlgorithm::Ed25519);
        keys::write_private_key_file(&dir.path().join("root.key"), &other).unwrap();
        let mismatch = KeySet::load(set.manifest()).unwrap_err().to_string();
        assert!(mismatch.contains("does not match key 1"), "{mismatch}");
        std::fs::set_permissions(
            dir.path().join("root.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let readable = KeySet::load(set.manifest()).unwrap_err().to_string();
        assert!(readable.contains("chmod 600"), "{readable}");
    }
}
