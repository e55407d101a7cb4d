//! Questions asked of the demo policy: the delegation tree, "what can X do?", decisions, the
//! semantic diff of an edit, and the replay of requests under the old and new policy.

use hessra_console::policy::{
    self, ChangeKind, DelegationTree, Edit, EditSession, NodeKind, Request, Resolution,
};

const FIXTURE: &str = include_str!("../fixtures/clients.toml");

fn fixture() -> policy::Policy {
    policy::load(FIXTURE, 0).unwrap().policy
}

fn request(identity: &str, resource: &str, operation: &str, domain: Option<&str>) -> Request {
    Request {
        identity: identity.into(),
        resource: resource.into(),
        operation: operation.into(),
        domain: domain.map(str::to_string),
    }
}

#[test]
fn the_tree_follows_the_hierarchy() {
    let loaded = policy::load(FIXTURE, 0).unwrap();
    let tree = DelegationTree::build(&loaded.policy, &loaded.findings);
    let roots: Vec<&str> = tree
        .roots
        .iter()
        .map(|&i| tree.nodes[i].identity.as_str())
        .collect();
    assert_eq!(
        roots,
        vec![
            "uri:urn:company:alice",
            "uri:urn:company:ci",
            "uri:urn:company:ops",
            "uri:urn:mycompany"
        ]
    );
    let ci = &tree.nodes[tree.find("uri:urn:company:ci").unwrap()];
    let children: Vec<&str> = ci
        .children
        .iter()
        .map(|&i| tree.nodes[i].label.as_str())
        .collect();
    assert_eq!(children, vec!["build", "deploy"]);
    let admin = &tree.nodes[tree.find("uri:urn:mycompany:admin-user").unwrap()];
    assert!(
        matches!(&admin.kind, NodeKind::DomainSubject { role, explicit: true, .. } if role == "admin")
    );
    assert!(admin.permissions.allows("api", "delete"));
    assert_eq!(tree.path_to("uri:urn:company:alice:agent1").len(), 2);

    let text = tree.render();
    assert!(text.contains("uri:urn:company:alice  production_api: read, write; staging_api: read, write · identity tokens 8h"), "{text}");
    assert!(
        text.contains("└─ agent1  production_api: read · identity tokens 1h"),
        "{text}"
    );
    assert!(
        text.contains(
            "deploy  artifacts: read; staging_api: write · identity tokens 30m · not delegatable"
        ),
        "{text}"
    );
    assert!(
        text.contains("└─ admin-user  role admin · api: delete, read, write"),
        "{text}"
    );
}

#[test]
fn intermediates_and_violations_appear_in_the_tree() {
    let mut session = EditSession::open(FIXTURE, 0).unwrap();
    session
        .apply(&Edit::AddClient {
            identity: "uri:urn:company:alice:team:bot".into(),
        })
        .unwrap();
    session
        .apply(&Edit::Grant {
            identity: "uri:urn:company:alice:team:bot".into(),
            resource: "billing".into(),
            operation: "read".into(),
        })
        .unwrap();
    let loaded = session.current();
    let tree = DelegationTree::build(&loaded.policy, &loaded.findings);
    let team = &tree.nodes[tree.find("uri:urn:company:alice:team").unwrap()];
    assert_eq!(team.kind, NodeKind::Intermediate);
    let bot = &tree.nodes[tree.find("uri:urn:company:alice:team:bot").unwrap()];
    assert!(bot.has_errors());
    let text = tree.render();
    assert!(text.contains("team  (not configured)"), "{text}");
    assert!(text.contains("✗ error (line"), "{text}");
    assert!(
        text.contains("may read on billing, which its parent uri:urn:company:alice may not"),
        "{text}"
    );
}

#[test]
fn what_can_an_identity_do() {
    let policy = fixture();
    let alice = policy::permissions(&policy, "uri:urn:company:alice").unwrap();
    assert_eq!(
        alice.to_string(),
        "production_api: read, write; staging_api: read, write"
    );
    let agent = policy::permissions(&policy, "uri:urn:company:alice:agent1").unwrap();
    assert_eq!(
        agent.to_string(),
        "production_api: read",
        "a delegated identity gets its own permissions"
    );
    assert!(
        policy::permissions(&policy, "uri:urn:company:alice:agent2").is_none(),
        "unconfigured"
    );
    let member = policy::permissions(&policy, "uri:urn:mycompany:someone").unwrap();
    assert_eq!(member.to_string(), "api: read");
    assert!(matches!(
        policy::resolve(&policy, "uri:urn:mycompany:admin-user"),
        Resolution::DomainSubject { explicit: true, .. }
    ));
}

