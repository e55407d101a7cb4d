//! Deciding plain tokens without running Datalog.
//!
//! Almost every token a Hessra server sees is made of a handful of statements whose meaning is
//! fixed: `check if time($time), $time < N`, the actor check of an identity or a delegation,
//! `check if domain("D")`, and the authority check over `right` facts. For a token built only
//! of those, the answer the Datalog engine would give can be read off the statements directly:
//! every check's predicate (`time`, `actor`, `domain`, `resource`, `operation`) is one only the
//! verifier supplies (no plain block can add or derive one), so each check holds or fails on
//! its own. Building and running biscuit-auth's authorizer is most of what verifying a token
//! costs once its signatures are checked; reading the answer here is what takes first-sight
//! verification under the published crates' cost (BENCHMARKS.md).
//!
//! What is plain is decided strictly, statement by statement, from the protobuf the screen has
//! already decoded ([`PlainChecks::read_block`]): blocks without trust annotations (signed by
//! the previous block's key or, as delegations and JIT blocks are, by a fresh third-party key:
//! who signed a block does not change what its checks read, which is the verifier's facts);
//! facts only in the authority block and only `subject`, `right` and `lineage`; no rule but the
//! realm rule `subject($d, $s) <- domain($d), subject($s)` in the authority block; checks of kind
//! `check if`, one query, no trust annotation, each exactly one of the shapes above; and what
//! biscuit-auth checks when it reads a block for its authorizer (the declared format version
//! admits the content, a third-party block does not redefine a default symbol, no key table,
//! which a block trusting nothing has no use for). Anything else (a delegation policy, an
//! attestation's facts, `check all`, `reject if`, a `trusting` annotation, an expression of
//! another form) makes the token not plain, and biscuit-auth decides it as before.
//!
//! biscuit-auth's run limits (facts, iterations, time) do not apply here: the reading costs one
//! comparison per check, and the screen caps the checks.
//!
//! Only an *allow* is taken from here: when a plain token's checks do not all hold, biscuit-auth
//! runs as before, so every denial and its explanation still comes from the Datalog engine.
//! The differential tests below check that this reading and biscuit-auth give the same answer
//! over generated tokens and requests, and the `token_screen` fuzz target
//! (`fuzz/invariants.rs`) that whatever it allows of an attacker's block, biscuit-auth allows.
//!
//! Symbol ids resolve as the screen resolves them: a third-party block's against its own
//! symbols, as biscuit-auth does; a first-party block's against the first-party symbols of the
//! blocks read so far, which is a prefix of the table biscuit-auth resolves them against (all
//! first-party blocks), so an id that resolves here names the same string there, and one that
//! does not makes the token not plain.

use biscuit_auth::format::schema;

use super::screen::is_default_symbol;
use super::shapes::Resolve;
use super::shapes::proto::{
    atom, before, delegatable_actor, exact_actor, is_realm_rule, is_rights_check, right_fact,
    string, string_atom, var,
};

/// One plain check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// `check if time($time), $time < N`.
    Before(i64),
    /// `check if actor($a), $a == "S"`, or with `|| $a.starts_with("S" + ":")` (descendants).
    Actor { identity: String, descendants: bool },
    /// `check if domain("D")`.
    Domain(String),
    /// The authority block's
    /// `check if subject($sub), resource($res), operation($op), right($sub, $res, $op)`.
    Rights,
}

/// The checks of a token made only of plain statements (see the module documentation), with
/// the authority facts its rights check reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlainChecks {
    conditions: Vec<Condition>,
    /// The authority block's `subject("S")` facts.
    subjects: Vec<String>,
    /// The authority block's `right(subject, resource, operation)` facts.
    rights: Vec<(String, String, String)>,
    /// The authority block has the realm rule; its `subject($d, $s)` facts are read only by the
    /// realm policy, which is never decided here.
    realm_rule: bool,
}

/// The subject fact a verifier supplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmbientSubject<'a> {
    None,
    /// `subject("S")`.
    Fact(&'a str),
    /// The capability-mode rule `subject($sub) <- right($sub, resource, operation)`.
    FromRights,
}

