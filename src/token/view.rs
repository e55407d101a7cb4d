//! A parsed token read block by block: roles, identity chain, effective identity and expiry,
//! delegation depth. Shared by delegation, verification, inspection and the server.

use biscuit_auth::{Biscuit, PublicKey, UnverifiedBiscuit};
use serde::Serialize;

use super::error::TokenError;
use super::keys::key_string;
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
    /// Datalog source as biscuit-auth prints it.
    pub source: String,
    /// The third-party signer, as a key string.
    pub external_key: Option<String>,
    /// Lowercase hex of the block's revocation identifier (its signature).
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

impl TokenView {
    pub fn read(token: &impl TokenBlocks) -> Result<TokenView, TokenError> {
        let revocation_ids = token.revocation_identifiers();
        let external_keys = token.external_public_keys();
        let mut blocks = Vec::with_capacity(token.block_count());
        for index in 0..token.block_count() {
            let source = token
                .print_block_source(index)
                .map_err(|e| TokenError::Malformed(format!("block {index}: {e}")))?;
            let shape = BlockShape::read(&source);
            blocks.push(BlockView {
                index,
                role: shape.role(index),
                external_key: external_keys
                    .get(index)
                    .cloned()
                    .flatten()
                    .map(|k| key_string(&k)),
                revocation_id: revocation_ids
                    .get(index)
                    .map(hex::encode)
                    .unwrap_or_default(),
                expiry: shape.expiry,
                source,
                shape,
            });
        }
        Ok(TokenView {
            root_key_id: token.root_key_id(),
            blocks,
        })
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

    pub fn revocation_ids(&self) -> Vec<String> {
        self.blocks
            .iter()
            .map(|b| b.revocation_id.clone())
            .collect()
    }
}
