//! Unused access, from evidence: which grants, role permissions, role assignments and identities
//! the audit trail never saw exercised in a window, each with its last use if the trail has one
//! (AWS IAM Access Analyzer's unused-access findings, from our own decisions). Works on what the
//! trail recorded as allowed; knows nothing of files or HTTP.

use std::collections::HashMap;

use serde::Serialize;

use super::decide::{Decision, Request, Resolution, Resolver, decide};
use super::document::{Edit, EditError, PolicyDocument};
use super::findings::Finding;
use super::model::Policy;

/// What the trail saw used: the latest time of each allowed (caller, resource, operation) and of
/// each caller's allowed requests of any kind. Its size is bounded by what the policy grants
/// (only allowed requests count), not by the trail's length.
#[derive(Debug, Default, Clone)]
pub struct Usage {
    requests: HashMap<(String, String, String), i64>,
    callers: HashMap<String, i64>,
    /// Allowed events read, and the earliest and latest times among them.
    pub events: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

impl Usage {
    /// One allowed request: by `caller`, for `resource`/`operation` when it asked for an
    /// authorization token (None for identity tokens, mints, refreshes, operator reads).
    pub fn record(
        &mut self,
        caller: &str,
        resource: Option<&str>,
        operation: Option<&str>,
        time: i64,
    ) {
        self.events += 1;
        self.first = Some(self.first.map_or(time, |f| f.min(time)));
        self.last = Some(self.last.map_or(time, |l| l.max(time)));
        latest(&mut self.callers, caller, time);
        if let (Some(resource), Some(operation)) = (resource, operation) {
            let key = (
                caller.to_string(),
                resource.to_string(),
                operation.to_string(),
            );
            let at = self.requests.entry(key).or_insert(time);
            *at = (*at).max(time);
        }
    }
}

impl Usage {
    /// Adds what another reader saw (the same trail read in parts).
    pub fn merge(&mut self, other: Usage) {
        self.events += other.events;
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, other.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for (caller, time) in other.callers {
            let at = self.callers.entry(caller).or_insert(time);
            *at = (*at).max(time);
        }
        for (key, time) in other.requests {
            let at = self.requests.entry(key).or_insert(time);
            *at = (*at).max(time);
        }
    }
}

fn latest(map: &mut HashMap<String, i64>, key: &str, time: i64) {
    match map.get_mut(key) {
        Some(at) => *at = (*at).max(time),
        None => {
            map.insert(key.to_string(), time);
        }
    }
}

/// What kind of access went unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnusedKind {
    /// A client's own grant of an operation on a resource.
    Grant,
    /// An operation on a resource in a realm's role.
    RolePermission,
    /// A subject's assignment to a role.
    RoleAssignment,
    /// A configured client that made no allowed request.
    Identity,
}

impl UnusedKind {
    pub fn label(self) -> &'static str {
        match self {
            UnusedKind::Grant => "grant",
            UnusedKind::RolePermission => "role permission",
            UnusedKind::RoleAssignment => "role assignment",
            UnusedKind::Identity => "identity",
        }
    }
}

/// One piece of access not exercised in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unused {
    pub kind: UnusedKind,
    /// The client, the realm (for a role permission) or the assigned subject.
    pub identity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The role (role permissions and assignments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The realm an assignment is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// The last use the trail records (before the window), if any.
    pub last_used: Option<i64>,
    /// Line in clients.toml.
    pub line: usize,
}

impl Unused {
    /// What went unused, where, and when it was last used: `grant  alice write on api (line 12,
    /// never used)`.
    pub fn describe(&self, now: i64) -> String {
        format!(
            "{:<16} {}  (line {}, {})",
            self.kind.label(),
            self.what(),
            self.line,
            self.last_use(now)
        )
    }

    /// The access itself: `alice write on api`, `role admin of realm: delete on api`, `bob as
    /// admin in realm`, or the identity.
    pub fn what(&self) -> String {
        let (resource, operation) = (
            self.resource.as_deref().unwrap_or(""),
            self.operation.as_deref().unwrap_or(""),
        );
        match self.kind {
            UnusedKind::Grant => format!("{} {operation} on {resource}", self.identity),
            UnusedKind::RolePermission => format!(
                "role {} of {}: {operation} on {resource}",
                self.role.as_deref().unwrap_or(""),
                self.identity
            ),
            UnusedKind::RoleAssignment => format!(
                "{} as {} in {}",
                self.identity,
                self.role.as_deref().unwrap_or(""),
                self.realm.as_deref().unwrap_or("")
            ),
            UnusedKind::Identity => self.identity.clone(),
        }
    }

