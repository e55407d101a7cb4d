//! The endpoints. Each extracts its request, authenticates its caller, has `issue` decide
//! against one policy snapshot, answers with the wire types, and records an audit event.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Serialize;

use super::MAX_BODY;
use super::auth::{self, ApiError, Caller, Context, Method, PeerCertificate};
use super::issue::{self, Class, Grant, Issuer, Refusal};
use super::keys::ServerKeys;
use super::metrics::Limit;
use super::state::{PolicySnapshot, ServerState};
use super::verify_pool::VerifyPoolError;
use crate::token::clock::unix_now;
use crate::wire::*;

type Shared = Arc<ServerState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/public_key", get(public_key))
        .route("/ca_cert", get(ca_cert))
        .route("/request_identity_token", post(request_identity_token))
        .route("/refresh_identity_token", post(refresh_identity_token))
        .route("/mint_identity_token", post(mint_identity_token))
        .route("/request_token", post(request_token))
        .route("/request_stub", post(request_stub))
        .route("/verify_token", post(verify_token))
        .route(
            "/verify_service_chain_token",
            post(verify_service_chain_token),
        )
        .route("/sign_token", post(sign_token))
        .route("/status", get(status))
        .route("/revocations", get(revocations))
        .route("/audit", get(audit))
        .route("/sync", post(sync))
        .route("/metrics", get(metrics))
        .route("/public_keys", get(super::key_api::public_keys))
        .route("/keys", get(super::key_api::list))
        .route("/keys/add", post(super::key_api::add))
        .route("/keys/activate", post(super::key_api::activate))
        .route("/keys/retire", post(super::key_api::retire))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), timed))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::connection::bounded_request,
        ))
        .with_state(state)
}

/// What a successful response issued that the audit feed records: an identity token's lifetime.
pub(super) trait Issued {
    fn expires_in(&self) -> Option<u64> {
        None
    }
}

impl Issued for IdentityTokenResponse {
    fn expires_in(&self) -> Option<u64> {
        self.expires_in
    }
}

impl Issued for TokenResponse {}
impl Issued for MessageResponse {}
impl Issued for StubResponse {}
impl Issued for SignTokenResponse {}

/// What a handler decided, for the audit log.
pub(super) struct Outcome<'a> {
    pub(super) endpoint: &'static str,
    pub(super) caller: Option<&'a Caller>,
    pub(super) resource: Option<&'a str>,
    pub(super) operation: Option<&'a str>,
}

impl Outcome<'_> {
    pub(super) fn finish<T: Serialize + Issued>(
        self,
        state: &ServerState,
        result: Result<(String, T), ApiError>,
    ) -> Response {
        state.counters.requests.fetch_add(1, Ordering::Relaxed);
        let mut expires_at = None;
        let (result_word, reason, response) = match result {
            Ok((reason, body)) => {
                state.counters.allowed.fetch_add(1, Ordering::Relaxed);
                expires_at = body
                    .expires_in()
                    .map(|lifetime| issue::expires_after(unix_now(), lifetime));
                (
                    "allow",
                    reason,
                    (StatusCode::OK, Json(body)).into_response(),
                )
            }
            Err(error) => {
                let word = if error.status == StatusCode::FORBIDDEN
                    || error.status == StatusCode::UNAUTHORIZED
                {
                    "deny"
                } else {
                    "error"
                };
                state.counters.denied.fetch_add(1, Ordering::Relaxed);
                if error.run_limit {
                    state.metrics.run_limit_hit();
                }
                (word, error.message.clone(), error.into_response())
            }
        };
        state.metrics.decision(self.endpoint, result_word);
        let event = AuditEvent {
            seq: 0,
            time: unix_now(),
            caller: self.caller.map(|c| c.identity.clone()),
            auth: self
                .caller
                .map_or(Method::None, |c| c.method)
                .name()
                .to_string(),
            endpoint: self.endpoint.to_string(),
            resource: self.resource.map(str::to_string),
            operation: self.operation.map(str::to_string),
            result: result_word.to_string(),
            reason,
            revocation_id: self.caller.and_then(|c| c.revocation_id.clone()),
            expires_at,
        };
        // Callers without credentials are rate-limited in the audit trail; decisions about an
        // authenticated caller never are.
        match self.caller {
            Some(_) => state.audit.record(event),
            None => state.audit.record_anonymous(event),
        }
        response
    }
}

/// Authenticates a caller with no request context for delegation policies.
async fn authenticated(
    state: &Shared,
    snapshot: &Arc<PolicySnapshot>,
    peer: &PeerCertificate,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    authenticated_for(state, snapshot, peer, headers, Context::default()).await
}

