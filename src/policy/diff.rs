//! Semantic diff between two policies — who gained or lost what — with every change that widens
//! what someone can do flagged; and decision replay of requests under both.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::decide::{Decision, Permissions, Request, Resolution, Resolver, decide, permissions};
use super::model::{
    ChainNode, Client, DEFAULT_AUTHZ_TOKEN_DURATION, DEFAULT_IDENTITY_TOKEN_DURATION,
    DEFAULT_MAX_DELEGATION_DEPTH, Domain, Policy, Resource, SignerEntry,
};
use super::revocations::{RevocationList, Revoked};
use crate::token::is_strict_descendant;

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
    /// An identity is now decided by another entry (a client entry, a realm or a role) than
    /// before, and gains permissions by it: a removed client entry falling back to a realm's
    /// default role, an assignment to a role that appeared or disappeared.
    Resolution {
        old: String,
        new: String,
        gained: String,
    },
    /// A realm's domain is gone and its subjects fall to an enclosing realm's default role.
    DomainFallback {
        realm: String,
        role: Option<String>,
        gained: String,
    },
    /// A token block revoked (`added`) or a revocation withdrawn, from `revocations.toml`.
    Revocation {
        id: String,
        /// What the block is, when known (e.g. from the server's audit feed).
        what: Option<String>,
        reason: String,
        by: Option<String>,
        at: Option<i64>,
        added: bool,
    },
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
            ChangeKind::Resolution { old, new, gained } => {
                format!("{who} is now decided by {new} (was {old}): may now {gained}")
            }
            ChangeKind::DomainFallback {
                realm,
                role,
                gained,
            } => format!(
                "subjects of {who}'s domain now fall to realm {realm}'s default role {}: may now {gained}",
                role.as_deref().unwrap_or("(none)")
            ),
            ChangeKind::Revocation {
                id,
                what,
                reason,
                by,
                at,
                added,
            } => {
                let what = what.as_deref().unwrap_or(if *added {
                    "a token block and every token delegated from it"
                } else {
                    "a token block"
                });
                let by = by
                    .as_deref()
                    .map_or(String::new(), |by| format!(", by {by}"));
                let at = at.map_or(String::new(), |at| {
                    format!(" at {}", crate::token::clock::format_unix(at))
                });
                let text = format!("{} {what} — {reason}{by}{at}", short_id(id));
                return if *added {
                    write!(f, "+ REVOKES {text}")
                } else {
                    write!(f, "+ WIDENS un-revokes {text}")
                };
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

/// Computes the semantic diff. Every change that lets someone do what they could not before is
/// marked `widens`; a final pass over every identity either policy names catches gains that no
/// single entry's change explains (a removed client entry falling back to a realm's role, an
/// assignment whose role appeared or vanished).
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
    domain_fallbacks(old, new, &mut changes);
    resolution_changes(old, new, &mut changes);
    PolicyDiff { changes }
}

/// The entry that decides for an identity, as something comparable: (what, realm, role).
fn decided_by<'p>(resolver: &Resolver<'p>, identity: &str) -> (u8, &'p str, &'p str) {
    match resolver.resolve(identity) {
        Resolution::Client(client) => (0, &client.identity, ""),
        Resolution::DomainSubject { realm, role, .. } => (1, &realm.identity, &role.name),
        Resolution::DomainSubjectWithoutRole { realm } => (2, &realm.identity, ""),
        Resolution::Unconfigured { .. } => (3, "", ""),
    }
}

fn describe_decider(resolver: &Resolver<'_>, identity: &str) -> String {
    match resolver.resolve(identity) {
        Resolution::Client(_) => "its client entry".into(),
        Resolution::DomainSubject {
            realm,
            role,
            explicit,
        } => format!(
            "{} {} in realm {}",
            if explicit { "role" } else { "default role" },
            role.name,
            realm.identity
        ),
        Resolution::DomainSubjectWithoutRole { realm } => {
            format!("realm {} (no role)", realm.identity)
        }
        Resolution::Unconfigured { .. } => "nothing (not configured)".into(),
    }
}

