//! Work the console never does on the UI thread: disk, git, network and token verification.
//! A `Job` is a request as data; `execute` does it and reports one or more `JobResult`s. The
//! worker pool runs jobs on threads; tests run them inline and wait for idle.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use super::disk::FileStamps;
use super::screens::changes::ChangesView;
use super::screens::delegations::TreeView;
use crate::client::Connection;
use crate::console::revocation_status::{self, RevocationLists};
use crate::fleet;
use crate::gitops::{self, CommitInfo, PushOutcome, RepoStatus};
use crate::policy::rebase::{Conflict, Rebased, Resolutions};
use crate::policy::{
    self, Change, DelegationTree, Edit, Finding, LoadedPolicy, NewRevocation, PolicyDiff,
    PolicyDocument, RevocationList, Revoked,
};
use crate::repo::{PolicyRepo, RepoError};
use crate::token::{self, Delegation, IdentityVerification};
use crate::token_store::TokenStore;
use crate::wire::{
    AuditEvent, AuditResponse, IdentityTokenRequest, IdentityTokenResponse, KeyChangeResponse,
    MessageResponse, PublicKeyResponse, TokenRequest, TokenResponse, VerifyTokenRequest,
};
/// What the server's `/status` says; the Server screen shows it.
pub use crate::wire::{ReloadFailure, ServerStatus};

/// How the console reaches a server: its URL, the CA that signed its certificate, and the
/// operator's client certificate and key (PEM, concatenated).
#[derive(Clone)]
pub struct ServerLink {
    pub url: String,
    pub ca_pem: Vec<u8>,
    pub operator_pem: Vec<u8>,
    /// Client certificates (PEM cert+key) by identity, for demo flows.
    pub demo_clients: Vec<(String, Vec<u8>)>,
}

/// What jobs work with.
#[derive(Clone)]
pub struct Env {
    pub policy_path: PathBuf,
    /// The git repository holding the policy, when it is in one.
    pub repo_root: Option<PathBuf>,
    pub server: Option<ServerLink>,
    pub token_store: Option<TokenStore>,
    pub runtime: tokio::runtime::Handle,
    /// The operator's connection, made once and reused.
    operator: Arc<Mutex<Option<Arc<Connection>>>>,
    /// Where unsaved edits are kept until they are saved (0600), if anywhere.
    pub recovery_path: Option<PathBuf>,
    /// The private root keys of a workspace whose key set is in the policy repository: key
    /// changes then edit the clone's `keys.toml` (committed and pushed like the policy), not
    /// the server.
    pub key_dir: Option<PathBuf>,
    /// The server's audit trail, which names live tokens a key retirement would cut off.
    pub audit_trail: Option<PathBuf>,
}

impl Env {
    pub fn new(
        policy_path: PathBuf,
        repo_root: Option<PathBuf>,
        server: Option<ServerLink>,
        token_store: Option<TokenStore>,
        runtime: tokio::runtime::Handle,
    ) -> Env {
        Env {
            policy_path,
            repo_root,
            server,
            token_store,
            runtime,
            operator: Arc::new(Mutex::new(None)),
            recovery_path: None,
            key_dir: None,
            audit_trail: None,
        }
    }

    /// The policy repository jobs commit to and write revocations in.
    pub fn repo(&self) -> PolicyRepo {
        PolicyRepo::new(self.policy_path.clone(), self.repo_root.clone())
    }

    fn relative_policy(&self) -> Option<(PathBuf, PathBuf)> {
        let repo = self.repo();
        let (root, relative) = repo.relative_policy().ok()?;
        Some((root.to_path_buf(), relative))
    }

    fn operator(&self) -> Result<Arc<Connection>, String> {
        let link = self.server.as_ref().ok_or("no server configured")?;
        let mut slot = self
            .operator
            .lock()
            .map_err(|_| "connection lock poisoned")?;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let connection = Arc::new(
            Connection::new(&link.url, 443, Some(&link.ca_pem), Some(&link.operator_pem))
                .map_err(|e| e.to_string())?,
        );
        *slot = Some(connection.clone());
        Ok(connection)
    }
}

/// What a policy read on a worker starts from.
#[derive(Debug, Clone)]
pub enum PolicyInput {
    /// Apply an edit to a copy of the document (cheap: it splices one client), then read it.
    /// Shared, so the console's record of the job in flight is not a second copy.
    Edit(Arc<PolicyDocument>, Edit),
    /// Read this text.
    Text(String),
}

/// Why a policy is being read, so the result lands in the right place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyPurpose {
    /// An edit; `errors_before` tells whether it introduced a problem; `select` is the client
    /// to select afterwards (an added or renamed one).
    Edit {
        describe: String,
        errors_before: usize,
        select: Option<String>,
    },
    Undo,
    Redo,
    /// The raw editor's text; `save` writes it once it is in.
    Replace {
        save: bool,
    },
    /// The file as read from disk.
    Open,
    /// The file as read at start-up: the first frame is drawn while it is read.
    Start,
    /// The file changed on disk and the buffer was unmodified: `why` is the flash.
    Reopen {
        why: String,
    },
    /// The buffer rebased onto the file that changed on disk (`disk`, the new base): installed
    /// as one undoable step; `why` is the flash.
    Rebased {
        disk: String,
        why: String,
    },
}

/// A policy read off the UI thread: the typed view, findings and the delegation tree, and the
/// views drawn from them (so installing an edit costs the UI thread next to nothing).
#[derive(Debug, Clone)]
pub struct Derived {
    pub loaded: LoadedPolicy,
    pub tree: DelegationTree,
    pub tree_view: TreeView,
    /// None when HEAD's policy is not known yet.
    pub changes: Option<ChangesView>,
}

/// What the views of a policy depend on besides the policy, as the screens had it when the work
/// was handed over: the Delegations filter and token chain, HEAD's policy and the feed's recent
/// requests. A view built from stale inputs is rebuilt on install.
#[derive(Debug, Clone, Default)]
pub struct ViewInputs {
    pub tree_filter: String,
    pub chain: Vec<String>,
    pub head: Option<Arc<policy::Policy>>,
    pub requests: Vec<policy::Request>,
}

