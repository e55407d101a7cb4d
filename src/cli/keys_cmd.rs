//! `keys generate`: key pairs for roots, service nodes, signers and prefix attenuators; and the
//! server's root key set: `keys init|list|add|activate|retire`, on a workspace or manifest
//! directly, in a policy repository's `keys.toml` (with the private keys in a key directory),
//! or through a running server's operator endpoints.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::CommandResult;
use super::output::{Failure, Report};
use super::remote_cmd::{ConnectionArgs, connect, remote, runtime};
use crate::audit_trail::{read_trail, signed_by};
use crate::keyset::{KeyChange, KeySet, KeyState, Lifetime, Transition};
use crate::token::clock::{describe_instant, format_unix, unix_now};
use crate::token::keys::{self, KeyAlgorithm};
use crate::wire::{KeyChangeResponse, KeyInfo, KeysResponse};
use crate::workspace;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key pair: the private key (PKCS#8 PEM, mode 0600) and PATH.pub (SPKI PEM)
    Generate {
        /// Where to write the private key
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = Algorithm::Ed25519)]
        algorithm: Algorithm,
        /// Replace existing files
        #[arg(long)]
        force: bool,
    },
    /// Start a root key set (keys.toml) from an existing root key, which becomes key 1, active
    Init {
        /// The manifest to create
        #[arg(long)]
        key_set: PathBuf,
        /// The root private key the server has been signing with
        #[arg(long)]
        root_key: PathBuf,
    },
    /// Move a key set into the policy repository: write its public part as keys.toml in the
    /// working clone and copy the private keys of keys still in use into the key directory.
    /// Commit and push it (`policy commit`, `policy push`); replicas serving the repository with
    /// --key-dir (a workspace: server/keys/) then take their keys from it
    Publish {
        /// A workspace: its server/keys.toml into its policy clone, private keys into server/keys/
        #[arg(long, conflicts_with_all = ["key_set", "repo", "key_dir"])]
        workspace: Option<PathBuf>,
        /// The key set manifest to publish
        #[arg(long, requires_all = ["repo", "key_dir"])]
        key_set: Option<PathBuf>,
        /// The policy repository's working clone
        #[arg(long)]
        repo: Option<PathBuf>,
        /// Where the private keys go (created 0700; files 0600)
        #[arg(long)]
        key_dir: Option<PathBuf>,
    },
    /// The root key set: ids, states, and until when retiring keys verify
    List {
        #[command(flatten)]
        target: KeySetTarget,
    },
    /// Generate a key in state next: published (GET /public_keys), not signing yet
    Add {
        #[command(flatten)]
        target: KeySetTarget,
        #[arg(long, value_enum, default_value_t = Algorithm::Ed25519)]
        algorithm: Algorithm,
    },
    /// Make key ID the signing key; the active key becomes retiring and keeps verifying until
    /// the tokens it signed have expired
    Activate {
        id: u32,
        #[command(flatten)]
        target: KeySetTarget,
    },
    /// Retire key ID: it stops verifying and its private key is deleted. Refused while tokens
    /// it signed may be live
    Retire {
        id: u32,
        #[command(flatten)]
        target: KeySetTarget,
        /// Retire it anyway (a compromised key): the live tokens it signed stop working
        #[arg(long)]
        force: bool,
    },
}

