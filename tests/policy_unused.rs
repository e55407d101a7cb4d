//! `policy unused` and `policy tighten` against the real server's audit files (issue 18, items 1
//! and 2): after a known set of requests over TLS — Alice reads production_api, the realm mints
//! for its admin, who deletes on api — exactly the access that was not exercised is listed, in
//! text and JSON, and a window shorter than the time since shows it with its last use; the
//! tightening proposal replays every request seen with none changed, and applied, keeps the
//! file's comments, still allows what was used and no longer allows what was not.

mod support;

use std::time::Duration;

use hessra_console::server::{self, AuditConfig};
use serde_json::{Value, json};
use support::{Demo, post};

const ALICE: &str = "uri:urn:company:alice";
const REALM: &str = "uri:urn:mycompany";
const ADMIN: &str = "uri:urn:mycompany:admin-user";

fn cli(args: &[&str]) -> (i32, String) {
    support::run_cli(args)
}

/// Each unused entry as `kind identity role resource operation`.
fn entries(report: &Value) -> Vec<String> {
    report["unused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let field = |name: &str| e[name].as_str().unwrap_or("-").to_string();
            format!(
                "{} {} {} {} {}",
                field("kind"),
                field("identity"),
                field("role"),
                field("resource"),
                field("operation")
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_access_is_what_the_servers_trail_never_saw_allowed() {
    let demo = Demo::start().await;
    let file = demo.dir.path().join("audit.jsonl");
    let server = support::start_audited(
        &demo,
        &file,
        AuditConfig {
            max_file_bytes: 2_048,
            ..AuditConfig::default()
        },
    )
    .await;
    let url = |path: &str| format!("{}{path}", server.url());
    let (status, body) = post(
        &demo.as_identity(ALICE),
        &url("/request_token"),
        json!({ "resource": "production_api", "operation": "read" }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Refused requests are not use: Alice may not delete.
    let (status, _) = post(
        &demo.as_identity(ALICE),
        &url("/request_token"),
        json!({ "resource": "production_api", "operation": "delete" }),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = post(
        &demo.as_identity(REALM),
        &url("/mint_identity_token"),
        json!({ "subject": ADMIN, "duration": null }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let admin = body["token"].as_str().unwrap().to_string();
    let (status, body) = post(
        &demo.anonymous(),
        &url("/request_token"),
        json!({ "resource": "api", "operation": "delete", "domain": REALM }),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    server.shutdown().await;
    assert!(
        !server::audit_rotated_files(&file).unwrap().is_empty(),
        "the trail spans rotated files"
    );

    let policy = demo.ws.policy_file();
    let (policy, audit) = (policy.to_str().unwrap(), file.to_str().unwrap());
    let (code, out) = cli(&[
        "policy", "unused", "--file", policy, "--audit", audit, "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let unused = entries(&report);
    let listed = |entry: &str| unused.iter().any(|u| u == entry);
    // Used: not listed.
    assert!(
        !listed(&format!("grant {ALICE} - production_api read")),
        "{unused:#?}"
    );
    assert!(!listed(&format!("identity {ALICE} - - -")), "{unused:#?}");
    assert!(
        !listed(&format!("identity {REALM} - - -")),
        "minting is use: {unused:#?}"
    );
    assert!(
        !listed(&format!("role_permission {REALM} admin api delete")),
        "{unused:#?}"
    );
    assert!(
        !listed(&format!("role_assignment {ADMIN} admin - -")),
        "{unused:#?}"
    );
    // Not used: listed, never used.
    for entry in [
        format!("grant {ALICE} - production_api write"),
        format!("grant {ALICE} - staging_api read"),
        "identity uri:urn:company:ci - - -".to_string(),
        "grant uri:urn:company:ci - artifacts write".to_string(),
        format!("role_permission {REALM} admin api write"),
        format!("role_permission {REALM} member api read"),
        format!("grant {REALM} - api read"),
    ] {
        assert!(listed(&entry), "{entry} missing from {unused:#?}");
    }
    assert!(
        report["unused"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["last_used"].is_null()),
        "{report:#}"
    );
    assert_eq!(report["trail_starts_after_window"], true);

    // A window that ends before the requests: everything is unused, with its last use.
    std::thread::sleep(Duration::from_millis(2_100));
    let (code, out) = cli(&[
        "policy", "unused", "--file", policy, "--audit", audit, "--since", "1s",
    ]);
    assert_eq!(code, 0, "{out}");
    let read = out
        .lines()
        .find(|l| l.contains(&format!("{ALICE} read on production_api")))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(read.contains("last used") && read.contains("ago"), "{read}");
    assert!(
        out.contains("role assignment  uri:urn:mycompany:admin-user as admin in uri:urn:mycompany"),
        "{out}"
    );

    // Tighten: proposed, proved, then applied.
    let (code, out) = cli(&["policy", "tighten", "--file", policy, "--audit", audit]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("revoke write on production_api from uri:urn:company:alice"),
        "{out}"
    );
    assert!(
        out.contains("remove client uri:urn:company:alice:agent1"),
        "{out}"
    );
    // CI and both its jobs are unused: the subtree goes as a whole.
    for ci in [
        "uri:urn:company:ci",
        "uri:urn:company:ci:build",
        "uri:urn:company:ci:deploy",
    ] {
        assert!(
            out.contains(&format!("remove client {ci}\n")),
            "{ci}: {out}"
        );
    }
    assert!(
        !out.contains("Not removed: client uri:urn:mycompany (unused)"),
        "the realm minted: {out}"
    );
    assert!(out.contains("Proof: 2 request(s) allowed in the window replayed against the proposed policy: 0 changed; 3 identit(ies) seen still served"), "{out}");
    assert!(out.contains("Run again with --apply"), "{out}");
    let (code, out) = cli(&[
        "policy", "tighten", "--file", policy, "--audit", audit, "--apply", "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["written"], true, "{report:#}");
    assert_eq!(report["proof"]["changed"], 0);
    let after = std::fs::read_to_string(demo.ws.policy_file()).unwrap();
    // The operator is never removed (its status and audit reads are not use; without it
    // operators are locked out), though it sent no request.
    assert!(
        after.contains("# The operations team") && after.contains("uri:urn:company:ops"),
        "the operator is kept:\n{after}"
    );
    // A removed client takes its own comment paragraph with it; the others stay.
    assert!(
        !after.contains("# Alice's automation agent"),
        "agent1 was unused:\n{after}"
    );
    assert!(
        after.contains("# mycompany is a realm"),
        "comments kept:\n{after}"
    );
    assert!(!after.contains("uri:urn:company:alice:agent1"), "{after}");
    let can = |identity: &str, resource: &str, operation: &str| {
        cli(&[
            "policy", "can", "--file", policy, identity, "-r", resource, "-o", operation,
        ])
        .0
    };
    assert_eq!(
        can(ALICE, "production_api", "read"),
        0,
        "used: still allowed"
    );
    assert_eq!(
        can(ADMIN, "api", "delete"),
        0,
        "used through the admin role: still allowed"
    );
    assert_eq!(can(ALICE, "production_api", "write"), 1, "unused: removed");
    assert_eq!(
        can(ADMIN, "api", "write"),
        1,
        "unused role permission: removed"
    );
    let (code, out) = cli(&["policy", "validate", policy]);
    assert_eq!(code, 0, "{out}");
    // Nothing is left to remove.
    let (code, out) = cli(&["policy", "tighten", "--file", policy, "--audit", audit]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Nothing to remove"), "{out}");

    // A missing file is named.
    let (code, out) = cli(&[
        "policy",
        "unused",
        "--file",
        policy,
        "--audit",
        "/nonexistent/audit.jsonl",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("/nonexistent/audit.jsonl: no such audit file"),
        "{out}"
    );
}
