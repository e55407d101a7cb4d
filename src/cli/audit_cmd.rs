//! `audit verify`: checks the server's audit files for tampering (the chain and signed
//! checkpoints of `audit_chain`) and says where the first alteration, removal, insertion,
//! reordering, cut tail or missing file is. Reads the files once; writes nothing.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::output::{Failure, Report};
use super::{CommandResult, EXIT_INVALID};
use crate::audit_chain::{self, Checkpoint, Verification};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify audit files: the hash chain of every line, the signed checkpoints, the files of a
    /// rotated sequence, and a cut tail. Exit 1 on anything found
    Verify {
        /// The audit file (its rotated files FILE.1, FILE.2… are verified before it), or several
        /// files oldest first
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The audit public key (64 hex digits, as /status's audit_key shows, or a file holding
        /// them, such as the server's audit-signing.pk8.pub). Without it the key the trail
        /// names is used, which proves integrity only against someone without that key
        #[arg(long, value_name = "HEX|FILE")]
        key: Option<String>,
        /// A checkpoint kept apart from the files (default: FILE.head beside the audit file):
        /// the files must hold it, or their tail was cut
        #[arg(long, value_name = "FILE")]
        head: Option<PathBuf>,
    },
}

pub fn run(command: AuditCommand) -> CommandResult {
    match command {
        AuditCommand::Verify { files, key, head } => verify(&files, key.as_deref(), head),
    }
}

fn verify(given: &[PathBuf], key: Option<&str>, head: Option<PathBuf>) -> CommandResult {
    let key = key.map(read_key).transpose()?;
    let files = match given {
        [one] => audit_chain::sequence(one),
        many => many.to_vec(),
    };
    let live = files.last().expect("at least one file");
    let head_file = head.or_else(|| {
        let beside = audit_chain::head_path(live);
        (given.len() == 1 && beside.exists()).then_some(beside)
    });
    let head = head_file
        .as_deref()
        .map(audit_chain::read_checkpoint)
        .transpose()
        .map_err(Failure::usage)?;
    let result = audit_chain::verify(&files, key.as_deref(), head.as_ref());
    let text = render(&result, head_file.as_deref(), head.as_ref());
    let body = json!({
        "success": result.ok(),
        "verification": result,
        "head": head_file.map(|p| p.display().to_string()),
    });
    if result.ok() {
        Ok(Report::new(text, body))
    } else {
        let mut report = Report::new(text, body);
        report.code = EXIT_INVALID;
        Ok(report)
    }
}

/// A key given as 64 hex digits, or a file holding them.
fn read_key(given: &str) -> Result<String, Failure> {
    let is_hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex(given) {
        return Ok(given.to_ascii_lowercase());
    }
    let text = std::fs::read_to_string(given).map_err(|e| {
        Failure::usage(format!(
            "--key {given}: neither 64 hex digits nor a readable file ({e})"
        ))
    })?;
    let text = text.trim();
    if is_hex(text) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(Failure::usage(format!(
            "--key {given}: the file does not hold an audit public key (64 hex digits)"
        )))
    }
}

fn render(result: &Verification, head_file: Option<&Path>, head: Option<&Checkpoint>) -> String {
    let mut out = String::new();
    for file in &result.files {
        let what = if file.unchained {
            "not chained".to_string()
        } else {
            file.segment
                .map_or("no genesis".into(), |s| format!("segment {s}"))
        };
        out.push_str(&format!(
            "{}  {what}  {} lines  {} bytes\n",
            file.file, file.lines, file.bytes
        ));
    }
    for note in &result.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    let key = result.key.as_deref().map_or("none".to_string(), |k| {
        format!(
            "{k} ({})",
            if result.key_pinned {
                "pinned"
            } else {
                "named by the trail; pin it with --key"
            }
        )
    });
    out.push_str(&format!(
        "checkpoints: {} verified with key {key}\n",
        result.checkpoints
    ));
    match &result.last_checkpoint {
        Some((file, line, checkpoint)) => out.push_str(&format!(
            "last checkpoint: {file} line {line}, {}\n",
            crate::token::clock::format_unix(checkpoint.time)
        )),
        None => out.push_str("last checkpoint: none\n"),
    }
    if result.unsigned_tail > 0 {
        out.push_str(&format!(
            "{} line(s) after the last checkpoint are chained but not yet signed\n",
            result.unsigned_tail
        ));
    }
    if let (Some(file), Some(head)) = (head_file, head) {
        out.push_str(&format!(
            "head: {} (segment {}, {} line(s), {})\n",
            file.display(),
            head.segment,
            head.lines,
            crate::token::clock::format_unix(head.time)
        ));
    }
    if result.ok() {
        out.push_str(&format!(
            "OK: {} lines in {} file(s), chain intact\n",
            result.lines,
            result.files.len()
        ));
    } else {
        for problem in &result.problems {
            let at = problem
                .line
                .map_or(String::new(), |line| format!(" line {line}"));
            out.push_str(&format!(
                "FAILED: {}{at}: {}\n",
                problem.file, problem.message
            ));
        }
    }
    out
}
