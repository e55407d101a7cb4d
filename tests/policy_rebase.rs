//! The semantic rebase: a property test over generated edit sequences, the push that replays
//! local commits onto an upstream that moved on (real git: a bare remote and two clones), and
//! the CLI's report of conflicts.

use std::path::{Path, PathBuf};
use std::process::Command;

use hessra_console::gitops::{self, GitError, PushOutcome};
use hessra_console::policy::rebase::{ConflictKind, Resolutions, Side, Thing, rebase, things};
use hessra_console::policy::{self, Edit, Setting};
use proptest::prelude::*;

const FIXTURE: &str = include_str!("../fixtures/clients.toml");
const ALICE: &str = "uri:urn:company:alice";
const OPS: &str = "uri:urn:company:ops";
const REALM: &str = "uri:urn:mycompany";

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut doc = policy::load(text, 0).unwrap().document;
    for edit in edits {
        // Edits that do not apply to this text are skipped, as the console refuses them.
        let _ = doc.apply(edit);
    }
    doc.text().to_string()
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let identity = prop::sample::select(vec![
        ALICE,
        OPS,
        REALM,
        "uri:urn:company:ci",
        "uri:urn:new:one",
    ])
    .prop_map(str::to_string);
    let resource =
        prop::sample::select(vec!["production_api", "audit", "billing"]).prop_map(str::to_string);
    let operation = prop::sample::select(vec!["read", "write"]).prop_map(str::to_string);
    let role = prop::sample::select(vec!["admin", "member", "auditor"]).prop_map(str::to_string);
    let subject = prop::sample::select(vec![
        "uri:urn:mycompany:admin-user",
        "uri:urn:mycompany:bob",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        (identity.clone(), resource.clone(), operation.clone()).prop_map(
            |(identity, resource, operation)| {
                Edit::Grant {
                    identity,
                    resource,
                    operation,
                }
            }
        ),
        (identity.clone(), resource.clone(), operation.clone()).prop_map(
            |(identity, resource, operation)| {
                Edit::Revoke {
                    identity,
                    resource,
                    operation,
                }
            }
        ),
        (
            identity.clone(),
            prop::option::of(prop::sample::select(vec![300i64, 600, 900]))
        )
            .prop_map(|(identity, value)| Edit::SetSetting {
                identity,
                setting: Setting::AuthorizationTokenDuration,
                value,
            }),
        (identity.clone(), any::<bool>()).prop_map(|(identity, on)| Edit::SetSetting {
            identity,
            setting: Setting::Delegatable,
            value: Some(i64::from(on)),
        }),
        (
            identity.clone(),
            any::<bool>(),
            prop::option::of(prop::sample::select(vec![600u64, 7200]))
        )
            .prop_map(|(identity, enabled, duration)| Edit::SetIdentityTokens {
                identity,
                enabled,
                duration
            }),
        identity
            .clone()
            .prop_map(|identity| Edit::AddClient { identity }),
        identity.prop_map(|identity| Edit::RemoveClient { identity }),
        (role.clone(), resource.clone(), operation.clone()).prop_map(
            |(role, resource, operation)| {
                Edit::RoleGrant {
                    realm: REALM.into(),
                    role,
                    resource,
                    operation,
                }
            }
        ),
        (role.clone(), resource, operation).prop_map(|(role, resource, operation)| {
            Edit::RoleRevoke {
                realm: REALM.into(),
                role,
                resource,
                operation,
            }
        }),
        role.clone().prop_map(|role| Edit::AddRole {
            realm: REALM.into(),
            role
        }),
        Just(Edit::RemoveRole {
            realm: REALM.into(),
            role: "auditor".into()
        }),
        (subject.clone(), role).prop_map(|(subject, role)| Edit::Assign {
            realm: REALM.into(),
            subject,
            role
        }),
        subject.prop_map(|subject| Edit::Unassign {
            realm: REALM.into(),
            subject
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// When no conflict is reported, every change of either side holds in the result.
    #[test]
    fn without_conflicts_both_sides_changes_hold(
        prefix in prop::collection::vec(edit_strategy(), 0..4),
        mine in prop::collection::vec(edit_strategy(), 1..6),
        theirs in prop::collection::vec(edit_strategy(), 1..6),
    ) {
        let base = apply(FIXTURE, &prefix);
        let ours = apply(&base, &mine);
        let their_text = apply(&base, &theirs);
        let read = |text: &str| things(&policy::load(text, 0).unwrap().policy);
        let (b, o, t) = (read(&base), read(&ours), read(&their_text));
        let out = rebase(&base, &ours, &their_text, &Resolutions::new());
        let out = match out {
            Ok(out) => out,
            Err(e) => return Err(TestCaseError::fail(format!("refused: {e}"))),
        };
        if !out.is_clean() {
            // Every conflict names something both sides touched.
            for conflict in &out.conflicts {
                prop_assert!(
                    o.iter().chain(b.iter()).chain(t.iter()).any(|(k, _)| k.to_string().contains(&conflict.what) || conflict.what.contains(&k.to_string()))
                        || conflict.thing == Thing::CaChain,
                    "{conflict}"
                );
            }
            return Ok(());
        }
        let r = read(&out.text);
        let keys: std::collections::BTreeSet<&Thing> = b.keys().chain(o.keys()).chain(t.keys()).collect();
        for k in keys {
            if o.get(k) != b.get(k) {
                prop_assert_eq!(r.get(k), o.get(k), "my change to {} lost\nresult:\n{}", k, out.text);
            }
            if t.get(k) != b.get(k) {
                prop_assert_eq!(r.get(k), t.get(k), "their change to {} lost\nresult:\n{}", k, out.text);
            }
            if o.get(k) == b.get(k) && t.get(k) == b.get(k) {
                prop_assert_eq!(r.get(k), b.get(k), "{} changed by nobody, yet changed", k);
            }
        }
    }

    /// Rebasing onto an unchanged upstream gives our text back, byte for byte.
    #[test]
    fn onto_an_unchanged_base_the_rebase_is_ours(mine in prop::collection::vec(edit_strategy(), 1..6)) {
        let ours = apply(FIXTURE, &mine);
        let out = rebase(FIXTURE, &ours, FIXTURE, &Resolutions::new()).unwrap();
        prop_assert!(out.is_clean());
        prop_assert_eq!(out.text, ours);
    }
}

// --- git: a bare remote, the operator's clone and a teammate's clone ---------------------------

struct Remote {
    dir: tempfile::TempDir,
    bare: PathBuf,
}

impl Remote {
    fn new() -> Remote {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("origin.git");
        gitops::init_bare_with_file(&bare, "clients.toml", FIXTURE, "demo policy").unwrap();
        Remote { dir, bare }
    }

    fn clone(&self, name: &str, author: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        gitops::clone(self.bare.to_str().unwrap(), &path).unwrap();
        let repo = git2::Repository::open(&path).unwrap();
        let mut config = repo.config().unwrap();
        config.set_str("user.name", author).unwrap();
        config
            .set_str(
                "user.email",
                &format!("{}@example.com", author.to_lowercase()),
            )
            .unwrap();
        path
    }

    fn text(&self) -> String {
        gitops::read_branch_file(&self.bare, "main", Path::new("clients.toml"))
            .unwrap()
            .0
    }
}

fn commit_edit(clone: &Path, edits: &[Edit], message: &str) {
    let file = clone.join("clients.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, apply(&text, edits)).unwrap();
    gitops::commit_file(clone, Path::new("clients.toml"), message).unwrap();
}

fn grant(identity: &str, resource: &str, operation: &str) -> Edit {
    Edit::Grant {
        identity: identity.into(),
        resource: resource.into(),
        operation: operation.into(),
    }
}

fn ttl(identity: &str, seconds: i64) -> Edit {
    Edit::SetSetting {
        identity: identity.into(),
        setting: Setting::AuthorizationTokenDuration,
        value: Some(seconds),
    }
}

fn head(clone: &Path) -> String {
    git2::Repository::open(clone)
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap()
        .to_string()
}

#[test]
fn push_replays_each_local_commit_onto_the_teammates_work() {
    let remote = Remote::new();
    let mine = remote.clone("mine", "Mine");
    let teammate = remote.clone("teammate", "Teammate");
    commit_edit(&teammate, &[grant(OPS, "audit", "read")], "ops reads audit");
    gitops::push(&teammate, "origin", "main").unwrap();
    // Two local commits; the second edits the line next to the teammate's change region.
    commit_edit(
        &mine,
        &[grant(ALICE, "billing", "read")],
        "alice reads billing",
    );
    commit_edit(
        &mine,
        &[grant(OPS, "production_api", "write")],
        "ops writes production",
    );
    let outcome = gitops::push_reconciling(&mine, Path::new("clients.toml")).unwrap();
    assert!(
        matches!(outcome, PushOutcome::Rebased { commits: 2, .. }),
        "{outcome:?}"
    );
    let text = remote.text();
    let ops = policy::load(&text, 0).unwrap().policy;
    let ops = ops.client(OPS).unwrap();
    assert_eq!(ops.resource("audit").unwrap().operations, ["read"]);
    assert_eq!(
        ops.resource("production_api").unwrap().operations,
        ["read", "write"]
    );
    // The working file is the rebased text, and each commit kept its message and author.
    assert_eq!(
        std::fs::read_to_string(mine.join("clients.toml")).unwrap(),
        text
    );
    let repo = git2::Repository::open(&mine).unwrap();
    let tip = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(tip.message().unwrap(), "ops writes production");
    assert_eq!(tip.author().name().unwrap(), "Mine");
    let parent = tip.parent(0).unwrap();
    assert_eq!(parent.message().unwrap(), "alice reads billing");
    assert_eq!(
        parent.parent(0).unwrap().message().unwrap(),
        "ops reads audit"
    );
}

#[test]
fn a_conflicting_push_changes_nothing_and_resolves_either_way() {
    let remote = Remote::new();
    let mine = remote.clone("mine", "Mine");
    let teammate = remote.clone("teammate", "Teammate");
    commit_edit(&teammate, &[ttl(ALICE, 600)], "alice 600");
    gitops::push(&teammate, "origin", "main").unwrap();
    commit_edit(&mine, &[ttl(ALICE, 300)], "alice 300");
    let before = head(&mine);
    let working = std::fs::read_to_string(mine.join("clients.toml")).unwrap();
    let err = gitops::push_reconciling(&mine, Path::new("clients.toml")).unwrap_err();
    let GitError::PolicyConflict { conflicts, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(
        (conflicts[0].mine.as_str(), conflicts[0].theirs.as_str()),
        ("300", "600")
    );
    assert!(
        err.to_string().contains(&format!(
            "authorization_token_duration of {ALICE}: changed on both sides"
        )),
        "{err}"
    );
    assert_eq!(head(&mine), before, "the branch moved");
    assert_eq!(
        std::fs::read_to_string(mine.join("clients.toml")).unwrap(),
        working
    );
    assert!(remote.text().contains("authorization_token_duration = 600"));
    let mine_wins = Resolutions::from([(conflicts[0].thing.clone(), Side::Mine)]);
    gitops::push_resolving(&mine, Path::new("clients.toml"), &mine_wins, &|_| {}).unwrap();
    assert!(remote.text().contains("authorization_token_duration = 300"));
}

#[test]
fn reset_to_upstream_keeps_the_local_work_in_recovery() {
    let remote = Remote::new();
    let mine = remote.clone("mine", "Mine");
    let teammate = remote.clone("teammate", "Teammate");
    commit_edit(&teammate, &[ttl(ALICE, 600)], "alice 600");
    gitops::push(&teammate, "origin", "main").unwrap();
    commit_edit(&mine, &[ttl(ALICE, 300)], "alice 300");
    gitops::fetch(&mine).unwrap();
    let recovery = remote.dir.path().join("state/recovery");
    let outcome = gitops::reset_to_upstream(&mine, Path::new("clients.toml"), &recovery).unwrap();
    assert_eq!(outcome.commits, 1);
    assert!(outcome.kept_in.starts_with(&recovery));
    let listing = std::fs::read_to_string(outcome.kept_in.join("commits.txt")).unwrap();
    assert!(listing.contains("alice 300"), "{listing}");
    let kept: Vec<String> = std::fs::read_dir(&outcome.kept_in)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter()
            .any(|n| n.ends_with(".clients.toml") && n.starts_with("01-")),
        "{kept:?}"
    );
    let kept_text = std::fs::read_to_string(outcome.kept_in.join("working.clients.toml")).unwrap();
    assert!(kept_text.contains("authorization_token_duration = 300"));
    assert_eq!(head(&mine), head(&teammate));
    assert!(
        std::fs::read_to_string(mine.join("clients.toml"))
            .unwrap()
            .contains("authorization_token_duration = 600")
    );
}

#[test]
fn the_cli_reports_push_conflicts_and_leaves_the_repository_as_it_was() {
    let remote = Remote::new();
    let mine = remote.clone("mine", "Mine");
    let teammate = remote.clone("teammate", "Teammate");
    commit_edit(
        &teammate,
        &[ttl(ALICE, 600), grant(OPS, "audit", "read")],
        "teammate",
    );
    gitops::push(&teammate, "origin", "main").unwrap();
    commit_edit(&mine, &[ttl(ALICE, 300)], "alice 300");
    let before = head(&mine);
    let run = |json: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hessra-console"));
        command.current_dir(&mine).args(["policy", "push"]);
        if json {
            command.arg("--json");
        }
        command.output().unwrap()
    };
    let out = run(false);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("1 conflict(s)"), "{all}");
    assert!(all.contains(&format!("authorization_token_duration of {ALICE}: changed on both sides (was absent, mine 300, theirs 600)")), "{all}");
    assert!(all.contains("nothing was changed locally"), "{all}");
    let out = run(true);
    assert_ne!(out.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let conflicts = value["conflicts"]
        .as_array()
        .unwrap_or_else(|| panic!("{value}"));
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0]["mine"], "300");
    assert_eq!(conflicts[0]["theirs"], "600");
    assert_eq!(conflicts[0]["thing"]["thing"], "setting");
    assert_eq!(value["pushed"], false);
    assert_eq!(head(&mine), before);
    assert!(remote.text().contains("authorization_token_duration = 600"));
}

#[test]
fn the_cli_push_replays_a_clean_rebase() {
    let remote = Remote::new();
    let mine = remote.clone("mine", "Mine");
    let teammate = remote.clone("teammate", "Teammate");
    commit_edit(&teammate, &[grant(OPS, "audit", "read")], "teammate");
    gitops::push(&teammate, "origin", "main").unwrap();
    commit_edit(&mine, &[grant(ALICE, "billing", "read")], "mine");
    let out = Command::new(env!("CARGO_BIN_EXE_hessra-console"))
        .current_dir(&mine)
        .args(["policy", "push"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("replayed 1 commit(s)"), "{stdout}");
    let text = remote.text();
    assert!(
        things(&policy::load(&text, 0).unwrap().policy).contains_key(&Thing::Grant {
            identity: OPS.into(),
            resource: "audit".into(),
            operation: "read".into()
        })
    );
    assert!(text.contains("billing"));
}

/// A role removed after a subject was assigned to it leaves the assignment dangling (the editor
/// allows it; validation reports it). Rebased, the dangling assignment is replayed as it was
/// made, not reported as a change that no longer applies.
#[test]
fn a_dangling_assignment_is_replayed_as_made() {
    let mine = vec![
        Edit::AddRole {
            realm: REALM.into(),
            role: "auditor".into(),
        },
        Edit::Assign {
            realm: REALM.into(),
            subject: "uri:urn:mycompany:admin-user".into(),
            role: "auditor".into(),
        },
        Edit::RemoveRole {
            realm: REALM.into(),
            role: "auditor".into(),
        },
    ];
    let ours = apply(FIXTURE, &mine);
    assert!(ours.contains("role = \"auditor\""), "{ours}");
    let out = rebase(FIXTURE, &ours, FIXTURE, &Resolutions::new()).unwrap();
    assert!(out.is_clean(), "{:?}", out.conflicts);
    assert_eq!(out.text, ours);
    // Onto an upstream that changed something else, it is replayed too.
    let theirs = apply(
        FIXTURE,
        &[Edit::Grant {
            identity: OPS.into(),
            resource: "billing".into(),
            operation: "read".into(),
        }],
    );
    let out = rebase(FIXTURE, &ours, &theirs, &Resolutions::new()).unwrap();
    assert!(out.is_clean(), "{:?}", out.conflicts);
    assert!(out.text.contains("role = \"auditor\""), "{}", out.text);
    assert!(out.text.contains("billing"), "{}", out.text);
}

/// They removed a realm's domain (the client removed and added back bare); we added a role to
/// it. That is a conflict naming the domain, not a role quietly bringing the domain back; either
/// resolution is honoured.
#[test]
fn a_role_added_to_a_domain_they_removed_is_a_conflict() {
    let ours = apply(
        FIXTURE,
        &[Edit::AddRole {
            realm: REALM.into(),
            role: "auditor".into(),
        }],
    );
    let bare = [
        Edit::RemoveClient {
            identity: REALM.into(),
        },
        Edit::AddClient {
            identity: REALM.into(),
        },
    ];
    let theirs = apply(FIXTURE, &bare);
    let out = rebase(FIXTURE, &ours, &theirs, &Resolutions::new()).unwrap();
    assert_eq!(out.conflicts.len(), 1, "{:?}", out.conflicts);
    let conflict = &out.conflicts[0];
    assert_eq!(
        conflict.thing,
        Thing::Realm {
            identity: REALM.into()
        }
    );
    assert_eq!(conflict.kind, ConflictKind::TheyRemoved);

    let mut keep_theirs = Resolutions::new();
    keep_theirs.insert(conflict.thing.clone(), Side::Theirs);
    let out = rebase(FIXTURE, &ours, &theirs, &keep_theirs).unwrap();
    assert!(out.is_clean(), "{:?}", out.conflicts);
    assert_eq!(out.text, theirs);

    let mut keep_mine = Resolutions::new();
    keep_mine.insert(conflict.thing.clone(), Side::Mine);
    let out = rebase(FIXTURE, &ours, &theirs, &keep_mine).unwrap();
    assert!(out.is_clean(), "{:?}", out.conflicts);
    let r = things(&policy::load(&out.text, 0).unwrap().policy);
    assert!(r.contains_key(&Thing::Role {
        realm: REALM.into(),
        role: "auditor".into()
    }));
}
