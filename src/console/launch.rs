//! Where the console points: the default demo workspace (created on first run), a workspace
//! given with `--workspace`, or a policy repository plus a remote server. Starts the embedded
//! server for workspaces and reads what the first frame needs.

use std::path::{Path, PathBuf};

use clap::Args;

use super::app::Context;
use super::config::Config;
use super::jobs::{Env, ServerLink};
use super::keymap::Keymap;
use super::theme::{Theme, no_color_requested};
use crate::server::{self, RunningServer};
use crate::token_store::TokenStore;
use crate::workspace::{self, Workspace};

/// Flags of the console itself (no subcommand).
#[derive(Debug, Clone, Default, Args)]
pub struct ConsoleArgs {
    /// Open this workspace (made by `demo init`) with its embedded server
    #[arg(long, conflicts_with_all = ["policy_repo", "server"])]
    pub workspace: Option<PathBuf>,
    /// A git working copy holding clients.toml (or the file itself); no embedded server
    #[arg(long)]
    pub policy_repo: Option<PathBuf>,
    /// A remote server to watch (https URL or host:port)
    #[arg(long, requires_all = ["cert", "key", "ca"])]
    pub server: Option<String>,
    /// Operator client certificate (PEM) for --server
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Operator private key (PEM) for --server
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// CA certificate (PEM) that signed the server's certificate
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Review mode: every action that changes policy, git or tokens is removed
    #[arg(long)]
    pub readonly: bool,
    /// Theme: default, light, high-contrast, deuteranopia
    #[arg(long)]
    pub theme: Option<String>,
}

impl ConsoleArgs {
    /// The flags that were passed, as typed (`--workspace`), in declaration order.
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("--workspace", self.workspace.is_some()),
            ("--policy-repo", self.policy_repo.is_some()),
            ("--server", self.server.is_some()),
            ("--cert", self.cert.is_some()),
            ("--key", self.key.is_some()),
            ("--ca", self.ca.is_some()),
            ("--readonly", self.readonly),
            ("--theme", self.theme.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }
}

