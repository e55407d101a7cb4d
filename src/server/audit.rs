//! Audit: every decision is an event, kept in bounded in-memory rings for the console and
//! appended to a rotated JSON-lines file by a writer thread behind a bounded queue. Events name
//! tokens by revocation id, never by content; requests never wait on the disk. The file is
//! hash-chained and checkpoints are signed with the audit key (`audit_chain`), so an edit to it
//! is found by `hessra-console audit verify`.

use std::collections::{HashMap, VecDeque};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit_chain::{self, Chain, Signer};
use crate::audit_trail::{latest_expiry, numbered};
pub use crate::audit_trail::{read_trail, rotated_files};
pub use crate::wire::AuditEvent;

/// How many authenticated decisions and server events the ring keeps.
pub const AUDIT_RING: usize = 2_000;
/// How many events of callers without credentials the ring keeps besides: their own, smaller
/// ring, so no amount of them evicts an authenticated decision.
pub const ANONYMOUS_RING: usize = 200;
/// Refusals of callers without credentials recorded one by one per endpoint and kind of reason
/// in each window; the rest are counted into one summary event when the window closes.
/// Twenty: enough that a client retrying with a bad token, or a test going through a dozen
/// hostile tokens, sees each refusal in the feed; a flood still adds at most 21 events per pair
/// and minute.
pub const ANONYMOUS_FIRST: u32 = 20;
/// The limiter's window, in seconds.
pub const ANONYMOUS_WINDOW: i64 = 60;
/// Endpoint and reason pairs the limiter tracks at once; a flood of novel pairs shares one
/// overflow key, so its own memory is bounded too (64 × ~200 bytes).
const ANONYMOUS_KEYS: usize = 64;
/// Issued-token records the queue dropped, kept in memory for key retirement (the newest
/// 10,000, ~3 MB).
const UNWRITTEN_ISSUED: usize = 10_000;
/// How long `flush` waits for the writer before giving up.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Audit file failures at start-up.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("audit settings: {0}")]
    Settings(String),
}

/// How the audit file is written and rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditConfig {
    /// The file is rotated before it would grow past this many bytes.
    pub max_file_bytes: u64,
    /// Files kept: the one written and `max_files - 1` rotated ones. An older rotated file is
    /// kept past this count while an identity token it records is live (key retirement reads it).
    pub max_files: usize,
    /// Events queued for the writer; when the queue is full an event is counted as dropped
    /// (`hessra_audit_dropped_total`) rather than waited for.
    pub queue: usize,
    /// How often the writer signs a checkpoint of the chain while lines are being added (also
    /// at rotation and at shutdown); zero signs only at rotation and shutdown.
    pub checkpoint_every: Duration,
}

impl Default for AuditConfig {
    /// 16 MiB × 5 files: 80 MiB at most, about 300,000 events (a line is ~250 bytes).
    fn default() -> AuditConfig {
        AuditConfig {
            max_file_bytes: 16 << 20,
            max_files: 5,
            queue: 4_096,
            checkpoint_every: Duration::from_secs(60),
        }
    }
}

impl AuditConfig {
    fn check(&self) -> Result<(), AuditError> {
        if self.max_file_bytes == 0 || self.max_files == 0 || self.queue == 0 {
            return Err(AuditError::Settings(format!(
                "the file size ({}), the number of files ({}) and the queue ({}) must each be at least 1",
                self.max_file_bytes, self.max_files, self.queue
            )));
        }
        Ok(())
    }
}

/// What the audit log counts for `/metrics`.
#[derive(Debug, Default)]
pub struct AuditCounters {
    /// Events not written to the file: the writer's queue was full, or the write failed.
    pub dropped: AtomicU64,
    /// Refusals of callers without credentials folded into a summary event by the limiter.
    pub summarised: AtomicU64,
}

