//! The typed, read-only view of `clients.toml`, read from a span-keeping parse so that every
//! element knows its line and column. Unknown keys and wrong types become findings here; they
//! are never silently dropped.

use serde::Serialize;
use toml_edit::{Item, TableLike};

use super::findings::{Finding, LineIndex, Location};

/// Server default when a client sets no `max_delegation_depth`.
pub const DEFAULT_MAX_DELEGATION_DEPTH: u32 = crate::token::DEFAULT_MAX_DELEGATION_DEPTH as u32;
/// Server default lifetime of authorization tokens, in seconds.
pub const DEFAULT_AUTHZ_TOKEN_DURATION: u64 = 300;

/// Longest duration a policy may set for any token: a year. Tokens here are meant to be short
/// lived, and a bound keeps `now + duration` far from overflowing.
pub const MAX_DURATION: u64 = 365 * 24 * 3600;
/// Server default cap on identity tokens when a client enables them without a duration.
pub const DEFAULT_IDENTITY_TOKEN_DURATION: u64 = 3600;

/// The whole policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Policy {
    pub ca_chain: Option<CaChain>,
    pub clients: Vec<Client>,
}

impl Policy {
    /// The longest a token issued under this policy can live, and what allows it: identity
    /// tokens (a client's cap, or a realm's for the tokens it mints) and authorization tokens.
    /// Offline delegation cannot extend a token, so nothing outlives this.
    pub fn longest_token_lifetime(&self) -> (u64, String) {
        let mut longest = (
            DEFAULT_AUTHZ_TOKEN_DURATION,
            "the default authorization-token lifetime".to_string(),
        );
        let mut consider = |seconds: u64, what: String| {
            if seconds > longest.0 {
                longest = (seconds, what);
            }
        };
        for client in &self.clients {
            if let Some(cap) = client.identity_token_cap() {
                consider(cap, format!("identity tokens of {}", client.identity));
            }
            if client.domain.is_some() {
                let cap = client
                    .identity_token_duration
                    .unwrap_or(DEFAULT_IDENTITY_TOKEN_DURATION);
                consider(cap, format!("tokens minted by realm {}", client.identity));
            }
            if let Some(duration) = client.authorization_token_duration {
                consider(
                    duration,
                    format!("authorization tokens of {}", client.identity),
                );
            }
        }
        longest
    }
}

/// `[cacerts] cert_chain`: the CA client certificates must chain to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaChain {
    pub pem: String,
    pub at: Location,
}

/// One `[[clients]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Client {
    /// The canonical subject: the identifier's `value`.
    pub identity: String,
    pub identifier_type: String,
    pub at: Location,
    pub resources: Vec<Resource>,
    pub identity_token_enabled: bool,
    pub identity_token_duration: Option<u64>,
    pub authorization_token_duration: Option<u64>,
    pub delegatable: bool,
    pub max_delegation_depth: Option<u32>,
    /// May read the server's status and audit feed.
    pub operator: bool,
    /// Present when the client is a realm.
    pub domain: Option<Domain>,
}

impl Client {
    /// The identity-token lifetime cap in force (the default when enabled without one).
    pub fn identity_token_cap(&self) -> Option<u64> {
        self.identity_token_enabled.then(|| {
            self.identity_token_duration
                .unwrap_or(DEFAULT_IDENTITY_TOKEN_DURATION)
        })
    }

    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.name == name)
    }
}

/// A resource and the operations granted on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    pub name: String,
    pub operations: Vec<String>,
    /// Services that must attest, in order, before the last may accept a token.
    pub service_chain: Vec<ChainNode>,
    /// Parties whose signoff a token for this resource needs.
    pub signers: Vec<SignerEntry>,
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainNode {
    pub component: String,
    pub public_key: String,
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignerEntry {
    pub component: String,
    pub authorization_service: String,
    pub public_key: String,
    /// Operations that need this signoff; empty means all.
    pub operations: Vec<String>,
    pub at: Location,
}

/// A realm's roles and assignments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Domain {
    pub default_role: Option<Role>,
    pub roles: Vec<Role>,
    pub role_assignments: Vec<Assignment>,
    pub at: Location,
}

impl Domain {
    /// A role by name, including the default role.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.default_role
            .iter()
            .chain(self.roles.iter())
            .find(|r| r.name == name)
    }

    pub fn assignment(&self, subject: &str) -> Option<&Assignment> {
        self.role_assignments.iter().find(|a| a.subject == subject)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Role {
    pub name: String,
    pub resources: Vec<Resource>,
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub subject: String,
    pub role: String,
    pub at: Location,
}

/// Reads the typed view from a parsed document, collecting findings for anything it cannot use.
pub(crate) struct Reader<'a> {
    lines: &'a LineIndex,
    pub findings: Vec<Finding>,
}

