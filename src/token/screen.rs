//! The structural screen every token passes before a signature is checked or any Datalog runs:
//! caps on blocks, statements, atoms, expressions and terms; appended blocks limited to checks
//! and the attestation facts Hessra uses; and a bound on what evaluating the rest can cost.
//! Reads the protobuf only, once; knows nothing of what a token grants.
//!
//! Why: anyone holding any token (an expired one will do) can append a block without a key.
//! biscuit-auth checks its run limits only between rule iterations and between checks, so a
//! single rule joining five atoms over 100 facts (10^10 tuples), or a check whose condition never
//! holds over the same join, runs unbounded inside one step. The screen refuses such shapes before
//! evaluation, and [`Screened::cost`] bounds what any admitted token can cost (see
//! `benches/tokens.rs`, `worst_admitted`, and SECURITY.md for the measured worst case).

use std::collections::HashMap;
use std::sync::LazyLock;

use biscuit_auth::format::schema::{self, op, op_binary, op_unary, term};
use prost::Message;

use super::error::TokenError;
use super::plain::PlainChecks;
use super::shapes::{BlockShape, Resolve};

/// Most blocks in a token: the authority, 32 delegations (the largest `max_delegation_depth` a
/// policy may set, [`MAX_DELEGATION_DEPTH`](super::MAX_DELEGATION_DEPTH)), a JIT block, and
/// room for service attestations, signoffs and a prefix.
pub const MAX_BLOCKS: usize = 64;
/// Most facts, rules and checks in the authority block (the root key signed it; an
/// authorization token with a long service chain and several signers stays far below, and a
/// refreshed identity token carries one `lineage` fact per generation, at most 64).
pub const MAX_AUTHORITY_FACTS: usize = 96;
pub const MAX_AUTHORITY_RULES: usize = 32;
pub const MAX_AUTHORITY_CHECKS: usize = 32;
/// Most checks in an appended block (a delegation has two, plus its policy's).
pub const MAX_APPENDED_CHECKS: usize = 16;
/// Most attestation facts in an appended block (a prefix block has one).
pub const MAX_APPENDED_FACTS: usize = 2;
/// Most alternatives (`or`) in one check.
pub const MAX_QUERIES: usize = 4;
/// Most atoms in one rule body or check query (the authority check of an authorization token
/// has four).
pub const MAX_BODY_ATOMS: usize = 8;
/// Most terms in one atom.
pub const MAX_TERMS: usize = 8;
/// Most expressions in one rule or query, and operations in one expression (closures counted).
pub const MAX_EXPRESSIONS: usize = 8;
pub const MAX_OPS: usize = 32;
/// Deepest nesting of the closures `&&` and `||` evaluate lazily.
pub const MAX_CLOSURE_DEPTH: usize = 4;
/// Most elements in a set, array or map literal, and the deepest nesting of them.
pub const MAX_COLLECTION: usize = 32;
pub const MAX_COLLECTION_DEPTH: usize = 2;
/// Longest string and byte literal. Identities are far shorter.
pub const MAX_STRING: usize = 1024;
pub const MAX_BYTES: usize = 256;
/// Most symbols and public keys a block may define.
pub const MAX_SYMBOLS: usize = 256;
pub const MAX_PUBLIC_KEYS: usize = 32;
/// Most trust annotations (`trusting …`) on one rule, check or block.
pub const MAX_SCOPES: usize = 4;

/// The evaluation work a token may need, in units of about one fact visited while joining
/// (see the weights below). The most expensive tokens it admits take at most about 7 ms to
/// evaluate on the reference machine (BENCHMARKS.md, `hostile_tokens`).
pub const COST_BUDGET: u64 = 300_000;

/// Fixed cost of a query, in work units, besides [`QUERY_PER_BLOCK`] for every block of the
/// token: biscuit-auth works out the trusted blocks and scans the origins of every fact for
/// each query, and prints a failed check into its error. Fitted to `benches/hostile_tokens.rs`
/// (`many_checks`, and an honest 64-level delegation whose 325 checks take 36 µs each).
const QUERY_OVERHEAD: u64 = 256;
const QUERY_PER_BLOCK: u64 = 32;
/// Work units of one expression operation before the bytes it touches: evaluation clones terms
/// and interns temporary strings (`scans` in the bench).
const OP_BASE: u64 = 12;
/// Longest string the verifier itself may put in an expression (an identity, a resource name).
const VERIFIER_STRING: u64 = 256;

/// Facts the verifiers here add (time, actor, resource, operation, subject, domain, prefix: at
/// most one of each), in all and per predicate name.
const VERIFIER_FACTS: u64 = 8;
const VERIFIER_FACTS_PER_NAME: u64 = 1;

/// Attestation facts an appended third-party block may carry: `service("R")` (a service-chain
/// node), `namespace("C")` (a multi-party signoff), `prefix_added(true)` (a prefix restriction).
const ATTESTATION_FACTS: [(&str, AttestationTerm); 3] = [
    ("service", AttestationTerm::String),
    ("namespace", AttestationTerm::String),
    ("prefix_added", AttestationTerm::True),
];

#[derive(Clone, Copy)]
enum AttestationTerm {
    String,
    True,
}

