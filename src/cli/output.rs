//! How commands report: text for people, JSON for scripts (`--json`), and exit statuses
//! (0 success/valid, 1 invalid/denied, 2 usage or I/O error).

use std::process::ExitCode;

use serde_json::{Value, json};

use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};
use crate::token::TokenError;

/// A successful command's output in both forms.
#[derive(Debug)]
pub struct Report {
    pub text: String,
    pub json: Value,
    /// Exit status; a verdict such as "expired tokens found" may be non-zero yet not an error.
    pub code: u8,
}

impl Report {
    pub fn new(text: impl Into<String>, json: Value) -> Report {
        Report {
            text: text.into(),
            json,
            code: EXIT_OK,
        }
    }
}

/// A failed command: what to tell the user, and which exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    /// Extra JSON fields (e.g. the denials of a failed verification).
    pub details: Value,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn invalid(message: impl Into<String>, details: Value) -> Failure {
        Failure {
            code: EXIT_INVALID,
            message: message.into(),
            details,
        }
    }
}

impl From<TokenError> for Failure {
    fn from(error: TokenError) -> Failure {
        let code = if error.is_verdict() {
            EXIT_INVALID
        } else {
            EXIT_USAGE
        };
        let details = if error.denials().is_empty() {
            Value::Null
        } else {
            json!({ "denials": error.denials() })
        };
        Failure {
            code,
            message: error.to_string(),
            details,
        }
    }
}

impl From<crate::token_store::StoreError> for Failure {
    fn from(error: crate::token_store::StoreError) -> Failure {
        Failure::usage(error.to_string())
    }
}

impl From<crate::token::keys::KeyError> for Failure {
    fn from(error: crate::token::keys::KeyError) -> Failure {
        Failure::usage(error.to_string())
    }
}

/// Writes a line to standard output. A reader that went away (`| head -1`) is not an error
/// worth a panic: the output is simply not wanted any more.
fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// Prints the outcome and turns it into the process exit status.
pub fn finish(result: Result<Report, Failure>, json_mode: bool) -> ExitCode {
    match result {
        Ok(report) => {
            if json_mode {
                print_out(&pretty(&report.json));
            } else if !report.text.is_empty() {
                print_out(report.text.trim_end());
            }
            ExitCode::from(report.code)
        }
        Err(failure) => {
            if json_mode {
                let mut body = json!({ "success": false, "error": failure.message });
                if let (Value::Object(body), Value::Object(extra)) = (&mut body, failure.details) {
                    body.extend(extra);
                }
                print_out(&pretty(&body));
            }
            eprintln!("Error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
