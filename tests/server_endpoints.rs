//! Every endpoint over real TLS on loopback, with the demo workspace's certificates: each
//! success, each denial with its status and message, and bad input that leaves the server
//! serving.

mod support;

use hessra_console::token::{
    self, Actor, AuthzVerification, Delegation, IdentityVerification, clock::unix_now, keys,
};
use serde_json::json;
use support::{Demo, get, post};

const ALICE: &str = "uri:urn:company:alice";
const AGENT: &str = "uri:urn:company:alice:agent1";
const REALM: &str = "uri:urn:mycompany";
const OPS: &str = "uri:urn:company:ops";

async fn identity_token(demo: &Demo, identity: &str) -> String {
    let (status, body) = post(
        &demo.as_identity(identity),
        &demo.url("/request_identity_token"),
        json!({ "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_key_and_ca_cert() {
    let demo = Demo::start().await;
    let (status, body) = get(&demo.anonymous(), &demo.url("/public_key")).await;
    assert_eq!(status, 200);
    let pem = body["public_key"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(keys::parse_public_key(pem).unwrap(), demo.root_public());
    let (status, body) = get(&demo.anonymous(), &demo.url("/ca_cert")).await;
    assert_eq!(status, 200);
    assert!(
        body["ca_cert_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let (status, body) = get(&demo.anonymous(), &demo.url("/nope")).await;
    assert_eq!(
        (status, body["response_msg"].as_str().unwrap()),
        (404, "no such endpoint")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_tokens_by_certificate() {
    let demo = Demo::start().await;
    let (status, body) = post(
        &demo.as_identity(ALICE),
        &demo.url("/request_identity_token"),
        json!({ "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identity"], ALICE);
    assert_eq!(body["expires_in"], 28_800);
    let token = body["token"].as_str().unwrap();
    let verified = token::verify_identity(
        token,
        &demo.root_public(),
        &IdentityVerification::new(Actor::Named(ALICE), unix_now()),
    )
    .unwrap();
    assert!(verified.delegatable);

    // The Hessra CLI sends --ttl as the identifier; it lowers the lifetime, never raises it.
    let (_, body) = post(
        &demo.as_identity(ALICE),
        &demo.url("/request_identity_token"),
        json!({ "identifier": "600" }),
        None,
    )
    .await;
    assert_eq!(body["expires_in"], 600);
    let (_, body) = post(
        &demo.as_identity(ALICE),
        &demo.url("/request_identity_token"),
        json!({ "identifier": 999_999 }),
        None,
    )
    .await;
    assert_eq!(body["expires_in"], 28_800);

    // Denials.
    let (status, body) = post(
        &demo.anonymous(),
        &demo.url("/request_identity_token"),
        json!({ "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = post(
        &demo.as_identity(OPS),
        &demo.url("/request_identity_token"),
        json!({ "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("identity tokens are not enabled for uri:urn:company:ops"),
        "{body}"
    );
    let (status, body) = post(
        &demo.as_identity(ALICE),
        &demo.url("/request_identity_token"),
        json!({ "identifier": "uri:urn:company:bob" }),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .starts_with("Identity mismatch"),
        "{body}"
    );
    let bearer = identity_token(&demo, ALICE).await;
    let (status, body) = post(
        &demo.anonymous(),
        &demo.url("/request_identity_token"),
        json!({ "identifier": null }),
        Some(&bearer),
    )
    .await;
    assert_eq!(
        status, 401,
        "the first identity token needs a certificate: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_token_by_certificate_bearer_and_both() {
    let demo = Demo::start().await;
    let url = demo.url("/request_token");
    let read = json!({ "resource": "production_api", "operation": "read" });
    let (status, body) = post(&demo.as_identity(ALICE), &url, read.clone(), None).await;
    assert_eq!(status, 200, "{body}");
    let authz = body["token"].as_str().unwrap();
    let check = AuthzVerification::new(Some(ALICE), "production_api", "read", unix_now());
    token::verify_authz(authz, &demo.root_public(), &check).unwrap();

    // Alice delegates to agent1 offline; the agent requests with the delegated token + JIT.
    let alice = identity_token(&demo, ALICE).await;
    let delegated = token::delegate(
        &alice,
        Some(&demo.root_public()),
        &Delegation::new(AGENT, unix_now() + 600),
    )
    .unwrap();
    let jit = token::add_jit(&delegated.token, unix_now()).unwrap();
    let (status, body) = post(&demo.anonymous(), &url, read.clone(), Some(&jit)).await;
    assert_eq!(status, 200, "{body}");
    let agent_token = body["token"].as_str().unwrap();
    let check = AuthzVerification::new(Some(AGENT), "production_api", "read", unix_now());
    token::verify_authz(agent_token, &demo.root_public(), &check).unwrap();
    // The agent gets its own permissions, not alice's.
    let write = json!({ "resource": "production_api", "operation": "write" });
    let (status, body) = post(&demo.anonymous(), &url, write.clone(), Some(&jit)).await;
    assert_eq!(status, 403);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("may only read on production_api"),
        "{body}"
    );

    // Certificate and token together must agree.
    let (status, _) = post(
        &demo.as_identity(AGENT),
        &url,
        read.clone(),
        Some(&delegated.token),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &demo.as_identity(ALICE),
        &url,
        read.clone(),
        Some(&delegated.token),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .starts_with("Identity mismatch"),
        "{body}"
    );

    // A delegation to an identity the policy does not configure is not served.
    let stray = token::delegate(
        &alice,
        None,
        &Delegation::new("uri:urn:company:alice:agent9", unix_now() + 600),
    )
    .unwrap();
    let (status, body) = post(&demo.anonymous(), &url, read.clone(), Some(&stray.token)).await;
    assert_eq!(status, 403);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("is not configured"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_policies_are_evaluated_against_the_request() {
    let demo = Demo::start().await;
    let alice = identity_token(&demo, ALICE).await;
    let policy =
        token::DelegationPolicy::parse("check if operation($op), $op == \"read\";").unwrap();
    let mut delegation = Delegation::new(AGENT, unix_now() + 600);
    delegation.policy = Some(&policy);
    let narrowed = token::delegate(&alice, None, &delegation).unwrap();
    let url = demo.url("/request_token");
    let (status, _) = post(
        &demo.anonymous(),
        &url,
        json!({ "resource": "production_api", "operation": "read" }),
        Some(&narrowed.token),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &demo.anonymous(),
        &url,
        json!({ "resource": "staging_api", "operation": "write" }),
        Some(&narrowed.token),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("a policy check was not satisfied"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realms_mint_domain_identities_with_roles() {
    let demo = Demo::start().await;
    let realm = demo.as_identity(REALM);
    let mint = demo.url("/mint_identity_token");
    let (status, body) = post(
        &realm,
        &mint,
        json!({ "subject": "uri:urn:mycompany:admin-user", "duration": null }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let admin = body["token"].as_str().unwrap().to_string();
    let (_, body) = post(
        &realm,
        &mint,
        json!({ "subject": "uri:urn:mycompany:bob", "duration": 60 }),
        None,
    )
    .await;
    assert_eq!(body["expires_in"], 60);
    let bob = body["token"].as_str().unwrap().to_string();

    let url = demo.url("/request_token");
    let delete = json!({ "resource": "api", "operation": "delete", "domain": REALM });
    let (status, body) = post(&demo.anonymous(), &url, delete.clone(), Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&demo.anonymous(), &url, delete, Some(&bob)).await;
    assert_eq!(status, 403);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("role member"),
        "{body}"
    );
    // Without the domain parameter, the token's own domain applies.
    let (status, body) = post(
        &demo.anonymous(),
        &url,
        json!({ "resource": "api", "operation": "read" }),
        Some(&bob),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A token bound to one domain cannot be presented in another.
    let (status, body) = post(
        &demo.anonymous(),
        &url,
        json!({ "resource": "api", "operation": "read", "domain": "uri:urn:other" }),
        Some(&bob),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Only realms mint, only inside their domain; minted tokens are not delegatable.
    let (status, body) = post(
        &demo.as_identity(ALICE),
        &mint,
        json!({ "subject": "uri:urn:company:alice:x" }),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("not a realm"),
        "{body}"
    );
    let (status, body) = post(&realm, &mint, json!({ "subject": "uri:urn:other:x" }), None).await;
    assert_eq!(status, 403);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("outside realm"),
        "{body}"
    );
    let (status, _) = post(
        &demo.anonymous(),
        &mint,
        json!({ "subject": "uri:urn:mycompany:y" }),
        Some(&bob),
    )
    .await;
    assert_eq!(status, 403, "a domain identity cannot mint");
    let err = token::delegate(
        &bob,
        None,
        &Delegation::new("uri:urn:mycompany:bob:x", unix_now() + 60),
    )
    .unwrap_err();
    assert!(matches!(err, token::TokenError::NotDelegatable { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_and_its_refusals() {
    let demo = Demo::start().await;
    let url = demo.url("/refresh_identity_token");
    let alice = identity_token(&demo, ALICE).await;
    let (status, body) = post(
        &demo.anonymous(),
        &url,
        json!({ "current_token": alice, "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identity"], ALICE);
    let delegated =
        token::delegate(&alice, None, &Delegation::new(AGENT, unix_now() + 60)).unwrap();
    let (status, body) = post(
        &demo.anonymous(),
        &url,
        json!({ "current_token": delegated.token, "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("refreshing a delegated token is refused"),
        "{body}"
    );
    let (status, body) = post(
        &demo.anonymous(),
        &url,
        json!({ "current_token": "junk", "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let forged = token::mint_identity(
        &keys::generate(keys::KeyAlgorithm::Ed25519),
        &token::IdentityClaims {
            subject: ALICE.into(),
            expires_at: unix_now() + 60,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    let (status, body) = post(
        &demo.anonymous(),
        &url,
        json!({ "current_token": forged, "identifier": null }),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("do not verify with root key"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_stub_endpoints() {
    let demo = Demo::start().await;
    let (_, body) = post(
        &demo.as_identity(ALICE),
        &demo.url("/request_token"),
        json!({ "resource": "production_api", "operation": "write" }),
        None,
    )
    .await;
    let authz = body["token"].as_str().unwrap().to_string();
    let verify = demo.url("/verify_token");
    let good = json!({ "token": authz, "subject": ALICE, "resource": "production_api", "operation": "write" });
    assert_eq!(post(&demo.anonymous(), &verify, good, None).await.0, 200);
    let wrong = json!({ "token": authz, "subject": ALICE, "resource": "production_api", "operation": "read" });
    let (status, body) = post(&demo.anonymous(), &verify, wrong, None).await;
    assert_eq!(status, 403);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("grants no right"),
        "{body}"
    );
    let junk = json!({ "token": "AAAA", "subject": ALICE, "resource": "x", "operation": "y" });
    assert_eq!(post(&demo.anonymous(), &verify, junk, None).await.0, 400);

    let attenuator = keys::generate(keys::KeyAlgorithm::Ed25519);
    let stub_request = json!({
        "target_identity": "uri:urn:mycompany:admin-user", "resource": "api", "operation": "write",
        "prefix_attenuator_key": keys::key_string(&attenuator.public()),
    });
    let (status, body) = post(
        &demo.as_identity(REALM),
        &demo.url("/request_stub"),
        stub_request,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let stub = body["token"].as_str().unwrap();
    let mut check = AuthzVerification::new(
        Some("uri:urn:mycompany:admin-user"),
        "api",
        "write",
        unix_now(),
    );
    check.prefix = Some("tenant/1/");
    assert!(
        token::verify_authz(stub, &demo.root_public(), &check).is_err(),
        "a stub is inert until prefixed"
    );
    let activated = token::add_prefix_restriction(stub, &attenuator, "tenant/1/").unwrap();
    token::verify_authz(&activated, &demo.root_public(), &check).unwrap();
    let refused = json!({
        "target_identity": "uri:urn:mycompany:bob", "resource": "api", "operation": "write",
        "prefix_attenuator_key": keys::key_string(&attenuator.public()),
    });
    assert_eq!(
        post(
            &demo.as_identity(REALM),
            &demo.url("/request_stub"),
            refused,
            None
        )
        .await
        .0,
        403
    );
    // Found by fuzzing: a target that is not an identity was issued a stub no reader accepts.
    for target in ["uri:urn:mycompany:a\"b", "uri:urn:mycompany:a\u{7f}b"] {
        let (status, body) = post(
            &demo.as_identity(REALM),
            &demo.url("/request_stub"),
            json!({
                "target_identity": target, "resource": "api", "operation": "write",
                "prefix_attenuator_key": keys::key_string(&attenuator.public()),
            }),
            None,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["response_msg"]
                .as_str()
                .unwrap()
                .contains("target_identity"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_status_and_audit() {
    let demo = Demo::start().await;
    let _ = identity_token(&demo, ALICE).await;
    let _ = post(
        &demo.as_identity(ALICE),
        &demo.url("/request_token"),
        json!({ "resource": "billing", "operation": "read" }),
        None,
    )
    .await;
    let ops = demo.as_identity(OPS);
    let (status, body) = get(&ops, &demo.url("/status")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["clients"], 7);
    assert_eq!(body["policy_revision"].as_str().unwrap().len(), 40);
    assert!(body["requests"].as_u64().unwrap() >= 2);
    let (status, body) = get(&ops, &demo.url("/audit?after=0")).await;
    assert_eq!(status, 200);
    let events = body["events"].as_array().unwrap();
    let denied = events
        .iter()
        .find(|e| e["endpoint"] == "/request_token")
        .unwrap();
    assert_eq!(denied["result"], "deny");
    assert_eq!(denied["caller"], ALICE);
    assert_eq!(denied["auth"], "mtls");
    assert!(
        denied["reason"]
            .as_str()
            .unwrap()
            .contains("no permission on billing")
    );
    let next = body["next"].as_u64().unwrap();
    let (_, later) = get(&ops, &demo.url(&format!("/audit?after={next}"))).await;
    assert!(later["events"].as_array().unwrap().is_empty());

    // Tokens never appear in the audit trail. The trail is written by a writer task behind a
    // queue: give it a moment to catch up before reading the file.
    let path = demo.ws.server_state.join("audit.jsonl");
    let started = std::time::Instant::now();
    let mut log = String::new();
    while started.elapsed() < std::time::Duration::from_secs(5) {
        log = std::fs::read_to_string(&path).unwrap_or_default();
        if log.lines().count() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(log.lines().count() >= 2, "{log}");
    assert!(!log.contains("EqM") && !log.contains("token\":"), "{log}");

    let (status, _) = get(&demo.as_identity(ALICE), &demo.url("/status")).await;
    assert_eq!(status, 403);
    let (status, _) = get(&demo.anonymous(), &demo.url("/audit")).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_and_the_server_keeps_serving() {
    let demo = Demo::start().await;
    let alice = demo.as_identity(ALICE);
    let url = demo.url("/request_token");
    let response = alice
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .starts_with("malformed request"),
        "{body}"
    );
    // An oversized body is answered 413 and the connection closed; a client still writing may
    // see the close (broken pipe) before it reads the answer. Either way nothing was processed.
    let huge = "x".repeat(200 * 1024);
    let sent = alice
        .post(&url)
        .header("content-type", "application/json")
        .body(format!("{{\"resource\":\"{huge}\"}}"))
        .send()
        .await;
    match sent {
        Ok(response) => assert_eq!(response.status().as_u16(), 413),
        Err(error) => assert!(error.is_request(), "{error:?}"),
    }
    let (status, body) = post(
        &demo.anonymous(),
        &url,
        json!({ "resource": "api", "operation": "read" }),
        Some("not-a-token"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let expired = token::mint_identity(
        &keys::read_private_key_file(&demo.ws.root_key).unwrap(),
        &token::IdentityClaims {
            subject: ALICE.into(),
            expires_at: unix_now() - 5,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    let (status, body) = post(
        &demo.anonymous(),
        &url,
        json!({ "resource": "production_api", "operation": "read" }),
        Some(&expired),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("expired at"),
        "{body}"
    );

    // A client that connects and never completes the handshake does not hold others up.
    let mut stalled = tokio::net::TcpStream::connect(demo.server.addr)
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stalled, b"\x16\x03\x01")
        .await
        .unwrap();
    let (status, _) = post(
        &alice,
        &url,
        json!({ "resource": "production_api", "operation": "read" }),
        None,
    )
    .await;
    assert_eq!(status, 200, "served while another connection stalls");

    // A certificate from another CA fails the handshake; the server keeps serving.
    let other_ca = hessra_console::pki::DevCa::generate("Other CA").unwrap();
    let stranger = other_ca.issue_client(ALICE).unwrap();
    let ca = std::fs::read(&demo.ws.ca_cert).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
        .identity(
            reqwest::Identity::from_pem(
                format!("{}{}", stranger.cert_pem, stranger.key_pem).as_bytes(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    assert!(client.get(demo.url("/public_key")).send().await.is_err());
    let (status, _) = post(
        &alice,
        &url,
        json!({ "resource": "production_api", "operation": "read" }),
        None,
    )
    .await;
    assert_eq!(status, 200, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_chains_and_multi_party_signoffs() {
    use hessra_console::policy::{Edit, EditSession};
    let auth = keys::generate(keys::KeyAlgorithm::Ed25519);
    let payment = keys::generate(keys::KeyAlgorithm::Ed25519);
    let signer = keys::generate(keys::KeyAlgorithm::Ed25519);
    let signer_key = keys::key_string(&signer.public());
    let nodes = [
        ("auth_service", keys::key_string(&auth.public())),
        ("payment_service", keys::key_string(&payment.public())),
    ];
    let demo = Demo::start_with(
        |text| {
            let mut session = EditSession::open(text, unix_now()).unwrap();
            session
                .apply(&Edit::Grant {
                    identity: ALICE.into(),
                    resource: "orders".into(),
                    operation: "read".into(),
                })
                .unwrap();
            for (component, key) in &nodes {
                session
                    .apply(&Edit::AddServiceNode {
                        identity: ALICE.into(),
                        resource: "orders".into(),
                        component: (*component).into(),
                        public_key: key.clone(),
                    })
                    .unwrap();
            }
            session
                .apply(&Edit::AddSigner {
                    identity: ALICE.into(),
                    resource: "staging_api".into(),
                    component: "compliance".into(),
                    authorization_service: "https://signer.invalid".into(),
                    public_key: signer_key.clone(),
                })
                .unwrap();
            Some(session.text().to_string())
        },
        Some(hessra_console::server::SignerConfig {
            component: "compliance".into(),
            key: keys::generate(keys::KeyAlgorithm::Ed25519),
        }),
    )
    .await;
    let alice = demo.as_identity(ALICE);

    // Service chain: auth_service attests, then payment_service may accept.
    let (status, body) = post(
        &alice,
        &demo.url("/request_token"),
        json!({ "resource": "orders", "operation": "read" }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let chained = body["token"].as_str().unwrap().to_string();
    let verify = demo.url("/verify_service_chain_token");
    let request = |token: &str, component: &str| json!({ "token": token, "subject": ALICE, "resource": "orders", "component": component });
    let (status, body) = post(
        &demo.anonymous(),
        &verify,
        request(&chained, "payment_service"),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["response_msg"]
            .as_str()
            .unwrap()
            .contains("service auth_service has not attested"),
        "{body}"
    );
    let attested = token::add_service_attestation(&chained, &auth, "orders").unwrap();
    assert_eq!(
        post(
            &demo.anonymous(),
            &verify,
            request(&attested, "payment_service"),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post(
            &demo.anonymous(),
            &verify,
            request(&attested, "auth_service"),
            None
        )
        .await
        .0,
        200
    );
    let (status, body) = post(
        &demo.anonymous(),
        &verify,
        request(&attested, "shipping"),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // Multi-party: the token comes back with pending signoffs, and is inert until signed.
    let (status, body) = post(
        &alice,
        &demo.url("/request_token"),
        json!({ "resource": "staging_api", "operation": "write" }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response_msg"], "Token issued with pending signoffs");
    assert_eq!(body["pending_signoffs"][0]["component"], "compliance");
    assert_eq!(
        body["pending_signoffs"][0]["authorization_service"],
        "https://signer.invalid"
    );
    let pending = body["token"].as_str().unwrap().to_string();
    let check = AuthzVerification::new(Some(ALICE), "staging_api", "write", unix_now());
    assert!(token::verify_authz(&pending, &demo.root_public(), &check).is_err());
    let signed = token::add_signoff(&pending, &signer, "compliance").unwrap();
    token::verify_authz(&signed, &demo.root_public(), &check).unwrap();

    // This server signs as "compliance" with its own key, which the policy does not trust:
    // the signoff is added, and verification still refuses it.
    let (status, body) = post(
        &alice,
        &demo.url("/sign_token"),
        json!({ "token": pending, "resource": "staging_api", "operation": "write" }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let wrongly_signed = body["signed_token"].as_str().unwrap();
    assert!(token::verify_authz(wrongly_signed, &demo.root_public(), &check).is_err());
    let (status, _) = post(
        &demo.as_identity(AGENT),
        &demo.url("/sign_token"),
        json!({ "token": pending, "resource": "staging_api", "operation": "write" }),
        None,
    )
    .await;
    assert_eq!(status, 403, "only the token's subject asks for its signoff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ca_given_at_start_up_is_trusted_besides_the_policy() {
    let demo = Demo::start().await;
    let text = std::fs::read_to_string(demo.ws.policy_file()).unwrap();
    let without_ca = &text[..text.rfind("\n[cacerts]").unwrap()];
    let file = demo.dir.path().join("no-ca.toml");
    std::fs::write(&file, without_ca).unwrap();
    let ca = std::fs::read_to_string(&demo.ws.ca_cert).unwrap();
    for (extra, expected) in [(None, 401), (Some(ca), 200)] {
        let server = hessra_console::server::start(hessra_console::server::ServerConfig {
            client_ca_pem: extra,
            policy: hessra_console::server::PolicySource::File(file.clone()),
            audit_file: None,
            state_dir: None,
            poll_interval: None,
            ..demo
                .ws
                .server_config("127.0.0.1:0".parse().unwrap())
                .unwrap()
        })
        .await
        .unwrap();
        let url = format!("{}/request_identity_token", server.url());
        let (status, body) = post(
            &demo.as_identity(ALICE),
            &url,
            json!({ "identifier": null }),
            None,
        )
        .await;
        assert_eq!(status, expected, "{body}");
        server.shutdown().await;
    }
}
