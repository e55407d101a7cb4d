//! The console's unused-access marks and tightening (issue 18, item 2, the console part), driven
//! by keys against a trail the real server wrote over TLS: Alice reads production_api, the realm
//! mints for its admin, who deletes on api. The Clients and Roles screens mark exactly what was
//! not exercised; ctrl-t proposes removing it, proved by replay, and stages each edit as its own
//! undo step; read-only mode refuses it; no trail means no marks and a reason, never a crash.

mod support;

use std::path::PathBuf;

use hessra_console::console::Context;
use hessra_console::console::app::{Level, Popup};
use hessra_console::server::AuditConfig;
use ratatui::crossterm::event::{KeyCode, KeyModifiers};
use serde_json::json;
use support::console::{Console, Setup, flash, press, screen, special};
use support::{Demo, post};

const ALICE: &str = "uri:urn:company:alice";
const REALM: &str = "uri:urn:mycompany";
const ADMIN: &str = "uri:urn:mycompany:admin-user";

/// A trail written by the real server for the known requests; the server is gone after.
fn real_trail() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let demo = Demo::start().await;
        let server = support::start_audited(&demo, &file, AuditConfig::default()).await;
        let url = |path: &str| format!("{}{path}", server.url());
        let (status, body) = post(
            &demo.as_identity(ALICE),
            &url("/request_token"),
            json!({ "resource": "production_api", "operation": "read" }),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
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
        demo.server.shutdown().await;
    });
    (dir, file)
}

fn with_trail(trail: Option<PathBuf>, readonly: bool) -> Console {
    Console::with(Setup::default(), |context| Context {
        audit_trail: trail,
        readonly,
        ..context
    })
}

fn ctrl_t(f: &mut Console) {
    special(f, KeyCode::Char('t'), KeyModifiers::CONTROL);
}

/// The line after the first one containing `needle`, in a drawn screen.
fn line_after(shown: &str, needle: &str) -> String {
    let lines: Vec<&str> = shown.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not on screen:\n{shown}"));
    lines[at + 1].to_string()
}

#[test]
fn the_clients_and_roles_screens_mark_exactly_the_access_the_trail_never_saw_used() {
    let (_dir, trail) = real_trail();
    let mut f = with_trail(Some(trail), false);
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("unused in 30d (audit)"), "{shown}");
    // Alice (selected first) read production_api but never wrote it or touched staging_api.
    let after_production = line_after(&shown, "production_api: read, write");
    assert!(
        after_production.contains("write: unused · never used"),
        "{shown}"
    );
    let after_staging = line_after(&shown, "staging_api: read, write");
    assert!(
        after_staging.contains("read: unused · never used"),
        "{shown}"
    );
    let row = |shown: &str, identity: &str| {
        shown
            .lines()
            .find(|l| l.contains(&format!("{identity} ")) || l.contains(&format!("{identity}[")))
            .unwrap_or_else(|| panic!("{identity} not listed:\n{shown}"))
            .to_string()
    };
    assert!(!row(&shown, ALICE).contains("unused"), "{shown}");
    assert!(
        row(&shown, "uri:urn:company:ci").contains("unused"),
        "{shown}"
    );

    // The realm's admin deleted on api: the admin role's read and write, and the default
    // role's read, are unused; the assignment was used.
    press(&mut f, "3");
    let shown = screen(&f, 200, 40);
    let admin_role = shown
        .lines()
        .find(|l| l.contains("admin  api:read,write,delete"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        admin_role.contains("unused: api:read api:write"),
        "{admin_role}"
    );
    let member = shown
        .lines()
        .find(|l| l.contains("member (default)"))
        .unwrap();
    assert!(member.contains("unused: api:read"), "{member}");
    let assignment = shown.lines().find(|l| l.contains("admin-user →")).unwrap();
    assert!(!assignment.contains("unused"), "{assignment}");
}

/// The demo policy as shipped (its CA fixed, so no finding depends on today's date), read by
/// a console whose jobs run inline.
fn fixture_console(trail: PathBuf) -> hessra_console::console::App {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let path = PathBuf::from("/demo/policy/clients.toml");
    let env = hessra_console::console::jobs::Env::new(
        path.clone(),
        None,
        None,
        None,
        runtime.handle().clone(),
    );
    let mut app = hessra_console::console::App::new(Context {
        audit_trail: Some(trail),
        ..Context::new(
            path,
            hessra_console::workspace::DEMO_POLICY.to_string(),
            support::console::NOW,
        )
    });
    hessra_console::console::jobs::settle(&mut app, &env, true);
    app
}

