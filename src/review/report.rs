//! The review report (`policy report`, the console's export): one self-contained file a reviewer
//! attaches to a change review — the identity tree with depth and lifetimes, who may do what,
//! every change since a revision (widening ones with author, commit, message and decision
//! replay), revocations, the root key set, unused access when the audit trail is given, and the
//! validation findings. Markdown, JSON, or HTML without external assets.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use super::{History, ReviewedChange};
use crate::keyset::KeyEntry;
use crate::policy::{
    DEFAULT_AUTHZ_TOKEN_DURATION, DelegationTree, Finding, LoadedPolicy, NodeKind, Permissions,
    Revoked, Unused, duration,
};
use crate::token::clock::format_unix;

/// The report's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
    Html,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Md => "md",
            Format::Json => "json",
            Format::Html => "html",
        }
    }
}

/// One identity of the delegation tree.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityRow {
    pub identity: String,
    /// 0 for a root of the tree.
    pub depth: usize,
    /// client, realm, operator, role subject or intermediate (not configured).
    pub kind: String,
    /// The identity-token lifetime cap, when it may hold identity tokens.
    pub identity_token_lifetime: Option<u64>,
    /// The authorization-token lifetime (configured clients).
    pub authorization_token_lifetime: Option<u64>,
    pub delegatable: bool,
    pub max_delegation_depth: Option<u32>,
    /// The role, for a realm's subject.
    pub role: Option<String>,
    pub permissions: String,
    pub violations: Vec<String>,
}

/// Who may do what: a row per client and per realm role, a column per resource.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Matrix {
    pub resources: Vec<String>,
    pub rows: Vec<MatrixRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixRow {
    /// The identity, or `role NAME in REALM`.
    pub who: String,
    /// Per resource (in `Matrix::resources` order) the operations allowed.
    pub operations: Vec<Vec<String>>,
}

/// What the uncommitted working file changes against HEAD.
#[derive(Debug, Clone, Serialize)]
pub struct Uncommitted {
    pub changes: Vec<ReviewedChange>,
}

/// Unused access, when the report was given the audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct UnusedSection {
    /// The window, e.g. `30d`.
    pub window: String,
    pub files: Vec<String>,
    /// Allowed requests the trail holds.
    pub events: u64,
    pub entries: Vec<Unused>,
}

/// The root key set, or why it is not in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Keys {
    Read {
        manifest: String,
        keys: Vec<KeyEntry>,
    },
    NotRead {
        why: String,
    },
}

/// Everything the report says, in the order it says it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: i64,
    pub file: String,
    pub repository: Option<String>,
    /// HEAD's commit id.
    pub head: Option<String>,
    /// The revision the changes are listed since, as given, and its commit.
    pub since: Option<String>,
    pub identities: Vec<IdentityRow>,
    pub matrix: Matrix,
    /// The working file's uncommitted changes, when it differs from HEAD.
    pub uncommitted: Option<Uncommitted>,
    /// The commits since `since` (all of history without it) that changed the policy or its
    /// revocations.
    pub history: Option<History>,
    pub revocations: Vec<Revoked>,
    pub keys: Keys,
    pub unused: Option<UnusedSection>,
    pub findings: Vec<Finding>,
}

/// The parts the caller read (files, git, audit) that the report is built from.
pub struct Sources<'a> {
    pub file: String,
    pub loaded: &'a LoadedPolicy,
    pub repository: Option<String>,
    pub head: Option<String>,
    pub since: Option<String>,
    pub uncommitted: Option<Vec<ReviewedChange>>,
    pub history: Option<History>,
    pub revocations: Vec<Revoked>,
    pub keys: Keys,
    pub unused: Option<UnusedSection>,
    pub now: i64,
}

