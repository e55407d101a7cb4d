//! Token text ⇄ Biscuit: URL-safe base64 with `=` padding (what Hessra emits and demands), a size
//! bound checked before any parsing, signature checking against a root key, and a refusal of
//! strings that would make the printed Datalog ambiguous.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use biscuit_auth::{Biscuit, PublicKey, UnverifiedBiscuit};

use super::error::TokenError;
use super::lineage::check_ancestor_keys;
use super::revocation::{RevocationIds, canonical_revocation_id};
use super::roots::VerifyingRoots;
use super::verified::{self, VerifiedToken};

/// Longest token text accepted. A depth-10 delegated token with policies is a few KiB; this
/// bound keeps hostile input from costing more than a bounded decode.
pub const MAX_TOKEN_CHARS: usize = 64 * 1024;

/// Encodes serialized token bytes the way Hessra does (URL-safe alphabet, padded).
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE.encode(bytes)
}

/// Serializes a token to its text form, refusing one whose strings every reader would refuse
/// (a quote, backslash or control character): nothing is issued that cannot be read back.
pub fn encode_token(token: &Biscuit) -> Result<String, TokenError> {
    for index in 0..token.block_count() {
        let symbols = token
            .block_symbols(index)
            .map_err(|e| TokenError::Internal(e.to_string()))?;
        check_symbols(index, &symbols)?;
    }
    token
        .to_vec()
        .map(|bytes| encode(&bytes))
        .map_err(|e| TokenError::Internal(e.to_string()))
}

/// Serializes an unverified token to its text form.
pub fn encode_unverified(token: &UnverifiedBiscuit) -> Result<String, TokenError> {
    token
        .to_vec()
        .map(|bytes| encode(&bytes))
        .map_err(|e| TokenError::Internal(e.to_string()))
}

/// Decodes token text to bytes, checking size and padding first.
pub fn decode(text: &str) -> Result<Vec<u8>, TokenError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TokenError::Empty);
    }
    if text.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::TooLarge {
            len: text.len(),
            max: MAX_TOKEN_CHARS,
        });
    }
    URL_SAFE
        .decode(text)
        .map_err(|e| TokenError::Base64(describe_base64_error(text, &e)))
}

fn describe_base64_error(text: &str, error: &base64::DecodeError) -> String {
    use base64::DecodeError;
    match error {
        DecodeError::InvalidPadding => {
            "invalid padding: tokens are URL-safe base64 with '=' padding; the text looks truncated or unpadded".to_string()
        }
        DecodeError::InvalidLength(_) if !text.ends_with('=') => format!(
            "invalid length {}: tokens are URL-safe base64 with '=' padding; the text looks truncated or unpadded",
            text.len()
        ),
        DecodeError::InvalidByte(offset, byte) => {
            let hint = if *byte == b'+' || *byte == b'/' {
                " (standard base64; tokens use the URL-safe alphabet with '-' and '_')"
            } else {
                ""
            };
            format!("invalid character {:?} at offset {offset}{hint}", *byte as char)
        }
        other => other.to_string(),
    }
}

/// Parses token text without checking signatures (inspection, offline attenuation).
pub fn parse_unverified(text: &str) -> Result<UnverifiedBiscuit, TokenError> {
    let bytes = decode(text)?;
    super::screen::screen(&bytes)?;
    UnverifiedBiscuit::from(&bytes).map_err(|e| TokenError::Malformed(describe_biscuit_error(&e)))
}

/// Parses token text for inspection: a token the screen refuses is still read (printing a
/// block is linear in its size; nothing is evaluated), and the refusal is returned beside it so
/// that the reviewer sees both what the token says and why no verifier will evaluate it.
pub fn parse_for_inspection(
    text: &str,
) -> Result<(UnverifiedBiscuit, Option<TokenError>), TokenError> {
    let bytes = decode(text)?;
    let refusal = match super::screen::screen(&bytes) {
        Ok(_) => None,
        Err(refusal @ TokenError::Screened { .. }) => Some(refusal),
        Err(other) => return Err(other),
    };
    let token = UnverifiedBiscuit::from(&bytes)
        .map_err(|e| TokenError::Malformed(describe_biscuit_error(&e)))?;
    Ok((token, refusal))
}

/// Parses token text and checks every signature against `roots` (one pass, as the verifier's
/// hot path wants): the key the token names by `root_key_id`, or, for a token naming none, each
/// verifying key in turn.
pub fn parse_verified<R: VerifyingRoots + ?Sized>(
    text: &str,
    roots: &R,
) -> Result<Biscuit, TokenError> {
    verify_text(text, roots)
}

