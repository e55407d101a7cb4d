//! The server and the server-backed commands as a user runs them: `demo init`, `serve` in its
//! own process, then `identity authenticate`, `identity delegate`, `authorize request`,
//! `identity mint`, `identity refresh` and `init` against it; SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hessra-console"))
}

struct Served {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Served {
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let out = binary().args(["demo", "init"]).arg(&ws).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut child = binary()
            .args(["serve", "--workspace"])
            .arg(&ws)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("https://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        Served { child, addr, dir }
    }

    fn ws(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    fn cert(&self, slug: &str) -> [String; 4] {
        let clients = self.ws().join("pki/clients");
        [
            "--cert".into(),
            clients.join(format!("{slug}.pem")).display().to_string(),
            "--key".into(),
            clients.join(format!("{slug}.key")).display().to_string(),
        ]
    }

    fn run(&self, args: &[&str]) -> Output {
        binary()
            .args(args)
            .env("HESSRA_CONSOLE_TOKEN_DIR", self.dir.path().join("tokens"))
            .env("HESSRA_SERVER", &self.addr)
            .env("HESSRA_CA", self.ws().join("pki/ca.pem"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env_remove("HESSRA_PUBLIC_KEY")
            .output()
            .unwrap()
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_user_drives_the_server_from_the_command_line() {
    let served = Served::start();
    let alice = served.cert("urn_company_alice");
    let mut args = vec!["identity", "authenticate"];
    args.extend(alice.iter().map(String::as_str));
    let out = served.run(&args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Authenticated as uri:urn:company:alice"),
        "{}",
        text(&out)
    );

    let out = served.run(&[
        "identity",
        "delegate",
        "-i",
        "uri:urn:company:alice:agent1",
        "--save-as",
        "agent1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = served.run(&[
        "authorize",
        "request",
        "-i",
        "agent1",
        "-r",
        "production_api",
        "-o",
        "read",
        "--token-only",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let authz = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = served.run(&[
        "authorize",
        "request",
        "-i",
        "agent1",
        "-r",
        "production_api",
        "-o",
        "write",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("denied (403)"), "{}", text(&out));

    // init caches the public key; local verification uses it.
    let out = served.run(&["init", &served.addr.clone(), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key_path = json["public_key_path"].as_str().unwrap().to_string();
    let out = served.run(&[
        "authorize",
        "verify",
        "--token",
        &authz,
        "-s",
        "uri:urn:company:alice:agent1",
        "-r",
        "production_api",
        "-o",
        "read",
        "--public-key-file",
        &key_path,
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let realm = served.cert("urn_mycompany");
    let mut args = vec![
        "identity",
        "mint",
        "-s",
        "uri:urn:mycompany:bob",
        "--save-as",
        "bob",
    ];
    args.extend(realm.iter().map(String::as_str));
    let out = served.run(&args);
    assert!(out.status.success(), "{}", text(&out));
    let out = served.run(&[
        "authorize",
        "request",
        "-i",
        "bob",
        "-r",
        "api",
        "-o",
        "read",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let out = served.run(&["identity", "refresh"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = served.run(&["identity", "refresh", "--token-name", "agent1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("refreshing a delegated token is refused"),
        "{}",
        text(&out)
    );

    // No certificate, no token: a usage error that says what to pass.
    let out = served.run(&["authorize", "request", "-r", "production_api", "-o", "read"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("needs an identity token"),
        "{}",
        text(&out)
    );

    let status = served.stop();
    assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}");
}

#[test]
fn serve_refuses_readable_keys_and_unreachable_servers_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    assert!(
        binary()
            .args(["demo", "init"])
            .arg(&ws)
            .output()
            .unwrap()
            .status
            .success()
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        ws.join("server/root.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = binary()
        .args(["serve", "--workspace"])
        .arg(&ws)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("readable by other users"),
        "{}",
        text(&out)
    );

    let out = binary()
        .args(["init", "127.0.0.1:9", "--ca"])
        .arg(ws.join("pki/ca.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("cannot reach https://127.0.0.1:9"),
        "{}",
        text(&out)
    );
}

/// Root key rotation from the command line: on the workspace's files while its server runs
/// (picked up at the next sync), and through the server's operator endpoints.
#[test]
fn keys_rotate_from_the_command_line_locally_and_through_the_server() {
    let served = Served::start();
    let ws = served.ws().display().to_string();
    let mut remote = vec!["--server".to_string(), served.addr.clone()];
    remote.extend(served.cert("urn_company_ops"));
    let remote: Vec<&str> = remote.iter().map(String::as_str).collect();
    let with = |head: &[&str], tail: &[&str]| -> Output { served.run(&[head, tail].concat()) };

    let out = with(&["keys", "list"], &remote);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1   active"), "{}", text(&out));

    let out = served.run(&["keys", "add", "--workspace", &ws]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("added key 2"), "{}", text(&out));
    let started = Instant::now();
    loop {
        let out = with(&["keys", "list", "--json"], &remote);
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if listed["keys"].as_array().unwrap().len() == 2 {
            assert_eq!(listed["keys"][1]["state"], "next");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server never took the new key: {listed}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = with(&["keys", "activate", "2"], &remote);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("key 2 now signs; key 1 is retiring"),
        "{}",
        text(&out)
    );
    let out = served.run(&["keys", "retire", "1", "--workspace", &ws]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("cannot be retired yet"),
        "{}",
        text(&out)
    );
    let out = with(&["keys", "retire", "2"], &remote);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("active key"), "{}", text(&out));

    let out = served.run(&["keys", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--workspace DIR"), "{}", text(&out));
    served.stop();
}

/// A server that used a single root key moves to a key set without breaking its tokens.
#[test]
fn keys_init_turns_a_single_root_key_into_a_key_set() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("root.key");
    let out = binary()
        .args(["keys", "generate", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let manifest = dir.path().join("keys.toml");
    let out = binary()
        .args(["keys", "init", "--key-set"])
        .arg(&manifest)
        .arg("--root-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("serve --key-set"), "{}", text(&out));
    let out = binary()
        .args(["keys", "add", "--key-set"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = binary()
        .args(["keys", "activate", "2", "--key-set"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("give --policy"), "{}", text(&out));
    let out = binary()
        .args(["keys", "init", "--key-set"])
        .arg(&manifest)
        .arg("--root-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("already exists"), "{}", text(&out));
}
