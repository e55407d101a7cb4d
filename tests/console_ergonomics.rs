//! Key-driven tests of the console's ergonomics (issue 16, item 4): the Messages screen and its
//! ring, the detail popup, the background fetch, and what fits at 80×24. Real policy files in
//! real git repositories, jobs run inline (wait for idle), no terminal; snapshots of the
//! Messages screen and the detail popup.

use hessra_console::console::ScreenId;
use hessra_console::console::app::{Level, MESSAGES_KEPT, Popup};
use ratatui::crossterm::event::{KeyCode, KeyModifiers};

mod support;

use support::console::{Console, enter, flash, press, screen, special};

fn esc(f: &mut Console) {
    special(f, KeyCode::Esc, KeyModifiers::NONE);
}

fn detail_text(f: &Console) -> Option<(String, Vec<String>)> {
    match f.app.popup() {
        Some(Popup::Detail { title, lines, .. }) => Some((title.clone(), lines.clone())),
        _ => None,
    }
}

/// A few messages of every level, one of them long and on several lines.
fn some_messages(f: &mut Console) {
    f.app.flash(Level::Info, "refreshing");
    f.app.flash(Level::Success, "saved clients.toml");
    f.app.flash(
        Level::Warn,
        "edited; it introduced a problem: uri:urn:company:alice:agent1 delegates production_api write, which uri:urn:company:alice may not do",
    );
    f.app.flash(
        Level::Error,
        "push refused by the remote\nhint: the upstream moved on\nhint: pull (P) first, then push again",
    );
}

#[test]
fn the_message_ring_keeps_the_newest_thousand() {
    let mut f = Console::start();
    for i in 0..MESSAGES_KEPT + 5 {
        f.app.flash(Level::Info, format!("message {i}"));
    }
    assert_eq!(f.app.messages().len(), MESSAGES_KEPT);
    // Whatever start-up said is gone first, then the five oldest of these.
    assert_eq!(f.app.messages().front().unwrap().text, "message 5");
    assert_eq!(
        f.app.messages().back().unwrap().text,
        format!("message {}", MESSAGES_KEPT + 4)
    );
}

#[test]
fn every_flash_lands_in_the_messages_screen_with_its_level_and_time() {
    let mut f = Console::start();
    press(&mut f, "u"); // nothing to undo: an info flash
    assert_eq!(flash(&f), "nothing to undo");
    press(&mut f, "7");
    assert_eq!(f.app.screen(), ScreenId::Messages);
    let last = f.app.messages().back().unwrap();
    assert_eq!(
        (last.level, last.text.as_str(), last.at),
        (Level::Info, "nothing to undo", f.app.now())
    );
    let shown = screen(&f, 80, 24);
    assert!(shown.contains("7 Messages"), "{shown}");
    assert!(shown.contains("· info  nothing to undo"), "{shown}");
}

#[test]
fn the_selection_follows_the_newest_until_the_user_moves() {
    let mut f = Console::start();
    some_messages(&mut f);
    press(&mut f, "7");
    enter(&mut f);
    let (title, lines) = detail_text(&f).expect("Enter opens the detail popup");
    assert!(title.contains("error"), "{title}");
    assert_eq!(lines.len(), 3, "every line of the message: {lines:?}");
    esc(&mut f);
    assert!(f.app.popup().is_none());

    // Moving up pins the selection: a new message does not move it.
    press(&mut f, "k");
    f.app.flash(Level::Info, "newer");
    enter(&mut f);
    let (title, lines) = detail_text(&f).unwrap();
    assert!(title.contains("warn"), "{title}");
    assert!(lines[0].starts_with("edited; it introduced a problem"));
    esc(&mut f);

    // Back at the bottom, it follows again.
    press(&mut f, "G");
    f.app.flash(Level::Success, "newest");
    enter(&mut f);
    assert_eq!(detail_text(&f).unwrap().1, vec!["newest".to_string()]);
}

#[test]
fn the_messages_filter_narrows_by_text_and_level() {
    let mut f = Console::start();
    some_messages(&mut f);
    press(&mut f, "7/warn");
    enter(&mut f);
    assert_eq!(f.app.current_filter(), "warn");
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("1 of"), "{shown}");
    assert!(shown.contains("it introduced a problem"), "{shown}");
    assert!(!shown.contains("saved clients.toml"), "{shown}");
    enter(&mut f);
    assert!(detail_text(&f).unwrap().0.contains("warn"));
}

