//! A bounded soak on loopback: many clients on mixed endpoints at once while policy commits are
//! pushed every few seconds, one in three of them invalid. Passes when no valid request failed,
//! every denial was the one expected, every valid push was applied and every invalid one refused
//! (the last good policy serving), and resident memory stayed flat after warm-up.
//!
//! Run: `cargo bench --bench soak` (60 s; `SOAK_SECONDS` and `SOAK_CLIENTS` change it).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hessra_console::gitops;
use hessra_console::policy::{Edit, EditSession};
use hessra_console::server::{self, ServerConfig};
use hessra_console::token::clock::unix_now;
use hessra_console::workspace::{self, Workspace};
use serde_json::{Value, json};

const ALICE: &str = "uri:urn:company:alice";

fn client(ws: &Workspace, identity: Option<&str>) -> reqwest::Client {
    let ca = std::fs::read(&ws.ca_cert).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
        .timeout(Duration::from_secs(10));
    if let Some(identity) = identity {
        let (cert, key) = ws.client_cert(identity);
        let mut pem = std::fs::read(cert).unwrap();
        pem.extend(std::fs::read(key).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    failed_valid: AtomicU64,
    expected_denials: AtomicU64,
    unexpected: AtomicU64,
}

/// One client's loop: a mix of valid requests and one that must be denied.
async fn worker(
    url: String,
    alice: reqwest::Client,
    anonymous: reqwest::Client,
    tally: Arc<Tally>,
    until: Instant,
) {
    let mut round = 0u64;
    let mut last_authz: Option<String> = None;
    while Instant::now() < until {
        round += 1;
        let (valid, response) = match round % 5 {
            0 => (
                true,
                alice
                    .post(format!("{url}/request_identity_token"))
                    .json(&json!({ "identifier": null }))
                    .send()
                    .await,
            ),
            1 => (
                true,
                alice
                    .post(format!("{url}/request_token"))
                    .json(&json!({ "resource": "production_api", "operation": "read" }))
                    .send()
                    .await,
            ),
            2 => match &last_authz {
                Some(token) => (
                    true,
                    anonymous
                        .post(format!("{url}/verify_token"))
                        .json(&json!({ "token": token, "subject": ALICE, "resource": "production_api", "operation": "read" }))
                        .send()
                        .await,
                ),
                None => (true, anonymous.get(format!("{url}/public_key")).send().await),
            },
            3 => (true, anonymous.get(format!("{url}/public_key")).send().await),
            _ => (
                false,
                alice
                    .post(format!("{url}/request_token"))
                    .json(&json!({ "resource": "production_api", "operation": "delete" }))
                    .send()
                    .await,
            ),
        };
        tally.requests.fetch_add(1, Ordering::Relaxed);
        let status = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                if round % 5 == 1 && status == 200 {
                    let body: Value = response.json().await.unwrap_or_default();
                    last_authz = body["token"].as_str().map(str::to_string);
                }
                status
            }
            Err(_) => 0,
        };
        match (valid, status) {
            (true, 200) => {}
            (true, _) => {
                tally.failed_valid.fetch_add(1, Ordering::Relaxed);
            }
            (false, 403) => {
                tally.expected_denials.fetch_add(1, Ordering::Relaxed);
            }
            (false, _) => {
                tally.unexpected.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Pushes a commit: valid ones toggle ci:deploy's staging_api read (no worker depends on it),
/// every third one breaks the file.
fn push(ws: &Workspace, round: usize, original: &str) -> (String, bool) {
    let file = ws.policy_file();
    let valid = round % 3 != 2;
    let text = if valid {
        let mut session = EditSession::open(original, unix_now()).unwrap();
        let (identity, resource, operation) = (
            "uri:urn:company:ci:deploy".to_string(),
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
        let _ = session.apply(&edit);
        session.text().to_string()
    } else {
        format!("{original}\n[[clients]\nbroken = \n")
    };
    std::fs::write(&file, text).unwrap();
    let commit = gitops::commit_file(
        &ws.policy,
        Path::new("clients.toml"),
        &format!("soak {round}"),
    )
    .unwrap();
    gitops::push(&ws.policy, "origin", "main").unwrap();
    (commit, valid)
}

fn main() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let clients: usize = std::env::var("SOAK_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace::init(dir.path(), false).unwrap();
    let repo = git2::Repository::open(&ws.policy).unwrap();
    let mut config = repo.config().unwrap();
    config.set_str("user.name", "Soak").unwrap();
    config.set_str("user.email", "soak@example.com").unwrap();
    let original = std::fs::read_to_string(ws.policy_file()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = server::start(ServerConfig {
            audit_file: None,
            poll_interval: Some(Duration::from_millis(500)),
            ..ws.server_config("127.0.0.1:0".parse().unwrap()).unwrap()
        })
        .await
        .unwrap();
        let url = server.url();
        let start = Instant::now();
        let until = start + Duration::from_secs(seconds);
        let tally = Arc::new(Tally::default());
        let mut tasks = Vec::new();
        for _ in 0..clients {
            tasks.push(tokio::spawn(worker(
                url.clone(),
                client(&ws, Some(ALICE)),
                client(&ws, None),
                tally.clone(),
                until,
            )));
        }
        let ops = client(&ws, Some(workspace::DEMO_OPERATOR));
        let (mut applied, mut refused, mut missed) = (0, 0, 0);
        let mut warm_rss = None;
        let mut round = 0;
        while Instant::now() + Duration::from_secs(4) < until {
            tokio::time::sleep(Duration::from_secs(3)).await;
            if warm_rss.is_none() && start.elapsed() > Duration::from_secs(seconds / 4) {
                warm_rss = Some(rss_mb());
            }
            let (commit, valid) = push(&ws, round, &original);
            round += 1;
            // Give the server a sync interval and a little to read it.
            tokio::time::sleep(Duration::from_millis(900)).await;
            let status: Value = ops
                .get(format!("{url}/status"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let serving = status["policy_revision"].as_str().unwrap_or_default();
            match (valid, serving == commit) {
                (true, true) => applied += 1,
                (false, false) if status["last_reload_error"].is_object() => refused += 1,
                _ => missed += 1,
            }
        }
        for task in tasks {
            task.await.unwrap();
        }
        let end_rss = rss_mb();
        let warm = warm_rss.unwrap_or(end_rss);
        let requests = tally.requests.load(Ordering::Relaxed);
        let failed = tally.failed_valid.load(Ordering::Relaxed);
        let unexpected = tally.unexpected.load(Ordering::Relaxed);
        println!(
            "soak: {seconds} s, {clients} clients, {requests} requests ({:.0}/s); failed valid requests {failed}; expected denials {}; unexpected answers {unexpected}",
            requests as f64 / seconds as f64,
            tally.expected_denials.load(Ordering::Relaxed),
        );
        println!(
            "pushes: {round} ({applied} valid applied, {refused} invalid refused, {missed} not as expected within 0.9 s)"
        );
        println!("resident memory: {warm:.1} MB after warm-up, {end_rss:.1} MB at the end");
        server.shutdown().await;
        assert_eq!(failed, 0, "valid requests failed");
        assert_eq!(unexpected, 0, "denials other than the expected one");
        assert_eq!(missed, 0, "a push was not applied or refused as expected");
        assert!(end_rss < warm * 1.25 + 5.0, "memory grew: {warm:.1} → {end_rss:.1} MB");
    });
}
