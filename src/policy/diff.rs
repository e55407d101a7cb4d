//! Semantic diff between two policies — who gained or lost what — with every change that widens
//! what someone can do flagged; and decision replay of requests under both.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::decide::{Decision, Permissions, Request, decide};
use super::model::{
    Client, DEFAULT_AUTHZ_TOKEN_DURATION, DEFAULT_MAX_DELEGATION_DEPTH, Domain, Policy,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum ChangeKind {
    ClientAdded {
        permissions: String,
    },
    ClientRemoved,
    Granted {
        resource: String,
        operation: String,
    },
    Revoked {
        resource: String,
        operation: String,
    },
    Setting {
        name: String,
        old: String,
        new: String,
    },
    RoleAdded {
        role: String,
    },
    RoleRemoved {
        role: String,
    },
    RoleGranted {
        role: String,
        resource: String,
        operation: String,
    },
    RoleRevoked {
        role: String,
        resource: String,
        operation: String,
    },
    DefaultRole {
        old: Option<String>,
        new: Option<String>,
    },
    Assigned {
        subject: String,
        old: Option<String>,
        new: Option<String>,
    },
    CaChain,
}

/// One change, about one identity (or the realm that owns a role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub subject: String,
    #[serde(flatten)]
    pub kind: ChangeKind,
    /// True when someone can do something they could not before.
    pub widens: bool,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.widens { "+ WIDENS " } else { "- " };
        let who = &self.subject;
        let text = match &self.kind {
            ChangeKind::ClientAdded { permissions } => format!("{who} added ({permissions})"),
            ChangeKind::ClientRemoved => format!("{who} removed"),
            ChangeKind::Granted {
                resource,
                operation,
            } => format!("{who} may now {operation} on {resource}"),
            ChangeKind::Revoked {
                resource,
                operation,
            } => format!("{who} may no longer {operation} on {resource}"),
            ChangeKind::Setting { name, old, new } => format!("{who}: {name} {old} → {new}"),
            ChangeKind::RoleAdded { role } => format!("realm {who}: role {role} added"),
            ChangeKind::RoleRemoved { role } => format!("realm {who}: role {role} removed"),
            ChangeKind::RoleGranted {
                role,
                resource,
                operation,
            } => {
                format!("realm {who}: role {role} may now {operation} on {resource}")
            }
            ChangeKind::RoleRevoked {
                role,
                resource,
                operation,
            } => {
                format!("realm {who}: role {role} may no longer {operation} on {resource}")
            }
            ChangeKind::DefaultRole { old, new } => format!(
                "realm {who}: default role {} → {}",
                old.as_deref().unwrap_or("(none)"),
                new.as_deref().unwrap_or("(none)")
            ),
            ChangeKind::Assigned { subject, old, new } => format!(
                "realm {who}: {subject} role {} → {}",
                old.as_deref().unwrap_or("(default)"),
                new.as_deref().unwrap_or("(default)")
            ),
            ChangeKind::CaChain => {
                "the client CA chain changed (who can authenticate by certificate)".to_string()
            }
        };
        write!(f, "{mark}{text}")
    }
}

/// All changes from `old` to `new`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyDiff {
    pub changes: Vec<Change>,
}

