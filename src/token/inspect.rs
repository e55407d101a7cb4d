//! Inspection: what a token says and whether it still holds, with or without the root key.

use biscuit_auth::PublicKey;
use serde::Serialize;

use super::codec::{parse_for_inspection, verify_signatures};
use super::error::TokenError;
use super::lineage::Ancestor;
use super::view::{BlockView, TokenKind, TokenView};

/// Whether the signatures were checked, and how that went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum SignatureStatus {
    NotChecked,
    Valid,
    Invalid(String),
}

/// Everything a reviewer wants to know about a token.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub kind: TokenKind,
    pub subject: Option<String>,
    pub effective_identity: Option<String>,
    pub chain: Vec<String>,
    pub delegatable: bool,
    pub delegation_depth: usize,
    pub domain: Option<String>,
    pub effective_expiry: Option<i64>,
    /// The block whose expiry is the effective one.
    pub expiring_block: Option<usize>,
    pub expired: Option<bool>,
    pub signature: SignatureStatus,
    /// Why every verifier refuses the token before evaluating it (the structural screen), if
    /// it does.
    pub refused: Option<String>,
    pub root_key_id: Option<u32>,
    /// The tokens this one was refreshed from, oldest first.
    pub lineage: Vec<Ancestor>,
    pub size_chars: usize,
    pub blocks: Vec<BlockView>,
}

/// Reads a token; with `root`, also checks its signatures. `now` decides expiry.
pub fn inspect(token: &str, root: Option<&PublicKey>, now: i64) -> Result<Inspection, TokenError> {
    let (unverified, refusal) = parse_for_inspection(token)?;
    let view = TokenView::read(&unverified)?;
    let signature = match root {
        None => SignatureStatus::NotChecked,
        Some(root) => match verify_signatures(unverified, root) {
            Ok(_) => SignatureStatus::Valid,
            Err(e) => SignatureStatus::Invalid(e.to_string()),
        },
    };
    let effective_expiry = view.effective_expiry();
    Ok(Inspection {
        kind: view.kind(),
        subject: view.subject().map(str::to_string),
        effective_identity: view.effective_identity().map(str::to_string),
        chain: view.identity_chain(),
        delegatable: view.delegatable(),
        delegation_depth: view.delegation_depth(),
        domain: view.domain().map(str::to_string),
        effective_expiry,
        expiring_block: view.expiring_block(),
        expired: effective_expiry.map(|at| at <= now),
        signature,
        refused: refusal.map(|refusal| refusal.to_string()),
        root_key_id: view.root_key_id,
        lineage: view.lineage().to_vec(),
        size_chars: token.trim().len(),
        blocks: view.blocks,
    })
}
