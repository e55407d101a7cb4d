//! A fleet on one machine (issue 17, items 2 and 3): three `serve --workspace` processes on one
//! workspace, each with its own state directory and polling off, listed in `fleet.toml`.
//! `policy push --wait` nudges every replica and returns once all three applied the pushed
//! commit; `fleet status` says so; a killed replica is named by both (push --wait fails within
//! its timeout while the others apply); a restarted one converges; a token issued by one
//! replica works at the others until its revocation, pushed and waited for, reaches all three;
//! a root key rotation through git (keys.toml committed and pushed) applies on all three, and
//! tokens of the new key and of the retiring one work at each.
//! Real processes, TLS and git.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use hessra_console::workspace;

mod support;

struct Replica {
    child: Child,
    url: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve --workspace DIR` at `listen` with its own state directory and no polling
/// (only a nudge makes it sync); returns once it listens.
fn replica_at(ws: &Path, state: &Path, listen: &str) -> Replica {
    let (child, url) = support::serve_process(&[
        "--workspace".as_ref(),
        ws.as_os_str(),
        "--listen".as_ref(),
        listen.as_ref(),
        "--poll-interval".as_ref(),
        "0".as_ref(),
        "--state-dir".as_ref(),
        state.as_os_str(),
    ]);
    Replica { child, url }
}

/// `replica_at` on a free port.
fn replica(ws: &Path, state: &Path) -> Replica {
    replica_at(ws, state, "127.0.0.1:0")
}

/// Replicas a, b and c of the workspace at `ws_dir` (state under `dir`), listed in its clone's
/// `fleet.toml`.
fn three_replicas(ws: &workspace::Workspace, ws_dir: &Path, dir: &Path) -> [Replica; 3] {
    let replicas = ["a", "b", "c"].map(|name| replica(ws_dir, &dir.join(name)));
    std::fs::write(
        ws.policy.join("fleet.toml"),
        fleet_toml(&[
            ("a", &replicas[0]),
            ("b", &replicas[1]),
            ("c", &replicas[2]),
        ]),
    )
    .unwrap();
    replicas
}

fn fleet_toml(replicas: &[(&str, &Replica)]) -> String {
    replicas
        .iter()
        .map(|(name, r)| format!("[[replicas]]\nname = \"{name}\"\nurl = \"{}\"\n\n", r.url))
        .collect()
}

fn cli(args: &[&str]) -> (i32, String) {
    support::run_cli(args)
}

/// `hessra-console policy --file POLICY ARGS…`.
fn policy_cli(policy: &str, args: &[&str]) -> (i32, String) {
    let all: Vec<&str> = ["policy", "--file", policy]
        .iter()
        .chain(args)
        .copied()
        .collect();
    support::run_cli(&all)
}

/// Grants something new, commits it; returns nothing (the caller pushes).
fn commit_a_change(policy: &str, resource: &str) {
    let (code, out) = policy_cli(policy, &["grant", "uri:urn:company:ops", resource, "read"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = policy_cli(policy, &["commit", "-m", &format!("ops reads {resource}")]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn push_wait_converges_every_replica_and_names_the_one_that_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let ws_dir = dir.path().join("ws");
    let ws = workspace::init(&ws_dir, false).unwrap();
    let [a, b, c] = three_replicas(&ws, &ws_dir, dir.path());
    let policy = ws.policy_file();
    let policy = policy.to_str().unwrap();
    let ws_arg = ws_dir.to_str().unwrap();

    // Every replica started on the same commit: in sync.
    let (code, out) = cli(&["fleet", "status", "--workspace", ws_arg]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 replica(s)"), "{out}");
    assert_eq!(out.matches("in sync").count(), 3, "{out}");

    // A push: each replica is nudged (none polls) and applies it.
    commit_a_change(policy, "staging_api");
    let started = Instant::now();
    let (code, out) = policy_cli(policy, &["push", "--wait", "--timeout", "20s", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let json_start = out.find('{').unwrap();
    // Standard output (the JSON), then standard error (the progress lines).
    let report: serde_json::Value = serde_json::Deserializer::from_str(&out[json_start..])
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    let head = report["commit"].as_str().unwrap().to_string();
    let replicas = report["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 3);
    for r in replicas {
        assert_eq!(r["state"], "in_sync", "{r}");
        assert_eq!(r["applied"], head.as_str());
    }
    // The progress lines went to standard error, a line per replica.
    for name in ["a ", "b ", "c "] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(name) && l.contains("in sync")),
            "{name}: {out}"
        );
    }

    // b goes down: fleet status names it and fails.
    let b_url = b.url.clone();
    drop(b);
    let (code, out) = cli(&["fleet", "status", "--workspace", ws_arg]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not in sync: b (down)"), "{out}");
    assert_eq!(
        out.matches("in sync").count(),
        2 + 1,
        "two lines and the verdict: {out}"
    );

    // A push with b down: a and c apply it, the wait fails within its timeout naming b.
    commit_a_change(policy, "artifacts");
    let started = Instant::now();
    let (code, out) = policy_cli(policy, &["push", "--wait", "--timeout", "3s"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(3 + 6),
        "bounded by the timeout"
    );
    assert!(out.contains("Not every replica applied"), "{out}");
    assert!(out.contains("b (down)"), "{out}");
    assert!(
        out.lines().filter(|l| l.contains("in sync")).count() >= 2,
        "a and c applied it: {out}"
    );

    // b restarts on its state directory, on the same port, and converges.
    let port = b_url.rsplit(':').next().unwrap().trim_end_matches('/');
    let restarted = replica_at(&ws_dir, &dir.path().join("b"), &format!("127.0.0.1:{port}"));
    assert_eq!(restarted.url, b_url);
    let (code, out) = cli(&["fleet", "status", "--workspace", ws_arg]);
    assert_eq!(code, 0, "a restarted replica reads the tip at start: {out}");
    drop(restarted);
    drop((a, c));
}

#[test]
fn a_fleet_file_that_is_wrong_is_named_and_nothing_is_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace::init(&dir.path().join("ws"), false).unwrap();
    std::fs::write(
        ws.policy.join("fleet.toml"),
        "[[replicas]]\nname = \"a\"\nurl = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    let policy = ws.policy_file();
    let policy = policy.to_str().unwrap();
    commit_a_change(policy, "staging_api");
    let (code, out) = policy_cli(policy, &["push", "--wait"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("fleet.toml") && out.contains("not https://"),
        "{out}"
    );
    let (code, out) = policy_cli(policy, &["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ahead 1") || out.contains("↑1") || out.contains("1 ahead"),
        "nothing was pushed: {out}"
    );

    // --server overrides the file; a replica that is not there is down, not a hang.
    let (code, out) = cli(&[
        "fleet",
        "status",
        "--repo",
        ws.policy.to_str().unwrap(),
        "--server",
        "https://127.0.0.1:9",
        "--cert",
        ws.client_cert("uri:urn:company:ops").0.to_str().unwrap(),
        "--key",
        ws.client_cert("uri:urn:company:ops").1.to_str().unwrap(),
        "--ca",
        ws.ca_cert.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("127.0.0.1:9 (down)"), "{out}");
}

/// A client trusting the workspace's CA, presenting `identity`'s demo certificate if given.
fn https_client(ws: &workspace::Workspace, identity: Option<&str>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ws.ca_cert).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder().add_root_certificate(ca);
    if let Some(identity) = identity {
        let (cert, key) = ws.client_cert(identity);
        let mut pem = std::fs::read(cert).unwrap();
        pem.extend(std::fs::read(key).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

#[test]
fn a_token_issued_by_one_replica_works_at_the_others_until_its_revocation_reaches_all_three() {
    hessra_console::server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ws_dir = dir.path().join("ws");
    let ws = workspace::init(&ws_dir, false).unwrap();
    let replicas = three_replicas(&ws, &ws_dir, dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let alice = https_client(&ws, Some("uri:urn:company:alice"));
    let bearer_only = https_client(&ws, None);
    let read = serde_json::json!({ "resource": "production_api", "operation": "read" });

    // Alice's identity token comes from replica a; b and c accept it as Bearer.
    let token = runtime.block_on(async {
        let (status, body) = support::post(
            &alice,
            &format!("{}/request_identity_token", replicas[0].url),
            serde_json::json!({}),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    });
    let at_each = |expected: u16| {
        for replica in &replicas {
            let (status, body) = runtime.block_on(support::post(
                &bearer_only,
                &format!("{}/request_token", replica.url),
                read.clone(),
                Some(&token),
            ));
            assert_eq!(status, expected, "{}: {body}", replica.url);
        }
    };
    at_each(200);

    // Revoked through git: committed, pushed and waited for, every replica refuses it.
    let token_file = dir.path().join("alice.token");
    std::fs::write(&token_file, &token).unwrap();
    let policy = ws.policy_file();
    let policy = policy.to_str().unwrap();
    let (code, out) = policy_cli(
        policy,
        &[
            "revoke-token",
            "--token-file",
            token_file.to_str().unwrap(),
            "--block",
            "0",
            "--reason",
            "alice's laptop was stolen",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = policy_cli(policy, &["commit", "-m", "revoke alice's token"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = policy_cli(policy, &["push", "--wait", "--timeout", "20s"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("in sync").count(), 3, "{out}");
    at_each(401);
}

#[test]
fn a_key_rotation_through_git_applies_on_all_three_and_both_keys_tokens_work_at_each() {
    hessra_console::server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ws_dir = dir.path().join("ws");
    let ws = workspace::init_with(&ws_dir, false, workspace::RootKeysIn::Repository, 1).unwrap();
    let replicas = three_replicas(&ws, &ws_dir, dir.path());
    let policy = ws.policy_file();
    let policy = policy.to_str().unwrap();
    let ws_arg = ws_dir.to_str().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let alice = https_client(&ws, Some("uri:urn:company:alice"));
    let bearer_only = https_client(&ws, None);
    let identity_token = |at: &Replica| {
        let (status, body) = runtime.block_on(support::post(
            &alice,
            &format!("{}/request_identity_token", at.url),
            serde_json::json!({}),
            None,
        ));
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    };
    let works_at_each = |token: &str| {
        for replica in &replicas {
            let (status, body) = runtime.block_on(support::post(
                &bearer_only,
                &format!("{}/request_token", replica.url),
                serde_json::json!({ "resource": "production_api", "operation": "read" }),
                Some(token),
            ));
            assert_eq!(status, 200, "{}: {body}", replica.url);
        }
    };
    let (code, out) = cli(&["fleet", "status", "--workspace", ws_arg]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("key 1 active").count(), 3, "{out}");
    let before = identity_token(&replicas[0]);

    // Key 2 is added (published, not signing), committed, pushed and waited for; then made
    // active the same way.
    let (code, out) = cli(&["keys", "add", "--workspace", ws_arg]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = policy_cli(policy, &["commit", "-m", "Key 2, next"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = policy_cli(policy, &["push", "--wait", "--timeout", "20s"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(&["keys", "activate", "2", "--workspace", ws_arg]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = policy_cli(policy, &["commit", "-m", "Key 2 signs"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = policy_cli(policy, &["push", "--wait", "--timeout", "20s"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("in sync").count(), 3, "{out}");

    // Every replica signs with key 2 now, and agrees on the whole set.
    let (code, out) = cli(&["fleet", "status", "--workspace", ws_arg]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("key 2 active").count(), 3, "{out}");
    let digests: std::collections::BTreeSet<&str> = out
        .lines()
        .filter_map(|l| l.split("key 2 active · ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        digests.len(),
        1,
        "the replicas disagree on the key set: {out}"
    );
    // A token of the new key, issued by b, works at all three; the retiring key's still does.
    let after = identity_token(&replicas[1]);
    assert_ne!(after, before);
    works_at_each(&after);
    works_at_each(&before);
}
