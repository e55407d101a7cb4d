//! A parsed token read block by block: roles, identity chain, effective identity and expiry,
//! delegation depth. Shared by delegation, verification, inspection and the server.

use biscuit_auth::{Biscuit, PublicKey, UnverifiedBiscuit};
use serde::Serialize;

use super::error::TokenError;
use super::keys::key_string;
use super::plain::PlainChecks;
use super::revocation::canonical_revocation_id;
use super::shapes::{BlockRole, BlockShape};

/// The two token families, told apart by their authority block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Identity,
    Authorization,
    Unknown,
}

impl TokenKind {
    pub fn describe(self) -> &'static str {
        match self {
            TokenKind::Identity => "an identity token",
            TokenKind::Authorization => "an authorization token",
            TokenKind::Unknown => "a token of unknown kind",
        }
    }
}

/// One block of a token.
#[derive(Debug, Clone, Serialize)]
pub struct BlockView {
    pub index: usize,
    pub role: BlockRole,
    /// Datalog source as biscuit-auth prints it; empty in views read on the verification path
    /// (see [`TokenView::from_screened`]).
    pub source: String,
    /// The third-party signer, as a key string.
    pub external_key: Option<String>,
    /// Lowercase hex of the block's revocation identifier: its signature, in the canonical form
    /// both twins of a P-256 signature share (see `src/token/revocation.rs`).
    pub revocation_id: String,
    pub expiry: Option<i64>,
    #[serde(skip)]
    pub shape: BlockShape,
}

/// A token read block by block, without any signature check.
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub root_key_id: Option<u32>,
    pub blocks: Vec<BlockView>,
    /// The checks of a plain token, read by the screen on the verification path (`None` in
    /// views read by printing, and for tokens that are not plain; see `src/token/plain.rs`).
    #[serde(skip)]
    pub plain: Option<PlainChecks>,
}

/// The read-only block access that verified and unverified tokens share.
pub trait TokenBlocks {
    fn block_count(&self) -> usize;
    fn print_block_source(&self, index: usize) -> Result<String, biscuit_auth::error::Token>;
    fn revocation_identifiers(&self) -> Vec<Vec<u8>>;
    fn external_public_keys(&self) -> Vec<Option<PublicKey>>;
    fn root_key_id(&self) -> Option<u32>;
}

macro_rules! token_blocks {
    ($type:ty) => {
        impl TokenBlocks for $type {
            fn block_count(&self) -> usize {
                <$type>::block_count(self)
            }
            fn print_block_source(
                &self,
                index: usize,
            ) -> Result<String, biscuit_auth::error::Token> {
                <$type>::print_block_source(self, index)
            }
            fn revocation_identifiers(&self) -> Vec<Vec<u8>> {
                <$type>::revocation_identifiers(self)
            }
            fn external_public_keys(&self) -> Vec<Option<PublicKey>> {
                <$type>::external_public_keys(self)
            }
            fn root_key_id(&self) -> Option<u32> {
                <$type>::root_key_id(self)
            }
        }
    };
}

token_blocks!(Biscuit);
token_blocks!(UnverifiedBiscuit);

fn read_block(
    token: &impl TokenBlocks,
    index: usize,
    revocation_id: Option<&Vec<u8>>,
    external_key: Option<PublicKey>,
) -> Result<BlockView, TokenError> {
    let source = token
        .print_block_source(index)
        .map_err(|e| TokenError::Malformed(format!("block {index}: {e}")))?;
    let shape = BlockShape::read(&source);
    Ok(BlockView {
        index,
        role: shape.role(index),
        external_key: external_key.map(|k| key_string(&k)),
        revocation_id: revocation_id
            .map(|id| hex::encode(canonical_revocation_id(id)))
            .unwrap_or_default(),
        expiry: shape.expiry,
        source,
        shape,
    })
}

