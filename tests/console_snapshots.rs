//! TestBackend + insta snapshots of every screen at 80×24 and 120×40, plus `NO_COLOR` and
//! read-only variants. The policy is the demo fixture (no git, no server: deterministic), the
//! clock is frozen, and the token is minted with a fixed key.

use std::path::PathBuf;

use hessra_console::console::ScreenId;
use hessra_console::console::theme::Theme;
use hessra_console::console::{App, Context, ui};
use hessra_console::keyset::KeyState;
use hessra_console::server::KeyInfo;
use hessra_console::token::{self, IdentityClaims, KeyPair};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Modifier;

const NOW: i64 = 1_790_000_000;

fn app(readonly: bool, monochrome: bool) -> App {
    App::new(context(readonly, monochrome))
}

fn context(readonly: bool, monochrome: bool) -> Context {
    let theme = Theme::built_in("default").unwrap();
    let theme = if monochrome {
        theme.without_color()
    } else {
        theme
    };
    Context {
        readonly,
        theme,
        ..Context::new(
            PathBuf::from("/demo/policy/clients.toml"),
            hessra_console::workspace::DEMO_POLICY.to_string(),
            NOW,
        )
    }
}

fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::render(frame, app)).unwrap();
    terminal
}

fn with_token(mut app: App) -> App {
    let root = KeyPair::from(&biscuit_key());
    let minted = token::mint_identity(
        &root,
        &IdentityClaims {
            subject: "uri:urn:company:alice".into(),
            expires_at: NOW + 3_725,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    let delegated = token::delegate(
        &minted,
        Some(&root.public()),
        &token::Delegation::new("uri:urn:company:alice:agent1", NOW + 600),
    )
    .unwrap();
    app.load_token(delegated.token, "test".into());
    // What the ReadRevocations job the load queued reports for a repository revoking nothing.
    app.handle_result(hessra_console::console::jobs::JobResult::Revocations(
        Box::new(
            hessra_console::console::revocation_status::RevocationLists {
                head: Some(Default::default()),
                ..Default::default()
            },
        ),
    ));
    // No worker runs here: forget the job so no spinner shows.
    for (id, _) in app.take_jobs() {
        app.job_done(id);
    }
    app
}

fn biscuit_key() -> biscuit_auth::PrivateKey {
    biscuit_auth::PrivateKey::from_bytes(&[7u8; 32], biscuit_auth::Algorithm::Ed25519).unwrap()
}

/// Delegation blocks are signed with a fresh key, so their revocation ids change per run.
fn stable(text: &str) -> String {
    mask_after(&mask_after(text, "revocation id "), "signed by ed25519/")
}

fn mask_after(text: &str, marker: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let start = at + marker.len();
        out.push_str(&rest[..start]);
        let hex = rest[start..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        out.push_str(&"#".repeat(hex));
        rest = &rest[start + hex..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_screen_at_80x24_and_120x40() {
    for (width, height) in [(80, 24), (120, 40)] {
        for screen in ScreenId::ALL {
            let mut app = with_token(app(false, false));
            app.go_to(screen);
            let name = format!(
                "{}_{width}x{height}",
                app.screens()
                    .get(screen)
                    .title()
                    .replace(" & ", "_")
                    .to_lowercase()
            );
            let text = stable(&draw(&app, width, height).backend().to_string());
            insta::assert_snapshot!(name, text);
        }
    }
}

#[test]
fn read_only_shows_ro_and_hides_mutating_hints() {
    let mut app = app(true, false);
    assert_eq!(
        app.screen(),
        ScreenId::Review,
        "a read-only console opens on the review"
    );
    app.go_to(ScreenId::Clients);
    let terminal = draw(&app, 80, 24);
    insta::assert_snapshot!("clients_readonly_80x24", terminal.backend());
    let text = format!("{}", terminal.backend());
    assert!(text.contains(" RO "));
    assert!(!text.contains("a add"));
}

#[test]
fn no_color_keeps_the_selection_visible() {
    let app = app(false, true);
    let terminal = draw(&app, 80, 24);
    insta::assert_snapshot!("clients_no_color_80x24", terminal.backend());
    let buffer = terminal.backend().buffer();
    // Row 2 is the first client, selected: reverse video and the ▶ marker, no colour.
    let cell = &buffer[(1, 2)];
    assert_eq!(cell.symbol(), "▶");
    assert!(cell.modifier.contains(Modifier::REVERSED));
    assert_eq!(cell.fg, ratatui::style::Color::Reset);
}

#[test]
fn help_and_confirm_popups() {
    let mut app = app(false, false);
    app.dispatch(hessra_console::console::keymap::Action::Help);
    insta::assert_snapshot!("help_80x24", draw(&app, 80, 24).backend());
    app.close_popup();
    app.dispatch(hessra_console::console::keymap::Action::RemoveClient);
    insta::assert_snapshot!("confirm_remove_80x24", draw(&app, 80, 24).backend());
}

/// The Changes and Server screens with what a running console holds: git status, HEAD's policy
/// (one grant behind the working copy), a server status and an audit feed whose requests the
/// change would decide differently.
#[test]
fn changes_and_server_with_git_and_server_data() {
    use hessra_console::console::jobs::{GitView, JobResult, ServerStatus};
    use hessra_console::gitops::RepoStatus;
    use hessra_console::server::AuditEvent;

    let mut app = App::new(Context {
        has_repo: true,
        server: Some(("https://127.0.0.1:4443".into(), true)),
        operator: Some("uri:urn:company:ops".into()),
        ..context(false, false)
    });
    let working = hessra_console::workspace::DEMO_POLICY;
    let head = working.replacen(
        "{ name = \"staging_api\", operations = [\"read\", \"write\"] },",
        "{ name = \"staging_api\", operations = [\"read\"] },",
        1,
    );
    assert_ne!(head, working, "the fixture changed: update this edit");
    app.handle_result(JobResult::Git(Ok(GitView {
        status: RepoStatus {
            branch: "main".into(),
            upstream: Some("origin/main".into()),
            file: "modified".into(),
            ahead: 1,
            behind: 0,
            head: Some("89abcdef0123456789abcdef0123456789abcdef".into()),
        },
        head_text: Some(head.clone()),
        working_text: Some(working.to_string()),
        text_diff: String::new(),
        revocations_file: "missing".into(),
        keys_file: "missing".into(),
        new_revocations: Vec::new(),
        revocation_errors: Vec::new(),
        revocation_changes: Vec::new(),
        revocations_diff: String::new(),
    })));
    app.handle_result(JobResult::HeadParsed {
        policy: Ok(hessra_console::policy::load(&head, NOW).unwrap().policy),
        text: head,
    });
    app.handle_result(JobResult::ServerStatus(Ok(ServerStatus {
        response_msg: "Server status".into(),
        listen: "127.0.0.1:4443".into(),
        policy_source: "git origin.git branch main".into(),
        policy_revision: "0123456789abcdef0123456789abcdef01234567".into(),
        policy_loaded_at: NOW - 42,
        clients: 7,
        last_reload_error: None,
        requests: 3,
        allowed: 2,
        denied: 1,
        started_at: NOW - 600,
        audit_file: None,
        audit_key: None,
        keys: vec![
            KeyInfo {
                id: Some(1),
                state: KeyState::Retiring,
                public_key: format!("ed25519/{}", "ab".repeat(32)),
                created_at: Some(NOW - 86_400),
                activated_at: Some(NOW - 86_400),
                retiring_since: Some(NOW - 600),
                verify_until: Some(NOW + 7_200),
                retired_at: None,
            },
            KeyInfo {
                id: Some(2),
                state: KeyState::Active,
                public_key: format!("ed25519/{}", "cd".repeat(32)),
                created_at: Some(NOW - 3_600),
                activated_at: Some(NOW - 600),
                retiring_since: None,
                verify_until: None,
                retired_at: None,
            },
            KeyInfo {
                id: Some(3),
                state: KeyState::Next,
                public_key: format!("ed25519/{}", "ef".repeat(32)),
                created_at: Some(NOW - 60),
                activated_at: None,
                retiring_since: None,
                verify_until: None,
                retired_at: None,
            },
        ],
        key_set_error: None,
        missing_private_keys: Vec::new(),
    })));
    let event = |seq: u64, operation: &str, result: &str, reason: &str| AuditEvent {
        seq,
        time: NOW - 30 + seq as i64,
        caller: Some("uri:urn:company:alice".into()),
        auth: "mtls".into(),
        endpoint: "/request_token".into(),
        resource: Some("staging_api".into()),
        operation: Some(operation.into()),
        result: result.into(),
        reason: reason.into(),
        revocation_id: None,
        expires_at: None,
    };
    app.handle_result(JobResult::ServerAudit(Ok((
        vec![
            event(1, "read", "allow", "granted by policy"),
            event(2, "write", "deny", "no grant of write on staging_api"),
        ],
        2,
    ))));
    for screen in [ScreenId::Changes, ScreenId::Server] {
        app.go_to(screen);
        for (width, height) in [(80, 24), (120, 40)] {
            let name = format!(
                "{}_data_{width}x{height}",
                app.screens().get(screen).title().to_lowercase()
            );
            insta::assert_snapshot!(name, draw(&app, width, height).backend());
        }
    }
    app.go_to(ScreenId::Server);
    app.dispatch(hessra_console::console::keymap::Action::ShowActivity);
    insta::assert_snapshot!("server_activity_80x24", draw(&app, 80, 24).backend());
    let terminal = draw(&app, 120, 40);
    insta::assert_snapshot!("server_activity_120x40", terminal.backend());
    let activity = terminal.backend().to_string();
    assert!(activity.contains("✗ denied"), "{activity}");
    assert!(
        activity.contains("never"),
        "configured clients never seen are listed: {activity}"
    );
    app.dispatch(hessra_console::console::keymap::Action::SortActivity);
    let sorted = draw(&app, 120, 40).backend().to_string();
    assert!(sorted.contains("sorted by identity"), "{sorted}");
    app.dispatch(hessra_console::console::keymap::Action::ShowKeys);
    insta::assert_snapshot!("server_keys_80x24", draw(&app, 80, 24).backend());
    insta::assert_snapshot!("server_keys_120x40", draw(&app, 120, 40).backend());
    app.go_to(ScreenId::Changes);
    let text = draw(&app, 120, 40).backend().to_string();
    assert!(
        text.contains("WIDENS uri:urn:company:alice may now write on staging_api"),
        "{text}"
    );
    assert!(text.contains("deny → allow"), "{text}");
}

/// The hint bar follows the focused pane: the Roles pane's role actions, the raw editor's keys
/// (no `:`, `?` or `q`, which type themselves there).
#[test]
fn hints_of_the_focused_pane() {
    use hessra_console::console::keymap::Action;
    let mut app = app(false, false);
    app.go_to(ScreenId::Roles);
    app.dispatch(Action::FocusNext);
    insta::assert_snapshot!("roles_focused_80x24", draw(&app, 80, 24).backend());
    app.go_to(ScreenId::Clients);
    app.dispatch(Action::EditRaw);
    insta::assert_snapshot!("clients_editor_80x24", draw(&app, 80, 24).backend());
}

/// A terminal opens the console with `App::start`: the first frame says what is being read
/// while a worker reads it, keys typed meanwhile act once it is in, and a file that does not
/// parse still opens the editor on it.
#[test]
fn the_first_frame_is_drawn_while_the_policy_is_read() {
    use hessra_console::console::jobs::{self, Env};
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let env = Env::new(
        PathBuf::from("/demo/policy/clients.toml"),
        None,
        None,
        None,
        runtime.handle().clone(),
    );
    let mut app = App::start(context(false, false));
    let first = draw(&app, 80, 24).backend().to_string();
    assert!(
        first.contains("Reading /demo/policy/clients.toml"),
        "first frame:\n{first}"
    );
    assert!(app.loaded().is_none() && app.policy_pending());
    app.handle_key(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::NONE));
    assert_eq!(
        app.screen(),
        ScreenId::Clients,
        "the key waits for the policy"
    );

    jobs::settle(&mut app, &env, true);
    assert!(app.loaded().is_some());
    assert!(!app.is_dirty(), "reading is not an edit");
    assert_eq!(app.screen(), ScreenId::Delegations, "the waiting key acted");
    let read = draw(&app, 80, 24).backend().to_string();
    assert!(!read.contains("Reading"), "{read}");
    assert!(read.contains("alice"), "{read}");

    let broken = Context::new(
        PathBuf::from("/demo/policy/clients.toml"),
        "[[clients]\nidentity = ".into(),
        NOW,
    );
    let mut app = App::start(broken);
    jobs::settle(&mut app, &env, true);
    assert!(app.loaded().is_none() && !app.policy_pending());
    let shown = draw(&app, 80, 24).backend().to_string();
    assert!(shown.contains("does not parse"), "{shown}");
    assert!(
        shown.contains("[[clients]"),
        "the editor opens on the file: {shown}"
    );
}

/// The Fleet screen with a replica in each standing — in sync, lagging, refused (the rollout
/// being followed ends on it), down — and the audit feed merged across replicas.
#[test]
fn the_fleet_screen_with_a_replica_in_every_standing() {
    use hessra_console::console::jobs::{FleetView, JobResult, ServerStatus};
    use hessra_console::fleet::{ReplicaReport, Standing};
    use hessra_console::server::AuditEvent;

    let mut app = App::new(Context {
        has_repo: true,
        server: Some(("https://127.0.0.1:4443".into(), true)),
        operator: Some("uri:urn:company:ops".into()),
        ..context(false, false)
    });
    let expected = "4c775cd7171a16849b45a438fb279633ee934ef1";
    let previous = "76a4f11b0c8e2d6a5f3b9e1c7d4a2b8f6e0c1d3a";
    app.handle_result(JobResult::ServerStatus(Ok(ServerStatus {
        response_msg: "Server status".into(),
        listen: "127.0.0.1:4443".into(),
        policy_source: "git origin.git branch main".into(),
        policy_revision: expected.into(),
        policy_loaded_at: NOW - 2,
        clients: 7,
        last_reload_error: None,
        requests: 120,
        allowed: 117,
        denied: 3,
        started_at: NOW - 600,
        audit_file: None,
        audit_key: None,
        keys: Vec::new(),
        key_set_error: None,
        missing_private_keys: Vec::new(),
    })));
    let replica = |name: &str, port: u16, standing: Standing, applied: &str| ReplicaReport {
        name: name.into(),
        url: format!("https://127.0.0.1:{port}"),
        standing,
        applied: Some(applied.into()),
        applied_at: Some(NOW - 2),
        last_error: None,
        keys: Some("key 1 active · 96cb70".into()),
        missing_private_keys: Vec::new(),
        requests: Some(120),
        requests_per_second: Some(0.2),
    };
    let refusal = "clients.toml: line 12: unknown field `operatons` (keeping 76a4f11b)";
    let replicas = vec![
        replica("a", 4443, Standing::InSync, expected),
        ReplicaReport {
            missing_private_keys: vec![2],
            ..replica("b", 4444, Standing::Lagging, previous)
        },
        ReplicaReport {
            last_error: Some(refusal.into()),
            ..replica(
                "c",
                4445,
                Standing::Refused {
                    reason: refusal.into(),
                },
                previous,
            )
        },
        ReplicaReport {
            applied: None,
            applied_at: None,
            keys: None,
            requests: None,
            requests_per_second: None,
            ..replica(
                "d",
                4446,
                Standing::Down {
                    error: "connection refused".into(),
                },
                previous,
            )
        },
    ];
    // A push was made: the replicas were nudged (d could not be) and the rollout is followed.
    app.handle_result(JobResult::FleetNudged {
        expected: Some(expected.into()),
        nudged: vec![
            ("a".into(), Ok(())),
            ("b".into(), Ok(())),
            ("c".into(), Ok(())),
            ("d".into(), Err("connection refused".into())),
        ],
    });
    app.handle_result(JobResult::Fleet(Ok(Some(FleetView {
        expected: expected.into(),
        replicas: replicas.clone(),
    }))));
    // Three seconds on, a has answered 6 more requests, b and c none: the recent rate.
    app.advance(3);
    let mut later = replicas;
    later[0].requests = Some(126);
    app.handle_result(JobResult::Fleet(Ok(Some(FleetView {
        expected: expected.into(),
        replicas: later,
    }))));
    let event = |seq: u64, result: &str, reason: &str| AuditEvent {
        seq,
        time: NOW - 30 + seq as i64,
        caller: Some("uri:urn:company:alice".into()),
        auth: "mtls".into(),
        endpoint: "/request_token".into(),
        resource: Some("production_api".into()),
        operation: Some("read".into()),
        result: result.into(),
        reason: reason.into(),
        revocation_id: None,
        expires_at: None,
    };
    app.handle_result(JobResult::ServerAudit(Ok((
        vec![event(1, "allow", "granted by policy")],
        1,
    ))));
    app.handle_result(JobResult::FleetAudit(vec![
        (
            "b".into(),
            Ok((vec![event(2, "allow", "granted by policy")], 1)),
        ),
        (
            "c".into(),
            Ok((
                vec![event(3, "deny", "no grant of read on production_api")],
                1,
            )),
        ),
        ("d".into(), Err("connection refused".into())),
    ]));
    app.go_to(ScreenId::Server);
    insta::assert_snapshot!("fleet_80x24", draw(&app, 80, 24).backend());
    let terminal = draw(&app, 120, 40);
    insta::assert_snapshot!("fleet_120x40", terminal.backend());
    let shown = terminal.backend().to_string();
    assert!(shown.contains("6 Fleet"), "the tab is renamed: {shown}");
    assert!(
        shown.contains("Fleet (1/4 in sync with 4c775cd7)"),
        "{shown}"
    );
    assert!(
        shown.contains("rollout of 4c775cd7: replica c refused it"),
        "the rollout ends on the refusal: {shown}"
    );
    // Merged newest first, each event tagged with its replica (a is the console's own).
    let tags: Vec<&str> = shown
        .lines()
        .filter(|l| l.contains("/request_token"))
        .map(|l| {
            let at = l.find(|c: char| c.is_ascii_digit()).unwrap();
            l[at + 8..].split_whitespace().next().unwrap()
        })
        .collect();
    assert_eq!(tags, ["c", "b", "a"], "{shown}");

    app.dispatch(hessra_console::console::keymap::Action::ShowFleet);
    insta::assert_snapshot!("fleet_replicas_120x40", draw(&app, 120, 40).backend());
}
