//! `fleet status` and the waiting half of `policy push --wait`: every replica of `fleet.toml`
//! (or those `--server` names) asked over mTLS as an operator, judged against the commit they
//! should serve.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::json;

use super::CommandResult;
use super::output::{Failure, Report};
use super::remote_cmd::{ConnectionArgs, connect, runtime};
use crate::client::Connection;
use crate::fleet::{self, Replica, ReplicaReport, Standing};
use crate::token::clock::unix_now;
use crate::wire::ServerStatus;

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Each replica: reachable, the commit it applied against the upstream's, the last sync
    /// error, its root key set, requests per second. Exit 1 naming any replica that lags, has
    /// refused the commit or is down
    Status {
        #[command(flatten)]
        target: FleetTarget,
        /// The commit replicas should serve (default: the branch's upstream, else HEAD)
        #[arg(long, value_name = "REV")]
        expect: Option<String>,
    },
}

/// Which replicas, and how to reach them as an operator.
#[derive(Debug, Clone, Args)]
pub struct FleetTarget {
    /// A workspace made by `demo init`: its policy clone, operator certificate and CA
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// The policy repository whose fleet.toml lists the replicas (default: the current
    /// directory's repository)
    #[arg(long, value_name = "PATH", conflicts_with = "workspace")]
    pub repo: Option<PathBuf>,
    #[command(flatten)]
    pub servers: FleetServers,
}

