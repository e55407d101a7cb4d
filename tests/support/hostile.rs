//! Tokens an attacker builds from any token they hold (no root key needed): the exploding rule,
//! the spinning check, and the most expensive tokens the screen still admits. Shared by
//! `tests/hostile_datalog.rs` and `benches/hostile_tokens.rs`; built with biscuit-auth directly,
//! as the attacker would.

#![allow(dead_code)]

use biscuit_auth::builder::BlockBuilder;
use biscuit_auth::{KeyPair, UnverifiedBiscuit};
use hessra_console::token::{self, COST_BUDGET, MAX_BLOCKS};

/// Appends a first-party block (the holder's own block key).
pub fn append(text: &str, code: &str) -> String {
    let unverified = UnverifiedBiscuit::from(token::decode(text).unwrap()).unwrap();
    let block = BlockBuilder::new().code(code).unwrap();
    token::encode(&unverified.append(block).unwrap().to_vec().unwrap())
}

/// Appends a third-party block signed by a key of the holder's own making.
pub fn append_signed(text: &str, signer: &KeyPair, code: &str) -> String {
    let unverified = UnverifiedBiscuit::from(token::decode(text).unwrap()).unwrap();
    let request = unverified.third_party_request().unwrap();
    let block = BlockBuilder::new().code(code).unwrap();
    let signed = request.create_block(&signer.private(), block).unwrap();
    let extended = unverified
        .append_third_party(&signed.serialize().unwrap())
        .unwrap();
    token::encode(&extended.to_vec().unwrap())
}

/// 100 facts and one rule whose single application is 10^10 tuples.
pub fn exploding_rule(token: &str) -> String {
    let facts: String = (0..100).map(|i| format!("n({i});")).collect();
    append(
        token,
        &format!("{facts} p($a, $b, $c, $d, $e) <- n($a), n($b), n($c), n($d), n($e);"),
    )
}

/// 100 facts and one check joining them five ways under a condition that never holds.
pub fn spinning_check(token: &str) -> String {
    let facts: String = (0..100).map(|i| format!("n({i});")).collect();
    append(
        token,
        &format!(
            "{facts} check if n($a), n($b), n($c), n($d), n($e), $a + $b + $c + $d + $e == -1;"
        ),
    )
}

/// The largest join an attacker can still build from admitted parts: signed attestation facts
/// in every block the screen allows, then a five-way join over them.
pub fn spinning_attestations(token: &str) -> String {
    let token = attestation_facts(token, MAX_BLOCKS - 2);
    append(
        &token,
        r#"check if service($a), service($b), service($c), service($d), service($e), $a == "never" trusting previous;"#,
    )
}

/// `blocks` third-party blocks, each asserting two attestation facts with long strings.
pub fn attestation_facts(token: &str, blocks: usize) -> String {
    let signer = KeyPair::new();
    let pad = "x".repeat(200);
    let mut token = token.to_string();
    for i in 0..blocks {
        token = append_signed(
            &token,
            &signer,
            &format!(r#"service("{pad}{i}"); namespace("{pad}{i}");"#),
        );
    }
    token
}

/// The most expensive kinds of token the screen admits, each grown until one more step would
/// cross [`COST_BUDGET`]: what the cost bound must hold for.
pub fn worst_admitted(token: &str) -> Vec<(&'static str, String)> {
    let facts = attestation_facts(token, MAX_BLOCKS / 2);
    // A two-way join with the longest conditions: every pair of facts, 32 operations each.
    let ops: Vec<String> = (0..15).map(|_| "$a".to_string()).collect();
    let pair = format!(
        r#"check if service($a), namespace($b), {} + $b == "never" trusting previous;"#,
        ops.join(" + ")
    );
    // Many one-atom checks, each scanning every fact.
    let scan = r#"check if service($a), $a.starts_with("never") || $a.ends_with("never") || $a.contains("never") trusting previous;"#;
    // The longest conditions on the longest strings: concatenation grows them.
    let long = attestation_facts(token, 8);
    let pad = "y".repeat(token::MAX_STRING - 1);
    let concat = format!(
        r#"check if service($a), {} == "{pad}" trusting previous;"#,
        vec!["$a"; 31].join(" + ")
    );
    // The most checks, each trusting every block before it.
    let trusting = r#"check if time($t), $t < 0 trusting previous;"#;
    vec![
        ("pair_join", grow(&facts, &pair)),
        ("scans", grow(&facts, scan)),
        ("long_strings", grow(&long, &concat)),
        ("many_checks", grow(&facts, trusting)),
    ]
}

/// Appends `check` in new blocks (up to 16 per block) while the screen still admits the token.
fn grow(token: &str, check: &str) -> String {
    let mut admitted = token.to_string();
    loop {
        let mut candidate = admitted.clone();
        let mut grown = false;
        for per_block in (1..=16).rev() {
            let next = append(&admitted, &check.repeat(per_block));
            // Past the size limit the token is refused before the screen: not admitted either.
            let admitted_next =
                token::decode(&next).is_ok_and(|bytes| token::screen(&bytes).is_ok());
            if admitted_next {
                candidate = next;
                grown = true;
                break;
            }
        }
        if !grown {
            let cost = token::screen(&token::decode(&admitted).unwrap())
                .unwrap()
                .cost;
            assert!(cost <= COST_BUDGET);
            return admitted;
        }
        admitted = candidate;
    }
}
