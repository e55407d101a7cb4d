//! Byte compatibility with the published Hessra token crates (hessra-token-identity and
//! hessra-token-authz 0.6.0, biscuit-auth 6.0.0), in both directions: tokens minted here verify
//! there and tokens minted there verify here, and both sides reject the same things.

use hessra_console::token::KeyPair;
use hessra_console::token::{
    self, Actor, AuthzClaims, AuthzVerification, Delegation, DenialReason, IdentityClaims,
    IdentityVerification, TokenError, clock::unix_now, keys,
};
use hessra_token_authz as their_authz;
use hessra_token_core::TokenTimeConfig;
use hessra_token_identity as their_identity;

/// Runs a verification by the published crates, retrying when biscuit-auth's 1 ms default
/// Datalog limit (which those crates keep) decided instead of the token: on a loaded machine
/// that limit rejects valid tokens.
fn settled<E: std::fmt::Debug>(verify: impl Fn() -> Result<(), E>) -> bool {
    for _ in 0..20 {
        match verify() {
            Ok(()) => return true,
            Err(e)
                if format!("{e:?}").contains("Limit")
                    || format!("{e:?}").contains("too much time") =>
            {
                continue;
            }
            Err(_) => return false,
        }
    }
    panic!("the published verifier hit its time limit 20 times in a row");
}

/// Runs a call into the published crates that may stop on their 1 ms Datalog limit (delegation
/// verifies the token first), retrying while that limit — not the token — decided.
fn retried<T, E: std::fmt::Debug>(call: impl Fn() -> Result<T, E>) -> T {
    for _ in 0..20 {
        match call() {
            Ok(value) => return value,
            Err(e) if format!("{e:?}").contains("too much time") => continue,
            Err(e) => panic!("{e:?}"),
        }
    }
    panic!("the published crate hit its time limit 20 times in a row");
}

const ALICE: &str = "uri:urn:company:alice";
const AGENT: &str = "uri:urn:company:alice:agent1";
const WORKER: &str = "uri:urn:company:alice:agent1:worker";

/// Hessra's own server signs with P-256; our default is Ed25519. Both must interoperate.
fn roots() -> Vec<token::KeyPair> {
    vec![
        keys::generate(keys::KeyAlgorithm::Secp256r1),
        keys::generate(keys::KeyAlgorithm::Ed25519),
    ]
}

fn hour() -> TokenTimeConfig {
    TokenTimeConfig {
        start_time: None,
        duration: 3600,
    }
}

fn our_identity(
    root: &token::KeyPair,
    subject: &str,
    delegatable: bool,
    domain: Option<&str>,
) -> String {
    token::mint_identity(
        root,
        &IdentityClaims {
            subject: subject.into(),
            expires_at: unix_now() + 3600,
            delegatable,
            domain: domain.map(str::to_string),
        },
    )
    .unwrap()
}