/// Which key set: a workspace's, a manifest, a policy repository's, or a running server's.
#[derive(Debug, Clone, Args)]
pub struct KeySetTarget {
    /// A workspace made by `demo init`: keys.toml in its policy clone (private keys in
    /// server/keys/) once published there, else its server/keys.toml
    #[arg(long, conflicts_with_all = ["key_set", "repo", "server"])]
    workspace: Option<PathBuf>,
    /// A key set manifest (keys.toml)
    #[arg(long, conflicts_with_all = ["server", "repo"])]
    key_set: Option<PathBuf>,
    /// A policy repository's working clone: edits its keys.toml (commit and push it after)
    #[arg(long, requires = "key_dir", conflicts_with = "server")]
    repo: Option<PathBuf>,
    /// With --repo: the directory of private root keys (new keys are written there, 0600)
    #[arg(long, requires = "repo")]
    key_dir: Option<PathBuf>,
    /// With --key-set: the policy (clients.toml) whose token lifetimes bound a rotation
    /// (with --repo: its clients.toml)
    #[arg(long, requires = "key_set")]
    policy: Option<PathBuf>,
    /// With --key-set or --repo: the server's audit file, to name live tokens a change would
    /// break
    #[arg(long, conflicts_with_all = ["workspace", "server"])]
    audit_file: Option<PathBuf>,
    /// A running server (https URL or host:port): uses its operator endpoints, with --cert
    /// and --key of an operator
    #[arg(short = 's', long)]
    server: Option<String>,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Algorithm {
    Ed25519,
    Secp256r1,
}

impl Algorithm {
    fn key_algorithm(self) -> KeyAlgorithm {
        match self {
            Algorithm::Ed25519 => KeyAlgorithm::Ed25519,
            Algorithm::Secp256r1 => KeyAlgorithm::Secp256r1,
        }
    }
}

pub fn run(command: KeysCommand) -> CommandResult {
    match command {
        KeysCommand::Generate {
            out,
            algorithm,
            force,
        } => generate(&out, algorithm.key_algorithm(), force),
        KeysCommand::Init { key_set, root_key } => init(&key_set, &root_key),
        KeysCommand::Publish {
            workspace,
            key_set,
            repo,
            key_dir,
        } => publish(workspace, key_set, repo, key_dir),
        KeysCommand::List { target } => list(&target),
        KeysCommand::Add { target, algorithm } => {
            change(&target, KeyChange::Add(algorithm.key_algorithm()))
        }
        KeysCommand::Activate { id, target } => change(&target, KeyChange::Activate(id)),
        KeysCommand::Retire { id, target, force } => {
            change(&target, KeyChange::Retire { id, force })
        }
    }
}

fn generate(out: &Path, algorithm: KeyAlgorithm, force: bool) -> CommandResult {
    let out = out.to_path_buf();
    let public_path = public_path(&out);
    for path in [&out, &public_path] {
        if path.exists() && !force {
            return Err(Failure::usage(format!(
                "{} already exists; pass --force to replace it",
                path.display()
            )));
        }
    }
    let pair = keys::generate(algorithm);
    keys::write_private_key_file(&out, &pair)?;
    let public_pem = keys::public_key_pem(&pair.public())?;
    std::fs::write(&public_path, &public_pem)
        .map_err(|e| Failure::usage(format!("{}: {e}", public_path.display())))?;
    let key_string = keys::key_string(&pair.public());
    Ok(Report::new(
        format!(
            "Private key: {} (mode 0600)\nPublic key:  {}\n{key_string}",
            out.display(),
            public_path.display()
        ),
        json!({
            "success": true,
            "algorithm": algorithm.name(),
            "private_key_path": out,
            "public_key_path": public_path,
            "public_key": key_string,
            "public_key_pem": public_pem,
        }),
    ))
}

fn public_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn init(manifest: &Path, root_key: &Path) -> CommandResult {
    if manifest.exists() {
        return Err(Failure::usage(format!(
            "{} already exists: it is a key set already",
            manifest.display()
        )));
    }
    let set = KeySet::create(manifest, root_key, unix_now()).map_err(set_error)?;
    Ok(Report::new(
        format!(
            "Created {} with {} as key 1 (active).\nServe with: hessra-console serve --key-set {}",
            manifest.display(),
            root_key.display(),
            manifest.display()
        ),
        json!({ "success": true, "keys": infos(&set) }),
    ))
}

/// Where the local commands find the set, the policy that bounds token lifetimes, and the
/// audit trail that names live tokens.
struct Local {
    set: KeySet,
    policy: Option<crate::policy::Policy>,
    audit: Option<PathBuf>,
}

/// The public part of `set` as `clone/keys.toml`, and the private keys of keys still in use
/// copied into `key_dir`: the key set moves into the policy repository.
fn publish(
    workspace: Option<PathBuf>,
    key_set: Option<PathBuf>,
    repo: Option<PathBuf>,
    key_dir: Option<PathBuf>,
) -> CommandResult {
    let (set, clone, key_dir) = match (workspace, key_set, repo, key_dir) {
        (Some(dir), _, _, _) => {
            let ws = workspace::open(&dir).map_err(|e| Failure::usage(e.to_string()))?;
            let set = ws.key_set().map_err(|e| Failure::usage(e.to_string()))?;
            (set, ws.policy.clone(), ws.key_dir())
        }
        (None, Some(manifest), Some(repo), Some(key_dir)) => {
            (KeySet::load(&manifest).map_err(set_error)?, repo, key_dir)
        }
        _ => {
            return Err(Failure::usage(
                "say which key set to publish: --workspace DIR, or --key-set FILE --repo PATH --key-dir DIR",
            ));
        }
    };
    let target = clone.join(crate::keyset::MANIFEST);
    let copied = set.publish_to(&target, &key_dir).map_err(set_error)?;
    Ok(Report::new(
        format!(
            "Wrote {} (public keys only) and {} private key(s) into {}.\nCommit and push it: hessra-console policy --file {} commit -m \"Root keys in the repository\" && hessra-console policy --file {} push",
            target.display(),
            copied.len(),
            key_dir.display(),
            clone.join("clients.toml").display(),
            clone.join("clients.toml").display(),
        ),
        json!({ "success": true, "manifest": target, "key_dir": key_dir, "private_keys": copied, "keys": infos(&set) }),
    ))
}

/// The repository key set of a working clone, the policy beside it, and an audit file.
fn repository_set(clone: &Path, key_dir: &Path, audit: Option<PathBuf>) -> Result<Local, Failure> {
    let manifest = clone.join(crate::keyset::MANIFEST);
    if !manifest.exists() {
        return Err(Failure::usage(format!(
            "{} has no {}: put the key set there first (`hessra-console keys publish --key-set FILE --repo {} --key-dir {}`)",
            clone.display(),
            crate::keyset::MANIFEST,
            clone.display(),
            key_dir.display()
        )));
    }
    let set = KeySet::open_repository(&manifest, key_dir).map_err(set_error)?;
    let policy_file = clone.join("clients.toml");
    let text = std::fs::read_to_string(&policy_file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", policy_file.display())))?;
    Ok(Local {
        set,
        policy: Some(load_policy(&text, &policy_file.display().to_string())?),
        audit,
    })
}

/// A key set in a policy repository's working clone: the clone, its key directory, and the
/// audit trail that names live tokens.
struct InClone {
    clone: PathBuf,
    key_dir: PathBuf,
    audit: Option<PathBuf>,
}

/// `--repo PATH --key-dir DIR`, or a workspace whose clone holds `keys.toml`.
fn in_clone(target: &KeySetTarget) -> Result<Option<InClone>, Failure> {
    if let (Some(clone), Some(key_dir)) = (&target.repo, &target.key_dir) {
        return Ok(Some(InClone {
            clone: clone.clone(),
            key_dir: key_dir.clone(),
            audit: target.audit_file.clone(),
        }));
    }
    let Some(dir) = &target.workspace else {
        return Ok(None);
    };
    let ws = workspace::open(dir).map_err(|e| Failure::usage(e.to_string()))?;
    Ok(ws
        .policy
        .join(crate::keyset::MANIFEST)
        .exists()
        .then(|| InClone {
            clone: ws.policy.clone(),
            key_dir: ws.key_dir(),
            audit: Some(ws.audit_file()),
        }))
}

fn local(target: &KeySetTarget) -> Result<Option<Local>, Failure> {
    if let Some(found) = in_clone(target)? {
        return repository_set(&found.clone, &found.key_dir, found.audit).map(Some);
    }
    if let Some(dir) = &target.workspace {
        let ws = workspace::open(dir).map_err(|e| Failure::usage(e.to_string()))?;
        let set = ws.key_set().map_err(|e| Failure::usage(e.to_string()))?;
        // The policy the server applies: the origin's main branch.
        let text = crate::gitops::read_at_revision(&ws.origin, "main", Path::new("clients.toml"))
            .or_else(|_| std::fs::read_to_string(ws.policy_file()))
            .map_err(|e| Failure::usage(format!("the workspace's policy: {e}")))?;
        return Ok(Some(Local {
            set,
            policy: Some(load_policy(&text, "the workspace's clients.toml")?),
            audit: Some(ws.server_state.join("audit.jsonl")),
        }));
    }
    if let Some(manifest) = &target.key_set {
        let set = KeySet::load(manifest).map_err(set_error)?;
        let policy = match &target.policy {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
                Some(load_policy(&text, &path.display().to_string())?)
            }
            None => None,
        };
        return Ok(Some(Local {
            set,
            policy,
            audit: target.audit_file.clone(),
        }));
    }
    if target.server.is_none() {
        return Err(Failure::usage(
            "say which key set: --workspace DIR, --key-set FILE, --repo PATH --key-dir DIR, or --server URL with an operator's --cert and --key",
        ));
    }
    Ok(None)
}

fn load_policy(text: &str, what: &str) -> Result<crate::policy::Policy, Failure> {
    crate::policy::load(text, unix_now())
        .map(|loaded| loaded.policy)
        .map_err(|f| Failure::usage(format!("{what}: {f}")))
}

fn list(target: &KeySetTarget) -> CommandResult {
    let (keys, note) = match local(target)? {
        Some(local) => (infos(&local.set), None),
        None => {
            let server = target.server.as_deref().unwrap_or_default();
            let connection = connect(server, &target.connection, true)?;
            let response: KeysResponse = runtime()?
                .block_on(connection.get("/keys"))
                .map_err(remote)?;
            let note = match (&response.key_set_error, response.managed) {
                (Some(error), _) => Some(format!("the key set on disk was refused: {}", error.message)),
                (None, false) => Some(
                    "this server was given a single --root-key: it signs without key ids and cannot rotate"
                        .to_string(),
                ),
                (None, true) => None,
            };
            (response.keys, note)
        }
    };
    let mut text = render(&keys, unix_now());
    if let Some(note) = &note {
        text.push_str(&format!("\n{note}"));
    }
    Ok(Report::new(
        text,
        json!({ "success": true, "keys": keys, "note": note }),
    ))
}

/// One line per key: id, state, key, and what its state means now.
pub fn render(keys: &[KeyInfo], now: i64) -> String {
    let mut out = String::from(
        "ID  STATE     PUBLIC KEY                                                                 \n",
    );
    out.truncate(out.trim_end().len());
    out.push('\n');
    for key in keys {
        let id = key.id.map_or("-".to_string(), |id| id.to_string());
        let when = match key.state {
            KeyState::Next => format!("published {}, not signing", ago(key.created_at, now)),
            KeyState::Active => format!("signing since {}", ago(key.activated_at, now)),
            KeyState::Retiring => match key.verify_until {
                Some(until) if until > now => format!(
                    "verifying until {} ({})",
                    format_unix(until),
                    describe_instant(until, now)
                ),
                _ => "verifying; may be retired now".to_string(),
            },
            KeyState::Retired => format!("retired {}", ago(key.retired_at, now)),
        };
        out.push_str(&format!(
            "{id:<3} {:<9} {}  {when}\n",
            key.state.name(),
            key.public_key
        ));
    }
    out.truncate(out.trim_end().len());
    out
}

fn ago(at: Option<i64>, now: i64) -> String {
    at.map_or("(unknown)".into(), |at| describe_instant(at, now))
}

/// A change of the key set in a working clone, through the repository layer the console uses
/// too.
fn change_in_clone(found: &InClone, change: KeyChange) -> CommandResult {
    let repo = crate::repo::PolicyRepo::discover(&found.clone.join("clients.toml"));
    let (transition, set) = repo
        .change_keys(&found.key_dir, change, found.audit.as_deref(), unix_now())
        .map_err(|error| match error {
            crate::repo::RepoError::KeySet(error) => set_error(error),
            other => Failure::usage(other.to_string()),
        })?;
    let note = format!(
        "{} changed in the working clone: commit and push it (`policy commit`, `policy push`); every replica applies it with the policy",
        set.manifest().display()
    );
    Ok(report(
        &transition.summary,
        &transition_broken(&transition),
        infos(&set),
        Some(&note),
    ))
}

fn change(target: &KeySetTarget, change: KeyChange) -> CommandResult {
    if let Some(found) = in_clone(target)? {
        return change_in_clone(&found, change);
    }
    let Some(mut local) = local(target)? else {
        return change_remote(target, change);
    };
    let now = unix_now();
    // Streamed line by line across the rotated files too, never read whole; a file that is
    // there but cannot be read stops the change (it may name live tokens).
    if let Some(path) = &local.audit
        && let Err(e) = std::fs::File::open(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(Failure::usage(format!(
            "cannot read {}: {e}",
            path.display()
        )));
    }
    let events = local.audit.as_deref().map(read_trail).into_iter().flatten();
    let lifetime = local.policy.as_ref().map(Lifetime::of_policy);
    let transition = local
        .set
        .apply(change, now, lifetime.as_ref(), |set, id| {
            signed_by(set, id, events, now)
        })
        .map_err(set_error)?;
    local.set.save().map_err(set_error)?;
    Ok(report(
        &transition.summary,
        &transition_broken(&transition),
        infos(&local.set),
        Some("a server running on this key set picks the change up at its next sync tick"),
    ))
}

fn change_remote(target: &KeySetTarget, change: KeyChange) -> CommandResult {
    let server = target.server.as_deref().unwrap_or_default();
    let connection = connect(server, &target.connection, true)?;
    let (path, request) = (change.endpoint(), change.request());
    let response: KeyChangeResponse = runtime()?
        .block_on(connection.post(path, &request, None))
        .map_err(remote)?;
    let broken: Vec<String> = response
        .broken
        .iter()
        .map(|t| broken_line(&t.identity, t.expires_at))
        .collect();
    Ok(report(&response.response_msg, &broken, response.keys, None))
}

fn transition_broken(transition: &Transition) -> Vec<String> {
    transition
        .broken
        .iter()
        .map(|t| broken_line(&t.identity, t.expires_at))
        .collect()
}

fn broken_line(identity: &str, expires_at: i64) -> String {
    format!("{identity}, until {}", format_unix(expires_at))
}

fn report(summary: &str, broken: &[String], keys: Vec<KeyInfo>, note: Option<&str>) -> Report {
    let mut text = summary.to_string();
    if !broken.is_empty() {
        text.push_str("\nNo longer accepted:");
        for line in broken {
            text.push_str(&format!("\n  {line}"));
        }
    }
    text.push_str(&format!("\n\n{}", render(&keys, unix_now())));
    if let Some(note) = note {
        text.push_str(&format!("\n{note}"));
    }
    Report::new(
        text,
        json!({ "success": true, "summary": summary, "broken": broken, "keys": keys }),
    )
}

fn infos(set: &KeySet) -> Vec<KeyInfo> {
    set.entries().iter().map(KeyInfo::from).collect()
}

fn set_error(error: crate::keyset::KeySetError) -> Failure {
    match error {
        crate::keyset::KeySetError::Refused(message) => Failure::invalid(message, json!({})),
        other => Failure::usage(other.to_string()),
    }
}
