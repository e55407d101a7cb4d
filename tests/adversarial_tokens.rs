//! Hostile tokens against the real server over TLS: each is refused with the right status and a
//! message that says why, the refusal is in the audit feed, and the server keeps serving others.
//! Tokens are crafted with biscuit-auth directly (the attacker's tool), not with our helpers.

mod support;

use biscuit_auth::macros::block;
use biscuit_auth::{Biscuit, KeyPair};
use hessra_console::token::{self, Delegation, IdentityClaims, clock::unix_now, keys};
use prost::Message;
use serde_json::{Value, json};
use support::{Demo, get, post};

const ALICE: &str = "uri:urn:company:alice";
const AGENT: &str = "uri:urn:company:alice:agent1";
const OPS: &str = "uri:urn:company:ops";

struct Arena {
    demo: Demo,
    root: KeyPair,
}

impl Arena {
    async fn new() -> Arena {
        let demo = Demo::start().await;
        let root = keys::read_private_key_file(&demo.ws.root_key).unwrap();
        Arena { demo, root }
    }

    fn mint(&self, subject: &str, expires_in: i64) -> String {
        mint_with(&self.root, subject, expires_in)
    }

    fn delegate(&self, token: &str, to: &str, expires_in: i64) -> String {
        token::delegate(
            token,
            Some(&self.root.public()),
            &Delegation::new(to, unix_now() + expires_in),
        )
        .unwrap()
        .token
    }

    fn parse(&self, text: &str) -> Biscuit {
        Biscuit::from(token::decode(text).unwrap(), self.root.public()).unwrap()
    }

    /// Asks for an authorization token with `bearer`; returns status and message.
    async fn request(&self, bearer: &str, operation: &str) -> (u16, String) {
        let (status, body) = post(
            &self.demo.anonymous(),
            &self.demo.url("/request_token"),
            json!({ "resource": "production_api", "operation": operation }),
            Some(bearer),
        )
        .await;
        (status, message(&body))
    }

    /// The request is refused with one of `statuses`, its message mentions `why`, the audit
    /// feed's newest event records the refusal, and an honest client is still served.
    async fn refused(
        &self,
        name: &str,
        (status, message): (u16, String),
        statuses: &[u16],
        why: &str,
    ) {
        assert!(
            statuses.contains(&status),
            "{name}: status {status}: {message}"
        );
        assert!(
            message.to_lowercase().contains(&why.to_lowercase()),
            "{name}: {message:?} does not say {why:?}"
        );
        let (_, audit) = get(&self.demo.as_identity(OPS), &self.demo.url("/audit")).await;
        let last = audit["events"].as_array().unwrap().last().unwrap().clone();
        assert_ne!(
            last["result"], "allow",
            "{name}: audited as allowed: {last}"
        );
        assert_eq!(
            last["reason"].as_str().unwrap(),
            message,
            "{name}: audit {last}"
        );
        let honest = self.mint(ALICE, 600);
        assert_eq!(
            self.request(&honest, "read").await.0,
            200,
            "{name}: stopped serving"
        );
    }
}

