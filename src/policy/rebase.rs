//! Semantic rebase of `clients.toml` (and `revocations.toml`): when the file moved on under a
//! set of local edits, the local edits are replayed as operations on the new version instead of
//! merging text.
//!
//! The policy is read as a set of *things* (a client, one grant of one operation, a setting, a
//! role, an assignment, a service chain, …), each with a value or absent. Our operations are the
//! things that differ between `base` (what we started from) and `ours`; each is replayed onto
//! `theirs` (the new version) through [`PolicyDocument::apply`], so every byte of `theirs` that no
//! operation touches (comments, ordering, quoting) stays as it was. For each of our changes:
//!
//! - `theirs` already has our value: nothing to do (both made the same change);
//! - `theirs` still has the base value: the operation is replayed;
//! - `theirs` changed it to something else: a [`Conflict`] (the same thing changed both ways);
//! - the operation no longer applies (a grant to a client they removed, an assignment to a role
//!   they removed): a [`Conflict`] too.
//!
//! Removing a client or a role is one operation over everything inside it: when one side removed
//! it and the other changed something inside, that is one conflict on the client (or role).
//!
//! Each conflict is resolved [`Side::Mine`] or [`Side::Theirs`] by the caller (who reruns
//! [`rebase`] with the resolutions), or the whole rebase is abandoned: the functions here only
//! compute text, they change nothing.
//!
//! After the replay the result is read back and checked thing by thing against what was decided
//! (ours where ours was taken, theirs elsewhere). A change the editor's operations cannot express
//! (a signer's operations, an identifier type other than `san_uri`, removing a default role) fails
//! that check and the rebase is refused with [`RebaseError::Unreplayable`], naming it: a rebase
//! never silently loses or invents a change.
//!
//! Non-semantic changes of ours (comments, formatting) are not operations. When git's three-way
//! text merge of the three versions is clean *and* reads to exactly the policy the replay gives,
//! the merged text is used, so they are carried; otherwise the replay is used and
//! [`Formatting::Dropped`] says so.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::document::{Edit, PolicyDocument, Setting};
use super::model::Policy;
use super::revocations::{self, RevocationList};
use super::{Finding, load};

/// Which role of a realm: its default role (whatever it is named) or a named role.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleRef {
    Default,
    Named(String),
}

/// One thing of the policy that has a value (or is absent). The variant order is the order
/// operations are replayed in: what holds things (a client, a role) before what it holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "thing")]
pub enum Thing {
    CaChain,
    Client {
        identity: String,
    },
    Realm {
        identity: String,
    },
    IdentityTokens {
        identity: String,
    },
    Setting {
        identity: String,
        setting: String,
    },
    DefaultRole {
        realm: String,
    },
    Role {
        realm: String,
        role: String,
    },
    Grant {
        identity: String,
        resource: String,
        operation: String,
    },
    ServiceChain {
        identity: String,
        resource: String,
    },
    Signers {
        identity: String,
        resource: String,
    },
    RoleGrant {
        realm: String,
        role: RoleRef,
        resource: String,
        operation: String,
    },
    Assignment {
        realm: String,
        subject: String,
    },
}

impl Thing {
    /// The thing that holds this one (removing it removes this one too).
    fn parent(&self) -> Option<Thing> {
        let client = |identity: &str| {
            Some(Thing::Client {
                identity: identity.to_string(),
            })
        };
        // A realm's roles and assignments live in its domain: removing the domain (they
        // removed the client and added it back bare) removes them.
        let domain = |realm: &str| {
            Some(Thing::Realm {
                identity: realm.to_string(),
            })
        };
        match self {
            Thing::CaChain | Thing::Client { .. } => None,
            Thing::Realm { identity }
            | Thing::IdentityTokens { identity }
            | Thing::Setting { identity, .. }
            | Thing::Grant { identity, .. }
            | Thing::ServiceChain { identity, .. }
            | Thing::Signers { identity, .. } => client(identity),
            Thing::DefaultRole { realm }
            | Thing::Role { realm, .. }
            | Thing::Assignment { realm, .. } => domain(realm),
            Thing::RoleGrant {
                realm,
                role: RoleRef::Named(role),
                ..
            } => Some(Thing::Role {
                realm: realm.clone(),
                role: role.clone(),
            }),
            Thing::RoleGrant { realm, .. } => domain(realm),
        }
    }

    /// True when `self` is `holder` or lies inside it.
    fn within(&self, holder: &Thing) -> bool {
        let mut current = Some(self.clone());
        while let Some(thing) = current {
            if &thing == holder {
                return true;
            }
            current = thing.parent();
        }
        false
    }

    fn is_holder(&self) -> bool {
        matches!(
            self,
            Thing::Client { .. } | Thing::Realm { .. } | Thing::Role { .. }
        )
    }
}

impl fmt::Display for Thing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Thing::CaChain => write!(f, "the CA chain ([cacerts] cert_chain)"),
            Thing::Client { identity } => write!(f, "client {identity}"),
            Thing::Realm { identity } => write!(f, "the domain (realm) of {identity}"),
            Thing::IdentityTokens { identity } => write!(f, "identity tokens of {identity}"),
            Thing::Setting { identity, setting } => write!(f, "{setting} of {identity}"),
            Thing::DefaultRole { realm } => write!(f, "the default role of realm {realm}"),
            Thing::Role { realm, role } => write!(f, "role {role} of realm {realm}"),
            Thing::Grant {
                identity,
                resource,
                operation,
            } => write!(f, "{operation} on {resource} for {identity}"),
            Thing::ServiceChain { identity, resource } => {
                write!(f, "the service chain of {resource} for {identity}")
            }
            Thing::Signers { identity, resource } => {
                write!(f, "the signers of {resource} for {identity}")
            }
            Thing::RoleGrant {
                realm,
                role,
                resource,
                operation,
            } => match role {
                RoleRef::Default => write!(
                    f,
                    "{operation} on {resource} for the default role of realm {realm}"
                ),
                RoleRef::Named(role) => {
                    write!(
                        f,
                        "{operation} on {resource} for role {role} of realm {realm}"
                    )
                }
            },
            Thing::Assignment { realm, subject } => {
                write!(f, "the role of {subject} in realm {realm}")
            }
        }
    }
}

/// A signer as the rebase compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerValue {
    pub component: String,
    pub authorization_service: String,
    pub public_key: String,
    pub operations: Vec<String>,
}

