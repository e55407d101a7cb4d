//! Lossless editing of clients.toml: every edit changes only the lines it must, comments and
//! layout survive, failed edits change nothing, and undo restores the text byte for byte.

use hessra_console::policy::{self, Edit, EditError, EditSession, Setting};
use proptest::prelude::*;

const FIXTURE: &str = include_str!("../fixtures/clients.toml");
const ALICE: &str = "uri:urn:company:alice";
const AGENT: &str = "uri:urn:company:alice:agent1";
const REALM: &str = "uri:urn:mycompany";

/// Lines removed from `old` and lines added in `new`, by longest common subsequence.
fn line_diff(old: &str, new: &str) -> (Vec<String>, Vec<String>) {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push(b[j].to_string());
            j += 1;
        } else {
            removed.push(a[i].to_string());
            i += 1;
        }
    }
    (removed, added)
}

fn edited(edit: Edit) -> String {
    let mut session = EditSession::open(FIXTURE, 0).unwrap();
    session
        .apply(&edit)
        .unwrap_or_else(|e| panic!("{edit:?}: {e}"));
    let text = session.text().to_string();
    assert!(
        !session.current().has_errors() || matches!(edit, Edit::Grant { .. }),
        "{:?}",
        session.current().findings
    );
    text
}

fn assert_changes(edit: Edit, removed: &[&str], added: &[&str]) {
    let text = edited(edit.clone());
    let (r, a) = line_diff(FIXTURE, &text);
    assert_eq!(r, removed, "removed lines for {edit:?}\n{text}");
    assert_eq!(a, added, "added lines for {edit:?}\n{text}");
}

#[test]
fn the_fixture_round_trips_byte_for_byte_and_is_valid() {
    let loaded = policy::load(FIXTURE, 0).unwrap();
    assert_eq!(loaded.document.to_string(), FIXTURE);
    assert!(loaded.findings.is_empty(), "{:#?}", loaded.findings);
    let identities: Vec<&str> = loaded
        .policy
        .clients
        .iter()
        .map(|c| c.identity.as_str())
        .collect();
    assert_eq!(
        identities,
        vec![
            ALICE,
            AGENT,
            "uri:urn:company:ci",
            "uri:urn:company:ci:build",
            "uri:urn:company:ci:deploy",
            "uri:urn:company:ops",
            REALM
        ]
    );
}