/// A request for background work.
#[derive(Debug, Clone)]
pub enum Job {
    /// Write clients.toml (atomically), if the file on disk is still `expected` (the text the
    /// console loaded); otherwise nothing is written and `DiskChanged` says what is there.
    Save {
        text: String,
        expected: String,
    },
    /// Re-read clients.toml from disk.
    Reload,
    /// Branch, ahead/behind, the committed policy text and the text diff against it.
    GitStatus,
    /// Commit clients.toml, saving `save` to it first when given — only over the text the
    /// console loaded (`expected`), as `Save` does.
    Commit {
        message: String,
        save: Option<String>,
        expected: String,
    },
    Push,
    /// Push again after a conflict, with the operator's choices.
    PushResolved {
        resolutions: Resolutions,
    },
    /// Reset the branch to its upstream, keeping the local work in the recovery directory.
    ResetToUpstream,
    /// Poll the working files (size and mtime; the text when they moved).
    Watch {
        last: Option<FileStamps>,
    },
    /// Rebase unsaved edits onto the file that changed on disk.
    Rebase {
        base: String,
        ours: String,
        theirs: String,
        resolutions: Resolutions,
    },
    Pull,
    /// Fetch the branch's upstream in the background, so ahead/behind stays live.
    Fetch,
    /// Recent commits of the policy file, each with its semantic diff.
    History,
    /// The widening changes between two revisions, with their decision replay, and the
    /// review marks kept for the repository (the Review screen).
    ReviewRange {
        from: Option<String>,
        to: String,
    },
    /// Keep the review marks (in the repository's git directory).
    SaveReviewMarks {
        marks: Vec<crate::review::marks::ReviewMark>,
    },
    /// Write the review report for the changes since `since` to `path`.
    ExportReport {
        path: PathBuf,
        since: Option<String>,
        format: crate::review::report::Format,
        /// The audit trail (live file, its rotated files are read too) and the window, for
        /// unused access.
        audit: Option<(PathBuf, u64)>,
    },
    /// Read a policy text (HEAD's) into the typed model, off the UI thread.
    ParsePolicy {
        text: String,
    },
    /// Edit or replace the working policy and read the result (the slow part of an edit at
    /// 10,000 clients), off the UI thread.
    DerivePolicy {
        input: PolicyInput,
        purpose: PolicyPurpose,
        views: ViewInputs,
    },
    /// Keep unsaved edits where a later session can recover them (`None`: nothing unsaved).
    KeepUnsaved {
        text: Option<String>,
    },
    /// Keep the raw editor's unapplied text the same way (`None`: the editor is closed).
    KeepEditorText {
        text: Option<String>,
    },
    /// Append a revocation to revocations.toml beside the policy.
    Revoke {
        entry: NewRevocation,
    },
    ServerStatus,
    ServerAudit {
        after: u64,
    },
    ServerSync,
    /// Every replica of the repository's `fleet.toml`, asked for its status (nothing without
    /// a fleet file).
    FleetStatus,
    /// Ask every replica of the fleet to sync now (after a push).
    FleetNudge,
    /// The audit events of the fleet's other replicas (not the console's own server), each
    /// after its cursor: the merged feed.
    FleetAudit {
        cursors: Vec<(String, u64)>,
    },
    ServerPublicKey,
    /// Change the server's root key set through its operator endpoints.
    ChangeKey(KeyChange),
    LoadTokenFile {
        path: PathBuf,
    },
    ListStoredTokens,
    /// The entries of the directory a path prompt has typed so far (`dir` as typed, `~`
    /// unexpanded), for its pick-list.
    ListDirectory {
        dir: String,
    },
    LoadStoredToken {
        name: String,
    },
    /// `revocations.toml` at HEAD and in the working copy (and the server's list when
    /// connected), for the Tokens screen's per-block status.
    ReadRevocations,
    /// Copies through tmux or into a file (OSC 52 is the terminal loop's).
    Copy {
        what: String,
        text: String,
        to: super::clipboard::Clipboard,
        fallback: Option<PathBuf>,
    },
    /// The text diff of the working buffer (unsaved edits included) against HEAD's text.
    TextDiff {
        head: String,
        working: String,
    },
    /// Verify a token locally against root keys (PEM or key strings), and against every
    /// revocation list the console can read.
    Verify {
        token: String,
        roots: Vec<RootKeyText>,
        identity: Option<String>,
        domain: Option<String>,
    },
    /// Read the audit trail whose live file is `path` (its rotated files too) into usage.
    ReadUsage {
        path: PathBuf,
    },
    /// The unused access of the policy `text` under `usage` since `since`.
    MarkUnused {
        text: String,
        usage: Arc<policy::Usage>,
        since: i64,
    },
    /// The tightening proposal for the policy `text`: edits removing what `usage` shows unused
    /// since `since`, proved by replay.
    Tighten {
        text: String,
        usage: Arc<policy::Usage>,
        since: i64,
    },
    /// mTLS authenticate as `client` → delegate to `delegate_to` → request an authorization
    /// token for `resource`/`operation` → verify it at the server.
    DemoFlow {
        client: String,
        delegate_to: String,
        resource: String,
        operation: String,
    },
}

impl Job {
    /// What the spinner says while the job runs.
    pub fn describe(&self) -> &'static str {
        match self {
            Job::Save { .. } => "saving",
            Job::Reload => "reloading",
            Job::GitStatus => "reading git status",
            Job::Commit { .. } => "committing",
            Job::Push | Job::PushResolved { .. } => "pushing",
            Job::ResetToUpstream => "resetting to the upstream",
            Job::Watch { .. } => "watching the files",
            Job::Rebase { .. } => "rebasing your edits onto the file",
            Job::Pull => "pulling",
            Job::Fetch => "fetching",
            Job::History => "reading history",
            Job::ParsePolicy { .. } => "reading the committed policy",
            Job::Revoke { .. } => "writing revocations.toml",
            Job::KeepUnsaved { .. } | Job::KeepEditorText { .. } => "keeping unsaved edits",
            Job::DerivePolicy { .. } => "applying",
            Job::ServerStatus | Job::ServerAudit { .. } => "polling the server",
            Job::ServerSync => "asking the server to sync",
            Job::FleetStatus => "asking the fleet",
            Job::FleetNudge => "asking the fleet to sync",
            Job::FleetAudit { .. } => "reading the fleet's audit",
            Job::ServerPublicKey => "fetching the server's public key",
            Job::ChangeKey(change) => change.describe(),
            Job::LoadTokenFile { .. } | Job::LoadStoredToken { .. } => "loading the token",
            Job::ListStoredTokens => "listing stored tokens",
            Job::ListDirectory { .. } => "reading the directory",
            Job::Verify { .. } => "verifying",
            Job::ReadRevocations => "reading revocations.toml",
            Job::Copy { .. } => "copying",
            Job::TextDiff { .. } => "diffing",
            Job::ReviewRange { .. } => "reading the changes to review",
            Job::SaveReviewMarks { .. } => "keeping the review marks",
            Job::ExportReport { .. } => "writing the review report",
            Job::DemoFlow { .. } => "running the demo flow",
            Job::ReadUsage { .. } => "reading the audit trail",
            Job::MarkUnused { .. } => "marking unused access",
            Job::Tighten { .. } => "proposing a tightening",
        }
    }

    /// Background polls: not shown as user-visible work.
    pub fn is_poll(&self) -> bool {
        matches!(
            self,
            Job::ServerStatus
                | Job::FleetStatus
                | Job::FleetAudit { .. }
                | Job::ServerAudit { .. }
                | Job::KeepUnsaved { .. }
                | Job::KeepEditorText { .. }
                | Job::Watch { .. }
                | Job::Fetch
        )
    }

    /// Moves branch or remote-tracking refs: a background fetch waits while one runs.
    pub fn moves_refs(&self) -> bool {
        matches!(
            self,
            Job::Commit { .. }
                | Job::Push
                | Job::PushResolved { .. }
                | Job::ResetToUpstream
                | Job::Pull
                | Job::Fetch
        )
    }
}

