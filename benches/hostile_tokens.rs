//! What hostile tokens cost a verifier: the most expensive tokens the structural screen admits
//! (`worst_admitted`, each grown to the screen's cost budget) and the refusal of the ones it does
//! not (the exploding rule, the spinning check), against an honest identity token verified in the
//! same run as the baseline. The bound to hold: ≤ 10 ms and a few MB for any admitted token.
//!
//! Run: `cargo bench --bench hostile_tokens`. Ids: `hostile/<case>`. After criterion's groups it
//! prints, per case, the slowest of 200 verifications and the resident memory it added.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hessra_console::token::{
    self, Actor, IdentityClaims, IdentityVerification, TokenView, clock::unix_now, keys,
};

#[path = "../tests/support/hostile.rs"]
mod hostile;

const ALICE: &str = "uri:urn:company:alice";

struct Case {
    name: String,
    token: String,
    /// Forget every verified token before each call: signatures and screen every time.
    first_sight: bool,
}

fn cases() -> (token::KeyPair, Vec<Case>) {
    let root = keys::generate(keys::KeyAlgorithm::Secp256r1);
    let now = unix_now();
    let honest = token::mint_identity(
        &root,
        &IdentityClaims {
            subject: ALICE.into(),
            expires_at: now + 3600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    // The deepest delegation a policy may allow (token::MAX_DELEGATION_DEPTH), and the default depth
    // limit (10) with a three-check delegation policy at every level: the most honest tokens
    // ask of the screen's budget.
    let policy = token::DelegationPolicy::parse(
        r#"check if operation($op), ["read", "list"].contains($op);
           check if resource($r), $r.starts_with("reports/") || $r == "inbox";
           reject if operation("delete");"#,
    )
    .unwrap();
    let chain = |levels: usize, policy: Option<&token::DelegationPolicy>| {
        let mut deep = honest.clone();
        let mut identity = ALICE.to_string();
        for level in 0..levels {
            identity = format!("{identity}:l{level}");
            let mut step = token::Delegation::new(&identity, now + 3600);
            step.max_depth = token::MAX_DELEGATION_DEPTH;
            step.policy = policy;
            deep = token::delegate(&deep, Some(&root.public()), &step)
                .unwrap()
                .token;
        }
        deep
    };
    let deep = chain(token::MAX_DELEGATION_DEPTH, None);
    let policed = chain(10, Some(&policy));
    let mut cases = Vec::new();
    for first_sight in [false, true] {
        let suffix = if first_sight { "_first_sight" } else { "" };
        let mut add = |name: &str, token: &String| {
            cases.push(Case {
                name: format!("{name}{suffix}"),
                token: token.clone(),
                first_sight,
            })
        };
        add("honest", &honest);
        add("honest_depth_32", &deep);
        add("honest_depth_10_with_policies", &policed);
        for (name, token) in hostile::worst_admitted(&honest) {
            add(&format!("admitted_{name}"), &token);
        }
        add("refused_exploding_rule", &hostile::exploding_rule(&honest));
        add("refused_spinning_check", &hostile::spinning_check(&honest));
        add(
            "refused_spinning_attestations",
            &hostile::spinning_attestations(&honest),
        );
    }
    (root, cases)
}

fn verify(root: &token::KeyPair, case: &Case) {
    if case.first_sight {
        TokenView::forget_verified();
    }
    let mut verification = IdentityVerification::new(Actor::Effective, unix_now());
    verification.max_depth = token::MAX_DELEGATION_DEPTH;
    verification.resource = Some("reports/q3");
    verification.operation = Some("read");
    let _ = black_box(token::verify_identity(
        &case.token,
        &root.public(),
        &verification,
    ));
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    hessra_console::server::install_crypto_provider();
    let (root, cases) = cases();
    let mut criterion = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for case in &cases {
        criterion.bench_function(&format!("hostile/{}", case.name), |b| {
            b.iter(|| verify(&root, case))
        });
    }
    // The parts of a first sight, on the honest token: what the screen adds to biscuit-auth's
    // own decoding and signature checks.
    let honest = &cases[0].token;
    let bytes = token::decode(honest).unwrap();
    criterion.bench_function("parts/decode_base64", |b| {
        b.iter(|| black_box(token::decode(honest).unwrap()))
    });
    criterion.bench_function("parts/screen", |b| {
        b.iter(|| black_box(token::screen(&bytes).unwrap()))
    });
    criterion.bench_function("parts/biscuit_from", |b| {
        b.iter(|| black_box(token::Biscuit::from(&bytes, root.public()).unwrap()))
    });
    criterion.final_summary();

    println!("\ncase                                     slowest of 200   resident growth");
    for case in &cases {
        let before = resident_bytes();
        let slowest = (0..200)
            .map(|_| {
                let start = Instant::now();
                verify(&root, case);
                start.elapsed()
            })
            .max()
            .unwrap_or_default();
        let grown = resident_bytes().saturating_sub(before);
        println!(
            "{:<40} {:>10.3} ms   {:>8} KiB",
            case.name,
            slowest.as_secs_f64() * 1e3,
            grown / 1024
        );
    }
}