#[test]
fn granting_touches_one_line() {
    assert_changes(
        Edit::Grant {
            identity: AGENT.into(),
            resource: "production_api".into(),
            operation: "write".into(),
        },
        &[r#"  { name = "production_api", operations = ["read"] },"#],
        &[r#"  { name = "production_api", operations = ["read", "write"] },"#],
    );
    // Granting what is already granted changes nothing.
    let text = edited(Edit::Grant {
        identity: ALICE.into(),
        resource: "production_api".into(),
        operation: "read".into(),
    });
    assert_eq!(text, FIXTURE);
}

#[test]
fn granting_a_new_resource_adds_one_line_in_the_list_style() {
    assert_changes(
        Edit::Grant {
            identity: "uri:urn:company:ops".into(),
            resource: "audit".into(),
            operation: "read".into(),
        },
        &[],
        &[r#"  { name = "audit", operations = ["read"] },"#],
    );
}

#[test]
fn revoking_touches_one_line_and_removes_emptied_resources() {
    assert_changes(
        Edit::Revoke {
            identity: ALICE.into(),
            resource: "staging_api".into(),
            operation: "read".into(),
        },
        &[r#"  { name = "staging_api", operations = ["read", "write"] },"#],
        &[r#"  { name = "staging_api", operations = ["write"] },"#],
    );
    assert_changes(
        Edit::Revoke {
            identity: AGENT.into(),
            resource: "production_api".into(),
            operation: "read".into(),
        },
        &[r#"  { name = "production_api", operations = ["read"] },"#],
        &[],
    );
}

#[test]
fn settings_keep_their_comments() {
    assert_changes(
        Edit::SetIdentityTokens {
            identity: AGENT.into(),
            enabled: true,
            duration: Some(1800),
        },
        &["identity_token_duration = 3600 # 1 hour"],
        // A comment stating the duration states the new one, in the same words.
        &["identity_token_duration = 1800 # 30 minutes"],
    );
    assert_changes(
        Edit::SetSetting {
            identity: "uri:urn:company:ci:deploy".into(),
            setting: Setting::Delegatable,
            value: None,
        },
        &["delegatable = false # deploy jobs may not hand their identity on"],
        &[],
    );
    assert_changes(
        Edit::SetSetting {
            identity: ALICE.into(),
            setting: Setting::MaxDelegationDepth,
            value: Some(2),
        },
        &[],
        &["max_delegation_depth = 2"],
    );
}

#[test]
fn adding_and_removing_clients() {
    let text = edited(Edit::AddClient {
        identity: "uri:urn:company:bob".into(),
    });
    let (removed, added) = line_diff(FIXTURE, &text);
    assert!(removed.is_empty(), "{removed:?}");
    assert_eq!(
        added,
        vec![
            "",
            "[[clients]]",
            r#"identifier = { type = "san_uri", value = "uri:urn:company:bob" }"#,
            "resources = []"
        ]
    );
    assert!(
        text.ends_with("resources = []\n"),
        "the new client goes after the realm's sub-tables:\n{text}"
    );
    let loaded = policy::load(&text, 0).unwrap();
    assert!(loaded.policy.client("uri:urn:company:bob").is_some());
    assert_eq!(
        loaded
            .policy
            .client(REALM)
            .unwrap()
            .domain
            .as_ref()
            .unwrap()
            .role_assignments
            .len(),
        1
    );

    let text = edited(Edit::RemoveClient {
        identity: "uri:urn:company:ops".into(),
    });
    let (removed, added) = line_diff(FIXTURE, &text);
    assert!(added.is_empty(), "{added:?}");
    assert!(removed.iter().any(|l| l.contains("uri:urn:company:ops")));
    assert!(
        removed
            .iter()
            .any(|l| l.contains("may read the authorization server's status")),
        "its comment goes with it"
    );
    assert!(
        text.contains("# --- Operations"),
        "section headings separated by a blank line stay"
    );
    assert!(text.contains("# --- Realms"), "other comments stay");
    assert_eq!(removed.len(), 8, "{removed:#?}");

    assert_changes(
        Edit::RenameClient {
            from: "uri:urn:company:ops".into(),
            to: "uri:urn:company:sre".into(),
        },
        &[r#"identifier = { type = "san_uri", value = "uri:urn:company:ops" }"#],
        &[r#"identifier = { type = "san_uri", value = "uri:urn:company:sre" }"#],
    );
}

#[test]
fn realm_edits() {
    assert_changes(
        Edit::Assign {
            realm: REALM.into(),
            subject: "uri:urn:mycompany:carol".into(),
            role: "admin".into(),
        },
        &[],
        &[
            "",
            "[[clients.domain.role_assignments]]",
            r#"subject = "uri:urn:mycompany:carol""#,
            r#"role = "admin""#,
        ],
    );
    assert_changes(
        Edit::Assign {
            realm: REALM.into(),
            subject: "uri:urn:mycompany:admin-user".into(),
            role: "member".into(),
        },
        &[r#"role = "admin""#],
        &[r#"role = "member""#],
    );
    let text = edited(Edit::Unassign {
        realm: REALM.into(),
        subject: "uri:urn:mycompany:admin-user".into(),
    });
    assert!(!text.contains("admin-user"));
    let text = edited(Edit::RenameRole {
        realm: REALM.into(),
        from: "admin".into(),
        to: "owner".into(),
    });
    let (removed, added) = line_diff(FIXTURE, &text);
    assert_eq!(removed, vec![r#"name = "admin""#, r#"role = "admin""#]);
    assert_eq!(added, vec![r#"name = "owner""#, r#"role = "owner""#]);
    let text = edited(Edit::AddRole {
        realm: REALM.into(),
        role: "auditor".into(),
    });
    let loaded = policy::load(&text, 0).unwrap();
    assert!(
        loaded
            .policy
            .client(REALM)
            .unwrap()
            .domain
            .as_ref()
            .unwrap()
            .role("auditor")
            .is_some()
    );
    assert_changes(
        Edit::RoleGrant {
            realm: REALM.into(),
            role: "member".into(),
            resource: "api".into(),
            operation: "list".into(),
        },
        &[r#"  { name = "api", operations = ["read"] },"#],
        &[r#"  { name = "api", operations = ["read", "list"] },"#],
    );
}

#[test]
fn failed_edits_change_nothing_and_say_why() {
    let mut session = EditSession::open(FIXTURE, 0).unwrap();
    let cases = [
        (
            Edit::Grant {
                identity: "uri:urn:nobody".into(),
                resource: "x".into(),
                operation: "y".into(),
            },
            "no client uri:urn:nobody",
        ),
        (
            Edit::AddClient {
                identity: ALICE.into(),
            },
            "already exists",
        ),
        (
            Edit::Assign {
                realm: ALICE.into(),
                subject: "uri:urn:company:alice:x".into(),
                role: "admin".into(),
            },
            "is not a realm",
        ),
        (
            Edit::Assign {
                realm: REALM.into(),
                subject: "uri:urn:mycompany:x".into(),
                role: "boss".into(),
            },
            "has no role boss",
        ),
        (
            Edit::Revoke {
                identity: ALICE.into(),
                resource: "production_api".into(),
                operation: "delete".into(),
            },
            "not found",
        ),
        (
            Edit::RemoveRole {
                realm: REALM.into(),
                role: "ghost".into(),
            },
            "has no role ghost",
        ),
    ];
    for (edit, expected) in cases {
        let err: EditError = session.apply(&edit).unwrap_err();
        assert!(err.to_string().contains(expected), "{edit:?}: {err}");
        assert_eq!(session.text(), FIXTURE);
        assert!(!session.can_undo());
    }
}

#[test]
fn undo_and_redo_restore_exact_text() {
    let mut session = EditSession::open(FIXTURE, 0).unwrap();
    session
        .apply(&Edit::Grant {
            identity: AGENT.into(),
            resource: "staging_api".into(),
            operation: "read".into(),
        })
        .unwrap();
    let after_first = session.text().to_string();
    session
        .apply(&Edit::RemoveClient {
            identity: "uri:urn:company:ops".into(),
        })
        .unwrap();
    assert!(session.undo());
    assert_eq!(session.text(), after_first);
    assert!(session.undo());
    assert_eq!(session.text(), FIXTURE);
    assert!(!session.undo());
    assert!(session.redo());
    assert_eq!(session.text(), after_first);
    assert!(
        session
            .current()
            .policy
            .client(AGENT)
            .unwrap()
            .resource("staging_api")
            .is_some()
    );
    session
        .apply(&Edit::AddClient {
            identity: "uri:urn:x".into(),
        })
        .unwrap();
    assert!(!session.can_redo(), "a new edit clears the redo stack");
}

fn segment() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,5}"
}

prop_compose! {
    fn document()(
        clients in prop::collection::vec((segment(), prop::collection::vec((segment(), prop::collection::vec(segment(), 1..3)), 1..3), "[ -~]{0,20}"), 1..6),
        single_line in any::<bool>(),
    ) -> String {
        let mut out = String::from("# generated\n");
        for (i, (name, resources, comment)) in clients.iter().enumerate() {
            out.push_str(&format!("\n# client {i}: {comment}\n[[clients]]\nidentifier = {{ type = \"san_uri\", value = \"uri:urn:c{i}:{name}\" }} # id\n"));
            let entries: Vec<String> = resources
                .iter()
                .enumerate()
                .map(|(j, (r, ops))| {
                    let ops: Vec<String> = ops.iter().map(|o| format!("'{o}'")).collect();
                    format!("{{ name = \"r{j}{r}\", operations = [{}] }}", ops.join(", "))
                })
                .collect();
            if single_line {
                out.push_str(&format!("resources = [{}]\n", entries.join(", ")));
            } else {
                out.push_str("resources = [\n");
                for entry in entries {
                    out.push_str(&format!("    {entry}, # r\n"));
                }
                out.push_str("]\n");
            }
            out.push_str("identity_token_enabled = true   # spaced\n");
        }
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn edits_leave_untouched_lines_byte_identical(text in document(), pick in 0usize..100, op in segment()) {
        let loaded = policy::load(&text, 0).unwrap();
        prop_assert_eq!(loaded.document.to_string(), text.clone());
        let client = &loaded.policy.clients[pick % loaded.policy.clients.len()];
        let resource = &client.resources[pick % client.resources.len()];
        let edits = [
            Edit::Grant { identity: client.identity.clone(), resource: resource.name.clone(), operation: format!("x{op}") },
            Edit::Revoke { identity: client.identity.clone(), resource: resource.name.clone(), operation: resource.operations[0].clone() },
            Edit::Grant { identity: client.identity.clone(), resource: format!("new{op}"), operation: "read".into() },
            Edit::SetIdentityTokens { identity: client.identity.clone(), enabled: false, duration: None },
        ];
        for edit in edits {
            let mut session = EditSession::open(&text, 0).unwrap();
            session.apply(&edit).unwrap();
            let (removed, added) = line_diff(&text, session.text());
            // Each edit rewrites at most the one line holding the value it changes.
            prop_assert!(removed.len() <= 1, "{:?} removed {:?}", edit, removed);
            prop_assert!(added.len() <= 1, "{:?} added {:?}", edit, added);
            for line in removed.iter().chain(added.iter()) {
                let about_it = line.contains(&resource.name) || line.contains("new") || line.contains("identity_token_enabled") || line.contains("resources = [");
                prop_assert!(about_it, "{:?} touched an unrelated line {:?}", edit, line);
            }
            prop_assert!(session.undo());
            prop_assert_eq!(session.text(), text.as_str());
        }
    }
}

#[test]
fn service_chain_signer_and_ca_edits() {
    use hessra_console::token::keys;
    let node_key = keys::key_string(&keys::generate(keys::KeyAlgorithm::Ed25519).public());
    let text = edited(Edit::AddServiceNode {
        identity: ALICE.into(),
        resource: "production_api".into(),
        component: "auth_service".into(),
        public_key: node_key.clone(),
    });
    let (removed, added) = line_diff(FIXTURE, &text);
    assert_eq!(
        removed,
        vec![r#"  { name = "production_api", operations = ["read", "write"] },"#]
    );
    assert_eq!(added.len(), 1);
    let expected =
        format!(r#"service_chain = [{{ component = "auth_service", public_key = "{node_key}" }}]"#);
    assert!(added[0].contains(&expected), "{added:?}");
    let loaded = policy::load(&text, 0).unwrap();
    let resource = loaded
        .policy
        .client(ALICE)
        .unwrap()
        .resource("production_api")
        .unwrap()
        .clone();
    assert_eq!(resource.service_chain[0].component, "auth_service");

    let mut session = EditSession::open(&text, 0).unwrap();
    session
        .apply(&Edit::AddSigner {
            identity: ALICE.into(),
            resource: "production_api".into(),
            component: "compliance".into(),
            authorization_service: "https://signer.example:8443".into(),
            public_key: node_key.clone(),
        })
        .unwrap();
    let signer = &session
        .current()
        .policy
        .client(ALICE)
        .unwrap()
        .resource("production_api")
        .unwrap()
        .signers[0];
    assert_eq!(signer.authorization_service, "https://signer.example:8443");
    session
        .apply(&Edit::RemoveSigner {
            identity: ALICE.into(),
            resource: "production_api".into(),
            component: "compliance".into(),
        })
        .unwrap();
    session
        .apply(&Edit::RemoveServiceNode {
            identity: ALICE.into(),
            resource: "production_api".into(),
            component: "auth_service".into(),
        })
        .unwrap();
    assert_eq!(
        session.text(),
        FIXTURE,
        "adding then removing leaves the original bytes"
    );

    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    session
        .apply(&Edit::SetCaChain { pem: pem.into() })
        .unwrap();
    let ca = session.current().policy.ca_chain.clone().unwrap();
    assert_eq!(ca.pem, pem);
    assert!(
        session.text().starts_with(&FIXTURE[..200]),
        "the top of the file is untouched"
    );
}

#[test]
fn default_role_and_role_removal() {
    let mut session = EditSession::open(FIXTURE, 0).unwrap();
    session
        .apply(&Edit::SetDefaultRole {
            realm: REALM.into(),
            role: "guest".into(),
        })
        .unwrap();
    let domain = session
        .current()
        .policy
        .client(REALM)
        .unwrap()
        .domain
        .clone()
        .unwrap();
    assert_eq!(domain.default_role.unwrap().name, "guest");
    session
        .apply(&Edit::RemoveRole {
            realm: REALM.into(),
            role: "admin".into(),
        })
        .unwrap();
    let current = session.current();
    assert!(
        current.findings.iter().any(|f| f.code == "unknown-role"),
        "the assignment now names a missing role"
    );
    // A plain client becomes a realm when it gets a default role.
    session
        .apply(&Edit::SetDefaultRole {
            realm: "uri:urn:company:ops".into(),
            role: "viewer".into(),
        })
        .unwrap();
    assert!(
        session
            .current()
            .policy
            .client("uri:urn:company:ops")
            .unwrap()
            .domain
            .is_some()
    );
    session
        .apply(&Edit::RoleGrant {
            realm: "uri:urn:company:ops".into(),
            role: "viewer".into(),
            resource: "dash".into(),
            operation: "read".into(),
        })
        .unwrap();
    let ops = session
        .current()
        .policy
        .client("uri:urn:company:ops")
        .unwrap()
        .clone();
    assert_eq!(
        ops.domain.unwrap().default_role.unwrap().resources[0].name,
        "dash"
    );
}