/// Authenticates a caller; a Bearer token is verified on the verification pool, unless it is
/// one already verified and plain (a memo lookup and a few comparisons, less than the hand-off
/// to the pool would cost); a certificate alone needs no token work. Both are decided here.
async fn authenticated_for(
    state: &Shared,
    snapshot: &Arc<PolicySnapshot>,
    peer: &PeerCertificate,
    headers: &HeaderMap,
    context: Context<'_>,
) -> Result<Caller, ApiError> {
    let cheap = match auth::bearer(headers) {
        Ok(None) => true,
        Ok(Some(text)) => crate::token::remembered_plain(text, &state.keys.current().verifier),
        // Refused before any token work.
        Err(_) => true,
    };
    if cheap {
        let keys = state.keys.current();
        return auth::authenticate(snapshot, peer, headers, &keys.verifier, context);
    }
    let (snapshot, peer, headers) = (snapshot.clone(), peer.clone(), headers.clone());
    let resource = context.resource.map(str::to_string);
    let operation = context.operation.map(str::to_string);
    off_workers(state, move |state| {
        let context = Context {
            resource: resource.as_deref(),
            operation: operation.as_deref(),
        };
        auth::authenticate(
            &snapshot,
            &peer,
            &headers,
            &state.keys.current().verifier,
            context,
        )
    })
    .await
}

/// `off_workers` for a request that parsed; a malformed one is answered without the pool.
async fn with_request_off_workers<R: Send + 'static, T: Send + 'static>(
    state: &Shared,
    request: Result<R, ApiError>,
    work: impl FnOnce(Shared, R) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let request = request?;
    off_workers(state, move |state| work(state, request)).await
}

/// Runs token verification, and what follows from it, on the verification pool: never on an
/// async worker, where a slow token would stall every connection that worker serves. A full
/// pool is a 503 with `Retry-After`.
async fn off_workers<T: Send + 'static>(
    state: &Shared,
    work: impl FnOnce(Shared) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let worker = state.clone();
    match state.verify_pool.run(move || work(worker)).await {
        Ok(result) => result,
        Err(error @ VerifyPoolError::Busy { .. }) => {
            state.metrics.limit_hit(Limit::VerifyBusy);
            Err(ApiError::unavailable(error.to_string()))
        }
        Err(error @ VerifyPoolError::Failed(_)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error.to_string(),
        )),
    }
}

pub(super) fn body<T>(input: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    input.map(|Json(value)| value).map_err(|rejection| {
        let status = rejection.status();
        ApiError::new(
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                status
            } else {
                StatusCode::BAD_REQUEST
            },
            format!("malformed request: {}", rejection.body_text()),
        )
    })
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint").into_response()
}

async fn public_key(State(state): State<Shared>) -> Response {
    Json(PublicKeyResponse {
        response_msg: "Public key".into(),
        public_key: Some(state.keys.current().active_pem.clone()),
    })
    .into_response()
}

async fn ca_cert(State(state): State<Shared>) -> Response {
    Json(CaCertResponse {
        response_msg: "CA certificate chain of this server".into(),
        ca_cert_pem: Some(state.tls_chain_pem.clone()),
    })
    .into_response()
}

/// The decisions for one request: its policy snapshot, the keys in use, the time.
fn issuer<'a>(
    state: &ServerState,
    snapshot: &'a PolicySnapshot,
    keys: &'a ServerKeys,
) -> Issuer<'a> {
    Issuer {
        snapshot,
        signing: &keys.signing,
        verifier: &keys.verifier,
        now: unix_now(),
        max_refresh_generations: state.max_refresh_generations,
    }
}

/// A decision's refusal as an HTTP answer.
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        let status = match refusal.class() {
            Class::Malformed => StatusCode::BAD_REQUEST,
            Class::Unauthenticated => StatusCode::UNAUTHORIZED,
            Class::Forbidden => StatusCode::FORBIDDEN,
            Class::NotOffered => StatusCode::NOT_FOUND,
            Class::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            run_limit: refusal.run_limit(),
            ..ApiError::new(status, refusal.to_string())
        }
    }
}

/// A decision's result as `Outcome::finish` takes it.
fn decided<T>(result: Result<Grant<T>, Refusal>) -> Result<(String, T), ApiError> {
    result
        .map(|grant| (grant.reason, grant.body))
        .map_err(ApiError::from)
}

async fn request_identity_token(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    headers: HeaderMap,
    input: Result<Json<IdentityTokenRequest>, JsonRejection>,
) -> Response {
    let snapshot = state.snapshot();
    let caller = authenticated(&state, &snapshot, &peer, &headers).await;
    let result = (|| {
        let caller = caller.clone()?;
        let request = body(input)?;
        let keys = state.keys.current();
        decided(issuer(&state, &snapshot, &keys).first_identity_token(&caller, &request))
    })();
    Outcome {
        endpoint: "/request_identity_token",
        caller: caller.as_ref().ok(),
        resource: None,
        operation: None,
    }
    .finish(&state, result)
}

