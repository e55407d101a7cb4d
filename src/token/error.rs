//! Typed token failures, worded for the reviewer who reads them: which block and check failed,
//! and what that means (expired when, presented as whom, outside which domain).

use std::fmt;

use serde::Serialize;

use super::clock::{describe_instant, format_unix};

/// Everything that can go wrong while reading, building or verifying a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is empty")]
    Empty,
    #[error("the token is {len} characters long; tokens longer than {max} characters are refused")]
    TooLarge { len: usize, max: usize },
    #[error("malformed base64: {0}")]
    Base64(String),
    #[error("not a Biscuit token: {0}")]
    Malformed(String),
    #[error(
        "the token's signatures do not verify with root key {key}: it was issued by another authority, or altered after issuance"
    )]
    UnknownRootKey { key: String },
    #[error("the token was signed by root key {id}, which {reason}")]
    UnusableRootKey { id: u32, reason: String },
    #[error(
        "block {block} contains a string with a quote, backslash or control character ({value:?}); such tokens are refused because their Datalog cannot be shown unambiguously"
    )]
    AmbiguousString { block: usize, value: String },
    #[error("{} refused before evaluation: {reason}", screened_place(*.block))]
    Screened {
        block: Option<usize>,
        reason: String,
    },
    #[error("{}", display_denials(.0))]
    Denied(Vec<Denial>),
    #[error(
        "Datalog run limit reached ({0}); the token is too expensive to evaluate. This is not a policy decision: nothing was granted or denied on its merits"
    )]
    RunLimit(String),
    #[error(
        "Datalog evaluation failed: {0} (expiry checks must compare integer Unix seconds, not dates)"
    )]
    Evaluation(String),
    #[error("delegation depth {depth} exceeds the limit of {max}")]
    TooDeep { depth: usize, max: usize },
    #[error("cannot delegate from {from} to {to}: {reason}")]
    InvalidDelegationTarget {
        from: String,
        to: String,
        reason: String,
    },
    #[error(
        "the identity token for {identity} is not delegatable (its authority block allows that exact identity only)"
    )]
    NotDelegatable { identity: String },
    #[error("invalid identity {identity:?}: {reason}")]
    InvalidIdentity { identity: String, reason: String },
    #[error("invalid delegation policy at line {line}, column {column}: {message}")]
    InvalidPolicy {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("this is {found}, but {expected} was expected")]
    WrongKind {
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "this identity token has been refreshed {refreshes} times in a row, the most this server allows ({max}); authenticate again with your client certificate (/request_identity_token) for a new one"
    )]
    RefreshLimit { refreshes: u32, max: u32 },
    #[error(
        "the token was refreshed from a token (generation {generation}) signed by root key {id}, which has been retired by force; every token refreshed from what that key signed is refused with it: authenticate again with your client certificate"
    )]
    AncestorKeyRetired { generation: u32, id: u32 },
    #[error("service chain: {0}")]
    ServiceChain(String),
    #[error("token error: {0}")]
    Internal(String),
}

impl TokenError {
    /// True for failures that are a verdict on the token (it is invalid or denied), as opposed
    /// to failures to even read it. The CLI maps the former to exit 1.
    pub fn is_verdict(&self) -> bool {
        matches!(
            self,
            TokenError::UnknownRootKey { .. }
                | TokenError::UnusableRootKey { .. }
                | TokenError::AncestorKeyRetired { .. }
                | TokenError::Denied(_)
                | TokenError::RunLimit(_)
                | TokenError::Evaluation(_)
                | TokenError::TooDeep { .. }
                | TokenError::NotDelegatable { .. }
                | TokenError::WrongKind { .. }
                | TokenError::AmbiguousString { .. }
                | TokenError::Screened { .. }
        )
    }

    /// The denials, when the failure is a failed check or policy.
    pub fn denials(&self) -> &[Denial] {
        match self {
            TokenError::Denied(denials) => denials,
            _ => &[],
        }
    }
}

fn screened_place(block: Option<usize>) -> String {
    match block {
        Some(0) => "the token's authority block is".into(),
        Some(index) => format!("the token's block {index} is"),
        None => "the token is".into(),
    }
}

fn display_denials(denials: &[Denial]) -> String {
    let parts: Vec<String> = denials.iter().map(|d| d.to_string()).collect();
    parts.join("; ")
}

/// Where a failed check lives: in a token block, or in the verifier's own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "origin", content = "index")]
pub enum CheckOrigin {
    Block(usize),
    Verifier,
}

