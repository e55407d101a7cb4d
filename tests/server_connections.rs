//! Connections against the real server over TLS: every protocol state has a deadline (after the
//! handshake, HTTP/1 keep-alive, HTTP/2 with and without answered pings, request bodies, the
//! connection's age); 1,100 silent connections held open and re-opened do not keep honest clients
//! out; a CA removed from the policy cuts off connections already open; an oversized body gets a
//! 413 the client reads.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hessra_console::pki::DevCa;
use hessra_console::policy::{Edit, EditSession};
use hessra_console::server::{MAX_BODY, MAX_CONNECTIONS, ServerConfig, ServerLimits};
use hessra_console::token::clock::unix_now;
use serde_json::json;
use support::raw::{self, H2_END_STREAM_OR_ACK, H2_GOAWAY, H2_PING, H2_SETTINGS};
use support::{Demo, get, post};
use tokio::io::AsyncReadExt;

const ALICE: &str = "uri:urn:company:alice";
const H1: &[&[u8]] = &[b"http/1.1"];
const H2: &[&[u8]] = &[b"h2"];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A demo server with a slow-client deadline and limits changed from the defaults.
async fn start(slow_client: Duration, limits: ServerLimits) -> Demo {
    Demo::start_configured(|config| ServerConfig {
        slow_client_timeout: slow_client,
        limits,
        ..config
    })
    .await
}

/// `hessra_limit_total{limit=NAME}` from `/metrics`.
async fn limit_count(demo: &Demo, name: &str) -> u64 {
    let series = format!("hessra_limit_total{{limit=\"{name}\"}}");
    support::metric(demo, &demo.server.url(), &series).await
}

async fn identity_token_status(client: &reqwest::Client, demo: &Demo) -> u16 {
    post(
        client,
        &demo.url("/request_identity_token"),
        json!({ "identifier": null }),
        None,
    )
    .await
    .0
}