/// Everything the terminal loop needs, plus what must live as long as the console.
pub struct Launched {
    pub context: Context,
    pub env: Env,
    pub runtime: tokio::runtime::Runtime,
    pub server: Option<RunningServer>,
    /// The workspace fleet's other replicas, run in this console too.
    pub replicas: Vec<RunningServer>,
    pub config: Config,
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Builds the context; prints to stderr only before the terminal is taken over.
pub fn launch(args: ConsoleArgs) -> Result<Launched, String> {
    launch_with_config(args, super::config::config_path().as_deref())
}

/// What the flags and the config file decide, and what was wrong with them.
pub struct Settings {
    pub theme: Theme,
    pub keymap: Keymap,
    pub readonly: bool,
    pub notices: Vec<String>,
}

/// Combines the flags with the config file. A flag's mistake stops the start naming the
/// flag; the file's mistakes are notices naming the file (the config already failed closed).
pub fn settings(
    args: &ConsoleArgs,
    config: &Config,
    problems: Vec<String>,
) -> Result<Settings, String> {
    let mut notices = problems;
    let origin = config.path.as_ref().map_or_else(
        || "the config file".to_string(),
        |p| p.display().to_string(),
    );
    let mut theme = match (&args.theme, &config.theme) {
        (Some(name), _) => Theme::built_in(name).map_err(|e| format!("--theme: {e}"))?,
        (None, Some(name)) => Theme::built_in(name).unwrap_or_else(|e| {
            notices.push(format!("{origin}: theme: {e}; using the default theme"));
            Theme::built_in("default").expect("the default theme is built in")
        }),
        (None, None) => Theme::built_in("default").expect("the default theme is built in"),
    };
    if let Some(overrides) = &config.theme_overrides
        && let Err(e) = theme.patch(overrides, &format!("{origin} [theme_overrides]"))
    {
        notices.push(e);
    }
    if no_color_requested() {
        theme = theme.without_color();
    }
    let (keymap, key_errors) = Keymap::defaults().with_overrides(&config.keys);
    notices.extend(key_errors.into_iter().map(|e| format!("{origin}: {}", e.0)));
    Ok(Settings {
        theme,
        keymap,
        readonly: args.readonly || config.readonly,
        notices,
    })
}

/// `launch` with the config file at `config_path` (tests point it at their own).
pub fn launch_with_config(
    args: ConsoleArgs,
    config_path: Option<&Path>,
) -> Result<Launched, String> {
    let (config, problems) = Config::load(config_path);
    let Settings {
        theme,
        keymap,
        readonly,
        mut notices,
    } = settings(&args, &config, problems)?;
    for notice in &notices {
        tracing::warn!("{notice}");
    }

    server::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("console-runtime")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;

    let mut first_run = None;
    let target = if let Some(repo) = &args.policy_repo {
        Target::Repo(repo.clone())
    } else {
        let dir = match &args.workspace {
            Some(dir) => dir.clone(),
            None => {
                let (dir, created) = default_workspace()?;
                if created {
                    first_run = Some(dir.clone());
                }
                dir
            }
        };
        Target::Workspace(Box::new(workspace::open(&dir).map_err(|e| e.to_string())?))
    };

    let audit_trail = match &target {
        Target::Workspace(ws) => Some(ws.audit_file()),
        Target::Repo(_) => None,
    };
    let mut replicas = Vec::new();
    let (policy_path, mut link, running, mut operator) = match &target {
        Target::Workspace(ws) => {
            let (running, moved) = runtime.block_on(start_embedded(ws))?;
            if let Some(note) = moved {
                notices.insert(0, note);
            }
            let (started, notes) = runtime.block_on(start_replicas(ws));
            replicas = started;
            notices.extend(notes);
            let link = workspace_link(ws, &running.url())?;
            (
                ws.policy_file(),
                Some(link),
                Some(running),
                Some(ws.operator.clone()),
            )
        }
        Target::Repo(path) => {
            let file = if path.is_dir() {
                path.join("clients.toml")
            } else {
                path.clone()
            };
            (file, None, None, None)
        }
    };
    if let Some(url) = &args.server {
        let (cert, key, ca) = (
            args.cert
                .as_deref()
                .expect("clap requires --cert with --server"),
            args.key
                .as_deref()
                .expect("clap requires --key with --server"),
            args.ca
                .as_deref()
                .expect("clap requires --ca with --server"),
        );
        let mut operator_pem = read(cert)?;
        let identity = certificate_identity(&operator_pem);
        operator = operator.or_else(|| identity.clone());
        operator_pem.extend(read(key)?);
        // Without a workspace the only client certificate at hand is the operator's: the
        // demo flow authenticates with it.
        let demo_clients = identity
            .map(|id| vec![(id, operator_pem.clone())])
            .unwrap_or_default();
        link = Some(ServerLink {
            url: url.clone(),
            ca_pem: read(ca)?,
            operator_pem,
            demo_clients,
        });
    }
    let policy_path = std::path::absolute(&policy_path).unwrap_or(policy_path);
    let policy_text = std::fs::read_to_string(&policy_path)
        .map_err(|e| format!("cannot read {}: {e}", policy_path.display()))?;
    let repo_root = policy_path
        .parent()
        .and_then(|dir| crate::gitops::repository_root(dir).ok())
        .map(|root| root.canonicalize().unwrap_or(root));
    let policy_path = match (&repo_root, policy_path.canonicalize()) {
        (Some(_), Ok(canonical)) => canonical,
        _ => policy_path,
    };
    let server_info = link.as_ref().map(|l| (l.url.clone(), running.is_some()));
    let demo_clients = link
        .as_ref()
        .map(|l| l.demo_clients.iter().map(|(id, _)| id.clone()).collect())
        .unwrap_or_default();
    let token_store = TokenStore::open_default().ok();
    let recovery = super::config::log_path().and_then(|log| {
        log.parent()
            .map(|dir| super::jobs::recovery_path(dir, &policy_path))
    });
    let recovered = recovery
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok());
    let recovered_editor = recovery
        .as_ref()
        .and_then(|path| std::fs::read_to_string(super::jobs::editor_recovery_path(path)).ok());
    let mut env = Env::new(
        policy_path.clone(),
        repo_root.clone(),
        link,
        token_store,
        runtime.handle().clone(),
    );
    env.recovery_path = recovery.clone();
    if let Target::Workspace(ws) = &target {
        env.key_dir = Some(ws.key_dir());
        env.audit_trail = Some(ws.audit_file());
    }
    tracing::info!(
        policy = %policy_path.display(),
        repo = ?repo_root,
        server = ?server_info,
        config = ?config.path,
        "console starting"
    );
    let context = Context {
        policy_path,
        policy_text,
        has_repo: repo_root.is_some(),
        server: server_info,
        operator,
        demo_clients,
        readonly,
        theme,
        keymap,
        now: crate::token::clock::unix_now(),
        frozen_clock: false,
        notices,
        clipboard: super::clipboard::Clipboard::resolve(
            config.clipboard,
            |name| std::env::var(name).ok(),
            super::clipboard::default_file(),
        ),
        mouse: config.mouse,
        quiet_after: config.quiet_after,
        fetch_interval: config.fetch_interval,
        audit_trail,
        unused_window: config.unused_window,
        first_run,
        recovered,
        keep_unsaved: recovery.is_some(),
        recovered_editor,
    };
    Ok(Launched {
        context,
        env,
        runtime,
        server: running,
        replicas,
        config,
    })
}

