//! The audit trail's tamper evidence: every line the server writes ends with its position in the
//! file's segment and the SHA-256 of the line before it (`…,"n":7,"prev":"<64 hex>"}`), each file
//! opens with a genesis line that links it to the end of the file rotated before it, and the
//! server signs a checkpoint (segment, line count, chain head, time) with an Ed25519 audit key at
//! intervals, at rotation and at shutdown. The newest checkpoint is also kept beside the file
//! (`PATH.head`) so a tail cut off after it is found.
//!
//! [`verify`] reads the files once, at hashing speed, and names the first line that was altered,
//! removed, inserted or moved, a file missing from a rotated sequence, a bad signature, and a tail
//! cut short of the newest checkpoint. The format is documented in SECURITY.md ("Audit trail").

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::audit_trail::MAX_LINE;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// What the first segment's genesis line links to.
pub const ZERO: Hash = [0; 32];

/// The bytes after a line's position: `,"prev":"` + 64 hex digits + `"}`.
const LINK_TAIL: usize = 9 + 64 + 2;

/// Signed checkpoints say what they are, so a signature over anything else never passes as one.
const CHECKPOINT_CONTEXT: &str = "hessra-audit-checkpoint/v1";

/// The SHA-256 of a line (without its newline).
pub fn hash_line(line: &[u8]) -> Hash {
    let mut out = ZERO;
    out.copy_from_slice(digest(&SHA256, line).as_ref());
    out
}

/// The audit signing key: an Ed25519 key pair kept as PKCS#8 (mode 0600).
pub struct Signer {
    pair: Ed25519KeyPair,
}

impl Signer {
    /// Reads the key at `path`, or creates it (0600) and its public half beside it
    /// (`PATH.pub`, hex) when there is none.
    pub fn load_or_create(path: &Path) -> io::Result<Signer> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: not an Ed25519 PKCS#8 key ({e}); move it aside to have a new one made",
                            path.display()
                        ),
                    )
                })?;
                Ok(Signer { pair })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| io::Error::other("could not generate an Ed25519 key"))?;
                crate::fsutil::write_private(path, document.as_ref())?;
                let signer = Signer {
                    pair: Ed25519KeyPair::from_pkcs8(document.as_ref())
                        .map_err(|_| io::Error::other("a generated key did not parse"))?,
                };
                let mut public = path.as_os_str().to_os_string();
                public.push(".pub");
                std::fs::write(PathBuf::from(public), signer.public_hex() + "\n")?;
                Ok(signer)
            }
            Err(e) => Err(e),
        }
    }

    /// A key that lives only in memory (tests, benchmarks).
    pub fn ephemeral() -> Signer {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .expect("the system's random source");
        Signer {
            pair: Ed25519KeyPair::from_pkcs8(document.as_ref()).expect("a generated key"),
        }
    }

    /// The public key, 64 hex digits: what `/status` publishes and `audit verify --key` pins.
    pub fn public_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }
}

/// A signed statement that a segment's first `lines` lines end in `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub segment: u64,
    pub lines: u64,
    /// The SHA-256 of line `lines - 1` of the segment (hex).
    pub head: String,
    pub time: i64,
    /// The public key that signed it (hex).
    pub key: String,
    /// The Ed25519 signature (hex) over [`Checkpoint::message`].
    pub sig: String,
}

impl Checkpoint {
    /// What is signed: the context string and the fields, one per line.
    pub fn message(segment: u64, lines: u64, head: &str, time: i64) -> String {
        format!(
            "{CHECKPOINT_CONTEXT}\nsegment {segment}\nlines {lines}\nhead {head}\ntime {time}\n"
        )
    }