async fn refresh_identity_token(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    input: Result<Json<RefreshIdentityTokenRequest>, JsonRejection>,
) -> Response {
    let snapshot = state.snapshot();
    let request = body(input);
    let attempt = with_request_off_workers(&state, request, move |state, request| {
        let certified = auth::certificate_identity(&snapshot, &peer);
        let keys = state.keys.current();
        let issuer = issuer(&state, &snapshot, &keys);
        // The caller is known, for the audit, once the token it presents is verified.
        let presented = match issuer.refresh_caller(certified.as_deref(), &request.current_token) {
            Ok(presented) => presented,
            Err(refusal) => return Ok((None, decided(Err(refusal)))),
        };
        let result = issuer.refreshed_identity_token(&presented, &request);
        Ok((Some(presented.caller), decided(result)))
    })
    .await;
    let (caller, result) = match attempt {
        Ok(done) => done,
        Err(refused) => (None, Err(refused)),
    };
    Outcome {
        endpoint: "/refresh_identity_token",
        caller: caller.as_ref(),
        resource: None,
        operation: None,
    }
    .finish(&state, result)
}

async fn mint_identity_token(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    headers: HeaderMap,
    input: Result<Json<MintIdentityTokenRequest>, JsonRejection>,
) -> Response {
    let snapshot = state.snapshot();
    let caller = authenticated(&state, &snapshot, &peer, &headers).await;
    let result = (|| {
        let caller = caller.clone()?;
        let request = body(input)?;
        let keys = state.keys.current();
        decided(issuer(&state, &snapshot, &keys).realm_identity_token(&caller, &request))
    })();
    Outcome {
        endpoint: "/mint_identity_token",
        caller: caller.as_ref().ok(),
        resource: None,
        operation: None,
    }
    .finish(&state, result)
}

async fn request_token(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    headers: HeaderMap,
    input: Result<Json<TokenRequest>, JsonRejection>,
) -> Response {
    let snapshot = state.snapshot();
    let request = body(input);
    let (resource, operation) = match &request {
        Ok(r) => (Some(r.resource.clone()), Some(r.operation.clone())),
        Err(_) => (None, None),
    };
    let context = Context {
        resource: resource.as_deref(),
        operation: operation.as_deref(),
    };
    let caller = authenticated_for(&state, &snapshot, &peer, &headers, context).await;
    let result = (|| {
        let caller = caller.clone()?;
        let request = request?;
        let keys = state.keys.current();
        decided(issuer(&state, &snapshot, &keys).authorization_token(&caller, &request))
    })();
    Outcome {
        endpoint: "/request_token",
        caller: caller.as_ref().ok(),
        resource: resource.as_deref(),
        operation: operation.as_deref(),
    }
    .finish(&state, result)
}

async fn request_stub(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    headers: HeaderMap,
    input: Result<Json<StubRequest>, JsonRejection>,
) -> Response {
    let snapshot = state.snapshot();
    let caller = authenticated(&state, &snapshot, &peer, &headers).await;
    let result = (|| {
        let caller = caller.clone()?;
        let request = body(input)?;
        let keys = state.keys.current();
        decided(issuer(&state, &snapshot, &keys).stub_token(&caller, &request))
    })();
    Outcome {
        endpoint: "/request_stub",
        caller: caller.as_ref().ok(),
        resource: None,
        operation: None,
    }
    .finish(&state, result)
}

async fn verify_token(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    input: Result<Json<VerifyTokenRequest>, JsonRejection>,
) -> Response {
    let snapshot = state.snapshot();
    let caller = auth::certificate_identity(&snapshot, &peer).map(Caller::certified);
    let request = body(input);
    let (resource, operation) = request
        .as_ref()
        .map(|r| (Some(r.resource.clone()), Some(r.operation.clone())))
        .unwrap_or((None, None));
    let result = with_request_off_workers(&state, request, move |state, request| {
        let keys = state.keys.current();
        decided(issuer(&state, &snapshot, &keys).verify_token(&request))
    })
    .await;
    Outcome {
        endpoint: "/verify_token",
        caller: caller.as_ref(),
        resource: resource.as_deref(),
        operation: operation.as_deref(),
    }
    .finish(&state, result)
}