impl PolicyDiff {
    pub fn widening(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.widens)
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Computes the semantic diff.
pub fn diff(old: &Policy, new: &Policy) -> PolicyDiff {
    let mut changes = Vec::new();
    if old.ca_chain.as_ref().map(|c| c.pem.trim()) != new.ca_chain.as_ref().map(|c| c.pem.trim()) {
        changes.push(Change {
            subject: "[cacerts]".into(),
            kind: ChangeKind::CaChain,
            widens: true,
        });
    }
    let old_index = old.identity_index();
    let new_index = new.identity_index();
    let identities: BTreeSet<&str> = old_index.keys().chain(new_index.keys()).copied().collect();
    for identity in identities {
        let before = old_index.get(identity).map(|&i| &old.clients[i]);
        let after = new_index.get(identity).map(|&i| &new.clients[i]);
        match (before, after) {
            (None, Some(client)) => changes.push(Change {
                subject: identity.to_string(),
                kind: ChangeKind::ClientAdded {
                    permissions: Permissions::from_resources(&client.resources).to_string(),
                },
                widens: true,
            }),
            (Some(_), None) => changes.push(Change {
                subject: identity.to_string(),
                kind: ChangeKind::ClientRemoved,
                widens: false,
            }),
            (Some(before), Some(after)) => client_changes(before, after, &mut changes),
            (None, None) => {}
        }
    }
    PolicyDiff { changes }
}

fn client_changes(before: &Client, after: &Client, changes: &mut Vec<Change>) {
    let who = &after.identity;
    permission_changes(
        &Permissions::from_resources(&before.resources),
        &Permissions::from_resources(&after.resources),
        |resource, operation, granted| Change {
            subject: who.clone(),
            kind: if granted {
                ChangeKind::Granted {
                    resource,
                    operation,
                }
            } else {
                ChangeKind::Revoked {
                    resource,
                    operation,
                }
            },
            widens: granted,
        },
        changes,
    );
    let seconds = |v: Option<u64>| v.map_or("off".to_string(), |s| format!("{s} s"));
    let mut setting = |name: &str, old: String, new: String, widens: bool| {
        if old != new {
            changes.push(Change {
                subject: who.clone(),
                kind: ChangeKind::Setting {
                    name: name.into(),
                    old,
                    new,
                },
                widens,
            });
        }
    };
    let (old_cap, new_cap) = (before.identity_token_cap(), after.identity_token_cap());
    setting(
        "identity tokens",
        seconds(old_cap),
        seconds(new_cap),
        new_cap.unwrap_or(0) > old_cap.unwrap_or(0),
    );
    let authz = |c: &Client| {
        c.authorization_token_duration
            .unwrap_or(DEFAULT_AUTHZ_TOKEN_DURATION)
    };
    setting(
        "authorization tokens",
        format!("{} s", authz(before)),
        format!("{} s", authz(after)),
        authz(after) > authz(before),
    );
    setting(
        "delegatable",
        before.delegatable.to_string(),
        after.delegatable.to_string(),
        after.delegatable && !before.delegatable,
    );
    setting(
        "operator",
        before.operator.to_string(),
        after.operator.to_string(),
        after.operator && !before.operator,
    );
    let depth = |c: &Client| {
        c.max_delegation_depth
            .unwrap_or(DEFAULT_MAX_DELEGATION_DEPTH)
    };
    setting(
        "max delegation depth",
        depth(before).to_string(),
        depth(after).to_string(),
        depth(after) > depth(before),
    );
    for resource in &after.resources {
        let old = before.resource(&resource.name);
        let chain = |r: Option<&super::Resource>| {
            r.map(|r| {
                r.service_chain
                    .iter()
                    .map(|n| n.component.clone())
                    .collect::<Vec<_>>()
                    .join(" → ")
            })
            .unwrap_or_default()
        };
        let signers = |r: Option<&super::Resource>| {
            r.map(|r| {
                r.signers
                    .iter()
                    .map(|s| s.component.clone())
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default()
        };
        let (old_chain, new_chain) = (chain(old), chain(Some(resource)));
        if old.is_some() && old_chain != new_chain {
            let widens = new_chain.len() < old_chain.len();
            setting(
                &format!("service chain of {}", resource.name),
                old_chain,
                new_chain,
                widens,
            );
        }
        let (old_signers, new_signers) = (signers(old), signers(Some(resource)));
        if old.is_some() && old_signers != new_signers {
            let widens = !old_signers.is_subset(&new_signers);
            let show = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
            setting(
                &format!("signers of {}", resource.name),
                show(&old_signers),
                show(&new_signers),
                widens,
            );
        }
    }
    match (&before.domain, &after.domain) {
        (Some(old), Some(new)) => realm_changes(who, old, new, changes),
        (None, Some(new)) => {
            changes.push(Change {
                subject: who.clone(),
                kind: ChangeKind::Setting {
                    name: "realm".into(),
                    old: "no".into(),
                    new: "yes".into(),
                },
                widens: true,
            });
            realm_changes(who, &empty_domain(new), new, changes);
        }
        (Some(_), None) => changes.push(Change {
            subject: who.clone(),
            kind: ChangeKind::Setting {
                name: "realm".into(),
                old: "yes".into(),
                new: "no".into(),
            },
            widens: false,
        }),
        (None, None) => {}
    }
}

fn empty_domain(like: &Domain) -> Domain {
    Domain {
        default_role: None,
        roles: Vec::new(),
        role_assignments: Vec::new(),
        at: like.at,
    }
}

fn permission_changes(
    old: &Permissions,
    new: &Permissions,
    make: impl Fn(String, String, bool) -> Change,
    changes: &mut Vec<Change>,
) {
    for (resource, operation) in new.pairs().filter(|(r, o)| !old.allows(r, o)) {
        changes.push(make(resource.to_string(), operation.to_string(), true));
    }
    for (resource, operation) in old.pairs().filter(|(r, o)| !new.allows(r, o)) {
        changes.push(make(resource.to_string(), operation.to_string(), false));
    }
}

fn role_permissions(domain: &Domain, role: Option<&str>) -> Permissions {
    role.and_then(|name| domain.role(name))
        .map(|r| Permissions::from_resources(&r.resources))
        .unwrap_or_default()
}

fn realm_changes(realm: &str, old: &Domain, new: &Domain, changes: &mut Vec<Change>) {
    let names = |d: &Domain| {
        d.default_role
            .iter()
            .chain(d.roles.iter())
            .map(|r| r.name.clone())
            .collect::<BTreeSet<_>>()
    };
    let (old_names, new_names) = (names(old), names(new));
    for role in new_names.difference(&old_names) {
        changes.push(Change {
            subject: realm.into(),
            kind: ChangeKind::RoleAdded { role: role.clone() },
            widens: false,
        });
    }
    for role in old_names.difference(&new_names) {
        changes.push(Change {
            subject: realm.into(),
            kind: ChangeKind::RoleRemoved { role: role.clone() },
            widens: false,
        });
    }
    for role in old_names.intersection(&new_names) {
        permission_changes(
            &role_permissions(old, Some(role)),
            &role_permissions(new, Some(role)),
            |resource, operation, granted| Change {
                subject: realm.into(),
                kind: if granted {
                    ChangeKind::RoleGranted {
                        role: role.clone(),
                        resource,
                        operation,
                    }
                } else {
                    ChangeKind::RoleRevoked {
                        role: role.clone(),
                        resource,
                        operation,
                    }
                },
                widens: granted,
            },
            changes,
        );
    }
    let default_name = |d: &Domain| d.default_role.as_ref().map(|r| r.name.clone());
    let (old_default, new_default) = (default_name(old), default_name(new));
    if old_default != new_default {
        let widens = !role_permissions(new, new_default.as_deref())
            .is_subset(&role_permissions(old, old_default.as_deref()));
        changes.push(Change {
            subject: realm.into(),
            kind: ChangeKind::DefaultRole {
                old: old_default.clone(),
                new: new_default.clone(),
            },
            widens,
        });
    }
    let subjects: BTreeSet<&str> = old
        .role_assignments
        .iter()
        .chain(new.role_assignments.iter())
        .map(|a| a.subject.as_str())
        .collect();
    for subject in subjects {
        let old_role = old.assignment(subject).map(|a| a.role.clone());
        let new_role = new.assignment(subject).map(|a| a.role.clone());
        if old_role == new_role {
            continue;
        }
        let effective = |d: &Domain, role: &Option<String>, default: &Option<String>| {
            role_permissions(d, role.as_deref().or(default.as_deref()))
        };
        let widens = !effective(new, &new_role, &new_default).is_subset(&effective(
            old,
            &old_role,
            &old_default,
        ));
        changes.push(Change {
            subject: realm.into(),
            kind: ChangeKind::Assigned {
                subject: subject.to_string(),
                old: old_role,
                new: new_role,
            },
            widens,
        });
    }
}

/// A request's decision under the old and the new policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayRow {
    pub request: Request,
    pub before: Decision,
    pub after: Decision,
}

impl ReplayRow {
    pub fn changed(&self) -> bool {
        self.before.allowed != self.after.allowed
    }
}

/// Decides every request under both policies.
pub fn replay(old: &Policy, new: &Policy, requests: &[Request]) -> Vec<ReplayRow> {
    requests
        .iter()
        .map(|request| ReplayRow {
            request: request.clone(),
            before: decide(old, request),
            after: decide(new, request),
        })
        .collect()
}