/// What the screen learned of a token that passed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screened {
    /// Upper bound of the evaluation work, in the units of [`COST_BUDGET`].
    pub cost: u64,
    /// Each block's Hessra shape, read from the protobuf (see `shapes::Resolve`).
    pub shapes: Vec<BlockShape>,
    /// The token's checks when it is made only of plain statements, which the verifiers decide
    /// without running Datalog (see `src/token/plain.rs`).
    pub plain: Option<PlainChecks>,
}

/// Screens serialized token bytes: decodes the container and every block once, refuses what a
/// Hessra token never holds, and bounds the cost of evaluating the rest.
pub fn screen(bytes: &[u8]) -> Result<Screened, TokenError> {
    let container = schema::Biscuit::decode(bytes)
        .map_err(|e| TokenError::Malformed(format!("protobuf: {e}")))?;
    let signed: Vec<&schema::SignedBlock> = std::iter::once(&container.authority)
        .chain(container.blocks.iter())
        .collect();
    // Every block's strings are checked before any structural refusal, so that a refused token
    // can still be shown unambiguously (inspection shows what it refuses).
    let blocks = signed
        .iter()
        .enumerate()
        .map(|(index, signed)| {
            let block = schema::Block::decode(signed.block.as_slice())
                .map_err(|e| TokenError::Malformed(format!("block {index}: {e}")))?;
            super::codec::check_symbols(index, &block.symbols)?;
            Ok(block)
        })
        .collect::<Result<Vec<_>, TokenError>>()?;
    if blocks.len() > MAX_BLOCKS {
        return Err(refused(
            None,
            format!(
                "it has {} blocks; at most {MAX_BLOCKS} are accepted",
                blocks.len()
            ),
        ));
    }
    let mut first_party = FirstParty::default();
    let mut model = CostModel {
        blocks: blocks.len() as u64,
        ..CostModel::default()
    };
    let longest = blocks
        .iter()
        .flat_map(|block| block.symbols.iter())
        .map(|symbol| symbol.len() as u64)
        .fold(VERIFIER_STRING, u64::max);
    let mut shapes = Vec::with_capacity(blocks.len());
    let mut plain = Some(PlainChecks::default());
    for (index, (block, signed)) in blocks.iter().zip(&signed).enumerate() {
        let third_party = signed.external_signature.is_some();
        let symbols = Symbols::for_block(&mut first_party, block, third_party);
        BlockScreen {
            index,
            third_party,
            symbols: &symbols,
            longest,
        }
        .screen(block, &mut model)?;
        shapes.push(BlockShape::from_proto(block, &symbols));
        if let Some(checks) = plain.as_mut()
            && !checks.read_block(index, block, third_party, &symbols)
        {
            plain = None;
        }
    }
    let cost = model.cost().ok_or_else(|| {
        refused(
            None,
            "its rules derive facts from each other in a cycle; Hessra tokens never do".into(),
        )
    })?;
    if cost > COST_BUDGET {
        return Err(refused(
            None,
            format!(
                "evaluating it could take up to {cost} steps of work, over the bound of {COST_BUDGET} (too many facts joined by too many atoms)"
            ),
        ));
    }
    Ok(Screened {
        cost,
        shapes,
        plain,
    })
}

/// Whether `check`, appended in a block of its own, passes the screen: a delegation policy is
/// refused when it is written, not when every verifier later refuses the token. Returns the
/// screen's reason.
pub(crate) fn screen_appended_check(check: &biscuit_auth::builder::Check) -> Result<(), String> {
    let scratch = || -> Result<Vec<u8>, biscuit_auth::error::Token> {
        let root = biscuit_auth::KeyPair::new();
        let token = biscuit_auth::Biscuit::builder()
            .fact("subject(\"scratch\")")?
            .build(&root)?;
        token
            .append(biscuit_auth::builder::BlockBuilder::new().check(check.clone())?)?
            .to_vec()
    };
    let bytes = scratch().map_err(|e| e.to_string())?;
    match screen(&bytes) {
        Ok(_) => Ok(()),
        Err(TokenError::Screened { reason, .. }) => Err(reason.replace("check 0 ", "the check ")),
        Err(other) => Err(other.to_string()),
    }
}

fn refused(block: Option<usize>, reason: String) -> TokenError {
    TokenError::Screened { block, reason }
}

/// The symbols and keys a block's ids resolve against: the default symbols, then either the
/// first-party tables built so far (first-party blocks extend them) or a third-party block's own.
struct Symbols<'a> {
    table: &'a [String],
    keys: &'a [schema::PublicKey],
}

/// The tables first-party blocks share, as biscuit-auth builds them (keys without duplicates).
#[derive(Default)]
struct FirstParty {
    symbols: Vec<String>,
    keys: Vec<schema::PublicKey>,
}

/// biscuit-auth's default symbols (ids below 1024).
static DEFAULT_SYMBOLS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let table = biscuit_auth::datalog::SymbolTable::new();
    (0..)
        .map_while(|id| table.get_symbol(id).map(str::to_string))
        .collect()
});
const SYMBOL_OFFSET: u64 = 1024;

/// Whether `symbol` is one of biscuit-auth's default symbols.
pub(crate) fn is_default_symbol(symbol: &str) -> bool {
    DEFAULT_SYMBOLS.iter().any(|default| default == symbol)
}

