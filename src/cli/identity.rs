//! `identity …`: offline delegation, verification, inspection and the token store.

use clap::Subcommand;
use serde_json::json;

use super::input::{load_token, parse_duration, public_key, read_token_file, require_public_key};
use super::output::{Failure, Report};
use super::remote_cmd::{self, ConnectionArgs, ServerArgs};
use super::token_cmd::{inspect_report, status_word};
use super::{CommandResult, PublicKeySource, TokenSource};
use crate::policy::RevocationList;
use crate::token::clock::{describe_instant, format_unix, unix_now};
use crate::token::{self, Actor, Delegation, DelegationPolicy, IdentityVerification};
use crate::token_store::TokenStore;

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Get an identity token from the server with your client certificate (mTLS)
    Authenticate {
        #[command(flatten)]
        server: ServerArgs,
        /// Name to store the token under
        #[arg(long, default_value = "default")]
        save_as: String,
        /// Ask for a shorter lifetime (seconds, or 90s, 15m, 8h, 2d)
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<i64>,
    },
    /// Exchange a stored identity token for a fresh one
    Refresh {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, default_value = "default")]
        token_name: String,
        #[arg(long)]
        save_as: Option<String>,
    },
    /// As a realm, mint a domain-restricted identity for SUBJECT (mTLS)
    Mint {
        /// The identity to mint (inside the realm's domain)
        #[arg(short, long)]
        subject: String,
        /// Server host, host:port, or https URL
        #[arg(long, env = "HESSRA_SERVER")]
        server: String,
        #[command(flatten)]
        connection: ConnectionArgs,
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<i64>,
        #[arg(long)]
        save_as: Option<String>,
        #[arg(long)]
        token_only: bool,
    },
    /// Delegate an identity token offline to a sub-identity (a third-party block)
    Delegate {
        /// The sub-identity to delegate to (must lie under the token's identity)
        #[arg(short, long)]
        identity: String,
        /// Lifetime of the delegation: seconds, or 90s, 15m, 8h, 2d
        #[arg(long, default_value = "3600", value_parser = parse_duration)]
        ttl: i64,
        /// Stored token to delegate from
        #[arg(long, default_value = "default", conflicts_with = "token_file")]
        from_token: String,
        /// Read the token to delegate from a file ('-' for standard input)
        #[arg(long)]
        token_file: Option<std::path::PathBuf>,
        /// Datalog checks the delegate must also satisfy, e.g. 'check if operation($op), $op == "read";'
        #[arg(long, conflicts_with = "policy_file")]
        policy: Option<String>,
        /// File holding the delegation policy
        #[arg(long)]
        policy_file: Option<std::path::PathBuf>,
        /// Refuse to go deeper than this many delegations
        #[arg(long, default_value_t = token::DEFAULT_MAX_DELEGATION_DEPTH)]
        max_depth: usize,
        /// Save the delegated token in the store under this name
        #[arg(long)]
        save_as: Option<String>,
        /// Print only the token
        #[arg(long)]
        token_only: bool,
        #[command(flatten)]
        key: PublicKeySource,
    },
    /// Verify an identity token for an identity (default: the token's own effective identity)
    Verify {
        #[command(flatten)]
        source: TokenSource,
        /// The identity presenting the token
        #[arg(short, long)]
        identity: Option<String>,
        /// Verify as a bearer token (subject as actor; signature and expiry only)
        #[arg(long, conflicts_with = "identity")]
        bearer: bool,
        /// The domain the token is presented in (realm-minted tokens need it)
        #[arg(long)]
        domain: Option<String>,
        /// Resource of the request, for delegation policies that check it
        #[arg(long)]
        resource: Option<String>,
        /// Operation of the request, for delegation policies that check it
        #[arg(long)]
        operation: Option<String>,
        #[arg(long, default_value_t = token::DEFAULT_MAX_DELEGATION_DEPTH)]
        max_depth: usize,
        /// A revocations.toml: the token is refused if one of its blocks, or a token it was
        /// refreshed from, is revoked there
        #[arg(long)]
        revocations: Option<std::path::PathBuf>,
        #[command(flatten)]
        key: PublicKeySource,
    },
    /// Show what a token says: blocks, chain, expiry (signatures checked when a key is given)
    Inspect {
        #[command(flatten)]
        source: TokenSource,
        #[command(flatten)]
        key: PublicKeySource,
    },
    /// List stored tokens
    List {
        /// Show identity, expiry and status of each
        #[arg(long)]
        details: bool,
    },
    /// Remove expired tokens from the store
    Prune {
        /// Show what would be removed without removing it
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete a stored token
    Delete { name: String },
    /// Store a token from a file or standard input under a name
    Import {
        name: String,
        /// File to read ('-' for standard input)
        #[arg(long, default_value = "-")]
        token_file: std::path::PathBuf,
    },
}

