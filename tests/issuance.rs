//! The server's issuance decisions called directly, without a server or TLS: what each kind of
//! caller is issued, every reason for a refusal and the kind of refusal it is, lifetimes and
//! their caps, revoked and expired credentials, realm and domain restrictions.

use hessra_console::policy::{self, RevocationList};
use hessra_console::server::issue::{
    Caller, Class, Grant, Issuer, Method, PolicySnapshot, Refusal, SignerConfig,
};
use hessra_console::token::{
    self, Actor, AuthzVerification, Delegation, IdentityVerification, KeyPair, PublicKey, RootKey,
    TokenError, keys,
};
use hessra_console::wire::{
    IdentityTokenRequest, IdentityTokenResponse, MintIdentityTokenRequest,
    RefreshIdentityTokenRequest, SignTokenRequest, StubRequest, TokenRequest, VerifyTokenRequest,
};

const NOW: i64 = 1_800_000_000;
const ALICE: &str = "uri:urn:company:alice";
const CI: &str = "uri:urn:company:ci";
const REALM: &str = "uri:urn:mycompany";
const BOB: &str = "uri:urn:mycompany:bob";
const ADMIN: &str = "uri:urn:mycompany:admin-user";

const POLICY: &str = r#"
[[clients]]
identifier = { type = "san_uri", value = "uri:urn:company:alice" }
resources = [
  { name = "production_api", operations = ["read", "write"] },
  { name = "payments", operations = ["read", "write"], signers = [
    { component = "compliance", authorization_service = "https://compliance.example", public_key = "SIGNER_KEY", operations = ["write"] },
  ] },
]
identity_token_enabled = true
identity_token_duration = 28800
authorization_token_duration = 300

[[clients]]
identifier = { type = "san_uri", value = "uri:urn:company:ci" }
resources = [ { name = "build", operations = ["read"] } ]

[[clients]]
identifier = { type = "san_uri", value = "uri:urn:mycompany" }
identity_token_enabled = true
identity_token_duration = 600
authorization_token_duration = 120
[clients.domain.default_role]
name = "member"
resources = [ { name = "api", operations = ["read"] } ]
[[clients.domain.roles]]
name = "admin"
resources = [ { name = "api", operations = ["read", "write"] } ]
[[clients.domain.role_assignments]]
subject = "uri:urn:mycompany:admin-user"
role = "admin"
"#;

/// One policy, one root key, one signer key; decisions at any time.
struct World {
    snapshot: PolicySnapshot,
    root: RootKey,
    /// The root's public key: what presented tokens verify with.
    public: PublicKey,
    signer: SignerConfig,
    max_refresh_generations: u32,
}

impl World {
    fn new() -> World {
        World::with_revocations(RevocationList::default())
    }

    fn with_revocations(revoked: RevocationList) -> World {
        let signer = KeyPair::new();
        let text = POLICY.replace("SIGNER_KEY", &keys::key_string(&signer.public()));
        let loaded = policy::load(&text, NOW).expect("the test policy parses");
        assert!(
            !loaded.has_errors(),
            "the test policy is valid: {:?}",
            loaded.findings
        );
        let pair = KeyPair::new();
        World {
            snapshot: PolicySnapshot::new(loaded.policy, revoked, "test".into(), NOW),
            public: pair.public(),
            root: RootKey { id: None, pair },
            signer: SignerConfig {
                component: "compliance".into(),
                key: signer,
            },
            max_refresh_generations: token::DEFAULT_MAX_REFRESH_GENERATIONS,
        }
    }

    /// The same keys, with a revocation list.
    fn revoking(self, token: &str) -> World {
        let ids = token::revocation_ids(token).expect("the token has revocation ids");
        let last = ids.blocks.last().expect("a token has a block");
        let (revoked, findings) = RevocationList::load(&format!(
            "[[revoked]]\nid = \"{last}\"\nreason = \"laptop stolen\"\n"
        ));
        assert!(findings.is_empty(), "{findings:?}");
        World {
            snapshot: PolicySnapshot::new(
                self.snapshot.policy.clone(),
                revoked,
                "revoked".into(),
                NOW,
            ),
            ..self
        }
    }

