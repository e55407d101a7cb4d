//! `serve`: run the authorization server headless, from a workspace or from pieces given
//! explicitly, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;

use super::CommandResult;
use super::output::{Failure, Report};
use crate::server::{self, PolicySource, RootKeySource, ServerConfig, ServerLimits, SignerConfig};
use crate::token::{self, keys};
use crate::workspace;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A workspace made by `demo init` (supplies everything below that is not given)
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:4443 (port 0 picks a free port)
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve the policy in this file
    #[arg(long, conflicts_with = "policy_repo")]
    policy_file: Option<PathBuf>,
    /// Serve clients.toml from this git repository (bare or not)
    #[arg(long)]
    policy_repo: Option<PathBuf>,
    /// Branch of --policy-repo
    #[arg(long, default_value = "main")]
    branch: String,
    /// Server certificate chain (PEM)
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM); must not be readable by others
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM) client certificates may chain to, besides the policy's [cacerts]
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// Biscuit root private key (PKCS#8 PEM); must not be readable by others. A single key
    /// signs without a key id and cannot be rotated: prefer --key-set
    #[arg(long, conflicts_with = "key_set")]
    root_key: Option<PathBuf>,
    /// Root key set manifest (keys.toml, see `keys init`): keys with ids and states, rotated
    /// with `keys add|activate|retire` while the server runs
    #[arg(long, conflicts_with = "key_dir")]
    key_set: Option<PathBuf>,
    /// Take the root key set from keys.toml in the policy repository, applied with each
    /// revision, and the private keys from this directory (files 0600, found by public key). A
    /// revision whose active key is not here is refused. A workspace whose repository holds
    /// keys.toml uses its server/keys/
    #[arg(long, conflicts_with_all = ["root_key", "policy_file"])]
    key_dir: Option<PathBuf>,
    /// Append audit events to this file (JSON lines)
    #[arg(long)]
    audit_file: Option<PathBuf>,
    /// Rotate the audit file before it grows past this size (bytes, or 512KiB, 16MiB)
    #[arg(long, default_value = "16MiB", value_parser = parse_bytes)]
    audit_max_bytes: u64,
    /// Audit files kept: the one written and N-1 rotated ones (FILE.1 oldest); an older one is
    /// kept while an identity token it records is live
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    audit_max_files: u64,
    /// Audit events queued for the writer; past that they are dropped and counted
    /// (hessra_audit_dropped_total), never waited for
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    audit_queue: u64,
    /// Sign a checkpoint of the audit chain this often while events are written (also at
    /// rotation and shutdown; 0: only then). `audit verify` checks them
    #[arg(long, default_value = "1m", value_parser = parse_interval)]
    audit_checkpoint_every: std::time::Duration,
    /// Keep the mirror of a git policy source and the last good commit here
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// How often to look for a new policy: seconds or 500ms, 1s, 1m (0 turns polling off)
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    poll_interval: std::time::Duration,
    /// Refreshes in a row an identity token may have (each names the tokens it came from, so
    /// revoking one refuses its descendants); past it, the holder authenticates again with
    /// their certificate
    #[arg(long, default_value_t = token::DEFAULT_MAX_REFRESH_GENERATIONS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(token::MAX_REFRESH_GENERATIONS)))]
    max_refresh_generations: u32,
    /// Act as the multi-party signer COMPONENT for /sign_token ...
    #[arg(long, requires = "signer_key")]
    signer_component: Option<String>,
    /// ... with this private key
    #[arg(long, requires = "signer_component")]
    signer_key: Option<PathBuf>,
    /// Close a connection with no request in flight after this long [default: 120s; 1s while
    /// every one of the 1,024 connection slots is taken]
    #[arg(long, value_parser = parse_interval)]
    idle_timeout: Option<std::time::Duration>,
    /// Answer 503 to a request not answered this long after its headers [default: 30s]
    #[arg(long, value_parser = parse_interval)]
    request_timeout: Option<std::time::Duration>,
    /// Close a connection this old gracefully: HTTP/2 with a GOAWAY, HTTP/1 after its next
    /// answer [default: 10m]
    #[arg(long, value_parser = parse_interval)]
    max_connection_age: Option<std::time::Duration>,
    /// Token verifications run at once, off the async workers; more wait up to 500 ms, then
    /// get 503 with Retry-After [default: twice the cores]
    #[arg(long)]
    verify_workers: Option<usize>,
    /// Largest clients.toml or revocations.toml taken, in bytes (or 512KiB, 8MiB, 1GiB); a
    /// commit with a larger one is refused from the git object header, unread, and the last good
    /// policy stays
    #[arg(long, default_value = "8MiB", value_parser = parse_bytes)]
    max_policy_bytes: u64,
}