#[test]
fn the_detail_popup_scrolls_copies_and_closes_with_the_keymaps_keys() {
    let mut f = Console::start();
    let long: Vec<String> = (1..=60).map(|i| format!("line {i}")).collect();
    f.app.flash(Level::Info, long.join("\n"));
    press(&mut f, "7");
    enter(&mut f);
    let top = screen(&f, 80, 24);
    assert!(top.contains("line 1 "), "{top}");
    assert!(top.contains("↑/↓ scroll · y copy · esc close"), "{top}");
    press(&mut f, "G");
    let bottom = screen(&f, 80, 24);
    assert!(bottom.contains("line 60"), "{bottom}");
    assert!(!bottom.contains("line 1 "), "{bottom}");
    press(&mut f, "y");
    assert!(flash(&f).starts_with("copied detail"), "{}", flash(&f));
    assert!(detail_text(&f).is_some(), "copying keeps the popup open");
    esc(&mut f);
    assert!(f.app.popup().is_none());
}

#[test]
fn messages_screen_and_detail_popup_snapshots() {
    let mut f = Console::start();
    some_messages(&mut f);
    press(&mut f, "7");
    for (width, height) in [(80, 24), (120, 40)] {
        insta::assert_snapshot!(
            format!("messages_{width}x{height}"),
            screen(&f, width, height)
        );
    }
    // The long warning: wrapped in the popup.
    press(&mut f, "k");
    enter(&mut f);
    for (width, height) in [(80, 24), (120, 40)] {
        insta::assert_snapshot!(
            format!("detail_{width}x{height}"),
            screen(&f, width, height)
        );
    }
}

fn audit_event(seq: u64, result: &str, reason: &str) -> hessra_console::server::AuditEvent {
    hessra_console::server::AuditEvent {
        seq,
        time: support::console::NOW - 30 + seq as i64,
        caller: Some("uri:urn:company:alice".into()),
        auth: "mtls".into(),
        endpoint: "/request_token".into(),
        resource: Some("staging_api".into()),
        operation: Some("write".into()),
        result: result.into(),
        reason: reason.into(),
        revocation_id: Some("ab".repeat(32)),
        expires_at: None,
    }
}

fn key_info(id: u32, state: hessra_console::keyset::KeyState) -> hessra_console::server::KeyInfo {
    hessra_console::server::KeyInfo {
        id: Some(id),
        state,
        public_key: format!("ed25519/{}", "cd".repeat(32)),
        created_at: Some(support::console::NOW - 3_600),
        activated_at: Some(support::console::NOW - 600),
        retiring_since: None,
        verify_until: None,
        retired_at: None,
    }
}

fn server_status(
    keys: Vec<hessra_console::server::KeyInfo>,
) -> hessra_console::console::jobs::ServerStatus {
    hessra_console::console::jobs::ServerStatus {
        response_msg: "Server status".into(),
        listen: "127.0.0.1:4443".into(),
        policy_source: "git origin.git branch main".into(),
        policy_revision: "0123456789abcdef0123456789abcdef01234567".into(),
        policy_loaded_at: support::console::NOW - 42,
        clients: 7,
        last_reload_error: None,
        requests: 1,
        allowed: 0,
        denied: 1,
        started_at: support::console::NOW - 600,
        audit_file: None,
        audit_key: None,
        keys,
        key_set_error: None,
        missing_private_keys: Vec::new(),
    }
}

#[test]
fn enter_on_an_audit_event_activity_row_or_root_key_shows_every_field() {
    use hessra_console::console::jobs::JobResult;
    use hessra_console::keyset::KeyState;
    let mut f = Console::start();
    let reason = "no grant of write on staging_api for uri:urn:company:alice: the policy grants read only, and a token asking for more is refused whole";
    f.app.handle_result(JobResult::ServerAudit(Ok((
        vec![audit_event(1, "deny", reason)],
        1,
    ))));
    f.app
        .handle_result(JobResult::ServerStatus(Ok(server_status(vec![key_info(
            2,
            KeyState::Active,
        )]))));
    press(&mut f, "6");
    enter(&mut f);
    let (title, lines) = detail_text(&f).expect("Enter opens the audit event");
    assert_eq!(title, "Audit event 1");
    let text = lines.join("\n");
    for field in [
        "result:    deny",
        "endpoint:  /request_token",
        "caller:    uri:urn:company:alice",
        "auth:      mtls",
        "operation: write",
        "resource:  staging_api",
        &format!("reason:    {reason}"),
        &format!("token:     {}", "ab".repeat(32)),
    ] {
        assert!(text.contains(field), "{field} missing from {text}");
    }
    let shown = screen(&f, 80, 24);
    assert!(shown.contains("refused whole"), "the reason wraps: {shown}");
    esc(&mut f);

    press(&mut f, "v");
    enter(&mut f);
    let (title, lines) = detail_text(&f).expect("Enter opens the activity row");
    assert!(title.starts_with("Activity of "), "{title}");
    assert!(lines.iter().any(|l| l.starts_with("denials:")), "{lines:?}");
    esc(&mut f);

    press(&mut f, "K");
    enter(&mut f);
    let (title, lines) = detail_text(&f).expect("Enter opens the root key");
    assert_eq!(title, "Root key");
    let text = lines.join("\n");
    assert!(text.contains(&"cd".repeat(32)), "the whole key: {text}");
    assert!(text.contains("state:      active"), "{text}");
}