    /// Whether the signature holds under `key` (hex); `Err` says why not.
    pub fn check_signature(&self, key: &str) -> Result<(), String> {
        let key_bytes = hex::decode(key).map_err(|_| format!("the key {key} is not hex"))?;
        let sig = hex::decode(&self.sig).map_err(|_| "the signature is not hex".to_string())?;
        let message = Checkpoint::message(self.segment, self.lines, &self.head, self.time);
        UnparsedPublicKey::new(&ED25519, key_bytes)
            .verify(message.as_bytes(), &sig)
            .map_err(|_| {
                if key == self.key {
                    "its signature does not verify".to_string()
                } else {
                    format!("it is not signed by the key {}", short(key))
                }
            })
    }
}

#[derive(Serialize, Deserialize)]
struct GenesisBody {
    segment: u64,
    time: i64,
    key: String,
}

#[derive(Serialize, Deserialize)]
struct ResumeBody {
    time: i64,
    key: String,
    /// Bytes of an unfinished last line cut off at start-up (a crash mid-write).
    dropped: u64,
}

#[derive(Serialize, Deserialize)]
struct Special {
    #[serde(default)]
    genesis: Option<GenesisBody>,
    #[serde(default)]
    resume: Option<ResumeBody>,
    #[serde(default)]
    checkpoint: Option<Checkpoint>,
}

/// The writer's end of the chain: the segment being written, the next line's position and the
/// hash of the last line.
pub struct Chain {
    signer: Signer,
    pub segment: u64,
    pub next: u64,
    pub prev: Hash,
    /// Lines sealed since the last checkpoint.
    pub unsigned: u64,
}

impl Chain {
    /// A chain continuing `segment` after `next` lines ending in `prev` (or about to start it,
    /// with `next` 0 and `prev` the previous segment's last line).
    pub fn new(signer: Signer, segment: u64, next: u64, prev: Hash) -> Chain {
        Chain {
            signer,
            segment,
            next,
            prev,
            unsigned: 0,
        }
    }

    pub fn public_hex(&self) -> String {
        self.signer.public_hex()
    }

    /// Seals a JSON object (as serde_json writes it, ending in `}`) as the next line: its
    /// position and the previous line's hash are appended as its last two fields.
    pub fn seal(&mut self, object: &str) -> String {
        let body = object.trim_end().strip_suffix('}').unwrap_or("{");
        let mut line = String::with_capacity(body.len() + 100);
        line.push_str(body);
        if !body.trim_end().ends_with('{') {
            line.push(',');
        }
        let _ = write!(line, "\"n\":{},\"prev\":\"", self.next);
        push_hex(&mut line, &self.prev);
        line.push_str("\"}");
        self.prev = hash_line(line.as_bytes());
        self.next += 1;
        self.unsigned += 1;
        line
    }

    /// Starts segment `segment` after a line hashing to `follows`: the first line of a file.
    pub fn genesis(&mut self, segment: u64, time: i64, follows: Hash) -> String {
        self.segment = segment;
        self.next = 0;
        self.prev = follows;
        let body = serde_json::json!({
            "genesis": GenesisBody { segment, time, key: self.public_hex() }
        });
        self.seal(&body.to_string())
    }

    /// Marks a restart of the writer on an existing file (and what of a torn last line was cut).
    pub fn resume(&mut self, time: i64, dropped: u64) -> String {
        let body = serde_json::json!({
            "resume": ResumeBody { time, key: self.public_hex(), dropped }
        });
        self.seal(&body.to_string())
    }

