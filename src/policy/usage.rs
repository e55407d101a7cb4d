//! Unused access, from evidence: which grants, role permissions, role assignments and identities
//! the audit trail never saw exercised in a window, each with its last use if the trail has one
//! (AWS IAM Access Analyzer's unused-access findings, from our own decisions). Works on what the
//! trail recorded as allowed; knows nothing of files or HTTP.

use std::collections::HashMap;

use serde::Serialize;

use super::decide::{Resolution, Resolver};
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

fn latest(map: &mut HashMap<String, i64>, key: &str, time: i64) {
    match map.get_mut(key) {
        Some(at) => *at = (*at).max(time),
        None => {
            map.insert(key.to_string(), time);
        }
    }
}

/// What kind of access went unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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
