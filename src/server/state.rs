//! Server state: the current policy snapshot (swapped whole, never edited), the TLS acceptor
//! built from its CA chain, keys, counters, the last reload error, and the audit log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::audit::AuditLog;
use super::sync::PolicyReader;
use super::verify_pool::VerifyPool;
use super::{ServerConfig, ServerError, ServerLimits};
use crate::policy::{Client, Finding, Policy};
use crate::token::{KeyPair, clock::unix_now};
use crate::wire::{ReloadFailure, ReportedFinding, ServerStatus};

/// Where the server reads its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    File(PathBuf),
    /// `clients.toml` at the tip of `branch` in a repository (bare or not).
    Git {
        repo: PathBuf,
        branch: String,
    },
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySource::File(path) => write!(f, "file {}", path.display()),
            PolicySource::Git { repo, branch } => {
                write!(f, "git {} branch {branch}", repo.display())
            }
        }
    }
}

/// Constant-time lookups into an applied policy: by identity, and by certificate SAN.
#[derive(Debug, Clone, Default)]
pub struct ClientIndex {
    by_identity: HashMap<String, usize>,
    by_san: HashMap<String, Vec<usize>>,
}

impl ClientIndex {
    pub fn build(policy: &Policy) -> ClientIndex {
        let mut index = ClientIndex::default();
        for (i, client) in policy.clients.iter().enumerate() {
            index
                .by_identity
                .entry(client.identity.clone())
                .or_insert(i);
            index
                .by_san
                .entry(crate::pki::san_key(&client.identity))
                .or_default()
                .push(i);
        }
        index
    }
}

/// One applied policy.
#[derive(Debug, Clone)]
pub struct PolicySnapshot {
    pub policy: Policy,
    /// Revoked block ids, from `revocations.toml` at the same revision.
    pub revoked: crate::policy::RevocationList,
    pub index: ClientIndex,
    pub source: String,
    /// The commit for a git source; a content hash for a file.
    pub revision: String,
    pub loaded_at: i64,
    /// The root key set of the same revision (`keys.toml`), for a server whose keys come from
    /// the repository (`--key-dir`): applied with the policy or not at all.
    pub keys: Option<crate::keyset::KeySet>,
}

impl PolicySnapshot {
    /// A validated policy and the revocation list of the same revision, indexed for lookups.
    pub fn new(
        policy: Policy,
        revoked: crate::policy::RevocationList,
        revision: String,
        loaded_at: i64,
    ) -> PolicySnapshot {
        PolicySnapshot {
            index: ClientIndex::build(&policy),
            policy,
            revoked,
            source: String::new(),
            revision,
            loaded_at,
            keys: None,
        }
    }

    /// The configured client with this identity (the first, for duplicates).
    pub fn client(&self, identity: &str) -> Option<&Client> {
        self.index
            .by_identity
            .get(identity)
            .map(|&i| &self.policy.clients[i])
    }

    /// The configured identities a certificate's URI SANs name, in policy order, once each.
    pub fn named_by(&self, uris: &[String]) -> Vec<&str> {
        let mut found: Vec<usize> = uris
            .iter()
            .filter_map(|uri| self.index.by_san.get(&crate::pki::san_key(uri)))
            .flatten()
            .copied()
            .collect();
        found.sort_unstable();
        found.dedup();
        let mut names: Vec<&str> = found
            .into_iter()
            .map(|i| self.policy.clients[i].identity.as_str())
            .collect();
        names.dedup();
        names
    }
}

/// A multi-party signer identity for `/sign_token`.
pub struct SignerConfig {
    pub component: String,
    pub key: KeyPair,
}

/// Why the last reload was refused.
#[derive(Debug, Clone)]
pub struct ReloadError {
    pub at: i64,
    pub revision: Option<String>,
    pub message: String,
    pub findings: Vec<Finding>,
}