/// The first URI SAN of the first certificate in a PEM bundle: who the operator is.
fn certificate_identity(pem: &[u8]) -> Option<String> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .next()?
        .ok()?;
    crate::pki::san_uris(&der).ok()?.into_iter().next()
}

enum Target {
    Workspace(Box<Workspace>),
    Repo(PathBuf),
}

/// The default workspace, and whether this run created it (its first run: announced here,
/// and again inside the console).
fn default_workspace() -> Result<(PathBuf, bool), String> {
    let dir = workspace::default_dir()
        .ok_or("cannot find a data directory for the demo workspace (is HOME set?)")?;
    if !dir.join("workspace.toml").exists() {
        eprintln!(
            "Creating the demo workspace in {} (first run)…",
            dir.display()
        );
        workspace::init(&dir, false).map_err(|e| e.to_string())?;
        return Ok((dir, true));
    }
    Ok((dir, false))
}

/// Starts the workspace's server; when its port is taken, on a free one (and says so).
async fn start_embedded(ws: &Workspace) -> Result<(RunningServer, Option<String>), String> {
    let config = ws.server_config(ws.listen).map_err(|e| e.to_string())?;
    match server::start(config).await {
        Ok(running) => Ok((running, None)),
        Err(server::ServerError::Listen { addr, .. }) => {
            let mut free = ws.listen;
            free.set_port(0);
            let running = server::start(ws.server_config(free).map_err(|e| e.to_string())?)
                .await
                .map_err(|e| e.to_string())?;
            let note = format!(
                "{addr} is in use (another console or `serve`?): the embedded server listens on {} instead",
                running.addr
            );
            Ok((running, Some(note)))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Starts the workspace fleet's other replicas (`demo init --replicas N`), each at the address
/// `fleet.toml` gives it: one whose port is taken is not moved (the fleet file would be wrong)
/// but said, and the others run.
async fn start_replicas(ws: &Workspace) -> (Vec<RunningServer>, Vec<String>) {
    let replicas = match ws.embedded_replicas() {
        Ok(replicas) => replicas,
        Err(error) => return (Vec::new(), vec![format!("the fleet: {error}")]),
    };
    let mut running = Vec::new();
    let mut notes = Vec::new();
    for replica in &replicas {
        let config = match ws.replica_config(replica) {
            Ok(config) => config,
            Err(e) => {
                notes.push(format!("replica {}: {e}", replica.name));
                continue;
            }
        };
        match server::start(config).await {
            Ok(server) => running.push(server),
            Err(e) => notes.push(format!(
                "replica {} was not started ({e}); fleet status shows it down",
                replica.name
            )),
        }
    }
    (running, notes)
}

/// The operator's and the demo clients' certificates of a workspace.
pub fn workspace_link(ws: &Workspace, url: &str) -> Result<ServerLink, String> {
    let pem = |identity: &str| -> Result<Vec<u8>, String> {
        let (cert, key) = ws.client_cert(identity);
        let mut pem = read(&cert)?;
        pem.extend(read(&key)?);
        Ok(pem)
    };
    let policy_text = std::fs::read_to_string(ws.policy_file()).unwrap_or_default();
    let identities: Vec<String> =
        crate::policy::load(&policy_text, crate::token::clock::unix_now())
            .map(|loaded| {
                loaded
                    .policy
                    .clients
                    .into_iter()
                    .map(|c| c.identity)
                    .collect()
            })
            .unwrap_or_default();
    let demo_clients = identities
        .into_iter()
        .filter_map(|identity| pem(&identity).ok().map(|bytes| (identity, bytes)))
        .collect();
    Ok(ServerLink {
        url: url.to_string(),
        ca_pem: read(&ws.ca_cert)?,
        operator_pem: pem(&ws.operator)?,
        demo_clients,
    })
}
