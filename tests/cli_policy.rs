//! The policy command line on a real git repository holding the demo policy.

use std::path::Path;
use std::process::{Command, Output};

use git2::{Repository, Signature};
use serde_json::Value;

const FIXTURE: &str = include_str!("../fixtures/clients.toml");

struct PolicyRepo {
    dir: tempfile::TempDir,
}

impl PolicyRepo {
    fn new() -> PolicyRepo {
        let dir = tempfile::tempdir().unwrap();
        Repository::init(dir.path()).unwrap();
        let repo = PolicyRepo { dir };
        repo.commit(FIXTURE, "demo policy");
        repo
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("clients.toml")
    }

    fn commit(&self, text: &str, message: &str) {
        std::fs::write(self.file(), text).unwrap();
        let repo = Repository::open(self.dir.path()).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("clients.toml")).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let me = Signature::now("Operator", "ops@example.com").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(Some("HEAD"), &me, &me, message, &tree, &parents)
            .unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hessra-console"))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        let value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap(), value)
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn validate_finds_the_file_at_the_repository_root() {
    let repo = PolicyRepo::new();
    std::fs::create_dir(repo.dir.path().join("sub")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hessra-console"))
        .args(["policy", "validate"])
        .current_dir(repo.dir.path().join("sub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("7 clients, 0 error(s), 0 warning(s)"),
        "{}",
        stdout(&out)
    );

    let outside = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hessra-console"))
        .args(["policy", "validate"])
        .current_dir(outside.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("pass --file PATH"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_reports_findings_with_locations_and_exits_1() {
    let repo = PolicyRepo::new();
    let broken = FIXTURE
        .replace("role = \"admin\"", "role = \"boss\"")
        .replace("operator = true", "operatr = true");
    std::fs::write(repo.file(), &broken).unwrap();
    let (code, json) = repo.json(&["policy", "validate"]);
    assert_eq!(code, 1);
    assert_eq!(json["valid"], false);
    assert_eq!(json["errors"], 2);
    let codes: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["unknown-key", "unknown-role"]);
    assert!(json["findings"][0]["location"]["line"].as_u64().unwrap() > 60);

    std::fs::write(repo.file(), "[[clients]\n").unwrap();
    let out = repo.run(&["policy", "validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("clients.toml:1:"), "{}", stderr(&out));
    let out = repo.run(&["policy", "validate", "missing.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read missing.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn tree_and_can() {
    let repo = PolicyRepo::new();
    let out = repo.run(&["policy", "tree"]);
    assert!(
        stdout(&out).contains("└─ agent1  production_api: read"),
        "{}",
        stdout(&out)
    );
    let (code, json) = repo.json(&["policy", "can", "uri:urn:mycompany:admin-user"]);
    assert_eq!(code, 0);
    assert_eq!(
        json["permissions"]["api"],
        serde_json::json!(["delete", "read", "write"])
    );
    let out = repo.run(&[
        "policy",
        "can",
        "uri:urn:company:alice:agent1",
        "-r",
        "production_api",
        "-o",
        "write",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("deny: uri:urn:company:alice:agent1 may only read on production_api"),
        "{}",
        stdout(&out)
    );
    let out = repo.run(&["policy", "can", "uri:urn:company:nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not configured"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn edits_are_written_with_a_semantic_summary() {
    let repo = PolicyRepo::new();
    let (code, json) = repo.json(&[
        "policy",
        "grant",
        "uri:urn:company:ci:deploy",
        "staging_api",
        "read",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["written"], true);
    assert_eq!(json["changes"][0]["widens"], true);
    assert!(
        repo.text()
            .contains(r#"{ name = "staging_api", operations = ["write", "read"] },"#)
    );

    let before = repo.text();
    let out = repo.run(&[
        "policy",
        "grant",
        "uri:urn:company:ci:deploy",
        "production_api",
        "write",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refused: the edit would make the policy invalid"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("error[exceeds-parent]"),
        "{}",
        stderr(&out)
    );
    assert_eq!(repo.text(), before, "a refused edit writes nothing");
    let out = repo.run(&[
        "policy",
        "grant",
        "uri:urn:company:ci:deploy",
        "production_api",
        "write",
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("error[exceeds-parent]"),
        "--force still shows what is wrong"
    );

    let out = repo.run(&["policy", "add-client", "uri:urn:company:bob"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = repo.run(&[
        "policy",
        "assign",
        "uri:urn:mycompany",
        "uri:urn:mycompany:carol",
        "admin",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = repo.run(&[
        "policy",
        "unassign",
        "uri:urn:mycompany",
        "uri:urn:mycompany:admin-user",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = repo.run(&["policy", "remove-client", "uri:urn:company:ops"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = repo.run(&[
        "policy",
        "revoke",
        "uri:urn:company:alice",
        "production_api",
        "delete",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    // Every comment of the fixture that belongs to a surviving client is still there.
    let text = repo.text();
    for comment in [
        "# Alice runs the production API",
        "# --- Realms",
        "identity_token_duration = 28800 # 8 hours",
    ] {
        assert!(text.contains(comment), "{comment}");
    }
}

#[test]
fn diff_against_revisions_and_files_with_replay() {
    let repo = PolicyRepo::new();
    let edited = FIXTURE.replace(
        r#"  { name = "production_api", operations = ["read"] },
]
identity_token_enabled = true
identity_token_duration = 3600 # 1 hour"#,
        r#"  { name = "production_api", operations = ["read", "write"] },
]
identity_token_enabled = true
identity_token_duration = 3600 # 1 hour"#,
    );
    assert_ne!(edited, FIXTURE);
    repo.commit(&edited, "agent1 may write");
    std::fs::write(repo.dir.path().join("requests.txt"), "# who what\nuri:urn:company:alice:agent1 production_api write\nuri:urn:company:alice production_api read\n").unwrap();

    let (code, json) = repo.json(&[
        "policy",
        "diff",
        "HEAD~1",
        "HEAD",
        "--replay",
        "requests.txt",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["widening"], 1);
    assert_eq!(json["changes"][0]["change"], "granted");
    assert_eq!(json["replay"][0]["before"]["allowed"], false);
    assert_eq!(json["replay"][0]["after"]["allowed"], true);

    std::fs::write(repo.dir.path().join("old.toml"), FIXTURE).unwrap();
    let out = repo.run(&["policy", "diff", "old.toml"]);
    assert!(
        stdout(&out)
            .contains("+ WIDENS uri:urn:company:alice:agent1 may now write on production_api"),
        "{}",
        stdout(&out)
    );
    let out = repo.run(&["policy", "diff", "no-such-rev"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"no-such-rev\" is not a revision"),
        "{}",
        stderr(&out)
    );
    std::fs::write(repo.dir.path().join("bad.txt"), "just two\n").unwrap();
    let out = repo.run(&["policy", "diff", "HEAD~1", "--replay", "bad.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad.txt:1: expected IDENTITY RESOURCE OPERATION"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn revoke_token_writes_revocations_beside_the_policy_and_commit_takes_both() {
    use hessra_console::token::{self, Delegation, IdentityClaims, KeyPair};
    let repo = PolicyRepo::new();
    let git = Repository::open(repo.dir.path()).unwrap();
    let mut config = git.config().unwrap();
    config.set_str("user.name", "Operator").unwrap();
    config.set_str("user.email", "ops@example.com").unwrap();
    let root = KeyPair::new();
    let minted = token::mint_identity(
        &root,
        &IdentityClaims {
            subject: "uri:urn:company:alice".into(),
            expires_at: token::clock::unix_now() + 3600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    let delegated = token::delegate(
        &minted,
        Some(&root.public()),
        &Delegation::new(
            "uri:urn:company:alice:agent1",
            token::clock::unix_now() + 600,
        ),
    )
    .unwrap()
    .token;
    let token_file = repo.dir.path().join("agent.token");
    std::fs::write(&token_file, &delegated).unwrap();
    let token_file = token_file.to_str().unwrap();
    let expected = token::inspect(&delegated, None, 0).unwrap().blocks[1]
        .revocation_id
        .clone();

    let out = repo.run(&[
        "policy",
        "revoke-token",
        "--token-file",
        token_file,
        "--reason",
        "host lost",
        "--by",
        "ops",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("block 1 (delegation to uri:urn:company:alice:agent1)"),
        "{}",
        stdout(&out)
    );
    let written = std::fs::read_to_string(repo.dir.path().join("revocations.toml")).unwrap();
    assert!(written.starts_with("# Revoked tokens."), "{written}");
    assert!(written.contains(&expected));

    // Twice is refused; a block that does not exist is a usage error; a reason is required.
    let again = repo.run(&[
        "policy",
        "revoke-token",
        "--token-file",
        token_file,
        "--reason",
        "x",
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already revoked"),
        "{}",
        stderr(&again)
    );
    let bad = repo.run(&[
        "policy",
        "revoke-token",
        "--token-file",
        token_file,
        "--block",
        "5",
        "--reason",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("--block 5 does not exist"),
        "{}",
        stderr(&bad)
    );
    let no_reason = repo.run(&["policy", "revoke-token", "--token-file", token_file]);
    assert_eq!(no_reason.status.code(), Some(2));

    let (code, listed) = repo.json(&["policy", "revocations"]);
    assert_eq!(code, 0);
    assert_eq!(listed["revoked"][0]["id"], expected.as_str());
    assert_eq!(listed["revoked"][0]["reason"], "host lost");

    let out = repo.run(&["policy", "commit", "-m", "revoke agent1's token"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let head = git.head().unwrap().peel_to_tree().unwrap();
    assert!(
        head.get_path(Path::new("revocations.toml")).is_ok(),
        "not committed"
    );

    // A broken list refuses the commit, naming the line.
    std::fs::write(
        repo.dir.path().join("revocations.toml"),
        "[[revoked]]\nid = 7\n",
    )
    .unwrap();
    let out = repo.run(&["policy", "commit", "-m", "broken"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("revocations.toml"),
        "{}",
        stderr(&out)
    );
}