    /// `never used`, or `last used 12 days ago`.
    pub fn last_use(&self, now: i64) -> String {
        self.last_used.map_or("never used".to_string(), |at| {
            format!(
                "last used {}",
                crate::token::clock::describe_instant(at, now)
            )
        })
    }
}

/// How much access the policy grants, by kind (for "N of M unused").
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Granted {
    pub grants: usize,
    pub role_permissions: usize,
    pub role_assignments: usize,
    pub identities: usize,
}

/// The access `policy` grants that `usage` does not show exercised at or after `since`, in the
/// file's order (clients, then each realm's roles and assignments), and how much there is.
pub fn unused(policy: &Policy, usage: &Usage, since: i64) -> (Vec<Unused>, Granted) {
    let resolver = Resolver::new(policy);
    // Role permissions and assignments used: resolve each caller seen once.
    let mut role_uses: HashMap<(&str, &str, &str, &str), i64> = HashMap::new();
    let mut assignment_uses: HashMap<(&str, &str), i64> = HashMap::new();
    let mut roles_of: HashMap<&str, (&str, &str, bool)> = HashMap::new();
    for (caller, &time) in &usage.callers {
        if let Resolution::DomainSubject {
            realm,
            role,
            explicit,
        } = resolver.resolve(caller)
        {
            roles_of.insert(caller, (&realm.identity, &role.name, explicit));
            if explicit {
                let at = assignment_uses
                    .entry((&realm.identity, caller))
                    .or_insert(time);
                *at = (*at).max(time);
            }
        }
    }
    for ((caller, resource, operation), &time) in &usage.requests {
        if let Some(&(realm, role, _)) = roles_of.get(caller.as_str()) {
            let at = role_uses
                .entry((realm, role, resource, operation))
                .or_insert(time);
            *at = (*at).max(time);
        }
    }

    let unused_at = |last: Option<i64>| last.is_none_or(|t| t < since);
    let mut out = Vec::new();
    let mut granted = Granted::default();
    for client in &policy.clients {
        granted.identities += 1;
        let last = usage.callers.get(&client.identity).copied();
        if unused_at(last) {
            out.push(Unused {
                kind: UnusedKind::Identity,
                identity: client.identity.clone(),
                resource: None,
                operation: None,
                role: None,
                realm: None,
                last_used: last,
                line: client.at.line,
            });
        }
        for resource in &client.resources {
            for operation in &resource.operations {
                granted.grants += 1;
                let key = (
                    client.identity.clone(),
                    resource.name.clone(),
                    operation.clone(),
                );
                let last = usage.requests.get(&key).copied();
                if unused_at(last) {
                    out.push(Unused {
                        kind: UnusedKind::Grant,
                        identity: client.identity.clone(),
                        resource: Some(resource.name.clone()),
                        operation: Some(operation.clone()),
                        role: None,
                        realm: None,
                        last_used: last,
                        line: resource.at.line,
                    });
                }
            }
        }
    }
    for realm in &policy.clients {
        let Some(domain) = &realm.domain else {
            continue;
        };
        for role in domain.default_role.iter().chain(&domain.roles) {
            for resource in &role.resources {
                for operation in &resource.operations {
                    granted.role_permissions += 1;
                    let key = (
                        realm.identity.as_str(),
                        role.name.as_str(),
                        resource.name.as_str(),
                        operation.as_str(),
                    );
                    let last = role_uses.get(&key).copied();
                    if unused_at(last) {
                        out.push(Unused {
                            kind: UnusedKind::RolePermission,
                            identity: realm.identity.clone(),
                            resource: Some(resource.name.clone()),
                            operation: Some(operation.clone()),
                            role: Some(role.name.clone()),
                            realm: None,
                            last_used: last,
                            line: resource.at.line,
                        });
                    }
                }
            }
        }
        for assignment in &domain.role_assignments {
            granted.role_assignments += 1;
            let last = assignment_uses
                .get(&(realm.identity.as_str(), assignment.subject.as_str()))
                .copied();
            if unused_at(last) {
                out.push(Unused {
                    kind: UnusedKind::RoleAssignment,
                    identity: assignment.subject.clone(),
                    resource: None,
                    operation: None,
                    role: Some(assignment.role.clone()),
                    realm: Some(realm.identity.clone()),
                    last_used: last,
                    line: assignment.at.line,
                });
            }
        }
    }
    (out, granted)
}

/// One edit of a tightening proposal and the unused access it removes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposalItem {
    pub unused: Unused,
    pub edit: Edit,
}

