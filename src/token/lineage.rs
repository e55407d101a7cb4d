//! Refresh lineage: a token refreshed at the server names every token it descends from in its
//! root-signed authority block, `lineage(generation, "revocation id", root key id)`, so revoking
//! an ancestor, or force-retiring the key that signed one, refuses it too. Capped in generations.

use serde::Serialize;

use super::error::TokenError;
use super::roots::VerifyingRoots;
use super::verified::VerifiedToken;
use super::view::TokenView;

/// A token that a refreshed token descends from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ancestor {
    /// 0 is the token issued with a certificate; each refresh adds one.
    pub generation: u32,
    /// Canonical revocation id of the ancestor's authority block.
    pub revocation_id: String,
    /// The root key that signed it; `None` when the server that refreshed it had one key and
    /// no key ids (nothing to retire then).
    pub root_key_id: Option<u32>,
}

/// Refreshes in a row before the holder must authenticate with their certificate again. Each
/// generation adds one fact, ~220 characters of token text with a P-256 id (72 bytes, in hex):
/// measured, a 428-character identity token grows to 3,952 after 16 generations. With 8-hour
/// tokens refreshed at 80 % of their life, the holder shows their certificate again after about
/// four days (as Vault caps renewals at a max TTL).
pub const DEFAULT_MAX_REFRESH_GENERATIONS: u32 = 16;

/// The most a server may allow: 64 generations make that token 14,516 characters, inside the
/// 64 KiB token bound and the 16 KiB the verified-token memo keeps.
pub const MAX_REFRESH_GENERATIONS: u32 = 64;

/// The lineage a token refreshed from `current` carries: `current`'s own, then `current` itself
/// (its authority block's id and the key that signed it). Refused past `max_generations`.
pub fn refreshed_lineage<R: VerifyingRoots + ?Sized>(
    current: &VerifiedToken,
    roots: &R,
    max_generations: u32,
) -> Result<Vec<Ancestor>, TokenError> {
    let view = &current.view;
    let mut lineage = view.lineage().to_vec();
    let generation = u32::try_from(lineage.len()).unwrap_or(u32::MAX);
    if generation >= max_generations {
        return Err(TokenError::RefreshLimit {
            refreshes: generation,
            max: max_generations,
        });
    }
    let authority = view
        .blocks
        .first()
        .ok_or_else(|| TokenError::Malformed("the token has no authority block".into()))?;
    lineage.push(Ancestor {
        generation,
        revocation_id: authority.revocation_id.clone(),
        root_key_id: view.root_key_id.or_else(|| roots.id_of(&current.root)),
    });
    Ok(lineage)
}

