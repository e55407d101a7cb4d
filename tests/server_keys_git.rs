//! Root keys through git, against real servers over TLS syncing a real repository: the key
//! set's public part (`keys.toml`) is pushed with the policy and applied with it; each replica
//! takes its private keys from its own key directory. A replica holding the newly active key
//! applies the revision — tokens signed by the new key and by the old one both verify — while a
//! replica without it keeps its last good revision and says which key it lacks (status, audit,
//! metrics), and applies the revision once the key is there. The operator key endpoints of such
//! a server point at the repository instead of changing anything.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hessra_console::gitops;
use hessra_console::keyset::{self, KeySet, Lifetime};
use hessra_console::server::{self, RootKeySource, RunningServer, ServerConfig};
use hessra_console::token::{self, clock::unix_now, keys};
use serde_json::{Value, json};
use support::{Demo, alice_identity_token, get, post, use_token};

const OPS: &str = "uri:urn:company:ops";

/// Moves the demo's key set into its repository: the public part committed and pushed as
/// `keys.toml`, key 1's private key copied into each of `key_dirs`.
fn publish_key_set(demo: &Demo, key_dirs: &[&Path]) {
    let set = demo.ws.key_set().unwrap();
    let pair = set.private_key_of(1).unwrap();
    for dir in key_dirs {
        hessra_console::fsutil::create_private_dir(dir).unwrap();
        keys::write_private_key_file(&dir.join("root-1.key"), &pair).unwrap();
    }
    std::fs::write(demo.ws.policy.join(keyset::MANIFEST), set.public_manifest()).unwrap();
    commit_and_push_keys(demo, "Root keys in the repository");
}

fn commit_and_push_keys(demo: &Demo, message: &str) -> String {
    let clone = &demo.ws.policy;
    let repo = git2::Repository::open(clone).unwrap();
    let mut config = repo.config().unwrap();
    config.set_str("user.name", "Operator").unwrap();
    config.set_str("user.email", "ops@example.com").unwrap();
    let id = gitops::commit_file(clone, Path::new(keyset::MANIFEST), message).unwrap();
    gitops::push(clone, "origin", "main").unwrap();
    id
}

/// A replica of the workspace's repository with its own key directory, state and audit file,
/// polling every 100 ms.
async fn replica(demo: &Demo, name: &str, key_dir: &Path) -> RunningServer {
    let state = demo.dir.path().join(format!("{name}-state"));
    server::start(ServerConfig {
        root_keys: RootKeySource::Repository {
            key_dir: key_dir.to_path_buf(),
        },
        state_dir: Some(state),
        audit_file: Some(demo.dir.path().join(format!("{name}-audit.jsonl"))),
        poll_interval: Some(Duration::from_millis(100)),
        ..demo
            .ws
            .server_config("127.0.0.1:0".parse().unwrap())
            .unwrap()
    })
    .await
    .unwrap()
}

async fn status(demo: &Demo, server: &RunningServer) -> Value {
    get(&demo.as_identity(OPS), &format!("{}/status", server.url()))
        .await
        .1
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}

fn root_key_id(token: &str) -> Option<u32> {
    token::inspect(token, None, unix_now()).unwrap().root_key_id
}

/// In the working clone: key 2 added (its private key written into `key_dir`) and activated.
fn add_and_activate_key_2(demo: &Demo, key_dir: &Path) {
    let manifest = demo.ws.policy.join(keyset::MANIFEST);
    let mut set = KeySet::open_repository(&manifest, key_dir).unwrap();
    let now = unix_now();
    set.add(keys::KeyAlgorithm::Ed25519, now).unwrap();
    let lifetime = Lifetime {
        seconds: 8 * 3600,
        what: "the policy's longest token".into(),
    };
    set.activate(2, now, &lifetime, &[]).unwrap();
    set.save().unwrap();
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        !text.contains("private_key"),
        "only public keys go to git: {text}"
    );
}

