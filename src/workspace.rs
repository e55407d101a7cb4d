//! The demo workspace: creating the layout (`demo init`) and reading `workspace.toml`, which
//! says what is where for `serve` and the console.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::gitops;
use crate::pki::{self, DevCa};
use crate::policy::{self, Edit, EditSession};
use crate::server::{PolicySource, ServerConfig};
use crate::token::{clock::unix_now, keys};

/// The demo policy every workspace starts from.
pub const DEMO_POLICY: &str = include_str!("../fixtures/clients.toml");
/// The identity the console uses to read status and audit.
pub const DEMO_OPERATOR: &str = "uri:urn:company:ops";
/// Where the demo server listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4443";

/// Workspace failures.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(
        "{0} is already a workspace; pass --force to recreate it (its keys and policy history are replaced)"
    )]
    Exists(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} has no workspace.toml; create one with `hessra-console demo init DIR`")]
    NotAWorkspace(String),
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Git(#[from] gitops::GitError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("root keys: {0}")]
    Keys(String),
    #[error("the demo policy is invalid: {0}")]
    Policy(String),
}

/// Where everything of a workspace is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub root: PathBuf,
    pub listen: SocketAddr,
    pub operator: String,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub clients: PathBuf,
    pub origin: PathBuf,
    pub policy: PathBuf,
    pub root_key: PathBuf,
    pub server_state: PathBuf,
}

const LAYOUT: [(&str, &str); 10] = [
    ("ca_cert", "pki/ca.pem"),
    ("ca_key", "pki/ca.key"),
    ("server_cert", "pki/server.pem"),
    ("server_key", "pki/server.key"),
    ("clients", "pki/clients"),
    ("origin", "origin.git"),
    ("policy", "policy"),
    ("root_key", "server/root.key"),
    ("server_state", "server"),
    ("workspace", "workspace.toml"),
];

impl Workspace {
    /// The client certificate and key of an identity.
    pub fn client_cert(&self, identity: &str) -> (PathBuf, PathBuf) {
        let slug = pki::slug(identity);
        (
            self.clients.join(format!("{slug}.pem")),
            self.clients.join(format!("{slug}.key")),
        )
    }

    /// The policy file in the working clone.
    pub fn policy_file(&self) -> PathBuf {
        self.policy.join("clients.toml")
    }

    /// The server's root key set (`server/keys.toml`).
    pub fn key_manifest(&self) -> PathBuf {
        self.server_state.join(crate::keyset::MANIFEST)
    }

    /// Where the workspace's replicas find the private root keys when the key set lives in the
    /// policy repository (`server/keys/`, mode 0700, files 0600).
    pub fn key_dir(&self) -> PathBuf {
        self.server_state.join("keys")
    }

    /// Whether the key set has moved into the policy repository: `keys.toml` on the origin's
    /// main branch (see `keys publish`).
    pub fn keys_in_repository(&self) -> bool {
        gitops::read_at_revision(&self.origin, "main", Path::new(crate::keyset::MANIFEST)).is_ok()
    }

    /// Where this workspace's server takes its root keys: the repository's `keys.toml` with the
    /// private keys in `key_dir` once published there, else the local `server/keys.toml`.
    pub fn root_key_source(&self) -> Result<crate::server::RootKeySource, WorkspaceError> {
        if self.keys_in_repository() {
            return Ok(crate::server::RootKeySource::Repository {
                key_dir: self.key_dir(),
            });
        }
        self.key_set()?;
        Ok(crate::server::RootKeySource::Set(self.key_manifest()))
    }

    /// The root key set, created from `server/root.key` (as key 1, active) for a workspace made
    /// before key sets existed.
    pub fn key_set(&self) -> Result<crate::keyset::KeySet, WorkspaceError> {
        let manifest = self.key_manifest();
        let result = if manifest.exists() {
            crate::keyset::KeySet::load(&manifest)
        } else {
            crate::keyset::KeySet::create(&manifest, &self.root_key, unix_now())
        };
        result.map_err(|e| WorkspaceError::Keys(e.to_string()))
    }

    /// Where the workspace's server writes its audit trail (rotated files beside it).
    pub fn audit_file(&self) -> PathBuf {
        self.server_state.join("audit.jsonl")
    }

