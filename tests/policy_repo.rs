//! The policy repository layer against real git: only a valid clients.toml and revocations.toml
//! are committed, checked on the bytes committed — a file broken behind the caller's back is
//! refused by the layer, the CLI and the console's commit job alike, HEAD stays where it was and
//! the file stays as written — and revocation writes keep every other entry, comment and the
//! file's mode.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use hessra_console::gitops;
use hessra_console::policy::NewRevocation;
use hessra_console::repo::{PolicyRepo, RepoError};
use ratatui::crossterm::event::{KeyCode, KeyModifiers};

mod support;

use support::console::{Console, enter, flash, press, set_author, special};

const NOW: i64 = 1_790_000_000;
const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ID_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const ID_C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

fn fixture_policy() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/clients.toml"
    ))
    .unwrap()
}

/// A policy an unknown role makes invalid; the line of the error (the assignment's table).
fn broken_policy() -> (String, usize) {
    let text = fixture_policy().replacen("role = \"admin\"", "role = \"boss\"", 1);
    let lines: Vec<&str> = text.lines().collect();
    let boss = lines.iter().position(|l| l.contains("\"boss\"")).unwrap();
    let table = lines[..boss]
        .iter()
        .rposition(|l| l.starts_with("[[clients.domain.role_assignments]]"))
        .unwrap();
    (text, table + 1)
}

const BROKEN_REVOCATIONS: &str = "# revoked\n[[revoked]]\nid = \"NOTHEX\"\nreason = \"x\"\n";

/// A clone of a bare remote holding the demo policy, with an author configured.
struct Repo {
    _dir: tempfile::TempDir,
    clone: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("origin.git");
        gitops::init_bare_with_file(&bare, "clients.toml", &fixture_policy(), "demo").unwrap();
        let clone = dir.path().join("clone");
        gitops::clone(bare.to_str().unwrap(), &clone).unwrap();
        set_author(&clone, "Ops");
        let clone = clone.canonicalize().unwrap();
        Repo { _dir: dir, clone }
    }

    fn policy(&self) -> PathBuf {
        self.clone.join("clients.toml")
    }

    fn revocations(&self) -> PathBuf {
        self.clone.join("revocations.toml")
    }

    fn layer(&self) -> PolicyRepo {
        PolicyRepo::discover(&self.policy())
    }

    fn head(&self) -> String {
        head(&self.clone)
    }

    fn at_head(&self, file: &str) -> Option<String> {
        gitops::read_at_revision(&self.clone, "HEAD", Path::new(file)).ok()
    }
}

fn head(repo: &Path) -> String {
    let repo = git2::Repository::open(repo).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    head.id().to_string()
}

fn refusal(error: RepoError) -> hessra_console::repo::CommitRefusal {
    match error {
        RepoError::Refused(refusal) => refusal,
        other => panic!("expected a refusal, got: {other}"),
    }
}

#[test]
fn a_valid_policy_and_revocation_list_are_committed_byte_for_byte() {
    let repo = Repo::new();
    let text = fixture_policy().replace("# 8 hours", "# a working day");
    std::fs::write(repo.policy(), &text).unwrap();
    repo.layer()
        .revoke(&revocation(ID_A, "laptop stolen"))
        .unwrap();
    let before = repo.head();
    let committed = repo.layer().commit("note and revoke", NOW).unwrap();
    assert_ne!(committed.id, before);
    assert_eq!(repo.head(), committed.id);
    assert_eq!(committed.policy, Path::new("clients.toml"));
    assert_eq!(repo.at_head("clients.toml").as_deref(), Some(text.as_str()));
    assert_eq!(
        repo.at_head("revocations.toml"),
        Some(std::fs::read_to_string(repo.revocations()).unwrap())
    );
}

#[test]
fn an_invalid_policy_written_behind_the_callers_back_is_refused_and_head_stays() {
    let repo = Repo::new();
    let (broken, line) = broken_policy();
    std::fs::write(repo.policy(), &broken).unwrap();
    let before = repo.head();
    let refused = refusal(repo.layer().commit("sneak it in", NOW).unwrap_err());
    assert_eq!(refused.file, "clients.toml");
    let message = refused.to_string();
    assert!(
        message.contains("nothing was committed")
            && message.contains(&format!("clients.toml:{line}:"))
            && message.contains("error[unknown-role]"),
        "{message}"
    );
    assert!(
        refused
            .summary()
            .starts_with("clients.toml has 1 error(s); first: clients.toml:"),
        "{}",
        refused.summary()
    );
    assert_eq!(repo.head(), before, "no commit was made");
    assert_eq!(
        std::fs::read_to_string(repo.policy()).unwrap(),
        broken,
        "nothing lost"
    );
    let status = gitops::status(&repo.clone, Path::new("clients.toml")).unwrap();
    assert_eq!(
        status.file, "modified",
        "the refused file is still there to fix"
    );
}

