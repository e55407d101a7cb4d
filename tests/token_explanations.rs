//! Failures a reviewer reads: every way a token can be refused gets its own typed error that
//! names what failed and why, and limits are told apart from denials.

use biscuit_auth::macros::{biscuit, block};
use hessra_console::token::{
    self, Actor, AuthzClaims, BlockRole, Delegation, DenialReason, IdentityClaims,
    IdentityVerification, TokenError, clock::unix_now, keys,
};

const ALICE: &str = "uri:urn:company:alice";

fn root() -> token::KeyPair {
    keys::generate(keys::KeyAlgorithm::Ed25519)
}

fn alice(root: &token::KeyPair, expires_at: i64) -> String {
    token::mint_identity(
        root,
        &IdentityClaims {
            subject: ALICE.into(),
            expires_at,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap()
}

fn verify_as(
    token: &str,
    root: &token::KeyPair,
    actor: &str,
) -> Result<token::VerifiedIdentity, TokenError> {
    token::verify_identity(
        token,
        &root.public(),
        &IdentityVerification::new(Actor::Named(actor), unix_now()),
    )
}

#[test]
fn a_datalog_limit_is_not_a_denial() {
    let root = root();
    let exp = unix_now() + 600;
    let mut builder = biscuit!(r#"subject({ALICE}); check if time($time), $time < {exp};"#);
    // 33 facts and a rule pairing them: 1,089 derived facts, over the 1,000 limit, in a token
    // the structural screen still admits (its cost bound is about half the budget).
    for i in 0..33i64 {
        builder = builder.fact(biscuit_auth::macros::fact!("n({i})")).unwrap();
    }
    builder = builder
        .rule(biscuit_auth::macros::rule!("pair($x, $y) <- n($x), n($y)"))
        .unwrap();
    let heavy = builder.build(&root).unwrap().to_base64().unwrap();
    let err = verify_as(&heavy, &root, ALICE).unwrap_err();
    assert!(matches!(err, TokenError::RunLimit(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("too many facts") && text.contains("not a policy decision"),
        "{text}"
    );
    assert!(err.denials().is_empty());
}

#[test]
fn verification_enforces_the_depth_limit() {
    let root = root();
    let exp = unix_now() + 600;
    let one = token::delegate(
        &alice(&root, exp),
        None,
        &Delegation::new("uri:urn:company:alice:a", exp),
    )
    .unwrap();
    let two = token::delegate(
        &one.token,
        None,
        &Delegation::new("uri:urn:company:alice:a:b", exp),
    )
    .unwrap();
    let mut check = IdentityVerification::new(Actor::Effective, unix_now());
    check.max_depth = 1;
    let err = token::verify_identity(&two.token, &root.public(), &check).unwrap_err();
    assert_eq!(err, TokenError::TooDeep { depth: 2, max: 1 });
    check.max_depth = 2;
    assert!(token::verify_identity(&two.token, &root.public(), &check).is_ok());
}

#[test]
fn strings_with_quotes_are_refused_before_interpretation() {
    let root = root();
    // A subject crafted to print like a different check.
    let sneaky = r#"x"); check if true; subject("y"#;
    let token = biscuit!(r#"subject({sneaky});"#)
        .build(&root)
        .unwrap()
        .to_base64()
        .unwrap();
    for result in [
        token::inspect(&token, None, unix_now()).map(|_| ()),
        verify_as(&token, &root, "y").map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, TokenError::AmbiguousString { block: 0, .. }),
            "{err:?}"
        );
    }
}

#[test]
fn a_date_typed_expiry_is_an_evaluation_error_with_a_hint() {
    let root = root();
    let token = biscuit!(
        r#"subject({ALICE});
           check if time($time), $time < 2099-01-01T00:00:00Z;"#
    )
    .build(&root)
    .unwrap()
    .to_base64()
    .unwrap();
    let err = verify_as(&token, &root, ALICE).unwrap_err();
    assert!(matches!(err, TokenError::Evaluation(_)), "{err:?}");
    assert!(err.to_string().contains("integer Unix seconds"), "{err}");
}

#[test]
fn the_wrong_kind_of_token_is_named() {
    let root = root();
    let authz = token::mint_authz(
        &root,
        &AuthzClaims {
            subject: ALICE.into(),
            resource: "api".into(),
            operation: "read".into(),
            expires_at: unix_now() + 60,
            ..AuthzClaims::default()
        },
    )
    .unwrap();
    let err = verify_as(&authz, &root, ALICE).unwrap_err();
    assert_eq!(
        err.to_string(),
        "this is an authorization token, but an identity token was expected"
    );
    let err = token::delegate(
        &authz,
        None,
        &Delegation::new("uri:urn:company:alice:x", unix_now() + 60),
    )
    .unwrap_err();
    assert!(matches!(err, TokenError::WrongKind { .. }), "{err:?}");
}

#[test]
fn expiry_is_explained_with_the_block_that_set_it() {
    let root = root();
    let now = unix_now();
    let base = alice(&root, now + 3600);
    let delegated = token::delegate(
        &base,
        None,
        &Delegation::new("uri:urn:company:alice:a", now - 900),
    )
    .unwrap();
    assert_eq!(delegated.effective_expires_at, now - 900);
    let err = verify_as(&delegated.token, &root, "uri:urn:company:alice:a").unwrap_err();
    let denial = &err.denials()[0];
    assert_eq!(denial.origin, token::CheckOrigin::Block(1));
    assert!(
        matches!(denial.reason, DenialReason::Expired { expired_at, .. } if expired_at == now - 900)
    );
    assert!(err.to_string().contains("(15 minutes ago)"), "{err}");

    // Inspection with an injected clock: not expired an hour earlier, and block 1 sets the expiry.
    let earlier = token::inspect(&delegated.token, None, now - 3600).unwrap();
    assert_eq!(earlier.expired, Some(false));
    assert_eq!(earlier.expiring_block, Some(1));
    let later = token::inspect(&delegated.token, None, now).unwrap();
    assert_eq!(later.expired, Some(true));
}

#[test]
fn inspection_names_every_block_role() {
    let root = root();
    let now = unix_now();
    let node = keys::generate(keys::KeyAlgorithm::Ed25519);
    let signer = keys::generate(keys::KeyAlgorithm::Ed25519);
    let attenuator = keys::generate(keys::KeyAlgorithm::Ed25519);
    let authz = token::mint_authz(
        &root,
        &AuthzClaims {
            subject: ALICE.into(),
            resource: "orders".into(),
            operation: "read".into(),
            expires_at: now + 300,
            prefix_attenuator_key: Some(keys::key_string(&attenuator.public())),
            service_chain: vec![token::service_node("auth", &node)],
            signers: vec![token::Signer {
                component: "compliance".into(),
                public_key: keys::key_string(&signer.public()),
            }],
            ..AuthzClaims::default()
        },
    )
    .unwrap();
    let authz = token::add_service_attestation(&authz, &node, "orders").unwrap();
    let authz = token::add_signoff(&authz, &signer, "compliance").unwrap();
    let authz = token::add_prefix_restriction(&authz, &attenuator, "tenant/1/").unwrap();
    let authz = {
        let unverified = token::parse_unverified(&authz).unwrap();
        let custom = unverified.append(block!("note(\"reviewed\");")).unwrap();
        token::encode(&custom.to_vec().unwrap())
    };
    let inspection = token::inspect(&authz, Some(&root.public()), now).unwrap();
    let roles: Vec<BlockRole> = inspection.blocks.iter().map(|b| b.role.clone()).collect();
    assert_eq!(
        roles,
        vec![
            BlockRole::Authority,
            BlockRole::ServiceAttestation {
                service: "orders".into()
            },
            BlockRole::MultiPartySignoff {
                namespace: "compliance".into()
            },
            BlockRole::Prefix {
                prefix: "tenant/1/".into()
            },
            BlockRole::Other,
        ]
    );
    assert_eq!(inspection.kind, token::TokenKind::Authorization);
    assert_eq!(inspection.signature, token::SignatureStatus::Valid);
    assert_eq!(
        inspection.blocks[1].external_key,
        Some(keys::key_string(&node.public()))
    );
    assert_eq!(inspection.blocks[4].external_key, None);
    assert!(
        inspection
            .blocks
            .iter()
            .all(|b| b.revocation_id.len() >= 128)
    );

    let identity = token::add_jit(&alice(&root, now + 60), now).unwrap();
    let inspection = token::inspect(&identity, None, now).unwrap();
    assert_eq!(inspection.blocks[1].role, BlockRole::Jit);
    assert_eq!(inspection.effective_expiry, Some(now + token::JIT_SECONDS));
    assert_eq!(inspection.signature, token::SignatureStatus::NotChecked);

    let other_root = keys::generate(keys::KeyAlgorithm::Ed25519);
    let forged = token::inspect(&identity, Some(&other_root.public()), now).unwrap();
    assert!(matches!(
        forged.signature,
        token::SignatureStatus::Invalid(_)
    ));
}
