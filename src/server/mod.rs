//! The authorization server: the Hessra wire protocol over TLS with optional client
//! certificates, decisions from the current policy snapshot, audit and status. Holds policy only
//! through the snapshot.

mod audit;
mod auth;
mod connection;
mod handlers;
pub mod issue;
mod key_api;
mod keys;
mod metrics;
mod state;
mod sync;
mod verify_pool;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, TryAcquireError, watch};

/// The operator endpoints' bodies, under the names the server has always exported them by; the
/// console and the CLI read them from `crate::wire`.
pub use crate::wire::{AuditEvent, KeyInfo, RevocationsResponse};
pub use audit::{
    AuditConfig, AuditLog, read_trail as audit_trail, rotated_files as audit_rotated_files,
};
pub use keys::{KeyHolder, RootKeySource, ServerKeys};
pub use state::{PolicySnapshot, PolicySource, ServerState, SignerConfig};

/// Most connections served at once; more wait in the kernel's accept queue. While all are
/// taken, idle ones are shed after `ServerLimits::idle_timeout_when_full`.
pub const MAX_CONNECTIONS: usize = 1_024;
/// A TLS handshake, a connection's first request, request headers or a request body taking
/// longer than this are dropped (the default of `ServerConfig::slow_client_timeout`).
pub const SLOW_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// Concurrent requests on one HTTP/2 connection: 1,024 connections × 16 streams × 64 KiB
/// bodies bounds what request bodies can hold at once to 1 GiB.
pub const MAX_HTTP2_STREAMS: u32 = 16;

/// Deadlines that give a connection's slot back, and the pool tokens are verified on. The
/// defaults are what `serve` uses; tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// A connection with no request in flight (HTTP/1 keep-alive, HTTP/2 without streams) is
    /// closed after this long. Default 120 s: longer than the 90 s reqwest (the Hessra SDK's
    /// HTTP client) and Go keep an idle connection, so they close first and never send a request
    /// on a connection the server is closing.
    pub idle_timeout: Duration,
    /// The same while every one of the `MAX_CONNECTIONS` slots is taken, so a client waiting in
    /// the accept queue gets a slot instead of waiting out idle ones. Default 1 s.
    pub idle_timeout_when_full: Duration,
    /// A request not answered this long after its headers arrived gets a 503. Default 30 s.
    pub request_timeout: Duration,
    /// A connection this old is closed gracefully (HTTP/2: a GOAWAY; HTTP/1: its next answer
    /// says `Connection: close`), so the client reconnects and its certificate meets the
    /// current policy's CAs at a handshake. Default 10 min.
    pub max_connection_age: Duration,
    /// HTTP/2 pings this often; a peer that does not answer within `http2_keep_alive_timeout`
    /// is dropped. Defaults 20 s and 10 s.
    pub http2_keep_alive_interval: Duration,
    pub http2_keep_alive_timeout: Duration,
    /// Token verifications (signatures and Datalog) run at once, off the async workers.
    /// Default twice the cores.
    pub verify_workers: usize,
    /// How long a request waits for a verification worker before it is answered 503 with
    /// `Retry-After`. Default 500 ms.
    pub verify_queue_wait: Duration,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ServerLimits {
            idle_timeout: Duration::from_secs(120),
            idle_timeout_when_full: Duration::from_secs(1),
            request_timeout: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(600),
            http2_keep_alive_interval: Duration::from_secs(20),
            http2_keep_alive_timeout: Duration::from_secs(10),
            verify_workers: 2 * cores,
            verify_queue_wait: Duration::from_millis(500),
        }
    }
}

/// Server failures at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{path}: {message}")]
    Tls { path: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Policy(String),
    #[error("{0}")]
    Io(String),
    #[error("root keys: {0}")]
    Keys(String),
}