/// Replicas named on the command line, and the operator's certificate.
#[derive(Debug, Clone, Args)]
pub struct FleetServers {
    /// A replica to ask instead of fleet.toml's (repeatable)
    #[arg(long = "server", value_name = "URL")]
    pub servers: Vec<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The replicas and the operator's connection settings.
pub struct Fleet {
    pub replicas: Vec<Replica>,
    pub connection: ConnectionArgs,
    /// The policy repository, when known.
    pub repo: Option<PathBuf>,
}

impl FleetTarget {
    /// Reads the target: `--server` URLs, else `fleet.toml` at the repository's root, else (a
    /// workspace) the workspace's own server. A workspace fills in the operator's certificate,
    /// key and CA when they are not given.
    pub fn resolve(&self, repo: Option<&Path>) -> Result<Fleet, Failure> {
        let mut connection = self.servers.connection.clone();
        let workspace = match &self.workspace {
            Some(dir) => {
                Some(crate::workspace::open(dir).map_err(|e| Failure::usage(e.to_string()))?)
            }
            None => repo
                .and_then(|r| r.parent())
                .and_then(|parent| crate::workspace::open(parent).ok()),
        };
        if let Some(ws) = &workspace
            && connection.cert.is_none()
        {
            let (cert, key) = ws.client_cert(&ws.operator);
            connection.cert = Some(cert);
            connection.key = Some(key);
            connection.ca = connection.ca.or_else(|| Some(ws.ca_cert.clone()));
        }
        let repo = match (repo, &self.repo, &workspace) {
            (Some(repo), _, _) => Some(repo.to_path_buf()),
            (None, Some(repo), _) => Some(repo.clone()),
            (None, None, Some(ws)) => Some(ws.policy.clone()),
            (None, None, None) => std::env::current_dir()
                .ok()
                .and_then(|cwd| crate::gitops::repository_root(&cwd).ok()),
        };
        let replicas = if !self.servers.servers.is_empty() {
            fleet::from_urls(&self.servers.servers)
        } else {
            let listed = match &repo {
                Some(repo) => fleet::read(repo).map_err(Failure::usage)?,
                None => None,
            };
            match (listed, &workspace) {
                (Some(replicas), _) => replicas,
                (None, Some(ws)) => vec![Replica {
                    name: "workspace".into(),
                    url: format!("https://{}", ws.listen),
                }],
                (None, None) => {
                    return Err(Failure::usage(format!(
                        "no replicas: write {} at the policy repository's root, or pass --server URL",
                        fleet::FILE
                    )));
                }
            }
        };
        Ok(Fleet {
            replicas,
            connection,
            repo,
        })
    }
}

impl Fleet {
    fn connections(&self) -> Vec<(Replica, Result<Connection, String>)> {
        self.replicas
            .iter()
            .map(|replica| {
                let connection =
                    connect(&replica.url, &self.connection, true).map_err(|f| f.message);
                (replica.clone(), connection)
            })
            .collect()
    }
}

pub fn run(command: FleetCommand) -> CommandResult {
    match command {
        FleetCommand::Status { target, expect } => status(&target, expect.as_deref()),
    }
}

/// The commit replicas should serve: `expect`, else the upstream's tip, else HEAD.
fn expected(repo: Option<&Path>, expect: Option<&str>) -> Result<String, Failure> {
    let Some(repo) = repo else {
        return expect.map(str::to_string).ok_or_else(|| {
            Failure::usage("not in a policy repository: pass --repo PATH or --expect COMMIT")
        });
    };
    let rev = expect.unwrap_or("@{upstream}");
    let resolve =
        |rev: &str| crate::gitops::commit_id(repo, rev).map_err(|e| Failure::usage(e.to_string()));
    match resolve(rev) {
        Ok(id) => Ok(id),
        Err(_) if expect.is_none() => resolve("HEAD"),
        Err(e) => Err(e),
    }
}

/// Every replica's status, asked concurrently, in the fleet's order.
pub fn ask_statuses(fleet: &Fleet) -> Vec<(Replica, Result<ServerStatus, String>)> {
    match runtime() {
        Ok(runtime) => runtime.block_on(fleet::statuses(fleet.connections())),
        Err(failure) => fleet
            .replicas
            .iter()
            .map(|replica| (replica.clone(), Err(failure.message.clone())))
            .collect(),
    }
}

fn status(target: &FleetTarget, expect: Option<&str>) -> CommandResult {
    let fleet = target.resolve(None)?;
    let expected = expected(fleet.repo.as_deref(), expect)?;
    let reports: Vec<ReplicaReport> = fleet::judge(ask_statuses(&fleet), &expected);
    let mut text = format!(
        "{} replica(s), expected commit {}\n",
        reports.len(),
        &expected[..expected.len().min(12)]
    );
    for report in &reports {
        text.push_str(&fleet::describe(report, &expected));
        text.push('\n');
    }
    let json = json!({ "expected": expected, "replicas": reports });
    let behind: Vec<&ReplicaReport> = reports
        .iter()
        .filter(|r| r.standing != Standing::InSync)
        .collect();
    if behind.is_empty() {
        text.push_str("every replica serves it");
        return Ok(Report::new(text, json));
    }
    let names: Vec<String> = behind
        .iter()
        .map(|r| format!("{} ({})", r.name, r.standing.word()))
        .collect();
    Err(Failure::invalid(
        format!("{text}not in sync: {}", names.join(", ")),
        json,
    ))
}

/// After a push: nudges every replica to sync and waits until each applied `commit` or refused
/// it, printing a line per replica as it settles (to standard error), within `timeout`.
pub fn wait_for(fleet: &Fleet, commit: &str, timeout: Duration) -> (Vec<ReplicaReport>, bool) {
    let Ok(runtime) = runtime() else {
        return (Vec::new(), false);
    };
    let reports = runtime.block_on(async {
        let deadline = Instant::now() + timeout;
        let waits = fleet
            .connections()
            .into_iter()
            .map(|(replica, connection)| {
                let commit = commit.to_string();
                async move {
                    let report = settle(&replica, connection, &commit, deadline).await;
                    eprintln!("{}", fleet::describe(&report, &commit));
                    report
                }
            });
        fleet::join_all(waits).await
    });
    let all = reports.iter().all(|r| r.standing == Standing::InSync);
    (reports, all)
}

async fn settle(
    replica: &Replica,
    connection: Result<Connection, String>,
    commit: &str,
    deadline: Instant,
) -> ReplicaReport {
    let connection = match connection {
        Ok(connection) => connection,
        Err(error) => return fleet::down(replica, error),
    };
    if let Err(error) = fleet::nudge(&connection).await {
        return fleet::down(replica, format!("the sync nudge failed: {error}"));
    }
    let mut last = None;
    loop {
        match fleet::status(&connection).await {
            Ok(status) => {
                let report = fleet::assess(replica, &status, commit, unix_now());
                if report.standing != Standing::Lagging {
                    return report;
                }
                last = Some(report);
            }
            Err(error) if last.is_none() => return fleet::down(replica, error),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            let mut report = last.unwrap_or_else(|| fleet::down(replica, "no answer".into()));
            if report.standing == Standing::Lagging {
                report.standing = Standing::Down {
                    error: format!(
                        "did not apply {} in time; it serves {}",
                        &commit[..commit.len().min(12)],
                        report
                            .applied
                            .as_deref()
                            .map_or("?", |a| &a[..a.len().min(12)])
                    ),
                };
            }
            return report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