pub fn run(command: IdentityCommand) -> CommandResult {
    match command {
        IdentityCommand::Authenticate {
            server,
            save_as,
            ttl,
        } => remote_cmd::authenticate(server, &save_as, ttl.map(|t| t as u64)),
        IdentityCommand::Refresh {
            server,
            token_name,
            save_as,
        } => remote_cmd::refresh(server, &token_name, save_as.as_deref()),
        IdentityCommand::Mint {
            subject,
            server,
            connection,
            ttl,
            save_as,
            token_only,
        } => remote_cmd::mint(
            &server,
            &connection,
            &subject,
            ttl.map(|t| t as u64),
            save_as.as_deref(),
            token_only,
        ),
        IdentityCommand::Delegate {
            identity,
            ttl,
            from_token,
            token_file,
            policy,
            policy_file,
            max_depth,
            save_as,
            token_only,
            key,
        } => {
            let source = TokenSource {
                token_name: Some(from_token),
                token_file,
            };
            let policy = read_policy(policy, policy_file)?;
            let request = DelegateRequest {
                identity,
                ttl,
                policy,
                max_depth,
                save_as,
                token_only,
            };
            delegate(&source, &key, request)
        }
        IdentityCommand::Verify {
            source,
            identity,
            bearer,
            domain,
            resource,
            operation,
            max_depth,
            revocations,
            key,
        } => {
            let actor = match (&identity, bearer) {
                (Some(name), _) => Actor::Named(name),
                (None, true) => Actor::Bearer,
                (None, false) => Actor::Effective,
            };
            let now = unix_now();
            let mut check = IdentityVerification::new(actor, now);
            check.domain = domain.as_deref();
            check.resource = resource.as_deref();
            check.operation = operation.as_deref();
            check.max_depth = max_depth;
            verify(&source, &key, revocations.as_deref(), check)
        }
        IdentityCommand::Inspect { source, key } => {
            let token = load_token(&source)?;
            inspect_report(&token, public_key(&key)?.as_ref())
        }
        IdentityCommand::List { details } => list(details),
        IdentityCommand::Prune { dry_run } => prune(dry_run),
        IdentityCommand::Delete { name } => {
            let path = TokenStore::open_default()?.delete(&name)?;
            Ok(Report::new(
                format!("Deleted {name} ({})", path.display()),
                json!({ "success": true, "deleted": name, "token_path": path }),
            ))
        }
        IdentityCommand::Import { name, token_file } => import(&name, &token_file),
    }
}

fn read_policy(
    inline: Option<String>,
    file: Option<std::path::PathBuf>,
) -> Result<Option<DelegationPolicy>, Failure> {
    let text = match (inline, file) {
        (Some(text), _) => text,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| Failure::usage(format!("cannot read policy {}: {e}", path.display())))?,
        (None, None) => return Ok(None),
    };
    DelegationPolicy::parse(&text)
        .map(Some)
        .map_err(|e| Failure::usage(e.to_string()))
}

