//! Revocation through GitOps, against the real server over TLS: `policy revoke-token` writes
//! revocations.toml beside clients.toml, the commit is pushed, and within the sync interval the
//! revoked delegated token is refused (and the refusal audited) while its sibling still works;
//! revoking the parent's block refuses every descendant. A revocation cannot be dodged: the
//! P-256 twin of a revoked token is refused with it, and so is every token refreshed from it,
//! transitively; refreshing is capped in generations. A malformed list is never applied.
//! `/metrics` shows the decisions and the revocation count, to operators only.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use hessra_console::gitops;
use hessra_console::keyset::Lifetime;
use hessra_console::policy::{self, NewRevocation};
use hessra_console::server::{self, RunningServer, ServerConfig};
use hessra_console::token::{self, Delegation, IdentityClaims, clock::unix_now, keys};
use serde_json::json;
use support::{
    Demo, alice_identity_token, get, is_high_s, p256_twin, post, raw_revocation_ids, use_token,
};

const ALICE: &str = "uri:urn:company:alice";
const AGENT: &str = "uri:urn:company:alice:agent1";
const OPS: &str = "uri:urn:company:ops";

/// Appends a revocation in the working clone, commits both files, pushes.
fn revoke(demo: &Demo, id: &str, reason: &str) {
    let clone = &demo.ws.policy;
    let repo = git2::Repository::open(clone).unwrap();
    let mut config = repo.config().unwrap();
    config.set_str("user.name", "Operator").unwrap();
    config.set_str("user.email", "ops@example.com").unwrap();
    let file = clone.join(policy::revocations::FILE);
    let text =
        std::fs::read_to_string(&file).unwrap_or_else(|_| policy::revocations::HEADER.into());
    let entry = NewRevocation {
        id: id.into(),
        reason: reason.into(),
        by: Some(OPS.into()),
        at: unix_now(),
    };
    std::fs::write(&file, policy::revocations::append(&text, &entry).unwrap()).unwrap();
    gitops::commit_files(
        clone,
        &[
            Path::new("clients.toml"),
            Path::new(policy::revocations::FILE),
        ],
        reason,
    )
    .unwrap();
    gitops::push(clone, "origin", "main").unwrap();
}

