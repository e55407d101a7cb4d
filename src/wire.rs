//! The Hessra wire protocol's request and response bodies, in one place for the server and the
//! client. Field names and optionality follow the published SDK (spec §1.2): `response_msg` is
//! always present; optional fields are omitted when absent. The operator endpoints' bodies
//! (`/status`, `/audit`, `/revocations`, the key API) are in `operator`, re-exported here: the
//! console and the CLI talk to a server through these types and `crate::client` only.

mod operator;

use serde::{Deserialize, Serialize};

pub use operator::{
    AuditEvent, AuditQuery, AuditResponse, BrokenToken, FindingLocation, KeyChangeRequest,
    KeyChangeResponse, KeyInfo, KeySetFailure, KeysResponse, PublicKeyEntry, PublicKeysResponse,
    ReloadFailure, ReportedFinding, RevocationsResponse, ServerStatus,
};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PublicKeyResponse {
    pub response_msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CaCertResponse {
    pub response_msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert_pem: Option<String>,
}

/// `identifier` is a string or null in the SDK; the Hessra CLI sends its `--ttl` here as a
/// string of digits, and some clients send a number. All are accepted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdentityTokenRequest {
    #[serde(default)]
    pub identifier: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RefreshIdentityTokenRequest {
    pub current_token: String,
    #[serde(default)]
    pub identifier: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdentityTokenResponse {
    pub response_msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MintIdentityTokenRequest {
    pub subject: String,
    #[serde(default)]
    pub duration: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TokenRequest {
    pub resource: String,
    pub operation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignoffInfo {
    pub component: String,
    pub authorization_service: String,
    pub public_key: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TokenResponse {
    pub response_msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_signoffs: Option<Vec<SignoffInfo>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifyTokenRequest {
    pub token: String,
    pub subject: String,
    pub resource: String,
    pub operation: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifyServiceChainTokenRequest {
    pub token: String,
    pub subject: String,
    pub resource: String,
    #[serde(default)]
    pub component: Option<String>,
}

/// The body of every response that carries nothing but a message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessageResponse {
    pub response_msg: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StubRequest {
    pub target_identity: String,
    pub resource: String,
    pub operation: String,
    pub prefix_attenuator_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StubResponse {
    pub response_msg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_attenuator_key: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SignTokenRequest {
    pub token: String,
    pub resource: String,
    pub operation: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SignTokenResponse {
    pub response_msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_token: Option<String>,
}
