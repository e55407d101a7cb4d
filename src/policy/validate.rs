//! Semantic validation of a policy: identifiers, delegation hierarchy, realms and roles, the CA
//! chain, service-chain and signer keys. The one validator the server, console and CLI share.

use std::collections::{BTreeSet, HashMap};

use super::duration;
use super::findings::{Finding, Location};
use super::model::{Client, DEFAULT_AUTHZ_TOKEN_DURATION, Policy, Resource};
use crate::token::{self, keys};

/// Runs every semantic check. `now` (Unix seconds) decides whether the CA chain has expired.
pub fn validate(policy: &Policy, now: i64) -> Vec<Finding> {
    let mut findings = Vec::new();
    let index = policy.identity_index();
    check_identifiers(policy, &mut findings);
    for client in &policy.clients {
        let before = findings.len();
        check_resources(
            &client.resources,
            &format!("client {}", client.identity),
            &mut findings,
        );
        if let Some(parent) = policy.configured_parent(&client.identity, &index) {
            check_against_parent(client, parent, &mut findings);
        }
        check_realm(client, &index, &mut findings);
        for finding in &mut findings[before..] {
            finding
                .subject
                .get_or_insert_with(|| client.identity.clone());
        }
    }
    if let Some(ca) = &policy.ca_chain {
        check_ca_chain(&ca.pem, ca.at, now, &mut findings);
    }
    findings
}

fn check_identifiers(policy: &Policy, findings: &mut Vec<Finding>) {
    let mut seen: HashMap<&str, Location> = HashMap::new();
    for client in &policy.clients {
        let at = Some(client.at);
        if client.identifier_type != "san_uri" {
            findings.push(Finding::error(
                "identifier-type",
                at,
                format!(
                    "identifier type {:?} of {} is not supported; use type = \"san_uri\"",
                    client.identifier_type, client.identity
                ),
            ));
        }
        let before = findings.len();
        if let Err(e) = token::validate_identity(&client.identity) {
            findings.push(Finding::error("malformed-identifier", at, e.to_string()));
        } else if !client.identity.starts_with("uri:") {
            findings.push(Finding::warning(
                "identifier-scheme",
                at,
                format!(
                    "{} does not start with \"uri:\"; certificates carry URI SANs and tokens name identities as uri:…",
                    client.identity
                ),
            ));
        }
        if let Some(first) = seen.insert(client.identity.as_str(), client.at) {
            findings.push(Finding::error(
                "duplicate-identifier",
                at,
                format!(
                    "{} is configured twice (first at line {}); merge the two entries",
                    client.identity, first.line
                ),
            ));
        }
        for finding in &mut findings[before..] {
            finding.subject = Some(client.identity.clone());
        }
    }
}

fn check_resources(resources: &[Resource], owner: &str, findings: &mut Vec<Finding>) {
    let mut names = BTreeSet::new();
    for resource in resources {
        let at = Some(resource.at);
        if !names.insert(resource.name.as_str()) {
            findings.push(Finding::error(
                "duplicate-resource",
                at,
                format!(
                    "resource {} appears twice for {owner}; merge its operations into one entry",
                    resource.name
                ),
            ));
        }
        if resource.operations.is_empty() {
            findings.push(Finding::error(
                "empty-operations",
                at,
                format!(
                    "resource {} of {owner} grants no operations; list them or remove the resource",
                    resource.name
                ),
            ));
        }
        let mut ops = BTreeSet::new();
        for op in &resource.operations {
            if op.trim().is_empty() {
                findings.push(Finding::error(
                    "empty-operation",
                    at,
                    format!(
                        "resource {} of {owner} has an empty operation name",
                        resource.name
                    ),
                ));
            } else if !ops.insert(op.as_str()) {
                findings.push(Finding::warning(
                    "duplicate-operation",
                    at,
                    format!(
                        "operation {op} is listed twice on {} for {owner}",
                        resource.name
                    ),
                ));
            }
        }
        check_keys(resource, owner, findings);
    }
}