/// The facts a verifier's authorizer adds, its only policy being `allow if true`.
#[derive(Debug, Clone, Copy)]
pub struct Ambient<'a> {
    /// `time(now)`.
    pub now: i64,
    pub actor: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub operation: Option<&'a str>,
    pub subject: AmbientSubject<'a>,
}

impl PlainChecks {
    /// Reads block `index`, decoded, with the symbols its ids resolve against (`third_party`:
    /// it carries a third-party signature). False when the block holds anything that is not
    /// plain (then the token is decided by biscuit-auth).
    pub(crate) fn read_block(
        &mut self,
        index: usize,
        block: &schema::Block,
        third_party: bool,
        r: &impl Resolve,
    ) -> bool {
        let authority = index == 0;
        if !block.scope.is_empty() || !version_admits(block, third_party) {
            return false;
        }
        // What biscuit-auth checks when it reads the block for its authorizer (a first-party
        // block's symbols were checked when the token was read): a third-party block's symbols
        // may not redefine a default symbol, and its key table must read. A plain block needs
        // no key (it trusts none), so none is admitted.
        let symbols_read = !third_party || !block.symbols.iter().any(|s| is_default_symbol(s));
        if !symbols_read || !block.public_keys.is_empty() {
            return false;
        }
        // Facts and rules only in the authority block (the screen refuses them elsewhere too,
        // but for attestations, which are not plain).
        let statements_only_checks = block.facts.is_empty() && block.rules.is_empty();
        if !authority && !statements_only_checks {
            return false;
        }
        for fact in &block.facts {
            if !self.add_fact(&fact.predicate, r) {
                return false;
            }
        }
        for rule in &block.rules {
            if !is_realm_rule(rule, r) {
                return false;
            }
            self.realm_rule = true;
        }
        for check in &block.checks {
            let kind_one = check.kind.unwrap_or(0) == schema::check::Kind::One as i32;
            let [query] = check.queries.as_slice() else {
                return false;
            };
            if !kind_one || !query.scope.is_empty() {
                return false;
            }
            match condition(query, r) {
                Some(Condition::Rights) if !authority => return false,
                // `==` between any types and the lazy `||` are Datalog 3.3.
                Some(Condition::Actor { .. })
                    if block.version.unwrap_or(0) < biscuit_versions::DATALOG_3_3 =>
                {
                    return false;
                }
                Some(condition) => self.conditions.push(condition),
                None => return false,
            }
        }
        true
    }

    fn add_fact(&mut self, fact: &schema::Predicate, r: &impl Resolve) -> bool {
        if let Some(subject) = string_atom(fact, "subject", r) {
            self.subjects.push(subject.to_string());
        } else if atom(fact, "right", 3, r).is_some() {
            let Some((s, res, op)) = right_fact(fact, r) else {
                return false;
            };
            self.rights
                .push((s.to_string(), res.to_string(), op.to_string()));
        } else if let Some(terms) =
            atom(fact, "lineage", 2, r).or_else(|| atom(fact, "lineage", 3, r))
        {
            // Read by no rule or check, a lineage fact changes no decision; its terms are still
            // required to be what a fact may hold here (strings and integers, no variable).
            let constant = |term: &schema::Term| {
                string(term, r).is_some()
                    || matches!(term.content, Some(schema::term::Content::Integer(_)))
            };
            return terms.iter().all(constant);
        } else {
            return false;
        }
        true
    }

    /// Whether every check holds for a verifier adding `ambient` and allowing if all checks
    /// pass. False means "not shown here", not "denied": the caller asks biscuit-auth.
    pub fn allows(&self, ambient: &Ambient<'_>) -> bool {
        self.conditions.iter().all(|condition| match condition {
            Condition::Before(n) => ambient.now < *n,
            Condition::Actor {
                identity,
                descendants,
            } => ambient.actor.is_some_and(|actor| {
                actor == identity
                    || (*descendants
                        && actor
                            .strip_prefix(identity.as_str())
                            .is_some_and(|rest| rest.starts_with(':')))
            }),
            Condition::Domain(domain) => ambient.domain == Some(domain.as_str()),
            Condition::Rights => self.rights_hold(ambient),
        })
    }

