//! The endpoints. Each authenticates its caller, decides against one policy snapshot, answers
//! with the wire types, and records an audit event.

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
use super::audit::AuditEvent;
use super::auth::{self, ApiError, Caller, Context, Method, PeerCertificate};
use super::metrics::Limit;
use super::state::{PolicySnapshot, ServerState};
use super::verify_pool::VerifyPoolError;
use crate::policy::{
    self, Client, DEFAULT_AUTHZ_TOKEN_DURATION, DEFAULT_IDENTITY_TOKEN_DURATION, Request,
    Resolution, Resource,
};
use crate::token::{
    self, Ancestor, AuthzClaims, AuthzVerification, IdentityClaims, ServiceNode, Signer, TokenKind,
    TokenView, clock::unix_now, keys,
};
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
                expires_at = body.expires_in().map(expires_after);
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

/// Authenticates a caller; a Bearer token is verified on the verification pool, a certificate
/// alone needs no token work and is decided here.
async fn authenticated_for(
    state: &Shared,
    snapshot: &Arc<PolicySnapshot>,
    peer: &PeerCertificate,
    headers: &HeaderMap,
    context: Context<'_>,
) -> Result<Caller, ApiError> {
    if !headers.contains_key(axum::http::header::AUTHORIZATION) {
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

fn client_of<'p>(snapshot: &'p PolicySnapshot, identity: &str) -> Result<&'p Client, ApiError> {
    snapshot
        .client(identity)
        .ok_or_else(|| ApiError::forbidden(format!("{identity} is not configured in the policy")))
}

/// The identifier the caller asked for: a real identity string, or nothing (numbers and digit
/// strings are the Hessra CLI's `--ttl` quirk and ask for a lifetime instead).
fn requested(identifier: &Option<serde_json::Value>) -> (Option<String>, Option<u64>) {
    match identifier {
        Some(serde_json::Value::String(text)) => match text.parse::<u64>() {
            Ok(ttl) => (None, Some(ttl)),
            Err(_) => (Some(text.clone()), None),
        },
        Some(serde_json::Value::Number(n)) => (None, n.as_u64()),
        _ => (None, None),
    }
}

/// The Unix time `lifetime` seconds from now, saturating: policy durations are bounded when
/// the policy is read, and this keeps any other lifetime from wrapping into the past.
fn expires_after(lifetime: u64) -> i64 {
    unix_now().saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX))
}

/// Issues an identity token for `client`; a refreshed one names the tokens it descends from.
fn issue_identity(
    state: &ServerState,
    client: &Client,
    ttl: Option<u64>,
    lineage: &[Ancestor],
) -> Result<(String, IdentityTokenResponse), ApiError> {
    let Some(cap) = client.identity_token_cap() else {
        return Err(ApiError::forbidden(format!(
            "identity tokens are not enabled for {}",
            client.identity
        )));
    };
    let lifetime = ttl.filter(|t| *t > 0).map_or(cap, |t| t.min(cap));
    let claims = IdentityClaims {
        subject: client.identity.clone(),
        expires_at: expires_after(lifetime),
        delegatable: client.delegatable,
        domain: None,
    };
    let minted = token::mint_refreshed_identity(&state.keys.current().signing, &claims, lineage)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let generation = match lineage.len() {
        0 => String::new(),
        n => format!(", refresh generation {n}"),
    };
    Ok((
        format!("identity token issued for {lifetime} s{generation}"),
        IdentityTokenResponse {
            response_msg: "Identity token issued".into(),
            token: Some(minted),
            expires_in: Some(lifetime),
            identity: Some(client.identity.clone()),
        },
    ))
}

async fn request_identity_token(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    headers: HeaderMap,
    input: Result<Json<IdentityTokenRequest>, JsonRejection>,
) -> Response {
    let snapshot = state.snapshot();
    let caller = authenticated(&state, &snapshot, &peer, &headers).await;
    let caller_ref = caller.as_ref().ok();
    let result = (|| {
        let caller = caller.clone()?;
        let request = body(input)?;
        if !caller.method.has_certificate() {
            return Err(ApiError::unauthenticated(
                "the first identity token needs a client certificate (mTLS)",
            ));
        }
        let (asked, ttl) = requested(&request.identifier);
        if let Some(asked) = asked.filter(|a| !crate::pki::san_matches(a, &caller.identity)) {
            return Err(ApiError::forbidden(format!(
                "Identity mismatch: the certificate is for {} but {asked} was requested",
                caller.identity
            )));
        }
        issue_identity(&state, client_of(&snapshot, &caller.identity)?, ttl, &[])
    })();
    Outcome {
        endpoint: "/request_identity_token",
        caller: caller_ref,
        resource: None,
        operation: None,
    }
    .finish(&state, result)
}

