//! The file on disk is the truth: key-driven console tests against real git (a bare remote, the
//! console's clone and a teammate's clone) and real files. A teammate's pushed work is never
//! reverted, an outside edit is never overwritten, and conflicts are shown, resolved or
//! abandoned with nothing changed.

use std::path::{Path, PathBuf};

use hessra_console::console::ScreenId;
use hessra_console::console::app::Popup;
use hessra_console::console::disk;
use hessra_console::console::jobs;
use hessra_console::gitops;
use hessra_console::policy::{self, Edit, Setting};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyModifiers};

const ALICE: &str = "uri:urn:company:alice";
const OPS: &str = "uri:urn:company:ops";

mod support;

use support::console::{Console, Setup, enter, flash, press, set_author, special};

type Fixture = Console;

fn fixture() -> Fixture {
    let setup = Setup {
        recovery: true,
        author: Some("Console"),
        ..Setup::default()
    };
    Console::with(setup, |context| context)
}

impl Fixture {
    /// A teammate's clone of the same remote.
    fn teammate(&self) -> PathBuf {
        let path = self.dir.path().join("teammate");
        if !path.exists() {
            gitops::clone(self.origin.to_str().unwrap(), &path).unwrap();
            set_author(&path, "Teammate");
        } else {
            gitops::pull(&path).unwrap();
        }
        path
    }

    fn disk(&self) -> String {
        std::fs::read_to_string(&self.policy_path).unwrap()
    }

    fn remote(&self) -> String {
        gitops::read_branch_file(&self.origin, "main", Path::new("clients.toml"))
            .unwrap()
            .0
    }

    fn head(&self) -> String {
        git2::Repository::open(&self.clone)
            .unwrap()
            .head()
            .unwrap()
            .target()
            .unwrap()
            .to_string()
    }
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut doc = policy::load(text, 0).unwrap().document;
    for edit in edits {
        doc.apply(edit).unwrap();
    }
    doc.text().to_string()
}