impl<'a> Symbols<'a> {
    fn for_block(
        first_party: &'a mut FirstParty,
        block: &'a schema::Block,
        third_party: bool,
    ) -> Self {
        if third_party {
            return Symbols {
                table: &block.symbols,
                keys: &block.public_keys,
            };
        }
        first_party.symbols.extend(block.symbols.iter().cloned());
        for key in &block.public_keys {
            if !first_party.keys.contains(key) {
                first_party.keys.push(key.clone());
            }
        }
        Symbols {
            table: &first_party.symbols,
            keys: &first_party.keys,
        }
    }

    fn name(&self, id: u64) -> Option<&str> {
        if id < SYMBOL_OFFSET {
            DEFAULT_SYMBOLS.get(id as usize).map(String::as_str)
        } else {
            self.table
                .get((id - SYMBOL_OFFSET) as usize)
                .map(String::as_str)
        }
    }
}

impl Resolve for Symbols<'_> {
    fn symbol(&self, id: u64) -> Option<&str> {
        self.name(id)
    }

    fn key(&self, index: i64) -> Option<String> {
        let key = self.keys.get(usize::try_from(index).ok()?)?;
        let algorithm = match schema::public_key::Algorithm::from_i32(key.algorithm)? {
            schema::public_key::Algorithm::Ed25519 => "ed25519",
            schema::public_key::Algorithm::Secp256r1 => "secp256r1",
        };
        Some(format!("{algorithm}/{}", hex::encode(&key.key)))
    }
}

struct BlockScreen<'a> {
    index: usize,
    third_party: bool,
    symbols: &'a Symbols<'a>,
    /// The longest string any expression may handle (see `expression_weight`).
    longest: u64,
}

