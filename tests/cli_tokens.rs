//! The token command line, driven as a user would: the real binary, a temporary token store,
//! key files on disk. Exit statuses: 0 valid, 1 invalid or denied, 2 usage or I/O error.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hessra_console::token::{self, IdentityClaims, clock::unix_now, keys};
use serde_json::Value;

const ALICE: &str = "uri:urn:company:alice";
const AGENT: &str = "uri:urn:company:alice:agent1";

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let sandbox = Sandbox {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = sandbox.run(&["keys", "generate", "--out", "root.key"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        sandbox
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hessra-console"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("HESSRA_CONSOLE_TOKEN_DIR", self.path("tokens"))
            .env_remove("HESSRA_PUBLIC_KEY");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        let value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: stdout {:?} stderr {:?}", stdout(&out), stderr(&out)));
        (code(&out), value)
    }

    fn root(&self) -> token::KeyPair {
        keys::read_private_key_file(&self.path("root.key")).unwrap()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Mints alice's identity token into the store as "default".
    fn mint_alice(&self) {
        let out = self.run(&[
            "token",
            "mint-identity",
            "--root-key-file",
            "root.key",
            "-s",
            ALICE,
            "--ttl",
            "8h",
            "--save-as",
            "default",
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const KEY: [&str; 2] = ["--public-key-file", "root.key.pub"];

#[test]
fn keys_generate_writes_private_key_0600_and_refuses_to_overwrite() {
    let sandbox = Sandbox::new();
    assert_eq!(mode(&sandbox.path("root.key")), 0o600);
    let public = std::fs::read_to_string(sandbox.path("root.key.pub")).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    let out = sandbox.run(&["keys", "generate", "--out", "root.key"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("already exists; pass --force"),
        "{}",
        stderr(&out)
    );
    let (status, json) = sandbox.json(&[
        "keys",
        "generate",
        "--out",
        "p256.key",
        "--algorithm",
        "secp256r1",
    ]);
    assert_eq!(status, 0);
    assert!(
        json["public_key"]
            .as_str()
            .unwrap()
            .starts_with("secp256r1/")
    );
}

#[test]
fn mint_delegate_verify_inspect_end_to_end() {
    let sandbox = Sandbox::new();
    sandbox.mint_alice();
    assert_eq!(mode(&sandbox.path("tokens/default.token")), 0o600);
    assert_eq!(mode(&sandbox.path("tokens")), 0o700);

    let mut args = vec![
        "identity",
        "delegate",
        "-i",
        AGENT,
        "--ttl",
        "1h",
        "--save-as",
        "agent1",
    ];
    args.extend(KEY);
    let (status, json) = sandbox.json(&args);
    assert_eq!(status, 0, "{json}");
    assert_eq!(json["delegated_identity"], AGENT);
    assert_eq!(json["from_identity"], ALICE);
    assert_eq!(json["depth"], 1);
    assert_eq!(json["signature_checked"], true);

    let mut args = vec!["identity", "verify", "--token-name", "agent1"];
    args.extend(KEY);
    let (status, json) = sandbox.json(&args);
    assert_eq!(status, 0, "{json}");
    assert_eq!(json["identity"], AGENT);
    assert_eq!(json["chain"], serde_json::json!([ALICE, AGENT]));

    let mut args = vec!["identity", "verify", "--token-name", "agent1", "-i", ALICE];
    args.extend(KEY);
    let (status, json) = sandbox.json(&args);
    assert_eq!(status, 1, "{json}");
    assert_eq!(json["valid"], false);
    assert_eq!(json["denials"][0]["reason"]["kind"], "identity_mismatch");
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("presented as uri:urn:company:alice")
    );

    let mut args = vec!["identity", "inspect", "--token-name", "agent1"];
    args.extend(KEY);
    let (status, json) = sandbox.json(&args);
    assert_eq!(status, 0);
    assert_eq!(json["kind"], "identity");
    assert_eq!(json["status"], "valid");
    assert_eq!(json["signature"]["status"], "valid");
    assert_eq!(json["blocks"][1]["role"]["role"], "delegation");
    assert_eq!(json["blocks"][1]["role"]["to"], AGENT);

    let out = sandbox.run(&["token", "inspect", "--token-name", "agent1"]);
    let text = stdout(&out);
    assert!(
        text.contains("Block 1 · delegation to uri:urn:company:alice:agent1"),
        "{text}"
    );
    assert!(text.contains("signatures not checked"), "{text}");
}

#[test]
fn delegation_refuses_lateral_upward_and_prefix_sharing_targets() {
    let sandbox = Sandbox::new();
    sandbox.mint_alice();
    let cases = [
        ("uri:urn:company:alice2", "only shares a prefix"),
        ("uri:urn:company:bob", "is not under"),
        ("uri:urn:company", "is an ancestor"),
        (ALICE, "own identity"),
        ("uri:urn:company:alice:", "empty segment"),
    ];
    for (target, expected) in cases {
        let out = sandbox.run(&["identity", "delegate", "-i", target]);
        assert_eq!(code(&out), 2, "{target}");
        assert!(
            stderr(&out).contains(expected),
            "{target}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn delegation_policy_is_enforced_and_bad_policies_are_located() {
    let sandbox = Sandbox::new();
    sandbox.mint_alice();
    let out = sandbox.run(&[
        "identity",
        "delegate",
        "-i",
        AGENT,
        "--policy",
        "check if operation($op), $op == \"read\";\ncheck if resource(",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("invalid delegation policy at line 2"),
        "{}",
        stderr(&out)
    );

    sandbox.write("policy.dl", "check if operation($op), $op == \"read\";\n");
    let out = sandbox.run(&[
        "identity",
        "delegate",
        "-i",
        AGENT,
        "--policy-file",
        "policy.dl",
        "--save-as",
        "reader",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let verify = |extra: &[&str]| {
        let mut args = vec!["identity", "verify", "--token-name", "reader"];
        args.extend(KEY);
        args.extend(extra);
        sandbox.run(&args)
    };
    assert_eq!(code(&verify(&["--operation", "read"])), 0);
    let denied = verify(&["--operation", "write"]);
    assert_eq!(code(&denied), 1);
    let missing = verify(&[]);
    assert_eq!(code(&missing), 1);
    assert!(
        stderr(&missing).contains("reads the request's operation"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn depth_limit_is_enforced_when_delegating() {
    let sandbox = Sandbox::new();
    sandbox.mint_alice();
    let out = sandbox.run(&[
        "identity",
        "delegate",
        "-i",
        AGENT,
        "--save-as",
        "one",
        "--max-depth",
        "1",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = sandbox.run(&[
        "identity",
        "delegate",
        "--from-token",
        "one",
        "-i",
        "uri:urn:company:alice:agent1:worker",
        "--max-depth",
        "1",
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("delegation depth 2 exceeds the limit of 1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_tokens_get_clear_errors() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    // A padded token (its byte length is not a multiple of 3), so that stripping '=' matters.
    let good = ["", ":x", ":xy"]
        .iter()
        .map(|suffix| {
            token::mint_identity(
                &root,
                &IdentityClaims {
                    subject: format!("{ALICE}{suffix}"),
                    expires_at: unix_now() + 600,
                    delegatable: true,
                    domain: None,
                },
            )
            .unwrap()
        })
        .find(|t| t.ends_with('='))
        .unwrap();
    let cases = [
        (
            "junk",
            "malformed base64: invalid character ' '".to_string(),
            "hello world this is junk",
        ),
        (
            "not-biscuit",
            "not a Biscuit token".to_string(),
            "aGVsbG8gd29ybGQ=",
        ),
        ("truncated", "padding".to_string(), &good[..good.len() - 7]),
        (
            "unpadded",
            "padding".to_string(),
            good.trim_end_matches('='),
        ),
        ("empty", "the token is empty".to_string(), ""),
    ];
    for (name, expected, text) in &cases {
        let path = sandbox.write(name, text);
        let path = path.to_str().unwrap();
        let out = sandbox.run(&["token", "inspect", "--token-file", path]);
        assert_eq!(code(&out), 2, "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected.as_str()),
            "{name}: {}",
            stderr(&out)
        );
    }
    let out = sandbox.run(&["token", "inspect", "--token-file", "does-not-exist"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("cannot read token from does-not-exist"),
        "{}",
        stderr(&out)
    );

    let out = sandbox.run(&[
        "identity",
        "verify",
        "--token-name",
        "missing",
        "--public-key-file",
        "root.key.pub",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no token named \"missing\""),
        "{}",
        stderr(&out)
    );

    // Wrong key: a verdict, exit 1.
    sandbox.run(&["keys", "generate", "--out", "other.key"]);
    sandbox.write("good", &good);
    let out = sandbox.run(&[
        "identity",
        "verify",
        "--token-file",
        "good",
        "--public-key-file",
        "other.key.pub",
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("do not verify with root key ed25519/"),
        "{}",
        stderr(&out)
    );
    let out = sandbox.run(&[
        "identity",
        "inspect",
        "--token-file",
        "good",
        "--public-key-file",
        "other.key.pub",
    ]);
    assert_eq!(
        code(&out),
        1,
        "inspect reports a bad signature as a verdict"
    );

    // No key at all: a usage error that says what to pass.
    let out = sandbox.run(&["identity", "verify", "--token-file", "good"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--public-key"), "{}", stderr(&out));
    let out = sandbox.run(&[
        "identity",
        "verify",
        "--token-file",
        "good",
        "--public-key",
        "nonsense",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("not a public key"),
        "{}",
        stderr(&out)
    );

    // Expired: exit 1 with when.
    let expired = token::mint_identity(
        &root,
        &IdentityClaims {
            subject: ALICE.into(),
            expires_at: unix_now() - 120,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    let out = sandbox.run_with_stdin(
        &[
            "identity",
            "verify",
            "--token-file",
            "-",
            "--public-key-file",
            "root.key.pub",
        ],
        &expired,
    );
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("expired at"), "{}", stderr(&out));
    assert!(stderr(&out).contains("minutes ago"), "{}", stderr(&out));
}

#[test]
fn store_list_prune_delete_import() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let mint = |expires_at| {
        token::mint_identity(
            &root,
            &IdentityClaims {
                subject: ALICE.into(),
                expires_at,
                delegatable: true,
                domain: None,
            },
        )
        .unwrap()
    };
    let out = sandbox.run_with_stdin(&["identity", "import", "live"], &mint(unix_now() + 600));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = sandbox.run_with_stdin(&["identity", "import", "old"], &mint(unix_now() - 600));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = sandbox.run_with_stdin(&["identity", "import", "junk"], "not a token");
    assert_eq!(code(&out), 2, "junk must not enter the store");
    let out = sandbox.run_with_stdin(
        &["identity", "import", "../escape"],
        &mint(unix_now() + 600),
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("invalid token name"),
        "{}",
        stderr(&out)
    );

    let (_, json) = sandbox.json(&["identity", "list"]);
    assert_eq!(json["tokens"], serde_json::json!(["live", "old"]));
    let (_, json) = sandbox.json(&["identity", "list", "--details"]);
    assert_eq!(json["tokens"][0]["status"], "valid");
    assert_eq!(json["tokens"][1]["status"], "expired");
    assert_eq!(json["tokens"][0]["identity"], ALICE);

    let (_, json) = sandbox.json(&["identity", "prune", "--dry-run"]);
    assert_eq!(json["would_remove"], serde_json::json!(["old"]));
    assert!(sandbox.path("tokens/old.token").exists());
    let (_, json) = sandbox.json(&["identity", "prune"]);
    assert_eq!(json["removed"], serde_json::json!(["old"]));
    assert!(!sandbox.path("tokens/old.token").exists());

    let out = sandbox.run(&["identity", "delete", "live"]);
    assert_eq!(code(&out), 0);
    let out = sandbox.run(&["identity", "delete", "live"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no token named"), "{}", stderr(&out));
}

#[test]
fn authorize_verify_reads_flags_files_and_stdin() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&[
        "token",
        "mint-authz",
        "--root-key-file",
        "root.key",
        "-s",
        ALICE,
        "-r",
        "production_api",
        "-o",
        "read",
        "--token-only",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let authz = stdout(&out).trim().to_string();

    let base = [
        "authorize",
        "verify",
        "-r",
        "production_api",
        "--public-key-file",
        "root.key.pub",
    ];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, stdin: Option<&str>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        match stdin {
            Some(input) => sandbox.run_with_stdin(&refs, input),
            None => sandbox.run(&refs),
        }
    };
    assert_eq!(
        code(&run(
            with(&["-o", "read", "-s", ALICE, "--token", &authz]),
            None
        )),
        0
    );
    assert_eq!(
        code(&run(with(&["-o", "read", "-s", ALICE]), Some(&authz))),
        0,
        "stdin"
    );
    assert_eq!(
        code(&run(with(&["-o", "read"]), Some(&authz))),
        0,
        "capability mode"
    );
    let denied = run(with(&["-o", "write", "-s", ALICE]), Some(&authz));
    assert_eq!(code(&denied), 1);
    assert!(
        stderr(&denied).contains("to write on production_api"),
        "{}",
        stderr(&denied)
    );
    let other = run(
        with(&["-o", "read", "-s", "uri:urn:company:alice2"]),
        Some(&authz),
    );
    assert_eq!(code(&other), 1);
    let identity_token = {
        sandbox.mint_alice();
        std::fs::read_to_string(sandbox.path("tokens/default.token")).unwrap()
    };
    let wrong_kind = run(with(&["-o", "read", "-s", ALICE]), Some(&identity_token));
    assert_eq!(code(&wrong_kind), 1);
    assert!(
        stderr(&wrong_kind).contains("an authorization token was expected"),
        "{}",
        stderr(&wrong_kind)
    );
}

#[test]
fn usage_errors_exit_2_and_no_command_needs_a_terminal() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["identity", "delegate"]);
    assert_eq!(code(&out), 2);
    let out = sandbox.run(&["identity", "delegate", "-i", AGENT, "--ttl", "soon"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not a duration"), "{}", stderr(&out));
    // No command opens the console, which needs a terminal; without one it says so.
    let out = sandbox.run(&[]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("needs a terminal"),
        "{}",
        stderr(&out)
    );
    let out = sandbox.run(&["--help"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("--readonly"), "{}", stdout(&out));
}

/// `hessra-console … | head -1`: the reader goes away, and the command neither panics nor
/// complains about it.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hessra-console"))
        .args(["keys", "generate", "--out"])
        .arg(dir.path().join("root.key"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
    assert!(dir.path().join("root.key").exists());
}

/// The P-256 dodge, offline as an operator sees it: `token inspect` and `identity verify` show
/// one revocation id for a token and its `(r, n − s)` twin, and `identity verify --revocations`
/// refuses both once either form of the id is revoked.
#[test]
fn a_p256_twin_shows_and_revokes_as_one_token() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&[
        "keys",
        "generate",
        "--out",
        "p256.key",
        "--algorithm",
        "secp256r1",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let root = keys::read_private_key_file(&sandbox.path("p256.key")).unwrap();
    let original = token::mint_identity(
        &root,
        &IdentityClaims {
            subject: ALICE.into(),
            expires_at: unix_now() + 3600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    let twin = support::p256_twin(&original, 0);
    sandbox.write("original.token", &original);
    sandbox.write("twin.token", &twin);
    let key = ["--public-key-file", "p256.key.pub"];
    let mut shown = Vec::new();
    for file in ["original.token", "twin.token"] {
        let mut args = vec!["token", "inspect", "--token-file", file];
        args.extend(key);
        let (status, json) = sandbox.json(&args);
        assert_eq!(status, 0, "{json}");
        assert_eq!(json["signature"]["status"], "valid", "{json}");
        shown.push(
            json["blocks"][0]["revocation_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let mut args = vec!["identity", "verify", "--token-file", file];
        args.extend(key);
        let (status, json) = sandbox.json(&args);
        assert_eq!(status, 0, "both twins are genuine signatures: {json}");
    }
    assert_eq!(shown[0], shown[1], "one id for both twins");
    let raw = support::raw_revocation_ids(&original)[0].clone();
    assert_ne!(raw, support::raw_revocation_ids(&twin)[0]);

    // Revoked in whichever raw form the original has (another tool would show that one).
    sandbox.write(
        "revocations.toml",
        &format!("[[revoked]]\nid = \"{raw}\"\nreason = \"laptop stolen\"\nby = \"ops\"\n"),
    );
    for file in ["original.token", "twin.token"] {
        let mut args = vec![
            "identity",
            "verify",
            "--token-file",
            file,
            "--revocations",
            "revocations.toml",
        ];
        args.extend(key);
        let (status, json) = sandbox.json(&args);
        assert_eq!(status, 1, "{json}");
        assert_eq!(json["revoked"], true, "{json}");
        let error = json["error"].as_str().unwrap();
        assert!(
            error.contains("token revoked: its block 0") && error.contains("laptop stolen"),
            "{error}"
        );
    }
    sandbox.write("revocations.toml", "[[revoked]]\nid = \"nothex\"\n");
    let mut args = vec![
        "identity",
        "verify",
        "--token-file",
        "twin.token",
        "--revocations",
        "revocations.toml",
    ];
    args.extend(key);
    let out = sandbox.run(&args);
    assert_eq!(code(&out), 2, "a list with errors is not applied silently");
    assert!(
        stderr(&out).contains("not a revocation id"),
        "{}",
        stderr(&out)
    );
}
