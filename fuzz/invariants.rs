//! What every fuzz target asserts, one function per target, shared by the cargo-fuzz binaries
//! (nightly) and `tests/fuzz_corpus.rs` (stable), which replays the committed corpus. Each takes
//! raw bytes and panics only when an invariant breaks; refusals must be error values with a
//! message. Everything runs at the fixed instant `NOW` with the fixed `root` key so seeds stay
//! valid and runs repeat.

use std::fmt::Display;
use std::sync::OnceLock;

use hessra_console::policy::{
    self, DelegationTree, Edit, EditSession, NewRevocation, RevocationList, revocations,
};
use hessra_console::token::{
    self, Actor, AuthzClaims, AuthzVerification, Delegation, DelegationPolicy, IdentityClaims,
    IdentityVerification, KeyPair, SignatureStatus, TokenError, TokenKind, keys,
};
use hessra_console::wire;

/// The instant every check runs at (2027-01-15); seeds expire an hour later.
pub const NOW: i64 = 1_800_000_000;

/// The fixture policy the request checks decide with.
pub const FIXTURE_POLICY: &str = include_str!("../fixtures/clients.toml");

/// The realm in the fixture policy.
pub const REALM: &str = "uri:urn:mycompany";

/// A target's checks over one input.
pub type Target = fn(&[u8]);

/// Every target by name, as `cargo fuzz run NAME` and the corpus directories name it.
pub const TARGETS: [(&str, Target); 6] = [
    ("token", token),
    ("token_screen", token_screen),
    ("clients_toml", clients_toml),
    ("delegation_policy", delegation_policy),
    ("revocations_toml", revocations_toml),
    ("wire_requests", wire_requests),
];

/// A fixed Ed25519 root key for fuzzing only: seeds are signed with it so mutations reach the
/// verifier's paths beyond the signature check.
const ROOT_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJcXjxIqujq+vXXmgv1DzBJbZDJ3RugIHjFtDuQpYnU6
-----END PRIVATE KEY-----";

pub fn root() -> &'static KeyPair {
    static ROOT: OnceLock<KeyPair> = OnceLock::new();
    ROOT.get_or_init(|| keys::parse_private_key_pem(ROOT_PEM).expect("the constant key is valid"))
}

/// A delegatable identity token for alice, signed by `root`, valid at `NOW`.
pub fn alice_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let claims = IdentityClaims {
            subject: "uri:urn:company:alice".into(),
            expires_at: NOW + 3600,
            delegatable: true,
            domain: None,
        };
        token::mint_identity(root(), &claims).expect("alice is a valid identity")
    })
}

fn fixture() -> &'static policy::Policy {
    static POLICY: OnceLock<policy::Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        policy::load(FIXTURE_POLICY, NOW)
            .expect("the fixture parses")
            .policy
    })
}

/// A refusal must say something a user can act on.
fn explained(error: &impl Display) {
    assert!(
        !error.to_string().trim().is_empty(),
        "an error without a message"
    );
}

/// The result of a check that must succeed; `None` when a Datalog run limit stopped it, which is
/// no verdict (a loaded machine may hit the time limit).
fn must_hold<T>(result: Result<T, TokenError>, what: &str) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(TokenError::RunLimit(_)) => None,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// A check that must fail: anything but success (a run limit included) is a refusal.
fn must_refuse<T: std::fmt::Debug>(result: Result<T, TokenError>, what: &str) {
    match result {
        Ok(value) => panic!("{what} was accepted: {value:?}"),
        Err(e) => explained(&e),
    }
}

// --- token ---------------------------------------------------------------------------------

/// Token bytes (and, when they are text, the text itself) through parsing, inspection and both
/// verifiers; whatever verifies is checked against what the threat model promises.
pub fn token(data: &[u8]) {
    token_text(&token::encode(data));
    if let Ok(text) = std::str::from_utf8(data) {
        token_text(text);
    }
}