/// A size in bytes: a number, optionally followed by KiB, MiB or GiB.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(at);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size: use 4096, 512KiB, 8MiB or 1GiB"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use KiB, MiB or GiB"
            ));
        }
    };
    value
        .checked_mul(scale)
        .filter(|bytes| *bytes > 0)
        .ok_or_else(|| format!("{text:?} is not a usable size"))
}

fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not an interval: use 1s, 500ms, 1m"))?;
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(value)),
        "s" => Ok(std::time::Duration::from_secs(value)),
        "m" => Ok(std::time::Duration::from_secs(value * 60)),
        other => Err(format!(
            "unknown unit {other:?} in {text:?}: use ms, s or m"
        )),
    }
}

fn required(value: Option<PathBuf>, name: &str) -> Result<PathBuf, Failure> {
    value.ok_or_else(|| Failure::usage(format!("--{name} is required without --workspace")))
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))
}

/// Refuses private keys that other users can read.
fn check_private(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Failure::usage(format!(
            "{} is readable by other users (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

fn config(args: ServeArgs) -> Result<ServerConfig, Failure> {
    let ws = match &args.workspace {
        Some(dir) => Some(workspace::open(dir).map_err(|e| Failure::usage(e.to_string()))?),
        None => None,
    };
    let listen = args
        .listen
        .or(ws.as_ref().map(|w| w.listen))
        .ok_or_else(|| Failure::usage("--listen is required without --workspace"))?;
    let policy = match (args.policy_file, args.policy_repo, &ws) {
        (Some(file), _, _) => PolicySource::File(file),
        (None, Some(repo), _) => PolicySource::Git {
            repo,
            branch: args.branch,
        },
        (None, None, Some(ws)) => PolicySource::Git {
            repo: ws.origin.clone(),
            branch: "main".into(),
        },
        (None, None, None) => {
            return Err(Failure::usage(
                "give --policy-file, --policy-repo or --workspace",
            ));
        }
    };
    let tls_cert = required(
        args.tls_cert.or(ws.as_ref().map(|w| w.server_cert.clone())),
        "tls-cert",
    )?;
    let tls_key = required(
        args.tls_key.or(ws.as_ref().map(|w| w.server_key.clone())),
        "tls-key",
    )?;
    check_private(&tls_key)?;
    let root_keys = match (args.root_key, args.key_set, args.key_dir, &ws) {
        (Some(file), _, _, _) => {
            check_private(&file)?;
            RootKeySource::Single(Box::new(keys::read_private_key_file(&file)?))
        }
        (None, Some(manifest), _, _) => RootKeySource::Set(manifest),
        (None, None, Some(key_dir), _) => RootKeySource::Repository { key_dir },
        (None, None, None, Some(ws)) => ws
            .root_key_source()
            .map_err(|e| Failure::usage(e.to_string()))?,
        (None, None, None, None) => {
            return Err(Failure::usage(
                "--key-dir (root keys from the policy repository), --key-set or --root-key is required without --workspace",
            ));
        }
    };
    let audit_file = args
        .audit_file
        .or(ws.as_ref().map(|w| w.server_state.join("audit.jsonl")));
    let signer = match (args.signer_component, args.signer_key) {
        (Some(component), Some(key)) => {
            check_private(&key)?;
            Some(SignerConfig {
                component,
                key: keys::read_private_key_file(&key)?,
            })
        }
        _ => None,
    };
    let state_dir = args
        .state_dir
        .or(ws.as_ref().map(|w| w.server_state.clone()));
    let client_ca_pem = args.client_ca.as_deref().map(read).transpose()?;
    let defaults = ServerLimits::default();
    let limits = ServerLimits {
        idle_timeout: args.idle_timeout.unwrap_or(defaults.idle_timeout),
        request_timeout: args.request_timeout.unwrap_or(defaults.request_timeout),
        max_connection_age: args
            .max_connection_age
            .unwrap_or(defaults.max_connection_age),
        verify_workers: args.verify_workers.unwrap_or(defaults.verify_workers),
        ..defaults
    };
    for (name, value) in [
        ("idle-timeout", limits.idle_timeout),
        ("request-timeout", limits.request_timeout),
        ("max-connection-age", limits.max_connection_age),
    ] {
        if value.is_zero() {
            return Err(Failure::usage(format!("--{name} must be more than 0")));
        }
    }
    if limits.verify_workers == 0 {
        return Err(Failure::usage("--verify-workers must be at least 1"));
    }
    Ok(ServerConfig {
        client_ca_pem,
        state_dir,
        poll_interval: (!args.poll_interval.is_zero()).then_some(args.poll_interval),
        slow_client_timeout: server::SLOW_CLIENT_TIMEOUT,
        max_refresh_generations: args.max_refresh_generations,
        max_policy_bytes: args.max_policy_bytes,
        limits,
        listen,
        tls_cert_pem: read(&tls_cert)?,
        tls_key_pem: read(&tls_key)?,
        policy,
        root_keys,
        audit_file,
        audit: server::AuditConfig {
            max_file_bytes: args.audit_max_bytes,
            max_files: usize::try_from(args.audit_max_files).unwrap_or(usize::MAX),
            queue: usize::try_from(args.audit_queue).unwrap_or(usize::MAX),
            checkpoint_every: args.audit_checkpoint_every,
        },
        signer,
    })
}

pub fn run(args: ServeArgs) -> CommandResult {
    server::install_crypto_provider();
    let config = config(args)?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::usage(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let running = server::start(config)
            .await
            .map_err(|e| Failure::usage(e.to_string()))?;
        let status = running.state.status();
        println!(
            "Listening on {} (policy {} at {})",
            running.url(),
            status.policy_source,
            status.policy_revision
        );
        wait_for_signal().await;
        eprintln!("Shutting down");
        running.shutdown().await;
        Ok(Report::new("", serde_json::json!({ "stopped": true })))
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn configured(dir: &Path, flags: &[&str]) -> Result<ServerConfig, Failure> {
        let workspace = dir.display().to_string();
        let mut argv = vec!["serve", "--workspace", workspace.as_str()];
        argv.extend_from_slice(flags);
        config(Serve::try_parse_from(argv).unwrap().args)
    }

    #[test]
    fn connection_flags_set_the_limits_and_zero_deadlines_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        workspace::init(dir.path(), false).unwrap();
        let defaults = configured(dir.path(), &[]).unwrap().limits;
        assert_eq!(defaults, ServerLimits::default());
        let limits = configured(
            dir.path(),
            &[
                "--idle-timeout",
                "90s",
                "--request-timeout",
                "500ms",
                "--max-connection-age",
                "2m",
                "--verify-workers",
                "3",
            ],
        )
        .unwrap()
        .limits;
        assert_eq!(limits.idle_timeout, std::time::Duration::from_secs(90));
        assert_eq!(
            limits.request_timeout,
            std::time::Duration::from_millis(500)
        );
        assert_eq!(
            limits.max_connection_age,
            std::time::Duration::from_secs(120)
        );
        assert_eq!(limits.verify_workers, 3);
        assert_eq!(
            limits.idle_timeout_when_full,
            defaults.idle_timeout_when_full
        );
        for (flag, value, message) in [
            ("--idle-timeout", "0", "--idle-timeout must be more than 0"),
            (
                "--request-timeout",
                "0ms",
                "--request-timeout must be more than 0",
            ),
            (
                "--verify-workers",
                "0",
                "--verify-workers must be at least 1",
            ),
        ] {
            let Err(refused) = configured(dir.path(), &[flag, value]) else {
                panic!("{flag} {value} accepted");
            };
            assert_eq!(refused.message, message);
        }
    }
}
