//! Key-driven tests of the console's `update()`: real policy files in real git repositories, jobs
//! run inline (wait for idle), no terminal.

use std::path::Path;

use hessra_console::console::ScreenId;
use hessra_console::console::app::Popup;
use hessra_console::console::jobs::{self, Env};
use hessra_console::console::{App, Context};
use hessra_console::gitops;
use hessra_console::workspace;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

mod support;

use support::console::{
    Console, NOW, Setup, flash, key, key_states, press, press_polling, special,
};

type Fixture = Console;

fn fixture(readonly: bool) -> Fixture {
    Console::with(Setup::default(), |context| Context {
        readonly,
        ..context
    })
}

fn origin_text(origin: &Path) -> String {
    gitops::read_branch_file(origin, "main", Path::new("clients.toml"))
        .unwrap()
        .0
}

#[test]
fn number_keys_switch_screens_and_question_mark_opens_help() {
    let mut f = fixture(false);
    for (keys, screen) in [
        ("2", ScreenId::Delegations),
        ("3", ScreenId::Roles),
        ("4", ScreenId::Tokens),
        ("5", ScreenId::Changes),
        ("6", ScreenId::Server),
        ("1", ScreenId::Clients),
    ] {
        press(&mut f, keys);
        assert_eq!(f.app.screen(), screen);
    }
    press(&mut f, "?");
    assert!(matches!(f.app.popup(), Some(Popup::Help { .. })));
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert!(f.app.popup().is_none());
}