/// The rings and the limiter, under one lock (held for a push, never for I/O).
struct Rings {
    seq: u64,
    decisions: VecDeque<AuditEvent>,
    anonymous: VecDeque<AuditEvent>,
    limiter: Limiter,
}

/// The rings and the file.
pub struct AuditLog {
    rings: Mutex<Rings>,
    /// Issued-token records the file does not have (the queue was full): the trail still
    /// answers for them.
    unwritten: Mutex<VecDeque<AuditEvent>>,
    writer: Option<Writer>,
    path: Option<PathBuf>,
    /// The audit key's public half (hex), when there is a file.
    public_key: Option<String>,
    pub counters: Arc<AuditCounters>,
}

/// The audit signing key's file name, beside the audit file (its public half in `NAME.pub`).
pub const AUDIT_SIGNING_KEY: &str = "audit-signing.pk8";

/// Where the signing key of the audit file at `path` lives.
pub fn signing_key_path(path: &Path) -> PathBuf {
    path.with_file_name(AUDIT_SIGNING_KEY)
}

impl AuditLog {
    /// With a file to append to (created 0600, rotated as `config` says), or in memory only.
    pub fn new(path: Option<PathBuf>, config: AuditConfig) -> Result<AuditLog, AuditError> {
        config.check()?;
        let counters = Arc::new(AuditCounters::default());
        let mut public_key = None;
        let writer = match &path {
            Some(path) => {
                let key = signing_key_path(path);
                let signer = Signer::load_or_create(&key).map_err(|source| AuditError::Io {
                    path: key.display().to_string(),
                    source,
                })?;
                public_key = Some(signer.public_hex());
                Some(Writer::start(path, config, signer, counters.clone())?)
            }
            None => None,
        };
        Ok(AuditLog {
            rings: Mutex::new(Rings {
                seq: 0,
                decisions: VecDeque::with_capacity(AUDIT_RING),
                anonymous: VecDeque::with_capacity(ANONYMOUS_RING),
                limiter: Limiter::default(),
            }),
            unwritten: Mutex::new(VecDeque::new()),
            writer,
            path,
            public_key,
            counters,
        })
    }

    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// The public key checkpoints are signed with (hex), when events go to a file.
    pub fn public_key(&self) -> Option<&str> {
        self.public_key.as_deref()
    }

    /// Records an authenticated decision or an event of the server's own (its `seq` is
    /// assigned here). Never limited, never waits for the disk.
    pub fn record(&self, event: AuditEvent) {
        let mut rings = self.lock();
        self.push(&mut rings, event, false);
    }

