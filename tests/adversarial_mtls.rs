//! Hostile client certificates against the real server: none, self-signed, from another CA,
//! expired, not yet valid, a SAN the policy does not know, several identities in one certificate,
//! a server certificate presented as a client's. Each is refused (at the handshake, or with a
//! status and a message), the refusal is audited, and the server keeps serving honest clients.

mod support;

use std::time::Duration as StdDuration;

use hessra_console::pki::{DevCa, Issued};
use hessra_console::server::{self, RunningServer, ServerConfig};
use hessra_console::workspace::{self, Workspace};
use serde_json::{Value, json};
use support::{get, post};

const ALICE: &str = "uri:urn:company:alice";
const OPS: &str = "uri:urn:company:ops";

struct Arena {
    _dir: tempfile::TempDir,
    ws: Workspace,
    server: RunningServer,
    /// A second CA the server trusts (given at start-up), to issue the odd certificates with.
    extra: DevCa,
}

impl Arena {
    async fn new() -> Arena {
        server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace::init(dir.path(), false).unwrap();
        let extra = DevCa::generate("test CA the server trusts").unwrap();
        let server = server::start(ServerConfig {
            client_ca_pem: Some(extra.cert_pem.clone()),
            poll_interval: None,
            ..ws.server_config("127.0.0.1:0".parse().unwrap()).unwrap()
        })
        .await
        .unwrap();
        Arena {
            _dir: dir,
            ws,
            server,
            extra,
        }
    }

