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