/// Alice's identity token, and two sibling delegations of it to her agent.
fn tokens(demo: &Demo) -> (String, String, String) {
    let root = keys::read_private_key_file(&demo.ws.root_key).unwrap();
    let now = unix_now();
    let parent = token::mint_identity(
        &root,
        &IdentityClaims {
            subject: ALICE.into(),
            expires_at: now + 3600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    let delegate = || {
        token::delegate(
            &parent,
            Some(&root.public()),
            &Delegation::new(AGENT, now + 600),
        )
        .unwrap()
        .token
    };
    let (one, two) = (delegate(), delegate());
    (parent, one, two)
}

fn revocation_id(token: &str, block: usize) -> String {
    token::inspect(token, None, unix_now()).unwrap().blocks[block]
        .revocation_id
        .clone()
}

async fn wait_until_refused(demo: &Demo, server: &RunningServer, bearer: &str) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let (status, body) = use_token(demo, server, bearer).await;
        if status == 401 {
            let message = body["response_msg"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(message.contains("token revoked"), "{message}");
            return start.elapsed();
        }
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the revoked token was still accepted after 10 s");
}

#[tokio::test]
async fn a_revoked_delegation_is_refused_within_the_sync_interval_and_its_sibling_works() {
    let demo = Demo::start().await;
    let server = demo.start_synced(Duration::from_millis(200)).await;
    let (parent, one, two) = tokens(&demo);
    assert_eq!(use_token(&demo, &server, &one).await.0, 200);
    assert_eq!(use_token(&demo, &server, &two).await.0, 200);

    // Revoke the first delegation's own block.
    revoke(&demo, &revocation_id(&one, 1), "agent host compromised");
    let took = wait_until_refused(&demo, &server, &one).await;
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let (status, body) = use_token(&demo, &server, &two).await;
    assert_eq!(status, 200, "the sibling must keep working: {body}");

    // The refusal is in the audit feed, by revocation id, never by token.
    let ops = demo.as_identity(OPS);
    let (_, audit) = get(&ops, &format!("{}/audit", server.url())).await;
    let events = audit["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("token revoked")),
        "{audit}"
    );
    assert!(
        !audit.to_string().contains(&one),
        "a token leaked into the audit feed"
    );

    // Revoking the parent's block cuts off every descendant, and the parent itself.
    revoke(&demo, &revocation_id(&parent, 0), "alice's laptop stolen");
    wait_until_refused(&demo, &server, &two).await;
    let (status, _) = post(
        &demo.anonymous(),
        &format!("{}/verify_token", server.url()),
        json!({ "token": "x", "subject": ALICE, "resource": "r", "operation": "o" }),
        None,
    )
    .await;
    assert_eq!(status, 400, "junk is still a bad request, not a revocation");
    server.shutdown().await;
}

#[tokio::test]
async fn a_malformed_revocation_list_is_not_applied() {
    let demo = Demo::start().await;
    let server = demo.start_synced(Duration::from_millis(200)).await;
    let clone = &demo.ws.policy;
    let repo = git2::Repository::open(clone).unwrap();
    let mut config = repo.config().unwrap();
    config.set_str("user.name", "Operator").unwrap();
    config.set_str("user.email", "ops@example.com").unwrap();
    std::fs::write(
        clone.join(policy::revocations::FILE),
        "[[revoked]]\nid = \"not-hex\"\nreason = \"typo\"\n",
    )
    .unwrap();
    let before = server.state.status().policy_revision;
    gitops::commit_files(clone, &[Path::new(policy::revocations::FILE)], "bad list").unwrap();
    gitops::push(clone, "origin", "main").unwrap();
    let start = Instant::now();
    let error = loop {
        if let Some(error) = server.state.status().last_reload_error {
            break error;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        error.message.contains("revocations.toml"),
        "{}",
        error.message
    );
    assert!(
        error.findings[0].to_string().starts_with("2:"),
        "{:?}",
        error.findings
    );
    assert_eq!(server.state.status().policy_revision, before);
    server.shutdown().await;
}

/// `/metrics` in Prometheus text: decisions by endpoint and result, the revocation count, the
/// policy's age and revision, latency histograms; operators only.
#[tokio::test]
async fn metrics_count_decisions_and_refuse_non_operators() {
    let demo = Demo::start().await;
    let server = demo.start_synced(Duration::from_millis(200)).await;
    let (_, one, _) = tokens(&demo);
    assert_eq!(use_token(&demo, &server, &one).await.0, 200);
    revoke(&demo, &revocation_id(&one, 1), "test");
    wait_until_refused(&demo, &server, &one).await;

    let url = format!("{}/metrics", server.url());
    let response = demo.as_identity(OPS).get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    for wanted in [
        "hessra_requests_total{endpoint=\"/request_token\",result=\"allow\"}",
        "hessra_requests_total{endpoint=\"/request_token\",result=\"deny\"}",
        "hessra_revocations 1",
        "hessra_policy_sync_failing 0",
        "hessra_datalog_run_limit_total 0",
        "hessra_request_duration_seconds_bucket{endpoint=\"/request_token\",le=\"+Inf\"}",
        "# TYPE hessra_request_duration_seconds histogram",
    ] {
        assert!(text.contains(wanted), "missing {wanted:?} in:\n{text}");
    }
    assert!(
        !text.contains(&one[..40]),
        "a token leaked into the metrics"
    );

    for client in [demo.as_identity(ALICE), demo.anonymous()] {
        let status = client.get(&url).send().await.unwrap().status().as_u16();
        assert!(status == 401 || status == 403, "{status}");
    }
    server.shutdown().await;
}

/// `/refresh_identity_token` with nothing but the token, as the Hessra CLI does.
async fn refresh(demo: &Demo, server: &RunningServer, current: &str) -> (u16, serde_json::Value) {
    post(
        &demo.anonymous(),
        &format!("{}/refresh_identity_token", server.url()),
        json!({ "current_token": current, "identifier": null }),
        None,
    )
    .await
}

async fn refreshed(demo: &Demo, server: &RunningServer, current: &str) -> String {
    let (status, body) = refresh(demo, server, current).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// Asserts `bearer` is refused as revoked, with a message containing `naming`.
async fn assert_revoked(demo: &Demo, server: &RunningServer, bearer: &str, naming: &str) {
    let (status, body) = use_token(demo, server, bearer).await;
    let message = body["response_msg"].as_str().unwrap_or_default();
    assert_eq!(status, 401, "{body}");
    assert!(
        message.contains("token revoked") && message.contains(naming),
        "{message}"
    );
}

/// A P-256 root key signs (the published Hessra server's choice), and a holder re-encodes the
/// signature of a token as `(r, n − s)`. Revoking the identity token by the raw high-S id another
/// tool shows, and an authorization token by the id `token inspect` shows, refuses both twins of
/// each — at Bearer use and at `/verify_token` — within the sync interval.
#[tokio::test]
async fn a_p256_twin_is_refused_with_the_token_it_copies() {
    let demo = Demo::start().await;
    let mut set = demo.ws.key_set().unwrap();
    let now = unix_now();
    set.add(keys::KeyAlgorithm::Secp256r1, now).unwrap();
    let hour = Lifetime {
        seconds: 3600,
        what: "test".into(),
    };
    set.activate(2, now, &hour, &[]).unwrap();
    set.save().unwrap();
    let server = demo.start_synced(Duration::from_millis(200)).await;

    let identity = alice_identity_token(&demo, &server).await;
    assert!(
        token::inspect(&identity, None, now).unwrap().blocks[0]
            .revocation_id
            .starts_with("30"),
        "signed with the P-256 key (DER ids)"
    );
    let identity_twin = p256_twin(&identity, 0);
    let (status, body) = use_token(&demo, &server, &identity).await;
    assert_eq!(status, 200, "{body}");
    let authz = body["token"].as_str().unwrap().to_string();
    let authz_twin = p256_twin(&authz, 0);
    let verify = |token: String| {
        let demo = &demo;
        let url = format!("{}/verify_token", server.url());
        async move {
            post(
                &demo.anonymous(),
                &url,
                json!({ "token": token, "subject": ALICE, "resource": "production_api", "operation": "read" }),
                None,
            )
            .await
        }
    };
    for twin in [&identity, &identity_twin] {
        let (status, body) = use_token(&demo, &server, twin).await;
        assert_eq!(
            status, 200,
            "both twins verify before the revocation: {body}"
        );
    }
    for twin in [&authz, &authz_twin] {
        let (status, body) = verify(twin.clone()).await;
        assert_eq!(status, 200, "{body}");
    }

    let high = [&identity, &identity_twin]
        .into_iter()
        .map(|t| raw_revocation_ids(t)[0].clone())
        .find(|id| is_high_s(&hex::decode(id).unwrap()))
        .expect("one twin is high-S");
    revoke(&demo, &high, "identity token copied");
    revoke(
        &demo,
        &revocation_id(&authz, 0),
        "authorization token copied",
    );
    let took = wait_until_refused(&demo, &server, &identity).await;
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_revoked(&demo, &server, &identity_twin, "block 0").await;
    for twin in [&authz, &authz_twin] {
        let (status, body) = verify(twin.clone()).await;
        assert_eq!(status, 403, "{body}");
        assert!(
            body["response_msg"]
                .as_str()
                .unwrap()
                .contains("token revoked"),
            "{body}"
        );
    }
    let (status, body) = refresh(&demo, &server, &identity_twin).await;
    assert_eq!(status, 401, "the twin is not refreshed either: {body}");
    server.shutdown().await;
}

/// T0 → T1 → T2 and T0 → T1b → T2b by refresh. Revoking T1 refuses T1 and T2 but leaves T0 and
/// T1b's branch working; revoking T0 then refuses everything descended from it, each refusal
/// naming the revoked ancestor's generation and id.
#[tokio::test]
async fn a_token_refreshed_from_a_revoked_token_is_refused_transitively() {
    let demo = Demo::start().await;
    let server = demo.start_synced(Duration::from_millis(200)).await;
    let t0 = alice_identity_token(&demo, &server).await;
    let t1 = refreshed(&demo, &server, &t0).await;
    let t2 = refreshed(&demo, &server, &t1).await;
    let t1b = refreshed(&demo, &server, &t0).await;
    let t2b = refreshed(&demo, &server, &t1b).await;

    let lineage = token::inspect(&t2, None, unix_now()).unwrap().lineage;
    let ids: Vec<(u32, String, Option<u32>)> = lineage
        .into_iter()
        .map(|a| (a.generation, a.revocation_id, a.root_key_id))
        .collect();
    assert_eq!(
        ids,
        vec![
            (0, revocation_id(&t0, 0), Some(1)),
            (1, revocation_id(&t1, 0), Some(1)),
        ],
        "T2 names its ancestors, oldest first, with the keys that signed them"
    );
    for token in [&t0, &t1, &t2, &t1b, &t2b] {
        assert_eq!(use_token(&demo, &server, token).await.0, 200);
    }

    revoke(&demo, &revocation_id(&t1, 0), "T1 leaked");
    let took = wait_until_refused(&demo, &server, &t1).await;
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let t1_id = &revocation_id(&t1, 0)[..16];
    assert_revoked(
        &demo,
        &server,
        &t2,
        &format!("generation 1, revocation id {t1_id}"),
    )
    .await;
    for token in [&t0, &t1b, &t2b] {
        let (status, body) = use_token(&demo, &server, token).await;
        assert_eq!(
            status, 200,
            "revoking T1 leaves its ancestor and cousins: {body}"
        );
    }
    let (status, body) = refresh(&demo, &server, &t2).await;
    assert_eq!(status, 401, "refresh itself checks the lineage: {body}");

    revoke(&demo, &revocation_id(&t0, 0), "alice's laptop stolen");
    wait_until_refused(&demo, &server, &t0).await;
    let t0_id = &revocation_id(&t0, 0)[..16];
    for token in [&t1b, &t2b] {
        assert_revoked(
            &demo,
            &server,
            token,
            &format!("generation 0, revocation id {t0_id}"),
        )
        .await;
    }
    server.shutdown().await;
}

/// A server allowing two refreshes in a row refuses the third, telling the holder to show their
/// certificate again; the token refused is still good for everything else.
#[tokio::test]
async fn refreshing_is_capped_in_generations() {
    let demo = Demo::start().await;
    let server = server::start(ServerConfig {
        max_refresh_generations: 2,
        ..demo
            .ws
            .server_config("127.0.0.1:0".parse().unwrap())
            .unwrap()
    })
    .await
    .unwrap();
    let t0 = alice_identity_token(&demo, &server).await;
    let t1 = refreshed(&demo, &server, &t0).await;
    let t2 = refreshed(&demo, &server, &t1).await;
    let (status, body) = refresh(&demo, &server, &t2).await;
    assert_eq!(status, 403, "{body}");
    let message = body["response_msg"].as_str().unwrap();
    assert!(
        message.contains("refreshed 2 times") && message.contains("client certificate"),
        "{message}"
    );
    assert_eq!(use_token(&demo, &server, &t2).await.0, 200);
    let again = alice_identity_token(&demo, &server).await;
    assert!(
        token::inspect(&again, None, unix_now())
            .unwrap()
            .lineage
            .is_empty(),
        "a certificate starts a new lineage"
    );
    server.shutdown().await;
}

/// `GET /revocations` shows operators the list the server applies (id, reason, who, when, and
/// the revision it came from); anyone else is refused.
#[tokio::test]
async fn operators_read_the_applied_revocation_list() {
    let demo = Demo::start().await;
    let server = demo.start_synced(Duration::from_millis(200)).await;
    let (_, one, _) = tokens(&demo);
    let ops = demo.as_identity(OPS);
    let (status, body) = get(&ops, &format!("{}/revocations", server.url())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked"], json!([]), "{body}");

    let id = revocation_id(&one, 1);
    revoke(&demo, &id, "agent host compromised");
    wait_until_refused(&demo, &server, &one).await;
    let (status, body) = get(&ops, &format!("{}/revocations", server.url())).await;
    assert_eq!(status, 200, "{body}");
    let entry = &body["revoked"][0];
    assert_eq!(entry["id"], json!(id), "{body}");
    assert_eq!(entry["reason"], json!("agent host compromised"));
    assert_eq!(entry["by"], json!(OPS));
    assert!(entry["at"].as_i64().is_some(), "{body}");
    assert_eq!(
        body["policy_revision"],
        json!(server.state.status().policy_revision)
    );

    let (status, _) = get(
        &demo.as_identity(ALICE),
        &format!("{}/revocations", server.url()),
    )
    .await;
    assert_eq!(status, 403, "a non-operator read the revocation list");
    let (status, _) = get(&demo.anonymous(), &format!("{}/revocations", server.url())).await;
    assert_eq!(status, 401, "an anonymous caller read the revocation list");
    server.shutdown().await;
}