/// A root key as text (PEM or `ed25519/<hex>`), with its id and state when it comes from a
/// key set. One without an id verifies whatever id a token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKeyText {
    pub id: Option<u32>,
    pub state: crate::keyset::KeyState,
    pub key: String,
}

impl RootKeyText {
    pub fn single(key: String) -> RootKeyText {
        RootKeyText {
            id: None,
            state: crate::keyset::KeyState::Active,
            key,
        }
    }
}

/// `/public_keys` (a key set: ids and states), or `/public_key` from servers that have none.
fn server_root_keys(env: &Env) -> Result<Vec<RootKeyText>, String> {
    let connection = env.operator()?;
    let set = connection.clone();
    let listed = block(env, async move {
        set.get::<crate::wire::PublicKeysResponse>("/public_keys")
            .await
    });
    if let Ok(listed) = listed {
        return Ok(listed
            .keys
            .into_iter()
            .map(|k| RootKeyText {
                id: k.id,
                state: k.state,
                key: k.public_key,
            })
            .collect());
    }
    block(env, async move {
        connection.get::<PublicKeyResponse>("/public_key").await
    })
    .and_then(|r| r.public_key.ok_or(r.response_msg))
    .map(|key| vec![RootKeyText::single(key)])
}

/// A root key transition asked of the server (the same value `keys` on the command line uses).
pub use crate::keyset::KeyChange;

/// Why a key change did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChangeFailure {
    /// The server refused the transition (409), e.g. tokens the key signed are still live.
    pub refused: bool,
    pub message: String,
}

/// Git status plus what the Changes screen needs to compare against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitView {
    pub status: RepoStatus,
    /// clients.toml at HEAD (None before the first commit).
    pub head_text: Option<String>,
    /// clients.toml in the working tree as this status saw it (read before the status), so a
    /// status that predates a save is not taken for the saved file's.
    pub working_text: Option<String>,
    pub text_diff: String,
    /// revocations.toml's state in the working tree (`clean`, `modified`, `untracked`, …).
    pub revocations_file: String,
    /// keys.toml's (the root keys' public part), likewise: a commit takes it along.
    pub keys_file: String,
    /// Revocations in the working tree that HEAD does not have yet.
    pub new_revocations: Vec<Revoked>,
    /// Errors in the working tree's revocations.toml (a commit is refused while there are any).
    pub revocation_errors: Vec<Finding>,
    /// What the working tree's revocations.toml changes against HEAD's: ids revoked, and
    /// revocations withdrawn (a widening).
    pub revocation_changes: Vec<Change>,
    /// The text diff of revocations.toml, HEAD against the working tree.
    pub revocations_diff: String,
}

impl GitView {
    /// clients.toml has nothing to commit: git says clean, and about the text the console last
    /// saved (a status read before a save still says clean about the old text).
    pub fn policy_clean(&self, saved: &str) -> bool {
        self.status.file == "clean" && self.working_text.as_deref() == Some(saved)
    }
}

/// One commit with what it changed in policy terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub commit: CommitInfo,
    /// The semantic changes, or why they could not be computed.
    pub changes: Result<PolicyDiff, String>,
}

/// One step of the demo flow, shown as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStep {
    pub title: String,
    pub detail: String,
    pub token: Option<String>,
    pub ok: bool,
}

/// What a job reports.
#[derive(Debug, Clone)]
pub enum JobResult {
    Saved(Result<String, String>),
    Reloaded(Result<String, String>),
    Git(Result<GitView, String>),
    Committed(Result<String, String>),
    PushProgress(gitops::PushProgress),
    Pushed(Result<PushOutcome, String>),
    /// The push stopped: the local commits conflict with the upstream (nothing changed).
    PushConflicts {
        upstream: String,
        commit: String,
        conflicts: Vec<Conflict>,
        /// The resolutions the push was tried with.
        resolutions: Resolutions,
    },
    Reset(Result<gitops::ResetOutcome, String>),
    /// What the watcher saw: the policy text when it moved (or could not be read).
    Watched {
        stamps: FileStamps,
        policy: Option<Result<String, String>>,
        revocations_changed: bool,
    },
    /// A save or commit found the file on disk changed since it was loaded, and wrote nothing.
    /// `base`: the text the console had loaded, when the app no longer holds it (a commit
    /// takes its text as saved before it runs).
    DiskChanged {
        disk: String,
        base: Option<String>,
    },
    RebasedBuffer {
        base: String,
        ours: String,
        theirs: String,
        resolutions: Resolutions,
        result: Result<Rebased, String>,
    },
    Pulled(Result<usize, String>),
    /// A background fetch of the upstream finished (or why not).
    Fetched(Result<(), String>),
    History(Result<Vec<HistoryEntry>, String>),
    Review(Result<Box<ReviewLoad>, String>),
    ReviewMarksSaved(Result<(), String>),
    /// The report's path and its summary, or why it was not written.
    Exported(Result<(PathBuf, String), String>),
    HeadParsed {
        text: String,
        policy: Result<policy::Policy, String>,
    },
    PolicyDerived {
        purpose: PolicyPurpose,
        result: Result<Box<Derived>, Finding>,
    },
    /// The revoked id, or why not.
    Revoked(Result<String, String>),
    ServerStatus(Result<ServerStatus, String>),
    ServerAudit(Result<(Vec<AuditEvent>, u64), String>),
    ServerSynced(Result<(), String>),
    /// The fleet's replicas against the commit they should serve; `None` without a fleet file.
    Fleet(Result<Option<FleetView>, String>),
    /// New audit events per replica (name, events, next cursor), or why a replica's could not
    /// be read.
    FleetAudit(Vec<ReplicaAudit>),
    /// Each replica nudged, and whether it took it; `expected` is the commit they were asked
    /// to apply (`None` without a fleet file).
    FleetNudged {
        expected: Option<String>,
        nudged: Vec<(String, Result<(), String>)>,
    },
    /// The keys a verifier may meet (next, active, retiring), from `/public_keys`.
    ServerPublicKey(Result<Vec<RootKeyText>, String>),
    /// The server's summary of the change, or why not.
    KeyChanged {
        change: KeyChange,
        outcome: Result<String, KeyChangeFailure>,
    },
    TokenLoaded {
        source: String,
        token: Result<String, String>,
    },
    /// The token store's tokens, each read (not verified) to say whose it is and its expiry.
    StoredTokens(Result<Vec<crate::token_store::StoredToken>, String>),
    Verified(Result<String, String>),
    FlowStep(FlowStep),
    Revocations(Box<RevocationLists>),
    /// A directory's entries for a path's pick-list (see `complete::Listing`).
    DirectoryListed(super::complete::Listing),
    /// What was copied, and where it went (or why it could not).
    Copied {
        what: String,
        to: Result<String, String>,
    },
    /// The audit trail read (or why not).
    UsageRead(Result<policy::Usage, String>),
    /// The unused access of the policy `text` (the text, so a stale answer is recognised).
    UnusedMarked {
        text: String,
        marks: Result<super::unused_marks::Marks, String>,
    },
    /// The tightening proposal for the policy `text`.
    Tightened {
        text: String,
        proposal: Result<Box<policy::Proposal>, String>,
    },
    /// The texts that were compared, so a stale answer is recognised.
    TextDiff {
        head: String,
        working: String,
        diff: Result<String, String>,
    },
}

