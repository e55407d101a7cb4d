//! Reading what commands need: tokens (store, file or stdin), keys, durations.

use std::io::Read;
use std::path::Path;

use super::output::Failure;
use super::{PublicKeySource, TokenSource};
use crate::token::{self, PublicKey, keys};
use crate::token_store::TokenStore;

/// The token text and where it came from (for messages and JSON).
pub struct LoadedToken {
    pub text: String,
    pub source: String,
}

/// Reads a token from the store (default name "default"), a file, or stdin.
pub fn load_token(source: &TokenSource) -> Result<LoadedToken, Failure> {
    if let Some(path) = &source.token_file {
        return read_token_file(path);
    }
    let name = source.token_name.as_deref().unwrap_or("default");
    let store = TokenStore::open_default()?;
    Ok(LoadedToken {
        text: store.load(name)?,
        source: format!("token store: {name}"),
    })
}

/// Reads a token file, or standard input for `-`.
pub fn read_token_file(path: &Path) -> Result<LoadedToken, Failure> {
    let limit = token::MAX_TOKEN_CHARS as u64 + 1024;
    let mut text = String::new();
    let (result, source) = if path.as_os_str() == "-" {
        (
            std::io::stdin().take(limit).read_to_string(&mut text),
            "standard input".to_string(),
        )
    } else {
        let result =
            std::fs::File::open(path).and_then(|f| f.take(limit).read_to_string(&mut text));
        (result, path.display().to_string())
    };
    result.map_err(|e| Failure::usage(format!("cannot read token from {source}: {e}")))?;
    Ok(LoadedToken {
        text: text.trim().to_string(),
        source,
    })
}

/// The root public key, if one was given.
pub fn public_key(source: &PublicKeySource) -> Result<Option<PublicKey>, Failure> {
    if let Some(path) = &source.public_key_file {
        return Ok(Some(keys::read_public_key_file(path)?));
    }
    match &source.public_key {
        Some(text) => Ok(Some(keys::parse_public_key(text)?)),
        None => Ok(None),
    }
}

/// The root public key, required.
pub fn require_public_key(source: &PublicKeySource) -> Result<PublicKey, Failure> {
    public_key(source)?.ok_or_else(|| {
        Failure::usage(
            "a root public key is needed to check signatures: pass --public-key or --public-key-file (or set HESSRA_PUBLIC_KEY)",
        )
    })
}

/// A lifetime flag (`--ttl 8h`), read by the one duration parser (`policy::duration`).
pub fn parse_duration(text: &str) -> Result<i64, String> {
    crate::policy::duration::parse(text)
        .map(|seconds| seconds as i64)
        .map_err(|e| e.to_string())
}