/// The value of a thing that is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Present, with nothing more to say (a grant, a role, a realm).
    Present,
    /// A client, with its identifier type.
    Client(String),
    Bool(bool),
    Int(i64),
    Text(String),
    Tokens {
        enabled: bool,
        duration: Option<u64>,
    },
    Nodes(Vec<(String, String)>),
    Signers(Vec<SignerValue>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Present => write!(f, "present"),
            Value::Client(kind) => write!(f, "present ({kind})"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Text(text) if text.len() > 48 => {
                let head: String = text.chars().take(40).collect();
                write!(f, "{:?}… ({} bytes)", head, text.len())
            }
            Value::Text(text) => write!(f, "{text}"),
            Value::Tokens { enabled, duration } => match (enabled, duration) {
                (false, _) => write!(f, "disabled"),
                (true, None) => write!(f, "enabled (default cap)"),
                (true, Some(d)) => write!(f, "enabled, cap {d}s"),
            },
            Value::Nodes(nodes) => {
                let names: Vec<String> = nodes
                    .iter()
                    .map(|(component, key)| format!("{component} ({})", short_key(key)))
                    .collect();
                write!(f, "{}", names.join(" → "))
            }
            Value::Signers(signers) => {
                let names: Vec<String> = signers
                    .iter()
                    .map(|s| format!("{} ({})", s.component, short_key(&s.public_key)))
                    .collect();
                write!(f, "{}", names.join(", "))
            }
        }
    }
}

fn short_key(key: &str) -> String {
    let head: String = key.chars().take(12).collect();
    if key.chars().count() > 12 {
        format!("{head}…")
    } else {
        head
    }
}

/// How a value reads to a person: absent things read "absent".
pub fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "absent".to_string(), Value::to_string)
}

/// Every thing of a policy with its value. Absent things (and settings at their defaults) are
/// not in the map.
pub type Things = BTreeMap<Thing, Value>;

/// The things of a policy. Where a file names a client twice (an error the validator reports),
/// the first entry is the one read, as everywhere else.
pub fn things(policy: &Policy) -> Things {
    let mut out = Things::new();
    if let Some(ca) = &policy.ca_chain {
        out.insert(Thing::CaChain, Value::Text(ca.pem.clone()));
    }
    let mut seen = BTreeSet::new();
    for client in &policy.clients {
        if !seen.insert(client.identity.clone()) {
            continue;
        }
        let id = client.identity.clone();
        out.insert(
            Thing::Client {
                identity: id.clone(),
            },
            Value::Client(client.identifier_type.clone()),
        );
        if client.identity_token_enabled || client.identity_token_duration.is_some() {
            out.insert(
                Thing::IdentityTokens {
                    identity: id.clone(),
                },
                Value::Tokens {
                    enabled: client.identity_token_enabled,
                    duration: client.identity_token_duration,
                },
            );
        }
        let setting = |s: Setting| Thing::Setting {
            identity: id.clone(),
            setting: s.key().to_string(),
        };
        if !client.delegatable {
            out.insert(setting(Setting::Delegatable), Value::Bool(false));
        }
        if client.operator {
            out.insert(setting(Setting::Operator), Value::Bool(true));
        }
        if let Some(d) = client.authorization_token_duration {
            out.insert(
                setting(Setting::AuthorizationTokenDuration),
                Value::Int(d as i64),
            );
        }
        if let Some(d) = client.max_delegation_depth {
            out.insert(
                setting(Setting::MaxDelegationDepth),
                Value::Int(i64::from(d)),
            );
        }
        for resource in &client.resources {
            for operation in &resource.operations {
                out.insert(
                    Thing::Grant {
                        identity: id.clone(),
                        resource: resource.name.clone(),
                        operation: operation.clone(),
                    },
                    Value::Present,
                );
            }
            let at = || (id.clone(), resource.name.clone());
            if !resource.service_chain.is_empty() {
                let (identity, resource_name) = at();
                out.entry(Thing::ServiceChain {
                    identity,
                    resource: resource_name,
                })
                .or_insert_with(|| {
                    Value::Nodes(
                        resource
                            .service_chain
                            .iter()
                            .map(|n| (n.component.clone(), n.public_key.clone()))
                            .collect(),
                    )
                });
            }
            if !resource.signers.is_empty() {
                let (identity, resource_name) = at();
                out.entry(Thing::Signers {
                    identity,
                    resource: resource_name,
                })
                .or_insert_with(|| {
                    Value::Signers(
                        resource
                            .signers
                            .iter()
                            .map(|s| SignerValue {
                                component: s.component.clone(),
                                authorization_service: s.authorization_service.clone(),
                                public_key: s.public_key.clone(),
                                operations: s.operations.clone(),
                            })
                            .collect(),
                    )
                });
            }
        }
        let Some(domain) = &client.domain else {
            continue;
        };
        out.insert(
            Thing::Realm {
                identity: id.clone(),
            },
            Value::Present,
        );
        let role_grants = |out: &mut Things, role: RoleRef, resources: &[super::Resource]| {
            for resource in resources {
                for operation in &resource.operations {
                    out.insert(
                        Thing::RoleGrant {
                            realm: id.clone(),
                            role: role.clone(),
                            resource: resource.name.clone(),
                            operation: operation.clone(),
                        },
                        Value::Present,
                    );
                }
            }
        };
        if let Some(default) = &domain.default_role {
            out.insert(
                Thing::DefaultRole { realm: id.clone() },
                Value::Text(default.name.clone()),
            );
            role_grants(&mut out, RoleRef::Default, &default.resources);
        }
        for role in &domain.roles {
            let key = Thing::Role {
                realm: id.clone(),
                role: role.name.clone(),
            };
            if out.contains_key(&key) {
                continue;
            }
            out.insert(key, Value::Present);
            role_grants(&mut out, RoleRef::Named(role.name.clone()), &role.resources);
        }
        for assignment in &domain.role_assignments {
            out.entry(Thing::Assignment {
                realm: id.clone(),
                subject: assignment.subject.clone(),
            })
            .or_insert_with(|| Value::Text(assignment.role.clone()));
        }
    }
    out
}

/// Which side a conflict is resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Mine,
    Theirs,
}

/// How each conflict (named by its thing) is resolved.
pub type Resolutions = BTreeMap<Thing, Side>;

/// Why a conflict is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum ConflictKind {
    /// Both sides changed it, to different values.
    BothChanged,
    /// You removed it; they changed something inside it.
    YouRemoved,
    /// They removed it; you changed something inside it.
    TheyRemoved,
    /// Your operation no longer applies to their version; the reason.
    NoLongerApplies(String),
}

