//! The console over a fleet (issue 17, items 3 to 5): `demo init --replicas N` writes the fleet
//! file into the policy repository and the workspace console knows which replicas it runs; with
//! a `fleet.toml` the Server screen becomes the Fleet screen, a row per replica, the audit feed
//! merged across replicas and tagged with each; a push from the console nudges every replica
//! and is followed until all applied it, or the wait runs out naming the replica that did not;
//! the console launched on a fleet workspace runs every replica it can and names the one whose
//! port is taken. Real servers over TLS, a real bare remote.

mod support;

use std::path::Path;
use std::time::Duration;

use hessra_console::console::Context;
use hessra_console::console::app::Popup;
use hessra_console::fleet::Standing;
use hessra_console::gitops;
use hessra_console::server::{self, RunningServer};
use hessra_console::workspace::{self, EmbeddedReplica, Workspace};
use ratatui::crossterm::event::{KeyCode, KeyModifiers};
use support::console::{Console, Setup, enter, flash, press, screen, special};

const BIN: &str = env!("CARGO_BIN_EXE_hessra-console");

#[test]
fn demo_init_with_replicas_commits_a_fleet_file_and_names_the_embedded_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["demo", "init", "--replicas", "3", "--json"])
        .arg(dir.path().join("ws"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["replicas"], 3, "{json}");

    let ws = workspace::open(&dir.path().join("ws")).unwrap();
    // The fleet file is part of the policy's history, not a local file.
    let committed = gitops::read_at_revision(&ws.origin, "main", Path::new("fleet.toml")).unwrap();
    let replicas = hessra_console::fleet::parse(&committed).unwrap();
    let names: Vec<&str> = replicas.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let port = ws.listen.port();
    assert_eq!(replicas[0].url, format!("https://127.0.0.1:{port}"));
    assert_eq!(replicas[2].url, format!("https://127.0.0.1:{}", port + 2));
    // The console runs the first as the workspace's server and the other two beside it, each
    // with its own state.
    let embedded = ws.embedded_replicas().unwrap();
    let names: Vec<&str> = embedded.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(
        embedded[0].state_dir,
        ws.server_state.join("replicas").join("b")
    );
    assert_ne!(embedded[0].audit_file, ws.audit_file());

    // Out of range is refused and says the range; nothing is created.
    for bad in ["0", "10"] {
        let out = std::process::Command::new(BIN)
            .args(["demo", "init", "--replicas", bad])
            .arg(dir.path().join(format!("bad{bad}")))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("1 to 9"), "{stderr}");
        assert!(
            !dir.path()
                .join(format!("bad{bad}"))
                .join("workspace.toml")
                .exists()
        );
    }
    // A plain workspace has no fleet.
    let plain = workspace::init(&dir.path().join("plain"), false).unwrap();
    assert!(!plain.policy.join("fleet.toml").exists());
    assert!(plain.embedded_replicas().unwrap().is_empty());
}

/// Starts one more replica of the workspace on a free port with its own state.
fn start_replica(f: &Console, name: &str) -> RunningServer {
    let replica = EmbeddedReplica {
        name: name.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: f.ws.server_state.join("replicas").join(name),
        audit_file: f
            .ws
            .server_state
            .join("replicas")
            .join(name)
            .join("audit.jsonl"),
    };
    let config = f.ws.replica_config(&replica).unwrap();
    f.runtime.block_on(server::start(config)).unwrap()
}

/// Commits and pushes `fleet.toml` listing the replicas, as an operator would.
fn publish_fleet(ws: &Workspace, clone: &Path, replicas: &[(&str, String)]) {
    let mut text = String::from("# the demo fleet\n");
    for (name, url) in replicas {
        text.push_str(&format!(
            "\n[[replicas]]\nname = \"{name}\"\nurl = \"{url}\"\n"
        ));
    }
    std::fs::write(clone.join("fleet.toml"), text).unwrap();
    gitops::commit_file(clone, Path::new("fleet.toml"), "The fleet").unwrap();
    gitops::push(clone, "origin", "main").unwrap();
    let _ = ws;
}

/// Lets a second pass and runs what the console's tick queues, until `done` holds (real
/// servers need real time to sync).
fn wait_until(f: &mut Console, what: &str, done: impl Fn(&Console) -> bool) {
    for _ in 0..150 {
        if done(f) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
        f.app.advance(1);
        f.settle();
    }
    panic!("{what} did not happen:\n{}", screen(f, 140, 40));
}

