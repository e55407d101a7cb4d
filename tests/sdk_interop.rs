//! The published Hessra SDK (hessra-sdk 0.11.2) against our server, unchanged: the seed's
//! flows over real TLS — authenticate by mTLS, delegate offline, request with the delegated
//! token (the SDK adds its JIT block), verify locally and remotely; realm minting with roles;
//! refresh, and refreshing a refreshed token (which carries its lineage).

mod support;

use hessra_sdk::{Hessra, Protocol};
use support::{Demo, published};

const ALICE: &str = "uri:urn:company:alice";
const AGENT: &str = "uri:urn:company:alice:agent1";
const REALM: &str = "uri:urn:mycompany";

async fn sdk(demo: &Demo, identity: Option<&str>) -> Hessra {
    let ca = std::fs::read_to_string(&demo.ws.ca_cert).unwrap();
    let mut builder = Hessra::builder()
        .base_url("127.0.0.1")
        .port(demo.server.addr.port())
        .protocol(Protocol::Http1)
        .server_ca(ca);
    if let Some(identity) = identity {
        let (cert, key) = demo.ws.client_cert(identity);
        builder = builder
            .mtls_cert(std::fs::read_to_string(cert).unwrap())
            .mtls_key(std::fs::read_to_string(key).unwrap());
    }
    let mut client = builder.build().unwrap();
    client
        .setup()
        .await
        .expect("the SDK fetches the public key");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_delegate_request_verify() {
    let demo = Demo::start().await;
    let alice = sdk(&demo, Some(ALICE)).await;
    let issued = alice.request_identity_token(None).await.unwrap();
    assert_eq!(issued.identity.as_deref(), Some(ALICE));
    assert_eq!(issued.expires_in, Some(28_800));
    let identity_token = issued.token.unwrap();
    published(|| alice.verify_identity_token_local(identity_token.clone(), ALICE)).unwrap();

    // Alice delegates to her agent offline with the SDK.
    let delegated =
        published(|| alice.attenuate_identity_token(identity_token.clone(), AGENT, 600)).unwrap();
    published(|| alice.verify_identity_token_local(delegated.clone(), AGENT)).unwrap();
    assert!(
        alice
            .verify_identity_token_local(delegated.clone(), ALICE)
            .is_err()
    );

    // The agent holds only the token: Bearer (with the SDK's JIT block), no certificate.
    let agent = sdk(&demo, None).await;
    let response = agent
        .request_token_with_identity("production_api", "read", delegated.clone(), None)
        .await
        .unwrap();
    let authz = response.token.expect("agent1 may read production_api");
    agent
        .verify_token(authz.clone(), AGENT, "production_api", "read")
        .await
        .unwrap();
    published(|| agent.verify_token_local(authz.clone(), AGENT, "production_api", "read")).unwrap();
    agent
        .verify_token_remote(authz.clone(), AGENT, "production_api", "read")
        .await
        .unwrap();
    assert!(
        agent
            .verify_token_remote(authz.clone(), AGENT, "production_api", "write")
            .await
            .is_err()
    );

    // It gets its own permissions: write is denied.
    let denied = agent
        .request_token_with_identity("production_api", "write", delegated, None)
        .await;
    let message = match denied {
        Ok(response) => {
            assert!(response.token.is_none());
            response.response_msg
        }
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains("403") || message.contains("may only read"),
        "{message}"
    );

    // Alice by certificate alone.
    let by_mtls = alice
        .request_token("staging_api", "write", None)
        .await
        .unwrap();
    assert!(by_mtls.token.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realm_mints_domain_identities_and_roles_apply() {
    let demo = Demo::start().await;
    let realm = sdk(&demo, Some(REALM)).await;
    let minted = realm
        .mint_domain_restricted_identity_token("uri:urn:mycompany:admin-user", None)
        .await
        .unwrap();
    let admin_token = minted.token.expect("the realm mints inside its domain");
    let member = realm
        .mint_domain_restricted_identity_token("uri:urn:mycompany:bob", Some(300))
        .await
        .unwrap();
    let member_token = member.token.unwrap();

    let user = sdk(&demo, None).await;
    let admin = user
        .request_token_with_identity(
            "api",
            "delete",
            admin_token.clone(),
            Some(REALM.to_string()),
        )
        .await
        .unwrap();
    let authz = admin.token.expect("admin may delete");
    // Domain tokens verify with the domain supplied (the SDK's plain local check has none).
    assert!(
        user.verify_token_local(
            authz.clone(),
            "uri:urn:mycompany:admin-user",
            "api",
            "delete"
        )
        .is_err()
    );
    published(|| {
        hessra_token_authz::AuthorizationVerifier::new(
            authz.clone(),
            demo.root_public(),
            "uri:urn:mycompany:admin-user".into(),
            "api".into(),
            "delete".into(),
        )
        .with_domain(REALM.into())
        .verify()
    })
    .unwrap();
    let without_domain = user
        .request_token_with_identity("api", "read", member_token.clone(), None)
        .await
        .unwrap();
    assert!(
        without_domain.token.is_some(),
        "the token's own domain applies"
    );
    let member_delete = user
        .request_token_with_identity("api", "delete", member_token, Some(REALM.to_string()))
        .await;
    assert!(
        member_delete.map(|r| r.token.is_none()).unwrap_or(true),
        "member may not delete"
    );

    let outside = realm
        .mint_domain_restricted_identity_token("uri:urn:company:eve", None)
        .await;
    assert!(outside.map(|r| r.token.is_none()).unwrap_or(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_with_the_sdk() {
    let demo = Demo::start().await;
    let alice = sdk(&demo, Some(ALICE)).await;
    let token = alice
        .request_identity_token(None)
        .await
        .unwrap()
        .token
        .unwrap();
    let anonymous = sdk(&demo, None).await;
    let refreshed = anonymous
        .refresh_identity_token(token.clone(), None)
        .await
        .unwrap();
    assert_eq!(refreshed.identity.as_deref(), Some(ALICE));
    // A refreshed token names its ancestors (lineage facts); the SDK verifies it, refreshes it
    // again, and delegates from it.
    let refreshed = refreshed.token.unwrap();
    published(|| alice.verify_identity_token_local(refreshed.clone(), ALICE)).unwrap();
    let twice = anonymous
        .refresh_identity_token(refreshed.clone(), None)
        .await
        .unwrap()
        .token
        .expect("a refreshed token refreshes again");
    published(|| alice.verify_identity_token_local(twice.clone(), ALICE)).unwrap();
    let lineage = hessra_console::token::inspect(&twice, None, 0)
        .unwrap()
        .lineage;
    assert_eq!(lineage.len(), 2, "{lineage:?}");
    let from_refreshed =
        published(|| alice.attenuate_identity_token(twice.clone(), AGENT, 60)).unwrap();
    published(|| alice.verify_identity_token_local(from_refreshed.clone(), AGENT)).unwrap();
    let delegated = published(|| alice.attenuate_identity_token(token.clone(), AGENT, 60)).unwrap();
    let refused = anonymous.refresh_identity_token(delegated, None).await;
    let message = refused
        .map(|r| r.response_msg)
        .unwrap_or_else(|e| e.to_string());
    assert!(message.contains("delegated"), "{message}");
}

/// Key rotation as the published SDK sees it: it reads `/public_key` (the active key) at setup,
/// so a client set up after the rotation verifies new tokens locally; an identity token issued
/// before the rotation still works with the server while the old key is retiring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_follows_a_key_rotation() {
    let demo = Demo::start().await;
    let before = sdk(&demo, Some(ALICE)).await;
    let old_identity = before
        .request_identity_token(None)
        .await
        .unwrap()
        .token
        .unwrap();

    let ops = demo.as_identity("uri:urn:company:ops");
    for (action, body) in [
        ("add", serde_json::json!({})),
        ("activate", serde_json::json!({ "id": 2 })),
    ] {
        let (status, body) =
            support::post(&ops, &demo.url(&format!("/keys/{action}")), body, None).await;
        assert_eq!(status, 200, "{body}");
    }

    let after = sdk(&demo, None).await;
    let response = after
        .request_token_with_identity("production_api", "read", old_identity, None)
        .await
        .unwrap();
    let authz = response
        .token
        .expect("a token of the retiring key still authenticates");
    published(|| after.verify_token_local(authz.clone(), ALICE, "production_api", "read"))
        .expect("the SDK set up after the rotation verifies with the new active key");
    assert!(
        published(|| before.verify_token_local(authz.clone(), ALICE, "production_api", "read"))
            .is_err(),
        "a client that cached the old key must fetch it again (the published SDK has no key ids)"
    );
    after
        .verify_token_remote(authz, ALICE, "production_api", "read")
        .await
        .unwrap();
}