/// The attacker: `MAX_CONNECTIONS + 76` connections that complete TLS and never send a byte,
/// each re-opened as soon as the server closes it. With the defaults (first request within
/// 10 s, idle 120 s) such a flood would keep every slot; while the server is full it sheds idle
/// connections after `idle_timeout_when_full` (1 s), so an honest client in the accept queue is
/// served within a couple of seconds, however long the flood lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_clients_are_served_while_1100_silent_connections_are_held_and_reopened() {
    const FLOOD: usize = 1_100;
    const BOUND: Duration = Duration::from_secs(5);
    let demo = Demo::start_configured(|config| config).await;
    let silent = Arc::new(raw::connector(&demo.ws, None, H1));
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let closed_by_server = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        let (silent, open, peak, closed) = (
            silent.clone(),
            open.clone(),
            peak.clone(),
            closed_by_server.clone(),
        );
        let addr = demo.server.addr;
        flood.push(tokio::spawn(async move {
            loop {
                let Ok(mut tls) = raw::connect(addr, &silent).await else {
                    tokio::time::sleep(ms(20)).await;
                    continue;
                };
                peak.fetch_max(open.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                let mut byte = [0u8; 1];
                let _ = tls.read(&mut byte).await;
                open.fetch_sub(1, Ordering::SeqCst);
                closed.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // The server sheds as soon as it is full, so the attacker never sees all 1,024 at once.
    let filling = Instant::now();
    while peak.load(Ordering::SeqCst) < MAX_CONNECTIONS - 24 {
        assert!(
            filling.elapsed() < Duration::from_secs(120),
            "the flood never filled the server: {} connections",
            peak.load(Ordering::SeqCst)
        );
        tokio::time::sleep(ms(50)).await;
    }
    eprintln!(
        "flood: {} silent connections held at once after {:?}",
        peak.load(Ordering::SeqCst),
        filling.elapsed()
    );

    // Each honest request opens a new connection, so it needs a slot of its own.
    let mut slowest = Duration::ZERO;
    for round in 0..8 {
        let started = Instant::now();
        let status = identity_token_status(&demo.as_identity(ALICE), &demo).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "round {round}");
        assert!(took < BOUND, "round {round}: honest request took {took:?}");
        slowest = slowest.max(took);
        // Spread over several shedding cycles (1 s each).
        tokio::time::sleep(ms(300)).await;
    }
    let shed = closed_by_server.load(Ordering::SeqCst);
    let held = open.load(Ordering::SeqCst);
    eprintln!(
        "honest: slowest of 8 {slowest:?}; flood: {shed} connections shed and re-opened, {held} open now"
    );
    assert!(
        shed >= MAX_CONNECTIONS,
        "the flood was not re-opened: {shed}"
    );
    assert!(limit_count(&demo, "idle_close_when_full").await >= MAX_CONNECTIONS as u64);
    for attacker in flood {
        attacker.abort();
    }
}

/// Before its first request a connection has the slow-client deadline, whatever it sent so far:
/// nothing, part of the HTTP/2 preface, or an HTTP/2 ALPN and nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_completes_tls_and_sends_nothing_is_closed() {
    let demo = start(ms(300), ServerLimits::default()).await;
    let addr = demo.server.addr;
    let opened = Instant::now();
    let mut nothing = raw::connect(addr, &raw::connector(&demo.ws, None, H1))
        .await
        .unwrap();
    let mut half_preface = raw::connect(addr, &raw::connector(&demo.ws, None, H2))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut half_preface, &raw::H2_PREFACE[..8])
        .await
        .unwrap();
    let mut h2_silent = raw::connect(addr, &raw::connector(&demo.ws, Some(ALICE), H2))
        .await
        .unwrap();
    for (name, stream) in [
        ("nothing", &mut nothing),
        ("half a preface", &mut half_preface),
        ("h2, nothing", &mut h2_silent),
    ] {
        raw::closed_within(stream, Duration::from_secs(5)).await;
        let after = opened.elapsed();
        assert!(
            after >= ms(250),
            "{name}: closed after {after:?}, before the deadline"
        );
        eprintln!("{name}: closed {after:?} after the first of them opened");
    }
    assert_eq!(
        identity_token_status(&demo.as_identity(ALICE), &demo).await,
        200
    );
}

/// Between requests an HTTP/1 connection has `idle_timeout`; each request restarts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_deadline() {
    let limits = ServerLimits {
        idle_timeout: ms(600),
        ..ServerLimits::default()
    };
    let demo = start(Duration::from_secs(10), limits).await;
    let mut stream = raw::connect(demo.server.addr, &raw::connector(&demo.ws, None, H1))
        .await
        .unwrap();
    for _ in 0..3 {
        raw::send_h1(&mut stream, "GET", "/public_key", None)
            .await
            .unwrap();
        assert_eq!(raw::read_h1(&mut stream).await.unwrap().status, 200);
        // Under the deadline: the connection is still there for the next request.
        tokio::time::sleep(ms(350)).await;
    }
    let (after, received) = raw::closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(received.is_empty(), "{received:?}");
    assert!(
        after >= ms(150) && after < ms(2_000),
        "closed {after:?} after the last wait (deadline 600 ms from the last answer)"
    );
    assert!(limit_count(&demo, "idle_close").await >= 1);
}

