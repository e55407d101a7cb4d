//! Unused access, marked where it is granted (Clients, Domains & roles): the embedded server's
//! audit trail is read once on a worker, new allowed decisions from the live feed are folded into
//! that usage as they arrive, and `policy::unused` is recomputed on a worker whenever the policy
//! or the usage changed. The UI thread only looks marks up; it never reads the trail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::policy::{self, Granted, Unused, UnusedKind, Usage};
use crate::wire::AuditEvent;

/// Where the evidence stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trail {
    /// The console runs no server, so it has no trail (`policy unused --audit` reads one).
    None,
    /// Being read for the first time.
    Reading,
    /// The trail could not be read (missing, unreadable): why, said once in Messages.
    Unreadable(String),
    /// Read: marks are shown.
    Read,
}

/// The marks of one policy text.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    entries: Vec<Unused>,
    granted: Granted,
    /// (kind, identity, resource, operation, role, realm) → index into `entries`.
    index: HashMap<Key, usize>,
}

type Key = (
    UnusedKind,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn key(u: &Unused) -> Key {
    (
        u.kind,
        u.identity.clone(),
        u.resource.clone(),
        u.operation.clone(),
        u.role.clone(),
        u.realm.clone(),
    )
}

impl Marks {
    pub fn new(entries: Vec<Unused>, granted: Granted) -> Marks {
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, u)| (key(u), i))
            .collect();
        Marks {
            entries,
            granted,
            index,
        }
    }

    fn find(&self, key: Key) -> Option<&Unused> {
        self.index.get(&key).map(|&i| &self.entries[i])
    }

    pub fn entries(&self) -> &[Unused] {
        &self.entries
    }

    pub fn granted(&self) -> Granted {
        self.granted
    }
}

/// The console's unused-access state: the trail's status, the usage read from it, and the
/// marks of the latest policy text they were computed for.
#[derive(Debug, Clone)]
pub struct UnusedMarks {
    /// The live audit file (`None`: no server runs in this console).
    pub path: Option<PathBuf>,
    /// Seconds: access not used within this window is unused.
    pub window: i64,
    pub trail: Trail,
    usage: Option<Arc<Usage>>,
    /// The feed's events up to this sequence number are folded into `usage`.
    folded: u64,
    marks: Option<Marks>,
    /// The policy or the usage changed since the marks were computed.
    pub(crate) stale: bool,
    /// A recomputation runs (one at a time; a change meanwhile runs another after it).
    pub(crate) computing: bool,
}

impl Default for UnusedMarks {
    fn default() -> UnusedMarks {
        UnusedMarks::new(None, super::config::DEFAULT_UNUSED_WINDOW)
    }
}

impl UnusedMarks {
    pub fn new(path: Option<PathBuf>, window: i64) -> UnusedMarks {
        UnusedMarks {
            trail: if path.is_some() {
                Trail::Reading
            } else {
                Trail::None
            },
            path,
            window,
            usage: None,
            folded: 0,
            marks: None,
            stale: false,
            computing: false,
        }
    }

    /// The start of the window at `now`.
    pub fn since(&self, now: i64) -> i64 {
        now.saturating_sub(self.window)
    }

    pub fn usage(&self) -> Option<Arc<Usage>> {
        self.usage.clone()
    }

    /// The trail was read (or not): returns the message to keep in Messages, once.
    pub fn trail_read(&mut self, result: Result<Usage, String>) -> Option<String> {
        match result {
            Ok(usage) => {
                self.usage = Some(Arc::new(usage));
                self.trail = Trail::Read;
                self.stale = true;
                // The feed's events are folded again: one the file did not hold yet when it was
                // read is not lost, and one it did changes nothing.
                self.folded = 0;
                None
            }
            Err(why) => {
                let first = self.trail != Trail::Unreadable(why.clone());
                self.trail = Trail::Unreadable(why.clone());
                self.marks = None;
                first.then(|| format!("unused access is not marked: {why}"))
            }
        }
    }