#[test]
fn clients_screen_with_unused_marks_snapshot() {
    let (_dir, trail) = real_trail();
    let app = fixture_console(trail);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    terminal
        .draw(|frame| hessra_console::console::ui::render(frame, &app))
        .unwrap();
    insta::assert_snapshot!(
        "clients_unused_marks_120x40",
        terminal.backend().to_string()
    );
}

#[test]
fn ctrl_t_stages_the_proved_proposal_as_edits_that_undo_one_at_a_time() {
    let (_dir, trail) = real_trail();
    let mut f = with_trail(Some(trail), false);
    let original = f.app.text().to_string();
    ctrl_t(&mut f);
    let (title, lines) = match f.app.popup() {
        Some(Popup::Confirm { title, lines, .. }) => (title.clone(), lines.clone()),
        _ => panic!("ctrl-t asks first; flash: {}", flash(&f)),
    };
    assert!(title.contains("Tighten"), "{title}");
    let text = lines.join("\n");
    assert!(
        text.contains("proof: 2 requests replayed, 0 changed"),
        "{text}"
    );
    assert!(
        text.contains("revoke write on production_api from uri:urn:company:alice"),
        "{text}"
    );
    assert!(text.contains("remove client uri:urn:company:ci"), "{text}");
    // Twelve edits: ten listed, the rest counted, all of them kept in Messages.
    let edits = 12;
    assert!(lines[0].contains("Stage 12 edits"), "{text}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("  - ")).count(), 10);
    assert!(text.contains("… and 2 more"), "{text}");
    let kept = &f.app.messages().back().unwrap().text;
    assert_eq!(kept.lines().filter(|l| l.starts_with("  - ")).count(), 12);
    assert_eq!(f.app.text(), original, "nothing changes before the answer");

    press(&mut f, "y");
    assert_eq!(
        flash(&f),
        format!("staged {edits} edits from the tightening proposal; review on Changes, u undoes")
    );
    let staged = f.app.text().to_string();
    assert!(f.app.is_dirty());
    assert!(!staged.contains("uri:urn:company:alice:agent1"), "{staged}");
    assert!(staged.contains(ALICE), "used: kept");
    assert_eq!(
        std::fs::read_to_string(&f.policy_path).unwrap(),
        original,
        "nothing is written to disk"
    );

    // One undo step per edit: every undo changes the text, and the last brings it back.
    let mut seen = vec![staged];
    for step in 1..=edits {
        press(&mut f, "u");
        let now = f.app.text().to_string();
        assert!(!seen.contains(&now), "undo {step} changed nothing");
        if step < edits {
            assert_ne!(now, original, "undo {step} of {edits} undid them all");
        }
        seen.push(now);
    }
    assert_eq!(f.app.text(), original);
    assert!(!f.app.is_dirty());
}

#[test]
fn read_only_mode_refuses_tightening_and_leaves_the_policy_alone() {
    let (_dir, trail) = real_trail();
    let mut f = with_trail(Some(trail), true);
    let original = f.app.text().to_string();
    // Read-only opens on the review; tightening is a Clients and Roles key.
    press(&mut f, "1");
    ctrl_t(&mut f);
    assert!(f.app.popup().is_none());
    assert!(flash(&f).contains("read-only"), "{}", flash(&f));
    assert_eq!(f.app.text(), original);
    // The marks are still shown: looking is allowed.
    assert!(screen(&f, 120, 40).contains("unused in 30d (audit)"));
}

#[test]
fn without_a_trail_nothing_is_marked_and_tightening_says_why() {
    let mut f = with_trail(None, false);
    assert!(!screen(&f, 120, 40).contains("unused"));
    ctrl_t(&mut f);
    assert!(f.app.popup().is_none());
    assert!(flash(&f).contains("needs an audit trail"), "{}", flash(&f));
}

#[test]
fn a_missing_trail_is_said_once_in_messages_and_marks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("audit.jsonl");
    let mut f = with_trail(Some(missing.clone()), false);
    let notes = |f: &Console| {
        f.app
            .messages()
            .iter()
            .filter(|m| m.text.starts_with("unused access is not marked"))
            .count()
    };
    assert_eq!(notes(&f), 1);
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("unused: no audit trail"), "{shown}");
    assert!(!shown.contains("never used"), "{shown}");
    // f5 reads it again; still missing, still said once.
    special(&mut f, KeyCode::F(5), KeyModifiers::NONE);
    assert_eq!(notes(&f), 1);
    ctrl_t(&mut f);
    assert!(flash(&f).contains("no audit trail yet"), "{}", flash(&f));

    // Garbage in the file is skipped, not a crash: nothing was used, so all of it is unused.
    std::fs::write(&missing, "not json\n{\"torn\": \n\u{0}\u{1}\n").unwrap();
    special(&mut f, KeyCode::F(5), KeyModifiers::NONE);
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("unused in 30d (audit)"), "{shown}");
    assert!(
        f.app.messages().iter().all(|m| m.level != Level::Error),
        "{:?}",
        f.app.messages()
    );
}