/// An HTTP/2 connection whose client answers pings but sends no request is closed at the idle
/// deadline with a GOAWAY; one whose client stops answering pings is dropped after the
/// keep-alive interval and timeout, long before the idle deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_that_goes_silent_is_closed() {
    let limits = ServerLimits {
        idle_timeout: ms(700),
        ..ServerLimits::default()
    };
    let demo = start(Duration::from_secs(10), limits).await;
    let mut stream = raw::connect(demo.server.addr, &raw::connector(&demo.ws, None, H2))
        .await
        .unwrap();
    raw::h2_start(&mut stream).await;
    raw::h2_get(&mut stream, 1, "/public_key").await;
    let started = Instant::now();
    let mut answered = false;
    let mut goaway = None;
    // A polite client: acknowledges SETTINGS and PINGs, reads everything.
    let closed = loop {
        let frame = match tokio::time::timeout(Duration::from_secs(5), raw::read_frame(&mut stream))
            .await
        {
            Ok(Ok(frame)) => frame,
            Ok(Err(_)) => break started.elapsed(),
            Err(_) => panic!("an idle HTTP/2 connection was not closed within 5 s"),
        };
        match frame.kind {
            H2_SETTINGS if frame.flags & H2_END_STREAM_OR_ACK == 0 => {
                raw::write_frame(&mut stream, H2_SETTINGS, H2_END_STREAM_OR_ACK, 0, &[]).await;
            }
            H2_PING if frame.flags & H2_END_STREAM_OR_ACK == 0 => {
                raw::write_frame(
                    &mut stream,
                    H2_PING,
                    H2_END_STREAM_OR_ACK,
                    0,
                    &frame.payload,
                )
                .await;
            }
            H2_GOAWAY => {
                // Last stream id, then the error code: NO_ERROR (0) for a graceful close.
                assert_eq!(
                    frame.payload[4..8],
                    [0, 0, 0, 0],
                    "GOAWAY {:?}",
                    frame.payload
                );
                goaway = goaway.or(Some(started.elapsed()));
            }
            raw::H2_DATA if frame.stream == 1 => answered = true,
            _ => {}
        }
    };
    assert!(answered, "the request on stream 1 was not answered");
    let goaway = goaway.expect("no GOAWAY before the close");
    assert!(
        goaway >= ms(600),
        "GOAWAY after {goaway:?}, before the idle deadline"
    );
    assert!(closed < ms(3_000), "closed after {closed:?}");

    // The same server, pinging every 200 ms with a 200 ms timeout, and a client that stops
    // answering after its request.
    let limits = ServerLimits {
        http2_keep_alive_interval: ms(200),
        http2_keep_alive_timeout: ms(200),
        ..ServerLimits::default()
    };
    let demo = start(Duration::from_secs(10), limits).await;
    let mut stream = raw::connect(demo.server.addr, &raw::connector(&demo.ws, None, H2))
        .await
        .unwrap();
    raw::h2_start(&mut stream).await;
    raw::h2_get(&mut stream, 1, "/public_key").await;
    let started = Instant::now();
    let mut pinged = false;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), raw::read_frame(&mut stream)).await {
            Ok(Ok(frame)) => pinged |= frame.kind == H2_PING && frame.flags == 0,
            Ok(Err(_)) => break started.elapsed(),
            Err(_) => panic!("a connection that does not answer pings was kept past 5 s"),
        }
    };
    assert!(pinged, "the server sent no PING");
    assert!(closed < ms(2_000), "closed after {closed:?}");
}

/// A request body must arrive within the slow-client deadline of its headers: one that stops
/// and one that trickles a byte every 50 ms (never idle) are both answered 408 and closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_body_is_cut_off() {
    let demo = start(ms(400), ServerLimits::default()).await;
    let head = "POST /verify_token HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
    for trickle in [false, true] {
        let stream = raw::connect(demo.server.addr, &raw::connector(&demo.ws, None, H1))
            .await
            .unwrap();
        let (mut reader, mut writer) = tokio::io::split(stream);
        let started = Instant::now();
        let sender = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            writer.write_all(head.as_bytes()).await?;
            writer.write_all(b"{\"token\":").await?;
            if trickle {
                loop {
                    tokio::time::sleep(ms(50)).await;
                    writer.write_all(b" ").await?;
                }
            }
            std::future::pending::<()>().await;
            Ok::<_, std::io::Error>(())
        });
        let answer = tokio::time::timeout(Duration::from_secs(5), raw::read_h1(&mut reader))
            .await
            .expect("no answer within 5 s")
            .expect("closed without an answer");
        let took = started.elapsed();
        assert_eq!(answer.status, 408, "trickle {trickle}: {answer:?}");
        assert!(
            answer.body.contains("did not arrive within 400 ms"),
            "{}",
            answer.body
        );
        assert!(
            took >= ms(350) && took < ms(2_000),
            "trickle {trickle}: {took:?}"
        );
        raw::closed_within(&mut reader, Duration::from_secs(3)).await;
        sender.abort();
    }
    assert!(limit_count(&demo, "body_timeout").await >= 2);
}

