//! Tokens whose signatures were checked, remembered by their exact text.
//!
//! A verifier sees the same token again and again: an agent presents its identity token with
//! every request, a service checks the same authorization token on each call. Checking the
//! signatures is nearly all of what verifying costs (a P-256 signature is ~300 µs of a ~360 µs
//! verification), and a chain of signatures that verified once verifies again: it does not
//! depend on the time, the caller or the policy. So the parsed token and its block view are kept,
//! keyed by the token's text, and what does depend on them — expiry, who presents it, domain,
//! depth, revocation — is decided afresh every time by the callers.
//!
//! What is kept stays honest:
//! - The key is the whole text, compared byte for byte: no hash stands in for it.
//! - Each entry names the root key that verified it, and is used only while the verifier still
//!   trusts that key for the token (the key its `root_key_id` names, or one of the candidates for
//!   a token naming none): retiring a key stops its tokens from verifying at once, cached or not.
//! - Only tokens that verified are kept; refusals are decided afresh each time.
//! - Bounded by count and by text size, in two generations: a token in use stays while
//!   one-shot tokens pass through, and a flood of distinct tokens costs first-sight verification,
//!   never memory.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use biscuit_auth::{Biscuit, PublicKey};

use super::revocation::RevocationIds;
use super::roots::VerifyingRoots;
use super::view::TokenView;

/// A token whose signatures verified with `root`, read block by block.
#[derive(Debug)]
pub struct VerifiedToken {
    pub biscuit: Biscuit,
    pub view: TokenView,
    /// The root key the signatures verified with.
    pub root: PublicKey,
}

impl VerifiedToken {
    /// Whether `roots` still accepts the key this token verified with.
    fn still_trusted<R: VerifyingRoots + ?Sized>(&self, roots: &R) -> bool {
        match self.view.root_key_id {
            Some(id) => roots.by_id(id).is_ok_and(|key| key == self.root),
            None => roots.candidates().contains(&self.root),
        }
    }
}

/// Kept tokens in two generations. New tokens go into `current`; when it is full it becomes
/// `previous` and the older generation is dropped. A token found in `previous` moves back into
/// `current`, so a token used at least once per generation outlives any number of one-shot
/// tokens (each new authorization token checked once) passing through, and memory stays within
/// two generations.
struct Memo {
    current: Generation,
    previous: Generation,
    /// Most tokens in one generation.
    limit_tokens: usize,
    /// Most text in one generation (the parsed form is a few times this).
    limit_text_bytes: usize,
}

#[derive(Default)]
struct Generation {
    tokens: HashMap<Box<str>, Arc<VerifiedToken>>,
    /// Sum of the kept texts' lengths.
    text_bytes: usize,
}

impl Generation {
    fn take(&mut self, text: &str) -> Option<Arc<VerifiedToken>> {
        let token = self.tokens.remove(text)?;
        self.text_bytes -= text.len();
        Some(token)
    }
}

impl Memo {
    fn new(limit_tokens: usize, limit_text_bytes: usize) -> Memo {
        Memo {
            current: Generation::default(),
            previous: Generation::default(),
            limit_tokens,
            limit_text_bytes,
        }
    }

    /// The token kept for `text`, and whether it sits in the older generation.
    fn find(&self, text: &str) -> Option<(Arc<VerifiedToken>, bool)> {
        if let Some(token) = self.current.tokens.get(text) {
            return Some((token.clone(), false));
        }
        self.previous.tokens.get(text).map(|t| (t.clone(), true))
    }

    fn keep(&mut self, text: &str, token: Arc<VerifiedToken>) {
        self.previous.take(text);
        if self.current.take(text).is_none()
            && (self.current.tokens.len() >= self.limit_tokens
                || self.current.text_bytes + text.len() > self.limit_text_bytes)
        {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.text_bytes += text.len();
        self.current.tokens.insert(text.into(), token);
    }

    fn clear(&mut self) {
        self.current = Generation::default();
        self.previous = Generation::default();
    }
}

/// At most 2 × 512 tokens and 2 × 2 MiB of text.
static VERIFIED_TOKENS: LazyLock<RwLock<Memo>> =
    LazyLock::new(|| RwLock::new(Memo::new(512, 2 << 20)));

/// Longer tokens are not kept (a depth-10 delegation with policies is a few KiB).
const LARGEST_KEPT: usize = 16 << 10;

/// The remembered token for `text` if `roots` still trusts the key that verified it.
pub(super) fn recall<R: VerifyingRoots + ?Sized>(
    text: &str,
    roots: &R,
) -> Option<Arc<VerifiedToken>> {
    let (known, older) = VERIFIED_TOKENS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .find(text)?;
    if !known.still_trusted(roots) {
        return None;
    }
    if older {
        VERIFIED_TOKENS
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .keep(text, known.clone());
    }
    Some(known)
}

/// The canonical revocation ids (hex) of a remembered token and its lineage, whatever key
/// verified it: they are facts of its bytes, which the text is.
pub(super) fn revocation_ids(text: &str) -> Option<RevocationIds> {
    VERIFIED_TOKENS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .find(text)
        .map(|(token, _)| RevocationIds {
            blocks: token.view.revocation_ids(),
            lineage: token.view.lineage().to_vec(),
        })
}

/// Keeps a token that just verified, and returns it shared.
pub(super) fn remember(text: &str, token: VerifiedToken) -> Arc<VerifiedToken> {
    let token = Arc::new(token);
    if text.len() <= LARGEST_KEPT {
        VERIFIED_TOKENS
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .keep(text, token.clone());
    }
    token
}

/// Forgets every remembered token.
pub(super) fn forget() {
    VERIFIED_TOKENS
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
}

#[cfg(test)]
pub(super) fn remembered(text: &str) -> bool {
    VERIFIED_TOKENS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .find(text.trim())
        .is_some()
}

#[cfg(test)]
mod tests {
    use biscuit_auth::KeyPair;

