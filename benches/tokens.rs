//! Token operations, ours against the published Hessra crates (hessra-token-identity and
//! hessra-token-authz 0.6.0) as the baseline, measured in the same run. Both sign with a P-256
//! root, as the Hessra authorization service does.
//!
//! Run: `cargo bench --bench tokens`. Ids: `tokens/<op>/ours` and `tokens/<op>/hessra`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hessra_console::token::{
    self, Actor, AuthzClaims, AuthzVerification, Delegation, IdentityClaims, IdentityVerification,
    clock::unix_now, keys,
};
use hessra_token_core::TokenTimeConfig;

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

fn benches(c: &mut Criterion) {
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

    let mut group = c.benchmark_group("tokens/mint_identity");
    group.bench_function("ours", |b| {
        b.iter(|| token::mint_identity(&root, black_box(&claims(now))).unwrap())
    });
    group.bench_function("hessra", |b| {
        b.iter(|| {
            hessra_token_identity::HessraIdentity::new(black_box(ALICE.to_string()), hour())
                .delegatable(true)
                .issue(&root)
                .unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("tokens/delegate");
    group.bench_function("ours", |b| {
        b.iter(|| {
            token::delegate(
                black_box(&base),
                Some(&public),
                &Delegation::new(AGENT, now + 600),
            )
            .unwrap()
        })
    });
    group.bench_function("hessra", |b| {
        b.iter(|| {
            hessra_token_identity::add_identity_attenuation_to_token(
                black_box(base.clone()),
                AGENT.to_string(),
                public,
                hour(),
            )
            .unwrap()
        })
    });
    group.finish();

    for (op, token_text, actor) in [
        ("verify_identity", &base, ALICE),
        ("verify_identity_depth2", &depth2, WORKER),
    ] {
        let mut group = c.benchmark_group(format!("tokens/{op}"));
        group.bench_function("ours", |b| {
            b.iter(|| {
                let check = IdentityVerification::new(Actor::Named(actor), unix_now());
                token::verify_identity(black_box(token_text), &public, &check).unwrap()
            })
        });
        group.bench_function("hessra", |b| {
            b.iter(|| {
                hessra_token_identity::verify_identity_token(
                    black_box(token_text.clone()),
                    public,
                    actor.to_string(),
                )
                .unwrap()
            })
        });
        group.finish();
    }

    let mut group = c.benchmark_group("tokens/mint_authz");
    group.bench_function("ours", |b| {
        b.iter(|| token::mint_authz(&root, black_box(&authz_claims(now))).unwrap())
    });
    group.bench_function("hessra", |b| {
        b.iter(|| {
            hessra_token_authz::HessraAuthorization::new(
                black_box(ALICE.to_string()),
                "production_api".into(),
                "read".into(),
                TokenTimeConfig {
                    start_time: None,
                    duration: 300,
                },
            )
            .issue(&root)
            .unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("tokens/verify_authz");
    group.bench_function("ours", |b| {
        b.iter(|| {
            let check = AuthzVerification::new(Some(ALICE), "production_api", "read", unix_now());
            token::verify_authz(black_box(&authz), &public, &check).unwrap()
        })
    });
    group.bench_function("hessra", |b| {
        b.iter(|| {
            hessra_token_authz::verify_token_local(
                black_box(&authz),
                public,
                ALICE,
                "production_api",
                "read",
            )
            .unwrap()
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = tokens;
    config = config();
    targets = benches
}
criterion_main!(tokens);