    /// The server this workspace describes: its certificate and root key, the bare origin as
    /// the policy source polled every second, its state directory and audit file. Callers
    /// change what they need (a test's port, a bench's poll interval).
    pub fn server_config(&self, listen: SocketAddr) -> Result<ServerConfig, WorkspaceError> {
        let read = |path: &Path| std::fs::read_to_string(path).map_err(io(path));
        Ok(ServerConfig {
            listen,
            tls_cert_pem: read(&self.server_cert)?,
            tls_key_pem: read(&self.server_key)?,
            client_ca_pem: None,
            policy: PolicySource::Git {
                repo: self.origin.clone(),
                branch: "main".into(),
            },
            root_keys: self.root_key_source()?,
            audit_file: Some(self.audit_file()),
            audit: crate::server::AuditConfig::default(),
            signer: None,
            state_dir: Some(self.server_state.clone()),
            poll_interval: Some(std::time::Duration::from_secs(1)),
            slow_client_timeout: crate::server::SLOW_CLIENT_TIMEOUT,
            max_refresh_generations: crate::token::DEFAULT_MAX_REFRESH_GENERATIONS,
            max_policy_bytes: crate::gitops::DEFAULT_MAX_POLICY_BYTES,
            limits: crate::server::ServerLimits::default(),
        })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WorkspaceError + '_ {
    move |source| WorkspaceError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `$XDG_DATA_HOME/hessra-console/demo`.
pub fn default_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "hessra-console").map(|d| d.data_dir().join("demo"))
}

/// Creates a workspace in `dir`: PKI, bare origin with the demo policy, working clone, root key.
/// Where a new workspace keeps its root key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKeysIn {
    /// `server/keys.toml` naming `server/root.key`: one server, rotated through its operator
    /// endpoints or the files.
    Server,
    /// `keys.toml` in the policy repository (public part, committed with the demo policy) and
    /// the private key in `server/keys/`: rotated by commits, as a fleet is.
    Repository,
}

/// `init_with` keeping the key set beside the server (`RootKeysIn::Server`).
pub fn init(dir: &Path, force: bool) -> Result<Workspace, WorkspaceError> {
    init_with(dir, force, RootKeysIn::Server, 1)
}

/// `init` with a demo fleet of `replicas` loopback replicas (more than one): `fleet.toml` in
/// the first commit lists them as `a`, `b`, `c`… on consecutive ports from the workspace's, and
/// the console started on the workspace runs them all.
pub fn init_fleet(dir: &Path, force: bool, replicas: usize) -> Result<Workspace, WorkspaceError> {
    init_with(dir, force, RootKeysIn::Server, replicas)
}

