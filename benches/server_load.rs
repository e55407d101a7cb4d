//! A bounded load generator against the real server on loopback: N concurrent keep-alive
//! clients for a fixed time per scenario — `public_key` (the floor of the same TLS/HTTP stack),
//! `request_token` by mTLS, and `request_token` by a depth-2 Bearer identity token. Reports
//! throughput, p50/p99 latency and errors, and compares Bearer throughput with the bound set by
//! the token work alone (cores ÷ (verify of the presented token + mint of the answer)), measured
//! in the same run.
//!
//! The server and the load generator run on runtimes of their own, so the server's CPU time per
//! request can be read from its threads alone (`/proc/self/task/*/schedstat`, Linux): the load
//! generator's TLS and HTTP share the cores but are not charged to the server. The server's
//! throughput with the machine to itself is then `cores ÷ server CPU per request`, and the share
//! of that CPU spent on the token work is what the bound lines report.
//!
//! Run: `cargo bench --bench server_load` (about 30 s). Loopback only; every loop is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hessra_console::policy::{Edit, EditSession};
use hessra_console::server::{self, PolicySource, ServerConfig};
use hessra_console::token::{
    self, Actor, AuthzClaims, Delegation, IdentityVerification, clock::unix_now, keys,
};
use hessra_console::workspace;

const CONCURRENCY: usize = 16;
const DURATION: Duration = Duration::from_secs(6);
const WORKER: &str = "uri:urn:company:alice:agent1:worker";
/// The server runtime's threads (workers and blocking pool) carry this name; the audit writer
/// has its own.
const SERVER_THREADS: &str = "bench-server";
const AUDIT_THREAD: &str = "audit-writer";

/// CPU time the calling thread has used so far (Linux; wall time elsewhere would mislead, so
/// zero, and the caller falls back to wall time).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Seconds per iteration of `work`, in the thread's CPU time where the system reports it (so a
/// busy machine does not inflate it), else in wall time.
fn seconds_each(iterations: u32, mut work: impl FnMut()) -> f64 {
    let (wall, cpu) = (Instant::now(), thread_cpu());
    for _ in 0..iterations {
        work();
    }
    let cpu = thread_cpu().saturating_sub(cpu);
    let spent = if cpu > Duration::ZERO {
        cpu
    } else {
        wall.elapsed()
    };
    spent.as_secs_f64() / f64::from(iterations)
}

/// CPU time the server's threads have used so far (Linux; zero elsewhere).
fn server_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut total = 0u64;
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let name = name.trim();
        if name != SERVER_THREADS && name != AUDIT_THREAD {
            continue;
        }
        // The first field of schedstat is the nanoseconds the thread has run on a CPU.
        let stat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(total)
}

struct Result {
    name: &'static str,
    requests: u64,
    errors: u64,
    p50: Duration,
    p99: Duration,
    elapsed: Duration,
    /// CPU time the server's threads used during the scenario.
    server_cpu: Duration,
}

impl Result {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The server's CPU time per request, in seconds.
    fn server_cpu_per_request(&self) -> f64 {
        self.server_cpu.as_secs_f64() / self.requests.max(1) as f64
    }
}

