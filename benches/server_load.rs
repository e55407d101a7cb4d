//! A bounded load generator against the real server on loopback: N concurrent keep-alive
//! clients for a fixed time per scenario — `public_key` (the floor of the same TLS/HTTP stack),
//! `request_token` by mTLS, and `request_token` by a depth-2 Bearer identity token. Reports
//! throughput, p50/p99 latency and errors, and compares Bearer throughput with the bound set by
//! the token work alone (cores ÷ (verify of the presented token + mint of the answer)), measured
//! in the same run.
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

struct Result {
    name: &'static str,
    requests: u64,
    errors: u64,
    p50: Duration,
    p99: Duration,
    elapsed: Duration,
}

impl Result {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
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
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Result {
        name,
        requests: latencies.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        p50: at(0.50),
        p99: at(0.99),
        elapsed,
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
    let start = Instant::now();
    for _ in 0..iterations {
        let check = IdentityVerification::new(Actor::Effective, unix_now());
        let verified = token::verify_identity(presented, &root.public(), &check).unwrap();
        mint(verified.identity);
    }
    let bearer = start.elapsed().as_secs_f64() / f64::from(iterations);
    let start = Instant::now();
    for _ in 0..iterations {
        mint("uri:urn:company:alice".into());
    }
    let mtls = start.elapsed().as_secs_f64() / f64::from(iterations);
    (bearer, mtls)
}

fn main() {
    server::install_crypto_provider();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
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

    let results = runtime.block_on(async {
        let config = ServerConfig {
            policy: PolicySource::File(policy_file),
            state_dir: None,
            poll_interval: None,
            ..ws.server_config("127.0.0.1:0".parse().unwrap()).unwrap()
        };
        let running = server::start(config).await.unwrap();
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
        running.shutdown().await;
        (results, two)
    });
    let (results, presented) = results;
    let (work, mint_work) = token_work(&root, &presented);
    let bound = cores as f64 / work;
    let mtls_bound = cores as f64 / mint_work;
    let floor = results[0].throughput();
    println!(
        "{CONCURRENCY} keep-alive clients, {} s per scenario, {cores} cores (client and server share them)",
        DURATION.as_secs()
    );
    println!("| scenario | requests/s | p50 | p99 | errors | vs floor |");
    println!("|---|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {:.0} | {:.2?} | {:.2?} | {} | {:.2}× |",
            r.name,
            r.throughput(),
            r.p50,
            r.p99,
            r.errors,
            r.throughput() / floor
        );
    }
    let bearer = results[2].throughput();
    println!(
        "token work per Bearer request: {:.1} µs (verify presented, through the verified-token memo as the server does, + mint answer) → bound {cores} ÷ that = {bound:.0} requests/s; Bearer reached {:.0} = {:.0}% of the bound",
        work * 1e6,
        bearer,
        100.0 * bearer / bound
    );
    let mtls = results[1].throughput();
    println!(
        "token work per mTLS request: {:.1} µs (mint answer) → bound {cores} ÷ that = {mtls_bound:.0} requests/s; mTLS reached {:.0} = {:.0}% of the bound",
        mint_work * 1e6,
        mtls,
        100.0 * mtls / mtls_bound
    );
}