fn mint_with(root: &KeyPair, subject: &str, expires_in: i64) -> String {
    token::mint_identity(
        root,
        &IdentityClaims {
            subject: subject.into(),
            expires_at: unix_now() + expires_in,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap()
}

fn message(body: &Value) -> String {
    body["response_msg"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Appends a block the way anyone holding the token can (a fresh key, no root key needed).
fn append(token: &Biscuit, block: biscuit_auth::builder::BlockBuilder) -> String {
    token::encode(&token.append(block).unwrap().to_vec().unwrap())
}

/// A block in Hessra's delegation shape (what the server reads as "delegated to `to`").
fn delegation_block(to: &str) -> biscuit_auth::builder::BlockBuilder {
    delegation_block_until(to, unix_now() + 300)
}

fn delegation_block_until(to: &str, expires_at: i64) -> biscuit_auth::builder::BlockBuilder {
    block!(
        r#"check if actor($a), $a == {to} || $a.starts_with({to} + ":");
           check if time($time), $time < {expires_at};"#
    )
}

/// Rewrites the serialized token's blocks (reorder, remove, duplicate) keeping every signature.
fn rewrite(
    text: &str,
    change: impl FnOnce(&mut Vec<biscuit_auth::format::schema::SignedBlock>),
) -> String {
    let bytes = token::decode(text).unwrap();
    let mut raw = biscuit_auth::format::schema::Biscuit::decode(bytes.as_slice()).unwrap();
    change(&mut raw.blocks);
    token::encode(&raw.encode_to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_altered_tokens_are_refused() {
    let arena = Arena::new().await;
    let foreign = mint_with(&KeyPair::new(), ALICE, 600);
    arena
        .refused(
            "foreign root key",
            arena.request(&foreign, "read").await,
            &[401],
            "root key",
        )
        .await;

    // A byte changed anywhere: never accepted, always explained. Twenty-five refusals without
    // credentials in a second are a flood the audit trail summarises after twenty, so they go
    // to a second server on the same workspace (same keys and policy), and the cases below can
    // each find their own audit record.
    let genuine = arena.delegate(&arena.mint(ALICE, 600), AGENT, 300);
    let bytes = token::decode(&genuine).unwrap();
    let flooded = arena
        .demo
        .start_synced(std::time::Duration::from_secs(3600))
        .await;
    for offset in (0..bytes.len()).step_by(bytes.len() / 24) {
        let mut tampered = bytes.clone();
        tampered[offset] ^= 0x5a;
        let (status, body) = post(
            &arena.demo.anonymous(),
            &format!("{}/request_token", flooded.url()),
            json!({ "resource": "production_api", "operation": "read" }),
            Some(&token::encode(&tampered)),
        )
        .await;
        let message = message(&body);
        assert!(
            matches!(status, 400 | 401),
            "byte {offset}: {status} {message}"
        );
        assert!(!message.is_empty(), "byte {offset}: no explanation");
    }

    // Blocks removed (a downgrade to the parent identity), reordered, duplicated.
    let deeper = arena.delegate(&genuine, &format!("{AGENT}:worker"), 60);
    let removed = rewrite(&deeper, |blocks| {
        blocks.pop();
    });
    arena
        .refused(
            "last block removed",
            arena.request(&removed, "read").await,
            &[400, 401],
            "",
        )
        .await;
    let reordered = rewrite(&deeper, |blocks| blocks.swap(0, 1));
    arena
        .refused(
            "blocks reordered",
            arena.request(&reordered, "read").await,
            &[400, 401],
            "",
        )
        .await;
    let duplicated = rewrite(&deeper, |blocks| blocks.push(blocks[0].clone()));
    arena
        .refused(
            "block duplicated",
            arena.request(&duplicated, "read").await,
            &[400, 401],
            "",
        )
        .await;
    let oversized = "A".repeat(70_000);
    let (status, _) = arena.request(&oversized, "read").await;
    assert!(matches!(status, 400 | 401 | 413), "oversized: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_cannot_escape_the_hierarchy_or_add_rights() {
    let arena = Arena::new().await;
    let alice = arena.parse(&arena.mint(ALICE, 600));
    // alice2 shares alice's prefix but is not below her.
    let prefix = append(&alice, delegation_block("uri:urn:company:alice2"));
    arena
        .refused(
            "prefix attack",
            arena.request(&prefix, "read").await,
            &[401],
            "alice2",
        )
        .await;
    let lateral = append(&alice, delegation_block("uri:urn:company:ci"));
    arena
        .refused(
            "lateral delegation",
            arena.request(&lateral, "read").await,
            &[401],
            "uri:urn:company:ci",
        )
        .await;
    let agent = arena.parse(&arena.mint(AGENT, 600));
    let upward = append(&agent, delegation_block(ALICE));
    arena
        .refused(
            "upward delegation",
            arena.request(&upward, "read").await,
            &[401],
            ALICE,
        )
        .await;

    // A delegation block that states a right is refused before evaluation: appended blocks may
    // assert only signed attestations (and a right there would grant nothing anyway).
    let mut smuggled = delegation_block(AGENT);
    smuggled = smuggled
        .fact(biscuit_auth::macros::fact!(
            r#"right({AGENT}, "production_api", "write")"#
        ))
        .unwrap();
    let smuggled = append(&alice, smuggled);
    arena
        .refused(
            "rights in a delegation block",
            arena.request(&smuggled, "write").await,
            &[401],
            "right(…)",
        )
        .await;

    // Too deep: eleven delegations below alice.
    let mut deep = arena.mint(ALICE, 600);
    let mut identity = ALICE.to_string();
    for level in 0..11 {
        identity = format!("{identity}:l{level}");
        deep = token::encode(
            &arena
                .parse(&deep)
                .append(delegation_block(&identity))
                .unwrap()
                .to_vec()
                .unwrap(),
        );
    }
    arena
        .refused(
            "too deep",
            arena.request(&deep, "read").await,
            &[401],
            "depth",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_at_every_level_and_exhausting_datalog_are_explained() {
    let arena = Arena::new().await;
    let expired_root = arena.mint(ALICE, -60);
    arena
        .refused(
            "expired authority",
            arena.request(&expired_root, "read").await,
            &[401],
            "expired",
        )
        .await;
    let live = arena.parse(&arena.mint(ALICE, 600));
    let expired_delegation = append(&live, delegation_block_until(AGENT, unix_now() - 30));
    arena
        .refused(
            "expired delegation",
            arena.request(&expired_delegation, "read").await,
            &[401],
            "expired",
        )
        .await;

    // Datalog written to exhaust the evaluator: refused before evaluation (appended blocks may
    // not define rules), never as a decision on the token's merits. tests/hostile_datalog.rs
    // has the same attack at an attacker's size.
    let exhausting = append(
        &live,
        block!(
            r#"n(0); n(1); n(2); n(3); n(4); n(5); n(6); n(7); n(8); n(9);
               p($a, $b, $c, $d) <- n($a), n($b), n($c), n($d);"#
        ),
    );
    arena
        .refused(
            "exhausting rule",
            arena.request(&exhausting, "read").await,
            &[401],
            "refused before evaluation",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_realm_token_is_refused_outside_its_domain() {
    let arena = Arena::new().await;
    let (status, body) = post(
        &arena.demo.as_identity("uri:urn:mycompany"),
        &arena.demo.url("/mint_identity_token"),
        json!({ "subject": "uri:urn:mycompany:admin-user", "duration": 300 }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let minted = body["token"].as_str().unwrap().to_string();
    let (status, body) = post(
        &arena.demo.anonymous(),
        &arena.demo.url("/request_token"),
        json!({ "resource": "api", "operation": "read", "domain": "uri:urn:othercompany" }),
        Some(&minted),
    )
    .await;
    arena
        .refused(
            "outside its domain",
            (status, message(&body)),
            &[401, 403],
            "domain",
        )
        .await;
}
