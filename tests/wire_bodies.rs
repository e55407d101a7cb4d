//! The operator endpoints' bodies byte for byte: the console reads remote servers of the same
//! version, so the JSON a server writes must not change shape when the types move, and a reader
//! must still take the answers of older servers (fields added later are optional).

use hessra_console::keyset::KeyState;
use hessra_console::policy::{Finding, Location, RevocationList};
use hessra_console::wire::{
    AuditEvent, AuditResponse, BrokenToken, KeyChangeRequest, KeyChangeResponse, KeyInfo,
    KeySetFailure, KeysResponse, PublicKeyEntry, PublicKeysResponse, ReloadFailure,
    ReportedFinding, RevocationsResponse, ServerStatus,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Serializes, compares with the exact text, and reads the text back to the same value.
fn exact<T: Serialize + DeserializeOwned + std::fmt::Debug>(value: &T, json: &str) -> T {
    let written = serde_json::to_string(value).expect("the body serializes");
    assert_eq!(written, json);
    let read: T = serde_json::from_str(json).expect("the body reads back");
    assert_eq!(serde_json::to_string(&read).unwrap(), json);
    read
}

fn active_key() -> KeyInfo {
    KeyInfo {
        id: Some(2),
        state: KeyState::Active,
        public_key: "ed25519/cd".into(),
        created_at: Some(10),
        activated_at: Some(20),
        retiring_since: None,
        verify_until: None,
        retired_at: None,
    }
}

const ACTIVE_KEY: &str =
    r#"{"id":2,"state":"active","public_key":"ed25519/cd","created_at":10,"activated_at":20}"#;

#[test]
fn status_keeps_its_field_order_and_writes_absent_values_as_null() {
    let status = ServerStatus {
        response_msg: "Server status".into(),
        listen: "https://127.0.0.1:4443".into(),
        policy_source: "file clients.toml".into(),
        policy_revision: "sha-00".into(),
        policy_loaded_at: 100,
        clients: 3,
        last_reload_error: Some(ReloadFailure {
            at: 90,
            revision: None,
            message: "clients.toml at abc has 1 error(s); keeping the last good policy".into(),
            findings: vec![ReportedFinding {
                severity: "error".into(),
                code: "syntax".into(),
                location: Some(hessra_console::wire::FindingLocation { line: 3, column: 7 }),
                message: "expected `=`".into(),
                subject: None,
            }],
        }),
        requests: 5,
        allowed: 4,
        denied: 1,
        started_at: 50,
        audit_file: None,
        audit_key: None,
        keys: vec![active_key()],
        key_set_error: None,
        missing_private_keys: Vec::new(),
    };
    let json = format!(
        concat!(
            r#"{{"response_msg":"Server status","listen":"https://127.0.0.1:4443","#,
            r#""policy_source":"file clients.toml","policy_revision":"sha-00","policy_loaded_at":100,"#,
            r#""clients":3,"last_reload_error":{{"at":90,"revision":null,"#,
            r#""message":"clients.toml at abc has 1 error(s); keeping the last good policy","#,
            r#""findings":[{{"severity":"error","code":"syntax","location":{{"line":3,"column":7}},"#,
            r#""message":"expected `=`","subject":null}}]}},"requests":5,"allowed":4,"denied":1,"#,
            r#""started_at":50,"audit_file":null,"keys":[{}],"key_set_error":null}}"#
        ),
        ACTIVE_KEY
    );
    assert_eq!(exact(&status, &json), status);
}

#[test]
fn a_reported_finding_is_the_policy_finding_as_json() {
    let finding = Finding::error(
        "syntax",
        Some(Location { line: 3, column: 7 }),
        "expected `=`".into(),
    );
    let reported = ReportedFinding::from(&finding);
    assert_eq!(
        serde_json::to_value(&reported).unwrap(),
        serde_json::to_value(&finding).unwrap()
    );
    assert_eq!(reported.to_string(), finding.to_string());
    assert_eq!(reported.to_string(), "3:7: error[syntax]: expected `=`");
}

#[test]
fn a_status_from_a_server_older_than_key_sets_still_reads() {
    let old = r#"{"response_msg":"Server status","listen":"https://h:1","policy_source":"s",
        "policy_revision":"r","policy_loaded_at":1,"clients":0,
        "last_reload_error":{"at":1,"revision":"r","message":"m"},
        "requests":0,"allowed":0,"denied":0,"started_at":1}"#;
    let status: ServerStatus = serde_json::from_str(old).expect("an older status reads");
    assert!(status.keys.is_empty());
    assert_eq!(status.key_set_error, None);
    assert_eq!(status.last_reload_error.unwrap().findings, Vec::new());
}

