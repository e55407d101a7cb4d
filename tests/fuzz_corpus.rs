//! The fuzz targets' committed inputs, replayed on stable: every seed in `fuzz/corpus/TARGET/`
//! and every reproducer in `fuzz/artifacts-regressions/TARGET/` goes through the same invariants
//! the cargo-fuzz binaries check (`fuzz/invariants.rs`), so a regression fails `cargo test`
//! without a nightly toolchain. `generated_seeds_keep_their_invariants` checks freshly generated
//! seeds too, and writes them with `HESSRA_WRITE_FUZZ_SEEDS=1`.

#[path = "../fuzz/invariants.rs"]
mod invariants;

use std::path::{Path, PathBuf};

use hessra_console::policy::revocations;
use hessra_console::token::{self, AuthzClaims, Delegation, DelegationPolicy, IdentityClaims};
use invariants::{NOW, TARGETS, root};

const FUZZ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz");

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(FUZZ).join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Reproducers whose fix belongs to code this branch leaves to others: each must still break
/// its invariant, so that the fix is noticed and the entry removed from this list.
const OPEN: [(&str, &str); 0] = [];

/// Replays every input of `kind`; returns `TARGET/FILE` of each that broke an invariant (the
/// panic itself is printed as it happens).
fn replay(kind: &str) -> Vec<String> {
    let mut broken = Vec::new();
    for (target, check) in TARGETS {
        for file in inputs(kind, target) {
            let data = std::fs::read(&file).expect("a readable input");
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                let name = file.file_name().expect("a file").to_string_lossy();
                broken.push(format!("{target}/{name}"));
            }
        }
    }
    broken
}

#[test]
fn every_seed_keeps_its_invariants() {
    for (target, _) in TARGETS {
        assert!(
            !inputs("corpus", target).is_empty(),
            "no seeds for {target}"
        );
    }
    let broken = replay("corpus");
    assert!(
        broken.is_empty(),
        "seeds that broke an invariant: {broken:?}"
    );
}

#[test]
fn every_reproducer_stays_fixed() {
    let broken = replay("artifacts-regressions");
    for (open, why) in OPEN {
        assert!(
            broken.iter().any(|b| b == open),
            "{open} passes now ({why} is fixed): remove it from OPEN"
        );
    }
    let regressed: Vec<&String> = broken
        .iter()
        .filter(|b| !OPEN.iter().any(|(open, _)| open == b))
        .collect();
    assert!(
        regressed.is_empty(),
        "reproducers that fail again: {regressed:?}"
    );
}

/// Generates the seeds — genuine tokens of every shape signed by the fuzzing root, the fixture
/// policy, delegation policies, revocation files and request bodies — and checks each against
/// its target's invariants. With `HESSRA_WRITE_FUZZ_SEEDS=1` it also writes them to
/// `fuzz/corpus/` (after changing the token or wire formats).
#[test]
fn generated_seeds_keep_their_invariants() {
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for (name, bytes) in token_seeds() {
        seeds.push(("token", name, bytes));
    }
    seeds.push((
        "clients_toml",
        "fixture.toml".into(),
        invariants::FIXTURE_POLICY.as_bytes().to_vec(),
    ));
    for (name, text) in delegation_policy_seeds() {
        seeds.push(("delegation_policy", name.into(), text.as_bytes().to_vec()));
    }
    for (name, mode, text) in screen_seeds() {
        let mut bytes = vec![mode];
        bytes.extend_from_slice(text.as_bytes());
        seeds.push(("token_screen", name.into(), bytes));
    }
    for (name, text) in revocation_seeds() {
        seeds.push(("revocations_toml", name.into(), text.into_bytes()));
    }
    for (name, body) in request_seeds() {
        seeds.push(("wire_requests", name.into(), body.to_string().into_bytes()));
    }
    let write_out = std::env::var_os("HESSRA_WRITE_FUZZ_SEEDS").is_some_and(|v| v == "1");
    for (target, name, bytes) in &seeds {
        let (_, check) = TARGETS
            .iter()
            .find(|(known, _)| known == target)
            .expect("a known target");
        check(bytes);
        if write_out {
            write(target, name, bytes);
        }
    }
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(FUZZ).join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("the corpus directory can be made");
    std::fs::write(dir.join(name), bytes).expect("the seed can be written");
}

fn token_seeds() -> Vec<(String, Vec<u8>)> {
    let root = root();
    let identity = |subject: &str, delegatable, domain: Option<&str>| {
        let claims = IdentityClaims {
            subject: subject.into(),
            expires_at: NOW + 3600,
            delegatable,
            domain: domain.map(str::to_string),
        };
        token::mint_identity(root, &claims).expect("a valid identity")
    };
    let alice = identity("uri:urn:company:alice", true, None);
    let policy = DelegationPolicy::parse("check if operation($op), $op == \"read\";")
        .expect("a valid policy");
    let mut with_policy = Delegation::new("uri:urn:company:alice:agent1", NOW + 600);
    with_policy.policy = Some(&policy);
    let delegated = token::delegate(&alice, Some(&root.public()), &with_policy)
        .expect("alice delegates")
        .token;
    let deeper = token::delegate(
        &delegated,
        None,
        &Delegation::new("uri:urn:company:alice:agent1:job", NOW + 300),
    )
    .expect("the agent delegates")
    .token;
    let authz = |claims: AuthzClaims| token::mint_authz(root, &claims).expect("valid claims");
    let right = AuthzClaims {
        subject: "uri:urn:company:alice".into(),
        resource: "production_api".into(),
        operation: "read".into(),
        expires_at: NOW + 300,
        ..AuthzClaims::default()
    };
    let node = token::service_node("gateway", &token::KeyPair::new());
    let chained = authz(AuthzClaims {
        service_chain: vec![node],
        ..right.clone()
    });
    let stub = authz(AuthzClaims {
        subject: "uri:urn:mycompany:user".into(),
        resource: "api".into(),
        domain: Some("uri:urn:mycompany".into()),
        prefix_attenuator_key: Some(token::keys::key_string(&token::KeyPair::new().public())),
        ..right.clone()
    });
    let seeds = [
        ("identity-delegatable", alice.clone()),
        (
            "identity-exact",
            identity("uri:urn:company:ci:deploy", false, None),
        ),
        (
            "identity-domain",
            identity("uri:urn:mycompany:user", false, Some("uri:urn:mycompany")),
        ),
        ("identity-delegated-policy", delegated),
        ("identity-delegated-twice", deeper),
        (
            "identity-jit",
            token::add_jit(&alice, NOW).expect("a JIT block"),
        ),
        ("authz", authz(right)),
        ("authz-service-chain", chained),
        ("authz-stub", stub),
    ];
    seeds
        .into_iter()
        .map(|(name, text)| {
            (
                name.to_string(),
                token::decode(&text).expect("own tokens decode"),
            )
        })
        .collect()
}

