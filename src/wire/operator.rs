//! The bodies of the operator endpoints, hessra-console's extensions beside the Hessra protocol:
//! `/status`, `/audit`, `/revocations` and the root-key API. The server writes them and the
//! console and CLI read them with the same types, so the JSON is one definition; a field added
//! later is `#[serde(default)]` so a reader still takes an older server's answer.

use serde::{Deserialize, Serialize};

use crate::keyset::{KeyEntry, KeyState};
use crate::policy::{Finding, Revoked};

/// One decision, or one event of the server's own, as `/audit` lists it and the audit file
/// stores it (one JSON line each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Increasing sequence number; the cursor for `audit?after=`.
    pub seq: u64,
    pub time: i64,
    pub caller: Option<String>,
    /// `mtls`, `bearer`, `mtls+bearer` or `none`.
    pub auth: String,
    pub endpoint: String,
    pub resource: Option<String>,
    pub operation: Option<String>,
    /// `allow`, `deny` or `error`.
    pub result: String,
    pub reason: String,
    /// Revocation id of the presented token's last block.
    pub revocation_id: Option<String>,
    /// When an identity token issued by this request expires (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// `GET /audit?after=SEQ&limit=N`: the events after a cursor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub after: u64,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /audit`: a page of events and the cursor for the next one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditResponse {
    pub response_msg: String,
    pub events: Vec<AuditEvent>,
    pub next: u64,
}

/// `GET /revocations`: the applied revocation list (operators only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevocationsResponse {
    pub response_msg: String,
    /// The revision the list was applied from.
    pub policy_revision: String,
    pub revoked: Vec<Revoked>,
}

/// `GET /status`: what the server runs on and how it has been doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    #[serde(default)]
    pub response_msg: String,
    pub listen: String,
    pub policy_source: String,
    pub policy_revision: String,
    pub policy_loaded_at: i64,
    pub clients: usize,
    pub last_reload_error: Option<ReloadFailure>,
    pub requests: u64,
    pub allowed: u64,
    pub denied: u64,
    pub started_at: i64,
    #[serde(default)]
    pub audit_file: Option<String>,
    /// The public key (hex) the audit file's checkpoints are signed with: pin it with
    /// `audit verify --key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_key: Option<String>,
    /// The root key set, with states (absent from servers older than key sets).
    #[serde(default)]
    pub keys: Vec<KeyInfo>,
    /// Why the key set on disk was not taken, when it was not.
    #[serde(default)]
    pub key_set_error: Option<KeySetFailure>,
    /// Keys of the repository's `keys.toml` (next or active) whose private key this replica's
    /// key directory lacks: activating one of them would be refused here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_private_keys: Vec<u32>,
}

/// Why the server's last policy reload was refused (it keeps serving the last good policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadFailure {
    pub at: i64,
    pub revision: Option<String>,
    pub message: String,
    #[serde(default)]
    pub findings: Vec<ReportedFinding>,
}

/// A policy finding as the server reports it (`policy::Finding` in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedFinding {
    /// `error` or `warning`.
    pub severity: String,
    pub code: String,
    pub location: Option<FindingLocation>,
    pub message: String,
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingLocation {
    pub line: usize,
    pub column: usize,
}

impl From<&Finding> for ReportedFinding {
    fn from(finding: &Finding) -> ReportedFinding {
        ReportedFinding {
            severity: if finding.is_error() {
                "error"
            } else {
                "warning"
            }
            .to_string(),
            code: finding.code.to_string(),
            location: finding.location.map(|l| FindingLocation {
                line: l.line,
                column: l.column,
            }),
            message: finding.message.clone(),
            subject: finding.subject.clone(),
        }
    }
}

/// As `policy::Finding` prints: `LINE:COLUMN: SEVERITY[CODE]: MESSAGE`.
impl std::fmt::Display for ReportedFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(at) = self.location {
            write!(f, "{}:{}: ", at.line, at.column)?;
        }
        write!(f, "{}[{}]: {}", self.severity, self.code, self.message)
    }
}

/// A root key as `/keys`, `/public_keys` and `/status` show it (never its private key's file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// `None` for a single key file (tokens carry no key id).
    pub id: Option<u32>,
    pub state: KeyState,
    pub public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_since: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
}

impl From<&KeyEntry> for KeyInfo {
    fn from(e: &KeyEntry) -> KeyInfo {
        KeyInfo {
            id: Some(e.id),
            state: e.state,
            public_key: e.public_key.clone(),
            created_at: Some(e.created_at),
            activated_at: e.activated_at,
            retiring_since: e.retiring_since,
            verify_until: e.verify_until,
            retired_at: e.retired_at,
        }
    }
}

/// Why the key set on disk was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySetFailure {
    pub at: i64,
    pub message: String,
}

/// `GET /keys`: the key set as operators see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeysResponse {
    pub response_msg: String,
    pub keys: Vec<KeyInfo>,
    /// False for a server given a single `--root-key`: nothing to rotate.
    pub managed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_set_error: Option<KeySetFailure>,
}

/// `GET /public_keys`: the keys verifiers may meet — next, active and retiring — with their ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicKeysResponse {
    pub response_msg: String,
    pub keys: Vec<PublicKeyEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicKeyEntry {
    pub id: Option<u32>,
    pub state: KeyState,
    pub public_key: String,
    pub public_key_pem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_until: Option<i64>,
}

/// `POST /keys/add`, `/keys/activate`, `/keys/retire`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyChangeRequest {
    /// The key to activate or retire.
    #[serde(default)]
    pub id: Option<u32>,
    /// For `add`: `ed25519` (default) or `secp256r1`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// For `retire`: retire even though tokens it signed are live (a compromised key).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyChangeResponse {
    pub response_msg: String,
    /// Live tokens a forced retirement cut off: who, issued, expires.
    #[serde(default)]
    pub broken: Vec<BrokenToken>,
    pub keys: Vec<KeyInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrokenToken {
    pub identity: String,
    pub issued_at: i64,
    pub expires_at: i64,
}
