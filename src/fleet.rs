//! A fleet: the replicas that follow one policy repository, listed in `fleet.toml` at its root
//! (beside `clients.toml`), and what each reports — reachable, the commit it applied against
//! the one expected, the last sync error, its root key set and its load. The CLI's
//! `fleet status` and `policy push --wait` read it; `--server URL` overrides the file.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::client::Connection;
use crate::wire::{MessageResponse, ServerStatus};

/// The file at the repository's root.
pub const FILE: &str = "fleet.toml";

/// How long one replica may take to answer before it is called down.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// One replica: a name people use and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replica {
    pub name: String,
    pub url: String,
}

/// Reads `fleet.toml`'s text: at least one replica, names unique and non-empty, URLs https,
/// nothing else (a misspelt key is an error, not ignored).
pub fn parse(text: &str) -> Result<Vec<Replica>, String> {
    let document: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    for (key, _) in document.iter() {
        if key != "replicas" {
            return Err(format!("unknown key {key:?} (only [[replicas]])"));
        }
    }
    let tables = match document.get("replicas") {
        None => None,
        Some(item) => Some(
            item.as_array_of_tables()
                .ok_or("replicas must be [[replicas]] tables")?,
        ),
    };
    let mut replicas = Vec::new();
    for (i, table) in tables.into_iter().flat_map(|t| t.iter()).enumerate() {
        let field = |name: &str| -> Result<String, String> {
            table
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| format!("replica {}: {name} must be a string", i + 1))
        };
        if let Some((key, _)) = table.iter().find(|(k, _)| *k != "name" && *k != "url") {
            return Err(format!(
                "replica {}: unknown field {key:?} (a replica has a name and a url)",
                i + 1
            ));
        }
        replicas.push(Replica {
            name: field("name")?,
            url: field("url")?,
        });
    }
    if replicas.is_empty() {
        return Err("no [[replicas]]: list each replica's name and url".to_string());
    }
    let mut seen = std::collections::HashSet::new();
    for replica in &replicas {
        if replica.name.trim().is_empty() {
            return Err(format!("the replica at {} has an empty name", replica.url));
        }
        if !seen.insert(replica.name.as_str()) {
            return Err(format!("two replicas are named {:?}", replica.name));
        }
        if !replica.url.starts_with("https://") {
            return Err(format!(
                "replica {}: url {:?} is not https:// (replicas are reached over TLS)",
                replica.name, replica.url
            ));
        }
    }
    Ok(replicas)
}

/// The fleet file at the root of the repository `repo_root`, if there is one.
pub fn read(repo_root: &Path) -> Result<Option<Vec<Replica>>, String> {
    let path = repo_root.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Replicas named by `--server` URLs: each named by its host and port.
pub fn from_urls(urls: &[String]) -> Vec<Replica> {
    urls.iter()
        .map(|url| {
            let url = if url.starts_with("https://") {
                url.clone()
            } else {
                format!("https://{url}")
            };
            Replica {
                name: url
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .into(),
                url,
            }
        })
        .collect()
}

/// Where a replica stands against the commit expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Standing {
    /// It applied the commit expected.
    InSync,
    /// It serves another commit and has not refused the expected one (yet).
    Lagging,
    /// It refused the expected commit and keeps the last good one.
    Refused { reason: String },
    /// It could not be asked.
    Down { error: String },
}

impl Standing {
    pub fn word(&self) -> &'static str {
        match self {
            Standing::InSync => "in sync",
            Standing::Lagging => "lagging",
            Standing::Refused { .. } => "refused",
            Standing::Down { .. } => "down",
        }
    }
}

/// What one replica reports.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaReport {
    pub name: String,
    pub url: String,
    #[serde(flatten)]
    pub standing: Standing,
    /// The commit it serves.
    pub applied: Option<String>,
    /// When it last applied a policy.
    pub applied_at: Option<i64>,
    /// Its last refused sync, whatever commit it was about.
    pub last_error: Option<String>,
    /// Its root key set: the active key's id and a digest of every key's id, state and public
    /// key (replicas that agree show the same digest).
    pub keys: Option<String>,
    /// Keys of the repository's key set it holds no private key for (it refuses to activate
    /// them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_private_keys: Vec<u32>,
    /// Requests it has answered since it started.
    pub requests: Option<u64>,
    /// Requests per second since it started (the console also shows the recent rate, from two
    /// answers in a row).
    pub requests_per_second: Option<f64>,
}

