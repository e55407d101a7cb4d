//! What the policy says about identity tokens holds when they are used, not only when they are
//! issued: Bearer use stops when `identity_token_enabled` is turned off, every configured
//! identity along a delegation chain limits what is delegated below it, a service chain is the
//! one configured for the client the token names, and durations are bounded. Real server over
//! TLS, policy edited with the same edits the console makes.

mod support;

use hessra_console::policy::{self, Edit, EditSession, Setting};
use hessra_console::token::{self, Delegation, IdentityClaims, clock::unix_now, keys};
use serde_json::json;
use support::{Demo, post};

const ALICE: &str = "uri:urn:company:alice";
const AGENT: &str = "uri:urn:company:alice:agent1";
const CI: &str = "uri:urn:company:ci";
const DEPLOY: &str = "uri:urn:company:ci:deploy";

fn edited(edits: Vec<Edit>) -> impl FnOnce(&str) -> Option<String> {
    move |text| {
        let mut session = EditSession::open(text, unix_now()).unwrap();
        for edit in &edits {
            session.apply(edit).unwrap();
        }
        Some(session.text().to_string())
    }
}

fn identity_token(demo: &Demo, subject: &str) -> String {
    let root = keys::read_private_key_file(&demo.ws.root_key).unwrap();
    token::mint_identity(
        &root,
        &IdentityClaims {
            subject: subject.into(),
            expires_at: unix_now() + 600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap()
}

fn delegate(token: &str, to: &str) -> String {
    token::delegate(token, None, &Delegation::new(to, unix_now() + 300))
        .unwrap()
        .token
}

async fn bearer_request(demo: &Demo, token: &str, resource: &str) -> (u16, String) {
    let (status, body) = post(
        &demo.anonymous(),
        &demo.url("/request_token"),
        json!({ "resource": resource, "operation": "read" }),
        Some(token),
    )
    .await;
    (
        status,
        body["response_msg"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_use_stops_when_identity_tokens_are_turned_off() {
    let demo = Demo::start_with(
        edited(vec![Edit::SetIdentityTokens {
            identity: ALICE.into(),
            enabled: false,
            duration: None,
        }]),
        None,
    )
    .await;
    // A token issued while alice's identity tokens were enabled.
    let issued = identity_token(&demo, ALICE);
    let (status, message) = bearer_request(&demo, &issued, "production_api").await;
    assert_eq!(status, 401, "{message}");
    assert!(
        message.contains("identity tokens are not enabled for uri:urn:company:alice"),
        "{message}"
    );
    // Her delegate's token is alice's token too.
    let (status, message) =
        bearer_request(&demo, &delegate(&issued, AGENT), "production_api").await;
    assert_eq!(status, 401, "{message}");
    // By certificate she is still served.
    let (status, _) = post(
        &demo.as_identity(ALICE),
        &demo.url("/request_token"),
        json!({ "resource": "production_api", "operation": "read" }),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_configured_identity_limits_what_is_delegated_below_it() {
    let demo = Demo::start_with(
        edited(vec![Edit::SetSetting {
            identity: AGENT.into(),
            setting: Setting::MaxDelegationDepth,
            value: Some(1),
        }]),
        None,
    )
    .await;
    // ci:deploy has delegatable = false in the demo policy: a token ci delegated to it cannot
    // be handed on by deploy.
    let ci = identity_token(&demo, CI);
    let deploy = delegate(&ci, DEPLOY);
    let (status, message) = bearer_request(&demo, &deploy, "production_api").await;
    assert_ne!(status, 401, "deploy itself is fine: {message}");
    let onward = delegate(&deploy, &format!("{DEPLOY}:helper"));
    let (status, message) = bearer_request(&demo, &onward, "production_api").await;
    assert_eq!(status, 401, "{message}");
    assert!(
        message.contains("uri:urn:company:ci:deploy may not delegate (delegatable = false)"),
        "{message}"
    );

    // alice:agent1 allows one level below it, whatever alice allows.
    let alice = identity_token(&demo, ALICE);
    let one = delegate(&delegate(&alice, AGENT), &format!("{AGENT}:a"));
    let (status, message) = bearer_request(&demo, &one, "production_api").await;
    assert!(
        !message.contains("max_delegation_depth"),
        "one level below agent1 is allowed: {status} {message}"
    );
    let two = delegate(&one, &format!("{AGENT}:a:b"));
    let (status, message) = bearer_request(&demo, &two, "production_api").await;
    assert_eq!(status, 401, "{message}");
    assert!(
        message.contains("uri:urn:company:alice:agent1 allows 1 level(s) of delegation below it"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_chain_is_the_one_configured_for_the_tokens_client() {
    let (gate, billing) = (
        keys::generate(keys::KeyAlgorithm::Ed25519),
        keys::generate(keys::KeyAlgorithm::Ed25519),
    );
    let node = |identity: &str, component: &str, key: &token::KeyPair| Edit::AddServiceNode {
        identity: identity.into(),
        resource: "orders".into(),
        component: component.into(),
        public_key: keys::key_string(&key.public()),
    };
    let grant = |identity: &str| Edit::Grant {
        identity: identity.into(),
        resource: "orders".into(),
        operation: "read".into(),
    };
    // alice comes first in the policy and lists `orders` with her own chain.
    let demo = Demo::start_with(
        edited(vec![
            grant(ALICE),
            node(ALICE, "gate", &gate),
            grant(CI),
            node(CI, "billing", &billing),
        ]),
        None,
    )
    .await;
    let (status, body) = post(
        &demo.as_identity(CI),
        &demo.url("/request_token"),
        json!({ "resource": "orders", "operation": "read" }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let issued = body["token"].as_str().unwrap().to_string();
    let attested = token::add_service_attestation(&issued, &billing, "orders").unwrap();
    let verify = |token: &str, component: Option<&str>| json!({ "token": token, "subject": CI, "resource": "orders", "component": component });
    let (status, body) = post(
        &demo.anonymous(),
        &demo.url("/verify_service_chain_token"),
        verify(&attested, None),
        None,
    )
    .await;
    assert_eq!(status, 200, "ci's own chain (billing) applies: {body}");
    let (status, body) = post(
        &demo.anonymous(),
        &demo.url("/verify_service_chain_token"),
        verify(&issued, None),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["response_msg"].as_str().unwrap().contains("billing"),
        "{body}"
    );
}

#[test]
fn durations_are_bounded_when_the_policy_is_read() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/clients.toml"
    ))
    .unwrap()
    .replacen(
        "identity_token_duration = 28800 # 8 hours",
        "identity_token_duration = 9223372036854775807",
        1,
    );
    let loaded = policy::load(&text, unix_now()).unwrap();
    let finding = loaded
        .findings
        .iter()
        .find(|f| f.code == "invalid-duration")
        .expect("an invalid-duration finding");
    assert!(
        finding.message.contains("at most 31536000"),
        "{}",
        finding.message
    );
    assert!(loaded.has_errors());
}
