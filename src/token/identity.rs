//! Identity tokens: minting (delegatable, exact, domain-restricted), offline delegation to a
//! strict descendant with optional policy checks and a depth limit, JIT blocks, verification.

use biscuit_auth::builder::{Algorithm, BlockBuilder, Check};
use biscuit_auth::macros::{authorizer, biscuit, block, check, fact, policy, rule};
use biscuit_auth::{Biscuit, PrivateKey, PublicKey, UnverifiedBiscuit};
use serde::Serialize;

use super::codec::{decode, encode_token, encode_unverified, parse_unverified, read_verified};
use super::error::{DenialReason, TokenError};
use super::explain::{Presented, explain};
use super::lineage::Ancestor;
use super::plain::{Ambient, AmbientSubject};
use super::roots::{SigningRoot, VerifyingRoots};
use super::view::{TokenKind, TokenView};
use super::{DEFAULT_MAX_DELEGATION_DEPTH, JIT_SECONDS, run_limits};

/// Longest identity accepted anywhere.
pub const MAX_IDENTITY_LEN: usize = 512;

/// Checks an identity string: `:`-separated non-empty segments, no whitespace, quotes,
/// backslashes or control characters.
pub fn validate_identity(identity: &str) -> Result<(), TokenError> {
    let fail = |reason: &str| {
        Err(TokenError::InvalidIdentity {
            identity: identity.to_string(),
            reason: reason.to_string(),
        })
    };
    if identity.is_empty() {
        return fail("it is empty");
    }
    if identity.len() > MAX_IDENTITY_LEN {
        return fail(&format!("it is longer than {MAX_IDENTITY_LEN} characters"));
    }
    if let Some(c) = identity
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '"' || *c == '\\')
    {
        return fail(&format!(
            "it contains {c:?}; identities may not contain whitespace, quotes, backslashes or control characters"
        ));
    }
    if identity.split(':').any(str::is_empty) {
        return fail("it has an empty segment (a leading, trailing or doubled ':')");
    }
    Ok(())
}

/// True when `candidate` is `ancestor` itself or lies below it in the `:` hierarchy.
pub fn is_same_or_descendant(candidate: &str, ancestor: &str) -> bool {
    candidate == ancestor || is_strict_descendant(candidate, ancestor)
}

/// True when `candidate` lies strictly below `ancestor` (`a:b` under `a`, but not `ab`).
pub fn is_strict_descendant(candidate: &str, ancestor: &str) -> bool {
    candidate
        .strip_prefix(ancestor)
        .is_some_and(|rest| rest.starts_with(':') && rest.len() > 1)
}

/// What an identity token says when minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityClaims {
    pub subject: String,
    pub expires_at: i64,
    /// Sub-identities (`subject:…`) may use the token after offline delegation.
    pub delegatable: bool,
    /// Present for domain-restricted identities minted by a realm.
    pub domain: Option<String>,
}

/// Mints an identity token signed by `root`.
pub fn mint_identity<R: SigningRoot + ?Sized>(
    root: &R,
    claims: &IdentityClaims,
) -> Result<String, TokenError> {
    mint_refreshed_identity(root, claims, &[])
}

