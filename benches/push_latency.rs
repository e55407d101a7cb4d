//! Push-to-applied latency on the demo: commit and push a policy edit from the working clone,
//! then time until the running server's `status` reports the new commit. 20 pushes with the
//! server polling every second, then 20 with polling off and an operator nudge after each push.
//!
//! Run: `cargo bench --bench push_latency` (about 30 s). Loopback and local git only.

use std::path::Path;
use std::time::{Duration, Instant};

use hessra_console::gitops;
use hessra_console::policy::{Edit, EditSession};
use hessra_console::server::{self, ServerConfig};
use hessra_console::token::clock::unix_now;
use hessra_console::workspace::{self, Workspace};

const PUSHES: usize = 20;

fn client(ws: &Workspace, identity: &str) -> reqwest::Client {
    let (cert, key) = ws.client_cert(identity);
    let mut pem = std::fs::read(cert).unwrap();
    pem.extend(std::fs::read(key).unwrap());
    reqwest::Client::builder()
        .tls_certs_only(
            reqwest::Certificate::from_pem_bundle(&std::fs::read(&ws.ca_cert).unwrap()).unwrap(),
        )
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

/// Toggles agent1's staging_api read, commits and pushes; returns the new commit.
fn push_edit(ws: &Workspace, round: usize) -> String {
    let file = ws.policy_file();
    let text = std::fs::read_to_string(&file).unwrap();
    let mut session = EditSession::open(&text, unix_now()).unwrap();
    let (identity, resource, operation) = (
        "uri:urn:company:alice:agent1".to_string(),
        "staging_api".to_string(),
        "read".to_string(),
    );
    let edit = if round.is_multiple_of(2) {
        Edit::Grant {
            identity,
            resource,
            operation,
        }
    } else {
        Edit::Revoke {
            identity,
            resource,
            operation,
        }
    };
    session.apply(&edit).unwrap();
    std::fs::write(&file, session.text()).unwrap();
    let commit = gitops::commit_file(
        &ws.policy,
        Path::new("clients.toml"),
        &format!("round {round}"),
    )
    .unwrap();
    gitops::push(&ws.policy, "origin", "main").unwrap();
    commit
}

async fn applied(ops: &reqwest::Client, status_url: &str) -> String {
    let status: serde_json::Value = ops
        .get(status_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["policy_revision"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn measure(ws: &Workspace, poll: Option<Duration>, nudge: bool) -> Vec<Duration> {
    let server = server::start(ServerConfig {
        audit_file: None,
        poll_interval: poll.or(Some(Duration::from_secs(3600))),
        ..ws.server_config("127.0.0.1:0".parse().unwrap()).unwrap()
    })
    .await
    .unwrap();
    let ops = client(ws, workspace::DEMO_OPERATOR);
    let status_url = format!("{}/status", server.url());
    let sync_url = format!("{}/sync", server.url());
    let mut latencies = Vec::new();
    for round in 0..PUSHES {
        // Pushes land at random points of the poll cycle, as real ones do.
        tokio::time::sleep(Duration::from_millis(137 * (round as u64 % 7))).await;
        let start = Instant::now();
        let commit = push_edit(ws, round);
        if nudge {
            ops.post(&sync_url).send().await.unwrap();
        }
        while applied(&ops, &status_url).await != commit {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "round {round} never applied"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(start.elapsed());
    }
    server.shutdown().await;
    latencies
}

fn summary(name: &str, mut latencies: Vec<Duration>, target: Duration) {
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let max = *latencies.last().unwrap();
    let verdict = if max <= target { "met" } else { "missed" };
    println!("| {name} | {median:.0?} | {max:.0?} | ≤ {target:?} | {verdict} |");
}

fn main() {
    server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace::init(dir.path(), false).unwrap();
    let repo = git2::Repository::open(&ws.policy).unwrap();
    let mut config = repo.config().unwrap();
    config.set_str("user.name", "Bench Operator").unwrap();
    config.set_str("user.email", "bench@example.com").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (polled, nudged) = runtime.block_on(async {
        let polled = measure(&ws, Some(Duration::from_secs(1)), false).await;
        let nudged = measure(&ws, None, true).await;
        (polled, nudged)
    });
    println!("{PUSHES} pushes each, commit + push included in the time");
    println!("| mode | median | max | target | |");
    println!("|---|---|---|---|---|");
    summary("polling every 1 s", polled, Duration::from_millis(1500));
    summary("nudge after push", nudged, Duration::from_millis(200));
}
