//! Issue 15, "fail closed" and the smaller findings: the raw editor's text survives a killed
//! console, a bad config never widens what the console may do and every start-up problem is
//! shown, and the dialogs, keys and flags that misbehaved. Real policy files in real git
//! repositories, jobs run inline, and the real binary for the command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use hessra_console::console::ScreenId;
use hessra_console::console::app::{Confirmation, Popup};
use hessra_console::console::jobs;
use hessra_console::console::launch::{self, ConsoleArgs};
use hessra_console::console::{App, Context};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

mod support;

use support::console::{Console, NOW, Setup, enter, flash, key, press, special};

type Fixture = Console;

fn fixture_with(context: impl FnOnce(Context) -> Context) -> Fixture {
    let setup = Setup {
        recovery: true,
        polls: true,
        ..Setup::default()
    };
    Console::with(setup, context)
}

fn fixture() -> Fixture {
    fixture_with(|c| c)
}

/// Lets `seconds` pass on the (frozen) clock and runs what the tick queues.
fn wait(f: &mut Fixture, seconds: i64) {
    f.app.advance(seconds);
    jobs::settle(&mut f.app, &f.env, false);
}

/// The open prompt's text and refusal, if a prompt is open.
fn prompt(f: &Fixture) -> Option<(String, Option<String>)> {
    match f.app.popup() {
        Some(Popup::Prompt { input, error, .. }) => Some((input.lines().join(""), error.clone())),
        _ => None,
    }
}

fn clear_prompt(f: &mut Fixture) {
    for _ in 0..40 {
        f.app.handle_key(key(KeyCode::Backspace));
    }
}

fn recovery(f: &Fixture) -> PathBuf {
    f.env.recovery_path.clone().unwrap()
}

fn editor_recovery(f: &Fixture) -> PathBuf {
    jobs::editor_recovery_path(&recovery(f))
}

/// A console on the same files and state directory, as the next start after a kill sees them.
fn restart(f: &Fixture, readonly: bool) -> App {
    let policy_path = f.app.policy_path().to_path_buf();
    let read = |p: PathBuf| std::fs::read_to_string(p).ok();
    App::new(Context {
        has_repo: true,
        readonly,
        keep_unsaved: true,
        recovered: read(recovery(f)),
        recovered_editor: read(editor_recovery(f)),
        ..Context::new(
            policy_path.clone(),
            std::fs::read_to_string(&policy_path).unwrap(),
            NOW,
        )
    })
}

// ---- 3. the raw editor's text survives a kill ------------------------------------------------

