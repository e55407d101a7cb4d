//! The token store: a directory of `<name>.token` files, each mode 0600, in a 0700 directory
//! under the XDG data dir (or `$HESSRA_CONSOLE_TOKEN_DIR`). Shared by the CLI and the console.

use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil;

/// Environment variable that overrides where tokens are stored.
pub const TOKEN_DIR_ENV: &str = "HESSRA_CONSOLE_TOKEN_DIR";

/// Failures of the token store, each naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "invalid token name {0:?}: use letters, digits, '.', '_' and '-' (not starting with '.')"
    )]
    InvalidName(String),
    #[error("no token named {name:?} in {dir}")]
    NotFound { name: String, dir: String },
    #[error("no data directory could be determined; set {TOKEN_DIR_ENV}")]
    NoDataDir,
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// A directory of named tokens.
#[derive(Debug, Clone)]
pub struct TokenStore {
    dir: PathBuf,
}

impl TokenStore {
    pub fn new(dir: impl Into<PathBuf>) -> TokenStore {
        TokenStore { dir: dir.into() }
    }

    /// `$HESSRA_CONSOLE_TOKEN_DIR`, else `<XDG data dir>/hessra-console/tokens`.
    pub fn open_default() -> Result<TokenStore, StoreError> {
        if let Some(dir) = std::env::var_os(TOKEN_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(TokenStore::new(dir));
        }
        let dirs = directories::ProjectDirs::from("", "", "hessra-console")
            .ok_or(StoreError::NoDataDir)?;
        Ok(TokenStore::new(dirs.data_dir().join("tokens")))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> Result<PathBuf, StoreError> {
        validate_name(name)?;
        Ok(self.dir.join(format!("{name}.token")))
    }

    /// Saves a token (no trailing newline, as the Hessra CLI does), mode 0600.
    pub fn save(&self, name: &str, token: &str) -> Result<PathBuf, StoreError> {
        let path = self.path(name)?;
        fsutil::create_private_dir(&self.dir).map_err(|source| self.io_error(&self.dir, source))?;
        fsutil::write_private(&path, token.trim().as_bytes())
            .map_err(|source| self.io_error(&path, source))?;
        Ok(path)
    }

    pub fn load(&self, name: &str) -> Result<String, StoreError> {
        let path = self.path(name)?;
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text.trim().to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound {
                name: name.to_string(),
                dir: self.dir.display().to_string(),
            }),
            Err(source) => Err(self.io_error(&path, source)),
        }
    }

    pub fn delete(&self, name: &str) -> Result<PathBuf, StoreError> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound {
                name: name.to_string(),
                dir: self.dir.display().to_string(),
            }),
            Err(source) => Err(self.io_error(&path, source)),
        }
    }

    /// Names of stored tokens, sorted. A missing directory is an empty store.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.io_error(&self.dir, source)),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let file = entry.file_name().to_string_lossy().into_owned();
                file.strip_suffix(".token")
                    .filter(|name| validate_name(name).is_ok())
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    fn io_error(&self, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

fn validate_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn save_load_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("tokens"));
        assert!(store.list().unwrap().is_empty());
        let path = store.save("default", "abc=\n").unwrap();
        store.save("agent1", "def=").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc=");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(store.list().unwrap(), vec!["agent1", "default"]);
        assert_eq!(store.load("default").unwrap(), "abc=");
        store.delete("default").unwrap();
        assert!(matches!(
            store.load("default"),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.delete("default"),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn names_cannot_escape_the_directory() {
        let store = TokenStore::new("/tmp/x");
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(
                matches!(store.path(bad), Err(StoreError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }
}
