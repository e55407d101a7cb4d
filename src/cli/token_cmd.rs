//! `token …` (inspect any token, mint offline with a root key) and `authorize verify`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::input::{
    LoadedToken, load_token, parse_duration, public_key, read_token_file, require_public_key,
};
use super::output::{Failure, Report};
use super::{CommandResult, PublicKeySource, TokenSource};
use crate::token::clock::{describe_instant, format_unix, unix_now};
use crate::token::{
    self, AuthzClaims, AuthzVerification, IdentityClaims, Inspection, PublicKey, ServiceNode,
    SignatureStatus, keys,
};
use crate::token_store::TokenStore;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Show what any token says: kind, blocks with Datalog, chain, expiry, revocation ids
    Inspect {
        #[command(flatten)]
        source: TokenSource,
        #[command(flatten)]
        key: PublicKeySource,
    },
    /// Mint an identity token offline with a root private key
    MintIdentity {
        /// Root private key file (PKCS#8 PEM)
        #[arg(long)]
        root_key_file: PathBuf,
        #[arg(short, long)]
        subject: String,
        /// Lifetime: seconds, or 90s, 15m, 8h, 2d
        #[arg(long, default_value = "3600", value_parser = parse_duration)]
        ttl: i64,
        /// Allow only the subject itself, not its sub-identities
        #[arg(long)]
        non_delegatable: bool,
        /// Restrict to a realm's domain (the realm identity)
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        save_as: Option<String>,
        #[arg(long)]
        token_only: bool,
    },
    /// Mint an authorization token offline with a root private key
    MintAuthz {
        #[arg(long)]
        root_key_file: PathBuf,
        #[arg(short, long)]
        subject: String,
        #[arg(short, long)]
        resource: String,
        #[arg(short, long)]
        operation: String,
        #[arg(long, default_value = "300", value_parser = parse_duration)]
        ttl: i64,
        #[arg(long)]
        domain: Option<String>,
        /// Make a stub: usable once this key (ed25519/<hex>) adds a prefix block
        #[arg(long)]
        prefix_attenuator_key: Option<String>,
        /// A service-chain node, in order: COMPONENT=ed25519/<hex> (repeat)
        #[arg(long = "node", value_parser = parse_node)]
        nodes: Vec<ServiceNode>,
        #[arg(long)]
        token_only: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthorizeCommand {
    /// Get an authorization token from the server, by identity token or client certificate
    Request {
        #[arg(short, long)]
        resource: String,
        #[arg(short, long)]
        operation: String,
        /// Stored identity token to present (Bearer, with a 5-second JIT block)
        #[arg(short = 'i', long = "identity-token", conflicts_with = "token_file")]
        identity_token: Option<String>,
        /// Identity token file to present
        #[arg(short = 't', long = "token-file")]
        token_file: Option<PathBuf>,
        /// Realm domain of the request
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        token_only: bool,
        #[command(flatten)]
        server: super::remote_cmd::ServerArgs,
    },
    /// Verify an authorization token locally
    Verify(VerifyArgs),
}

/// What `authorize verify` checks.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The token text; read from standard input when absent
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    /// Read the token from a file ('-' for standard input)
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Subject presenting the token; without it any holder may use it (capability mode)
    #[arg(short, long)]
    subject: Option<String>,
    #[arg(short, long)]
    resource: String,
    #[arg(short, long)]
    operation: String,
    #[arg(long)]
    domain: Option<String>,
    #[arg(long)]
    prefix: Option<String>,
    /// The resource's service chain, in order: COMPONENT=ed25519/<hex> (repeat)
    #[arg(long = "node", value_parser = parse_node)]
    nodes: Vec<ServiceNode>,
    /// The component verifying; attestations of every node before it are required
    #[arg(long, requires = "nodes")]
    component: Option<String>,
    #[command(flatten)]
    key: PublicKeySource,
}

fn parse_node(text: &str) -> Result<ServiceNode, String> {
    let (component, key) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected COMPONENT=ed25519/<hex>"))?;
    keys::parse_key_string(key).map_err(|e| e.to_string())?;
    Ok(ServiceNode {
        component: component.to_string(),
        public_key: key.to_string(),
    })
}

