//! One test per validation finding, each asserting where (line:column) and what it says.

use hessra_console::policy::{self, Finding, Location, Severity};

fn findings(text: &str) -> Vec<Finding> {
    policy::load(text, 1_800_000_000).unwrap().findings
}

/// The single finding with `code`, asserting there is exactly one.
fn only(text: &str, code: &str) -> Finding {
    let all = findings(text);
    let matching: Vec<&Finding> = all.iter().filter(|f| f.code == code).collect();
    assert_eq!(matching.len(), 1, "expected one {code} finding in {all:#?}");
    matching[0].clone()
}

fn at(line: usize, column: usize) -> Option<Location> {
    Some(Location { line, column })
}

const ALICE: &str = r#"[[clients]]
identifier = { type = "san_uri", value = "uri:urn:company:alice" }
resources = [{ name = "api", operations = ["read", "write"] }]
identity_token_enabled = true
identity_token_duration = 3600
"#;

#[test]
fn syntax_errors_have_a_location() {
    let err = policy::load(
        "[[clients]]\nidentifier = { type = \"san_uri\", value = }\n",
        0,
    )
    .unwrap_err();
    assert_eq!(err.code, "syntax");
    assert_eq!(err.location.map(|l| l.line), Some(2));
    assert!(err.to_string().starts_with("2:"), "{err}");
}

#[test]
fn unknown_keys_are_reported_with_a_suggestion() {
    let text = format!("{ALICE}identity_token_enable = true\n");
    let finding = only(&text, "unknown-key");
    assert_eq!(finding.location, at(6, 1));
    assert!(
        finding
            .message
            .contains("did you mean \"identity_token_enabled\""),
        "{finding}"
    );
    let finding = only("colour = 1\n", "unknown-key");
    assert_eq!(finding.location, at(1, 1));
}

#[test]
fn wrong_types_are_reported() {
    let text = ALICE.replace(
        "identity_token_duration = 3600",
        "identity_token_duration = \"1h\"",
    );
    let finding = only(&text, "wrong-type");
    assert_eq!(finding.location, at(5, 27));
    assert!(
        finding.message.contains("whole number of seconds"),
        "{finding}"
    );
    let text = ALICE.replace(
        r#"operations = ["read", "write"]"#,
        r#"operations = "read""#,
    );
    assert_eq!(only(&text, "wrong-type").location, at(3, 43));
}

#[test]
fn duplicate_identifiers() {
    let text = format!("{ALICE}\n{ALICE}");
    let finding = only(&text, "duplicate-identifier");
    assert_eq!(finding.location, at(8, 14));
    assert!(finding.message.contains("first at line 2"), "{finding}");
}

#[test]
fn malformed_identifiers_and_types() {
    let text = ALICE.replace("uri:urn:company:alice", "uri:urn::alice");
    let finding = only(&text, "malformed-identifier");
    assert_eq!(finding.location, at(2, 14));
    assert!(finding.message.contains("empty segment"), "{finding}");
    let text = ALICE.replace("san_uri", "dns");
    assert_eq!(only(&text, "identifier-type").location, at(2, 14));
    let text = ALICE.replace("uri:urn:company:alice", "urn:company:alice");
    assert_eq!(only(&text, "identifier-scheme").severity, Severity::Warning);
}

const AGENT: &str = r#"
[[clients]]
identifier = { type = "san_uri", value = "uri:urn:company:alice:agent1" }
resources = [{ name = "api", operations = ["read"] }]
identity_token_enabled = true
identity_token_duration = 600
"#;