fn our_verify(
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

fn their_verify(token: &str, root: &token::KeyPair, actor: &str) -> bool {
    settled(|| {
        their_identity::verify_identity_token(token.to_string(), root.public(), actor.to_string())
    })
}

#[test]
fn identity_tokens_verify_in_both_directions() {
    for root in roots() {
        let ours = our_identity(&root, ALICE, true, None);
        assert!(their_verify(&ours, &root, ALICE));
        assert!(
            their_verify(&ours, &root, AGENT),
            "delegatable token must admit sub-identities"
        );

        let theirs = their_identity::create_identity_token(
            ALICE.into(),
            KeyPair::from(&root.private()),
            hour(),
        )
        .unwrap();
        let verified = our_verify(&theirs, &root, ALICE).unwrap();
        assert_eq!(verified.subject, ALICE);
        assert!(verified.delegatable);
        assert!(our_verify(&theirs, &root, AGENT).is_ok());
    }
}

#[test]
fn non_delegatable_tokens_agree() {
    for root in roots() {
        let ours = our_identity(&root, ALICE, false, None);
        assert!(their_verify(&ours, &root, ALICE));
        assert!(!their_verify(&ours, &root, AGENT));
        let theirs = their_identity::create_non_delegatable_identity_token(
            ALICE.into(),
            KeyPair::from(&root.private()),
            hour(),
        )
        .unwrap();
        assert!(our_verify(&theirs, &root, ALICE).is_ok());
        assert!(our_verify(&theirs, &root, AGENT).is_err());
        let refused = token::delegate(
            &theirs,
            Some(&root.public()),
            &Delegation::new(AGENT, unix_now() + 60),
        );
        assert!(
            matches!(refused, Err(TokenError::NotDelegatable { .. })),
            "{refused:?}"
        );
    }
}

#[test]
fn depth_two_delegation_verifies_in_both_directions() {
    for root in roots() {
        let exp = unix_now() + 600;
        // Ours, delegated by us, verified by them.
        let base = our_identity(&root, ALICE, true, None);
        let one =
            token::delegate(&base, Some(&root.public()), &Delegation::new(AGENT, exp)).unwrap();
        let two = token::delegate(
            &one.token,
            Some(&root.public()),
            &Delegation::new(WORKER, exp),
        )
        .unwrap();
        assert_eq!(two.depth, 2);
        assert!(their_verify(&two.token, &root, WORKER));
        assert!(their_verify(&two.token, &root, &format!("{WORKER}:child")));
        assert!(!their_verify(&two.token, &root, AGENT));
        assert!(!their_verify(&two.token, &root, ALICE));

        // Theirs, delegated by them, verified and read by us.
        let theirs = their_identity::create_identity_token(
            ALICE.into(),
            KeyPair::from(&root.private()),
            hour(),
        )
        .unwrap();
        let theirs = retried(|| {
            their_identity::add_identity_attenuation_to_token(
                theirs.clone(),
                AGENT.into(),
                root.public(),
                hour(),
            )
        });
        let theirs = retried(|| {
            their_identity::add_identity_attenuation_to_token(
                theirs.clone(),
                WORKER.into(),
                root.public(),
                hour(),
            )
        });
        let verified = token::verify_identity(
            &theirs,
            &root.public(),
            &IdentityVerification::new(Actor::Effective, unix_now()),
        )
        .unwrap();
        assert_eq!(verified.identity, WORKER);
        assert_eq!(verified.chain, vec![ALICE, AGENT, WORKER]);
        assert_eq!(verified.depth, 2);
        let err = our_verify(&theirs, &root, AGENT).unwrap_err();
        assert!(
            matches!(
                err.denials()[0].reason,
                DenialReason::IdentityMismatch { .. }
            ),
            "{err}"
        );

        // Mixed: their token delegated further by us, verified by them.
        let three = token::delegate(
            &theirs,
            Some(&root.public()),
            &Delegation::new(&format!("{WORKER}:x"), exp),
        )
        .unwrap();
        assert!(their_verify(&three.token, &root, &format!("{WORKER}:x")));
    }
}

#[test]
fn jit_blocks_are_accepted_both_ways() {
    for root in roots() {
        let theirs = their_identity::create_identity_token(
            ALICE.into(),
            KeyPair::from(&root.private()),
            hour(),
        )
        .unwrap();
        let with_our_jit = token::add_jit(&theirs, unix_now()).unwrap();
        assert!(their_verify(&with_our_jit, &root, ALICE));
        let view = token::inspect(&with_our_jit, None, unix_now()).unwrap();
        assert_eq!(view.blocks[1].role, token::BlockRole::Jit);

        let ours = our_identity(&root, ALICE, true, None);
        let with_their_jit =
            their_identity::create_short_lived_identity_token(ours, root.public()).unwrap();
        assert!(our_verify(&with_their_jit, &root, ALICE).is_ok());
        let view = token::inspect(&with_their_jit, None, unix_now()).unwrap();
        assert_eq!(view.blocks[1].role, token::BlockRole::Jit);

        // A JIT block in the past expires the token, and we say so.
        let stale = token::add_jit(&theirs, unix_now() - 60).unwrap();
        assert!(!their_verify(&stale, &root, ALICE));
        let err = our_verify(&stale, &root, ALICE).unwrap_err();
        assert!(
            matches!(err.denials()[0].reason, DenialReason::Expired { .. }),
            "{err}"
        );
    }
}

#[test]
fn domain_restricted_identities_agree() {
    let realm = "uri:urn:mycompany";
    let user = "uri:urn:mycompany:admin-user";
    for root in roots() {
        let ours = our_identity(&root, user, false, Some(realm));
        assert!(settled(|| {
            their_identity::IdentityVerifier::new(ours.clone(), root.public())
                .with_identity(user.into())
                .with_domain(realm.into())
                .ensure_subject_in_domain()
                .verify()
        }));
        assert!(
            !their_verify(&ours, &root, user),
            "domain token without a domain must fail"
        );

        let theirs = their_identity::create_domain_restricted_identity_token(
            user.into(),
            realm.into(),
            KeyPair::from(&root.private()),
            hour(),
        )
        .unwrap();
        let mut check = IdentityVerification::new(Actor::Named(user), unix_now());
        check.domain = Some(realm);
        check.ensure_subject_in_domain = true;
        let verified = token::verify_identity(&theirs, &root.public(), &check).unwrap();
        assert_eq!(verified.domain.as_deref(), Some(realm));

        let err = our_verify(&theirs, &root, user).unwrap_err();
        assert!(
            matches!(&err.denials()[0].reason, DenialReason::DomainMismatch { domain, presented: None } if domain == realm),
            "{err}"
        );
        check.domain = Some("uri:urn:other");
        let err = token::verify_identity(&theirs, &root.public(), &check).unwrap_err();
        assert!(
            err.to_string()
                .contains("restricted to domain uri:urn:mycompany"),
            "{err}"
        );
    }
}

fn claims(subject: &str) -> AuthzClaims {
    AuthzClaims {
        subject: subject.into(),
        resource: "production_api".into(),
        operation: "read".into(),
        expires_at: unix_now() + 300,
        ..AuthzClaims::default()
    }
}

fn authz_check<'a>(subject: &'a str) -> AuthzVerification<'a> {
    AuthzVerification::new(Some(subject), "production_api", "read", unix_now())
}