impl Report {
    pub fn build(sources: Sources<'_>) -> Report {
        let policy = &sources.loaded.policy;
        let tree = DelegationTree::build(policy, &sources.loaded.findings);
        let identities = tree
            .nodes
            .iter()
            .map(|node| {
                let client = policy.client(&node.identity);
                let (kind, role) = match &node.kind {
                    NodeKind::Client {
                        realm, operator, ..
                    } => (
                        match (realm, operator) {
                            (true, _) => "realm",
                            (false, true) => "operator",
                            (false, false) => "client",
                        },
                        None,
                    ),
                    NodeKind::DomainSubject { role, .. } => ("role subject", Some(role.clone())),
                    NodeKind::Intermediate => ("intermediate", None),
                };
                IdentityRow {
                    identity: node.identity.clone(),
                    depth: node.depth,
                    kind: kind.to_string(),
                    identity_token_lifetime: client.and_then(|c| c.identity_token_cap()),
                    authorization_token_lifetime: client.map(|c| {
                        c.authorization_token_duration
                            .unwrap_or(DEFAULT_AUTHZ_TOKEN_DURATION)
                    }),
                    delegatable: client.is_some_and(|c| c.delegatable),
                    max_delegation_depth: client.and_then(|c| c.max_delegation_depth),
                    role,
                    permissions: node.permissions.to_string(),
                    violations: node.violations.iter().map(|f| f.message.clone()).collect(),
                }
            })
            .collect();
        Report {
            generated_at: sources.now,
            file: sources.file,
            repository: sources.repository,
            head: sources.head,
            since: sources.since,
            identities,
            matrix: matrix(sources.loaded),
            uncommitted: sources
                .uncommitted
                .filter(|changes| !changes.is_empty())
                .map(|changes| Uncommitted { changes }),
            history: sources.history,
            revocations: sources.revocations,
            keys: sources.keys,
            unused: sources.unused,
            findings: sources.loaded.findings.clone(),
        }
    }

    /// Widening changes: the uncommitted ones and those of every commit listed.
    pub fn widening_count(&self) -> usize {
        let uncommitted = self
            .uncommitted
            .iter()
            .flat_map(|u| &u.changes)
            .filter(|c| c.change.widens)
            .count();
        uncommitted + self.history.as_ref().map_or(0, |h| h.widening().count())
    }

    fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.is_error()).count()
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Md => self.markdown(),
            Format::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            Format::Html => self.html(),
        }
    }

    /// One line: what the report found.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} identities, {} widening change(s)",
            self.identities
                .iter()
                .filter(|i| i.kind != "intermediate")
                .count(),
            self.widening_count()
        );
        if let Some(unused) = &self.unused {
            let _ = write!(
                text,
                ", {} unused in {}",
                unused.entries.len(),
                unused.window
            );
        }
        let _ = write!(
            text,
            ", {} error(s), {} warning(s)",
            self.errors(),
            self.findings.len() - self.errors()
        );
        text
    }

    fn range(&self) -> String {
        let head = self.head.as_deref().map_or("HEAD".to_string(), short);
        match &self.since {
            Some(since) => format!("since {since} up to {head}"),
            None => format!("all of history up to {head}"),
        }
    }
}

