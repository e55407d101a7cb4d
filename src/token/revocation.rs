//! Revocation ids in their one canonical form. A block's revocation id is its signature, and a
//! P-256 (ECDSA) signature `(r, s)` has a twin `(r, n − s)` that verifies just as well; every id
//! shown, compared or written here is the low-S DER form, so revoking either twin revokes both.

use serde::Serialize;

use super::lineage::Ancestor;

/// What a revocation list is checked against: the canonical ids of a token's blocks, and of the
/// tokens it was refreshed from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RevocationIds {
    /// One per block, block 0 first.
    pub blocks: Vec<String>,
    /// The refresh ancestors, oldest first (see `src/token/lineage.rs`).
    pub lineage: Vec<Ancestor>,
}

/// The canonical revocation id of a block signature.
///
/// biscuit-auth 6.0.0 signs P-256 blocks with ecdsa 0.16's `try_sign`, which does not normalise
/// `s` (about half its signatures are high-S), and verifies with `Signature::from_der` + `verify`,
/// which accepts both halves. So anyone holding a token can flip `s` and get a token that
/// verifies with a different id. A signature that this same parser accepts is mapped to its
/// low-S form, re-encoded as DER; anything else (Ed25519's 64 bytes, verified with
/// `verify_strict` and not malleable) is its own id. The mapping needs no key and no algorithm,
/// so an id pasted from another tool canonicalises the same way a token's block does.
pub fn canonical_revocation_id(signature: &[u8]) -> Vec<u8> {
    // The longest DER P-256 signature is 72 bytes; skip the parse for anything longer.
    if signature.len() > 72 {
        return signature.to_vec();
    }
    match p256::ecdsa::Signature::from_der(signature) {
        Ok(parsed) => parsed
            .normalize_s()
            .unwrap_or(parsed)
            .to_der()
            .as_bytes()
            .to_vec(),
        Err(_) => signature.to_vec(),
    }
}

/// The canonical form of a revocation id written in hex (as `revocations.toml` and other tools
/// hold them), lowercase; `None` when it is not hex.
pub fn canonical_revocation_id_hex(id: &str) -> Option<String> {
    let bytes = hex::decode(id).ok()?;
    Some(hex::encode(canonical_revocation_id(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_signatures_and_junk_are_their_own_ids() {
        let token = biscuit_auth::macros::biscuit!("subject(\"a\");")
            .build(&biscuit_auth::KeyPair::new())
            .unwrap();
        let ed25519 = token.revocation_identifiers().remove(0);
        assert_eq!(ed25519.len(), 64);
        assert_eq!(canonical_revocation_id(&ed25519), ed25519);
        assert_eq!(canonical_revocation_id(b""), b"");
        let long = vec![0x30; 200];
        assert_eq!(canonical_revocation_id(&long), long);
        assert_eq!(canonical_revocation_id_hex("zz"), None);
        assert_eq!(
            canonical_revocation_id_hex(&"AB".repeat(32)),
            Some("ab".repeat(32)),
            "hex comes back lowercase"
        );
    }

    /// Both halves of a P-256 pair map to the low-S one, which maps to itself.
    #[test]
    fn a_high_s_signature_and_its_twin_share_one_id() {
        use p256::ecdsa::{Signature, SigningKey, signature::Signer};
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let signature: Signature = key.sign(b"block");
        let low = signature.normalize_s().unwrap_or(signature);
        let (r, s) = low.split_scalars();
        let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        assert!(high.normalize_s().is_some(), "the twin is high-S");
        let (low, high) = (
            low.to_der().as_bytes().to_vec(),
            high.to_der().as_bytes().to_vec(),
        );
        assert_ne!(low, high);
        assert_eq!(canonical_revocation_id(&high), low);
        assert_eq!(canonical_revocation_id(&low), low);
        assert_eq!(
            canonical_revocation_id_hex(&hex::encode(&high)),
            Some(hex::encode(&low))
        );
    }
}