#[test]
fn authorization_tokens_verify_in_both_directions() {
    for root in roots() {
        let ours = token::mint_authz(&root, &claims(ALICE)).unwrap();
        assert!(settled(|| their_authz::verify_token_local(
            &ours,
            root.public(),
            ALICE,
            "production_api",
            "read"
        )));
        assert!(
            their_authz::verify_token_local(&ours, root.public(), ALICE, "production_api", "write")
                .is_err()
        );
        assert!(
            their_authz::verify_token_local(
                &ours,
                root.public(),
                "uri:urn:company:alice2",
                "production_api",
                "read"
            )
            .is_err()
        );
        assert!(settled(|| their_authz::verify_capability_token_local(
            &ours,
            root.public(),
            "production_api",
            "read"
        )));

        let theirs = their_authz::create_token(
            ALICE.into(),
            "production_api".into(),
            "read".into(),
            KeyPair::from(&root.private()),
        )
        .unwrap();
        token::verify_authz(&theirs, &root.public(), &authz_check(ALICE)).unwrap();
        let capability = AuthzVerification::new(None, "production_api", "read", unix_now());
        token::verify_authz(&theirs, &root.public(), &capability).unwrap();
        let err = token::verify_authz(
            &theirs,
            &root.public(),
            &authz_check("uri:urn:company:alice2"),
        )
        .unwrap_err();
        assert!(
            matches!(err.denials()[0].reason, DenialReason::RightsDenied { .. }),
            "{err}"
        );
        let mut wrong_op = authz_check(ALICE);
        wrong_op.operation = "write";
        let err = token::verify_authz(&theirs, &root.public(), &wrong_op).unwrap_err();
        assert!(
            err.to_string().contains("to write on production_api"),
            "{err}"
        );
    }
}

#[test]
fn domain_authorization_tokens_agree() {
    let realm = "uri:urn:mycompany";
    for root in roots() {
        let mut spec = claims("uri:urn:mycompany:u1");
        spec.domain = Some(realm.into());
        let ours = token::mint_authz(&root, &spec).unwrap();
        let verify_theirs = |domain: Option<&str>| {
            settled(|| {
                let mut v = their_authz::AuthorizationVerifier::new(
                    ours.clone(),
                    root.public(),
                    "uri:urn:mycompany:u1".into(),
                    "production_api".into(),
                    "read".into(),
                );
                if let Some(d) = domain {
                    v = v.with_domain(d.into());
                }
                v.verify()
            })
        };
        assert!(verify_theirs(Some(realm)));
        assert!(!verify_theirs(None));
        assert!(!verify_theirs(Some("uri:urn:other")));

        let theirs = their_authz::HessraAuthorization::new(
            "uri:urn:mycompany:u1".into(),
            "production_api".into(),
            "read".into(),
            hour(),
        )
        .domain_restricted(realm.into())
        .issue(&root)
        .unwrap();
        let mut check = authz_check("uri:urn:mycompany:u1");
        assert!(token::verify_authz(&theirs, &root.public(), &check).is_err());
        check.domain = Some(realm);
        token::verify_authz(&theirs, &root.public(), &check).unwrap();
    }
}