pub fn run_token(command: TokenCommand) -> CommandResult {
    match command {
        TokenCommand::Inspect { source, key } => {
            let token = load_token(&source)?;
            inspect_report(&token, public_key(&key)?.as_ref())
        }
        TokenCommand::MintIdentity {
            root_key_file,
            subject,
            ttl,
            non_delegatable,
            domain,
            save_as,
            token_only,
        } => {
            let root = keys::read_private_key_file(&root_key_file)?;
            let now = unix_now();
            let claims = IdentityClaims {
                subject,
                expires_at: now + ttl,
                delegatable: !non_delegatable,
                domain,
            };
            let minted = token::mint_identity(&root, &claims)?;
            let saved = match &save_as {
                Some(name) => Some(TokenStore::open_default()?.save(name, &minted)?),
                None => None,
            };
            let json = json!({
                "success": true, "token": minted, "subject": claims.subject,
                "expires_at": claims.expires_at, "delegatable": claims.delegatable,
                "domain": claims.domain, "saved_as": save_as, "token_path": saved,
            });
            let mut text = format!(
                "Minted identity token for {} ({}), expires {}\n",
                claims.subject,
                if claims.delegatable {
                    "delegatable"
                } else {
                    "not delegatable"
                },
                format_unix(claims.expires_at)
            );
            if let Some(path) = saved {
                text.push_str(&format!("Saved to {}\n", path.display()));
            }
            text.push_str(&minted);
            Ok(Report::new(if token_only { minted } else { text }, json))
        }
        TokenCommand::MintAuthz {
            root_key_file,
            subject,
            resource,
            operation,
            ttl,
            domain,
            prefix_attenuator_key,
            nodes,
            token_only,
        } => {
            let root = keys::read_private_key_file(&root_key_file)?;
            let claims = AuthzClaims {
                subject,
                resource,
                operation,
                expires_at: unix_now() + ttl,
                domain,
                prefix_attenuator_key,
                service_chain: nodes,
                signers: Vec::new(),
            };
            let minted = token::mint_authz(&root, &claims)?;
            let json = json!({
                "success": true, "token": minted, "subject": claims.subject,
                "resource": claims.resource, "operation": claims.operation,
                "expires_at": claims.expires_at,
            });
            let text = if token_only {
                minted
            } else {
                format!(
                    "Minted authorization token: {} may {} on {}, expires {}\n{minted}",
                    claims.subject,
                    claims.operation,
                    claims.resource,
                    format_unix(claims.expires_at)
                )
            };
            Ok(Report::new(text, json))
        }
    }
}

pub fn run_authorize(command: AuthorizeCommand) -> CommandResult {
    let VerifyArgs {
        token,
        token_file,
        subject,
        resource,
        operation,
        domain,
        prefix,
        nodes,
        component,
        key,
    } = match command {
        AuthorizeCommand::Request {
            resource,
            operation,
            identity_token,
            token_file,
            domain,
            token_only,
            server,
        } => {
            let request = super::remote_cmd::AuthorizeRequest {
                resource: &resource,
                operation: &operation,
                domain,
                identity_token: identity_token.as_deref(),
                token_file: token_file.as_deref(),
                token_only,
            };
            return super::remote_cmd::authorize(server, request);
        }
        AuthorizeCommand::Verify(args) => args,
    };
    let loaded = match (token, token_file) {
        (Some(text), _) => LoadedToken {
            text,
            source: "--token".into(),
        },
        (None, Some(path)) => read_token_file(&path)?,
        (None, None) => read_token_file(std::path::Path::new("-"))?,
    };
    let root = require_public_key(&key)?;
    let mut check = AuthzVerification::new(subject.as_deref(), &resource, &operation, unix_now());
    check.domain = domain.as_deref();
    check.prefix = prefix.as_deref();
    if !nodes.is_empty() {
        check.service_chain = Some((&nodes, component.as_deref()));
    }
    match token::verify_authz(&loaded.text, &root, &check) {
        Ok(verified) => Ok(Report::new(
            format!(
                "Valid: {} may {} on {}",
                verified.subject.as_deref().unwrap_or("the holder"),
                verified.operation,
                verified.resource
            ),
            json!({ "success": true, "valid": true, "subject": verified.subject,
                    "resource": verified.resource, "operation": verified.operation,
                    "expires_at": verified.expires_at }),
        )),
        Err(error) => {
            let mut failure = Failure::from(error);
            failure.message = format!("invalid token ({}): {}", loaded.source, failure.message);
            Err(failure)
        }
    }
}