fn token_text(text: &str) {
    let root = root().public();
    let unverified = token::parse_unverified(text);
    let inspection = token::inspect(text, Some(&root), NOW);
    let verified = token::parse_verified(text, &root);
    if let Err(e) = &unverified {
        explained(e);
        assert!(
            inspection.is_err(),
            "inspect read what parse_unverified refused: {e}"
        );
    }
    if let Err(e) = &inspection {
        explained(e);
    }
    if let Err(e) = &verified {
        explained(e);
    }
    if let Ok(parsed) = &unverified {
        let bytes = parsed.to_vec().expect("a parsed token serializes");
        let again = token::parse_unverified(&token::encode(&bytes))
            .expect("a serialized token parses back");
        assert_eq!(again.block_count(), parsed.block_count());
        assert_eq!(
            again.revocation_identifiers(),
            parsed.revocation_identifiers()
        );
    }
    let Ok(inspection) = inspection else {
        return;
    };
    assert!(!inspection.blocks.is_empty());
    assert_eq!(
        inspection.signature == SignatureStatus::Valid,
        verified.is_ok(),
        "inspection and verifier disagree about the signatures: {:?}",
        inspection.signature
    );
    identity_verification(text, &inspection);
    authz_verification(text, &inspection);
}

fn identity_verification(text: &str, inspection: &token::Inspection) {
    let root = root().public();
    let effective = IdentityVerification::new(Actor::Effective, NOW);
    let verified = match token::verify_identity(text, &root, &effective) {
        Ok(verified) => verified,
        Err(e) => return explained(&e),
    };
    assert_eq!(inspection.kind, TokenKind::Identity);
    assert_eq!(inspection.signature, SignatureStatus::Valid);
    assert_ne!(inspection.expired, Some(true), "an expired token verified");
    assert_eq!(
        inspection.subject.as_deref(),
        Some(verified.subject.as_str())
    );
    assert_eq!(
        inspection.effective_identity.as_deref(),
        Some(verified.identity.as_str())
    );
    assert!(token::is_same_or_descendant(
        &verified.identity,
        &verified.subject
    ));
    assert!(verified.depth <= token::DEFAULT_MAX_DELEGATION_DEPTH);
    let identity = verified.identity.as_str();
    let as_named = |name: &str| {
        token::verify_identity(
            text,
            &root,
            &IdentityVerification::new(Actor::Named(name), NOW),
        )
    };
    must_hold(as_named(identity), "verifying as the effective identity");
    let sibling = format!("{identity}x");
    must_refuse(as_named(&sibling), "a prefix sibling");
    if identity != verified.subject {
        must_refuse(as_named(&verified.subject), "acting as the delegator");
    }
    jit(text, identity);
    if verified.delegatable && verified.depth < token::DEFAULT_MAX_DELEGATION_DEPTH {
        delegation(text, identity, verified.depth);
    }
}

/// A JIT block never changes who the token is, and ends its life `JIT_SECONDS` after `NOW`.
fn jit(text: &str, identity: &str) {
    let root = root().public();
    let Some(jitted) = must_hold(token::add_jit(text, NOW), "adding a JIT block") else {
        return;
    };
    let at = |now| {
        token::verify_identity(
            &jitted,
            &root,
            &IdentityVerification::new(Actor::Effective, now),
        )
    };
    if let Some(verified) = must_hold(at(NOW), "a JIT token at once") {
        assert_eq!(verified.identity, identity);
    }
    must_refuse(
        at(NOW + token::JIT_SECONDS),
        "a JIT token after its JIT expiry",
    );
}

/// A verified delegatable token delegates one level down, and the result cannot act upward.
fn delegation(text: &str, identity: &str, depth: usize) {
    let root = root().public();
    let target = format!("{identity}:fuzz");
    let request = Delegation::new(&target, NOW + 60);
    let Some(delegated) = must_hold(
        token::delegate(text, Some(&root), &request),
        "delegating a verified token",
    ) else {
        return;
    };
    assert_eq!(delegated.depth, depth + 1);
    let verify = |actor| {
        token::verify_identity(
            &delegated.token,
            &root,
            &IdentityVerification::new(actor, NOW),
        )
    };
    if let Some(verified) = must_hold(verify(Actor::Effective), "the delegated token") {
        assert_eq!(verified.identity, target);
    }
    must_refuse(
        verify(Actor::Named(identity)),
        "a delegated token acting as its delegator",
    );
}

