//! Root key endpoints (hessra-console extensions, beside `/status` and `/audit`):
//! `GET /public_keys` for verifiers that follow rotation, and for operators `GET /keys` and
//! `POST /keys/add`, `/keys/activate`, `/keys/retire`. Their bodies are in `crate::wire`.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::auth::{ApiError, PeerCertificate};
use super::handlers::{Issued, Outcome, body, operator};
use super::state::ServerState;
use crate::audit_trail::signed_by;
use crate::keyset::{KeyChange, KeySetError, KeyState, Lifetime};
use crate::token::clock::unix_now;
use crate::wire::{
    BrokenToken, KeyChangeRequest, KeyChangeResponse, KeysResponse, PublicKeyEntry,
    PublicKeysResponse,
};

type Shared = Arc<ServerState>;

impl Issued for KeyChangeResponse {}

pub async fn public_keys(State(state): State<Shared>) -> Response {
    let current = state.keys.current();
    let keys = current
        .infos()
        .into_iter()
        .filter(|k| k.state != KeyState::Retired)
        .filter_map(|k| {
            let key = crate::token::keys::parse_key_string(&k.public_key).ok()?;
            Some(PublicKeyEntry {
                id: k.id,
                state: k.state,
                public_key_pem: crate::token::keys::public_key_pem(&key).ok()?,
                public_key: k.public_key,
                verify_until: k.verify_until,
            })
        })
        .collect();
    Json(PublicKeysResponse {
        response_msg: "Root public keys".into(),
        keys,
    })
    .into_response()
}

pub async fn list(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
) -> Response {
    if let Err(e) = operator(&state, &peer) {
        return e.into_response();
    }
    let current = state.keys.current();
    Json(KeysResponse {
        response_msg: "Root keys".into(),
        keys: current.infos(),
        managed: current.set.is_some(),
        key_set_error: state.keys.last_error(),
    })
    .into_response()
}

#[derive(Clone, Copy)]
enum Change {
    Add,
    Activate,
    Retire,
}

impl Change {
    fn endpoint(self) -> &'static str {
        match self {
            Change::Add => "/keys/add",
            Change::Activate => "/keys/activate",
            Change::Retire => "/keys/retire",
        }
    }
}

pub async fn add(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    input: Result<Json<KeyChangeRequest>, JsonRejection>,
) -> Response {
    change(state, peer, input, Change::Add).await
}

pub async fn activate(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    input: Result<Json<KeyChangeRequest>, JsonRejection>,
) -> Response {
    change(state, peer, input, Change::Activate).await
}

pub async fn retire(
    State(state): State<Shared>,
    Extension(peer): Extension<PeerCertificate>,
    input: Result<Json<KeyChangeRequest>, JsonRejection>,
) -> Response {
    change(state, peer, input, Change::Retire).await
}

async fn change(
    state: Shared,
    peer: PeerCertificate,
    input: Result<Json<KeyChangeRequest>, JsonRejection>,
    change: Change,
) -> Response {
    let endpoint = change.endpoint();
    let caller = operator(&state, &peer);
    let worker = state.clone();
    let result = match caller.clone() {
        Err(e) => Err(e),
        Ok(_) => match body(input) {
            Err(e) => Err(e),
            // Key generation and the manifest's fsync are disk work: off the async threads.
            Ok(request) => tokio::task::spawn_blocking(move || apply(&worker, &request, change))
                .await
                .unwrap_or_else(|e| {
                    Err(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("the key change failed: {e}"),
                    ))
                }),
        },
    };
    Outcome {
        endpoint,
        caller: caller.as_ref().ok(),
        resource: None,
        operation: None,
    }
    .finish(&state, result)
}

fn apply(
    state: &ServerState,
    request: &KeyChangeRequest,
    change: Change,
) -> Result<(String, KeyChangeResponse), ApiError> {
    let now = unix_now();
    let change =
        KeyChange::from_request(change.endpoint(), request).map_err(ApiError::bad_request)?;
    let lifetime = Lifetime::of_policy(&state.snapshot().policy);
    let audit = &state.audit;
    let transition = state
        .keys
        .change(now, |set| {
            set.apply(change, now, Some(&lifetime), |set, id| {
                signed_by(set, id, audit.issued(), now)
            })
        })
        .map_err(key_error)?;
    let keys = state.keys.current().infos();
    Ok((
        transition.summary.clone(),
        KeyChangeResponse {
            response_msg: transition.summary,
            broken: transition
                .broken
                .into_iter()
                .map(|t| BrokenToken {
                    identity: t.identity,
                    issued_at: t.issued_at,
                    expires_at: t.expires_at,
                })
                .collect(),
            keys,
        },
    ))
}

fn key_error(error: KeySetError) -> ApiError {
    let status = match &error {
        KeySetError::NoSuchKey { .. } => StatusCode::NOT_FOUND,
        KeySetError::Refused(_)
        | KeySetError::Unmanaged
        | KeySetError::InRepository { .. }
        | KeySetError::LifetimeUnknown => StatusCode::CONFLICT,
        KeySetError::Io { .. }
        | KeySetError::Invalid { .. }
        | KeySetError::MissingPrivateKey { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, error.to_string())
}