#[test]
fn raw_editor_text_is_kept_as_it_changes_and_offered_back_after_a_kill() {
    let mut f = fixture_with(|c| Context {
        keep_unsaved: true,
        ..c
    });
    let file = editor_recovery(&f);
    press(&mut f, "i");
    assert!(f.app.screens().clients.editor.is_some());
    // A comment line typed above the selected client, never applied.
    press(&mut f, "# rotate bob next week");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    special(&mut f, KeyCode::Up, KeyModifiers::NONE);
    special(&mut f, KeyCode::End, KeyModifiers::NONE);
    assert!(
        !file.exists(),
        "written only once typing pauses, not on every key"
    );
    wait(&mut f, 1);
    let kept = std::fs::read_to_string(&file).expect("the editor's text is kept");
    assert!(
        kept.contains("\n# rotate bob next week\nidentifier"),
        "{kept}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        !recovery(&f).exists(),
        "the text was never applied: the session has no unsaved edits"
    );
    // Non-stop typing is still written, at least every few seconds.
    for _ in 0..6 {
        press(&mut f, "x");
        f.app.advance(1);
        jobs::settle(&mut f.app, &f.env, false);
    }
    let kept = std::fs::read_to_string(&file).unwrap();
    assert!(kept.contains("# rotate bob next weekxxxxx"), "{kept}");

    // Killed here: the App is dropped without saving or closing the editor.
    let policy_text = std::fs::read_to_string(f.app.policy_path()).unwrap();
    // Declining the offer leaves the text on disk, however long that console runs.
    let mut declined = restart(&f, false);
    declined.handle_key(key(KeyCode::Esc));
    declined.advance(10);
    jobs::settle(&mut declined, &f.env, false);
    assert!(declined.screens().clients.editor.is_none());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), kept);
    drop(declined);
    let mut next = restart(&f, false);
    match next.popup() {
        Some(Popup::Confirm {
            what: Confirmation::RecoverEditor { text },
            lines,
            ..
        }) => {
            assert_eq!(*text, kept);
            let all = lines.join(" ");
            assert!(all.contains("raw editor"), "{all}");
            assert!(all.contains("never applied"), "{all}");
            assert!(all.contains("1 line(s) added, 0 removed"), "{all}");
            assert!(all.contains("Restore opens the editor"), "{all}");
        }
        _ => panic!("the editor's text is not offered back"),
    }
    next.handle_key(key(KeyCode::Char('y')));
    jobs::settle(&mut next, &f.env, false);
    let editor = next
        .screens()
        .clients
        .editor
        .as_ref()
        .expect("the editor is open");
    assert_eq!(editor.text(), kept);
    assert!(editor.modified(), "restored text is unapplied, not saved");
    assert_eq!(next.screen(), ScreenId::Clients);
    assert_eq!(
        std::fs::read_to_string(next.policy_path()).unwrap(),
        policy_text,
        "restoring writes nothing to clients.toml"
    );
    // ctrl-s applies and saves it; the kept text is forgotten.
    next.handle_key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    jobs::settle(&mut next, &f.env, false);
    assert!(next.screens().clients.editor.is_none());
    assert!(
        std::fs::read_to_string(next.policy_path())
            .unwrap()
            .contains("\n# rotate bob next weekxxxxx")
    );
    next.tick(NOW);
    jobs::settle(&mut next, &f.env, false);
    assert!(!file.exists(), "saved text is not kept for recovery");
}

#[test]
fn closing_the_editor_forgets_its_text_and_read_only_never_restores() {
    let mut f = fixture_with(|c| Context {
        keep_unsaved: true,
        ..c
    });
    let file = editor_recovery(&f);
    press(&mut f, "i# note");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    wait(&mut f, 2);
    assert!(file.exists());
    // Read-only: nothing is restored, the text stays on disk, and the notice says so.
    let next = restart(&f, true);
    assert!(next.screens().clients.editor.is_none());
    assert!(matches!(next.popup(), Some(Popup::Notices { .. })));
    assert!(
        next.notices()
            .iter()
            .any(|n| n.contains("start without read-only to restore")),
        "{:?}",
        next.notices()
    );
    drop(next);
    assert!(file.exists());
    // Esc applies the text (it parses): the editor's file goes, the session's unsaved edits
    // are kept instead.
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert!(f.app.screens().clients.editor.is_none(), "{}", flash(&f));
    assert!(!file.exists());
    let kept = std::fs::read_to_string(recovery(&f)).unwrap();
    assert!(kept.contains("\n# note\nidentifier"), "{kept}");
}

#[test]
fn the_recovery_dialog_counts_lines_with_a_real_diff() {
    let f = fixture_with(|c| Context {
        keep_unsaved: true,
        ..c
    });
    // One line inserted near the top shifts every line below it.
    let text = f.app.saved_text().to_string();
    let at = text.find("[[clients]]").unwrap();
    let edited = format!("{}# inserted\n{}", &text[..at], &text[at..]);
    std::fs::create_dir_all(recovery(&f).parent().unwrap()).unwrap();
    std::fs::write(recovery(&f), &edited).unwrap();
    let next = restart(&f, false);
    match next.popup() {
        Some(Popup::Confirm {
            what: Confirmation::Recover { .. },
            lines,
            ..
        }) => {
            let all = lines.join(" ");
            assert!(all.contains("1 line(s) added, 0 removed"), "{all}");
        }
        _ => panic!("no recovery dialog"),
    }
    drop(f.dir);
}