/// Parses token text, screens it and checks its signatures (the verifiers' hot path); its view
/// comes from the shapes the screen read off the protobuf.
///
/// A text that verified before with a key `roots` still trusts is not checked again (see
/// `src/token/verified.rs`); everything that depends on the time or the caller is left to
/// the caller, every time — and so is the refresh lineage's keys, which `roots` judges afresh
/// on every call (a key retired by force refuses the tokens refreshed from its tokens at once).
pub fn read_verified<R: VerifyingRoots + ?Sized>(
    text: &str,
    roots: &R,
) -> Result<Arc<VerifiedToken>, TokenError> {
    let text = text.trim();
    if let Some(known) = verified::recall(text, roots) {
        check_ancestor_keys(&known.view, roots)?;
        return Ok(known);
    }
    let bytes = decode(text)?;
    let screened = super::screen::screen(&bytes)?;
    let (biscuit, root) = verify_bytes(&bytes, roots)?;
    let view = super::TokenView::from_screened(&biscuit, screened);
    check_ancestor_keys(&view, roots)?;
    Ok(verified::remember(
        text,
        VerifiedToken {
            biscuit,
            view,
            root,
        },
    ))
}

/// Whether `text` is a token whose signatures already verified with a key `roots` still trusts
/// and which is plain (`src/token/plain.rs`): verifying it again is a memo lookup and a few
/// comparisons, bounded by the screen's caps, so the server decides it without handing it to
/// its verification pool.
pub fn remembered_plain<R: VerifyingRoots + ?Sized>(text: &str, roots: &R) -> bool {
    verified::recall(text.trim(), roots).is_some_and(|known| known.view.plain.is_some())
}

/// The canonical revocation ids (hex) of token text and its refresh lineage, for checking
/// against a revocation list before anything else: those of a remembered verified token, else
/// read without checking signatures (the screen reads the authority block's lineage).
pub fn revocation_ids(text: &str) -> Result<RevocationIds, TokenError> {
    let text = text.trim();
    if let Some(ids) = verified::revocation_ids(text) {
        return Ok(ids);
    }
    let bytes = decode(text)?;
    let mut screened = super::screen::screen(&bytes)?;
    let token = UnverifiedBiscuit::from(&bytes)
        .map_err(|e| TokenError::Malformed(describe_biscuit_error(&e)))?;
    let lineage = screened
        .shapes
        .first_mut()
        .map(|authority| std::mem::take(&mut authority.lineage))
        .unwrap_or_default();
    Ok(RevocationIds {
        blocks: token
            .revocation_identifiers()
            .iter()
            .map(|id| hex::encode(canonical_revocation_id(id)))
            .collect(),
        lineage,
    })
}

fn verify_text<R: VerifyingRoots + ?Sized>(text: &str, roots: &R) -> Result<Biscuit, TokenError> {
    let bytes = decode(text)?;
    super::screen::screen(&bytes)?;
    verify_bytes(&bytes, roots).map(|(token, _)| token)
}

/// Checks the signatures of serialized token bytes, returning the token and the key that
/// verified them.
fn verify_bytes<R: VerifyingRoots + ?Sized>(
    bytes: &[u8],
    roots: &R,
) -> Result<(Biscuit, PublicKey), TokenError> {
    // The key chosen for the id the token names; a refusal is kept to be reported as is.
    let refused = std::cell::RefCell::new(None);
    let chosen = std::cell::Cell::new(None);
    let choose = |id: Option<u32>| {
        let key = match id {
            Some(id) => roots.by_id(id).map_err(|e| {
                *refused.borrow_mut() = Some(e);
                biscuit_auth::error::Format::UnknownPublicKey
            }),
            None => roots
                .candidates()
                .first()
                .copied()
                .ok_or(biscuit_auth::error::Format::UnknownPublicKey),
        }?;
        chosen.set(Some(key));
        Ok(key)
    };
    let first = Biscuit::from(bytes, choose);
    if let Some(refusal) = refused.into_inner() {
        return Err(refusal);
    }
    match (first, chosen.get()) {
        (Ok(token), Some(key)) => Ok((token, key)),
        (Err(biscuit_auth::error::Token::Format(format)), _) if !is_signature_problem(&format) => {
            Err(TokenError::Malformed(format.to_string()))
        }
        _ => {
            // A token without an id may be signed by any verifying key.
            let others = roots.candidates();
            if others.len() > 1 && root_key_id(bytes).is_none() {
                for key in &others[1..] {
                    if let Ok(token) = Biscuit::from(bytes, *key) {
                        return Ok((token, *key));
                    }
                }
            }
            Err(unknown_root(roots))
        }
    }
}

