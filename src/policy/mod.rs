//! `clients.toml`: a lossless `toml_edit` document plus a typed, read-only view, validation with
//! line:column, the delegation tree, effective permissions, semantic diff and decision replay.
//! Reads and writes only the text it is given.

mod decide;
mod diff;
mod document;
pub mod duration;
mod findings;
pub mod generate;
mod history;
mod model;
pub mod rebase;
pub mod revocations;
mod tree;
mod usage;
mod validate;
mod witness;

use std::collections::HashMap;

pub use decide::{Decision, Permissions, Request, Resolution, decide, permissions, resolve};
pub use diff::{Change, ChangeKind, PolicyDiff, ReplayRow, diff, replay, revocation_changes};
pub use document::{Edit, EditError, PolicyDocument, Setting};
pub use findings::{Finding, LineIndex, Location, Severity};
pub use history::EditSession;
pub use model::{
    Assignment, CaChain, ChainNode, Client, DEFAULT_AUTHZ_TOKEN_DURATION,
    DEFAULT_IDENTITY_TOKEN_DURATION, DEFAULT_MAX_DELEGATION_DEPTH, Domain, Policy, Resource, Role,
    SignerEntry,
};
pub use revocations::{NewRevocation, RevocationList, Revoked};
pub use tree::{DelegationTree, NodeKind, TreeNode};
pub use usage::{
    Blocked, Granted, Proof, Proposal, ProposalItem, TightenError, Unused, UnusedKind, Usage,
    tighten, unused,
};
pub use witness::{WITNESS_LIMIT, change_replay, witnesses};

/// A policy read from text: the editable document, the typed view, and every finding.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    pub document: PolicyDocument,
    pub policy: Policy,
    pub findings: Vec<Finding>,
}

impl LoadedPolicy {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.is_error())
    }
}

/// Parses and validates policy text. A syntax error is the one failure that yields no policy.
pub fn load(text: &str, now: i64) -> Result<LoadedPolicy, Finding> {
    let lines = LineIndex::new(text);
    let parsed = toml_edit::Document::parse(text.to_string()).map_err(|e| {
        let location = e.span().map(|s| lines.locate(s.start));
        Finding::error("syntax", location, e.message().trim().to_string())
    })?;
    let mut reader = model::Reader::new(&lines);
    let policy = reader.read(parsed.as_table());
    let mut findings = reader.findings;
    findings.extend(validate::validate(&policy, now));
    findings.sort_by_key(|f| (f.location, f.severity));
    Ok(LoadedPolicy {
        document: PolicyDocument::from_parsed(&parsed),
        policy,
        findings,
    })
}

impl Policy {
    /// Identity → index into `clients` (the first entry wins for duplicates).
    pub fn identity_index(&self) -> HashMap<&str, usize> {
        let mut index = HashMap::with_capacity(self.clients.len());
        for (i, client) in self.clients.iter().enumerate() {
            index.entry(client.identity.as_str()).or_insert(i);
        }
        index
    }

    pub fn client(&self, identity: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.identity == identity)
    }

    /// The nearest configured strict ancestor of `identity` in the `:` hierarchy.
    pub fn configured_parent<'p>(
        &'p self,
        identity: &str,
        index: &HashMap<&str, usize>,
    ) -> Option<&'p Client> {
        let mut current = identity;
        while let Some((parent, _)) = current.rsplit_once(':') {
            if let Some(&i) = index.get(parent) {
                return Some(&self.clients[i]);
            }
            current = parent;
        }
        None
    }

    /// The realms (clients with a domain).
    pub fn realms(&self) -> impl Iterator<Item = &Client> {
        self.clients.iter().filter(|c| c.domain.is_some())
    }
}