fn authz_verification(text: &str, inspection: &token::Inspection) {
    let root = root().public();
    let rights: Vec<_> = inspection.blocks[0].shape.rights.clone();
    for right in &rights {
        let mut check =
            AuthzVerification::new(Some(&right.subject), &right.resource, &right.operation, NOW);
        check.domain = inspection.domain.as_deref();
        let verified = match token::verify_authz(text, &root, &check) {
            Ok(verified) => verified,
            Err(e) => {
                explained(&e);
                continue;
            }
        };
        assert_eq!(inspection.kind, TokenKind::Authorization);
        assert_eq!(inspection.signature, SignatureStatus::Valid);
        assert_ne!(inspection.expired, Some(true), "an expired token verified");
        assert_eq!(verified.resource, right.resource);
        let other = format!("{}x", right.operation);
        check.operation = &other;
        if !rights.iter().any(|r| r.operation == other) {
            must_refuse(
                token::verify_authz(text, &root, &check),
                "an operation not granted",
            );
        }
    }
    let capability = AuthzVerification::new(None, "production_api", "read", NOW);
    if let Err(e) = token::verify_authz(text, &root, &capability) {
        explained(&e);
    }
}

// --- clients.toml --------------------------------------------------------------------------

/// Policy text through load, validation, the delegation tree, decisions and lossless edits with
/// undo.
pub fn clients_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = match policy::load(text, NOW) {
        Ok(loaded) => loaded,
        Err(finding) => {
            assert!(
                finding.location.is_some(),
                "a syntax error without a place: {finding}"
            );
            return explained(&finding);
        }
    };
    assert_eq!(loaded.document.text(), text, "loading changed the text");
    for finding in &loaded.findings {
        explained(&finding.message);
        if let Some(at) = finding.location {
            assert!(at.line >= 1 && at.column >= 1, "{finding}");
        }
    }
    let drawn = DelegationTree::build(&loaded.policy, &loaded.findings).render();
    assert!(
        drawn.is_empty() == loaded.policy.clients.is_empty(),
        "the tree draws nothing for a policy with clients, or something for none"
    );
    decisions_match_permissions(&loaded.policy);
    edits_apply_or_leave_the_text(text, &loaded.policy);
}

/// `decide` and `permissions` are the server's and the console's answers: they must agree.
fn decisions_match_permissions(policy: &policy::Policy) {
    for client in policy.clients.iter().take(8) {
        let Some(permissions) = policy::permissions(policy, &client.identity) else {
            panic!(
                "a configured client has no permissions: {}",
                client.identity
            );
        };
        for resource in client.resources.iter().take(4) {
            for operation in resource
                .operations
                .iter()
                .take(4)
                .chain(["fuzz".to_string()].iter())
            {
                let request = policy::Request {
                    identity: client.identity.clone(),
                    resource: resource.name.clone(),
                    operation: operation.clone(),
                    domain: None,
                };
                let decision = policy::decide(policy, &request);
                explained(&decision.reason);
                assert_eq!(
                    decision.allowed,
                    permissions.allows(&resource.name, operation),
                    "{request}: {}",
                    decision.reason
                );
            }
        }
    }
}

fn edits_apply_or_leave_the_text(text: &str, policy: &policy::Policy) {
    let first = policy.clients.first().map(|c| c.identity.clone());
    let first = first.unwrap_or_else(|| "uri:urn:company:alice".into());
    let edits = [
        Edit::Grant {
            identity: first.clone(),
            resource: "fuzz".into(),
            operation: "read".into(),
        },
        Edit::AddClient {
            identity: "uri:urn:fuzz:added".into(),
        },
        Edit::RemoveClient {
            identity: first.clone(),
        },
        Edit::RenameClient {
            from: first.clone(),
            to: format!("{first}:renamed"),
        },
        Edit::SetIdentityTokens {
            identity: first.clone(),
            enabled: true,
            duration: Some(600),
        },
    ];
    let mut session = EditSession::open(text, NOW).expect("the text loaded above");
    for edit in &edits {
        match session.apply(edit) {
            Err(e) => {
                explained(&e);
                assert_eq!(
                    session.text(),
                    text,
                    "a refused edit changed the text: {edit:?}"
                );
            }
            Ok(()) => {
                let edited = policy::load(session.text(), NOW)
                    .unwrap_or_else(|f| panic!("{edit:?} produced text that does not parse: {f}"));
                edit_took_effect(edit, policy, &edited.policy);
                assert!(session.undo(), "an applied edit can be undone");
                assert_eq!(
                    session.text(),
                    text,
                    "undo did not restore the text: {edit:?}"
                );
            }
        }
    }
}

