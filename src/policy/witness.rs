//! The requests that show what a change does: for a change that widens, the requests that were
//! denied before it and are allowed after, decided under both policies. A reviewer reads them
//! as the change's decision replay ("alice read on billing: denied → allowed, via …").

use super::decide::{Request, permissions};
use super::diff::{Change, ChangeKind, ReplayRow, replay};
use super::model::Policy;

/// At most this many requests are replayed for one change: enough to show what it does, few
/// enough to read (a role granted to 5,000 subjects is shown by its first few).
pub const WITNESS_LIMIT: usize = 12;

/// The subject standing for "any subject of the realm without an assignment" (who gets the
/// default role). Not an identity anyone holds; it decides like one.
fn unassigned_subject(realm: &str) -> String {
    format!("{realm}:<unassigned>")
}

/// Requests whose decision the change alters, at most [`WITNESS_LIMIT`]: for each identity the
/// change is about, each operation it may do under `new` and not under `old` (only the change's
/// own resource and operation when it names one). Empty for changes no request shows (a
/// setting, the CA chain, a revocation).
pub fn witnesses(old: &Policy, new: &Policy, change: &Change) -> Vec<Request> {
    let subject = change.subject.as_str();
    let (identities, only): (Vec<String>, Option<(&str, &str)>) = match &change.kind {
        ChangeKind::Granted {
            resource,
            operation,
        } => (vec![subject.to_string()], Some((resource, operation))),
        ChangeKind::ClientAdded { .. } | ChangeKind::Resolution { .. } => {
            (vec![subject.to_string()], None)
        }
        ChangeKind::Assigned { subject, .. } => (vec![subject.clone()], None),
        ChangeKind::RoleGranted {
            role,
            resource,
            operation,
        } => (
            holders(new, subject, role),
            Some((resource.as_str(), operation.as_str())),
        ),
        ChangeKind::RoleAdded { role } => (holders(new, subject, role), None),
        ChangeKind::DefaultRole { .. } => (vec![unassigned_subject(subject)], None),
        ChangeKind::DomainFallback { .. } => {
            let mut identities = holders_of_any(old, subject);
            identities.push(unassigned_subject(subject));
            (identities, None)
        }
        ChangeKind::Setting { .. }
        | ChangeKind::CaChain
        | ChangeKind::Revocation { .. }
        | ChangeKind::ClientRemoved
        | ChangeKind::Revoked { .. }
        | ChangeKind::RoleRemoved { .. }
        | ChangeKind::RoleRevoked { .. } => (Vec::new(), None),
    };
    let mut requests = Vec::new();
    for identity in identities {
        let before = permissions(old, &identity).unwrap_or_default();
        let after = permissions(new, &identity).unwrap_or_default();
        for (resource, operation) in after.pairs() {
            if before.allows(resource, operation) {
                continue;
            }
            if only.is_some_and(|(r, o)| (r, o) != (resource, operation)) {
                continue;
            }
            requests.push(Request {
                identity: identity.clone(),
                resource: resource.to_string(),
                operation: operation.to_string(),
                domain: None,
            });
            if requests.len() == WITNESS_LIMIT {
                return requests;
            }
        }
    }
    requests
}

/// The change's decision replay: its witnesses decided under both policies.
pub fn change_replay(old: &Policy, new: &Policy, change: &Change) -> Vec<ReplayRow> {
    replay(old, new, &witnesses(old, new, change))
}

