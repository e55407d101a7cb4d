//! "What can X do?": resolving an identity to its client entry or realm role, its effective
//! permissions, and the decision for a request. The server decides with this same code.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::Serialize;

use super::model::{Client, Policy, Resource, Role};
use crate::token::is_strict_descendant;

/// Resource → operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Permissions(pub BTreeMap<String, BTreeSet<String>>);

impl Permissions {
    pub fn from_resources(resources: &[Resource]) -> Permissions {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for resource in resources {
            map.entry(resource.name.clone())
                .or_default()
                .extend(resource.operations.iter().cloned());
        }
        Permissions(map)
    }

    pub fn allows(&self, resource: &str, operation: &str) -> bool {
        self.0
            .get(resource)
            .is_some_and(|ops| ops.contains(operation))
    }

    pub fn operations(&self, resource: &str) -> Vec<&str> {
        self.0
            .get(resource)
            .map(|ops| ops.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Every (resource, operation) pair.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .flat_map(|(r, ops)| ops.iter().map(move |o| (r.as_str(), o.as_str())))
    }

    pub fn is_subset(&self, other: &Permissions) -> bool {
        self.pairs().all(|(r, o)| other.allows(r, o))
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "nothing");
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(r, ops)| {
                format!(
                    "{r}: {}",
                    ops.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        write!(f, "{}", parts.join("; "))
    }
}

/// How the policy knows an identity.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution<'p> {
    /// A `[[clients]]` entry.
    Client(&'p Client),
    /// A subject inside a realm's domain, with the role that applies.
    DomainSubject {
        realm: &'p Client,
        role: &'p Role,
        /// True for an explicit assignment, false for the default role.
        explicit: bool,
    },
    /// Inside a realm's domain, but the realm has no default role and no assignment for it.
    DomainSubjectWithoutRole { realm: &'p Client },
    /// Not configured; the nearest configured ancestor, if any.
    Unconfigured { ancestor: Option<&'p Client> },
}

/// Resolves an identity. A client entry wins over a realm role.
pub fn resolve<'p>(policy: &'p Policy, identity: &str) -> Resolution<'p> {
    if let Some(client) = policy.client(identity) {
        return Resolution::Client(client);
    }
    if let Some(realm) = innermost_realm(policy.realms(), identity) {
        return resolve_in_realm(realm, identity);
    }
    let index = policy.identity_index();
    Resolution::Unconfigured {
        ancestor: policy.configured_parent(identity, &index),
    }
}

/// Resolves many identities against one policy, as `resolve` does, with the client index and
/// the realms found once (`resolve` scans the clients for each identity: quadratic when asked
/// for every identity of a large policy).
pub struct Resolver<'p> {
    policy: &'p Policy,
    index: HashMap<&'p str, usize>,
    realms: Vec<&'p Client>,
}

impl<'p> Resolver<'p> {
    pub fn new(policy: &'p Policy) -> Resolver<'p> {
        Resolver {
            policy,
            index: policy.identity_index(),
            realms: policy.realms().collect(),
        }
    }

    pub fn resolve(&self, identity: &str) -> Resolution<'p> {
        if let Some(&i) = self.index.get(identity) {
            return Resolution::Client(&self.policy.clients[i]);
        }
        if let Some(realm) = innermost_realm(self.realms.iter().copied(), identity) {
            return resolve_in_realm(realm, identity);
        }
        Resolution::Unconfigured {
            ancestor: self.policy.configured_parent(identity, &self.index),
        }
    }
}

/// The innermost of `realms` that `identity` lies strictly under.
fn innermost_realm<'p>(
    realms: impl Iterator<Item = &'p Client>,
    identity: &str,
) -> Option<&'p Client> {
    realms
        .filter(|realm| is_strict_descendant(identity, &realm.identity))
        .max_by_key(|realm| realm.identity.len())
}

fn resolve_in_realm<'p>(realm: &'p Client, subject: &str) -> Resolution<'p> {
    let Some(domain) = &realm.domain else {
        return Resolution::DomainSubjectWithoutRole { realm };
    };
    let assigned = domain
        .assignment(subject)
        .and_then(|a| domain.role(&a.role));
    match (assigned, &domain.default_role) {
        (Some(role), _) => Resolution::DomainSubject {
            realm,
            role,
            explicit: true,
        },
        (None, Some(role)) => Resolution::DomainSubject {
            realm,
            role,
            explicit: false,
        },
        (None, None) => Resolution::DomainSubjectWithoutRole { realm },
    }
}