/// One true conflict, shown semantically: the thing, and its value in each version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub thing: Thing,
    /// The thing as a person reads it ("read on orders for uri:urn:app").
    pub what: String,
    pub kind: ConflictKind,
    pub base: String,
    pub mine: String,
    pub theirs: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match &self.kind {
            ConflictKind::BothChanged => "changed on both sides".to_string(),
            ConflictKind::YouRemoved => "you removed it; they changed it".to_string(),
            ConflictKind::TheyRemoved => "they removed it; you changed it".to_string(),
            ConflictKind::NoLongerApplies(why) => format!("your change no longer applies: {why}"),
        };
        write!(
            f,
            "{}: {why} (was {}, mine {}, theirs {})",
            self.what, self.base, self.mine, self.theirs
        )
    }
}

/// What happened to our non-semantic changes (comments, formatting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Formatting {
    /// Ours had none: the result is the replay.
    None,
    /// Carried over by a clean text merge that reads to the same policy.
    Carried,
    /// Ours had some, and they could not be carried: only the operations were replayed.
    Dropped,
}

/// The outcome of a rebase that was not refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rebased {
    /// The rebased text. When `conflicts` is not empty it is only a preview (unresolved
    /// conflicts kept theirs) and must not be written.
    pub text: String,
    /// Our operations replayed (one per changed thing).
    pub replayed: usize,
    /// Our changes their version already had.
    pub already_there: usize,
    /// Conflicts without a resolution.
    pub conflicts: Vec<Conflict>,
    /// Conflicts resolved by the resolutions given.
    pub resolved: usize,
    pub formatting: Formatting,
}

impl Rebased {
    pub fn is_clean(&self) -> bool {
        self.conflicts.is_empty()
    }

    /// One line for a person: "replayed 2 edit(s) …".
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("{} edit(s) replayed", self.replayed)];
        if self.already_there > 0 {
            parts.push(format!("{} already there", self.already_there));
        }
        if self.resolved > 0 {
            parts.push(format!("{} conflict(s) resolved", self.resolved));
        }
        match self.formatting {
            Formatting::Carried => parts.push("comments and formatting carried".into()),
            Formatting::Dropped => parts.push(
                "your comment/formatting-only changes could not be carried and were dropped".into(),
            ),
            Formatting::None => {}
        }
        parts.join("; ")
    }
}

/// Why a rebase was refused. Nothing is computed or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebaseError {
    #[error("{which} version of the policy does not parse: {finding}")]
    Unreadable {
        which: &'static str,
        finding: String,
    },
    #[error(
        "cannot replay automatically (the editor's operations cannot express it): {}; rebase by hand",
        .0.join("; ")
    )]
    Unreplayable(Vec<String>),
    #[error("cannot keep your version of {what}: {why}")]
    CannotKeepMine { what: String, why: String },
}

fn read(text: &str, which: &'static str) -> Result<(PolicyDocument, Things), RebaseError> {
    let loaded = load(text, 0).map_err(|f: Finding| RebaseError::Unreadable {
        which,
        finding: f.to_string(),
    })?;
    Ok((loaded.document, things(&loaded.policy)))
}

/// Replays the changes `base` → `ours` onto `theirs`. Conflicts with a resolution in
/// `resolutions` are resolved that way; the others are returned (and the text is then only a
/// preview). Pure: reads the three texts, writes nothing.
pub fn rebase(
    base: &str,
    ours: &str,
    theirs: &str,
    resolutions: &Resolutions,
) -> Result<Rebased, RebaseError> {
    let (base_doc, base_things) = read(base, "the base")?;
    let (_, our_things) = read(ours, "your")?;
    let (their_doc, their_things) = read(theirs, "their")?;
    let (mut replay, result) = replay(
        &base_things,
        &our_things,
        their_doc,
        &their_things,
        resolutions,
    )?;
    // With conflicts left the text is only a preview: nothing more to carry.
    let Some(result) = result.filter(|_| base != ours) else {
        return Ok(replay);
    };
    // Our non-semantic changes: carried when a clean text merge reads to the same policy.
    if let Some(merged) = text_merge(base, ours, theirs)
        && let Ok(loaded) = load(&merged, 0)
        && things(&loaded.policy) == result
    {
        replay.text = merged;
        replay.formatting = Formatting::Carried;
        return Ok(replay);
    }
    let (alone, _) = self::replay(
        &base_things,
        &our_things,
        base_doc,
        &base_things,
        &Resolutions::new(),
    )?;
    replay.formatting = if alone.text == ours {
        Formatting::None
    } else {
        Formatting::Dropped
    };
    Ok(replay)
}

/// git's three-way text merge of the three versions; `None` when it conflicts.
pub fn text_merge(base: &str, ours: &str, theirs: &str) -> Option<String> {
    // git2 initialises libgit2 in most entry points but not in `merge_file`, which then fails
    // when it is the first call of the process; making a config object initialises it.
    git2::Config::new().ok()?;
    let mut ancestor = git2::MergeFileInput::new();
    ancestor.content(base.as_bytes());
    let mut mine = git2::MergeFileInput::new();
    mine.content(ours.as_bytes());
    let mut other = git2::MergeFileInput::new();
    other.content(theirs.as_bytes());
    let result = git2::merge_file(&ancestor, &mine, &other, None).ok()?;
    if !result.is_automergeable() {
        return None;
    }
    String::from_utf8(result.content().to_vec()).ok()
}