/// Everything a server needs.
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// PEM of the server certificate chain and its private key.
    pub tls_cert_pem: String,
    pub tls_key_pem: String,
    /// CA certificates (PEM) client certificates may chain to, besides the policy's `[cacerts]`.
    pub client_ca_pem: Option<String>,
    pub policy: PolicySource,
    pub root_keys: RootKeySource,
    /// Where to append audit events as JSON lines (0600); `None` keeps them in memory only.
    pub audit_file: Option<PathBuf>,
    /// The audit file's rotation and the writer's queue (16 MiB × 5 files, 4,096 events).
    pub audit: AuditConfig,
    /// Makes this server a multi-party signer for `/sign_token`.
    pub signer: Option<SignerConfig>,
    /// Where a git source is mirrored and the last good commit remembered.
    pub state_dir: Option<PathBuf>,
    /// How often to look for a new policy; `None` reads it once.
    pub poll_interval: Option<Duration>,
    /// How long a client may take over its TLS handshake, and over sending its request headers,
    /// before the connection is dropped (`SLOW_CLIENT_TIMEOUT` by default).
    pub slow_client_timeout: Duration,
    /// Refreshes in a row an identity token may have before `/refresh_identity_token` sends its
    /// holder back to their certificate (`token::DEFAULT_MAX_REFRESH_GENERATIONS` by default).
    pub max_refresh_generations: u32,
    /// Largest `clients.toml` or `revocations.toml` read, in bytes; a larger one is refused from
    /// its git object header (or file size) before it is read, like an invalid policy
    /// (`gitops::DEFAULT_MAX_POLICY_BYTES` by default).
    pub max_policy_bytes: u64,
    /// Connection deadlines and the verification pool.
    pub limits: ServerLimits,
}

/// A server accepting connections; dropping it does not stop it, `shutdown` does.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// `https://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops accepting, lets connections in flight finish, waits for the loop to end, and
    /// writes the audit events still queued.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        let state = self.state.clone();
        let _ = tokio::task::spawn_blocking(move || state.audit.flush()).await;
    }
}

/// Loads the policy, binds, and starts serving in the background.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Io(e.to_string()))?;
    let poll_interval = config.poll_interval;
    let state = Arc::new(ServerState::new(config, addr)?);
    let (shutdown, mut stopping) = watch::channel(false);
    // With polling off the loop still runs: an operator's nudge (`POST /sync`) syncs.
    tokio::spawn(sync_loop(
        state.clone(),
        poll_interval,
        shutdown.subscribe(),
    ));
    tokio::spawn(audit_ticks(state.clone(), shutdown.subscribe()));
    let router = handlers::router(state.clone());
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (full, _) = watch::channel(false);
    let loop_state = state.clone();
    let task = tokio::spawn(async move {
        loop {
            let permit = match permits.clone().try_acquire_owned() {
                Ok(permit) => Ok(permit),
                Err(TryAcquireError::Closed) => break,
                Err(TryAcquireError::NoPermits) => {
                    // Every slot is taken: idle connections are shed sooner until one frees.
                    // Only a change wakes the connections, not every accept while full.
                    full.send_if_modified(|full| !std::mem::replace(full, true));
                    tokio::select! {
                        permit = permits.clone().acquire_owned() => permit,
                        _ = stopping.changed() => break,
                    }
                }
            };
            let Ok(permit) = permit else { break };
            let (tcp, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => continue,
                },
                _ = stopping.changed() => break,
            };
            // Full until an accept finds a sixteenth of the slots free: a burst of closes wakes
            // the connections twice, not once per close.
            if permits.available_permits() >= MAX_CONNECTIONS / 16 {
                full.send_if_modified(|full| std::mem::replace(full, false));
            }
            let served = connection::Served {
                state: loop_state.clone(),
                router: router.clone(),
                full: full.subscribe(),
            };
            tokio::spawn(connection::serve(tcp, served, permit));
        }
    });
    Ok(RunningServer {
        addr,
        state,
        shutdown,
        task,
    })
}