    fn at(&self, now: i64) -> Issuer<'_> {
        Issuer {
            snapshot: &self.snapshot,
            signing: &self.root,
            verifier: &self.public,
            now,
            max_refresh_generations: self.max_refresh_generations,
        }
    }

    fn identity_token(&self, identity: &str) -> String {
        let grant = self
            .at(NOW)
            .first_identity_token(&certified(identity), &IdentityTokenRequest::default())
            .expect("an identity token is issued");
        grant.body.token.expect("the grant carries the token")
    }
}

fn certified(identity: &str) -> Caller {
    Caller::certified(identity.to_string())
}

fn bearer(identity: &str, domain: Option<&str>) -> Caller {
    Caller {
        identity: identity.to_string(),
        method: Method::Bearer,
        token_domain: domain.map(str::to_string),
        revocation_id: None,
    }
}

fn asking(identifier: serde_json::Value) -> IdentityTokenRequest {
    IdentityTokenRequest {
        identifier: Some(identifier),
    }
}

fn refused<T: std::fmt::Debug>(result: Result<Grant<T>, Refusal>) -> Refusal {
    result.expect_err("the decision refuses")
}

fn lifetime(grant: &Grant<IdentityTokenResponse>) -> u64 {
    grant
        .body
        .expires_in
        .expect("an identity grant says its lifetime")
}

fn identity_valid_at(world: &World, token: &str, now: i64) -> Result<String, TokenError> {
    token::verify_identity(
        token,
        &world.public,
        &IdentityVerification::new(Actor::Bearer, now),
    )
    .map(|verified| verified.subject)
}

// ---- the first identity token ----

#[test]
fn a_certified_client_gets_an_identity_token_for_its_cap_when_it_names_no_lifetime() {
    let world = World::new();
    let grant = world
        .at(NOW)
        .first_identity_token(&certified(ALICE), &IdentityTokenRequest::default())
        .unwrap();
    assert_eq!(lifetime(&grant), 28_800);
    assert_eq!(grant.body.identity.as_deref(), Some(ALICE));
    assert_eq!(grant.reason, "identity token issued for 28800 s");
    let token = grant.body.token.unwrap();
    assert_eq!(
        identity_valid_at(&world, &token, NOW + 28_799).unwrap(),
        ALICE
    );
    assert!(identity_valid_at(&world, &token, NOW + 28_801).is_err());
}

#[test]
fn a_lifetime_asked_as_digits_or_a_number_is_granted_up_to_the_cap() {
    let world = World::new();
    let issuer = world.at(NOW);
    let ask = |value| {
        lifetime(
            &issuer
                .first_identity_token(&certified(ALICE), &asking(value))
                .unwrap(),
        )
    };
    assert_eq!(ask(serde_json::json!("60")), 60);
    assert_eq!(ask(serde_json::json!(90)), 90);
    assert_eq!(ask(serde_json::json!(999_999)), 28_800, "capped");
    assert_eq!(ask(serde_json::json!(0)), 28_800, "zero asks for the cap");
}

#[test]
fn a_certified_client_may_name_itself_but_not_another_identity() {
    let world = World::new();
    let issuer = world.at(NOW);
    assert!(
        issuer
            .first_identity_token(&certified(ALICE), &asking(serde_json::json!(ALICE)))
            .is_ok()
    );
    let refusal =
        refused(issuer.first_identity_token(&certified(ALICE), &asking(serde_json::json!(CI))));
    assert_eq!(
        refusal,
        Refusal::RequestedAnother {
            certified: ALICE.into(),
            requested: CI.into()
        }
    );
    assert_eq!(refusal.class(), Class::Forbidden);
    assert_eq!(
        refusal.to_string(),
        format!("Identity mismatch: the certificate is for {ALICE} but {CI} was requested")
    );
}

#[test]
fn the_first_identity_token_needs_a_certificate() {
    let world = World::new();
    let refusal = refused(
        world
            .at(NOW)
            .first_identity_token(&bearer(ALICE, None), &IdentityTokenRequest::default()),
    );
    assert_eq!(refusal, Refusal::CertificateRequired);
    assert_eq!(refusal.class(), Class::Unauthenticated);
}

