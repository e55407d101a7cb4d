//! A demo workspace with a running server on loopback, and HTTPS clients for its identities.

#![allow(dead_code)]

pub mod console;
pub mod git_bomb;
pub mod hostile;
pub mod raw;

use hessra_console::server::{self, AuditConfig, PolicySource, RunningServer, ServerConfig};
use hessra_console::token::keys;
use hessra_console::workspace::{self, Workspace};

pub struct Demo {
    pub dir: tempfile::TempDir,
    pub ws: Workspace,
    pub server: RunningServer,
}

impl Demo {
    pub async fn start() -> Demo {
        Demo::start_with(|_| None, None).await
    }

    /// Starts with the demo policy changed by `edit` (served from a file when it returns text)
    /// and, optionally, as a multi-party signer.
    pub async fn start_with(
        edit: impl FnOnce(&str) -> Option<String>,
        signer: Option<server::SignerConfig>,
    ) -> Demo {
        Demo::launch(edit, signer, |config| config).await
    }

    /// Starts on the demo policy's git origin (not polled) with the server configuration changed
    /// by `configure` (limits, timeouts).
    pub async fn start_configured(configure: impl FnOnce(ServerConfig) -> ServerConfig) -> Demo {
        Demo::launch(|_| None, None, configure).await
    }

    async fn launch(
        edit: impl FnOnce(&str) -> Option<String>,
        signer: Option<server::SignerConfig>,
        configure: impl FnOnce(ServerConfig) -> ServerConfig,
    ) -> Demo {
        server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace::init(dir.path(), false).unwrap();
        let original = std::fs::read_to_string(ws.policy_file()).unwrap();
        let policy = match edit(&original) {
            Some(text) => {
                let file = dir.path().join("edited.toml");
                std::fs::write(&file, text).unwrap();
                PolicySource::File(file)
            }
            None => PolicySource::Git {
                repo: ws.origin.clone(),
                branch: "main".into(),
            },
        };
        let config = ServerConfig {
            policy,
            signer,
            state_dir: None,
            poll_interval: None,
            ..ws.server_config("127.0.0.1:0".parse().unwrap()).unwrap()
        };
        let server = server::start(configure(config)).await.unwrap();
        Demo { dir, ws, server }
    }

