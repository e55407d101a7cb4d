//! The console's review mode (issue 18, item 5) and its report export (item 4), key-driven over
//! a real workspace's git history: the widening changes between two revisions one at a time,
//! each with its author, message and decision replay; marks kept in the repository's git
//! directory across sessions; a read-only console opening on it; the report written with one
//! key. Snapshot of the screen with the commit ids and times masked (they change every run).

use std::path::Path;

use hessra_console::console::ScreenId;
use hessra_console::console::app::{Context, Popup};
use hessra_console::review::marks;
use ratatui::crossterm::event::{KeyCode, KeyModifiers};

mod support;

use support::console::{Console, Setup, enter, flash, press, screen, set_author, special};

const AGENT: &str = "uri:urn:company:alice:agent1";

fn head(repo: &Path) -> String {
    git2::Repository::open(repo)
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap()
        .to_string()
}

/// Commits an edit of the clone's clients.toml as `author`; returns the commit id.
fn commit(f: &Console, author: &str, message: &str, change: impl FnOnce(&str) -> String) -> String {
    set_author(&f.clone, author);
    let text = std::fs::read_to_string(&f.policy_path).unwrap();
    let changed = change(&text);
    assert_ne!(changed, text);
    std::fs::write(&f.policy_path, changed).unwrap();
    hessra_console::gitops::commit_file(&f.clone, Path::new("clients.toml"), message).unwrap()
}

/// After the workspace's first commit: agent1 gains staging_api write (widening), then ci loses
/// artifacts write (narrowing). Returns the first commit and the widening one.
fn history(f: &Console) -> (String, String) {
    let base = head(&f.clone);
    let widening = commit(f, "Mallory", "Let agent1 write staging", |text| {
        text.replacen(
            "  { name = \"production_api\", operations = [\"read\"] },\n]\nidentity_token_enabled = true\nidentity_token_duration = 3600",
            "  { name = \"production_api\", operations = [\"read\"] },\n  { name = \"staging_api\", operations = [\"write\"] },\n]\nidentity_token_enabled = true\nidentity_token_duration = 3600",
            1,
        )
    });
    commit(f, "Bob", "Narrow ci", |text| {
        text.replacen(
            "  { name = \"artifacts\", operations = [\"read\", \"write\"] },\n  { name = \"staging_api\", operations = [\"read\", \"write\"] },",
            "  { name = \"artifacts\", operations = [\"read\"] },\n  { name = \"staging_api\", operations = [\"read\", \"write\"] },",
            1,
        )
    });
    (base, widening)
}

fn backspaces(f: &mut Console, n: usize) {
    for _ in 0..n {
        f.app.handle_key(support::console::key(KeyCode::Backspace));
    }
}

/// Sets the review range by its prompt (`r`).
fn review_range(f: &mut Console, range: &str) {
    press(f, "r");
    backspaces(f, 100);
    press(f, range);
    enter(f);
}

fn masked(shown: &str, ids: &[&str]) -> String {
    let mut shown = shown.to_string();
    for id in ids {
        shown = shown
            .replace(*id, "<commit id>")
            .replace(&id[..12], "<commit>")
            .replace(&id[..8], "<commit>");
    }
    // Commit times: `YYYY-MM-DD HH:MM:SS UTC`.
    let mut out = String::new();
    let chars: Vec<char> = shown.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..chars.len().min(i + 23)].iter().collect();
        let is_time = rest.len() == 23
            && rest.ends_with(" UTC")
            && rest.chars().take(4).all(|c| c.is_ascii_digit())
            && rest.chars().nth(4) == Some('-');
        if is_time {
            out.push_str("<time>                 ");
            i += 23;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn the_review_steps_through_each_widening_change_with_its_replay() {
    let mut f = Console::start();
    let (base, widening) = history(&f);
    press(&mut f, "8");
    assert_eq!(f.app.screen(), ScreenId::Review);
    // All of history first: the demo policy's own commit widens too.
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("Review all of HEAD"), "{shown}");
    assert!(
        shown.contains("Demo policy") || shown.contains("hessra-co"),
        "{shown}"
    );

    review_range(&mut f, &format!("{base}..HEAD"));
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("1 to review, 0 reviewed"), "{shown}");
    assert!(shown.contains("2 commit(s)"), "both commits read: {shown}");
    assert!(
        shown.contains(&format!("{AGENT} may now write on staging_api")),
        "{shown}"
    );
    assert!(shown.contains("Mallory"), "{shown}");
    assert!(shown.contains("Let agent1 write staging"), "{shown}");
    assert!(
        shown.contains(&format!("{AGENT} write staging_api: denied → allowed")),
        "the decision replay: {shown}"
    );
    assert!(
        !shown.contains("Narrow ci"),
        "a narrowing commit is not a step: {shown}"
    );
    insta::assert_snapshot!(
        "review_one_widening_change",
        masked(&screen(&f, 100, 30), &[&widening, &base])
    );

    // Enter: the whole change, with both decisions' reasons.
    enter(&mut f);
    match f.app.popup() {
        Some(Popup::Detail { lines, .. }) => {
            assert!(
                lines.iter().any(|l| l.starts_with("      before: ")),
                "{lines:?}"
            );
            assert!(
                lines.iter().any(|l| l.contains("via client entry at line")),
                "{lines:?}"
            );
        }
        _ => panic!("a detail popup"),
    }
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);

    // Space marks it; the marks are kept in the clone's git directory.
    press(&mut f, " ");
    assert!(flash(&f).contains("every change of"), "{}", flash(&f));
    let kept = marks::load(&f.clone).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].commit, widening);
    assert!(kept[0].change.contains(AGENT));
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("1 to review, 1 reviewed"), "{shown}");
    assert!(shown.contains("✓ reviewed"), "{shown}");

    // Read again (f5): the mark stays. Space again takes it back.
    special(&mut f, KeyCode::F(5), KeyModifiers::NONE);
    assert!(screen(&f, 120, 40).contains("1 reviewed"));
    press(&mut f, " ");
    assert!(marks::load(&f.clone).unwrap().is_empty());
}