#[test]
fn service_chains_agree() {
    let auth = keys::generate(keys::KeyAlgorithm::Ed25519);
    let payment = keys::generate(keys::KeyAlgorithm::Ed25519);
    let orders = keys::generate(keys::KeyAlgorithm::Ed25519);
    let ours_nodes = vec![
        token::service_node("auth_service", &auth),
        token::service_node("payment_service", &payment),
        token::service_node("order_service", &orders),
    ];
    let their_nodes: Vec<their_authz::ServiceNode> = ours_nodes
        .iter()
        .map(|n| their_authz::ServiceNode {
            component: n.component.clone(),
            public_key: n.public_key.clone(),
        })
        .collect();
    for root in roots() {
        let mut spec = claims(ALICE);
        spec.resource = "order_service".into();
        spec.service_chain = ours_nodes.clone();
        let ours = token::mint_authz(&root, &spec).unwrap();

        // Attested by auth_service with their code: payment_service may accept it.
        let bytes = hessra_token_core::decode_token(&ours).unwrap();
        let attested =
            their_authz::add_service_node_attestation(bytes, root.public(), "order_service", &auth)
                .unwrap();
        let attested = hessra_token_core::encode_token(&attested);
        let theirs_ok = |token: &str, component: &str| {
            settled(|| {
                their_authz::verify_service_chain_token_local(
                    token,
                    root.public(),
                    ALICE,
                    "order_service",
                    "read",
                    their_nodes.clone(),
                    Some(component.into()),
                )
            })
        };
        assert!(theirs_ok(&attested, "payment_service"));
        assert!(!theirs_ok(&attested, "order_service"));

        // The same with our attestation and our verifier.
        let ours_attested = token::add_service_attestation(&ours, &auth, "order_service").unwrap();
        assert!(theirs_ok(&ours_attested, "payment_service"));
        let verify = |token: &str, component: &str| {
            let mut check = authz_check(ALICE);
            check.resource = "order_service";
            check.service_chain = Some((&ours_nodes, Some(component)));
            token::verify_authz(token, &root.public(), &check)
        };
        verify(&attested, "payment_service").unwrap();
        let err = verify(&attested, "order_service").unwrap_err();
        assert!(
            matches!(&err.denials()[0].reason, DenialReason::ServiceAttestationMissing { component, .. } if component == "payment_service"),
            "{err}"
        );
        let both =
            token::add_service_attestation(&ours_attested, &payment, "order_service").unwrap();
        verify(&both, "order_service").unwrap();
        assert!(theirs_ok(&both, "order_service"));
        let err = verify(&both, "shipping").unwrap_err();
        assert!(err.to_string().contains("not in the chain"), "{err}");
    }
}

#[test]
fn prefix_restricted_stubs_agree() {
    let attenuator = keys::generate(keys::KeyAlgorithm::Ed25519);
    let attenuator_key = keys::key_string(&attenuator.public());
    for root in roots() {
        let mut spec = claims("uri:urn:mycompany:u1");
        spec.prefix_attenuator_key = Some(attenuator_key.clone());
        let stub = token::mint_authz(&root, &spec).unwrap();

        let mut check = authz_check("uri:urn:mycompany:u1");
        check.prefix = Some("tenant/42/");
        let err = token::verify_authz(&stub, &root.public(), &check).unwrap_err();
        assert!(
            matches!(err.denials()[0].reason, DenialReason::PrefixNotAttested),
            "{err}"
        );

        let theirs_restricted = their_authz::add_prefix_restriction_to_token(
            stub.clone(),
            root.public(),
            "tenant/42/".into(),
            KeyPair::from(&attenuator.private()),
        )
        .unwrap();
        token::verify_authz(&theirs_restricted, &root.public(), &check).unwrap();

        let ours_restricted =
            token::add_prefix_restriction(&stub, &attenuator, "tenant/42/").unwrap();
        let theirs_verify = |prefix: &str| {
            settled(|| {
                their_authz::AuthorizationVerifier::new(
                    ours_restricted.clone(),
                    root.public(),
                    "uri:urn:mycompany:u1".into(),
                    "production_api".into(),
                    "read".into(),
                )
                .with_prefix(prefix.into())
                .verify()
            })
        };
        assert!(theirs_verify("tenant/42/"));
        assert!(!theirs_verify("tenant/43/"));
        check.prefix = Some("tenant/43/");
        let err = token::verify_authz(&ours_restricted, &root.public(), &check).unwrap_err();
        assert!(
            matches!(err.denials()[0].reason, DenialReason::PrefixMismatch { .. }),
            "{err}"
        );

        // A prefix block signed by anyone else does not activate the stub.
        let impostor = keys::generate(keys::KeyAlgorithm::Ed25519);
        let forged = token::add_prefix_restriction(&stub, &impostor, "tenant/42/").unwrap();
        check.prefix = Some("tenant/42/");
        assert!(token::verify_authz(&forged, &root.public(), &check).is_err());
    }
}