/// Does the job, reporting each result through `report` (most jobs report once).
pub fn execute(job: Job, env: &Env, report: &dyn Fn(JobResult)) {
    let result = match job {
        Job::Save { text, expected } => match on_disk_changed(&env.policy_path, &expected) {
            Ok(None) => JobResult::Saved(save(&env.policy_path, &text)),
            Ok(Some(disk)) => {
                report(JobResult::Saved(Err(format!(
                    "{} changed on disk since it was loaded; nothing was written",
                    env.policy_path.display()
                ))));
                // The app still holds the loaded text: later saves queued behind this one
                // expected a text that never reached the disk.
                JobResult::DiskChanged { disk, base: None }
            }
            Err(e) => JobResult::Saved(Err(e)),
        },
        Job::Reload => JobResult::Reloaded(
            std::fs::read_to_string(&env.policy_path)
                .map_err(|e| format!("cannot read {}: {e}", env.policy_path.display())),
        ),
        Job::GitStatus => JobResult::Git(git_view(env)),
        Job::Commit {
            message,
            save: text,
            expected,
        } => {
            if text.is_some() {
                match on_disk_changed(&env.policy_path, &expected) {
                    Ok(None) => {}
                    Ok(Some(disk)) => {
                        report(JobResult::Committed(Err(format!(
                            "{} changed on disk since it was loaded; nothing was written or committed",
                            env.policy_path.display()
                        ))));
                        report(JobResult::DiskChanged {
                            disk,
                            base: Some(expected),
                        });
                        return;
                    }
                    Err(e) => {
                        report(JobResult::Committed(Err(e)));
                        return;
                    }
                }
            }
            JobResult::Committed(with_repo(env, |_, _| {
                if let Some(text) = text {
                    save(&env.policy_path, &text)?;
                }
                // The repository layer checks the bytes it commits, whatever the console saw.
                env.repo()
                    .commit_approving(&message, token::clock::unix_now(), |id| {
                        server_holds_key(env, id)
                    })
                    .map(|committed| committed.id)
                    .map_err(|e| match e {
                        RepoError::Refused(refusal) => format!("refused: {}", refusal.summary()),
                        other => other.to_string(),
                    })
            }))
        }
        Job::Push => push(env, Resolutions::new(), report),
        Job::PushResolved { resolutions } => push(env, resolutions, report),
        Job::ResetToUpstream => JobResult::Reset(with_repo(env, |root, relative| {
            let recovery = env
                .recovery_path
                .as_deref()
                .and_then(Path::parent)
                .ok_or("the console has no state directory to keep your local work in; reset from a shell after saving it")?;
            gitops::reset_to_upstream(root, relative, recovery).map_err(|e| e.to_string())
        })),
        Job::Watch { last } => super::disk::watch(&env.policy_path, last.as_ref()),
        Job::Rebase {
            base,
            ours,
            theirs,
            resolutions,
        } => JobResult::RebasedBuffer {
            result: crate::policy::rebase::rebase(&base, &ours, &theirs, &resolutions)
                .map_err(|e| e.to_string()),
            base,
            ours,
            theirs,
            resolutions,
        },
        Job::Pull => JobResult::Pulled(with_repo(env, |root, _| {
            gitops::pull(root).map_err(|e| e.to_string())
        })),
        Job::Fetch => JobResult::Fetched(with_repo(env, |root, _| {
            gitops::fetch(root).map_err(|e| e.to_string())
        })),
        Job::History => JobResult::History(history(env)),
        Job::ReviewRange { from, to } => JobResult::Review(review_range(env, from, to)),
        Job::SaveReviewMarks { marks } => JobResult::ReviewMarksSaved(with_repo(env, |root, _| {
            crate::review::marks::save(root, &marks)
        })),
        Job::ExportReport {
            path,
            since,
            format,
            audit,
        } => JobResult::Exported(export_report(env, path, since, format, audit)),
        Job::Revoke { entry } => {
            JobResult::Revoked(env.repo().revoke(&entry).map_err(|e| e.to_string()))
        }
        Job::KeepUnsaved { text } => {
            if let Some(path) = &env.recovery_path {
                keep_unsaved(path, text.as_deref());
            }
            return;
        }
        Job::KeepEditorText { text } => {
            if let Some(path) = &env.recovery_path {
                keep_unsaved(&editor_recovery_path(path), text.as_deref());
            }
            return;
        }
        Job::DerivePolicy {
            input,
            purpose,
            views,
        } => JobResult::PolicyDerived {
            purpose,
            result: derive(input, views),
        },
        Job::ReadUsage { path } => JobResult::UsageRead(super::unused_marks::read_trail(&path)),
        Job::MarkUnused { text, usage, since } => JobResult::UnusedMarked {
            marks: super::unused_marks::compute(&text, &usage, since, token::clock::unix_now()),
            text,
        },
        Job::Tighten { text, usage, since } => JobResult::Tightened {
            proposal: super::unused_marks::propose(&text, &usage, since, token::clock::unix_now())
                .map(Box::new),
            text,
        },
        Job::ParsePolicy { text } => JobResult::HeadParsed {
            policy: policy::load(&text, token::clock::unix_now())
                .map(|loaded| loaded.policy)
                .map_err(|f| f.to_string()),
            text,
        },
        Job::ServerStatus => JobResult::ServerStatus(
            env.operator()
                .and_then(|c| block(env, async move { c.get("/status").await })),
        ),
        Job::ServerAudit { after } => JobResult::ServerAudit(env.operator().and_then(|c| {
            block(env, async move {
                c.get::<AuditResponse>(&format!("/audit?after={after}"))
                    .await
            })
            .map(|page| (page.events, page.next))
        })),
        Job::ServerSync => JobResult::ServerSynced(env.operator().and_then(|c| {
            block(env, async move {
                c.post::<_, MessageResponse>("/sync", &serde_json::json!({}), None)
                    .await
            })
            .map(|_| ())
        })),
        Job::FleetStatus => JobResult::Fleet(fleet_status(env)),
        Job::FleetAudit { cursors } => JobResult::FleetAudit(fleet_audit(env, &cursors)),
        Job::FleetNudge => match fleet_connections(env) {
            Ok(Some((connections, expected))) => JobResult::FleetNudged {
                nudged: env.runtime.block_on(fleet::nudge_all(connections)),
                expected: Some(expected),
            },
            Ok(None) => JobResult::FleetNudged {
                expected: None,
                nudged: Vec::new(),
            },
            Err(error) => JobResult::FleetNudged {
                expected: None,
                nudged: vec![("the fleet".to_string(), Err(error))],
            },
        },
        Job::ChangeKey(change) => JobResult::KeyChanged {
            change,
            outcome: change_key(env, change),
        },
        Job::ServerPublicKey => JobResult::ServerPublicKey(server_root_keys(env)),
        Job::LoadTokenFile { path } => JobResult::TokenLoaded {
            source: path.display().to_string(),
            token: std::fs::read_to_string(&path)
                .map(|t| t.trim().to_string())
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
        },
        Job::ListDirectory { dir } => {
            JobResult::DirectoryListed(super::complete::Listing::read(dir))
        }
        Job::ListStoredTokens => JobResult::StoredTokens(match &env.token_store {
            Some(store) => store
                .entries(token::clock::unix_now())
                .map_err(|e| e.to_string()),
            None => Err("no token store".into()),
        }),
        Job::LoadStoredToken { name } => JobResult::TokenLoaded {
            source: format!("token store: {name}"),
            token: match &env.token_store {
                Some(store) => store.load(&name).map_err(|e| e.to_string()),
                None => Err("no token store".into()),
            },
        },
        Job::Verify {
            token,
            roots,
            identity,
            domain,
        } => JobResult::Verified(verify(
            &token,
            &roots,
            identity.as_deref(),
            domain.as_deref(),
            &revocation_lists(env),
        )),
        Job::ReadRevocations => JobResult::Revocations(Box::new(revocation_lists(env))),
        Job::Copy {
            what,
            text,
            to,
            fallback,
        } => JobResult::Copied {
            what,
            to: super::clipboard::copy(&to, &text, fallback.as_deref()),
        },
        Job::TextDiff { head, working } => {
            let path = env
                .relative_policy()
                .map(|(_, relative)| relative)
                .unwrap_or_else(|| PathBuf::from("clients.toml"));
            let diff = gitops::text_diff_texts(&head, &working, &path).map_err(|e| e.to_string());
            JobResult::TextDiff {
                head,
                working,
                diff,
            }
        }
        Job::DemoFlow {
            client,
            delegate_to,
            resource,
            operation,
        } => {
            demo_flow(env, &client, &delegate_to, &resource, &operation, report);
            return;
        }
    };
    report(result);
}

