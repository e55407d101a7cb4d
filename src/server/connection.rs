//! One client connection from accept to close: the TLS handshake, HTTP/1 or HTTP/2, and the
//! deadlines that give its slot back — before the first request, between requests, HTTP/2
//! pings, request bodies, each request, the connection's age. Decides nothing about callers
//! beyond re-checking a client certificate against the current policy's CAs.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Body as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::{Instant, sleep_until, timeout_at};
use tower::ServiceExt;

use super::audit::AuditEvent;
use super::auth::{ApiError, PeerCertificate};
use super::metrics::Limit;
use super::state::ServerState;
use super::{MAX_BODY, MAX_HTTP2_STREAMS};

/// After a graceful close starts with nothing in flight, how long the close itself may take (a
/// GOAWAY and its ping answered, a TLS close_notify written): a peer that never answers must not
/// keep the slot.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A body over `MAX_BODY` is still read (and dropped) up to this much more before the 413, so
/// the client reads the answer: closing a socket with unread data makes the kernel send a reset,
/// which destroys the answer in flight. Past it the connection is closed after the 413.
const DRAIN_BUDGET: usize = 1024 * 1024;

/// What the accept loop gives each connection.
#[derive(Clone)]
pub(super) struct Served {
    pub state: Arc<ServerState>,
    pub router: Router,
    /// True while every connection slot is taken.
    pub full: watch::Receiver<bool>,
}

/// Serves one accepted connection until the client closes it or a deadline does; the permit
/// (its slot) is given back when this returns.
pub(super) async fn serve(tcp: TcpStream, served: Served, permit: OwnedSemaphorePermit) {
    let _slot = permit;
    let state = served.state.clone();
    let _open = OpenConnection::new(state.clone());
    let Some((tls, generation)) = handshake(&state, tcp).await else {
        return;
    };
    let activity = Arc::new(Activity::new());
    let service = requests(&served, tls.get_ref().1, generation, activity.clone());
    let builder = http(&state);
    let connection = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
    let mut connection = pin!(connection);
    let Some(why) = until_closing(connection.as_mut(), &activity, served.full, &state).await else {
        return;
    };
    if let Some(limit) = why.limit() {
        state.metrics.limit_hit(limit);
    }
    connection.as_mut().graceful_shutdown();
    finish(connection, &activity, state.limits.request_timeout).await;
}

/// The TLS handshake within the slow-client deadline, and the generation of the client CAs it
/// was verified against. A refused client certificate is audited.
async fn handshake(
    state: &Arc<ServerState>,
    tcp: TcpStream,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, u64)> {
    let setup = state.tls();
    match tokio::time::timeout(state.slow_client_timeout, setup.acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some((tls, setup.generation)),
        Ok(Err(error)) => {
            super::audit_refused_certificate(state, &error);
            None
        }
        Err(_) => None,
    }
}

/// HTTP/1 and HTTP/2 with this server's deadlines.
fn http(state: &ServerState) -> auto::Builder<TokioExecutor> {
    let limits = &state.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that trickles its headers is cut off instead of holding a slot.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.slow_client_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(limits.http2_keep_alive_timeout)
        .max_concurrent_streams(MAX_HTTP2_STREAMS);
    builder
}

/// The connection's request handler: counts requests in flight for the idle deadline, checks the
/// client certificate against the current policy, gives the router the peer's identity, and
/// closes an HTTP/1 connection past its age after the answer.
fn requests(
    served: &Served,
    connection: &rustls::ServerConnection,
    generation: u64,
    activity: Arc<Activity>,
) -> impl tower::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = Response,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    let (state, router) = (served.state.clone(), served.router.clone());
    let peer = PeerCertificate::from_connection(connection);
    let certificate = Arc::new(CertificateCheck::new(connection, generation));
    tower::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        let in_flight = activity.begin(request.version());
        let refused = certificate.recheck(&state, request.uri().path());
        request.extensions_mut().insert(peer.clone());
        let router = router.clone();
        async move {
            let mut response = match refused {
                Err(reason) => untrusted_certificate(&reason),
                Ok(()) => match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
            };
            if in_flight.0.retiring.load(Ordering::Acquire) {
                closing(&mut response);
            }
            drop(in_flight);
            Ok(response)
        }
    })
}

/// Why the server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Idle,
    IdleWhenFull,
    Age,
    /// The server is shutting down.
    Stopping,
}

impl Closing {
    fn limit(self) -> Option<Limit> {
        match self {
            Closing::Idle => Some(Limit::IdleClose),
            Closing::IdleWhenFull => Some(Limit::IdleCloseWhenFull),
            Closing::Age => Some(Limit::AgeClose),
            Closing::Stopping => None,
        }
    }
}

