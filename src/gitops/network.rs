//! Talking to remotes: which transports this build has (paths, `file://`, `git://` and `http://`
//! always; `https://` and ssh only with the `network-git` feature), and credentials for the ones
//! that ask: ssh-agent then key files for ssh, git credential helpers for http(s). Never prompts,
//! and never weakens TLS or host-key verification (no `certificate_check` override).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use git2::{Cred, CredentialType, ErrorClass, ErrorCode, RemoteCallbacks};

use super::GitError;

/// How a remote URL is reached, as libgit2 decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// A path or `file://`.
    Local,
    Git,
    Http,
    Https,
    Ssh,
    /// A scheme libgit2 does not know at all; it reports that itself.
    Unknown,
}

impl Transport {
    pub(super) fn of(url: &str) -> Transport {
        if let Some((scheme, _)) = url.split_once("://") {
            return match scheme.to_ascii_lowercase().as_str() {
                "file" => Transport::Local,
                "git" => Transport::Git,
                "http" => Transport::Http,
                "https" => Transport::Https,
                "ssh" | "ssh+git" | "git+ssh" => Transport::Ssh,
                _ => Transport::Unknown,
            };
        }
        if is_scp_like(url) && !Path::new(url).exists() {
            Transport::Ssh
        } else {
            Transport::Local
        }
    }

    /// Whether the libgit2 this binary carries can speak it.
    fn available(self) -> bool {
        match self {
            Transport::Https => git2::Version::get().https(),
            Transport::Ssh => git2::Version::get().ssh(),
            _ => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Transport::Local => "local",
            Transport::Git => "git",
            Transport::Http => "http",
            Transport::Https => "https",
            Transport::Ssh => "ssh",
            Transport::Unknown => "unknown",
        }
    }
}

/// `user@host:path` or `host:path`, git's short form for ssh. A single letter before the colon
/// is a Windows drive, and a slash before it makes a relative path.
fn is_scp_like(url: &str) -> bool {
    match url.split_once(':') {
        Some((host, _)) => host.len() > 1 && !host.contains('/'),
        None => false,
    }
}

/// Refuses, before libgit2 says "unsupported URL protocol", a remote this build cannot reach.
pub(super) fn ensure_transport(remote: &str, url: &str) -> Result<(), GitError> {
    let transport = Transport::of(url);
    if transport.available() {
        return Ok(());
    }
    Err(GitError::TransportNotBuilt {
        remote: remote.to_string(),
        url: url.to_string(),
        transport: transport.name(),
    })
}

/// Fetches `refspec` from `remote` (called `label` in errors) with credentials; a failure is
/// an authentication error or the remote being unreachable, naming `url`.
pub(super) fn fetch_with_credentials(
    repo: &git2::Repository,
    remote: &mut git2::Remote<'_>,
    label: &str,
    url: &str,
    refspec: &str,
) -> Result<(), GitError> {
    ensure_transport(label, url)?;
    let credentials = Credentials::from_environment(label, url, repo.config().ok());
    let mut options = git2::FetchOptions::new();
    options.remote_callbacks(credentials.callbacks());
    remote
        .fetch(&[refspec], Some(&mut options), None)
        .map_err(|e| {
            credentials
                .explain(&e)
                .unwrap_or_else(|| GitError::Unreachable {
                    url: url.to_string(),
                    detail: e.message().to_string(),
                })
        })
}

/// The ssh keys tried after the agent, in this order, from `~/.ssh`.
const SSH_KEY_FILES: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

/// libgit2 calls the credentials callback again after every refused credential, forever;
/// past this many calls for one kind of credential the callback gives up.
const MAX_CALLS_PER_KIND: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
enum SshSource {
    Agent,
    KeyFile(PathBuf),
}

impl std::fmt::Display for SshSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SshSource::Agent => write!(f, "ssh-agent"),
            SshSource::KeyFile(path) => write!(f, "key {}", path.display()),
        }
    }
}

#[derive(Debug, Default)]
struct Attempts {
    calls: HashMap<u32, usize>,
    next_ssh: usize,
    helper_asked: bool,
    default_used: bool,
    tried: Vec<String>,
    gave_up: Option<String>,
}