    /// `subject($sub), resource($res), operation($op), right($sub, $res, $op)` over the authority
    /// facts and the verifier's.
    fn rights_hold(&self, ambient: &Ambient<'_>) -> bool {
        let (Some(resource), Some(operation)) = (ambient.resource, ambient.operation) else {
            return false;
        };
        self.rights.iter().any(|(subject, res, op)| {
            res == resource
                && op == operation
                && (self.subjects.contains(subject)
                    || match ambient.subject {
                        AmbientSubject::None => false,
                        AmbientSubject::Fact(s) => s == subject,
                        AmbientSubject::FromRights => true,
                    })
        })
    }

    /// Whether the token has the realm rule (kept for the realm policy's sake, see
    /// [`PlainChecks::realm_rule`]).
    pub fn has_realm_rule(&self) -> bool {
        self.realm_rule
    }
}

/// The block format versions of the Biscuit specification (biscuit-auth's `MIN_SCHEMA_VERSION`
/// … `DATALOG_3_3`, which it does not export): biscuit-auth refuses a block whose content needs a
/// later version than the block declares, so the plain reading refuses it too.
mod biscuit_versions {
    pub const MIN: u32 = 3;
    pub const DATALOG_3_1: u32 = 4;
    pub const DATALOG_3_2: u32 = 5;
    pub const DATALOG_3_3: u32 = 6;
    pub const MAX: u32 = 6;
}

/// Whether the block's declared version admits what a plain block may hold, as biscuit-auth
/// checks it when it reads a block: a known version, check kinds written out only from 3.1,
/// third-party blocks only from 3.2 (the actor checks' 3.3 operators: see `read_block`).
fn version_admits(block: &schema::Block, third_party: bool) -> bool {
    use biscuit_versions::*;
    let version = block.version.unwrap_or(0);
    (MIN..=MAX).contains(&version)
        && !(third_party && version < DATALOG_3_2)
        && !(version < DATALOG_3_1 && block.checks.iter().any(|c| c.kind.is_some()))
}