/// A connection older than `max_connection_age` is closed without cutting a request: HTTP/1
/// answers its next request with `Connection: close` and then closes, HTTP/2 gets a GOAWAY; a
/// keep-alive client sees no failure across several such closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_older_than_the_max_age_is_closed_gracefully() {
    let limits = ServerLimits {
        max_connection_age: ms(800),
        ..ServerLimits::default()
    };
    let demo = start(Duration::from_secs(10), limits).await;
    let mut stream = raw::connect(demo.server.addr, &raw::connector(&demo.ws, None, H1))
        .await
        .unwrap();
    let opened = Instant::now();
    let mut answered = 0;
    let last = loop {
        raw::send_h1(&mut stream, "GET", "/public_key", None)
            .await
            .unwrap();
        // `read_h1` panics on a response cut short.
        let response = raw::read_h1(&mut stream)
            .await
            .expect("the connection was closed under a request");
        assert_eq!(response.status, 200);
        answered += 1;
        if response.header("connection") == Some("close") {
            break opened.elapsed();
        }
        assert!(opened.elapsed() < Duration::from_secs(5), "never closed");
        tokio::time::sleep(ms(20)).await;
    };
    raw::closed_within(&mut stream, Duration::from_secs(1)).await;
    assert!(
        last >= ms(800) && last < ms(2_000),
        "retired after {last:?}"
    );
    assert!(answered >= 10, "{answered} requests answered");

    let mut stream = raw::connect(demo.server.addr, &raw::connector(&demo.ws, None, H2))
        .await
        .unwrap();
    let opened = Instant::now();
    raw::h2_start(&mut stream).await;
    raw::h2_get(&mut stream, 1, "/public_key").await;
    let goaway = loop {
        let frame = raw::read_frame(&mut stream)
            .await
            .expect("closed without a GOAWAY");
        if frame.kind == H2_GOAWAY {
            assert_eq!(frame.payload[4..8], [0, 0, 0, 0], "not a graceful GOAWAY");
            break opened.elapsed();
        }
    };
    assert!(
        goaway >= ms(750) && goaway < ms(2_000),
        "GOAWAY after {goaway:?}"
    );

    for client in [demo.as_identity(ALICE), demo.as_identity_http2(ALICE)] {
        let started = Instant::now();
        let mut requests = 0;
        while started.elapsed() < Duration::from_millis(2_500) {
            assert_eq!(identity_token_status(&client, &demo).await, 200);
            requests += 1;
            tokio::time::sleep(ms(25)).await;
        }
        eprintln!("{requests} keep-alive requests over 2.5 s, all answered");
    }
    assert!(limit_count(&demo, "age_close").await >= 4);
}

/// The policy's `[cacerts]` is checked on every request, not only at the handshake: a policy
/// change that keeps alice's CA leaves her open connection working; one that replaces it refuses
/// her next request on that same connection with 401, closes it, and new handshakes fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_ca_cuts_off_an_open_connection_at_its_next_request() {
    let demo = Demo::start().await;
    let alice = raw::connector(&demo.ws, Some(ALICE), H1);
    let mut stream = raw::connect(demo.server.addr, &alice).await.unwrap();
    let body = r#"{"identifier":null}"#;
    let ask = async |stream: &mut raw::Tls| {
        raw::send_h1(stream, "POST", "/request_identity_token", Some(body))
            .await
            .unwrap();
        raw::read_h1(stream).await
    };
    assert_eq!(ask(&mut stream).await.unwrap().status, 200);

    let edit = |edit: Edit| {
        move |text: &str| {
            let mut session = EditSession::open(text, unix_now()).unwrap();
            session.apply(&edit).unwrap();
            session.text().to_string()
        }
    };
    demo.push_policy(
        edit(Edit::Revoke {
            identity: ALICE.into(),
            resource: "staging_api".into(),
            operation: "write".into(),
        }),
        "an unrelated change",
    );
    assert!(demo.server.state.reload().unwrap());
    assert_eq!(
        ask(&mut stream).await.unwrap().status,
        200,
        "a policy change that keeps the CA cut alice off"
    );

    let other = DevCa::generate("the new client CA").unwrap();
    demo.push_policy(
        edit(Edit::SetCaChain {
            pem: other.cert_pem.clone(),
        }),
        "replace the client CA",
    );
    assert!(demo.server.state.reload().unwrap());
    let refused = ask(&mut stream).await.expect("no answer");
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(
        refused
            .body
            .contains("no longer trusted by the current policy"),
        "{}",
        refused.body
    );
    raw::closed_within(&mut stream, Duration::from_secs(3)).await;

    // A new connection with the same certificate does not get an answer.
    if let Ok(mut fresh) = raw::connect(demo.server.addr, &alice).await {
        let answer = ask(&mut fresh).await;
        assert!(answer.is_none(), "{answer:?}");
    }
    let refusal = demo
        .server
        .state
        .audit
        .after(0, 2_000)
        .into_iter()
        .find(|e| e.reason.contains("no longer trusted"))
        .expect("the refusal was not audited");
    assert_eq!(refusal.result, "deny");
    assert_eq!(refusal.endpoint, "/request_identity_token");
}