#[test]
fn identity_tokens_are_refused_to_unconfigured_clients_and_clients_without_them() {
    let world = World::new();
    let issuer = world.at(NOW);
    let unknown = refused(issuer.first_identity_token(
        &certified("uri:urn:company:mallory"),
        &IdentityTokenRequest::default(),
    ));
    assert_eq!(
        unknown.to_string(),
        "uri:urn:company:mallory is not configured in the policy"
    );
    assert_eq!(unknown.class(), Class::Forbidden);
    let disabled =
        refused(issuer.first_identity_token(&certified(CI), &IdentityTokenRequest::default()));
    assert_eq!(disabled, Refusal::IdentityTokensDisabled(CI.into()));
    assert_eq!(disabled.class(), Class::Forbidden);
}

// ---- refresh ----

fn refresh(
    world: &World,
    now: i64,
    certified: Option<&str>,
    current: &str,
) -> Result<Grant<IdentityTokenResponse>, Refusal> {
    let issuer = world.at(now);
    let presented = issuer.refresh_caller(certified, current)?;
    assert_eq!(presented.caller.method, Method::Bearer);
    issuer.refreshed_identity_token(
        &presented,
        &RefreshIdentityTokenRequest {
            current_token: current.to_string(),
            identifier: None,
        },
    )
}

#[test]
fn a_valid_identity_token_is_refreshed_into_one_that_names_it() {
    let world = World::new();
    let current = world.identity_token(ALICE);
    let grant = refresh(&world, NOW + 100, Some(ALICE), &current).unwrap();
    assert_eq!(
        grant.reason,
        "identity token issued for 28800 s, refresh generation 1"
    );
    let next = grant.body.token.unwrap();
    assert_eq!(
        identity_valid_at(&world, &next, NOW + 28_850).unwrap(),
        ALICE
    );
    let ids = token::revocation_ids(&next).unwrap();
    assert_eq!(
        ids.lineage.len(),
        1,
        "the successor names the token it replaced"
    );
}

#[test]
fn refreshes_stop_at_the_configured_number_of_generations() {
    let mut world = World::new();
    world.max_refresh_generations = 1;
    let first = world.identity_token(ALICE);
    let second = refresh(&world, NOW, None, &first)
        .unwrap()
        .body
        .token
        .unwrap();
    let refusal = refused(refresh(&world, NOW, None, &second));
    assert!(
        matches!(refusal, Refusal::Lineage(TokenError::RefreshLimit { .. })),
        "{refusal:?}"
    );
    assert_eq!(refusal.class(), Class::Forbidden);
}

#[test]
fn a_refresh_is_refused_for_a_token_of_another_identity_than_the_certificate() {
    let world = World::new();
    let current = world.identity_token(ALICE);
    let refusal = refused(refresh(&world, NOW, Some(CI), &current));
    assert_eq!(
        refusal,
        Refusal::TokenForAnother {
            certified: CI.into(),
            presented: ALICE.into()
        }
    );
}

#[test]
fn a_revoked_token_is_not_refreshed_and_the_caller_is_unauthenticated() {
    let world = World::new();
    let current = world.identity_token(ALICE);
    let world = world.revoking(&current);
    let refusal = refused(refresh(&world, NOW, None, &current));
    assert!(
        matches!(refusal, Refusal::RevokedCredential(_)),
        "{refusal:?}"
    );
    assert!(refusal.to_string().contains("laptop stolen"), "{refusal}");
    assert_eq!(refusal.class(), Class::Unauthenticated);
}

#[test]
fn an_expired_token_is_not_refreshed_and_garbage_is_malformed() {
    let world = World::new();
    let current = world.identity_token(ALICE);
    let expired = refused(refresh(&world, NOW + 28_801, None, &current));
    assert!(
        matches!(expired, Refusal::InvalidCurrentToken(_)),
        "{expired:?}"
    );
    assert_eq!(expired.class(), Class::Unauthenticated);
    let garbage = refused(refresh(&world, NOW, None, "not a token"));
    assert!(
        matches!(garbage, Refusal::InvalidCurrentToken(_)),
        "{garbage:?}"
    );
    assert_eq!(garbage.class(), Class::Malformed);
}