    /// Signs the chain as it stands and seals the checkpoint as the next line.
    pub fn checkpoint(&mut self, time: i64) -> (String, Checkpoint) {
        let head = hex::encode(self.prev);
        let message = Checkpoint::message(self.segment, self.next, &head, time);
        let checkpoint = Checkpoint {
            segment: self.segment,
            lines: self.next,
            head,
            time,
            key: self.public_hex(),
            sig: hex::encode(self.signer.pair.sign(message.as_bytes()).as_ref()),
        };
        let body = serde_json::json!({ "checkpoint": &checkpoint });
        let line = self.seal(&body.to_string());
        self.unsigned = 0;
        (line, checkpoint)
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
}

fn short(key: &str) -> String {
    key.chars().take(12).collect::<String>() + "…"
}

/// A line's position and the hash it records for the line before it, read from its last two
/// fields; `None` for a line not written by the chain.
pub fn link(line: &[u8]) -> Option<(u64, Hash)> {
    if line.len() < LINK_TAIL + 7 || !line.ends_with(b"\"}") {
        return None;
    }
    let tail_at = line.len() - LINK_TAIL;
    if &line[tail_at..tail_at + 9] != b",\"prev\":\"" {
        return None;
    }
    let mut prev = ZERO;
    hex::decode_to_slice(&line[tail_at + 9..line.len() - 2], &mut prev).ok()?;
    let before = &line[..tail_at];
    let digits = before
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let number_at = before.len() - digits;
    if !before[..number_at].ends_with(b"\"n\":") {
        return None;
    }
    let n = std::str::from_utf8(&before[number_at..])
        .ok()?
        .parse()
        .ok()?;
    Some((n, prev))
}

/// Where an existing audit file's chain stands, for a writer reopening it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// No file, or an empty one.
    Empty,
    /// A chained file: its segment, the next position, the hash of its last complete line, and
    /// how many bytes of an unfinished line follow it.
    Chained {
        segment: u64,
        next: u64,
        head: Hash,
        torn: u64,
    },
    /// A file written before chaining (or whose ends cannot be read as a chain).
    Unchained,
}

/// Reads where the chain of the file at `path` stands, touching only its first and last lines.
pub fn tail(path: &Path) -> io::Result<Tail> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Tail::Empty),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Tail::Empty);
    }
    let Some(segment) = first_line(&mut file)?.as_deref().and_then(genesis_segment) else {
        return Ok(Tail::Unchained);
    };
    for window in [64 * 1024u64, 2 * MAX_LINE as u64 + 2] {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut chunk = Vec::new();
        file.by_ref().take(window).read_to_end(&mut chunk)?;
        let Some(last_newline) = chunk.iter().rposition(|b| *b == b'\n') else {
            if start == 0 {
                return Ok(Tail::Unchained);
            }
            continue;
        };
        let torn = (chunk.len() - last_newline - 1) as u64;
        let body = &chunk[..last_newline];
        let Some(line_start) = body.iter().rposition(|b| *b == b'\n').map(|i| i + 1) else {
            if start > 0 {
                continue;
            }
            return Ok(chained_tail(segment, body, torn));
        };
        return Ok(chained_tail(segment, &body[line_start..], torn));
    }
    Ok(Tail::Unchained)
}

fn chained_tail(segment: u64, last: &[u8], torn: u64) -> Tail {
    match link(last) {
        Some((n, _)) => Tail::Chained {
            segment,
            next: n + 1,
            head: hash_line(last),
            torn,
        },
        None => Tail::Unchained,
    }
}

/// The first line of a file (at most `MAX_LINE` bytes), the file left positioned anywhere.
fn first_line(file: &mut std::fs::File) -> io::Result<Option<String>> {
    file.seek(SeekFrom::Start(0))?;
    let mut line = Vec::new();
    BufReader::new(file.by_ref().take(MAX_LINE as u64)).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Ok(None);
    }
    line.pop();
    Ok(String::from_utf8(line).ok())
}

fn genesis_segment(line: &str) -> Option<u64> {
    link(line.as_bytes())?;
    serde_json::from_str::<Special>(line)
        .ok()?
        .genesis
        .map(|g| g.segment)
}

/// The segment a chained file holds, from its genesis line.
pub fn segment_of(path: &Path) -> Option<u64> {
    let mut file = std::fs::File::open(path).ok()?;
    genesis_segment(&first_line(&mut file).ok()??)
}

/// The head file kept beside an audit file: `PATH.head`.
pub fn head_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".head");
    PathBuf::from(name)
}

/// Reads a checkpoint saved as JSON (a head file, or one copied off the host).
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(text.trim())
        .map_err(|e| format!("{}: not a checkpoint ({e})", path.display()))
}