/// Judges a replica's status against the commit `expected`.
pub fn assess(replica: &Replica, status: &ServerStatus, expected: &str, now: i64) -> ReplicaReport {
    let refused = status
        .last_reload_error
        .as_ref()
        .filter(|e| e.revision.as_deref() == Some(expected));
    let standing = if status.policy_revision == expected {
        Standing::InSync
    } else if let Some(error) = refused {
        Standing::Refused {
            reason: error.message.clone(),
        }
    } else {
        Standing::Lagging
    };
    let uptime = (now - status.started_at).max(1) as f64;
    ReplicaReport {
        name: replica.name.clone(),
        url: replica.url.clone(),
        standing,
        applied: Some(status.policy_revision.clone()),
        applied_at: Some(status.policy_loaded_at),
        last_error: status.last_reload_error.as_ref().map(|e| e.message.clone()),
        keys: key_generation(status),
        missing_private_keys: status.missing_private_keys.clone(),
        requests: Some(status.requests),
        requests_per_second: Some(status.requests as f64 / uptime),
    }
}

/// A replica that could not be asked.
pub fn down(replica: &Replica, error: String) -> ReplicaReport {
    ReplicaReport {
        name: replica.name.clone(),
        url: replica.url.clone(),
        standing: Standing::Down { error },
        applied: None,
        applied_at: None,
        last_error: None,
        keys: None,
        missing_private_keys: Vec::new(),
        requests: None,
        requests_per_second: None,
    }
}

fn key_generation(status: &ServerStatus) -> Option<String> {
    if status.keys.is_empty() {
        return None;
    }
    let active = status
        .keys
        .iter()
        .find(|k| k.state == crate::keyset::KeyState::Active)
        .map_or("none".to_string(), |k| {
            k.id.map_or("the key".to_string(), |id| format!("key {id}"))
        });
    let digest = status.keys.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, k| {
        format!("{:?}{:?}{}", k.id, k.state, k.public_key)
            .bytes()
            .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    });
    Some(format!("{active} active · {:06x}", digest & 0xff_ffff))
}

/// Asks one replica for its status, within [`ANSWER_WITHIN`].
pub async fn status(connection: &Connection) -> Result<ServerStatus, String> {
    match tokio::time::timeout(ANSWER_WITHIN, connection.get::<ServerStatus>("/status")).await {
        Ok(Ok(status)) => Ok(status),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} s", ANSWER_WITHIN.as_secs())),
    }
}

/// Asks one replica to sync now (it fetches and applies what the remote has).
pub async fn nudge(connection: &Connection) -> Result<(), String> {
    let body = serde_json::json!({});
    let sync = connection.post::<_, MessageResponse>("/sync", &body, None);
    match tokio::time::timeout(ANSWER_WITHIN, sync).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} s", ANSWER_WITHIN.as_secs())),
    }
}

/// Runs every future to completion concurrently (each a task), in the order given.
pub async fn join_all<T, F>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    let mut count = 0;
    for (i, future) in futures.into_iter().enumerate() {
        set.spawn(async move { (i, future.await) });
        count += 1;
    }
    let mut out: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, value)) = joined {
            out[i] = Some(value);
        }
    }
    out.into_iter().flatten().collect()
}

/// Asks every replica for its status at once, answers in the order given; a replica whose
/// connection could not be made answers with why.
pub async fn statuses(
    connections: Vec<(Replica, Result<Connection, String>)>,
) -> Vec<(Replica, Result<ServerStatus, String>)> {
    let asks = connections
        .into_iter()
        .map(|(replica, connection)| async move {
            let status = match connection {
                Ok(connection) => status(&connection).await,
                Err(error) => Err(error),
            };
            (replica, status)
        });
    join_all(asks).await
}

/// Every replica's status judged against the commit `expected`; one that could not be asked is
/// down.
pub fn judge(
    statuses: Vec<(Replica, Result<ServerStatus, String>)>,
    expected: &str,
) -> Vec<ReplicaReport> {
    let now = crate::token::clock::unix_now();
    statuses
        .into_iter()
        .map(|(replica, status)| match status {
            Ok(status) => assess(&replica, &status, expected, now),
            Err(error) => down(&replica, error),
        })
        .collect()
}

/// Asks every replica for its status at once, each judged against the commit `expected`; a
/// replica that cannot be reached (or whose connection could not be made) is down.
pub async fn survey(
    connections: Vec<(Replica, Result<Connection, String>)>,
    expected: &str,
) -> Vec<ReplicaReport> {
    judge(statuses(connections).await, expected)
}

/// Nudges every replica at once: each replica's name and whether it took the nudge.
pub async fn nudge_all(
    connections: Vec<(Replica, Result<Connection, String>)>,
) -> Vec<(String, Result<(), String>)> {
    let nudges = connections
        .into_iter()
        .map(|(replica, connection)| async move {
            let result = match connection {
                Ok(connection) => nudge(&connection).await,
                Err(error) => Err(error),
            };
            (replica.name, result)
        });
    join_all(nudges).await
}