/// The teammate edits, commits and pushes.
fn teammate_pushes(f: &Fixture, edits: &[Edit], message: &str) {
    let clone = f.teammate();
    let file = clone.join("clients.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, apply(&text, edits)).unwrap();
    gitops::commit_file(&clone, Path::new("clients.toml"), message).unwrap();
    gitops::push(&clone, "origin", "main").unwrap();
}

/// Another program edits the console's working file.
fn outside_edit(f: &Fixture, edits: &[Edit]) -> String {
    let text = apply(&f.disk(), edits);
    std::fs::write(&f.policy_path, &text).unwrap();
    text
}

fn grant(identity: &str, resource: &str, operation: &str) -> Edit {
    Edit::Grant {
        identity: identity.into(),
        resource: resource.into(),
        operation: operation.into(),
    }
}

fn ttl(identity: &str, seconds: i64) -> Edit {
    Edit::SetSetting {
        identity: identity.into(),
        setting: Setting::AuthorizationTokenDuration,
        value: Some(seconds),
    }
}

fn granted(text: &str, identity: &str, resource: &str, operation: &str) -> bool {
    policy::load(text, 0)
        .unwrap()
        .policy
        .client(identity)
        .and_then(|c| c.resource(resource))
        .is_some_and(|r| r.operations.iter().any(|o| o == operation))
}

fn alice_ttl(text: &str) -> Option<u64> {
    policy::load(text, 0)
        .unwrap()
        .policy
        .client(ALICE)
        .unwrap()
        .authorization_token_duration
}

fn save(f: &mut Fixture) {
    special(f, KeyCode::Char('s'), KeyModifiers::CONTROL);
}

/// The watcher's poll, as the tick runs it once a second.
fn watch(f: &mut Fixture) {
    f.app.check_disk();
    jobs::settle(&mut f.app, &f.env, false);
}

/// Grants alice `operation` on `resource` from the Clients screen (alice is selected first).
fn console_grant(f: &mut Fixture, resource: &str, operation: &str) {
    press(f, "1");
    press(f, &format!("+{resource} {operation}"));
    enter(f);
    assert!(
        granted(f.app.text(), ALICE, resource, operation),
        "{}",
        flash(f)
    );
}

fn commit_and_push(f: &mut Fixture) {
    press(f, "5c");
    assert!(
        matches!(f.app.popup(), Some(Popup::Prompt { .. })),
        "{}",
        flash(f)
    );
    enter(f);
    press(f, "y");
    assert!(flash(f).starts_with("committed"), "{}", flash(f));
    press(f, "p");
}

/// The Changes screen's semantic diff, as its lines read.
fn shown_changes(f: &Fixture) -> Vec<String> {
    let diff = &f.app.screens().changes.diff;
    diff.changes.iter().map(ToString::to_string).collect()
}

/// Runs one job as a worker would and hands its results to the console.
fn run_job(f: &mut Fixture, id: u64, job: jobs::Job) {
    let results = std::cell::RefCell::new(Vec::new());
    jobs::execute(job, &f.env, &|r| results.borrow_mut().push(r));
    for result in results.into_inner() {
        f.app.handle_result(result);
    }
    f.app.job_done(id);
}

/// Runs only the queued jobs `wanted` picks; returns the rest, and what those queued, unrun
/// (a worker that has not got to them yet).
fn run_only(f: &mut Fixture, wanted: impl Fn(&jobs::Job) -> bool) -> Vec<(u64, jobs::Job)> {
    let mut held = Vec::new();
    for (id, job) in f.app.take_jobs() {
        if wanted(&job) {
            run_job(f, id, job);
        } else {
            held.push((id, job));
        }
    }
    held.extend(f.app.take_jobs());
    held
}

fn conflicts(f: &Fixture) -> Vec<String> {
    match f.app.popup() {
        Some(Popup::Conflicts(dialog)) => dialog.conflicts.iter().map(|c| c.to_string()).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn a_teammates_grant_survives_two_rounds_of_edit_commit_push() {
    let mut f = fixture();
    teammate_pushes(
        &f,
        &[grant(OPS, "audit", "read")],
        "ops reads the audit feed",
    );
    // Round one: the push meets the teammate's commit and replays onto it.
    console_grant(&mut f, "staging_api", "delete");
    save(&mut f);
    commit_and_push(&mut f);
    let pushed = f
        .app
        .screens()
        .changes
        .last_push
        .clone()
        .unwrap_or_default();
    assert!(pushed.contains("replayed 1 commit(s)"), "{pushed}");
    assert!(flash(&f).contains("replayed 1 commit(s)"), "{}", flash(&f));
    assert!(
        flash(&f).contains("(clients.toml reloaded)"),
        "{}",
        flash(&f)
    );
    // The console follows the rebased file: the teammate's grant is in its buffer.
    assert!(
        granted(f.app.text(), OPS, "audit", "read"),
        "{}",
        f.app.text()
    );
    assert!(!f.app.is_dirty());
    assert_eq!(f.app.text(), f.disk());
    // Round two: edit, save, commit, push again; nothing of the teammate's is reverted.
    console_grant(&mut f, "billing", "read");
    save(&mut f);
    commit_and_push(&mut f);
    assert!(flash(&f).contains("pushed 1 commit(s)"), "{}", flash(&f));
    let remote = f.remote();
    assert!(
        granted(&remote, OPS, "audit", "read"),
        "the teammate's grant was reverted:\n{remote}"
    );
    assert!(granted(&remote, ALICE, "staging_api", "delete"));
    assert!(granted(&remote, ALICE, "billing", "read"));
    assert_eq!(f.app.screen(), ScreenId::Changes);
}

#[test]
fn an_outside_edit_is_never_overwritten_and_unsaved_edits_are_rebased_onto_it() {
    let mut f = fixture();
    // Unmodified buffer: the watcher reloads, and says so.
    let outside = outside_edit(&f, &[grant(OPS, "audit", "read")]);
    watch(&mut f);
    assert!(
        flash(&f).contains("changed on disk: reloaded"),
        "{}",
        flash(&f)
    );
    assert_eq!(f.app.text(), outside);
    // Unsaved edits, then the file changes: the edits are rebased onto it, nothing is written.
    console_grant(&mut f, "billing", "read");
    let outside = outside_edit(&f, &[grant(OPS, "audit", "write")]);
    watch(&mut f);
    assert!(flash(&f).contains("rebased 1 edit(s)"), "{}", flash(&f));
    assert_eq!(f.disk(), outside, "the outside edit was overwritten");
    assert!(f.app.is_dirty());
    for (who, resource, op) in [(OPS, "audit", "write"), (ALICE, "billing", "read")] {
        assert!(
            granted(f.app.text(), who, resource, op),
            "{who} {op} {resource} lost"
        );
    }
    // The rebase is one undoable step.
    press(&mut f, "u");
    assert!(!granted(f.app.text(), OPS, "audit", "write"));
    press(&mut f, "U");
    assert!(
        granted(f.app.text(), OPS, "audit", "write"),
        "{}",
        flash(&f)
    );
    save(&mut f);
    assert!(granted(&f.disk(), OPS, "audit", "write"));
    assert!(granted(&f.disk(), ALICE, "billing", "read"));
    // A save that finds the file changed (the watcher has not seen it yet) writes nothing and
    // rebases instead; the next save writes both.
    console_grant(&mut f, "billing", "write");
    let outside = outside_edit(&f, &[grant(OPS, "billing", "read")]);
    save(&mut f);
    assert_eq!(f.disk(), outside, "a save overwrote the outside edit");
    assert!(flash(&f).contains("rebased 1 edit(s)"), "{}", flash(&f));
    save(&mut f);
    assert!(granted(&f.disk(), OPS, "billing", "read"));
    assert!(granted(&f.disk(), ALICE, "billing", "write"));
    assert!(!f.app.is_dirty());
}

#[test]
fn a_true_conflict_under_unsaved_edits_shows_both_sides_and_resolves_or_aborts() {
    let mut f = fixture();
    f.app.apply_edit(ttl(ALICE, 300));
    jobs::settle(&mut f.app, &f.env, true);
    let outside = outside_edit(&f, &[ttl(ALICE, 600), grant(OPS, "audit", "read")]);
    watch(&mut f);
    assert_eq!(
        conflicts(&f),
        [format!(
            "authorization_token_duration of {ALICE}: changed on both sides (was absent, mine 300, theirs 600)"
        )]
    );
    if let Some(Popup::Conflicts(dialog)) = f.app.popup() {
        let mut terminal = Terminal::new(TestBackend::new(100, 12)).unwrap();
        terminal
            .draw(|frame| disk::render_conflicts(frame, frame.area(), &f.app, dialog))
            .unwrap();
        insta::assert_snapshot!("conflicts_dialog_100x12", terminal.backend());
    }
    // Abort: everything stays as it was, and the watcher does not ask again.
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert!(flash(&f).contains("rebase abandoned"), "{}", flash(&f));
    assert_eq!(alice_ttl(f.app.text()), Some(300));
    assert_eq!(f.disk(), outside);
    watch(&mut f);
    assert!(f.app.popup().is_none());
    // A save asks again; Enter needs a choice for every conflict; mine wins here.
    save(&mut f);
    assert_eq!(f.disk(), outside);
    assert_eq!(conflicts(&f).len(), 1);
    enter(&mut f);
    assert!(flash(&f).contains("1 left"), "{}", flash(&f));
    press(&mut f, "m");
    enter(&mut f);
    assert!(f.app.popup().is_none(), "{}", flash(&f));
    assert!(flash(&f).contains("rebased"), "{}", flash(&f));
    assert_eq!(alice_ttl(f.app.text()), Some(300));
    assert!(granted(f.app.text(), OPS, "audit", "read"));
    save(&mut f);
    assert_eq!(alice_ttl(&f.disk()), Some(300));
    // Theirs wins: the buffer takes the file's value.
    f.app.apply_edit(ttl(ALICE, 1200));
    jobs::settle(&mut f.app, &f.env, true);
    outside_edit(&f, &[ttl(ALICE, 900)]);
    watch(&mut f);
    assert_eq!(conflicts(&f).len(), 1);
    press(&mut f, "t");
    enter(&mut f);
    assert_eq!(alice_ttl(f.app.text()), Some(900));
    assert!(!f.app.is_dirty(), "{}", flash(&f));
}

#[test]
fn a_push_conflict_offers_resolve_reset_and_abort_from_changes() {
    let mut f = fixture();
    teammate_pushes(&f, &[ttl(ALICE, 600)], "alice: 10 minutes");
    f.app.apply_edit(ttl(ALICE, 300));
    jobs::settle(&mut f.app, &f.env, true);
    save(&mut f);
    commit_and_push(&mut f);
    assert_eq!(conflicts(&f).len(), 1, "{}", flash(&f));
    let head = f.head();
    // Abort: the commits, the working file and the remote are as they were.
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    assert!(flash(&f).contains("push abandoned"), "{}", flash(&f));
    assert_eq!(f.head(), head);
    assert_eq!(alice_ttl(&f.disk()), Some(300));
    assert_eq!(alice_ttl(&f.remote()), Some(600));
    // Push again and resolve: mine.
    press(&mut f, "p");
    assert_eq!(conflicts(&f).len(), 1);
    press(&mut f, "m");
    enter(&mut f);
    let pushed = f
        .app
        .screens()
        .changes
        .last_push
        .clone()
        .unwrap_or_default();
    assert!(pushed.contains("replayed 1 commit(s)"), "{pushed}");
    assert_eq!(alice_ttl(&f.remote()), Some(300));
    assert_eq!(alice_ttl(f.app.text()), Some(300));
    // Reset to the upstream: confirmed, and the local work is kept in recovery.
    teammate_pushes(&f, &[ttl(ALICE, 900)], "alice: 15 minutes");
    f.app.apply_edit(ttl(ALICE, 1200));
    jobs::settle(&mut f.app, &f.env, true);
    save(&mut f);
    commit_and_push(&mut f);
    assert_eq!(conflicts(&f).len(), 1, "{}", flash(&f));
    press(&mut f, "r");
    assert!(matches!(f.app.popup(), Some(Popup::Confirm { .. })));
    press(&mut f, "y");
    let message = flash(&f);
    assert!(message.contains("kept in"), "{message}");
    let kept = message.rsplit("kept in ").next().unwrap();
    let kept = PathBuf::from(kept.split(" (").next().unwrap().trim());
    assert!(
        kept.starts_with(f.dir.path().join("state/recovery")),
        "{message}"
    );
    let listing = std::fs::read_to_string(kept.join("commits.txt")).unwrap();
    assert!(listing.contains("5m → 20m"), "{listing}");
    let kept_file = std::fs::read_to_string(kept.join("working.clients.toml")).unwrap();
    assert_eq!(alice_ttl(&kept_file), Some(1200));
    assert_eq!(alice_ttl(&f.disk()), Some(900));
    assert_eq!(alice_ttl(f.app.text()), Some(900));
    assert!(!f.app.is_dirty());
}

/// The status refresh a save queues is still on its way when the operator presses `c` (a fast
/// typist, or a slow disk): the commit must not be refused as "nothing to commit" on the strength
/// of a status taken before the save, and must name the saved file.
#[test]
fn a_commit_pressed_before_the_status_after_a_save_returns_is_not_refused() {
    let mut f = fixture();
    console_grant(&mut f, "billing", "read");
    f.app.handle_key(ratatui::crossterm::event::KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    ));
    // Run the save alone; hold back what it queues (the git status refresh).
    let held = run_only(&mut f, |job| matches!(job, jobs::Job::Save { .. }));
    assert!(flash(&f).starts_with("saved "), "{}", flash(&f));
    assert!(!f.app.is_dirty());
    assert!(
        held.iter()
            .any(|(_, job)| matches!(job, jobs::Job::GitStatus)),
        "the save queues a status refresh: {:?}",
        held.iter().map(|(_, j)| j.describe()).collect::<Vec<_>>()
    );
    for (id, _) in held {
        f.app.job_done(id);
    }
    f.app.handle_key(support::console::key(KeyCode::Char('5')));
    f.app.handle_key(support::console::key(KeyCode::Char('c')));
    assert!(
        matches!(f.app.popup(), Some(Popup::Prompt { .. })),
        "the commit prompt opens; the status bar said: {}",
        flash(&f)
    );
    f.settle();
    enter(&mut f);
    assert!(
        matches!(f.app.popup(), Some(Popup::Confirm { lines, .. })
            if lines.first().is_some_and(|l| l.starts_with("Commit clients.toml"))),
        "{}",
        flash(&f)
    );
    press(&mut f, "y");
    assert!(flash(&f).starts_with("committed"), "{}", flash(&f));
    assert!(granted(
        &gitops::read_at_revision(&f.clone, "HEAD", Path::new("clients.toml")).unwrap(),
        ALICE,
        "billing",
        "read"
    ));
}

/// The same race one step later: the status refresh a commit queues has not returned when the
/// operator presses `p`; the push must not be refused as "nothing committed".
#[test]
fn a_push_pressed_before_the_status_after_a_commit_returns_is_not_refused() {
    let mut f = fixture();
    console_grant(&mut f, "billing", "read");
    save(&mut f);
    press(&mut f, "5c");
    enter(&mut f);
    f.app.handle_key(support::console::key(KeyCode::Char('y')));
    // Run the commit alone; hold back the status refresh it queues.
    let held = run_only(&mut f, |job| matches!(job, jobs::Job::Commit { .. }));
    assert!(flash(&f).starts_with("committed"), "{}", flash(&f));
    assert!(
        held.iter()
            .any(|(_, job)| matches!(job, jobs::Job::GitStatus)),
        "the commit queues a status refresh"
    );
    for (id, _) in held {
        f.app.job_done(id);
    }
    f.app.handle_key(support::console::key(KeyCode::Char('p')));
    assert!(
        !flash(&f).contains("Push disabled"),
        "the push is not refused on a stale status: {}",
        flash(&f)
    );
    f.settle();
    assert!(flash(&f).starts_with("pushed 1 commit(s)"), "{}", flash(&f));
    assert!(granted(&f.remote(), ALICE, "billing", "read"));
    // Once a current status is in, nothing is left to push and `p` says so.
    press(&mut f, "p");
    assert_eq!(flash(&f), "Push disabled: nothing committed");
}

/// An edit's views (the diff against HEAD, the decisions it alters, the tree) are built on the
/// worker that reads the edited policy, with HEAD's policy as it was when the edit was handed
/// over. When HEAD moved meanwhile (a pull, a commit read back by the status), the Changes screen
/// must diff against the new HEAD, not the one the worker saw.
#[test]
fn an_edit_whose_head_moved_while_it_was_on_the_worker_is_diffed_against_the_new_head() {
    let mut f = fixture();
    f.app.apply_edit(grant(ALICE, "billing", "read"));
    let held = f.app.take_jobs();
    assert!(
        held.iter()
            .any(|(_, job)| matches!(job, jobs::Job::DerivePolicy { .. })),
        "the edit is read on a worker"
    );
    // Meanwhile HEAD moves to a policy that already has the grant.
    let head = apply(&f.disk(), &[grant(ALICE, "billing", "read")]);
    f.app.handle_result(jobs::JobResult::HeadParsed {
        policy: Ok(policy::load(&head, 0).unwrap().policy),
        text: head,
    });
    for (id, job) in held {
        run_job(&mut f, id, job);
    }
    assert!(granted(f.app.text(), ALICE, "billing", "read"));
    let changes = shown_changes(&f);
    assert!(
        changes.is_empty(),
        "against the new HEAD the buffer has no policy changes; shown: {changes:?}"
    );

    // Without a move, the worker's diff is the one shown.
    f.app.apply_edit(grant(ALICE, "billing", "write"));
    f.settle();
    let changes = shown_changes(&f);
    assert_eq!(
        changes,
        vec![format!("+ WIDENS {ALICE} may now write on billing")]
    );
}