/// The plain check a query is, if it is one.
fn condition(query: &schema::Rule, r: &impl Resolve) -> Option<Condition> {
    // The head of a check's query is `query(…)` and binds nothing the check depends on; only
    // the body and the expressions decide.
    match (query.body.as_slice(), query.expressions.as_slice()) {
        ([actor], [expression])
            if atom(actor, "actor", 1, r).is_some_and(|t| var(&t[0], "a", r)) =>
        {
            if let Some((exact, under)) = delegatable_actor(&expression.ops, r) {
                (exact == under).then(|| Condition::Actor {
                    identity: exact.to_string(),
                    descendants: true,
                })
            } else {
                exact_actor(&expression.ops, r).map(|identity| Condition::Actor {
                    identity: identity.to_string(),
                    descendants: false,
                })
            }
        }
        ([time], [expression])
            if atom(time, "time", 1, r).is_some_and(|t| var(&t[0], "time", r)) =>
        {
            before(&expression.ops, r).map(Condition::Before)
        }
        ([domain], []) => {
            string_atom(domain, "domain", r).map(|d| Condition::Domain(d.to_string()))
        }
        ([_, _, _, _], []) => is_rights_check(query, r).then_some(Condition::Rights),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use biscuit_auth::builder::BlockBuilder;
    use biscuit_auth::{Biscuit, KeyPair};
    use proptest::prelude::*;

    use super::super::authz::{AuthzVerification, verify_authz_parsed};
    use super::super::identity::{IdentityVerification, verify_identity_parsed};
    use super::super::{Actor, TokenView, screen};
    use super::{Ambient, AmbientSubject, PlainChecks, Resolve, schema};

    const NOW: i64 = 1_000_000;
    const IDS: [&str; 5] = [
        "uri:urn:a",
        "uri:urn:a:b",
        "uri:urn:a:b:c",
        "uri:urn:ab",
        "uri:urn:a:bc",
    ];
    const DOMAINS: [&str; 2] = ["d1", "d2"];
    const RIGHTS_CHECK: &str =
        "check if subject($sub), resource($res), operation($op), right($sub, $res, $op)";
    const RESOURCES: [&str; 2] = ["r1", "r2"];
    const OPERATIONS: [&str; 2] = ["read", "write"];

    /// Statements that are not plain, each close to a plain one.
    const NOT_PLAIN: [&str; 14] = [
        r#"check if operation($op), $op == "read""#,
        "check all time($time), $time < 1000001",
        r#"reject if actor($a), $a == "uri:urn:a:b""#,
        r#"check if actor($a), $a === "uri:urn:a""#,
        "check if time($time), $time <= 1000000",
        r#"actor("uri:urn:a:b")"#,
        "time(5)",
        r#"check if actor($a), $a == "uri:urn:a" || $a.starts_with("uri:urn:ab" + ":")"#,
        r#"check if domain($d), $d == "d1""#,
        "check if time($time), $time < 1000001 trusting previous",
        "check if true",
        r#"actor("uri:urn:ab") <- subject($s)"#,
        r#"domain("d1")"#,
        r#"right("uri:urn:a", "r1", "read")"#,
    ];

    fn pick(from: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
        prop::sample::select(from)
    }

    fn expiry() -> impl Strategy<Value = i64> {
        prop::sample::select(vec![NOW - 1, NOW, NOW + 1, NOW + 100])
    }

    fn actor_check(identity: &str, descendants: bool) -> String {
        if descendants {
            format!(
                r#"check if actor($a), $a == "{identity}" || $a.starts_with("{identity}" + ":")"#
            )
        } else {
            format!(r#"check if actor($a), $a == "{identity}""#)
        }
    }

    /// A statement of an appended block: mostly plain checks, sometimes not plain.
    fn appended_statement() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => (pick(&IDS), any::<bool>()).prop_map(|(id, d)| actor_check(id, d)),
            3 => expiry().prop_map(|n| format!("check if time($time), $time < {n}")),
            1 => pick(&DOMAINS).prop_map(|d| format!(r#"check if domain("{d}")"#)),
            1 => Just(RIGHTS_CHECK.to_string()),
            1 => pick(&NOT_PLAIN).prop_map(str::to_string),
        ]
    }

    /// Appended blocks, each signed by the previous block's key or (true) by a fresh
    /// third-party key, as delegations and JIT blocks are.
    fn appended_blocks() -> impl Strategy<Value = Vec<(bool, Vec<String>)>> {
        prop::collection::vec(
            (
                any::<bool>(),
                prop::collection::vec(appended_statement(), 0..4),
            ),
            0..4,
        )
    }

    fn build(root: &KeyPair, authority: &[String], appended: &[(bool, Vec<String>)]) -> Vec<u8> {
        let mut token = Biscuit::builder()
            .code(authority.join(";\n") + ";")
            .unwrap()
            .build(root)
            .unwrap();
        for (third_party, block) in appended {
            let code = if block.is_empty() {
                String::new()
            } else {
                block.join(";\n") + ";"
            };
            let block = BlockBuilder::new().code(code).unwrap();
            token = if *third_party {
                let signer = KeyPair::new();
                let signed = token
                    .third_party_request()
                    .unwrap()
                    .create_block(&signer.private(), block)
                    .unwrap();
                token.append_third_party(signer.public(), signed).unwrap()
            } else {
                token.append(block).unwrap()
            };
        }
        token.to_vec().unwrap()
    }

    /// The token read as the verifiers read it, and the same view with the plain reading
    /// removed (so biscuit-auth decides); `None` when the screen refuses it (then nothing is
    /// evaluated at all).
    fn read(
        root: biscuit_auth::PublicKey,
        bytes: &[u8],
    ) -> Option<(Biscuit, TokenView, TokenView)> {
        let screened = screen(bytes).ok()?;
        let biscuit = Biscuit::from(bytes, root).unwrap();
        let view = TokenView::from_screened(&biscuit, screened);
        let mut datalog = view.clone();
        datalog.plain = None;
        Some((biscuit, view, datalog))
    }

    static ROOT: std::sync::LazyLock<KeyPair> = std::sync::LazyLock::new(KeyPair::new);

    fn identity_authority() -> impl Strategy<Value = Vec<String>> {
        (
            pick(&IDS),
            any::<bool>(),
            expiry(),
            prop::option::of(pick(&DOMAINS)),
            any::<bool>(),
            prop::option::of(pick(&NOT_PLAIN)),
        )
            .prop_map(|(subject, descendants, expiry, domain, lineage, extra)| {
                let mut statements = vec![
                    format!(r#"subject("{subject}")"#),
                    actor_check(subject, descendants),
                    format!("check if time($time), $time < {expiry}"),
                ];
                if let Some(domain) = domain {
                    statements.push(format!(r#"check if domain("{domain}")"#));
                    statements.push("subject($d, $s) <- domain($d), subject($s)".into());
                }
                if lineage {
                    statements.push(r#"lineage(1, "00ff", 0)"#.into());
                }
                statements.extend(extra.map(str::to_string));
                statements
            })
    }

    fn authz_authority() -> impl Strategy<Value = Vec<String>> {
        (
            prop::collection::vec((pick(&IDS), pick(&RESOURCES), pick(&OPERATIONS)), 1..3),
            prop::option::of(pick(&IDS)),
            expiry(),
            prop::option::of(pick(&DOMAINS)),
            prop::option::of(pick(&NOT_PLAIN)),
        )
            .prop_map(|(rights, subject, expiry, domain, extra)| {
                let mut statements: Vec<String> = rights
                    .iter()
                    .map(|(s, r, o)| format!(r#"right("{s}", "{r}", "{o}")"#))
                    .collect();
                statements.push(RIGHTS_CHECK.into());
                statements.push(format!("check if time($time), $time < {expiry}"));
                if let Some(subject) = subject {
                    statements.push(format!(r#"subject("{subject}")"#));
                }
                if let Some(domain) = domain {
                    statements.push(format!(r#"check if domain("{domain}")"#));
                }
                statements.extend(extra.map(str::to_string));
                statements
            })
    }

    fn outcome<T: std::fmt::Debug, E>(result: Result<T, E>) -> Option<String> {
        result.ok().map(|value| format!("{value:?}"))
    }

    /// The view the verifiers read for token text.
    fn view_of(root: &KeyPair, text: &str) -> TokenView {
        view_of_key(root.public(), text)
    }

    fn view_of_key(root: biscuit_auth::PublicKey, text: &str) -> TokenView {
        let bytes = super::super::decode(text).unwrap();
        read(root, &bytes).expect("screened").1
    }

    /// alice's delegatable identity token, valid for an hour from `NOW`.
    fn alice(root: &KeyPair, domain: Option<&str>) -> String {
        super::super::mint_identity(
            root,
            &super::super::IdentityClaims {
                subject: "uri:urn:company:alice".into(),
                expires_at: NOW + 3600,
                delegatable: true,
                domain: domain.map(str::to_string),
            },
        )
        .unwrap()
    }

    /// An authorization for alice to read production_api for five minutes from `NOW`.
    fn alice_reads(domain: Option<&str>) -> super::super::AuthzClaims {
        super::super::AuthzClaims {
            subject: "uri:urn:company:alice".into(),
            resource: "production_api".into(),
            operation: "read".into(),
            expires_at: NOW + 300,
            domain: domain.map(str::to_string),
            ..super::super::AuthzClaims::default()
        }
    }

    /// `token` delegated to `to` until `expires_at`, its parent checked with `root`.
    fn delegated(root: &KeyPair, token: &str, to: &str, expires_at: i64) -> String {
        let delegation = super::super::Delegation::new(to, expires_at);
        super::super::delegate(token, Some(&root.public()), &delegation)
            .unwrap()
            .token
    }

    fn identity_ambient<'a>(actor: &'a str, now: i64) -> Ambient<'a> {
        Ambient {
            now,
            actor: Some(actor),
            domain: None,
            resource: None,
            operation: None,
            subject: AmbientSubject::None,
        }
    }

    /// What the system and the published SDK mint and extend every day is decided here; the
    /// answer follows the expiry, the actor and the domain.
    #[test]
    fn honest_identity_tokens_are_plain() {
        use super::super::{IdentityClaims, add_jit, mint_identity};
        let root = KeyPair::new();
        let agent = "uri:urn:company:alice:agent1";
        let token = delegated(&root, &alice(&root, None), agent, NOW + 600);
        let worker = "uri:urn:company:alice:agent1:worker";
        let token = delegated(&root, &token, worker, NOW + 60);
        let token = add_jit(&token, NOW).unwrap();
        let plain = view_of(&root, &token)
            .plain
            .expect("delegated and JIT tokens are plain");
        assert!(plain.allows(&identity_ambient(worker, NOW)));
        assert!(plain.allows(&identity_ambient(&format!("{worker}:sub"), NOW)));
        assert!(
            !plain.allows(&identity_ambient(agent, NOW)),
            "the delegation narrows"
        );
        assert!(!plain.allows(&identity_ambient(
            "uri:urn:company:alice:agent1:workerx",
            NOW
        )));
        assert!(
            !plain.allows(&identity_ambient(worker, NOW + 60)),
            "expired at the deepest level"
        );
        assert!(!plain.allows(&identity_ambient(worker, NOW + super::super::JIT_SECONDS)));

        // A realm-minted identity: its domain check holds only with the domain.
        let realm = IdentityClaims {
            subject: "uri:urn:mycompany:bob".into(),
            expires_at: NOW + 3600,
            delegatable: false,
            domain: Some("uri:urn:mycompany".into()),
        };
        let plain = view_of(&root, &mint_identity(&root, &realm).unwrap())
            .plain
            .expect("realm tokens are plain");
        assert!(plain.has_realm_rule());
        let mut ambient = identity_ambient("uri:urn:mycompany:bob", NOW);
        assert!(!plain.allows(&ambient));
        ambient.domain = Some("uri:urn:mycompany");
        assert!(plain.allows(&ambient));

        // The published SDK's own minting and attenuation.
        let sdk_root = KeyPair::new();
        let sdk_public = sdk_root.public();
        let time = hessra_token_core::TokenTimeConfig {
            start_time: None,
            duration: 3600,
        };
        let minted = hessra_token_identity::create_identity_token(
            "uri:urn:company:alice".into(),
            sdk_root,
            time,
        )
        .unwrap();
        let attenuated = hessra_token_identity::add_identity_attenuation_to_token(
            minted,
            agent.into(),
            sdk_public,
            time,
        )
        .unwrap();
        let plain = view_of_key(sdk_public, &attenuated)
            .plain
            .expect("the SDK's tokens are plain");
        let now = super::super::clock::unix_now();
        assert!(plain.allows(&identity_ambient(agent, now)));
        assert!(!plain.allows(&identity_ambient("uri:urn:company:alice", now)));
    }

    #[test]
    fn honest_authorization_tokens_are_plain_in_both_modes() {
        use super::super::mint_authz;
        let root = KeyPair::new();
        let claims = alice_reads(Some("example.com"));
        let token = super::super::add_jit(&mint_authz(&root, &claims).unwrap(), NOW).unwrap();
        let plain = view_of(&root, &token)
            .plain
            .expect("authorization tokens are plain");
        let mut ambient = Ambient {
            now: NOW,
            actor: None,
            domain: Some("example.com"),
            resource: Some("production_api"),
            operation: Some("read"),
            subject: AmbientSubject::FromRights,
        };
        assert!(plain.allows(&ambient), "capability mode");
        ambient.subject = AmbientSubject::Fact("uri:urn:company:alice");
        assert!(plain.allows(&ambient), "identity mode");
        ambient.subject = AmbientSubject::Fact("uri:urn:company:mallory");
        assert!(!plain.allows(&ambient), "someone else");
        ambient.subject = AmbientSubject::FromRights;
        ambient.operation = Some("write");
        assert!(!plain.allows(&ambient), "another operation");
        ambient.operation = Some("read");
        ambient.domain = None;
        assert!(!plain.allows(&ambient), "the domain is required");
    }

    /// Attestations, signoffs, prefixes, service chains and delegation policies go to
    /// biscuit-auth.
    #[test]
    fn everything_else_is_not_plain() {
        use super::super::{
            AuthzClaims, Delegation, DelegationPolicy, add_prefix_restriction,
            add_service_attestation, add_signoff, delegate, mint_authz, service_node,
        };
        let root = KeyPair::new();
        let node = KeyPair::new();
        let claims = alice_reads(None);
        let plain = mint_authz(&root, &claims).unwrap();
        for token in [
            add_service_attestation(&plain, &node, "production_api").unwrap(),
            add_signoff(&plain, &node, "billing").unwrap(),
            add_prefix_restriction(&plain, &node, "tenants/1").unwrap(),
            mint_authz(
                &root,
                &AuthzClaims {
                    service_chain: vec![service_node("gateway", &node)],
                    ..claims.clone()
                },
            )
            .unwrap(),
            mint_authz(
                &root,
                &AuthzClaims {
                    prefix_attenuator_key: Some(super::super::keys::key_string(&node.public())),
                    ..claims.clone()
                },
            )
            .unwrap(),
        ] {
            assert_eq!(view_of(&root, &token).plain, None);
        }
        let identity = alice(&root, None);
        let policy = DelegationPolicy::parse(r#"check if operation($op), $op == "read";"#).unwrap();
        let mut delegation = Delegation::new("uri:urn:company:alice:agent", NOW + 60);
        delegation.policy = Some(&policy);
        let narrowed = delegate(&identity, Some(&root.public()), &delegation)
            .unwrap()
            .token;
        assert_eq!(view_of(&root, &narrowed).plain, None);
    }

    /// Ids resolved as for a block standing alone: the default symbols, then its own (right for
    /// an authority block and for third-party blocks, which is all the tokens below hold).
    struct OwnSymbols<'b> {
        defaults: biscuit_auth::datalog::SymbolTable,
        block: &'b schema::Block,
    }

    impl Resolve for OwnSymbols<'_> {
        fn symbol(&self, id: u64) -> Option<&str> {
            match id.checked_sub(1024) {
                None => self.defaults.get_symbol(id),
                Some(own) => self.block.symbols.get(own as usize).map(String::as_str),
            }
        }

        fn key(&self, _index: i64) -> Option<String> {
            None
        }
    }

    /// Whether the plain reading admits block `index` (third-party when it has an `external`
    /// signer), and whether biscuit-auth reads it for its authorizer.
    fn both_read(
        index: usize,
        block: &schema::Block,
        external: Option<biscuit_auth::PublicKey>,
    ) -> (bool, bool) {
        let symbols = OwnSymbols {
            defaults: biscuit_auth::datalog::SymbolTable::new(),
            block,
        };
        let plain = PlainChecks::default().read_block(index, block, external.is_some(), &symbols);
        let reads =
            biscuit_auth::format::convert::proto_block_to_token_block(block, external).is_ok();
        (plain, reads)
    }

    /// biscuit-auth refuses to read a block whose declared version does not admit its content
    /// (and the authorizer then refuses the token); the plain reading must never admit such a
    /// block. Every block of the tokens the system issues, at every declared version, with its
    /// check kinds left out and written out: admitted only where biscuit-auth reads it.
    #[test]
    fn a_block_biscuit_auth_would_not_read_is_not_plain() {
        use super::super::{add_jit, decode, mint_authz};
        use prost::Message;
        let root = KeyPair::new();
        let identity = alice(&root, Some("example.com"));
        let delegated = delegated(&root, &identity, "uri:urn:company:alice:agent", NOW + 60);
        let authz = alice_reads(Some("example.com"));
        let tokens = [
            add_jit(&delegated, NOW).unwrap(),
            add_jit(&mint_authz(&root, &authz).unwrap(), NOW).unwrap(),
        ];
        let mut admitted = 0;
        for text in tokens {
            let container = schema::Biscuit::decode(decode(&text).unwrap().as_slice()).unwrap();
            let signed = std::iter::once(&container.authority).chain(&container.blocks);
            for (index, signed) in signed.enumerate() {
                let honest = schema::Block::decode(signed.block.as_slice()).unwrap();
                let third_party = signed.external_signature.is_some();
                let external = third_party.then(|| KeyPair::new().public());
                for version in 0..=8 {
                    for kind in [None, Some(schema::check::Kind::One as i32)] {
                        let mut block = honest.clone();
                        block.version = Some(version);
                        for check in &mut block.checks {
                            check.kind = kind;
                        }
                        let (plain, reads) = both_read(index, &block, external);
                        assert!(
                            reads || !plain,
                            "block {index} at version {version} (kind {kind:?}) is plain, yet biscuit-auth does not read it"
                        );
                        admitted += usize::from(plain);
                    }
                }
                // A default symbol among its own, and a key table: biscuit-auth does not read
                // the first for a third-party block (for a first-party one the token is refused
                // when read), and a plain block has no use for the second.
                let mut redefined = honest.clone();
                redefined.symbols.push("read".into());
                let mut keyed = honest.clone();
                keyed.public_keys.push(schema::PublicKey {
                    algorithm: schema::public_key::Algorithm::Ed25519 as i32,
                    key: vec![7; 3],
                });
                let odd = if third_party {
                    vec![redefined, keyed]
                } else {
                    vec![keyed]
                };
                for block in odd {
                    let (plain, reads) = both_read(index, &block, external);
                    assert!(
                        reads || !plain,
                        "block {index} is plain, yet biscuit-auth does not read it"
                    );
                    assert!(!plain, "block {index}");
                }
            }
        }
        assert!(
            admitted > 0,
            "no block was ever plain: the test tests nothing"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever the token and the request, the plain reading and biscuit-auth agree.
        #[test]
        fn identity_decisions_agree_with_biscuit_auth(
            authority in identity_authority(),
            appended in appended_blocks(),
            actor in pick(&IDS),
            now in prop::sample::select(vec![NOW - 1, NOW, NOW + 1]),
            domain in prop::option::of(pick(&DOMAINS)),
            context in prop::option::of((pick(&RESOURCES), pick(&OPERATIONS))),
            realm in any::<bool>(),
        ) {
            let bytes = build(&ROOT, &authority, &appended);
            let Some((biscuit, view, datalog)) = read(ROOT.public(), &bytes) else {
                return Ok(());
            };
            let mut verification = IdentityVerification::new(Actor::Named(actor), now);
            verification.domain = domain;
            verification.ensure_subject_in_domain = realm && domain.is_some();
            verification.resource = context.map(|(r, _)| r);
            verification.operation = context.map(|(_, o)| o);
            let plain = outcome(verify_identity_parsed(&biscuit, &view, &verification));
            let engine = outcome(verify_identity_parsed(&biscuit, &datalog, &verification));
            prop_assert_eq!(plain, engine, "{:?} {:?}", authority, appended);
        }

        #[test]
        fn authz_decisions_agree_with_biscuit_auth(
            authority in authz_authority(),
            appended in appended_blocks(),
            subject in prop::option::of(pick(&IDS)),
            resource in pick(&RESOURCES),
            operation in pick(&OPERATIONS),
            now in prop::sample::select(vec![NOW - 1, NOW, NOW + 1]),
            domain in prop::option::of(pick(&DOMAINS)),
        ) {
            let bytes = build(&ROOT, &authority, &appended);
            let Some((biscuit, view, datalog)) = read(ROOT.public(), &bytes) else {
                return Ok(());
            };
            let mut verification = AuthzVerification::new(subject, resource, operation, now);
            verification.domain = domain;
            let plain = outcome(verify_authz_parsed(&biscuit, &view, &verification));
            let engine = outcome(verify_authz_parsed(&biscuit, &datalog, &verification));
            prop_assert_eq!(plain, engine, "{:?} {:?}", authority, appended);
        }
    }
}