/// A row per client with permissions and per realm role, a column per resource anyone holds.
fn matrix(loaded: &LoadedPolicy) -> Matrix {
    let mut rows: Vec<(String, Permissions)> = Vec::new();
    for client in &loaded.policy.clients {
        let permissions = Permissions::from_resources(&client.resources);
        if !permissions.0.is_empty() {
            rows.push((client.identity.clone(), permissions));
        }
        if let Some(domain) = &client.domain {
            for role in domain.default_role.iter().chain(&domain.roles) {
                let default = if domain.default_role.as_ref() == Some(role) {
                    " (default)"
                } else {
                    ""
                };
                rows.push((
                    format!("role {}{default} in {}", role.name, client.identity),
                    Permissions::from_resources(&role.resources),
                ));
            }
        }
    }
    let resources: BTreeSet<String> = rows.iter().flat_map(|(_, p)| p.0.keys().cloned()).collect();
    let resources: Vec<String> = resources.into_iter().collect();
    let rows = rows
        .into_iter()
        .map(|(who, permissions)| MatrixRow {
            operations: resources
                .iter()
                .map(|r| {
                    permissions
                        .operations(r)
                        .into_iter()
                        .map(str::to_string)
                        .collect()
                })
                .collect(),
            who,
        })
        .collect();
    Matrix { resources, rows }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

fn lifetime(seconds: Option<u64>) -> String {
    seconds.map_or("—".to_string(), duration::format)
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("")
}

fn key_time(at: Option<i64>) -> String {
    at.map_or("—".to_string(), format_unix)
}

// ---- Markdown ----------------------------------------------------------------------------------

/// Text for a Markdown paragraph or cell: punctuation that Markdown (or raw HTML inside it)
/// would read is escaped, and line breaks are spaces, so a name or message in the policy cannot
/// restructure the report.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '|' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// An identifier (identity, resource) as a code span.
fn md_code(text: &str) -> String {
    format!(
        "`{}`",
        text.replace('`', "'")
            .replace('|', "\\|")
            .replace(['\n', '\r'], " ")
    )
}

impl Report {
    fn markdown(&self) -> String {
        let mut out = String::new();
        let o = &mut out;
        let _ = writeln!(o, "# Policy review: {}\n", md(&self.file));
        let _ = writeln!(o, "- Generated: {}", format_unix(self.generated_at));
        if let Some(repository) = &self.repository {
            let _ = writeln!(o, "- Repository: {}", md(repository));
        }
        let _ = writeln!(o, "- Changes: {}", md(&self.range()));
        let _ = writeln!(o, "- Summary: {}\n", md(&self.summary()));

        let _ = writeln!(o, "## Identity tree\n");
        let _ = writeln!(
            o,
            "| Identity | Depth | Kind | Identity tokens | Authorization tokens | Delegatable | Permissions |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|");
        for row in &self.identities {
            let mut kind = row.kind.clone();
            if let Some(role) = &row.role {
                kind = format!("{kind} ({role})");
            }
            let delegatable = match (row.delegatable, row.max_delegation_depth) {
                (true, Some(depth)) => format!("yes, depth {depth}"),
                (true, None) => "yes".to_string(),
                (false, _) => "no".to_string(),
            };
            let mut permissions = md(&row.permissions);
            for violation in &row.violations {
                let _ = write!(permissions, " **{}**", md(violation));
            }
            let _ = writeln!(
                o,
                "| {}{} | {} | {} | {} | {} | {} | {} |",
                "&nbsp;&nbsp;".repeat(row.depth),
                md_code(&row.identity),
                row.depth,
                md(&kind),
                lifetime(row.identity_token_lifetime),
                lifetime(row.authorization_token_lifetime),
                delegatable,
                permissions
            );
        }

        let _ = writeln!(o, "\n## Who may do what\n");
        if self.matrix.rows.is_empty() {
            let _ = writeln!(o, "Nobody may do anything.");
        } else {
            let _ = write!(o, "| Who |");
            for resource in &self.matrix.resources {
                let _ = write!(o, " {} |", md_code(resource));
            }
            let _ = writeln!(o, "\n|---|{}", "---|".repeat(self.matrix.resources.len()));
            for row in &self.matrix.rows {
                let _ = write!(o, "| {} |", md_code(&row.who));
                for operations in &row.operations {
                    let _ = write!(o, " {} |", md(&operations.join(", ")));
                }
                let _ = writeln!(o);
            }
        }

        let _ = writeln!(o, "\n## Changes {}\n", md(&self.range()));
        if let Some(uncommitted) = &self.uncommitted {
            let _ = writeln!(o, "### Not committed (the working file against HEAD)\n");
            md_changes(o, &uncommitted.changes);
        }
        match &self.history {
            None => {
                let _ = writeln!(
                    o,
                    "The policy file is not in a git repository: no history.\n"
                );
            }
            Some(history) if history.commits.is_empty() => {
                let _ = writeln!(o, "No commit changed the policy or its revocations.\n");
            }
            Some(history) => {
                if history.truncated {
                    let _ = writeln!(
                        o,
                        "Only the newest {} commits are listed.\n",
                        history.commits.len()
                    );
                }
                for commit in &history.commits {
                    let widening = commit.widening().count();
                    let _ = writeln!(
                        o,
                        "### {} — {}\n\n{} <{}>, {}{}\n",
                        short(&commit.commit.id),
                        md(first_line(&commit.commit.message)),
                        md(&commit.commit.author),
                        md(&commit.commit.email),
                        format_unix(commit.commit.time),
                        if widening > 0 {
                            format!(" — **{widening} widening**")
                        } else {
                            String::new()
                        }
                    );
                    if let Some(error) = &commit.error {
                        let _ = writeln!(
                            o,
                            "**Not readable:** {} — review its text diff by hand.\n",
                            md(error)
                        );
                    }
                    md_changes(o, &commit.changes);
                }
            }
        }

        let _ = writeln!(o, "## Revocations\n");
        if self.revocations.is_empty() {
            let _ = writeln!(o, "No token is revoked.\n");
        } else {
            let _ = writeln!(o, "| Revocation id | Reason | By | At |\n|---|---|---|---|");
            for revoked in &self.revocations {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} |",
                    md_code(&revoked.id),
                    md(&revoked.reason),
                    md(revoked.by.as_deref().unwrap_or("—")),
                    key_time(revoked.at)
                );
            }
            let _ = writeln!(o);
        }

        let _ = writeln!(o, "## Root keys\n");
        match &self.keys {
            Keys::NotRead { why } => {
                let _ = writeln!(o, "Not in this report: {}\n", md(why));
            }
            Keys::Read { manifest, keys } => {
                let _ = writeln!(
                    o,
                    "From {}.\n\n| Id | State | Public key | Activated | Verifies until |\n|---|---|---|---|---|",
                    md(manifest)
                );
                for key in keys {
                    let _ = writeln!(
                        o,
                        "| {} | {}{} | {} | {} | {} |",
                        key.id,
                        key.state.name(),
                        if key.forced { " (forced)" } else { "" },
                        md_code(&key.public_key),
                        key_time(key.activated_at),
                        key_time(key.verify_until)
                    );
                }
                let _ = writeln!(o);
            }
        }

        if let Some(unused) = &self.unused {
            let _ = writeln!(
                o,
                "## Unused access in the last {}\n\nFrom {} allowed request(s) in {}.\n",
                md(&unused.window),
                unused.events,
                md(&unused.files.join(", "))
            );
            if unused.entries.is_empty() {
                let _ = writeln!(o, "Everything granted was used.\n");
            }
            for entry in &unused.entries {
                let _ = writeln!(
                    o,
                    "- {}: {} (line {}, {})",
                    entry.kind.label(),
                    md(&entry.what()),
                    entry.line,
                    entry
                        .last_used
                        .map_or("never used".to_string(), |at| format!(
                            "last used {}",
                            format_unix(at)
                        ))
                );
            }
            let _ = writeln!(o);
        }

        let _ = writeln!(o, "## Validation\n");
        if self.findings.is_empty() {
            let _ = writeln!(o, "No findings.");
        }
        for finding in &self.findings {
            let _ = writeln!(o, "- {}", md(&finding.to_string()));
        }
        out
    }
}

