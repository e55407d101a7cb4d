//! Issue 15, "tokens tell the truth" and "review tells the truth", driven by keys against real
//! git repositories (and, for the server's list, the real server over TLS): `v` reports a
//! revoked block with who, when, why and where (working copy, HEAD, server); the Tokens screen
//! shows each block's status; verifying an authorization token as another identity fails
//! naming both; revocations appear in the semantic diff, the commit confirmation (which names
//! both files) and history (revocation-only commits included); both diff views compare the
//! working buffer, unsaved edits included, with HEAD.

use hessra_console::console::Context;
use hessra_console::console::ScreenId;
use hessra_console::console::app::Popup;
use hessra_console::console::jobs;
use hessra_console::token::{self, Delegation, IdentityClaims, KeyPair, keys};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const OPS: &str = "uri:urn:company:ops";

mod support;

use support::console::{Console, NOW, Setup, flash, press};

type Fixture = Console;

fn fixture() -> Fixture {
    Console::with(Setup::default(), |context| Context {
        operator: Some(OPS.into()),
        ..context
    })
}

fn special(f: &mut Fixture, code: KeyCode) {
    support::console::special(f, code, KeyModifiers::NONE);
}

fn screen(f: &Fixture) -> String {
    support::console::screen(f, 200, 50)
}

/// Alice's identity token delegated to her agent (block 0: alice, block 1: the agent).
fn delegated(root: &KeyPair) -> String {
    let parent = token::mint_identity(
        root,
        &IdentityClaims {
            subject: "uri:urn:company:alice".into(),
            expires_at: token::clock::unix_now() + 3600,
            delegatable: true,
            domain: None,
        },
    )
    .unwrap();
    token::delegate(
        &parent,
        Some(&root.public()),
        &Delegation::new(
            "uri:urn:company:alice:agent1",
            token::clock::unix_now() + 600,
        ),
    )
    .unwrap()
    .token
}

fn block_id(token: &str, block: usize) -> String {
    token::inspect(token, None, NOW).unwrap().blocks[block]
        .revocation_id
        .clone()
}

/// Loads `token`, trusts `root`, and revokes the selected block (the last: the agent's).
fn revoke_last_block(f: &mut Fixture, token: &str, root: &KeyPair, reason: &str) {
    f.app
        .run_command(&format!("key {}", keys::key_string(&root.public())));
    f.app.load_token(token.to_string(), "test".into());
    jobs::settle(&mut f.app, &f.env, true);
    press(f, "X");
    press(f, reason);
    special(f, KeyCode::Enter);
    press(f, "y");
    assert!(flash(f).starts_with("revoked"), "{}", flash(f));
}

fn verify(f: &mut Fixture, runtime_polls: bool) -> Result<String, String> {
    press(f, "4v");
    f.app
        .handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    jobs::settle(&mut f.app, &f.env, !runtime_polls);
    f.app
        .screens()
        .tokens
        .verification
        .clone()
        .expect("verified")
}

fn commit(f: &mut Fixture) -> Vec<String> {
    press(f, "5c");
    special(f, KeyCode::Enter);
    let lines = match f.app.popup() {
        Some(Popup::Confirm { lines, .. }) => lines.clone(),
        _ => panic!("no commit confirmation: {}", flash(f)),
    };
    press(f, "y");
    assert!(flash(f).starts_with("committed"), "{}", flash(f));
    lines
}