struct DelegateRequest {
    identity: String,
    ttl: i64,
    policy: Option<DelegationPolicy>,
    max_depth: usize,
    save_as: Option<String>,
    token_only: bool,
}

fn delegate(
    source: &TokenSource,
    key: &PublicKeySource,
    request: DelegateRequest,
) -> CommandResult {
    let token = load_token(source)?;
    let root = public_key(key)?;
    let now = unix_now();
    let delegation = Delegation {
        target: &request.identity,
        expires_at: now + request.ttl,
        policy: request.policy.as_ref(),
        max_depth: request.max_depth,
    };
    let delegated = token::delegate(&token.text, root.as_ref(), &delegation)?;
    let saved = match &request.save_as {
        Some(name) => Some(TokenStore::open_default()?.save(name, &delegated.token)?),
        None => None,
    };
    let json = json!({
        "success": true,
        "token": delegated.token,
        "delegated_identity": delegated.identity,
        "from_identity": delegated.from,
        "depth": delegated.depth,
        "ttl": request.ttl,
        "expires_at": delegated.expires_at,
        "effective_expires_at": delegated.effective_expires_at,
        "from_token": token.source,
        "signature_checked": root.is_some(),
        "saved": saved.is_some(),
        "saved_as": request.save_as,
        "token_path": saved,
    });
    if request.token_only {
        return Ok(Report::new(delegated.token, json));
    }
    let mut text = format!(
        "Delegated {} → {} (depth {}), expires {} ({})\n",
        delegated.from,
        delegated.identity,
        delegated.depth,
        format_unix(delegated.effective_expires_at),
        describe_instant(delegated.effective_expires_at, now)
    );
    if delegated.effective_expires_at < delegated.expires_at {
        text.push_str("Note: the token it came from expires sooner; that earlier expiry is the one that counts.\n");
    }
    if root.is_none() {
        text.push_str("Note: signatures not checked (no --public-key given).\n");
    }
    if let Some(path) = &saved {
        text.push_str(&format!("Saved to {}\n", path.display()));
    }
    text.push_str(&delegated.token);
    Ok(Report::new(text, json))
}

/// Reads a revocations.toml, refusing one with errors (as the server would not apply it).
fn read_revocations(path: &std::path::Path) -> Result<RevocationList, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let (list, findings) = RevocationList::load(&text);
    if let Some(error) = findings.iter().find(|f| f.is_error()) {
        let separator = if error.location.is_some() { ":" } else { ": " };
        return Err(Failure::usage(format!(
            "{}{separator}{error} (a list with errors is not applied)",
            path.display()
        )));
    }
    Ok(list)
}

fn verify(
    source: &TokenSource,
    key: &PublicKeySource,
    revocations: Option<&std::path::Path>,
    check: IdentityVerification<'_>,
) -> CommandResult {
    let token = load_token(source)?;
    let root = require_public_key(key)?;
    if let Some(path) = revocations {
        let list = read_revocations(path)?;
        let refusal = token::revocation_ids(&token.text)
            .ok()
            .and_then(|ids| list.refusal(&ids));
        if let Some(why) = refusal {
            return Err(Failure::invalid(
                format!("invalid token ({}): {why}", token.source),
                json!({ "valid": false, "revoked": true }),
            ));
        }
    }
    match token::verify_identity(&token.text, &root, &check) {
        Ok(verified) => {
            let text = format!(
                "Valid: identity token for {} (chain {}), expires {}",
                verified.identity,
                verified.chain.join(" → "),
                verified
                    .expires_at
                    .map(|at| format!("{} ({})", format_unix(at), describe_instant(at, check.now)))
                    .unwrap_or_else(|| "never".into())
            );
            let json = json!({
                "success": true,
                "valid": true,
                "identity": verified.identity,
                "subject": verified.subject,
                "chain": verified.chain,
                "depth": verified.depth,
                "domain": verified.domain,
                "expires_at": verified.expires_at,
            });
            Ok(Report::new(text, json))
        }
        Err(error) => {
            let mut failure = Failure::from(error);
            failure.message = format!("invalid token ({}): {}", token.source, failure.message);
            if let serde_json::Value::Object(map) = &mut failure.details {
                map.insert("valid".into(), json!(false));
            } else if failure.code == super::EXIT_INVALID {
                failure.details = json!({ "valid": false });
            }
            Err(failure)
        }
    }
}