fn delegation_policy_seeds() -> Vec<(&'static str, &'static str)> {
    vec![
        ("operation", "check if operation($op), $op == \"read\";"),
        (
            "resource-and-operation",
            "check if resource($r), $r == \"production_api\";\ncheck if operation($op), [\"read\", \"list\"].contains($op);",
        ),
        ("time", "check if time($t), $t < 2000000000;"),
        ("reject", "reject if operation(\"delete\");"),
        (
            "check-all",
            "check all operation($op), $op.starts_with(\"re\");",
        ),
        ("fact-refused", "right(\"alice\", \"x\", \"y\");"),
        ("escape-refused", "check if operation(\"a\\\"b\");"),
    ]
}

/// Blocks appended to a genuine token: mode bit 0 makes it third-party, bit 1 puts it on an
/// authorization token instead of an identity token.
fn screen_seeds() -> Vec<(&'static str, u8, &'static str)> {
    vec![
        (
            "delegation",
            1,
            r#"check if actor($a), $a == "uri:urn:company:alice:a" || $a.starts_with("uri:urn:company:alice:a" + ":"); check if time($time), $time < 1800003600;"#,
        ),
        ("jit", 1, "check if time($time), $time < 1800000005;"),
        ("attestation", 3, r#"service("production_api");"#),
        ("signoff", 3, r#"namespace("payments");"#),
        (
            "prefix",
            3,
            r#"check if prefix("reports/"); prefix_added(true);"#,
        ),
        (
            "policy",
            0,
            r#"check if operation($op), ["read", "list"].contains($op); reject if resource("x");"#,
        ),
        (
            "exploding-rule",
            0,
            "n(0); n(1); n(2); n(3); n(4); n(5); n(6); n(7); n(8); n(9); p($a, $b, $c) <- n($a), n($b), n($c);",
        ),
        (
            "spinning-check",
            1,
            "n(0); n(1); n(2); check if n($a), n($b), n($c), $a + $b + $c == -1;",
        ),
        (
            "regex",
            0,
            r#"check if operation($op), $op.matches("^r.*d$");"#,
        ),
        ("closure", 0, "check if [1, 2, 3].all($x -> $x > 0);"),
        (
            "join",
            2,
            "check if right($s, $r, $o), right($t, $q, $p), time($x), $s == $t || $r == $q;",
        ),
    ]
}

fn revocation_seeds() -> Vec<(&'static str, String)> {
    let id = "ab".repeat(32);
    let entry = revocations::NewRevocation {
        id: id.clone(),
        reason: "laptop stolen".into(),
        by: Some("uri:urn:company:ops".into()),
        at: NOW,
    };
    let one = revocations::append(revocations::HEADER, &entry).expect("a valid entry");
    vec![
        ("header", revocations::HEADER.to_string()),
        ("one-entry", one),
        (
            "problems",
            format!(
                "[[revoked]]\nid = \"{id}\"\nreason = \"x\"\n\n[[revoked]]\nid = \"NOTHEX\"\nreason = \"\"\nwhen = 3\nat = \"yesterday\"\n\n[[revoked]]\nid = \"{id}\"\nreason = \"again\"\n"
            ),
        ),
        ("wrong-shape", "revoked = 3\nother = true\n".to_string()),
    ]
}

fn request_seeds() -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    let key = token::keys::key_string(&token::KeyPair::new().public());
    let alice = invariants::alice_token();
    vec![
        ("identity", json!({ "identifier": "3600" })),
        (
            "refresh",
            json!({ "current_token": alice, "identifier": null }),
        ),
        (
            "mint",
            json!({ "subject": "uri:urn:mycompany:new-user", "duration": 60 }),
        ),
        (
            "token",
            json!({ "resource": "production_api", "operation": "read" }),
        ),
        (
            "token-domain",
            json!({ "resource": "api", "operation": "read", "domain": "uri:urn:mycompany" }),
        ),
        (
            "stub",
            json!({ "target_identity": "uri:urn:mycompany:user", "resource": "api", "operation": "read", "prefix_attenuator_key": key, "duration": 60 }),
        ),
        (
            "verify",
            json!({ "token": alice, "subject": "uri:urn:company:alice", "resource": "production_api", "operation": "read" }),
        ),
        (
            "verify-chain",
            json!({ "token": alice, "subject": "uri:urn:company:alice", "resource": "production_api", "component": "gateway" }),
        ),
        (
            "sign",
            json!({ "token": alice, "resource": "production_api", "operation": "read" }),
        ),
    ]
}