#[test]
fn verify_reports_a_revoked_block_in_the_working_copy_then_at_head() {
    let mut f = fixture();
    let root = KeyPair::new();
    let token = delegated(&root);
    let agent_block = block_id(&token, 1);

    // Before: valid, and it says what was checked.
    f.app
        .run_command(&format!("key {}", keys::key_string(&root.public())));
    f.app.load_token(token.clone(), "test".into());
    let valid = verify(&mut f, false).unwrap();
    assert!(
        valid.starts_with("valid: usable by uri:urn:company:alice:agent1")
            && valid.ends_with("not revoked (at HEAD and in the working copy)"),
        "{valid}"
    );

    // Revoked in the working copy, not committed: never valid, and it says where.
    revoke_last_block(&mut f, &token, &root, "agent host compromised");
    let refused = verify(&mut f, false).unwrap_err();
    assert!(
        refused.starts_with(&format!(
            "revoked: block 1 (revocation id {}…) was revoked by {OPS} at ",
            &agent_block[..16]
        )) && refused
            .contains(": agent host compromised — in revocations.toml in the working copy"),
        "{refused}"
    );
    assert!(flash(&f).starts_with("revoked: block 1"), "{}", flash(&f));
    let shown = screen(&f);
    assert!(shown.contains("✗ revoked"), "{shown}");
    assert!(!shown.contains("✓ valid"), "{shown}");
    // Per-block status: block 0 is fine, block 1 revoked in the working copy only.
    assert!(
        shown.contains("not revoked (at HEAD and in the working copy)"),
        "{shown}"
    );
    assert!(
        shown.contains("✗ revoked in the working copy by uri:urn:company:ops"),
        "{shown}"
    );
    assert!(shown.contains("not committed yet"), "{shown}");

    // Committed: now at HEAD too.
    commit(&mut f);
    let refused = verify(&mut f, false).unwrap_err();
    assert!(
        refused.ends_with("in revocations.toml at HEAD and in the working copy"),
        "{refused}"
    );
    let shown = screen(&f);
    assert!(
        shown.contains("✗ revoked at HEAD and in the working copy by uri:urn:company:ops"),
        "{shown}"
    );
    assert!(!shown.contains("not committed yet"), "{shown}");
}

#[test]
fn a_broken_revocation_list_makes_verify_fail_closed() {
    let mut f = fixture();
    let root = KeyPair::new();
    let token = delegated(&root);
    let file = f.app.policy_path().with_file_name("revocations.toml");
    std::fs::write(&file, "[[revoked]\n").unwrap();
    f.app
        .run_command(&format!("key {}", keys::key_string(&root.public())));
    f.app.load_token(token, "test".into());
    let refused = verify(&mut f, false).unwrap_err();
    assert!(
        refused.starts_with(
            "cannot tell whether it is revoked: revocations.toml in the working copy has errors"
        ),
        "{refused}"
    );
}

#[test]
fn verifying_an_authorization_token_as_another_identity_fails_naming_both() {
    let mut f = fixture();
    let root = KeyPair::new();
    let authz = token::mint_authz(
        &root,
        &token::AuthzClaims {
            subject: "uri:urn:company:alice".into(),
            resource: "production_api".into(),
            operation: "read".into(),
            expires_at: token::clock::unix_now() + 300,
            domain: None,
            prefix_attenuator_key: None,
            service_chain: Vec::new(),
            signers: Vec::new(),
        },
    )
    .unwrap();
    f.app
        .run_command(&format!("key {}", keys::key_string(&root.public())));
    f.app.load_token(authz, "test".into());
    press(&mut f, "v");
    // Replace the suggested identity with bob's.
    for _ in 0..80 {
        f.app
            .handle_key(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
    }
    press(&mut f, "uri:urn:company:bob");
    special(&mut f, KeyCode::Enter);
    let refused = f
        .app
        .screens()
        .tokens
        .verification
        .clone()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        refused,
        "this authorization token was issued to uri:urn:company:alice, not uri:urn:company:bob: uri:urn:company:bob cannot use it (signature valid)"
    );
    // As its own subject it verifies.
    press(&mut f, "v");
    for _ in 0..80 {
        f.app
            .handle_key(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
    }
    press(&mut f, "uri:urn:company:alice");
    special(&mut f, KeyCode::Enter);
    let valid = f
        .app
        .screens()
        .tokens
        .verification
        .clone()
        .unwrap()
        .unwrap();
    assert!(
        valid.starts_with("signature valid; authorization token for uri:urn:company:alice"),
        "{valid}"
    );
}

#[test]
fn review_shows_revocations_names_both_files_and_lists_revocation_only_commits() {
    let mut f = fixture();
    let root = KeyPair::new();
    let token = delegated(&root);
    let agent_block = block_id(&token, 1);

    // A revocation alone: the semantic diff shows it; the commit names revocations.toml only.
    revoke_last_block(&mut f, &token, &root, "agent host compromised");
    press(&mut f, "5");
    let shown = screen(&f);
    assert!(
        shown.contains(&format!(
            "+ REVOKES {}… a token block and every token delegated from it — agent host compromised, by",
            &agent_block[..16]
        )),
        "{shown}"
    );
    let lines = commit(&mut f);
    assert!(
        lines[0].starts_with("Commit revocations.toml: \""),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("+ REVOKES")),
        "{lines:?}"
    );

    // History lists that revocation-only commit, with the revocation in its semantic diff.
    let entries = match &f.app.screens().changes.history {
        Some(Ok(entries)) => entries.clone(),
        other => panic!("no history: {other:?}"),
    };
    let newest = &entries[0];
    let changes = newest.changes.as_ref().unwrap();
    assert!(
        changes
            .changes
            .iter()
            .any(|c| c.to_string().starts_with("+ REVOKES")),
        "{changes:?}"
    );
    assert_eq!(
        newest.commit.message,
        format!("Revoke {}…: agent host compromised", &agent_block[..16])
    );
    let shown = screen(&f);
    assert!(shown.contains("+revokes"), "{shown}");
    // Its detail, with the history focused.
    special(&mut f, KeyCode::Tab);
    let shown = screen(&f);
    assert!(
        shown.contains(&format!("+ REVOKES {}…", &agent_block[..16])),
        "{shown}"
    );
    special(&mut f, KeyCode::Tab);

    // A grant and a revocation together: the confirmation names both files and both changes.
    let other = delegated(&root);
    press(&mut f, "1+staging_api delete");
    special(&mut f, KeyCode::Enter);
    revoke_last_block(&mut f, &other, &root, "second agent retired");
    let lines = commit(&mut f);
    assert!(
        lines[0].starts_with("Commit clients.toml and revocations.toml: \""),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("may now delete on staging_api")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("— second agent retired")),
        "{lines:?}"
    );
    assert_eq!(f.app.screen(), ScreenId::Changes);
}