#[test]
fn marks_outlive_the_session_and_n_skips_what_is_reviewed() {
    let mut f = Console::start();
    press(&mut f, "8");
    // The demo policy's commit: nine widening changes.
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("9 to review, 0 reviewed"), "{shown}");
    press(&mut f, "  ");
    assert!(screen(&f, 120, 40).contains("9 to review, 2 reviewed"));
    assert_eq!(marks::load(&f.clone).unwrap().len(), 2);

    // A second console on the same clone (a later session) opens where the first stopped.
    let saved = marks::load(&f.clone).unwrap();
    let mut later = Console::start();
    marks::save(&later.clone, &saved).unwrap();
    // Not the same commit (another workspace): nothing it marked applies.
    press(&mut later, "8");
    assert!(screen(&later, 120, 40).contains("0 reviewed"));

    // In the same clone, read again: the two marks, and n steps to unreviewed ones only.
    special(&mut f, KeyCode::F(5), KeyModifiers::NONE);
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("2 reviewed"), "{shown}");
    assert!(
        shown.contains("Change 3 of 9"),
        "opens on the first not reviewed: {shown}"
    );
    press(&mut f, "gn");
    assert!(
        screen(&f, 120, 40).contains("Change 3 of 9"),
        "from the first, n skips the two reviewed"
    );
}

#[test]
fn a_read_only_console_opens_on_the_review_and_exports_the_report() {
    let mut f = Console::with(Setup::default(), |context| Context {
        readonly: true,
        ..context
    });
    assert_eq!(f.app.screen(), ScreenId::Review);
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("to review"), "{shown}");
    // Reviewing writes no policy: marking is allowed read-only.
    press(&mut f, " ");
    assert_eq!(marks::load(&f.clone).unwrap().len(), 1);

    // E: the report, by the path's extension.
    let report = f.dir.path().join("review.html");
    press(&mut f, "E");
    backspaces(&mut f, 100);
    press(&mut f, report.to_str().unwrap());
    enter(&mut f);
    assert!(flash(&f).starts_with("wrote "), "{}", flash(&f));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Who may do what"));
    assert!(!html.contains("<script"));

    // A name without a known extension is refused in the prompt, which stays open.
    press(&mut f, "E");
    backspaces(&mut f, 100);
    press(&mut f, "report.txt");
    enter(&mut f);
    match f.app.popup() {
        Some(Popup::Prompt { error, .. }) => {
            assert!(
                error.as_deref().unwrap_or("").contains(".html"),
                "{error:?}"
            )
        }
        _ => panic!("the prompt stays open"),
    }
}

#[test]
fn a_range_that_git_does_not_know_is_said_and_another_can_be_chosen() {
    let mut f = Console::start();
    press(&mut f, "8");
    review_range(&mut f, "no-such-tag..HEAD");
    assert!(flash(&f).contains("no-such-tag"), "{}", flash(&f));
    let shown = screen(&f, 120, 40);
    assert!(shown.contains("r chooses another range"), "{shown}");
    review_range(&mut f, "");
    assert!(screen(&f, 120, 40).contains("9 to review"));
}

#[test]
fn without_a_repository_the_review_says_there_is_no_history() {
    let mut f = Console::with(
        Setup {
            no_repo: true,
            ..Setup::default()
        },
        |c| c,
    );
    press(&mut f, "8");
    assert!(
        screen(&f, 120, 40).contains("not in a git repository"),
        "{}",
        screen(&f, 120, 40)
    );
}

#[test]
fn eight_tabs_fit_eighty_columns() {
    let mut f = Console::start();
    press(&mut f, "8");
    let shown = screen(&f, 80, 24);
    let title = shown.lines().next().unwrap();
    assert!(title.contains("8 Review"), "{title}");
    assert!(title.contains(" 1 ") && title.contains(" 7 "), "{title}");
}
