//! `policy report` (issue 18, item 4) over a real workspace's git history and a real server's
//! audit trail: the changes since a revision with author, commit, message and each widening
//! change's decision replay; the identity tree with depths and lifetimes; who may do what;
//! revocations; the root keys; unused access; and an HTML file that carries everything itself
//! and cannot be made to run what a commit message says.

mod support;

use std::path::Path;

use hessra_console::server::AuditConfig;
use hessra_console::workspace::{self, Workspace};
use serde_json::{Value, json};
use support::{Demo, post};

const AGENT: &str = "uri:urn:company:alice:agent1";
const REVOKED_ID: &str = "a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4e5f60718";

fn cli(args: &[&str]) -> (i32, String) {
    support::run_cli(args)
}

/// Commits `files` of the workspace's clone as `author`.
fn commit_as(ws: &Workspace, author: &str, files: &[&str], message: &str) -> String {
    let repo = git2::Repository::open(&ws.policy).unwrap();
    let mut config = repo.config().unwrap();
    config.set_str("user.name", author).unwrap();
    config
        .set_str(
            "user.email",
            &format!("{}@example.com", author.to_lowercase()),
        )
        .unwrap();
    let paths: Vec<&Path> = files.iter().map(Path::new).collect();
    hessra_console::gitops::commit_files(&ws.policy, &paths, message).unwrap()
}

fn edit_policy(ws: &Workspace, change: impl FnOnce(&str) -> String) {
    let file = ws.policy_file();
    let text = std::fs::read_to_string(&file).unwrap();
    let changed = change(&text);
    assert_ne!(changed, text, "the edit must change the policy");
    std::fs::write(&file, changed).unwrap();
}

fn head(ws: &Workspace) -> String {
    let repo = git2::Repository::open(&ws.policy).unwrap();
    repo.head().unwrap().target().unwrap().to_string()
}

/// A workspace whose history after its first commit has a widening commit, a narrowing one
/// with a hostile message, and a revocation; returns it with the first commit's id.
fn reviewed_workspace(dir: &Path) -> (Workspace, String) {
    let ws = workspace::init(dir, false).unwrap();
    let base = head(&ws);
    edit_policy(&ws, |text| {
        text.replacen(
            "  { name = \"production_api\", operations = [\"read\"] },\n]\nidentity_token_enabled = true\nidentity_token_duration = 3600",
            "  { name = \"production_api\", operations = [\"read\"] },\n  { name = \"staging_api\", operations = [\"write\"] },\n]\nidentity_token_enabled = true\nidentity_token_duration = 3600",
            1,
        )
    });
    commit_as(
        &ws,
        "Mallory",
        &["clients.toml"],
        "Let agent1 write staging\n\nIt deploys now.",
    );
    edit_policy(&ws, |text| {
        text.replacen(
            "  { name = \"artifacts\", operations = [\"read\", \"write\"] },\n  { name = \"staging_api\", operations = [\"read\", \"write\"] },",
            "  { name = \"artifacts\", operations = [\"read\"] },\n  { name = \"staging_api\", operations = [\"read\", \"write\"] },",
            1,
        )
    });
    commit_as(
        &ws,
        "Bob",
        &["clients.toml"],
        "<script>alert('owned')</script> narrow ci",
    );
    let policy = ws.policy_file();
    let (code, out) = cli(&[
        "policy",
        "revoke-token",
        "--file",
        policy.to_str().unwrap(),
        "--id",
        REVOKED_ID,
        "--reason",
        "laptop lost",
        "--by",
        "security",
    ]);
    assert_eq!(code, 0, "{out}");
    commit_as(
        &ws,
        "Sec",
        &["revocations.toml"],
        "Revoke the lost laptop's token",
    );
    (ws, base)
}

