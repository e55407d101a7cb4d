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

/// Parses a lifetime: plain seconds (`3600`) or with a unit (`90s`, `15m`, `8h`, `2d`).
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (digits, multiplier) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1),
        Some((i, 'm')) => (&text[..i], 60),
        Some((i, 'h')) => (&text[..i], 3_600),
        Some((i, 'd')) => (&text[..i], 86_400),
        _ => (text, 1),
    };
    let value: i64 = digits.parse().map_err(|_| {
        format!("{text:?} is not a duration: use seconds (3600) or 90s, 15m, 8h, 2d")
    })?;
    if value <= 0 {
        return Err(format!("duration {text:?} must be positive"));
    }
    value
        .checked_mul(multiplier)
        .filter(|seconds| *seconds <= 10 * 365 * 86_400)
        .ok_or_else(|| format!("duration {text:?} is longer than ten years"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("8h"), Ok(28_800));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("99999999d").is_err());
    }
}