    /// Records a request from a caller without credentials (or refused at the TLS handshake):
    /// kept in its own ring, and a refusal is rate-limited per endpoint and kind of reason —
    /// the first `ANONYMOUS_FIRST` in a window are recorded, the rest summed into one summary.
    pub fn record_anonymous(&self, event: AuditEvent) {
        let mut rings = self.lock();
        let now = event.time;
        for summary in rings.limiter.due(now) {
            self.push(&mut rings, summary, true);
        }
        if event.result != "allow" && !rings.limiter.admit(&event) {
            self.counters.summarised.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.push(&mut rings, event, true);
    }

    /// Records the summaries of windows that closed by `now` (called every few seconds, so a
    /// flood that stops is still summed up).
    pub fn tick(&self, now: i64) {
        let mut rings = self.lock();
        for summary in rings.limiter.due(now) {
            self.push(&mut rings, summary, true);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rings> {
        self.rings.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, rings: &mut Rings, mut event: AuditEvent, anonymous: bool) {
        rings.seq += 1;
        event.seq = rings.seq;
        if let Some(writer) = &self.writer
            && !writer.send(event.clone(), &self.counters)
            && event.expires_at.is_some()
        {
            let mut unwritten = self.unwritten.lock().unwrap_or_else(|p| p.into_inner());
            if unwritten.len() == UNWRITTEN_ISSUED {
                unwritten.pop_front();
            }
            unwritten.push_back(event.clone());
        }
        let (ring, capacity) = if anonymous {
            (&mut rings.anonymous, ANONYMOUS_RING)
        } else {
            (&mut rings.decisions, AUDIT_RING)
        };
        if ring.len() == capacity {
            ring.pop_front();
        }
        ring.push_back(event);
    }

    /// Events with `seq > after`, oldest first, at most `limit`: both rings, merged by `seq`.
    pub fn after(&self, after: u64, limit: usize) -> Vec<AuditEvent> {
        let rings = self.lock();
        let start = |ring: &VecDeque<AuditEvent>| ring.partition_point(|e| e.seq <= after);
        let mut decisions = rings.decisions.range(start(&rings.decisions)..).peekable();
        let mut anonymous = rings.anonymous.range(start(&rings.anonymous)..).peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            let next = match (decisions.peek(), anonymous.peek()) {
                (Some(d), Some(a)) if a.seq < d.seq => anonymous.next(),
                (Some(_), _) => decisions.next(),
                (None, _) => anonymous.next(),
            };
            match next {
                Some(event) => out.push(event.clone()),
                None => break,
            }
        }
        out
    }

    /// Waits (up to 5 s) until every event recorded so far is in the file, summaries of open
    /// windows aside. Shutdown calls it; so do the key endpoints before they read the file.
    pub fn flush(&self) {
        if let Some(writer) = &self.writer {
            writer.flush();
        }
    }

    /// The audit trail's issued-token records: streamed from the files (oldest first, rotated
    /// ones included) after a flush, one line at a time whatever the files hold, then those
    /// the queue dropped; without a file, the ring's.
    pub fn issued(&self) -> impl Iterator<Item = AuditEvent> + use<> {
        self.flush();
        let from_files = self.path.as_deref().map(read_trail).into_iter().flatten();
        let in_memory: Vec<AuditEvent> = match self.writer {
            Some(_) => self
                .unwritten
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned()
                .collect(),
            None => self
                .lock()
                .decisions
                .iter()
                .filter(|e| e.expires_at.is_some())
                .cloned()
                .collect(),
        };
        from_files.chain(in_memory)
    }
}

impl Drop for AuditLog {
    /// Writes what is queued before the log goes away.
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.close();
        }
    }
}

/// A kind of reason: the text before its first colon, at most 48 characters ("token
/// rejected", "malformed request", …), so details (which differ per request) share a bucket.
fn reason_kind(reason: &str) -> String {
    let head = reason.split(':').next().unwrap_or(reason);
    head.chars().take(48).collect()
}

#[derive(Debug)]
struct Window {
    started: i64,
    recorded: u32,
    summarised: u64,
    result: String,
}

/// The rate limit on refusals of callers without credentials: per (endpoint, kind of reason),
/// a window of `ANONYMOUS_WINDOW` seconds recording the first `ANONYMOUS_FIRST`. A flood thus
/// adds at most 21 events per pair and minute, whatever its size.
#[derive(Debug, Default)]
struct Limiter {
    windows: HashMap<(String, String), Window>,
}

impl Limiter {
    /// Whether to record `event` one by one; when not, it is counted into its window's summary.
    fn admit(&mut self, event: &AuditEvent) -> bool {
        let mut key = (event.endpoint.clone(), reason_kind(&event.reason));
        if !self.windows.contains_key(&key) && self.windows.len() >= ANONYMOUS_KEYS {
            key = ("(other endpoints)".into(), "(other reasons)".into());
        }
        let window = self.windows.entry(key).or_insert_with(|| Window {
            started: event.time,
            recorded: 0,
            summarised: 0,
            result: event.result.clone(),
        });
        if window.recorded < ANONYMOUS_FIRST {
            window.recorded += 1;
            true
        } else {
            window.summarised += 1;
            false
        }
    }

