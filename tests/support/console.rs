//! The console on a fresh demo workspace whose policy is a real git clone of a bare remote,
//! driven by keys with its jobs run inline (no terminal): what the key-driven console tests
//! share.

use std::path::PathBuf;

use hessra_console::console::jobs::{self, Env};
use hessra_console::console::{App, Context};
use hessra_console::server::RunningServer;
use hessra_console::workspace::{self, Workspace};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The frozen clock every console test starts at.
pub const NOW: i64 = 1_790_000_000;

pub struct Console {
    pub dir: tempfile::TempDir,
    pub ws: Workspace,
    pub app: App,
    pub env: Env,
    /// The embedded server the console is linked to, when the setup asked for one (before the
    /// runtime, so it is dropped first).
    pub server: Option<RunningServer>,
    pub runtime: tokio::runtime::Runtime,
    /// The bare remote, the console's clone (the workspace's policy repository) and the policy
    /// file in it, canonicalized.
    pub origin: PathBuf,
    pub clone: PathBuf,
    pub policy_path: PathBuf,
    /// Whether settling also runs the background polls (server status and audit, recovery
    /// writes) the tick queues.
    pub polls: bool,
}

/// How a test's console differs from the default one.
#[derive(Default)]
pub struct Setup {
    /// Keep unsaved edits and editor text in a recovery directory under the test's directory
    /// (`state/recovery`).
    pub recovery: bool,
    /// Run the background polls when settling.
    pub polls: bool,
    /// Commit as this author in the console's clone.
    pub author: Option<&'static str>,
    /// Start the workspace's server and link the console to it as the demo operator (mTLS).
    pub server: bool,
    /// Run the console without its repository (no git status, no commits).
    pub no_repo: bool,
    /// Give the console a token store (`tokens/` under the test's directory).
    pub token_store: bool,
    /// Mark unused access from the workspace server's audit trail (as a workspace console does).
    pub audit_trail: bool,
    /// Move the root key set into the policy repository before the server starts: keys.toml
    /// committed and pushed, the private keys in the workspace's key directory.
    pub keys_in_repository: bool,
}

impl Console {
    /// The default console: a repository, read-write, no server.
    pub fn start() -> Console {
        Console::with(Setup::default(), |context| context)
    }

    /// A console set up by `setup`, with its context changed by `context`.
    pub fn with(setup: Setup, context: impl FnOnce(Context) -> Context) -> Console {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace::init(&dir.path().join("ws"), false).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let policy_path = ws.policy_file().canonicalize().unwrap();
        let clone = ws.policy.canonicalize().unwrap();
        if let Some(name) = setup.author {
            set_author(&clone, name);
        }
        if setup.keys_in_repository {
            publish_keys(&ws, &clone);
        }
        let server = setup.server.then(|| {
            hessra_console::server::install_crypto_provider();
            runtime
                .block_on(hessra_console::server::start(
                    ws.server_config("127.0.0.1:0".parse().unwrap()).unwrap(),
                ))
                .unwrap()
        });
        let link = server.as_ref().map(|server| {
            hessra_console::console::launch::workspace_link(&ws, &server.url()).unwrap()
        });
        let mut env = Env::new(
            policy_path.clone(),
            (!setup.no_repo).then(|| clone.clone()),
            link,
            setup
                .token_store
                .then(|| hessra_console::token_store::TokenStore::new(dir.path().join("tokens"))),
            runtime.handle().clone(),
        );
        env.key_dir = Some(ws.key_dir());
        env.audit_trail = Some(ws.audit_file());
        if setup.recovery {
            env.recovery_path = Some(jobs::recovery_path(&dir.path().join("state"), &policy_path));
        }
        let base = Context {
            has_repo: !setup.no_repo,
            server: server.as_ref().map(|server| (server.url(), true)),
            operator: server
                .as_ref()
                .map(|_| workspace::DEMO_OPERATOR.to_string()),
            audit_trail: setup.audit_trail.then(|| ws.audit_file()),
            ..Context::new(
                policy_path.clone(),
                std::fs::read_to_string(&policy_path).unwrap(),
                NOW,
            )
        };
        let mut app = App::new(context(base));
        jobs::settle(&mut app, &env, !setup.polls);
        Console {
            origin: ws.origin.clone(),
            ws,
            clone,
            policy_path,
            dir,
            app,
            env,
            server,
            runtime,
            polls: setup.polls,
        }
    }

    /// Runs the queued jobs until the console is idle.
    pub fn settle(&mut self) {
        jobs::settle(&mut self.app, &self.env, !self.polls);
    }
}

/// The workspace's key set moved into its repository: keys.toml committed and pushed (as the
/// author the setup named, else "Operator"), the private keys in the key directory.
fn publish_keys(ws: &Workspace, clone: &std::path::Path) {
    ws.key_set()
        .unwrap()
        .publish_to(&clone.join("keys.toml"), &ws.key_dir())
        .unwrap();
    let repo = git2::Repository::open(clone).unwrap();
    let mut config = repo.config().unwrap();
    if config.get_string("user.name").is_err() {
        config.set_str("user.name", "Operator").unwrap();
        config.set_str("user.email", "ops@example.com").unwrap();
    }
    hessra_console::gitops::commit_file(
        clone,
        std::path::Path::new("keys.toml"),
        "Root keys in the repository",
    )
    .unwrap();
    hessra_console::gitops::push(clone, "origin", "main").unwrap();
}

/// Sets the commit author of the repository at `repo`.
pub fn set_author(repo: &std::path::Path, name: &str) {
    let repo = git2::Repository::open(repo).unwrap();
    let mut config = repo.config().unwrap();
    config.set_str("user.name", name).unwrap();
    config
        .set_str(
            "user.email",
            &format!("{}@example.com", name.to_lowercase()),
        )
        .unwrap();
}

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Types `keys` (each a character key), then settles.
pub fn press(f: &mut Console, keys: &str) {
    for c in keys.chars() {
        f.app.handle_key(key(KeyCode::Char(c)));
    }
    f.settle();
}

/// Presses `keys`, then settles with the background polls too (key changes refresh the server
/// status, which is a poll).
pub fn press_polling(f: &mut Console, keys: &str) {
    for c in keys.chars() {
        f.app.handle_key(key(KeyCode::Char(c)));
    }
    jobs::settle(&mut f.app, &f.env, false);
}

/// The root keys the Server screen shows: id and state, signing first.
pub fn key_states(f: &Console) -> Vec<(Option<u32>, &'static str)> {
    f.app
        .screens()
        .server
        .keys()
        .iter()
        .map(|k| (k.id, k.state.name()))
        .collect()
}

/// One key with modifiers, then settles.
pub fn special(f: &mut Console, code: KeyCode, modifiers: KeyModifiers) {
    f.app.handle_key(KeyEvent::new(code, modifiers));
    f.settle();
}

pub fn enter(f: &mut Console) {
    special(f, KeyCode::Enter, KeyModifiers::NONE);
}

/// The status bar's message, or nothing.
pub fn flash(f: &Console) -> String {
    f.app
        .flash_message()
        .map(|m| m.text.clone())
        .unwrap_or_default()
}

/// The whole screen drawn at `width` × `height`, as text.
pub fn screen(f: &Console, width: u16, height: u16) -> String {
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| hessra_console::console::ui::render(frame, &f.app))
        .unwrap();
    terminal.backend().to_string()
}
