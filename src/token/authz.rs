//! Authorization tokens: minting (right + authority check + expiry, with optional domain, prefix
//! restriction, service chain and multi-party signers) and verification in identity or
//! capability mode, with domain, prefix and service-chain context.

use biscuit_auth::macros::{authorizer, biscuit, check, fact, rule};
use biscuit_auth::{Authorizer, Biscuit, KeyPair, PublicKey};
use serde::Serialize;

use super::codec::{encode_token, read_verified};
use super::error::TokenError;
use super::explain::{Presented, explain};
use super::keys::{key_string, parse_key_string};
use super::plain::{Ambient, AmbientSubject};
use super::roots::{SigningRoot, VerifyingRoots};
use super::run_limits;
use super::view::{TokenKind, TokenView};

/// A service in a resource's chain: the component name and the key it attests with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceNode {
    pub component: String,
    /// `ed25519/<hex>` or `secp256r1/<hex>`.
    pub public_key: String,
}

/// A party whose signoff an authorization token needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signer {
    pub component: String,
    pub public_key: String,
}

/// What an authorization token grants and how it is restricted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthzClaims {
    pub subject: String,
    pub resource: String,
    pub operation: String,
    pub expires_at: i64,
    pub domain: Option<String>,
    /// Stub tokens: usable only once the holder of this key adds a prefix block.
    pub prefix_attenuator_key: Option<String>,
    pub service_chain: Vec<ServiceNode>,
    pub signers: Vec<Signer>,
}

/// Mints an authorization token signed by `root`.
pub fn mint_authz<R: SigningRoot + ?Sized>(
    root: &R,
    claims: &AuthzClaims,
) -> Result<String, TokenError> {
    let internal = |e: biscuit_auth::error::Token| TokenError::Internal(e.to_string());
    let key = |text: &str| {
        parse_key_string(text).map_err(|e| TokenError::Internal(format!("key {text:?}: {e}")))
    };
    let subject = claims.subject.as_str();
    let resource = claims.resource.as_str();
    let operation = claims.operation.as_str();
    let expires_at = claims.expires_at;
    let mut builder = biscuit!(
        r#"right({subject}, {resource}, {operation});
           check if subject($sub), resource($res), operation($op), right($sub, $res, $op);
           check if time($time), $time < {expires_at};"#
    );
    if let Some(domain) = claims.domain.as_deref() {
        builder = builder
            .check(check!(r#"check if domain({domain});"#))
            .map_err(internal)?;
    }
    if let Some(prefix_key) = claims.prefix_attenuator_key.as_deref() {
        let prefix_key = key(prefix_key)?;
        builder = builder
            .check(check!(
                r#"check if prefix_added(true) trusting {prefix_key};"#
            ))
            .map_err(internal)?;
    }
    for node in &claims.service_chain {
        let component = node.component.as_str();
        let node_key = key(&node.public_key)?;
        builder = builder
            .rule(rule!(
                r#"node($s, {component}) <- service($s) trusting {node_key};"#
            ))
            .map_err(internal)?;
    }
    for signer in &claims.signers {
        let component = signer.component.as_str();
        let signer_key = key(&signer.public_key)?;
        builder = builder
            .check(check!(
                r#"check if namespace({component}) trusting {signer_key};"#
            ))
            .map_err(internal)?;
    }
    if let Some(id) = root.key_id() {
        builder = builder.root_key_id(id);
    }
    encode_token(&builder.build(root.key_pair()).map_err(internal)?)
}

/// What to verify an authorization token against.
#[derive(Debug, Clone)]
pub struct AuthzVerification<'a> {
    /// Identity mode when set; capability mode (any holder) when `None`.
    pub subject: Option<&'a str>,
    pub resource: &'a str,
    pub operation: &'a str,
    pub domain: Option<&'a str>,
    pub prefix: Option<&'a str>,
    /// The resource's chain, and the component verifying (attestations of every node before it
    /// are required; all nodes when `None`).
    pub service_chain: Option<(&'a [ServiceNode], Option<&'a str>)>,
    pub now: i64,
}

impl<'a> AuthzVerification<'a> {
    pub fn new(subject: Option<&'a str>, resource: &'a str, operation: &'a str, now: i64) -> Self {
        AuthzVerification {
            subject,
            resource,
            operation,
            domain: None,
            prefix: None,
            service_chain: None,
            now,
        }
    }
}

/// A verified authorization token.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedAuthz {
    pub subject: Option<String>,
    pub resource: String,
    pub operation: String,
    pub expires_at: Option<i64>,
    pub revocation_ids: Vec<String>,
}

/// Verifies an authorization token's signatures and checks.
pub fn verify_authz<R: VerifyingRoots + ?Sized>(
    token: &str,
    root: &R,
    verification: &AuthzVerification<'_>,
) -> Result<VerifiedAuthz, TokenError> {
    let verified = read_verified(token, root)?;
    verify_authz_parsed(&verified.biscuit, &verified.view, verification)
}