/// The push (or sync) being followed across the fleet has ended, one way or another.
fn rollout_ended(f: &Console) -> bool {
    f.app
        .screens()
        .server
        .rollout
        .as_ref()
        .is_some_and(|r| !r.running())
}

fn in_sync(f: &Console) -> usize {
    match &f.app.screens().server.fleet {
        Some(Ok(view)) => view
            .replicas
            .iter()
            .filter(|r| r.standing == Standing::InSync)
            .count(),
        _ => 0,
    }
}

fn commit_and_push(f: &mut Console) {
    press(f, "5c");
    enter(f);
    press(f, "y");
    assert!(flash(f).starts_with("committed"), "{}", flash(f));
    press(f, "p");
}

#[test]
fn the_fleet_screen_follows_a_push_to_every_replica_and_names_the_one_that_is_down() {
    let mut f = Console::with(
        Setup {
            server: true,
            polls: true,
            author: Some("Fleet Tester"),
            ..Setup::default()
        },
        |context| context,
    );
    let b = start_replica(&f, "b");
    let c = start_replica(&f, "c");
    let own = f.server.as_ref().unwrap().url();
    let (b_url, c_url) = (b.url(), c.url());
    publish_fleet(
        &f.ws,
        &f.clone,
        &[("a", own), ("b", b_url.clone()), ("c", c_url)],
    );
    // The replicas poll their remote: all three come to serve the fleet commit.
    wait_until(&mut f, "three replicas in sync", |f| in_sync(f) == 3);

    press(&mut f, "6");
    let shown = screen(&f, 140, 40);
    assert!(shown.contains("Fleet (3/3 in sync with"), "{shown}");
    for name in ["a", "b", "c"] {
        assert!(
            shown
                .lines()
                .any(|l| l.contains(&format!("✓ {name} in sync"))),
            "no row for {name}:\n{shown}"
        );
    }
    assert!(shown.contains("req/s"), "{shown}");
    // The tab says what the screen has become.
    assert!(shown.lines().next().unwrap().contains("Fleet"), "{shown}");

    // F selects among the replicas; Enter shows all of one.
    press(&mut f, "F");
    press(&mut f, "j");
    enter(&mut f);
    match f.app.popup() {
        Some(Popup::Detail { title, lines, .. }) => {
            assert_eq!(title, "Replica b");
            assert!(lines.iter().any(|l| l.contains(&b_url)), "{lines:?}");
            assert!(lines.iter().any(|l| l.contains("in sync")), "{lines:?}");
        }
        _ => panic!("no replica detail: {}", flash(&f)),
    }
    special(&mut f, KeyCode::Esc, KeyModifiers::NONE);
    let shown = screen(&f, 140, 40);
    assert!(shown.contains("F: back to the feed"), "{shown}");
    press(&mut f, "F");
    // s asks every replica to sync and follows them: already there, it ends at once.
    press(&mut f, "s");
    wait_until(&mut f, "the sync to be followed", rollout_ended);
    assert!(
        flash(&f).contains("all 3 replica(s) applied it"),
        "{}",
        flash(&f)
    );

    // A decision at replica b shows in the merged feed, tagged with b.
    let (cert, key) = f.ws.client_cert("uri:urn:company:alice");
    let mut identity = std::fs::read(cert).unwrap();
    identity.extend(std::fs::read(key).unwrap());
    f.runtime.block_on(async {
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&f.ws.ca_cert).unwrap()).unwrap(),
            )
            .identity(reqwest::Identity::from_pem(&identity).unwrap())
            .build()
            .unwrap();
        let response = client
            .post(format!("{b_url}/request_token"))
            .json(&serde_json::json!({ "resource": "production_api", "operation": "read" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    });
    wait_until(&mut f, "b's decision in the merged feed", |f| {
        f.app
            .screens()
            .server
            .visible_tagged()
            .any(|(source, e)| source == Some("b") && e.endpoint == "/request_token")
    });
    let shown = screen(&f, 140, 40);
    let row = shown
        .lines()
        .find(|l| l.contains("/request_token uri:urn:company:alice"))
        .unwrap_or_else(|| panic!("no request in the feed:\n{shown}"));
    assert!(row.contains(" b "), "the event is not tagged with b: {row}");

    // A push from the console: every replica is nudged and the push followed to each.
    press(&mut f, "1");
    press(&mut f, "+staging_api delete");
    enter(&mut f);
    special(&mut f, KeyCode::Char('s'), KeyModifiers::CONTROL);
    commit_and_push(&mut f);
    assert!(flash(&f).contains("pushed 1 commit") || flash(&f).contains("rollout"));
    let pushed = gitops::commit_id(&f.clone, "HEAD").unwrap();
    wait_until(&mut f, "the rollout to end", rollout_ended);
    let rollout = f.app.screens().server.rollout.clone().unwrap();
    assert_eq!(rollout.commit, pushed);
    assert!(
        matches!(
            rollout.end,
            Some(hessra_console::console::screens::fleet::RolloutEnd::Applied { .. })
        ),
        "{rollout:?}"
    );
    assert!(
        flash(&f).contains(&format!(
            "rollout of {}: all 3 replica(s) applied it",
            &pushed[..8]
        )),
        "{}",
        flash(&f)
    );
    press(&mut f, "5");
    let shown = screen(&f, 200, 40);
    assert!(shown.contains("every replica applied it"), "{shown}");

    // Replica c goes down; the next push is followed until the wait runs out, naming c.
    f.runtime.block_on(c.shutdown());
    press(&mut f, "1");
    press(&mut f, "+staging_api admin");
    enter(&mut f);
    special(&mut f, KeyCode::Char('s'), KeyModifiers::CONTROL);
    commit_and_push(&mut f);
    wait_until(&mut f, "the second rollout to end", |f| {
        f.app
            .screens()
            .server
            .rollout
            .as_ref()
            .is_some_and(|r| !r.running() && r.commit != rollout.commit)
    });
    let text = flash(&f);
    assert!(
        text.contains("not every replica applied it: c down"),
        "{text}"
    );
    press(&mut f, "6");
    let shown = screen(&f, 140, 40);
    assert!(shown.contains("Fleet (2/3 in sync"), "{shown}");
    assert!(
        shown.lines().any(|l| l.contains("✗ c down")),
        "c is not shown down:\n{shown}"
    );
    f.runtime.block_on(b.shutdown());
}