impl ProposalItem {
    /// The edit in words: `revoke write on api from alice`.
    pub fn describe_edit(&self) -> String {
        match &self.edit {
            Edit::Revoke {
                identity,
                resource,
                operation,
            } => format!("revoke {operation} on {resource} from {identity}"),
            Edit::RoleRevoke {
                realm,
                role,
                resource,
                operation,
            } => format!("revoke {operation} on {resource} from role {role} of {realm}"),
            Edit::Unassign { realm, subject } => format!("unassign {subject} in {realm}"),
            Edit::RemoveClient { identity } => format!("remove client {identity}"),
            other => format!("{other:?}"),
        }
    }
}

/// An item left out of the proposal: applying it would deny a request the trail saw allowed
/// in the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocked {
    pub item: ProposalItem,
    pub request: Request,
    /// The decision the request would get with the item applied.
    pub would_be: Decision,
}

/// The proof that the proposal keeps every request seen: each distinct allowed request of the
/// window decided under the current and the proposed policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Proof {
    /// Distinct (identity, resource, operation) requests allowed in the window, replayed.
    pub replayed: usize,
    /// Identities seen using identity-level endpoints in the window, checked still served.
    pub identities: usize,
    /// Replayed requests the proposal denies (0 for a proposal that is returned).
    pub changed: usize,
    /// Requests the trail saw allowed that the current policy already denies (it changed
    /// since): not the proposal's doing, listed for the reader.
    pub already_denied: Vec<Request>,
}

/// A tightening: the edits that remove unused access, what was left out and why, and the proof.
/// It is decided on the typed policy (fast at any size); [`Proposal::write`] turns it into text.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub items: Vec<ProposalItem>,
    pub blocked: Vec<Blocked>,
    /// Unused identities not proposed for removal, and why.
    pub kept: Vec<(Unused, String)>,
    pub proof: Proof,
    /// Validation errors of the proposed policy (a proposal with any is not applied).
    pub findings: Vec<Finding>,
    /// The requests the proof replayed, to replay again against the text written.
    #[serde(skip)]
    requests: Vec<Request>,
}

impl Proposal {
    /// The proposal written into the document losslessly (comments and layout kept), read back
    /// and proved again: every request replayed stays allowed under the text itself, and the
    /// text validates. Slower than deciding the proposal: each edit goes through the editor.
    pub fn write(&self, document: &PolicyDocument, now: i64) -> Result<String, TightenError> {
        let mut proposed = document.clone();
        // Edits inside one client's table first (each re-reads only that table); removals,
        // which edit the whole document, last.
        let (removals, inside): (Vec<&ProposalItem>, Vec<&ProposalItem>) = self
            .items
            .iter()
            .partition(|item| matches!(item.edit, Edit::RemoveClient { .. }));
        for item in inside.into_iter().chain(removals) {
            proposed
                .apply(&item.edit)
                .map_err(|error| TightenError::Edit {
                    edit: Box::new(item.edit.clone()),
                    error,
                })?;
        }
        let text = proposed.text().to_string();
        let loaded = super::load(&text, now).map_err(|f| TightenError::Parse(f.message))?;
        if let Some(error) = loaded.findings.iter().find(|f| f.is_error()) {
            return Err(TightenError::Written(format!(
                "the written policy does not validate: {}",
                error.message
            )));
        }
        if let Some(request) = self
            .requests
            .iter()
            .find(|request| !decide(&loaded.policy, request).allowed)
        {
            return Err(TightenError::Written(format!(
                "the written policy denies {request}, which the proof kept allowed"
            )));
        }
        Ok(text)
    }
}

/// Why a tightening could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TightenError {
    #[error("the edit {edit:?} failed: {error}")]
    Edit { edit: Box<Edit>, error: EditError },
    #[error("the proposed policy does not parse: {0}")]
    Parse(String),
    #[error("{0}; nothing written")]
    Written(String),
}