#[test]
fn delegated_and_domain_restricted_tokens_are_not_refreshed() {
    let world = World::new();
    let current = world.identity_token(ALICE);
    let delegated = token::delegate(
        &current,
        Some(&world.public),
        &Delegation::new("uri:urn:company:alice:agent1", NOW + 60),
    )
    .unwrap()
    .token;
    assert_eq!(
        refused(refresh(&world, NOW, None, &delegated)),
        Refusal::DelegatedRefresh
    );
    let minted = world
        .at(NOW)
        .realm_identity_token(
            &certified(REALM),
            &MintIdentityTokenRequest {
                subject: BOB.into(),
                duration: None,
            },
        )
        .unwrap()
        .body
        .token
        .unwrap();
    assert_eq!(
        refused(refresh(&world, NOW, None, &minted)),
        Refusal::DomainRestrictedRefresh
    );
}

// ---- realms minting identities ----

fn mint(subject: &str, duration: Option<u64>) -> MintIdentityTokenRequest {
    MintIdentityTokenRequest {
        subject: subject.into(),
        duration,
    }
}

#[test]
fn a_realm_mints_domain_restricted_identities_within_its_cap() {
    let world = World::new();
    let issuer = world.at(NOW);
    let grant = issuer
        .realm_identity_token(&certified(REALM), &mint(BOB, None))
        .unwrap();
    assert_eq!(lifetime(&grant), 600);
    assert_eq!(grant.reason, format!("minted {BOB} for 600 s"));
    let view = token::TokenView::read(
        &token::parse_unverified(grant.body.token.as_deref().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(view.domain(), Some(REALM));
    let shorter = issuer
        .realm_identity_token(&certified(REALM), &mint(BOB, Some(30)))
        .unwrap();
    assert_eq!(lifetime(&shorter), 30);
    let capped = issuer
        .realm_identity_token(&certified(REALM), &mint(BOB, Some(10_000)))
        .unwrap();
    assert_eq!(lifetime(&capped), 600);
}

#[test]
fn minting_is_refused_outside_the_realm_to_non_realms_and_to_restricted_callers() {
    let world = World::new();
    let issuer = world.at(NOW);
    let outside =
        refused(issuer.realm_identity_token(&certified(REALM), &mint("uri:urn:other:eve", None)));
    assert_eq!(
        outside.to_string(),
        format!(
            "uri:urn:other:eve is outside realm {REALM}'s domain; realm subjects are {REALM}:NAME"
        )
    );
    assert_eq!(outside.class(), Class::Forbidden);
    assert_eq!(
        refused(issuer.realm_identity_token(&certified(ALICE), &mint(BOB, None))),
        Refusal::NotARealm(ALICE.into())
    );
    assert_eq!(
        refused(issuer.realm_identity_token(&bearer(REALM, Some(REALM)), &mint(BOB, None))),
        Refusal::RestrictedMinter
    );
    let invalid =
        refused(issuer.realm_identity_token(&certified(REALM), &mint("no spaces allowed", None)));
    assert!(matches!(invalid, Refusal::InvalidSubject(_)), "{invalid:?}");
    assert_eq!(invalid.class(), Class::Malformed);
}

// ---- authorization tokens ----

fn ask(resource: &str, operation: &str, domain: Option<&str>) -> TokenRequest {
    TokenRequest {
        resource: resource.into(),
        operation: operation.into(),
        domain: domain.map(str::to_string),
    }
}

fn authz_valid_at(
    world: &World,
    token: &str,
    subject: &str,
    resource: &str,
    operation: &str,
    now: i64,
) -> bool {
    authz_valid_in(world, token, (subject, None), resource, operation, now)
}

/// Whether the token allows `subject` (in `domain`, for a realm's subjects) the operation.
fn authz_valid_in(
    world: &World,
    token: &str,
    (subject, domain): (&str, Option<&str>),
    resource: &str,
    operation: &str,
    now: i64,
) -> bool {
    let mut check = AuthzVerification::new(Some(subject), resource, operation, now);
    check.domain = domain;
    token::verify_authz(token, &world.public, &check).is_ok()
}

#[test]
fn an_allowed_request_gets_an_authorization_token_for_the_clients_lifetime() {
    let world = World::new();
    let grant = world
        .at(NOW)
        .authorization_token(&certified(ALICE), &ask("production_api", "read", None))
        .unwrap();
    assert_eq!(grant.body.response_msg, "Token issued");
    assert!(grant.body.pending_signoffs.is_none());
    let token = grant.body.token.unwrap();
    assert!(authz_valid_at(
        &world,
        &token,
        ALICE,
        "production_api",
        "read",
        NOW + 299
    ));
    assert!(!authz_valid_at(
        &world,
        &token,
        ALICE,
        "production_api",
        "read",
        NOW + 301
    ));
    assert!(!authz_valid_at(
        &world,
        &token,
        ALICE,
        "production_api",
        "write",
        NOW
    ));
}

#[test]
fn an_operation_the_policy_does_not_grant_is_refused_with_the_policys_reason() {
    let world = World::new();
    let refusal = refused(
        world
            .at(NOW)
            .authorization_token(&certified(ALICE), &ask("production_api", "delete", None)),
    );
    let Refusal::PolicyDenied(reason) = &refusal else {
        panic!("a policy denial: {refusal:?}");
    };
    assert!(reason.contains("delete"), "{reason}");
    assert_eq!(refusal.class(), Class::Forbidden);
}

#[test]
fn an_operation_with_signers_lists_the_pending_signoffs() {
    let world = World::new();
    let issuer = world.at(NOW);
    let write = issuer
        .authorization_token(&certified(ALICE), &ask("payments", "write", None))
        .unwrap();
    assert_eq!(
        write.body.response_msg,
        "Token issued with pending signoffs"
    );
    let pending = write.body.pending_signoffs.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].component, "compliance");
    let read = issuer
        .authorization_token(&certified(ALICE), &ask("payments", "read", None))
        .unwrap();
    assert!(
        read.body.pending_signoffs.is_none(),
        "the signer covers writes only"
    );
}