fn root_key_id(bytes: &[u8]) -> Option<u32> {
    UnverifiedBiscuit::from(bytes)
        .ok()
        .and_then(|t| t.root_key_id())
}

/// Checks the signature chain of an already parsed token.
pub fn verify_signatures<R: VerifyingRoots + ?Sized>(
    token: UnverifiedBiscuit,
    roots: &R,
) -> Result<Biscuit, TokenError> {
    // The token already parsed, so any failure here is a signature that does not verify with
    // this key (a key of the other algorithm fails as an undecodable signature).
    let keys = match token.root_key_id() {
        Some(id) => vec![roots.by_id(id)?],
        None => roots.candidates(),
    };
    for key in keys {
        if let Ok(verified) = token.clone().verify(key) {
            return Ok(verified);
        }
    }
    Err(unknown_root(roots))
}

fn unknown_root<R: VerifyingRoots + ?Sized>(roots: &R) -> TokenError {
    TokenError::UnknownRootKey {
        key: roots.describe(),
    }
}

fn is_signature_problem(format: &biscuit_auth::error::Format) -> bool {
    use biscuit_auth::error::Format;
    matches!(
        format,
        Format::Signature(_)
            | Format::SealedSignature
            | Format::UnknownPublicKey
            | Format::InvalidKeySize(_)
            | Format::InvalidSignatureSize(_)
            | Format::InvalidKey(_)
            | Format::SignatureDeserializationError(_)
            | Format::BlockSignatureDeserializationError(_)
    )
}

fn describe_biscuit_error(error: &biscuit_auth::error::Token) -> String {
    match error {
        biscuit_auth::error::Token::Format(format) => format.to_string(),
        other => other.to_string(),
    }
}

/// Refuses a block whose strings contain characters the Datalog printer would not escape.
///
/// biscuit-auth prints string terms verbatim between quotes, so a string holding `"` could make
/// one printed check read like another. Every analysis in this crate reads printed Datalog, so
/// such tokens are refused (by the screen, before anything is interpreted). Identities never
/// contain them.
pub(super) fn check_symbols(block: usize, symbols: &[String]) -> Result<(), TokenError> {
    match symbols.iter().find(|s| !is_printable_safely(s)) {
        Some(value) => Err(TokenError::AmbiguousString {
            block,
            value: value.clone(),
        }),
        None => Ok(()),
    }
}

fn is_printable_safely(value: &str) -> bool {
    !value
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpadded_text_is_refused_with_a_padding_hint() {
        let padded = encode(b"hello!!");
        assert!(padded.ends_with('='));
        let err = decode(padded.trim_end_matches('='))
            .unwrap_err()
            .to_string();
        assert!(err.contains("padding"), "{err}");
    }

    /// The verifiers' path explains bad base64 as inspection does.
    #[test]
    fn the_verify_path_explains_bad_base64_too() {
        let root = biscuit_auth::KeyPair::new();
        let token = crate::token::mint_identity(
            &root,
            &crate::token::IdentityClaims {
                subject: "uri:urn:company:alice".into(),
                expires_at: 4_000_000_000,
                delegatable: true,
                domain: None,
            },
        )
        .unwrap();
        assert!(read_verified(&token, &root.public()).is_ok());
        let unpadded = token.trim_end_matches('=');
        if unpadded.len() != token.len() {
            let err = read_verified(unpadded, &root.public())
                .unwrap_err()
                .to_string();
            assert!(err.contains("padding") || err.contains("unpadded"), "{err}");
        }
        let standard = token.replace('-', "+").replace('_', "/");
        if standard != token {
            let err = read_verified(&standard, &root.public())
                .unwrap_err()
                .to_string();
            assert!(err.contains("URL-safe alphabet"), "{err}");
        }
        let err = read_verified(&format!("{}!", &token[..token.len() - 4]), &root.public())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("malformed base64"), "{err}");
    }

    #[test]
    fn standard_alphabet_is_explained() {
        let err = decode("ab+/").unwrap_err().to_string();
        assert!(err.contains("URL-safe alphabet"), "{err}");
    }

    #[test]
    fn oversized_and_empty_text_is_refused_before_decoding() {
        let huge = "A".repeat(MAX_TOKEN_CHARS + 4);
        assert!(matches!(decode(&huge), Err(TokenError::TooLarge { .. })));
        assert_eq!(decode("  \n"), Err(TokenError::Empty));
    }

    #[test]
    fn junk_that_decodes_is_not_a_biscuit() {
        let err = parse_unverified(&encode(b"definitely not protobuf")).unwrap_err();
        assert!(matches!(err, TokenError::Malformed(_)), "{err:?}");
    }
}