#[test]
fn decisions_explain_themselves() {
    let policy = fixture();
    let allowed = policy::decide(
        &policy,
        &request(
            "uri:urn:company:alice:agent1",
            "production_api",
            "read",
            None,
        ),
    );
    assert!(allowed.allowed);
    assert!(
        allowed.reason.contains("via client entry at line"),
        "{}",
        allowed.reason
    );

    let denied = policy::decide(
        &policy,
        &request(
            "uri:urn:company:alice:agent1",
            "production_api",
            "write",
            None,
        ),
    );
    assert!(!denied.allowed);
    assert!(
        denied.reason.contains("may only read on production_api"),
        "{}",
        denied.reason
    );

    let stranger = policy::decide(
        &policy,
        &request(
            "uri:urn:company:alice:agent2",
            "production_api",
            "read",
            None,
        ),
    );
    assert!(
        stranger
            .reason
            .contains("not configured; it is under uri:urn:company:alice"),
        "{}",
        stranger.reason
    );

    // Roles do not inherit: admin is not also member.
    let admin = request(
        "uri:urn:mycompany:admin-user",
        "api",
        "delete",
        Some("uri:urn:mycompany"),
    );
    assert!(policy::decide(&policy, &admin).allowed);
    let member = request(
        "uri:urn:mycompany:bob",
        "api",
        "write",
        Some("uri:urn:mycompany"),
    );
    let decision = policy::decide(&policy, &member);
    assert!(!decision.allowed);
    assert!(
        decision
            .reason
            .contains("role member in realm uri:urn:mycompany (default role)"),
        "{}",
        decision.reason
    );

    let outside = request(
        "uri:urn:company:alice",
        "api",
        "read",
        Some("uri:urn:mycompany"),
    );
    assert!(
        policy::decide(&policy, &outside)
            .reason
            .contains("not within domain")
    );
    let not_realm = request(
        "uri:urn:company:alice:x",
        "api",
        "read",
        Some("uri:urn:company:alice"),
    );
    assert!(
        policy::decide(&policy, &not_realm)
            .reason
            .contains("is not a realm")
    );
}

#[test]
fn the_diff_names_widening_changes() {
    let mut session = EditSession::open(FIXTURE, 0).unwrap();
    let edits = [
        Edit::Grant {
            identity: "uri:urn:company:alice:agent1".into(),
            resource: "production_api".into(),
            operation: "write".into(),
        },
        Edit::Revoke {
            identity: "uri:urn:company:ci:build".into(),
            resource: "artifacts".into(),
            operation: "write".into(),
        },
        Edit::SetIdentityTokens {
            identity: "uri:urn:company:ci".into(),
            enabled: true,
            duration: Some(14_400),
        },
        Edit::Assign {
            realm: "uri:urn:mycompany".into(),
            subject: "uri:urn:mycompany:carol".into(),
            role: "admin".into(),
        },
        Edit::RemoveClient {
            identity: "uri:urn:company:ops".into(),
        },
        Edit::AddClient {
            identity: "uri:urn:company:bob".into(),
        },
    ];
    for edit in &edits {
        session.apply(edit).unwrap();
    }
    let diff = policy::diff(&fixture(), &session.current().policy);
    let lines: Vec<String> = diff.changes.iter().map(ToString::to_string).collect();
    let expected = [
        "+ WIDENS uri:urn:company:alice:agent1 may now write on production_api",
        "+ WIDENS uri:urn:company:bob added (nothing)",
        "+ WIDENS uri:urn:company:ci: identity tokens 2h → 4h",
        "- uri:urn:company:ci:build may no longer write on artifacts",
        "- uri:urn:company:ops removed",
        "+ WIDENS realm uri:urn:mycompany: uri:urn:mycompany:carol role (default) → admin",
    ];
    assert_eq!(lines, expected);
    assert_eq!(diff.widening().count(), 4);
    assert!(matches!(diff.changes[0].kind, ChangeKind::Granted { .. }));
    assert!(policy::diff(&fixture(), &fixture()).is_empty());
}

#[test]
fn replay_shows_which_decisions_an_edit_changes() {
    let mut session = EditSession::open(FIXTURE, 0).unwrap();
    session
        .apply(&Edit::Revoke {
            identity: "uri:urn:company:alice".into(),
            resource: "staging_api".into(),
            operation: "write".into(),
        })
        .unwrap();
    session
        .apply(&Edit::Assign {
            realm: "uri:urn:mycompany".into(),
            subject: "uri:urn:mycompany:bob".into(),
            role: "admin".into(),
        })
        .unwrap();
    let requests = [
        request("uri:urn:company:alice", "staging_api", "write", None),
        request("uri:urn:company:alice", "staging_api", "read", None),
        request(
            "uri:urn:mycompany:bob",
            "api",
            "delete",
            Some("uri:urn:mycompany"),
        ),
    ];
    let rows = policy::replay(&fixture(), &session.current().policy, &requests);
    let changed: Vec<(bool, bool)> = rows
        .iter()
        .map(|r| (r.before.allowed, r.after.allowed))
        .collect();
    assert_eq!(changed, vec![(true, false), (true, true), (false, true)]);
    assert_eq!(rows.iter().filter(|r| r.changed()).count(), 2);
}