fn check_keys(resource: &Resource, owner: &str, findings: &mut Vec<Finding>) {
    for node in &resource.service_chain {
        if let Err(e) = keys::parse_key_string(&node.public_key) {
            findings.push(Finding::error(
                "malformed-key",
                Some(node.at),
                format!(
                    "service-chain node {} of {} ({owner}): {e}",
                    node.component, resource.name
                ),
            ));
        }
    }
    for signer in &resource.signers {
        if let Err(e) = keys::parse_key_string(&signer.public_key) {
            findings.push(Finding::error(
                "malformed-key",
                Some(signer.at),
                format!(
                    "signer {} of {} ({owner}): {e}",
                    signer.component, resource.name
                ),
            ));
        }
        if signer.authorization_service.trim().is_empty() {
            findings.push(Finding::error(
                "missing-signer-service",
                Some(signer.at),
                format!("signer {} of {} ({owner}) has no authorization_service to collect its signoff from", signer.component, resource.name),
            ));
        }
        for op in signer
            .operations
            .iter()
            .filter(|op| !resource.operations.contains(op))
        {
            findings.push(Finding::warning(
                "signer-operation",
                Some(signer.at),
                format!(
                    "signer {} of {} names operation {op}, which the resource does not grant",
                    signer.component, resource.name
                ),
            ));
        }
    }
}

fn check_against_parent(child: &Client, parent: &Client, findings: &mut Vec<Finding>) {
    let at = Some(child.at);
    for resource in &child.resources {
        for op in &resource.operations {
            let parent_has = parent
                .resource(&resource.name)
                .is_some_and(|r| r.operations.contains(op));
            if !parent_has {
                findings.push(Finding::error(
                    "exceeds-parent",
                    Some(resource.at),
                    format!(
                        "{} may {op} on {}, which its parent {} may not; a delegated identity cannot exceed its parent — grant it to the parent or remove it here",
                        child.identity, resource.name, parent.identity
                    ),
                ));
            }
        }
    }
    if let (Some(child_cap), Some(parent_cap)) =
        (child.identity_token_cap(), parent.identity_token_cap())
        && child_cap > parent_cap
    {
        findings.push(Finding::error(
            "exceeds-parent",
            at,
            format!(
                "identity tokens of {} last {}, longer than its parent {}'s {}; each level must be shorter lived",
                child.identity,
                duration::format(child_cap),
                parent.identity,
                duration::format(parent_cap)
            ),
        ));
    }
    let authz = |c: &Client| {
        c.authorization_token_duration
            .unwrap_or(DEFAULT_AUTHZ_TOKEN_DURATION)
    };
    if authz(child) > authz(parent) {
        findings.push(Finding::error(
            "exceeds-parent",
            at,
            format!(
                "authorization tokens of {} last {}, longer than its parent {}'s {}",
                child.identity,
                duration::format(authz(child)),
                parent.identity,
                duration::format(authz(parent))
            ),
        ));
    }
    if !parent.identity_token_enabled || !parent.delegatable {
        let why = if parent.identity_token_enabled {
            "is not delegatable"
        } else {
            "cannot issue identity tokens"
        };
        findings.push(Finding::warning(
            "unreachable-delegate",
            at,
            format!(
                "{} sits under {}, which {why}, so it can never receive a delegated token (it can still use its own certificate)",
                child.identity, parent.identity
            ),
        ));
    }
}

