//! Validation findings: severity, where (line and column), what, and what to do about it.

use std::fmt;

use serde::Serialize;

/// A 1-based line and column in `clients.toml`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Byte offsets to lines and columns (columns count characters).
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    text: String,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex {
            starts,
            text: text.to_string(),
        }
    }

    pub fn locate(&self, offset: usize) -> Location {
        let line = self.starts.partition_point(|&start| start <= offset).max(1);
        let start = self.starts[line - 1];
        let end = offset.min(self.text.len());
        let column = self
            .text
            .get(start..end)
            .map_or(end - start, |s| s.chars().count())
            + 1;
        Location { line, column }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// A stable short name: `syntax`, `unknown-key`, `duplicate-identifier`, …
    pub code: &'static str,
    pub location: Option<Location>,
    pub message: String,
    /// The identity the finding is about, when there is one (the tree marks it there).
    pub subject: Option<String>,
}

impl Finding {
    pub fn error(code: &'static str, location: Option<Location>, message: String) -> Finding {
        Finding {
            severity: Severity::Error,
            code,
            location,
            message,
            subject: None,
        }
    }

    pub fn warning(code: &'static str, location: Option<Location>, message: String) -> Finding {
        Finding {
            severity: Severity::Warning,
            code,
            location,
            message,
            subject: None,
        }
    }

    /// Names the identity this finding is about.
    pub fn about(mut self, identity: &str) -> Finding {
        self.subject = Some(identity.to_string());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.location {
            Some(at) => write!(f, "{at}: {severity}[{}]: {}", self.code, self.message),
            None => write!(f, "{severity}[{}]: {}", self.code, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let index = LineIndex::new("ab\ncdé\n\nx");
        assert_eq!(index.locate(0), Location { line: 1, column: 1 });
        assert_eq!(index.locate(3), Location { line: 2, column: 1 });
        assert_eq!(index.locate(7), Location { line: 2, column: 4 });
        assert_eq!(index.locate(8), Location { line: 3, column: 1 });
        assert_eq!(index.locate(9), Location { line: 4, column: 1 });
    }
}
