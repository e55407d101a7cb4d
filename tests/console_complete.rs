//! Pick-lists and fuzzy completion in the console's dialogs, driven by keys: a grant prompt
//! offers the policy's resources and then their operations, typing narrows them, Tab fills one
//! in and Enter takes what the input holds; the `:` palette lists every command with what it
//! does, Tab cycles them, ctrl-p / ctrl-n walk the history; a path prompt lists a directory.

use std::path::PathBuf;

use hessra_console::console::app::Popup;
use hessra_console::console::theme::Theme;
use hessra_console::console::{App, Context, ScreenId, palette, ui};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

mod support;

use support::console::{Console, NOW, Setup, enter, flash, press, special};

/// The prompt's or the palette's input and the candidates it lists.
fn dialog(app: &App) -> (String, Vec<String>) {
    match app.popup() {
        Some(Popup::Prompt {
            input, completion, ..
        })
        | Some(Popup::Palette {
            input, completion, ..
        }) => (
            input.lines().join(""),
            completion.items.iter().map(|c| c.text.clone()).collect(),
        ),
        _ => panic!("no prompt or palette open"),
    }
}

fn tab(f: &mut Console) {
    special(f, KeyCode::Tab, KeyModifiers::NONE);
}

#[test]
fn a_grant_prompt_offers_resources_then_operations_and_grants_what_tab_filled_in() {
    let mut f = Console::start();
    // The first client is alice; she holds production_api and staging_api, not artifacts.
    press(&mut f, "+");
    let (input, listed) = dialog(&f.app);
    assert_eq!(input, "");
    assert_eq!(
        listed,
        ["api", "artifacts", "production_api", "staging_api"],
        "every resource any client or role grants"
    );
    press(&mut f, "art");
    let (_, listed) = dialog(&f.app);
    assert_eq!(listed, ["artifacts"]);
    tab(&mut f);
    let (input, listed) = dialog(&f.app);
    assert_eq!(input, "artifacts ", "Tab fills in the resource and a space");
    assert_eq!(
        listed,
        ["artifacts"],
        "cycling keeps the list it started from"
    );
    // The operations of that resource, once its operation is typed.
    press(&mut f, "r");
    let (_, listed) = dialog(&f.app);
    assert_eq!(listed, ["read", "write"]);
    tab(&mut f);
    assert_eq!(dialog(&f.app).0, "artifacts read");
    enter(&mut f);
    assert!(f.app.popup().is_none(), "{}", flash(&f));
    let loaded = f.app.loaded().unwrap();
    let alice = loaded.policy.client("uri:urn:company:alice").unwrap();
    assert_eq!(
        alice.resource("artifacts").map(|r| r.operations.clone()),
        Some(vec!["read".to_string()]),
        "{}",
        flash(&f)
    );
}

