//! Raw clients for what reqwest hides: a TLS connection that stays silent, HTTP/1 requests
//! written by hand on one connection, HTTP/2 frames, and timing how soon the server closes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hessra_console::workspace::Workspace;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A TLS client that trusts the workspace CA, presents `identity`'s demo certificate when given,
/// and offers the ALPN protocols given (`b"h2"`, `b"http/1.1"`).
pub fn connector(ws: &Workspace, identity: Option<&str>, alpn: &[&[u8]]) -> TlsConnector {
    hessra_console::server::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(&ws.ca_cert).unwrap();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = match identity {
        Some(identity) => {
            let (cert, key) = ws.client_cert(identity);
            let chain = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

/// TCP connect and TLS handshake to the server at `addr` (named `localhost`).
pub async fn connect(addr: std::net::SocketAddr, connector: &TlsConnector) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

/// Reads until the server closes the connection (end of stream or an error) and returns how
/// long that took and what arrived meanwhile; panics if it is still open after `within`.
pub async fn closed_within(
    stream: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = within.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (start.elapsed(), received),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!(
                "the server did not close the connection within {within:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

/// Writes an HTTP/1.1 request (keep-alive) with a JSON body if given; an error means the
/// server has closed the connection.
pub async fn send_h1(
    stream: &mut (impl AsyncWrite + Unpin),
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<()> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n");
    if let Some(body) = body {
        request.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or_default());
    stream.write_all(request.as_bytes()).await
}

#[derive(Debug)]
pub struct H1Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl H1Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 response with a Content-Length body; `None` when the server closed the
/// connection before sending anything.
pub async fn read_h1(stream: &mut (impl AsyncRead + Unpin)) -> Option<H1Response> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) if received.is_empty() => return None,
            Ok(0) | Err(_) => panic!(
                "connection closed inside a response: {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = received[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "connection closed inside a response body");
        body.extend_from_slice(&buffer[..n]);
    }
    Some(H1Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const H2_DATA: u8 = 0;
pub const H2_HEADERS: u8 = 1;
pub const H2_SETTINGS: u8 = 4;
pub const H2_PING: u8 = 6;
pub const H2_GOAWAY: u8 = 7;
/// Flag: END_STREAM on HEADERS and DATA, ACK on SETTINGS and PING.
pub const H2_END_STREAM_OR_ACK: u8 = 0x1;
pub const H2_END_HEADERS: u8 = 0x4;

#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

pub async fn write_frame(stream: &mut Tls, kind: u8, flags: u8, stream_id: u32, payload: &[u8]) {
    let length = (payload.len() as u32).to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags];
    frame.extend_from_slice(&stream_id.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame).await.unwrap();
}

/// The next frame, or the error that ended the connection (end of stream included).
pub async fn read_frame(stream: &mut Tls) -> std::io::Result<Frame> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await?;
    let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await?;
    Ok(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    })
}

/// Starts an HTTP/2 connection: the preface and empty SETTINGS.
pub async fn h2_start(stream: &mut Tls) {
    stream.write_all(H2_PREFACE).await.unwrap();
    write_frame(stream, H2_SETTINGS, 0, 0, &[]).await;
}

/// Sends `GET path` on `stream_id` as one HEADERS frame with END_STREAM (HPACK literals: no
/// table, no Huffman).
pub async fn h2_get(stream: &mut Tls, stream_id: u32, path: &str) {
    let mut block = vec![0x82, 0x87]; // :method GET, :scheme https (static table)
    for (name_index, value) in [(4u8, path), (1u8, "localhost")] {
        block.push(0x40 | name_index); // literal with indexing, indexed name (:path, :authority)
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    write_frame(
        stream,
        H2_HEADERS,
        H2_END_STREAM_OR_ACK | H2_END_HEADERS,
        stream_id,
        &block,
    )
    .await;
}