/// A request body that grows without a length, in 16 KiB pieces (HTTP/1 sends it chunked).
struct Growing {
    left: usize,
}

impl hyper::body::Body for Growing {
    type Data = hyper::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let piece = self.left.min(16 * 1024);
        if piece == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= piece;
        let data = hyper::body::Bytes::from(vec![b' '; piece]);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
    }
}

/// Over 64 KiB, with a Content-Length or chunked, over HTTP/1 and HTTP/2: reqwest reads the 413
/// and its message (no reset), and the client goes on being served. At an attacker's size, a
/// declared 10 GB body is refused before a byte of it is read, and an endless one is not read
/// past 1 MiB over the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_a_413_the_client_reads() {
    let demo = Demo::start().await;
    let url = demo.url("/request_token");
    let padded = format!(
        "{{\"resource\":\"{}\",\"operation\":\"read\"}}",
        "x".repeat(100 * 1024)
    );
    for (protocol, client) in [
        ("HTTP/1.1", demo.as_identity(ALICE)),
        ("HTTP/2", demo.as_identity_http2(ALICE)),
    ] {
        for chunked in [false, true] {
            let request = client.post(&url).header("content-type", "application/json");
            let request = match chunked {
                false => request.body(padded.clone()),
                true => request.body(reqwest::Body::wrap(Growing { left: 200 * 1024 })),
            };
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("{protocol} chunked {chunked}: no answer: {e:?}"));
            let version = response.version();
            assert_eq!(
                response.status().as_u16(),
                413,
                "{protocol} chunked {chunked}"
            );
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(
                body["response_msg"],
                format!("the request body is over the limit of {MAX_BODY} bytes"),
                "{protocol} chunked {chunked}"
            );
            let expected = match protocol {
                "HTTP/2" => reqwest::Version::HTTP_2,
                _ => reqwest::Version::HTTP_11,
            };
            assert_eq!(version, expected);
        }
        assert_eq!(
            identity_token_status(&client, &demo).await,
            200,
            "{protocol}"
        );
    }

    let mut stream = raw::connect(demo.server.addr, &raw::connector(&demo.ws, None, H1))
        .await
        .unwrap();
    let started = Instant::now();
    tokio::io::AsyncWriteExt::write_all(
        &mut stream,
        b"POST /request_token HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 10000000000\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = raw::read_h1(&mut stream).await.unwrap();
    assert_eq!(answer.status, 413);
    assert!(started.elapsed() < Duration::from_secs(1));
    raw::closed_within(&mut stream, Duration::from_secs(2)).await;

    let started = Instant::now();
    let endless = demo
        .as_identity(ALICE)
        .post(&url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap(Growing { left: usize::MAX }))
        .send()
        .await;
    // The server stops reading: the client gets the 413, or a reset while still writing.
    if let Ok(response) = endless {
        assert_eq!(response.status().as_u16(), 413);
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(limit_count(&demo, "body_too_large").await >= 5);
    let (status, _) = get(&demo.anonymous(), &demo.url("/public_key")).await;
    assert_eq!(status, 200);
}
