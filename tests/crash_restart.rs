//! Crash safety of the server's sync: `serve` killed with SIGKILL at arbitrary moments while
//! valid and invalid commits are pushed, restarted each time (also when the remote's tip is
//! invalid), and finally restarted with the remote gone. It must start from a good commit it had
//! applied (never a truncated record, never an invalid commit) and serve.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use hessra_console::gitops;
use hessra_console::policy::{Edit, EditSession};
use hessra_console::workspace;

mod support;

fn serve(ws: &Path) -> (Child, String) {
    support::serve_process(&[
        "--workspace".as_ref(),
        ws.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--poll-interval".as_ref(),
        "50ms".as_ref(),
    ])
}

fn push(ws: &workspace::Workspace, round: usize, valid: bool) -> String {
    let file = ws.policy_file();
    let text = std::fs::read_to_string(&file).unwrap();
    let text = if valid {
        let mut session = EditSession::open(&text, 0).unwrap_or_else(|_| {
            // Recover from the previous invalid round first.
            EditSession::open(workspace::DEMO_POLICY, 0).unwrap()
        });
        let edit = Edit::Grant {
            identity: "uri:urn:company:ci:deploy".into(),
            resource: format!("crash{round}"),
            operation: "read".into(),
        };
        session.apply(&edit).unwrap();
        session.text().to_string()
    } else {
        format!("{text}\n[[clients]\nbroken =\n")
    };
    std::fs::write(&file, text).unwrap();
    let commit = gitops::commit_file(
        &ws.policy,
        Path::new("clients.toml"),
        &format!("round {round}"),
    )
    .unwrap();
    gitops::push(&ws.policy, "origin", "main").unwrap();
    commit
}

fn status(ws: &workspace::Workspace, url: &str) -> serde_json::Value {
    let (cert, key) = ws.client_cert(workspace::DEMO_OPERATOR);
    let mut pem = std::fs::read(cert).unwrap();
    pem.extend(std::fs::read(key).unwrap());
    hessra_console::server::install_crypto_provider();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .tls_certs_only(
                reqwest::Certificate::from_pem_bundle(&std::fs::read(&ws.ca_cert).unwrap())
                    .unwrap(),
            )
            .identity(reqwest::Identity::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        client
            .get(format!("{url}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

#[test]
fn a_server_killed_during_sync_restarts_on_a_good_policy() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace::init(&dir.path().join("ws"), false).unwrap();
    let repo = git2::Repository::open(&ws.policy).unwrap();
    let mut config = repo.config().unwrap();
    config.set_str("user.name", "Operator").unwrap();
    config.set_str("user.email", "ops@example.com").unwrap();

    let mut valid_commits = vec![
        gitops::read_branch_file(&ws.origin, "main", Path::new("clients.toml"))
            .unwrap()
            .1,
    ];
    for round in 0..8 {
        let (mut child, url) = serve(&ws.root);
        if round % 3 == 0 && round > 0 {
            // The remote's tip is the invalid commit of the round before: the server still
            // starts, on the last good commit, and says why it did not take the tip.
            let status = status(&ws, &url);
            assert!(status["last_reload_error"].is_object(), "{status}");
            assert!(
                valid_commits.contains(&status["policy_revision"].as_str().unwrap().to_string())
            );
        }
        let valid = round % 3 != 2;
        let commit = push(&ws, round, valid);
        if valid {
            valid_commits.push(commit);
        }
        // Kill it at a different moment of its sync cycle each round.
        std::thread::sleep(Duration::from_millis(20 + 37 * round as u64 % 120));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    // The remote is gone; the restarted server serves the last good commit it remembers.
    std::fs::remove_dir_all(&ws.origin).unwrap();
    let (mut child, url) = serve(&ws.root);
    let status = status(&ws, &url);
    let revision = status["policy_revision"].as_str().unwrap().to_string();
    assert!(
        valid_commits.contains(&revision),
        "started from {revision}, which is not a valid commit it was given"
    );
    assert_eq!(status["clients"], 7, "{status}");
    child.kill().unwrap();
    child.wait().unwrap();
}