impl TokenView {
    pub fn read(token: &impl TokenBlocks) -> Result<TokenView, TokenError> {
        let revocation_ids = token.revocation_identifiers();
        let external_keys = token.external_public_keys();
        let blocks = (0..token.block_count())
            .map(|index| {
                read_block(
                    token,
                    index,
                    revocation_ids.get(index),
                    external_keys.get(index).copied().flatten(),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(TokenView {
            root_key_id: token.root_key_id(),
            blocks,
            plain: None,
        })
    }

    /// Forgets every token remembered by [`read_verified`](super::read_verified), so that the
    /// next verification of any token costs what a first sight does (benchmarks measure both).
    pub fn forget_verified() {
        super::verified::forget();
    }

    /// The view of a token whose signatures were checked, from the shapes the screen read off
    /// its protobuf (`screen::screen`): nothing is printed, so `source` is left empty — the
    /// verifiers' hot path needs only the shapes; inspection prints sources.
    pub(crate) fn from_screened(token: &Biscuit, screened: super::Screened) -> TokenView {
        let super::Screened { shapes, plain, .. } = screened;
        let revocation_ids = token.revocation_identifiers();
        let external_keys = token.external_public_keys();
        let blocks = shapes
            .into_iter()
            .enumerate()
            .map(|(index, shape)| BlockView {
                index,
                role: shape.role(index),
                source: String::new(),
                external_key: external_keys
                    .get(index)
                    .copied()
                    .flatten()
                    .map(|k| key_string(&k)),
                revocation_id: revocation_ids
                    .get(index)
                    .map(|id| hex::encode(canonical_revocation_id(id)))
                    .unwrap_or_default(),
                expiry: shape.expiry,
                shape,
            })
            .collect();
        TokenView {
            root_key_id: token.root_key_id(),
            blocks,
            plain,
        }
    }

    fn authority(&self) -> &BlockShape {
        &self.blocks[0].shape
    }

    pub fn kind(&self) -> TokenKind {
        let authority = self.authority();
        if authority.subject.is_some() {
            TokenKind::Identity
        } else if !authority.rights.is_empty() {
            TokenKind::Authorization
        } else {
            TokenKind::Unknown
        }
    }

    /// The identity the authority block names (`subject`, or the subject of its right).
    pub fn subject(&self) -> Option<&str> {
        let authority = self.authority();
        authority
            .subject
            .as_deref()
            .or_else(|| authority.rights.first().map(|r| r.subject.as_str()))
    }

    /// Whether the authority's actor check admits sub-identities.
    pub fn delegatable(&self) -> bool {
        self.authority()
            .actor
            .as_ref()
            .is_some_and(|actor| actor.includes_descendants)
    }

    /// The targets of the delegation blocks, in order.
    pub fn delegations(&self) -> impl Iterator<Item = &str> {
        self.blocks.iter().filter_map(|block| match &block.role {
            BlockRole::Delegation { to } => Some(to.as_str()),
            _ => None,
        })
    }

    /// The subject followed by every delegation target.
    pub fn identity_chain(&self) -> Vec<String> {
        self.subject()
            .into_iter()
            .chain(self.delegations())
            .map(str::to_string)
            .collect()
    }

    pub fn delegation_depth(&self) -> usize {
        self.delegations().count()
    }

    /// Who may use the token: the deepest delegation target, else the subject.
    pub fn effective_identity(&self) -> Option<&str> {
        self.delegations().last().or_else(|| self.subject())
    }

    /// The earliest expiry over all blocks: the token is dead after it.
    pub fn effective_expiry(&self) -> Option<i64> {
        self.blocks.iter().filter_map(|b| b.expiry).min()
    }

    /// The block whose expiry is the effective one.
    pub fn expiring_block(&self) -> Option<usize> {
        let expiry = self.effective_expiry()?;
        self.blocks.iter().position(|b| b.expiry == Some(expiry))
    }

    pub fn domain(&self) -> Option<&str> {
        self.authority().domain.as_deref()
    }

    /// The tokens this one was refreshed from, oldest first (empty for a token issued with a
    /// certificate). Read from the authority block only: the root key signed it.
    pub fn lineage(&self) -> &[super::lineage::Ancestor] {
        &self.authority().lineage
    }

    pub fn revocation_ids(&self) -> Vec<String> {
        self.blocks
            .iter()
            .map(|b| b.revocation_id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Delegation, IdentityClaims, delegate, mint_identity, read_verified};
    use biscuit_auth::KeyPair;
    use biscuit_auth::macros::biscuit;

    fn identity(root: &KeyPair) -> String {
        mint_identity(
            root,
            &IdentityClaims {
                subject: "uri:urn:company:alice".into(),
                expires_at: 4_000_000_000,
                delegatable: true,
                domain: None,
            },
        )
        .unwrap()
    }

    /// What a view says of each block, but its source (printed only for inspection) and the
    /// text of unrecognised statements (printed or described).
    fn reading(view: &TokenView) -> Vec<String> {
        view.blocks
            .iter()
            .map(|b| {
                let shape = BlockShape {
                    other: vec![String::new(); b.shape.other.len()],
                    ..b.shape.clone()
                };
                format!(
                    "{} {:?} {} {:?} {:?} {shape:?}",
                    b.index, b.role, b.revocation_id, b.external_key, b.expiry
                )
            })
            .collect()
    }

    #[test]
    fn a_verified_read_is_the_plain_read_however_often_and_whatever_shares_a_prefix() {
        let root = KeyPair::new();
        let parent = identity(&root);
        let to = |target: &str| {
            delegate(
                &parent,
                Some(&root.public()),
                &Delegation::new(target, 3_000_000_000),
            )
            .unwrap()
            .token
        };
        let (one, two) = (
            to("uri:urn:company:alice:agent1"),
            to("uri:urn:company:alice:agent2"),
        );
        for token in [&one, &two, &one, &two, &parent] {
            let verified = read_verified(token, &root.public()).unwrap();
            let plain = TokenView::read(&verified.biscuit).unwrap();
            let verified = &verified.view;
            assert_eq!(reading(verified), reading(&plain));
            assert_eq!(verified.effective_identity(), plain.effective_identity());
        }
        let second = read_verified(&two, &root.public()).unwrap();
        assert_eq!(
            second.view.effective_identity(),
            Some("uri:urn:company:alice:agent2"),
            "siblings share block 0, not the delegation"
        );
    }

    #[test]
    fn an_ambiguous_string_is_refused_every_time_and_never_remembered() {
        let root = KeyPair::new();
        let sneaky = r#"x"); check if true; subject("y"#;
        let token = biscuit!(r#"subject({sneaky});"#)
            .build(&root)
            .unwrap()
            .to_base64()
            .unwrap();
        for _ in 0..2 {
            let err = read_verified(&token, &root.public()).unwrap_err();
            assert!(
                matches!(err, TokenError::AmbiguousString { block: 0, .. }),
                "{err:?}"
            );
        }
    }
}