impl BlockScreen<'_> {
    fn refuse(&self, reason: String) -> TokenError {
        refused(Some(self.index), reason)
    }

    fn screen(&self, block: &schema::Block, model: &mut CostModel) -> Result<(), TokenError> {
        let authority = self.index == 0;
        self.cap("symbols", block.symbols.len(), MAX_SYMBOLS)?;
        self.cap("public keys", block.public_keys.len(), MAX_PUBLIC_KEYS)?;
        self.cap("trust annotations", block.scope.len(), MAX_SCOPES)?;
        if let Some(long) = block.symbols.iter().find(|s| s.len() > MAX_STRING) {
            return Err(self.refuse(format!(
                "a string of {} bytes; at most {MAX_STRING} are accepted",
                long.len()
            )));
        }
        let (facts, rules, checks) = if authority {
            (
                MAX_AUTHORITY_FACTS,
                MAX_AUTHORITY_RULES,
                MAX_AUTHORITY_CHECKS,
            )
        } else {
            (MAX_APPENDED_FACTS, 0, MAX_APPENDED_CHECKS)
        };
        if !authority && !block.rules.is_empty() {
            return Err(self.refuse(format!(
                "it defines {} rule(s); blocks after the authority block may hold only checks and the attestation facts service, namespace and prefix_added",
                block.rules.len()
            )));
        }
        self.cap("facts", block.facts.len(), facts)?;
        self.cap("rules", block.rules.len(), rules)?;
        self.cap("checks", block.checks.len(), checks)?;
        for fact in &block.facts {
            let name = self.predicate(&fact.predicate, "fact")?;
            if !authority {
                self.attestation_fact(name, &fact.predicate)?;
            }
            model.fact(&relation(name, &fact.predicate));
        }
        for (at, rule) in block.rules.iter().enumerate() {
            let what = format!("rule {at}");
            let shape = self.rule(rule, &what)?;
            model.rule(shape);
        }
        for (at, check) in block.checks.iter().enumerate() {
            let what = format!("check {at}");
            if check.queries.is_empty() {
                return Err(self.refuse(format!("{what} has no query")));
            }
            if check.queries.len() > MAX_QUERIES {
                return Err(self.refuse(format!(
                    "{what} has {} alternatives; at most {MAX_QUERIES} are accepted",
                    check.queries.len()
                )));
            }
            for query in &check.queries {
                let shape = self.rule(query, &what)?;
                model.query(shape);
            }
        }
        Ok(())
    }

    fn cap(&self, what: &str, count: usize, max: usize) -> Result<(), TokenError> {
        if count <= max {
            return Ok(());
        }
        let place = if self.index == 0 {
            "the authority block"
        } else {
            "an appended block"
        };
        Err(self.refuse(format!(
            "it has {count} {what}; {place} may have at most {max}"
        )))
    }

    /// A fact in an appended block must be one of the attestations Hessra signs, in a
    /// third-party block: appended facts never grant, and anything else only adds evaluation
    /// work.
    fn attestation_fact(
        &self,
        name: &str,
        predicate: &schema::Predicate,
    ) -> Result<(), TokenError> {
        let expected = ATTESTATION_FACTS
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, term)| *term);
        let shaped = match (expected, predicate.terms.as_slice()) {
            (Some(AttestationTerm::String), [only]) => {
                matches!(only.content, Some(term::Content::String(_)))
            }
            (Some(AttestationTerm::True), [only]) => {
                matches!(only.content, Some(term::Content::Bool(true)))
            }
            _ => false,
        };
        if !shaped {
            return Err(self.refuse(format!(
                "it asserts the fact {name}(…) with {} term(s); blocks after the authority block may assert only service(\"R\"), namespace(\"C\") or prefix_added(true)",
                predicate.terms.len()
            )));
        }
        if !self.third_party {
            return Err(self.refuse(format!(
                "it asserts {name}(…) without a third-party signature; attestations are signed by the attesting service's key"
            )));
        }
        Ok(())
    }

    fn predicate<'s>(
        &'s self,
        predicate: &schema::Predicate,
        what: &str,
    ) -> Result<&'s str, TokenError> {
        let name = self.symbols.name(predicate.name).ok_or_else(|| {
            self.refuse(format!(
                "a {what} names symbol {} which the token does not define",
                predicate.name
            ))
        })?;
        if predicate.terms.len() > MAX_TERMS {
            return Err(self.refuse(format!(
                "{name}(…) in a {what} has {} terms; at most {MAX_TERMS} are accepted",
                predicate.terms.len()
            )));
        }
        for value in &predicate.terms {
            self.term(value, 0)?;
        }
        Ok(name)
    }

    fn rule(&self, rule: &schema::Rule, what: &str) -> Result<RuleShape, TokenError> {
        if rule.body.len() > MAX_BODY_ATOMS {
            return Err(self.refuse(format!(
                "{what} joins {} atoms; at most {MAX_BODY_ATOMS} are accepted",
                rule.body.len()
            )));
        }
        if rule.expressions.len() > MAX_EXPRESSIONS {
            return Err(self.refuse(format!(
                "{what} has {} conditions; at most {MAX_EXPRESSIONS} are accepted",
                rule.expressions.len()
            )));
        }
        if rule.scope.len() > MAX_SCOPES {
            return Err(self.refuse(format!(
                "{what} has {} trust annotations; at most {MAX_SCOPES} are accepted",
                rule.scope.len()
            )));
        }
        let head = relation(self.predicate(&rule.head, what)?, &rule.head);
        let body = rule
            .body
            .iter()
            .map(|atom| Ok(relation(self.predicate(atom, what)?, atom)))
            .collect::<Result<Vec<_>, TokenError>>()?;
        let mut weight = 0u64;
        for expression in &rule.expressions {
            let count = self.ops(&expression.ops, what, 0)?;
            if count.ops > MAX_OPS {
                return Err(self.refuse(format!(
                    "a condition of {what} has {} operations; at most {MAX_OPS} are accepted",
                    count.ops
                )));
            }
            weight = weight.saturating_add(expression_weight(
                count.ops as u64,
                count.adds as u64,
                self.longest,
            ));
        }
        Ok(RuleShape {
            head,
            body,
            ops: weight,
        })
    }

    /// Counts the operations of an expression, closures included, refusing those no Hessra
    /// token uses and whose cost is not linear in their input: regular expressions, `.all` /
    /// `.any` closures over collections, foreign functions and `try_or`.
    fn ops(&self, ops: &[schema::Op], what: &str, depth: usize) -> Result<OpCount, TokenError> {
        if depth > MAX_CLOSURE_DEPTH {
            return Err(self.refuse(format!(
                "{what} nests `&&`/`||` deeper than {MAX_CLOSURE_DEPTH} levels"
            )));
        }
        let mut count = OpCount::default();
        for op in ops {
            count.ops += 1;
            match &op.content {
                Some(op::Content::Value(value)) => self.term(value, 0)?,
                Some(op::Content::Unary(unary)) => {
                    if unary.kind == op_unary::Kind::Ffi as i32 {
                        return Err(self.refuse(format!("{what} calls a foreign function")));
                    }
                }
                Some(op::Content::Binary(binary)) => {
                    if binary.kind == op_binary::Kind::Add as i32 {
                        count.adds += 1;
                    }
                    if let Some(name) = refused_binary(binary.kind) {
                        return Err(self.refuse(format!(
                            "{what} uses {name}, which Hessra tokens never use and the screen does not admit"
                        )));
                    }
                }
                Some(op::Content::Closure(closure)) => {
                    if !closure.params.is_empty() {
                        return Err(self.refuse(format!(
                            "{what} has a closure with parameters (.all/.any), which Hessra tokens never use"
                        )));
                    }
                    let inner = self.ops(&closure.ops, what, depth + 1)?;
                    count.ops += inner.ops;
                    count.adds += inner.adds;
                }
                None => return Err(self.refuse(format!("{what} has an empty operation"))),
            }
            if count.ops > MAX_OPS {
                break;
            }
        }
        Ok(count)
    }

    fn term(&self, value: &schema::Term, depth: usize) -> Result<(), TokenError> {
        let elements: Vec<&schema::Term> = match &value.content {
            Some(term::Content::Bytes(bytes)) if bytes.len() > MAX_BYTES => {
                return Err(self.refuse(format!(
                    "a byte string of {} bytes; at most {MAX_BYTES} are accepted",
                    bytes.len()
                )));
            }
            Some(term::Content::Set(set)) => set.set.iter().collect(),
            Some(term::Content::Array(array)) => array.array.iter().collect(),
            Some(term::Content::Map(map)) => map.entries.iter().map(|e| &e.value).collect(),
            _ => return Ok(()),
        };
        if depth >= MAX_COLLECTION_DEPTH {
            return Err(self.refuse(format!(
                "collections nested deeper than {MAX_COLLECTION_DEPTH} levels"
            )));
        }
        if elements.len() > MAX_COLLECTION {
            return Err(self.refuse(format!(
                "a collection of {} elements; at most {MAX_COLLECTION} are accepted",
                elements.len()
            )));
        }
        elements
            .into_iter()
            .try_for_each(|element| self.term(element, depth + 1))
    }
}

