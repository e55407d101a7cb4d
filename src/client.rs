//! A client for the Hessra protocol (our server or any other): HTTPS with an optional client
//! certificate, trusting a given CA bundle. Used by the CLI and, later, the console.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::MessageResponse;

/// Client failures: connection problems, and non-2xx answers with the server's message.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Setup(String),
    #[error("cannot reach {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("{status}: {message}")]
    Status { status: u16, message: String },
    #[error("unexpected answer from {url}: {detail}")]
    Body { url: String, detail: String },
}

/// Where the server is and how to talk to it.
pub struct Connection {
    base: String,
    http: reqwest::Client,
}

impl Connection {
    /// `server` is a host (optionally `host:port` or an https URL); `port` applies when the host
    /// names none. `ca_pem` is trusted alone; `identity_pem` is a certificate and its key.
    pub fn new(
        server: &str,
        port: u16,
        ca_pem: Option<&[u8]>,
        identity_pem: Option<&[u8]>,
    ) -> Result<Connection, ClientError> {
        crate::server::install_crypto_provider();
        let host = server
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let has_port = host.rsplit_once(':').is_some_and(|(h, p)| {
            !h.ends_with(':') && p.parse::<u16>().is_ok() && !host.starts_with('[')
        });
        let base = if has_port {
            format!("https://{host}")
        } else {
            format!("https://{host}:{port}")
        };
        let mut builder = reqwest::Client::builder().http1_only();
        if let Some(ca) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| ClientError::Setup(format!("CA bundle: {e}")))?;
            builder = builder.tls_certs_only(certs);
        }
        if let Some(identity) = identity_pem {
            let identity = reqwest::Identity::from_pem(identity)
                .map_err(|e| ClientError::Setup(format!("client certificate and key: {e}")))?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Connection { base, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| connect_error(&url, &e))?;
        decode(&url, response).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        bearer: Option<&str>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.post(&url).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| connect_error(&url, &e))?;
        decode(&url, response).await
    }
}

fn connect_error(url: &str, error: &reqwest::Error) -> ClientError {
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail = format!("{detail}: {cause}");
        source = cause.source();
    }
    ClientError::Connect {
        url: url.to_string(),
        detail,
    }
}

async fn decode<T: DeserializeOwned>(
    url: &str,
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let status = response.status();
    let text = response.text().await.map_err(|e| ClientError::Body {
        url: url.into(),
        detail: e.to_string(),
    })?;
    if !status.is_success() {
        let message = serde_json::from_str::<MessageResponse>(&text)
            .map(|m| m.response_msg)
            .unwrap_or(text);
        return Err(ClientError::Status {
            status: status.as_u16(),
            message,
        });
    }
    serde_json::from_str(&text).map_err(|e| ClientError::Body {
        url: url.into(),
        detail: e.to_string(),
    })
}