/// Drives the connection until it ends by itself (`None`) or one of its deadlines passes.
///
/// Past its age an HTTP/2 connection is closed at once: the GOAWAY names the last stream served,
/// so the client knows what to send again. An HTTP/1 connection instead answers its next request
/// with `Connection: close`: closing it while idle could cross a request already on its way,
/// which the client could not tell from a failure. If no request comes, the idle deadline
/// closes it.
async fn until_closing<F: Future>(
    mut connection: Pin<&mut F>,
    activity: &Activity,
    mut full: watch::Receiver<bool>,
    state: &ServerState,
) -> Option<Closing> {
    let too_old = activity.opened + state.limits.max_connection_age;
    let mut aged = false;
    loop {
        let full_now = *full.borrow_and_update();
        let (idle_at, idle) = activity.idle_deadline(full_now, state);
        if idle_at <= Instant::now() {
            return Some(idle);
        }
        tokio::select! {
            _ = connection.as_mut() => return None,
            _ = sleep_until(too_old), if !aged => {
                aged = true;
                if activity.http2.load(Ordering::Acquire) {
                    return Some(Closing::Age);
                }
                state.metrics.limit_hit(Limit::AgeClose);
                activity.retiring.store(true, Ordering::Release);
            }
            _ = sleep_until(idle_at) => {}
            changed = full.changed() => if changed.is_err() {
                return Some(Closing::Stopping);
            },
        }
    }
}

/// Lets a gracefully closing connection finish: a request in flight gets up to the request
/// deadline, an idle connection `CLOSE_GRACE`; then it is dropped.
async fn finish<F: Future>(
    mut connection: Pin<&mut F>,
    activity: &Activity,
    request_timeout: Duration,
) {
    let give_up = Instant::now() + request_timeout + CLOSE_GRACE;
    loop {
        let next_look = (Instant::now() + CLOSE_GRACE).min(give_up);
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = sleep_until(next_look) => {
                if activity.in_flight.load(Ordering::Acquire) == 0 || Instant::now() >= give_up {
                    return;
                }
            }
        }
    }
}

/// Counts open connections in the metrics for as long as it lives.
struct OpenConnection(Arc<ServerState>);

impl OpenConnection {
    fn new(state: Arc<ServerState>) -> OpenConnection {
        state.metrics.connection_opened();
        OpenConnection(state)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.metrics.connection_closed();
    }
}