impl ReloadError {
    /// As `/status` reports it.
    fn reported(&self) -> ReloadFailure {
        ReloadFailure {
            at: self.at,
            revision: self.revision.clone(),
            message: self.message.clone(),
            findings: self.findings.iter().map(ReportedFinding::from).collect(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
}

pub struct ServerState {
    pub addr: SocketAddr,
    /// Root keys: the one that signs and the ones that verify.
    pub keys: super::keys::KeyHolder,
    /// The server's certificate chain, served by `/ca_cert`.
    pub tls_chain_pem: String,
    tls_key_pem: String,
    reader: PolicyReader,
    /// Client CAs given at start-up, trusted besides the policy's `[cacerts]`.
    extra_client_ca: Option<String>,
    /// Wakes the sync loop at once (an operator calls it after a push).
    pub nudge: tokio::sync::Notify,
    snapshot: RwLock<Arc<PolicySnapshot>>,
    tls: RwLock<Arc<TlsSetup>>,
    last_error: Mutex<Option<ReloadError>>,
    /// Held for the whole of a reload: two at once would fetch into the same mirror together
    /// (git's ref locks refuse the second) and could apply revisions out of order.
    reloading: Mutex<()>,
    pub counters: Counters,
    pub metrics: super::metrics::Metrics,
    pub audit: AuditLog,
    pub signer: Option<SignerConfig>,
    pub started_at: i64,
    /// Refreshes in a row an identity token may have.
    pub max_refresh_generations: u32,
    pub(super) limits: ServerLimits,
    pub(super) slow_client_timeout: std::time::Duration,
    /// Where token verification runs, off the async workers.
    pub(super) verify_pool: VerifyPool,
}

/// What the handshake of a new connection uses, and what an open connection's client
/// certificate is checked against on each request: swapped whole with each applied policy.
pub(super) struct TlsSetup {
    pub acceptor: TlsAcceptor,
    /// The verifier the acceptor's client CAs were built into (`None`: no client CA).
    pub client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// Counts applied policies: a connection verified under this generation needs no check.
    pub generation: u64,
}

impl ServerState {
    pub(super) fn new(config: ServerConfig, addr: SocketAddr) -> Result<ServerState, ServerError> {
        let key_dir = match &config.root_keys {
            super::keys::RootKeySource::Repository { key_dir } => Some(key_dir.clone()),
            _ => None,
        };
        let reader = PolicyReader::new(
            config.policy,
            config.state_dir.as_deref(),
            config.max_policy_bytes,
            key_dir,
        )
        .map_err(ServerError::Io)?;
        let (snapshot, refused) = reader
            .load_initial()
            .map_err(|e| ServerError::Policy(describe(&e)))?;
        reader.remember(&snapshot.revision);
        let snapshot = PolicySnapshot {
            source: reader.source().to_string(),
            ..snapshot
        };
        let extra_client_ca = config.client_ca_pem.clone();
        let tls = TlsSetup::new(
            &config.tls_cert_pem,
            &config.tls_key_pem,
            client_cas(&snapshot, extra_client_ca.as_deref()).as_deref(),
            0,
        )
        .map_err(|message| ServerError::Tls {
            path: "server certificate".into(),
            message,
        })?;
        let audit = AuditLog::new(config.audit_file, config.audit)
            .map_err(|e| ServerError::Io(e.to_string()))?;
        let keys =
            super::keys::KeyHolder::new(config.root_keys, snapshot.keys.as_ref(), reader.source())
                .map_err(ServerError::Keys)?;
        Ok(ServerState {
            addr,
            keys,
            tls_chain_pem: config.tls_cert_pem,
            tls_key_pem: config.tls_key_pem,
            reader,
            extra_client_ca,
            nudge: tokio::sync::Notify::new(),
            snapshot: RwLock::new(Arc::new(snapshot)),
            tls: RwLock::new(Arc::new(tls)),
            last_error: Mutex::new(refused),
            reloading: Mutex::new(()),
            counters: Counters::default(),
            metrics: super::metrics::Metrics::default(),
            audit,
            signer: config.signer,
            started_at: unix_now(),
            max_refresh_generations: config.max_refresh_generations,
            verify_pool: VerifyPool::new(
                config.limits.verify_workers,
                config.limits.verify_queue_wait,
            ),
            limits: config.limits,
            slow_client_timeout: config.slow_client_timeout,
        })
    }

    /// The policy requests are decided with; requests in flight keep the one they started with.
    pub fn snapshot(&self) -> Arc<PolicySnapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn tls(&self) -> Arc<TlsSetup> {
        self.tls.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads the policy source. A new valid policy replaces the snapshot (and the client CA)
    /// and `Ok(true)` is returned; an unchanged one gives `Ok(false)`; an invalid or unreachable
    /// one is refused, the last good policy stays, and the reason is kept for `status`. Reloads
    /// run one at a time, whoever calls them (the sync loop, an embedding program, a test).
    pub fn reload(&self) -> Result<bool, ReloadError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.snapshot();
        let result = self.reader.load(Some(&current.revision)).and_then(|loaded| {
            let Some(snapshot) = loaded else { return Ok(None) };
            let ca = client_cas(&snapshot, self.extra_client_ca.as_deref());
            let generation = self.tls().generation + 1;
            let tls = TlsSetup::new(&self.tls_chain_pem, &self.tls_key_pem, ca.as_deref(), generation).map_err(|message| ReloadError {
                at: unix_now(),
                revision: Some(snapshot.revision.clone()),
                message: format!("the policy's CA chain cannot be used: {message}; keeping the last good policy"),
                findings: Vec::new(),
            })?;
            // The revision's keys are taken with it or the revision is refused whole.
            let keys = snapshot.keys.clone().map(super::keys::ServerKeys::from_repository).transpose().map_err(|e| ReloadError {
                at: unix_now(),
                revision: Some(snapshot.revision.clone()),
                message: format!("keys.toml: {e}; keeping the last good policy"),
                findings: Vec::new(),
            })?;
            Ok(Some((snapshot, tls, keys)))
        });
        match result {
            Ok(None) => {
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(false)
            }
            Ok(Some((snapshot, tls, keys))) => {
                self.reader.remember(&snapshot.revision);
                let snapshot = PolicySnapshot {
                    source: self.reader.source().to_string(),
                    ..snapshot
                };
                *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
                *self.tls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tls);
                if let Some(keys) = keys {
                    self.keys.install(keys);
                }
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(true)
            }
            Err(error) => {
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.clone());
                Err(error)
            }
        }
    }

    pub fn status(&self) -> ServerStatus {
        let snapshot = self.snapshot();
        ServerStatus {
            response_msg: "Server status".into(),
            listen: format!("https://{}", self.addr),
            policy_source: snapshot.source.clone(),
            policy_revision: snapshot.revision.clone(),
            policy_loaded_at: snapshot.loaded_at,
            clients: snapshot.policy.clients.len(),
            last_reload_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(ReloadError::reported),
            requests: self.counters.requests.load(Ordering::Relaxed),
            allowed: self.counters.allowed.load(Ordering::Relaxed),
            denied: self.counters.denied.load(Ordering::Relaxed),
            started_at: self.started_at,
            audit_file: self.audit.path().map(|p| p.display().to_string()),
            audit_key: self.audit.public_key().map(str::to_string),
            keys: self.keys.current().infos(),
            key_set_error: self.keys.last_error(),
            missing_private_keys: self
                .keys
                .current()
                .set
                .as_ref()
                .map_or_else(Vec::new, crate::keyset::KeySet::missing_private_keys),
        }
    }
}

/// The CA certificates client certificates may chain to: the policy's and the configured ones.
fn client_cas(snapshot: &PolicySnapshot, extra: Option<&str>) -> Option<String> {
    let policy = snapshot.policy.ca_chain.as_ref().map(|c| c.pem.as_str());
    match (policy, extra) {
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
        (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
    }
}

/// A reload failure in one line, findings included.
pub fn describe(error: &ReloadError) -> String {
    let mut text = error.message.clone();
    for finding in &error.findings {
        text.push_str(&format!("\n  clients.toml:{finding}"));
    }
    text
}

impl TlsSetup {
    fn new(
        cert_pem: &str,
        key_pem: &str,
        client_ca: Option<&str>,
        generation: u64,
    ) -> Result<TlsSetup, String> {
        let client_verifier = client_verifier(client_ca)?;
        Ok(TlsSetup {
            acceptor: acceptor_with(cert_pem, key_pem, client_verifier.clone())?,
            client_verifier,
            generation,
        })
    }
}

/// Client certificates are optional at the handshake (endpoints decide) and, when presented,
/// must chain to `client_ca` (PEM).
fn client_verifier(client_ca: Option<&str>) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    let Some(pem) = client_ca else {
        return Ok(None);
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("client CA chain: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("client CA chain: {e}"))?;
    }
    WebPkiClientVerifier::builder(Arc::new(roots))
        .allow_unauthenticated()
        .build()
        .map(Some)
        .map_err(|e| format!("client CA chain: {e}"))
}

/// rustls for the server certificate, with `client_verifier` for client certificates.
fn acceptor_with(
    cert_pem: &str,
    key_pem: &str,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<TlsAcceptor, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("server certificate: {e}"))?;
    if chain.is_empty() {
        return Err("the server certificate file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("server key: {e}"))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match client_verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("server certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
