//! Which widening changes a reviewer has marked reviewed: kept per clone, inside its git
//! directory (`.git/hessra-console/reviewed.json`), so marks survive restarts, follow the
//! repository and are never committed. A change is known by its commit and its text.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One change marked reviewed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewMark {
    pub commit: String,
    /// The change as `policy diff` words it.
    pub change: String,
    /// When it was marked (Unix seconds).
    pub at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct MarksFile {
    reviewed: Vec<ReviewMark>,
}

/// The marks file of the repository at `repo_root`.
pub fn path(repo_root: &Path) -> Result<PathBuf, String> {
    let repo = git2::Repository::open(repo_root)
        .map_err(|e| format!("{}: {}", repo_root.display(), e.message()))?;
    Ok(repo.path().join("hessra-console").join("reviewed.json"))
}

/// The marks kept for the repository (none when there is no file yet).
pub fn load(repo_root: &Path) -> Result<Vec<ReviewMark>, String> {
    let file = path(repo_root)?;
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    serde_json::from_str::<MarksFile>(&text)
        .map(|f| f.reviewed)
        .map_err(|e| {
            format!(
                "{}: {e} (the review marks; move it aside to start over)",
                file.display()
            )
        })
}

/// Replaces the repository's marks with `marks` (atomically).
pub fn save(repo_root: &Path, marks: &[ReviewMark]) -> Result<(), String> {
    let file = path(repo_root)?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&MarksFile {
        reviewed: marks.to_vec(),
    })
    .map_err(|e| e.to_string())?;
    crate::fsutil::replace_preserving_mode(&file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_inside_the_git_directory() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        let mark = ReviewMark {
            commit: "abc".into(),
            change: "+ WIDENS x may now read on y".into(),
            at: 7,
        };
        save(dir.path(), std::slice::from_ref(&mark)).unwrap();
        assert_eq!(load(dir.path()).unwrap(), [mark]);
        assert!(
            path(dir.path())
                .unwrap()
                .starts_with(dir.path().join(".git"))
        );
        std::fs::write(path(dir.path()).unwrap(), "{ not json").unwrap();
        let error = load(dir.path()).unwrap_err();
        assert!(error.contains("reviewed.json"), "{error}");
    }
}
