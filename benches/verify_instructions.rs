//! Verification cost in instructions, ours against the published crate, for callgrind: wall
//! time on this shared machine moves by more than the differences measured, instruction counts
//! do not.
//!
//! ```sh
//! cargo bench --bench verify_instructions --no-run     # prints the binary's path
//! for who in none ours hessra; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/deps/verify_instructions-<hash> $who 2 warm /tmp/fixtures-2-warm 2>&1 | grep Collected
//! done
//! ```
//!
//! Arguments: `none|ours|hessra` (none: only the set-up, to subtract; `ours-delegate` and
//! `hessra-delegate` delegate each token one level further instead), the delegation depth,
//! `warm` (one token verified 200 times: what a server sees as an identity token is presented
//! again and again) or `cold` (200 distinct tokens: every one a first sight), and optionally a
//! file that keeps the root key and tokens, made by the first run and read by the others, so
//! that all three verify the same bytes. With no arguments (`cargo bench`) it runs each
//! combination once and prints nothing worth reading.

use hessra_console::token::{
    self, Actor, Delegation, IdentityClaims, IdentityVerification, clock::unix_now, keys,
};

const CALLS: usize = 200;

fn tokens(root: &token::KeyPair, depth: usize, count: usize) -> Vec<(String, String)> {
    let now = unix_now();
    (0..count)
        .map(|_| {
            let mut who = "uri:urn:company:alice".to_string();
            let claims = IdentityClaims {
                subject: who.clone(),
                expires_at: now + 3600,
                delegatable: true,
                domain: None,
            };
            let mut text = token::mint_identity(root, &claims).unwrap();
            for level in 0..depth {
                who = format!("{who}:d{level}");
                text = token::delegate(
                    &text,
                    Some(&root.public()),
                    &Delegation::new(&who, now + 600),
                )
                .unwrap()
                .token;
            }
            (text, who)
        })
        .collect()
}

/// The root and tokens of a measurement, kept in `saved` (when given) so that every run — ours,
/// the baseline's, the set-up alone — verifies the same bytes: signature arithmetic varies a
/// little with the key and the signature.
fn fixtures(
    depth: usize,
    cold: bool,
    saved: Option<&str>,
) -> (token::PublicKey, Vec<(String, String)>) {
    if let Some(text) = saved.and_then(|path| std::fs::read_to_string(path).ok()) {
        let mut lines = text.lines();
        let public = keys::parse_key_string(lines.next().expect("a key line")).expect("a key");
        let pool = lines
            .map(|line| {
                let (token, actor) = line.split_once(' ').expect("token and actor");
                (token.to_string(), actor.to_string())
            })
            .collect();
        return (public, pool);
    }
    let root = keys::generate(keys::KeyAlgorithm::Secp256r1);
    let pool = tokens(&root, depth, if cold { CALLS } else { 1 });
    if let Some(path) = saved {
        let mut text = keys::key_string(&root.public());
        for (token, actor) in &pool {
            text.push_str(&format!("\n{token} {actor}"));
        }
        std::fs::write(path, text).expect("the fixtures can be saved");
    }
    (root.public(), pool)
}

fn run(who: &str, depth: usize, cold: bool, saved: Option<&str>) {
    let (public, pool) = fixtures(depth, cold, saved);
    let now = unix_now();
    for call in 0..CALLS {
        let (text, actor) = &pool[call % pool.len()];
        match who {
            "ours" => {
                let check = IdentityVerification::new(Actor::Named(actor), now);
                token::verify_identity(text, &public, &check).unwrap();
            }
            "hessra" => {
                // Its 1 ms Datalog limit may refuse under valgrind; the work is counted anyway.
                let _ = hessra_token_identity::verify_identity_token(
                    text.clone(),
                    public,
                    actor.clone(),
                );
            }
            "ours-delegate" => {
                let target = format!("{actor}:next");
                let delegation = Delegation::new(&target, now + 60);
                token::delegate(text, Some(&public), &delegation).unwrap();
            }
            "hessra-delegate" => {
                let time = hessra_token_core::TokenTimeConfig {
                    start_time: None,
                    duration: 60,
                };
                let _ = hessra_token_identity::add_identity_attenuation_to_token(
                    text.clone(),
                    format!("{actor}:next"),
                    public,
                    time,
                );
            }
            _ => {}
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [who, depth, mode, rest @ ..] if !who.starts_with('-') => {
            let saved = rest.first().map(String::as_str);
            run(who, depth.parse().expect("depth"), mode == "cold", saved);
        }
        _ => {
            for who in ["none", "ours", "hessra"] {
                run(who, 2, false, None);
            }
        }
    }
}
