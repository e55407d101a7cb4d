//! A push whose `clients.toml` is gigabytes of spaces (megabytes once compressed) against the real
//! server over TLS: both sync paths (reading the origin directly, and through the mirror of a
//! state directory) refuse it from the git object header in milliseconds, with the process's
//! memory unchanged, at two sizes eight times apart; the server keeps serving the last good
//! policy and says why; a restart with that commit at the tip starts on the last good commit and
//! reports it; a fix pushed on top is taken.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use hessra_console::gitops::DEFAULT_MAX_POLICY_BYTES;
use hessra_console::server::{self, RunningServer, ServerConfig};
use serde_json::json;
use support::{Demo, git_bomb, post, resident_bytes};

const ALICE: &str = "uri:urn:company:alice";

/// 256 MiB and 2 GiB: 32 and 256 times the 8 MiB limit. Reading either whole would grow the
/// process by at least its size (libgit2 inflates a blob into one buffer, and the text is copied
/// once more); the refusal must grow it by neither. Setting them up costs hashing 2.25 GiB
/// (sha1sum, about 2 s per GiB here); 4 GiB would add 4-8 s and prove nothing more, since the
/// two sizes already show the refusal's cost does not depend on the size.
const SIZES: [u64; 2] = [256 << 20, 2 << 30];

/// Most the process may grow while a refusal runs: git's object caches and the error text.
const RSS_BOUND: u64 = 16 << 20;

/// A commit on top of `main` in the bare origin whose `file` is `size` spaces, as a push leaves
/// it: the objects in its database (a loose object of a few MB) and the branch moved.
fn push_spaces(origin: &Path, file: &str, size: u64) -> String {
    let blob = git_bomb::write_spaces_blob(origin, size);
    commit_blob(origin, file, blob, "a policy of spaces")
}

fn commit_blob(origin: &Path, file: &str, blob: git2::Oid, message: &str) -> String {
    let repo = git2::Repository::open_bare(origin).unwrap();
    let parent = repo
        .find_branch("main", git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_commit()
        .unwrap();
    let mut tree = repo.treebuilder(Some(&parent.tree().unwrap())).unwrap();
    tree.insert(file, blob, 0o100644).unwrap();
    let tree = repo.find_tree(tree.write().unwrap()).unwrap();
    let author = git2::Signature::now("Mallory", "mallory@example.com").unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &author,
        &author,
        message,
        &tree,
        &[&parent],
    )
    .unwrap()
    .to_string()
}

/// One sync of `server`, timed, with the process's memory growth over it.
async fn timed_reload(server: &RunningServer) -> (Result<bool, String>, Duration, u64) {
    let state = server.state.clone();
    tokio::task::spawn_blocking(move || {
        let before = resident_bytes();
        let start = Instant::now();
        let result = state.reload().map_err(|e| e.message);
        let elapsed = start.elapsed();
        (result, elapsed, resident_bytes().saturating_sub(before))
    })
    .await
    .unwrap()
}

async fn serves_alice(demo: &Demo, server: &RunningServer) {
    let (status, body) = post(
        &demo.as_identity(ALICE),
        &format!("{}/request_identity_token", server.url()),
        json!({ "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 200, "honest clients are served: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_of_gigabytes_of_spaces_is_refused_unread_and_survives_a_restart() {
    // `demo.server` reads the origin directly; `mirrored` keeps a mirror and the last good
    // commit in the workspace's state directory, as `serve --workspace` does. Neither polls:
    // each sync below is called and measured.
    let demo = Demo::start().await;
    let mirrored = demo.start_synced(Duration::from_secs(3600)).await;
    let good = demo.server.state.snapshot().revision.clone();
    assert_eq!(mirrored.state.snapshot().revision, good);

    for size in SIZES {
        let bomb = push_spaces(&demo.ws.origin, "clients.toml", size);
        for (name, server) in [("direct", &demo.server), ("mirrored", &mirrored)] {
            let (result, elapsed, growth) = timed_reload(server).await;
            let message = result.expect_err("an oversized policy is refused");
            eprintln!(
                "{name}: {size} bytes refused in {elapsed:?}, resident memory +{growth} bytes"
            );
            for part in [
                "clients.toml",
                &size.to_string(),
                &DEFAULT_MAX_POLICY_BYTES.to_string(),
                &bomb,
                "keeping the last good policy",
            ] {
                assert!(message.contains(part), "{name}: {part:?} in {message}");
            }
            assert!(
                elapsed < Duration::from_secs(2),
                "{name}: refused in {elapsed:?}"
            );
            assert!(
                growth < RSS_BOUND,
                "{name}: the process grew by {growth} bytes refusing {size}"
            );
            assert_eq!(server.state.snapshot().revision, good, "{name}");
            let status = server.state.status();
            let error = status.last_reload_error.expect("the refusal is reported");
            assert_eq!(error.revision.as_deref(), Some(bomb.as_str()));
            serves_alice(&demo, server).await;
        }
    }

    // A restart with the bomb at the tip: the mirrored server starts on the last good commit
    // and says why it did not take the tip; without a state directory there is no last good
    // commit to fall back on, and the start fails naming the file and its size.
    mirrored.shutdown().await;
    let before = resident_bytes();
    let restarted = demo.start_synced(Duration::from_secs(3600)).await;
    let growth = resident_bytes().saturating_sub(before);
    eprintln!("restart with the bomb at the tip: resident memory +{growth} bytes");
    assert!(
        growth < RSS_BOUND,
        "the restart grew the process by {growth}"
    );
    assert_eq!(restarted.state.snapshot().revision, good);
    let status = restarted.state.status();
    let error = status
        .last_reload_error
        .expect("the restart reports the tip");
    assert!(
        error.message.contains("clients.toml") && error.message.contains("2147483648"),
        "{}",
        error.message
    );
    serves_alice(&demo, &restarted).await;
    let direct = server::start(ServerConfig {
        state_dir: None,
        poll_interval: None,
        audit_file: None,
        ..demo
            .ws
            .server_config("127.0.0.1:0".parse().unwrap())
            .unwrap()
    })
    .await;
    let Err(error) = direct else {
        panic!("a server with no last good commit cannot start on an oversized tip")
    };
    assert!(error.to_string().contains("2147483648"), "{error}");

    // The fix, pushed on top of the bomb (which stays in the history), is taken.
    let repo = git2::Repository::open_bare(&demo.ws.origin).unwrap();
    let good_blob = repo
        .find_commit(git2::Oid::from_str(&good).unwrap())
        .unwrap()
        .tree()
        .unwrap()
        .get_name("clients.toml")
        .unwrap()
        .id();
    let fix = commit_blob(&demo.ws.origin, "clients.toml", good_blob, "the fix");
    let (result, _, _) = timed_reload(&restarted).await;
    assert_eq!(result, Ok(true));
    assert_eq!(restarted.state.snapshot().revision, fix);
    assert!(restarted.state.status().last_reload_error.is_none());

    // revocations.toml is held to the same limit.
    let revocations = push_spaces(
        &demo.ws.origin,
        "revocations.toml",
        DEFAULT_MAX_POLICY_BYTES + 1,
    );
    let (result, _, _) = timed_reload(&restarted).await;
    let message = result.expect_err("an oversized revocation list is refused");
    assert!(
        message.contains("revocations.toml") && message.contains(&revocations),
        "{message}"
    );
    assert_eq!(restarted.state.snapshot().revision, fix);
    restarted.shutdown().await;
}