/// The line `fleet status` and `push --wait` print for a replica.
pub fn describe(report: &ReplicaReport, expected: &str) -> String {
    let short = |id: &str| id.chars().take(12).collect::<String>();
    let mut line = format!("{:<12} {:<8}", report.name, report.standing.word());
    match &report.standing {
        Standing::Down { error } => {
            line.push_str(&format!(" {}: {error}", report.url));
            return line;
        }
        Standing::Refused { reason } => line.push_str(&format!(
            " refused {}: {reason}; serves {}",
            short(expected),
            report.applied.as_deref().map_or(String::new(), short)
        )),
        Standing::InSync | Standing::Lagging => line.push_str(&format!(
            " applied {}",
            report.applied.as_deref().map_or(String::new(), short)
        )),
    }
    if let Some(keys) = &report.keys {
        line.push_str(&format!(" · {keys}"));
    }
    if !report.missing_private_keys.is_empty() {
        line.push_str(&format!(
            " · no private key for key(s) {}",
            ids(&report.missing_private_keys)
        ));
    }
    if let Some(rps) = report.requests_per_second {
        line.push_str(&format!(" · {rps:.1} req/s since it started"));
    }
    if let (Some(error), false) = (
        &report.last_error,
        matches!(report.standing, Standing::Refused { .. }),
    ) {
        line.push_str(&format!(" · last sync error: {error}"));
    }
    line
}

fn ids(ids: &[u32]) -> String {
    ids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why committing the activation of key `id` is refused: the replicas that answered and report
/// no private key for it — each would refuse the revision and keep the last good one. Replicas
/// that could not be asked do not stop it (the caller names them).
pub fn activation_refusal(id: u32, answers: &[(Replica, ServerStatus)]) -> Option<String> {
    let lacking: Vec<&str> = answers
        .iter()
        .filter(|(_, status)| status.missing_private_keys.contains(&id))
        .map(|(replica, _)| replica.name.as_str())
        .collect();
    if lacking.is_empty() {
        return None;
    }
    Some(format!(
        "key {id} cannot be activated yet: replica(s) {} report no private key for it in their key directory, and would refuse this revision; copy the key's file there (mode 0600), check with `fleet status`, then commit again",
        lacking.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_file_is_checked() {
        let good = "[[replicas]]\nname = \"a\"\nurl = \"https://10.0.0.1:4443\"\n\n[[replicas]]\nname = \"b\"\nurl = \"https://10.0.0.2:4443\"\n";
        assert_eq!(parse(good).unwrap().len(), 2);
        for (text, says) in [
            ("", "no [[replicas]]"),
            (
                "[[replicas]]\nname = \"a\"\nurl = \"http://x\"\n",
                "not https://",
            ),
            (
                "[[replicas]]\nname = \"a\"\nurl = \"https://x\"\n[[replicas]]\nname = \"a\"\nurl = \"https://y\"\n",
                "two replicas are named",
            ),
            (
                "[[replicas]]\nname = \"\"\nurl = \"https://x\"\n",
                "empty name",
            ),
            (
                "[[replicas]]\nname = \"a\"\nurl = \"https://x\"\nweight = 2\n",
                "unknown field",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(says), "{text:?}: {error}");
        }
    }

    #[test]
    fn an_activation_is_refused_naming_the_replicas_without_the_key() {
        let status = |missing: Vec<u32>| ServerStatus {
            response_msg: String::new(),
            listen: String::new(),
            policy_source: String::new(),
            policy_revision: "abc".into(),
            policy_loaded_at: 0,
            clients: 0,
            last_reload_error: None,
            requests: 0,
            allowed: 0,
            denied: 0,
            started_at: 0,
            audit_file: None,
            audit_key: None,
            keys: Vec::new(),
            key_set_error: None,
            missing_private_keys: missing,
        };
        let replicas = from_urls(&["a:1".into(), "b:2".into()]);
        let answers = vec![
            (replicas[0].clone(), status(vec![])),
            (replicas[1].clone(), status(vec![2, 3])),
        ];
        assert_eq!(activation_refusal(4, &answers), None);
        let refusal = activation_refusal(2, &answers).unwrap();
        assert!(
            refusal.contains("key 2") && refusal.contains("b:2") && !refusal.contains("a:1"),
            "{refusal}"
        );
        let report = assess(&replicas[1], &answers[1].1, "abc", 10);
        assert!(
            describe(&report, "abc").contains("no private key for key(s) 2, 3"),
            "{}",
            describe(&report, "abc")
        );
    }

    #[test]
    fn urls_name_their_replicas() {
        let replicas = from_urls(&["127.0.0.1:4443".into(), "https://b:1/".into()]);
        assert_eq!(replicas[0].url, "https://127.0.0.1:4443");
        assert_eq!(replicas[0].name, "127.0.0.1:4443");
        assert_eq!(replicas[1].name, "b:1");
    }
}