#[test]
fn a_child_may_not_exceed_its_parent() {
    assert!(findings(&format!("{ALICE}{AGENT}")).is_empty());
    let wider = AGENT.replace(r#"["read"]"#, r#"["read", "delete"]"#);
    let finding = only(&format!("{ALICE}{wider}"), "exceeds-parent");
    assert_eq!(finding.location, at(9, 14));
    assert!(
        finding
            .message
            .contains("may delete on api, which its parent uri:urn:company:alice may not"),
        "{finding}"
    );
    assert_eq!(
        finding.subject.as_deref(),
        Some("uri:urn:company:alice:agent1")
    );

    let longer = AGENT.replace("600", "7200");
    let finding = only(&format!("{ALICE}{longer}"), "exceeds-parent");
    assert_eq!(finding.location, at(8, 14));
    assert!(
        finding.message.contains("2h, longer than its parent"),
        "{finding}"
    );
}

#[test]
fn the_nearest_configured_ancestor_is_the_parent() {
    let grandchild = AGENT
        .replace("alice:agent1", "alice:team:agent1")
        .replace(r#"["read"]"#, r#"["admin"]"#);
    let finding = only(&format!("{ALICE}{grandchild}"), "exceeds-parent");
    assert!(
        finding
            .message
            .contains("its parent uri:urn:company:alice "),
        "{finding}"
    );
}

#[test]
fn a_child_under_a_parent_without_identity_tokens_is_unreachable() {
    let parent = ALICE.replace(
        "identity_token_enabled = true",
        "identity_token_enabled = false",
    );
    let finding = only(&format!("{parent}{AGENT}"), "unreachable-delegate");
    assert_eq!(finding.severity, Severity::Warning);
    assert_eq!(finding.location, at(8, 14));
    assert!(
        finding.message.contains("cannot issue identity tokens"),
        "{finding}"
    );
    let parent = format!("{ALICE}delegatable = false\n");
    let finding = only(&format!("{parent}{AGENT}"), "unreachable-delegate");
    assert!(finding.message.contains("is not delegatable"), "{finding}");
}

const REALM: &str = r#"[[clients]]
identifier = { type = "san_uri", value = "uri:urn:mycompany" }
identity_token_enabled = true

[clients.domain.default_role]
name = "member"
resources = [{ name = "api", operations = ["read"] }]

[[clients.domain.roles]]
name = "admin"
resources = [{ name = "api", operations = ["read", "write"] }]
"#;

fn realm_with(assignment: &str) -> String {
    format!("{REALM}\n[[clients.domain.role_assignments]]\n{assignment}\n")
}

#[test]
fn role_assignments_name_known_roles_inside_the_domain() {
    assert!(
        findings(&realm_with(
            "subject = \"uri:urn:mycompany:u1\"\nrole = \"admin\""
        ))
        .is_empty()
    );
    assert!(
        findings(&realm_with(
            "subject = \"uri:urn:mycompany:u1\"\nrole = \"member\""
        ))
        .is_empty()
    );

    let finding = only(
        &realm_with("subject = \"uri:urn:mycompany:u1\"\nrole = \"boss\""),
        "unknown-role",
    );
    assert_eq!(finding.location, at(13, 1));
    assert!(
        finding
            .message
            .contains("role boss, which realm uri:urn:mycompany does not define"),
        "{finding}"
    );

    let finding = only(
        &realm_with("subject = \"uri:urn:mycompanyx:u1\"\nrole = \"admin\""),
        "outside-domain",
    );
    assert_eq!(finding.location, at(13, 1));
    assert!(
        finding
            .message
            .contains("is outside realm uri:urn:mycompany's domain"),
        "{finding}"
    );
}

#[test]
fn duplicate_roles_and_assignments() {
    let text = format!(
        "{REALM}\n[[clients.domain.roles]]\nname = \"admin\"\nresources = [{{ name = \"api\", operations = [\"read\"] }}]\n"
    );
    let finding = only(&text, "duplicate-role");
    assert_eq!(finding.location, at(13, 1));
    let twice = "subject = \"uri:urn:mycompany:u1\"\nrole = \"admin\"\n\n[[clients.domain.role_assignments]]\nsubject = \"uri:urn:mycompany:u1\"\nrole = \"member\"";
    let finding = only(&realm_with(twice), "duplicate-assignment");
    assert_eq!(finding.location, at(17, 1));
}

#[test]
fn empty_operation_lists() {
    let text = ALICE.replace(r#"["read", "write"]"#, "[]");
    let finding = only(&text, "empty-operations");
    assert_eq!(finding.location, at(3, 14));
    assert!(
        finding.message.contains("grants no operations"),
        "{finding}"
    );
}

#[test]
fn malformed_service_chain_and_signer_keys() {
    let text = ALICE.replace(
        r#"operations = ["read", "write"] }"#,
        r#"operations = ["read", "write"], service_chain = [{ component = "auth", public_key = "ed25519/zz" }] }"#,
    );
    let finding = only(&text, "malformed-key");
    assert_eq!(finding.location, at(3, 79));
    assert!(
        finding.message.contains("service-chain node auth of api"),
        "{finding}"
    );
    let text = ALICE.replace(
        r#"operations = ["read", "write"] }"#,
        r#"operations = ["read", "write"], signers = [{ component = "c", authorization_service = "https://x", public_key = "rsa/00" }] }"#,
    );
    assert!(
        only(&text, "malformed-key")
            .message
            .contains("must be ed25519 or secp256r1")
    );
}

#[test]
fn unparsable_and_expired_ca_chains() {
    let text = format!("[cacerts]\ncert_chain = \"not a certificate\"\n{ALICE}");
    let finding = only(&text, "ca-chain");
    assert_eq!(finding.location, at(2, 14));
    assert!(
        finding.message.contains("holds no certificate"),
        "{finding}"
    );

    let garbled = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let text = format!("[cacerts]\ncert_chain = '''\n{garbled}'''\n{ALICE}");
    let finding = only(&text, "ca-chain");
    assert!(
        finding.message.contains("does not parse as X.509"),
        "{finding}"
    );

    // A real CA certificate that expired in 2021.
    let expired = expired_ca();
    let text = format!("[cacerts]\ncert_chain = '''\n{expired}'''\n{ALICE}");
    let finding = only(&text, "ca-expired");
    assert!(finding.message.contains("expired at 2021-"), "{finding}");
}

/// A self-signed CA certificate valid from 2020-01-01 to 2021-01-01.
fn expired_ca() -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn findings_print_as_line_column_severity_code_message() {
    let text = ALICE.replace(r#"["read", "write"]"#, "[]");
    let finding = only(&text, "empty-operations");
    assert_eq!(
        finding.to_string(),
        "3:14: error[empty-operations]: resource api of client uri:urn:company:alice grants no operations; list them or remove the resource"
    );
}
