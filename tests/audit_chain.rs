//! The tamper-evident audit trail (issue 18, item 3): the real server writes a chained, rotated
//! trail with signed checkpoints over TLS requests; `hessra-console audit verify` passes it with
//! the key `/status` publishes, and names each kind of tampering done to a copy of it — an
//! altered, removed, inserted or moved line, a cut tail, a rotated file removed or cut short, a
//! checkpoint under another key — with exit status 1. A crash mid-line and a file from before
//! chaining are taken up without breaking the chain.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use hessra_console::audit_chain::{self, Chain, ProblemKind, Signer, Verification};
use hessra_console::server::{self, AuditConfig, AuditEvent, AuditLog};
use serde_json::json;
use support::{Demo, get, post};

const ALICE: &str = "uri:urn:company:alice";
const OPS: &str = "uri:urn:company:ops";

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        seq: 0,
        time: 1_700_000_000 + i as i64,
        caller: Some(ALICE.into()),
        auth: "mtls".into(),
        endpoint: "/request_token".into(),
        resource: Some("production_api".into()),
        operation: Some("read".into()),
        result: "allow".into(),
        reason: format!("decision {i}"),
        revocation_id: None,
        expires_at: None,
    }
}

/// A trail written by the server's writer: `events` decisions into `dir/audit.jsonl`, rotated
/// every `max_bytes`, with a checkpoint every 10 events and one at shutdown.
fn write_trail(dir: &Path, events: usize, max_bytes: u64) -> PathBuf {
    let path = dir.join("audit.jsonl");
    let config = AuditConfig {
        max_file_bytes: max_bytes,
        max_files: 100,
        checkpoint_every: Duration::ZERO,
        ..AuditConfig::default()
    };
    let log = AuditLog::new(Some(path.clone()), config).unwrap();
    for i in 0..events {
        log.record(event(i));
    }
    drop(log);
    path
}

fn verify_sequence(path: &Path, key: Option<&str>) -> Verification {
    let head = audit_chain::read_checkpoint(&audit_chain::head_path(path)).ok();
    audit_chain::verify(&audit_chain::sequence(path), key, head.as_ref())
}

