//! Token verification runs on a bounded pool, off the async workers: a burst of costly Bearer
//! tokens that fills it is answered 503 with `Retry-After` quickly (or 503 at the request
//! deadline when the queue wait is longer), never a hang, while requests that need no
//! verification are served throughout and verification works again once the burst is over.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hessra_console::server::{ServerConfig, ServerLimits};
use hessra_console::token::{self, Delegation, IdentityClaims, clock::unix_now, keys};
use serde_json::json;
use support::{Demo, post};

const ALICE: &str = "uri:urn:company:alice";
/// Concurrent costly requests in a burst.
const BURST: usize = 48;
/// Delegation levels of each costly token: each level is one more signature and one more
/// block of Datalog to check on first sight.
const DEPTH: usize = 8;

async fn start(limits: ServerLimits) -> Demo {
    Demo::start_configured(|config| ServerConfig { limits, ..config }).await
}

/// Distinct valid identity tokens of alice delegated `DEPTH` levels down (never seen by the
/// server, so each costs a full first-sight verification).
fn costly_tokens(demo: &Demo, count: usize) -> Vec<String> {
    let root = keys::read_private_key_file(&demo.ws.root_key).unwrap();
    let expires_at = unix_now() + 600;
    (0..count)
        .map(|_| {
            let mut text = token::mint_identity(
                &root,
                &IdentityClaims {
                    subject: ALICE.into(),
                    expires_at,
                    delegatable: true,
                    domain: None,
                },
            )
            .unwrap();
            let mut identity = ALICE.to_string();
            for level in 1..=DEPTH {
                identity = format!("{identity}:a{level}");
                text = token::delegate(&text, None, &Delegation::new(&identity, expires_at))
                    .unwrap()
                    .token;
            }
            text
        })
        .collect()
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    message: String,
    took: Duration,
}

/// Sends every token as Bearer at `/request_token` at once, each over a connection opened
/// beforehand, so they arrive together.
async fn burst(demo: &Demo, tokens: Vec<String>) -> Vec<Answer> {
    let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let mut sent = Vec::new();
    for token in tokens {
        let client = demo.anonymous();
        let (status, _) = support::get(&client, &demo.url("/public_key")).await;
        assert_eq!(status, 200);
        let (barrier, url) = (barrier.clone(), demo.url("/request_token"));
        sent.push(tokio::spawn(async move {
            barrier.wait().await;
            let started = Instant::now();
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "resource": "production_api", "operation": "read" }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body: serde_json::Value = response.json().await.unwrap();
            Answer {
                status,
                retry_after,
                message: body["response_msg"].as_str().unwrap().to_string(),
                took: started.elapsed(),
            }
        }));
    }
    let mut answers = Vec::new();
    for one in sent {
        answers.push(one.await.unwrap());
    }
    answers
}