/// The demo policy with an unknown key in each client: a warning per client, each long.
fn policy_with_findings(text: &str) -> String {
    text.replace(
        "identity_token_enabled = true",
        "identity_token_enabled = true\nfavourite_colour_of_the_team_lead = \"blue\"",
    )
}

#[test]
fn enter_on_a_finding_shows_it_whole_and_i_still_jumps_to_its_line() {
    let mut f = Console::with(Default::default(), |context| {
        let text = policy_with_findings(&context.policy_text);
        hessra_console::console::Context {
            policy_text: text,
            ..context
        }
    });
    let findings = f.app.loaded().unwrap().findings.clone();
    assert!(findings.len() >= 3, "{findings:?}");
    special(&mut f, KeyCode::Tab, KeyModifiers::NONE);
    enter(&mut f);
    let (title, lines) = detail_text(&f).expect("Enter opens the finding");
    assert_eq!(title, "Finding");
    let text = lines.join("\n");
    assert!(text.contains(&findings[0].message), "{text}");
    assert!(text.contains("unknown-key"), "{text}");
    esc(&mut f);
    press(&mut f, "i");
    let editor = f
        .app
        .screens()
        .clients
        .editor
        .as_ref()
        .expect("i opens the editor");
    let line = findings[0].location.unwrap().line;
    assert_eq!(editor.area.cursor().0 + 1, line, "at the finding's line");
}

#[test]
fn at_80x24_the_findings_pane_wraps_long_findings_and_grows_to_a_third() {
    let mut f = Console::with(Default::default(), |context| {
        let text = policy_with_findings(&context.policy_text);
        hessra_console::console::Context {
            policy_text: text,
            ..context
        }
    });
    let shown = screen(&f, 80, 24);
    // The first finding is read whole: what used to be cut at the border is on the next lines.
    assert!(shown.contains("authorization_token_duration"), "{shown}");
    let findings = shown
        .lines()
        .position(|l| l.contains("Findings (7)"))
        .unwrap();
    let bottom = shown
        .lines()
        .skip(findings + 1)
        .position(|l| l.contains("└"))
        .unwrap();
    assert_eq!(bottom, 5, "the pane grew to a third of the body: {shown}");
    special(&mut f, KeyCode::Tab, KeyModifiers::NONE);
    let focused = screen(&f, 80, 24);
    assert!(focused.contains("enter detail  i jump"), "{focused}");
}

/// A teammate's clone of the console's remote commits a change to clients.toml and pushes it.
fn teammate_pushes(f: &Console) {
    use hessra_console::gitops;
    let path = f.dir.path().join("teammate");
    gitops::clone(f.origin.to_str().unwrap(), &path).unwrap();
    support::console::set_author(&path, "Teammate");
    let file = path.join("clients.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}\n# a teammate was here\n")).unwrap();
    gitops::commit_file(&path, std::path::Path::new("clients.toml"), "teammate").unwrap();
    gitops::push(&path, "origin", "main").unwrap();
}

fn behind(f: &Console) -> Option<usize> {
    match &f.app.screens().changes.git {
        Some(Ok(view)) => Some(view.status.behind),
        _ => None,
    }
}

fn background() -> Console {
    let setup = support::console::Setup {
        polls: true,
        ..Default::default()
    };
    Console::with(setup, |context| context)
}

#[test]
fn the_background_fetch_keeps_behind_live() {
    let mut f = background();
    assert_eq!(behind(&f), Some(0));
    teammate_pushes(&f);
    f.app.advance(30);
    f.settle();
    assert_eq!(behind(&f), Some(0), "not due yet: no fetch");
    f.app.advance(30);
    f.settle();
    assert_eq!(behind(&f), Some(1), "{:?}", f.app.messages());
    assert!(screen(&f, 80, 24).contains("⎇ main ↓1"));
}