/// The typed view after an edit shows what the edit said.
fn edit_took_effect(edit: &Edit, before: &policy::Policy, after: &policy::Policy) {
    match edit {
        Edit::Grant {
            identity,
            resource,
            operation,
        } => {
            let now = policy::permissions(after, identity).unwrap_or_default();
            assert!(now.allows(resource, operation), "{edit:?} did not grant");
        }
        Edit::AddClient { identity } => {
            assert!(after.client(identity).is_some(), "{edit:?} added nothing");
        }
        Edit::RenameClient { to, .. } => {
            assert!(after.client(to).is_some(), "{edit:?} did not rename");
        }
        Edit::RemoveClient { identity } => {
            let count =
                |p: &policy::Policy| p.clients.iter().filter(|c| &c.identity == identity).count();
            assert_eq!(
                count(after) + 1,
                count(before),
                "{edit:?} removed {} entries",
                count(before) - count(after)
            );
        }
        _ => {}
    }
}

// --- delegation policies -------------------------------------------------------------------

/// Delegation-policy Datalog: parsed or located; a parsed policy delegates, and the token it
/// makes reads back.
pub fn delegation_policy(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match DelegationPolicy::parse(source) {
        Ok(policy) => policy,
        Err(TokenError::InvalidPolicy {
            line,
            column,
            message,
        }) => {
            assert!(line >= 1 && column >= 1 && !message.is_empty());
            assert!(
                line <= source.matches('\n').count() + 1,
                "line {line} is past the end"
            );
            return;
        }
        Err(other) => panic!("unexpected error kind: {other}"),
    };
    assert_eq!(policy.source(), source);
    let root = root().public();
    let target = "uri:urn:company:alice:agent";
    let mut request = Delegation::new(target, NOW + 60);
    request.policy = Some(&policy);
    let Some(delegated) = must_hold(
        token::delegate(alice_token(), Some(&root), &request),
        "delegating with a parsed policy",
    ) else {
        return;
    };
    let inspection = must_hold(
        token::inspect(&delegated.token, Some(&root), NOW),
        "reading back a token delegated with a parsed policy",
    );
    if let Some(inspection) = inspection {
        assert_eq!(inspection.signature, SignatureStatus::Valid);
        assert_eq!(inspection.effective_identity.as_deref(), Some(target));
    }
    let mut check = IdentityVerification::new(Actor::Effective, NOW);
    check.resource = Some("production_api");
    check.operation = Some("read");
    match token::verify_identity(&delegated.token, &root, &check) {
        Ok(verified) => assert_eq!(verified.identity, target),
        Err(e) => explained(&e),
    }
}

// --- token_screen --------------------------------------------------------------------------

