//! Root key rotation against the real server over TLS: a key added as next is published but
//! does not sign; activating it moves signing (and `/public_key`) to it while tokens of the old
//! key keep working; retiring the old key is refused while tokens it signed live — naming them —
//! and a forced retirement refuses them with a message that says why. Changes made to the
//! manifest on disk (the CLI on a workspace) are picked up at the next sync tick; a broken
//! manifest is refused and the keys in use stay. A token refreshed from one a force-retired key
//! signed is refused with it, though a trusted key signed the refreshed token.

mod support;

use std::time::{Duration, Instant};

use hessra_console::keyset::KeySet;
use hessra_console::server::{self, RunningServer, ServerConfig};
use hessra_console::token::{self, keys};
use serde_json::{Value, json};
use support::{Demo, alice_identity_token, get, post, use_token};

const ALICE: &str = "uri:urn:company:alice";
const OPS: &str = "uri:urn:company:ops";

async fn key_change(
    demo: &Demo,
    server: &RunningServer,
    action: &str,
    body: Value,
) -> (u16, Value) {
    post(
        &demo.as_identity(OPS),
        &format!("{}/keys/{action}", server.url()),
        body,
        None,
    )
    .await
}

async fn served_public_key(demo: &Demo, server: &RunningServer) -> String {
    let (status, body) = get(&demo.anonymous(), &format!("{}/public_key", server.url())).await;
    assert_eq!(status, 200);
    body["public_key"].as_str().unwrap().to_string()
}

fn pem_of(set: &KeySet, id: u32) -> String {
    keys::public_key_pem(&set.public_key(id).unwrap()).unwrap()
}

fn root_key_id(token: &str) -> Option<u32> {
    token::inspect(token, None, token::clock::unix_now())
        .unwrap()
        .root_key_id
}

#[tokio::test]
async fn rotation_keeps_live_tokens_working_and_refuses_to_break_them() {
    let demo = Demo::start().await;
    let server = &demo.server;
    let before = alice_identity_token(&demo, server).await;
    assert_eq!(
        root_key_id(&before),
        Some(1),
        "minted with the active key's id"
    );

    // Add: published as next, not signing.
    let (status, body) = key_change(&demo, server, "add", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["response_msg"].as_str().unwrap().contains("key 2"),
        "{body}"
    );
    let (_, published) = get(&demo.anonymous(), &format!("{}/public_keys", server.url())).await;
    let states: Vec<(u64, &str)> = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_u64().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, vec![(1, "active"), (2, "next")]);
    let set = demo.ws.key_set().unwrap();
    assert_eq!(served_public_key(&demo, server).await, pem_of(&set, 1));
    assert_eq!(
        root_key_id(&alice_identity_token(&demo, server).await),
        Some(1)
    );

    // Activate: key 2 signs and is served; key 1 verifies.
    let (status, body) = key_change(&demo, server, "activate", json!({ "id": 2 })).await;
    assert_eq!(status, 200, "{body}");
    let message = body["response_msg"].as_str().unwrap();
    assert!(
        message.contains("key 1 is retiring") && message.contains("allows is 8h"),
        "the bound comes from the policy's longest lifetime: {message}"
    );
    assert_eq!(served_public_key(&demo, server).await, pem_of(&set, 2));
    let metrics = support::metrics_text(&demo, &server.url()).await;
    for line in [
        "hessra_root_key_info{id=\"1\",state=\"retiring\"} 1",
        "hessra_root_key_info{id=\"2\",state=\"active\"} 1",
        "hessra_root_key_verify_until_seconds{id=\"1\"} ",
        "hessra_key_set_failing 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    let after = alice_identity_token(&demo, server).await;
    assert_eq!(root_key_id(&after), Some(2));
    for token in [&before, &after] {
        let (status, body) = use_token(&demo, server, token).await;
        assert_eq!(status, 200, "old and new tokens both work: {body}");
    }

    // The active key cannot be retired; the retiring one not while its tokens live.
    let (status, body) = key_change(&demo, server, "retire", json!({ "id": 2 })).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("active key")
    );
    let (status, body) = key_change(&demo, server, "retire", json!({ "id": 1 })).await;
    assert_eq!(status, 409, "{body}");
    let refusal = body["response_msg"].as_str().unwrap();
    assert!(
        refusal.contains("cannot be retired yet")
            && refusal.contains(&format!("{ALICE} via /request_identity_token"))
            && refusal.contains("--force"),
        "the refusal names the live tokens: {refusal}"
    );
    let (status, _) = use_token(&demo, server, &before).await;
    assert_eq!(status, 200, "a refused retirement changes nothing");

    // Forced (a compromised key): its tokens are refused, saying why; key 2's still work.
    let (status, body) =
        key_change(&demo, server, "retire", json!({ "id": 1, "force": true })).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body["broken"].as_array().unwrap().is_empty(),
        "the report lists what was cut off: {body}"
    );
    let (status, body) = use_token(&demo, server, &before).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("signed by root key 1, which has been retired"),
        "{body}"
    );
    let (status, body) = use_token(&demo, server, &after).await;
    assert_eq!(status, 200, "{body}");
    let set = demo.ws.key_set().unwrap();
    assert!(
        !demo.ws.root_key.exists(),
        "a retired key's private key is deleted"
    );
    assert_eq!(set.entries().len(), 2);
}

