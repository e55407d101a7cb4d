//! GitOps on the server side: a push to the policy remote changes decisions within seconds;
//! an invalid policy is refused while the last good one keeps serving; the remote can vanish and
//! the server can restart without it.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use hessra_console::gitops;
use hessra_console::policy::{Edit, EditSession};
use hessra_console::server::{self, RunningServer, ServerConfig};
use hessra_console::token::clock::unix_now;
use serde_json::json;
use support::{Demo, get, post};

const ALICE: &str = "uri:urn:company:alice";
const OPS: &str = "uri:urn:company:ops";

async fn start_synced(demo: &Demo, poll: Duration) -> RunningServer {
    let ws = &demo.ws;
    server::start(ServerConfig {
        audit_file: None,
        poll_interval: Some(poll),
        ..ws.server_config("127.0.0.1:0".parse().unwrap()).unwrap()
    })
    .await
    .unwrap()
}

/// Edits the clone, commits as an operator, pushes.
fn push_policy(demo: &Demo, change: impl FnOnce(&str) -> String, message: &str) {
    let clone = &demo.ws.policy;
    let repo = git2::Repository::open(clone).unwrap();
    let mut config = repo.config().unwrap();
    config.set_str("user.name", "Operator").unwrap();
    config.set_str("user.email", "ops@example.com").unwrap();
    let file = clone.join("clients.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, change(&text)).unwrap();
    gitops::commit_file(clone, Path::new("clients.toml"), message).unwrap();
    gitops::push(clone, "origin", "main").unwrap();
}

fn revoke_staging_write(text: &str) -> String {
    let mut session = EditSession::open(text, unix_now()).unwrap();
    session
        .apply(&Edit::Revoke {
            identity: ALICE.into(),
            resource: "staging_api".into(),
            operation: "write".into(),
        })
        .unwrap();
    session.text().to_string()
}

async fn staging_write_status(demo: &Demo, server: &RunningServer) -> u16 {
    let url = format!("{}/request_token", server.url());
    post(
        &demo.as_identity(ALICE),
        &url,
        json!({ "resource": "staging_api", "operation": "write" }),
        None,
    )
    .await
    .0
}

async fn wait_for(deadline: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within {deadline:?}");
}

async fn status(demo: &Demo, server: &RunningServer) -> serde_json::Value {
    get(&demo.as_identity(OPS), &format!("{}/status", server.url()))
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_revocation_applies_within_two_seconds() {
    let demo = Demo::start().await;
    let server = start_synced(&demo, Duration::from_millis(500)).await;
    assert_eq!(staging_write_status(&demo, &server).await, 200);
    push_policy(
        &demo,
        revoke_staging_write,
        "Alice no longer writes to staging",
    );
    let took = wait_for(Duration::from_secs(2), async || {
        staging_write_status(&demo, &server).await == 403
    })
    .await;
    assert!(took < Duration::from_secs(2));
    let status = status(&demo, &server).await;
    assert!(status["last_reload_error"].is_null(), "{status}");
    let audit = get(&demo.as_identity(OPS), &format!("{}/audit", server.url()))
        .await
        .1;
    let applied = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["endpoint"] == "policy-sync" && e["result"] == "allow");
    assert!(applied, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_policy_is_refused_and_a_fix_applies() {
    let demo = Demo::start().await;
    let server = start_synced(&demo, Duration::from_millis(300)).await;
    let applied = status(&demo, &server).await["policy_revision"].clone();
    push_policy(
        &demo,
        |text| text.replace("role = \"admin\"", "role = \"boss\""),
        "Assign a role that does not exist",
    );
    wait_for(Duration::from_secs(3), async || {
        !status(&demo, &server).await["last_reload_error"].is_null()
    })
    .await;
    let status_now = status(&demo, &server).await;
    assert_eq!(
        status_now["policy_revision"], applied,
        "the last good policy keeps serving"
    );
    let error = &status_now["last_reload_error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("keeping the last good policy"),
        "{error}"
    );
    assert_eq!(error["findings"][0]["code"], "unknown-role");
    assert!(error["findings"][0]["location"]["line"].as_u64().unwrap() > 0);
    assert_eq!(staging_write_status(&demo, &server).await, 200);

    push_policy(
        &demo,
        |text| revoke_staging_write(&text.replace("role = \"boss\"", "role = \"admin\"")),
        "Fix the role; revoke staging write",
    );
    wait_for(Duration::from_secs(3), async || {
        staging_write_status(&demo, &server).await == 403
    })
    .await;
    assert!(status(&demo, &server).await["last_reload_error"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nudge_applies_at_once() {
    let demo = Demo::start().await;
    let server = start_synced(&demo, Duration::from_secs(60)).await;
    push_policy(&demo, revoke_staging_write, "revoke");
    let (code, _) = post(
        &demo.as_identity(OPS),
        &format!("{}/sync", server.url()),
        json!({}),
        None,
    )
    .await;
    assert_eq!(code, 202);
    let took = wait_for(Duration::from_secs(2), async || {
        staging_write_status(&demo, &server).await == 403
    })
    .await;
    assert!(took < Duration::from_millis(1500), "{took:?}");
    let (code, _) = post(
        &demo.as_identity(ALICE),
        &format!("{}/sync", server.url()),
        json!({}),
        None,
    )
    .await;
    assert_eq!(code, 403, "only operators nudge");
}

/// Reloads asked for at once (an embedding program, the sync loop, a nudge) run one at a time:
/// of eight threads reloading after a push, one applies it, the others find it applied, and
/// none fails on the mirror's locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reloads_apply_a_push_once_and_none_fails() {
    let demo = Demo::start().await;
    let server = start_synced(&demo, Duration::from_secs(60)).await;
    for round in 0..3 {
        let note = format!("# reviewed, round {round}\n");
        push_policy(&demo, |text| format!("{text}{note}"), "a comment");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let reloads: Vec<_> = (0..8)
            .map(|_| {
                let (state, barrier) = (server.state.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    state.reload().map_err(|e| e.message)
                })
            })
            .collect();
        let results: Vec<Result<bool, String>> =
            reloads.into_iter().map(|r| r.join().unwrap()).collect();
        let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(failed.is_empty(), "round {round}: {failed:?}");
        let applied = results.iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(applied, 1, "round {round}: {results:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_can_vanish_and_the_server_can_restart_without_it() {
    let demo = Demo::start().await;
    let server = start_synced(&demo, Duration::from_millis(200)).await;
    push_policy(&demo, revoke_staging_write, "revoke");
    wait_for(Duration::from_secs(3), async || {
        staging_write_status(&demo, &server).await == 403
    })
    .await;
    let applied = status(&demo, &server).await["policy_revision"].clone();

    std::fs::rename(&demo.ws.origin, demo.dir.path().join("gone.git")).unwrap();
    wait_for(Duration::from_secs(3), async || {
        !status(&demo, &server).await["last_reload_error"].is_null()
    })
    .await;
    let status_now = status(&demo, &server).await;
    assert!(
        status_now["last_reload_error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{status_now}"
    );
    assert_eq!(
        staging_write_status(&demo, &server).await,
        403,
        "still serving the last good policy"
    );
    server.shutdown().await;

    let restarted = start_synced(&demo, Duration::from_millis(200)).await;
    assert_eq!(
        status(&demo, &restarted).await["policy_revision"],
        applied,
        "restarts from the last good commit"
    );
    assert_eq!(staging_write_status(&demo, &restarted).await, 403);
}
