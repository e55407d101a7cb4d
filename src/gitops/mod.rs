//! Every git2 call lives here; the rest of the crate asks this module. So far: finding the
//! repository a path is in, and reading a file as it was at a revision. Never parses TOML.

use std::path::{Path, PathBuf};

use git2::Repository;

/// Git failures, worded for the person who typed the revision or path.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0} is not inside a git repository")]
    NotARepository(String),
    #[error("{rev:?} is not a revision of {repo}: {detail}")]
    Revision {
        rev: String,
        repo: String,
        detail: String,
    },
    #[error("{path} does not exist at revision {rev}")]
    NoSuchFile { rev: String, path: String },
    #[error("{path} at revision {rev} is not UTF-8 text")]
    NotText { rev: String, path: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// The working-tree root of the repository containing `start`.
pub fn repository_root(start: &Path) -> Result<PathBuf, GitError> {
    let repo = Repository::discover(start)
        .map_err(|_| GitError::NotARepository(start.display().to_string()))?;
    repo.workdir()
        .map(Path::to_path_buf)
        .ok_or_else(|| GitError::NotARepository(format!("{} (a bare repository)", start.display())))
}

/// The contents of `relative` (a path inside the repository) at revision `rev`.
pub fn read_at_revision(repo_root: &Path, rev: &str, relative: &Path) -> Result<String, GitError> {
    let repo = Repository::open(repo_root)
        .map_err(|_| GitError::NotARepository(repo_root.display().to_string()))?;
    let object = repo.revparse_single(rev).map_err(|e| GitError::Revision {
        rev: rev.to_string(),
        repo: repo_root.display().to_string(),
        detail: e.message().to_string(),
    })?;
    let tree = object.peel_to_tree()?;
    let missing = || GitError::NoSuchFile {
        rev: rev.to_string(),
        path: relative.display().to_string(),
    };
    let entry = tree.get_path(relative).map_err(|_| missing())?;
    let blob = repo.find_blob(entry.id()).map_err(|_| missing())?;
    String::from_utf8(blob.content().to_vec()).map_err(|_| GitError::NotText {
        rev: rev.to_string(),
        path: relative.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, file: &str, text: &str, message: &str) {
        let root = repo.workdir().unwrap();
        std::fs::write(root.join(file), text).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new(file)).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = git2::Signature::now("Test", "test@example.com").unwrap();
        let parents: Vec<git2::Commit<'_>> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .unwrap();
    }

    #[test]
    fn reads_files_at_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        commit(&repo, "clients.toml", "one", "first");
        commit(&repo, "clients.toml", "two", "second");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let root = repository_root(&dir.path().join("sub")).unwrap();
        assert_eq!(
            root.canonicalize().unwrap(),
            dir.path().canonicalize().unwrap()
        );
        assert_eq!(
            read_at_revision(&root, "HEAD", Path::new("clients.toml")).unwrap(),
            "two"
        );
        assert_eq!(
            read_at_revision(&root, "HEAD~1", Path::new("clients.toml")).unwrap(),
            "one"
        );
        let err = read_at_revision(&root, "nope", Path::new("clients.toml")).unwrap_err();
        assert!(
            err.to_string().contains("\"nope\" is not a revision"),
            "{err}"
        );
        let err = read_at_revision(&root, "HEAD", Path::new("other.toml")).unwrap_err();
        assert!(
            err.to_string().contains("does not exist at revision HEAD"),
            "{err}"
        );
        let outside = tempfile::tempdir().unwrap();
        assert!(matches!(
            repository_root(outside.path()),
            Err(GitError::NotARepository(_))
        ));
    }
}