    use crate::token::{
        Actor, IdentityClaims, IdentityVerification, KeyRing, RootKey, TokenError, Unusable,
        mint_identity, read_verified, verify_identity,
    };

    const ALICE: &str = "uri:urn:company:alice";

    fn mint(root: &RootKey) -> String {
        let claims = IdentityClaims {
            subject: ALICE.into(),
            expires_at: 4_000_000_000,
            delegatable: true,
            domain: None,
        };
        mint_identity(root, &claims).unwrap()
    }

    fn key(id: Option<u32>) -> RootKey {
        RootKey {
            id,
            pair: KeyPair::new(),
        }
    }

    #[test]
    fn a_token_that_verified_is_not_checked_again_but_everything_else_is() {
        let root = key(None);
        let token = mint(&root);
        let first = read_verified(&token, &root.pair.public()).unwrap();
        assert!(super::remembered(&token));
        let again = read_verified(&format!("  {token}\n"), &root.pair.public()).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &again), "checked again");

        // What depends on the time and the caller is decided every time.
        let later = IdentityVerification::new(Actor::Named(ALICE), 4_000_000_001);
        let err = verify_identity(&token, &root.pair.public(), &later).unwrap_err();
        assert!(matches!(err, TokenError::Denied(_)), "{err:?}");
        let bob = IdentityVerification::new(Actor::Named("uri:urn:company:bob"), 1);
        assert!(verify_identity(&token, &root.pair.public(), &bob).is_err());
        let now = IdentityVerification::new(Actor::Named(ALICE), 1);
        assert!(verify_identity(&token, &root.pair.public(), &now).is_ok());

        // Another key does not inherit the verdict.
        let err = read_verified(&token, &KeyPair::new().public()).unwrap_err();
        assert!(matches!(err, TokenError::UnknownRootKey { .. }), "{err:?}");
    }

    #[test]
    fn a_retired_key_stops_its_remembered_tokens_at_once() {
        let (old, new) = (key(Some(1)), key(Some(2)));
        let token = mint(&old);
        let both = KeyRing::new()
            .verifying(2, new.pair.public())
            .verifying(1, old.pair.public());
        read_verified(&token, &both).unwrap();
        assert!(super::remembered(&token));
        let retired = KeyRing::new()
            .verifying(2, new.pair.public())
            .unusable(1, Unusable::Retired);
        let err = read_verified(&token, &retired).unwrap_err().to_string();
        assert!(err.contains("retired"), "{err}");
        // A ring that gives id 1 to another key does not accept it either.
        let reused = KeyRing::new().verifying(1, new.pair.public());
        assert!(read_verified(&token, &reused).is_err());
    }

    #[test]
    fn a_token_naming_no_key_is_accepted_only_while_its_key_is_a_candidate() {
        let (signer, other) = (key(None), key(None));
        let token = mint(&signer);
        let both = KeyRing::new()
            .verifying(2, other.pair.public())
            .verifying(1, signer.pair.public());
        let first = read_verified(&token, &both).unwrap();
        assert_eq!(first.root, signer.pair.public());
        let without = KeyRing::new().verifying(2, other.pair.public());
        let err = read_verified(&token, &without).unwrap_err();
        assert!(matches!(err, TokenError::UnknownRootKey { .. }), "{err:?}");
    }

    #[test]
    fn a_token_in_use_outlives_a_flood_of_one_shot_tokens_and_memory_stays_bounded() {
        let root = key(None);
        let token = read_verified(&mint(&root), &root.pair.public()).unwrap();
        let mut memo = super::Memo::new(4, 1 << 20);
        memo.keep("hot", token.clone());
        for n in 0..40 {
            memo.keep(&format!("once {n}"), token.clone());
            if n % 3 == 0 {
                // What `recall` does with a token found in the older generation.
                if let Some((found, true)) = memo.find("hot") {
                    memo.keep("hot", found);
                }
            }
            assert!(memo.find("hot").is_some(), "lost after {n} one-shot tokens");
            let kept = memo.current.tokens.len() + memo.previous.tokens.len();
            assert!(kept <= 8, "{kept} kept");
        }
        assert!(
            memo.find("once 0").is_none(),
            "an old one-shot token is dropped"
        );

        let mut small = super::Memo::new(100, 10);
        small.keep("123456", token.clone());
        small.keep("abcdef", token.clone());
        assert_eq!(small.current.text_bytes, 6, "text bounds a generation too");
        assert_eq!(small.previous.text_bytes, 6);
        small.keep("abcdef", token);
        assert_eq!(
            (small.current.text_bytes, small.previous.text_bytes),
            (6, 6),
            "keeping a kept token again counts it once"
        );
    }

    #[test]
    fn revocation_ids_are_the_same_remembered_or_not() {
        let root = key(None);
        let token = mint(&root);
        let unread = crate::token::revocation_ids(&token).unwrap();
        assert!(!super::remembered(&token));
        let verified = read_verified(&token, &root.pair.public()).unwrap();
        assert_eq!(crate::token::revocation_ids(&token).unwrap(), unread);
        assert_eq!(verified.view.revocation_ids(), unread.blocks);
        assert!(crate::token::revocation_ids("not a token").is_err());
    }

    #[test]
    fn forged_text_is_never_mistaken_for_a_remembered_token() {
        let root = key(None);
        let token = mint(&root);
        read_verified(&token, &root.pair.public()).unwrap();
        let mut bytes = crate::token::decode(&token).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let forged = crate::token::encode(&bytes);
        assert!(read_verified(&forged, &root.pair.public()).is_err());
        assert!(!super::remembered(&forged));
    }
}