fn check_realm(realm: &Client, index: &HashMap<&str, usize>, findings: &mut Vec<Finding>) {
    let Some(domain) = &realm.domain else { return };
    let mut role_names: HashMap<&str, Location> = HashMap::new();
    for role in domain.default_role.iter().chain(domain.roles.iter()) {
        if let Some(first) = role_names.insert(role.name.as_str(), role.at) {
            findings.push(Finding::error(
                "duplicate-role",
                Some(role.at),
                format!(
                    "role {} of realm {} is defined twice (first at line {})",
                    role.name, realm.identity, first.line
                ),
            ));
        }
        check_resources(
            &role.resources,
            &format!("role {} of {}", role.name, realm.identity),
            findings,
        );
    }
    let mut subjects = BTreeSet::new();
    for assignment in &domain.role_assignments {
        let at = Some(assignment.at);
        let before = findings.len();
        if domain.role(&assignment.role).is_none() {
            let known: Vec<&str> = role_names.keys().copied().collect();
            findings.push(Finding::error(
                "unknown-role",
                at,
                format!(
                    "{} is assigned role {}, which realm {} does not define (roles: {})",
                    assignment.subject,
                    assignment.role,
                    realm.identity,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        if !token::is_strict_descendant(&assignment.subject, &realm.identity) {
            findings.push(Finding::error(
                "outside-domain",
                at,
                format!(
                    "{} is outside realm {}'s domain; realm subjects are written {}:NAME",
                    assignment.subject, realm.identity, realm.identity
                ),
            ));
        }
        if !subjects.insert(assignment.subject.as_str()) {
            findings.push(Finding::error(
                "duplicate-assignment",
                at,
                format!(
                    "{} is assigned twice in realm {}; keep one role",
                    assignment.subject, realm.identity
                ),
            ));
        }
        if index.contains_key(assignment.subject.as_str()) {
            findings.push(Finding::warning(
                "assignment-shadowed",
                at,
                format!(
                    "{} is also configured as a client; its client entry decides what it may do, not this role",
                    assignment.subject
                ),
            ));
        }
        for finding in &mut findings[before..] {
            finding.subject = Some(assignment.subject.clone());
        }
    }
    if domain.default_role.is_none() && domain.roles.is_empty() {
        findings.push(Finding::warning(
            "empty-realm",
            Some(domain.at),
            format!(
                "realm {} defines no roles, so the identities it mints may do nothing",
                realm.identity
            ),
        ));
    }
}

fn check_ca_chain(pem: &str, at: Location, now: i64, findings: &mut Vec<Finding>) {
    let mut count = 0;
    for (i, block) in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()).enumerate() {
        let block = match block {
            Ok(block) => block,
            Err(e) => {
                findings.push(Finding::error(
                    "ca-chain",
                    Some(at),
                    format!(
                        "certificate {} of [cacerts] cert_chain is not valid PEM: {e}",
                        i + 1
                    ),
                ));
                return;
            }
        };
        let cert = match block.parse_x509() {
            Ok(cert) => cert,
            Err(e) => {
                findings.push(Finding::error(
                    "ca-chain",
                    Some(at),
                    format!(
                        "certificate {} of [cacerts] cert_chain does not parse as X.509: {e}",
                        i + 1
                    ),
                ));
                continue;
            }
        };
        count += 1;
        let subject = cert.subject().to_string();
        let validity = cert.validity();
        if validity.not_after.timestamp() < now {
            findings.push(Finding::error(
                "ca-expired",
                Some(at),
                format!(
                    "CA certificate {subject} expired at {}; no client certificate can chain to it — replace it",
                    token::clock::format_unix(validity.not_after.timestamp())
                ),
            ));
        } else if validity.not_before.timestamp() > now {
            findings.push(Finding::warning(
                "ca-not-yet-valid",
                Some(at),
                format!(
                    "CA certificate {subject} is not valid before {}",
                    token::clock::format_unix(validity.not_before.timestamp())
                ),
            ));
        }
        if !cert.is_ca() {
            findings.push(Finding::warning("ca-not-ca", Some(at), format!("certificate {subject} in [cacerts] is not a CA certificate (basicConstraints CA:FALSE)")));
        }
    }
    if count == 0 && !findings.iter().any(|f| f.code == "ca-chain") {
        findings.push(Finding::error("ca-chain", Some(at), "[cacerts] cert_chain holds no certificate; paste PEM blocks '-----BEGIN CERTIFICATE-----'".into()));
    }
}