fn public_key(path: &Path) -> String {
    let public = path.with_file_name("audit-signing.pk8.pub");
    std::fs::read_to_string(public).unwrap().trim().to_string()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// The first problem: its kind, file name and line.
fn first(result: &Verification) -> (ProblemKind, String, Option<u64>) {
    let problem = result.problems.first().unwrap_or_else(|| {
        panic!("tampering went unnoticed: {result:#?}");
    });
    let file = Path::new(&problem.file)
        .file_name()
        .map_or(problem.file.clone(), |f| f.to_string_lossy().into_owned());
    (problem.kind, file, problem.line)
}

fn cli(args: &[&str]) -> (i32, String) {
    support::run_cli(args)
}

/// The server over TLS: decisions are chained into rotated files, `/status` publishes the key
/// that signs the checkpoints, and `audit verify` pinned to it passes the whole sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_trail_verifies_under_the_key_it_publishes() {
    let demo = Demo::start().await;
    let file = demo.dir.path().join("trail").join("audit.jsonl");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let server = support::start_audited(
        &demo,
        &file,
        AuditConfig {
            max_file_bytes: 4_096,
            max_files: 50,
            ..AuditConfig::default()
        },
    )
    .await;
    for _ in 0..60 {
        let (status, body) = post(
            &demo.as_identity(ALICE),
            &format!("{}/request_token", server.url()),
            json!({ "resource": "production_api", "operation": "read" }),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = get(&demo.as_identity(OPS), &format!("{}/status", server.url())).await;
    assert_eq!(status, 200, "{body}");
    let key = body["audit_key"].as_str().unwrap().to_string();
    assert_eq!(key, public_key(&file), "/status publishes the key on disk");
    server.shutdown().await;

    let rotated = server::audit_rotated_files(&file).unwrap();
    assert!(rotated.len() >= 3, "4 KiB files rotate: {rotated:?}");
    let (code, out) = cli(&["audit", "verify", file.to_str().unwrap(), "--key", &key]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("chain intact"), "{out}");
    assert!(out.contains("(pinned)"), "{out}");

    // Alice's decisions are still read back as events by the trail's other readers.
    let decisions = lines(&file)
        .iter()
        .chain(
            rotated
                .iter()
                .flat_map(|(_, f)| lines(f))
                .collect::<Vec<_>>()
                .iter(),
        )
        .filter_map(|l| serde_json::from_str::<AuditEvent>(l).ok())
        .filter(|e| e.caller.as_deref() == Some(ALICE))
        .count();
    assert_eq!(decisions, 60);

    // A copy tampered with fails with exit status 1 and says where.
    let live = lines(&file);
    let mut altered = live.clone();
    altered[2] = altered[2].replacen("\"allow\"", "\"deny\"", 1);
    write_lines(&file, &altered);
    let (code, out) = cli(&["audit", "verify", file.to_str().unwrap(), "--key", &key]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("audit.jsonl line 3: the line was altered"),
        "{out}"
    );
}

#[test]
fn each_kind_of_tampering_is_named_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_trail(dir.path(), 40, 1 << 20);
    let key = public_key(&path);
    let intact = verify_sequence(&path, Some(&key));
    assert!(intact.ok(), "{intact:#?}");
    assert_eq!(
        intact.lines, 42,
        "genesis, 40 events, the shutdown checkpoint"
    );
    assert_eq!(intact.checkpoints, 1);
    let original = lines(&path);

    let tampered = |change: &dyn Fn(&mut Vec<String>)| {
        let mut copy = original.clone();
        change(&mut copy);
        write_lines(&path, &copy);
        let result = verify_sequence(&path, Some(&key));
        write_lines(&path, &original);
        first(&result)
    };
    let file = "audit.jsonl".to_string();

    // Line 10 says "deny" now.
    let altered = tampered(&|l| l[9] = l[9].replacen("\"allow\"", "\"deny\"", 1));
    assert_eq!(altered, (ProblemKind::Altered, file.clone(), Some(10)));

    // Line 10 is gone: the line now at 10 is reported.
    let removed = tampered(&|l| {
        l.remove(9);
    });
    assert_eq!(removed, (ProblemKind::Removed, file.clone(), Some(10)));

    // A copy of line 10 put in again after it.
    let copied = tampered(&|l| {
        let line = l[9].clone();
        l.insert(10, line);
    });
    assert_eq!(copied, (ProblemKind::Inserted, file.clone(), Some(11)));

    // A line written by hand, without the chain's fields.
    let forged = tampered(&|l| {
        let line = serde_json::to_string(&event(99)).unwrap();
        l.insert(10, line);
    });
    assert_eq!(forged, (ProblemKind::Inserted, file.clone(), Some(11)));

    // Lines 10 and 11 swapped.
    let moved = tampered(&|l| l.swap(9, 10));
    assert_eq!(moved.0, ProblemKind::Reordered, "{moved:?}");
    assert_eq!(moved.2, Some(10));

    // The last events and the checkpoint after them cut off: the head file still signs them.
    let cut = tampered(&|l| l.truncate(30));
    assert_eq!(cut.0, ProblemKind::Truncated, "{cut:?}");

    // Untouched again: passes.
    assert!(verify_sequence(&path, Some(&key)).ok());

    // Pinned to another key, the checkpoints are refused.
    let other = Signer::ephemeral().public_hex();
    let wrong_key = verify_sequence(&path, Some(&other));
    assert_eq!(first(&wrong_key).0, ProblemKind::BadCheckpoint);
    assert!(
        wrong_key.problems[0]
            .message
            .contains("not signed by the key"),
        "{wrong_key:#?}"
    );
}

/// Someone who rewrites the whole file with a chain of their own cannot sign it with the
/// server's key: pinned, verification refuses their checkpoint.
#[test]
fn a_rewritten_chain_is_refused_under_the_pinned_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_trail(dir.path(), 10, 1 << 20);
    let key = public_key(&path);
    let mut forger = Chain::new(Signer::ephemeral(), 1, 0, audit_chain::ZERO);
    let mut forged = vec![forger.genesis(1, 1_700_000_000, audit_chain::ZERO)];
    for i in 0..10 {
        let mut e = event(i);
        e.result = "deny".into();
        forged.push(forger.seal(&serde_json::to_string(&e).unwrap()));
    }
    forged.push(forger.checkpoint(1_700_000_100).0);
    write_lines(&path, &forged);
    std::fs::remove_file(audit_chain::head_path(&path)).unwrap();
    let unpinned = verify_sequence(&path, None);
    assert!(
        unpinned.ok(),
        "without a pinned key it is only self-consistent"
    );
    let pinned = verify_sequence(&path, Some(&key));
    assert_eq!(first(&pinned).0, ProblemKind::BadCheckpoint, "{pinned:#?}");
}

