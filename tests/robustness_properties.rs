//! Generated hostile input for every parser an attacker or a typo can reach, on the stable
//! toolchain (coverage-guided fuzzing needs nightly; see SECURITY.md): token bytes and text,
//! `clients.toml` damaged anywhere, delegation-policy Datalog, and request bodies sent to the
//! real server. Nothing may panic; every refusal is an error value with a message; the server
//! answers every body with a status below 500 and keeps serving.

mod support;

use hessra_console::policy::{self, DelegationTree, Edit, EditSession};
use hessra_console::token::{self, DelegationPolicy, KeyPair};
use proptest::prelude::*;

const FIXTURE: &str = include_str!("../fixtures/clients.toml");

fn genuine_token() -> (String, KeyPair) {
    let root = KeyPair::new();
    let minted = token::mint_identity(
        &root,
        &token::IdentityClaims {
            subject: "uri:urn:company:alice".into(),
            expires_at: token::clock::unix_now() + 600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    (minted, root)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_token_bytes_are_refused_with_a_message(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let text = token::encode(&bytes);
        let root = KeyPair::new().public();
        if let Err(e) = token::inspect(&text, Some(&root), 0) {
            prop_assert!(!e.to_string().is_empty());
        }
        let check = token::IdentityVerification::new(token::Actor::Effective, 0);
        prop_assert!(token::verify_identity(&text, &root, &check).is_err());
    }

    #[test]
    fn damaged_genuine_tokens_never_verify_as_something_else(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)
    ) {
        let (text, root) = genuine_token();
        let mut bytes = token::decode(&text).unwrap();
        for (at, mask) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        let damaged = token::encode(&bytes);
        let check = token::IdentityVerification::new(token::Actor::Effective, token::clock::unix_now());
        match token::verify_identity(&damaged, &root.public(), &check) {
            // A flip can land in bytes the signature does not cover only if the token is unchanged
            // in meaning: the identity must still be alice's.
            Ok(verified) => prop_assert_eq!(verified.identity, "uri:urn:company:alice"),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn arbitrary_token_text_is_refused_with_a_message(text in ".{0,300}") {
        let root = KeyPair::new().public();
        match token::inspect(&text, Some(&root), 0) {
            Ok(inspection) => prop_assert!(!inspection.blocks.is_empty()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn damaged_policies_load_or_say_where(
        at in any::<prop::sample::Index>(),
        cut in 0usize..40,
        insert in "[\\[\\]{}=\"',.\\n a-z0-9#:]{0,12}",
    ) {
        let start = at.index(FIXTURE.len());
        let start = (0..=start).rev().find(|i| FIXTURE.is_char_boundary(*i)).unwrap();
        let end = (start + cut).min(FIXTURE.len());
        let end = (end..=FIXTURE.len()).find(|i| FIXTURE.is_char_boundary(*i)).unwrap();
        let text = format!("{}{insert}{}", &FIXTURE[..start], &FIXTURE[end..]);
        match policy::load(&text, 0) {
            Err(finding) => prop_assert!(finding.location.is_some(), "{finding}"),
            Ok(loaded) => {
                let _ = DelegationTree::build(&loaded.policy, &loaded.findings);
                for finding in &loaded.findings {
                    prop_assert!(!finding.message.is_empty());
                }
                let mut session = EditSession::open(&text, 0).unwrap();
                let before = session.text().to_string();
                let edit = Edit::Grant {
                    identity: "uri:urn:company:alice".into(),
                    resource: "fuzz".into(),
                    operation: "read".into(),
                };
                match session.apply(&edit) {
                    Ok(()) => prop_assert!(policy::load(session.text(), 0).is_ok()),
                    Err(_) => prop_assert_eq!(session.text(), before.as_str()),
                }
            }
        }
    }

    #[test]
    fn delegation_policies_parse_or_say_where(source in ".{0,200}") {
        match DelegationPolicy::parse(&source) {
            Ok(_) => {}
            Err(token::TokenError::InvalidPolicy { line, column, message }) => {
                prop_assert!(line >= 1 && column >= 1 && !message.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
        }
    }
}

/// Random bodies to every endpoint of a real server: each answered below 500, and the server
/// serves an honest request afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_request_bodies_are_answered_and_the_server_keeps_serving() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let demo = support::Demo::start().await;
    let alice = demo.as_identity("uri:urn:company:alice");
    let mut runner = TestRunner::deterministic();
    let bodies = proptest::collection::vec(any::<u8>(), 0..400);
    let json_like = "[{}\\[\\]\":,0-9a-z_ ]{0,200}";
    for endpoint in [
        "/request_identity_token",
        "/refresh_identity_token",
        "/mint_identity_token",
        "/request_token",
        "/request_stub",
        "/verify_token",
        "/verify_service_chain_token",
        "/sign_token",
        "/sync",
    ] {
        for round in 0..40 {
            let body: Vec<u8> = if round % 2 == 0 {
                bodies.new_tree(&mut runner).unwrap().current()
            } else {
                json_like
                    .new_tree(&mut runner)
                    .unwrap()
                    .current()
                    .into_bytes()
            };
            let response = alice
                .post(demo.url(endpoint))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!(status < 500, "{endpoint}: {status}");
        }
    }
    let (status, body) = support::post(
        &alice,
        &demo.url("/request_identity_token"),
        serde_json::json!({ "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