/// Operations in an expression, closures included, and how many of them are additions.
#[derive(Default)]
struct OpCount {
    ops: usize,
    adds: usize,
}

fn refused_binary(kind: i32) -> Option<&'static str> {
    use op_binary::Kind;
    match Kind::from_i32(kind)? {
        // The regex crate matches in linear time, but compiling a pattern costs up to its
        // 10 MB size limit, per evaluated tuple.
        Kind::Regex => Some("a regular expression (.matches)"),
        Kind::All => Some(".all"),
        Kind::Any => Some(".any"),
        Kind::Ffi => Some("a foreign function"),
        Kind::TryOr => Some(".try_or"),
        _ => None,
    }
}

/// A predicate name with its arity (`subject/1` and `subject/2` are different relations).
fn relation(name: &str, predicate: &schema::Predicate) -> String {
    format!("{name}/{}", predicate.terms.len())
}

/// A rule or query as the cost model sees it: relations, not values.
struct RuleShape {
    head: String,
    body: Vec<String>,
    /// The weight of evaluating its conditions once (`expression_weight`).
    ops: u64,
}

/// Counts what evaluation can touch: facts per predicate name (the token's, the verifier's, and
/// what rules can derive), rules, and check queries. biscuit-auth joins a body by scanning every
/// fact in scope for each atom, binding the matches, and evaluating the conditions once per
/// complete binding, so a query over atoms matching m₁…mₙ facts among F costs at most
/// F·(1 + m₁ + m₁m₂ + … + m₁…mₙ₋₁) visits plus m₁…mₙ·(1 + ops) operations.
#[derive(Default)]
struct CostModel {
    facts: HashMap<String, u64>,
    total_facts: u64,
    blocks: u64,
    rules: Vec<RuleShape>,
    queries: Vec<RuleShape>,
}

impl CostModel {
    fn fact(&mut self, name: &str) {
        *self.facts.entry(name.to_string()).or_default() += 1;
        self.total_facts += 1;
    }

    fn rule(&mut self, shape: RuleShape) {
        self.rules.push(shape);
    }

    fn query(&mut self, shape: RuleShape) {
        self.queries.push(shape);
    }

    /// The verifier's own rules: bearer mode derives `actor` from `subject`, capability mode
    /// `subject` from `right`.
    fn verifier_rules() -> [RuleShape; 2] {
        let rule = |head: &str, body: &str| RuleShape {
            head: head.into(),
            body: vec![body.into()],
            ops: 0,
        };
        [rule("actor/1", "subject/1"), rule("subject/1", "right/3")]
    }

    /// The bound, or `None` when rules feed each other in a cycle (the fixpoint of counts does
    /// not settle).
    fn cost(&self) -> Option<u64> {
        let verifier = Self::verifier_rules();
        let rules: Vec<&RuleShape> = self.rules.iter().chain(verifier.iter()).collect();
        let derived = self.derived(&rules)?;
        let count = |name: &str| {
            self.facts
                .get(name)
                .copied()
                .unwrap_or(0)
                .saturating_add(VERIFIER_FACTS_PER_NAME)
                .saturating_add(derived.get(name).copied().unwrap_or(0))
        };
        let all = self
            .total_facts
            .saturating_add(VERIFIER_FACTS)
            .saturating_add(derived.values().fold(0u64, |a, b| a.saturating_add(*b)));
        // Each rule runs once per iteration, and a chain of n rules needs n + 1 iterations.
        let iterations = rules.len() as u64 + 1;
        let rule_cost = rules
            .iter()
            .map(|r| join_cost(r, all, &count))
            .fold(0u64, u64::saturating_add)
            .saturating_mul(iterations);
        let query_cost = self
            .queries
            .iter()
            .map(|q| join_cost(q, all, &count).saturating_add(self.query_overhead()))
            .fold(0u64, u64::saturating_add);
        Some(rule_cost.saturating_add(query_cost))
    }

    /// What a query costs before it visits a fact: biscuit-auth works out the blocks it trusts
    /// (one step per block) and starts an iterator over every trusted block's facts.
    fn query_overhead(&self) -> u64 {
        QUERY_OVERHEAD.saturating_add(self.blocks.saturating_mul(QUERY_PER_BLOCK))
    }

    /// How many facts rules can derive per head name: the product of their bodies' counts,
    /// summed, repeated until the counts settle. Without cycles that takes at most one pass per
    /// rule.
    fn derived(&self, rules: &[&RuleShape]) -> Option<HashMap<String, u64>> {
        let mut derived: HashMap<String, u64> = HashMap::new();
        for _ in 0..=rules.len() {
            let mut next: HashMap<String, u64> = HashMap::new();
            for rule in rules {
                let product = rule
                    .body
                    .iter()
                    .map(|name| {
                        self.facts
                            .get(name)
                            .copied()
                            .unwrap_or(0)
                            .saturating_add(VERIFIER_FACTS_PER_NAME)
                            .saturating_add(derived.get(name).copied().unwrap_or(0))
                    })
                    .fold(1u64, u64::saturating_mul);
                let entry = next.entry(rule.head.clone()).or_default();
                *entry = entry.saturating_add(product);
            }
            if next == derived {
                return Some(derived);
            }
            derived = next;
        }
        None
    }
}