/// Proposes edits removing the access `usage` shows unused since `since`, proved by replay:
/// every request allowed in the window (and still allowed by the current policy) stays allowed
/// under the proposal. An item whose edit would deny one is left out and named with it. An
/// unused client is proposed for removal only when nothing hangs under it (no configured
/// descendants, not a realm); otherwise its grants are.
pub fn tighten(policy: &Policy, usage: &Usage, since: i64, now: i64) -> Proposal {
    let (unused_access, _) = unused(policy, usage, since);
    // Unused clients that are not realms, less any with a configured descendant that stays,
    // until none is left out: a subtree unused as a whole goes as a whole.
    let mut removed: std::collections::HashSet<&str> = unused_access
        .iter()
        .filter(|u| u.kind == UnusedKind::Identity)
        .filter(|u| {
            policy
                .client(&u.identity)
                .is_some_and(|c| c.domain.is_none() && !c.operator)
        })
        .map(|u| u.identity.as_str())
        .collect();
    loop {
        let staying = |identity: &str| {
            let prefix = format!("{identity}:");
            policy
                .clients
                .iter()
                .find(|c| c.identity.starts_with(&prefix) && !removed.contains(c.identity.as_str()))
                .map(|c| c.identity.clone())
        };
        let blocked: Vec<&str> = removed
            .iter()
            .copied()
            .filter(|identity| staying(identity).is_some())
            .collect();
        if blocked.is_empty() {
            break;
        }
        for identity in blocked {
            removed.remove(identity);
        }
    }
    let mut kept = Vec::new();
    for entry in unused_access
        .iter()
        .filter(|u| u.kind == UnusedKind::Identity)
    {
        if removed.contains(entry.identity.as_str()) {
            continue;
        }
        let why = match policy.client(&entry.identity) {
            Some(client) if client.domain.is_some() => {
                "a realm: removing it removes its roles and its subjects' access".to_string()
            }
            // Reading status and the audit feed is not in the trail as use: removing the
            // operator would lock the console and the operators out of the server.
            Some(client) if client.operator => {
                "an operator: reading status and the audit feed is not recorded as use, and removing it locks operators out".to_string()
            }
            _ => {
                let prefix = format!("{}:", entry.identity);
                policy
                    .clients
                    .iter()
                    .find(|c| {
                        c.identity.starts_with(&prefix) && !removed.contains(c.identity.as_str())
                    })
                    .map_or("kept".to_string(), |c| {
                        format!("{} is configured under it and stays", c.identity)
                    })
            }
        };
        kept.push((entry.clone(), why));
    }
    let needed = needed_by_children(policy, &unused_access, &removed);
    let mut candidates: Vec<ProposalItem> = Vec::new();
    for entry in &unused_access {
        if entry.kind == UnusedKind::Grant
            && let Some(child) = needed.get(&(
                entry.identity.as_str(),
                entry.resource.as_deref().unwrap_or_default(),
                entry.operation.as_deref().unwrap_or_default(),
            ))
        {
            kept.push((
                entry.clone(),
                format!(
                    "{child} under it keeps it, and a delegated identity cannot exceed its parent"
                ),
            ));
            continue;
        }
        let edit = match entry.kind {
            UnusedKind::Identity if removed.contains(entry.identity.as_str()) => {
                Edit::RemoveClient {
                    identity: entry.identity.clone(),
                }
            }
            UnusedKind::Identity => continue,
            UnusedKind::Grant if removed.contains(entry.identity.as_str()) => continue,
            UnusedKind::Grant => Edit::Revoke {
                identity: entry.identity.clone(),
                resource: entry.resource.clone().unwrap_or_default(),
                operation: entry.operation.clone().unwrap_or_default(),
            },
            UnusedKind::RolePermission => Edit::RoleRevoke {
                realm: entry.identity.clone(),
                role: entry.role.clone().unwrap_or_default(),
                resource: entry.resource.clone().unwrap_or_default(),
                operation: entry.operation.clone().unwrap_or_default(),
            },
            UnusedKind::RoleAssignment => Edit::Unassign {
                realm: entry.realm.clone().unwrap_or_default(),
                subject: entry.identity.clone(),
            },
        };
        candidates.push(ProposalItem {
            unused: entry.clone(),
            edit,
        });
    }

    // The evidence: requests allowed in the window that the current policy allows too.
    let mut requests = Vec::new();
    let mut already_denied = Vec::new();
    for ((identity, resource, operation), &time) in &usage.requests {
        if time < since {
            continue;
        }
        let request = Request {
            identity: identity.clone(),
            resource: resource.clone(),
            operation: operation.clone(),
            domain: None,
        };
        if decide(policy, &request).allowed {
            requests.push(request);
        } else {
            already_denied.push(request);
        }
    }
    requests.sort_by(|a, b| {
        (&a.identity, &a.resource, &a.operation).cmp(&(&b.identity, &b.resource, &b.operation))
    });
    already_denied.sort_by(|a, b| a.identity.cmp(&b.identity));
    let resolver = Resolver::new(policy);
    let mut identities: Vec<&str> = usage
        .callers
        .iter()
        .filter(|(caller, time)| {
            **time >= since && !matches!(resolver.resolve(caller), Resolution::Unconfigured { .. })
        })
        .map(|(caller, _)| caller.as_str())
        .collect();
    identities.sort_unstable();

    let settled = settle(policy, candidates, &requests, &identities, now);
    Proposal {
        items: settled.items,
        blocked: settled.blocked,
        kept,
        proof: Proof {
            replayed: requests.len(),
            identities: identities.len(),
            changed: 0,
            already_denied,
        },
        findings: settled.findings,
        requests,
    }
}

