//! Third-party attestation blocks added to authorization tokens after minting: a service node's
//! `service(...)`, a multi-party signer's `namespace(...)`, and a stub's prefix restriction.

use biscuit_auth::KeyPair;
use biscuit_auth::macros::block;

use super::codec::{encode_unverified, parse_unverified};
use super::error::TokenError;
use super::identity::append_third_party;

/// A service node attests that it handled the token for `service` (the resource name).
pub fn add_service_attestation(
    token: &str,
    node: &KeyPair,
    service: &str,
) -> Result<String, TokenError> {
    let unverified = parse_unverified(token)?;
    let extended = append_third_party(
        &unverified,
        &node.private(),
        block!(r#"service({service});"#),
    )?;
    encode_unverified(&extended)
}

/// A multi-party signer signs off on the token under its component name.
pub fn add_signoff(token: &str, signer: &KeyPair, namespace: &str) -> Result<String, TokenError> {
    let unverified = parse_unverified(token)?;
    let extended = append_third_party(
        &unverified,
        &signer.private(),
        block!(r#"namespace({namespace});"#),
    )?;
    encode_unverified(&extended)
}

/// The holder of a stub's prefix-attenuator key restricts it to `prefix`, which activates it.
pub fn add_prefix_restriction(
    token: &str,
    attenuator: &KeyPair,
    prefix: &str,
) -> Result<String, TokenError> {
    let unverified = parse_unverified(token)?;
    let block = block!(r#"check if prefix({prefix}); prefix_added(true);"#);
    encode_unverified(&append_third_party(
        &unverified,
        &attenuator.private(),
        block,
    )?)
}