/// The longest an admitted token may take to verify here. The screen's budget is about 10 ms in
/// a release build (BENCHMARKS.md); this bound is a hundred times that, so that a sanitizer or a
/// loaded machine never trips it and only an explosion the screen let through does.
const ADMITTED_VERIFY_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Datalog for a block an attacker appends to a genuine token (the first byte chooses a
/// first-party or a third-party block, and an identity or an authorization token): the screen
/// never panics, explains every refusal and agrees with the verifier and the inspector; what it
/// admits stays within its cost budget and verifies in bounded time.
pub fn token_screen(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(source) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(block) = biscuit_auth::builder::BlockBuilder::new().code(source) else {
        return;
    };
    let base = if mode & 2 == 0 {
        alice_token()
    } else {
        alice_authz_token()
    };
    let Ok(unverified) =
        biscuit_auth::UnverifiedBiscuit::from(token::decode(base).expect("a fixture"))
    else {
        return;
    };
    let appended = if mode & 1 == 0 {
        unverified.append(block)
    } else {
        unverified
            .third_party_request()
            .and_then(|request| request.create_block(&root().private(), block))
            .and_then(|signed| signed.serialize())
            .and_then(|bytes| unverified.append_third_party(&bytes))
    };
    let Ok(bytes) = appended.and_then(|t| t.to_vec()) else {
        return;
    };
    let text = token::encode(&bytes);
    let root = root().public();
    let mut check = IdentityVerification::new(Actor::Named("uri:urn:company:alice"), NOW);
    check.resource = Some("production_api");
    check.operation = Some("read");
    match token::screen(&bytes) {
        Ok(screened) => {
            assert!(screened.cost <= token::COST_BUDGET, "{screened:?}");
            let start = std::time::Instant::now();
            let verified = token::verify_identity(&text, &root, &check);
            let took = start.elapsed();
            assert!(
                took < ADMITTED_VERIFY_LIMIT,
                "an admitted token took {took:?}: {verified:?}"
            );
            assert!(
                !matches!(verified, Err(TokenError::Screened { .. })),
                "the verifier refused what the screen admitted"
            );
            if let Err(e) = verified {
                explained(&e);
            }
            let inspection =
                token::inspect(&text, Some(&root), NOW).expect("an admitted token reads");
            assert_eq!(inspection.refused, None);
            if let Some(plain) = &screened.plain {
                plain_agrees_with_biscuit_auth(plain, &bytes);
            }
        }
        Err(TokenError::Screened { block, reason }) => {
            assert!(!reason.is_empty());
            assert!(
                block.is_none_or(|b| b <= 1),
                "block {block:?} of a two-block token"
            );
            match token::verify_identity(&text, &root, &check) {
                Err(TokenError::Screened { reason: again, .. }) => assert_eq!(again, reason),
                other => panic!("the verifier did not refuse what the screen refused: {other:?}"),
            }
            let inspection =
                token::inspect(&text, Some(&root), NOW).expect("a screened token reads");
            assert!(inspection.refused.is_some_and(|r| r.contains(&reason)));
        }
        Err(other @ TokenError::AmbiguousString { .. }) => explained(&other),
        Err(other) => panic!("unexpected refusal of a well-formed token: {other}"),
    }
}

/// Whenever the plain reading of a token allows a request (`src/token/plain.rs`), biscuit-auth's
/// own authorizer, given the facts a verifier adds for it, allows it too: for identity and
/// authorization requests, before and after the fixtures expire, with and without a domain.
fn plain_agrees_with_biscuit_auth(plain: &token::PlainChecks, bytes: &[u8]) {
    use biscuit_auth::macros::{authorizer, fact, rule};
    use token::{Ambient, AmbientSubject};
    let biscuit = biscuit_auth::Biscuit::from(bytes, root().public()).expect("signed by root");
    let actors = [
        None,
        Some("uri:urn:company:alice"),
        Some("uri:urn:company:alice:agent"),
        Some("uri:urn:company:bob"),
    ];
    let subjects = [
        AmbientSubject::None,
        AmbientSubject::Fact("uri:urn:company:alice"),
        AmbientSubject::FromRights,
    ];
    for actor in actors {
        for now in [NOW, NOW + 4000] {
            for domain in [None, Some("example.com")] {
                for subject in subjects {
                    let ambient = Ambient {
                        now,
                        actor,
                        domain,
                        resource: Some("production_api"),
                        operation: Some("read"),
                        subject,
                    };
                    if !plain.allows(&ambient) {
                        continue;
                    }
                    let decided = (|| {
                        let mut builder = authorizer!(
                            r#"time({now}); resource("production_api"); operation("read"); allow if true;"#
                        );
                        if let Some(actor) = actor {
                            builder = builder.fact(fact!(r#"actor({actor})"#))?;
                        }
                        if let Some(domain) = domain {
                            builder = builder.fact(fact!(r#"domain({domain})"#))?;
                        }
                        builder = match subject {
                            AmbientSubject::None => builder,
                            AmbientSubject::Fact(s) => builder.fact(fact!(r#"subject({s})"#))?,
                            AmbientSubject::FromRights => builder.rule(rule!(
                                r#"subject($sub) <- right($sub, "production_api", "read")"#
                            ))?,
                        };
                        builder
                            .set_limits(token::run_limits())
                            .build(&biscuit)?
                            .authorize()
                    })();
                    // biscuit-auth's time limit is wall time, which a fuzzing machine under
                    // sanitizers can exceed for any token; it is no decision about the token.
                    let timed_out = matches!(
                        decided,
                        Err(biscuit_auth::error::Token::RunLimit(
                            biscuit_auth::error::RunLimit::Timeout
                        ))
                    );
                    assert!(
                        decided.is_ok() || timed_out,
                        "the plain reading allows {ambient:?}, biscuit-auth does not: {decided:?}"
                    );
                }
            }
        }
    }
}

/// An authorization token for alice (read on production_api), signed by `root`, valid at `NOW`.
pub fn alice_authz_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let claims = AuthzClaims {
            subject: "uri:urn:company:alice".into(),
            resource: "production_api".into(),
            operation: "read".into(),
            expires_at: NOW + 3600,
            ..AuthzClaims::default()
        };
        token::mint_authz(root(), &claims).expect("alice's claims are valid")
    })
}

// --- revocations.toml ----------------------------------------------------------------------

/// `revocations.toml` text: every problem a finding, every entry findable, and an append to a
/// clean file keeps every entry and adds one.
pub fn revocations_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (list, findings) = RevocationList::load(text);
    for finding in &findings {
        explained(&finding.message);
    }
    if findings.iter().any(|f| f.code == "syntax") {
        assert!(
            list.is_empty(),
            "a file that does not parse yielded entries"
        );
    }
    let ids: Vec<String> = list.entries.iter().map(|e| e.id.clone()).collect();
    for (i, entry) in list.entries.iter().enumerate() {
        revocations::check_id(&entry.id).expect("loaded ids are well formed");
        let (block, found) = list.first_revoked(&ids[i..]).expect("an entry is revoked");
        assert_eq!((block, &found.id), (0, &entry.id));
    }
    let entry = NewRevocation {
        id: "f0".repeat(32),
        reason: "fuzz".into(),
        by: None,
        at: NOW,
    };
    let appended = revocations::append(text, &entry);
    let has_errors = findings.iter().any(|f| f.is_error());
    match appended {
        Err(why) => {
            explained(&why);
            assert!(
                has_errors || ids.contains(&entry.id),
                "a clean file refused an append: {why}"
            );
        }
        Ok(new_text) => {
            assert!(!has_errors, "an append went into a file with errors");
            let (after, new_findings) = RevocationList::load(&new_text);
            assert!(
                new_findings.iter().all(|f| !f.is_error()),
                "the append broke the file: {new_findings:?}"
            );
            let after_ids: Vec<&str> = after.entries.iter().map(|e| e.id.as_str()).collect();
            let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
            expected.push(&entry.id);
            assert_eq!(after_ids, expected);
        }
    }
}

// --- server request bodies -----------------------------------------------------------------

/// A request body as each endpoint's wire type: it parses or is refused, what parses survives a
/// round trip, and what the fixture policy allows is issued as a token that verifies.
pub fn wire_requests(data: &[u8]) {
    roundtrip::<wire::IdentityTokenRequest>(data);
    roundtrip::<wire::RefreshIdentityTokenRequest>(data);
    roundtrip::<wire::VerifyServiceChainTokenRequest>(data);
    roundtrip::<wire::SignTokenRequest>(data);
    if let Some(request) = roundtrip::<wire::TokenRequest>(data) {
        allowed_requests_issue_tokens_that_verify(&request);
    }
    if let Some(request) = roundtrip::<wire::StubRequest>(data) {
        allowed_stubs_read_back(&request);
    }
    if let Some(request) = roundtrip::<wire::MintIdentityTokenRequest>(data) {
        realm_identities_verify(&request);
    }
    if let Some(request) = roundtrip::<wire::VerifyTokenRequest>(data) {
        let check = AuthzVerification::new(
            Some(&request.subject),
            &request.resource,
            &request.operation,
            NOW,
        );
        if let Err(e) = token::verify_authz(&request.token, &root().public(), &check) {
            explained(&e);
        }
    }
}

fn roundtrip<T>(data: &[u8]) -> Option<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let value: T = match serde_json::from_slice(data) {
        Ok(value) => value,
        Err(e) => {
            explained(&e);
            return None;
        }
    };
    let json = serde_json::to_value(&value).expect("wire types serialize");
    let again: T = serde_json::from_value(json.clone()).expect("serialized wire types parse");
    assert_eq!(
        serde_json::to_value(&again).expect("wire types serialize"),
        json
    );
    Some(value)
}

/// `/request_token`: for a configured caller and a realm subject, what `decide` allows is minted
/// and then verifies for exactly that request.
fn allowed_requests_issue_tokens_that_verify(request: &wire::TokenRequest) {
    for caller in ["uri:urn:company:alice", "uri:urn:mycompany:member-user"] {
        let decision = policy::decide(
            fixture(),
            &policy::Request {
                identity: caller.into(),
                resource: request.resource.clone(),
                operation: request.operation.clone(),
                domain: request.domain.clone(),
            },
        );
        explained(&decision.reason);
        if !decision.allowed {
            continue;
        }
        let claims = AuthzClaims {
            subject: caller.into(),
            resource: request.resource.clone(),
            operation: request.operation.clone(),
            expires_at: NOW + 300,
            domain: request.domain.clone(),
            ..AuthzClaims::default()
        };
        let minted = must_hold(
            token::mint_authz(root(), &claims),
            "minting an allowed request",
        );
        let Some(minted) = minted else { continue };
        let mut check =
            AuthzVerification::new(Some(caller), &request.resource, &request.operation, NOW);
        check.domain = request.domain.as_deref();
        must_hold(
            token::verify_authz(&minted, &root().public(), &check),
            "the token issued for an allowed request",
        );
    }
}

/// `/request_stub`: a stub the realm may issue for a subject is a token that reads back.
fn allowed_stubs_read_back(request: &wire::StubRequest) {
    // As the handler does: a target that is not an identity is a 400.
    if token::validate_identity(&request.target_identity).is_err()
        || keys::parse_key_string(&request.prefix_attenuator_key).is_err()
    {
        return;
    }
    let decision = policy::decide(
        fixture(),
        &policy::Request {
            identity: request.target_identity.clone(),
            resource: request.resource.clone(),
            operation: request.operation.clone(),
            domain: Some(REALM.into()),
        },
    );
    if !decision.allowed {
        return;
    }
    let claims = AuthzClaims {
        subject: request.target_identity.clone(),
        resource: request.resource.clone(),
        operation: request.operation.clone(),
        expires_at: NOW + 300,
        prefix_attenuator_key: Some(request.prefix_attenuator_key.clone()),
        ..AuthzClaims::default()
    };
    let Some(minted) = must_hold(
        token::mint_authz(root(), &claims),
        "minting an allowed stub",
    ) else {
        return;
    };
    must_hold(
        token::inspect(&minted, Some(&root().public()), NOW),
        "reading back a stub issued for an allowed request",
    );
}

/// `/mint_identity_token`: an identity the realm may mint verifies as itself, in the domain.
fn realm_identities_verify(request: &wire::MintIdentityTokenRequest) {
    if token::validate_identity(&request.subject).is_err()
        || !token::is_strict_descendant(&request.subject, REALM)
    {
        return;
    }
    let claims = IdentityClaims {
        subject: request.subject.clone(),
        expires_at: NOW + 600,
        delegatable: false,
        domain: Some(REALM.into()),
    };
    let Some(minted) = must_hold(
        token::mint_identity(root(), &claims),
        "minting a realm identity",
    ) else {
        return;
    };
    let mut check = IdentityVerification::new(Actor::Named(&request.subject), NOW);
    check.domain = Some(REALM);
    check.ensure_subject_in_domain = true;
    if let Some(verified) = must_hold(
        token::verify_identity(&minted, &root().public(), &check),
        "a realm-minted identity",
    ) {
        assert_eq!(verified.identity, request.subject);
    }
}