#[test]
fn realm_subjects_get_their_roles_rights_within_the_realms_lifetime() {
    let world = World::new();
    let issuer = world.at(NOW);
    let member = bearer(BOB, Some(REALM));
    let read = issuer
        .authorization_token(&member, &ask("api", "read", None))
        .unwrap();
    let token = read.body.token.unwrap();
    let bob = (BOB, Some(REALM));
    assert!(authz_valid_in(
        &world,
        &token,
        bob,
        "api",
        "read",
        NOW + 119
    ));
    assert!(!authz_valid_in(
        &world,
        &token,
        bob,
        "api",
        "read",
        NOW + 121
    ));
    assert!(
        !authz_valid_in(&world, &token, (BOB, None), "api", "read", NOW),
        "bound to the realm"
    );
    assert!(matches!(
        refused(issuer.authorization_token(&member, &ask("api", "write", None))),
        Refusal::PolicyDenied(_)
    ));
    let admin = bearer(ADMIN, Some(REALM));
    assert!(
        issuer
            .authorization_token(&admin, &ask("api", "write", None))
            .is_ok()
    );
}

#[test]
fn a_domain_restricted_caller_cannot_ask_in_another_domain() {
    let world = World::new();
    let refusal = refused(world.at(NOW).authorization_token(
        &bearer(BOB, Some(REALM)),
        &ask("api", "read", Some("uri:urn:other")),
    ));
    assert_eq!(
        refusal,
        Refusal::DomainMismatch {
            bound: REALM.into(),
            asked: "uri:urn:other".into()
        }
    );
    assert_eq!(refusal.class(), Class::Forbidden);
}

// ---- stubs ----

fn stub(target: &str, key: &str, duration: Option<u64>) -> StubRequest {
    StubRequest {
        target_identity: target.into(),
        resource: "api".into(),
        operation: "read".into(),
        prefix_attenuator_key: key.into(),
        duration,
    }
}