/// One refresh ancestor, as the inspector lists it: generation, full id, signing key.
pub fn describe_ancestor(ancestor: &token::Ancestor) -> String {
    let key = ancestor
        .root_key_id
        .map_or("a root key without id".to_string(), |id| {
            format!("root key {id}")
        });
    format!(
        "generation {} · revocation id {} · signed by {key}",
        ancestor.generation, ancestor.revocation_id
    )
}

/// `valid`, `expired` or `unknown` (no expiry), as the Hessra CLI reports it.
pub fn status_word(inspection: &Inspection) -> &'static str {
    match inspection.expired {
        Some(true) => "expired",
        Some(false) => "valid",
        None => "unknown",
    }
}

/// The text and JSON report of `token inspect` / `identity inspect`.
pub fn inspect_report(token: &LoadedToken, root: Option<&PublicKey>) -> CommandResult {
    let now = unix_now();
    let inspection = token::inspect(&token.text, root, now)?;
    let mut json = serde_json::to_value(&inspection).map_err(|e| Failure::usage(e.to_string()))?;
    json["source"] = json!(token.source);
    json["status"] = json!(status_word(&inspection));
    json["identity"] = json!(inspection.effective_identity);
    json["expiry"] = json!(inspection.effective_expiry);
    json["expires_in_human"] = json!(
        inspection
            .effective_expiry
            .map(|at| describe_instant(at, now))
    );
    let mut report = Report::new(render_inspection(&inspection, now), json);
    if matches!(inspection.signature, SignatureStatus::Invalid(_)) || inspection.refused.is_some() {
        report.code = super::EXIT_INVALID;
    }
    Ok(report)
}

fn render_inspection(inspection: &Inspection, now: i64) -> String {
    let mut out = String::new();
    let kind = match inspection.kind {
        token::TokenKind::Identity => "Identity token",
        token::TokenKind::Authorization => "Authorization token",
        token::TokenKind::Unknown => "Token of unknown kind",
    };
    let signature = match &inspection.signature {
        SignatureStatus::NotChecked => "signatures not checked (no public key given)".to_string(),
        SignatureStatus::Valid => "signatures valid".to_string(),
        SignatureStatus::Invalid(why) => format!("SIGNATURES INVALID: {why}"),
    };
    out.push_str(&format!("{kind} · {signature}\n"));
    if let Some(refused) = &inspection.refused {
        out.push_str(&format!("  REFUSED    {refused}\n"));
    }
    let row = |out: &mut String, label: &str, value: &str| {
        out.push_str(&format!("  {label:<10} {value}\n"))
    };
    if let Some(identity) = &inspection.effective_identity {
        row(&mut out, "identity", identity);
    }
    if inspection.chain.len() > 1 {
        row(&mut out, "chain", &inspection.chain.join(" → "));
    }
    if inspection.kind == token::TokenKind::Identity {
        let delegation = if inspection.delegatable {
            format!("delegatable · depth {}", inspection.delegation_depth)
        } else {
            "not delegatable (exact identity only)".to_string()
        };
        row(&mut out, "delegation", &delegation);
    }
    if let Some(domain) = &inspection.domain {
        row(&mut out, "domain", domain);
    }
    let expiry = match (inspection.effective_expiry, inspection.expiring_block) {
        (Some(at), Some(block)) => format!(
            "{} ({}){} · set by block {block}",
            format_unix(at),
            describe_instant(at, now),
            if at <= now { " · EXPIRED" } else { "" }
        ),
        _ => "none (the token never expires)".to_string(),
    };
    row(&mut out, "expires", &expiry);
    if !inspection.lineage.is_empty() {
        row(
            &mut out,
            "refreshed",
            &format!(
                "{} time(s); revoking any token below refuses this one",
                inspection.lineage.len()
            ),
        );
        for ancestor in &inspection.lineage {
            row(&mut out, "", &describe_ancestor(ancestor));
        }
    }
    for block in &inspection.blocks {
        out.push_str(&format!("\nBlock {} · {}", block.index, block.role));
        if let Some(key) = &block.external_key {
            out.push_str(&format!(" · signed by {key}"));
        }
        out.push_str(&format!("\n  revocation id {}\n", block.revocation_id));
        for line in block.source.lines().filter(|l| !l.trim().is_empty()) {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}