/// The subjects a realm assigns `role` to, or the unassigned subject when it is the default
/// role (first, as the one most subjects hold).
fn holders(policy: &Policy, realm: &str, role: &str) -> Vec<String> {
    let Some(domain) = policy.client(realm).and_then(|c| c.domain.as_ref()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if domain.default_role.as_ref().is_some_and(|r| r.name == role) {
        out.push(unassigned_subject(realm));
    }
    out.extend(
        domain
            .role_assignments
            .iter()
            .filter(|a| a.role == role)
            .take(WITNESS_LIMIT)
            .map(|a| a.subject.clone()),
    );
    out
}

/// Every subject a realm assigns a role to.
fn holders_of_any(policy: &Policy, realm: &str) -> Vec<String> {
    policy
        .client(realm)
        .and_then(|c| c.domain.as_ref())
        .map(|d| {
            d.role_assignments
                .iter()
                .take(WITNESS_LIMIT)
                .map(|a| a.subject.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{diff, load};

    const BEFORE: &str = r#"
[[clients]]
identifier = { type = "san_uri", value = "uri:urn:co:alice" }
resources = [{ name = "billing", operations = ["read"] }]

[[clients]]
identifier = { type = "san_uri", value = "uri:urn:co:shop" }
identity_token_enabled = true

[clients.domain.default_role]
name = "customer"
resources = [{ name = "catalog", operations = ["read"] }]

[[clients.domain.roles]]
name = "admin"
resources = [{ name = "catalog", operations = ["read"] }]

[[clients.domain.role_assignments]]
subject = "uri:urn:co:shop:bob"
role = "admin"
"#;

    fn changes(after: &str) -> (Policy, Policy, Vec<Change>) {
        let old = load(BEFORE, 0).unwrap().policy;
        let new = load(after, 0).unwrap().policy;
        let changes = diff(&old, &new).changes;
        (old, new, changes)
    }

    #[test]
    fn a_grant_is_shown_by_the_request_it_allows() {
        let after = BEFORE.replacen(
            r#"operations = ["read"]"#,
            r#"operations = ["read", "write"]"#,
            1,
        );
        let (old, new, changes) = changes(&after);
        let grant = changes
            .iter()
            .find(|c| c.subject == "uri:urn:co:alice" && c.widens)
            .expect("alice's grant");
        let rows = change_replay(&old, &new, grant);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            rows[0].request.to_string(),
            "uri:urn:co:alice write billing"
        );
        assert!(!rows[0].before.allowed && rows[0].after.allowed);
    }

    #[test]
    fn a_role_grant_is_shown_for_its_holders() {
        let after = BEFORE.replacen(
            "name = \"admin\"\nresources = [{ name = \"catalog\", operations = [\"read\"] }]",
            "name = \"admin\"\nresources = [{ name = \"catalog\", operations = [\"read\", \"delete\"] }]",
            1,
        );
        assert_ne!(after, BEFORE);
        let (old, new, changes) = changes(&after);
        let grant = changes
            .iter()
            .find(|c| matches!(c.kind, ChangeKind::RoleGranted { .. }))
            .expect("the role grant");
        let rows = change_replay(&old, &new, grant);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            rows[0].request.to_string(),
            "uri:urn:co:shop:bob delete catalog"
        );
        assert!(rows[0].after.allowed);
        assert!(rows[0].after.reason.contains("role admin"), "{rows:?}");
    }

    #[test]
    fn a_default_role_grant_is_shown_for_an_unassigned_subject() {
        let after = BEFORE.replacen(
            "name = \"customer\"\nresources = [{ name = \"catalog\", operations = [\"read\"] }]",
            "name = \"customer\"\nresources = [{ name = \"catalog\", operations = [\"read\", \"write\"] }]",
            1,
        );
        let (old, new, changes) = changes(&after);
        let grant = changes
            .iter()
            .find(|c| matches!(c.kind, ChangeKind::RoleGranted { .. }))
            .expect("the default role's grant");
        let rows = change_replay(&old, &new, grant);
        assert_eq!(
            rows.iter()
                .map(|r| r.request.to_string())
                .collect::<Vec<_>>(),
            ["uri:urn:co:shop:<unassigned> write catalog"]
        );
        assert!(rows.iter().all(|r| !r.before.allowed && r.after.allowed));
    }

    #[test]
    fn narrowing_changes_and_settings_replay_nothing() {
        let after = BEFORE.replacen(r#"operations = ["read"]"#, "operations = []", 1);
        let (old, new, changes) = changes(&after);
        assert!(!changes.is_empty());
        for change in &changes {
            assert!(change_replay(&old, &new, change).is_empty(), "{change}");
        }
    }

    #[test]
    fn a_large_role_is_shown_by_its_first_holders() {
        let mut after = BEFORE.replacen(
            "name = \"admin\"\nresources = [{ name = \"catalog\", operations = [\"read\"] }]",
            "name = \"admin\"\nresources = [{ name = \"catalog\", operations = [\"read\", \"delete\"] }]",
            1,
        );
        for i in 0..100 {
            after.push_str(&format!(
                "[[clients.domain.role_assignments]]\nsubject = \"uri:urn:co:shop:u{i}\"\nrole = \"admin\"\n"
            ));
        }
        let old = load(BEFORE, 0).unwrap().policy;
        let new = load(&after, 0).unwrap().policy;
        let change = diff(&old, &new)
            .changes
            .into_iter()
            .find(|c| matches!(c.kind, ChangeKind::RoleGranted { .. }))
            .unwrap();
        assert_eq!(witnesses(&old, &new, &change).len(), WITNESS_LIMIT);
    }
}
