//! Who is calling: the client certificate's identity, a Bearer identity token's effective
//! identity, or both (which must agree). Failures are `ApiError`s with the status to send.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::PolicySnapshot;
use crate::pki;
use crate::policy::DEFAULT_MAX_DELEGATION_DEPTH;
use crate::policy::RevocationList;
use crate::token::{self, Actor, IdentityVerification, clock::unix_now};
use crate::wire::MessageResponse;

/// The URI SANs of the client certificate the TLS handshake verified, if one was presented.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificate {
    pub uris: Option<Vec<String>>,
}

impl PeerCertificate {
    pub fn from_connection(connection: &rustls::ServerConnection) -> PeerCertificate {
        let uris = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| pki::san_uris(leaf).unwrap_or_default());
        PeerCertificate { uris }
    }
}

/// A failed request: status and message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// A Datalog run limit stopped the evaluation: no verdict, counted apart from denials.
    pub run_limit: bool,
    /// Seconds after which a busy server is worth asking again (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            run_limit: false,
            retry_after: None,
        }
    }

    /// 503 with `Retry-After: 1`: the server is busy, not refusing.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    /// A token failure: malformed input is 400, a verdict on the token is 401.
    pub fn from_token(context: &str, error: &token::TokenError) -> ApiError {
        let status = if error.is_verdict() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError {
            run_limit: matches!(error, token::TokenError::RunLimit(_)),
            ..ApiError::new(status, format!("{context}: {error}"))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(MessageResponse {
                response_msg: self.message,
            }),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    None,
    Mtls,
    Bearer,
    MtlsAndBearer,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Mtls => "mtls",
            Method::Bearer => "bearer",
            Method::MtlsAndBearer => "mtls+bearer",
        }
    }

    pub fn has_certificate(self) -> bool {
        matches!(self, Method::Mtls | Method::MtlsAndBearer)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: String,
    pub method: Method,
    /// The domain a Bearer token is restricted to.
    pub token_domain: Option<String>,
    /// Revocation id of the presented token's last block (for audit).
    pub revocation_id: Option<String>,
}

impl Caller {
    /// A caller known by its client certificate alone.
    pub fn certified(identity: String) -> Caller {
        Caller {
            identity,
            method: Method::Mtls,
            token_domain: None,
            revocation_id: None,
        }
    }
}

/// The identity a certificate presents: the configured client whose identifier one of its URI
/// SANs names, else the first SAN as written (which no decision will serve).
pub fn certificate_identity(snapshot: &PolicySnapshot, peer: &PeerCertificate) -> Option<String> {
    let uris = peer.uris.as_ref()?;
    match snapshot.named_by(uris).as_slice() {
        [one] => Some(one.to_string()),
        [] => uris.first().map(|uri| {
            let bare = uri
                .strip_prefix("URI:")
                .or_else(|| uri.strip_prefix("uri:"))
                .unwrap_or(uri);
            format!("uri:{bare}")
        }),
        _ => None,
    }
}

/// The configured identities a certificate names when it names more than one: such a
/// certificate has no single identity and is refused rather than resolved by policy order.
pub fn ambiguous_certificate(
    snapshot: &PolicySnapshot,
    peer: &PeerCertificate,
) -> Option<Vec<String>> {
    let named = snapshot.named_by(peer.uris.as_ref()?);
    (named.len() > 1).then(|| named.into_iter().map(str::to_string).collect())
}