#[test]
fn grant_save_commit_push_reaches_the_remote() {
    let mut f = fixture(false);
    // alice is selected first; grant her delete on staging_api.
    press(&mut f, "+staging_api delete");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert!(f.app.is_dirty(), "{}", flash(&f));
    assert!(f.app.text().contains("\"delete\""));
    // Comments survive the lossless edit.
    assert!(f.app.text().contains("# Alice's automation agent"));
    special(&mut f, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert!(!f.app.is_dirty(), "{}", flash(&f));
    press(&mut f, "5c");
    assert!(
        matches!(f.app.popup(), Some(Popup::Prompt { .. })),
        "{}",
        flash(&f)
    );
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    // The confirmation starts on Cancel: Enter alone cancels.
    assert!(matches!(
        f.app.popup(),
        Some(Popup::Confirm {
            yes_focused: false,
            ..
        })
    ));
    press(&mut f, "y");
    assert!(flash(&f).starts_with("committed"), "{}", flash(&f));
    press(&mut f, "p");
    assert!(flash(&f).contains("pushed 1 commit"), "{}", flash(&f));
    assert!(
        f.app.screens().changes.push_steps > 0,
        "no push progress was shown"
    );
    assert!(origin_text(&f.origin).contains("\"delete\""));
}

#[test]
fn commit_is_refused_while_the_policy_is_invalid() {
    let mut f = fixture(false);
    // Grant alice:agent1 something alice lacks: the child exceeds its parent.
    press(&mut f, "j+artifacts write");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    press(&mut f, "5c");
    assert!(f.app.popup().is_none());
    assert!(flash(&f).starts_with("Commit refused"), "{}", flash(&f));
    // Undo brings the valid policy back, byte for byte.
    press(&mut f, "1u");
    assert!(!f.app.is_dirty());
}

#[test]
fn push_without_commits_says_why_and_a_gone_remote_keeps_the_commit() {
    let mut f = fixture(false);
    press(&mut f, "5p");
    assert_eq!(flash(&f), "Push disabled: nothing committed");
    press(&mut f, "1+staging_api delete");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    std::fs::remove_dir_all(&f.origin).unwrap();
    f.app.run_command("commit grant delete");
    press(&mut f, "y");
    assert!(flash(&f).starts_with("committed"), "{}", flash(&f));
    press(&mut f, "p");
    assert!(
        flash(&f).starts_with("push failed (your commits are kept)"),
        "{}",
        flash(&f)
    );
}

#[test]
fn the_raw_editor_validates_live_and_refuses_to_apply_broken_text() {
    let mut f = fixture(false);
    press(&mut f, "i");
    assert!(f.app.screens().clients.editor.is_some());
    // Type an unterminated string at the cursor (the selected client's line).
    press(&mut f, "x = \"");
    let editor = f.app.screens().clients.editor.as_ref().unwrap();
    assert!(editor.syntax.is_some(), "live validation saw no error");
    special(&mut f, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert!(flash(&f).starts_with("not applied"), "{}", flash(&f));
    // Esc asks before discarding; Cancel keeps the text.
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert!(matches!(f.app.popup(), Some(Popup::Confirm { .. })));
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert!(f.app.screens().clients.editor.as_ref().unwrap().modified());
    // Quitting now asks too.
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    press(&mut f, "y");
    assert!(f.app.screens().clients.editor.is_none());
    assert!(!f.app.is_dirty());
}

#[test]
fn quitting_with_unsaved_edits_asks_and_cancel_keeps_running() {
    let mut f = fixture(false);
    press(&mut f, "+staging_api delete");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    press(&mut f, "q");
    assert!(matches!(f.app.popup(), Some(Popup::QuitDirty { .. })));
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert!(f.app.running());
    press(&mut f, "q");
    press(&mut f, "d");
    assert!(!f.app.running());
}

#[test]
fn in_read_only_mode_a_mutating_key_says_why_it_does_nothing() {
    let mut f = fixture(true);
    let before = f.app.text().to_string();
    // A read-only console opens on the review; on Clients, `+` would grant.
    press(&mut f, "1+");
    assert_eq!(
        flash(&f),
        "read-only: `+` (grant) changes the policy; start without --readonly to edit"
    );
    assert!(f.app.popup().is_none());
    press(&mut f, "5c");
    assert_eq!(
        flash(&f),
        "read-only: `c` (commit) writes to the repository; start without --readonly to edit"
    );
    special(&mut f, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert!(
        flash(&f).contains("`ctrl-s` (save) changes the policy"),
        "{}",
        flash(&f)
    );
    assert_eq!(f.app.text(), before);
    // Looking keys still work.
    press(&mut f, "1j");
    assert_eq!(f.app.screens().clients.selected, 1);
}

#[test]
fn hints_follow_the_focused_pane_and_leave_out_keys_that_would_type() {
    let mut f = fixture(false);
    let hints = |f: &Fixture| {
        let text = support::console::screen(f, 120, 40);
        text.lines().nth(39).unwrap_or_default().to_string()
    };
    press(&mut f, "3");
    let realms = hints(&f);
    assert!(realms.contains("r add role"), "{realms}");
    assert!(!realms.contains("+ grant"), "{realms}");
    special(&mut f, KeyCode::Tab, KeyModifiers::NONE);
    let roles = hints(&f);
    for wanted in ["+ grant", "- revoke", "d default", "x remove"] {
        assert!(roles.contains(wanted), "{wanted}: {roles}");
    }
    special(&mut f, KeyCode::Tab, KeyModifiers::NONE);
    let assignments = hints(&f);
    assert!(assignments.contains("D unassign"), "{assignments}");
    assert!(!assignments.contains("+ grant"), "{assignments}");
    // Typing: the editor, a prompt, the filter, the palette show no `:`, `?` or `q`.
    press(&mut f, "1i");
    let editor = hints(&f);
    assert!(editor.contains("esc apply"), "{editor}");
    for typed in [": cmd", "? help", "q quit"] {
        assert!(!editor.contains(typed), "{typed}: {editor}");
    }
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    for open in ["+", "/", ":"] {
        press(&mut f, open);
        let typing = hints(&f);
        assert!(typing.contains("esc "), "{open}: {typing}");
        for typed in [": cmd", "? help", "q quit"] {
            assert!(!typing.contains(typed), "{open} {typed}: {typing}");
        }
        special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    }
    assert!(hints(&f).contains("? help"));
}

#[test]
fn rebound_keys_drive_the_prompts_and_the_editor_too() {
    let mut f = Console::with(Setup::default(), |context| {
        let mut keys = std::collections::BTreeMap::new();
        keys.insert("back".to_string(), vec!["f2".to_string()]);
        keys.insert("select".to_string(), vec!["f3".to_string()]);
        let (keymap, errors) = context.keymap.clone().with_overrides(&keys);
        assert!(errors.is_empty(), "{errors:?}");
        Context { keymap, ..context }
    });
    press(&mut f, "+staging_api delete");
    special(&mut f, KeyCode::F(3), KeyModifiers::NONE);
    assert!(f.app.popup().is_none(), "{}", flash(&f));
    assert!(f.app.text().contains("\"delete\""), "{}", flash(&f));
    press(&mut f, "i");
    assert!(f.app.screens().clients.editor.is_some());
    let hints = support::console::screen(&f, 120, 40);
    assert!(hints.contains("f2 apply"), "{hints}");
    special(&mut f, KeyCode::F(2), KeyModifiers::NONE);
    assert!(f.app.screens().clients.editor.is_none());
}

#[test]
fn the_palette_names_screens_and_offers_only_what_the_mode_allows() {
    let mut f = fixture(true);
    for (command, screen) in [
        ("roles", ScreenId::Roles),
        ("domains", ScreenId::Roles),
        ("2", ScreenId::Delegations),
        ("server", ScreenId::Server),
        ("clients", ScreenId::Clients),
    ] {
        f.app.run_command(command);
        assert_eq!(f.app.screen(), screen, ":{command}");
    }
    let complete =
        |f: &Fixture, line: &str| hessra_console::console::palette::complete(&f.app, line);
    assert!(complete(&f, "ro").contains(&"roles".to_string()));
    assert!(complete(&f, "add").is_empty(), "{:?}", complete(&f, "add"));
    assert!(complete(&f, "ver").contains(&"verify ".to_string()));
    let writable = fixture(false);
    assert!(complete(&writable, "add").contains(&"add-client".to_string()));
}

#[test]
fn read_only_mode_removes_every_mutating_action() {
    let mut f = fixture(true);
    let before = f.app.text().to_string();
    press(&mut f, "+aD");
    assert!(f.app.popup().is_none());
    f.app.run_command("push");
    assert!(flash(&f).contains("read-only"), "{}", flash(&f));
    f.app.run_command("add-client");
    assert!(flash(&f).contains("read-only"), "{}", flash(&f));
    assert_eq!(f.app.text(), before);
}

#[test]
fn filter_narrows_the_client_list_and_esc_clears_it() {
    let mut f = fixture(false);
    press(&mut f, "/ci");
    assert_eq!(f.app.screens().clients.rows.len(), 3);
    assert_eq!(f.app.match_count(), Some((3, 7)));
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(f.app.screens().clients.filter, "ci");
    press(&mut f, "/");
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert_eq!(f.app.screens().clients.rows.len(), 7);
}

#[test]
fn junk_tokens_are_explained_not_fatal() {
    let mut f = fixture(false);
    press(&mut f, "4p");
    press(&mut f, "not-a-token");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    let inspection = f.app.screens().tokens.inspection.as_ref().unwrap();
    assert!(inspection.is_err());
    f.app.run_command("key ed25519/zz");
    assert!(flash(&f).starts_with("key:"), "{}", flash(&f));
}

#[test]
fn palette_completes_commands_and_client_identities() {
    let f = fixture(false);
    let done = hessra_console::console::palette::complete(&f.app, "comm");
    assert!(done.contains(&"commit ".to_string()), "{done:?}");
    let clients = hessra_console::console::palette::complete(&f.app, "client agent");
    assert_eq!(clients, vec!["client uri:urn:company:alice:agent1"]);
}

#[test]
fn client_form_renames_and_sets_settings_with_clear_errors() {
    let mut f = fixture(false);
    // Move to ci:deploy (the fifth client) and allow it to delegate again.
    press(&mut f, "jjjj");
    press(&mut f, "sdelegatable maybe");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert!(flash(&f).contains("true or false"), "{}", flash(&f));
    assert!(!f.app.is_dirty());
    // A refused value keeps the prompt open with what was typed; Esc leaves it.
    assert!(matches!(f.app.popup(), Some(Popup::Prompt { .. })));
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    press(&mut f, "sdelegatible true");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert!(
        flash(&f).contains("no setting \"delegatible\""),
        "{}",
        flash(&f)
    );
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    press(&mut f, "smax_delegation_depth 2");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert!(
        f.app.text().contains("max_delegation_depth = 2"),
        "{}",
        flash(&f)
    );
    // Rename: the prompt starts with the identifier; replace its last segment.
    press(&mut f, "r");
    for _ in 0.."deploy".len() {
        special(&mut f, KeyCode::Backspace, KeyModifiers::NONE);
    }
    press(&mut f, "release");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert!(
        f.app.text().contains("uri:urn:company:ci:release"),
        "{}",
        flash(&f)
    );
    let loaded = f.app.loaded().unwrap();
    let selected = f
        .app
        .screens()
        .clients
        .selected_client(&loaded.policy)
        .unwrap();
    assert_eq!(selected.identity, "uri:urn:company:ci:release");
    // Renaming onto an existing identity is refused and changes nothing.
    let before = f.app.text().to_string();
    press(&mut f, "r");
    for _ in 0.."release".len() {
        special(&mut f, KeyCode::Backspace, KeyModifiers::NONE);
    }
    press(&mut f, "build");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert!(flash(&f).starts_with("not changed"), "{}", flash(&f));
    assert_eq!(f.app.text(), before);
}

#[test]
fn roles_screen_edits_roles_through_the_document() {
    let mut f = fixture(false);
    press(&mut f, "3");
    special(&mut f, KeyCode::Tab, KeyModifiers::NONE);
    // Roles pane: member (default) is first, admin second.
    press(&mut f, "j");
    press(&mut f, "-api delete");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    let admin = |f: &Fixture| {
        let policy = &f.app.loaded().unwrap().policy;
        let realm = policy.client("uri:urn:mycompany").unwrap();
        realm
            .domain
            .as_ref()
            .unwrap()
            .role("administrator")
            .cloned()
    };
    press(&mut f, "R");
    press(&mut f, "istrator");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    let role = admin(&f).expect("renamed");
    assert_eq!(role.resources[0].operations, vec!["read", "write"]);
    // The assignment followed the rename.
    assert!(f.app.text().contains("role = \"administrator\""));
    press(&mut f, "d");
    let policy = &f.app.loaded().unwrap().policy;
    let domain = policy
        .client("uri:urn:mycompany")
        .unwrap()
        .domain
        .clone()
        .unwrap();
    assert_eq!(domain.default_role.clone().unwrap().name, "administrator");
    assert!(
        domain.role("member").is_some(),
        "the old default stays a role"
    );
    // Removing a role asks first, naming it; Enter alone cancels.
    press(&mut f, "x");
    match f.app.popup() {
        Some(Popup::Confirm { lines, .. }) => assert!(lines[0].contains("administrator")),
        _ => panic!("no confirmation"),
    }
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert!(admin(&f).is_some());
}

#[test]
fn the_mouse_switches_tabs_and_scrolls_only_when_turned_on() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut f = fixture(false);
    let click = |column| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row: 0,
        modifiers: KeyModifiers::NONE,
    };
    // "hessra-console " then " 1 Clients " then " 2 Delegations ": column 28 is on tab 2.
    f.app.handle_mouse(click(28));
    assert_eq!(
        f.app.screen(),
        ScreenId::Clients,
        "capture is off by default"
    );
    press(&mut f, "M");
    f.app.handle_mouse(click(28));
    assert_eq!(f.app.screen(), ScreenId::Delegations);
    f.app.handle_mouse(click(3));
    assert_eq!(
        f.app.screen(),
        ScreenId::Delegations,
        "the app name is not a tab"
    );
    press(&mut f, "1");
    f.app.handle_mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 5,
        row: 5,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(f.app.screens().clients.selected, 1);
}

#[test]
fn an_unreachable_server_is_reported_on_the_server_screen() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace::init(&dir.path().join("ws"), false).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A port nobody listens on: bind one, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let link = hessra_console::console::launch::workspace_link(&ws, &url).unwrap();
    let env = Env::new(
        ws.policy_file(),
        None,
        Some(link),
        None,
        runtime.handle().clone(),
    );
    let mut app = App::new(Context {
        server: Some((url.clone(), false)),
        operator: Some(workspace::DEMO_OPERATOR.into()),
        ..Context::new(
            ws.policy_file(),
            std::fs::read_to_string(ws.policy_file()).unwrap(),
            NOW,
        )
    });
    app.tick(NOW);
    jobs::settle(&mut app, &env, false);
    match &app.screens().server.status {
        Some(Err(e)) => assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
    app.go_to(ScreenId::Server);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 24)).unwrap();
    terminal
        .draw(|frame| hessra_console::console::ui::render(frame, &app))
        .unwrap();
    let screen = terminal.backend().to_string();
    assert!(screen.contains("✗ unreachable"), "{screen}");
    // Sync says what went wrong instead of hanging.
    app.handle_key(key(KeyCode::Char('6')));
    app.handle_key(key(KeyCode::Char('s')));
    jobs::settle(&mut app, &env, true);
    let text = app.flash_message().unwrap().text.clone();
    assert!(
        text.starts_with("the server did not take the sync"),
        "{text}"
    );
}