/// What `new` allows that `old` does not, if anything.
fn gained(old: &Permissions, new: &Permissions) -> Option<Permissions> {
    let mut out = Permissions::default();
    for (resource, operation) in new.pairs().filter(|(r, o)| !old.allows(r, o)) {
        out.0
            .entry(resource.to_string())
            .or_default()
            .insert(operation.to_string());
    }
    (!out.0.is_empty()).then_some(out)
}

/// Every identity either policy names: client entries and role-assignment subjects.
fn named_identities<'p>(old: &'p Policy, new: &'p Policy) -> BTreeSet<&'p str> {
    let mut out = BTreeSet::new();
    for policy in [old, new] {
        for client in &policy.clients {
            out.insert(client.identity.as_str());
            if let Some(domain) = &client.domain {
                out.extend(domain.role_assignments.iter().map(|a| a.subject.as_str()));
            }
        }
    }
    out
}

fn resolution_changes(old: &Policy, new: &Policy, changes: &mut Vec<Change>) {
    let mut found = Vec::new();
    let (old_resolver, new_resolver) = (Resolver::new(old), Resolver::new(new));
    for identity in named_identities(old, new) {
        let (before, after) = (
            decided_by(&old_resolver, identity),
            decided_by(&new_resolver, identity),
        );
        if before == after {
            // The same entry decides: its own changes (grants, role grants) are listed.
            continue;
        }
        let Some(gain) = gained(
            &permissions(old, identity).unwrap_or_default(),
            &permissions(new, identity).unwrap_or_default(),
        ) else {
            continue;
        };
        let explained = changes.iter().any(|c| {
            c.widens
                && match &c.kind {
                    ChangeKind::ClientAdded { .. } => c.subject == identity && after.0 == 0,
                    ChangeKind::Assigned { subject, .. } => {
                        subject == identity && before.1 == after.1 && c.subject == after.1
                    }
                    ChangeKind::DefaultRole { .. } => before.1 == after.1 && c.subject == after.1,
                    _ => false,
                }
        });
        if !explained {
            found.push(Change {
                subject: identity.to_string(),
                kind: ChangeKind::Resolution {
                    old: describe_decider(&old_resolver, identity),
                    new: describe_decider(&new_resolver, identity),
                    gained: gain.to_string(),
                },
                widens: true,
            });
        }
    }
    changes.extend(found);
}

/// The innermost realm of `policy` that `identity` lies strictly under.
fn enclosing_realm<'p>(policy: &'p Policy, identity: &str) -> Option<&'p Client> {
    policy
        .realms()
        .filter(|realm| is_strict_descendant(identity, &realm.identity))
        .max_by_key(|realm| realm.identity.len())
}

/// A realm that is no longer one: the subjects of its domain that it named nowhere now fall to
/// the enclosing realm's default role (named subjects are checked one by one).
fn domain_fallbacks(old: &Policy, new: &Policy, changes: &mut Vec<Change>) {
    for realm in old.realms() {
        if new
            .client(&realm.identity)
            .is_some_and(|c| c.domain.is_some())
        {
            continue;
        }
        let Some(outer) = enclosing_realm(new, &realm.identity) else {
            continue;
        };
        let Some(outer_domain) = &outer.domain else {
            continue;
        };
        let was = realm
            .domain
            .as_ref()
            .map(|d| role_permissions(d, d.default_role.as_ref().map(|r| r.name.as_str())))
            .unwrap_or_default();
        let default = outer_domain.default_role.as_ref().map(|r| r.name.clone());
        let now = role_permissions(outer_domain, default.as_deref());
        if let Some(gain) = gained(&was, &now) {
            changes.push(Change {
                subject: realm.identity.clone(),
                kind: ChangeKind::DomainFallback {
                    realm: outer.identity.clone(),
                    role: default,
                    gained: gain.to_string(),
                },
                widens: true,
            });
        }
    }
}