fn key_dirs(demo: &Demo) -> (PathBuf, PathBuf) {
    (
        demo.dir.path().join("keys-a"),
        demo.dir.path().join("keys-b"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_key_activation_applies_where_the_key_is_and_is_refused_where_it_is_not() {
    let demo = Demo::start().await;
    let (dir_a, dir_b) = key_dirs(&demo);
    publish_key_set(&demo, &[&dir_a, &dir_b]);
    let a = replica(&demo, "a", &dir_a).await;
    let b = replica(&demo, "b", &dir_b).await;
    let before = alice_identity_token(&demo, &a).await;
    assert_eq!(root_key_id(&before), Some(1));
    let first = status(&demo, &b).await["policy_revision"].clone();

    add_and_activate_key_2(&demo, &dir_a);
    let pushed = commit_and_push_keys(&demo, "Key 2 signs");

    // Replica A holds key 2: the revision applies, key 2 signs, key 1's tokens still verify.
    wait_for("replica A applies the key change", async || {
        status(&demo, &a).await["policy_revision"] == pushed.as_str()
    })
    .await;
    let after = alice_identity_token(&demo, &a).await;
    assert_eq!(root_key_id(&after), Some(2), "the new active key signs");
    for token in [&before, &after] {
        let (code, body) = use_token(&demo, &a, token).await;
        assert_eq!(code, 200, "tokens of key 1 and key 2 both verify: {body}");
    }
    let a_status = status(&demo, &a).await;
    assert!(a_status["last_reload_error"].is_null(), "{a_status}");
    let states: Vec<(u64, &str)> = a_status["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_u64().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, vec![(1, "retiring"), (2, "active")]);

    // Replica B lacks key 2: it keeps the last good revision and says which key is missing.
    wait_for("replica B refuses the revision", async || {
        status(&demo, &b).await["last_reload_error"]["revision"] == pushed.as_str()
    })
    .await;
    let b_status = status(&demo, &b).await;
    assert_eq!(b_status["policy_revision"], first, "last good kept");
    let message = b_status["last_reload_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no private key for key 2")
            && message.contains(&dir_b.display().to_string())
            && message.contains("keeping the last good policy"),
        "{message}"
    );
    assert_eq!(
        root_key_id(&alice_identity_token(&demo, &b).await),
        Some(1),
        "B still signs with key 1"
    );
    assert_eq!(
        support::metric(&demo, &b.url(), "hessra_policy_sync_failing").await,
        1
    );
    let audit = get(&demo.as_identity(OPS), &format!("{}/audit", b.url()))
        .await
        .1;
    let refused = audit["events"].as_array().unwrap().iter().any(|e| {
        e["endpoint"] == "policy-sync"
            && e["result"] == "error"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("no private key for key 2"))
    });
    assert!(refused, "{audit}");

    // Once the key is in B's key directory, B applies the same revision.
    std::fs::copy(dir_a.join("root-2.key"), dir_b.join("root-2.key")).unwrap();
    wait_for("replica B applies once it holds key 2", async || {
        status(&demo, &b).await["policy_revision"] == pushed.as_str()
    })
    .await;
    let (code, body) = use_token(&demo, &b, &after).await;
    assert_eq!(code, 200, "B verifies key 2's tokens now: {body}");
    assert_eq!(
        support::metric(&demo, &b.url(), "hessra_policy_sync_failing").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_key_endpoints_of_a_repository_backed_server_point_at_git() {
    let demo = Demo::start().await;
    let (dir_a, _) = key_dirs(&demo);
    publish_key_set(&demo, &[&dir_a]);
    let a = replica(&demo, "a", &dir_a).await;
    for (action, body) in [
        ("add", json!({})),
        ("activate", json!({ "id": 1 })),
        ("retire", json!({ "id": 1 })),
    ] {
        let (code, body) = post(
            &demo.as_identity(OPS),
            &format!("{}/keys/{action}", a.url()),
            body,
            None,
        )
        .await;
        assert_eq!(code, 409, "{action}: {body}");
        let message = body["response_msg"].as_str().unwrap();
        assert!(
            message.contains("keys.toml on branch main")
                && message.contains(&demo.ws.origin.display().to_string())
                && message.contains("policy push"),
            "{message}"
        );
    }
    assert!(
        std::fs::read_dir(&dir_a).unwrap().count() == 1,
        "no key was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_refuses_a_revision_that_names_private_key_files_or_drops_keys_toml() {
    let demo = Demo::start().await;
    let (dir_a, _) = key_dirs(&demo);
    publish_key_set(&demo, &[&dir_a]);
    let a = replica(&demo, "a", &dir_a).await;
    let good = status(&demo, &a).await["policy_revision"].clone();

    // A private key path in the committed file: refused, the last good revision kept.
    let manifest = demo.ws.policy.join(keyset::MANIFEST);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let leaked = text.replacen(
        "state = \"active\"",
        "state = \"active\"\nprivate_key = \"root-1.key\"",
        1,
    );
    std::fs::write(&manifest, leaked).unwrap();
    let bad = commit_and_push_keys(&demo, "names a private key file");
    wait_for("the leaked path is refused", async || {
        status(&demo, &a).await["last_reload_error"]["revision"] == bad.as_str()
    })
    .await;
    let now = status(&demo, &a).await;
    assert_eq!(now["policy_revision"], good);
    let message = now["last_reload_error"]["message"].as_str().unwrap();
    assert!(message.contains("public keys only"), "{message}");

    // keys.toml removed: refused too (the replica has no other key set to take).
    std::fs::remove_file(&manifest).unwrap();
    let dropped = commit_and_push_keys(&demo, "drop keys.toml");
    wait_for("a revision without keys.toml is refused", async || {
        status(&demo, &a).await["last_reload_error"]["revision"] == dropped.as_str()
    })
    .await;
    let now = status(&demo, &a).await;
    assert_eq!(now["policy_revision"], good);
    let message = now["last_reload_error"]["message"].as_str().unwrap();
    assert!(message.contains("has no keys.toml"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_key_a_replica_lacks_is_applied_and_reported_missing() {
    let demo = Demo::start().await;
    let (dir_a, dir_b) = key_dirs(&demo);
    publish_key_set(&demo, &[&dir_a, &dir_b]);
    let a = replica(&demo, "a", &dir_a).await;
    let b = replica(&demo, "b", &dir_b).await;

    let manifest = demo.ws.policy.join(keyset::MANIFEST);
    let mut set = KeySet::open_repository(&manifest, &dir_a).unwrap();
    set.add(keys::KeyAlgorithm::Ed25519, unix_now()).unwrap();
    set.save().unwrap();
    let pushed = commit_and_push_keys(&demo, "Key 2, next");

    // A next key does not sign: both replicas apply it; B says it lacks its private key.
    for server in [&a, &b] {
        wait_for("the next key applies", async || {
            status(&demo, server).await["policy_revision"] == pushed.as_str()
        })
        .await;
    }
    assert!(status(&demo, &a).await["missing_private_keys"].is_null());
    assert_eq!(status(&demo, &b).await["missing_private_keys"], json!([2]));
    assert_eq!(
        support::metric(&demo, &b.url(), "hessra_root_key_private_missing{id=\"2\"}").await,
        1
    );
    assert!(
        !support::metrics_text(&demo, &a.url())
            .await
            .contains("hessra_root_key_private_missing{"),
        "A holds every key"
    );
}