#[test]
fn free_text_stays_an_answer_and_revoke_offers_what_the_client_holds() {
    let mut f = Console::start();
    // A new resource is no candidate; Enter takes what was typed.
    press(&mut f, "+billing_api read");
    enter(&mut f);
    assert!(f.app.text().contains("billing_api"), "{}", flash(&f));
    press(&mut f, "-");
    let (_, listed) = dialog(&f.app);
    assert_eq!(listed, ["production_api", "staging_api", "billing_api"]);
    // ↓ chooses too; shift-tab goes back, wrapping.
    special(&mut f, KeyCode::Down, KeyModifiers::NONE);
    assert_eq!(dialog(&f.app).0, "production_api ");
    special(&mut f, KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(dialog(&f.app).0, "billing_api ");
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    // Pasted text narrows the list as typed text does.
    press(&mut f, "+");
    f.app.handle_paste("stag");
    assert_eq!(
        dialog(&f.app),
        ("stag".to_string(), vec!["staging_api".to_string()])
    );
}

#[test]
fn the_empty_palette_lists_every_command_with_what_it_does() {
    let mut f = Console::start();
    press(&mut f, ":");
    let Some(Popup::Palette { completion, .. }) = f.app.popup() else {
        panic!("no palette")
    };
    let mut names: Vec<String> = palette::commands(&f.app)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    let listed: Vec<String> = completion.items.iter().map(|c| c.text.clone()).collect();
    assert_eq!(listed, names, "every command, in the keymap's order");
    for item in &completion.items {
        assert!(!item.note.is_empty(), ":{} has no description", item.text);
    }
    assert_eq!(
        completion.count(),
        format!("{} of {}", names.len(), names.len())
    );
    let shown = support::console::screen(&f, 120, 40);
    assert!(shown.contains("force-quit"), "{shown}");
    assert!(
        shown.contains("quit now, even with unsaved edits"),
        "{shown}"
    );
    assert!(!shown.contains("add-client"), "{shown}");
    // Typing filters fuzzily: "adcl" is add-client, shown with what it does.
    press(&mut f, "adcl");
    assert_eq!(
        dialog(&f.app).1.first().map(String::as_str),
        Some("add-client")
    );
    let shown = support::console::screen(&f, 120, 40);
    assert!(shown.contains("add a client"), "{shown}");
}

#[test]
fn tab_cycles_the_palettes_commands_and_completes_their_arguments() {
    let mut f = Console::start();
    press(&mut f, ":");
    let first = palette::commands(&f.app)[0].0.clone();
    let second = palette::commands(&f.app)[1].0.clone();
    tab(&mut f);
    assert_eq!(dialog(&f.app).0, first);
    tab(&mut f);
    assert_eq!(dialog(&f.app).0, second);
    special(&mut f, KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(dialog(&f.app).0, first);
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    // An argument completes too: the theme names after `theme `.
    press(&mut f, ":them");
    tab(&mut f);
    assert_eq!(dialog(&f.app).0, "theme ");
    press(&mut f, "contr");
    tab(&mut f);
    assert_eq!(dialog(&f.app).0, "theme high-contrast");
    // And a client's identity after `client `.
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    press(&mut f, ":client cibuild");
    assert_eq!(
        dialog(&f.app).1.first().map(String::as_str),
        Some("uri:urn:company:ci:build")
    );
    tab(&mut f);
    enter(&mut f);
    assert_eq!(f.app.screen(), ScreenId::Clients);
    assert!(f.app.popup().is_none(), "{}", flash(&f));
}

#[test]
fn the_palette_history_moves_to_ctrl_p_and_ctrl_n() {
    let mut f = Console::start();
    for line in ["2", "3"] {
        press(&mut f, &format!(":{line}"));
        enter(&mut f);
    }
    assert_eq!(f.app.screen(), ScreenId::Roles);
    press(&mut f, ":");
    let ctrl = |f: &mut Console, c| special(f, KeyCode::Char(c), KeyModifiers::CONTROL);
    ctrl(&mut f, 'p');
    assert_eq!(dialog(&f.app).0, "3");
    ctrl(&mut f, 'p');
    assert_eq!(dialog(&f.app).0, "2");
    ctrl(&mut f, 'n');
    assert_eq!(dialog(&f.app).0, "3");
    // ↑ now moves in the list instead: from nothing chosen to its last command.
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    press(&mut f, ":");
    special(&mut f, KeyCode::Up, KeyModifiers::NONE);
    let (input, listed) = dialog(&f.app);
    assert_eq!(Some(&input), listed.last());
    assert_ne!(input, "3");
    // The list scrolls to what is chosen.
    let shown = support::console::screen(&f, 120, 40);
    assert!(shown.contains(&format!("▶ {input} ")), "{shown}");
    // The help overlay names the palette's keys.
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    press(&mut f, "?");
    let help = support::console::screen(&f, 120, 200);
    assert!(help.contains("command palette"), "{help}");
    assert!(help.contains("ctrl-p"), "{help}");
}

#[test]
fn a_path_prompt_lists_the_typed_directorys_entries() {
    let mut f = Console::with(Setup::default(), |context| context);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alice.token"), "x").unwrap();
    std::fs::write(dir.path().join("bob.token"), "x").unwrap();
    std::fs::create_dir(dir.path().join("old")).unwrap();
    // No token store: `o` asks for a file.
    press(&mut f, "4o");
    assert!(
        matches!(f.app.popup(), Some(Popup::Prompt { title, .. }) if title == "Load a token file"),
        "{}",
        flash(&f)
    );
    let typed = format!("{}/", dir.path().display());
    // The directory is read by a worker: the list fills in once it is read.
    for c in typed.chars() {
        f.app
            .handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    assert!(dialog(&f.app).1.is_empty());
    f.settle();
    let (_, listed) = dialog(&f.app);
    assert_eq!(listed, ["alice.token", "bob.token", "old/"]);
    press(&mut f, "bo");
    tab(&mut f);
    assert_eq!(dialog(&f.app).0, format!("{typed}bob.token"));
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    // `:load` completes a path the same way.
    press(&mut f, &format!(":load {typed}ol"));
    tab(&mut f);
    assert_eq!(dialog(&f.app).0, format!("load {typed}old/"));
    press(&mut f, "x");
    assert!(dialog(&f.app).1.is_empty(), "an empty directory");
}

/// The console on the demo policy at a fixed path (no git, no server), as the screen
/// snapshots draw it.
fn snapshot_app() -> App {
    App::new(Context {
        theme: Theme::built_in("default").unwrap(),
        ..Context::new(
            PathBuf::from("/demo/policy/clients.toml"),
            hessra_console::workspace::DEMO_POLICY.to_string(),
            NOW,
        )
    })
}

fn draw(app: &App) -> ratatui::Terminal<ratatui::backend::TestBackend> {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    terminal.draw(|frame| ui::render(frame, app)).unwrap();
    terminal
}

fn keys(app: &mut App, typed: &str) {
    for c in typed.chars() {
        app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
}

#[test]
fn snapshot_a_grant_prompt_with_its_pick_list() {
    let mut app = snapshot_app();
    keys(&mut app, "+a");
    insta::assert_snapshot!("grant_pick_list_80x24", draw(&app).backend());
}

#[test]
fn snapshot_the_empty_palette() {
    let mut app = snapshot_app();
    keys(&mut app, ":");
    insta::assert_snapshot!("palette_empty_80x24", draw(&app).backend());
}

#[test]
fn identity_role_and_setting_prompts_offer_what_the_policy_has() {
    let mut f = Console::start();
    // Add client: the identities (a new delegate is typed under one of them).
    press(&mut f, "a");
    assert_eq!(dialog(&f.app).0, "uri:urn:");
    press(&mut f, "ali");
    let (_, listed) = dialog(&f.app);
    assert_eq!(listed[0], "uri:urn:company:alice", "{listed:?}");
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    // A setting, then its value.
    press(&mut f, "smax");
    tab(&mut f);
    assert_eq!(dialog(&f.app).0, "max_delegation_depth ");
    press(&mut f, "d");
    assert_eq!(dialog(&f.app).1, ["default"]);
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    // Assign: a subject, then the realm's role names (the default role first).
    press(&mut f, "3a");
    assert_eq!(dialog(&f.app).0, "uri:urn:mycompany:");
    press(&mut f, "bob ");
    assert_eq!(dialog(&f.app).1, ["member", "admin"]);
    press(&mut f, "adm");
    tab(&mut f);
    enter(&mut f);
    assert!(f.app.popup().is_none(), "{}", flash(&f));
    assert!(
        f.app.text().contains("uri:urn:mycompany:bob"),
        "{}",
        flash(&f)
    );
    // Add a role: the role names the policy uses.
    press(&mut f, "r");
    assert_eq!(dialog(&f.app).1, ["admin", "member"]);
}
