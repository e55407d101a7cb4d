//! Which root key signs a new token, and which keys a token may verify with.
//!
//! A single key pair or public key works everywhere, as before key rotation existed. A server
//! with a rotating key set signs with its active key, naming it by `root_key_id`, and verifies
//! with a [`KeyRing`]: by id when the token names one, otherwise by trying every key that still
//! verifies (tokens minted by other Hessra implementations carry no id).

use biscuit_auth::{KeyPair, PublicKey};

use super::error::TokenError;
use super::keys::key_string;

/// What mints tokens: a key pair, and the id written into the token as `root_key_id`.
pub trait SigningRoot {
    fn key_pair(&self) -> &KeyPair;
    fn key_id(&self) -> Option<u32>;
}

impl SigningRoot for KeyPair {
    fn key_pair(&self) -> &KeyPair {
        self
    }

    fn key_id(&self) -> Option<u32> {
        None
    }
}

/// A root key pair with its id in a key set.
#[derive(Debug)]
pub struct RootKey {
    /// `None` signs without naming the key (a server given a single key file).
    pub id: Option<u32>,
    pub pair: KeyPair,
}

impl SigningRoot for RootKey {
    fn key_pair(&self) -> &KeyPair {
        &self.pair
    }

    fn key_id(&self) -> Option<u32> {
        self.id
    }
}

/// What verifies tokens.
pub trait VerifyingRoots {
    /// The key for a token that names `id`, or why none will do.
    fn by_id(&self, id: u32) -> Result<PublicKey, TokenError>;
    /// Keys to try, in order, for a token that names none.
    fn candidates(&self) -> Vec<PublicKey>;
    /// Names the keys for a message when no signature verifies.
    fn describe(&self) -> String;
    /// Whether key `id` was retired by force (compromised): tokens refreshed from a token it
    /// signed are refused with it (see `src/token/lineage.rs`).
    fn retired_by_force(&self, _id: u32) -> bool {
        false
    }
    /// The id of a verifying key, for the lineage of a token that names none.
    fn id_of(&self, _key: &PublicKey) -> Option<u32> {
        None
    }
}

/// A lone public key verifies whatever id a token names, as biscuit-auth does.
impl VerifyingRoots for PublicKey {
    fn by_id(&self, _: u32) -> Result<PublicKey, TokenError> {
        Ok(*self)
    }

    fn candidates(&self) -> Vec<PublicKey> {
        vec![*self]
    }

    fn describe(&self) -> String {
        key_string(self)
    }
}

/// Why a known key does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Published ahead of use: nothing it signed can be genuine yet.
    NotYetActive,
    /// No longer trusted.
    Retired,
    /// Retired before what it signed expired (compromised): tokens refreshed from its tokens are
    /// refused too.
    RetiredByForce,
}

/// The keys of a set with their ids: the ones that verify, and the ones that do not (kept so
/// that a token naming one gets a message that says what happened to it).
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    /// Verifying keys, the signing one first.
    verifying: Vec<(u32, PublicKey)>,
    unusable: Vec<(u32, Unusable)>,
}

impl KeyRing {
    pub fn new() -> KeyRing {
        KeyRing::default()
    }

    /// Adds a key that verifies; the first added is tried first.
    pub fn verifying(mut self, id: u32, key: PublicKey) -> KeyRing {
        self.verifying.push((id, key));
        self
    }

    /// Records a key that must not verify.
    pub fn unusable(mut self, id: u32, why: Unusable) -> KeyRing {
        self.unusable.push((id, why));
        self
    }

    pub fn verifying_ids(&self) -> Vec<u32> {
        self.verifying.iter().map(|(id, _)| *id).collect()
    }
}

impl VerifyingRoots for KeyRing {
    fn by_id(&self, id: u32) -> Result<PublicKey, TokenError> {
        if let Some((_, key)) = self.verifying.iter().find(|(known, _)| *known == id) {
            return Ok(*key);
        }
        let state = self
            .unusable
            .iter()
            .find(|(known, _)| *known == id)
            .map(|(_, why)| *why);
        Err(TokenError::UnusableRootKey {
            id,
            reason: match state {
                Some(Unusable::Retired) => "has been retired".into(),
                Some(Unusable::RetiredByForce) => "has been retired by force".into(),
                Some(Unusable::NotYetActive) => {
                    "is published for a coming rotation and has not signed anything yet".into()
                }
                None => format!(
                    "is not in this server's key set (verifying keys: {})",
                    key_ids(&self.verifying_ids())
                ),
            },
        })
    }

    fn candidates(&self) -> Vec<PublicKey> {
        self.verifying.iter().map(|(_, key)| *key).collect()
    }

    fn retired_by_force(&self, id: u32) -> bool {
        self.unusable
            .iter()
            .any(|&(known, why)| known == id && why == Unusable::RetiredByForce)
    }

    fn id_of(&self, key: &PublicKey) -> Option<u32> {
        self.verifying
            .iter()
            .find(|(_, known)| known == key)
            .map(|(id, _)| *id)
    }

    fn describe(&self) -> String {
        if self.verifying.is_empty() {
            return "(none: the key set has no verifying key)".into();
        }
        self.verifying
            .iter()
            .map(|(id, key)| format!("{} (id {id})", key_string(key)))
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// Key ids as a reader wants them: "1, 2", or "none".
pub fn key_ids(ids: &[u32]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The root keys tokens verify with, as a server or the console holds them: one key without
/// ids (a single key file), or a key set's ring.
pub enum VerifyingKeys {
    Single(PublicKey),
    Ring(KeyRing),
}

impl VerifyingRoots for VerifyingKeys {
    fn by_id(&self, id: u32) -> Result<PublicKey, TokenError> {
        match self {
            VerifyingKeys::Single(key) => key.by_id(id),
            VerifyingKeys::Ring(ring) => ring.by_id(id),
        }
    }

    fn candidates(&self) -> Vec<PublicKey> {
        match self {
            VerifyingKeys::Single(key) => key.candidates(),
            VerifyingKeys::Ring(ring) => ring.candidates(),
        }
    }

    fn describe(&self) -> String {
        match self {
            VerifyingKeys::Single(key) => key.describe(),
            VerifyingKeys::Ring(ring) => ring.describe(),
        }
    }

    fn retired_by_force(&self, id: u32) -> bool {
        match self {
            VerifyingKeys::Single(_) => false,
            VerifyingKeys::Ring(ring) => ring.retired_by_force(id),
        }
    }

    fn id_of(&self, key: &PublicKey) -> Option<u32> {
        match self {
            VerifyingKeys::Single(_) => None,
            VerifyingKeys::Ring(ring) => ring.id_of(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_finds_keys_by_id_and_explains_the_ones_it_will_not_use() {
        let (a, b) = (KeyPair::new(), KeyPair::new());
        let ring = KeyRing::new()
            .verifying(2, a.public())
            .verifying(1, b.public())
            .unusable(3, Unusable::NotYetActive)
            .unusable(0, Unusable::Retired);
        assert_eq!(ring.by_id(1).unwrap(), b.public());
        assert_eq!(ring.candidates(), vec![a.public(), b.public()]);
        let retired = ring.by_id(0).unwrap_err().to_string();
        assert!(
            retired.contains("root key 0") && retired.contains("retired"),
            "{retired}"
        );
        let next = ring.by_id(3).unwrap_err().to_string();
        assert!(next.contains("not signed anything yet"), "{next}");
        let unknown = ring.by_id(9).unwrap_err().to_string();
        assert!(unknown.contains("verifying keys: 2, 1"), "{unknown}");
    }
}
