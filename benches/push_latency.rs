//! Push-to-applied latency on the demo: commit and push a policy edit from the working clone,
//! then time until every running replica's `status` reports the new commit. For one server and
//! for a fleet of three (each with its own mirror of the remote): 20 pushes with the replicas
//! polling every second, then 20 with polling off and an operator nudge to each after each
//! push (what `policy push --wait` and the console's push do).
//!
//! Run: `cargo bench --bench push_latency` (about a minute). Loopback and local git only.

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

/// Starts `replicas` servers following the workspace's remote (each with its own mirror), then
/// times each of the pushes until every one of them serves the pushed commit.
async fn measure(
    ws: &Workspace,
    replicas: usize,
    poll: Option<Duration>,
    nudge: bool,
) -> Vec<Duration> {
    let states: Vec<tempfile::TempDir> = (0..replicas)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let mut servers = Vec::new();
    for state in &states {
        servers.push(
            server::start(ServerConfig {
                audit_file: None,
                state_dir: Some(state.path().to_path_buf()),
                poll_interval: poll.or(Some(Duration::from_secs(3600))),
                ..ws.server_config("127.0.0.1:0".parse().unwrap()).unwrap()
            })
            .await
            .unwrap(),
        );
    }
    let ops = client(ws, workspace::DEMO_OPERATOR);
    let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
    let mut latencies = Vec::new();
    for round in 0..PUSHES {
        // Pushes land at random points of the poll cycle, as real ones do.
        tokio::time::sleep(Duration::from_millis(137 * (round as u64 % 7))).await;
        let start = Instant::now();
        let commit = push_edit(ws, round);
        if nudge {
            // As `policy push --wait` does: every replica at once.
            let nudges = urls
                .iter()
                .map(|url| ops.post(format!("{url}/sync")).send());
            for response in hessra_console::fleet::join_all(nudges).await {
                response.unwrap();
            }
        }
        for url in &urls {
            let status_url = format!("{url}/status");
            while applied(&ops, &status_url).await != commit {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "round {round} never applied at {url}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        latencies.push(start.elapsed());
    }
    for server in servers {
        server.shutdown().await;
    }
    latencies
}

/// A table row: the median is held to the target (the terms), the maximum shown.
fn summary(replicas: usize, name: &str, mut latencies: Vec<Duration>, target: Duration) {
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let max = *latencies.last().unwrap();
    let verdict = if median <= target { "met" } else { "missed" };
    println!(
        "| {replicas} | {name} | {median:.0?} | {max:.0?} | median ≤ {target:?} | {verdict} |"
    );
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
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        for replicas in [1, 3] {
            let polled = measure(&ws, replicas, Some(Duration::from_secs(1)), false).await;
            let nudged = measure(&ws, replicas, None, true).await;
            rows.push((replicas, polled, nudged));
        }
        rows
    });
    println!(
        "{PUSHES} pushes each, commit + push included in the time; done when every replica applied"
    );
    println!("| replicas | mode | median | max | target | |");
    println!("|---|---|---|---|---|---|");
    for (replicas, polled, nudged) in rows {
        summary(
            replicas,
            "polling every 1 s",
            polled,
            Duration::from_millis(1500),
        );
        let target = if replicas == 1 { 200 } else { 300 };
        summary(
            replicas,
            "nudge after push",
            nudged,
            Duration::from_millis(target),
        );
    }
}