/// Requests that need no token work, sent one after another until `stop`; each must be served
/// within `bound`. Returns how many were served.
async fn honest_without_tokens(
    demo: &Demo,
    bound: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> usize {
    let client = demo.as_identity(ALICE);
    let mut served = 0;
    while !*stop.borrow() {
        let started = Instant::now();
        let (status, body) = post(
            &client,
            &demo.url("/request_identity_token"),
            json!({ "identifier": null }),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let took = started.elapsed();
        assert!(
            took < bound,
            "an mTLS request took {took:?} during the burst"
        );
        served += 1;
    }
    served
}

async fn verify_busy_count(demo: &Demo) -> u64 {
    let series = "hessra_limit_total{limit=\"verify_busy\"}";
    support::metric(demo, &demo.server.url(), series).await
}

/// A fresh identity token of alice, valid for ten minutes.
fn alice_identity(demo: &Demo) -> String {
    let root = keys::read_private_key_file(&demo.ws.root_key).unwrap();
    token::mint_identity(
        &root,
        &IdentityClaims {
            subject: ALICE.into(),
            expires_at: unix_now() + 600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap()
}

/// Asks for a read of production_api presenting `identity` as Bearer, over `client`.
async fn bearer_request(
    demo: &Demo,
    client: &reqwest::Client,
    identity: &str,
) -> (u16, serde_json::Value) {
    post(
        client,
        &demo.url("/request_token"),
        json!({ "resource": "production_api", "operation": "read" }),
        Some(identity),
    )
    .await
}

/// After a burst, an honest Bearer request is verified and served again.
async fn bearer_works(demo: &Demo) {
    let (status, body) = bearer_request(demo, &demo.anonymous(), &alice_identity(demo)).await;
    assert_eq!(status, 200, "{body}");
}

/// One verification worker, 5 ms of queue: most of a burst of 48 depth-8 tokens is turned away
/// at once with 503, `Retry-After: 1` and a message; what is admitted is verified and decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_verification_pool_answers_503_quickly_and_others_are_served() {
    let demo = start(ServerLimits {
        verify_workers: 1,
        verify_queue_wait: Duration::from_millis(5),
        ..ServerLimits::default()
    })
    .await;
    let tokens = costly_tokens(&demo, BURST);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let honest = honest_without_tokens(&demo, Duration::from_secs(2), stopped);
    let (answers, served) = tokio::join!(
        async {
            let answers = burst(&demo, tokens).await;
            stop.send_replace(true);
            answers
        },
        honest
    );
    let busy: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    let decided = answers.len() - busy.len();
    let slowest_busy = busy.iter().map(|a| a.took).max().unwrap_or_default();
    eprintln!(
        "{} of {BURST} turned away (slowest answer {slowest_busy:?}), {decided} verified and decided; {served} mTLS requests served meanwhile",
        busy.len()
    );
    assert!(!busy.is_empty(), "the pool never filled");
    assert!(decided >= 1, "nothing was verified");
    assert!(served >= 1);
    for answer in &busy {
        assert_eq!(answer.retry_after.as_deref(), Some("1"));
        assert!(
            answer.message.contains("busy verifying tokens"),
            "{}",
            answer.message
        );
        assert!(
            answer.took < Duration::from_secs(1),
            "a 503 took {:?}",
            answer.took
        );
    }
    for answer in answers.iter().filter(|a| a.status != 503) {
        // The delegated identity is not in the policy: verified, then refused by the policy.
        assert_eq!(answer.status, 403, "{}", answer.message);
    }
    assert!(verify_busy_count(&demo).await >= busy.len() as u64);
    bearer_works(&demo).await;
}

/// With a queue wait longer than the request deadline (100 ms), the requests still waiting
/// for the one worker at the deadline get 503 then: no request waits past its deadline. (96
/// first sights of depth-8 tokens take ~0.4 s of one worker here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_past_the_request_deadline_gets_503() {
    let demo = start(ServerLimits {
        verify_workers: 1,
        verify_queue_wait: Duration::from_secs(30),
        request_timeout: Duration::from_millis(100),
        ..ServerLimits::default()
    })
    .await;
    let answers = burst(&demo, costly_tokens(&demo, 2 * BURST)).await;
    let late: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    let slowest = answers.iter().map(|a| a.took).max().unwrap_or_default();
    eprintln!(
        "{} of {} past the 100 ms deadline; slowest answer {slowest:?}",
        late.len(),
        answers.len()
    );
    assert!(
        !late.is_empty(),
        "the burst fit in the deadline: make it costlier"
    );
    for answer in &late {
        assert_eq!(answer.retry_after.as_deref(), Some("1"));
        assert!(
            answer.message.contains("did not answer within 100 ms"),
            "{}",
            answer.message
        );
    }
    assert!(
        slowest < Duration::from_millis(1_100),
        "an answer took {slowest:?}"
    );
    bearer_works(&demo).await;
}

/// Bearer requests presenting an identity token the server has already verified, sent one
/// after another until `stop`; each must be served (200) within `bound`. Returns how many were.
async fn honest_with_a_known_token(
    demo: &Demo,
    identity: &str,
    bound: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> usize {
    let client = demo.anonymous();
    let mut served = 0;
    while !*stop.borrow() {
        let started = Instant::now();
        let (status, body) = bearer_request(demo, &client, identity).await;
        assert_eq!(status, 200, "a known Bearer token was refused: {body}");
        let took = started.elapsed();
        assert!(took < bound, "a known Bearer request took {took:?}");
        served += 1;
    }
    served
}

/// An identity token the server has verified before, made only of plain checks, is decided
/// without the pool (a memo lookup and a few comparisons): while a burst of first sights fills
/// the pool and is turned away, agents presenting their known tokens are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_plain_bearer_tokens_are_served_while_the_pool_is_full() {
    let demo = start(ServerLimits {
        verify_workers: 1,
        verify_queue_wait: Duration::from_millis(5),
        ..ServerLimits::default()
    })
    .await;
    let identity = alice_identity(&demo);
    // The first use is a first sight, through the pool.
    let (status, body) = bearer_request(&demo, &demo.anonymous(), &identity).await;
    assert_eq!(status, 200, "{body}");
    let tokens = costly_tokens(&demo, BURST);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // Four agents at once, so that some of their requests arrive while the pool is full.
    let agent =
        || honest_with_a_known_token(&demo, &identity, Duration::from_secs(2), stopped.clone());
    let known = async {
        let (a, b, c, d) = tokio::join!(agent(), agent(), agent(), agent());
        a + b + c + d
    };
    let (answers, served) = tokio::join!(
        async {
            let answers = burst(&demo, tokens).await;
            stop.send_replace(true);
            answers
        },
        known
    );
    let busy = answers.iter().filter(|a| a.status == 503).count();
    eprintln!("{busy} of {BURST} first sights turned away; {served} known Bearer requests served");
    assert!(busy > 0, "the pool never filled");
    assert!(served >= 1);
}