/// The replay proper: decides each changed thing, applies the operations to `doc` (their
/// document) and checks the result thing by thing. Returns the result's things too when no
/// conflict is left.
fn replay(
    base: &Things,
    ours: &Things,
    mut doc: PolicyDocument,
    theirs: &Things,
    resolutions: &Resolutions,
) -> Result<(Rebased, Option<Things>), RebaseError> {
    let all: BTreeSet<&Thing> = base
        .keys()
        .chain(ours.keys())
        .chain(theirs.keys())
        .collect();
    // What we changed, and the holders they removed that we kept (we may have changed inside).
    let changed: BTreeSet<&Thing> = all
        .iter()
        .copied()
        .filter(|k| {
            base.get(*k) != ours.get(*k)
                || (k.is_holder() && base.contains_key(*k) && !theirs.contains_key(*k))
        })
        .collect();
    let mut expected = theirs.clone();
    let mut outcome = Rebased {
        text: String::new(),
        replayed: 0,
        already_there: 0,
        conflicts: Vec::new(),
        resolved: 0,
        formatting: Formatting::None,
    };
    let mut defaults: HashMap<String, String> = theirs
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (Thing::DefaultRole { realm }, Value::Text(name)) => {
                Some((realm.clone(), name.clone()))
            }
            _ => None,
        })
        .collect();
    // Holders (clients, roles) one side removed: decided as a whole.
    let mut collapsed: Vec<Thing> = Vec::new();
    let mut replays: Vec<Thing> = Vec::new();
    for thing in changed.iter().copied() {
        if collapsed.iter().any(|holder| thing.within(holder)) {
            continue;
        }
        let (b, o, t) = (base.get(thing), ours.get(thing), theirs.get(thing));
        if thing.is_holder() && b.is_some() {
            let inside = |side: &Things| {
                all.iter()
                    .filter(|k| k.within(thing))
                    .any(|k| side.get(*k) != base.get(*k))
            };
            if o.is_none() {
                // We removed it.
                collapsed.push(thing.clone());
                if t.is_none() {
                    outcome.already_there += 1;
                    continue;
                }
                if inside(theirs) {
                    let conflict = conflict(thing, ConflictKind::YouRemoved, b, o, t);
                    match resolutions.get(thing) {
                        None => outcome.conflicts.push(conflict),
                        Some(Side::Theirs) => outcome.resolved += 1,
                        Some(Side::Mine) => {
                            outcome.resolved += 1;
                            replays.push(thing.clone());
                        }
                    }
                } else {
                    replays.push(thing.clone());
                }
                continue;
            }
            if t.is_none() {
                // They removed it: a conflict when we changed something inside.
                collapsed.push(thing.clone());
                if !inside(ours) {
                    continue;
                }
                let conflict = conflict(thing, ConflictKind::TheyRemoved, b, o, t);
                match resolutions.get(thing) {
                    None => outcome.conflicts.push(conflict),
                    Some(Side::Theirs) => outcome.resolved += 1,
                    Some(Side::Mine) => {
                        outcome.resolved += 1;
                        replays.push(thing.clone());
                        replays.extend(
                            all.iter()
                                .filter(|k| {
                                    k.within(thing) && **k != thing && ours.contains_key(*k)
                                })
                                .map(|k| (*k).clone()),
                        );
                    }
                }
                continue;
            }
        }
        if t == o {
            outcome.already_there += 1;
            continue;
        }
        if t != b {
            match resolutions.get(thing) {
                None => outcome
                    .conflicts
                    .push(conflict(thing, ConflictKind::BothChanged, b, o, t)),
                Some(Side::Theirs) => outcome.resolved += 1,
                Some(Side::Mine) => {
                    outcome.resolved += 1;
                    replays.push(thing.clone());
                }
            }
            continue;
        }
        replays.push(thing.clone());
    }
    replays.sort();
    replays.dedup();
    // Clients rebuilt whole from ours (see below): what is inside them is done.
    let mut rebuilt: Vec<Thing> = Vec::new();
    // A removed holder takes everything inside it; a re-added one brings its contents.
    for thing in &replays {
        if rebuilt.iter().any(|client| thing.within(client)) {
            continue;
        }
        let target = ours.get(thing);
        let current = theirs.get(thing);
        if thing.is_holder() && target.is_none() {
            for inner in all.iter().filter(|k| k.within(thing)) {
                expected.remove(*inner);
            }
        }
        let (edits, mut failure) = match edits_for(thing, current, target, &defaults) {
            Ok(edits) => (edits, None),
            Err(Unexpressed::Inexpressible) => {
                // Inside a client they left alone, the client can be rebuilt as ours has it
                // (removing a realm's domain or default role has no operation of its own).
                let choice = resolutions.get(thing).copied();
                match rebuild(&mut doc, thing, base, ours, theirs, &all, choice == Some(Side::Mine)) {
                    Ok(client) => {
                        for inner in all.iter().filter(|k| k.within(&client)) {
                            set(&mut expected, inner, ours.get(*inner));
                        }
                        if choice.is_some() {
                            outcome.resolved += 1;
                        }
                        rebuilt.push(client);
                        outcome.replayed += 1;
                    }
                    Err(Some(client)) if choice == Some(Side::Theirs) => {
                        let _ = client;
                        outcome.resolved += 1;
                    }
                    Err(Some(client)) => outcome.conflicts.push(conflict(
                        thing,
                        ConflictKind::NoLongerApplies(format!(
                            "only rebuilding {client} as you have it makes this change, and they changed {client} too; mine rebuilds it as yours"
                        )),
                        base.get(thing),
                        target,
                        theirs.get(thing),
                    )),
                    // Left to the final check, which names it.
                    Err(None) => set(&mut expected, thing, target),
                }
                continue;
            }
            Err(Unexpressed::Missing(why)) => (Vec::new(), Some(why)),
        };
        let before = doc.clone();
        if failure.is_none() {
            failure = apply_all(&mut doc, &edits, target.is_none());
        }
        if failure.is_some()
            && let Some(dangling) = dangling_assignment(thing, target, ours)
        {
            doc = before.clone();
            if apply_all(&mut doc, &dangling, false).is_none() {
                failure = None;
            }
        }
        if let Some(why) = failure {
            doc = before;
            // An earlier operation may have made this change already (making a role the
            // default moves the old default among the roles): then it is done, not a conflict.
            // Read only on this path; the final check below still compares everything.
            let done = read(doc.text(), "the partly rebased")
                .is_ok_and(|(_, now)| now.get(thing) == target);
            if done {
                set(&mut expected, thing, target);
                outcome.already_there += 1;
                continue;
            }
            match resolutions.get(thing) {
                Some(Side::Theirs) => outcome.resolved += 1,
                Some(Side::Mine) => {
                    return Err(RebaseError::CannotKeepMine {
                        what: thing.to_string(),
                        why,
                    });
                }
                None => outcome.conflicts.push(conflict(
                    thing,
                    ConflictKind::NoLongerApplies(why),
                    base.get(thing),
                    target,
                    theirs.get(thing),
                )),
            }
            continue;
        }
        if let (Thing::DefaultRole { realm }, Some(Value::Text(name))) = (thing, target) {
            defaults.insert(realm.clone(), name.clone());
        }
        set(&mut expected, thing, target);
        if !edits.is_empty() {
            outcome.replayed += 1;
        }
    }
    outcome.text = doc.text().to_string();
    if !outcome.conflicts.is_empty() {
        return Ok((outcome, None));
    }
    let (_, result) = read(&outcome.text, "the rebased")?;
    let mismatches: Vec<String> = result
        .keys()
        .chain(expected.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| result.get(*k) != expected.get(*k))
        .map(|k| {
            format!(
                "{k} (should be {}, the replay gives {})",
                show(expected.get(k)),
                show(result.get(k))
            )
        })
        .collect();
    if !mismatches.is_empty() {
        return Err(RebaseError::Unreplayable(mismatches));
    }
    Ok((outcome, Some(result)))
}