/// What can be wrong with an audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Altered,
    Removed,
    Inserted,
    Reordered,
    Truncated,
    MissingFile,
    BadCheckpoint,
    NotChained,
    Malformed,
}

/// One thing found wrong: where, and what a reader should conclude.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub file: String,
    /// 1-based line number in `file`, when the problem is at a line.
    pub line: Option<u64>,
    pub message: String,
}

/// One file's result.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: String,
    pub segment: Option<u64>,
    pub lines: u64,
    pub bytes: u64,
    /// Written before chaining: read, not verifiable.
    pub unchained: bool,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    pub files: Vec<FileReport>,
    pub lines: u64,
    pub bytes: u64,
    /// Checkpoints whose signature and position were checked.
    pub checkpoints: u64,
    /// The newest checkpoint in the chain: file, line, checkpoint.
    pub last_checkpoint: Option<(String, u64, Checkpoint)>,
    /// Lines of the last file after its last checkpoint: chained, not yet signed.
    pub unsigned_tail: u64,
    /// The key checkpoints were verified with (pinned, or the one the trail names).
    pub key: Option<String>,
    pub key_pinned: bool,
    pub notes: Vec<String>,
    pub problems: Vec<Problem>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Problems listed at most (the first is the one that matters).
const MAX_PROBLEMS: usize = 50;
/// Missing positions remembered to tell a moved line from a removed one.
const MAX_MISSING: u64 = 4_096;

struct Verifier<'a> {
    out: Verification,
    pinned: Option<&'a str>,
    /// The chain as verified so far: segment, next position, hash of the last line.
    segment: Option<u64>,
    next: u64,
    prev: Hash,
    /// Skip the link check of the next line (resynchronising after a problem).
    resync: bool,
    /// Positions skipped over by a gap, with the problem that reported them.
    missing: HashMap<u64, usize>,
    /// Checkpoints seen, to find the head checkpoint among them.
    seen: HashSet<(u64, u64, String)>,
    /// The last position of each segment seen.
    ends: HashMap<u64, u64>,
}

/// Verifies audit files given oldest first (rotated files, then the live one) against an
/// optional pinned key (hex) and an optional head checkpoint kept elsewhere.
pub fn verify(files: &[PathBuf], key: Option<&str>, head: Option<&Checkpoint>) -> Verification {
    let mut verifier = Verifier {
        out: Verification {
            key: key.map(str::to_string),
            key_pinned: key.is_some(),
            ..Verification::default()
        },
        pinned: key,
        segment: None,
        next: 0,
        prev: ZERO,
        resync: false,
        missing: HashMap::new(),
        seen: HashSet::new(),
        ends: HashMap::new(),
    };
    for file in files {
        verifier.file(file);
    }
    if let Some(head) = head {
        verifier.head(head);
    }
    verifier.out
}