/// What a revocations file change does: each id revoked, and each revocation withdrawn (which
/// makes a refused token usable again: a widening).
pub fn revocation_changes(old: &RevocationList, new: &RevocationList) -> Vec<Change> {
    let change = |entry: &Revoked, added: bool| Change {
        subject: short_id(&entry.id),
        kind: ChangeKind::Revocation {
            id: entry.id.clone(),
            what: None,
            reason: entry.reason.clone(),
            by: entry.by.clone(),
            at: entry.at,
            added,
        },
        widens: !added,
    };
    let revoked = |list: &RevocationList, id: &str| {
        list.first_revoked(std::slice::from_ref(&id.to_string()))
            .is_some()
    };
    let mut out: Vec<Change> = new
        .entries
        .iter()
        .filter(|e| !revoked(old, &e.id))
        .map(|e| change(e, true))
        .collect();
    out.extend(
        old.entries
            .iter()
            .filter(|e| !revoked(new, &e.id))
            .map(|e| change(e, false)),
    );
    out
}

/// The first 16 characters of a revocation id, then `…`.
fn short_id(id: &str) -> String {
    let head: String = id.chars().take(16).collect();
    if id.chars().count() > 16 {
        format!("{head}…")
    } else {
        head
    }
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
    let seconds = |v: Option<u64>| v.map_or("off".to_string(), super::duration::format);
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
    if before.domain.is_some() && after.domain.is_some() {
        // A realm mints identity tokens for its subjects whether or not it takes one itself.
        let minted = |c: &Client| {
            c.identity_token_duration
                .unwrap_or(DEFAULT_IDENTITY_TOKEN_DURATION)
        };
        setting(
            "tokens minted for its subjects",
            super::duration::format(minted(before)),
            super::duration::format(minted(after)),
            minted(after) > minted(before),
        );
    }
    let authz = |c: &Client| {
        c.authorization_token_duration
            .unwrap_or(DEFAULT_AUTHZ_TOKEN_DURATION)
    };
    setting(
        "authorization tokens",
        super::duration::format(authz(before)),
        super::duration::format(authz(after)),
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
    let depth_text = |c: &Client| match c.max_delegation_depth {
        Some(d) => d.to_string(),
        None => format!("{} (default)", DEFAULT_MAX_DELEGATION_DEPTH),
    };
    setting(
        "max delegation depth",
        depth_text(before),
        depth_text(after),
        depth(after) > depth(before),
    );
    requirement_changes(who, "", &before.resources, &after.resources, changes);
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

/// A public key shortened for display.
fn short_key(key: &str) -> String {
    let key = key.trim();
    let head: String = key.chars().take(24).collect();
    if key.chars().count() > 24 {
        format!("{head}…")
    } else {
        head
    }
}

/// True when every node of `old`, with its key, is in `new` in the same order: every service
/// that had to attest still has to, with the same key.
fn chain_kept(old: &[ChainNode], new: &[ChainNode]) -> bool {
    let same = |a: &ChainNode, b: &ChainNode| {
        a.component == b.component && a.public_key.trim() == b.public_key.trim()
    };
    let mut rest = new.iter();
    old.iter().all(|node| rest.any(|n| same(node, n)))
}

/// True when `new` has a signer demanding at least what `old` demanded: the same party and key,
/// for at least the same operations (no operations listed means all).
fn signer_kept(old: &SignerEntry, new: &[SignerEntry]) -> bool {
    new.iter().any(|n| {
        n.component == old.component
            && n.authorization_service == old.authorization_service
            && n.public_key.trim() == old.public_key.trim()
            && (n.operations.is_empty()
                || (!old.operations.is_empty()
                    && old.operations.iter().all(|o| n.operations.contains(o))))
    })
}

/// Service chains and signers of resources present before and after: any node or signer
/// dropped, reordered, narrowed or given another key widens (fewer or other parties vouch).
fn requirement_changes(
    who: &str,
    context: &str,
    old: &[Resource],
    new: &[Resource],
    changes: &mut Vec<Change>,
) {
    let mut push = |name: String, old: String, new: String, widens: bool| {
        changes.push(Change {
            subject: who.to_string(),
            kind: ChangeKind::Setting { name, old, new },
            widens,
        })
    };
    for resource in new {
        let Some(before) = old.iter().find(|r| r.name == resource.name) else {
            continue;
        };
        let name = &resource.name;
        let (old_chain, new_chain) = (&before.service_chain, &resource.service_chain);
        fn names(chain: &[ChainNode]) -> Vec<&str> {
            chain.iter().map(|n| n.component.as_str()).collect()
        }
        if names(old_chain) == names(new_chain) {
            for (a, b) in old_chain.iter().zip(new_chain) {
                if a.public_key.trim() != b.public_key.trim() {
                    push(
                        format!("key of chain node {} on {name}{context}", a.component),
                        short_key(&a.public_key),
                        short_key(&b.public_key),
                        true,
                    );
                }
            }
        } else {
            let show = |chain: &[ChainNode]| {
                if chain.is_empty() {
                    "(none)".to_string()
                } else {
                    let count = match chain.len() {
                        1 => "1 node".to_string(),
                        n => format!("{n} nodes"),
                    };
                    format!("{} ({count})", names(chain).join(" → "))
                }
            };
            push(
                format!("service chain of {name}{context}"),
                show(old_chain),
                show(new_chain),
                !chain_kept(old_chain, new_chain),
            );
        }
        let (old_signers, new_signers) = (&before.signers, &resource.signers);
        let kept = old_signers.iter().all(|s| signer_kept(s, new_signers));
        let sorted = |signers: &[SignerEntry]| {
            let mut all: Vec<String> = signers
                .iter()
                .map(|s| {
                    let ops = if s.operations.is_empty() {
                        String::new()
                    } else {
                        format!(" for {}", s.operations.join(", "))
                    };
                    format!(
                        "{} via {} key {}{ops}",
                        s.component,
                        s.authorization_service,
                        short_key(&s.public_key)
                    )
                })
                .collect();
            all.sort();
            all
        };
        let (old_shown, new_shown) = (sorted(old_signers), sorted(new_signers));
        if old_shown != new_shown {
            let show = |all: Vec<String>| {
                if all.is_empty() {
                    "(none)".to_string()
                } else {
                    all.join("; ")
                }
            };
            push(
                format!("signers of {name}{context}"),
                show(old_shown),
                show(new_shown),
                !kept,
            );
        }
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
    for role in old_names.intersection(&new_names) {
        if let (Some(before), Some(after)) = (old.role(role), new.role(role)) {
            requirement_changes(
                realm,
                &format!(" (role {role})"),
                &before.resources,
                &after.resources,
                changes,
            );
        }
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
        // As `decide` does: an assignment to a role the realm does not have falls back to the
        // default role.
        let effective = |d: &Domain, role: &Option<String>, default: &Option<String>| {
            let role = role.as_deref().filter(|r| d.role(r).is_some());
            role_permissions(d, role.or(default.as_deref()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::{Assignment, Role};
    use crate::policy::{Location, revocations};

    fn node(component: &str, key: &str) -> ChainNode {
        ChainNode {
            component: component.into(),
            public_key: key.into(),
            at: Location::default(),
        }
    }

    fn signer(component: &str, key: &str, operations: &[&str]) -> SignerEntry {
        SignerEntry {
            component: component.into(),
            authorization_service: "https://signer.example".into(),
            public_key: key.into(),
            operations: operations.iter().map(|o| o.to_string()).collect(),
            at: Location::default(),
        }
    }

    fn resource(name: &str, operations: &[&str]) -> Resource {
        Resource {
            name: name.into(),
            operations: operations.iter().map(|o| o.to_string()).collect(),
            service_chain: Vec::new(),
            signers: Vec::new(),
            at: Location::default(),
        }
    }

    fn client(identity: &str, resources: Vec<Resource>) -> Client {
        Client {
            identity: identity.into(),
            identifier_type: "san_uri".into(),
            at: Location::default(),
            resources,
            identity_token_enabled: false,
            identity_token_duration: None,
            authorization_token_duration: None,
            delegatable: false,
            max_delegation_depth: None,
            operator: false,
            domain: None,
        }
    }

    fn role(name: &str, resources: Vec<Resource>) -> Role {
        Role {
            name: name.into(),
            resources,
            at: Location::default(),
        }
    }

    fn realm(
        identity: &str,
        default: Option<Role>,
        roles: Vec<Role>,
        assigned: &[(&str, &str)],
    ) -> Client {
        let mut realm = client(identity, Vec::new());
        realm.domain = Some(Domain {
            default_role: default,
            roles,
            role_assignments: assigned
                .iter()
                .map(|(subject, role)| Assignment {
                    subject: subject.to_string(),
                    role: role.to_string(),
                    at: Location::default(),
                })
                .collect(),
            at: Location::default(),
        });
        realm
    }

    fn policy(clients: Vec<Client>) -> Policy {
        Policy {
            ca_chain: None,
            clients,
        }
    }

    fn widening(old: &Policy, new: &Policy) -> Vec<String> {
        diff(old, new).widening().map(ToString::to_string).collect()
    }

    fn with_chain(chain: Vec<ChainNode>) -> Policy {
        let mut api = resource("api", &["read"]);
        api.service_chain = chain;
        policy(vec![client("uri:urn:svc", vec![api])])
    }

    #[test]
    fn a_chain_with_fewer_nodes_widens_whatever_the_names_length() {
        // The joined names grow ("gateway → db" is shorter than the one long name), but a
        // node is gone: one service fewer vouches for the token.
        let old = with_chain(vec![
            node("gateway", "ed25519/aa"),
            node("db", "ed25519/bb"),
        ]);
        let new = with_chain(vec![node("gateway-and-database", "ed25519/aa")]);
        let shown = widening(&old, &new);
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].contains(
                "service chain of api gateway → db (2 nodes) → gateway-and-database (1 node)"
            ),
            "{shown:?}"
        );
        // A node added at the end only asks more: not a widening, but listed.
        let longer = with_chain(vec![
            node("gateway", "ed25519/aa"),
            node("db", "ed25519/bb"),
            node("audit", "ed25519/cc"),
        ]);
        assert!(widening(&old, &longer).is_empty());
        assert_eq!(diff(&old, &longer).changes.len(), 1);
        // Reordered: a different order is accepted.
        let swapped = with_chain(vec![
            node("db", "ed25519/bb"),
            node("gateway", "ed25519/aa"),
        ]);
        assert_eq!(widening(&old, &swapped).len(), 1);
    }

    #[test]
    fn a_replaced_chain_key_widens_and_says_which_node() {
        let old = with_chain(vec![
            node("gateway", "ed25519/aa"),
            node("db", "ed25519/bb"),
        ]);
        let new = with_chain(vec![
            node("gateway", "ed25519/aa"),
            node("db", "ed25519/ff"),
        ]);
        assert_eq!(
            widening(&old, &new),
            ["+ WIDENS uri:urn:svc: key of chain node db on api ed25519/bb → ed25519/ff"]
        );
    }

    fn with_signers(signers: Vec<SignerEntry>) -> Policy {
        let mut api = resource("api", &["read", "write"]);
        api.signers = signers;
        policy(vec![client("uri:urn:svc", vec![api])])
    }

    #[test]
    fn signer_keys_and_operations_are_compared() {
        let old = with_signers(vec![signer("approver", "ed25519/aa", &["write"])]);
        let rekeyed = with_signers(vec![signer("approver", "ed25519/ee", &["write"])]);
        let shown = widening(&old, &rekeyed);
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(shown[0].contains("signers of api") && shown[0].contains("ed25519/ee"));
        // Needed for every operation instead of write only: asks more.
        let all = with_signers(vec![signer("approver", "ed25519/aa", &[])]);
        assert!(widening(&old, &all).is_empty());
        // And back: write-only after all operations is narrower signoff.
        assert_eq!(widening(&all, &old).len(), 1);
        assert_eq!(widening(&old, &with_signers(vec![])).len(), 1);
    }

    #[test]
    fn role_chains_are_compared_too() {
        let mut api = resource("api", &["read"]);
        api.service_chain = vec![node("gateway", "ed25519/aa")];
        let old = policy(vec![realm(
            "uri:urn:r",
            Some(role("member", vec![api.clone()])),
            vec![],
            &[],
        )]);
        api.service_chain.clear();
        let new = policy(vec![realm(
            "uri:urn:r",
            Some(role("member", vec![api])),
            vec![],
            &[],
        )]);
        let shown = widening(&old, &new);
        assert!(
            shown
                .iter()
                .any(|s| s.contains("service chain of api (role member)")),
            "{shown:?}"
        );
    }

    #[test]
    fn a_removed_client_entry_that_falls_to_a_realm_role_widens() {
        let rich = role("member", vec![resource("api", &["read", "write"])]);
        let old = policy(vec![
            realm("uri:urn:r", Some(rich.clone()), vec![], &[]),
            client("uri:urn:r:bob", vec![resource("api", &["read"])]),
        ]);
        let new = policy(vec![realm("uri:urn:r", Some(rich), vec![], &[])]);
        assert_eq!(
            widening(&old, &new),
            [
                "+ WIDENS uri:urn:r:bob is now decided by default role member in realm uri:urn:r (was its client entry): may now api: write"
            ]
        );
    }

    #[test]
    fn an_assignment_to_a_role_the_realm_lacks_gets_the_default_role() {
        let member = role("member", vec![resource("api", &["read"])]);
        let none = role("none", vec![]);
        let old = policy(vec![realm(
            "uri:urn:r",
            Some(member.clone()),
            vec![none.clone()],
            &[("uri:urn:r:eve", "none")],
        )]);
        let new = policy(vec![realm(
            "uri:urn:r",
            Some(member),
            vec![none],
            &[("uri:urn:r:eve", "ghost")],
        )]);
        let shown = widening(&old, &new);
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].contains("uri:urn:r:eve role none → ghost"),
            "{shown:?}"
        );
    }

    #[test]
    fn a_removed_role_sends_its_subjects_to_the_default_role() {
        let member = role("member", vec![resource("api", &["read"])]);
        let old = policy(vec![realm(
            "uri:urn:r",
            Some(member.clone()),
            vec![role("guest", vec![])],
            &[("uri:urn:r:eve", "guest")],
        )]);
        let new = policy(vec![realm(
            "uri:urn:r",
            Some(member),
            vec![],
            &[("uri:urn:r:eve", "guest")],
        )]);
        let shown = widening(&old, &new);
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].contains("uri:urn:r:eve is now decided by default role member"),
            "{shown:?}"
        );
    }

    #[test]
    fn a_nested_realm_removed_hands_its_domain_to_the_outer_default_role() {
        let outer = realm(
            "uri:urn:r",
            Some(role("member", vec![resource("api", &["read"])])),
            vec![],
            &[],
        );
        let inner = realm("uri:urn:r:team", Some(role("guest", vec![])), vec![], &[]);
        let old = policy(vec![outer.clone(), inner.clone()]);
        let mut demoted = inner;
        demoted.domain = None;
        for new in [
            policy(vec![outer.clone()]),
            policy(vec![outer.clone(), demoted]),
        ] {
            let shown = widening(&old, &new);
            assert!(
                shown.iter().any(|s| s.contains(
                    "subjects of uri:urn:r:team's domain now fall to realm uri:urn:r's default role member: may now api: read"
                )),
                "{shown:?}"
            );
        }
    }

    #[test]
    fn delegation_and_lifetimes_loosened_widen() {
        let mut before = client("uri:urn:a", vec![]);
        before.max_delegation_depth = Some(1);
        let mut after = before.clone();
        after.max_delegation_depth = None;
        let shown = widening(&policy(vec![before.clone()]), &policy(vec![after]));
        assert_eq!(
            shown,
            [format!(
                "+ WIDENS uri:urn:a: max delegation depth 1 → {DEFAULT_MAX_DELEGATION_DEPTH} (default)"
            )]
        );
        let mut r1 = realm("uri:urn:r", None, vec![], &[]);
        r1.identity_token_duration = Some(600);
        let mut r2 = r1.clone();
        r2.identity_token_duration = Some(86_400);
        let shown = widening(&policy(vec![r1]), &policy(vec![r2]));
        assert!(
            shown
                .iter()
                .any(|s| s.contains("tokens minted for its subjects 10m → 1d")),
            "{shown:?}"
        );
        // Delegation turned on and longer authorization tokens; the depth of 1 narrows.
        let mut delegating = before;
        delegating.delegatable = true;
        delegating.authorization_token_duration = Some(900);
        let shown = widening(
            &policy(vec![client("uri:urn:a", vec![])]),
            &policy(vec![delegating]),
        );
        assert_eq!(
            shown,
            [
                "+ WIDENS uri:urn:a: authorization tokens 5m → 15m",
                "+ WIDENS uri:urn:a: delegatable false → true"
            ],
        );
    }

    #[test]
    fn default_role_changes_widen_when_the_new_default_grants_more() {
        let old = policy(vec![realm(
            "uri:urn:r",
            Some(role("guest", vec![])),
            vec![],
            &[],
        )]);
        let new = policy(vec![realm(
            "uri:urn:r",
            Some(role("member", vec![resource("api", &["read"])])),
            vec![],
            &[],
        )]);
        let shown = widening(&old, &new);
        assert!(
            shown.contains(&"+ WIDENS realm uri:urn:r: default role guest → member".to_string()),
            "{shown:?}"
        );
        assert!(widening(&new, &old).is_empty());
    }

    #[test]
    fn ca_chain_changes_widen() {
        let mut new = policy(vec![]);
        new.ca_chain = Some(crate::policy::CaChain {
            pem: "-----BEGIN CERTIFICATE-----".into(),
            at: Location::default(),
        });
        assert_eq!(widening(&policy(vec![]), &new).len(), 1);
    }

    #[test]
    fn revocations_show_what_was_revoked_and_withdrawn() {
        let entry = revocations::NewRevocation {
            id: "ab".repeat(32),
            reason: "laptop stolen".into(),
            by: Some("uri:urn:company:ops".into()),
            at: 1_790_000_000,
        };
        let text = revocations::append("", &entry).unwrap();
        let (none, _) = RevocationList::load("");
        let (one, _) = RevocationList::load(&text);
        let added = revocation_changes(&none, &one);
        assert_eq!(added.len(), 1);
        assert!(!added[0].widens);
        assert_eq!(
            added[0].to_string(),
            "+ REVOKES abababababababab… a token block and every token delegated from it — laptop stolen, by uri:urn:company:ops at 2026-09-21 14:13:20 UTC"
        );
        let withdrawn = revocation_changes(&one, &none);
        assert!(withdrawn[0].widens);
        assert!(
            withdrawn[0]
                .to_string()
                .starts_with("+ WIDENS un-revokes abababababababab…")
        );
        assert!(revocation_changes(&one, &one).is_empty());
    }
}