#[test]
fn no_fetch_starts_while_a_job_that_moves_refs_runs_or_when_turned_off() {
    use hessra_console::console::jobs::Job;
    let mut f = background();
    f.app.submit(Job::Pull);
    f.app.advance(60);
    let queued = f.app.take_jobs();
    assert!(
        !queued.iter().any(|(_, job)| matches!(job, Job::Fetch)),
        "{queued:?}"
    );
    for (id, _) in queued {
        f.app.job_done(id);
    }
    f.app.advance(1);
    assert!(
        f.app
            .take_jobs()
            .iter()
            .any(|(_, job)| matches!(job, Job::Fetch)),
        "once the pull is done the fetch runs"
    );

    let setup = support::console::Setup {
        polls: true,
        ..Default::default()
    };
    let mut off = Console::with(setup, |context| hessra_console::console::Context {
        fetch_interval: 0,
        ..context
    });
    teammate_pushes(&off);
    off.app.advance(600);
    off.settle();
    assert_eq!(behind(&off), Some(0), "fetch_interval = 0 turns it off");
}

#[test]
fn a_failing_fetch_is_said_once_in_messages_not_flashed_every_minute() {
    let mut f = background();
    git2::Repository::open(&f.clone)
        .unwrap()
        .remote_set_url("origin", "/nonexistent/origin.git")
        .unwrap();
    for _ in 0..3 {
        f.app.advance(60);
        f.settle();
    }
    let warnings: Vec<_> = f
        .app
        .messages()
        .iter()
        .filter(|m| m.text.starts_with("background fetch failed"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", f.app.messages());
    assert_eq!(warnings[0].level, Level::Warn);
    assert!(!flash(&f).contains("fetch"), "{}", flash(&f));
}

#[test]
fn at_80x24_the_clients_hints_keep_help_and_undo() {
    let f = Console::start();
    let shown = screen(&f, 80, 24);
    let hints = shown.lines().last().unwrap();
    for wanted in ["u undo", "? help", "ctrl-s save", "/ filter"] {
        assert!(hints.contains(wanted), "{wanted} dropped: {hints}");
    }
}

#[test]
fn at_80x24_the_token_pane_scrolls_and_keeps_expiry_and_verdict_in_view() {
    use hessra_console::console::jobs::JobResult;
    use hessra_console::token::{self, Delegation, IdentityClaims, KeyPair};
    let mut f = Console::start();
    let root = KeyPair::new();
    let parent = token::mint_identity(
        &root,
        &IdentityClaims {
            subject: "uri:urn:company:alice".into(),
            expires_at: support::console::NOW + 3600,
            delegatable: true,
            domain: Some("uri:urn:mycompany".into()),
        },
    )
    .unwrap();
    let delegated = token::delegate(
        &parent,
        Some(&root.public()),
        &Delegation::new("uri:urn:company:alice:agent1", support::console::NOW + 600),
    )
    .unwrap()
    .token;
    f.app.load_token(delegated, "test".into());
    f.settle();
    f.app.handle_result(JobResult::Verified(Ok(
        "valid as uri:urn:company:alice:agent1".into(),
    )));
    let top = screen(&f, 80, 24);
    for pinned in [
        "expires: in 10m 00s",
        "✓ valid as uri:urn:company:alice:agent1",
    ] {
        assert!(top.contains(pinned), "{pinned} not in view: {top}");
    }
    assert!(top.contains("Token — more: shift-tab to scroll"), "{top}");
    // shift-tab focuses the token pane; ↓ scrolls it to its end.
    special(&mut f, KeyCode::BackTab, KeyModifiers::SHIFT);
    press(&mut f, "G");
    let bottom = screen(&f, 80, 24);
    assert!(bottom.contains("Token — ↑/↓ scroll"), "{bottom}");
    assert!(bottom.contains("delegation: depth 1"), "{bottom}");
    assert!(!bottom.contains("an identity token"), "scrolled: {bottom}");
    for pinned in [
        "expires: in 10m 00s",
        "✓ valid as uri:urn:company:alice:agent1",
    ] {
        assert!(bottom.contains(pinned), "{pinned} scrolled away: {bottom}");
    }
    assert!(
        bottom.lines().last().unwrap().contains("↓ scroll"),
        "{bottom}"
    );
}

#[test]
fn the_first_run_message_appears_inside_the_console() {
    let f = Console::with(Default::default(), |context| {
        hessra_console::console::Context {
            first_run: Some("/home/me/.local/share/hessra-console/demo".into()),
            ..context
        }
    });
    let (title, lines) = detail_text(&f).expect("a one-time notice");
    assert_eq!(title, "Welcome");
    assert!(
        lines[0].contains("Created the demo workspace in /home/me/"),
        "{lines:?}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("4 Tokens, then f for the demo flow")
    );
    assert!(
        f.app
            .messages()
            .iter()
            .any(|m| m.text.starts_with("Created the demo workspace")),
        "and kept in Messages"
    );
    let shown = screen(&f, 80, 24);
    assert!(shown.contains("┌ Welcome"), "{shown}");
}
