//! The audit trail read back, by the server and offline by the CLI: the rotated JSON-lines files
//! the server's writer keeps (`PATH`, `PATH.1`, …), read a line at a time with bounded memory,
//! and the evidence a root-key transition weighs from them — the identity tokens a key signed
//! that are still live — beside the policy's bound on how long such tokens may live. Writes
//! nothing; knows nothing of HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::keyset::{KeyEntry, KeySet, LiveToken};
use crate::wire::AuditEvent;

/// The longest audit line read back; a longer one (none is written) is skipped, so a scan's
/// memory is bounded whatever the file holds.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// The `number`th rotated file of the audit file at `path`: `PATH.NUMBER`.
pub(crate) fn numbered(path: &Path, number: u64) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{number}"));
    PathBuf::from(name)
}

/// The rotated files of the audit file at `path` (`PATH.1`, `PATH.2`, …), oldest first.
pub fn rotated_files(path: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let number = file_name.to_str()?.strip_prefix(&prefix)?.parse().ok()?;
            Some((number, entry.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The latest identity-token expiry a file records (`i64::MIN` for none, or an unreadable file).
pub(crate) fn latest_expiry(file: &Path) -> i64 {
    read_lines(file)
        .filter(|line| line.contains("\"expires_at\""))
        .filter_map(|line| serde_json::from_str::<AuditEvent>(&line).ok())
        .filter_map(|event| event.expires_at)
        .max()
        .unwrap_or(i64::MIN)
}

/// The files of the trail at `path`, oldest first: its rotated files, then `path` itself.
pub fn trail_files(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = rotated_files(path)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, file)| file)
        .collect();
    files.push(path.to_path_buf());
    files
}

/// The issued-token records of the audit trail at `path`: its rotated files, oldest first, then
/// the file itself, one line at a time. Lines that do not parse (a torn last line) are skipped.
pub fn read_trail(path: &Path) -> impl Iterator<Item = AuditEvent> + use<> {
    trail_files(path)
        .into_iter()
        .flat_map(|file| read_lines(&file))
        .filter(|line| line.contains("\"expires_at\""))
        .filter_map(|line| serde_json::from_str(&line).ok())
}

/// The lines of a file, one at a time; a line over `MAX_LINE` bytes is skipped, and a missing
/// or unreadable file reads as empty.
pub(crate) fn read_lines(file: &Path) -> impl Iterator<Item = String> + use<> {
    let mut reader = std::fs::File::open(file).ok().map(BufReader::new);
    std::iter::from_fn(move || {
        let source = reader.as_mut()?;
        loop {
            match bounded_line(source) {
                Ok(Some(Some(line))) => return Some(line),
                Ok(Some(None)) => continue,
                Ok(None) | Err(_) => {
                    reader = None;
                    return None;
                }
            }
        }
    })
}

/// The next line: `Some(Some(text))`, `Some(None)` for one skipped (too long, not UTF-8), or
/// `None` at the end. Never holds more than `MAX_LINE` bytes.
fn bounded_line(source: &mut impl BufRead) -> std::io::Result<Option<Option<String>>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buffer = source.fill_buf()?;
        if buffer.is_empty() {
            if line.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let (chunk, ends) = match buffer.iter().position(|b| *b == b'\n') {
            Some(at) => (&buffer[..at], at + 1),
            None => (buffer, buffer.len()),
        };
        let found = ends > chunk.len();
        if !too_long && line.len() + chunk.len() <= MAX_LINE {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line.clear();
        }
        source.consume(ends);
        if found {
            break;
        }
    }
    if too_long {
        return Ok(Some(None));
    }
    Ok(Some(String::from_utf8(line).ok()))
}

/// Most live tokens a key-change report lists (the ones expiring last: the decision needs only
/// whether there is one and the latest expiry, which these keep). ~100 bytes each.
pub const MAX_LIVE_LISTED: usize = 10_000;

