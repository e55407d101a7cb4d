//! Root keys through git as an operator runs them, through the real binary: `keys publish`
//! moves a key set into the policy clone (public part) and a key directory (private keys);
//! `keys add|activate|retire` on a workspace, or on `--repo PATH --key-dir DIR`, edit the
//! clone's `keys.toml`; `policy commit` takes it along and refuses one naming private key
//! files or retiring a key by hand while its tokens may live, and an activation while a replica
//! reports the key missing; `serve --workspace` then signs with the key the repository made
//! active, and its operator key endpoints point at git. `demo init --keys-in-repository`
//! starts that way; `serve --key-dir` without the active key's file does not start.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn run(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hessra-console"))
        .args(args)
        .env_remove("HESSRA_SERVER")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

fn ok(args: &[&str]) -> String {
    let (code, text) = run(args);
    assert_eq!(code, 0, "{args:?}: {text}");
    text
}

fn demo_init(dir: &Path) -> PathBuf {
    let ws = dir.join("ws");
    ok(&["demo", "init", s(&ws)]);
    ws
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `keys.toml` as committed at the tip of `branch` in `repo`.
fn committed_keys(repo: &Path, branch: &str) -> String {
    hessra_console::gitops::read_at_revision(repo, branch, Path::new("keys.toml")).unwrap()
}

/// The state line of key `id` in a keys.toml text.
fn state_of(text: &str, id: u32) -> String {
    let at = text
        .find(&format!("id = {id}\n"))
        .unwrap_or_else(|| panic!("no key {id} in {text}"));
    let rest = &text[at..];
    let line = rest.lines().find(|l| l.starts_with("state = ")).unwrap();
    line.trim_start_matches("state = ").trim_matches('"').into()
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve ARGS --listen 127.0.0.1:0` in its own process: its `host:port` once it listens, or
/// what it printed when it exits instead.
fn spawn_serve(args: &[&std::ffi::OsStr]) -> Result<(Served, String), String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hessra-console"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line.split("https://").nth(1) {
        Some(rest) => Ok((
            Served(child),
            rest.split_whitespace().next().unwrap().to_string(),
        )),
        None => {
            let output = child.wait_with_output().unwrap();
            Err(format!("{line}{}", String::from_utf8_lossy(&output.stderr)))
        }
    }
}

/// `serve --workspace`.
fn serve(ws: &Path) -> (Served, String) {
    spawn_serve(&["--workspace".as_ref(), ws.as_os_str()]).unwrap_or_else(|e| panic!("{e}"))
}

/// `keys VERB EXTRA` against the server at `addr`, as the workspace's operator.
fn as_operator(ws: &Path, addr: &str, verb: &str, extra: &[&str]) -> (i32, String) {
    let clients = ws.join("pki/clients");
    let (cert, key, ca) = (
        clients.join("urn_company_ops.pem"),
        clients.join("urn_company_ops.key"),
        ws.join("pki/ca.pem"),
    );
    let mut args = vec!["keys", verb];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--server",
        addr,
        "--cert",
        s(&cert),
        "--key",
        s(&key),
        "--ca",
        s(&ca),
    ]);
    run(&args)
}

/// Whether a `keys list` shows key `id` in `state`.
fn lists(listed: &str, id: u32, state: &str) -> bool {
    listed
        .lines()
        .any(|l| l.starts_with(&format!("{id} ")) && l.contains(state))
}

#[test]
fn a_workspace_rotates_its_root_keys_through_a_commit_and_a_push() {
    let dir = tempfile::tempdir().unwrap();
    let ws = demo_init(dir.path());
    let clone = ws.join("policy");
    let key_dir = ws.join("server/keys");
    let policy_file = clone.join("clients.toml");

    let text = ok(&["keys", "publish", "--workspace", s(&ws)]);
    assert!(
        text.contains("policy --file"),
        "says what comes next: {text}"
    );
    let public = std::fs::read_to_string(clone.join("keys.toml")).unwrap();
    assert!(!public.contains("private_key"), "{public}");
    assert_eq!(mode(&key_dir.join("root-1.key")), 0o600);
    let (code, text) = run(&["keys", "publish", "--workspace", s(&ws)]);
    assert_ne!(code, 0, "published once: {text}");

    let text = ok(&["keys", "add", "--workspace", s(&ws)]);
    assert!(
        text.contains("added key 2") && text.contains("policy commit"),
        "{text}"
    );
    assert_eq!(mode(&key_dir.join("root-2.key")), 0o600);
    ok(&["keys", "activate", "2", "--workspace", s(&ws)]);
    let edited = std::fs::read_to_string(clone.join("keys.toml")).unwrap();
    assert_eq!(state_of(&edited, 2), "active");
    assert_eq!(state_of(&edited, 1), "retiring");
    assert!(!edited.contains("private_key"), "{edited}");

    // Retiring key 1 now would break the tokens it signed: refused, the file unchanged.
    let (code, text) = run(&["keys", "retire", "1", "--workspace", s(&ws)]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("cannot be retired yet"), "{text}");
    assert_eq!(
        std::fs::read_to_string(clone.join("keys.toml")).unwrap(),
        edited
    );

    // Committed with the policy, pushed, then served: key 2 signs.
    ok(&[
        "policy",
        "--file",
        s(&policy_file),
        "commit",
        "-m",
        "Key 2 signs",
    ]);
    assert_eq!(committed_keys(&clone, "HEAD"), edited);
    ok(&["policy", "--file", s(&policy_file), "push"]);
    assert_eq!(committed_keys(&ws.join("origin.git"), "main"), edited);

    let (_served, addr) = serve(&ws);
    let (code, listed) = as_operator(&ws, &addr, "list", &[]);
    assert_eq!(code, 0, "{listed}");
    assert!(lists(&listed, 2, "active"), "{listed}");
    let (code, text) = as_operator(&ws, &addr, "add", &[]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("keys.toml on branch main") && text.contains("origin.git"),
        "the server points at git: {text}"
    );
}

#[test]
fn a_clone_and_a_key_directory_outside_a_workspace_are_edited_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let ws = demo_init(dir.path());
    let clone = dir.path().join("clone");
    let repo = git2::Repository::clone(s(&ws.join("origin.git")), &clone).unwrap();
    let mut config = repo.config().unwrap();
    config.set_str("user.name", "Operator").unwrap();
    config.set_str("user.email", "ops@example.com").unwrap();
    let key_dir = dir.path().join("keys");
    let target = ["--repo", s(&clone), "--key-dir", s(&key_dir)];

    let (code, text) = run(&[&["keys", "list"][..], &target].concat());
    assert_ne!(code, 0);
    assert!(
        text.contains("has no keys.toml") && text.contains("keys publish"),
        "{text}"
    );
    let (code, text) = run(&["keys", "add", "--repo", s(&clone)]);
    assert_ne!(code, 0, "--repo needs --key-dir: {text}");

    ok(&[
        "keys",
        "publish",
        "--key-set",
        s(&ws.join("server/keys.toml")),
        "--repo",
        s(&clone),
        "--key-dir",
        s(&key_dir),
    ]);
    ok(&[&["keys", "add"][..], &target].concat());
    assert_eq!(mode(&key_dir.join("root-2.key")), 0o600);
    ok(&[&["keys", "activate", "2"][..], &target].concat());
    let listed = ok(&[&["keys", "list"][..], &target].concat());
    assert!(lists(&listed, 2, "active"), "{listed}");

    let policy_file = clone.join("clients.toml");
    ok(&[
        "policy",
        "--file",
        s(&policy_file),
        "commit",
        "-m",
        "Root keys: key 2 signs",
    ]);
    let committed = committed_keys(&clone, "HEAD");
    assert_eq!(state_of(&committed, 2), "active");

    // A private key path is never committed.
    let manifest = clone.join("keys.toml");
    let leaked = committed.replacen(
        "state = \"active\"",
        "state = \"active\"\nprivate_key = \"root-2.key\"",
        1,
    );
    std::fs::write(&manifest, &leaked).unwrap();
    let (code, text) = run(&["policy", "--file", s(&policy_file), "commit", "-m", "leak"]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("public keys only") && text.contains("nothing was committed"),
        "{text}"
    );
    assert_eq!(committed_keys(&clone, "HEAD"), committed);

    // Nor a hand edit retiring key 1 while the tokens it signed may live.
    let early = committed.replacen("state = \"retiring\"", "state = \"retired\"", 1);
    assert_ne!(early, committed);
    std::fs::write(&manifest, &early).unwrap();
    let (code, text) = run(&[
        "policy",
        "--file",
        s(&policy_file),
        "commit",
        "-m",
        "retire key 1 early",
    ]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("retires key 1") && text.contains("--force"),
        "{text}"
    );
    assert_eq!(committed_keys(&clone, "HEAD"), committed);
}

#[test]
fn an_activation_is_not_committed_while_a_replica_reports_the_key_missing() {
    let dir = tempfile::tempdir().unwrap();
    let ws = demo_init(dir.path());
    let clone = ws.join("policy");
    let policy_file = clone.join("clients.toml");
    let policy = |args: &[&str]| run(&[&["policy", "--file", s(&policy_file)][..], args].concat());
    ok(&["keys", "publish", "--workspace", s(&ws)]);
    assert_eq!(
        policy(&["commit", "-m", "Root keys in the repository"]).0,
        0
    );
    assert_eq!(policy(&["push"]).0, 0);

    // One replica, listed in fleet.toml, with the workspace's key directory.
    let (_served, addr) = serve(&ws);
    std::fs::write(
        clone.join("fleet.toml"),
        format!("[[replicas]]\nname = \"replica-1\"\nurl = \"https://{addr}\"\n"),
    )
    .unwrap();

    // The operator adds key 2 with a key directory of their own, and pushes it as next.
    let operator_keys = dir.path().join("operator-keys");
    let target = ["--repo", s(&clone), "--key-dir", s(&operator_keys)];
    ok(&[&["keys", "add"][..], &target].concat());
    assert_eq!(policy(&["commit", "-m", "Key 2, next"]).0, 0);
    let (code, text) = policy(&["push", "--wait", "--timeout", "10s"]);
    assert_eq!(code, 0, "{text}");
    let fleet = ok(&["fleet", "status", "--workspace", s(&ws)]);
    assert!(
        fleet.contains("replica-1") && fleet.contains("no private key for key(s) 2"),
        "{fleet}"
    );

    // Activating it is refused while the replica lacks it; nothing is committed.
    ok(&[&["keys", "activate", "2"][..], &target].concat());
    let head = committed_keys(&clone, "HEAD");
    let (code, text) = policy(&["commit", "-m", "Key 2 signs"]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("key 2 cannot be activated yet") && text.contains("replica-1"),
        "{text}"
    );
    assert_eq!(committed_keys(&clone, "HEAD"), head);

    // With the key in the replica's key directory, it commits, pushes and applies.
    std::fs::copy(
        operator_keys.join("root-2.key"),
        ws.join("server/keys/root-2.key"),
    )
    .unwrap();
    assert_eq!(
        mode(&ws.join("server/keys/root-2.key")),
        0o600,
        "copied with its mode"
    );
    let (code, text) = policy(&["commit", "-m", "Key 2 signs"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = policy(&["push", "--wait", "--timeout", "10s"]);
    assert_eq!(code, 0, "{text}");
    let fleet = ok(&["fleet", "status", "--workspace", s(&ws)]);
    assert!(
        fleet.contains("key 2 active") && !fleet.contains("no private key"),
        "{fleet}"
    );
}

#[test]
fn a_demo_workspace_can_start_with_its_root_keys_in_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let text = ok(&["demo", "init", s(&ws), "--keys-in-repository"]);
    assert!(
        text.contains("keys.toml in the repository"),
        "says where the keys are: {text}"
    );
    let committed = committed_keys(&ws.join("origin.git"), "main");
    assert_eq!(state_of(&committed, 1), "active");
    assert!(!committed.contains("private_key"), "{committed}");
    let key_dir = ws.join("server/keys");
    assert_eq!(mode(&key_dir.join("root-1.key")), 0o600);
    assert_eq!(mode(&key_dir), 0o700);
    for gone in ["server/keys.toml", "server/root.key"] {
        assert!(
            !ws.join(gone).exists(),
            "{gone}: one place for the key set and the key"
        );
    }

    // Served from the repository; rotation is a commit.
    let (_served, addr) = serve(&ws);
    let (code, listed) = as_operator(&ws, &addr, "list", &[]);
    assert_eq!(code, 0, "{listed}");
    assert!(lists(&listed, 1, "active"), "{listed}");
    let text = ok(&["keys", "add", "--workspace", s(&ws)]);
    assert!(text.contains("policy commit"), "{text}");
    let edited = std::fs::read_to_string(ws.join("policy/keys.toml")).unwrap();
    assert_eq!(state_of(&edited, 2), "next");
    assert_eq!(mode(&key_dir.join("root-2.key")), 0o600);

    // The policy report reads the public keys.toml beside the policy.
    let policy_file = ws.join("policy/clients.toml");
    let report = ok(&["policy", "--file", s(&policy_file), "report"]);
    assert!(
        report.contains("| 1 | active |") && report.contains("| 2 | next |"),
        "{report}"
    );
}

/// `serve` with the pieces given explicitly: the repository, a state directory, TLS, and
/// `--key-dir`.
fn serve_replica(ws: &Path, state: &Path, key_dir: &Path) -> Result<(Served, String), String> {
    let (origin, cert, key) = (
        ws.join("origin.git"),
        ws.join("pki/server.pem"),
        ws.join("pki/server.key"),
    );
    spawn_serve(&[
        "--policy-repo".as_ref(),
        origin.as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
        "--key-dir".as_ref(),
        key_dir.as_os_str(),
    ])
}

#[test]
fn a_replica_given_a_key_directory_serves_the_repositorys_keys_or_says_which_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    ok(&["demo", "init", s(&ws), "--keys-in-repository"]);

    // Without key 1's file it does not start, and says which key and where.
    let empty = dir.path().join("empty-keys");
    std::fs::create_dir(&empty).unwrap();
    let error = serve_replica(&ws, &dir.path().join("state-a"), &empty)
        .err()
        .expect("refused");
    assert!(
        error.contains("no private key for key 1") && error.contains(s(&empty)),
        "{error}"
    );

    // With it (under any name), it serves key 1.
    let keys = dir.path().join("replica-keys");
    hessra_console::fsutil::create_private_dir(&keys).unwrap();
    std::fs::copy(ws.join("server/keys/root-1.key"), keys.join("mounted.key")).unwrap();
    let (_served, addr) =
        serve_replica(&ws, &dir.path().join("state-b"), &keys).unwrap_or_else(|e| panic!("{e}"));
    let (code, listed) = as_operator(&ws, &addr, "list", &[]);
    assert_eq!(code, 0, "{listed}");
    assert!(lists(&listed, 1, "active"), "{listed}");

    // A policy file server keeps a local key set: --key-dir is refused with it.
    let (code, text) = run(&[
        "serve",
        "--policy-file",
        s(&ws.join("policy/clients.toml")),
        "--key-dir",
        s(&keys),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_ne!(code, 0);
    assert!(
        text.contains("--key-dir") && text.contains("--policy-file"),
        "{text}"
    );
}