    /// Closes the windows that ended by `now`, with a summary event for each that held back
    /// refusals.
    fn due(&mut self, now: i64) -> Vec<AuditEvent> {
        let mut summaries = Vec::new();
        self.windows.retain(|(endpoint, kind), window| {
            if now < window.started + ANONYMOUS_WINDOW {
                return true;
            }
            if window.summarised > 0 {
                summaries.push(AuditEvent {
                    seq: 0,
                    time: now,
                    caller: None,
                    auth: "none".into(),
                    endpoint: endpoint.clone(),
                    resource: None,
                    operation: None,
                    result: window.result.clone(),
                    reason: format!(
                        "{} similar refusals ({kind}) in the last {} s, after the {} recorded one by one",
                        window.summarised,
                        now - window.started,
                        window.recorded
                    ),
                    revocation_id: None,
                    expires_at: None,
                });
            }
            false
        });
        summaries.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        summaries
    }
}

enum Message {
    Event(Box<AuditEvent>),
    Flush(mpsc::Sender<()>),
}

/// The writer thread and its queue.
struct Writer {
    queue: SyncSender<Message>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(
        path: &Path,
        config: AuditConfig,
        signer: Signer,
        counters: Arc<AuditCounters>,
    ) -> Result<Writer, AuditError> {
        let file = AuditFile::open(path, config, signer).map_err(|source| AuditError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let (queue, receiver) = mpsc::sync_channel(config.queue);
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_events(file, receiver, &counters))
            .map_err(|source| AuditError::Io {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Writer {
            queue,
            thread: Some(thread),
        })
    }

    /// Queues an event; a full queue drops it and counts it (false), it never waits.
    fn send(&self, event: AuditEvent, counters: &AuditCounters) -> bool {
        match self.queue.try_send(Message::Event(Box::new(event))) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Whether the writer caught up within `FLUSH_TIMEOUT`.
    fn flush(&self) -> bool {
        let (done, wait) = mpsc::channel();
        // `send` would wait for room in the queue as long as the writer is stuck: retry
        // `try_send` instead, within the same deadline.
        let deadline = std::time::Instant::now() + FLUSH_TIMEOUT;
        let mut message = Message::Flush(done);
        loop {
            match self.queue.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                    message = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return false,
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        wait.recv_timeout(left).is_ok()
    }

    /// Writes what is queued and stops the thread; a writer stuck on its disk past the flush
    /// deadline is left behind rather than waited for.
    fn close(mut self) {
        let caught_up = self.flush();
        drop(self.queue);
        if let Some(thread) = self.thread.take()
            && caught_up
        {
            let _ = thread.join();
        }
    }
}

/// How long the writer lets events gather once its queue is empty, before it flushes and sleeps.
/// Under load this turns a thread wake-up and a write per request into one per few
/// milliseconds (a request's `send` wakes nobody while the writer lingers); idle, an event
/// reaches the file this much later. Nothing reads the file for recent events (they are served
/// from memory), and a flush request waits at most this long.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// The writer thread: appends each event as a line, flushing whenever the queue stays empty
/// for `LINGER` (so a burst costs one write, and nothing waits in the buffer while the server
/// is idle).
fn write_events(mut file: AuditFile, receiver: Receiver<Message>, counters: &AuditCounters) {
    let every = file.config.checkpoint_every;
    let mut due = std::time::Instant::now() + every;
    let mut next = receiver.recv();
    while let Ok(message) = next {
        match message {
            Message::Event(event) => {
                if file.append(&event).is_err() {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Message::Flush(done) => {
                let _ = file.flush();
                let _ = done.send(());
            }
        }
        let mut lingered = false;
        next = loop {
            match receiver.try_recv() {
                Ok(message) => break Ok(message),
                Err(mpsc::TryRecvError::Empty) if !lingered => {
                    lingered = true;
                    std::thread::sleep(LINGER);
                }
                Err(mpsc::TryRecvError::Empty) => {
                    if !every.is_zero() && std::time::Instant::now() >= due {
                        due = std::time::Instant::now() + every;
                        let _ = file.checkpoint();
                    }
                    let _ = file.flush();
                    break idle_wait(&receiver, &mut file, every, &mut due);
                }
                Err(mpsc::TryRecvError::Disconnected) => break Err(mpsc::RecvError),
            }
        };
    }
    let _ = file.checkpoint();
    let _ = file.flush();
}

/// Waits for the next message; while lines wait to be signed, wakes when the checkpoint is due
/// and signs them, so an idle server's last lines are signed within `every`.
fn idle_wait(
    receiver: &Receiver<Message>,
    file: &mut AuditFile,
    every: Duration,
    due: &mut std::time::Instant,
) -> Result<Message, mpsc::RecvError> {
    loop {
        if every.is_zero() || file.chain.unsigned == 0 {
            return receiver.recv();
        }
        let left = due.saturating_duration_since(std::time::Instant::now());
        match receiver.recv_timeout(left) {
            Ok(message) => return Ok(message),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                *due = std::time::Instant::now() + every;
                let _ = file.checkpoint();
                let _ = file.flush();
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(mpsc::RecvError),
        }
    }
}

/// The file being written, its size, its chain, and the rotated ones' latest token expiries.
struct AuditFile {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
    size: u64,
    config: AuditConfig,
    chain: Chain,
    /// Latest `expires_at` per rotated file number, read once per file (rotated files never
    /// change).
    expiries: HashMap<u64, i64>,
}

impl AuditFile {
    /// Opens the file to append to and picks its chain up where it stands: a new file starts a
    /// segment after the newest rotated one; a chained file is resumed (an unfinished last
    /// line, left by a crash, is cut off and its size recorded); a file written before
    /// chaining is rotated away first, so every line written from now on is chained.
    fn open(path: &Path, config: AuditConfig, signer: Signer) -> std::io::Result<AuditFile> {
        let now = crate::token::clock::unix_now();
        let mut tail = audit_chain::tail(path)?;
        if tail == audit_chain::Tail::Unchained {
            let number = rotated_files(path)?
                .last()
                .map_or(1, |(number, _)| number + 1);
            std::fs::rename(path, numbered(path, number))?;
            tail = audit_chain::Tail::Empty;
        }
        let file = open_append(path)?;
        let mut size = file.metadata()?.len();
        let (chain, first) = match tail {
            audit_chain::Tail::Chained {
                segment,
                next,
                head,
                torn,
            } => {
                if torn > 0 {
                    size -= torn;
                    file.set_len(size)?;
                }
                let mut chain = Chain::new(signer, segment, next, head);
                let line = chain.resume(now, torn);
                (chain, line)
            }
            _ => {
                let (segment, follows) = previous_segment(path);
                let mut chain = Chain::new(signer, segment + 1, 0, follows);
                let line = chain.genesis(segment + 1, now, follows);
                (chain, line)
            }
        };
        let mut audit = AuditFile {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 * 1024, file),
            size,
            config,
            chain,
            expiries: HashMap::new(),
        };
        audit.write_line(&first)?;
        audit.out.flush()?;
        Ok(audit)
    }

    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.size += line.len() as u64 + 1;
        Ok(())
    }

    fn append(&mut self, event: &AuditEvent) -> std::io::Result<()> {
        let object = serde_json::to_string(event).map_err(std::io::Error::other)?;
        // The position, hash and newline add ~85 bytes; room is kept for the checkpoint that
        // ends the file at rotation.
        let len = object.len() as u64 + 85 + CHECKPOINT_ROOM;
        // A rotation that fails (a directory made read-only, say) is tried again at the next
        // line; meanwhile lines go on into the current file rather than being lost.
        if self.size > 0 && self.size + len > self.config.max_file_bytes {
            let _ = self.rotate(crate::token::clock::unix_now());
        }
        let line = self.chain.seal(&object);
        self.write_line(&line)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Signs the lines added since the last checkpoint (nothing when there are none), and keeps
    /// the checkpoint beside the file too (`PATH.head`, 0600), where a cut tail shows.
    fn checkpoint(&mut self) -> std::io::Result<()> {
        if self.chain.unsigned == 0 {
            return Ok(());
        }
        let (line, checkpoint) = self.chain.checkpoint(crate::token::clock::unix_now());
        self.write_line(&line)?;
        self.out.flush()?;
        let json = serde_json::to_string(&checkpoint).map_err(std::io::Error::other)?;
        crate::fsutil::write_private(&audit_chain::head_path(&self.path), json.as_bytes())
    }

    /// Renames the file to `PATH.N` (N one more than the newest rotated file; a rename keeps
    /// its mode, 0600), starts a new one, and deletes rotated files past the retention count
    /// whose identity tokens have all expired.
    fn rotate(&mut self, now: i64) -> std::io::Result<()> {
        // The segment ends signed; the next file's genesis links to its last line.
        self.checkpoint()?;
        self.out.flush()?;
        let number = rotated_files(&self.path)?
            .last()
            .map_or(1, |(number, _)| number + 1);
        let fresh = numbered(&self.path, number);
        std::fs::rename(&self.path, &fresh)?;
        match open_append(&self.path) {
            Ok(file) => self.out = BufWriter::with_capacity(64 * 1024, file),
            Err(error) => {
                // Keep writing where we were rather than nowhere.
                let _ = std::fs::rename(&fresh, &self.path);
                return Err(error);
            }
        }
        self.size = 0;
        let follows = self.chain.prev;
        let line = self.chain.genesis(self.chain.segment + 1, now, follows);
        self.write_line(&line)?;
        let rotated = rotated_files(&self.path)?;
        let keep = self.config.max_files.saturating_sub(1);
        let past_count = rotated.len().saturating_sub(keep);
        for (number, file) in rotated.into_iter().take(past_count) {
            let expiry = match self.expiries.get(&number) {
                Some(expiry) => *expiry,
                None => {
                    let expiry = latest_expiry(&file);
                    self.expiries.insert(number, expiry);
                    expiry
                }
            };
            // Key retirement asks the trail which live tokens a key signed; a file recording
            // one is kept until it expires (see SECURITY.md, "Audit").
            if expiry <= now {
                std::fs::remove_file(&file)?;
                self.expiries.remove(&number);
            }
        }
        Ok(())
    }
}

/// Bytes kept free at the end of a file for a checkpoint line (~420 bytes), so a file ends
/// signed within its size limit.
const CHECKPOINT_ROOM: u64 = 512;

/// The newest rotated file's segment and the hash of its last line, for a new file's genesis;
/// `(0, ZERO)` when there is none that is chained.
fn previous_segment(path: &Path) -> (u64, audit_chain::Hash) {
    let Some((_, newest)) = rotated_files(path)
        .ok()
        .and_then(|files| files.last().cloned())
    else {
        return (0, audit_chain::ZERO);
    };
    match audit_chain::tail(&newest) {
        Ok(audit_chain::Tail::Chained { segment, head, .. }) => (segment, head),
        _ => (0, audit_chain::ZERO),
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit_trail::{MAX_LINE, read_lines};

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

    fn decision(i: usize) -> AuditEvent {
        AuditEvent {
            caller: Some("uri:urn:company:alice".into()),
            auth: "mtls".into(),
            result: "allow".into(),
            ..event(&format!("decision {i}"))
        }
    }

    /// The events a file holds (the chain's genesis and checkpoint lines are not events).
    fn events_in(path: &Path) -> Vec<AuditEvent> {
        read_lines(path)
            .filter_map(|line| serde_json::from_str::<AuditEvent>(&line).ok())
            .collect()
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_ring_is_bounded_and_the_file_gets_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::new(Some(path.clone()), AuditConfig::default()).unwrap();
        for i in 0..AUDIT_RING + 5 {
            log.record(decision(i));
        }
        let all = log.after(0, usize::MAX);
        assert_eq!(all.len(), AUDIT_RING);
        assert_eq!(all[0].seq, 6);
        assert_eq!(log.after(all.last().unwrap().seq - 2, 10).len(), 2);
        log.flush();
        assert_eq!(events_in(&path).len(), AUDIT_RING + 5);
        assert_eq!(mode(&path), 0o600);
    }

    /// 100,000 refusals without credentials on two endpoints and two kinds of reason, spread
    /// over three minutes: 20 recorded per pair and window plus one summary, and the decisions
    /// before and after are all still in the ring, which keeps only the newest 200 of the rest.
    #[test]
    fn a_flood_of_anonymous_refusals_is_summarised_and_evicts_no_decision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::new(Some(path.clone()), AuditConfig::default()).unwrap();
        for i in 0..10 {
            log.record(decision(i));
        }
        let flood = 100_000;
        for i in 0..flood {
            let mut junk = event(if i % 2 == 0 {
                "token rejected: not base64 at 0"
            } else {
                "malformed request: expected value at line 1 column 1"
            });
            junk.endpoint = if i % 4 < 2 {
                "/verify_token"
            } else {
                "/request_token"
            }
            .into();
            junk.time = 1_000 + (i * 180 / flood) as i64;
            log.record_anonymous(junk);
        }
        log.tick(1_000 + 240);
        for i in 10..20 {
            log.record(decision(i));
        }
        let ring = log.after(0, usize::MAX);
        let decisions = ring.iter().filter(|e| e.caller.is_some()).count();
        assert_eq!(decisions, 20, "every decision is kept");
        assert_eq!(ring.len(), 20 + ANONYMOUS_RING);
        let seqs: Vec<u64> = ring.iter().map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "merged in order");

        log.flush();
        let anonymous: Vec<AuditEvent> = events_in(&path)
            .into_iter()
            .filter(|e| e.caller.is_none())
            .collect();
        // 4 pairs × 3 windows × (20 + 1 summary).
        let first = ANONYMOUS_FIRST as u64;
        assert_eq!(anonymous.len() as u64, 4 * 3 * (first + 1));
        let summarised: u64 = anonymous
            .iter()
            .filter(|e| e.reason.contains("similar refusals"))
            .map(|e| e.reason.split(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(summarised + 4 * 3 * first, flood as u64);
        assert_eq!(log.counters.summarised.load(Ordering::Relaxed), summarised);
        assert!(
            anonymous.iter().any(|e| e.endpoint == "/verify_token"
                && e.reason.contains(
                    "similar refusals (token rejected) in the last 60 s, after the 20 recorded"
                )),
            "{anonymous:#?}"
        );
    }

    #[test]
    fn novel_endpoints_share_one_bucket_past_the_key_limit() {
        let log = AuditLog::new(None, AuditConfig::default()).unwrap();
        for i in 0..10_000 {
            let mut junk = event(&format!("reason {i}: detail"));
            junk.endpoint = format!("/e{i}");
            log.record_anonymous(junk);
        }
        let rings = log.lock();
        assert_eq!(rings.limiter.windows.len(), ANONYMOUS_KEYS + 1);
        // One each for the first 64 pairs, then twenty for all the others together.
        let recorded = ANONYMOUS_KEYS + ANONYMOUS_FIRST as usize;
        assert_eq!(rings.anonymous.len(), recorded);
        assert_eq!(
            log.counters.summarised.load(Ordering::Relaxed),
            10_000 - recorded as u64
        );
    }

    #[test]
    fn rotation_keeps_the_configured_files_at_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let config = AuditConfig {
            max_file_bytes: 4_096,
            max_files: 3,
            queue: 64,
            ..AuditConfig::default()
        };
        let log = AuditLog::new(Some(path.clone()), config).unwrap();
        for i in 0..1_000 {
            log.record(decision(i));
            if i % 50 == 0 {
                log.flush();
            }
        }
        log.flush();
        let rotated = rotated_files(&path).unwrap();
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        for file in rotated.iter().map(|(_, f)| f).chain([&path]) {
            assert_eq!(mode(file), 0o600, "{}", file.display());
            assert!(std::fs::metadata(file).unwrap().len() <= 4_096);
        }
        // The newest events are in the kept files, in order.
        let events: Vec<AuditEvent> = rotated
            .iter()
            .map(|(_, f)| f.clone())
            .chain([path.clone()])
            .flat_map(|f| events_in(&f))
            .collect();
        assert_eq!(events.last().unwrap().reason, "decision 999");
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    }

    #[test]
    fn a_rotated_file_recording_a_live_token_is_kept_past_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let config = AuditConfig {
            max_file_bytes: 2_048,
            max_files: 2,
            queue: 64,
            ..AuditConfig::default()
        };
        let now = crate::token::clock::unix_now();
        let log = AuditLog::new(Some(path.clone()), config).unwrap();
        log.record(AuditEvent {
            endpoint: "/request_identity_token".into(),
            expires_at: Some(now + 3_600),
            ..decision(0)
        });
        log.record(AuditEvent {
            endpoint: "/request_identity_token".into(),
            expires_at: Some(now - 1),
            ..decision(1)
        });
        for i in 2..500 {
            log.record(decision(i));
            log.flush();
        }
        let rotated = rotated_files(&path).unwrap();
        assert_eq!(rotated[0].0, 1, "the first file is kept: {rotated:?}");
        assert_eq!(rotated.len(), 2, "the others went: {rotated:?}");
        let issued: Vec<AuditEvent> = log.issued().collect();
        assert!(
            issued.iter().any(|e| e.expires_at == Some(now + 3_600)),
            "the live token is still found"
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_never_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let config = AuditConfig {
            queue: 1,
            ..AuditConfig::default()
        };
        let log = AuditLog::new(Some(path.clone()), config).unwrap();
        let start = std::time::Instant::now();
        for i in 0..20_000 {
            log.record(decision(i));
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        let dropped = log.counters.dropped.load(Ordering::Relaxed);
        log.flush();
        let written = events_in(&path).len() as u64;
        assert!(dropped > 0, "a queue of one overflows");
        assert_eq!(
            written + dropped,
            20_000,
            "each event is written or counted"
        );
        assert_eq!(
            log.after(0, usize::MAX).len(),
            AUDIT_RING,
            "the ring has them all"
        );

        // An issued token whose record is dropped is still found by the trail.
        for i in 0..5_000 {
            log.record(AuditEvent {
                expires_at: Some(10_000 + i),
                ..decision(0)
            });
        }
        let found = log.issued().count();
        assert_eq!(found, 5_000, "written or kept aside, never lost");
    }

    #[test]
    fn lines_are_read_one_at_a_time_and_overlong_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let issued = AuditEvent {
            expires_at: Some(5),
            ..decision(0)
        };
        let line = serde_json::to_string(&issued).unwrap();
        let long = format!("{{\"expires_at\":1,\"x\":\"{}\"}}", "a".repeat(MAX_LINE));
        std::fs::write(&path, format!("{line}\n{long}\n{line}\n{{torn")).unwrap();
        let events: Vec<AuditEvent> = read_trail(&path).collect();
        assert_eq!(events, vec![issued.clone(), issued]);
    }

    #[test]
    fn settings_of_zero_are_refused() {
        for config in [
            AuditConfig {
                max_files: 0,
                ..AuditConfig::default()
            },
            AuditConfig {
                queue: 0,
                ..AuditConfig::default()
            },
        ] {
            let err = AuditLog::new(None, config).err().unwrap();
            assert!(err.to_string().contains("at least 1"), "{err}");
        }
    }
}
