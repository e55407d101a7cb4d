//! The operator's git loop from the command line on a demo workspace: edit, status, commit
//! (refused while invalid), push, pull, log with semantic diffs, and two clones pushing
//! non-conflicting and conflicting edits — reconciled or stopped, no commit lost.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use git2::Repository;

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hessra-console"))
            .args(["demo", "init"])
            .arg(dir.path().join("ws"))
            .output()
            .unwrap();
        assert!(out.status.success());
        let ws = Workspace { dir };
        ws.configure(&ws.clone_dir(), "Alice Operator");
        ws
    }

    fn clone_dir(&self) -> PathBuf {
        self.dir.path().join("ws/policy")
    }

    fn configure(&self, clone: &Path, name: &str) {
        let repo = Repository::open(clone).unwrap();
        let mut config = repo.config().unwrap();
        config.set_str("user.name", name).unwrap();
        config.set_str("user.email", "ops@example.com").unwrap();
    }

    /// A second working clone of the same remote.
    fn second_clone(&self) -> PathBuf {
        let path = self.dir.path().join("second");
        hessra_console::gitops::clone(
            self.dir.path().join("ws/origin.git").to_str().unwrap(),
            &path,
        )
        .unwrap();
        self.configure(&path, "Bob Operator");
        path
    }

    fn run(&self, clone: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hessra-console"))
            .args(args)
            .current_dir(clone)
            .output()
            .unwrap()
    }

    /// Runs the command and asserts it succeeded, showing what it printed when it did not.
    fn ok(&self, clone: &Path, args: &[&str]) -> Output {
        let out = self.run(clone, args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `policy EDIT…` then `policy commit -m MESSAGE` in `clone`, both succeeding.
    fn commit_edit(&self, clone: &Path, edit: &[&str], message: &str) {
        let mut args = vec!["policy"];
        args.extend_from_slice(edit);
        self.ok(clone, &args);
        self.ok(clone, &["policy", "commit", "-m", message]);
    }

    fn json(&self, clone: &Path, args: &[&str]) -> (i32, serde_json::Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(clone, &all);
        (
            out.status.code().unwrap(),
            serde_json::from_slice(&out.stdout).unwrap_or_default(),
        )
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn origin_text(ws: &Workspace) -> String {
    let origin = ws.dir.path().join("ws/origin.git");
    hessra_console::gitops::read_branch_file(&origin, "main", Path::new("clients.toml"))
        .unwrap()
        .0
}

#[test]
fn edit_commit_push_and_log() {
    let ws = Workspace::new();
    let clone = ws.clone_dir();
    let (_, status) = ws.json(&clone, &["policy", "status"]);
    assert_eq!(status["file"], "clean");
    assert_eq!(status["branch"], "main");
    ws.ok(
        &clone,
        &[
            "policy",
            "revoke",
            "uri:urn:company:alice",
            "staging_api",
            "write",
        ],
    );
    let (_, status) = ws.json(&clone, &["policy", "status"]);
    assert_eq!(status["file"], "modified");

    let out = ws.run(
        &clone,
        &[
            "policy",
            "commit",
            "-m",
            "Alice no longer writes to staging",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let (_, status) = ws.json(&clone, &["policy", "status"]);
    assert_eq!(
        (status["file"].as_str(), status["ahead"].as_u64()),
        (Some("clean"), Some(1))
    );
    let (code, pushed) = ws.json(&clone, &["policy", "push"]);
    assert_eq!(code, 0, "{pushed}");
    assert_eq!(pushed["outcome"], "pushed");
    assert!(origin_text(&ws).contains(r#"{ name = "staging_api", operations = ["read"] },"#));
    let (_, again) = ws.json(&clone, &["policy", "push"]);
    assert_eq!(again["outcome"], "up_to_date");

    let out = ws.run(&clone, &["policy", "log", "--semantic"]);
    let log = text(&out);
    assert!(log.contains("Alice Operator <ops@example.com>"), "{log}");
    assert!(
        log.contains("- uri:urn:company:alice may no longer write on staging_api"),
        "{log}"
    );
    assert!(log.contains("Demo policy"), "{log}");
}

#[test]
fn an_invalid_policy_is_not_committed_and_an_empty_message_is_refused() {
    let ws = Workspace::new();
    let clone = ws.clone_dir();
    let file = clone.join("clients.toml");
    let text_before = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text_before.replace("role = \"admin\"", "role = \"boss\""),
    )
    .unwrap();
    let out = ws.run(&clone, &["policy", "commit", "-m", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("has validation errors"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("error[unknown-role]"), "{}", text(&out));
    let (_, status) = ws.json(&clone, &["policy", "status"]);
    assert_eq!(status["ahead"], 0, "nothing was committed");
    let out = ws.run(&clone, &["policy", "commit", "-m", "  "]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn concurrent_edits_are_replayed_and_only_true_conflicts_stop_the_push() {
    let ws = Workspace::new();
    let first = ws.clone_dir();
    let second = ws.second_clone();

    // Non-conflicting: first edits alice, second edits ci; second's push is reconciled.
    ws.commit_edit(
        &first,
        &["revoke", "uri:urn:company:alice", "staging_api", "write"],
        "alice",
    );
    ws.ok(&first, &["policy", "push"]);
    ws.commit_edit(
        &second,
        &["revoke", "uri:urn:company:ci", "staging_api", "read"],
        "ci",
    );
    let (code, pushed) = ws.json(&second, &["policy", "push"]);
    assert_eq!(code, 0, "{pushed}");
    assert_eq!(pushed["outcome"], "rebased");
    let origin = origin_text(&ws);
    assert!(
        origin.contains(r#"{ name = "staging_api", operations = ["read"] },"#),
        "first's edit kept"
    );
    assert!(
        origin.contains(r#"{ name = "staging_api", operations = ["write"] },"#),
        "second's edit kept"
    );

    // The first clone pulls (fast-forward) and both now agree.
    let (_, pulled) = ws.json(&first, &["policy", "pull"]);
    assert_eq!(pulled["fast_forwarded"], 1);
    assert_eq!(
        std::fs::read_to_string(first.join("clients.toml")).unwrap(),
        origin
    );

    // Conflicting: both change the same line.
    ws.commit_edit(
        &first,
        &[
            "grant",
            "uri:urn:company:alice:agent1",
            "production_api",
            "write",
        ],
        "agent1 writes",
    );
    ws.ok(&first, &["policy", "push"]);
    ws.ok(
        &second,
        &[
            "policy",
            "revoke",
            "uri:urn:company:alice:agent1",
            "production_api",
            "read",
        ],
    );
    ws.ok(
        &second,
        &["policy", "add-client", "uri:urn:company:alice:agent2"],
    );
    ws.commit_edit(
        &second,
        &[
            "grant",
            "uri:urn:company:alice:agent2",
            "production_api",
            "read",
        ],
        "move agent1's read to agent2",
    );
    // The two edits touch the same line but different things: the push replays second's
    // operations onto first's version (a semantic rebase), so both hold.
    let (code, pushed) = ws.json(&second, &["policy", "push"]);
    assert_eq!(code, 0, "{pushed}");
    assert_eq!(pushed["outcome"], "rebased");
    let origin = origin_text(&ws);
    let policy = hessra_console::policy::load(&origin, 0).unwrap().policy;
    let agent1 = policy.client("uri:urn:company:alice:agent1").unwrap();
    assert_eq!(
        agent1.resource("production_api").unwrap().operations,
        ["write"]
    );
    let agent2 = policy.client("uri:urn:company:alice:agent2").unwrap();
    assert_eq!(
        agent2.resource("production_api").unwrap().operations,
        ["read"]
    );

    // A true conflict: first removes agent2, second grants it more.
    let (_, pulled) = ws.json(&first, &["policy", "pull"]);
    assert_eq!(pulled["fast_forwarded"], 1);
    ws.ok(
        &first,
        &["policy", "remove-client", "uri:urn:company:alice:agent2"],
    );
    ws.ok(&first, &["policy", "commit", "-m", "no agent2"]);
    ws.ok(&first, &["policy", "push"]);
    ws.commit_edit(
        &second,
        &[
            "grant",
            "uri:urn:company:alice:agent2",
            "production_api",
            "write",
        ],
        "agent2 writes",
    );
    let head_before = Repository::open(&second)
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap();
    let out = ws.run(&second, &["policy", "push"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = text(&out);
    assert!(message.contains("conflict with origin/main"), "{message}");
    assert!(
        message.contains("client uri:urn:company:alice:agent2: they removed it; you changed it"),
        "the conflict is shown semantically: {message}"
    );
    let repo = Repository::open(&second).unwrap();
    assert_eq!(
        repo.head().unwrap().target().unwrap(),
        head_before,
        "the local commit is kept as it was"
    );
    assert!(
        std::fs::read_to_string(second.join("clients.toml"))
            .unwrap()
            .contains("agent2")
    );
    let (_, pulled) = ws.json(&second, &["policy", "pull"]);
    assert!(
        pulled.is_null() || pulled["success"] == false,
        "pull refuses to fast-forward a diverged branch: {pulled}"
    );
}

#[test]
fn diff_shows_text_and_meaning_against_head() {
    let ws = Workspace::new();
    let clone = ws.clone_dir();
    ws.ok(
        &clone,
        &[
            "policy",
            "grant",
            "uri:urn:company:alice:agent1",
            "production_api",
            "write",
        ],
    );
    let out = ws.run(&clone, &["policy", "diff", "HEAD", "--text"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains(r#"-  { name = "production_api", operations = ["read"] },"#),
        "{shown}"
    );
    assert!(
        shown.contains(r#"+  { name = "production_api", operations = ["read", "write"] },"#),
        "{shown}"
    );
    assert!(
        shown.contains("+ WIDENS uri:urn:company:alice:agent1 may now write on production_api"),
        "{shown}"
    );
}

#[test]
fn the_server_mirror_follows_a_force_pushed_branch() {
    let ws = Workspace::new();
    let clone = ws.clone_dir();
    ws.commit_edit(
        &clone,
        &["revoke", "uri:urn:company:alice", "staging_api", "write"],
        "first",
    );
    ws.ok(&clone, &["policy", "push"]);
    let mirror_dir = ws.dir.path().join("mirror.git");
    let origin = ws.dir.path().join("ws/origin.git");
    let mirror = hessra_console::gitops::Mirror::open(
        &mirror_dir,
        origin.to_str().unwrap(),
        "main",
        hessra_console::gitops::DEFAULT_MAX_POLICY_BYTES,
    )
    .unwrap();
    let first = mirror.fetch().unwrap();

    // Rewrite history: drop "first", commit something else, force-push.
    let repo = Repository::open(&clone).unwrap();
    let parent = repo
        .head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .parent(0)
        .unwrap();
    repo.reset(parent.as_object(), git2::ResetType::Hard, None)
        .unwrap();
    ws.commit_edit(
        &clone,
        &["revoke", "uri:urn:company:ci", "staging_api", "read"],
        "rewritten",
    );
    let mut remote = repo.find_remote("origin").unwrap();
    remote
        .push(&["+refs/heads/main:refs/heads/main"], None)
        .unwrap();

    let rewritten = mirror.fetch().unwrap();
    assert_ne!(rewritten, first);
    let text = mirror.read(&rewritten, Path::new("clients.toml")).unwrap();
    assert!(
        text.contains(r#"{ name = "staging_api", operations = ["read", "write"] },"#),
        "alice's revocation is gone"
    );
    assert!(
        mirror.read(&first, Path::new("clients.toml")).is_ok(),
        "the old commit stays readable"
    );
}