/// Writes (0600) or removes the recovery file; failures are logged, never shown: recovery is
/// a safety net, not something the user asked for.
fn keep_unsaved(path: &Path, text: Option<&str>) {
    let result = match text {
        Some(text) => path
            .parent()
            .map_or(Ok(()), crate::fsutil::create_private_dir)
            .and_then(|()| crate::fsutil::write_private(path, text.as_bytes())),
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    };
    if let Err(e) = result {
        tracing::warn!("cannot keep unsaved edits in {}: {e}", path.display());
    }
}

/// Where a policy file's unsaved edits are kept: one file per policy path.
pub fn recovery_path(state_dir: &Path, policy_path: &Path) -> PathBuf {
    let name: String = policy_path
        .display()
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    state_dir.join("recovery").join(format!("{name}.toml"))
}

/// Where the raw editor's unapplied text is kept, beside the unsaved edits of `recovery`.
pub fn editor_recovery_path(recovery: &Path) -> PathBuf {
    recovery.with_extension("editor.toml")
}

fn derive(input: PolicyInput, views: ViewInputs) -> Result<Box<Derived>, Finding> {
    let now = token::clock::unix_now();
    let loaded = match input {
        PolicyInput::Edit(document, edit) => {
            let mut document = Arc::unwrap_or_clone(document);
            document
                .apply(&edit)
                .map_err(|e| Finding::error("edit", None, format!("not changed: {e}")))?;
            policy::load(document.text(), now).map_err(|f| {
                Finding::error(
                    "edit",
                    f.location,
                    format!("not changed: the edit printed text that does not parse ({f})"),
                )
            })?
        }
        PolicyInput::Text(text) => policy::load(&text, now)?,
    };
    let tree = DelegationTree::build(&loaded.policy, &loaded.findings);
    let tree_view = TreeView::build(&tree, &views.tree_filter, &views.chain);
    let changes = views
        .head
        .map(|head| ChangesView::build(head, &loaded.policy, views.requests));
    let derived = Box::new(Derived {
        loaded,
        tree,
        tree_view,
        changes,
    });
    crate::console::release_free_memory();
    Ok(derived)
}

fn block<T: serde::de::DeserializeOwned + Send + 'static>(
    env: &Env,
    future: impl Future<Output = Result<T, crate::client::ClientError>> + Send + 'static,
) -> Result<T, String> {
    env.runtime
        .block_on(
            async move { tokio::time::timeout(std::time::Duration::from_secs(10), future).await },
        )
        .map_err(|_| "the server did not answer within 10 s".to_string())?
        .map_err(|e| e.to_string())
}

/// Whether the replicas hold key `id`, which the commit makes active: refused while one that
/// answers reports the key's private key missing (it would refuse the revision). With a
/// `fleet.toml` every replica is asked, as `policy commit` does; else the console's server. A
/// replica that cannot be asked does not stop the commit.
fn server_holds_key(env: &Env, id: u32) -> Result<(), String> {
    if let Ok(Some((connections, _))) = fleet_connections(env) {
        let answers: Vec<(fleet::Replica, ServerStatus)> = env
            .runtime
            .block_on(fleet::statuses(connections))
            .into_iter()
            .filter_map(|(replica, status)| status.ok().map(|status| (replica, status)))
            .collect();
        return fleet::activation_refusal(id, &answers).map_or(Ok(()), Err);
    }
    let (Some(link), Ok(connection)) = (&env.server, env.operator()) else {
        return Ok(());
    };
    let Ok(status) = block(env, async move {
        connection.get::<ServerStatus>("/status").await
    }) else {
        return Ok(());
    };
    let server = crate::fleet::Replica {
        name: link.url.clone(),
        url: link.url.clone(),
    };
    crate::fleet::activation_refusal(id, &[(server, status)]).map_or(Ok(()), Err)
}

fn change_key(env: &Env, change: KeyChange) -> Result<String, KeyChangeFailure> {
    let other = |message: String| KeyChangeFailure {
        refused: false,
        message,
    };
    let repo = crate::repo::PolicyRepo::discover(&env.policy_path);
    if let Some(key_dir) = &env.key_dir
        && repo.keys_path().exists()
    {
        let now = token::clock::unix_now();
        return match repo.change_keys(key_dir, change, env.audit_trail.as_deref(), now) {
            Ok((transition, _)) => Ok(format!(
                "{} — in keys.toml: commit and push it (5) for the servers to apply it",
                transition.summary
            )),
            Err(crate::repo::RepoError::KeySet(crate::keyset::KeySetError::Refused(message))) => {
                Err(KeyChangeFailure {
                    refused: true,
                    message,
                })
            }
            Err(error) => Err(other(error.to_string())),
        };
    }
    let connection = env.operator().map_err(other)?;
    let (path, body) = (change.endpoint(), change.request());
    let answer = env.runtime.block_on(async move {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            connection.post::<_, KeyChangeResponse>(path, &body, None),
        )
        .await
    });
    match answer {
        Err(_) => Err(other("the server did not answer within 10 s".into())),
        Ok(Ok(response)) => Ok(response.response_msg),
        Ok(Err(crate::client::ClientError::Status {
            status: 409,
            message,
        })) => Err(KeyChangeFailure {
            refused: true,
            message,
        }),
        Ok(Err(e)) => Err(other(e.to_string())),
    }
}