#[test]
fn revoking_a_block_from_the_tokens_screen_goes_through_commit_and_push() {
    use hessra_console::token::{self, Delegation, IdentityClaims, KeyPair};
    let mut f = fixture(false);
    let root = KeyPair::new();
    let parent = token::mint_identity(
        &root,
        &IdentityClaims {
            subject: "uri:urn:company:alice".into(),
            expires_at: NOW + 3600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    let delegated = token::delegate(
        &parent,
        Some(&root.public()),
        &Delegation::new("uri:urn:company:alice:agent1", NOW + 600),
    )
    .unwrap()
    .token;
    let block0 = token::inspect(&delegated, None, NOW).unwrap().blocks[0]
        .revocation_id
        .clone();
    f.app.load_token(delegated, "test".into());
    // Tab to the blocks, up to block 0 (the root of the whole family), X, a reason.
    special(&mut f, KeyCode::Tab, KeyModifiers::NONE);
    press(&mut f, "kX");
    match f.app.popup() {
        Some(Popup::Prompt { title, .. }) => {
            assert!(title.contains("block 0 (authority)"), "{title}");
            assert!(title.contains("everything minted or delegated"), "{title}");
        }
        _ => panic!("no reason prompt: {}", flash(&f)),
    }
    press(&mut f, "laptop stolen");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    // Confirmation starts on Cancel.
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    let file = f.app.policy_path().with_file_name("revocations.toml");
    assert!(!file.exists(), "cancel wrote the file");
    press(&mut f, "X");
    press(&mut f, "laptop stolen");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    press(&mut f, "y");
    assert!(flash(&f).starts_with("revoked"), "{}", flash(&f));
    assert!(std::fs::read_to_string(&file).unwrap().contains(&block0));
    // The Changes screen knows there is something to commit, and commits both files.
    press(&mut f, "5c");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    press(&mut f, "y");
    assert!(flash(&f).starts_with("committed"), "{}", flash(&f));
    press(&mut f, "p");
    assert!(flash(&f).contains("pushed 1 commit"), "{}", flash(&f));
    let (text, _) =
        gitops::read_branch_file(&f.origin, "main", Path::new("revocations.toml")).unwrap();
    assert!(text.contains(&block0) && text.contains("laptop stolen"));
}

#[test]
fn the_audit_feed_offers_to_revoke_a_token_it_saw() {
    use hessra_console::console::jobs::JobResult;
    use hessra_console::server::AuditEvent;
    let mut f = fixture(false);
    let event = |seq, revocation_id: Option<&str>| AuditEvent {
        seq,
        time: NOW,
        caller: Some("uri:urn:company:alice:agent1".into()),
        auth: "bearer".into(),
        endpoint: "/request_token".into(),
        resource: Some("production_api".into()),
        operation: Some("read".into()),
        result: "allow".into(),
        reason: "granted by policy".into(),
        revocation_id: revocation_id.map(str::to_string),
        expires_at: None,
    };
    let id = "ab".repeat(32);
    f.app.handle_result(JobResult::ServerAudit(Ok((
        vec![event(1, None), event(2, Some(&id))],
        2,
    ))));
    press(&mut f, "6X");
    match f.app.popup() {
        Some(Popup::Prompt { title, .. }) => {
            assert!(title.contains("the token seen in"), "{title}")
        }
        _ => panic!("no prompt: {}", flash(&f)),
    }
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    // The older request presented no token: nothing to revoke, and it says so.
    press(&mut f, "jX");
    assert!(f.app.popup().is_none());
    assert!(
        flash(&f).contains("no token was presented"),
        "{}",
        flash(&f)
    );
}

#[test]
fn unsaved_edits_survive_a_killed_console_and_are_offered_back() {
    let mut f = fixture(false);
    let state = tempfile::tempdir().unwrap();
    let recovery = jobs::recovery_path(state.path(), f.app.policy_path());
    f.env.recovery_path = Some(recovery.clone());
    // This session keeps its unsaved edits as it goes.
    let policy_path = f.app.policy_path().to_path_buf();
    let mut app = App::new(Context {
        has_repo: true,
        keep_unsaved: true,
        ..Context::new(
            policy_path.clone(),
            std::fs::read_to_string(&policy_path).unwrap(),
            NOW,
        )
    });
    jobs::settle(&mut app, &f.env, false);
    for c in "+staging_api delete".chars() {
        app.handle_key(key(KeyCode::Char(c)));
    }
    app.handle_key(key(KeyCode::Enter));
    jobs::settle(&mut app, &f.env, false);
    let kept = std::fs::read_to_string(&recovery).expect("unsaved edits kept");
    assert!(kept.contains("\"delete\""));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&recovery).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The console is killed here. The next one offers the edits back; Enter alone declines.
    let next = |recovered: Option<String>| {
        App::new(Context {
            has_repo: true,
            recovered,
            keep_unsaved: true,
            ..Context::new(
                policy_path.clone(),
                std::fs::read_to_string(&policy_path).unwrap(),
                NOW,
            )
        })
    };
    let mut declined = next(Some(kept.clone()));
    assert!(matches!(declined.popup(), Some(Popup::Confirm { .. })));
    declined.handle_key(key(KeyCode::Enter));
    jobs::settle(&mut declined, &f.env, false);
    assert!(!declined.is_dirty());
    assert!(
        recovery.exists(),
        "declining must not delete the kept edits"
    );

    let mut restored = next(Some(kept.clone()));
    restored.handle_key(key(KeyCode::Char('y')));
    jobs::settle(&mut restored, &f.env, false);
    assert!(restored.is_dirty());
    assert_eq!(restored.text(), kept);
    // Saving forgets them.
    restored.handle_key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    jobs::settle(&mut restored, &f.env, false);
    assert!(!restored.is_dirty());
    assert!(!recovery.exists(), "saved edits are not kept for recovery");
}

/// The Server screen's key set against the real server: add a key, activate it (confirmed),
/// and a retirement the server refuses turns into an offer to force it, which starts on Cancel.
#[test]
fn root_keys_rotate_from_the_server_screen() {
    let mut f = Console::with(
        Setup {
            server: true,
            no_repo: true,
            ..Setup::default()
        },
        |context| context,
    );
    f.app.tick(NOW);
    jobs::settle(&mut f.app, &f.env, false);
    assert_eq!(key_states(&f), vec![(Some(1), "active")]);

    press(&mut f, "6D");
    assert!(flash(&f).contains("press K"), "{}", flash(&f));
    press_polling(&mut f, "Ka");
    assert!(flash(&f).starts_with("added key 2"), "{}", flash(&f));
    assert_eq!(key_states(&f), vec![(Some(1), "active"), (Some(2), "next")]);

    press(&mut f, "jA");
    match f.app.popup() {
        Some(Popup::Confirm { title, lines, .. }) => {
            assert_eq!(title, "Activate root key 2?");
            assert!(lines[1].starts_with("key 1 starts retiring"), "{lines:?}");
        }
        _ => panic!("no confirmation: {}", flash(&f)),
    }
    press_polling(&mut f, "y");
    assert!(flash(&f).starts_with("key 2 now signs"), "{}", flash(&f));
    assert_eq!(
        key_states(&f),
        vec![(Some(2), "active"), (Some(1), "retiring")]
    );

    // A token of key 1 (minted before key sets, so naming no key) still verifies on the
    // Tokens screen, against the set the console fetched after the change.
    let old = hessra_console::token::mint_identity(
        &hessra_console::token::keys::read_private_key_file(&f.ws.root_key).unwrap(),
        &hessra_console::token::IdentityClaims {
            subject: "uri:urn:company:alice".into(),
            expires_at: hessra_console::token::clock::unix_now() + 600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    f.app.load_token(old, "test".into());
    press_polling(&mut f, "v");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    match &f.app.screens().tokens.verification {
        Some(Ok(text)) => assert!(text.starts_with("valid"), "{text}"),
        other => panic!("not verified: {other:?} {}", flash(&f)),
    }
    press(&mut f, "6");

    // Key 1 may still have live tokens: the server refuses, the console offers force.
    press(&mut f, "jD");
    press_polling(&mut f, "y");
    match f.app.popup() {
        Some(Popup::Confirm { title, lines, .. }) => {
            assert_eq!(title, "Key 1 still verifies live tokens");
            assert!(lines[0].contains("cannot be retired yet"), "{lines:?}");
        }
        _ => panic!("no offer to force: {}", flash(&f)),
    }
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(
        key_states(&f),
        vec![(Some(2), "active"), (Some(1), "retiring")],
        "the offer starts on Cancel"
    );
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 30)).unwrap();
    terminal
        .draw(|frame| hessra_console::console::ui::render(frame, &f.app))
        .unwrap();
    let screen = terminal.backend().to_string();
    assert!(screen.contains("Root keys (2, signing first"), "{screen}");
    assert!(screen.contains("◐ retiring ed25519/"), "{screen}");
    let server = f.server.take().unwrap();
    f.runtime.block_on(server.shutdown());
}

#[test]
fn a_rebound_confirm_key_shows_in_the_dialog_and_the_old_key_no_longer_confirms() {
    use hessra_console::console::keymap::{Action, Scope};
    let mut f = Console::with(Setup::default(), |context| {
        let mut keys = std::collections::BTreeMap::new();
        keys.insert("yes".to_string(), vec!["Y".to_string()]);
        let (keymap, errors) = context.keymap.clone().with_overrides(&keys);
        assert!(errors.is_empty(), "{errors:?}");
        Context { keymap, ..context }
    });
    let clients = |f: &Fixture| f.app.loaded().unwrap().policy.clients.len();
    let before = clients(&f);
    press(&mut f, "D");
    let shown = support::console::screen(&f, 80, 24);
    assert!(shown.contains("Confirm (Y)"), "{shown}");
    assert!(!shown.contains("Confirm (y)"), "{shown}");
    // The help lists the dialog's key as rebound, from the same table.
    let help = f.app.keymap().help_rows(Scope::Clients);
    assert!(
        help.contains(&(Scope::Confirm, "Y".to_string(), Action::Yes)),
        "{help:?}"
    );
    press(&mut f, "y");
    assert!(
        matches!(f.app.popup(), Some(Popup::Confirm { .. })),
        "{}",
        flash(&f)
    );
    assert_eq!(clients(&f), before);
    press(&mut f, "Y");
    assert!(f.app.popup().is_none());
    assert_eq!(clients(&f), before - 1, "{}", flash(&f));
}

#[test]
fn removing_a_client_is_confirmed_through_the_clients_screen_and_cancel_keeps_it() {
    let mut f = fixture(false);
    let alice = "uri:urn:company:alice";
    press(&mut f, "D");
    match f.app.popup() {
        Some(Popup::Confirm { lines, .. }) => assert!(lines[0].contains(alice), "{lines:?}"),
        _ => panic!("no confirmation: {}", flash(&f)),
    }
    press(&mut f, "n");
    assert_eq!(flash(&f), "cancelled");
    assert!(f.app.text().contains(alice));
    press(&mut f, "D");
    special(&mut f, KeyCode::Right, KeyModifiers::NONE);
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    let loaded = f.app.loaded().unwrap();
    assert!(loaded.policy.client(alice).is_none(), "{}", flash(&f));
    assert!(
        flash(&f).starts_with(&format!("removed {alice}")),
        "{}",
        flash(&f)
    );
}

#[test]
fn a_token_is_picked_from_the_store_or_read_from_a_file_the_prompt_names() {
    let mut f = fixture(false);
    let dir = tempfile::tempdir().unwrap();
    let store = hessra_console::token_store::TokenStore::new(dir.path().join("store"));
    let mint = |subject: &str| {
        hessra_console::token::mint_identity(
            &hessra_console::token::KeyPair::new(),
            &hessra_console::token::IdentityClaims {
                subject: subject.into(),
                expires_at: NOW + 600,
                delegatable: false,
                domain: None,
            },
        )
        .unwrap()
    };
    store.save("alice", &mint("uri:urn:company:alice")).unwrap();
    f.env.token_store = Some(store);
    press(&mut f, "4o");
    match f.app.popup() {
        Some(Popup::Picker { items, .. }) => {
            assert!(items[1].starts_with("alice "), "{items:?}")
        }
        _ => panic!("no pick-list: {}", flash(&f)),
    }
    press(&mut f, "j");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    let tokens = &f.app.screens().tokens;
    assert_eq!(tokens.source, "token store: alice", "{}", flash(&f));
    assert!(tokens.inspection.as_ref().unwrap().is_ok());
    // The first item asks for a file instead.
    let file = dir.path().join("bob.token");
    std::fs::write(&file, mint("uri:urn:company:bob")).unwrap();
    press(&mut f, "o");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert!(
        matches!(f.app.popup(), Some(Popup::Prompt { title, .. }) if title == "Load a token file"),
        "{}",
        flash(&f)
    );
    press(&mut f, &file.display().to_string());
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    let tokens = &f.app.screens().tokens;
    assert_eq!(tokens.source, file.display().to_string(), "{}", flash(&f));
    let inspection = tokens.inspection.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(inspection.subject.as_deref(), Some("uri:urn:company:bob"));
}

#[test]
fn the_palette_lists_the_keymaps_commands_and_runs_every_one() {
    use hessra_console::console::keymap::{self, Action};
    use hessra_console::console::palette;
    let mut f = fixture(false);
    let listed: Vec<String> = palette::commands(&f.app)
        .into_iter()
        .map(|(name, help)| {
            assert!(!help.is_empty(), ":{name} has no description");
            name
        })
        .collect();
    for action in Action::ALL {
        let name = action.name().to_string();
        assert_eq!(listed.contains(&name), action.is_command(), ":{name}");
    }
    for (name, _) in keymap::ARGUMENT_COMMANDS {
        assert!(listed.contains(&name.to_string()), ":{name}");
    }
    assert!(
        !listed.contains(&"yes".to_string()),
        "a dialog's key is no command"
    );
    for name in &listed {
        f.app.close_popup();
        f.app.run_command(name);
        assert!(
            !flash(&f).starts_with("unknown command"),
            ":{name}: {}",
            flash(&f)
        );
    }
    f.app.close_popup();
    f.app.run_command("yes");
    assert!(flash(&f).starts_with("unknown command"), "{}", flash(&f));
}

/// `y` copies where the clipboard setting resolved to: a private file (a Linux console, or
/// `clipboard = "file"`) from a worker, with the flash naming the file; OSC 52 from the
/// terminal loop; nowhere when off, saying so.
#[test]
fn copy_goes_to_a_private_file_where_there_is_no_osc52() {
    use hessra_console::console::clipboard::Clipboard;
    use std::os::unix::fs::PermissionsExt;

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("state/clipboard");
    let mut f = Console::with(Setup::default(), |context| Context {
        clipboard: Clipboard::File(file.clone()),
        ..context
    });
    press(&mut f, "y");
    let copied = std::fs::read_to_string(&file).expect("the copy is in the file");
    assert!(
        copied.starts_with("uri:urn:"),
        "the selected identity: {copied}"
    );
    assert!(
        f.app.loaded().unwrap().policy.client(&copied).is_some(),
        "{copied}"
    );
    let shown = flash(&f);
    assert!(
        shown.contains("copied identity to") && shown.contains(&file.display().to_string()),
        "{shown}"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "copies may be tokens");

    let mut f = Console::with(Setup::default(), |context| Context {
        clipboard: Clipboard::Off,
        ..context
    });
    press(&mut f, "y");
    assert!(flash(&f).contains("copying is off"), "{}", flash(&f));

    let mut f = Console::start();
    press(&mut f, "y");
    assert!(flash(&f).contains("(osc52)"), "{}", flash(&f));
}

/// The demo flow against a real server keeps each token it mints in the token store, and `o`
/// lists every stored token with whose it is and when it expires; picking one loads it.
#[test]
fn the_demo_flow_keeps_its_tokens_and_o_lists_them_with_identity_and_expiry() {
    let setup = Setup {
        server: true,
        token_store: true,
        ..Setup::default()
    };
    let mut f = Console::with(setup, |context| Context {
        demo_clients: vec!["uri:urn:company:alice".into()],
        ..context
    });
    press(&mut f, "4f");
    for _ in 0..120 {
        f.app.handle_key(key(KeyCode::Backspace));
    }
    press(
        &mut f,
        "uri:urn:company:alice uri:urn:company:alice:agent1 production_api read",
    );
    support::console::enter(&mut f);
    let flow = &f.app.screens().tokens.flow;
    assert!(flow.iter().all(|s| s.ok), "{flow:?}");
    assert!(
        flow[0]
            .detail
            .contains("saved as demo-company-alice-identity"),
        "{flow:?}"
    );
    let store = f.env.token_store.clone().expect("the test's token store");
    assert_eq!(
        store.list().unwrap(),
        [
            "demo-company-alice-agent1-identity",
            "demo-company-alice-agent1-production_api-read",
            "demo-company-alice-identity",
        ]
    );

    press(&mut f, "o");
    let Some(Popup::Picker { items, .. }) = f.app.popup() else {
        panic!("o opens the picker: {:?}", flash(&f));
    };
    let alice = items
        .iter()
        .find(|i| i.starts_with("demo-company-alice-identity"))
        .expect("listed")
        .clone();
    assert!(
        alice.contains("identity uri:urn:company:alice · expires in"),
        "{alice}"
    );
    let authz = items
        .iter()
        .find(|i| i.starts_with("demo-company-alice-agent1-production_api-read"))
        .expect("listed");
    assert!(
        authz.contains("authorization uri:urn:company:alice:agent1 · expires in"),
        "{authz}"
    );
    let at = items.iter().position(|i| *i == alice).unwrap();
    for _ in 0..at {
        f.app.handle_key(key(KeyCode::Down));
    }
    support::console::enter(&mut f);
    assert_eq!(
        f.app.screens().tokens.token.as_deref(),
        Some(store.load("demo-company-alice-identity").unwrap().as_str())
    );
}

#[test]
fn with_the_key_set_in_the_repository_the_server_screen_edits_keys_toml_for_a_commit() {
    let mut f = Console::with(
        Setup {
            server: true,
            keys_in_repository: true,
            ..Setup::default()
        },
        |context| context,
    );
    f.app.tick(NOW);
    jobs::settle(&mut f.app, &f.env, false);
    assert_eq!(key_states(&f), vec![(Some(1), "active")]);

    // Adding edits the clone's keys.toml and writes the private key into the key directory;
    // the server keeps its set until the change is committed and pushed.
    press(&mut f, "6");
    press_polling(&mut f, "Ka");
    assert!(
        flash(&f).starts_with("added key 2") && flash(&f).contains("commit and push"),
        "{}",
        flash(&f)
    );
    let manifest = std::fs::read_to_string(f.clone.join("keys.toml")).unwrap();
    assert!(
        manifest.contains("id = 2") && !manifest.contains("private_key"),
        "{manifest}"
    );
    assert!(f.ws.key_dir().join("root-2.key").exists());
    assert_eq!(key_states(&f), vec![(Some(1), "active")]);

    // The Changes screen takes keys.toml along.
    press(&mut f, "5");
    press(&mut f, "c");
    assert!(
        matches!(f.app.popup(), Some(Popup::Prompt { .. })),
        "{}",
        flash(&f)
    );
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    press(&mut f, "y");
    assert!(flash(&f).starts_with("committed"), "{}", flash(&f));
    // The push also asks the server to sync.
    press(&mut f, "p");
    let pushed = gitops::read_branch_file(&f.origin, "main", Path::new("keys.toml"))
        .unwrap()
        .0;
    assert_eq!(pushed, manifest);

    // The server applies it with the policy (its sync loop, nudged by the push).
    let server = f.server.take().unwrap();
    let applied = || -> Vec<(Option<u32>, &'static str)> {
        let status = server.state.status();
        status.keys.iter().map(|k| (k.id, k.state.name())).collect()
    };
    let started = std::time::Instant::now();
    while applied().len() < 2 && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(applied(), vec![(Some(1), "active"), (Some(2), "next")]);
    assert!(server.state.status().last_reload_error.is_none());
    f.server = Some(server);
    let server = f.server.take().unwrap();
    f.runtime.block_on(server.shutdown());
}

#[test]
fn the_console_does_not_commit_an_activation_its_server_would_refuse() {
    let mut f = Console::with(
        Setup {
            server: true,
            keys_in_repository: true,
            ..Setup::default()
        },
        |context| context,
    );
    f.app.tick(NOW);
    jobs::settle(&mut f.app, &f.env, false);
    let commit = |f: &mut Fixture| {
        press(f, "5");
        press(f, "c");
        special(f, KeyCode::Enter, KeyModifiers::NONE);
        press(f, "y");
    };
    // Key 2 added and committed as next; its file then leaves the server's key directory
    // (an operator who generated it elsewhere), and it is activated there by hand.
    press(&mut f, "6");
    press(&mut f, "Ka");
    commit(&mut f);
    assert!(flash(&f).starts_with("committed"), "{}", flash(&f));
    press(&mut f, "p");
    let server = f.server.take().unwrap();
    let started = std::time::Instant::now();
    while server.state.status().missing_private_keys.is_empty()
        && started.elapsed() < std::time::Duration::from_secs(10)
    {
        let key = f.ws.key_dir().join("root-2.key");
        let elsewhere = f.dir.path().join("operator-keys");
        if key.exists() {
            hessra_console::fsutil::create_private_dir(&elsewhere).unwrap();
            std::fs::rename(&key, elsewhere.join("root-2.key")).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(server.state.status().missing_private_keys, vec![2]);
    f.server = Some(server);
    let manifest = f.clone.join("keys.toml");
    let mut set = hessra_console::keyset::KeySet::open_repository(
        &manifest,
        &f.dir.path().join("operator-keys"),
    )
    .unwrap();
    let lifetime = hessra_console::keyset::Lifetime {
        seconds: 3600,
        what: "test".into(),
    };
    set.activate(2, NOW, &lifetime, &[]).unwrap();
    set.save().unwrap();

    commit(&mut f);
    assert!(
        flash(&f).contains("key 2 cannot be activated yet"),
        "{}",
        flash(&f)
    );
    let head = gitops::read_at_revision(&f.clone, "HEAD", Path::new("keys.toml")).unwrap();
    assert!(
        head.contains("state = \"next\""),
        "nothing was committed: {head}"
    );
    let server = f.server.take().unwrap();
    f.runtime.block_on(server.shutdown());
}
