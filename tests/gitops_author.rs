//! A commit needs an author from git configuration; with none configured anywhere, committing
//! fails with an error that says what to set, and nothing is committed. (Its own test binary:
//! it points libgit2's global configuration search path at an empty directory.)

use std::path::Path;

use hessra_console::gitops::{self, GitError};

#[test]
fn committing_without_a_configured_author_is_refused() {
    let empty = tempfile::tempdir().unwrap();
    for level in [
        git2::ConfigLevel::Global,
        git2::ConfigLevel::XDG,
        git2::ConfigLevel::System,
    ] {
        // SAFETY: this binary has a single test, so no other thread uses libgit2 meanwhile.
        unsafe { git2::opts::set_search_path(level, empty.path()).unwrap() };
    }
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("origin.git");
    gitops::init_bare_with_file(&bare, "clients.toml", "v = 1\n", "one").unwrap();
    let clone = dir.path().join("clone");
    gitops::clone(bare.to_str().unwrap(), &clone).unwrap();
    std::fs::write(clone.join("clients.toml"), "v = 2\n").unwrap();
    let err = gitops::commit_file(&clone, Path::new("clients.toml"), "two").unwrap_err();
    assert!(matches!(err, GitError::NoAuthor(_)), "{err}");
    assert!(
        err.to_string().contains("set user.name and user.email"),
        "{err}"
    );
    let repo = git2::Repository::open(&clone).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.message().unwrap(), "one", "nothing was committed");
}