    /// A second server on this workspace (its git origin and state directory) that polls for a
    /// new policy and key set every `poll`.
    pub async fn start_synced(&self, poll: std::time::Duration) -> RunningServer {
        server::start(ServerConfig {
            poll_interval: Some(poll),
            ..self
                .ws
                .server_config("127.0.0.1:0".parse().unwrap())
                .unwrap()
        })
        .await
        .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    fn builder(&self) -> reqwest::ClientBuilder {
        let ca = std::fs::read(&self.ws.ca_cert).unwrap();
        reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
            .http1_only()
    }

    /// A client without a certificate.
    pub fn anonymous(&self) -> reqwest::Client {
        self.builder().build().unwrap()
    }

    /// A client presenting the demo certificate of `identity`.
    pub fn as_identity(&self, identity: &str) -> reqwest::Client {
        let (cert, key) = self.ws.client_cert(identity);
        let mut pem = std::fs::read(cert).unwrap();
        pem.extend(std::fs::read(key).unwrap());
        self.builder()
            .identity(reqwest::Identity::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }

    /// Edits `clients.toml` in the working clone, commits as an operator and pushes to origin.
    pub fn push_policy(&self, change: impl FnOnce(&str) -> String, message: &str) {
        let clone = &self.ws.policy;
        let repo = git2::Repository::open(clone).unwrap();
        let mut config = repo.config().unwrap();
        config.set_str("user.name", "Operator").unwrap();
        config.set_str("user.email", "ops@example.com").unwrap();
        let file = clone.join("clients.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, change(&text)).unwrap();
        hessra_console::gitops::commit_file(clone, std::path::Path::new("clients.toml"), message)
            .unwrap();
        hessra_console::gitops::push(clone, "origin", "main").unwrap();
    }

    /// A client presenting `identity`'s demo certificate that speaks HTTP/2 (offered by ALPN).
    pub fn as_identity_http2(&self, identity: &str) -> reqwest::Client {
        let ca = std::fs::read(&self.ws.ca_cert).unwrap();
        let (cert, key) = self.ws.client_cert(identity);
        let mut pem = std::fs::read(cert).unwrap();
        pem.extend(std::fs::read(key).unwrap());
        reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
            .identity(reqwest::Identity::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }

    pub fn root_public(&self) -> hessra_console::token::PublicKey {
        keys::read_private_key_file(&self.ws.root_key)
            .unwrap()
            .public()
    }
}

/// POSTs JSON and returns (status, body).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
    bearer: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = client.post(url).json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({ "raw": text })),
    )
}

pub async fn get(client: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Runs a call into the published Hessra crates, retrying while biscuit-auth's 1 ms default
/// Datalog limit (which they keep) decides instead of the token: on a loaded machine that limit
/// rejects valid tokens. Any other error is returned at once.
pub fn published<T, E: std::fmt::Debug>(call: impl Fn() -> Result<T, E>) -> Result<T, E> {
    let mut attempts = 0;
    loop {
        match call() {
            Err(e) if attempts < 20 && format!("{e:?}").contains("too much time") => {
                attempts += 1;
            }
            other => return other,
        }
    }
}

/// The other half of a P-256 signature pair, made as any holder can, without a key: `token` with
/// block `block`'s signature `(r, s)` re-encoded as `(r, n − s)`. Panics on an Ed25519 block.
pub fn p256_twin(token: &str, block: usize) -> String {
    with_signature(token, block, |der| {
        let signature = p256::ecdsa::Signature::from_der(der).expect("a P-256 block");
        let (r, s) = signature.split_scalars();
        p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes())
            .unwrap()
            .to_der()
            .as_bytes()
            .to_vec()
    })
}

/// `token` with block `block`'s signature bytes replaced by `change(signature)`.
pub fn with_signature(token: &str, block: usize, change: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    use prost::Message;
    let bytes = hessra_console::token::decode(token).unwrap();
    let mut container = biscuit_auth::format::schema::Biscuit::decode(bytes.as_slice()).unwrap();
    let signed = match block {
        0 => &mut container.authority,
        n => &mut container.blocks[n - 1],
    };
    signed.signature = change(&signed.signature);
    hessra_console::token::encode(&container.encode_to_vec())
}

/// The revocation ids as biscuit-auth (and the published Hessra crates) report them: the raw
/// signature bytes, in hex.
pub fn raw_revocation_ids(token: &str) -> Vec<String> {
    biscuit_auth::UnverifiedBiscuit::from_base64(token)
        .unwrap()
        .revocation_identifiers()
        .iter()
        .map(hex::encode)
        .collect()
}

/// Whether a block's P-256 signature (DER) has `s` in the upper half of the group order.
pub fn is_high_s(der: &[u8]) -> bool {
    p256::ecdsa::Signature::from_der(der)
        .unwrap()
        .normalize_s()
        .is_some()
}

/// Resident memory of this process, in bytes (`/proc/self/statm`), for tests that bound what an
/// attack makes the server grow.
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// An authorization token for reading production_api, asked of `server` with `bearer` (an
/// identity token) and no certificate: (status, body).
pub async fn use_token(
    demo: &Demo,
    server: &RunningServer,
    bearer: &str,
) -> (u16, serde_json::Value) {
    post(
        &demo.anonymous(),
        &format!("{}/request_token", server.url()),
        serde_json::json!({ "resource": "production_api", "operation": "read" }),
        Some(bearer),
    )
    .await
}

/// Alice's identity token from the server running at `server`, by her certificate.
pub async fn alice_identity_token(demo: &Demo, server: &RunningServer) -> String {
    let (status, body) = post(
        &demo.as_identity("uri:urn:company:alice"),
        &format!("{}/request_identity_token", server.url()),
        serde_json::json!({ "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// `/metrics` of the server at `base` (`https://HOST:PORT`), read as the demo operator.
pub async fn metrics_text(demo: &Demo, base: &str) -> String {
    demo.as_identity("uri:urn:company:ops")
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one series (`name{labels}`, as written) of `/metrics` at `base`.
pub async fn metric(demo: &Demo, base: &str, series: &str) -> u64 {
    let text = metrics_text(demo, base).await;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{series} ")))
        .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
        .parse()
        .unwrap()
}

/// Another server on the demo workspace's policy, writing its audit trail to `file` as
/// `audit` says, not polling for a new policy.
pub async fn start_audited(
    demo: &Demo,
    file: &std::path::Path,
    audit: AuditConfig,
) -> RunningServer {
    server::start(ServerConfig {
        audit_file: Some(file.to_path_buf()),
        audit,
        state_dir: None,
        poll_interval: None,
        ..demo
            .ws
            .server_config("127.0.0.1:0".parse().unwrap())
            .unwrap()
    })
    .await
    .unwrap()
}

/// Runs the `hessra-console` binary: its exit status and what it printed (stdout, then stderr).
pub fn run_cli(args: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hessra-console"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

/// `hessra-console serve ARGS` in its own process, its standard error dropped: the child and
/// the https URL it prints once it listens (the process is the caller's to kill).
pub fn serve_process(args: &[&std::ffi::OsStr]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hessra-console"))
        .arg("serve")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap_or_else(|| panic!("serve did not say where it listens: {line:?}"))
        .to_string();
    (child, url)
}

/// The unused-access entries of a review report's JSON, each as `IDENTITY OPERATION RESOURCE`
/// (`-` where an entry has none).
pub fn report_unused(report: &serde_json::Value) -> Vec<String> {
    report["unused"]["entries"]
        .as_array()
        .expect("the report lists unused access")
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["identity"].as_str().unwrap(),
                e["operation"].as_str().unwrap_or("-"),
                e["resource"].as_str().unwrap_or("-")
            )
        })
        .collect()
}