/// Credentials for one network operation on one remote, and what was tried, for the error
/// message when none worked.
pub(super) struct Credentials {
    remote: String,
    url: String,
    config: Option<git2::Config>,
    ssh_sources: Vec<SshSource>,
    local_user: Option<String>,
    attempts: RefCell<Attempts>,
}

impl Credentials {
    /// Credentials from the usual places: `config` (the repository's, which includes the
    /// global one) for credential helpers, `$SSH_AUTH_SOCK` and `~/.ssh` for ssh.
    pub(super) fn from_environment(
        remote: &str,
        url: &str,
        config: Option<git2::Config>,
    ) -> Credentials {
        let config = config.or_else(|| git2::Config::open_default().ok());
        let agent = std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty());
        let ssh_dir = directories::BaseDirs::new().map(|dirs| dirs.home_dir().join(".ssh"));
        let local_user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok();
        Credentials::new(remote, url, config, agent, ssh_dir.as_deref(), local_user)
    }

    fn new(
        remote: &str,
        url: &str,
        config: Option<git2::Config>,
        agent: bool,
        ssh_dir: Option<&Path>,
        local_user: Option<String>,
    ) -> Credentials {
        let mut ssh_sources = Vec::new();
        if agent {
            ssh_sources.push(SshSource::Agent);
        }
        if let Some(dir) = ssh_dir {
            ssh_sources.extend(
                SSH_KEY_FILES
                    .iter()
                    .map(|name| dir.join(name))
                    .filter(|path| path.is_file())
                    .map(SshSource::KeyFile),
            );
        }
        Credentials {
            remote: remote.to_string(),
            url: url.to_string(),
            config,
            ssh_sources,
            local_user,
            attempts: RefCell::new(Attempts::default()),
        }
    }

    /// Callbacks that answer libgit2's credential requests; TLS certificates and ssh host keys
    /// keep libgit2's own verification.
    pub(super) fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(|url, username, allowed| self.next(url, username, allowed));
        callbacks
    }

    /// The next credential to offer, or an error once every source was tried.
    fn next(
        &self,
        url: &str,
        username_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        let mut attempts = self.attempts.borrow_mut();
        let calls = attempts.calls.entry(allowed.bits()).or_default();
        *calls += 1;
        if *calls > MAX_CALLS_PER_KIND {
            return Err(give_up(
                &mut attempts,
                format!("the remote refused {MAX_CALLS_PER_KIND} credentials in a row"),
            ));
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(&self.ssh_user(username_from_url));
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            return self.next_ssh_key(&mut attempts, username_from_url);
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            return self.ask_helper(&mut attempts, url, username_from_url);
        }
        if allowed.contains(CredentialType::DEFAULT) && !attempts.default_used {
            attempts.default_used = true;
            attempts
                .tried
                .push("the system's default (Negotiate/NTLM)".into());
            return Cred::default();
        }
        Err(give_up(
            &mut attempts,
            format!(
                "the remote asks for a kind of credential this tool does not supply ({allowed:?})"
            ),
        ))
    }

    /// ssh's own rule: the user in the URL, else the local user.
    fn ssh_user(&self, username_from_url: Option<&str>) -> String {
        username_from_url
            .map(str::to_string)
            .or_else(|| self.local_user.clone())
            .unwrap_or_else(|| "git".to_string())
    }

    fn next_ssh_key(
        &self,
        attempts: &mut Attempts,
        username_from_url: Option<&str>,
    ) -> Result<Cred, git2::Error> {
        let user = self.ssh_user(username_from_url);
        let Some(source) = self.ssh_sources.get(attempts.next_ssh) else {
            let reason = if self.ssh_sources.is_empty() {
                "no ssh-agent (SSH_AUTH_SOCK is unset) and no key in ~/.ssh".to_string()
            } else {
                format!("the remote refused every ssh key for user {user}")
            };
            return Err(give_up(attempts, reason));
        };
        attempts.next_ssh += 1;
        attempts.tried.push(format!("{source} as {user}"));
        match source {
            SshSource::Agent => Cred::ssh_key_from_agent(&user),
            SshSource::KeyFile(private) => {
                let public = private.with_extension("pub");
                let public = public.is_file().then_some(public);
                Cred::ssh_key(&user, public.as_deref(), private, None)
            }
        }
    }

    fn ask_helper(
        &self,
        attempts: &mut Attempts,
        url: &str,
        username_from_url: Option<&str>,
    ) -> Result<Cred, git2::Error> {
        if attempts.helper_asked {
            return Err(give_up(
                attempts,
                "the remote refused the username and password from the git credential helper"
                    .into(),
            ));
        }
        attempts.helper_asked = true;
        attempts.tried.push("the git credential helper".into());
        let found = self
            .config
            .as_ref()
            .and_then(|config| Cred::credential_helper(config, url, username_from_url).ok());
        found.ok_or_else(|| {
            give_up(
                attempts,
                "no git credential helper had a username and password for it \
                 (configure one: git config credential.helper ...)"
                    .into(),
            )
        })
    }

    /// Turns a failed operation into an error that names the remote and, when credentials were
    /// the problem, what was tried. `None`: not an authentication or network failure.
    pub(super) fn explain(&self, error: &git2::Error) -> Option<GitError> {
        let attempts = self.attempts.borrow();
        let auth = error.code() == ErrorCode::Auth || attempts.gave_up.is_some();
        if auth {
            let tried = if attempts.tried.is_empty() {
                "nothing".to_string()
            } else {
                attempts.tried.join(", then ")
            };
            return Some(GitError::Authentication {
                remote: self.remote.clone(),
                url: self.url.clone(),
                reason: attempts
                    .gave_up
                    .clone()
                    .unwrap_or_else(|| error.message().to_string()),
                tried,
            });
        }
        let network = matches!(
            error.class(),
            ErrorClass::Net | ErrorClass::Ssl | ErrorClass::Ssh | ErrorClass::Http | ErrorClass::Os
        ) || error.code() == ErrorCode::Certificate;
        network.then(|| GitError::Unreachable {
            url: self.url.clone(),
            detail: error.message().to_string(),
        })
    }
}