// ---- 6. start-up notices are all shown ------------------------------------------------------

#[test]
fn every_start_up_notice_is_shown_before_recovery_is_offered() {
    let mut f = fixture_with(|c| Context {
        keep_unsaved: true,
        ..c
    });
    press(&mut f, "i# x");
    special(&mut f, KeyCode::Enter, KeyModifiers::NONE);
    wait(&mut f, 1);
    let policy_path = f.app.policy_path().to_path_buf();
    let notices: Vec<String> = (1..=4).map(|i| format!("problem number {i}")).collect();
    let mut next = App::new(Context {
        has_repo: true,
        keep_unsaved: true,
        notices: notices.clone(),
        recovered_editor: std::fs::read_to_string(editor_recovery(&f)).ok(),
        ..Context::new(
            policy_path.clone(),
            std::fs::read_to_string(&policy_path).unwrap(),
            NOW,
        )
    });
    assert!(matches!(next.popup(), Some(Popup::Notices { .. })));
    assert_eq!(
        next.notices(),
        notices,
        "all of them, not the first plus a count"
    );
    let backend = ratatui::backend::TestBackend::new(120, 30);
    let mut terminal = ratatui::Terminal::new(backend).unwrap();
    terminal
        .draw(|frame| hessra_console::console::ui::render(frame, &next))
        .unwrap();
    let screen = format!("{:?}", terminal.backend().buffer());
    for notice in &notices {
        assert!(screen.contains(notice.as_str()), "{notice} not on screen");
    }
    assert!(screen.contains("Start-up notices (4)"));
    // Closing them brings the recovery offer that waited behind them.
    next.handle_key(key(KeyCode::Esc));
    assert!(matches!(
        next.popup(),
        Some(Popup::Confirm {
            what: Confirmation::RecoverEditor { .. },
            ..
        })
    ));
    next.handle_key(key(KeyCode::Esc));
    assert!(next.popup().is_none());
    // :notices shows them again.
    next.run_command("notices");
    assert!(matches!(next.popup(), Some(Popup::Notices { .. })));
}

fn policy_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git2::Repository::init(dir.path()).unwrap();
    std::fs::write(
        dir.path().join("clients.toml"),
        include_str!("../fixtures/clients.toml"),
    )
    .unwrap();
    dir
}

fn launch_with(config: &str, args: ConsoleArgs) -> Result<launch::Launched, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    launch::launch_with_config(args, Some(&path))
        .map_err(|e| e.replace(&dir.path().display().to_string(), "DIR"))
}

#[test]
fn a_bad_readonly_in_the_config_starts_read_only_and_says_where() {
    let repo = policy_repo();
    let args = || ConsoleArgs {
        policy_repo: Some(repo.path().to_path_buf()),
        ..ConsoleArgs::default()
    };
    let launched = launch_with("theme = \"light\"\nreadonly = \"yes\"\n", args()).unwrap();
    let context = &launched.context;
    assert!(
        context.readonly,
        "readonly = \"yes\" must not start read-write"
    );
    let first = &context.notices[0];
    assert!(
        first.contains("config.toml:2:12: started read-only"),
        "{first}"
    );
    assert!(first.contains("fix: write readonly = true"), "{first}");
    // The console built on it cannot edit, and shows why at once.
    let app = App::new(Context {
        notices: context.notices.clone(),
        readonly: context.readonly,
        ..Context::new(
            context.policy_path.clone(),
            context.policy_text.clone(),
            NOW,
        )
    });
    assert!(app.readonly());
    assert!(matches!(app.popup(), Some(Popup::Notices { .. })));
    assert!(
        !app.keymap()
            .is_enabled(hessra_console::console::keymap::Action::Save)
    );

    // A config theme that does not exist is the file's mistake, not --theme's: a notice.
    let launched = launch_with("theme = \"plaid\"\n", args()).unwrap();
    assert!(!launched.context.readonly);
    let all = launched.context.notices.join("\n");
    assert!(all.contains("config.toml:1:9: theme = \"plaid\""), "{all}");
    assert!(!all.contains("--theme"), "{all}");
    // A wrong --theme flag is the flag's mistake, and stops the start.
    let error = launch_with(
        "",
        ConsoleArgs {
            theme: Some("plaid".into()),
            ..args()
        },
    )
    .err()
    .expect("a bad --theme is refused");
    assert!(error.starts_with("--theme:"), "{error}");
    // A config that does not parse at all: read-only, with the place.
    let launched = launch_with("readonly = false\n[keys\n", args()).unwrap();
    assert!(launched.context.readonly);
    assert!(
        launched.context.notices[0].contains("config.toml:2:"),
        "{:?}",
        launched.context.notices
    );
}