#[test]
fn a_realm_gets_stubs_for_its_subjects_and_nothing_else() {
    let world = World::new();
    let issuer = world.at(NOW);
    let key = keys::key_string(&KeyPair::new().public());
    let grant = issuer
        .stub_token(&certified(REALM), &stub(BOB, &key, None))
        .unwrap();
    assert_eq!(grant.body.expires_in, Some(120));
    let shorter = issuer
        .stub_token(&certified(REALM), &stub(BOB, &key, Some(10)))
        .unwrap();
    assert_eq!(shorter.body.expires_in, Some(10));
    let capped = issuer
        .stub_token(&certified(REALM), &stub(BOB, &key, Some(10_000)))
        .unwrap();
    assert_eq!(
        capped.body.expires_in,
        Some(120),
        "capped at the realm's lifetime"
    );
    assert_eq!(
        refused(issuer.stub_token(&certified(ALICE), &stub(BOB, &key, None))),
        Refusal::NotARealm(ALICE.into())
    );
    let bad_key = refused(issuer.stub_token(&certified(REALM), &stub(BOB, "ed25519/zz", None)));
    assert!(
        matches!(bad_key, Refusal::InvalidPrefixKey(_)),
        "{bad_key:?}"
    );
    assert_eq!(bad_key.class(), Class::Malformed);
    let bad_target = refused(issuer.stub_token(&certified(REALM), &stub("", &key, None)));
    assert!(
        matches!(bad_target, Refusal::InvalidTarget(_)),
        "{bad_target:?}"
    );
    assert!(bad_target.to_string().starts_with("target_identity: "));
}

// ---- verification and signoff ----

fn verify(token: &str, operation: &str) -> VerifyTokenRequest {
    VerifyTokenRequest {
        token: token.into(),
        subject: ALICE.into(),
        resource: "production_api".into(),
        operation: operation.into(),
    }
}

#[test]
fn verification_accepts_a_valid_token_and_says_why_it_refuses_others() {
    let world = World::new();
    let token = world
        .at(NOW)
        .authorization_token(&certified(ALICE), &ask("production_api", "read", None))
        .unwrap()
        .body
        .token
        .unwrap();
    let issuer = world.at(NOW + 10);
    assert_eq!(
        issuer.verify_token(&verify(&token, "read")).unwrap().reason,
        format!("token valid for {ALICE}")
    );
    let wrong = refused(issuer.verify_token(&verify(&token, "write")));
    assert!(matches!(wrong, Refusal::Rejected(_)), "{wrong:?}");
    assert_eq!(wrong.class(), Class::Forbidden, "a verdict on the token");
    let garbage = refused(issuer.verify_token(&verify("garbage", "read")));
    assert_eq!(garbage.class(), Class::Malformed);
    let world = world.revoking(&token);
    let revoked = refused(world.at(NOW).verify_token(&verify(&token, "read")));
    assert!(matches!(revoked, Refusal::Revoked(_)), "{revoked:?}");
    assert_eq!(revoked.class(), Class::Forbidden);
}

#[test]
fn a_signoff_needs_a_signer_and_adds_the_missing_signature() {
    let world = World::new();
    let token = world
        .at(NOW)
        .authorization_token(&certified(ALICE), &ask("payments", "write", None))
        .unwrap()
        .body
        .token
        .unwrap();
    let request = SignTokenRequest {
        token: token.clone(),
        resource: "payments".into(),
        operation: "write".into(),
    };
    let issuer = world.at(NOW);
    let refusal = refused(issuer.sign_off(&certified(ALICE), &request, None));
    assert_eq!(refusal, Refusal::NotASigner);
    assert_eq!(refusal.class(), Class::NotOffered);
    assert!(
        !authz_valid_at(&world, &token, ALICE, "payments", "write", NOW),
        "unsigned"
    );
    let signed = issuer
        .sign_off(&certified(ALICE), &request, Some(&world.signer))
        .unwrap()
        .body
        .signed_token
        .unwrap();
    assert!(authz_valid_at(
        &world, &signed, ALICE, "payments", "write", NOW
    ));
}
