//! Audit: every decision is an event, kept in a bounded in-memory ring for the console and
//! appended to a JSON-lines file. Events name tokens by revocation id, never by content.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// How many events the ring keeps.
pub const AUDIT_RING: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Increasing sequence number; the cursor for `audit?after=`.
    pub seq: u64,
    pub time: i64,
    pub caller: Option<String>,
    /// `mtls`, `bearer`, `mtls+bearer` or `none`.
    pub auth: String,
    pub endpoint: String,
    pub resource: Option<String>,
    pub operation: Option<String>,
    /// `allow`, `deny` or `error`.
    pub result: String,
    pub reason: String,
    /// Revocation id of the presented token's last block.
    pub revocation_id: Option<String>,
    /// When an identity token issued by this request expires (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// The ring and the file.
pub struct AuditLog {
    ring: Mutex<(u64, VecDeque<AuditEvent>)>,
    file: Option<Mutex<std::fs::File>>,
    path: Option<PathBuf>,
}

impl AuditLog {
    /// With a file to append to (created 0600), or in memory only.
    pub fn new(path: Option<PathBuf>) -> std::io::Result<AuditLog> {
        let file = match &path {
            Some(path) => {
                use std::os::unix::fs::OpenOptionsExt;
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)?;
                Some(Mutex::new(file))
            }
            None => None,
        };
        Ok(AuditLog {
            ring: Mutex::new((0, VecDeque::with_capacity(AUDIT_RING))),
            file,
            path,
        })
    }

    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// Records an event (its `seq` is assigned here).
    pub fn record(&self, mut event: AuditEvent) {
        let mut ring = self
            .ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        ring.0 += 1;
        event.seq = ring.0;
        if let Some(file) = &self.file
            && let Ok(line) = serde_json::to_string(&event)
        {
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // An audit write failure must not take the server down; the ring still has it.
            let _ = writeln!(file, "{line}");
        }
        if ring.1.len() == AUDIT_RING {
            ring.1.pop_front();
        }
        ring.1.push_back(event);
    }

    /// Events with `seq > after`, oldest first, at most `limit`.
    pub fn after(&self, after: u64, limit: usize) -> Vec<AuditEvent> {
        let ring = self
            .ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        ring.1
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str) -> AuditEvent {
        AuditEvent {
            seq: 0,
            time: 1,
            caller: None,
            auth: "none".into(),
            endpoint: "/x".into(),
            resource: None,
            operation: None,
            result: "deny".into(),
            reason: reason.into(),
            revocation_id: None,
            expires_at: None,
        }
    }

    #[test]
    fn the_ring_is_bounded_and_the_file_gets_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::new(Some(path.clone())).unwrap();
        for i in 0..AUDIT_RING + 5 {
            log.record(event(&i.to_string()));
        }
        let all = log.after(0, usize::MAX);
        assert_eq!(all.len(), AUDIT_RING);
        assert_eq!(all[0].seq, 6);
        assert_eq!(log.after(all.last().unwrap().seq - 2, 10).len(), 2);
        let lines = std::fs::read_to_string(&path).unwrap();
        assert_eq!(lines.lines().count(), AUDIT_RING + 5);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
