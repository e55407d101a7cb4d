//! Turns biscuit-auth's authorization failures into `TokenError`s that name the block and check
//! that failed and say what it means, using what the verifier was asked.

use biscuit_auth::error::{FailedCheck, Logic, MatchedPolicy, RunLimit, Token};

use super::error::{CheckOrigin, Denial, DenialReason, TokenError};
use super::shapes::{NODE_CHECK, match_template, recognise_failed_check};

/// What the verifier presented, so that a failure can say "presented as Y".
#[derive(Debug, Clone, Default)]
pub struct Presented {
    pub now: i64,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub domain: Option<String>,
    pub resource: Option<String>,
    pub operation: Option<String>,
    pub prefix: Option<String>,
    /// What it means when no allow policy matched (the verifier knows its own policy).
    pub no_policy: Option<DenialReason>,
}

/// Explains a failure of `Authorizer::authorize` (or of building the authorizer).
pub fn explain(error: Token, presented: &Presented) -> TokenError {
    match error {
        Token::FailedLogic(Logic::Unauthorized { policy, checks }) => {
            let mut denials = denials_for(&checks, presented);
            if let (true, MatchedPolicy::Deny(index)) = (denials.is_empty(), policy) {
                denials.push(Denial {
                    origin: CheckOrigin::Verifier,
                    check: Some(index),
                    rule: "deny policy".to_string(),
                    reason: DenialReason::DenyPolicy,
                });
            }
            TokenError::Denied(denials)
        }
        Token::FailedLogic(Logic::NoMatchingPolicy { checks }) => {
            let mut denials = denials_for(&checks, presented);
            denials.push(Denial {
                origin: CheckOrigin::Verifier,
                check: None,
                rule: String::new(),
                reason: presented
                    .no_policy
                    .clone()
                    .unwrap_or(DenialReason::NoPolicyMatched),
            });
            TokenError::Denied(denials)
        }
        Token::FailedLogic(Logic::InvalidBlockRule(block, rule)) => TokenError::Evaluation(
            format!("a rule in block {block} produces facts with unbound variables: {rule}"),
        ),
        Token::RunLimit(limit) => TokenError::RunLimit(describe_limit(&limit)),
        Token::Execution(expression) => TokenError::Evaluation(expression.to_string()),
        Token::Format(format) => TokenError::Malformed(format.to_string()),
        other => TokenError::Internal(other.to_string()),
    }
}

fn describe_limit(limit: &RunLimit) -> String {
    match limit {
        RunLimit::TooManyFacts => "too many facts".to_string(),
        RunLimit::TooManyIterations => "too many rule iterations".to_string(),
        RunLimit::Timeout => "evaluation time limit".to_string(),
        other => other.to_string(),
    }
}

fn denials_for(checks: &[FailedCheck], presented: &Presented) -> Vec<Denial> {
    checks
        .iter()
        .map(|check| {
            let (origin, index, rule) = match check {
                FailedCheck::Block(b) => {
                    (CheckOrigin::Block(b.block_id as usize), b.check_id, &b.rule)
                }
                FailedCheck::Authorizer(a) => (CheckOrigin::Verifier, a.check_id, &a.rule),
            };
            Denial {
                origin,
                check: Some(index as usize),
                rule: rule.clone(),
                reason: reason_for(rule, presented),
            }
        })
        .collect()
}

fn reason_for(rule: &str, presented: &Presented) -> DenialReason {
    if let Some(c) = match_template(NODE_CHECK, rule) {
        return DenialReason::ServiceAttestationMissing {
            resource: c[0].clone(),
            component: c[1].clone(),
        };
    }
    let Some(shape) = recognise_failed_check(rule) else {
        return unrecognised_check(rule, presented);
    };
    if let Some(expired_at) = shape.expiry {
        return DenialReason::Expired {
            expired_at,
            now: presented.now,
        };
    }
    if let Some(actor) = shape.actor {
        return DenialReason::IdentityMismatch {
            allowed: actor.identity,
            includes_descendants: actor.includes_descendants,
            presented: presented.actor.clone(),
        };
    }
    if let Some(domain) = shape.domain {
        return DenialReason::DomainMismatch {
            domain,
            presented: presented.domain.clone(),
        };
    }
    if shape.authority_rights_check {
        return DenialReason::RightsDenied {
            subject: presented.subject.clone(),
            resource: presented.resource.clone(),
            operation: presented.operation.clone(),
        };
    }
    if shape.prefix_trusted_key.is_some() {
        return DenialReason::PrefixNotAttested;
    }
    if let Some(prefix) = shape.prefix_check {
        return DenialReason::PrefixMismatch {
            prefix,
            presented: presented.prefix.clone(),
        };
    }
    if let Some((namespace, _)) = shape.signoffs.into_iter().next() {
        return DenialReason::SignoffMissing { namespace };
    }
    unrecognised_check(rule, presented)
}

fn unrecognised_check(rule: &str, presented: &Presented) -> DenialReason {
    let context = [
        ("resource", presented.resource.is_some()),
        ("operation", presented.operation.is_some()),
        ("domain", presented.domain.is_some()),
        ("prefix", presented.prefix.is_some()),
    ];
    let missing = context
        .iter()
        .filter(|(name, given)| !given && rule.contains(&format!("{name}(")))
        .map(|(name, _)| name.to_string())
        .collect();
    DenialReason::Check { missing }
}
