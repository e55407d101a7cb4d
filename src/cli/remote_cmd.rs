//! Server-backed commands, against any Hessra-protocol server: `identity authenticate`,
//! `identity refresh`, `identity mint`, `authorize request`, and `init` (discover and cache the
//! server's public key and CA).

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::CommandResult;
use super::TokenSource;
use super::input::{load_token, read_token_file};
use super::output::{Failure, Report};
use crate::client::{ClientError, Connection};
use crate::token::{self, clock::unix_now};
use crate::token_store::TokenStore;
use crate::wire::*;

/// How to reach the server (flags and `HESSRA_*` variables as in the Hessra CLI).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Server host, host:port, or https URL
    #[arg(short = 's', long = "server", env = "HESSRA_SERVER")]
    pub server: String,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Port, client certificate and CA.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Port when the server names none
    #[arg(short = 'p', long, env = "HESSRA_PORT", default_value_t = 443)]
    pub port: u16,
    /// Client certificate (PEM) for mTLS
    #[arg(long, env = "HESSRA_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for mTLS
    #[arg(long, env = "HESSRA_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// CA bundle (PEM) the server's certificate chains to
    #[arg(long, env = "HESSRA_CA")]
    pub ca: Option<PathBuf>,
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))
}

pub(super) fn connect(
    server: &str,
    args: &ConnectionArgs,
    with_certificate: bool,
) -> Result<Connection, Failure> {
    let ca = args.ca.as_deref().map(read).transpose()?;
    let identity = match (&args.cert, &args.key, with_certificate) {
        (Some(cert), Some(key), true) => {
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend(read(key)?);
            Some(pem)
        }
        _ => None,
    };
    Connection::new(server, args.port, ca.as_deref(), identity.as_deref())
        .map_err(|e| Failure::usage(e.to_string()))
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the runtime: {e}")))
}

pub(super) fn remote(error: ClientError) -> Failure {
    match error {
        ClientError::Status { status, message } if matches!(status, 401 | 403) => Failure::invalid(
            format!("denied ({status}): {message}"),
            json!({ "status": status }),
        ),
        // A refused change (a key transition that would break live tokens).
        ClientError::Status {
            status: 409,
            message,
        } => Failure::invalid(format!("refused: {message}"), json!({ "status": 409 })),
        other => Failure::usage(other.to_string()),
    }
}

fn save(name: &str, token: &str) -> Result<PathBuf, Failure> {
    Ok(TokenStore::open_default()?.save(name, token)?)
}

/// `identity authenticate`: an identity token by mTLS.
pub fn authenticate(server: ServerArgs, save_as: &str, ttl: Option<u64>) -> CommandResult {
    if server.connection.cert.is_none() {
        return Err(Failure::usage(
            "identity authenticate needs a client certificate: pass --cert and --key",
        ));
    }
    let connection = connect(&server.server, &server.connection, true)?;
    let request = IdentityTokenRequest {
        identifier: ttl.map(|t| json!(t.to_string())),
    };
    let response: IdentityTokenResponse = runtime()?
        .block_on(connection.post("/request_identity_token", &request, None))
        .map_err(remote)?;
    identity_report(connection.base(), response, save_as, "Authenticated")
}

fn identity_report(
    base: &str,
    response: IdentityTokenResponse,
    save_as: &str,
    verb: &str,
) -> CommandResult {
    let (Some(token), Some(identity), Some(expires_in)) =
        (response.token, response.identity, response.expires_in)
    else {
        return Err(Failure::invalid(
            format!("{verb} failed: {}", response.response_msg),
            json!({}),
        ));
    };
    let path = save(save_as, &token)?;
    Ok(Report::new(
        format!(
            "{verb} as {identity}; token valid {} ({}), saved as {save_as}",
            crate::token::clock::describe_span(expires_in),
            path.display()
        ),
        json!({
            "success": true, "server": base, "identity": identity, "expires_in": expires_in,
            "token_saved_as": save_as, "token_path": path,
        }),
    ))
}

/// `identity refresh`: a fresh identity token for the stored one.
pub fn refresh(server: ServerArgs, token_name: &str, save_as: Option<&str>) -> CommandResult {
    let current = TokenStore::open_default()?.load(token_name)?;
    let connection = connect(&server.server, &server.connection, true)?;
    let request = RefreshIdentityTokenRequest {
        current_token: current,
        identifier: None,
    };
    let response: IdentityTokenResponse = runtime()?
        .block_on(connection.post("/refresh_identity_token", &request, None))
        .map_err(remote)?;
    identity_report(
        connection.base(),
        response,
        save_as.unwrap_or(token_name),
        "Refreshed",
    )
}

