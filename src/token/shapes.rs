//! Recognises the Hessra Datalog shapes in printed block source: each block becomes a
//! `BlockShape` (subject, actor check, expiry, domain, rights, attestations…) and a role.
//!
//! Reading printed Datalog is sound here because `codec` refuses tokens whose strings contain
//! quotes or control characters, so every quoted run below is exactly one string term.

use serde::Serialize;

use super::lineage::Ancestor;
use super::revocation::canonical_revocation_id_hex;

/// What a block's actor check allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActorCheck {
    pub identity: String,
    /// `$a == S || $a.starts_with(S + ":")` (delegatable) versus `$a == S` (exact).
    pub includes_descendants: bool,
}

/// One block, read statement by statement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockShape {
    pub subject: Option<String>,
    pub actor: Option<ActorCheck>,
    /// Earliest `check if time($time), $time < N` in the block.
    pub expiry: Option<i64>,
    pub domain: Option<String>,
    pub domain_subject_rule: bool,
    pub rights: Vec<Right>,
    pub authority_rights_check: bool,
    pub prefix_trusted_key: Option<String>,
    pub prefix_check: Option<String>,
    pub prefix_added: bool,
    pub service: Option<String>,
    pub namespace: Option<String>,
    pub service_nodes: Vec<(String, String)>,
    pub signoffs: Vec<(String, String)>,
    /// `lineage(generation, "id", key id)` facts: the tokens a refreshed token descends from
    /// (read from the authority block only; see `src/token/lineage.rs`).
    pub lineage: Vec<Ancestor>,
    /// Statements that match no Hessra shape (delegation policies, custom rules).
    pub other: Vec<String>,
}

/// A `right(subject, resource, operation)` fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Right {
    pub subject: String,
    pub resource: String,
    pub operation: String,
}

/// What a block does in the token, as a reviewer would name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum BlockRole {
    Authority,
    Delegation { to: String },
    Jit,
    ServiceAttestation { service: String },
    MultiPartySignoff { namespace: String },
    Prefix { prefix: String },
    Other,
}

impl std::fmt::Display for BlockRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockRole::Authority => write!(f, "authority"),
            BlockRole::Delegation { to } => write!(f, "delegation to {to}"),
            BlockRole::Jit => write!(f, "JIT (short expiry)"),
            BlockRole::ServiceAttestation { service } => {
                write!(f, "service attestation ({service})")
            }
            BlockRole::MultiPartySignoff { namespace } => {
                write!(f, "multi-party signoff ({namespace})")
            }
            BlockRole::Prefix { prefix } => write!(f, "prefix restriction ({prefix})"),
            BlockRole::Other => write!(f, "other"),
        }
    }
}

const ACTOR_DELEGATABLE: &str = r#"check if actor($a), $a == "{s}" || $a.starts_with("{s}" + ":")"#;
const ACTOR_EXACT: &str = r#"check if actor($a), $a == "{s}""#;
const TIME_CHECK: &str = "check if time($time), $time < {n}";
const DOMAIN_CHECK: &str = r#"check if domain("{s}")"#;
const DOMAIN_SUBJECT_RULE: &str = "subject($d, $s) <- domain($d), subject($s)";
const SUBJECT_FACT: &str = r#"subject("{s}")"#;
const RIGHT_FACT: &str = r#"right("{s}", "{s}", "{s}")"#;
const AUTHORITY_CHECK: &str =
    "check if subject($sub), resource($res), operation($op), right($sub, $res, $op)";
const PREFIX_TRUST_CHECK: &str = "check if prefix_added(true) trusting {k}";
const PREFIX_CHECK: &str = r#"check if prefix("{s}")"#;
const PREFIX_ADDED_FACT: &str = "prefix_added(true)";
const SERVICE_FACT: &str = r#"service("{s}")"#;
const NAMESPACE_FACT: &str = r#"namespace("{s}")"#;
const NODE_RULE: &str = r#"node($s, "{s}") <- service($s) trusting {k}"#;
const SIGNOFF_CHECK: &str = r#"check if namespace("{s}") trusting {k}"#;
const LINEAGE_FACT: &str = r#"lineage({n}, "{s}", {n})"#;
/// An ancestor verified by a key without an id (a server with a single root key).
const LINEAGE_FACT_UNKEYED: &str = r#"lineage({n}, "{s}")"#;
/// The verifier-side check added per service-chain node (not found in tokens).
pub const NODE_CHECK: &str = r#"check if node("{s}", "{s}") trusting authority, {k}"#;