fn give_up(attempts: &mut Attempts, reason: String) -> git2::Error {
    let error = git2::Error::new(ErrorCode::Auth, ErrorClass::Callback, reason.as_str());
    attempts.gave_up.get_or_insert(reason);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_are_recognised_as_libgit2_does() {
        for (url, transport) in [
            ("/srv/policy.git", Transport::Local),
            ("../policy.git", Transport::Local),
            ("file:///srv/policy.git", Transport::Local),
            ("git://127.0.0.1:9418/policy.git", Transport::Git),
            ("http://example.com/policy.git", Transport::Http),
            ("HTTPS://example.com/policy.git", Transport::Https),
            ("ssh://git@example.com/policy.git", Transport::Ssh),
            ("git+ssh://example.com/policy.git", Transport::Ssh),
            ("git@example.com:ops/policy.git", Transport::Ssh),
            ("example.com:policy.git", Transport::Ssh),
            ("C:/policy.git", Transport::Local),
            ("./odd:name", Transport::Local),
            ("gopher://example.com/policy.git", Transport::Unknown),
        ] {
            assert_eq!(Transport::of(url), transport, "{url}");
        }
    }

    #[test]
    fn missing_transports_are_named_with_the_fix() {
        let https = ensure_transport("origin", "https://example.com/p.git");
        let ssh = ensure_transport("origin", "git@example.com:p.git");
        assert_eq!(https.is_ok(), git2::Version::get().https());
        assert_eq!(ssh.is_ok(), git2::Version::get().ssh());
        for result in [https, ssh] {
            if let Err(error) = result {
                let text = error.to_string();
                assert!(text.contains("--features network-git"), "{text}");
                assert!(text.contains("origin"), "{text}");
            }
        }
        assert!(ensure_transport("origin", "git://127.0.0.1/p.git").is_ok());
        assert!(ensure_transport("origin", "http://127.0.0.1/p.git").is_ok());
        assert!(ensure_transport("origin", "/srv/p.git").is_ok());
    }

    fn isolated_config(dir: &Path, helper: Option<&str>) -> git2::Config {
        let path = dir.join("config");
        std::fs::write(&path, "").unwrap();
        let mut config = git2::Config::open(&path).unwrap();
        if let Some(helper) = helper {
            config.set_str("credential.helper", helper).unwrap();
        }
        config
    }

    #[test]
    fn ssh_tries_the_agent_then_each_key_once_then_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("id_ed25519"), "not a real key").unwrap();
        std::fs::write(dir.path().join("id_rsa"), "not a real key").unwrap();
        let config = isolated_config(dir.path(), None);
        let url = "ssh://example.com/p.git";
        let creds = Credentials::new("origin", url, Some(config), true, Some(dir.path()), None);

        let user = creds.next(url, None, CredentialType::USERNAME).unwrap();
        assert_eq!(user.credtype(), CredentialType::USERNAME.bits());
        for _ in 0..3 {
            let key = creds
                .next(url, Some("git"), CredentialType::SSH_KEY)
                .unwrap();
            assert_eq!(key.credtype(), CredentialType::SSH_KEY.bits());
        }
        let error = creds
            .next(url, Some("git"), CredentialType::SSH_KEY)
            .err()
            .expect("a refusal");
        assert_eq!(error.code(), ErrorCode::Auth);
        let explained = creds.explain(&error).unwrap().to_string();
        for part in [
            "origin",
            url,
            "ssh-agent as git",
            "id_ed25519 as git",
            "id_rsa as git",
        ] {
            assert!(explained.contains(part), "{part}: {explained}");
        }
        assert!(!explained.contains("id_ecdsa as"), "{explained}");
    }

    #[test]
    fn ssh_with_no_agent_and_no_keys_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let creds = Credentials::new(
            "origin",
            "git@example.com:p.git",
            None,
            false,
            Some(dir.path()),
            Some("alice".into()),
        );
        let user = creds.ssh_user(None);
        assert_eq!(user, "alice");
        let error = creds
            .next("ssh://example.com/p.git", None, CredentialType::SSH_KEY)
            .err()
            .expect("a refusal");
        let text = creds.explain(&error).unwrap().to_string();
        assert!(text.contains("SSH_AUTH_SOCK is unset"), "{text}");
        assert!(text.contains("tried nothing"), "{text}");
    }

    #[test]
    fn the_credential_helper_is_asked_once_and_its_refusal_is_final() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("asked");
        let helper = dir.path().join("helper.sh");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\ncat >> {log}\necho username=robot\necho password=s3cret\n",
                log = log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = isolated_config(dir.path(), Some(helper.to_str().unwrap()));
        // git2 passes the helper a host only for names, not for IP addresses.
        let url = "http://localhost:1/p.git";
        let creds = Credentials::new("origin", url, Some(config), false, None, None);

        let cred = creds
            .next(url, None, CredentialType::USER_PASS_PLAINTEXT)
            .unwrap();
        assert_eq!(cred.credtype(), CredentialType::USER_PASS_PLAINTEXT.bits());
        let asked = std::fs::read_to_string(&log).unwrap();
        assert!(asked.contains("host=localhost:1"), "{asked}");
        let error = creds
            .next(url, None, CredentialType::USER_PASS_PLAINTEXT)
            .err()
            .expect("a refusal");
        let text = creds.explain(&error).unwrap().to_string();
        assert!(text.contains("refused the username and password"), "{text}");
        assert!(text.contains("the git credential helper"), "{text}");
    }

    #[test]
    fn no_credential_helper_is_an_actionable_error() {
        let dir = tempfile::tempdir().unwrap();
        let config = isolated_config(dir.path(), None);
        let url = "https://example.com/p.git";
        let creds = Credentials::new("origin", url, Some(config), false, None, None);
        let error = creds
            .next(url, None, CredentialType::USER_PASS_PLAINTEXT)
            .err()
            .expect("a refusal");
        let text = creds.explain(&error).unwrap().to_string();
        assert!(text.contains("credential.helper"), "{text}");
    }

    #[test]
    fn a_remote_that_keeps_asking_is_cut_off() {
        let creds = Credentials::new("origin", "x", None, false, None, None);
        for _ in 0..MAX_CALLS_PER_KIND {
            creds.next("x", None, CredentialType::USERNAME).unwrap();
        }
        let error = creds
            .next("x", None, CredentialType::USERNAME)
            .err()
            .expect("a refusal");
        assert!(error.message().contains("refused"), "{}", error.message());
    }
}
