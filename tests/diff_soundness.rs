//! Soundness of the semantic diff: for generated pairs of policies over a small universe
//! (nested identities, two resources, two operations, realms with roles and assignments),
//! every request that goes from deny to allow under `decide` must be explained by a change the
//! diff marks as widening, naming the identity, or the realm (old or new) it falls in, or the
//! domain of the request. A reviewer who reads only the `+ WIDENS` lines sees every new allow.

use hessra_console::policy::{
    self, Assignment, Change, ChangeKind, Client, Domain, Location, Policy, Request, Resource, Role,
};
use proptest::prelude::*;

/// Nested so that realms contain realms and clients sit inside realms' domains.
const IDENTITIES: &[&str] = &[
    "uri:urn:a",
    "uri:urn:a:x",
    "uri:urn:a:x:y",
    "uri:urn:a:z",
    "uri:urn:b",
    "uri:urn:b:x",
];
/// Also asked about, never configured.
const STRANGER: &str = "uri:urn:c";
const PAIRS: &[(&str, &str)] = &[
    ("api", "read"),
    ("api", "write"),
    ("db", "read"),
    ("db", "write"),
];
/// `ghost` is never defined: assignments to it fall back to the default role.
const ROLE_NAMES: &[&str] = &["r1", "r2", "ghost"];

#[derive(Debug, Clone)]
struct RoleSpec {
    name: usize,
    grants: Vec<bool>,
}

#[derive(Debug, Clone)]
struct DomainSpec {
    default: Option<Vec<bool>>,
    roles: Vec<RoleSpec>,
    /// For each identity of the universe: an assignment (index into ROLE_NAMES), if any.
    assignments: Vec<Option<usize>>,
}

#[derive(Debug, Clone)]
struct ClientSpec {
    grants: Vec<bool>,
    domain: Option<DomainSpec>,
}

type Spec = Vec<Option<ClientSpec>>;

fn grants() -> impl Strategy<Value = Vec<bool>> {
    proptest::collection::vec(prop::bool::weighted(0.35), PAIRS.len())
}

fn domain_spec() -> impl Strategy<Value = DomainSpec> {
    (
        proptest::option::weighted(0.7, grants()),
        proptest::collection::vec(
            (0..2usize, grants()).prop_map(|(name, grants)| RoleSpec { name, grants }),
            0..3,
        ),
        proptest::collection::vec(
            proptest::option::weighted(0.3, 0..ROLE_NAMES.len()),
            IDENTITIES.len(),
        ),
    )
        .prop_map(|(default, roles, assignments)| DomainSpec {
            default,
            roles,
            assignments,
        })
}

fn client_spec() -> impl Strategy<Value = ClientSpec> {
    (grants(), proptest::option::weighted(0.4, domain_spec()))
        .prop_map(|(grants, domain)| ClientSpec { grants, domain })
}

fn spec() -> impl Strategy<Value = Spec> {
    proptest::collection::vec(
        proptest::option::weighted(0.55, client_spec()),
        IDENTITIES.len(),
    )
}

/// An old policy and a new one that keeps each identity's entry or replaces it (so most pairs
/// differ in a few places, as real edits do).
fn pair() -> impl Strategy<Value = (Spec, Spec)> {
    (
        spec(),
        spec(),
        proptest::collection::vec(prop::bool::weighted(0.3), IDENTITIES.len()),
    )
        .prop_map(|(old, fresh, replace)| {
            let new = old
                .iter()
                .zip(fresh)
                .zip(replace)
                .map(|((old, fresh), replace)| if replace { fresh } else { old.clone() })
                .collect();
            (old, new)
        })
}

fn resources(grants: &[bool]) -> Vec<Resource> {
    let mut out: Vec<Resource> = Vec::new();
    for ((resource, operation), _) in PAIRS.iter().zip(grants).filter(|(_, g)| **g) {
        match out.iter_mut().find(|r| r.name == *resource) {
            Some(r) => r.operations.push(operation.to_string()),
            None => out.push(Resource {
                name: resource.to_string(),
                operations: vec![operation.to_string()],
                service_chain: Vec::new(),
                signers: Vec::new(),
                at: Location::default(),
            }),
        }
    }
    out
}

fn role(name: &str, grants: &[bool]) -> Role {
    Role {
        name: name.into(),
        resources: resources(grants),
        at: Location::default(),
    }
}