/// `identity` asks the console's own server for `operation` on `resource`, over mTLS.
fn request(f: &Console, identity: &str, resource: &str, operation: &str) {
    let (cert, key) = f.ws.client_cert(identity);
    let mut pem = std::fs::read(cert).unwrap();
    pem.extend(std::fs::read(key).unwrap());
    let ca = std::fs::read(&f.ws.ca_cert).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
        .http1_only()
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let url = format!("{}/request_token", f.server.as_ref().unwrap().url());
    let (status, body) = f.runtime.block_on(post(
        &client,
        &url,
        json!({ "resource": resource, "operation": operation }),
        None,
    ));
    assert_eq!(status, 200, "{body}");
}

/// A second passes and the console polls its server (status and the audit feed).
fn poll(f: &mut Console) {
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    f.app.tick(hessra_console::token::clock::unix_now());
    f.settle();
}

fn listed(shown: &str, identity: &str) -> String {
    shown
        .lines()
        .find(|l| l.contains(&format!(" {identity} ")))
        .unwrap_or_else(|| panic!("{identity} not listed:\n{shown}"))
        .to_string()
}

#[test]
fn new_decisions_in_the_live_feed_update_the_marks() {
    let mut f = Console::with(
        Setup {
            server: true,
            polls: true,
            audit_trail: true,
            ..Setup::default()
        },
        |context| Context {
            frozen_clock: false,
            ..context
        },
    );
    // A fresh server has decided nothing yet: whatever the trail says, no one is marked used.
    request(&f, ALICE, "production_api", "read");
    poll(&mut f);
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("unused in 30d (audit)"), "{shown}");
    assert!(!listed(&shown, ALICE).contains("unused"), "{shown}");
    assert!(
        listed(&shown, "uri:urn:company:ci").contains("unused"),
        "{shown}"
    );
    let after_production = line_after(&shown, "production_api: read, write");
    assert!(after_production.contains("write: unused"), "{shown}");

    request(&f, "uri:urn:company:ci", "artifacts", "read");
    poll(&mut f);
    let shown = screen(&f, 120, 40);
    assert!(
        !listed(&shown, "uri:urn:company:ci").contains("unused"),
        "ci's request came through the feed:\n{shown}"
    );
}

/// The report the Review screen writes (`E`) carries the unused access of the console's trail.
#[test]
fn the_exported_review_report_carries_the_unused_access() {
    let (_dir, trail) = real_trail();
    let mut f = with_trail(Some(trail), true);
    let report = f.dir.path().join("review.json");
    press(&mut f, "8E");
    for _ in 0..100 {
        f.app.handle_key(support::console::key(KeyCode::Backspace));
    }
    press(&mut f, report.to_str().unwrap());
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert!(flash(&f).starts_with("wrote "), "{}", flash(&f));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["unused"]["window"], "30d");
    let unused = support::report_unused(&report);
    assert!(
        unused.contains(&format!("{ALICE} write production_api")),
        "{unused:#?}"
    );
    assert!(
        !unused.contains(&format!("{ALICE} read production_api")),
        "used: {unused:#?}"
    );
}