/// Verification of an already parsed and signature-checked authorization token.
pub(crate) fn verify_authz_parsed(
    biscuit: &Biscuit,
    view: &TokenView,
    verification: &AuthzVerification<'_>,
) -> Result<VerifiedAuthz, TokenError> {
    if view.kind() != TokenKind::Authorization {
        return Err(TokenError::WrongKind {
            expected: "an authorization token",
            found: view.kind().describe(),
        });
    }
    let nodes = chain_keys(verification)?;
    // A plain token whose checks all hold is allowed without running Datalog (the service
    // chain's checks are the verifier's own, so a chain always goes to biscuit-auth); anything
    // else, and every denial, is decided by biscuit-auth (src/token/plain.rs).
    let plain = nodes.is_empty()
        && view.plain.as_ref().is_some_and(|checks| {
            checks.allows(&Ambient {
                now: verification.now,
                actor: None,
                domain: verification.domain,
                resource: Some(verification.resource),
                operation: Some(verification.operation),
                subject: match verification.subject {
                    Some(subject) => AmbientSubject::Fact(subject),
                    None => AmbientSubject::FromRights,
                },
            })
        });
    if plain {
        return Ok(verified_authz(view, verification));
    }
    build_authorizer(biscuit, verification, &nodes)
        .and_then(|mut authorizer| authorizer.authorize())
        .map_err(|e| {
            let presented = Presented {
                now: verification.now,
                subject: verification.subject.map(str::to_string),
                domain: verification.domain.map(str::to_string),
                resource: Some(verification.resource.to_string()),
                operation: Some(verification.operation.to_string()),
                prefix: verification.prefix.map(str::to_string),
                ..Presented::default()
            };
            explain(e, &presented)
        })?;
    Ok(verified_authz(view, verification))
}

fn verified_authz(view: &TokenView, verification: &AuthzVerification<'_>) -> VerifiedAuthz {
    VerifiedAuthz {
        subject: verification
            .subject
            .map(str::to_string)
            .or_else(|| view.subject().map(str::to_string)),
        resource: verification.resource.to_string(),
        operation: verification.operation.to_string(),
        expires_at: view.effective_expiry(),
        revocation_ids: view.revocation_ids(),
    }
}

fn chain_keys<'v>(
    verification: &AuthzVerification<'v>,
) -> Result<Vec<(&'v str, PublicKey)>, TokenError> {
    let Some((nodes, component)) = verification.service_chain else {
        return Ok(Vec::new());
    };
    required_nodes(nodes, component)?
        .iter()
        .map(|node| {
            parse_key_string(&node.public_key)
                .map(|key| (node.component.as_str(), key))
                .map_err(|e| TokenError::ServiceChain(format!("node {}: {e}", node.component)))
        })
        .collect()
}

fn build_authorizer(
    biscuit: &Biscuit,
    verification: &AuthzVerification<'_>,
    chain: &[(&str, PublicKey)],
) -> Result<Authorizer, biscuit_auth::error::Token> {
    let now = verification.now;
    let resource = verification.resource;
    let operation = verification.operation;
    let mut builder =
        authorizer!(r#"time({now}); resource({resource}); operation({operation}); allow if true;"#);
    builder = match verification.subject {
        Some(subject) => builder.fact(fact!(r#"subject({subject})"#))?,
        None => builder.rule(rule!(
            r#"subject($sub) <- right($sub, {resource}, {operation});"#
        ))?,
    };
    if let Some(domain) = verification.domain {
        builder = builder.fact(fact!(r#"domain({domain})"#))?;
    }
    if let Some(prefix) = verification.prefix {
        builder = builder.fact(fact!(r#"prefix({prefix})"#))?;
    }
    for (component, node_key) in chain {
        let component = *component;
        let node_key = *node_key;
        builder = builder.check(check!(
            r#"check if node({resource}, {component}) trusting authority, {node_key};"#
        ))?;
    }
    builder.set_limits(run_limits()).build(biscuit)
}

/// The nodes whose attestation `component` requires: every node before it in the chain.
pub fn required_nodes<'n>(
    nodes: &'n [ServiceNode],
    component: Option<&str>,
) -> Result<&'n [ServiceNode], TokenError> {
    let Some(component) = component else {
        return Ok(nodes);
    };
    let position = nodes
        .iter()
        .position(|n| n.component == component)
        .ok_or_else(|| {
            let known: Vec<&str> = nodes.iter().map(|n| n.component.as_str()).collect();
            TokenError::ServiceChain(format!(
                "component {component} is not in the chain ({})",
                known.join(" → ")
            ))
        })?;
    Ok(&nodes[..position])
}

/// Builds a service node from a name and key pair (for tests, demos and fixtures).
pub fn service_node(component: &str, key: &KeyPair) -> ServiceNode {
    ServiceNode {
        component: component.to_string(),
        public_key: key_string(&key.public()),
    }
}