#[tokio::test]
async fn tokens_without_a_key_id_verify_with_any_verifying_key() {
    let demo = Demo::start().await;
    let server = &demo.server;
    // Minted offline with the old key file and no id, as other Hessra implementations do.
    let old = keys::read_private_key_file(&demo.ws.root_key).unwrap();
    let legacy = token::mint_identity(
        &old,
        &token::IdentityClaims {
            subject: ALICE.into(),
            expires_at: token::clock::unix_now() + 600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    assert_eq!(root_key_id(&legacy), None);
    key_change(&demo, server, "add", json!({})).await;
    let (status, body) = key_change(&demo, server, "activate", json!({ "id": 2 })).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = use_token(&demo, server, &legacy).await;
    assert_eq!(
        status, 200,
        "the fallback tries the retiring key too: {body}"
    );
}

#[tokio::test]
async fn key_endpoints_are_for_operators_and_check_their_input() {
    let demo = Demo::start().await;
    let server = &demo.server;
    let (status, _) = get(&demo.as_identity(ALICE), &format!("{}/keys", server.url())).await;
    assert_eq!(status, 403);
    let (status, _) = post(
        &demo.as_identity(ALICE),
        &format!("{}/keys/add", server.url()),
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = post(
        &demo.anonymous(),
        &format!("{}/keys/add", server.url()),
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = key_change(&demo, server, "activate", json!({})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = key_change(&demo, server, "activate", json!({ "id": 7 })).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["response_msg"].as_str().unwrap().contains("no key 7"));
    let (status, body) = key_change(&demo, server, "add", json!({ "algorithm": "rsa" })).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = get(&demo.as_identity(OPS), &format!("{}/keys", server.url())).await;
    assert_eq!(status, 200);
    assert_eq!(body["managed"], true);
    assert!(
        !body.to_string().contains("root.key"),
        "private key files are not shown: {body}"
    );
}

#[tokio::test]
async fn manifest_changes_on_disk_are_taken_at_the_next_sync_and_broken_ones_refused() {
    let demo = Demo::start().await;
    let server = demo.start_synced(Duration::from_millis(100)).await;
    let mut set = demo.ws.key_set().unwrap();
    set.add(keys::KeyAlgorithm::Ed25519, token::clock::unix_now())
        .unwrap();
    set.save().unwrap();
    let manifest = demo.ws.key_manifest();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = get(&demo.as_identity(OPS), &format!("{}/keys", server.url())).await;
        if body["keys"].as_array().unwrap().len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new key never showed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let good = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        good.replace("state = \"next\"", "state = \"active\""),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        let (_, status) = get(&demo.as_identity(OPS), &format!("{}/status", server.url())).await;
        if let Some(message) = status["key_set_error"]["message"].as_str() {
            break message.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the broken manifest was not reported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        error.contains("keys 1, 2 are all active") && error.contains("keeping the keys in use"),
        "{error}"
    );
    let token = alice_identity_token(&demo, &server).await;
    assert_eq!(root_key_id(&token), Some(1), "still signing with key 1");
    let (_, audit) = get(
        &demo.as_identity(OPS),
        &format!("{}/audit?after=0", server.url()),
    )
    .await;
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["endpoint"] == "key-set" && e["result"] == "error"),
        "the refusal is audited: {audit}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_single_root_key_signs_without_an_id_and_cannot_rotate() {
    server::install_crypto_provider();
    let demo = Demo::start().await;
    let root = keys::read_private_key_file(&demo.ws.root_key).unwrap();
    let single = server::start(ServerConfig {
        root_keys: server::RootKeySource::Single(Box::new(root)),
        ..demo
            .ws
            .server_config("127.0.0.1:0".parse().unwrap())
            .unwrap()
    })
    .await
    .unwrap();
    let token = alice_identity_token(&demo, &single).await;
    assert_eq!(root_key_id(&token), None);
    let (status, body) = key_change(&demo, &single, "add", json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["response_msg"].as_str().unwrap().contains("--key-set"),
        "{body}"
    );
    single.shutdown().await;
}

/// Alice's token T0 is signed by key 1; after a rotation her refresh T1 is signed by key 2 and
/// names T0 (and key 1) in its lineage. Force-retiring key 1 — it was compromised, so T0 may be
/// a forgery the refresh laundered — refuses T1 too, naming the key and the generation; a token
/// key 2 issued from a certificate keeps working.
#[tokio::test]
async fn a_token_refreshed_from_a_force_retired_keys_token_is_refused_with_it() {
    let demo = Demo::start().await;
    let server = &demo.server;
    let t0 = alice_identity_token(&demo, server).await;
    for (action, body) in [("add", json!({})), ("activate", json!({ "id": 2 }))] {
        let (status, body) = key_change(&demo, server, action, body).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = post(
        &demo.anonymous(),
        &format!("{}/refresh_identity_token", server.url()),
        json!({ "current_token": t0, "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let t1 = body["token"].as_str().unwrap().to_string();
    let inspection = token::inspect(&t1, None, token::clock::unix_now()).unwrap();
    assert_eq!(inspection.root_key_id, Some(2));
    assert_eq!(inspection.lineage[0].root_key_id, Some(1));
    let fresh = alice_identity_token(&demo, server).await;
    for token in [&t0, &t1, &fresh] {
        let (status, body) = use_token(&demo, server, token).await;
        assert_eq!(status, 200, "{body}");
    }

    let (status, body) =
        key_change(&demo, server, "retire", json!({ "id": 1, "force": true })).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = use_token(&demo, server, &t1).await;
    assert_eq!(status, 401, "{body}");
    let message = body["response_msg"].as_str().unwrap();
    assert!(
        message.contains("generation 0")
            && message.contains("root key 1")
            && message.contains("retired by force"),
        "{message}"
    );
    let (status, body) = post(
        &demo.anonymous(),
        &format!("{}/refresh_identity_token", server.url()),
        json!({ "current_token": t1, "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 401, "nor is it refreshed: {body}");
    let (status, body) = use_token(&demo, server, &fresh).await;
    assert_eq!(status, 200, "{body}");
}