/// Verifies the current token and issues its successor; `caller` is who presented it, once
/// known (for the audit).
fn refresh(
    state: &ServerState,
    snapshot: &PolicySnapshot,
    peer: &PeerCertificate,
    request: RefreshIdentityTokenRequest,
    caller: &mut Option<Caller>,
) -> Result<(String, IdentityTokenResponse), ApiError> {
    auth::refuse_revoked(
        &snapshot.revoked,
        &request.current_token,
        StatusCode::UNAUTHORIZED,
    )?;
    let root_keys = state.keys.current();
    let current = token::read_verified(&request.current_token, &root_keys.verifier)
        .map_err(|e| ApiError::from_token("the current token is not valid", &e))?;
    let view = &current.view;
    if view.delegation_depth() > 0 {
        return Err(ApiError::forbidden(
            "refreshing a delegated token is refused: ask the identity that delegated it for a new delegation",
        ));
    }
    if view.domain().is_some() {
        return Err(ApiError::forbidden(
            "domain-restricted tokens are not refreshed: the realm mints a new one",
        ));
    }
    let verified = token::verify_identity_parsed(
        &current.biscuit,
        view,
        &token::IdentityVerification::new(token::Actor::Bearer, unix_now()),
    )
    .map_err(|e| ApiError::from_token("the current token is not valid", &e))?;
    let presented = Caller {
        identity: verified.subject.clone(),
        method: Method::Bearer,
        token_domain: None,
        revocation_id: verified.revocation_ids.last().cloned(),
    };
    if let Some(certified) = auth::certificate_identity(snapshot, peer)
        && certified != presented.identity
    {
        return Err(ApiError::forbidden(format!(
            "Identity mismatch: the certificate is for {certified} but the token is for {}",
            presented.identity
        )));
    }
    *caller = Some(presented.clone());
    // The new token names this one and its ancestors, so revoking any of them (or force-retiring
    // the key that signed one) refuses it too.
    let max = state
        .max_refresh_generations
        .min(token::MAX_REFRESH_GENERATIONS);
    let lineage = token::refreshed_lineage(&current, &root_keys.verifier, max)
        .map_err(|e| ApiError::forbidden(e.to_string()))?;
    let (_, ttl) = requested(&request.identifier);
    issue_identity(
        state,
        client_of(snapshot, &presented.identity)?,
        ttl,
        &lineage,
    )
}

async fn refresh_identity_token(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    input: Result<Json<RefreshIdentityTokenRequest>, JsonRejection>,
) -> Response {
    let snapshot = state.snapshot();
    let request = body(input);
    let attempt = with_request_off_workers(&state, request, move |state, request| {
        let mut caller = None;
        let result = refresh(&state, &snapshot, &peer, request, &mut caller);
        Ok((caller, result))
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

/// The realm a caller speaks for: a configured client with a domain, not itself a
/// domain-restricted identity.
fn realm_of<'p>(snapshot: &'p PolicySnapshot, caller: &Caller) -> Result<&'p Client, ApiError> {
    if caller.token_domain.is_some() {
        return Err(ApiError::forbidden(
            "a domain-restricted identity cannot mint identities",
        ));
    }
    let client = client_of(snapshot, &caller.identity)?;
    if client.domain.is_none() {
        return Err(ApiError::forbidden(format!(
            "{} is not a realm: only realms mint identities",
            caller.identity
        )));
    }
    Ok(client)
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
        let realm = realm_of(&snapshot, &caller)?;
        token::validate_identity(&request.subject)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if !token::is_strict_descendant(&request.subject, &realm.identity) {
            return Err(ApiError::forbidden(format!(
                "{} is outside realm {}'s domain; realm subjects are {}:NAME",
                request.subject, realm.identity, realm.identity
            )));
        }
        let cap = realm
            .identity_token_duration
            .unwrap_or(DEFAULT_IDENTITY_TOKEN_DURATION);
        let lifetime = request
            .duration
            .filter(|d| *d > 0)
            .map_or(cap, |d| d.min(cap));
        let claims = IdentityClaims {
            subject: request.subject.clone(),
            expires_at: expires_after(lifetime),
            delegatable: false,
            domain: Some(realm.identity.clone()),
        };
        let minted = token::mint_identity(&state.keys.current().signing, &claims)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok((
            format!("minted {} for {lifetime} s", request.subject),
            IdentityTokenResponse {
                response_msg: "Identity token minted".into(),
                token: Some(minted),
                expires_in: Some(lifetime),
                identity: Some(request.subject),
            },
        ))
    })();
    Outcome {
        endpoint: "/mint_identity_token",
        caller: caller.as_ref().ok(),
        resource: None,
        operation: None,
    }
    .finish(&state, result)
}