impl fmt::Display for CheckOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckOrigin::Block(0) => write!(f, "authority block"),
            CheckOrigin::Block(index) => write!(f, "block {index}"),
            CheckOrigin::Verifier => write!(f, "the verifier"),
        }
    }
}

/// One failed check, with the Datalog that failed and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub origin: CheckOrigin,
    /// Index of the check within its block; `None` when no policy matched at all.
    pub check: Option<usize>,
    pub rule: String,
    pub reason: DenialReason,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.check {
            Some(check) => write!(
                f,
                "{} (check {} of {}: `{}`)",
                self.reason, check, self.origin, self.rule
            ),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// The meaning of a failed check, recognised from the Hessra check shapes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DenialReason {
    Expired {
        expired_at: i64,
        now: i64,
    },
    IdentityMismatch {
        allowed: String,
        includes_descendants: bool,
        presented: Option<String>,
    },
    DomainMismatch {
        domain: String,
        presented: Option<String>,
    },
    SubjectOutsideDomain {
        domain: Option<String>,
    },
    RightsDenied {
        subject: Option<String>,
        resource: Option<String>,
        operation: Option<String>,
    },
    PrefixNotAttested,
    PrefixMismatch {
        prefix: String,
        presented: Option<String>,
    },
    SignoffMissing {
        namespace: String,
    },
    ServiceAttestationMissing {
        resource: String,
        component: String,
    },
    DenyPolicy,
    NoPolicyMatched,
    /// A check with no Hessra meaning (a delegation policy, a custom check). `missing` names
    /// request context the check reads but the verifier was not given.
    Check {
        missing: Vec<String>,
    },
}

impl fmt::Display for DenialReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenialReason::Expired { expired_at, now } => write!(
                f,
                "expired at {} ({})",
                format_unix(*expired_at),
                describe_instant(*expired_at, *now)
            ),
            DenialReason::IdentityMismatch {
                allowed,
                includes_descendants,
                presented,
            } => {
                let scope = if *includes_descendants {
                    format!("{allowed} (and its sub-identities)")
                } else {
                    allowed.clone()
                };
                match presented {
                    Some(actor) => write!(f, "token is for {scope} but was presented as {actor}"),
                    None => write!(f, "token is for {scope} and no identity was presented"),
                }
            }
            DenialReason::DomainMismatch { domain, presented } => match presented {
                Some(other) => write!(
                    f,
                    "token is restricted to domain {domain} but was presented in domain {other}"
                ),
                None => write!(
                    f,
                    "token is restricted to domain {domain} but no domain was given"
                ),
            },
            DenialReason::SubjectOutsideDomain { domain } => match domain {
                Some(domain) => write!(f, "the token's subject is not within domain {domain}"),
                None => write!(f, "the token's subject is not within the requested domain"),
            },
            DenialReason::RightsDenied {
                subject,
                resource,
                operation,
            } => write!(
                f,
                "the token grants no right for subject {} to {} on {}",
                subject.as_deref().unwrap_or("(none given)"),
                operation.as_deref().unwrap_or("(no operation)"),
                resource.as_deref().unwrap_or("(no resource)")
            ),
            DenialReason::PrefixNotAttested => write!(
                f,
                "the token is a stub: it needs a prefix block signed by its prefix-attenuator key"
            ),
            DenialReason::PrefixMismatch { prefix, presented } => match presented {
                Some(other) => write!(
                    f,
                    "the token is restricted to prefix {prefix} but was presented with {other}"
                ),
                None => write!(
                    f,
                    "the token is restricted to prefix {prefix} but no prefix was given"
                ),
            },
            DenialReason::SignoffMissing { namespace } => {
                write!(f, "the multi-party signoff of {namespace} is missing")
            }
            DenialReason::ServiceAttestationMissing {
                resource,
                component,
            } => write!(
                f,
                "service {component} has not attested the token for {resource}"
            ),
            DenialReason::DenyPolicy => write!(f, "a deny policy matched"),
            DenialReason::NoPolicyMatched => write!(f, "no allow policy matched"),
            DenialReason::Check { missing } if missing.is_empty() => {
                write!(f, "a policy check was not satisfied")
            }
            DenialReason::Check { missing } => write!(
                f,
                "a policy check was not satisfied: it reads the request's {}, which was not given",
                missing.join(" and ")
            ),
        }
    }
}