#[test]
fn both_diff_views_compare_the_working_buffer_with_head() {
    let mut f = fixture();
    // An unsaved grant.
    press(&mut f, "+staging_api delete");
    special(&mut f, KeyCode::Enter);
    assert!(f.app.is_dirty());
    press(&mut f, "5");
    let shown = screen(&f);
    assert!(
        shown.contains("Semantic diff: working buffer (unsaved edits included) vs HEAD"),
        "{shown}"
    );
    assert!(shown.contains("may now delete on staging_api"), "{shown}");
    press(&mut f, "t");
    let shown = screen(&f);
    assert!(
        shown.contains("Text diff: working buffer (unsaved edits included) vs HEAD"),
        "{shown}"
    );
    assert!(
        shown.contains("+") && shown.contains("\"delete\""),
        "the unsaved edit is not in the text diff: {shown}"
    );
    assert!(
        !shown.contains("unsaved edits are not in the text diff"),
        "{shown}"
    );
    // Another unsaved edit updates the text view as well.
    press(&mut f, "1+artifacts read");
    special(&mut f, KeyCode::Enter);
    press(&mut f, "5");
    let shown = screen(&f);
    assert!(shown.contains("artifacts"), "{shown}");
    // Undoing everything leaves no difference in either view.
    press(&mut f, "1uu5");
    let shown = screen(&f);
    assert!(shown.contains("no changes"), "{shown}");
}

/// The server's own list, over TLS with the operator's certificate: after the console commits
/// and pushes a revocation and the server syncs, `v` says it is revoked at the server too.
#[test]
fn verify_asks_the_connected_server_for_its_revocation_list() {
    let mut f = Console::with(
        Setup {
            server: true,
            ..Setup::default()
        },
        |context| context,
    );
    let root = keys::read_private_key_file(&f.ws.root_key).unwrap();
    jobs::settle(&mut f.app, &f.env, true);
    let token = delegated(&root);
    f.app
        .run_command(&format!("key {}", keys::key_string(&root.public())));
    f.app.load_token(token.clone(), "test".into());
    let valid = verify(&mut f, false).unwrap();
    assert!(
        valid.ends_with("not revoked (at HEAD, in the working copy and at the server)"),
        "{valid}"
    );
    revoke_last_block(&mut f, &token, &root, "agent host compromised");
    commit(&mut f);
    // Push; the console asks the server to sync once pushed.
    press(&mut f, "p");
    let pushed = f
        .app
        .screens()
        .changes
        .last_push
        .clone()
        .unwrap_or_default();
    assert!(pushed.starts_with("pushed 1 commit"), "{pushed}");
    // The sync the console asked for runs in the background: wait until it is applied.
    let start = std::time::Instant::now();
    while f
        .server
        .as_ref()
        .unwrap()
        .state
        .snapshot()
        .revoked
        .is_empty()
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the server never applied the pushed revocation"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let refused = verify(&mut f, false).unwrap_err();
    assert!(
        refused.ends_with("in revocations.toml at HEAD, in the working copy and at the server"),
        "{refused}"
    );
    let server = f.server.take().unwrap();
    f.runtime.block_on(server.shutdown());
}