/// Refuses a token descending from one signed by a key `roots` says was retired by force (a
/// compromised key could have signed that ancestor, and the refresh laundered it into a token
/// of a trusted key). Keys retired in the normal course, after everything they signed expired,
/// leave their descendants alone: an ancestor that expired is no reason to refuse.
pub fn check_ancestor_keys<R: VerifyingRoots + ?Sized>(
    view: &TokenView,
    roots: &R,
) -> Result<(), TokenError> {
    for ancestor in view.lineage() {
        if let Some(id) = ancestor.root_key_id
            && roots.retired_by_force(id)
        {
            return Err(TokenError::AncestorKeyRetired {
                generation: ancestor.generation,
                id,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use biscuit_auth::KeyPair;

    use super::*;
    use crate::token::{
        IdentityClaims, KeyRing, RootKey, Unusable, mint_identity, mint_refreshed_identity,
        read_verified, revocation_ids,
    };

    fn claims() -> IdentityClaims {
        IdentityClaims {
            subject: "uri:urn:company:alice".into(),
            expires_at: 4_000_000_000,
            delegatable: true,
            domain: None,
        }
    }

    fn key(id: u32) -> RootKey {
        RootKey {
            id: Some(id),
            pair: KeyPair::new(),
        }
    }

    #[test]
    fn each_refresh_names_the_token_it_came_from_after_that_tokens_ancestors() {
        let root = key(1);
        let ring = KeyRing::new().verifying(1, root.pair.public());
        let mut current = mint_identity(&root, &claims()).unwrap();
        let mut ids = Vec::new();
        for generation in 0..3u32 {
            let verified = read_verified(&current, &ring).unwrap();
            ids.push(verified.view.blocks[0].revocation_id.clone());
            let lineage = refreshed_lineage(&verified, &ring, 16).unwrap();
            assert_eq!(lineage.len() as u32, generation + 1);
            assert_eq!(
                lineage.last(),
                Some(&Ancestor {
                    generation,
                    revocation_id: ids[generation as usize].clone(),
                    root_key_id: Some(1),
                })
            );
            current = mint_refreshed_identity(&root, &claims(), &lineage).unwrap();
        }
        // The same lineage before any verification, verified, and remembered.
        let unverified = revocation_ids(&current).unwrap();
        let named: Vec<&String> = unverified
            .lineage
            .iter()
            .map(|a| &a.revocation_id)
            .collect();
        assert_eq!(named, ids.iter().collect::<Vec<_>>());
        let verified = read_verified(&current, &ring).unwrap();
        assert_eq!(verified.view.lineage(), unverified.lineage.as_slice());
        assert_eq!(revocation_ids(&current).unwrap(), unverified);
    }

    #[test]
    fn refreshing_stops_at_the_generation_cap() {
        let root = KeyPair::new();
        let two = vec![
            Ancestor {
                generation: 0,
                revocation_id: "aa".repeat(64),
                root_key_id: None,
            },
            Ancestor {
                generation: 1,
                revocation_id: "bb".repeat(64),
                root_key_id: None,
            },
        ];
        let token = mint_refreshed_identity(&root, &claims(), &two).unwrap();
        let verified = read_verified(&token, &root.public()).unwrap();
        let err = refreshed_lineage(&verified, &root.public(), 2).unwrap_err();
        assert_eq!(
            err,
            TokenError::RefreshLimit {
                refreshes: 2,
                max: 2
            }
        );
        assert!(err.to_string().contains("client certificate"), "{err}");
        let three = refreshed_lineage(&verified, &root.public(), 3).unwrap();
        assert_eq!(three.len(), 3);
        assert_eq!(three[2].root_key_id, None, "a lone key has no id to record");
    }

    #[test]
    fn a_token_naming_no_key_records_the_id_of_the_ring_key_that_verified_it() {
        let legacy = KeyPair::new();
        let ring = KeyRing::new().verifying(7, legacy.public());
        let token = mint_identity(&legacy, &claims()).unwrap();
        let verified = read_verified(&token, &ring).unwrap();
        assert_eq!(verified.view.root_key_id, None);
        let lineage = refreshed_lineage(&verified, &ring, 16).unwrap();
        assert_eq!(lineage[0].root_key_id, Some(7));
    }

    /// A compromised key could have signed the ancestor; a key retired after its tokens expired
    /// could not have been misused since, so its descendants stand.
    #[test]
    fn only_a_key_retired_by_force_refuses_tokens_refreshed_from_its_tokens() {
        let (old, new) = (key(1), key(2));
        let both = KeyRing::new()
            .verifying(2, new.pair.public())
            .verifying(1, old.pair.public());
        let t0 = mint_identity(&old, &claims()).unwrap();
        let lineage = refreshed_lineage(&read_verified(&t0, &both).unwrap(), &both, 16).unwrap();
        let t1 = mint_refreshed_identity(&new, &claims(), &lineage).unwrap();
        read_verified(&t1, &both).unwrap();

        let retired = KeyRing::new()
            .verifying(2, new.pair.public())
            .unusable(1, Unusable::Retired);
        assert!(read_verified(&t1, &retired).is_ok());
        assert!(read_verified(&t0, &retired).is_err());

        let forced = KeyRing::new()
            .verifying(2, new.pair.public())
            .unusable(1, Unusable::RetiredByForce);
        let err = read_verified(&t1, &forced).unwrap_err();
        assert_eq!(
            err,
            TokenError::AncestorKeyRetired {
                generation: 0,
                id: 1
            }
        );
        assert!(err.is_verdict());
        let message = err.to_string();
        assert!(
            message.contains("generation 0") && message.contains("root key 1"),
            "{message}"
        );
        let own = read_verified(&t0, &forced).unwrap_err().to_string();
        assert!(
            own.contains("root key 1, which has been retired by force"),
            "{own}"
        );
    }
}
