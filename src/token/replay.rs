//! Authorizing a token against arbitrary authorizer Datalog, under the same explicit run limits
//! and with the same explanations as the Hessra-shaped verifiers. Used to replay published
//! Biscuit conformance samples and for ad-hoc checks.

use biscuit_auth::builder::AuthorizerBuilder;

use super::explain::{Presented, explain};
use super::{TokenError, VerifyingRoots, parse_verified, run_limits};

/// Verifies the token's signatures with `root`, then runs `code` (facts, rules, checks and
/// policies) as the authorizer. Returns the index of the policy that allowed.
pub fn authorize_with_code<R: VerifyingRoots + ?Sized>(
    text: &str,
    root: &R,
    code: &str,
) -> Result<usize, TokenError> {
    let biscuit = parse_verified(text, root)?;
    let presented = Presented::default();
    AuthorizerBuilder::new()
        .code(code)
        .map_err(|e| explain(e, &presented))?
        .set_limits(run_limits())
        .build(&biscuit)
        .map_err(|e| explain(e, &presented))?
        .authorize()
        .map_err(|e| explain(e, &presented))
}