fn build(spec: &Spec) -> Policy {
    let clients = spec
        .iter()
        .zip(IDENTITIES)
        .filter_map(|(client, identity)| {
            let client = client.as_ref()?;
            let domain = client.domain.as_ref().map(|d| {
                let mut roles: Vec<Role> = Vec::new();
                for r in &d.roles {
                    let name = ROLE_NAMES[r.name].to_string();
                    if !roles.iter().any(|x| x.name == name) {
                        roles.push(role(&name, &r.grants));
                    }
                }
                Domain {
                    default_role: d.default.as_ref().map(|g| role("member", g)),
                    roles,
                    role_assignments: d
                        .assignments
                        .iter()
                        .zip(IDENTITIES)
                        .filter(|(_, subject)| {
                            hessra_console::token::is_strict_descendant(subject, identity)
                        })
                        .filter_map(|(a, subject)| {
                            a.map(|r| Assignment {
                                subject: subject.to_string(),
                                role: ROLE_NAMES[r].to_string(),
                                at: Location::default(),
                            })
                        })
                        .collect(),
                    at: Location::default(),
                }
            });
            Some(Client {
                identity: identity.to_string(),
                identifier_type: "san_uri".into(),
                at: Location::default(),
                resources: resources(&client.grants),
                identity_token_enabled: false,
                identity_token_duration: None,
                authorization_token_duration: None,
                delegatable: false,
                max_delegation_depth: None,
                operator: false,
                domain,
            })
        })
        .collect();
    Policy {
        ca_chain: None,
        clients,
    }
}

/// The realm an identity's permissions come from, if any.
fn realm_of(policy: &Policy, identity: &str) -> Option<String> {
    match policy::resolve(policy, identity) {
        policy::Resolution::DomainSubject { realm, .. }
        | policy::Resolution::DomainSubjectWithoutRole { realm } => Some(realm.identity.clone()),
        _ => None,
    }
}

fn names(change: &Change) -> Vec<&str> {
    let mut out = vec![change.subject.as_str()];
    if let ChangeKind::Assigned { subject, .. } = &change.kind {
        out.push(subject);
    }
    out
}

fn requests(old: &Policy, new: &Policy) -> Vec<Request> {
    let identities = IDENTITIES.iter().copied().chain([STRANGER]);
    let domains: Vec<Option<String>> = std::iter::once(None)
        .chain(
            old.clients
                .iter()
                .chain(&new.clients)
                .map(|c| Some(c.identity.clone())),
        )
        .collect();
    let mut out = Vec::new();
    for identity in identities {
        for (resource, operation) in PAIRS {
            for domain in &domains {
                out.push(Request {
                    identity: identity.to_string(),
                    resource: resource.to_string(),
                    operation: operation.to_string(),
                    domain: domain.clone(),
                });
            }
        }
    }
    out
}

fn check(old: &Policy, new: &Policy) -> Result<(), String> {
    let diff = policy::diff(old, new);
    for request in requests(old, new) {
        let (before, after) = (policy::decide(old, &request), policy::decide(new, &request));
        if before.allowed || !after.allowed {
            continue;
        }
        let involved: Vec<String> = [Some(request.identity.clone())]
            .into_iter()
            .chain([
                realm_of(old, &request.identity),
                realm_of(new, &request.identity),
            ])
            .chain([request.domain.clone()])
            .flatten()
            .collect();
        let named = diff
            .widening()
            .any(|c| names(c).iter().any(|n| involved.iter().any(|i| i == n)));
        if !named {
            let shown: Vec<String> = diff.changes.iter().map(ToString::to_string).collect();
            return Err(format!(
                "{request} went from deny ({}) to allow ({}), but no widening change names any of {involved:?}; the diff:\n{}",
                before.reason,
                after.reason,
                shown.join("\n")
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_new_allow_is_flagged_as_widening((old, new) in pair()) {
        let (old, new) = (build(&old), build(&new));
        if let Err(why) = check(&old, &new) {
            prop_assert!(false, "{}", why);
        }
    }
}

/// Known cases the generator found or that motivated a fix, kept as plain tests.
#[test]
fn a_removed_client_falling_to_a_realm_role_is_flagged() {
    let member = vec![true, false, false, false];
    let realm = ClientSpec {
        grants: vec![false; 4],
        domain: Some(DomainSpec {
            default: Some(member),
            roles: Vec::new(),
            assignments: vec![None; IDENTITIES.len()],
        }),
    };
    let inner = ClientSpec {
        grants: vec![false; 4],
        domain: None,
    };
    let old = build(&vec![
        Some(realm.clone()),
        Some(inner),
        None,
        None,
        None,
        None,
    ]);
    let new = build(&vec![Some(realm), None, None, None, None, None]);
    check(&old, &new).unwrap();
    assert!(
        policy::diff(&old, &new)
            .widening()
            .any(|c| c.subject == "uri:urn:a:x")
    );
}