/// What an identity may do, or `None` when the policy does not serve it.
pub fn permissions(policy: &Policy, identity: &str) -> Option<Permissions> {
    match resolve(policy, identity) {
        Resolution::Client(client) => Some(Permissions::from_resources(&client.resources)),
        Resolution::DomainSubject { role, .. } => {
            Some(Permissions::from_resources(&role.resources))
        }
        Resolution::DomainSubjectWithoutRole { .. } => Some(Permissions::default()),
        Resolution::Unconfigured { .. } => None,
    }
}

/// An authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub identity: String,
    pub resource: String,
    pub operation: String,
    pub domain: Option<String>,
}

impl Request {
    /// Parses `IDENTITY RESOURCE OPERATION [DOMAIN]` (whitespace separated).
    pub fn parse(line: &str) -> Result<Request, String> {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            [identity, resource, operation] | [identity, resource, operation, _] => Ok(Request {
                identity: identity.to_string(),
                resource: resource.to_string(),
                operation: operation.to_string(),
                domain: parts.get(3).map(|d| d.to_string()),
            }),
            _ => Err(format!(
                "expected IDENTITY RESOURCE OPERATION [DOMAIN], got {line:?}"
            )),
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.identity, self.operation, self.resource)?;
        if let Some(domain) = &self.domain {
            write!(f, " (domain {domain})")?;
        }
        Ok(())
    }
}

/// A decision and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

impl Decision {
    fn allow(reason: String) -> Decision {
        Decision {
            allowed: true,
            reason,
        }
    }

    fn deny(reason: String) -> Decision {
        Decision {
            allowed: false,
            reason,
        }
    }
}

/// Decides a request under a policy.
pub fn decide(policy: &Policy, request: &Request) -> Decision {
    let Request {
        identity,
        resource,
        operation,
        domain,
    } = request;
    let resolution = resolve(policy, identity);
    if let Some(denial) = domain
        .as_deref()
        .and_then(|d| check_domain(policy, identity, d))
    {
        return denial;
    }
    let (permissions, via) = match resolution {
        Resolution::Client(client) => (
            Permissions::from_resources(&client.resources),
            format!("client entry at line {}", client.at.line),
        ),
        Resolution::DomainSubject {
            realm,
            role,
            explicit,
        } => (
            Permissions::from_resources(&role.resources),
            format!(
                "role {} in realm {} ({})",
                role.name,
                realm.identity,
                if explicit { "assigned" } else { "default role" }
            ),
        ),
        Resolution::DomainSubjectWithoutRole { realm } => {
            return Decision::deny(format!(
                "{identity} is in realm {}'s domain, but the realm has no default role and no assignment for it",
                realm.identity
            ));
        }
        Resolution::Unconfigured { ancestor } => {
            let hint = ancestor
                .map(|a| format!("; it is under {}, but a delegated identity is served only if it is itself configured", a.identity))
                .unwrap_or_default();
            return Decision::deny(format!("{identity} is not configured{hint}"));
        }
    };
    if permissions.allows(resource, operation) {
        return Decision::allow(format!(
            "{identity} may {operation} on {resource} via {via}"
        ));
    }
    let has = permissions.operations(resource);
    if has.is_empty() {
        return Decision::deny(format!(
            "{identity} has no permission on {resource} (via {via})"
        ));
    }
    Decision::deny(format!(
        "{identity} may only {} on {resource} (via {via}), not {operation}",
        has.join(", ")
    ))
}

/// A request in a domain must come from inside that realm's domain.
fn check_domain(policy: &Policy, identity: &str, domain: &str) -> Option<Decision> {
    let Some(realm) = policy.client(domain).filter(|c| c.domain.is_some()) else {
        return Some(Decision::deny(format!(
            "domain {domain} is not a realm in the policy"
        )));
    };
    (!is_strict_descendant(identity, &realm.identity))
        .then(|| Decision::deny(format!("{identity} is not within domain {domain}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_lines() {
        let r = Request::parse("uri:urn:a api read uri:urn:d").unwrap();
        assert_eq!(r.domain.as_deref(), Some("uri:urn:d"));
        assert!(Request::parse("too few").is_err());
        assert_eq!(Request::parse("a b c").unwrap().to_string(), "a c b");
    }
}