/// Creates the demo workspace in `dir` (replacing one there only with `force`), its root key
/// set kept where `keys` says, with a fleet of `replicas` (1: no fleet file).
pub fn init_with(
    dir: &Path,
    force: bool,
    keys: RootKeysIn,
    replicas: usize,
) -> Result<Workspace, WorkspaceError> {
    if !(1..=MAX_DEMO_REPLICAS).contains(&replicas) {
        return Err(WorkspaceError::Config {
            path: dir.display().to_string(),
            message: format!("--replicas {replicas}: a demo fleet has 1 to {MAX_DEMO_REPLICAS}"),
        });
    }
    if dir.join("workspace.toml").exists() {
        if !force {
            return Err(WorkspaceError::Exists(dir.display().to_string()));
        }
        for (_, relative) in LAYOUT {
            let path = dir.join(relative);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(io(&path)(e));
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let pki_dir = dir.join("pki");
    let clients_dir = pki_dir.join("clients");
    fsutil::create_private_dir(&clients_dir).map_err(io(&clients_dir))?;

    let ca = DevCa::generate("hessra-console demo CA")?;
    write_public(&dir.join("pki/ca.pem"), &ca.cert_pem)?;
    write_secret(&dir.join("pki/ca.key"), &ca.key_pem)?;
    let server = ca.issue_server(&["localhost", "127.0.0.1", "::1"])?;
    write_public(&dir.join("pki/server.pem"), &server.cert_pem)?;
    write_secret(&dir.join("pki/server.key"), &server.key_pem)?;

    let mut session = EditSession::open(DEMO_POLICY, unix_now())
        .map_err(|f| WorkspaceError::Policy(f.to_string()))?;
    session
        .apply(&Edit::SetCaChain {
            pem: ca.cert_pem.clone(),
        })
        .map_err(|e| WorkspaceError::Policy(e.to_string()))?;
    if let Some(error) = session.current().errors().next() {
        return Err(WorkspaceError::Policy(error.to_string()));
    }
    for client in &session.current().policy.clients {
        let issued = ca.issue_client(&client.identity)?;
        let slug = pki::slug(&client.identity);
        write_public(&clients_dir.join(format!("{slug}.pem")), &issued.cert_pem)?;
        write_secret(&clients_dir.join(format!("{slug}.key")), &issued.key_pem)?;
    }

    let server_dir = dir.join("server");
    fsutil::create_private_dir(&server_dir).map_err(io(&server_dir))?;
    let root = keys::generate(keys::KeyAlgorithm::Ed25519);
    write_public(
        &server_dir.join("root.pub"),
        &keys::public_key_pem(&root.public())?,
    )?;
    // The private key lives in one place only, so retiring the key deletes it.
    let private_key = match keys {
        RootKeysIn::Server => server_dir.join("root.key"),
        RootKeysIn::Repository => {
            let key_dir = server_dir.join("keys");
            fsutil::create_private_dir(&key_dir).map_err(io(&key_dir))?;
            key_dir.join("root-1.key")
        }
    };
    keys::write_private_key_file(&private_key, &root)?;
    let manifest = server_dir.join(crate::keyset::MANIFEST);
    let set = crate::keyset::KeySet::create(&manifest, &private_key, unix_now())
        .map_err(|e| WorkspaceError::Keys(e.to_string()))?;
    let mut files = vec![("clients.toml", session.text().to_string())];
    if keys == RootKeysIn::Repository {
        // Key 1's public part goes to git; the server's local manifest would be a second
        // source of truth.
        files.push((crate::keyset::MANIFEST, set.public_manifest()));
        std::fs::remove_file(&manifest).map_err(io(&manifest))?;
    }
    if replicas > 1 {
        files.push((crate::fleet::FILE, demo_fleet(replicas)));
    }
    let origin = dir.join("origin.git");
    let files: Vec<(&str, &str)> = files.iter().map(|(f, t)| (*f, t.as_str())).collect();
    gitops::init_bare_with_files(&origin, &files, "Demo policy")?;
    gitops::clone(&origin.display().to_string(), &dir.join("policy"))?;

    let config = workspace_toml(DEFAULT_LISTEN);
    write_public(&dir.join("workspace.toml"), &config)?;
    open(dir)
}

/// The most replicas a demo fleet runs (all on one machine, in one console).
pub const MAX_DEMO_REPLICAS: usize = 9;

/// `fleet.toml` for `count` loopback replicas from the default port on.
fn demo_fleet(count: usize) -> String {
    let listen: SocketAddr = DEFAULT_LISTEN.parse().expect("the default address parses");
    let mut text = String::from(
        "# The replicas that serve this repository's policy: `hessra-console fleet status`\n\
         # asks each, `policy push --wait` waits for each. This demo runs them all in the\n\
         # console (the first is the workspace's own server).\n",
    );
    for i in 0..count {
        let name = char::from(b'a' + i as u8);
        let port = listen.port() + i as u16;
        text.push_str(&format!(
            "\n[[replicas]]\nname = \"{name}\"\nurl = \"https://{}:{port}\"\n",
            listen.ip()
        ));
    }
    text
}

/// One replica a workspace's console runs: the first is the workspace's own server; the others
/// keep their mirror, last good commit and audit trail in `server/replicas/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedReplica {
    pub name: String,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub audit_file: PathBuf,
}

impl Workspace {
    /// The replicas of the workspace's fleet that listen on this machine (`fleet.toml` in its
    /// clone; loopback URLs only), besides the workspace's own server at `listen`. Empty
    /// without a fleet.
    pub fn embedded_replicas(&self) -> Result<Vec<EmbeddedReplica>, String> {
        let Some(replicas) = crate::fleet::read(&self.policy)? else {
            return Ok(Vec::new());
        };
        Ok(replicas
            .into_iter()
            .filter_map(|replica| {
                let listen: SocketAddr = replica
                    .url
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .parse()
                    .ok()?;
                (listen.ip().is_loopback() && listen != self.listen).then(|| {
                    let state_dir = self.server_state.join("replicas").join(&replica.name);
                    EmbeddedReplica {
                        audit_file: state_dir.join("audit.jsonl"),
                        name: replica.name,
                        listen,
                        state_dir,
                    }
                })
            })
            .collect())
    }

    /// The server configuration of one embedded replica: the workspace's, with its own
    /// address, state directory and audit trail.
    pub fn replica_config(
        &self,
        replica: &EmbeddedReplica,
    ) -> Result<ServerConfig, WorkspaceError> {
        fsutil::create_private_dir(&replica.state_dir).map_err(io(&replica.state_dir))?;
        Ok(ServerConfig {
            state_dir: Some(replica.state_dir.clone()),
            audit_file: Some(replica.audit_file.clone()),
            ..self.server_config(replica.listen)?
        })
    }
}

fn write_public(path: &Path, text: &str) -> Result<(), WorkspaceError> {
    std::fs::write(path, text).map_err(io(path))
}

fn write_secret(path: &Path, text: &str) -> Result<(), WorkspaceError> {
    fsutil::write_private(path, text.as_bytes()).map_err(io(path))
}

fn workspace_toml(listen: &str) -> String {
    let mut out = String::from(
        "# hessra-console workspace: what is where. Paths are relative to this file.\n\
         # Read by `hessra-console serve --workspace` and by the console.\n\n",
    );
    out.push_str(&format!(
        "listen = \"{listen}\"\noperator = \"{DEMO_OPERATOR}\"\n\n[paths]\n"
    ));
    for (key, relative) in LAYOUT.iter().filter(|(key, _)| *key != "workspace") {
        out.push_str(&format!("{key} = \"{relative}\"\n"));
    }
    out
}

/// Reads `DIR/workspace.toml`.
pub fn open(dir: &Path) -> Result<Workspace, WorkspaceError> {
    let file = dir.join("workspace.toml");
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(WorkspaceError::NotAWorkspace(dir.display().to_string()));
        }
        Err(e) => return Err(io(&file)(e)),
    };
    let config_error = |message: String| WorkspaceError::Config {
        path: file.display().to_string(),
        message,
    };
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| config_error(e.to_string()))?;
    let string = |table: &toml_edit::Table, key: &str| -> Result<String, WorkspaceError> {
        table
            .get(key)
            .and_then(|item| item.as_str())
            .map(str::to_string)
            .ok_or_else(|| config_error(format!("{key} is missing or not a string")))
    };
    let listen = string(doc.as_table(), "listen")?;
    let listen: SocketAddr = listen
        .parse()
        .map_err(|e| config_error(format!("listen {listen:?}: {e}")))?;
    let operator = string(doc.as_table(), "operator")?;
    let paths = doc
        .get("paths")
        .and_then(|p| p.as_table())
        .ok_or_else(|| config_error("[paths] is missing".into()))?;
    let path = |key: &str| -> Result<PathBuf, WorkspaceError> { Ok(dir.join(string(paths, key)?)) };
    Ok(Workspace {
        root: dir.to_path_buf(),
        listen,
        operator,
        ca_cert: path("ca_cert")?,
        ca_key: path("ca_key")?,
        server_cert: path("server_cert")?,
        server_key: path("server_key")?,
        clients: path("clients")?,
        origin: path("origin")?,
        policy: path("policy")?,
        root_key: path("root_key")?,
        server_state: path("server_state")?,
    })
}