    /// Folds the feed's allowed decisions not seen yet into the usage (idempotent: usage keeps
    /// the latest time of each use, so an event also read from the trail changes nothing).
    /// Cheap: the feed hands over a page at a time. True when the usage changed.
    pub fn fold(&mut self, events: &std::collections::VecDeque<AuditEvent>) -> bool {
        let Some(usage) = self.usage.as_mut() else {
            return false;
        };
        let mut changed = false;
        let after = self.folded;
        for event in events.iter().filter(|e| e.seq > after) {
            self.folded = self.folded.max(event.seq);
            let Some(caller) = event.caller.as_deref() else {
                continue;
            };
            if event.result != "allow" {
                continue;
            }
            Arc::make_mut(usage).record(
                caller,
                event.resource.as_deref(),
                event.operation.as_deref(),
                event.time,
            );
            changed = true;
        }
        if changed {
            self.stale = true;
        }
        changed
    }

    /// The trail could not be read and the feed shows the server deciding since: the file is
    /// probably there now (a fresh server writes it on its first request). Asks once per
    /// batch of new events, so an unreadable file is not retried in a loop.
    pub fn wants_reread(&mut self, events: &std::collections::VecDeque<AuditEvent>) -> bool {
        let latest = events.back().map_or(0, |e| e.seq);
        if !matches!(self.trail, Trail::Unreadable(_)) || latest <= self.folded {
            return false;
        }
        self.folded = latest;
        true
    }

    /// The marks computed for the policy; `None` until there are some.
    pub fn computed(&mut self, marks: Marks) {
        self.marks = Some(marks);
    }

    pub fn marks(&self) -> Option<&Marks> {
        self.marks.as_ref()
    }

    pub fn grant(&self, identity: &str, resource: &str, operation: &str) -> Option<&Unused> {
        self.marks.as_ref()?.find((
            UnusedKind::Grant,
            identity.into(),
            Some(resource.into()),
            Some(operation.into()),
            None,
            None,
        ))
    }

    pub fn identity(&self, identity: &str) -> Option<&Unused> {
        self.marks.as_ref()?.find((
            UnusedKind::Identity,
            identity.into(),
            None,
            None,
            None,
            None,
        ))
    }

    pub fn role_permission(
        &self,
        realm: &str,
        role: &str,
        resource: &str,
        operation: &str,
    ) -> Option<&Unused> {
        self.marks.as_ref()?.find((
            UnusedKind::RolePermission,
            realm.into(),
            Some(resource.into()),
            Some(operation.into()),
            Some(role.into()),
            None,
        ))
    }

    pub fn assignment(&self, realm: &str, subject: &str, role: &str) -> Option<&Unused> {
        self.marks.as_ref()?.find((
            UnusedKind::RoleAssignment,
            subject.into(),
            None,
            None,
            Some(role.into()),
            Some(realm.into()),
        ))
    }

    /// What the panes' titles say: `3 unused in 30d (audit)`, or why nothing is marked.
    pub fn summary(&self) -> Option<String> {
        let window = policy::duration::format(u64::try_from(self.window).unwrap_or(0));
        match (&self.trail, &self.marks) {
            (Trail::None, _) => None,
            (Trail::Unreadable(_), _) => Some("unused: no audit trail".into()),
            (Trail::Reading, _) | (Trail::Read, None) => {
                Some("unused: reading the audit trail".into())
            }
            (Trail::Read, Some(marks)) => Some(format!(
                "{} unused in {window} (audit)",
                marks.entries.len()
            )),
        }
    }
}

/// The mark shown beside unused access: `unused · never used`, `unused · last used 12 days ago`.
pub fn tag(unused: &Unused, now: i64) -> String {
    format!("unused · {}", unused.last_use(now))
}

// ---- the work the jobs do -------------------------------------------------------------------