#[test]
fn rotated_files_removed_or_cut_short_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_trail(dir.path(), 200, 4_096);
    let key = public_key(&path);
    let files = audit_chain::sequence(&path);
    assert!(files.len() >= 5, "{files:?}");
    let intact = verify_sequence(&path, Some(&key));
    assert!(intact.ok(), "{intact:#?}");
    assert_eq!(intact.checkpoints as usize, files.len(), "one per segment");

    // The second rotated file removed.
    let second = files[1].clone();
    let kept = std::fs::read(&second).unwrap();
    std::fs::remove_file(&second).unwrap();
    let missing = verify_sequence(&path, Some(&key));
    let (kind, file, line) = first(&missing);
    assert_eq!(kind, ProblemKind::MissingFile, "{missing:#?}");
    assert_eq!((file.as_str(), line), ("audit.jsonl.3", Some(1)));
    assert!(
        missing.problems[0]
            .message
            .contains("segment 2 are missing"),
        "{missing:#?}"
    );
    std::fs::write(&second, &kept).unwrap();

    // Its last line (the segment's checkpoint) and the event before it removed.
    let mut short = lines(&second);
    short.truncate(short.len() - 2);
    write_lines(&second, &short);
    let cut = verify_sequence(&path, Some(&key));
    let (kind, file, line) = first(&cut);
    assert_eq!(kind, ProblemKind::Truncated, "{cut:#?}");
    assert_eq!((file.as_str(), line), ("audit.jsonl.3", Some(1)));
    std::fs::write(&second, &kept).unwrap();
    assert!(verify_sequence(&path, Some(&key)).ok());

    // Only the newest file given: earlier segments are noted, not failed.
    let alone = audit_chain::verify(std::slice::from_ref(&path), Some(&key), None);
    assert!(alone.ok(), "{alone:#?}");
    assert!(alone.notes.iter().any(|n| n.contains("begins at segment")));
}

/// A crash mid-line leaves a torn tail; the restarted writer cuts it (recording how much) and
/// the chain goes on. A file from before chaining is rotated aside and noted, not failed.
#[test]
fn a_torn_tail_and_an_unchained_file_are_taken_up_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(
        &path,
        serde_json::to_string(&event(0)).unwrap()
            + "\n"
            + &serde_json::to_string(&event(1)).unwrap()
            + "\n",
    )
    .unwrap();
    let config = AuditConfig {
        checkpoint_every: Duration::ZERO,
        ..AuditConfig::default()
    };
    let log = AuditLog::new(Some(path.clone()), config).unwrap();
    log.record(event(2));
    drop(log);
    let key = public_key(&path);
    let rotated = server::audit_rotated_files(&path).unwrap();
    assert_eq!(rotated.len(), 1, "the unchained file was rotated aside");
    let result = verify_sequence(&path, Some(&key));
    assert!(result.ok(), "{result:#?}");
    assert!(
        result
            .notes
            .iter()
            .any(|n| n.contains("before the audit chain")),
        "{result:#?}"
    );

    // A crash in the middle of a line.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"seq\":7,\"time\":17");
    std::fs::write(&path, &bytes).unwrap();
    let torn = verify_sequence(&path, Some(&key));
    assert_eq!(first(&torn).0, ProblemKind::Truncated, "{torn:#?}");
    let log = AuditLog::new(Some(path.clone()), config).unwrap();
    log.record(event(3));
    drop(log);
    let resumed = verify_sequence(&path, Some(&key));
    assert!(resumed.ok(), "{resumed:#?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\"resume\":{") && text.contains("\"dropped\":18"),
        "{text}"
    );
}

/// An idle server signs what it wrote within the interval, without a rotation or shutdown.
#[test]
fn checkpoints_are_signed_while_the_server_idles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let config = AuditConfig {
        checkpoint_every: Duration::from_millis(100),
        ..AuditConfig::default()
    };
    let log = AuditLog::new(Some(path.clone()), config).unwrap();
    log.record(event(0));
    let head = audit_chain::head_path(&path);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !head.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let checkpoint = audit_chain::read_checkpoint(&head).expect("a head checkpoint within 10 s");
    assert_eq!(checkpoint.lines, 2, "genesis and the event");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("{\"checkpoint\":"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&head).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key = path.with_file_name("audit-signing.pk8");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drop(log);
}