    fn client(&self, identity: Option<&Issued>) -> reqwest::Client {
        let ca = std::fs::read(&self.ws.ca_cert).unwrap();
        let mut builder = reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
            .timeout(StdDuration::from_secs(10));
        if let Some(issued) = identity {
            let pem = format!("{}{}", issued.cert_pem, issued.key_pem);
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    fn workspace_client(&self, identity: &str) -> reqwest::Client {
        let (cert, key) = self.ws.client_cert(identity);
        let issued = Issued {
            cert_pem: std::fs::read_to_string(cert).unwrap(),
            key_pem: std::fs::read_to_string(key).unwrap(),
        };
        self.client(Some(&issued))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn status_of(&self, client: &reqwest::Client) -> Result<(u16, String), String> {
        let response = client
            .post(self.url("/request_identity_token"))
            .json(&json!({ "identifier": null }))
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        Ok((
            status,
            body["response_msg"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ))
    }

    async fn last_audit(&self) -> Value {
        let (_, audit) = get(&self.workspace_client(OPS), &self.url("/audit")).await;
        audit["events"].as_array().unwrap().last().unwrap().clone()
    }

    async fn still_serving(&self, name: &str) {
        let (status, body) = post(
            &self.workspace_client(ALICE),
            &self.url("/request_identity_token"),
            json!({ "identifier": null }),
            None,
        )
        .await;
        assert_eq!(status, 200, "{name}: stopped serving: {body}");
    }

    /// The handshake fails, the refusal is audited with the reason, and others are served.
    async fn refused_at_handshake(&self, name: &str, identity: &Issued, why: &str) {
        let result = self.status_of(&self.client(Some(identity))).await;
        assert!(result.is_err(), "{name}: accepted: {result:?}");
        let last = self.last_audit().await;
        assert_eq!(last["endpoint"], "tls-handshake", "{name}: {last}");
        let reason = last["reason"].as_str().unwrap();
        assert!(
            reason.contains(why),
            "{name}: {reason:?} does not say {why:?}"
        );
        self.still_serving(name).await;
    }

    /// The handshake succeeds but the request is refused with a status and a message.
    async fn refused_by_request(
        &self,
        name: &str,
        client: &reqwest::Client,
        status: u16,
        why: &str,
    ) {
        let (got, message) = self.status_of(client).await.unwrap();
        assert_eq!(got, status, "{name}: {message}");
        assert!(
            message.contains(why),
            "{name}: {message:?} does not say {why:?}"
        );
        let last = self.last_audit().await;
        assert_eq!(last["reason"].as_str().unwrap(), message, "{name}: {last}");
        assert_ne!(last["result"], "allow");
        self.still_serving(name).await;
    }
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_client_certificates_are_refused_and_audited() {
    let arena = Arena::new().await;
    let now = time::OffsetDateTime::now_utc();

    arena
        .refused_by_request(
            "no certificate",
            &arena.client(None),
            401,
            "client certificate",
        )
        .await;

    let rogue = DevCa::generate("rogue CA").unwrap();
    let self_signed = Issued {
        cert_pem: rogue.cert_pem.clone(),
        key_pem: rogue.key_pem.clone(),
    };
    arena
        .refused_at_handshake("self-signed", &self_signed, "certificate")
        .await;
    arena
        .refused_at_handshake(
            "another CA",
            &rogue.issue_client(ALICE).unwrap(),
            "UnknownIssuer",
        )
        .await;

    let expired = arena
        .extra
        .issue_client_for(&[ALICE], now - days(30), now - days(1))
        .unwrap();
    arena
        .refused_at_handshake("expired", &expired, "expired")
        .await;
    let early = arena
        .extra
        .issue_client_for(&[ALICE], now + days(1), now + days(30))
        .unwrap();
    arena
        .refused_at_handshake("not yet valid", &early, "not valid")
        .await;
    let server_cert = arena.extra.issue_server(&["localhost"]).unwrap();
    arena
        .refused_at_handshake(
            "server certificate as a client's",
            &server_cert,
            "certificate",
        )
        .await;

    // Trusted CA, but identities the policy does not allow.
    let mallory = arena.extra.issue_client("uri:urn:company:mallory").unwrap();
    arena
        .refused_by_request(
            "SAN not in the policy",
            &arena.client(Some(&mallory)),
            403,
            "not configured",
        )
        .await;
    // Schemes match in any case, the identity exactly: identities are compared exactly in
    // tokens and policy, so a certificate for another spelling is another identity.
    let shouted = arena.extra.issue_client("URI:URN:company:ALICE").unwrap();
    arena
        .refused_by_request(
            "SAN naming alice in another case",
            &arena.client(Some(&shouted)),
            403,
            "not configured",
        )
        .await;
    let schemes = arena.extra.issue_client("URI:URN:company:alice").unwrap();
    assert_eq!(
        arena
            .status_of(&arena.client(Some(&schemes)))
            .await
            .unwrap()
            .0,
        200,
        "the schemes' case does not matter"
    );
    let two = arena
        .extra
        .issue_client_for(
            &[ALICE, "uri:urn:company:ci"],
            now - days(1),
            now + days(30),
        )
        .unwrap();
    arena
        .refused_by_request(
            "several identities",
            &arena.client(Some(&two)),
            403,
            "several configured identities",
        )
        .await;

    // The extra CA itself works for an honest certificate.
    let honest = arena.extra.issue_client(ALICE).unwrap();
    assert_eq!(
        arena
            .status_of(&arena.client(Some(&honest)))
            .await
            .unwrap()
            .0,
        200
    );
    arena.server.shutdown().await;
}

/// Slow clients — one that never starts its handshake, one that trickles its request headers —
/// are cut off after the slow-client timeout while honest clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_without_starving_others() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace::init(dir.path(), false).unwrap();
    let server = server::start(ServerConfig {
        poll_interval: None,
        slow_client_timeout: StdDuration::from_millis(400),
        ..ws.server_config("127.0.0.1:0".parse().unwrap()).unwrap()
    })
    .await
    .unwrap();

    // Silent: TCP connected, no handshake.
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Trickling: TLS done, then a request line and a header, and nothing more.
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(&ws.ca_cert).unwrap();
    use rustls_pki_types::pem::PemObject;
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut trickling = connector.connect(name, tcp).await.unwrap();
    trickling
        .write_all(b"POST /request_token HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();

    // Honest clients are served while both hang.
    let honest = {
        let (cert, key) = ws.client_cert(ALICE);
        let mut pem = std::fs::read(cert).unwrap();
        pem.extend(std::fs::read(key).unwrap());
        reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
            .identity(reqwest::Identity::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    };
    for _ in 0..5 {
        let (status, body) = post(
            &honest,
            &format!("{}/request_identity_token", server.url()),
            json!({ "identifier": null }),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    // Both are dropped once the timeout passes: reads end instead of waiting forever.
    let mut buffer = [0u8; 256];
    let silent_read =
        tokio::time::timeout(StdDuration::from_secs(5), silent.read(&mut buffer)).await;
    assert!(
        matches!(silent_read, Ok(Ok(0)) | Ok(Err(_))),
        "the silent connection was not closed: {silent_read:?}"
    );
    let trickle_read =
        tokio::time::timeout(StdDuration::from_secs(5), trickling.read(&mut buffer)).await;
    match trickle_read {
        Ok(Ok(n)) => {
            let answer = String::from_utf8_lossy(&buffer[..n]);
            assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        }
        Ok(Err(_)) => {}
        Err(_) => panic!("the trickling connection was not closed"),
    }
    server.shutdown().await;
}
