//! Remotes over a real network on loopback: push, fetch, pull, reconcile and the server's mirror
//! over git:// (`git daemon`) and smart HTTP (`git http-backend`) with credentials from a git
//! credential helper; remotes this build cannot reach give an error that says how to fix it.

mod servers;

use std::path::{Path, PathBuf};

use git2::Repository;
use hessra_console::gitops::{self, DEFAULT_MAX_POLICY_BYTES, GitError, Mirror, PushOutcome};
use servers::{GitDaemon, SmartHttp, bare_repository};

const FILE: &str = "clients.toml";
/// Lines far enough apart that edits to the first and last merge cleanly.
const POLICY: &str = "first = 1\n#\n#\n#\n#\n#\n#\n#\nlast = 1\n";

fn configure(clone: &Path, name: &str) {
    let mut config = Repository::open(clone).unwrap().config().unwrap();
    config.set_str("user.name", name).unwrap();
    config.set_str("user.email", "ops@example.com").unwrap();
}

/// A working clone of the bare `origin` (by path), whose `origin` then points at `url`.
fn clone_pointing_at(origin: &Path, url: &str, into: PathBuf) -> PathBuf {
    gitops::clone(origin.to_str().unwrap(), &into).unwrap();
    Repository::open(&into)
        .unwrap()
        .remote_set_url("origin", url)
        .unwrap();
    configure(&into, "Operator");
    into
}

fn edit_and_commit(clone: &Path, from: &str, to: &str, message: &str) -> String {
    let text = std::fs::read_to_string(clone.join(FILE)).unwrap();
    std::fs::write(clone.join(FILE), text.replace(from, to)).unwrap();
    gitops::commit_file(clone, Path::new(FILE), message).unwrap()
}

fn tip(bare: &Path) -> String {
    gitops::read_branch_file(bare, "main", Path::new(FILE))
        .unwrap()
        .1
}

/// A temporary directory with `served/origin.git` holding the policy: (dir, served, origin).
fn served_origin() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("served");
    std::fs::create_dir(&root).unwrap();
    let bare = bare_repository(&root, "origin.git", FILE, POLICY);
    (dir, root, bare)
}

#[test]
fn push_fetch_pull_and_mirror_over_git_daemon() {
    let (dir, root, bare) = served_origin();
    let daemon = GitDaemon::start(&root);
    let url = daemon.url("origin.git");

    // A clone made over git:// pushes over it.
    let alice = dir.path().join("alice");
    gitops::clone(&url, &alice).unwrap();
    configure(&alice, "Alice");
    let first = edit_and_commit(&alice, "first = 1", "first = 2", "alice: first");
    let outcome = gitops::push_reconciling(&alice, Path::new(FILE)).unwrap();
    assert_eq!(outcome, PushOutcome::Pushed { commits: 1 });
    assert_eq!(tip(&bare), first);

    // A stale clone's push is rejected by the remote, then rebased and pushed again.
    let bob = dir.path().join("bob");
    gitops::clone(&url, &bob).unwrap();
    configure(&bob, "Bob");
    edit_and_commit(&alice, "first = 2", "first = 3", "alice: again");
    gitops::push(&alice, "origin", "main").unwrap();
    edit_and_commit(&bob, "last = 1", "last = 2", "bob: last");
    let err = gitops::push(&bob, "origin", "main").unwrap_err();
    assert!(matches!(err, GitError::Rejected { .. }), "{err}");
    let outcome = gitops::push_reconciling(&bob, Path::new(FILE)).unwrap();
    assert!(
        matches!(outcome, PushOutcome::Rebased { commits: 1, .. }),
        "{outcome:?}"
    );
    let (text, _) = gitops::read_branch_file(&bare, "main", Path::new(FILE)).unwrap();
    assert!(
        text.contains("first = 3") && text.contains("last = 2"),
        "{text}"
    );

    // Pull fast-forwards over git://.
    assert_eq!(gitops::pull(&alice).unwrap(), 1);
    assert_eq!(gitops::status(&alice, Path::new(FILE)).unwrap().behind, 0);

    // The server's mirror fetches over git:// too.
    let mirror = Mirror::open(
        &dir.path().join("mirror.git"),
        &url,
        "main",
        DEFAULT_MAX_POLICY_BYTES,
    )
    .unwrap();
    assert_eq!(mirror.fetch().unwrap(), tip(&bare));

    // A hook refusing the push is reported with the remote's reason.
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho policy is frozen >&2\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    edit_and_commit(&alice, "first = 3", "first = 4", "alice: frozen");
    match gitops::push(&alice, "origin", "main").unwrap_err() {
        GitError::Rejected { remote, reason } => {
            assert_eq!(remote, "origin");
            assert!(reason.contains("declined"), "{reason}");
        }
        other => panic!("expected a rejection, got {other}"),
    }

    // The daemon goes away: fetch and the mirror say the remote is unreachable, naming it.
    drop(daemon);
    let err = gitops::fetch(&alice).unwrap_err();
    assert!(
        matches!(&err, GitError::Unreachable { url: u, .. } if *u == url),
        "{err}"
    );
    let err = mirror.fetch().unwrap_err();
    assert!(matches!(err, GitError::Unreachable { .. }), "{err}");
    assert!(mirror.tip().unwrap().is_some());
}