#[test]
fn without_a_fleet_file_the_server_screen_stays_as_it_was() {
    let mut f = Console::with(
        Setup {
            server: true,
            polls: true,
            ..Setup::default()
        },
        |context: Context| context,
    );
    f.app.advance(5);
    f.settle();
    assert!(f.app.screens().server.fleet.is_none());
    press(&mut f, "6");
    let shown = screen(&f, 120, 30);
    assert!(!shown.contains("Fleet"), "{shown}");
    assert!(shown.contains("Server"), "{shown}");
    press(&mut f, "F");
    assert!(flash(&f).contains("no fleet.toml"), "{}", flash(&f));
}

#[test]
fn the_workspace_console_runs_its_fleet_and_names_a_replica_whose_port_is_taken() {
    use hessra_console::console::launch::{self, ConsoleArgs};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let ws = workspace::init_fleet(&root, false, 3).unwrap();
    // Three free ports; the third stays taken by someone else.
    let listeners: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let taken = listeners.into_iter().nth(2).unwrap();
    // The operator moves the fleet to those ports: workspace.toml, and fleet.toml reviewed in git.
    let config = root.join("workspace.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        &format!("127.0.0.1:{}", ws.listen.port()),
        &format!("127.0.0.1:{}", ports[0]),
    );
    std::fs::write(&config, text).unwrap();
    let fleet = std::fs::read_to_string(ws.policy.join("fleet.toml")).unwrap();
    let mut moved = fleet.clone();
    for (i, port) in ports.iter().enumerate() {
        moved = moved.replace(
            &format!(":{}\"", ws.listen.port() + i as u16),
            &format!(":{port}\""),
        );
    }
    assert_ne!(moved, fleet);
    std::fs::write(ws.policy.join("fleet.toml"), moved).unwrap();
    support::console::set_author(&ws.policy, "Fleet Operator");
    gitops::commit_file(
        &ws.policy,
        Path::new("fleet.toml"),
        "The fleet on free ports",
    )
    .unwrap();
    gitops::push(&ws.policy, "origin", "main").unwrap();

    let config_dir = tempfile::tempdir().unwrap();
    let launched = launch::launch_with_config(
        ConsoleArgs {
            workspace: Some(root.clone()),
            ..ConsoleArgs::default()
        },
        Some(&config_dir.path().join("config.toml")),
    )
    .unwrap();
    // a is the workspace's own server, b runs beside it, c could not start: said, not fatal.
    assert_eq!(
        launched.server.as_ref().unwrap().url(),
        format!("https://127.0.0.1:{}", ports[0])
    );
    assert_eq!(launched.replicas.len(), 1);
    assert_eq!(
        launched.replicas[0].url(),
        format!("https://127.0.0.1:{}", ports[1])
    );
    let notices = launched.context.notices.join("\n");
    assert!(
        notices.contains("replica c was not started") && notices.contains("shows it down"),
        "{notices}"
    );
    // Asked, the fleet says so: a and b in sync, c down.
    let result = std::cell::RefCell::new(None);
    hessra_console::console::jobs::execute(
        hessra_console::console::jobs::Job::FleetStatus,
        &launched.env,
        &|r| *result.borrow_mut() = Some(r),
    );
    let Some(hessra_console::console::jobs::JobResult::Fleet(Ok(Some(view)))) = result.into_inner()
    else {
        panic!("no fleet view");
    };
    let standings: Vec<(&str, &str)> = view
        .replicas
        .iter()
        .map(|r| (r.name.as_str(), r.standing.word()))
        .collect();
    assert_eq!(
        standings,
        [("a", "in sync"), ("b", "in sync"), ("c", "down")],
        "{view:?}"
    );
    drop(taken);
    let launch::Launched {
        runtime,
        server,
        replicas,
        ..
    } = launched;
    for server in server.into_iter().chain(replicas) {
        runtime.block_on(server.shutdown());
    }
}