/// Validates the policy in a workspace's clone (used by tests and `demo init` reports).
pub fn policy_findings(workspace: &Workspace) -> Result<Vec<policy::Finding>, WorkspaceError> {
    let file = workspace.policy_file();
    let text = std::fs::read_to_string(&file).map_err(io(&file))?;
    let loaded =
        policy::load(&text, unix_now()).map_err(|f| WorkspaceError::Policy(f.to_string()))?;
    Ok(loaded.findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_creates_the_documented_layout() {
        let dir = tempfile::tempdir().unwrap();
        let ws = init(dir.path(), false).unwrap();
        assert_eq!(ws.listen.to_string(), DEFAULT_LISTEN);
        for path in [
            &ws.ca_cert,
            &ws.server_cert,
            &ws.root_key,
            &ws.policy_file(),
            &ws.origin.join("HEAD"),
        ] {
            assert!(path.exists(), "{}", path.display());
        }
        for secret in [
            &ws.ca_key,
            &ws.server_key,
            &ws.root_key,
            &ws.client_cert("uri:urn:company:alice").1,
        ] {
            let mode = std::fs::metadata(secret).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", secret.display());
        }
        assert!(
            ws.client_cert("uri:urn:company:alice:agent1")
                .0
                .ends_with("pki/clients/urn_company_alice_agent1.pem")
        );
        assert!(ws.client_cert(DEMO_OPERATOR).0.exists());
        let findings = policy_findings(&ws).unwrap();
        assert!(findings.is_empty(), "{findings:#?}");
        let text = std::fs::read_to_string(ws.policy_file()).unwrap();
        assert!(text.contains("[cacerts]") && text.contains("BEGIN CERTIFICATE"));
        assert!(
            text.contains("# Alice runs the production API."),
            "the demo comments survive"
        );

        let again = init(dir.path(), false).unwrap_err();
        assert!(again.to_string().contains("pass --force"), "{again}");
        let old_root = std::fs::read(&ws.root_key).unwrap();
        init(dir.path(), true).unwrap();
        assert_ne!(
            std::fs::read(&ws.root_key).unwrap(),
            old_root,
            "--force makes new keys"
        );
    }

    #[test]
    fn opening_a_non_workspace_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("demo init"), "{err}");
        std::fs::write(dir.path().join("workspace.toml"), "listen = \"nowhere\"\n").unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("listen \"nowhere\""), "{err}");
    }
}