fn list(details: bool) -> CommandResult {
    let store = TokenStore::open_default()?;
    let names = store.list()?;
    if !details {
        let text = if names.is_empty() {
            format!("No tokens in {}", store.dir().display())
        } else {
            names.join("\n")
        };
        return Ok(Report::new(
            text,
            json!({ "tokens": names, "count": names.len() }),
        ));
    }
    let now = unix_now();
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for entry in store.entries(now)? {
        let name = &entry.name;
        match entry.read {
            Ok(view) => {
                let expiry = view.effective_expiry;
                let human = expiry
                    .map(|at| describe_instant(at, now))
                    .unwrap_or_else(|| "never".into());
                lines.push(format!(
                    "{name:<20} {:<40} {:<8} {human}",
                    view.effective_identity.as_deref().unwrap_or("?"),
                    status_word(&view)
                ));
                rows.push(json!({
                    "name": name,
                    "identity": view.effective_identity,
                    "expiry": expiry,
                    "status": status_word(&view),
                    "expires_in_human": human,
                }));
            }
            Err(error) => {
                lines.push(format!("{name:<20} unreadable: {error}"));
                rows.push(json!({ "name": name, "error": error }));
            }
        }
    }
    if lines.is_empty() {
        lines.push(format!("No tokens in {}", store.dir().display()));
    }
    Ok(Report::new(
        lines.join("\n"),
        json!({ "tokens": rows, "count": rows.len() }),
    ))
}

fn prune(dry_run: bool) -> CommandResult {
    let store = TokenStore::open_default()?;
    let now = unix_now();
    let mut expired = Vec::new();
    let mut errors = Vec::new();
    let names = store.list()?;
    for name in &names {
        let view = store
            .load(name)
            .map_err(|e| e.to_string())
            .and_then(|text| token::inspect(&text, None, now).map_err(|e| e.to_string()));
        match view {
            Ok(view) if view.expired == Some(true) => expired.push(name.clone()),
            Ok(_) => {}
            Err(error) => errors.push(json!({ "name": name, "error": error })),
        }
    }
    if !dry_run {
        for name in &expired {
            store.delete(name)?;
        }
    }
    let verb = if dry_run { "Would remove" } else { "Removed" };
    let mut text = if expired.is_empty() {
        format!("No expired tokens among {}", names.len())
    } else {
        format!(
            "{verb} {} expired of {}: {}",
            expired.len(),
            names.len(),
            expired.join(", ")
        )
    };
    if !errors.is_empty() {
        text.push_str(&format!(
            "\n{} unreadable token(s) left in place",
            errors.len()
        ));
    }
    let removed_key = if dry_run { "would_remove" } else { "removed" };
    let mut json = json!({ "checked": names.len(), "expired": expired.len(), "errors": errors });
    json[removed_key] = json!(expired);
    Ok(Report::new(text, json))
}

fn import(name: &str, path: &std::path::Path) -> CommandResult {
    let token = read_token_file(path)?;
    // Refuse junk before it lands in the store; signatures are checked when it is used.
    let view = token::inspect(&token.text, None, unix_now())?;
    let saved = TokenStore::open_default()?.save(name, &token.text)?;
    Ok(Report::new(
        format!(
            "Stored {} for {} as {name} ({})",
            view.kind.describe(),
            view.effective_identity.as_deref().unwrap_or("?"),
            saved.display()
        ),
        json!({ "success": true, "name": name, "token_path": saved, "identity": view.effective_identity }),
    ))
}