/// Rebuilds the client holding `thing` from scratch as ours has it, when their version did not
/// change anything inside it (or `force`): the client it rebuilt. Otherwise `doc` is unchanged
/// and the error names the client when only their changes inside it stood in the way.
fn rebuild(
    doc: &mut PolicyDocument,
    thing: &Thing,
    base: &Things,
    ours: &Things,
    theirs: &Things,
    all: &BTreeSet<&Thing>,
    force: bool,
) -> Result<Thing, Option<String>> {
    let mut client = thing.clone();
    while let Some(parent) = client.parent() {
        client = parent;
    }
    let Thing::Client { identity } = &client else {
        return Err(None);
    };
    let inside: Vec<&Thing> = all.iter().copied().filter(|k| k.within(&client)).collect();
    if !ours.contains_key(&client) || !theirs.contains_key(&client) {
        return Err(None);
    }
    if !force && inside.iter().any(|k| theirs.get(*k) != base.get(*k)) {
        return Err(Some(identity.clone()));
    }
    let defaults: HashMap<String, String> = ours
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (Thing::DefaultRole { realm }, Value::Text(name)) if realm == identity => {
                Some((realm.clone(), name.clone()))
            }
            _ => None,
        })
        .collect();
    let mut edits = vec![
        Edit::RemoveClient {
            identity: identity.clone(),
        },
        Edit::AddClient {
            identity: identity.clone(),
        },
    ];
    for inner in inside.iter().filter(|k| **k != &client) {
        if let Some(value) = ours.get(*inner) {
            edits.extend(edits_for(inner, None, Some(value), &defaults).map_err(|_| None)?);
        }
    }
    let mut scratch = doc.clone();
    for edit in &edits {
        scratch.apply(edit).map_err(|_| None)?;
    }
    *doc = scratch;
    Ok(client)
}

fn set(map: &mut Things, thing: &Thing, value: Option<&Value>) {
    match value {
        Some(v) => map.insert(thing.clone(), v.clone()),
        None => map.remove(thing),
    };
}

fn conflict(
    thing: &Thing,
    kind: ConflictKind,
    base: Option<&Value>,
    mine: Option<&Value>,
    theirs: Option<&Value>,
) -> Conflict {
    Conflict {
        thing: thing.clone(),
        what: thing.to_string(),
        kind,
        base: show(base),
        mine: show(mine),
        theirs: show(theirs),
    }
}

/// Why no operations take a thing to a value.
enum Unexpressed {
    /// The editor's operations cannot express it (the final check names it).
    Inexpressible,
    /// Their version lacks what the operation needs (it no longer applies).
    Missing(String),
}

/// Applies `edits` in order; the first failure, if any (the document is then partly edited).
/// With `removing`, removing what is already gone (a revoke took the whole resource) is done.
fn apply_all(doc: &mut PolicyDocument, edits: &[Edit], removing: bool) -> Option<String> {
    for edit in edits {
        if let Err(e) = doc.apply(edit) {
            if removing && matches!(e, super::EditError::NotFound { .. }) {
                continue;
            }
            return Some(e.to_string());
        }
    }
    None
}

/// Our assignment to a role our version does not have (the role was removed after the
/// assignment, which validation reports but the editor allows), replayed the way it was made:
/// add the role, assign, remove the role. `None` for every other thing.
fn dangling_assignment(thing: &Thing, target: Option<&Value>, ours: &Things) -> Option<Vec<Edit>> {
    let (Thing::Assignment { realm, subject }, Some(Value::Text(role))) = (thing, target) else {
        return None;
    };
    let role_thing = Thing::Role {
        realm: realm.clone(),
        role: role.clone(),
    };
    let default = ours.get(&Thing::DefaultRole {
        realm: realm.clone(),
    });
    if ours.contains_key(&role_thing) || default == Some(&Value::Text(role.clone())) {
        return None;
    }
    let (realm, role) = (realm.clone(), role.clone());
    Some(vec![
        Edit::AddRole {
            realm: realm.clone(),
            role: role.clone(),
        },
        Edit::Assign {
            realm: realm.clone(),
            subject: subject.clone(),
            role: role.clone(),
        },
        Edit::RemoveRole { realm, role },
    ])
}