/// A credential helper script that records each call and answers with `user`/`password`.
fn helper(dir: &Path, name: &str, user: &str, password: &str) -> (PathBuf, PathBuf) {
    let log = dir.join(format!("{name}.log"));
    let script = dir.join(format!("{name}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" >> '{log}'\ncat >> '{log}'\necho username={user}\necho password={password}\n",
            log = log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

fn set_helper(repo: &Path, helper: &str) {
    let mut config = Repository::open(repo).unwrap().config().unwrap();
    config.set_str("credential.helper", helper).unwrap();
}

#[test]
fn smart_http_with_credentials_from_the_credential_helper() {
    let (dir, root, bare) = served_origin();
    let server = SmartHttp::start(&root, Some(("robot", "s3cret")));
    let url = server.url("origin.git");
    let expected = "Basic cm9ib3Q6czNjcmV0";

    let clone = clone_pointing_at(&bare, &url, dir.path().join("clone"));
    let (good, log) = helper(dir.path(), "good", "robot", "s3cret");
    set_helper(&clone, good.to_str().unwrap());

    gitops::fetch(&clone).unwrap();
    let pushed = edit_and_commit(&clone, "first = 1", "first = 2", "over http");
    let outcome = gitops::push_reconciling(&clone, Path::new(FILE)).unwrap();
    assert_eq!(outcome, PushOutcome::Pushed { commits: 1 });
    assert_eq!(tip(&bare), pushed);
    let seen = server.seen();
    assert!(
        seen.requests
            .iter()
            .any(|(line, auth)| line.starts_with("POST")
                && line.ends_with("git-receive-pack")
                && auth.as_deref() == Some(expected)),
        "{seen:?}"
    );
    let asked = std::fs::read_to_string(&log).unwrap();
    assert!(
        asked.contains("get") && asked.contains("host=localhost"),
        "{asked}"
    );

    // The server's mirror asks the helper its own configuration names.
    let mirror_path = dir.path().join("mirror.git");
    let mirror = Mirror::open(&mirror_path, &url, "main", DEFAULT_MAX_POLICY_BYTES).unwrap();
    set_helper(&mirror_path, good.to_str().unwrap());
    assert_eq!(mirror.fetch().unwrap(), pushed);
}

#[test]
fn refused_or_missing_http_credentials_stop_with_what_was_tried() {
    let (dir, root, bare) = served_origin();
    let server = SmartHttp::start(&root, Some(("robot", "s3cret")));
    let url = server.url("origin.git");
    let clone = clone_pointing_at(&bare, &url, dir.path().join("clone"));

    // Wrong password: the helper is asked once, the remote is not hammered, the error says so.
    let (wrong, log) = helper(dir.path(), "wrong", "robot", "guess");
    set_helper(&clone, wrong.to_str().unwrap());
    let err = gitops::fetch(&clone).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, GitError::Authentication { .. }), "{text}");
    for part in ["origin", url.as_str(), "refused", "credential helper"] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.matches("get").count(), 1, "{calls}");
    assert!(server.seen().requests.len() <= 3, "{:?}", server.seen());

    // A push gets the same error, not a "rejected" that would send it reconciling.
    edit_and_commit(&clone, "first = 1", "first = 2", "never pushed");
    let err = gitops::push_reconciling(&clone, Path::new(FILE)).unwrap_err();
    assert!(matches!(err, GitError::Authentication { .. }), "{err}");

    // No helper at all (an empty value hides any global one): the error says how to set one.
    set_helper(&clone, "");
    let err = gitops::fetch(&clone).unwrap_err();
    assert!(err.to_string().contains("credential.helper"), "{err}");
}