/// Identity tokens seen issued in `[from, to]` that are still live at `now`: the tokens a key
/// that signed during that window would cut off. Reads `events` once, in any order, keeping at
/// most `MAX_LIVE_LISTED`, latest expiry first.
fn live_issued(
    events: impl IntoIterator<Item = AuditEvent>,
    from: i64,
    to: i64,
    now: i64,
) -> Vec<LiveToken> {
    // A min-heap on expiry: the earliest-expiring token is dropped when it is full.
    let mut kept: std::collections::BinaryHeap<std::cmp::Reverse<(i64, i64, String)>> =
        std::collections::BinaryHeap::new();
    for event in events {
        if event.result != "allow" || event.time < from || event.time > to {
            continue;
        }
        let Some(expires_at) = event.expires_at.filter(|at| *at > now) else {
            continue;
        };
        let identity = format!(
            "{} via {}",
            event.caller.as_deref().unwrap_or("(anonymous)"),
            event.endpoint
        );
        kept.push(std::cmp::Reverse((expires_at, event.time, identity)));
        if kept.len() > MAX_LIVE_LISTED {
            kept.pop();
        }
    }
    kept.into_sorted_vec()
        .into_iter()
        .map(
            |std::cmp::Reverse((expires_at, issued_at, identity))| LiveToken {
                identity,
                issued_at,
                expires_at,
            },
        )
        .collect()
}

/// The identity tokens key `id` signed that are still live at `now`, from the audit trail: those
/// issued while it was the active key (none for a key not in the set). `events` is streamed.
pub fn signed_by(
    set: &KeySet,
    id: u32,
    events: impl IntoIterator<Item = AuditEvent>,
    now: i64,
) -> Vec<LiveToken> {
    let Some(entry) = set.entries().iter().find(|e| e.id == id) else {
        return Vec::new();
    };
    let (from, to) = signing_window(entry, now);
    live_issued(events, from, to, now)
}

/// The window during which a key signed: from its activation to when it stopped (or now).
fn signing_window(entry: &KeyEntry, now: i64) -> (i64, i64) {
    (
        entry.activated_at.unwrap_or(entry.created_at),
        entry.retiring_since.unwrap_or(now),
    )
}

/// The fields of an audit line that say who was allowed what, borrowed from the line.
#[derive(serde::Deserialize)]
struct Allowed<'a> {
    time: i64,
    #[serde(borrow)]
    caller: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    resource: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    operation: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    result: std::borrow::Cow<'a, str>,
}

/// What the audit files show was used: every allowed request with a caller, read one line at a
/// time (memory bounded by what the policy grants, not by the files' size). Lines that are not
/// events (the chain's own) and refusals are skipped. The files are shared among the cores.
pub fn read_usage(files: &[PathBuf]) -> crate::policy::Usage {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(files.len())
        .max(1);
    if threads == 1 {
        return read_usage_of(files);
    }
    let per_thread = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = files
            .chunks(per_thread)
            .map(|part| scope.spawn(move || read_usage_of(part)))
            .collect();
        let mut usage = crate::policy::Usage::default();
        for part in parts {
            usage.merge(part.join().expect("a reader thread panicked"));
        }
        usage
    })
}

fn read_usage_of(files: &[PathBuf]) -> crate::policy::Usage {
    let mut usage = crate::policy::Usage::default();
    for file in files {
        for line in read_lines(file) {
            if !line.contains("\"result\":\"allow\"") {
                continue;
            }
            let Ok(event) = serde_json::from_str::<Allowed>(&line) else {
                continue;
            };
            if event.result != "allow" {
                continue;
            }
            if let Some(caller) = &event.caller {
                usage.record(
                    caller,
                    event.resource.as_deref(),
                    event.operation.as_deref(),
                    event.time,
                );
            }
        }
    }
    usage
}

/// The files an `--audit FILE` names: a rotated file (`PATH.N`) alone, otherwise its rotated
/// files then itself; each file once, in the order given.
pub fn audit_files(given: &[PathBuf]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for path in given {
        let rotated = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.parse::<u64>().is_ok());
        let mut add = if rotated {
            vec![path.clone()]
        } else {
            trail_files(path)
        };
        add.retain(|f| !files.contains(f));
        files.extend(add);
    }
    files
}