fn md_changes(o: &mut String, changes: &[ReviewedChange]) {
    if changes.is_empty() {
        let _ = writeln!(o, "No semantic change.\n");
        return;
    }
    for change in changes {
        let _ = writeln!(o, "- {}", md(&change.text));
        for row in &change.replay {
            let _ = writeln!(
                o,
                "  - {}: {} → {} ({})",
                md(&row.request.to_string()),
                verdict(row.before.allowed),
                verdict(row.after.allowed),
                md(&row.after.reason)
            );
        }
    }
    let _ = writeln!(o);
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allowed" } else { "denied" }
}

// ---- HTML --------------------------------------------------------------------------------------

/// Text for HTML content or a quoted attribute.
fn h(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1b1f23}\
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f3f4f6}code{font-family:ui-monospace,monospace;font-size:.95em}\
.widens{color:#b00020;font-weight:600}.narrows{color:#555}.commit{margin:1em 0 .3em}\
.replay{margin:.1em 0 .4em 1.5em;color:#333}.err{color:#b00020}.meta{color:#555}";

impl Report {
    fn html(&self) -> String {
        let mut out = String::new();
        let o = &mut out;
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\">\
             <title>Policy review: {}</title><style>{STYLE}</style></head><body>\n",
            h(&self.file)
        );
        let _ = writeln!(o, "<h1>Policy review: <code>{}</code></h1>", h(&self.file));
        let _ = writeln!(o, "<ul class=\"meta\">");
        let _ = writeln!(
            o,
            "<li>Generated {}</li>",
            h(&format_unix(self.generated_at))
        );
        if let Some(repository) = &self.repository {
            let _ = writeln!(o, "<li>Repository {}</li>", h(repository));
        }
        let _ = writeln!(o, "<li>Changes {}</li>", h(&self.range()));
        let _ = writeln!(o, "<li><strong>{}</strong></li></ul>", h(&self.summary()));

        let _ = writeln!(
            o,
            "<h2>Identity tree</h2>\n<table><tr><th>Identity</th><th>Depth</th><th>Kind</th>\
             <th>Identity tokens</th><th>Authorization tokens</th><th>Delegatable</th><th>Permissions</th></tr>"
        );
        for row in &self.identities {
            let kind = match &row.role {
                Some(role) => format!("{} ({role})", row.kind),
                None => row.kind.clone(),
            };
            let delegatable = match (row.delegatable, row.max_delegation_depth) {
                (true, Some(depth)) => format!("yes, depth {depth}"),
                (true, None) => "yes".to_string(),
                (false, _) => "no".to_string(),
            };
            let violations: String = row
                .violations
                .iter()
                .map(|v| format!("<div class=\"err\">{}</div>", h(v)))
                .collect();
            let _ = writeln!(
                o,
                "<tr><td style=\"padding-left:{}em\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{violations}</td></tr>",
                0.5 + 1.5 * row.depth as f64,
                h(&row.identity),
                row.depth,
                h(&kind),
                h(&lifetime(row.identity_token_lifetime)),
                h(&lifetime(row.authorization_token_lifetime)),
                delegatable,
                h(&row.permissions)
            );
        }
        let _ = writeln!(o, "</table>");

        let _ = writeln!(o, "<h2>Who may do what</h2>");
        if self.matrix.rows.is_empty() {
            let _ = writeln!(o, "<p>Nobody may do anything.</p>");
        } else {
            let _ = write!(o, "<table><tr><th>Who</th>");
            for resource in &self.matrix.resources {
                let _ = write!(o, "<th><code>{}</code></th>", h(resource));
            }
            let _ = writeln!(o, "</tr>");
            for row in &self.matrix.rows {
                let _ = write!(o, "<tr><td><code>{}</code></td>", h(&row.who));
                for operations in &row.operations {
                    let _ = write!(o, "<td>{}</td>", h(&operations.join(", ")));
                }
                let _ = writeln!(o, "</tr>");
            }
            let _ = writeln!(o, "</table>");
        }

        let _ = writeln!(o, "<h2>Changes {}</h2>", h(&self.range()));
        if let Some(uncommitted) = &self.uncommitted {
            let _ = writeln!(
                o,
                "<h3 class=\"commit\">Not committed (the working file against HEAD)</h3>"
            );
            html_changes(o, &uncommitted.changes);
        }
        match &self.history {
            None => {
                let _ = writeln!(
                    o,
                    "<p>The policy file is not in a git repository: no history.</p>"
                );
            }
            Some(history) if history.commits.is_empty() => {
                let _ = writeln!(o, "<p>No commit changed the policy or its revocations.</p>");
            }
            Some(history) => {
                if history.truncated {
                    let _ = writeln!(
                        o,
                        "<p>Only the newest {} commits are listed.</p>",
                        history.commits.len()
                    );
                }
                for commit in &history.commits {
                    let widening = commit.widening().count();
                    let _ = writeln!(
                        o,
                        "<h3 class=\"commit\"><code>{}</code> {}</h3><p class=\"meta\">{} &lt;{}&gt;, {}{}</p>",
                        h(&short(&commit.commit.id)),
                        h(first_line(&commit.commit.message)),
                        h(&commit.commit.author),
                        h(&commit.commit.email),
                        h(&format_unix(commit.commit.time)),
                        if widening > 0 {
                            format!(" — <span class=\"widens\">{widening} widening</span>")
                        } else {
                            String::new()
                        }
                    );
                    if let Some(error) = &commit.error {
                        let _ = writeln!(
                            o,
                            "<p class=\"err\">Not readable: {} — review its text diff by hand.</p>",
                            h(error)
                        );
                    }
                    html_changes(o, &commit.changes);
                }
            }
        }

        let _ = writeln!(o, "<h2>Revocations</h2>");
        if self.revocations.is_empty() {
            let _ = writeln!(o, "<p>No token is revoked.</p>");
        } else {
            let _ = writeln!(
                o,
                "<table><tr><th>Revocation id</th><th>Reason</th><th>By</th><th>At</th></tr>"
            );
            for revoked in &self.revocations {
                let _ = writeln!(
                    o,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    h(&revoked.id),
                    h(&revoked.reason),
                    h(revoked.by.as_deref().unwrap_or("—")),
                    h(&key_time(revoked.at))
                );
            }
            let _ = writeln!(o, "</table>");
        }

        let _ = writeln!(o, "<h2>Root keys</h2>");
        match &self.keys {
            Keys::NotRead { why } => {
                let _ = writeln!(o, "<p>Not in this report: {}</p>", h(why));
            }
            Keys::Read { manifest, keys } => {
                let _ = writeln!(
                    o,
                    "<p class=\"meta\">From {}</p><table><tr><th>Id</th><th>State</th><th>Public key</th><th>Activated</th><th>Verifies until</th></tr>",
                    h(manifest)
                );
                for key in keys {
                    let _ = writeln!(
                        o,
                        "<tr><td>{}</td><td>{}{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        key.id,
                        key.state.name(),
                        if key.forced { " (forced)" } else { "" },
                        h(&key.public_key),
                        h(&key_time(key.activated_at)),
                        h(&key_time(key.verify_until))
                    );
                }
                let _ = writeln!(o, "</table>");
            }
        }

        if let Some(unused) = &self.unused {
            let _ = writeln!(
                o,
                "<h2>Unused access in the last {}</h2><p class=\"meta\">From {} allowed request(s) in {}.</p>",
                h(&unused.window),
                unused.events,
                h(&unused.files.join(", "))
            );
            if unused.entries.is_empty() {
                let _ = writeln!(o, "<p>Everything granted was used.</p>");
            } else {
                let _ = writeln!(
                    o,
                    "<table><tr><th>Kind</th><th>What</th><th>Line</th><th>Last used</th></tr>"
                );
                for entry in &unused.entries {
                    let _ = writeln!(
                        o,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        h(entry.kind.label()),
                        h(&entry.what()),
                        entry.line,
                        h(&entry.last_used.map_or("never".to_string(), format_unix))
                    );
                }
                let _ = writeln!(o, "</table>");
            }
        }

        let _ = writeln!(o, "<h2>Validation</h2>");
        if self.findings.is_empty() {
            let _ = writeln!(o, "<p>No findings.</p>");
        } else {
            let _ = writeln!(o, "<ul>");
            for finding in &self.findings {
                let class = if finding.is_error() {
                    " class=\"err\""
                } else {
                    ""
                };
                let _ = writeln!(o, "<li{class}>{}</li>", h(&finding.to_string()));
            }
            let _ = writeln!(o, "</ul>");
        }
        let _ = writeln!(o, "</body></html>");
        out
    }
}

fn html_changes(o: &mut String, changes: &[ReviewedChange]) {
    if changes.is_empty() {
        let _ = writeln!(o, "<p>No semantic change.</p>");
        return;
    }
    let _ = writeln!(o, "<ul>");
    for change in changes {
        let class = if change.change.widens {
            "widens"
        } else {
            "narrows"
        };
        let _ = write!(o, "<li><span class=\"{class}\">{}</span>", h(&change.text));
        for row in &change.replay {
            let _ = write!(
                o,
                "<div class=\"replay\">{}: {} → {} <span class=\"meta\">({})</span></div>",
                h(&row.request.to_string()),
                verdict(row.before.allowed),
                verdict(row.after.allowed),
                h(&row.after.reason)
            );
        }
        let _ = writeln!(o, "</li>");
    }
    let _ = writeln!(o, "</ul>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_cannot_restructure_the_report() {
        assert_eq!(md("a|b\n# c <x>"), "a\\|b \\# c \\<x\\>");
        assert_eq!(md_code("x`|y"), "`x'\\|y`");
    }

    #[test]
    fn html_text_is_escaped() {
        assert_eq!(
            h("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
