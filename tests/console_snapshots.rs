//! TestBackend + insta snapshots of every screen at 80×24 and 120×40, plus `NO_COLOR` and
//! read-only variants. The policy is the demo fixture (no git, no server: deterministic), the
//! clock is frozen, and the token is minted with a fixed key.

use std::path::PathBuf;

use hessra_console::console::app::Screen;
use hessra_console::console::keymap::Keymap;
use hessra_console::console::theme::Theme;
use hessra_console::console::{App, Context, ui};
use hessra_console::token::{self, IdentityClaims, KeyPair};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Modifier;

const NOW: i64 = 1_790_000_000;

fn app(readonly: bool, monochrome: bool) -> App {
    let theme = Theme::built_in("default").unwrap();
    let theme = if monochrome {
        theme.without_color()
    } else {
        theme
    };
    App::new(Context {
        policy_path: PathBuf::from("/demo/policy/clients.toml"),
        policy_text: hessra_console::workspace::DEMO_POLICY.to_string(),
        has_repo: false,
        server: None,
        operator: None,
        demo_clients: vec![],
        readonly,
        theme,
        keymap: Keymap::defaults(),
        now: NOW,
        frozen_clock: true,
        notices: vec![],
        clipboard: true,
        mouse: false,
    })
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
        for screen in Screen::ALL {
            let mut app = with_token(app(false, false));
            app.screen = screen;
            let name = format!(
                "{}_{width}x{height}",
                screen.title().replace(" & ", "_").to_lowercase()
            );
            let text = stable(&draw(&app, width, height).backend().to_string());
            insta::assert_snapshot!(name, text);
        }
    }
}

#[test]
fn read_only_shows_ro_and_hides_mutating_hints() {
    let app = app(true, false);
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
    app.popup = None;
    app.dispatch(hessra_console::console::keymap::Action::RemoveClient);
    insta::assert_snapshot!("confirm_remove_80x24", draw(&app, 80, 24).backend());
}