type Table<'a> = &'a dyn TableLike;

impl<'a> Reader<'a> {
    pub fn new(lines: &'a LineIndex) -> Self {
        Reader {
            lines,
            findings: Vec::new(),
        }
    }

    pub fn read(&mut self, root: &toml_edit::Table) -> Policy {
        self.unknown_keys(root, &["cacerts", "clients"], "the top level", root.span());
        let ca_chain = root.get("cacerts").and_then(|item| self.ca_chain(item));
        let clients = match root.get("clients") {
            None => Vec::new(),
            Some(item) => self
                .tables(item, "clients", "an array of [[clients]] tables")
                .into_iter()
                .filter_map(|(table, at)| self.client(table, at))
                .collect(),
        };
        Policy { ca_chain, clients }
    }

    fn at(&self, span: Option<std::ops::Range<usize>>) -> Location {
        span.map(|s| self.lines.locate(s.start)).unwrap_or_default()
    }

    fn error(&mut self, at: Location, code: &'static str, message: String) {
        self.findings.push(Finding::error(code, Some(at), message));
    }

    fn ca_chain(&mut self, item: &Item) -> Option<CaChain> {
        let Some(table) = item.as_table_like() else {
            self.error(
                self.at(item.span()),
                "wrong-type",
                "[cacerts] must be a table with a cert_chain string".into(),
            );
            return None;
        };
        self.unknown_keys(table, &["cert_chain"], "[cacerts]", item.span());
        let pem = self.string(table, "cert_chain", "[cacerts]", item.span(), true)?;
        let at = self.at(table.get("cert_chain").and_then(Item::span));
        Some(CaChain { pem, at })
    }