impl Verifier<'_> {
    fn problem(&mut self, kind: ProblemKind, file: &str, line: Option<u64>, message: String) {
        if self.out.problems.len() < MAX_PROBLEMS {
            self.out.problems.push(Problem {
                kind,
                file: file.to_string(),
                line,
                message,
            });
        }
        self.resync = true;
    }

    fn file(&mut self, path: &Path) {
        let name = path.display().to_string();
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) => {
                self.problem(
                    ProblemKind::MissingFile,
                    &name,
                    None,
                    format!("cannot be read ({e})"),
                );
                return;
            }
        };
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut report = FileReport {
            file: name.clone(),
            segment: None,
            lines: 0,
            bytes: 0,
            unchained: false,
        };
        let chained_before = self.segment.is_some();
        let mut line = Vec::with_capacity(1024);
        let mut number = 0u64;
        let mut since_checkpoint = 0u64;
        loop {
            line.clear();
            let read = match (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
            {
                Ok(read) => read,
                Err(e) => {
                    self.problem(
                        ProblemKind::Malformed,
                        &name,
                        Some(number + 1),
                        format!("read failed ({e})"),
                    );
                    break;
                }
            };
            if read == 0 {
                break;
            }
            number += 1;
            report.bytes += read as u64;
            if line.last() != Some(&b'\n') {
                if line.len() > MAX_LINE {
                    self.problem(
                        ProblemKind::Malformed,
                        &name,
                        Some(number),
                        format!("longer than {MAX_LINE} bytes: the server writes no such line"),
                    );
                    skip_line(&mut reader, &mut report.bytes);
                    continue;
                }
                self.problem(
                    ProblemKind::Truncated,
                    &name,
                    Some(number),
                    format!(
                        "the file ends in the middle of this line ({} bytes without an end): it was cut short",
                        line.len()
                    ),
                );
                break;
            }
            line.pop();
            report.lines += 1;
            if number == 1 && !self.first_line(&line, &name, chained_before, &mut report) {
                // Not chained: the whole file is read, not verified.
                report.unchained = true;
                report.lines += count_rest(&mut reader, &mut report.bytes);
                break;
            }
            if number > 1 {
                self.line(&line, &name, number);
            }
            if line.starts_with(b"{\"checkpoint\"") {
                self.checkpoint_line(&line, &name, number);
                since_checkpoint = 0;
            } else {
                since_checkpoint += 1;
            }
        }
        if let Some(segment) = report.segment {
            self.ends.insert(segment, self.next);
        }
        self.out.lines += report.lines;
        self.out.bytes += report.bytes;
        if !report.unchained {
            self.out.unsigned_tail = since_checkpoint;
        }
        self.out.files.push(report);
    }

    /// The first line of a file: a genesis line linking to where the previous file ended.
    /// False when the file is not chained at all.
    fn first_line(
        &mut self,
        line: &[u8],
        name: &str,
        chained_before: bool,
        report: &mut FileReport,
    ) -> bool {
        let genesis = std::str::from_utf8(line)
            .ok()
            .and_then(|text| serde_json::from_str::<Special>(text).ok())
            .and_then(|s| s.genesis);
        let Some((n, prev)) = link(line) else {
            if chained_before {
                self.problem(
                    ProblemKind::NotChained,
                    name,
                    Some(1),
                    "the file is not chained, yet it follows chained ones: it was replaced".into(),
                );
            } else {
                self.out.notes.push(format!(
                    "{name}: written before the audit chain (no genesis line): read, not verified"
                ));
            }
            return false;
        };
        let Some(genesis) = genesis.filter(|_| n == 0) else {
            self.problem(
                ProblemKind::Removed,
                name,
                Some(1),
                format!(
                    "the file starts at position {n} of its segment, not with its genesis line: its first lines were removed"
                ),
            );
            self.accept(line, n);
            return true;
        };
        report.segment = Some(genesis.segment);
        self.note_key(&genesis.key, name, 1);
        match self.segment {
            None => {
                if genesis.segment > 1 {
                    self.out.notes.push(format!(
                        "{name}: begins at segment {}; the segments before it were not given (or were retired by rotation)",
                        genesis.segment
                    ));
                }
            }
            Some(before) if genesis.segment != before + 1 => {
                let message = if genesis.segment > before + 1 {
                    format!(
                        "segment {} follows segment {before}: the file(s) holding segment {} are missing",
                        genesis.segment,
                        if genesis.segment == before + 2 {
                            (before + 1).to_string()
                        } else {
                            format!("{} to {}", before + 1, genesis.segment - 1)
                        }
                    )
                } else {
                    format!(
                        "segment {} follows segment {before}: the files are out of order or one was copied",
                        genesis.segment
                    )
                };
                self.problem(ProblemKind::MissingFile, name, Some(1), message);
            }
            Some(before) if !self.resync && prev != self.prev => {
                self.problem(
                    ProblemKind::Truncated,
                    name,
                    Some(1),
                    format!(
                        "segment {} does not begin where segment {before} ended: the previous file's last lines were removed or altered",
                        genesis.segment
                    ),
                );
            }
            Some(_) => {}
        }
        self.resync = false;
        self.segment = Some(genesis.segment);
        self.accept(line, 0);
        true
    }

    fn note_key(&mut self, key: &str, name: &str, number: u64) {
        match (&self.out.key, self.pinned) {
            (None, None) => self.out.key = Some(key.to_string()),
            (Some(known), None) if known != key => {
                self.out.notes.push(format!(
                    "{name} line {number}: the trail names another signing key from here ({}, was {}); pin one with --key",
                    short(key),
                    short(known)
                ));
                self.out.key = Some(key.to_string());
            }
            _ => {}
        }
    }

    fn accept(&mut self, line: &[u8], n: u64) {
        self.next = n + 1;
        self.prev = hash_line(line);
    }

    /// Any line after the first: its position and link.
    fn line(&mut self, line: &[u8], name: &str, number: u64) {
        let Some((n, prev)) = link(line) else {
            self.problem(
                ProblemKind::Inserted,
                name,
                Some(number),
                "the line is not chained (no position and hash): it was added by hand".into(),
            );
            return;
        };
        if let Some(problem) = self.missing.remove(&n) {
            // A position skipped earlier turns up: the line was moved, not removed.
            if let Some(p) = self.out.problems.get_mut(problem) {
                p.kind = ProblemKind::Reordered;
                p.message = format!(
                    "the lines are out of order: position {n} was expected here and turns up at line {number}"
                );
            }
            self.resync = true;
            return;
        }
        if self.resync {
            self.resync = false;
            self.accept(line, n);
            return;
        }
        if n > self.next {
            let first = self.next;
            let index = self.out.problems.len();
            self.problem(
                ProblemKind::Removed,
                name,
                Some(number),
                if n == first + 1 {
                    format!("a line is missing before this one (position {first})")
                } else {
                    format!(
                        "{} lines are missing before this one (positions {first} to {})",
                        n - first,
                        n - 1
                    )
                },
            );
            for missing in first..n.min(first + MAX_MISSING) {
                self.missing.insert(missing, index);
            }
            self.resync = false;
            self.accept(line, n);
            return;
        }
        if n < self.next {
            self.problem(
                ProblemKind::Inserted,
                name,
                Some(number),
                format!(
                    "the line claims position {n}, which came before: it was inserted or copied here"
                ),
            );
            return;
        }
        if prev != self.prev {
            self.problem(
                ProblemKind::Altered,
                name,
                Some(number - 1),
                format!("the line was altered: line {number} records a different hash for it"),
            );
        }
        self.accept(line, n);
    }

    fn checkpoint_line(&mut self, line: &[u8], name: &str, number: u64) {
        let parsed = std::str::from_utf8(line)
            .ok()
            .and_then(|text| serde_json::from_str::<Special>(text).ok())
            .and_then(|s| s.checkpoint);
        let Some(checkpoint) = parsed else {
            self.problem(
                ProblemKind::BadCheckpoint,
                name,
                Some(number),
                "a checkpoint line that does not parse".into(),
            );
            return;
        };
        if self.pinned.is_none() {
            self.note_key(&checkpoint.key, name, number);
        }
        let key = self.out.key.clone().unwrap_or_default();
        let (n, prev) = link(line).unwrap_or((u64::MAX, ZERO));
        let mut wrong = Vec::new();
        if let Err(why) = checkpoint.check_signature(&key) {
            wrong.push(why);
        }
        if Some(checkpoint.segment) != self.segment {
            wrong.push(format!(
                "it names segment {} in segment {}",
                checkpoint.segment,
                self.segment.unwrap_or(0)
            ));
        }
        if checkpoint.lines != n || checkpoint.head != hex::encode(prev) {
            wrong.push("it does not sign the lines before it".into());
        }
        if wrong.is_empty() {
            self.out.checkpoints += 1;
            self.seen.insert((
                checkpoint.segment,
                checkpoint.lines,
                checkpoint.head.clone(),
            ));
            self.out.last_checkpoint = Some((name.to_string(), number, checkpoint));
        } else {
            self.problem(
                ProblemKind::BadCheckpoint,
                name,
                Some(number),
                format!("checkpoint refused: {}", wrong.join("; ")),
            );
        }
    }

    /// The newest checkpoint, kept apart from the files: it must verify and be in the chain.
    fn head(&mut self, head: &Checkpoint) {
        let key = self.pinned.map(str::to_string).or(self.out.key.clone());
        let label = "head checkpoint";
        if let Err(why) = head.check_signature(key.as_deref().unwrap_or(&head.key)) {
            self.problem(
                ProblemKind::BadCheckpoint,
                label,
                None,
                format!("refused: {why}"),
            );
            return;
        }
        if self
            .seen
            .contains(&(head.segment, head.lines, head.head.clone()))
        {
            return;
        }
        let last_segment = self.segment.unwrap_or(0);
        let end = self.ends.get(&head.segment).copied();
        let message = match end {
            _ if head.segment > last_segment => format!(
                "it signs segment {} (line {}) but the files end in segment {last_segment}: the newest file(s) were removed",
                head.segment, head.lines
            ),
            Some(end) if head.lines + 1 > end => format!(
                "it signs {} lines of segment {} (at {}) but the file holds only {end}: its tail was cut off",
                head.lines + 1,
                head.segment,
                crate::token::clock::format_unix(head.time)
            ),
            _ => format!(
                "it signs line {} of segment {}, which the files do not hold as signed: they were rewritten",
                head.lines, head.segment
            ),
        };
        self.problem(ProblemKind::Truncated, label, None, message);
    }
}