async fn verify_service_chain_token(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    input: Result<Json<VerifyServiceChainTokenRequest>, JsonRejection>,
) -> Response {
    let snapshot = state.snapshot();
    let caller = auth::certificate_identity(&snapshot, &peer).map(Caller::certified);
    let request = body(input);
    let result = with_request_off_workers(&state, request, move |state, request| {
        let keys = state.keys.current();
        decided(issuer(&state, &snapshot, &keys).verify_service_chain(&request))
    })
    .await;
    Outcome {
        endpoint: "/verify_service_chain_token",
        caller: caller.as_ref(),
        resource: None,
        operation: None,
    }
    .finish(&state, result)
}

async fn sign_token(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    headers: HeaderMap,
    input: Result<Json<SignTokenRequest>, JsonRejection>,
) -> Response {
    let snapshot = state.snapshot();
    let caller = authenticated(&state, &snapshot, &peer, &headers).await;
    let attempt = caller.clone().and_then(|caller| Ok((caller, body(input)?)));
    let result = with_request_off_workers(&state, attempt, move |state, (caller, request)| {
        let keys = state.keys.current();
        let issuer = issuer(&state, &snapshot, &keys);
        decided(issuer.sign_off(&caller, &request, state.signer.as_ref()))
    })
    .await;
    Outcome {
        endpoint: "/sign_token",
        caller: caller.as_ref().ok(),
        resource: None,
        operation: None,
    }
    .finish(&state, result)
}

pub(super) fn operator(state: &ServerState, peer: &PeerCertificate) -> Result<Caller, ApiError> {
    let snapshot = state.snapshot();
    auth::refuse_ambiguous(&snapshot, peer)?;
    let identity = auth::certificate_identity(&snapshot, peer).ok_or_else(|| {
        ApiError::unauthenticated("operator endpoints need the client certificate of an operator")
    })?;
    let is_operator = snapshot.client(&identity).is_some_and(|c| c.operator);
    if !is_operator {
        return Err(ApiError::forbidden(format!(
            "{identity} is not an operator (operator = true in the policy)"
        )));
    }
    Ok(Caller::certified(identity))
}

async fn status(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
) -> Response {
    match operator(&state, &peer) {
        Ok(_) => Json(state.status()).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /revocations` (operators only): the revocation list the server applies, with the
/// policy revision it came from, so the console can say "revoked at the server".
async fn revocations(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
) -> Response {
    if let Err(e) = operator(&state, &peer) {
        return e.into_response();
    }
    let snapshot = state.snapshot();
    Json(RevocationsResponse {
        response_msg: format!("{} revoked block id(s)", snapshot.revoked.len()),
        policy_revision: snapshot.revision.clone(),
        revoked: snapshot.revoked.entries.clone(),
    })
    .into_response()
}

async fn audit(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    Query(query): Query<AuditQuery>,
) -> Response {
    if let Err(e) = operator(&state, &peer) {
        return e.into_response();
    }
    let events = state
        .audit
        .after(query.after, query.limit.unwrap_or(500).min(2_000));
    let next = events.last().map_or(query.after, |e| e.seq);
    Json(AuditResponse {
        response_msg: "Audit events".into(),
        events,
        next,
    })
    .into_response()
}

/// Records each request's latency under its route (unknown paths share one name).
async fn timed(
    State(state): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let endpoint = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(unknown)".to_string(), |p| p.as_str().to_string());
    let start = std::time::Instant::now();
    let response = next.run(request).await;
    state.metrics.latency(&endpoint, start.elapsed());
    response
}

/// Prometheus metrics, for operators (a scraper presents an operator's client certificate).
async fn metrics(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
) -> Response {
    if let Err(e) = operator(&state, &peer) {
        return e.into_response();
    }
    let snapshot = state.snapshot();
    let status = state.status();
    let gauges = super::metrics::SyncGauges {
        policy_age_seconds: unix_now() - snapshot.loaded_at,
        sync_failing: status.last_reload_error.is_some(),
        clients: snapshot.policy.clients.len(),
        revocations: snapshot.revoked.len(),
        revision: snapshot.revision.clone(),
        keys: status
            .keys
            .iter()
            .map(|k| (k.id, k.state.name(), k.verify_until))
            .collect(),
        key_set_failing: status.key_set_error.is_some(),
        missing_private_keys: status.missing_private_keys.clone(),
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&gauges) + &super::metrics::audit(&state.audit.counters),
    )
        .into_response()
}

/// Operator nudge: look for a new policy now (the console calls it after a push).
async fn sync(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
) -> Response {
    if let Err(e) = operator(&state, &peer) {
        return e.into_response();
    }
    state.nudge.notify_one();
    (
        StatusCode::ACCEPTED,
        Json(MessageResponse {
            response_msg: "Sync requested".into(),
        }),
    )
        .into_response()
}