#[test]
fn an_invalid_revocation_list_is_refused_with_its_line() {
    let repo = Repo::new();
    std::fs::write(repo.revocations(), BROKEN_REVOCATIONS).unwrap();
    let before = repo.head();
    let refused = refusal(repo.layer().commit("revoke", NOW).unwrap_err());
    assert_eq!(refused.file, "revocations.toml");
    assert!(
        refused.to_string().contains("revocations.toml:3:")
            && refused.to_string().contains("not a revocation id"),
        "{refused}"
    );
    assert_eq!(repo.head(), before);
    assert_eq!(repo.at_head("revocations.toml"), None);
    assert_eq!(
        std::fs::read_to_string(repo.revocations()).unwrap(),
        BROKEN_REVOCATIONS
    );
}

#[test]
fn unreadable_text_no_message_and_no_repository_are_refused_with_reasons() {
    let repo = Repo::new();
    let before = repo.head();
    std::fs::write(repo.policy(), b"[[clients]]\n\xff\xfe\n").unwrap();
    let refused = refusal(repo.layer().commit("binary", NOW).unwrap_err());
    assert!(refused.to_string().contains("not UTF-8"), "{refused}");
    std::fs::write(repo.policy(), fixture_policy()).unwrap();
    let error = repo.layer().commit("  ", NOW).unwrap_err();
    assert!(matches!(error, RepoError::NoMessage), "{error}");
    assert_eq!(repo.head(), before);

    let loose = tempfile::tempdir().unwrap();
    let file = loose.path().join("clients.toml");
    std::fs::write(&file, fixture_policy()).unwrap();
    let outside = PolicyRepo::discover(&file);
    let error = outside.commit("x", NOW).unwrap_err();
    assert!(
        error.to_string().contains("is not in a git repository"),
        "{error}"
    );
    // Revocations are written without a repository all the same.
    outside.revoke(&revocation(ID_A, "lost")).unwrap();
    assert_eq!(outside.revocations().unwrap().0.len(), 1);
}

#[test]
fn the_exact_bytes_given_are_committed_whatever_the_working_tree_holds() {
    let repo = Repo::new();
    std::fs::write(repo.policy(), "not = [toml").unwrap();
    let valid = fixture_policy().replace("# 8 hours", "# checked");
    gitops::commit_contents(
        &repo.clone,
        &[(Path::new("clients.toml"), Some(valid.as_bytes()))],
        "checked bytes",
    )
    .unwrap();
    assert_eq!(repo.at_head("clients.toml"), Some(valid));
    assert_eq!(
        std::fs::read_to_string(repo.policy()).unwrap(),
        "not = [toml",
        "the working tree is not touched"
    );
}

fn revocation(id: &str, reason: &str) -> NewRevocation {
    NewRevocation {
        id: id.into(),
        reason: reason.into(),
        by: Some("ops".into()),
        at: NOW,
    }
}