    /// Items that are tables: an array of tables, or an array of inline tables.
    fn tables<'t>(
        &mut self,
        item: &'t Item,
        what: &str,
        expected: &str,
    ) -> Vec<(Table<'t>, Location)> {
        if let Some(array) = item.as_array_of_tables() {
            return array
                .iter()
                .map(|t| (t as Table<'t>, self.at(t.span())))
                .collect();
        }
        if let Some(array) = item.as_array() {
            let mut out = Vec::new();
            for value in array.iter() {
                match value.as_inline_table() {
                    Some(table) => out.push((table as Table<'t>, self.at(value.span()))),
                    None => self.error(
                        self.at(value.span()),
                        "wrong-type",
                        format!(
                            "each entry of {what} must be a table, found {}",
                            value.type_name()
                        ),
                    ),
                }
            }
            return out;
        }
        self.error(
            self.at(item.span()),
            "wrong-type",
            format!("{what} must be {expected}, found {}", item.type_name()),
        );
        Vec::new()
    }

    fn unknown_keys(
        &mut self,
        table: Table<'_>,
        known: &[&str],
        context: &str,
        _span: Option<std::ops::Range<usize>>,
    ) {
        for (key, item) in table.iter() {
            if known.contains(&key) {
                continue;
            }
            let at = self.at(table
                .key(key)
                .and_then(|k| k.span())
                .or_else(|| item.span()));
            let hint = closest(key, known)
                .map(|k| format!(" (did you mean {k:?}?)"))
                .unwrap_or_default();
            self.error(
                at,
                "unknown-key",
                format!(
                    "unknown key {key:?} in {context}{hint}; known keys: {}",
                    known.join(", ")
                ),
            );
        }
    }

    fn string(
        &mut self,
        table: Table<'_>,
        key: &str,
        context: &str,
        span: Option<std::ops::Range<usize>>,
        required: bool,
    ) -> Option<String> {
        match table.get(key) {
            None => {
                if required {
                    self.error(
                        self.at(span),
                        "missing-key",
                        format!("{context} needs {key:?}"),
                    );
                }
                None
            }
            Some(item) => match item.as_str() {
                Some(text) => Some(text.to_string()),
                None => {
                    self.error(
                        self.at(item.span()),
                        "wrong-type",
                        format!(
                            "{key:?} in {context} must be a string, found {}",
                            item.type_name()
                        ),
                    );
                    None
                }
            },
        }
    }

    fn bool(&mut self, table: Table<'_>, key: &str, context: &str, default: bool) -> bool {
        let Some(item) = table.get(key) else {
            return default;
        };
        item.as_bool().unwrap_or_else(|| {
            self.error(
                self.at(item.span()),
                "wrong-type",
                format!(
                    "{key:?} in {context} must be true or false, found {}",
                    item.type_name()
                ),
            );
            default
        })
    }

    fn seconds(&mut self, table: Table<'_>, key: &str, context: &str) -> Option<u64> {
        let item = table.get(key)?;
        match item.as_integer() {
            Some(n) if n > 0 && n as u64 <= MAX_DURATION => Some(n as u64),
            Some(n) => {
                self.error(
                    self.at(item.span()),
                    "invalid-duration",
                    format!(
                        "{key:?} in {context} is {n}; durations are positive seconds, at most {MAX_DURATION} (a year)"
                    ),
                );
                None
            }
            None => {
                self.error(
                    self.at(item.span()),
                    "wrong-type",
                    format!(
                        "{key:?} in {context} must be a whole number of seconds, found {}",
                        item.type_name()
                    ),
                );
                None
            }
        }
    }

    fn strings(&mut self, table: Table<'_>, key: &str, context: &str) -> Option<Vec<String>> {
        let item = table.get(key)?;
        let Some(array) = item.as_array() else {
            self.error(
                self.at(item.span()),
                "wrong-type",
                format!(
                    "{key:?} in {context} must be an array of strings, found {}",
                    item.type_name()
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        for value in array.iter() {
            match value.as_str() {
                Some(text) => out.push(text.to_string()),
                None => self.error(
                    self.at(value.span()),
                    "wrong-type",
                    format!(
                        "{key:?} in {context} must contain strings, found {}",
                        value.type_name()
                    ),
                ),
            }
        }
        Some(out)
    }

    fn client(&mut self, table: Table<'_>, at: Location) -> Option<Client> {
        const KNOWN: &[&str] = &[
            "identifier",
            "resources",
            "identity_token_enabled",
            "identity_token_duration",
            "authorization_token_duration",
            "delegatable",
            "max_delegation_depth",
            "operator",
            "domain",
        ];
        let (identity, identifier_type, id_at) = self.identifier(table, at)?;
        let context = format!("client {identity}");
        self.unknown_keys(table, KNOWN, &context, None);
        let resources = match table.get("resources") {
            Some(item) => self.resources(item, &context),
            None => Vec::new(),
        };
        let max_delegation_depth = table.get("max_delegation_depth").and_then(|item| match item.as_integer() {
            // Deeper chains cost too much to evaluate: see `token::MAX_DELEGATION_DEPTH`.
            Some(n) if (0..=crate::token::MAX_DELEGATION_DEPTH as i64).contains(&n) => Some(n as u32),
            _ => {
                self.error(self.at(item.span()), "wrong-type", format!("\"max_delegation_depth\" in {context} must be a whole number from 0 to {}", crate::token::MAX_DELEGATION_DEPTH));
                None
            }
        });
        let domain = table
            .get("domain")
            .and_then(|item| self.domain(item, &identity));
        Some(Client {
            identity_token_enabled: self.bool(table, "identity_token_enabled", &context, false),
            identity_token_duration: self.seconds(table, "identity_token_duration", &context),
            authorization_token_duration: self.seconds(
                table,
                "authorization_token_duration",
                &context,
            ),
            delegatable: self.bool(table, "delegatable", &context, true),
            operator: self.bool(table, "operator", &context, false),
            max_delegation_depth,
            resources,
            domain,
            identity,
            identifier_type,
            at: id_at,
        })
    }

    fn identifier(&mut self, table: Table<'_>, at: Location) -> Option<(String, String, Location)> {
        let Some(item) = table.get("identifier") else {
            self.error(at, "missing-key", "this client has no identifier; write identifier = { type = \"san_uri\", value = \"uri:urn:…\" }".into());
            return None;
        };
        let id_at = self.at(item.span());
        let Some(identifier) = item.as_table_like() else {
            self.error(
                id_at,
                "wrong-type",
                format!(
                    "identifier must be a table {{ type = \"san_uri\", value = \"…\" }}, found {}",
                    item.type_name()
                ),
            );
            return None;
        };
        self.unknown_keys(identifier, &["type", "value"], "identifier", item.span());
        let kind = self
            .string(identifier, "type", "identifier", item.span(), true)
            .unwrap_or_default();
        let value = self.string(identifier, "value", "identifier", item.span(), true)?;
        Some((value, kind, id_at))
    }

    fn resources(&mut self, item: &Item, context: &str) -> Vec<Resource> {
        self.tables(item, "resources", "an array of { name, operations } tables")
            .into_iter()
            .filter_map(|(table, at)| self.resource(table, at, context))
            .collect()
    }

    fn resource(&mut self, table: Table<'_>, at: Location, context: &str) -> Option<Resource> {
        self.unknown_keys(
            table,
            &["name", "operations", "service_chain", "signers"],
            &format!("a resource of {context}"),
            None,
        );
        let name = match self.string(
            table,
            "name",
            &format!("a resource of {context}"),
            None,
            false,
        ) {
            Some(name) => name,
            None => {
                self.error(
                    at,
                    "missing-key",
                    format!("a resource of {context} has no name"),
                );
                return None;
            }
        };
        let here = format!("resource {name} of {context}");
        let operations = self.strings(table, "operations", &here).unwrap_or_default();
        let service_chain = match table.get("service_chain") {
            Some(item) => self
                .tables(
                    item,
                    "service_chain",
                    "an array of { component, public_key } tables",
                )
                .into_iter()
                .filter_map(|(node, at)| {
                    self.unknown_keys(
                        node,
                        &["component", "public_key"],
                        "a service_chain node",
                        None,
                    );
                    Some(ChainNode {
                        component: self.string(
                            node,
                            "component",
                            "a service_chain node",
                            None,
                            false,
                        )?,
                        public_key: self.string(
                            node,
                            "public_key",
                            "a service_chain node",
                            None,
                            false,
                        )?,
                        at,
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        let signers = match table.get("signers") {
            Some(item) => self
                .tables(item, "signers", "an array of signer tables")
                .into_iter()
                .filter_map(|(signer, at)| {
                    let known = [
                        "component",
                        "authorization_service",
                        "public_key",
                        "operations",
                    ];
                    self.unknown_keys(signer, &known, "a signer", None);
                    Some(SignerEntry {
                        component: self.string(signer, "component", "a signer", None, false)?,
                        authorization_service: self.string(
                            signer,
                            "authorization_service",
                            "a signer",
                            None,
                            false,
                        )?,
                        public_key: self.string(signer, "public_key", "a signer", None, false)?,
                        operations: self
                            .strings(signer, "operations", "a signer")
                            .unwrap_or_default(),
                        at,
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        Some(Resource {
            name,
            operations,
            service_chain,
            signers,
            at,
        })
    }

    fn domain(&mut self, item: &Item, realm: &str) -> Option<Domain> {
        let at = self.at(item.span());
        let Some(table) = item.as_table_like() else {
            self.error(
                at,
                "wrong-type",
                format!("domain of {realm} must be a table"),
            );
            return None;
        };
        let context = format!("the domain of {realm}");
        self.unknown_keys(
            table,
            &["default_role", "roles", "role_assignments"],
            &context,
            None,
        );
        let default_role = table
            .get("default_role")
            .and_then(|item| match item.as_table_like() {
                Some(role) => self.role(role, self.at(item.span()), &context),
                None => {
                    self.error(
                        self.at(item.span()),
                        "wrong-type",
                        format!("default_role of {realm} must be a table"),
                    );
                    None
                }
            });
        let roles = match table.get("roles") {
            Some(item) => self
                .tables(item, "roles", "an array of [[…roles]] tables")
                .into_iter()
                .filter_map(|(role, at)| self.role(role, at, &context))
                .collect(),
            None => Vec::new(),
        };
        let role_assignments = match table.get("role_assignments") {
            Some(item) => self
                .tables(
                    item,
                    "role_assignments",
                    "an array of { subject, role } tables",
                )
                .into_iter()
                .filter_map(|(assignment, at)| {
                    self.unknown_keys(assignment, &["subject", "role"], "a role assignment", None);
                    Some(Assignment {
                        subject: self.string(
                            assignment,
                            "subject",
                            "a role assignment",
                            None,
                            false,
                        )?,
                        role: self.string(assignment, "role", "a role assignment", None, false)?,
                        at,
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        Some(Domain {
            default_role,
            roles,
            role_assignments,
            at,
        })
    }

    fn role(&mut self, table: Table<'_>, at: Location, context: &str) -> Option<Role> {
        self.unknown_keys(
            table,
            &["name", "resources"],
            &format!("a role of {context}"),
            None,
        );
        let Some(name) = self.string(table, "name", &format!("a role of {context}"), None, false)
        else {
            self.error(
                at,
                "missing-key",
                format!("a role of {context} has no name"),
            );
            return None;
        };
        let here = format!("role {name} of {context}");
        let resources = table
            .get("resources")
            .map(|item| self.resources(item, &here))
            .unwrap_or_default();
        Some(Role {
            name,
            resources,
            at,
        })
    }
}

/// The known key closest to a misspelt one, if any is close.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim(key, k), *k))
        .filter(|(distance, k)| *distance <= (k.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Levenshtein distance (keys are short).
fn strsim(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_misspelt_keys() {
        let known = ["identity_token_enabled", "operator", "resources"];
        assert_eq!(
            closest("identity_token_enable", &known),
            Some("identity_token_enabled")
        );
        assert_eq!(closest("resource", &known), Some("resources"));
        assert_eq!(closest("colour", &known), None);
    }
}
