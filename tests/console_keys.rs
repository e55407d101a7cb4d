//! Key-driven tests of the console's `update()`: real policy files in real git repositories, jobs
//! run inline (wait for idle), no terminal.

use std::path::Path;

use hessra_console::console::app::{Popup, Screen};
use hessra_console::console::jobs::{self, Env};
use hessra_console::console::keymap::Keymap;
use hessra_console::console::theme::Theme;
use hessra_console::console::{App, Context};
use hessra_console::gitops;
use hessra_console::workspace;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const NOW: i64 = 1_790_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    app: App,
    env: Env,
    _runtime: tokio::runtime::Runtime,
    origin: std::path::PathBuf,
}

fn fixture(readonly: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace::init(&dir.path().join("ws"), false).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let policy_path = ws.policy_file().canonicalize().unwrap();
    let root = ws.policy.canonicalize().unwrap();
    let env = Env::new(
        policy_path.clone(),
        Some(root),
        None,
        None,
        runtime.handle().clone(),
    );
    let context = Context {
        policy_text: std::fs::read_to_string(&policy_path).unwrap(),
        policy_path,
        has_repo: true,
        server: None,
        operator: None,
        demo_clients: vec![],
        readonly,
        theme: Theme::built_in("default").unwrap(),
        keymap: Keymap::defaults(),
        now: NOW,
        frozen_clock: true,
        notices: vec![],
        clipboard: true,
        mouse: false,
    };
    let mut app = App::new(context);
    jobs::settle(&mut app, &env, true);
    Fixture {
        origin: ws.origin.clone(),
        _dir: dir,
        app,
        env,
        _runtime: runtime,
    }
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(f: &mut Fixture, keys: &str) {
    for c in keys.chars() {
        f.app.handle_key(key(KeyCode::Char(c)));
    }
    jobs::settle(&mut f.app, &f.env, true);
}

fn special(f: &mut Fixture, code: KeyCode, modifiers: KeyModifiers) {
    f.app.handle_key(KeyEvent::new(code, modifiers));
    jobs::settle(&mut f.app, &f.env, true);
}

fn flash(f: &Fixture) -> String {
    f.app
        .flash
        .as_ref()
        .map(|m| m.text.clone())
        .unwrap_or_default()
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
        ("2", Screen::Delegations),
        ("3", Screen::Roles),
        ("4", Screen::Tokens),
        ("5", Screen::Changes),
        ("6", Screen::Server),
        ("1", Screen::Clients),
    ] {
        press(&mut f, keys);
        assert_eq!(f.app.screen, screen);
    }
    press(&mut f, "?");
    assert!(matches!(f.app.popup, Some(Popup::Help { .. })));
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert!(f.app.popup.is_none());
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
        matches!(f.app.popup, Some(Popup::Prompt { .. })),
        "{}",
        flash(&f)
    );
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    // The confirmation starts on Cancel: Enter alone cancels.
    assert!(matches!(
        f.app.popup,
        Some(Popup::Confirm {
            yes_focused: false,
            ..
        })
    ));
    press(&mut f, "y");
    assert!(flash(&f).starts_with("committed"), "{}", flash(&f));
    press(&mut f, "p");
    assert!(flash(&f).contains("pushed 1 commit"), "{}", flash(&f));
    assert!(f.app.changes.push_steps > 0, "no push progress was shown");
    assert!(origin_text(&f.origin).contains("\"delete\""));
}

#[test]
fn commit_is_refused_while_the_policy_is_invalid() {
    let mut f = fixture(false);
    // Grant alice:agent1 something alice lacks: the child exceeds its parent.
    press(&mut f, "j+artifacts write");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    press(&mut f, "5c");
    assert!(f.app.popup.is_none());
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
    assert!(f.app.clients.editor.is_some());
    // Type an unterminated string at the cursor (the selected client's line).
    press(&mut f, "x = \"");
    let editor = f.app.clients.editor.as_ref().unwrap();
    assert!(editor.syntax.is_some(), "live validation saw no error");
    special(&mut f, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert!(flash(&f).starts_with("not applied"), "{}", flash(&f));
    // Esc asks before discarding; Cancel keeps the text.
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert!(matches!(f.app.popup, Some(Popup::Confirm { .. })));
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert!(f.app.clients.editor.as_ref().unwrap().modified());
    // Quitting now asks too.
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    press(&mut f, "y");
    assert!(f.app.clients.editor.is_none());
    assert!(!f.app.is_dirty());
}

#[test]
fn quitting_with_unsaved_edits_asks_and_cancel_keeps_running() {
    let mut f = fixture(false);
    press(&mut f, "+staging_api delete");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    press(&mut f, "q");
    assert!(matches!(f.app.popup, Some(Popup::QuitDirty { .. })));
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert!(f.app.running);
    press(&mut f, "q");
    press(&mut f, "d");
    assert!(!f.app.running);
}

#[test]
fn read_only_mode_removes_every_mutating_action() {
    let mut f = fixture(true);
    let before = f.app.text().to_string();
    press(&mut f, "+aD");
    assert!(f.app.popup.is_none());
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
    assert_eq!(f.app.clients.rows.len(), 3);
    assert_eq!(f.app.match_count(), Some((3, 7)));
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(f.app.clients.filter, "ci");
    press(&mut f, "/");
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert_eq!(f.app.clients.rows.len(), 7);
}

#[test]
fn junk_tokens_are_explained_not_fatal() {
    let mut f = fixture(false);
    press(&mut f, "4p");
    press(&mut f, "not-a-token");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    let inspection = f.app.tokens.inspection.as_ref().unwrap();
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