/// Reads the trail whose live file is `path` (rotated files first). A malformed line is
/// skipped (a torn last line is normal); a missing or unreadable file says so.
pub fn read_trail(path: &Path) -> Result<Usage, String> {
    if let Err(e) = std::fs::File::open(path) {
        return Err(if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "no audit trail yet at {} (the server writes it on its first request; f5 reads it again)",
                path.display()
            )
        } else {
            format!("cannot read the audit trail {}: {e}", path.display())
        });
    }
    if !path.is_file() {
        return Err(format!("{} is not an audit file", path.display()));
    }
    Ok(crate::audit_trail::read_usage(
        &crate::audit_trail::trail_files(path),
    ))
}

/// The unused access of the policy `text`.
pub fn compute(text: &str, usage: &Usage, since: i64, now: i64) -> Result<Marks, String> {
    let loaded = policy::load(text, now).map_err(|f| f.to_string())?;
    let (entries, granted) = policy::unused(&loaded.policy, usage, since);
    Ok(Marks::new(entries, granted))
}

/// The tightening proposal for the policy `text`.
pub fn propose(
    text: &str,
    usage: &Usage,
    since: i64,
    now: i64,
) -> Result<policy::Proposal, String> {
    let loaded = policy::load(text, now).map_err(|f| f.to_string())?;
    Ok(policy::tighten(&loaded.policy, usage, since, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, caller: &str, result: &str) -> AuditEvent {
        AuditEvent {
            seq,
            time: 1_000 + seq as i64,
            caller: Some(caller.into()),
            auth: "mtls".into(),
            endpoint: "/request_token".into(),
            resource: Some("api".into()),
            operation: Some("read".into()),
            result: result.into(),
            reason: String::new(),
            revocation_id: None,
            expires_at: None,
        }
    }

    #[test]
    fn the_feed_folds_allowed_decisions_once_and_only_after_the_trail_is_read() {
        let mut marks = UnusedMarks::new(Some("audit.jsonl".into()), 86_400);
        let feed: std::collections::VecDeque<AuditEvent> =
            [event(1, "alice", "allow"), event(2, "bob", "deny")].into();
        assert!(
            !marks.fold(&feed),
            "no usage to fold into before the trail is read"
        );
        assert_eq!(marks.trail_read(Ok(Usage::default())), None);
        marks.stale = false;
        assert!(marks.fold(&feed));
        assert!(marks.stale);
        let usage = marks.usage().unwrap();
        assert_eq!(usage.events, 1, "a denial is not use");
        assert!(!marks.fold(&feed), "each event is folded once");
    }

    #[test]
    fn an_unreadable_trail_is_read_again_once_per_batch_of_new_decisions() {
        let mut marks = UnusedMarks::new(Some("audit.jsonl".into()), 86_400);
        let mut feed: std::collections::VecDeque<AuditEvent> = [event(1, "alice", "allow")].into();
        assert!(!marks.wants_reread(&feed), "not before a read failed");
        marks.trail_read(Err("missing".into()));
        assert!(marks.wants_reread(&feed));
        assert!(!marks.wants_reread(&feed), "the same events ask once");
        feed.push_back(event(2, "alice", "allow"));
        assert!(marks.wants_reread(&feed));
        marks.trail_read(Ok(Usage::default()));
        assert!(
            marks.fold(&feed),
            "what the feed showed before the read is folded in"
        );
    }

    #[test]
    fn an_unreadable_trail_is_said_once_and_clears_the_marks() {
        let mut marks = UnusedMarks::new(Some("audit.jsonl".into()), 86_400);
        marks.computed(Marks::default());
        assert!(marks.trail_read(Err("gone".into())).is_some());
        assert!(marks.trail_read(Err("gone".into())).is_none());
        assert!(marks.marks().is_none());
        assert_eq!(marks.summary().as_deref(), Some("unused: no audit trail"));
    }

    #[test]
    fn reading_a_missing_or_non_file_trail_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read_trail(&dir.path().join("audit.jsonl")).unwrap_err();
        assert!(missing.contains("no audit trail yet"), "{missing}");
        let not_file = read_trail(dir.path()).unwrap_err();
        assert!(not_file.contains("is not an audit file"), "{not_file}");
    }
}