/// What a connection is doing, as its requests see it; read by the deadline watch.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    /// When the last request ended, in milliseconds after `opened`.
    idle_since_ms: AtomicU64,
    http2: AtomicBool,
    /// Past its age: the next HTTP/1 answer closes the connection.
    retiring: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            retiring: AtomicBool::new(false),
        }
    }

    fn begin(self: &Arc<Self>, version: axum::http::Version) -> InFlight {
        if version == axum::http::Version::HTTP_2 {
            self.http2.store(true, Ordering::Release);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// When the connection counts as idle too long, and why. Before its first request a client
    /// has the slow-client deadline (it has just finished its handshake and has no reason to
    /// wait); while every slot is taken the shorter `idle_timeout_when_full` applies. While a
    /// request is in flight the answer is a time to look again.
    fn idle_deadline(&self, full: bool, state: &ServerState) -> (Instant, Closing) {
        let limits = &state.limits;
        let mut allowed = limits.idle_timeout;
        if self.requests.load(Ordering::Relaxed) == 0 {
            allowed = allowed.min(state.slow_client_timeout);
        }
        let mut why = Closing::Idle;
        if full && limits.idle_timeout_when_full < allowed {
            allowed = limits.idle_timeout_when_full;
            why = Closing::IdleWhenFull;
        }
        let since = if self.in_flight.load(Ordering::Acquire) > 0 {
            Instant::now()
        } else {
            self.opened + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
        };
        (since + allowed, why)
    }
}

/// A request being served; its end starts the idle clock.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        let now = activity.opened.elapsed().as_millis() as u64;
        activity.idle_since_ms.store(now, Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The client certificate of a connection, checked again on a request whenever the policy
/// changed since it was last found trusted: removing a CA from `[cacerts]` cuts off
/// connections already open at their next request, not only new handshakes.
struct CertificateCheck {
    /// The chain presented at the handshake, leaf first.
    chain: Option<Vec<CertificateDer<'static>>>,
    /// The TLS generation (applied policy) under which the chain last verified.
    trusted_in: AtomicU64,
    /// Why the chain was refused; once refused, refused for the rest of the connection.
    refused: OnceLock<String>,
}

impl CertificateCheck {
    fn new(connection: &rustls::ServerConnection, generation: u64) -> CertificateCheck {
        CertificateCheck {
            chain: connection
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect()),
            trusted_in: AtomicU64::new(generation),
            refused: OnceLock::new(),
        }
    }

    /// `Err` says why the certificate is no longer trusted.
    fn recheck(&self, state: &ServerState, path: &str) -> Result<(), String> {
        let Some((leaf, intermediates)) = self.chain.as_deref().and_then(|c| c.split_first())
        else {
            return Ok(());
        };
        if let Some(reason) = self.refused.get() {
            state.metrics.limit_hit(Limit::CertificateUntrusted);
            return Err(reason.clone());
        }
        let tls = state.tls();
        if self.trusted_in.load(Ordering::Acquire) == tls.generation {
            return Ok(());
        }
        let verdict = match &tls.client_verifier {
            Some(verifier) => verifier
                .verify_client_cert(leaf, intermediates, UnixTime::now())
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("the policy trusts no client CA".to_string()),
        };
        let Err(reason) = verdict else {
            self.trusted_in.store(tls.generation, Ordering::Release);
            return Ok(());
        };
        state.metrics.limit_hit(Limit::CertificateUntrusted);
        let reason = self.refused.get_or_init(|| {
            audit_untrusted(state, path, &reason);
            reason
        });
        Err(reason.clone())
    }
}

fn untrusted_certificate(reason: &str) -> Response {
    let mut response = ApiError::unauthenticated(format!(
        "the client certificate this connection was opened with is no longer trusted by the current policy ({reason}); reconnect with a certificate from a CA in [cacerts]"
    ))
    .into_response();
    closing(&mut response);
    response
}

/// Once per connection: a certificate the policy stopped trusting is a decision worth keeping.
fn audit_untrusted(state: &ServerState, path: &str, reason: &str) {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    state.counters.denied.fetch_add(1, Ordering::Relaxed);
    state.audit.record(AuditEvent {
        seq: 0,
        time: crate::token::clock::unix_now(),
        caller: None,
        auth: "mtls".into(),
        endpoint: path.chars().take(200).collect(),
        resource: None,
        operation: None,
        result: "deny".into(),
        reason: format!(
            "client certificate of an open connection no longer trusted by the current policy: {reason}"
        ),
        revocation_id: None,
        expires_at: None,
    });
}

/// HTTP/1 closes the connection after this answer (hyper leaves connection headers out of
/// HTTP/2, where a closing connection sends a GOAWAY instead).
fn closing(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// Router layer: reads the request body within the slow-client deadline and `MAX_BODY`, then
/// answers within the request deadline. Refusals are counted in `hessra_limit_total`, not
/// audited one by one: they are made before anyone is authenticated.
pub(super) async fn bounded_request(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    let deadline = Instant::now() + state.limits.request_timeout;
    if request.body().is_end_stream() {
        // No body to wait for (a GET): no body deadline to set.
        return answer_within(&state, deadline, next.run(request)).await;
    }
    let body_allowed = state.slow_client_timeout.min(state.limits.request_timeout);
    let body_deadline = Instant::now() + body_allowed;
    let (parts, body) = request.into_parts();
    let read = timeout_at(body_deadline, read_body(body, &parts.headers)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BodyError::TooLarge { drained })) => {
            state.metrics.limit_hit(Limit::BodyTooLarge);
            let mut response = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is over the limit of {MAX_BODY} bytes"),
            )
            .into_response();
            if !drained {
                closing(&mut response);
            }
            return response;
        }
        Ok(Err(BodyError::Unreadable(reason))) => {
            let mut response =
                ApiError::bad_request(format!("the request body could not be read: {reason}"))
                    .into_response();
            closing(&mut response);
            return response;
        }
        Err(_) => {
            state.metrics.limit_hit(Limit::BodyTimeout);
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} ms of its headers",
                    body_allowed.as_millis()
                ),
            )
            .into_response();
            closing(&mut response);
            return response;
        }
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    answer_within(&state, deadline, next.run(request)).await
}

/// The answer, or a 503 if it is not ready by the request deadline.
async fn answer_within(
    state: &ServerState,
    deadline: Instant,
    answer: impl Future<Output = Response>,
) -> Response {
    match timeout_at(deadline, answer).await {
        Ok(response) => response,
        Err(_) => {
            state.metrics.limit_hit(Limit::RequestTimeout);
            ApiError::unavailable(format!(
                "the server did not answer within {} ms: retry shortly",
                state.limits.request_timeout.as_millis()
            ))
            .into_response()
        }
    }
}

#[derive(Debug)]
enum BodyError {
    /// Over `MAX_BODY`; `drained` when the rest was read, so the connection can go on.
    TooLarge {
        drained: bool,
    },
    Unreadable(String),
}

/// The whole body, at most `MAX_BODY` bytes. A declared length over the limit plus the drain
/// budget is refused before reading anything.
async fn read_body(body: Body, headers: &HeaderMap) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > (MAX_BODY + DRAIN_BUDGET) as u64) {
        return Err(BodyError::TooLarge { drained: false });
    }
    let mut body = pin!(body);
    // A body in one frame (most are) is kept as it came; more frames are joined.
    let mut first: Option<Bytes> = None;
    let mut joined = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > MAX_BODY + DRAIN_BUDGET {
            return Err(BodyError::TooLarge { drained: false });
        }
        if seen > MAX_BODY {
            continue;
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            None => joined.extend_from_slice(&data),
            Some(earlier) => {
                joined.reserve(declared.map_or(0, |n| n.min(MAX_BODY as u64) as usize));
                joined.extend_from_slice(&earlier);
                joined.extend_from_slice(&data);
            }
        }
    }
    if seen > MAX_BODY {
        return Err(BodyError::TooLarge { drained: true });
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}
