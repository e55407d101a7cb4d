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
    #[error("{path} is larger than any token ({max} bytes at most); not read")]
    TooLarge { path: String, max: u64 },
}

/// The largest token file read: a token's text limit plus room for surrounding whitespace.
pub const MAX_FILE_BYTES: u64 = crate::token::MAX_TOKEN_CHARS as u64 + 4096;

/// At most this many stored tokens are read to describe them (the rest are listed unread).
pub const MAX_DESCRIBED: usize = 500;

/// A stored token as listings show it: read, not verified (no root key is needed to say whose
/// it is and when it expires; trust is `verify`'s business).
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub name: String,
    pub read: Result<crate::token::Inspection, String>,
}

impl StoredToken {
    /// "identity uri:urn:company:alice · expires in 2 hours", or why it cannot be read.
    pub fn summary(&self, now: i64) -> String {
        let view = match &self.read {
            Ok(view) => view,
            Err(e) => return format!("unreadable: {e}"),
        };
        let kind = match view.kind {
            crate::token::TokenKind::Identity => "identity",
            crate::token::TokenKind::Authorization => "authorization",
            crate::token::TokenKind::Unknown => "unknown kind",
        };
        let who = view
            .effective_identity
            .as_deref()
            .or(view.subject.as_deref())
            .unwrap_or("?");
        let expiry = match view.effective_expiry {
            Some(at) if at <= now => {
                format!("expired {}", crate::token::clock::describe_instant(at, now))
            }
            Some(at) => format!("expires {}", crate::token::clock::describe_instant(at, now)),
            None => "never expires".into(),
        };
        format!("{kind} {who} · {expiry}")
    }
}

/// Reads `path` if it holds at most `max` bytes (`None` when it holds more).
fn read_bounded(path: &Path, max: u64) -> io::Result<Option<String>> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    Ok((text.len() as u64 <= max).then_some(text))
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

    /// A stored token's text. Reads at most a little more than the largest token anyone
    /// accepts (`MAX_TOKEN_CHARS`), so a huge file in the store costs nothing to refuse.
    pub fn load(&self, name: &str) -> Result<String, StoreError> {
        let path = self.path(name)?;
        match read_bounded(&path, MAX_FILE_BYTES) {
            Ok(Some(text)) => Ok(text.trim().to_string()),
            Ok(None) => Err(StoreError::TooLarge {
                path: path.display().to_string(),
                max: MAX_FILE_BYTES,
            }),
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

    /// Every stored token, read (not verified) at `now`, sorted by name; past `MAX_DESCRIBED`
    /// tokens the rest are listed without being read.
    pub fn entries(&self, now: i64) -> Result<Vec<StoredToken>, StoreError> {
        Ok(self
            .list()?
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let read = if i < MAX_DESCRIBED {
                    self.load(&name)
                        .map_err(|e| e.to_string())
                        .and_then(|text| {
                            crate::token::inspect(&text, None, now).map_err(|e| e.to_string())
                        })
                } else {
                    Err(format!("not read: over {MAX_DESCRIBED} stored tokens"))
                };
                StoredToken { name, read }
            })
            .collect())
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
    fn entries_say_whose_each_token_is_and_when_it_expires() {
        use crate::token::{IdentityClaims, KeyPair, mint_identity};
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("tokens"));
        let now = 1_790_000_000;
        let minted = mint_identity(
            &KeyPair::new(),
            &IdentityClaims {
                subject: "uri:urn:company:alice".into(),
                expires_at: now + 7_200,
                delegatable: true,
                domain: None,
            },
        )
        .unwrap();
        store.save("alice", &minted).unwrap();
        store.save("junk", "not a token").unwrap();
        let entries = store.entries(now).unwrap();
        let summaries: Vec<String> = entries.iter().map(|e| e.summary(now)).collect();
        assert_eq!(entries[0].name, "alice");
        assert_eq!(
            summaries[0],
            "identity uri:urn:company:alice · expires in 2 hours"
        );
        assert_eq!(
            entries[0].summary(now + 7_260),
            "identity uri:urn:company:alice · expired 60 seconds ago"
        );
        assert!(summaries[1].starts_with("unreadable: "), "{}", summaries[1]);
    }

    /// A file far larger than any token (here 64 MiB, sparse) is refused after reading at
    /// most `MAX_FILE_BYTES + 1` bytes of it.
    #[test]
    fn a_huge_file_in_the_store_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        let file = std::fs::File::create(dir.path().join("huge.token")).unwrap();
        file.set_len(64 << 20).unwrap();
        let err = store.load("huge").unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("larger than any token"), "{err}");
        let entries = store.entries(0).unwrap();
        assert!(entries[0].summary(0).contains("larger than any token"));
    }

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