fn skip_line(reader: &mut impl BufRead, bytes: &mut u64) {
    loop {
        let Ok(buffer) = reader.fill_buf() else {
            return;
        };
        if buffer.is_empty() {
            return;
        }
        match buffer.iter().position(|b| *b == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                *bytes += at as u64 + 1;
                return;
            }
            None => {
                let len = buffer.len();
                reader.consume(len);
                *bytes += len as u64;
            }
        }
    }
}

fn count_rest(reader: &mut impl BufRead, bytes: &mut u64) -> u64 {
    let mut lines = 0;
    loop {
        let Ok(buffer) = reader.fill_buf() else {
            return lines;
        };
        if buffer.is_empty() {
            return lines;
        }
        lines += buffer.iter().filter(|b| **b == b'\n').count() as u64;
        let len = buffer.len();
        *bytes += len as u64;
        reader.consume(len);
    }
}

/// The files of a trail, oldest first: `PATH`'s rotated files then `PATH` itself.
pub fn sequence(path: &Path) -> Vec<PathBuf> {
    crate::audit_trail::trail_files(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_line_links_to_the_one_before() {
        let mut chain = Chain::new(Signer::ephemeral(), 1, 0, ZERO);
        let genesis = chain.genesis(1, 10, ZERO);
        let line = chain.seal(r#"{"a":1}"#);
        assert_eq!(link(genesis.as_bytes()), Some((0, ZERO)));
        assert_eq!(
            link(line.as_bytes()),
            Some((1, hash_line(genesis.as_bytes())))
        );
        assert!(line.starts_with(r#"{"a":1,"n":1,"prev":""#), "{line}");
        assert_eq!(link(br#"{"a":1}"#), None);
        assert_eq!(link(br#"{"n":x,"prev":"00"}"#), None);
    }

    #[test]
    fn a_checkpoint_verifies_under_its_key_only() {
        let mut chain = Chain::new(Signer::ephemeral(), 1, 0, ZERO);
        chain.genesis(1, 10, ZERO);
        let (_, checkpoint) = chain.checkpoint(11);
        assert_eq!(checkpoint.check_signature(&checkpoint.key), Ok(()));
        let other = Signer::ephemeral().public_hex();
        assert!(checkpoint.check_signature(&other).is_err());
        let mut moved = checkpoint.clone();
        moved.lines += 1;
        assert!(moved.check_signature(&moved.key).is_err());
    }
}