/// The file's text when it is not `expected` (`None`: it is). A file that is not there is
/// `expected` only when the console loaded nothing.
fn on_disk_changed(path: &Path, expected: &str) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) if text == expected => Ok(None),
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && expected.is_empty() => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(String::new())),
        Err(e) => Err(format!(
            "cannot read {} before writing it: {e}",
            path.display()
        )),
    }
}

fn push(env: &Env, resolutions: Resolutions, report: &dyn Fn(JobResult)) -> JobResult {
    let Some((root, relative)) = env.relative_policy() else {
        return JobResult::Pushed(Err(format!(
            "{} is not in a git repository; commit, push and pull need one",
            env.policy_path.display()
        )));
    };
    let progress = |step: gitops::PushProgress| report(JobResult::PushProgress(step));
    match gitops::push_resolving(&root, &relative, &resolutions, &progress) {
        Ok(outcome) => JobResult::Pushed(Ok(outcome)),
        Err(gitops::GitError::PolicyConflict {
            upstream,
            commit,
            conflicts,
        }) => JobResult::PushConflicts {
            upstream,
            commit,
            conflicts,
            resolutions,
        },
        Err(e) => JobResult::Pushed(Err(e.to_string())),
    }
}

fn save(path: &Path, text: &str) -> Result<String, String> {
    crate::fsutil::replace_preserving_mode(path, text.as_bytes())
        .map(|()| path.display().to_string())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn with_repo<T>(
    env: &Env,
    work: impl FnOnce(&Path, &Path) -> Result<T, String>,
) -> Result<T, String> {
    let (root, relative) = env.relative_policy().ok_or_else(|| {
        format!(
            "{} is not in a git repository; commit, push and pull need one",
            env.policy_path.display()
        )
    })?;
    work(&root, &relative)
}

fn git_view(env: &Env) -> Result<GitView, String> {
    with_repo(env, |root, relative| {
        let working_text = std::fs::read_to_string(root.join(relative)).ok();
        let status = gitops::status(root, relative).map_err(|e| e.to_string())?;
        let head_text = gitops::read_at_revision(root, "HEAD", relative).ok();
        let text_diff = if head_text.is_some() {
            gitops::text_diff(root, "HEAD", None, relative).map_err(|e| e.to_string())?
        } else {
            String::new()
        };
        let revocations = relative.with_file_name(policy::revocations::FILE);
        let revocations_file = gitops::status(root, &revocations)
            .map(|s| s.file)
            .unwrap_or_else(|_| "missing".into());
        let keys_file = gitops::status(root, &relative.with_file_name(crate::keyset::MANIFEST))
            .map(|s| s.file)
            .unwrap_or_else(|_| "missing".into());
        let committed = gitops::read_at_revision(root, "HEAD", &revocations).unwrap_or_default();
        let working = std::fs::read_to_string(root.join(&revocations)).unwrap_or_default();
        let (committed, _) = RevocationList::load(&committed);
        let (working, findings) = RevocationList::load(&working);
        let revocation_errors = findings.into_iter().filter(Finding::is_error).collect();
        let revocation_changes = policy::revocation_changes(&committed, &working);
        let revocations_diff = if head_text.is_some() {
            gitops::text_diff(root, "HEAD", None, &revocations).map_err(|e| e.to_string())?
        } else {
            String::new()
        };
        let new_revocations = working
            .entries
            .into_iter()
            .filter(|entry| {
                committed
                    .first_revoked(std::slice::from_ref(&entry.id))
                    .is_none()
            })
            .collect();
        Ok(GitView {
            status,
            head_text,
            working_text,
            text_diff,
            revocations_file,
            keys_file,
            new_revocations,
            revocation_errors,
            revocation_changes,
            revocations_diff,
        })
    })
}

fn history(env: &Env) -> Result<Vec<HistoryEntry>, String> {
    with_repo(env, |root, relative| {
        let history =
            crate::review::history(root, relative, None, "HEAD", 50, token::clock::unix_now())
                .map_err(|e| e.to_string())?;
        Ok(history
            .commits
            .into_iter()
            .map(|reviewed| HistoryEntry {
                changes: match reviewed.error {
                    Some(error) => Err(error),
                    None => Ok(policy::PolicyDiff {
                        changes: reviewed.changes.into_iter().map(|c| c.change).collect(),
                    }),
                },
                commit: reviewed.commit,
            })
            .collect())
    })
}

/// The fleet as the Server screen shows it.
#[derive(Debug, Clone)]
pub struct FleetView {
    /// The commit the replicas should serve (the branch's upstream, else HEAD).
    pub expected: String,
    pub replicas: Vec<fleet::ReplicaReport>,
}

type FleetConnections = Vec<(fleet::Replica, Result<Connection, String>)>;

/// The replicas of the repository's fleet file with an operator connection to each, and the
/// commit they should serve; `None` without a fleet file.
fn fleet_connections(env: &Env) -> Result<Option<(FleetConnections, String)>, String> {
    let Some(root) = env.repo_root.as_deref() else {
        return Ok(None);
    };
    let Some(replicas) = fleet::read(root)? else {
        return Ok(None);
    };
    let link = env
        .server
        .as_ref()
        .ok_or("no operator certificate to ask the fleet with (start with --server and --cert)")?;
    let expected = gitops::commit_id(root, "@{upstream}")
        .or_else(|_| gitops::commit_id(root, "HEAD"))
        .map_err(|e| e.to_string())?;
    let connections = replicas
        .into_iter()
        .map(|replica| {
            let connection = Connection::new(
                &replica.url,
                443,
                Some(&link.ca_pem),
                Some(&link.operator_pem),
            )
            .map_err(|e| e.to_string());
            (replica, connection)
        })
        .collect();
    Ok(Some((connections, expected)))
}

/// A replica's name and its new audit events with the next cursor, or why they could not be
/// read.
pub type ReplicaAudit = (String, Result<(Vec<AuditEvent>, u64), String>);

/// Two URLs of one server (`https://` and a trailing slash aside).
pub fn same_server(a: &str, b: &str) -> bool {
    let bare = |url: &str| {
        url.trim_start_matches("https://")
            .trim_end_matches('/')
            .to_ascii_lowercase()
    };
    bare(a) == bare(b)
}

/// The new audit events of every replica but the console's own server.
fn fleet_audit(env: &Env, cursors: &[(String, u64)]) -> Vec<ReplicaAudit> {
    let own = env.server.as_ref().map(|link| link.url.clone());
    let connections = match fleet_connections(env) {
        Ok(Some((connections, _))) => connections,
        Ok(None) => return Vec::new(),
        Err(error) => return vec![("the fleet".to_string(), Err(error))],
    };
    let reads = connections
        .into_iter()
        .filter(|(replica, _)| {
            !own.as_deref()
                .is_some_and(|own| same_server(own, &replica.url))
        })
        .map(|(replica, connection)| {
            let after = cursors
                .iter()
                .find(|(name, _)| *name == replica.name)
                .map_or(0, |(_, after)| *after);
            async move {
                let page = match connection {
                    Ok(connection) => {
                        let path = format!("/audit?after={after}");
                        let read = connection.get::<AuditResponse>(&path);
                        match tokio::time::timeout(fleet::ANSWER_WITHIN, read).await {
                            Ok(Ok(page)) => Ok((page.events, page.next)),
                            Ok(Err(error)) => Err(error.to_string()),
                            Err(_) => Err("no answer in time".to_string()),
                        }
                    }
                    Err(error) => Err(error),
                };
                (replica.name, page)
            }
        });
    env.runtime.block_on(fleet::join_all(reads))
}

fn fleet_status(env: &Env) -> Result<Option<FleetView>, String> {
    let Some((connections, expected)) = fleet_connections(env)? else {
        return Ok(None);
    };
    let replicas = env.runtime.block_on(fleet::survey(connections, &expected));
    Ok(Some(FleetView { expected, replicas }))
}

/// What the Review screen steps through: the range asked for, its history and the marks.
#[derive(Debug, Clone)]
pub struct ReviewLoad {
    pub from: Option<String>,
    pub to: String,
    pub history: crate::review::History,
    pub marks: Vec<crate::review::marks::ReviewMark>,
}

/// The most commits the Review screen reads at once.
pub const REVIEW_COMMITS: usize = 500;

fn review_range(env: &Env, from: Option<String>, to: String) -> Result<Box<ReviewLoad>, String> {
    with_repo(env, |root, relative| {
        let history = crate::review::history(
            root,
            relative,
            from.as_deref(),
            &to,
            REVIEW_COMMITS,
            token::clock::unix_now(),
        )
        .map_err(|e| e.to_string())?;
        let marks = crate::review::marks::load(root)?;
        Ok(Box::new(ReviewLoad {
            from,
            to,
            history,
            marks,
        }))
    })
}

fn export_report(
    env: &Env,
    path: PathBuf,
    since: Option<String>,
    format: crate::review::report::Format,
    audit: Option<(PathBuf, u64)>,
) -> Result<(PathBuf, String), String> {
    // A server that has not written its trail yet has no evidence: the report goes without.
    let audit = audit
        .filter(|(live, _)| live.is_file())
        .map(|(live, window)| (crate::audit_trail::trail_files(&live), window));
    let report = crate::review::gather(&crate::review::ReportRequest {
        file: env.policy_path.clone(),
        since,
        audit,
        key_set: None,
        now: token::clock::unix_now(),
    })?;
    crate::fsutil::replace_preserving_mode(&path, report.render(format).as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    // Said in full: a relative name is relative to where the console was started.
    let path = path.canonicalize().unwrap_or(path);
    Ok((path, report.summary()))
}

/// The revocation lists a token is checked against: HEAD's and the working copy's, and the
/// server's when connected (a server that cannot be asked is said, never taken as "none").
fn revocation_lists(env: &Env) -> RevocationLists {
    let repo = env.relative_policy();
    let mut lists = revocation_status::read_local(
        &env.policy_path,
        repo.as_ref()
            .map(|(root, relative)| (root.as_path(), relative.as_path())),
    );
    if env.server.is_some() {
        lists.server = Some(server_revocations(env));
    }
    lists
}

fn server_revocations(env: &Env) -> revocation_status::RevocationSource {
    let answer = env.operator().and_then(|c| {
        block(env, async move {
            c.get::<crate::wire::RevocationsResponse>("/revocations")
                .await
        })
    });
    match answer {
        Ok(response) => revocation_status::RevocationSource {
            list: RevocationList::from_entries(response.revoked),
            problem: None,
        },
        Err(e) => revocation_status::RevocationSource {
            list: RevocationList::default(),
            problem: Some(format!(
                "the server's revocation list could not be read ({e})"
            )),
        },
    }
}

fn verify(
    token: &str,
    roots: &[RootKeyText],
    identity: Option<&str>,
    domain: Option<&str>,
    revocations: &RevocationLists,
) -> Result<String, String> {
    let ids = token::revocation_ids(token).map_err(|e| e.to_string())?;
    // A revoked token is never called valid, whatever its signature says.
    if let Some(refusal) = revocations.refusal(&ids)? {
        return Err(refusal);
    }
    verify_signed(token, roots, identity, domain)
        .map(|valid| format!("{valid}; not revoked ({})", revocations.checked()))
}

fn verify_signed(
    token: &str,
    roots: &[RootKeyText],
    identity: Option<&str>,
    domain: Option<&str>,
) -> Result<String, String> {
    use crate::keyset::{KeyState, RingKey};
    let parse = |text: &str| token::keys::parse_public_key(text).map_err(|e| e.to_string());
    let root = match roots {
        [only] if only.id.is_none() => token::VerifyingKeys::Single(parse(&only.key)?),
        _ => {
            let keys = roots
                .iter()
                .map(|key| {
                    let verifies = matches!(key.state, KeyState::Active | KeyState::Retiring);
                    Ok(RingKey {
                        id: key.id.unwrap_or_default(),
                        state: key.state,
                        forced: false,
                        public: verifies.then(|| parse(&key.key)).transpose()?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            token::VerifyingKeys::Ring(crate::keyset::ring_of(keys))
        }
    };
    let unverified =
        token::inspect(token, None, token::clock::unix_now()).map_err(|e| e.to_string())?;
    if unverified.kind == token::TokenKind::Authorization {
        token::parse_verified(token, &root).map_err(|e| e.to_string())?;
        let subject = unverified.subject.unwrap_or_else(|| "(no subject)".into());
        if let Some(identity) = identity
            && identity != subject
        {
            return Err(format!(
                "this authorization token was issued to {subject}, not {identity}: {identity} cannot use it (signature valid)"
            ));
        }
        return Ok(format!(
            "signature valid; authorization token for {subject}"
        ));
    }
    let actor = match identity {
        Some(name) => token::Actor::Named(name),
        None => token::Actor::Effective,
    };
    let mut verification = IdentityVerification::new(actor, token::clock::unix_now());
    verification.domain = domain;
    verification.ensure_subject_in_domain = domain.is_some();
    token::verify_identity(token, &root, &verification)
        .map(|v| {
            format!(
                "valid: usable by {} (subject {}, chain {})",
                v.identity,
                v.subject,
                v.chain.join(" → ")
            )
        })
        .map_err(|e| e.to_string())
}

fn demo_flow(
    env: &Env,
    client: &str,
    delegate_to: &str,
    resource: &str,
    operation: &str,
    report: &dyn Fn(JobResult),
) {
    let step = |title: &str, detail: String, token: Option<String>, ok: bool| {
        report(JobResult::FlowStep(FlowStep {
            title: title.to_string(),
            detail,
            token,
            ok,
        }))
    };
    // Each token the flow mints is kept in the token store (`o` lists it; `hessra-console
    // identity list --details` and the CLI's `--token-name` read it), named after the flow.
    let keep = |name: String, token: &str| match &env.token_store {
        Some(store) => match store.save(&name, token) {
            Ok(_) => format!("; saved as {name}"),
            Err(e) => format!("; not saved: {e}"),
        },
        None => "; not saved: no token store".into(),
    };
    let Some(link) = env.server.clone() else {
        step("start", "no server configured".into(), None, false);
        return;
    };
    let Some((_, identity_pem)) = link.demo_clients.iter().find(|(id, _)| id == client) else {
        step(
            "1 authenticate",
            format!("no client certificate for {client} in this workspace"),
            None,
            false,
        );
        return;
    };
    let connect = |pem: Option<&[u8]>| {
        Connection::new(&link.url, 443, Some(&link.ca_pem), pem).map_err(|e| e.to_string())
    };
    let result = (|| -> Result<(), (String, String)> {
        let fail = |title: &str| {
            let title = title.to_string();
            move |e: String| (title, e)
        };
        let mtls = connect(Some(identity_pem)).map_err(fail("1 authenticate"))?;
        let anonymous = connect(None).map_err(fail("3 authorize"))?;
        let mtls = Arc::new(mtls);
        let public = {
            let c = mtls.clone();
            block(env, async move {
                c.get::<PublicKeyResponse>("/public_key").await
            })
            .map_err(fail("1 authenticate"))?
        };
        let public_key = public
            .public_key
            .ok_or_else(|| ("1 authenticate".to_string(), public.response_msg.clone()))?;
        let root = token::keys::parse_public_key(&public_key)
            .map_err(|e| ("1 authenticate".to_string(), e.to_string()))?;
        let identity = {
            let c = mtls.clone();
            block(env, async move {
                c.post::<_, IdentityTokenResponse>(
                    "/request_identity_token",
                    &IdentityTokenRequest::default(),
                    None,
                )
                .await
            })
            .map_err(fail("1 authenticate"))?
        };
        let identity_token = identity
            .token
            .ok_or_else(|| ("1 authenticate".to_string(), identity.response_msg.clone()))?;
        let kept = keep(flow_token_name(client, "identity"), &identity_token);
        step(
            "1 authenticate",
            format!(
                "mTLS as {client}: identity token for {}, expires in {}{kept}",
                identity.identity.as_deref().unwrap_or(client),
                policy::duration::format(identity.expires_in.unwrap_or(0))
            ),
            Some(identity_token.clone()),
            true,
        );
        let now = token::clock::unix_now();
        let delegated = token::delegate(
            &identity_token,
            Some(&root),
            &Delegation::new(delegate_to, now + 600),
        )
        .map_err(|e| ("2 delegate".to_string(), e.to_string()))?;
        let kept = keep(flow_token_name(delegate_to, "identity"), &delegated.token);
        step(
            "2 delegate",
            format!(
                "offline: {} → {} (depth {}, 10 min){kept}",
                delegated.from, delegated.identity, delegated.depth
            ),
            Some(delegated.token.clone()),
            true,
        );
        let request = TokenRequest {
            resource: resource.to_string(),
            operation: operation.to_string(),
            domain: None,
        };
        let bearer = delegated.token.clone();
        let anonymous = Arc::new(anonymous);
        let authz = {
            let c = anonymous.clone();
            block(env, async move {
                c.post::<_, TokenResponse>("/request_token", &request, Some(&bearer))
                    .await
            })
            .map_err(fail("3 authorize"))?
        };
        let authz_token = authz
            .token
            .ok_or_else(|| ("3 authorize".to_string(), authz.response_msg.clone()))?;
        let kept = keep(
            flow_token_name(delegate_to, &format!("{resource}-{operation}")),
            &authz_token,
        );
        step(
            "3 authorize",
            format!("as {delegate_to}: {operation} on {resource} granted{kept}"),
            Some(authz_token.clone()),
            true,
        );
        let check = VerifyTokenRequest {
            token: authz_token,
            subject: delegate_to.to_string(),
            resource: resource.to_string(),
            operation: operation.to_string(),
        };
        let verified = {
            let c = anonymous.clone();
            block(env, async move {
                c.post::<_, MessageResponse>("/verify_token", &check, None)
                    .await
            })
            .map_err(fail("4 verify"))?
        };
        step(
            "4 verify",
            format!("server: {}", verified.response_msg),
            None,
            true,
        );
        Ok(())
    })();
    if let Err((title, detail)) = result {
        step(&title, detail, None, false);
    }
}

/// The token store name of a token the demo flow minted: `demo-<identity>-<what>`, with every
/// character a store name cannot hold (`:` of the URI, `/` of a resource) as `-`.
pub fn flow_token_name(identity: &str, what: &str) -> String {
    let who = identity
        .strip_prefix("uri:urn:")
        .or_else(|| identity.strip_prefix("uri:"))
        .unwrap_or(identity);
    let name: String = format!("demo-{who}-{what}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.chars().take(128).collect()
}

/// What a worker reports: a result of job `id`, or that job `id` has finished.
pub enum WorkerEvent {
    Result(u64, Box<JobResult>),
    Done(u64),
}

/// Runs jobs on a few threads and sends their results to the UI.
pub struct Workers {
    queue: Sender<(u64, Job)>,
}

impl Workers {
    /// `threads` workers; each report goes to `results`, wrapped by `wrap`.
    pub fn start<E: Send + 'static>(
        env: Env,
        threads: usize,
        results: Sender<E>,
        wrap: fn(WorkerEvent) -> E,
    ) -> Workers {
        let (queue, jobs) = channel::<(u64, Job)>();
        let jobs: Arc<Mutex<Receiver<(u64, Job)>>> = Arc::new(Mutex::new(jobs));
        for n in 0..threads {
            let jobs = jobs.clone();
            let env = env.clone();
            let results = results.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("console-worker-{n}"))
                .spawn(move || {
                    loop {
                        let next = match jobs.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok((id, job)) = next else { return };
                        tracing::debug!(job = job.describe(), "job started");
                        execute(job, &env, &|result| {
                            let _ = results.send(wrap(WorkerEvent::Result(id, Box::new(result))));
                        });
                        let _ = results.send(wrap(WorkerEvent::Done(id)));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a worker thread: {e}");
            }
        }
        Workers { queue }
    }

    pub fn submit(&self, id: u64, job: Job) {
        let _ = self.queue.send((id, job));
    }
}

/// Runs every queued job inline until none is left (tests and benchmarks: "wait for idle").
/// `skip_polls` drops background polls instead of running them.
pub fn settle(app: &mut crate::console::App, env: &Env, skip_polls: bool) {
    for _ in 0..100 {
        let jobs = app.take_jobs();
        if jobs.is_empty() {
            return;
        }
        for (id, job) in jobs {
            if skip_polls && job.is_poll() {
                app.job_done(id);
                continue;
            }
            let results = std::cell::RefCell::new(Vec::new());
            execute(job, env, &|result| results.borrow_mut().push(result));
            for result in results.into_inner() {
                app.handle_result(result);
            }
            app.job_done(id);
        }
    }
}