// ---- 7. the smaller findings ----------------------------------------------------------------

#[test]
fn d_makes_the_selected_role_the_default_without_renaming_anything() {
    let mut f = fixture();
    press(&mut f, "3");
    special(&mut f, KeyCode::Tab, KeyModifiers::NONE);
    // Roles pane: member (default) first, admin second.
    press(&mut f, "jd");
    let policy = &f.app.loaded().unwrap().policy;
    let domain = policy
        .client("uri:urn:mycompany")
        .unwrap()
        .domain
        .clone()
        .unwrap();
    let default = domain.default_role.clone().unwrap();
    assert_eq!(default.name, "admin", "{}", flash(&f));
    assert_eq!(
        default.resources[0].operations,
        vec!["read", "write", "delete"],
        "the default role is admin with admin's grants"
    );
    let member = domain.role("member").expect("member is still a role");
    assert_eq!(member.resources[0].operations, vec!["read"]);
    assert_eq!(domain.roles.len(), 1, "no role was duplicated or lost");
    assert!(
        f.app.loaded().unwrap().errors().next().is_none(),
        "{:?}",
        f.app.loaded().unwrap().findings
    );
    // Undo restores the file byte for byte.
    press(&mut f, "u");
    assert_eq!(f.app.text(), f.app.saved_text());
}

#[test]
fn t_takes_durations_like_the_cli_and_restates_the_comment() {
    let mut f = fixture();
    // alice is selected first; her duration is 28800 # 8 hours.
    press(&mut f, "t");
    assert_eq!(prompt(&f).unwrap().0, "8h", "shown as it is typed");
    clear_prompt(&mut f);
    press(&mut f, "soon");
    enter(&mut f);
    let (text, error) = prompt(&f).expect("a refused value keeps the prompt");
    assert_eq!(text, "soon");
    let error = error.unwrap();
    assert!(
        error.contains("\"soon\" is not a duration") && error.contains("8h, 15m, 1h30m, 7d"),
        "{error}"
    );
    clear_prompt(&mut f);
    press(&mut f, "1h30m");
    enter(&mut f);
    assert!(
        f.app
            .text()
            .contains("identity_token_duration = 5400 # 1 hour 30 minutes\n"),
        "{}",
        flash(&f)
    );
    press(&mut f, "t");
    assert_eq!(prompt(&f).unwrap().0, "1h30m");
    clear_prompt(&mut f);
    press(&mut f, "4h");
    enter(&mut f);
    assert!(f.app.popup().is_none(), "{}", flash(&f));
    assert!(
        f.app
            .text()
            .contains("identity_token_duration = 14400 # 4 hours\n"),
        "{}",
        flash(&f)
    );
    assert!(!f.app.text().contains("# 8 hours"));
    // 0 still turns identity tokens off.
    press(&mut f, "t");
    clear_prompt(&mut f);
    press(&mut f, "0");
    enter(&mut f);
    let alice = f
        .app
        .loaded()
        .unwrap()
        .policy
        .client("uri:urn:company:alice")
        .unwrap()
        .clone();
    assert_eq!(alice.identity_token_cap(), None);
}