fn join_cost(shape: &RuleShape, all: u64, count: &impl Fn(&str) -> u64) -> u64 {
    let mut partial = 1u64;
    let mut visits = 0u64;
    for name in &shape.body {
        visits = visits.saturating_add(all.saturating_mul(partial));
        partial = partial.saturating_mul(count(name));
    }
    visits.saturating_add(partial.saturating_mul(shape.ops.saturating_add(1)))
}

/// The weight of evaluating `ops` operations, `adds` of them additions, once when strings can
/// be `longest` bytes long: each operation may touch every byte of its operands, and only an
/// addition (concatenation) makes a string longer, so no operand exceeds (adds + 1) · longest
/// bytes. A unit is about 64 bytes, or [`OP_BASE`] per operation.
fn expression_weight(ops: u64, adds: u64, longest: u64) -> u64 {
    let widest = adds.saturating_add(1).saturating_mul(longest);
    ops.saturating_mul(OP_BASE + widest / 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::identity::append_third_party;
    use crate::token::keys::key_string;
    use crate::token::{
        AuthzClaims, Delegation, DelegationPolicy, IdentityClaims, Signer, add_jit,
        add_prefix_restriction, add_service_attestation, add_signoff, decode, delegate, encode,
        mint_authz, mint_identity, service_node,
    };
    use biscuit_auth::builder::BlockBuilder;
    use biscuit_auth::{KeyPair, UnverifiedBiscuit};

    const ALICE: &str = "uri:urn:company:alice";
    const FAR: i64 = 4_000_000_000;

    fn identity(root: &KeyPair, domain: Option<&str>) -> String {
        mint_identity(
            root,
            &IdentityClaims {
                subject: ALICE.into(),
                expires_at: FAR,
                delegatable: domain.is_none(),
                domain: domain.map(str::to_string),
            },
        )
        .unwrap()
    }

    fn screened(text: &str) -> Result<Screened, TokenError> {
        screen(&decode(text).unwrap())
    }

    /// Appends a block as any holder can: no root key, their own block key.
    fn append(text: &str, code: &str) -> String {
        let token = UnverifiedBiscuit::from(decode(text).unwrap()).unwrap();
        let block = BlockBuilder::new().code(code).unwrap();
        encode(&token.append(block).unwrap().to_vec().unwrap())
    }

    /// Appends a third-party block signed by a key of the holder's own making.
    fn append_signed(text: &str, signer: &KeyPair, code: &str) -> String {
        let token = UnverifiedBiscuit::from(decode(text).unwrap()).unwrap();
        let block = BlockBuilder::new().code(code).unwrap();
        let extended = append_third_party(&token, &signer.private(), block).unwrap();
        encode(&extended.to_vec().unwrap())
    }

    fn refusal(result: Result<Screened, TokenError>) -> (Option<usize>, String) {
        match result {
            Err(TokenError::Screened { block, reason }) => (block, reason),
            other => panic!("expected a screen refusal, got {other:?}"),
        }
    }

    #[test]
    fn every_shape_the_system_issues_passes_the_screen() {
        let root = KeyPair::new();
        let alice = identity(&root, None);
        let policy = DelegationPolicy::parse(
            r#"check if operation($op), ["read", "list"].contains($op);
               check if resource($r), $r.starts_with("reports/") || $r == "inbox";"#,
        )
        .unwrap();
        let mut delegation = Delegation::new("uri:urn:company:alice:agent1", FAR);
        delegation.policy = Some(&policy);
        let mut deep = delegate(&alice, Some(&root.public()), &delegation)
            .unwrap()
            .token;
        let mut identity = "uri:urn:company:alice:agent1".to_string();
        for level in 0..(crate::token::MAX_DELEGATION_DEPTH - 1) {
            identity = format!("{identity}:l{level}");
            let mut step = Delegation::new(&identity, FAR);
            step.max_depth = crate::token::MAX_DELEGATION_DEPTH;
            deep = delegate(&deep, None, &step).unwrap().token;
        }
        let deep_jit = add_jit(&deep, 1_000).unwrap();
        let realm = identity_with_domain(&root);
        let (nodes, signers): (Vec<KeyPair>, Vec<KeyPair>) = (
            (0..8).map(|_| KeyPair::new()).collect(),
            (0..4).map(|_| KeyPair::new()).collect(),
        );
        let attenuator = KeyPair::new();
        let authz = mint_authz(
            &root,
            &AuthzClaims {
                subject: ALICE.into(),
                resource: "orders".into(),
                operation: "read".into(),
                expires_at: FAR,
                domain: Some("uri:urn:company".into()),
                prefix_attenuator_key: Some(key_string(&attenuator.public())),
                service_chain: nodes
                    .iter()
                    .enumerate()
                    .map(|(i, k)| service_node(&format!("node{i}"), k))
                    .collect(),
                signers: signers
                    .iter()
                    .enumerate()
                    .map(|(i, k)| Signer {
                        component: format!("signer{i}"),
                        public_key: key_string(&k.public()),
                    })
                    .collect(),
            },
        )
        .unwrap();
        let mut attested = add_prefix_restriction(&authz, &attenuator, "reports/").unwrap();
        for node in &nodes {
            attested = add_service_attestation(&attested, node, "orders").unwrap();
        }
        for (i, signer) in signers.iter().enumerate() {
            attested = add_signoff(&attested, signer, &format!("signer{i}")).unwrap();
        }
        for text in [&alice, &deep, &deep_jit, &realm, &authz, &attested] {
            let screened = screened(text).unwrap();
            assert_same_shapes(text, &screened);
        }
        // Everyday tokens use a small part of the budget; the deepest delegation a policy may
        // allow (32 levels) more, since every check costs in proportion to the blocks.
        for text in [&alice, &realm, &authz, &attested] {
            let cost = screened(text).unwrap().cost;
            assert!(cost <= COST_BUDGET / 10, "{cost}");
        }
    }

    /// The shapes read from the protobuf are the shapes read from the printed Datalog (whose
    /// unrecognised statements are kept as source, not described, so only their count compares).
    pub(crate) fn assert_same_shapes(text: &str, screened: &Screened) {
        let inspection = crate::token::inspect(text, None, 0).unwrap();
        assert_eq!(inspection.blocks.len(), screened.shapes.len());
        for (block, proto) in inspection.blocks.iter().zip(&screened.shapes) {
            let printed = &block.shape;
            assert_eq!(
                printed.other.len(),
                proto.other.len(),
                "{}:\n{}",
                block.index,
                block.source
            );
            let comparable = |shape: &BlockShape| BlockShape {
                other: Vec::new(),
                ..shape.clone()
            };
            assert_eq!(
                comparable(printed),
                comparable(proto),
                "block {}:\n{}",
                block.index,
                block.source
            );
        }
    }

    #[test]
    fn shapes_read_from_the_protobuf_are_the_printed_ones_for_odd_blocks_too() {
        let root = KeyPair::new();
        let alice = identity(&root, None);
        for code in [
            r#"check if actor($a), $a == "x:y" || $a.starts_with("x" + ":");"#,
            r#"check if actor($a), $a == "x" || $a.starts_with("x" + ":"); check if actor($a), $a == "x";"#,
            r#"check if actor($b), $b == "x";"#,
            r#"check if actor($a), ($a == "x");"#,
            r#"check if time($t), $t < 10; check if time($time), $time < 20; check if time($time), $time < 5;"#,
            r#"check if time($time), $time <= 10;"#,
            r#"check all time($time), $time < 10;"#,
            r#"reject if domain("x");"#,
            r#"check if domain("x") or domain("y");"#,
            r#"check if prefix("a/"); check if prefix_added(true) trusting ed25519/0000000000000000000000000000000000000000000000000000000000000000;"#,
            r#"check if namespace("c") trusting ed25519/0000000000000000000000000000000000000000000000000000000000000000;"#,
            r#"check if subject($sub), resource($res), operation($op), right($sub, $res, $op);"#,
            r#"check if subject($s), resource($res), operation($op), right($s, $res, $op);"#,
            r#"check if true;"#,
        ] {
            let text = append(&alice, code);
            let screened = screened(&text).unwrap();
            assert_same_shapes(&text, &screened);
        }
        for code in [
            r#"service("orders");"#,
            r#"namespace("audit");"#,
            r#"prefix_added(true); check if prefix("x/");"#,
        ] {
            let text = append_signed(&alice, &KeyPair::new(), code);
            assert_same_shapes(&text, &screened(&text).unwrap());
        }
        let authority = biscuit_auth::macros::biscuit!(
            r#"subject("a"); subject("b"); right("a", "r", "o"); lineage(0, "ab01", 1); lineage(1, "cd02"); lineage(-1, "ef", 1); lineage(2, "ef", 4294967296); lineage("x", "ef"); right("a", 1, "o"); prefix_added(true); prefix_added(false); service("s"); namespace("n");
               subject($d, $s) <- domain($d), subject($s);
               subject($x, $s) <- domain($x), subject($s);
               node($s, "c") <- service($s) trusting ed25519/0000000000000000000000000000000000000000000000000000000000000000;
               node($s, "c") <- service($s);"#
        )
        .build(&root)
        .unwrap()
        .to_base64()
        .unwrap();
        assert_same_shapes(&authority, &screened(&authority).unwrap());
    }

    fn identity_with_domain(root: &KeyPair) -> String {
        identity(root, Some("uri:urn:company"))
    }

    #[test]
    fn a_rule_appended_by_a_holder_is_refused_naming_the_block() {
        let root = KeyPair::new();
        let expired = mint_identity(
            &root,
            &IdentityClaims {
                subject: ALICE.into(),
                expires_at: 1,
                delegatable: true,
                domain: None,
            },
        )
        .unwrap();
        let facts: String = (0..100).map(|i| format!("n({i});")).collect();
        let exploding = append(
            &expired,
            &format!("{facts} p($a,$b,$c,$d,$e) <- n($a), n($b), n($c), n($d), n($e);"),
        );
        let (block, reason) = refusal(screened(&exploding));
        assert_eq!(block, Some(1));
        assert!(reason.contains("rule"), "{reason}");
        let message = TokenError::Screened {
            block,
            reason: reason.clone(),
        }
        .to_string();
        assert!(
            message.starts_with("the token's block 1 is refused before evaluation"),
            "{message}"
        );
    }

    #[test]
    fn facts_appended_by_a_holder_are_refused_unless_they_are_signed_attestations() {
        let root = KeyPair::new();
        let alice = identity(&root, None);
        let facts: String = (0..100).map(|i| format!("n({i});")).collect();
        let spinning = append(
            &alice,
            &format!("{facts} check if n($a), n($b), n($c), n($d), n($e), $a == -1;"),
        );
        let (block, reason) = refusal(screened(&spinning));
        assert_eq!(block, Some(1));
        assert!(reason.contains("facts"), "{reason}");

        let smuggled = append(&alice, r#"right("uri:urn:company:alice", "api", "write");"#);
        let (_, reason) = refusal(screened(&smuggled));
        assert!(reason.contains("right(…)"), "{reason}");

        let unsigned = append(&alice, r#"service("orders");"#);
        let (_, reason) = refusal(screened(&unsigned));
        assert!(reason.contains("third-party"), "{reason}");

        let wrong_type = append_signed(&alice, &KeyPair::new(), "service(42);");
        let (_, reason) = refusal(screened(&wrong_type));
        assert!(reason.contains("service(\"R\")"), "{reason}");

        let signed = append_signed(&alice, &KeyPair::new(), r#"service("orders");"#);
        assert!(screened(&signed).is_ok());
    }

    /// The attacker's best remaining move: many signed attestation facts of their own making,
    /// and one check joining them with a condition that never holds.
    #[test]
    fn a_join_over_every_fact_an_attacker_can_add_is_refused_by_its_cost() {
        let root = KeyPair::new();
        let mut token = identity(&root, None);
        let signer = KeyPair::new();
        for i in 0..(MAX_BLOCKS - 2) {
            token = append_signed(
                &token,
                &signer,
                &format!(r#"service("s{i}"); namespace("n{i}");"#),
            );
        }
        assert!(screened(&token).is_ok(), "{:?}", screened(&token));
        let spinning = append(
            &token,
            r#"check if service($a), service($b), service($c), service($d), service($e), $a == "never" trusting previous;"#,
        );
        let (block, reason) = refusal(screened(&spinning));
        assert_eq!(block, None);
        assert!(reason.contains("over the bound"), "{reason}");
        let one = append(
            &token,
            r#"check if service($a), $a == "never" trusting previous;"#,
        );
        let cost = screened(&one).unwrap().cost;
        assert!(cost <= COST_BUDGET, "{cost}");
    }

    #[test]
    fn unbounded_operations_are_refused_wherever_they_appear() {
        let root = KeyPair::new();
        let alice = identity(&root, None);
        for (code, why) in [
            (
                r#"check if subject($s), $s.matches("(a+)+$");"#,
                "regular expression",
            ),
            (
                r#"check if subject($s), [1, 2, 3].all($x -> $x > 0);"#,
                "closure with parameters",
            ),
            (
                r#"check if subject($s), [1, 2].any($x -> $x > 0);"#,
                "closure with parameters",
            ),
            (
                r#"check if subject($s), $s.length().try_or(0) > 0;"#,
                "try_or",
            ),
        ] {
            let text = append(&alice, code);
            let (block, reason) = refusal(screened(&text));
            assert_eq!(block, Some(1), "{code}");
            assert!(reason.contains(why), "{code}: {reason}");
        }
        let many: Vec<String> = (0..=MAX_COLLECTION).map(|i| i.to_string()).collect();
        let text = append(
            &alice,
            &format!("check if subject($s), [{}].contains(1);", many.join(", ")),
        );
        assert!(refusal(screened(&text)).1.contains("collection"));
        let long = "x".repeat(MAX_STRING + 1);
        let text = append(&alice, &format!(r#"check if subject("{long}");"#));
        assert!(refusal(screened(&text)).1.contains("string"));
        let atoms: Vec<String> = (0..=MAX_BODY_ATOMS)
            .map(|i| format!("subject($v{i})"))
            .collect();
        let text = append(&alice, &format!("check if {};", atoms.join(", ")));
        assert!(refusal(screened(&text)).1.contains("atoms"));
        let checks: String = (0..=MAX_APPENDED_CHECKS)
            .map(|i| format!("check if time($t), $t < {i};"))
            .collect();
        let text = append(&alice, &checks);
        assert!(refusal(screened(&text)).1.contains("checks"));
    }

    #[test]
    fn a_delegation_policy_the_screen_would_refuse_is_refused_when_written() {
        let err = DelegationPolicy::parse(
            "check if operation($op), $op == \"read\";\ncheck if resource($r), $r.matches(\"^a+$\");",
        )
        .unwrap_err();
        match err {
            TokenError::InvalidPolicy { line, message, .. } => {
                assert_eq!(line, 2);
                assert!(message.contains("regular expression"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn too_many_blocks_are_refused_before_any_is_read() {
        let root = KeyPair::new();
        let mut token = identity(&root, None);
        for _ in 0..MAX_BLOCKS {
            token = append(&token, "check if true;");
        }
        let (block, reason) = refusal(screened(&token));
        assert_eq!(block, None);
        assert!(reason.contains("blocks"), "{reason}");
    }

    #[test]
    fn rules_that_feed_each_other_are_refused() {
        let root = KeyPair::new();
        let cyclic = biscuit_auth::macros::biscuit!(
            r#"subject("a"); edge("a", "b"); reach($x, $y) <- edge($x, $y); reach($x, $z) <- reach($x, $y), edge($y, $z);"#
        )
        .build(&root)
        .unwrap()
        .to_base64()
        .unwrap();
        let (_, reason) = refusal(screened(&cyclic));
        assert!(reason.contains("cycle"), "{reason}");
    }
}