/// Unused grants that must stay because a configured descendant that stays still holds them
/// (a delegated identity may not exceed its parent), each with that descendant. Worked from the
/// deepest identities up, so a child's own unused grants are revoked first and do not hold its
/// parent's.
fn needed_by_children<'p>(
    policy: &'p Policy,
    unused_access: &'p [Unused],
    removed: &std::collections::HashSet<&str>,
) -> HashMap<(&'p str, &'p str, &'p str), &'p str> {
    use std::collections::HashSet;
    let unused_grants: HashSet<(&str, &str, &str)> = unused_access
        .iter()
        .filter(|u| u.kind == UnusedKind::Grant)
        .map(|u| {
            (
                u.identity.as_str(),
                u.resource.as_deref().unwrap_or_default(),
                u.operation.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    let index = policy.identity_index();
    let mut order: Vec<&super::model::Client> = policy
        .clients
        .iter()
        .filter(|c| !removed.contains(c.identity.as_str()))
        .collect();
    order.sort_by_key(|c| std::cmp::Reverse(c.identity.matches(':').count()));
    // What the children that stay hold, per parent, with one child holding each.
    let mut held: HashMap<&str, HashMap<(&str, &str), &str>> = HashMap::new();
    let mut needed = HashMap::new();
    for client in order {
        let by_children = held.remove(client.identity.as_str()).unwrap_or_default();
        let mut keeps: Vec<(&str, &str)> = Vec::new();
        for resource in &client.resources {
            for operation in &resource.operations {
                let pair = (resource.name.as_str(), operation.as_str());
                let unused = unused_grants.contains(&(client.identity.as_str(), pair.0, pair.1));
                match by_children.get(&pair) {
                    Some(child) if unused => {
                        needed.insert((client.identity.as_str(), pair.0, pair.1), *child);
                        keeps.push(pair);
                    }
                    _ if !unused => keeps.push(pair),
                    _ => {}
                }
            }
        }
        if let Some(parent) = policy.configured_parent(&client.identity, &index) {
            let entry = held.entry(parent.identity.as_str()).or_default();
            for pair in keeps {
                entry.entry(pair).or_insert(client.identity.as_str());
            }
        }
    }
    needed
}

struct Settled {
    items: Vec<ProposalItem>,
    blocked: Vec<Blocked>,
    findings: Vec<Finding>,
}

/// Applies the candidates, replays the requests (and checks the identities are still served),
/// and leaves out whatever item a denied request points to, until nothing is denied.
fn settle(
    policy: &Policy,
    mut candidates: Vec<ProposalItem>,
    requests: &[Request],
    identities: &[&str],
    now: i64,
) -> Settled {
    let mut blocked: Vec<Blocked> = Vec::new();
    loop {
        let proposed = apply_typed(policy, &candidates);
        let resolver = Resolver::new(&proposed);
        let mut denied: Vec<(Request, Decision)> = requests
            .iter()
            .filter_map(|request| {
                let decision = decide(&proposed, request);
                (!decision.allowed).then(|| (request.clone(), decision))
            })
            .collect();
        for identity in identities {
            if matches!(resolver.resolve(identity), Resolution::Unconfigured { .. }) {
                let request = Request {
                    identity: identity.to_string(),
                    resource: String::new(),
                    operation: String::new(),
                    domain: None,
                };
                let decision = decide(&proposed, &request);
                denied.push((request, decision));
            }
        }
        if denied.is_empty() {
            let findings = super::validate::validate(&proposed, now)
                .into_iter()
                .filter(Finding::is_error)
                .collect();
            return Settled {
                items: candidates,
                blocked,
                findings,
            };
        }
        let before = candidates.len();
        for (request, decision) in denied {
            let causes: Vec<usize> = candidates
                .iter()
                .enumerate()
                .filter(|(_, item)| touches(policy, &item.edit, &request.identity))
                .map(|(i, _)| i)
                .collect();
            for i in causes.into_iter().rev() {
                let item = candidates.remove(i);
                blocked.push(Blocked {
                    item,
                    request: request.clone(),
                    would_be: decision.clone(),
                });
            }
        }
        if candidates.len() == before {
            // A denial no item explains: propose nothing rather than something unproved.
            let request = requests.first().cloned();
            for item in candidates.drain(..) {
                blocked.push(Blocked {
                    item,
                    request: request.clone().unwrap_or(Request {
                        identity: String::new(),
                        resource: String::new(),
                        operation: String::new(),
                        domain: None,
                    }),
                    would_be: Decision {
                        allowed: false,
                        reason: "the proposal as a whole denies a request no single item explains"
                            .into(),
                    },
                });
            }
        }
    }
}

/// Whether an edit can change what `identity` may do: its own client entry, or the realm and
/// role it resolves to.
fn touches(policy: &Policy, edit: &Edit, identity: &str) -> bool {
    match edit {
        Edit::Revoke { identity: i, .. } | Edit::RemoveClient { identity: i } => i == identity,
        Edit::RoleRevoke { realm, role, .. } => matches!(
            super::decide::resolve(policy, identity),
            Resolution::DomainSubject { realm: r, role: ro, .. } if &r.identity == realm && &ro.name == role
        ),
        Edit::Unassign { subject, .. } => subject == identity,
        _ => false,
    }
}

/// The typed policy with every item applied: what the editor would write, decided without
/// writing it (`Proposal::write` checks the two agree).
fn apply_typed(policy: &Policy, items: &[ProposalItem]) -> Policy {
    let mut proposed = policy.clone();
    let index: HashMap<String, usize> = policy
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| (c.identity.clone(), i))
        .collect();
    let mut removed: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for item in items {
        match &item.edit {
            Edit::Revoke {
                identity,
                resource,
                operation,
            } => {
                if let Some(&i) = index.get(identity) {
                    revoke_in(&mut proposed.clients[i].resources, resource, operation);
                }
            }
            Edit::RoleRevoke {
                realm,
                role,
                resource,
                operation,
            } => {
                if let Some(domain) = index
                    .get(realm)
                    .and_then(|&i| proposed.clients[i].domain.as_mut())
                {
                    for entry in domain
                        .default_role
                        .iter_mut()
                        .chain(domain.roles.iter_mut())
                        .filter(|r| &r.name == role)
                    {
                        revoke_in(&mut entry.resources, resource, operation);
                    }
                }
            }
            Edit::Unassign { realm, subject } => {
                if let Some(domain) = index
                    .get(realm)
                    .and_then(|&i| proposed.clients[i].domain.as_mut())
                {
                    domain.role_assignments.retain(|a| &a.subject != subject);
                }
            }
            Edit::RemoveClient { identity } => {
                removed.insert(identity);
            }
            _ => {}
        }
    }
    proposed
        .clients
        .retain(|c| !removed.contains(c.identity.as_str()));
    proposed
}

fn revoke_in(resources: &mut Vec<super::model::Resource>, resource: &str, operation: &str) {
    for entry in resources.iter_mut().filter(|r| r.name == resource) {
        entry.operations.retain(|o| o != operation);
    }
    resources.retain(|r| r.name != resource || !r.operations.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load;

    const POLICY: &str = r#"
[[clients]]
identifier = { type = "san_uri", value = "uri:urn:a" }
resources = [{ name = "api", operations = ["read", "write"] }]

[[clients]]
identifier = { type = "san_uri", value = "uri:urn:idle" }
resources = [{ name = "api", operations = ["read"] }]

[[clients]]
identifier = { type = "san_uri", value = "uri:urn:realm" }
identity_token_enabled = true

[clients.domain.default_role]
name = "member"
resources = [{ name = "docs", operations = ["read"] }]

[[clients.domain.roles]]
name = "admin"
resources = [{ name = "docs", operations = ["read", "delete"] }]

[[clients.domain.role_assignments]]
subject = "uri:urn:realm:root"
role = "admin"

[[clients.domain.role_assignments]]
subject = "uri:urn:realm:gone"
role = "admin"
"#;

    /// A policy as JSON without its line numbers (edits move lines).
    fn without_locations(policy: &Policy) -> serde_json::Value {
        fn strip(value: &mut serde_json::Value) {
            match value {
                serde_json::Value::Object(map) => {
                    map.remove("at");
                    map.values_mut().for_each(strip);
                }
                serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
                _ => {}
            }
        }
        let mut value = serde_json::to_value(policy).unwrap();
        strip(&mut value);
        value
    }

    fn keys(unused: &[Unused]) -> Vec<String> {
        unused
            .iter()
            .map(|u| {
                format!(
                    "{} {} {} {} {}",
                    u.kind.label(),
                    u.identity,
                    u.role.as_deref().unwrap_or("-"),
                    u.resource.as_deref().unwrap_or("-"),
                    u.operation.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    #[test]
    fn a_tightening_removes_the_unused_access_and_keeps_every_request_seen() {
        let text = format!("# the team's policy\n{POLICY}");
        let loaded = load(&text, 0).unwrap();
        let mut usage = Usage::default();
        usage.record("uri:urn:a", Some("api"), Some("read"), 1_000);
        usage.record("uri:urn:realm", None, None, 1_000);
        usage.record("uri:urn:realm:root", Some("docs"), Some("delete"), 1_000);
        let proposal = tighten(&loaded.policy, &usage, 500, 0);
        let edits: Vec<String> = proposal
            .items
            .iter()
            .map(|i| format!("{:?}", i.edit))
            .collect();
        assert_eq!(
            edits,
            [
                r#"Revoke { identity: "uri:urn:a", resource: "api", operation: "write" }"#,
                r#"RemoveClient { identity: "uri:urn:idle" }"#,
                r#"RoleRevoke { realm: "uri:urn:realm", role: "member", resource: "docs", operation: "read" }"#,
                r#"RoleRevoke { realm: "uri:urn:realm", role: "admin", resource: "docs", operation: "read" }"#,
                r#"Unassign { realm: "uri:urn:realm", subject: "uri:urn:realm:gone" }"#,
            ]
        );
        assert!(proposal.blocked.is_empty());
        assert_eq!(proposal.proof.replayed, 2);
        assert_eq!(proposal.proof.identities, 3);
        assert!(proposal.findings.is_empty(), "{:?}", proposal.findings);
        let text = proposal.write(&loaded.document, 0).unwrap();
        assert!(text.starts_with("# the team's policy"), "comments kept");
        let tightened = load(&text, 0).unwrap().policy;
        assert_eq!(
            without_locations(&tightened),
            without_locations(&apply_typed(&loaded.policy, &proposal.items)),
            "the typed proposal is what the editor writes"
        );
        let allows = |identity: &str, resource: &str, operation: &str| {
            decide(
                &tightened,
                &Request {
                    identity: identity.into(),
                    resource: resource.into(),
                    operation: operation.into(),
                    domain: None,
                },
            )
            .allowed
        };
        assert!(allows("uri:urn:a", "api", "read"));
        assert!(allows("uri:urn:realm:root", "docs", "delete"));
        assert!(!allows("uri:urn:a", "api", "write"));
        assert!(!allows("uri:urn:realm:root", "docs", "read"));
    }

    /// An operator is never proposed for removal: its status and audit reads are not in the
    /// trail as use, and without it the console and operators are locked out.
    #[test]
    fn an_unused_operator_is_kept() {
        let text = r#"
[[clients]]
identifier = { type = "san_uri", value = "uri:urn:ops" }
resources = [{ name = "api", operations = ["read"] }]
operator = true
"#;
        let loaded = load(text, 0).unwrap();
        let proposal = tighten(&loaded.policy, &Usage::default(), 500, 0);
        assert!(
            !proposal
                .items
                .iter()
                .any(|i| matches!(i.edit, Edit::RemoveClient { .. })),
            "{:?}",
            proposal.items
        );
        assert!(
            proposal
                .kept
                .iter()
                .any(|(u, why)| u.identity == "uri:urn:ops" && why.starts_with("an operator")),
            "{:?}",
            proposal.kept
        );
    }

    /// A parent's unused grant that a child who stays still holds is kept (a delegated
    /// identity may not exceed its parent); the child's own unused grants go, and then do not
    /// hold the parent's.
    #[test]
    fn a_grant_a_child_still_holds_stays_with_the_parent() {
        let text = r#"
[[clients]]
identifier = { type = "san_uri", value = "uri:urn:p" }
resources = [{ name = "api", operations = ["read", "write"] }]
delegatable = true

[[clients]]
identifier = { type = "san_uri", value = "uri:urn:p:child" }
resources = [{ name = "api", operations = ["read", "write"] }]
"#;
        let loaded = load(text, 0).unwrap();
        assert!(
            !loaded.findings.iter().any(|f| f.is_error()),
            "{:?}",
            loaded.findings
        );
        let mut usage = Usage::default();
        usage.record("uri:urn:p:child", Some("api"), Some("read"), 1_000);
        let proposal = tighten(&loaded.policy, &usage, 500, 0);
        let edits: Vec<String> = proposal
            .items
            .iter()
            .map(|i| format!("{:?}", i.edit))
            .collect();
        assert_eq!(
            edits,
            [
                r#"Revoke { identity: "uri:urn:p", resource: "api", operation: "write" }"#,
                r#"Revoke { identity: "uri:urn:p:child", resource: "api", operation: "write" }"#,
            ]
        );
        assert!(
            proposal
                .kept
                .iter()
                .any(|(u, why)| u.kind == UnusedKind::Grant
                    && u.identity == "uri:urn:p"
                    && why.starts_with("uri:urn:p:child under it keeps it")),
            "{:?}",
            proposal.kept
        );
        assert!(proposal.findings.is_empty(), "{:?}", proposal.findings);
        proposal.write(&loaded.document, 0).unwrap();
    }

    /// The replay is what decides: an item that would deny a request seen is left out and
    /// named with the request, and the rest still goes ahead.
    #[test]
    fn an_item_that_would_deny_a_request_seen_is_blocked_by_it() {
        let loaded = load(POLICY, 0).unwrap();
        let revoke = |operation: &str| ProposalItem {
            unused: Unused {
                kind: UnusedKind::Grant,
                identity: "uri:urn:a".into(),
                resource: Some("api".into()),
                operation: Some(operation.into()),
                role: None,
                realm: None,
                last_used: None,
                line: 3,
            },
            edit: Edit::Revoke {
                identity: "uri:urn:a".into(),
                resource: "api".into(),
                operation: operation.into(),
            },
        };
        let seen = Request {
            identity: "uri:urn:a".into(),
            resource: "api".into(),
            operation: "read".into(),
            domain: None,
        };
        let settled = settle(
            &loaded.policy,
            vec![revoke("read")],
            std::slice::from_ref(&seen),
            &[],
            0,
        );
        assert!(settled.items.is_empty());
        assert_eq!(settled.blocked.len(), 1);
        assert_eq!(settled.blocked[0].request, seen);
        assert!(!settled.blocked[0].would_be.allowed);
    }

    /// The trail read in parts and merged is the trail read whole.
    #[test]
    fn usages_merge_to_the_whole() {
        let loaded = load(POLICY, 0).unwrap();
        let records = [
            ("uri:urn:a", Some("api"), Some("read"), 1_000),
            ("uri:urn:a", Some("api"), Some("write"), 10),
            ("uri:urn:a", Some("api"), Some("write"), 900),
            ("uri:urn:realm:root", Some("docs"), Some("delete"), 600),
        ];
        let mut whole = Usage::default();
        let (mut one, mut two) = (Usage::default(), Usage::default());
        for (i, (caller, resource, operation, time)) in records.into_iter().enumerate() {
            whole.record(caller, resource, operation, time);
            let part = if i % 2 == 0 { &mut one } else { &mut two };
            part.record(caller, resource, operation, time);
        }
        one.merge(two);
        assert_eq!(
            (one.events, one.first, one.last),
            (4, Some(10), Some(1_000))
        );
        assert_eq!(
            unused(&loaded.policy, &one, 500),
            unused(&loaded.policy, &whole, 500)
        );
    }

    #[test]
    fn what_was_not_used_in_the_window_is_listed_with_its_last_use() {
        let loaded = load(POLICY, 0).unwrap();
        assert!(
            loaded.findings.iter().all(|f| !f.is_error()),
            "{:?}",
            loaded.findings
        );
        let mut usage = Usage::default();
        usage.record("uri:urn:a", Some("api"), Some("read"), 1_000);
        usage.record("uri:urn:a", Some("api"), Some("write"), 10);
        usage.record("uri:urn:realm", None, None, 1_000);
        usage.record("uri:urn:realm:root", Some("docs"), Some("delete"), 1_000);
        usage.record("uri:urn:realm:someone", Some("docs"), Some("read"), 1_000);
        let (unused, granted) = unused(&loaded.policy, &usage, 500);
        assert_eq!(
            keys(&unused),
            [
                "grant uri:urn:a - api write",
                "identity uri:urn:idle - - -",
                "grant uri:urn:idle - api read",
                "role permission uri:urn:realm admin docs read",
                "role assignment uri:urn:realm:gone admin - -",
            ]
        );
        assert_eq!(unused[0].last_used, Some(10), "used before the window");
        assert_eq!(unused[1].last_used, None);
        assert_eq!(
            granted,
            Granted {
                grants: 3,
                role_permissions: 3,
                role_assignments: 2,
                identities: 3
            }
        );
    }
}
