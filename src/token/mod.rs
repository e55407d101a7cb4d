//! Hessra-compatible Biscuit tokens: keys, identity and authorization tokens, delegation,
//! attestation, inspection and explained verification failures. Knows nothing of HTTP, files
//! (beyond key files) or git.

mod attest;
mod authz;
pub mod clock;
mod codec;
mod error;
mod explain;
mod identity;
mod inspect;
pub mod keys;
mod lineage;
mod plain;
mod replay;
mod revocation;
mod roots;
mod screen;
mod shapes;
mod verified;
mod view;

use std::time::Duration;

use biscuit_auth::datalog::RunLimits;

pub use attest::{add_prefix_restriction, add_service_attestation, add_signoff};
pub use authz::{
    AuthzClaims, AuthzVerification, ServiceNode, Signer, VerifiedAuthz, mint_authz, required_nodes,
    service_node, verify_authz,
};
pub use biscuit_auth::{Biscuit, KeyPair, PublicKey};
pub use codec::{
    MAX_TOKEN_CHARS, decode, encode, parse_unverified, parse_verified, read_verified,
    remembered_plain, revocation_ids,
};
pub use error::{CheckOrigin, Denial, DenialReason, TokenError};
pub use identity::{
    Actor, Delegated, Delegation, DelegationPolicy, IdentityClaims, IdentityVerification,
    VerifiedIdentity, add_jit, delegate, is_same_or_descendant, is_strict_descendant,
    mint_identity, mint_refreshed_identity, validate_identity, verify_identity,
    verify_identity_parsed,
};
pub use inspect::{Inspection, SignatureStatus, inspect};
pub use lineage::{
    Ancestor, DEFAULT_MAX_REFRESH_GENERATIONS, MAX_REFRESH_GENERATIONS, check_ancestor_keys,
    refreshed_lineage,
};
pub use plain::{Ambient, AmbientSubject, PlainChecks};
pub use replay::authorize_with_code;
pub use revocation::{RevocationIds, canonical_revocation_id, canonical_revocation_id_hex};
pub use roots::{KeyRing, RootKey, SigningRoot, Unusable, VerifyingKeys, VerifyingRoots, key_ids};
pub use screen::{COST_BUDGET, MAX_BLOCKS, MAX_STRING, Screened, screen};
pub use shapes::{ActorCheck, BlockRole, BlockShape, Right};
pub use verified::VerifiedToken;
pub use view::{BlockView, TokenKind, TokenView};

/// Delegation depth allowed when nothing else is configured.
pub const DEFAULT_MAX_DELEGATION_DEPTH: usize = 10;

/// The deepest delegation a policy may allow. biscuit-auth's cost per check grows with the
/// number of blocks, so a chain's evaluation grows with the square of its depth: 64 levels take
/// about 11 ms, 32 about 3 ms (BENCHMARKS.md, `hostile_tokens`).
pub const MAX_DELEGATION_DEPTH: usize = 32;

/// Lifetime of a JIT block, as the Hessra SDK adds before every Bearer use.
pub const JIT_SECONDS: i64 = 5;

/// Datalog limits for every authorizer built here.
///
/// biscuit-auth's default (1 ms) rejects valid tokens on a loaded machine, and a rejection for
/// time is indistinguishable from a denial to the caller. Facts and iterations stay bounded so
/// hostile tokens still cannot run long.
pub fn run_limits() -> RunLimits {
    RunLimits {
        max_facts: 1_000,
        max_iterations: 100,
        max_time: Duration::from_millis(50),
    }
}