fn commit_messages(report: &Value) -> Vec<String> {
    report["history"]["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["commit"]["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_report_lists_every_change_since_a_revision_with_its_author_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, base) = reviewed_workspace(dir.path());
    let policy = ws.policy_file();
    let policy = policy.to_str().unwrap();
    let (code, out) = cli(&[
        "policy", "report", "--file", policy, "--since", &base, "--format", "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();

    // The three commits after the base, newest first; the base itself is not listed.
    assert_eq!(
        commit_messages(&report),
        [
            "Revoke the lost laptop's token",
            "<script>alert('owned')</script> narrow ci",
            "Let agent1 write staging\n\nIt deploys now.",
        ]
    );
    let commits = report["history"]["commits"].as_array().unwrap();
    let widening = &commits[2];
    assert_eq!(widening["commit"]["author"], "Mallory");
    let changes = widening["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0]["widens"], true);
    assert_eq!(changes[0]["subject"], AGENT);
    let replay = changes[0]["replay"].as_array().unwrap();
    assert_eq!(replay.len(), 1, "{replay:#?}");
    assert_eq!(
        replay[0]["request"],
        json!({ "identity": AGENT, "resource": "staging_api", "operation": "write", "domain": null })
    );
    assert_eq!(replay[0]["before"]["allowed"], false);
    assert_eq!(replay[0]["after"]["allowed"], true);
    // The narrowing commit widens nothing and replays nothing.
    let narrowing = commits[1]["changes"].as_array().unwrap();
    assert!(!narrowing.is_empty());
    assert!(
        narrowing
            .iter()
            .all(|c| c["widens"] == false && c["replay"].as_array().unwrap().is_empty()),
        "{narrowing:#?}"
    );
    // The revocation commit lists the revocation.
    let revocation = &commits[0]["changes"][0];
    assert_eq!(revocation["change"], "revocation");
    assert_eq!(revocation["added"], true);
    assert!(report["uncommitted"].is_null(), "the working file is clean");

    // The identity tree, with depths and lifetimes.
    let identity = |name: &str| {
        report["identities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["identity"] == name)
            .unwrap_or_else(|| panic!("{name} in the tree"))
            .clone()
    };
    assert_eq!(identity("uri:urn:company:alice")["depth"], 0);
    assert_eq!(identity(AGENT)["depth"], 1);
    assert_eq!(identity(AGENT)["identity_token_lifetime"], 3600);
    assert_eq!(identity("uri:urn:mycompany")["kind"], "realm");
    assert_eq!(
        identity("uri:urn:mycompany:admin-user")["role"],
        json!("admin")
    );

    // Who may do what: agent1 now writes on staging_api; ci no longer writes artifacts.
    let resources: Vec<&str> = report["matrix"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let cell = |who: &str, resource: &str| {
        let column = resources.iter().position(|r| *r == resource).unwrap();
        report["matrix"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["who"] == who)
            .unwrap_or_else(|| panic!("{who} in the matrix"))["operations"][column]
            .clone()
    };
    assert_eq!(cell(AGENT, "staging_api"), json!(["write"]));
    assert_eq!(cell("uri:urn:company:ci", "artifacts"), json!(["read"]));
    assert_eq!(
        cell("role admin in uri:urn:mycompany", "api"),
        json!(["delete", "read", "write"])
    );

    // Revocations, the root keys, the findings.
    assert_eq!(report["revocations"][0]["id"], REVOKED_ID);
    assert_eq!(report["revocations"][0]["reason"], "laptop lost");
    assert_eq!(report["keys"]["status"], "read");
    assert_eq!(report["keys"]["keys"][0]["state"], "active");
    assert!(report["findings"].as_array().is_some());
    assert!(report["unused"].is_null(), "no audit given");

    // Without --since, the whole history: the base commit too.
    let (code, out) = cli(&["policy", "report", "--file", policy, "--format", "json"]);
    assert_eq!(code, 0, "{out}");
    let all: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(commit_messages(&all).len(), 4);
}

#[test]
fn an_uncommitted_edit_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace::init(dir.path(), false).unwrap();
    let policy = ws.policy_file();
    let (code, out) = cli(&[
        "policy",
        "grant",
        "--file",
        policy.to_str().unwrap(),
        "uri:urn:company:ops",
        "staging_api",
        "read",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(&[
        "policy",
        "report",
        "--file",
        policy.to_str().unwrap(),
        "--since",
        "HEAD",
    ]);
    assert_eq!(code, 0, "{out}");
    let not_committed = out
        .split("### Not committed")
        .nth(1)
        .expect("an uncommitted section");
    assert!(
        not_committed.contains("+ WIDENS uri:urn:company:ops may now read on staging\\_api"),
        "{out}"
    );
    assert!(
        not_committed.contains("denied → allowed"),
        "the decision replay: {out}"
    );
    assert!(
        out.contains("No commit changed the policy"),
        "nothing since HEAD: {out}"
    );
}

#[test]
fn the_html_report_is_self_contained_and_escapes_what_it_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, base) = reviewed_workspace(dir.path());
    let output = dir.path().join("review.html");
    let (code, out) = cli(&[
        "policy",
        "report",
        "--file",
        ws.policy_file().to_str().unwrap(),
        "--since",
        &base,
        "--format",
        "html",
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 widening change(s)"), "the summary: {out}");
    let html = std::fs::read_to_string(&output).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    for external in ["<script", " src=", "<link", "url(", "@import"] {
        assert!(!html.contains(external), "{external} in the report");
    }
    assert!(
        html.contains("&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt; narrow ci"),
        "the hostile message is shown, escaped"
    );
    for section in [
        "Identity tree",
        "Who may do what",
        "Revocations",
        "Root keys",
        "Validation",
    ] {
        assert!(html.contains(&format!("<h2>{section}")), "{section}");
    }
    assert!(html.contains("laptop lost"));
    assert!(html.contains("Mallory"));

    // Markdown to a file: the hostile message cannot open raw HTML there either.
    let output = dir.path().join("review.md");
    let (code, out) = cli(&[
        "policy",
        "report",
        "--file",
        ws.policy_file().to_str().unwrap(),
        "--since",
        &base,
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let md = std::fs::read_to_string(&output).unwrap();
    assert!(md.contains("\\<script\\>"), "{md}");
    assert!(!md.contains("<script>"));
}

#[test]
fn a_revision_that_does_not_exist_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace::init(dir.path(), false).unwrap();
    let (code, out) = cli(&[
        "policy",
        "report",
        "--file",
        ws.policy_file().to_str().unwrap(),
        "--since",
        "no-such-tag",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no-such-tag"), "{out}");

    // Outside git, history cannot be asked for; without --since the rest is reported.
    let loose = dir.path().join("loose.toml");
    std::fs::copy(ws.policy_file(), &loose).unwrap();
    let (code, out) = cli(&[
        "policy",
        "report",
        "--file",
        loose.to_str().unwrap(),
        "--since",
        "HEAD",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--since HEAD"), "{out}");
    let (code, out) = cli(&["policy", "report", "--file", loose.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not in a git repository"), "{out}");
    assert!(out.contains("pass --key-set FILE"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_access_comes_from_the_servers_trail() {
    let demo = Demo::start().await;
    let file = demo.dir.path().join("audit.jsonl");
    let server = support::start_audited(&demo, &file, AuditConfig::default()).await;
    let (status, body) = post(
        &demo.as_identity("uri:urn:company:alice"),
        &format!("{}/request_token", server.url()),
        json!({ "resource": "production_api", "operation": "read" }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    server.shutdown().await;
    let (code, out) = cli(&[
        "policy",
        "report",
        "--file",
        demo.ws.policy_file().to_str().unwrap(),
        "--audit",
        file.to_str().unwrap(),
        "--window",
        "7d",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["unused"]["window"], "7d");
    let unused = support::report_unused(&report);
    assert!(
        unused.contains(&"uri:urn:company:alice write production_api".to_string()),
        "{unused:#?}"
    );
    assert!(
        !unused.contains(&"uri:urn:company:alice read production_api".to_string()),
        "used: {unused:#?}"
    );
}
