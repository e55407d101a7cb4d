//! The audit trail against the real server over TLS: a flood of junk requests without
//! credentials is summarised instead of recorded one by one, and the console's feed keeps the
//! authenticated decisions around it; the file rotates at its configured size into the
//! configured number of 0600 files, and key retirement still finds a live token whose issuance
//! was rotated out of the file being written; a writer stuck on its disk drops (and counts)
//! events while every request is still answered promptly.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hessra_console::server::{self, AuditConfig, RunningServer};
use serde_json::{Value, json};
use support::{Demo, get, post};

const ALICE: &str = "uri:urn:company:alice";
const OPS: &str = "uri:urn:company:ops";

async fn start(demo: &Demo, file: &Path, audit: AuditConfig) -> RunningServer {
    support::start_audited(demo, file, audit).await
}

/// An authenticated decision: Alice asks for a token.
async fn decision(demo: &Demo, server: &RunningServer) {
    let (status, body) = post(
        &demo.as_identity(ALICE),
        &format!("{}/request_token", server.url()),
        json!({ "resource": "production_api", "operation": "read" }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn feed(demo: &Demo, server: &RunningServer) -> Vec<Value> {
    let (status, body) = get(
        &demo.as_identity(OPS),
        &format!("{}/audit?after=0&limit=2000", server.url()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

async fn metric(demo: &Demo, server: &RunningServer, name: &str) -> u64 {
    support::metric(demo, &server.url(), name).await
}

/// The rotated files, oldest first, then the one written.
fn files(file: &Path) -> Vec<PathBuf> {
    server::audit_rotated_files(file)
        .unwrap()
        .into_iter()
        .map(|(_, path)| path)
        .chain([file.to_path_buf()])
        .collect()
}

/// 2,000 junk requests without credentials over TLS (a per-test count: the limiter's own test
/// sends 100,000 through the audit API), four at a time, on two endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_without_credentials_is_summarised_and_the_decisions_stay_in_the_feed() {
    const FLOOD: usize = 2_000;
    let demo = Demo::start().await;
    let file = demo.dir.path().join("flood.jsonl");
    let server = start(&demo, &file, AuditConfig::default()).await;
    for _ in 0..3 {
        decision(&demo, &server).await;
    }
    let anonymous = demo.anonymous();
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (client, base) = (anonymous.clone(), server.url());
        workers.push(tokio::spawn(async move {
            for i in 0..FLOOD / 4 {
                let (path, body) = if (worker + i) % 2 == 0 {
                    (
                        "/verify_token",
                        json!({ "token": format!("junk{i}"), "subject": "x", "resource": "r", "operation": "o" }),
                    )
                } else {
                    ("/request_token", json!({ "resource": "r", "operation": "o" }))
                };
                let (status, _) = post(&client, &format!("{base}{path}"), body, None).await;
                assert!((400..=403).contains(&status), "{path}: {status}");
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    for _ in 0..3 {
        decision(&demo, &server).await;
    }

    let events = feed(&demo, &server).await;
    let decisions = events
        .iter()
        .filter(|e| e["caller"] == ALICE && e["endpoint"] == "/request_token")
        .count();
    assert_eq!(
        decisions, 6,
        "the decisions before and after are in the feed"
    );
    let anonymous: Vec<&Value> = events.iter().filter(|e| e["caller"].is_null()).collect();
    // Two endpoints and at most two kinds of reason each, twenty recorded per pair and window
    // (two windows if the flood outlasts a minute), and a summary when a window closes.
    assert!(anonymous.len() <= 2 * 2 * 21 * 2, "{anonymous:#?}");
    let one_by_one = anonymous
        .iter()
        .filter(|e| !e["reason"].as_str().unwrap().contains("similar refusals"))
        .count();
    let summarised = metric(&demo, &server, "hessra_audit_summarised_total").await;
    assert_eq!(summarised as usize + one_by_one, FLOOD, "{anonymous:#?}");
    server.shutdown().await;
    // The events, the chain's genesis line and its checkpoints (one a minute, one at shutdown).
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();
    assert!(
        lines <= 6 + 2 * 2 * 21 * 2 + 4,
        "the file holds {lines} lines after {FLOOD} junk requests"
    );
}

/// Rotation at 4 KiB into 3 files; Alice's identity token, issued first, lives in the oldest
/// file, which is kept past the count while the token is live, and retiring the key that
/// signed it is refused naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_the_configured_files_and_retirement_still_sees_rotated_tokens() {
    let demo = Demo::start().await;
    let file = demo.dir.path().join("rotated.jsonl");
    let audit = AuditConfig {
        max_file_bytes: 4_096,
        max_files: 3,
        ..AuditConfig::default()
    };
    let server = start(&demo, &file, audit).await;
    let (status, body) = post(
        &demo.as_identity(ALICE),
        &format!("{}/request_identity_token", server.url()),
        json!({ "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..150 {
        decision(&demo, &server).await;
    }
    server.state.audit.flush();
    let kept = files(&file);
    assert_eq!(
        kept.len(),
        audit.max_files + 1,
        "three files and the one with a live token: {kept:?}"
    );
    for path in &kept {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600, "{path:?}");
        assert!(metadata.len() <= 4_096, "{path:?}: {}", metadata.len());
    }
    let oldest = std::fs::read_to_string(&kept[0]).unwrap();
    assert!(oldest.contains("/request_identity_token"));
    for newer in &kept[1..] {
        let text = std::fs::read_to_string(newer).unwrap();
        assert!(!text.contains("/request_identity_token"), "{newer:?}");
    }

    let change = |action: &'static str, body: Value| {
        let (client, url) = (
            demo.as_identity(OPS),
            format!("{}/keys/{action}", server.url()),
        );
        async move { post(&client, &url, body, None).await }
    };
    assert_eq!(change("add", json!({})).await.0, 200);
    assert_eq!(change("activate", json!({ "id": 2 })).await.0, 200);
    let (status, body) = change("retire", json!({ "id": 1 })).await;
    assert_eq!(status, 409, "{body}");
    let refusal = body["response_msg"].as_str().unwrap();
    assert!(
        refusal.contains(&format!("{ALICE} via /request_identity_token"))
            && refusal.contains("1 issued token(s) are still live"),
        "the token recorded in a rotated file is named: {refusal}"
    );
    let (status, body) = change("retire", json!({ "id": 1, "force": true })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["broken"].as_array().unwrap().len(), 1, "{body}");

    // Shutdown writes what was queued: the forced retirement is the file's last event (the
    // chain's closing checkpoint follows it).
    server.shutdown().await;
    let text = std::fs::read_to_string(&file).unwrap();
    let last = text
        .lines()
        .rfind(|line| serde_json::from_str::<server::AuditEvent>(line).is_ok())
        .unwrap();
    assert!(last.contains("retired by force"), "{text}");
    assert!(text.lines().last().unwrap().starts_with("{\"checkpoint\":"));
}

/// The audit file is a FIFO nobody reads: after 64 KiB the writer blocks, as on a disk that
/// stopped. With a queue of one, events are dropped and counted, and each request is still
/// answered within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_writer_drops_and_counts_and_requests_still_succeed() {
    let demo = Demo::start().await;
    let fifo = demo.dir.path().join("stuck.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Opened for reading and writing, so the server's open does not wait for a reader.
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let audit = AuditConfig {
        queue: 1,
        ..AuditConfig::default()
    };
    let server = start(&demo, &fifo, audit).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..600 {
        let start = Instant::now();
        decision(&demo, &server).await;
        slowest = slowest.max(start.elapsed());
    }
    eprintln!("slowest request with the writer stuck: {slowest:?}");
    assert!(slowest < Duration::from_secs(1), "{slowest:?}");
    let dropped = metric(&demo, &server, "hessra_audit_dropped_total").await;
    assert!(
        dropped > 200,
        "600 events of ~300 bytes overflow a 64 KiB pipe and a queue of one: {dropped}"
    );
    let decisions = feed(&demo, &server)
        .await
        .iter()
        .filter(|e| e["caller"] == ALICE)
        .count();
    assert_eq!(decisions, 600, "the ring has every decision");
    // Let the writer finish so the server can stop.
    std::thread::spawn(move || {
        use std::io::Read;
        let mut held = held;
        let mut sink = [0u8; 65_536];
        while held.read(&mut sink).is_ok_and(|n| n > 0) {}
    });
    server.shutdown().await;
}