/// Every form of a remote this build cannot reach, and a local path that only looks like one.
#[cfg(not(feature = "network-git"))]
#[test]
fn https_and_ssh_remotes_say_to_rebuild_with_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_repository(dir.path(), "origin.git", FILE, POLICY);
    for (index, url) in [
        "https://example.invalid/policy.git",
        "ssh://git@example.invalid/policy.git",
        "git@example.invalid:ops/policy.git",
    ]
    .into_iter()
    .enumerate()
    {
        let clone = clone_pointing_at(&bare, url, dir.path().join(format!("clone{index}")));
        edit_and_commit(&clone, "first = 1", "first = 2", "local only");
        let errors = [
            gitops::fetch(&clone).unwrap_err(),
            gitops::pull(&clone).unwrap_err(),
            gitops::push_reconciling(&clone, Path::new(FILE)).unwrap_err(),
            Mirror::open(
                &dir.path().join(format!("mirror{index}")),
                url,
                "main",
                DEFAULT_MAX_POLICY_BYTES,
            )
            .unwrap()
            .fetch()
            .unwrap_err(),
            gitops::clone(url, &dir.path().join(format!("new{index}"))).unwrap_err(),
        ];
        for err in errors {
            let text = err.to_string();
            assert!(matches!(err, GitError::TransportNotBuilt { .. }), "{text}");
            assert!(text.contains(url), "{text}");
            assert!(text.contains("--features network-git"), "{text}");
            assert!(text.contains("file://"), "{text}");
            assert!(!text.contains("unsupported URL protocol"), "{text}");
        }
    }
}

/// With the transports built in, https and ssh remotes are attempted for real: a closed port is
/// unreachable, and a server whose certificate nobody vouches for is refused.
#[cfg(feature = "network-git")]
mod with_network_git {
    use super::*;

    #[test]
    fn https_and_ssh_remotes_are_attempted() {
        let dir = tempfile::tempdir().unwrap();
        let bare = bare_repository(dir.path(), "origin.git", FILE, POLICY);
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        for (index, url) in [
            format!("https://127.0.0.1:{closed}/policy.git"),
            format!("ssh://git@127.0.0.1:{closed}/policy.git"),
        ]
        .iter()
        .enumerate()
        {
            let clone = clone_pointing_at(&bare, url, dir.path().join(format!("clone{index}")));
            let err = gitops::fetch(&clone).unwrap_err();
            assert!(matches!(err, GitError::Unreachable { .. }), "{url}: {err}");
        }
    }

    #[test]
    fn tls_certificates_are_verified() {
        let dir = tempfile::tempdir().unwrap();
        let bare = bare_repository(dir.path(), "origin.git", FILE, POLICY);
        let port = self_signed_tls_server();
        let url = format!("https://127.0.0.1:{port}/policy.git");
        let clone = clone_pointing_at(&bare, &url, dir.path().join("clone"));
        let err = gitops::fetch(&clone).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, GitError::Unreachable { .. }), "{text}");
        assert!(text.to_lowercase().contains("certificate"), "{text}");
    }

    /// A TLS server on loopback with a self-signed certificate, answering handshakes only.
    fn self_signed_tls_server() -> u16 {
        use std::sync::Arc;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Ok(mut connection) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                while connection.is_handshaking() {
                    if connection.complete_io(&mut stream).is_err() {
                        break;
                    }
                }
            }
        });
        port
    }
}