#[test]
fn a_console_commit_activating_a_key_one_replica_lacks_is_refused_naming_it() {
    use hessra_console::server::{RootKeySource, ServerConfig};

    let mut f = Console::with(
        Setup {
            server: true,
            polls: true,
            keys_in_repository: true,
            author: Some("Fleet Tester"),
            ..Setup::default()
        },
        |context| context,
    );
    // Replica b has a key directory of its own, holding key 1 only.
    let b_keys = f.dir.path().join("b-keys");
    hessra_console::fsutil::create_private_dir(&b_keys).unwrap();
    std::fs::copy(f.ws.key_dir().join("root-1.key"), b_keys.join("root-1.key")).unwrap();
    let state_dir = f.ws.server_state.join("replicas").join("b");
    let replica = EmbeddedReplica {
        name: "b".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        audit_file: state_dir.join("audit.jsonl"),
        state_dir,
    };
    let config = ServerConfig {
        root_keys: RootKeySource::Repository { key_dir: b_keys },
        ..f.ws.replica_config(&replica).unwrap()
    };
    let b = f.runtime.block_on(server::start(config)).unwrap();
    let own = f.server.as_ref().unwrap().url();
    publish_fleet(&f.ws, &f.clone, &[("a", own), ("b", b.url())]);
    wait_until(&mut f, "two replicas in sync", |f| in_sync(f) == 2);

    // Key 2 is added in the console, committed and pushed as next: a holds its private key
    // (the workspace's key directory), b does not, and says so.
    press(&mut f, "6");
    press(&mut f, "Ka");
    commit_and_push(&mut f);
    wait_until(&mut f, "b to report key 2 missing", |f| {
        f.app.screens().server.replicas().iter().any(|r| {
            r.name == "b" && r.missing_private_keys == [2] && r.standing == Standing::InSync
        })
    });
    // The console's own server lists key 2 once its status is asked again.
    wait_until(&mut f, "key 2 listed", |f| {
        f.app.screens().server.keys().len() == 2
    });
    press(&mut f, "6");
    let shown = screen(&f, 140, 40);
    assert!(shown.contains("no private key for key 2"), "{shown}");

    // Activated in the console, the commit is refused naming b; nothing is committed.
    press(&mut f, "j");
    press(&mut f, "A");
    press(&mut f, "y");
    assert!(flash(&f).contains("key 2 now signs"), "{}", flash(&f));
    press(&mut f, "5c");
    enter(&mut f);
    press(&mut f, "y");
    let text = flash(&f);
    assert!(
        text.contains("key 2 cannot be activated yet: replica(s) b"),
        "{text}"
    );
    let head = gitops::read_at_revision(&f.clone, "HEAD", Path::new("keys.toml")).unwrap();
    assert!(
        head.contains("state = \"next\""),
        "nothing was committed: {head}"
    );
    f.runtime.block_on(b.shutdown());
}