/// Matches `text` against a template whose `{s}` (string body), `{n}` (integer) and `{k}`
/// (key string) placeholders capture, returning the captures in order.
pub fn match_template(template: &str, text: &str) -> Option<Vec<String>> {
    let mut captures = Vec::new();
    let mut rest = text;
    let mut pattern = template;
    while !pattern.is_empty() {
        let Some(open) = pattern.find('{') else {
            return (rest == pattern).then_some(captures);
        };
        rest = rest.strip_prefix(&pattern[..open])?;
        let kind = pattern.get(open + 1..open + 2)?;
        pattern = &pattern[open + 3..];
        let accepts: fn(char) -> bool = match kind {
            "s" => |c| c != '"',
            "n" => |c| c.is_ascii_digit() || c == '-',
            _ => |c| c.is_ascii_alphanumeric() || c == '/',
        };
        let end = rest.find(|c: char| !accepts(c)).unwrap_or(rest.len());
        if kind != "s" && end == 0 {
            return None;
        }
        captures.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    rest.is_empty().then_some(captures)
}

fn one(template: &str, text: &str) -> Option<String> {
    match_template(template, text).and_then(|mut c| c.pop())
}

fn two(template: &str, text: &str) -> Option<(String, String)> {
    let mut c = match_template(template, text)?;
    let second = c.pop()?;
    Some((c.pop()?, second))
}

impl BlockShape {
    /// Reads one block's printed source.
    pub fn read(source: &str) -> BlockShape {
        let mut shape = BlockShape::default();
        for line in source.lines() {
            let statement = line.trim().trim_end_matches(';').trim();
            if !statement.is_empty() {
                shape.add(statement);
            }
        }
        shape
    }

    fn add(&mut self, s: &str) {
        // The first actor check is the block's own (authority or delegation); a later one is
        // an extra restriction, shown as such rather than taken for the delegation target.
        if let Some(c) =
            match_template(ACTOR_DELEGATABLE, s).filter(|c| c[0] == c[1] && self.actor.is_none())
        {
            self.actor = Some(ActorCheck {
                identity: c[0].clone(),
                includes_descendants: true,
            });
        } else if let Some(identity) = one(ACTOR_EXACT, s).filter(|_| self.actor.is_none()) {
            self.actor = Some(ActorCheck {
                identity,
                includes_descendants: false,
            });
        } else if let Some(n) = one(TIME_CHECK, s).and_then(|n| n.parse::<i64>().ok()) {
            self.expiry = Some(self.expiry.map_or(n, |e| e.min(n)));
        } else if let Some(domain) = one(DOMAIN_CHECK, s) {
            self.domain = Some(domain);
        } else if s == DOMAIN_SUBJECT_RULE {
            self.domain_subject_rule = true;
        } else if let Some(subject) = one(SUBJECT_FACT, s) {
            self.subject = Some(subject);
        } else if let Some(c) = match_template(RIGHT_FACT, s) {
            self.rights.push(Right {
                subject: c[0].clone(),
                resource: c[1].clone(),
                operation: c[2].clone(),
            });
        } else if s == AUTHORITY_CHECK {
            self.authority_rights_check = true;
        } else if let Some(key) = one(PREFIX_TRUST_CHECK, s) {
            self.prefix_trusted_key = Some(key);
        } else if let Some(prefix) = one(PREFIX_CHECK, s) {
            self.prefix_check = Some(prefix);
        } else if s == PREFIX_ADDED_FACT {
            self.prefix_added = true;
        } else if let Some(service) = one(SERVICE_FACT, s) {
            self.service = Some(service);
        } else if let Some(namespace) = one(NAMESPACE_FACT, s) {
            self.namespace = Some(namespace);
        } else if let Some(node) = two(NODE_RULE, s) {
            self.service_nodes.push(node);
        } else if let Some(signer) = two(SIGNOFF_CHECK, s) {
            self.signoffs.push(signer);
        } else if let Some(ancestor) = read_ancestor(s) {
            self.lineage.push(ancestor);
        } else {
            self.other.push(s.to_string());
        }
    }

    /// The role of a block at `index` (0 is the authority block).
    pub fn role(&self, index: usize) -> BlockRole {
        if index == 0 {
            return BlockRole::Authority;
        }
        if let Some(actor) = self.actor.as_ref().filter(|a| a.includes_descendants) {
            return BlockRole::Delegation {
                to: actor.identity.clone(),
            };
        }
        if let Some(service) = &self.service {
            return BlockRole::ServiceAttestation {
                service: service.clone(),
            };
        }
        if let Some(namespace) = &self.namespace {
            return BlockRole::MultiPartySignoff {
                namespace: namespace.clone(),
            };
        }
        if let (Some(prefix), true) = (&self.prefix_check, self.prefix_added) {
            return BlockRole::Prefix {
                prefix: prefix.clone(),
            };
        }
        if self.expiry.is_some() && self.only_expiry() {
            return BlockRole::Jit;
        }
        BlockRole::Other
    }

    fn only_expiry(&self) -> bool {
        let empty = BlockShape {
            expiry: self.expiry,
            ..BlockShape::default()
        };
        *self == empty
    }
}

/// What a block's symbol and key ids stand for: the protobuf names symbols, variables and the
/// keys of `trusting` annotations by index.
pub(crate) trait Resolve {
    fn symbol(&self, id: u64) -> Option<&str>;
    /// The key string (`ed25519/…`, `secp256r1/…`) of a `trusting` annotation's key index.
    fn key(&self, index: i64) -> Option<String>;
}

/// Reading a block's shape straight from its protobuf, for the verifiers' hot path: the same
/// shapes [`BlockShape::read`] finds in printed Datalog, recognised structure by structure, so
/// nothing is printed. `other` then holds a short description of each unrecognised statement
/// rather than its source (inspection prints sources; verification needs only the shape).
/// `tests` below check that both readings agree on every shape and on hostile blocks.
pub(crate) mod proto {
    use biscuit_auth::format::schema::{self, op, op_binary, scope, term};

    use super::{ActorCheck, Ancestor, BlockShape, Resolve, Right, canonical_revocation_id_hex};

    enum Value<'a> {
        Str(&'a str),
        Var(&'a str),
        Int(i64),
        True,
    }

    fn value<'a>(term: &schema::Term, r: &'a impl Resolve) -> Option<Value<'a>> {
        match term.content.as_ref()? {
            term::Content::String(id) => r.symbol(*id).map(Value::Str),
            term::Content::Variable(id) => r.symbol(u64::from(*id)).map(Value::Var),
            term::Content::Integer(n) => Some(Value::Int(*n)),
            term::Content::Bool(true) => Some(Value::True),
            _ => None,
        }
    }

    /// The terms of `atom` when it is `name(…)` with `arity` terms.
    pub(crate) fn atom<'t>(
        atom: &'t schema::Predicate,
        name: &str,
        arity: usize,
        r: &impl Resolve,
    ) -> Option<&'t [schema::Term]> {
        (r.symbol(atom.name) == Some(name) && atom.terms.len() == arity)
            .then_some(atom.terms.as_slice())
    }

    pub(crate) fn string<'a>(term: &schema::Term, r: &'a impl Resolve) -> Option<&'a str> {
        match value(term, r)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn var(term: &schema::Term, name: &str, r: &impl Resolve) -> bool {
        matches!(value(term, r), Some(Value::Var(v)) if v == name)
    }

    fn is_true(term: &schema::Term, r: &impl Resolve) -> bool {
        matches!(value(term, r), Some(Value::True))
    }

    /// `name("…")` with one string term: the string.
    pub(crate) fn string_atom<'a>(
        predicate: &schema::Predicate,
        name: &str,
        r: &'a impl Resolve,
    ) -> Option<&'a str> {
        atom(predicate, name, 1, r).and_then(|t| string(&t[0], r))
    }

    /// The key of a single `trusting KEY` annotation.
    fn trusted_key(scopes: &[schema::Scope], r: &impl Resolve) -> Option<String> {
        match scopes {
            [only] => match only.content.as_ref()? {
                scope::Content::PublicKey(index) => r.key(*index),
                scope::Content::ScopeType(_) => None,
            },
            _ => None,
        }
    }

    fn binary(op: &schema::Op, kind: op_binary::Kind) -> bool {
        matches!(&op.content, Some(op::Content::Binary(b)) if b.kind == kind as i32)
    }

    fn op_value<'a>(op: &schema::Op, r: &'a impl Resolve) -> Option<Value<'a>> {
        match &op.content {
            Some(op::Content::Value(term)) => value(term, r),
            _ => None,
        }
    }

    fn op_var(op: &schema::Op, name: &str, r: &impl Resolve) -> bool {
        matches!(op_value(op, r), Some(Value::Var(v)) if v == name)
    }

    fn op_string<'a>(op: &schema::Op, r: &'a impl Resolve) -> Option<&'a str> {
        match op_value(op, r)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// `$a == "S"` (datalog 3.3's `==`; the strict `===` prints differently and is not the
    /// shape): the identity.
    pub(crate) fn exact_actor<'a>(ops: &[schema::Op], r: &'a impl Resolve) -> Option<&'a str> {
        match ops {
            [a, s, eq] if op_var(a, "a", r) && binary(eq, op_binary::Kind::HeterogeneousEqual) => {
                op_string(s, r)
            }
            _ => None,
        }
    }

    /// `$a.starts_with("S" + ":")`: the identity.
    fn descendant_actor<'a>(ops: &[schema::Op], r: &'a impl Resolve) -> Option<&'a str> {
        match ops {
            [a, s, colon, add, prefix]
                if op_var(a, "a", r)
                    && op_string(colon, r) == Some(":")
                    && binary(add, op_binary::Kind::Add)
                    && binary(prefix, op_binary::Kind::Prefix) =>
            {
                op_string(s, r)
            }
            _ => None,
        }
    }

    /// `$a == "S" || $a.starts_with("S" + ":")`, with datalog 3.3's lazy `||` (its right side
    /// is a closure; the strict `||!` prints differently and is not the shape): both identities.
    pub(crate) fn delegatable_actor<'a>(
        ops: &[schema::Op],
        r: &'a impl Resolve,
    ) -> Option<(&'a str, &'a str)> {
        let (last, rest) = ops.split_last()?;
        if !binary(last, op_binary::Kind::LazyOr) {
            return None;
        }
        let (closure, left) = rest.split_last()?;
        let Some(op::Content::Closure(closure)) = &closure.content else {
            return None;
        };
        if !closure.params.is_empty() {
            return None;
        }
        Some((exact_actor(left, r)?, descendant_actor(&closure.ops, r)?))
    }

    /// `lineage(generation, "id", key id)` or `lineage(generation, "id")`, as
    /// `super::read_ancestor` reads it from printed Datalog.
    fn ancestor(fact: &schema::Predicate, r: &impl Resolve) -> Option<Ancestor> {
        let terms = atom(fact, "lineage", 3, r).or_else(|| atom(fact, "lineage", 2, r))?;
        let integer = |term: &schema::Term| match value(term, r)? {
            Value::Int(n) => u32::try_from(n).ok(),
            _ => None,
        };
        let generation = integer(&terms[0])?;
        let id = string(&terms[1], r)?;
        let root_key_id = match terms.get(2) {
            Some(term) => Some(integer(term)?),
            None => None,
        };
        Some(Ancestor {
            generation,
            revocation_id: canonical_revocation_id_hex(id).unwrap_or_else(|| id.to_string()),
            root_key_id,
        })
    }

    /// `$time < N`: N.
    pub(crate) fn before(ops: &[schema::Op], r: &impl Resolve) -> Option<i64> {
        match ops {
            [t, n, lt] if op_var(t, "time", r) && binary(lt, op_binary::Kind::LessThan) => {
                match op_value(n, r)? {
                    Value::Int(n) => Some(n),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `subject($d, $s) <- domain($d), subject($s)`, without expressions or trust annotations.
    pub(crate) fn is_realm_rule(rule: &schema::Rule, r: &impl Resolve) -> bool {
        rule.expressions.is_empty()
            && rule.scope.is_empty()
            && atom(&rule.head, "subject", 2, r)
                .is_some_and(|t| var(&t[0], "d", r) && var(&t[1], "s", r))
            && matches!(rule.body.as_slice(), [domain, subject]
                if atom(domain, "domain", 1, r).is_some_and(|t| var(&t[0], "d", r))
                    && atom(subject, "subject", 1, r).is_some_and(|t| var(&t[0], "s", r)))
    }

    /// The body of `check if subject($sub), resource($res), operation($op),
    /// right($sub, $res, $op)` (a query without expressions).
    pub(crate) fn is_rights_check(query: &schema::Rule, r: &impl Resolve) -> bool {
        query.expressions.is_empty()
            && matches!(query.body.as_slice(), [subject, resource, operation, right]
            if atom(subject, "subject", 1, r).is_some_and(|t| var(&t[0], "sub", r))
                && atom(resource, "resource", 1, r).is_some_and(|t| var(&t[0], "res", r))
                && atom(operation, "operation", 1, r).is_some_and(|t| var(&t[0], "op", r))
                && atom(right, "right", 3, r).is_some_and(|t| {
                    var(&t[0], "sub", r) && var(&t[1], "res", r) && var(&t[2], "op", r)
                }))
    }

    /// `right("subject", "resource", "operation")`: the three strings.
    pub(crate) fn right_fact<'a>(
        fact: &schema::Predicate,
        r: &'a impl Resolve,
    ) -> Option<(&'a str, &'a str, &'a str)> {
        let terms = atom(fact, "right", 3, r)?;
        Some((
            string(&terms[0], r)?,
            string(&terms[1], r)?,
            string(&terms[2], r)?,
        ))
    }

    impl BlockShape {
        /// Reads one decoded block.
        pub(crate) fn from_proto(block: &schema::Block, r: &impl Resolve) -> BlockShape {
            let mut shape = BlockShape::default();
            for (index, fact) in block.facts.iter().enumerate() {
                if !shape.add_fact(&fact.predicate, r) {
                    shape.other.push(format!("fact {index}"));
                }
            }
            for (index, rule) in block.rules.iter().enumerate() {
                if !shape.add_rule(rule, r) {
                    shape.other.push(format!("rule {index}"));
                }
            }
            for (index, check) in block.checks.iter().enumerate() {
                let plain = check.kind.unwrap_or(0) == schema::check::Kind::One as i32;
                match check.queries.as_slice() {
                    [query] if plain && shape.add_check(query, r) => {}
                    _ => shape.other.push(format!("check {index}")),
                }
            }
            shape
        }

        fn add_fact(&mut self, fact: &schema::Predicate, r: &impl Resolve) -> bool {
            if let Some(subject) = string_atom(fact, "subject", r) {
                self.subject = Some(subject.to_string());
            } else if atom(fact, "right", 3, r).is_some() {
                let Some((subject, resource, operation)) = right_fact(fact, r) else {
                    return false;
                };
                self.rights.push(Right {
                    subject: subject.into(),
                    resource: resource.into(),
                    operation: operation.into(),
                });
            } else if atom(fact, "prefix_added", 1, r).is_some_and(|t| is_true(&t[0], r)) {
                self.prefix_added = true;
            } else if let Some(service) = string_atom(fact, "service", r) {
                self.service = Some(service.to_string());
            } else if let Some(namespace) = string_atom(fact, "namespace", r) {
                self.namespace = Some(namespace.to_string());
            } else if let Some(ancestor) = ancestor(fact, r) {
                self.lineage.push(ancestor);
            } else {
                return false;
            }
            true
        }

        fn add_rule(&mut self, rule: &schema::Rule, r: &impl Resolve) -> bool {
            if !rule.expressions.is_empty() {
                return false;
            }
            let head = &rule.head;
            if is_realm_rule(rule, r) {
                self.domain_subject_rule = true;
                return true;
            }
            let node = atom(head, "node", 2, r)
                .filter(|t| var(&t[0], "s", r))
                .and_then(|t| string(&t[1], r));
            let serviced = matches!(rule.body.as_slice(), [service]
                if atom(service, "service", 1, r).is_some_and(|t| var(&t[0], "s", r)));
            match (node, serviced, trusted_key(&rule.scope, r)) {
                (Some(component), true, Some(key)) => {
                    self.service_nodes.push((component.to_string(), key));
                    true
                }
                _ => false,
            }
        }

        fn add_check(&mut self, query: &schema::Rule, r: &impl Resolve) -> bool {
            let trusting = trusted_key(&query.scope, r);
            if !query.scope.is_empty() {
                return self.add_trusting_check(query, trusting, r);
            }
            match (query.body.as_slice(), query.expressions.as_slice()) {
                ([actor], [condition])
                    if self.actor.is_none()
                        && atom(actor, "actor", 1, r).is_some_and(|t| var(&t[0], "a", r)) =>
                {
                    if let Some((exact, under)) = delegatable_actor(&condition.ops, r) {
                        if exact != under {
                            return false;
                        }
                        self.actor = Some(ActorCheck {
                            identity: exact.to_string(),
                            includes_descendants: true,
                        });
                    } else if let Some(exact) = exact_actor(&condition.ops, r) {
                        self.actor = Some(ActorCheck {
                            identity: exact.to_string(),
                            includes_descendants: false,
                        });
                    } else {
                        return false;
                    }
                    true
                }
                ([time], [condition])
                    if atom(time, "time", 1, r).is_some_and(|t| var(&t[0], "time", r)) =>
                {
                    let Some(n) = before(&condition.ops, r) else {
                        return false;
                    };
                    self.expiry = Some(self.expiry.map_or(n, |e| e.min(n)));
                    true
                }
                ([single], []) => {
                    if let Some(domain) = string_atom(single, "domain", r) {
                        self.domain = Some(domain.to_string());
                    } else if let Some(prefix) = string_atom(single, "prefix", r) {
                        self.prefix_check = Some(prefix.to_string());
                    } else {
                        return false;
                    }
                    true
                }
                ([_, _, _, _], []) => {
                    let holds = is_rights_check(query, r);
                    self.authority_rights_check |= holds;
                    holds
                }
                _ => false,
            }
        }

        /// `check if prefix_added(true) trusting K` and `check if namespace("C") trusting K`.
        fn add_trusting_check(
            &mut self,
            query: &schema::Rule,
            key: Option<String>,
            r: &impl Resolve,
        ) -> bool {
            let (Some(key), [single], []) =
                (key, query.body.as_slice(), query.expressions.as_slice())
            else {
                return false;
            };
            if atom(single, "prefix_added", 1, r).is_some_and(|t| is_true(&t[0], r)) {
                self.prefix_trusted_key = Some(key);
            } else if let Some(component) = string_atom(single, "namespace", r) {
                self.signoffs.push((component.to_string(), key));
            } else {
                return false;
            }
            true
        }
    }
}

/// A `lineage` fact, its id in canonical form; a generation or key id out of range is no
/// lineage (and stays among the unrecognised statements).
fn read_ancestor(statement: &str) -> Option<Ancestor> {
    let (generation, id, key) = match match_template(LINEAGE_FACT, statement) {
        Some(c) => (c[0].clone(), c[1].clone(), Some(c[2].parse::<u32>().ok()?)),
        None => {
            let (generation, id) = two(LINEAGE_FACT_UNKEYED, statement)?;
            (generation, id, None)
        }
    };
    Some(Ancestor {
        generation: generation.parse().ok()?,
        revocation_id: canonical_revocation_id_hex(&id).unwrap_or(id),
        root_key_id: key,
    })
}

/// Reads the meaning of a failed check from its rule text.
pub fn recognise_failed_check(rule: &str) -> Option<BlockShape> {
    let shape = BlockShape::read(rule);
    shape.other.is_empty().then_some(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_capture_strings_numbers_and_keys() {
        let line = r#"check if actor($a), $a == "uri:urn:x" || $a.starts_with("uri:urn:x" + ":")"#;
        assert_eq!(
            match_template(ACTOR_DELEGATABLE, line).unwrap(),
            vec!["uri:urn:x", "uri:urn:x"]
        );
        assert_eq!(
            match_template(TIME_CHECK, "check if time($time), $time < 1900000000").unwrap(),
            vec!["1900000000"]
        );
        assert_eq!(
            match_template(
                NODE_RULE,
                r#"node($s, "auth") <- service($s) trusting ed25519/ab01"#
            )
            .unwrap(),
            vec!["auth", "ed25519/ab01"]
        );
        assert!(match_template(TIME_CHECK, "check if time($time), $time < x").is_none());
        assert!(match_template(ACTOR_EXACT, r#"check if actor($a), $a == "x" || true"#).is_none());
    }

    #[test]
    fn a_delegation_check_naming_two_identities_is_not_a_delegation() {
        let shape =
            BlockShape::read(r#"check if actor($a), $a == "a:b" || $a.starts_with("a" + ":");"#);
        assert_eq!(shape.actor, None);
        assert_eq!(shape.other.len(), 1);
    }

    #[test]
    fn roles_are_recognised() {
        let delegation = BlockShape::read(
            "check if actor($a), $a == \"a:b\" || $a.starts_with(\"a:b\" + \":\");\ncheck if time($time), $time < 10;\n",
        );
        assert_eq!(
            delegation.role(1),
            BlockRole::Delegation { to: "a:b".into() }
        );
        assert_eq!(delegation.expiry, Some(10));
        assert_eq!(
            BlockShape::read("check if time($time), $time < 5;").role(2),
            BlockRole::Jit
        );
        assert_eq!(
            BlockShape::read("service(\"orders\");").role(1),
            BlockRole::ServiceAttestation {
                service: "orders".into()
            }
        );
        assert_eq!(
            BlockShape::read("namespace(\"audit\");").role(1),
            BlockRole::MultiPartySignoff {
                namespace: "audit".into()
            }
        );
        assert_eq!(
            BlockShape::read("prefix_added(true);\ncheck if prefix(\"acme/\");").role(1),
            BlockRole::Prefix {
                prefix: "acme/".into()
            }
        );
        assert_eq!(BlockShape::read("foo(1);").role(1), BlockRole::Other);
        assert_eq!(BlockShape::read("foo(1);").role(0), BlockRole::Authority);
    }

    #[test]
    fn lineage_facts_are_read_with_or_without_a_key_id() {
        let shape = BlockShape::read(
            "subject(\"a\");\nlineage(0, \"ab01\", 1);\nlineage(1, \"cd02\");\nlineage(-1, \"ef\", 1);\nlineage(2, \"ef\", 4294967296);",
        );
        assert_eq!(
            shape.lineage,
            vec![
                Ancestor {
                    generation: 0,
                    revocation_id: "ab01".into(),
                    root_key_id: Some(1),
                },
                Ancestor {
                    generation: 1,
                    revocation_id: "cd02".into(),
                    root_key_id: None,
                },
            ]
        );
        assert_eq!(shape.other.len(), 2, "out of range: {:?}", shape.other);
        assert_eq!(shape.role(0), BlockRole::Authority);
    }

    #[test]
    fn earliest_expiry_wins() {
        let shape = BlockShape::read(
            "check if time($time), $time < 50;\ncheck if time($time), $time < 20;",
        );
        assert_eq!(shape.expiry, Some(20));
    }

    #[test]
    fn the_first_actor_check_is_the_blocks_own() {
        let shape = BlockShape::read(
            "check if actor($a), $a == \"uri:urn:company:alice:agent1\" || $a.starts_with(\"uri:urn:company:alice:agent1\" + \":\");\ncheck if actor($a), $a == \"\";",
        );
        assert_eq!(
            shape.actor,
            Some(ActorCheck {
                identity: "uri:urn:company:alice:agent1".into(),
                includes_descendants: true,
            })
        );
        assert_eq!(
            shape.other,
            vec!["check if actor($a), $a == \"\"".to_string()]
        );
    }
}