#[test]
fn multi_party_signoffs_agree() {
    let signer = keys::generate(keys::KeyAlgorithm::Ed25519);
    for root in roots() {
        let mut spec = claims(ALICE);
        spec.signers = vec![token::Signer {
            component: "compliance".into(),
            public_key: keys::key_string(&signer.public()),
        }];
        let ours = token::mint_authz(&root, &spec).unwrap();
        let err = token::verify_authz(&ours, &root.public(), &authz_check(ALICE)).unwrap_err();
        assert!(
            matches!(&err.denials()[0].reason, DenialReason::SignoffMissing { namespace } if namespace == "compliance"),
            "{err}"
        );
        assert!(
            their_authz::verify_token_local(&ours, root.public(), ALICE, "production_api", "read")
                .is_err()
        );

        let signed_by_them = their_authz::add_multi_party_attestation_to_token(
            ours.clone(),
            root.public(),
            "compliance".into(),
            KeyPair::from(&signer.private()),
        )
        .unwrap();
        token::verify_authz(&signed_by_them, &root.public(), &authz_check(ALICE)).unwrap();
        let signed_by_us = token::add_signoff(&ours, &signer, "compliance").unwrap();
        assert!(settled(|| their_authz::verify_token_local(
            &signed_by_us,
            root.public(),
            ALICE,
            "production_api",
            "read"
        )));
    }
}

#[test]
fn rejections_agree() {
    for root in roots() {
        let ours = our_identity(&root, ALICE, true, None);
        let theirs = their_identity::create_identity_token(
            ALICE.into(),
            KeyPair::from(&root.private()),
            hour(),
        )
        .unwrap();
        for token in [&ours, &theirs] {
            // Wrong identity, and the prefix attack: alice2 is not under alice.
            for stranger in [
                "uri:urn:company:bob",
                "uri:urn:company:alice2",
                "uri:urn:company",
            ] {
                assert!(!their_verify(token, &root, stranger), "{stranger}");
                let err = our_verify(token, &root, stranger).unwrap_err();
                assert!(
                    err.to_string()
                        .contains(&format!("presented as {stranger}")),
                    "{err}"
                );
            }
            // Another root key.
            let other = keys::generate(keys::KeyAlgorithm::Secp256r1);
            assert!(!their_verify(token, &other, ALICE));
            let wrong = our_verify(token, &other, ALICE);
            assert!(
                matches!(wrong, Err(TokenError::UnknownRootKey { .. })),
                "{wrong:?}"
            );
        }
        // Expired.
        let past = TokenTimeConfig {
            start_time: Some(unix_now() - 7200),
            duration: 3600,
        };
        let expired = their_identity::create_identity_token(
            ALICE.into(),
            KeyPair::from(&root.private()),
            past,
        )
        .unwrap();
        assert!(!their_verify(&expired, &root, ALICE));
        let err = our_verify(&expired, &root, ALICE).unwrap_err();
        assert!(err.to_string().contains("expired at"), "{err}");
        assert!(err.to_string().contains("60 minutes ago"), "{err}");
        let ours_expired = token::mint_identity(
            &root,
            &IdentityClaims {
                subject: ALICE.into(),
                expires_at: unix_now() - 10,
                delegatable: true,
                domain: None,
            },
        )
        .unwrap();
        assert!(!their_verify(&ours_expired, &root, ALICE));
    }
}