/// The editor operations that take `thing` from `current` to `target`.
fn edits_for(
    thing: &Thing,
    current: Option<&Value>,
    target: Option<&Value>,
    defaults: &HashMap<String, String>,
) -> Result<Vec<Edit>, Unexpressed> {
    let cannot = || Err(Unexpressed::Inexpressible);
    Ok(match (thing, target) {
        (Thing::CaChain, Some(Value::Text(pem))) => vec![Edit::SetCaChain { pem: pem.clone() }],
        (Thing::Client { identity }, Some(_)) => vec![Edit::AddClient {
            identity: identity.clone(),
        }],
        (Thing::Client { identity }, None) => vec![Edit::RemoveClient {
            identity: identity.clone(),
        }],
        // A realm comes with its roles; the final check catches a bare one.
        (Thing::Realm { .. }, Some(_)) => Vec::new(),
        (Thing::IdentityTokens { identity }, target) => {
            let (enabled, duration) = match target {
                Some(Value::Tokens { enabled, duration }) => (*enabled, *duration),
                _ => (false, None),
            };
            vec![Edit::SetIdentityTokens {
                identity: identity.clone(),
                enabled,
                duration,
            }]
        }
        (Thing::Setting { identity, setting }, target) => {
            let Some(setting) = Setting::from_key(setting) else {
                return cannot();
            };
            let value = match target {
                None => None,
                Some(Value::Bool(b)) => Some(i64::from(*b)),
                Some(Value::Int(n)) => Some(*n),
                Some(_) => return cannot(),
            };
            vec![Edit::SetSetting {
                identity: identity.clone(),
                setting,
                value,
            }]
        }
        (Thing::DefaultRole { realm }, Some(Value::Text(role))) => vec![Edit::SetDefaultRole {
            realm: realm.clone(),
            role: role.clone(),
        }],
        (Thing::Role { realm, role }, Some(_)) => vec![Edit::AddRole {
            realm: realm.clone(),
            role: role.clone(),
        }],
        (Thing::Role { realm, role }, None) => vec![Edit::RemoveRole {
            realm: realm.clone(),
            role: role.clone(),
        }],
        (
            Thing::Grant {
                identity,
                resource,
                operation,
            },
            target,
        ) => {
            let (identity, resource, operation) =
                (identity.clone(), resource.clone(), operation.clone());
            if target.is_some() {
                vec![Edit::Grant {
                    identity,
                    resource,
                    operation,
                }]
            } else {
                vec![Edit::Revoke {
                    identity,
                    resource,
                    operation,
                }]
            }
        }
        (Thing::ServiceChain { identity, resource }, target) => {
            let mut edits: Vec<Edit> = match current {
                Some(Value::Nodes(nodes)) => nodes
                    .iter()
                    .map(|(component, _)| Edit::RemoveServiceNode {
                        identity: identity.clone(),
                        resource: resource.clone(),
                        component: component.clone(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(Value::Nodes(nodes)) = target {
                edits.extend(nodes.iter().map(|(component, key)| Edit::AddServiceNode {
                    identity: identity.clone(),
                    resource: resource.clone(),
                    component: component.clone(),
                    public_key: key.clone(),
                }));
            }
            edits
        }
        (Thing::Signers { identity, resource }, target) => {
            let mut edits: Vec<Edit> = match current {
                Some(Value::Signers(signers)) => signers
                    .iter()
                    .map(|s| Edit::RemoveSigner {
                        identity: identity.clone(),
                        resource: resource.clone(),
                        component: s.component.clone(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(Value::Signers(signers)) = target {
                edits.extend(signers.iter().map(|s| Edit::AddSigner {
                    identity: identity.clone(),
                    resource: resource.clone(),
                    component: s.component.clone(),
                    authorization_service: s.authorization_service.clone(),
                    public_key: s.public_key.clone(),
                }));
            }
            edits
        }
        (
            Thing::RoleGrant {
                realm,
                role,
                resource,
                operation,
            },
            target,
        ) => {
            let role = match role {
                RoleRef::Named(name) => name.clone(),
                RoleRef::Default => match defaults.get(realm) {
                    Some(name) => name.clone(),
                    None => {
                        return Err(Unexpressed::Missing(format!(
                            "realm {realm} has no default role"
                        )));
                    }
                },
            };
            let (realm, resource, operation) = (realm.clone(), resource.clone(), operation.clone());
            if target.is_some() {
                vec![Edit::RoleGrant {
                    realm,
                    role,
                    resource,
                    operation,
                }]
            } else {
                vec![Edit::RoleRevoke {
                    realm,
                    role,
                    resource,
                    operation,
                }]
            }
        }
        (Thing::Assignment { realm, subject }, Some(Value::Text(role))) => vec![Edit::Assign {
            realm: realm.clone(),
            subject: subject.clone(),
            role: role.clone(),
        }],
        (Thing::Assignment { realm, subject }, None) => vec![Edit::Unassign {
            realm: realm.clone(),
            subject: subject.clone(),
        }],
        _ => return cannot(),
    })
}

// --- revocations.toml ---------------------------------------------------------------------------

/// The outcome of rebasing `revocations.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevocationsRebased {
    pub text: String,
    /// Our revocations added to theirs.
    pub added: usize,
    /// Ids we removed that their version still revokes: a revocation is never dropped by a
    /// rebase, so they stay revoked (say so to the operator).
    pub kept: Vec<String>,
}

/// Rebases `revocations.toml`: the union of both sides' entries, by id. A clean text merge that
/// reads to exactly the union is used as is; otherwise our new entries are appended to theirs.
/// Never drops a revocation; refuses a version with errors.
pub fn rebase_revocations(
    base: &str,
    ours: &str,
    theirs: &str,
) -> Result<RevocationsRebased, String> {
    let read = |text: &str, which: &str| {
        let (list, findings) = RevocationList::load(text);
        match findings.iter().find(|f| f.is_error()) {
            Some(error) => Err(format!("{which} {}: {error}", revocations::FILE)),
            None => Ok(list),
        }
    };
    let base_list = read(base, "the base")?;
    let our_list = read(ours, "your")?;
    let their_list = read(theirs, "their")?;
    let ids = |list: &RevocationList| -> BTreeSet<String> {
        list.entries.iter().map(|e| e.id.clone()).collect()
    };
    let (base_ids, our_ids, their_ids) = (ids(&base_list), ids(&our_list), ids(&their_list));
    let kept: Vec<String> = base_ids
        .difference(&our_ids)
        .filter(|id| their_ids.contains(*id))
        .cloned()
        .collect();
    let new: Vec<&revocations::Revoked> = our_list
        .entries
        .iter()
        .filter(|e| !their_ids.contains(&e.id))
        .collect();
    let union: BTreeSet<String> = their_ids.union(&our_ids).cloned().collect();
    if let Some(merged) = text_merge(base, ours, theirs)
        && let Ok(list) = read(&merged, "the merged")
        && ids(&list) == union
    {
        return Ok(RevocationsRebased {
            text: merged,
            added: new.len(),
            kept,
        });
    }
    let mut text = theirs.to_string();
    for entry in &new {
        text = revocations::append_entry(&text, entry)?;
    }
    Ok(RevocationsRebased {
        text,
        added: new.len(),
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../fixtures/clients.toml");
    const ALICE: &str = "uri:urn:company:alice";
    const OPS: &str = "uri:urn:company:ops";
    const REALM: &str = "uri:urn:mycompany";

    fn edit(text: &str, edits: &[Edit]) -> String {
        let mut doc = load(text, 0).unwrap().document;
        for e in edits {
            doc.apply(e).unwrap_or_else(|err| panic!("{e:?}: {err}"));
        }
        doc.text().to_string()
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

    fn clean(base: &str, ours: &str, theirs: &str) -> Rebased {
        let out = rebase(base, ours, theirs, &Resolutions::new()).unwrap();
        assert!(out.is_clean(), "{:#?}", out.conflicts);
        out
    }

    fn holds(text: &str, thing: &Thing) -> bool {
        things(&load(text, 0).unwrap().policy).contains_key(thing)
    }

    fn grant_thing(identity: &str, resource: &str, operation: &str) -> Thing {
        Thing::Grant {
            identity: identity.into(),
            resource: resource.into(),
            operation: operation.into(),
        }
    }

    #[test]
    fn independent_edits_both_hold_and_their_bytes_survive() {
        let theirs = edit(FIXTURE, &[grant(OPS, "audit", "read")]);
        let ours = edit(FIXTURE, &[grant(ALICE, "billing", "read"), ttl(ALICE, 600)]);
        let out = clean(FIXTURE, &ours, &theirs);
        assert!(holds(&out.text, &grant_thing(OPS, "audit", "read")));
        assert!(holds(&out.text, &grant_thing(ALICE, "billing", "read")));
        assert_eq!(out.replayed, 2);
        // Every comment of theirs is still there.
        for line in theirs.lines().filter(|l| l.starts_with('#')) {
            assert!(out.text.contains(line), "lost {line:?}");
        }
    }

    #[test]
    fn rebasing_onto_the_base_gives_ours_back() {
        let ours = edit(FIXTURE, &[grant(ALICE, "billing", "read")]);
        assert_eq!(clean(FIXTURE, &ours, FIXTURE).text, ours);
        assert_eq!(clean(FIXTURE, FIXTURE, &ours).text, ours);
    }

    #[test]
    fn the_same_change_on_both_sides_is_not_a_conflict() {
        let both = edit(FIXTURE, &[grant(ALICE, "billing", "read")]);
        let out = clean(FIXTURE, &both, &both);
        assert_eq!(out.text, both);
        assert_eq!((out.replayed, out.already_there), (0, 1));
    }

    #[test]
    fn the_same_setting_changed_two_ways_conflicts_and_resolves_either_way() {
        let ours = edit(FIXTURE, &[ttl(ALICE, 300)]);
        let theirs = edit(FIXTURE, &[ttl(ALICE, 600), grant(OPS, "audit", "read")]);
        let out = rebase(FIXTURE, &ours, &theirs, &Resolutions::new()).unwrap();
        assert_eq!(out.conflicts.len(), 1);
        let conflict = &out.conflicts[0];
        assert_eq!(conflict.kind, ConflictKind::BothChanged);
        assert_eq!(
            (
                conflict.base.as_str(),
                conflict.mine.as_str(),
                conflict.theirs.as_str()
            ),
            ("absent", "300", "600")
        );
        assert_eq!(
            conflict.to_string(),
            format!(
                "authorization_token_duration of {ALICE}: changed on both sides (was absent, mine 300, theirs 600)"
            )
        );
        let mine = Resolutions::from([(conflict.thing.clone(), Side::Mine)]);
        let out = rebase(FIXTURE, &ours, &theirs, &mine).unwrap();
        assert!(out.is_clean());
        assert!(out.text.contains("authorization_token_duration = 300"));
        assert!(holds(&out.text, &grant_thing(OPS, "audit", "read")));
        let keep = Resolutions::from([(conflict.thing.clone(), Side::Theirs)]);
        let out = rebase(FIXTURE, &ours, &theirs, &keep).unwrap();
        assert_eq!(out.text, theirs);
        assert_eq!(out.resolved, 1);
    }

    #[test]
    fn a_grant_to_a_client_they_removed_conflicts_and_mine_brings_it_back() {
        let theirs = edit(
            FIXTURE,
            &[Edit::RemoveClient {
                identity: OPS.into(),
            }],
        );
        let ours = edit(FIXTURE, &[grant(OPS, "audit", "read")]);
        let out = rebase(FIXTURE, &ours, &theirs, &Resolutions::new()).unwrap();
        assert_eq!(out.conflicts.len(), 1);
        assert_eq!(out.conflicts[0].kind, ConflictKind::TheyRemoved);
        assert_eq!(
            out.conflicts[0].thing,
            Thing::Client {
                identity: OPS.into()
            }
        );
        let mine = Resolutions::from([(out.conflicts[0].thing.clone(), Side::Mine)]);
        let out = rebase(FIXTURE, &ours, &theirs, &mine).unwrap();
        let policy = load(&out.text, 0).unwrap().policy;
        let ops = policy.client(OPS).expect("brought back");
        assert!(ops.operator);
        assert_eq!(ops.resource("audit").unwrap().operations, ["read"]);
        assert_eq!(ops.resource("production_api").unwrap().operations, ["read"]);
    }

    #[test]
    fn removing_a_client_they_changed_conflicts() {
        let theirs = edit(FIXTURE, &[grant(OPS, "audit", "read")]);
        let ours = edit(
            FIXTURE,
            &[Edit::RemoveClient {
                identity: OPS.into(),
            }],
        );
        let out = rebase(FIXTURE, &ours, &theirs, &Resolutions::new()).unwrap();
        assert_eq!(out.conflicts.len(), 1);
        assert_eq!(out.conflicts[0].kind, ConflictKind::YouRemoved);
        let mine = Resolutions::from([(out.conflicts[0].thing.clone(), Side::Mine)]);
        let out = rebase(FIXTURE, &ours, &theirs, &mine).unwrap();
        assert!(load(&out.text, 0).unwrap().policy.client(OPS).is_none());
        // Removed on one side, untouched on the other: just removed.
        let out = clean(FIXTURE, &ours, &edit(FIXTURE, &[grant(ALICE, "x", "read")]));
        assert!(load(&out.text, 0).unwrap().policy.client(OPS).is_none());
    }

    #[test]
    fn an_assignment_to_a_role_they_removed_no_longer_applies() {
        let theirs = edit(
            FIXTURE,
            &[
                Edit::Unassign {
                    realm: REALM.into(),
                    subject: "uri:urn:mycompany:admin-user".into(),
                },
                Edit::RemoveRole {
                    realm: REALM.into(),
                    role: "admin".into(),
                },
            ],
        );
        let ours = edit(
            FIXTURE,
            &[Edit::Assign {
                realm: REALM.into(),
                subject: "uri:urn:mycompany:bob".into(),
                role: "admin".into(),
            }],
        );
        let out = rebase(FIXTURE, &ours, &theirs, &Resolutions::new()).unwrap();
        assert_eq!(out.conflicts.len(), 1, "{:#?}", out.conflicts);
        assert!(matches!(
            out.conflicts[0].kind,
            ConflictKind::NoLongerApplies(_)
        ));
        let mine = Resolutions::from([(out.conflicts[0].thing.clone(), Side::Mine)]);
        assert!(matches!(
            rebase(FIXTURE, &ours, &theirs, &mine),
            Err(RebaseError::CannotKeepMine { .. })
        ));
        let keep = Resolutions::from([(out.conflicts[0].thing.clone(), Side::Theirs)]);
        assert_eq!(rebase(FIXTURE, &ours, &theirs, &keep).unwrap().text, theirs);
    }

    #[test]
    fn role_edits_and_the_default_role_replay() {
        let theirs = edit(FIXTURE, &[grant(OPS, "audit", "read")]);
        let ours = edit(
            FIXTURE,
            &[
                Edit::SetDefaultRole {
                    realm: REALM.into(),
                    role: "reader".into(),
                },
                Edit::RoleGrant {
                    realm: REALM.into(),
                    role: "reader".into(),
                    resource: "docs".into(),
                    operation: "read".into(),
                },
                Edit::AddRole {
                    realm: REALM.into(),
                    role: "auditor".into(),
                },
                Edit::Assign {
                    realm: REALM.into(),
                    subject: "uri:urn:mycompany:carol".into(),
                    role: "auditor".into(),
                },
            ],
        );
        let out = clean(FIXTURE, &ours, &theirs);
        let policy = load(&out.text, 0).unwrap().policy;
        let domain = policy.client(REALM).unwrap().domain.as_ref().unwrap();
        assert_eq!(domain.default_role.as_ref().unwrap().name, "reader");
        assert!(
            domain
                .role("reader")
                .unwrap()
                .resources
                .iter()
                .any(|r| r.name == "docs")
        );
        assert_eq!(
            domain.assignment("uri:urn:mycompany:carol").unwrap().role,
            "auditor"
        );
        assert!(holds(&out.text, &grant_thing(OPS, "audit", "read")));
    }

    #[test]
    fn a_client_recreated_bare_is_rebuilt_or_conflicts_when_they_changed_it() {
        let recreated = [
            Edit::RemoveClient {
                identity: REALM.into(),
            },
            Edit::AddClient {
                identity: REALM.into(),
            },
        ];
        let ours = edit(FIXTURE, &recreated);
        let theirs = edit(FIXTURE, &[grant(OPS, "audit", "read")]);
        let out = clean(FIXTURE, &ours, &theirs);
        let policy = load(&out.text, 0).unwrap().policy;
        assert!(policy.client(REALM).unwrap().domain.is_none());
        assert!(holds(&out.text, &grant_thing(OPS, "audit", "read")));
        // They changed the realm too: a conflict; mine rebuilds it as mine.
        let theirs = edit(FIXTURE, &[ttl(REALM, 600)]);
        let out = rebase(FIXTURE, &ours, &theirs, &Resolutions::new()).unwrap();
        assert!(!out.is_clean());
        let mine: Resolutions = out
            .conflicts
            .iter()
            .map(|c| (c.thing.clone(), Side::Mine))
            .collect();
        let out = rebase(FIXTURE, &ours, &theirs, &mine).unwrap();
        let realm = load(&out.text, 0).unwrap().policy;
        let realm = realm.client(REALM).unwrap();
        assert!(realm.domain.is_none());
        assert_eq!(realm.authorization_token_duration, None);
    }

    #[test]
    fn comments_of_ours_are_carried_when_the_text_merge_agrees() {
        let theirs = edit(FIXTURE, &[grant(OPS, "audit", "read")]);
        let ours = edit(FIXTURE, &[grant(ALICE, "billing", "read")]).replace(
            "# Alice runs the production API.",
            "# Alice runs the production API (on call).",
        );
        let out = clean(FIXTURE, &ours, &theirs);
        assert_eq!(out.formatting, Formatting::Carried);
        assert!(out.text.contains("(on call)"));
        assert!(holds(&out.text, &grant_thing(ALICE, "billing", "read")));
        assert!(holds(&out.text, &grant_thing(OPS, "audit", "read")));
    }

    #[test]
    fn comments_that_cannot_be_carried_are_reported_dropped() {
        let comment =
            "# The operations team: may read the authorization server's status and audit feed.";
        let theirs =
            edit(FIXTURE, &[grant(OPS, "audit", "read")]).replace(comment, "# Ops (theirs).");
        let ours =
            edit(FIXTURE, &[grant(ALICE, "billing", "read")]).replace(comment, "# Ops (mine).");
        let out = clean(FIXTURE, &ours, &theirs);
        assert_eq!(out.formatting, Formatting::Dropped);
        assert!(out.summary().contains("dropped"));
        assert!(out.text.contains("# Ops (theirs)."));
        assert!(holds(&out.text, &grant_thing(ALICE, "billing", "read")));
    }

    #[test]
    fn what_the_operations_cannot_express_is_refused_by_name() {
        let ours = FIXTURE.replace(
            "{ name = \"production_api\", operations = [\"read\"] },\n]\noperator = true",
            "{ name = \"production_api\", operations = [\"read\"], signers = [{ component = \"s\", authorization_service = \"a\", public_key = \"ed25519/00\", operations = [\"read\"] }] },\n]\noperator = true",
        );
        assert_ne!(ours, FIXTURE);
        let theirs = edit(FIXTURE, &[grant(ALICE, "x", "read")]);
        match rebase(FIXTURE, &ours, &theirs, &Resolutions::new()) {
            Err(RebaseError::Unreplayable(what)) => {
                assert!(
                    what[0].contains("the signers of production_api"),
                    "{what:?}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unparsable_version_is_refused() {
        let err = rebase(FIXTURE, "[[clients]\n", FIXTURE, &Resolutions::new()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("your version of the policy does not parse")
        );
    }

    const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const ID_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn revoke(text: &str, id: &str) -> String {
        revocations::append(
            text,
            &revocations::NewRevocation {
                id: id.into(),
                reason: "lost".into(),
                by: None,
                at: 1,
            },
        )
        .unwrap()
    }

    #[test]
    fn revocations_rebase_to_the_union_and_never_drop_one() {
        let base = revocations::HEADER.to_string();
        let ours = revoke(&base, ID_A);
        let theirs = revoke(&base, ID_B);
        let out = rebase_revocations(&base, &ours, &theirs).unwrap();
        let (list, findings) = RevocationList::load(&out.text);
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(list.len(), 2);
        assert!(out.text.starts_with(revocations::HEADER));
        assert_eq!(out.added, 1);
        // Removing one that their version still has keeps it, and says so.
        let out = rebase_revocations(&theirs, &base, &revoke(&theirs, ID_A)).unwrap();
        assert_eq!(RevocationList::load(&out.text).0.len(), 2);
        assert_eq!(out.kept.len(), 1);
    }
}