async fn load(
    name: &'static str,
    client: reqwest::Client,
    url: String,
    body: Option<serde_json::Value>,
    bearer: Option<String>,
) -> Result {
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + DURATION;
    let started = Instant::now();
    let cpu_before = server_cpu();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, body, bearer, errors) = (
            client.clone(),
            url.clone(),
            body.clone(),
            bearer.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let start = Instant::now();
                let request = match &body {
                    Some(body) => client.post(&url).json(body),
                    None => client.get(&url),
                };
                let request = match &bearer {
                    Some(token) => request.bearer_auth(token),
                    None => request,
                };
                let ok = match request.send().await {
                    Ok(response) => {
                        response.status().is_success() && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                latencies.push(start.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    let server_cpu = server_cpu().saturating_sub(cpu_before);
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Result {
        name,
        requests: latencies.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        p50: at(0.50),
        p99: at(0.99),
        elapsed,
        server_cpu,
    }
}

fn client(ca: &[u8], identity: Option<Vec<u8>>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(ca).unwrap())
        .http1_only()
        .pool_max_idle_per_host(CONCURRENCY);
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

/// Seconds of one Bearer request's token work: verify the presented token, mint the answer.
/// Seconds of token work per request on one core: (Bearer: verifying the presented token the
/// way the server does, through the verified-token memo, plus minting the answer; mTLS: minting
/// the answer alone).
fn token_work(root: &token::KeyPair, presented: &str) -> (f64, f64) {
    let iterations = 2_000;
    let mint = |subject: String| {
        let claims = AuthzClaims {
            subject,
            resource: "production_api".into(),
            operation: "read".into(),
            expires_at: unix_now() + 300,
            ..AuthzClaims::default()
        };
        std::hint::black_box(token::mint_authz(root, &claims).unwrap());
    };
    let bearer = seconds_each(iterations, || {
        let check = IdentityVerification::new(Actor::Effective, unix_now());
        let verified = token::verify_identity(presented, &root.public(), &check).unwrap();
        mint(verified.identity);
    });
    let mtls = seconds_each(iterations, || mint("uri:urn:company:alice".into()));
    (bearer, mtls)
}

fn main() {
    server::install_crypto_provider();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime_named = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap()
    };
    let server_runtime = runtime_named(SERVER_THREADS);
    let runtime = runtime_named("bench-load");
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace::init(dir.path(), false).unwrap();
    // The demo policy plus a depth-2 identity under alice, so the Bearer token is delegated twice.
    let mut session = EditSession::open(
        &std::fs::read_to_string(ws.policy_file()).unwrap(),
        unix_now(),
    )
    .unwrap();
    session
        .apply(&Edit::AddClient {
            identity: WORKER.into(),
        })
        .unwrap();
    session
        .apply(&Edit::Grant {
            identity: WORKER.into(),
            resource: "production_api".into(),
            operation: "read".into(),
        })
        .unwrap();
    let policy_file = dir.path().join("bench.toml");
    std::fs::write(&policy_file, session.text()).unwrap();
    let root = keys::read_private_key_file(&ws.root_key).unwrap();

    let config = ServerConfig {
        policy: PolicySource::File(policy_file),
        state_dir: None,
        poll_interval: None,
        ..ws.server_config("127.0.0.1:0".parse().unwrap()).unwrap()
    };
    // Started on its own runtime, which keeps serving while the load runs on the other.
    let running = server_runtime.block_on(server::start(config)).unwrap();
    let results = runtime.block_on(async {
        let ca = std::fs::read(&ws.ca_cert).unwrap();
        let (cert, key) = ws.client_cert("uri:urn:company:alice");
        let mut pem = std::fs::read(cert).unwrap();
        pem.extend(std::fs::read(key).unwrap());
        let anonymous = client(&ca, None);
        let alice = client(&ca, Some(pem));
        let url = |path: &str| format!("{}{path}", running.url());
        let read = serde_json::json!({ "resource": "production_api", "operation": "read" });
        let identity = token::mint_identity(
            &root,
            &token::IdentityClaims {
                subject: "uri:urn:company:alice".into(),
                expires_at: unix_now() + 3600,
                delegatable: true,
                domain: None,
            },
        )
        .unwrap();
        let one = token::delegate(
            &identity,
            None,
            &Delegation::new("uri:urn:company:alice:agent1", unix_now() + 3600),
        )
        .unwrap();
        let two = token::delegate(
            &one.token,
            None,
            &Delegation::new(WORKER, unix_now() + 3600),
        )
        .unwrap()
        .token;
        let results = vec![
            load(
                "public_key (floor)",
                anonymous.clone(),
                url("/public_key"),
                None,
                None,
            )
            .await,
            load(
                "request_token by mTLS",
                alice,
                url("/request_token"),
                Some(read.clone()),
                None,
            )
            .await,
            load(
                "request_token by Bearer (depth 2)",
                anonymous,
                url("/request_token"),
                Some(read),
                Some(two.clone()),
            )
            .await,
        ];
        (results, two)
    });
    server_runtime.block_on(running.shutdown());
    let (results, presented) = results;
    let (work, mint_work) = token_work(&root, &presented);
    let bound = cores as f64 / work;
    let mtls_bound = cores as f64 / mint_work;
    let floor = results[0].throughput();
    println!(
        "{CONCURRENCY} keep-alive clients, {} s per scenario, {cores} cores (client and server share them)",
        DURATION.as_secs()
    );
    println!(
        "| scenario | requests/s | p50 | p99 | errors | vs floor | server CPU per request | server alone (cores ÷ CPU) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &results {
        let cpu = r.server_cpu_per_request();
        println!(
            "| {} | {:.0} | {:.2?} | {:.2?} | {} | {:.2}× | {:.1} µs | {:.0} |",
            r.name,
            r.throughput(),
            r.p50,
            r.p99,
            r.errors,
            r.throughput() / floor,
            cpu * 1e6,
            cores as f64 / cpu.max(f64::MIN_POSITIVE)
        );
    }
    // Two readings of the same target: throughput with the load generator on the same cores
    // (what the machine served), and the server's own CPU per request (what it would serve
    // with the cores to itself). In both, the bound is cores ÷ the token work alone.
    let report = |what: &str, r: &Result, work: f64, bound: f64| {
        let cpu = r.server_cpu_per_request();
        println!(
            "{what}: token work {:.1} µs → bound {cores} ÷ that = {bound:.0} requests/s; reached {:.0} = {:.0}% of the bound with the load generator on the same cores; the server's own CPU per request {:.1} µs = {:.0}% token work, {:.1} µs the rest (server alone: {:.0}% of the bound)",
            work * 1e6,
            r.throughput(),
            100.0 * r.throughput() / bound,
            cpu * 1e6,
            100.0 * work / cpu,
            (cpu - work) * 1e6,
            100.0 * work / cpu,
        );
    };
    report(
        "Bearer (verify presented through the verified-token memo as the server does, + mint answer)",
        &results[2],
        work,
        bound,
    );
    report("mTLS (mint answer)", &results[1], mint_work, mtls_bound);
    let floor_cpu = results[0].server_cpu_per_request();
    println!(
        "floor: the server's CPU per public_key request (TLS, HTTP, JSON, no token work) {:.1} µs",
        floor_cpu * 1e6
    );
}
