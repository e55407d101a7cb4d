//! Token operations, ours against the published Hessra crates (hessra-token-identity and
//! hessra-token-authz 0.6.0) as the baseline, measured in the same run. Both sign with a P-256
//! root, as the Hessra authorization service does.
//!
//! Run: `cargo bench --bench tokens`. Ids: `tokens/<op>/ours` and `tokens/<op>/hessra`.
//!
//! After criterion's groups, a paired run alternates ours and the baseline in short rounds and
//! prints the median per-round ratio: on a shared machine, drift between two sequential criterion
//! groups is larger than the differences being measured, and alternation cancels it.
//!
//! The baseline's own Datalog limit (biscuit-auth's 1 ms default) makes it fail now and then
//! under load; such failures are counted and printed rather than aborting the run.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::Criterion;
use hessra_console::token::{
    self, Actor, AuthzClaims, AuthzVerification, Delegation, IdentityClaims, IdentityVerification,
    TokenView, clock::unix_now, keys,
};
use hessra_token_core::TokenTimeConfig;

mod common;
use common::{Op, paired_ratio};

const ALICE: &str = "uri:urn:company:alice";
const AGENT: &str = "uri:urn:company:alice:agent1";
const WORKER: &str = "uri:urn:company:alice:agent1:worker";

fn hour() -> TokenTimeConfig {
    TokenTimeConfig {
        start_time: None,
        duration: 3600,
    }
}

fn claims(now: i64) -> IdentityClaims {
    IdentityClaims {
        subject: ALICE.into(),
        expires_at: now + 3600,
        delegatable: true,
        domain: None,
    }
}

fn authz_claims(now: i64) -> AuthzClaims {
    AuthzClaims {
        subject: ALICE.into(),
        resource: "production_api".into(),
        operation: "read".into(),
        expires_at: now + 300,
        ..AuthzClaims::default()
    }
}

/// Spurious baseline failures (its 1 ms Datalog limit), counted per run.
static BASELINE_FAILURES: AtomicUsize = AtomicUsize::new(0);

fn baseline<T, E>(result: Result<T, E>) {
    if result.is_err() {
        BASELINE_FAILURES.fetch_add(1, Ordering::Relaxed);
    }
}