/// A client certificate refused during the handshake (expired, unknown CA, wrong usage…) is
/// audited; other handshake failures (scanners, dropped connections) are not, to keep the feed
/// about decisions.
fn audit_refused_certificate(state: &ServerState, error: &std::io::Error) {
    let detail = error.to_string();
    if !detail.contains("certificate") {
        return;
    }
    state
        .counters
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    state
        .counters
        .denied
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    state.metrics.decision("tls-handshake", "deny");
    state.audit.record_anonymous(AuditEvent {
        seq: 0,
        time: crate::token::clock::unix_now(),
        caller: None,
        auth: "none".into(),
        endpoint: "tls-handshake".into(),
        resource: None,
        operation: None,
        result: "deny".into(),
        reason: format!("client certificate refused during the TLS handshake: {detail}"),
        revocation_id: None,
        expires_at: None,
    });
}

/// Closes the audit limiter's windows every few seconds, so a flood that stops is summed up
/// within 5 s of its window's end rather than at the next refusal.
async fn audit_ticks(state: Arc<ServerState>, mut stopping: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stopping.changed() => return,
        }
        state.audit.tick(crate::token::clock::unix_now());
    }
}

/// Longest wait between sync attempts while the remote keeps failing.
pub const MAX_SYNC_BACKOFF: Duration = Duration::from_secs(30);

/// Looks for a new policy every `interval` (or at once when nudged); backs off while the source
/// is failing; records every applied or refused policy in the audit log.
/// Syncs every `interval` (backing off while the source is unreachable) and whenever nudged;
/// without an interval, only when nudged.
async fn sync_loop(
    state: Arc<ServerState>,
    interval: Option<Duration>,
    mut stopping: watch::Receiver<bool>,
) {
    let polling = interval.is_some();
    let interval = interval.unwrap_or(MAX_SYNC_BACKOFF);
    let mut delay = interval;
    let mut last_reason = String::new();
    let mut last_key_reason = String::new();
    loop {
        let tick = async {
            if polling {
                tokio::time::sleep(delay).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            _ = tick => {}
            _ = state.nudge.notified() => {}
            _ = stopping.changed() => return,
        }
        let worker = state.clone();
        let Ok((keys, result)) = tokio::task::spawn_blocking(move || {
            let keys = worker.keys.reload(crate::token::clock::unix_now());
            (keys, worker.reload())
        })
        .await
        else {
            continue;
        };
        let key_reason = match &keys {
            Ok(false) => None,
            Ok(true) => Some(("allow", "root key set applied".to_string())),
            Err(failure) => Some(("error", failure.message.clone())),
        };
        if let Some((outcome, reason)) = key_reason
            && reason != last_key_reason
        {
            last_key_reason = reason.clone();
            state.audit.record(system_event("key-set", outcome, reason));
        }
        let (outcome, reason) = match &result {
            Ok(false) => {
                delay = interval;
                continue;
            }
            Ok(true) => {
                delay = interval;
                (
                    "allow",
                    format!("policy applied at {}", state.snapshot().revision),
                )
            }
            Err(error) => {
                // Back off only while the source is unreachable; a bad commit is fixed by a push.
                delay = match error.revision {
                    None => (delay * 2).min(MAX_SYNC_BACKOFF).max(interval),
                    Some(_) => interval,
                };
                ("error", state::describe(error))
            }
        };
        if reason == last_reason {
            continue;
        }
        last_reason = reason.clone();
        state
            .audit
            .record(system_event("policy-sync", outcome, reason));
    }
}

/// An audit event of the server's own doing (a sync, a key-set change).
fn system_event(endpoint: &str, outcome: &str, reason: String) -> AuditEvent {
    AuditEvent {
        seq: 0,
        time: crate::token::clock::unix_now(),
        caller: None,
        auth: "none".into(),
        endpoint: endpoint.into(),
        resource: None,
        operation: None,
        result: outcome.into(),
        reason,
        revocation_id: None,
        expires_at: None,
    }
}

/// Installs rustls' ring provider for the process (reqwest and the server need one; a second
/// call is harmless).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