#[test]
fn dialogs_refuse_bad_text_with_the_reason_and_keep_it() {
    let mut f = fixture();
    let before = f.app.text().to_string();
    // a: an identity with a space.
    press(&mut f, "a");
    press(&mut f, "bad id");
    enter(&mut f);
    let (text, error) = prompt(&f).expect("refused, still open");
    assert_eq!(text, "uri:urn:bad id");
    let error = error.unwrap();
    assert!(
        error.contains("one word with no spaces, starting with uri:"),
        "{error}"
    );
    assert_eq!(f.app.text(), before, "nothing was added");
    // Fixing the text in place works.
    for _ in 0.."bad id".len() {
        f.app.handle_key(key(KeyCode::Backspace));
    }
    press(&mut f, "company:bob");
    enter(&mut f);
    assert!(f.app.popup().is_none(), "{}", flash(&f));
    assert!(
        f.app
            .loaded()
            .unwrap()
            .policy
            .client("uri:urn:company:bob")
            .is_some()
    );
    // a: the wrong scheme.
    press(&mut f, "a");
    clear_prompt(&mut f);
    press(&mut f, "spiffe://x/y");
    enter(&mut f);
    assert!(
        prompt(&f)
            .unwrap()
            .1
            .unwrap()
            .contains("does not start with uri:")
    );
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    // s: a value the setting does not take keeps what was typed.
    press(&mut f, "g"); // back to the first client
    press(&mut f, "sdelegatable maybe");
    enter(&mut f);
    let (text, error) = prompt(&f).expect("refused, still open");
    assert_eq!(text, "delegatable maybe");
    assert!(error.unwrap().contains("true or false"));
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    // s: authorization_token_duration takes durations too.
    press(&mut f, "sauthorization_token_duration 10m");
    enter(&mut f);
    assert!(f.app.popup().is_none(), "{}", flash(&f));
    assert!(f.app.text().contains("authorization_token_duration = 600"));
    // +: one word is not RESOURCE OPERATION.
    press(&mut f, "+staging_api");
    enter(&mut f);
    assert_eq!(prompt(&f).unwrap().0, "staging_api");
}