#[test]
fn audit_events_omit_an_absent_expiry_and_pages_carry_the_cursor() {
    let event = AuditEvent {
        seq: 7,
        time: 100,
        caller: Some("uri:urn:company:alice".into()),
        auth: "mtls".into(),
        endpoint: "/request_token".into(),
        resource: Some("api".into()),
        operation: None,
        result: "allow".into(),
        reason: "granted".into(),
        revocation_id: None,
        expires_at: None,
    };
    let event_json = concat!(
        r#"{"seq":7,"time":100,"caller":"uri:urn:company:alice","auth":"mtls","#,
        r#""endpoint":"/request_token","resource":"api","operation":null,"result":"allow","#,
        r#""reason":"granted","revocation_id":null}"#
    );
    exact(&event, event_json);
    let issued = AuditEvent {
        expires_at: Some(3_700),
        ..event.clone()
    };
    assert!(
        serde_json::to_string(&issued)
            .unwrap()
            .ends_with(r#""revocation_id":null,"expires_at":3700}"#)
    );
    let page = AuditResponse {
        response_msg: "Audit events".into(),
        events: vec![event],
        next: 7,
    };
    exact(
        &page,
        &format!(r#"{{"response_msg":"Audit events","events":[{event_json}],"next":7}}"#),
    );
}

#[test]
fn revocations_carry_the_revision_and_the_entries() {
    let id = "ab".repeat(32);
    let (list, findings) = RevocationList::load(&format!(
        "[[revoked]]\nid = \"{id}\"\nreason = \"laptop stolen\"\nby = \"ops\"\nat = 5\n"
    ));
    assert!(findings.is_empty(), "{findings:?}");
    let body = RevocationsResponse {
        response_msg: "1 revoked block id(s)".into(),
        policy_revision: "abc".into(),
        revoked: list.entries.clone(),
    };
    let written = serde_json::to_string(&body).unwrap();
    let read: RevocationsResponse = serde_json::from_str(&written).unwrap();
    assert_eq!(read.revoked.len(), 1);
    assert_eq!(read.revoked[0].id, id);
    assert_eq!(read.revoked[0].reason, "laptop stolen");
    let entry = format!(r#"{{"id":"{id}","reason":"laptop stolen","by":"ops","at":5,"location":"#);
    assert!(
        written.starts_with(&format!(
            r#"{{"response_msg":"1 revoked block id(s)","policy_revision":"abc","revoked":[{entry}"#
        )),
        "{written}"
    );
}

#[test]
fn the_key_api_bodies_keep_their_shapes() {
    exact(
        &KeysResponse {
            response_msg: "Root keys".into(),
            keys: vec![active_key()],
            managed: true,
            key_set_error: None,
        },
        &format!(r#"{{"response_msg":"Root keys","keys":[{ACTIVE_KEY}],"managed":true}}"#),
    );
    exact(
        &KeysResponse {
            response_msg: "Root keys".into(),
            keys: Vec::new(),
            managed: true,
            key_set_error: Some(KeySetFailure {
                at: 9,
                message: "bad".into(),
            }),
        },
        r#"{"response_msg":"Root keys","keys":[],"managed":true,"key_set_error":{"at":9,"message":"bad"}}"#,
    );
    exact(
        &PublicKeysResponse {
            response_msg: "Root public keys".into(),
            keys: vec![PublicKeyEntry {
                id: Some(1),
                state: KeyState::Retiring,
                public_key: "ed25519/ab".into(),
                public_key_pem: "PEM".into(),
                verify_until: Some(77),
            }],
        },
        r#"{"response_msg":"Root public keys","keys":[{"id":1,"state":"retiring","public_key":"ed25519/ab","public_key_pem":"PEM","verify_until":77}]}"#,
    );
    exact(
        &KeyChangeRequest {
            id: Some(3),
            algorithm: None,
            force: true,
        },
        r#"{"id":3,"algorithm":null,"force":true}"#,
    );
    let request: KeyChangeRequest = serde_json::from_str("{}").expect("every field is optional");
    assert_eq!((request.id, request.force), (None, false));
    exact(
        &KeyChangeResponse {
            response_msg: "retired key 1".into(),
            broken: vec![BrokenToken {
                identity: "alice via /request_identity_token".into(),
                issued_at: 1,
                expires_at: 2,
            }],
            keys: vec![active_key()],
        },
        &format!(
            r#"{{"response_msg":"retired key 1","broken":[{{"identity":"alice via /request_identity_token","issued_at":1,"expires_at":2}}],"keys":[{ACTIVE_KEY}]}}"#
        ),
    );
}