/// Each operation as (name, ours, baseline), on fixtures made once.
fn operations() -> Vec<(&'static str, Op, Op)> {
    let root = keys::generate(keys::KeyAlgorithm::Secp256r1);
    let public = root.public();
    let now = unix_now();
    let base = token::mint_identity(&root, &claims(now)).unwrap();
    let depth1 = token::delegate(&base, Some(&public), &Delegation::new(AGENT, now + 600))
        .unwrap()
        .token;
    let depth2 = token::delegate(&depth1, Some(&public), &Delegation::new(WORKER, now + 600))
        .unwrap()
        .token;
    let authz = token::mint_authz(&root, &authz_claims(now)).unwrap();
    let root = std::rc::Rc::new(root);
    let mut ops: Vec<(&'static str, Op, Op)> = Vec::new();

    let (r1, r2) = (root.clone(), root.clone());
    ops.push((
        "mint_identity",
        Box::new(move || {
            black_box(token::mint_identity(&*r1, black_box(&claims(now))).unwrap());
        }),
        Box::new(move || {
            baseline(
                hessra_token_identity::HessraIdentity::new(black_box(ALICE.to_string()), hour())
                    .delegatable(true)
                    .issue(&r2),
            );
        }),
    ));

    // Delegating with the root key checks the parent's signatures first; a parent whose
    // signatures were checked before is not checked again (`_first_sight` forgets it first).
    for (name, first_sight) in [("delegate", false), ("delegate_first_sight", true)] {
        let (b1, b2) = (base.clone(), base.clone());
        ops.push((
            name,
            Box::new(move || {
                if first_sight {
                    TokenView::forget_verified();
                }
                let delegation = Delegation::new(AGENT, now + 600);
                black_box(token::delegate(black_box(&b1), Some(&public), &delegation).unwrap());
            }),
            Box::new(move || {
                baseline(hessra_token_identity::add_identity_attenuation_to_token(
                    black_box(b2.clone()),
                    AGENT.to_string(),
                    public,
                    hour(),
                ));
            }),
        ));
    }

    // A verifier remembers the tokens whose signatures it has checked (a server sees the same
    // identity token many times) and decides expiry, actor and domain afresh on every call; the
    // `_first_sight` variants forget them before every call, paying that reset besides what
    // checking and reading a token the first time costs.
    for (name, text, actor, first_sight) in [
        ("verify_identity", base.clone(), ALICE, false),
        ("verify_identity_first_sight", base.clone(), ALICE, true),
        ("verify_identity_depth2", depth2.clone(), WORKER, false),
        (
            "verify_identity_depth2_first_sight",
            depth2.clone(),
            WORKER,
            true,
        ),
    ] {
        let theirs = text.clone();
        ops.push((
            name,
            Box::new(move || {
                if first_sight {
                    TokenView::forget_verified();
                }
                let check = IdentityVerification::new(Actor::Named(actor), unix_now());
                black_box(token::verify_identity(black_box(&text), &public, &check).unwrap());
            }),
            Box::new(move || {
                baseline(hessra_token_identity::verify_identity_token(
                    black_box(theirs.clone()),
                    public,
                    actor.to_string(),
                ));
            }),
        ));
    }

    let (r1, r2) = (root.clone(), root);
    ops.push((
        "mint_authz",
        Box::new(move || {
            black_box(token::mint_authz(&*r1, black_box(&authz_claims(now))).unwrap());
        }),
        Box::new(move || {
            let time = TokenTimeConfig {
                start_time: None,
                duration: 300,
            };
            baseline(
                hessra_token_authz::HessraAuthorization::new(
                    black_box(ALICE.to_string()),
                    "production_api".into(),
                    "read".into(),
                    time,
                )
                .issue(&r2),
            );
        }),
    ));

    for (name, first_sight) in [("verify_authz", false), ("verify_authz_first_sight", true)] {
        let (ours, theirs) = (authz.clone(), authz.clone());
        ops.push((
            name,
            Box::new(move || {
                if first_sight {
                    TokenView::forget_verified();
                }
                let check =
                    AuthzVerification::new(Some(ALICE), "production_api", "read", unix_now());
                black_box(token::verify_authz(black_box(&ours), &public, &check).unwrap());
            }),
            Box::new(move || {
                baseline(hessra_token_authz::verify_token_local(
                    black_box(&theirs),
                    public,
                    ALICE,
                    "production_api",
                    "read",
                ));
            }),
        ));
    }
    ops
}

fn criterion_groups(c: &mut Criterion, ops: &[(&'static str, Op, Op)]) {
    for (name, ours, theirs) in ops {
        let mut group = c.benchmark_group(format!("tokens/{name}"));
        group.bench_function("ours", |b| b.iter(ours));
        group.bench_function("hessra", |b| b.iter(theirs));
        group.finish();
    }
}

fn main() {
    let ops = operations();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    criterion_groups(&mut criterion, &ops);
    criterion.final_summary();

    println!("\npaired (alternating rounds, median of per-round ratios):");
    println!("| op | ours | hessra | ours / hessra |");
    println!("|---|---|---|---|");
    for (name, ours, theirs) in &ops {
        let (ratio, ours_mean, theirs_mean) = paired_ratio(ours, theirs, 40);
        println!("| {name} | {ours_mean:.1?} | {theirs_mean:.1?} | {ratio:.2}× |");
    }
    println!(
        "baseline failures from its 1 ms Datalog limit: {}",
        BASELINE_FAILURES.load(Ordering::Relaxed)
    );
}