#[test]
fn shift_tab_moves_focus_back_wherever_tab_moves_it() {
    use hessra_console::console::screens::roles::RolesPane;
    let mut f = fixture();
    let back_tab = |f: &mut Fixture| special(f, KeyCode::BackTab, KeyModifiers::SHIFT);
    press(&mut f, "3");
    assert_eq!(f.app.screens().roles.focus, RolesPane::Realms);
    back_tab(&mut f);
    assert_eq!(f.app.screens().roles.focus, RolesPane::Assignments);
    back_tab(&mut f);
    assert_eq!(f.app.screens().roles.focus, RolesPane::Roles);
    special(&mut f, KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(f.app.screens().roles.focus, RolesPane::Assignments);
    // The raw editor's text / findings focus.
    press(&mut f, "1i");
    back_tab(&mut f);
    assert!(
        f.app
            .screens()
            .clients
            .editor
            .as_ref()
            .unwrap()
            .findings_focused
    );
    back_tab(&mut f);
    assert!(
        !f.app
            .screens()
            .clients
            .editor
            .as_ref()
            .unwrap()
            .findings_focused
    );
}

#[test]
fn n_is_not_bound_where_it_would_do_nothing() {
    let mut f = fixture();
    // On Clients n is no action at all (it used to be "next match" everywhere).
    let before = f.app.screens().clients.selected;
    press(&mut f, "n");
    assert_eq!(f.app.screens().clients.selected, before);
    assert!(f.app.popup().is_none());
    // On Delegations, with a filter, n steps through the matches.
    press(&mut f, "2/company:ci");
    enter(&mut f);
    let first = f.app.screens().delegations.matches().to_vec();
    assert!(first.len() >= 2, "{first:?}");
    press(&mut f, "n");
    let at = f.app.screens().delegations.match_at;
    press(&mut f, "N");
    assert_ne!(f.app.screens().delegations.match_at, at);
}

#[test]
fn load_expands_the_home_directory() {
    let home = std::env::var("HOME").expect("HOME is set");
    let mut f = fixture();
    f.app.run_command("load ~/no-such-hessra-token.txt");
    jobs::settle(&mut f.app, &f.env, false);
    let expected = Path::new(&home).join("no-such-hessra-token.txt");
    assert!(
        flash(&f).contains(&format!("cannot read {}", expected.display())),
        "{}",
        flash(&f)
    );
    f.app.run_command("load ~");
    jobs::settle(&mut f.app, &f.env, false);
    assert!(
        flash(&f).contains(&format!("cannot read {home}")),
        "{}",
        flash(&f)
    );
}

#[test]
fn the_demo_flow_in_remote_mode_uses_the_operator_certificate_or_says_why_not() {
    // Remote mode: a server, no workspace, no client certificate with an identity.
    let mut f = fixture_with(|c| Context {
        server: Some(("https://127.0.0.1:9".into(), false)),
        ..c
    });
    press(&mut f, "4f");
    assert!(f.app.popup().is_none(), "no prompt that cannot succeed");
    let said = flash(&f);
    assert!(said.contains("client certificate"), "{said}");
    assert!(said.contains("--workspace"), "{said}");
    // With the operator's certificate (what launch gives remote mode), it is prefilled from it
    // and a grant the operator has.
    let mut f = fixture_with(|c| Context {
        server: Some(("https://127.0.0.1:9".into(), false)),
        demo_clients: vec!["uri:urn:company:ops".into()],
        ..c
    });
    press(&mut f, "4f");
    let (text, _) = prompt(&f).expect("prompt");
    assert_eq!(
        text,
        "uri:urn:company:ops uri:urn:company:ops:agent1 production_api read"
    );
    // A client without a certificate is refused before anything runs, keeping the text.
    clear_prompt(&mut f);
    for _ in 0..80 {
        f.app.handle_key(key(KeyCode::Backspace));
    }
    press(
        &mut f,
        "uri:urn:company:alice uri:urn:company:alice:a1 production_api read",
    );
    enter(&mut f);
    let (text, error) = prompt(&f).expect("refused, still open");
    assert!(text.starts_with("uri:urn:company:alice "));
    assert!(
        error
            .unwrap()
            .contains("no client certificate for uri:urn:company:alice")
    );
    assert!(f.app.screens().tokens.flow.is_empty());
}

// ---- global flags on the command line ---------------------------------------------------------

fn run(args: &[&str], home: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hessra-console"))
        .args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("HESSRA_PUBLIC_KEY")
        .output()
        .unwrap()
}

#[test]
fn global_flags_work_before_and_after_the_subcommand() {
    let home = tempfile::tempdir().unwrap();
    let repo = policy_repo();
    let file = repo.path().join("clients.toml");
    let file = file.to_str().unwrap();
    // --json (global on every command), in every position.
    for args in [
        vec!["--json", "identity", "list"],
        vec!["identity", "--json", "list"],
        vec!["identity", "list", "--json"],
    ] {
        let out = run(&args, home.path());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        assert!(value.is_object() || value.is_array(), "{args:?}");
    }
    // --file (global under policy) and --json, before and after `validate`.
    for args in [
        vec!["--json", "policy", "--file", file, "validate"],
        vec!["policy", "--file", file, "--json", "validate"],
        vec!["policy", "validate", "--file", file, "--json"],
        vec!["--json", "policy", "validate", "--file", file],
    ] {
        let out = run(&args, home.path());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        assert!(value.is_object(), "{args:?}: {value}");
    }
    // The console's own flags still do not mix with a subcommand, and say why.
    let out = run(&["--readonly", "identity", "list"], home.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--readonly opens the console"), "{stderr}");
}