/// `identity mint`: a realm mints a domain-restricted identity.
pub fn mint(
    server: &str,
    connection_args: &ConnectionArgs,
    subject: &str,
    ttl: Option<u64>,
    save_as: Option<&str>,
    token_only: bool,
) -> CommandResult {
    let connection = connect(server, connection_args, true)?;
    let request = MintIdentityTokenRequest {
        subject: subject.to_string(),
        duration: ttl,
    };
    let response: IdentityTokenResponse = runtime()?
        .block_on(connection.post("/mint_identity_token", &request, None))
        .map_err(remote)?;
    let (Some(token), Some(identity), Some(expires_in)) =
        (response.token, response.identity, response.expires_in)
    else {
        return Err(Failure::invalid(
            format!("Minting failed: {}", response.response_msg),
            json!({}),
        ));
    };
    let path = save_as.map(|name| save(name, &token)).transpose()?;
    let json = json!({
        "success": true, "server": connection.base(), "subject": subject, "identity": identity,
        "expires_in": expires_in, "token": token, "saved_as": save_as, "token_path": path,
    });
    if token_only {
        return Ok(Report::new(token, json));
    }
    Ok(Report::new(
        format!("Minted {identity} for {expires_in} s\n{token}"),
        json,
    ))
}

/// Arguments of `authorize request`.
pub struct AuthorizeRequest<'a> {
    pub resource: &'a str,
    pub operation: &'a str,
    pub domain: Option<String>,
    pub identity_token: Option<&'a str>,
    pub token_file: Option<&'a Path>,
    pub token_only: bool,
}

/// `authorize request`: an authorization token by identity token (Bearer, with a JIT block) or
/// by mTLS.
pub fn authorize(server: ServerArgs, request: AuthorizeRequest<'_>) -> CommandResult {
    let bearer = match (request.identity_token, request.token_file) {
        (Some(name), _) => Some(
            load_token(&TokenSource {
                token_name: Some(name.to_string()),
                token_file: None,
            })?
            .text,
        ),
        (None, Some(path)) => Some(read_token_file(path)?.text),
        (None, None) => None,
    };
    if bearer.is_none() && server.connection.cert.is_none() {
        return Err(Failure::usage(
            "authorize request needs an identity token (-i NAME or -t FILE) or a client certificate (--cert/--key)",
        ));
    }
    let bearer = bearer
        .map(|token| token::add_jit(&token, unix_now()).map_err(Failure::from))
        .transpose()?;
    let connection = connect(&server.server, &server.connection, true)?;
    let body = TokenRequest {
        resource: request.resource.into(),
        operation: request.operation.into(),
        domain: request.domain,
    };
    let response: TokenResponse = runtime()?
        .block_on(connection.post("/request_token", &body, bearer.as_deref()))
        .map_err(remote)?;
    let Some(token) = response.token else {
        return Err(Failure::invalid(
            format!("Authorization denied. Reason: {}", response.response_msg),
            json!({}),
        ));
    };
    let json = json!({
        "success": true, "token": token, "resource": request.resource, "operation": request.operation,
        "response_msg": response.response_msg, "pending_signoffs": response.pending_signoffs,
    });
    if request.token_only {
        return Ok(Report::new(token, json));
    }
    Ok(Report::new(
        format!(
            "{}: {} on {}\n{token}",
            response.response_msg, request.operation, request.resource
        ),
        json,
    ))
}

/// `init SERVER`: fetch the server's public key and CA certificate and keep them locally.
pub fn init(server: &str, connection_args: &ConnectionArgs) -> CommandResult {
    let connection = connect(server, connection_args, false)?;
    let rt = runtime()?;
    let key: PublicKeyResponse = rt.block_on(connection.get("/public_key")).map_err(remote)?;
    let ca: CaCertResponse = rt.block_on(connection.get("/ca_cert")).map_err(remote)?;
    let public_key = key
        .public_key
        .filter(|k| k.contains("BEGIN PUBLIC KEY"))
        .ok_or_else(|| Failure::usage("the server returned no PEM public key"))?;
    token::keys::parse_public_key(&public_key)?;
    let host = connection
        .base()
        .trim_start_matches("https://")
        .replace([':', '/', '[', ']'], "_");
    let dirs = directories::ProjectDirs::from("", "", "hessra-console")
        .ok_or_else(|| Failure::usage("no data directory"))?;
    let dir = dirs.data_dir().join("servers").join(host);
    std::fs::create_dir_all(&dir).map_err(|e| Failure::usage(format!("{}: {e}", dir.display())))?;
    let key_path = dir.join("public_key.pem");
    std::fs::write(&key_path, &public_key)
        .map_err(|e| Failure::usage(format!("{}: {e}", key_path.display())))?;
    let ca_path = dir.join("ca.crt");
    if let Some(pem) = ca
        .ca_cert_pem
        .as_deref()
        .filter(|p| p.contains("BEGIN CERTIFICATE"))
    {
        std::fs::write(&ca_path, pem)
            .map_err(|e| Failure::usage(format!("{}: {e}", ca_path.display())))?;
    }
    Ok(Report::new(
        format!(
            "{}: public key saved to {}\n  use: --public-key-file {}",
            connection.base(),
            key_path.display(),
            key_path.display()
        ),
        json!({ "success": true, "server": connection.base(), "public_key": public_key, "public_key_path": key_path, "ca_path": ca_path }),
    ))
}