#[test]
fn revocation_writes_keep_every_other_entry_comment_and_the_mode() {
    let repo = Repo::new();
    let original = format!(
        "# Our revocations: reviewed like clients.toml.\n\n\
         # the stolen laptop\n[[revoked]]\nid = \"{ID_A}\"\nreason = \"stolen\"\n\n\
         # a leaked CI token\n[[revoked]]\nid = \"{ID_B}\" # from the build log\nreason = \"leaked\"\n"
    );
    std::fs::write(repo.revocations(), &original).unwrap();
    std::fs::set_permissions(repo.revocations(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let layer = repo.layer();
    let read = || std::fs::read_to_string(repo.revocations()).unwrap();
    let mode = || {
        std::fs::metadata(repo.revocations())
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };

    assert_eq!(layer.revoke(&revocation(ID_C, "phished")).unwrap(), ID_C);
    let text = read();
    assert!(
        text.starts_with(&original),
        "appended, nothing else changed:\n{text}"
    );
    assert_eq!(layer.revocations().unwrap().0.len(), 3);
    assert_eq!(mode(), 0o640);

    // Twice is refused and the file is left alone.
    let error = layer.revoke(&revocation(ID_C, "again")).unwrap_err();
    assert!(error.to_string().contains("already revoked"), "{error}");
    assert_eq!(read(), text);

    // Withdrawing the middle entry drops it and its own comment only.
    let withdrawn = layer.withdraw(ID_B).unwrap();
    assert_eq!(withdrawn.reason, "leaked");
    let text = read();
    assert!(
        !text.contains(ID_B) && !text.contains("leaked CI token"),
        "{text}"
    );
    assert!(
        text.contains("# Our revocations") && text.contains("# the stolen laptop"),
        "{text}"
    );
    let (list, findings) = layer.revocations().unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    let ids: Vec<&str> = list.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [ID_A, ID_C]);
    assert_eq!(mode(), 0o640);

    // Withdrawing the first keeps the file's opening comment.
    layer.withdraw(&ID_A.to_uppercase()).unwrap();
    let text = read();
    assert!(text.starts_with("# Our revocations"), "{text}");
    assert_eq!(layer.revocations().unwrap().0.len(), 1);

    // An id that is not revoked, and a file with errors, change nothing.
    let error = layer.withdraw(ID_B).unwrap_err();
    assert!(error.to_string().contains("is not revoked"), "{error}");
    assert_eq!(read(), text);
    std::fs::write(repo.revocations(), BROKEN_REVOCATIONS).unwrap();
    let error = layer.revoke(&revocation(ID_A, "x")).unwrap_err();
    assert!(
        error.to_string().contains("has errors; fix them first"),
        "{error}"
    );
    assert_eq!(read(), BROKEN_REVOCATIONS);
}

fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hessra-console"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn the_cli_refuses_a_broken_revocation_list_and_withdraws_revocations() {
    let repo = Repo::new();
    std::fs::write(repo.revocations(), BROKEN_REVOCATIONS).unwrap();
    let before = repo.head();
    let out = cli(&repo.clone, &["policy", "commit", "-m", "revoke"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused: revocations.toml has validation errors")
            && stderr.contains("revocations.toml:3:"),
        "{stderr}"
    );
    assert_eq!(repo.head(), before);

    std::fs::remove_file(repo.revocations()).unwrap();
    repo.layer().revoke(&revocation(ID_A, "stolen")).unwrap();
    repo.layer().revoke(&revocation(ID_B, "leaked")).unwrap();
    let out = cli(&repo.clone, &["policy", "withdraw-revocation", ID_A]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = cli(&repo.clone, &["policy", "revocations"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(!listed.contains(ID_A) && listed.contains(ID_B), "{listed}");
    let again = cli(&repo.clone, &["policy", "withdraw-revocation", ID_A]);
    assert_eq!(again.status.code(), Some(2));
}

/// Saves a valid edit in the console, opens the commit confirmation, then `behind_its_back`
/// writes a file before `y` runs the commit job.
fn console_commit_after(file: &str, contents: &str) -> (Console, String) {
    let mut f = Console::start();
    press(&mut f, "+staging_api delete");
    enter(&mut f);
    special(&mut f, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert!(!f.app.is_dirty(), "{}", flash(&f));
    press(&mut f, "5c");
    enter(&mut f);
    assert!(
        f.app.popup().is_some(),
        "the confirmation is open: {}",
        flash(&f)
    );
    // The console checked the policy it holds; now the disk changes under it.
    let before = head(&f.clone);
    std::fs::write(f.clone.join(file), contents).unwrap();
    press(&mut f, "y");
    (f, before)
}

#[test]
fn the_consoles_commit_job_rechecks_the_policy_on_disk() {
    let (broken, line) = broken_policy();
    let (f, before) = console_commit_after("clients.toml", &broken);
    let message = flash(&f);
    assert!(
        message.starts_with("not committed")
            && message.contains("refused: clients.toml has 1 error(s)")
            && message.contains(&format!("clients.toml:{line}:")),
        "{message}"
    );
    assert_eq!(head(&f.clone), before, "no commit was made");
    assert_eq!(std::fs::read_to_string(&f.policy_path).unwrap(), broken);
}

#[test]
fn the_consoles_commit_job_rechecks_the_revocation_list_on_disk() {
    let (f, before) = console_commit_after("revocations.toml", BROKEN_REVOCATIONS);
    let message = flash(&f);
    assert!(
        message.contains("refused: revocations.toml has 1 error(s); first: revocations.toml:3:"),
        "{message}"
    );
    assert_eq!(head(&f.clone), before);
    assert_eq!(
        std::fs::read_to_string(f.clone.join("revocations.toml")).unwrap(),
        BROKEN_REVOCATIONS
    );
}