/// A resource's configured service chain, as token service nodes.
fn chain_nodes(resource: &Resource) -> Vec<ServiceNode> {
    resource
        .service_chain
        .iter()
        .map(|n| ServiceNode {
            component: n.component.clone(),
            public_key: n.public_key.clone(),
        })
        .collect()
}

/// The configured resource entry a decision rests on (for its chain and signers), and the
/// authorization-token lifetime.
fn grant_details<'p>(
    policy: &'p policy::Policy,
    identity: &str,
    resource: &str,
) -> (Option<&'p Resource>, u64) {
    match policy::resolve(policy, identity) {
        Resolution::Client(client) => (
            client.resource(resource),
            client
                .authorization_token_duration
                .unwrap_or(DEFAULT_AUTHZ_TOKEN_DURATION),
        ),
        Resolution::DomainSubject { realm, role, .. } => (
            role.resources.iter().find(|r| r.name == resource),
            realm
                .authorization_token_duration
                .unwrap_or(DEFAULT_AUTHZ_TOKEN_DURATION),
        ),
        _ => (None, DEFAULT_AUTHZ_TOKEN_DURATION),
    }
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
        let domain = request
            .domain
            .clone()
            .or_else(|| caller.token_domain.clone());
        if let (Some(asked), Some(bound)) = (&request.domain, &caller.token_domain)
            && asked != bound
        {
            return Err(ApiError::forbidden(format!(
                "the identity token is restricted to domain {bound}, not {asked}"
            )));
        }
        let decision = policy::decide(
            &snapshot.policy,
            &Request {
                identity: caller.identity.clone(),
                resource: request.resource.clone(),
                operation: request.operation.clone(),
                domain: domain.clone(),
            },
        );
        if !decision.allowed {
            return Err(ApiError::forbidden(decision.reason));
        }
        let (entry, lifetime) =
            grant_details(&snapshot.policy, &caller.identity, &request.resource);
        let service_chain: Vec<ServiceNode> = entry.map(chain_nodes).unwrap_or_default();
        let signers: Vec<&policy::SignerEntry> = entry
            .map(|r| {
                r.signers
                    .iter()
                    .filter(|s| {
                        s.operations.is_empty() || s.operations.contains(&request.operation)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let claims = AuthzClaims {
            subject: caller.identity.clone(),
            resource: request.resource.clone(),
            operation: request.operation.clone(),
            expires_at: expires_after(lifetime),
            domain,
            prefix_attenuator_key: None,
            service_chain,
            signers: signers
                .iter()
                .map(|s| Signer {
                    component: s.component.clone(),
                    public_key: s.public_key.clone(),
                })
                .collect(),
        };
        let minted = token::mint_authz(&state.keys.current().signing, &claims)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let pending: Vec<SignoffInfo> = signers
            .iter()
            .map(|s| SignoffInfo {
                component: s.component.clone(),
                authorization_service: s.authorization_service.clone(),
                public_key: s.public_key.clone(),
            })
            .collect();
        let message = if pending.is_empty() {
            "Token issued"
        } else {
            "Token issued with pending signoffs"
        };
        Ok((
            decision.reason,
            TokenResponse {
                response_msg: message.into(),
                token: Some(minted),
                pending_signoffs: (!pending.is_empty()).then_some(pending),
            },
        ))
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
        let realm = realm_of(&snapshot, &caller)?;
        token::validate_identity(&request.target_identity)
            .map_err(|e| ApiError::bad_request(format!("target_identity: {e}")))?;
        keys::parse_key_string(&request.prefix_attenuator_key)
            .map_err(|e| ApiError::bad_request(format!("prefix_attenuator_key: {e}")))?;
        let decision = policy::decide(
            &snapshot.policy,
            &Request {
                identity: request.target_identity.clone(),
                resource: request.resource.clone(),
                operation: request.operation.clone(),
                domain: Some(realm.identity.clone()),
            },
        );
        if !decision.allowed {
            return Err(ApiError::forbidden(decision.reason));
        }
        let (_, default_lifetime) = grant_details(
            &snapshot.policy,
            &request.target_identity,
            &request.resource,
        );
        let lifetime = request
            .duration
            .filter(|d| *d > 0)
            .map_or(default_lifetime, |d| d.min(default_lifetime));
        let claims = AuthzClaims {
            subject: request.target_identity.clone(),
            resource: request.resource.clone(),
            operation: request.operation.clone(),
            expires_at: expires_after(lifetime),
            prefix_attenuator_key: Some(request.prefix_attenuator_key.clone()),
            ..AuthzClaims::default()
        };
        let minted = token::mint_authz(&state.keys.current().signing, &claims)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok((
            decision.reason,
            StubResponse {
                response_msg: "Stub token issued".into(),
                token: Some(minted),
                expires_in: Some(lifetime),
                target_identity: Some(request.target_identity),
                prefix_attenuator_key: Some(request.prefix_attenuator_key),
            },
        ))
    })();
    Outcome {
        endpoint: "/request_stub",
        caller: caller.as_ref().ok(),
        resource: None,
        operation: None,
    }
    .finish(&state, result)
}

fn verification_failure(error: &token::TokenError) -> ApiError {
    let status = if error.is_verdict() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError {
        run_limit: matches!(error, token::TokenError::RunLimit(_)),
        ..ApiError::new(status, format!("token rejected: {error}"))
    }
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
        auth::refuse_revoked(&snapshot.revoked, &request.token, StatusCode::FORBIDDEN)?;
        let check = AuthzVerification::new(
            Some(&request.subject),
            &request.resource,
            &request.operation,
            unix_now(),
        );
        token::verify_authz(&request.token, &state.keys.current().verifier, &check)
            .map_err(|e| verification_failure(&e))?;
        Ok((
            format!("token valid for {}", request.subject),
            MessageResponse {
                response_msg: "Token verified successfully".into(),
            },
        ))
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
        auth::refuse_revoked(&snapshot.revoked, &request.token, StatusCode::FORBIDDEN)?;
        // The chain of the client the token is for: two clients may list the same resource
        // with different chains, and the first one listing it is not necessarily this one.
        let chain: Vec<ServiceNode> = snapshot
            .client(&request.subject)
            .and_then(|client| client.resource(&request.resource))
            .filter(|resource| !resource.service_chain.is_empty())
            .map(chain_nodes)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "the policy configures no service chain for {} of {}",
                    request.resource, request.subject
                ))
            })?;
        let unverified =
            token::parse_unverified(&request.token).map_err(|e| verification_failure(&e))?;
        let view = TokenView::read(&unverified).map_err(|e| verification_failure(&e))?;
        if view.kind() != TokenKind::Authorization {
            return Err(ApiError::bad_request("not an authorization token"));
        }
        let operation = view
            .blocks
            .first()
            .and_then(|b| {
                b.shape
                    .rights
                    .iter()
                    .find(|r| r.subject == request.subject && r.resource == request.resource)
            })
            .map(|r| r.operation.clone())
            .ok_or_else(|| {
                ApiError::forbidden(format!(
                    "the token grants {} nothing on {}",
                    request.subject, request.resource
                ))
            })?;
        let mut check = AuthzVerification::new(
            Some(&request.subject),
            &request.resource,
            &operation,
            unix_now(),
        );
        check.service_chain = Some((&chain, request.component.as_deref()));
        token::verify_authz(&request.token, &state.keys.current().verifier, &check)
            .map_err(|e| verification_failure(&e))?;
        Ok((
            "service chain verified".to_string(),
            MessageResponse {
                response_msg: "Token verified successfully".into(),
            },
        ))
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
        auth::refuse_revoked(&snapshot.revoked, &request.token, StatusCode::FORBIDDEN)?;
        let Some(signer) = &state.signer else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "this server is not configured as a multi-party signer",
            ));
        };
        let check = AuthzVerification::new(
            Some(&caller.identity),
            &request.resource,
            &request.operation,
            unix_now(),
        );
        match token::verify_authz(&request.token, &state.keys.current().verifier, &check) {
            Ok(_) => {}
            Err(token::TokenError::Denied(denials))
                if denials
                    .iter()
                    .all(|d| matches!(d.reason, token::DenialReason::SignoffMissing { .. })) => {}
            Err(e) => return Err(verification_failure(&e)),
        }
        let signed = token::add_signoff(&request.token, &signer.key, &signer.component)
            .map_err(|e| verification_failure(&e))?;
        Ok((
            format!("signed off as {}", signer.component),
            SignTokenResponse {
                response_msg: "Token signed successfully".into(),
                signed_token: Some(signed),
            },
        ))
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
    Json(super::RevocationsResponse {
        response_msg: format!("{} revoked block id(s)", snapshot.revoked.len()),
        policy_revision: snapshot.revision.clone(),
        revoked: snapshot.revoked.entries.clone(),
    })
    .into_response()
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Serialize)]
struct AuditResponse {
    response_msg: String,
    events: Vec<AuditEvent>,
    next: u64,
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