/// Mints an identity token that names the tokens it was refreshed from, oldest first, as
/// `lineage(generation, "revocation id", root key id)` facts in its authority block (see
/// `src/token/lineage.rs`).
pub fn mint_refreshed_identity<R: SigningRoot + ?Sized>(
    root: &R,
    claims: &IdentityClaims,
    lineage: &[Ancestor],
) -> Result<String, TokenError> {
    validate_identity(&claims.subject)?;
    let subject = claims.subject.as_str();
    let expires_at = claims.expires_at;
    let mut builder = if claims.delegatable {
        biscuit!(
            r#"subject({subject});
               check if actor($a), $a == {subject} || $a.starts_with({subject} + ":");
               check if time($time), $time < {expires_at};"#
        )
    } else {
        biscuit!(
            r#"subject({subject});
               check if actor($a), $a == {subject};
               check if time($time), $time < {expires_at};"#
        )
    };
    if let Some(domain) = claims.domain.as_deref() {
        validate_identity(domain)?;
        builder = builder
            .check(check!(r#"check if domain({domain});"#))
            .and_then(|b| b.rule(rule!(r#"subject($d, $s) <- domain($d), subject($s);"#)))
            .map_err(|e| TokenError::Internal(e.to_string()))?;
    }
    for ancestor in lineage {
        let generation = i64::from(ancestor.generation);
        let id = ancestor.revocation_id.as_str();
        let fact = match ancestor.root_key_id.map(i64::from) {
            Some(key) => fact!(r#"lineage({generation}, {id}, {key})"#),
            None => fact!(r#"lineage({generation}, {id})"#),
        };
        builder = builder
            .fact(fact)
            .map_err(|e| TokenError::Internal(e.to_string()))?;
    }
    if let Some(id) = root.key_id() {
        builder = builder.root_key_id(id);
    }
    let token = builder
        .build(root.key_pair())
        .map_err(|e| TokenError::Internal(e.to_string()))?;
    encode_token(&token)
}

/// Extra checks a delegator attaches to a delegation, e.g.
/// `check if operation($op), $op == "read";`. Only checks are allowed: a delegation can narrow,
/// never grant.
#[derive(Debug, Clone)]
pub struct DelegationPolicy {
    source: String,
    checks: Vec<Check>,
}

impl DelegationPolicy {
    /// Parses checks separated by `;`, reporting the line and column of the first problem.
    pub fn parse(source: &str) -> Result<DelegationPolicy, TokenError> {
        let mut checks = Vec::new();
        for (offset, statement) in split_statements(source) {
            let located = |at: usize, message: String| {
                let (line, column) = line_column(source, offset + at);
                TokenError::InvalidPolicy {
                    line,
                    column,
                    message,
                }
            };
            if let Some(at) = statement.find('\\') {
                return Err(located(
                    at,
                    "escapes are not allowed in delegation policies".into(),
                ));
            }
            if let Some(at) = control_in_string(statement) {
                return Err(located(
                    at,
                    "a string holds a control character: the token would be refused by every reader".into(),
                ));
            }
            let check = match Check::try_from(statement) {
                Ok(check) => check,
                Err(error) => return Err(policy_error(statement, &error, located)),
            };
            if check.validate_parameters().is_err() {
                let at = statement.find('{').unwrap_or(0);
                return Err(located(
                    at,
                    "parameters such as {name} are not allowed: write the value itself".into(),
                ));
            }
            if let Some(at) = statement.find("actor(") {
                return Err(located(
                    at,
                    "a delegation policy cannot check actor(…): the delegation itself fixes who may use the token".into(),
                ));
            }
            if let Err(reason) = super::screen::screen_appended_check(&check) {
                return Err(located(0, reason));
            }
            checks.push(check);
        }
        if checks.is_empty() {
            return Err(TokenError::InvalidPolicy {
                line: 1,
                column: 1,
                message: "the policy is empty; write checks such as: check if operation($op), $op == \"read\";".into(),
            });
        }
        Ok(DelegationPolicy {
            source: source.to_string(),
            checks,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

/// The byte offset of a control character inside a string literal, if any.
fn control_in_string(statement: &str) -> Option<usize> {
    let mut in_string = false;
    for (at, c) in statement.char_indices() {
        if c == '"' {
            in_string = !in_string;
        } else if in_string && c.is_control() {
            return Some(at);
        }
    }
    None
}

/// The largest character boundary at or before `at` (parser offsets may land inside one).
fn char_floor(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn policy_error(
    statement: &str,
    error: &biscuit_auth::error::Token,
    located: impl Fn(usize, String) -> TokenError,
) -> TokenError {
    let starts_like_check = ["check if", "check all", "reject if"]
        .iter()
        .any(|p| statement.starts_with(p));
    if !starts_like_check {
        return located(
            0,
            "only checks ('check if …', 'check all …', 'reject if …') are allowed: a delegation can narrow a token, never add facts or rules".into(),
        );
    }
    let (at, message) = match error {
        biscuit_auth::error::Token::Language(biscuit_parser::error::LanguageError::ParseError(
            errors,
        )) => {
            let first = errors.errors.first();
            let at = first.map_or(0, |e| {
                char_floor(statement, statement.len().saturating_sub(e.input.len()))
            });
            let message = first.and_then(|e| e.message.clone()).unwrap_or_else(|| {
                format!(
                    "cannot parse the check near {:?}",
                    &statement[at..].chars().take(24).collect::<String>()
                )
            });
            (at, message)
        }
        other => (0, other.to_string()),
    };
    located(at, message)
}

/// Splits Datalog on `;` outside string literals, returning each trimmed statement with the
/// byte offset where it starts. `//` comments run to the end of the line.
fn split_statements(source: &str) -> Vec<(usize, &str)> {
    let mut statements = Vec::new();
    let mut start = 0;
    let mut in_string = false;
    let mut in_comment = false;
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_comment {
            if c == b'\n' {
                in_comment = false;
                start = i + 1;
            }
        } else if c == b'"' {
            in_string = !in_string;
        } else if !in_string && c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            push_statement(source, start, i, &mut statements);
            in_comment = true;
            start = i;
        } else if !in_string && c == b';' {
            push_statement(source, start, i, &mut statements);
            start = i + 1;
        }
        i += 1;
    }
    if !in_comment {
        push_statement(source, start, source.len(), &mut statements);
    }
    statements
}

fn push_statement<'a>(source: &'a str, start: usize, end: usize, out: &mut Vec<(usize, &'a str)>) {
    let text = &source[start..end];
    let trimmed = text.trim_start();
    let offset = start + (text.len() - trimmed.len());
    let trimmed = trimmed.trim_end();
    if !trimmed.is_empty() && !trimmed.starts_with("//") {
        out.push((offset, trimmed));
    }
}

fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..char_floor(source, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A delegation request: narrow the token to `target` until `expires_at`.
#[derive(Debug, Clone)]
pub struct Delegation<'a> {
    pub target: &'a str,
    pub expires_at: i64,
    pub policy: Option<&'a DelegationPolicy>,
    pub max_depth: usize,
}

impl<'a> Delegation<'a> {
    pub fn new(target: &'a str, expires_at: i64) -> Self {
        Delegation {
            target,
            expires_at,
            policy: None,
            max_depth: DEFAULT_MAX_DELEGATION_DEPTH,
        }
    }
}

/// The result of a delegation.
#[derive(Debug, Clone, Serialize)]
pub struct Delegated {
    pub token: String,
    pub from: String,
    pub identity: String,
    pub depth: usize,
    /// The expiry written in the new block.
    pub expires_at: i64,
    /// When the token actually dies: an earlier block may expire first.
    pub effective_expires_at: i64,
}

/// Delegates an identity token offline to a strict descendant of its current identity.
///
/// With `root`, the token's signatures are checked first so that a forged token is never
/// extended; without it the token is extended as is (its verifier will judge it).
pub fn delegate(
    token: &str,
    root: Option<&PublicKey>,
    delegation: &Delegation<'_>,
) -> Result<Delegated, TokenError> {
    // With a root key, the signatures are checked (or known checked: see `read_verified`)
    // before anything is appended, so a forged token is never extended; the extension itself
    // is appended to the token as parsed, without checking our own new block again.
    let (verified, read);
    let (unverified, view) = match root {
        Some(root) => {
            verified = read_verified(token, root)?;
            let unverified = UnverifiedBiscuit::from(decode(token)?)
                .map_err(|e| TokenError::Malformed(e.to_string()))?;
            (unverified, &verified.view)
        }
        None => {
            let unverified = parse_unverified(token)?;
            read = TokenView::read(&unverified)?;
            (unverified, &read)
        }
    };
    let from = delegation_source(view)?;
    check_target(&from, delegation.target)?;
    let depth = view.delegation_depth() + 1;
    if depth > delegation.max_depth {
        return Err(TokenError::TooDeep {
            depth,
            max: delegation.max_depth,
        });
    }
    let target = delegation.target;
    let expires_at = delegation.expires_at;
    let mut block = block!(
        r#"check if actor($a), $a == {target} || $a.starts_with({target} + ":");
           check if time($time), $time < {expires_at};"#
    );
    if let Some(policy) = delegation.policy {
        block.checks.extend(policy.checks.iter().cloned());
    }
    let extended = append_with_ephemeral_key(&unverified, block)?;
    let text = encode_unverified(&extended)?;
    // A delegation that every verifier would refuse (too many blocks or checks to evaluate in
    // bounded time) is refused here, where the delegator can still choose another policy.
    if let Err(refusal) = super::screen::screen(&decode(&text)?) {
        return Err(TokenError::InvalidDelegationTarget {
            from,
            to: target.to_string(),
            reason: format!("the delegated token would be refused by every verifier: {refusal}"),
        });
    }
    let effective = view
        .effective_expiry()
        .map_or(expires_at, |e| e.min(expires_at));
    Ok(Delegated {
        token: text,
        from,
        identity: target.to_string(),
        depth,
        expires_at,
        effective_expires_at: effective,
    })
}

fn delegation_source(view: &TokenView) -> Result<String, TokenError> {
    if view.kind() != TokenKind::Identity {
        return Err(TokenError::WrongKind {
            expected: "an identity token",
            found: view.kind().describe(),
        });
    }
    let current = view.effective_identity().unwrap_or_default().to_string();
    if !view.delegatable() {
        return Err(TokenError::NotDelegatable { identity: current });
    }
    Ok(current)
}

fn check_target(from: &str, to: &str) -> Result<(), TokenError> {
    validate_identity(to)?;
    if is_strict_descendant(to, from) {
        return Ok(());
    }
    let reason = if to == from {
        "that is the token's own identity; a delegation must name a sub-identity".to_string()
    } else if is_strict_descendant(from, to) {
        format!("{to} is an ancestor of {from}; delegation only goes down the hierarchy")
    } else if to.starts_with(from) {
        format!("{to} only shares a prefix with {from}; a sub-identity is written {from}:NAME")
    } else {
        format!("{to} is not under {from}; delegation only goes down the hierarchy")
    };
    Err(TokenError::InvalidDelegationTarget {
        from: from.to_string(),
        to: to.to_string(),
        reason,
    })
}

/// Appends `block` as a third-party block signed by a fresh, discarded Ed25519 key.
pub(crate) fn append_with_ephemeral_key(
    token: &UnverifiedBiscuit,
    block: BlockBuilder,
) -> Result<UnverifiedBiscuit, TokenError> {
    append_third_party(token, &ephemeral_key()?, block)
}

/// A fresh Ed25519 key for signing one third-party block, then forgotten. Only the private half
/// is made here: biscuit-auth derives the public half when it signs the block, and a key pair
/// would derive it twice (a scalar multiplication, a tenth of what a delegation costs).
fn ephemeral_key() -> Result<PrivateKey, TokenError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::getrandom(seed.as_mut_slice()).map_err(|e| {
        TokenError::Internal(format!("the system's random number generator failed: {e}"))
    })?;
    PrivateKey::from_bytes(seed.as_slice(), Algorithm::Ed25519)
        .map_err(|e| TokenError::Internal(e.to_string()))
}

/// Appends `block` as a third-party block signed by `signer`.
pub(crate) fn append_third_party(
    token: &UnverifiedBiscuit,
    signer: &PrivateKey,
    block: BlockBuilder,
) -> Result<UnverifiedBiscuit, TokenError> {
    let internal = |e: biscuit_auth::error::Token| TokenError::Internal(e.to_string());
    let request = token.third_party_request().map_err(internal)?;
    let signed = request.create_block(signer, block).map_err(internal)?;
    let bytes = signed.serialize().map_err(internal)?;
    token.append_third_party(&bytes).map_err(internal)
}

/// Adds a JIT block: the token stops working `JIT_SECONDS` after `now`.
pub fn add_jit(token: &str, now: i64) -> Result<String, TokenError> {
    let unverified = parse_unverified(token)?;
    let expires_at = now + JIT_SECONDS;
    let block = block!(r#"check if time($time), $time < {expires_at};"#);
    encode_unverified(&append_with_ephemeral_key(&unverified, block)?)
}

/// Who the verifier says is presenting the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// Identity mode: the token must be usable by exactly this identity.
    Named(&'a str),
    /// The token's own effective identity (deepest delegation, else subject).
    Effective,
    /// Bearer mode as the Hessra SDK does it: actor = subject; only signature and expiry count.
    Bearer,
}

/// What to verify an identity token against.
#[derive(Debug, Clone)]
pub struct IdentityVerification<'a> {
    pub actor: Actor<'a>,
    pub domain: Option<&'a str>,
    /// Also require the subject to lie within `domain` (what realm-minted tokens need).
    pub ensure_subject_in_domain: bool,
    /// Request context that delegation policies may check.
    pub resource: Option<&'a str>,
    pub operation: Option<&'a str>,
    pub max_depth: usize,
    pub now: i64,
}

impl<'a> IdentityVerification<'a> {
    pub fn new(actor: Actor<'a>, now: i64) -> Self {
        IdentityVerification {
            actor,
            domain: None,
            ensure_subject_in_domain: false,
            resource: None,
            operation: None,
            max_depth: DEFAULT_MAX_DELEGATION_DEPTH,
            now,
        }
    }
}

/// A verified identity token.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedIdentity {
    pub subject: String,
    /// The identity it was verified for.
    pub identity: String,
    pub chain: Vec<String>,
    pub depth: usize,
    pub expires_at: Option<i64>,
    pub domain: Option<String>,
    pub delegatable: bool,
    pub revocation_ids: Vec<String>,
}

/// Verifies an identity token's signatures, structure and checks.
pub fn verify_identity<R: VerifyingRoots + ?Sized>(
    token: &str,
    root: &R,
    verification: &IdentityVerification<'_>,
) -> Result<VerifiedIdentity, TokenError> {
    let verified = read_verified(token, root)?;
    verify_identity_parsed(&verified.biscuit, &verified.view, verification)
}

/// Verification of an already parsed and signature-checked token (the server's hot path).
pub fn verify_identity_parsed(
    biscuit: &Biscuit,
    view: &TokenView,
    verification: &IdentityVerification<'_>,
) -> Result<VerifiedIdentity, TokenError> {
    if view.kind() != TokenKind::Identity {
        return Err(TokenError::WrongKind {
            expected: "an identity token",
            found: view.kind().describe(),
        });
    }
    let depth = view.delegation_depth();
    if depth > verification.max_depth {
        return Err(TokenError::TooDeep {
            depth,
            max: verification.max_depth,
        });
    }
    let subject = view.subject().unwrap_or_default().to_string();
    let actor = match verification.actor {
        Actor::Named(name) => name.to_string(),
        Actor::Effective => view.effective_identity().unwrap_or_default().to_string(),
        Actor::Bearer => subject.clone(),
    };
    // A plain token whose checks all hold is allowed without running Datalog; anything else,
    // and every denial, is decided by biscuit-auth (src/token/plain.rs).
    let plain = !verification.ensure_subject_in_domain
        && view.plain.as_ref().is_some_and(|checks| {
            checks.allows(&Ambient {
                now: verification.now,
                actor: Some(&actor),
                domain: verification.domain,
                resource: verification.resource,
                operation: verification.operation,
                subject: AmbientSubject::None,
            })
        });
    if plain {
        return Ok(verified_identity(view, subject, actor, depth));
    }
    authorize_identity(biscuit, &actor, verification).map_err(|e| {
        let presented = Presented {
            now: verification.now,
            actor: Some(actor.clone()),
            subject: Some(subject.clone()),
            domain: verification.domain.map(str::to_string),
            resource: verification.resource.map(str::to_string),
            operation: verification.operation.map(str::to_string),
            no_policy: Some(DenialReason::SubjectOutsideDomain {
                domain: verification.domain.map(str::to_string),
            }),
            ..Presented::default()
        };
        explain(e, &presented)
    })?;
    Ok(verified_identity(view, subject, actor, depth))
}

fn verified_identity(
    view: &TokenView,
    subject: String,
    actor: String,
    depth: usize,
) -> VerifiedIdentity {
    VerifiedIdentity {
        subject,
        identity: actor,
        chain: view.identity_chain(),
        depth,
        expires_at: view.effective_expiry(),
        domain: view.domain().map(str::to_string),
        delegatable: view.delegatable(),
        revocation_ids: view.revocation_ids(),
    }
}

fn authorize_identity(
    biscuit: &Biscuit,
    actor: &str,
    verification: &IdentityVerification<'_>,
) -> Result<usize, biscuit_auth::error::Token> {
    let now = verification.now;
    let mut builder = authorizer!(r#"time({now}); actor({actor});"#);
    if let Some(domain) = verification.domain {
        builder = builder.fact(fact!(r#"domain({domain})"#))?;
    }
    if let Some(resource) = verification.resource {
        builder = builder.fact(fact!(r#"resource({resource})"#))?;
    }
    if let Some(operation) = verification.operation {
        builder = builder.fact(fact!(r#"operation({operation})"#))?;
    }
    let policy = if verification.ensure_subject_in_domain {
        policy!("allow if subject($d, $s), domain($d), subject($s)")
    } else {
        policy!("allow if true")
    };
    builder
        .policy(policy)?
        .set_limits(run_limits())
        .build(biscuit)?
        .authorize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_grammar() {
        assert!(validate_identity("uri:urn:company:alice").is_ok());
        for bad in ["", "a::b", "a:", ":a", "a b", "a\"b", "a\\b", "a\nb"] {
            assert!(validate_identity(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_identity(&"a".repeat(MAX_IDENTITY_LEN + 1)).is_err());
    }

    #[test]
    fn descendants_are_strict_and_segment_aligned() {
        assert!(is_strict_descendant("a:b", "a"));
        assert!(is_strict_descendant("a:b:c", "a"));
        assert!(!is_strict_descendant("a", "a"));
        assert!(!is_strict_descendant("ab", "a"));
        assert!(!is_strict_descendant("a:", "a"));
        assert!(!is_strict_descendant("b:a", "a"));
        assert!(is_same_or_descendant("a", "a"));
    }

    #[test]
    fn policy_parses_checks_and_locates_errors() {
        let policy = DelegationPolicy::parse(
            "check if operation($op), $op == \"read\";\n// only reads\ncheck if resource($r), $r == \"api\";",
        )
        .unwrap();
        assert_eq!(policy.checks.len(), 2);

        let err = DelegationPolicy::parse(
            "check if operation($op), $op == \"read\";\n  check if resource(",
        )
        .unwrap_err();
        let TokenError::InvalidPolicy { line, column, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(line, 2);
        assert!(column >= 3, "column {column}");

        let err = DelegationPolicy::parse("right(\"a\", \"b\", \"c\");")
            .unwrap_err()
            .to_string();
        assert!(err.contains("only checks"), "{err}");
        let err = DelegationPolicy::parse("  // nothing\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty"), "{err}");
        let err = DelegationPolicy::parse("check if op($o), $o == \"a\\\"b\";")
            .unwrap_err()
            .to_string();
        assert!(err.contains("escapes"), "{err}");
    }

    /// Found by fuzzing: each once panicked or produced a token no reader accepts.
    #[test]
    fn policies_that_fuzzing_broke_are_refused_with_a_reason() {
        for (source, expected) in [
            (
                "check if operation($op), $op == \u{201c}read\u{201d};",
                "line 1",
            ),
            ("reject if\u{74d})", "line 1"),
            ("check if operation($op), $op == {op};", "parameters"),
            ("check all op(\"l\u{b}\");", "control character"),
            ("check if actor($a), $a == \"\";", "cannot check actor"),
        ] {
            let err = DelegationPolicy::parse(source).unwrap_err().to_string();
            assert!(err.contains(expected), "{source:?}: {err}");
        }
    }

    #[test]
    fn statements_split_outside_strings() {
        let parts = split_statements("a(\"x;y\"); b(1)\n;c");
        let texts: Vec<&str> = parts.iter().map(|(_, s)| *s).collect();
        assert_eq!(texts, vec!["a(\"x;y\")", "b(1)", "c"]);
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