/// A server with a key set names its signing key by `root_key_id`. The published crates, which
/// verify with the one key `/public_key` serves, accept such tokens and delegate them; we verify
/// them by id against a ring where that key is retiring, and theirs (no id) by trying each key.
#[test]
fn tokens_naming_their_root_key_interoperate() {
    let (old, new) = (
        keys::generate(keys::KeyAlgorithm::Ed25519),
        roots().remove(0),
    );
    let signing = token::RootKey {
        id: Some(7),
        pair: keys::generate(keys::KeyAlgorithm::Ed25519),
    };
    let ours = token::mint_identity(&signing, &identity_claims(ALICE)).unwrap();
    assert_eq!(
        token::inspect(&ours, None, unix_now()).unwrap().root_key_id,
        Some(7)
    );
    assert!(their_verify(&ours, &signing.pair, ALICE));
    let delegated = retried(|| {
        their_identity::add_identity_attenuation_to_token(
            ours.clone(),
            AGENT.into(),
            signing.pair.public(),
            hour(),
        )
    });

    let ring = token::KeyRing::new()
        .verifying(8, new.public())
        .verifying(7, signing.pair.public())
        .unusable(6, token::Unusable::Retired);
    let verified = token::verify_identity(
        &delegated,
        &ring,
        &IdentityVerification::new(Actor::Effective, unix_now()),
    )
    .unwrap();
    assert_eq!(verified.identity, AGENT);

    let theirs =
        their_identity::create_identity_token(ALICE.into(), KeyPair::from(&old.private()), hour())
            .unwrap();
    let without_old = token::KeyRing::new().verifying(8, new.public());
    let err = token::verify_identity(
        &theirs,
        &without_old,
        &IdentityVerification::new(Actor::Named(ALICE), unix_now()),
    )
    .unwrap_err();
    assert!(matches!(err, TokenError::UnknownRootKey { .. }), "{err}");
    let with_old = without_old.verifying(5, old.public());
    assert!(
        token::verify_identity(
            &theirs,
            &with_old,
            &IdentityVerification::new(Actor::Named(ALICE), unix_now()),
        )
        .is_ok(),
        "a token without an id tries every verifying key"
    );

    let retired = token::KeyRing::new()
        .verifying(8, new.public())
        .unusable(7, token::Unusable::Retired);
    let err = token::verify_identity(
        &ours,
        &retired,
        &IdentityVerification::new(Actor::Named(ALICE), unix_now()),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the token was signed by root key 7, which has been retired"
    );
}

fn identity_claims(subject: &str) -> IdentityClaims {
    IdentityClaims {
        subject: subject.into(),
        expires_at: unix_now() + 3600,
        delegatable: true,
        domain: None,
    }
}

/// A refreshed token names its ancestors in `lineage(generation, "id", key)` facts of its
/// authority block. The published crates verify it (for its identity, a sub-identity, and as a
/// bearer token), inspect it as the same identity and expiry, and delegate from it; we read the
/// lineage back through their delegation.
#[test]
fn refreshed_tokens_with_lineage_interoperate() {
    for root in roots() {
        let t0 = our_identity(&root, ALICE, true, None);
        let lineage = vec![
            token::Ancestor {
                generation: 0,
                revocation_id: token::revocation_ids(&t0).unwrap().blocks[0].clone(),
                root_key_id: Some(1),
            },
            token::Ancestor {
                generation: 1,
                revocation_id: "ab".repeat(64),
                root_key_id: None,
            },
        ];
        let expires_at = unix_now() + 3600;
        let refreshed = token::mint_refreshed_identity(
            &root,
            &IdentityClaims {
                subject: ALICE.into(),
                expires_at,
                delegatable: true,
                domain: None,
            },
            &lineage,
        )
        .unwrap();
        assert!(their_verify(&refreshed, &root, ALICE));
        assert!(their_verify(&refreshed, &root, AGENT));
        assert!(settled(|| their_identity::verify_bearer_token(
            refreshed.clone(),
            root.public()
        )));
        let inspected =
            retried(|| their_identity::inspect_identity_token(refreshed.clone(), root.public()));
        assert_eq!(inspected.identity, ALICE);
        assert_eq!(inspected.expiry, Some(expires_at));
        assert!(!inspected.is_delegated);

        let delegated = retried(|| {
            their_identity::add_identity_attenuation_to_token(
                refreshed.clone(),
                AGENT.into(),
                root.public(),
                hour(),
            )
        });
        let verified = our_verify(&delegated, &root, AGENT).unwrap();
        assert_eq!(verified.chain, vec![ALICE, AGENT]);
        let ours = token::inspect(&delegated, Some(&root.public()), unix_now()).unwrap();
        assert_eq!(ours.lineage, lineage);
        assert!(
            ours.blocks[0].shape.other.is_empty(),
            "lineage is a known shape: {:?}",
            ours.blocks[0].shape.other
        );
    }
}