/// Refuses a certificate that names several configured identities.
pub fn refuse_ambiguous(snapshot: &PolicySnapshot, peer: &PeerCertificate) -> Result<(), ApiError> {
    match ambiguous_certificate(snapshot, peer) {
        Some(named) => Err(ApiError::forbidden(format!(
            "the client certificate names several configured identities ({}); present a certificate for exactly one",
            named.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The Bearer token of the request, if any.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("the Authorization header is not text"))?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err(ApiError::bad_request(
            "the Authorization header must be 'Bearer <identity token>'",
        )),
    }
}

/// Request context a Bearer token's delegation policies may check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub resource: Option<&'a str>,
    pub operation: Option<&'a str>,
}

/// Authenticates by certificate, Bearer identity token, or both.
pub fn authenticate(
    snapshot: &PolicySnapshot,
    peer: &PeerCertificate,
    headers: &HeaderMap,
    root: &(impl token::VerifyingRoots + ?Sized),
    context: Context<'_>,
) -> Result<Caller, ApiError> {
    refuse_ambiguous(snapshot, peer)?;
    let from_certificate = certificate_identity(snapshot, peer);
    let Some(token) = bearer(headers)? else {
        return match from_certificate {
            Some(identity) => Ok(Caller::certified(identity)),
            None => Err(ApiError::unauthenticated(
                "no client certificate and no Bearer identity token: authenticate with one of them",
            )),
        };
    };
    refuse_revoked(&snapshot.revoked, token, StatusCode::UNAUTHORIZED)?;
    let presented = verify_bearer(snapshot, token, root, context)?;
    match from_certificate {
        Some(certified) if certified != presented.identity => Err(ApiError::forbidden(format!(
            "Identity mismatch: the client certificate is for {certified} but the identity token is for {}",
            presented.identity
        ))),
        Some(_) => Ok(Caller {
            method: Method::MtlsAndBearer,
            ..presented
        }),
        None => Ok(presented),
    }
}

/// Refuses a token the revocation list cuts off (`issue::revocation_refusal`), with `status`.
pub fn refuse_revoked(
    revoked: &RevocationList,
    text: &str,
    status: StatusCode,
) -> Result<(), ApiError> {
    match super::issue::revocation_refusal(revoked, text) {
        Some(message) => Err(ApiError::new(status, message)),
        None => Ok(()),
    }
}

/// Refuses Bearer use of an identity token whose issuance the current policy no longer allows:
/// the subject's `identity_token_enabled` turned off (or the subject removed), or, for a realm's
/// domain-restricted token, the realm removed or no longer a realm. Issuance checks the same, so
/// turning the setting off ends the tokens already out as well as new ones.
fn refuse_disabled_issuer(
    snapshot: &PolicySnapshot,
    view: &token::TokenView,
) -> Result<(), ApiError> {
    let subject = view.subject().unwrap_or_default();
    let allowed = match view.domain() {
        Some(realm) => snapshot
            .client(realm)
            .is_some_and(|client| client.domain.is_some()),
        None => snapshot
            .client(subject)
            .is_some_and(|client| client.identity_token_enabled),
    };
    if allowed {
        return Ok(());
    }
    Err(ApiError::unauthenticated(match view.domain() {
        Some(realm) => format!(
            "the identity token for {subject} was minted by the realm {realm}, which the current policy no longer configures as a realm"
        ),
        None => format!(
            "identity tokens are not enabled for {subject} in the current policy (identity_token_enabled); its tokens are refused until they are enabled again"
        ),
    }))
}

/// Refuses a chain that delegates below a configured identity further than that identity's own
/// settings allow. Decided: `delegatable` and `max_delegation_depth` on a client govern what is
/// delegated *below it*, whether it holds a token of its own or was itself delegated to — so
/// `ci:deploy` with `delegatable = false` cannot hand on a token `ci` delegated to it, and
/// `alice:agent1` with `max_delegation_depth = 1` allows one level below agent1 even when alice
/// allows ten. Every configured identity along the chain limits the rest of it; the subject's
/// depth limit is also checked by the verifier.
fn refuse_delegation_past_a_limit(
    snapshot: &PolicySnapshot,
    chain: &[String],
) -> Result<(), ApiError> {
    for (at, identity) in chain.iter().enumerate() {
        let below = chain.len() - 1 - at;
        let Some(client) = snapshot.client(identity) else {
            continue;
        };
        if below > 0 && !client.delegatable {
            return Err(ApiError::unauthenticated(format!(
                "{identity} may not delegate (delegatable = false), but the token delegates {below} level(s) below it, to {}",
                chain[chain.len() - 1]
            )));
        }
        if let Some(max) = client.max_delegation_depth
            && below > max as usize
        {
            return Err(ApiError::unauthenticated(format!(
                "{identity} allows {max} level(s) of delegation below it (max_delegation_depth), but the token delegates {below}, to {}",
                chain[chain.len() - 1]
            )));
        }
    }
    Ok(())
}

/// Verifies a Bearer identity token (with any JIT and delegation blocks) for its effective
/// identity, with the subject's configured depth limit and the request context.
pub fn verify_bearer(
    snapshot: &PolicySnapshot,
    text: &str,
    root: &(impl token::VerifyingRoots + ?Sized),
    context: Context<'_>,
) -> Result<Caller, ApiError> {
    let token = token::read_verified(text, root)
        .map_err(|e| ApiError::from_token("the identity token is not valid", &e))?;
    let view = &token.view;
    let max_depth = view
        .subject()
        .and_then(|subject| snapshot.client(subject))
        .and_then(|client| client.max_delegation_depth)
        .unwrap_or(DEFAULT_MAX_DELEGATION_DEPTH) as usize;
    let domain = view.domain().map(str::to_string);
    let mut check = IdentityVerification::new(Actor::Effective, unix_now());
    check.max_depth = max_depth;
    check.domain = domain.as_deref();
    check.ensure_subject_in_domain = domain.is_some();
    check.resource = context.resource;
    check.operation = context.operation;
    let verified = token::verify_identity_parsed(&token.biscuit, view, &check)
        .map_err(|e| ApiError::from_token("the identity token is not valid", &e))?;
    refuse_disabled_issuer(snapshot, view)?;
    refuse_delegation_past_a_limit(snapshot, &verified.chain)?;
    Ok(Caller {
        identity: verified.identity,
        method: Method::Bearer,
        token_domain: domain,
        revocation_id: verified.revocation_ids.last().cloned(),
    })
}
