//! `policy …`: validate, tree, can, diff (files or git revisions, with decision replay), and
//! scriptable lossless edits that refuse to make a policy invalid.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{Failure, Report};
use super::{CommandResult, EXIT_INVALID};
use crate::gitops;
use crate::policy::{self, DelegationTree, Edit, EditSession, Finding, LoadedPolicy, Request};
use crate::repo::{PolicyRepo, RepoError};
use crate::token::clock::unix_now;

/// The policy file to work on.
#[derive(Debug, Clone, Args)]
pub struct PolicyFile {
    /// Policy file (default: clients.toml at the root of the current git repository)
    #[arg(long, global = true)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy; every finding with line:column. Exit 1 when there are errors
    Validate {
        /// The file to check (same as --file)
        path: Option<PathBuf>,
    },
    /// The delegation tree: identities along the ':' hierarchy, permissions, violations
    Tree { path: Option<PathBuf> },
    /// What can IDENTITY do? With --resource and --operation, the decision (exit 1 if denied)
    Can {
        identity: String,
        #[arg(short, long, requires = "operation")]
        resource: Option<String>,
        #[arg(short, long, requires = "resource")]
        operation: Option<String>,
        /// The realm domain the request is made in
        #[arg(long)]
        domain: Option<String>,
    },
    /// Semantic diff from OLD to NEW (files or git revisions; NEW defaults to the policy file)
    Diff {
        old: String,
        new: Option<String>,
        /// Requests to decide under both policies, one per line: IDENTITY RESOURCE OPERATION [DOMAIN]
        #[arg(long)]
        replay: Option<PathBuf>,
        /// Also print the text diff (OLD and NEW must be git revisions, or NEW omitted)
        #[arg(long)]
        text: bool,
    },
    /// Access the audit trail shows unused in a window: grants, role permissions, role
    /// assignments and identities with no allowed request since --since, each with its last use
    Unused {
        /// The server's audit file (its rotated files FILE.1, FILE.2… are read too); repeatable
        #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
        audit: Vec<PathBuf>,
        /// The window: access with no allowed request in this long is unused (30d, 12h, 1h30m)
        #[arg(long, default_value = "30d", value_parser = parse_lifetime)]
        since: u64,
    },
    /// Propose the edits that remove unused access, proved by replaying every request the trail
    /// saw allowed in the window against the proposed policy; --apply writes them (comments kept)
    Tighten {
        /// The server's audit file (its rotated files are read too); repeatable
        #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
        audit: Vec<PathBuf>,
        /// The window: access with no allowed request in this long is unused
        #[arg(long, default_value = "30d", value_parser = parse_lifetime)]
        since: u64,
        /// Write the proposal to the policy file
        #[arg(long)]
        apply: bool,
    },
    /// A review report to attach to a change review: the identity tree with depths and
    /// lifetimes, who may do what, every change since --since (widening ones with author,
    /// commit, message and their decision replay), revocations, the root keys, unused access
    /// (with --audit) and the validation findings, in one self-contained file
    Report {
        /// List the changes since this git revision (commit, tag, branch, HEAD~3); without it,
        /// all of the policy's history
        #[arg(long, value_name = "REV")]
        since: Option<String>,
        /// The server's audit file, for unused access (rotated files are read too); repeatable
        #[arg(long, num_args = 1.., value_name = "FILE")]
        audit: Vec<PathBuf>,
        /// The window for unused access (30d, 12h)
        #[arg(long, default_value = "30d", value_parser = parse_lifetime)]
        window: u64,
        #[arg(long, value_enum, default_value = "md")]
        format: crate::review::report::Format,
        /// Write the report here instead of to standard output
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The root key set (keys.toml); found beside the policy or in its workspace without it
        #[arg(long, value_name = "FILE")]
        key_set: Option<PathBuf>,
    },
    /// Branch, upstream, whether clients.toml has changes, commits ahead/behind
    Status,
    /// Commit clients.toml, revocations.toml and keys.toml (refused while one has errors, and
    /// a key activation while a replica reports that key's private key missing: replicas from
    /// fleet.toml, the workspace's server, or --server)
    Commit {
        /// The commit message
        #[arg(short, long)]
        message: String,
        #[command(flatten)]
        fleet: super::fleet_cmd::FleetServers,
    },
    /// Push; if the upstream moved on, replay the local commits' edits onto it (semantic
    /// rebase); on a true conflict, list the conflicts and leave the repository as it was.
    /// With --wait, nudge every replica (fleet.toml, or --server) and wait until each applied
    /// the pushed commit: exit 0 only when all did
    Push {
        /// Wait for every replica to apply the pushed commit (a line each as it settles)
        #[arg(long)]
        wait: bool,
        /// How long to wait (30s, 2m)
        #[arg(long, default_value = "30s", value_parser = parse_lifetime, requires = "wait")]
        timeout: u64,
        #[command(flatten)]
        fleet: super::fleet_cmd::FleetServers,
    },
    /// Fetch and fast-forward
    Pull,
    /// Commits that changed clients.toml: author, time, message (and the semantic diff)
    Log {
        /// Show what each commit changed, widening changes flagged
        #[arg(long)]
        semantic: bool,
        /// How many commits
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
    },
    /// Grant OPERATION on RESOURCE to IDENTITY
    Grant {
        identity: String,
        resource: String,
        operation: String,
        #[command(flatten)]
        force: Force,
    },
    /// Revoke OPERATION on RESOURCE from IDENTITY
    Revoke {
        identity: String,
        resource: String,
        operation: String,
        #[command(flatten)]
        force: Force,
    },
    /// Revoke a token and every token delegated from it: adds one of its blocks' revocation ids
    /// to revocations.toml beside clients.toml (then commit and push as usual)
    RevokeToken {
        #[command(flatten)]
        token: super::TokenSource,
        /// A revocation id instead of a token (hex, as `token inspect` shows)
        #[arg(long, conflicts_with_all = ["token_name", "token_file"])]
        id: Option<String>,
        /// Which block of the token: 0 cuts off the whole token family, the last (the default)
        /// only this token and what is delegated from it
        #[arg(long, conflicts_with = "id")]
        block: Option<usize>,
        /// Why (reviewers read it)
        #[arg(long)]
        reason: String,
        /// Who is revoking (recorded in the file)
        #[arg(long)]
        by: Option<String>,
    },
    /// Withdraw a revocation from revocations.toml: the token (and those delegated from it) is
    /// accepted again once committed and pushed. Other entries and comments stay
    WithdrawRevocation {
        /// The revocation id (hex, as `policy revocations` lists it)
        id: String,
    },
    /// The revoked ids in revocations.toml, with who, when and why
    Revocations,
    /// Add a client (no permissions yet)
    AddClient {
        identity: String,
        #[command(flatten)]
        force: Force,
    },
    /// Remove a client and its comment
    RemoveClient {
        identity: String,
        #[command(flatten)]
        force: Force,
    },
    /// Assign SUBJECT a ROLE in REALM
    Assign {
        realm: String,
        subject: String,
        role: String,
        #[command(flatten)]
        force: Force,
    },
    /// Remove SUBJECT's role assignment in REALM (it falls back to the default role)
    Unassign {
        realm: String,
        subject: String,
        #[command(flatten)]
        force: Force,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Force {
    /// Write the edit even if it makes the policy invalid
    #[arg(long)]
    pub force: bool,
}

pub fn run(command: PolicyCommand, file: PolicyFile) -> CommandResult {
    match command {
        PolicyCommand::Validate { path } => validate(&resolve_file(path.or(file.file))?),
        PolicyCommand::Tree { path } => tree(&resolve_file(path.or(file.file))?),
        PolicyCommand::Can {
            identity,
            resource,
            operation,
            domain,
        } => {
            let path = resolve_file(file.file)?;
            let loaded = load_file(&path)?;
            match (resource, operation) {
                (Some(resource), Some(operation)) => decide(
                    &loaded,
                    Request {
                        identity,
                        resource,
                        operation,
                        domain,
                    },
                ),
                _ => can(&loaded, &identity),
            }
        }
        PolicyCommand::Diff {
            old,
            new,
            replay,
            text,
        } => {
            let mut report = diff(file.file.clone(), &old, new.as_deref(), replay.as_deref())?;
            if text {
                let (root, relative) = repository_of(file.file)?;
                let patch = gitops::text_diff(&root, &old, new.as_deref(), &relative)
                    .map_err(git_failure)?;
                report.text = format!("{patch}\n{}", report.text);
                report.json["text_diff"] = json!(patch);
            }
            Ok(report)
        }
        PolicyCommand::Unused { audit, since } => {
            let loaded = load_file(&resolve_file(file.file)?)?;
            unused(&loaded, &audit, since, unix_now())
        }
        PolicyCommand::Tighten {
            audit,
            since,
            apply,
        } => tighten(&resolve_file(file.file)?, &audit, since, apply, unix_now()),
        PolicyCommand::Report {
            since,
            audit,
            window,
            format,
            output,
            key_set,
        } => review_report(
            crate::review::ReportRequest {
                file: resolve_file(file.file)?,
                since,
                audit: (!audit.is_empty())
                    .then(|| (crate::audit_trail::audit_files(&audit), window)),
                key_set,
                now: unix_now(),
            },
            format,
            output.as_deref(),
        ),
        PolicyCommand::Status => repo_status(file.file),
        PolicyCommand::RevokeToken {
            token,
            id,
            block,
            reason,
            by,
        } => revoke_token(file.file, &token, id, block, reason, by),
        PolicyCommand::WithdrawRevocation { id } => withdraw_revocation(file.file, &id),
        PolicyCommand::Revocations => revocations(file.file),
        PolicyCommand::Commit { message, fleet } => commit(file.file, &message, &fleet),
        PolicyCommand::Push {
            wait,
            timeout,
            fleet,
        } => push(file.file, wait.then_some((timeout, fleet))),
        PolicyCommand::Pull => pull(file.file),
        PolicyCommand::Log { semantic, limit } => log(file.file, semantic, limit),
        PolicyCommand::Grant {
            identity,
            resource,
            operation,
            force,
        } => edit(
            file.file,
            Edit::Grant {
                identity,
                resource,
                operation,
            },
            force.force,
        ),
        PolicyCommand::Revoke {
            identity,
            resource,
            operation,
            force,
        } => edit(
            file.file,
            Edit::Revoke {
                identity,
                resource,
                operation,
            },
            force.force,
        ),
        PolicyCommand::AddClient { identity, force } => {
            edit(file.file, Edit::AddClient { identity }, force.force)
        }
        PolicyCommand::RemoveClient { identity, force } => {
            edit(file.file, Edit::RemoveClient { identity }, force.force)
        }
        PolicyCommand::Assign {
            realm,
            subject,
            role,
            force,
        } => edit(
            file.file,
            Edit::Assign {
                realm,
                subject,
                role,
            },
            force.force,
        ),
        PolicyCommand::Unassign {
            realm,
            subject,
            force,
        } => edit(file.file, Edit::Unassign { realm, subject }, force.force),
    }
}

/// The file given, else clients.toml at the root of the current git repository.
fn resolve_file(given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    if let Some(path) = given {
        return Ok(path);
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::usage(format!("cannot read the current directory: {e}")))?;
    let root = gitops::repository_root(&cwd)
        .map_err(|e| Failure::usage(format!("{e}; pass --file PATH to name the policy file")))?;
    Ok(root.join("clients.toml"))
}

fn read_file(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))
}

fn syntax_failure(path: &str, finding: &Finding) -> Failure {
    Failure::invalid(
        format!("{path}:{finding}"),
        json!({ "valid": false, "findings": [finding] }),
    )
}

fn load_file(path: &Path) -> Result<LoadedPolicy, Failure> {
    let text = read_file(path)?;
    policy::load(&text, unix_now()).map_err(|f| syntax_failure(&path.display().to_string(), &f))
}

fn render_findings(source: &str, findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("{source}:{f}\n")).collect()
}

fn summary(findings: &[Finding]) -> (usize, usize) {
    let errors = findings.iter().filter(|f| f.is_error()).count();
    (errors, findings.len() - errors)
}

fn validate(path: &Path) -> CommandResult {
    let loaded = load_file(path)?;
    let (errors, warnings) = summary(&loaded.findings);
    let source = path.display().to_string();
    let mut text = render_findings(&source, &loaded.findings);
    text.push_str(&format!(
        "{source}: {} clients, {errors} error(s), {warnings} warning(s)",
        loaded.policy.clients.len()
    ));
    let json = json!({
        "file": source,
        "valid": errors == 0,
        "clients": loaded.policy.clients.len(),
        "errors": errors,
        "warnings": warnings,
        "findings": loaded.findings,
    });
    let mut report = Report::new(text, json);
    if errors > 0 {
        report.code = EXIT_INVALID;
    }
    Ok(report)
}

fn tree(path: &Path) -> CommandResult {
    let loaded = load_file(path)?;
    let tree = DelegationTree::build(&loaded.policy, &loaded.findings);
    let json = serde_json::to_value(&tree).map_err(|e| Failure::usage(e.to_string()))?;
    Ok(Report::new(tree.render(), json))
}

fn can(loaded: &LoadedPolicy, identity: &str) -> CommandResult {
    let resolution = policy::resolve(&loaded.policy, identity);
    let how = match &resolution {
        policy::Resolution::Client(client) => format!("client entry at line {}", client.at.line),
        policy::Resolution::DomainSubject {
            realm,
            role,
            explicit,
        } => format!(
            "role {} in realm {}{}",
            role.name,
            realm.identity,
            if *explicit { "" } else { " (default role)" }
        ),
        policy::Resolution::DomainSubjectWithoutRole { realm } => {
            format!("realm {} (no role applies)", realm.identity)
        }
        policy::Resolution::Unconfigured { .. } => String::new(),
    };
    match policy::permissions(&loaded.policy, identity) {
        Some(permissions) => Ok(Report::new(
            format!("{identity} may: {permissions}\n  via {how}"),
            json!({ "identity": identity, "configured": true, "via": how, "permissions": permissions }),
        )),
        None => {
            let decision = policy::decide(
                &loaded.policy,
                &Request {
                    identity: identity.into(),
                    resource: String::new(),
                    operation: String::new(),
                    domain: None,
                },
            );
            Err(Failure::invalid(
                decision.reason,
                json!({ "identity": identity, "configured": false }),
            ))
        }
    }
}

fn decide(loaded: &LoadedPolicy, request: Request) -> CommandResult {
    let decision = policy::decide(&loaded.policy, &request);
    let json =
        json!({ "request": request, "allowed": decision.allowed, "reason": decision.reason });
    let mut report = Report::new(
        format!(
            "{}: {}",
            if decision.allowed { "allow" } else { "deny" },
            decision.reason
        ),
        json,
    );
    if !decision.allowed {
        report.code = EXIT_INVALID;
    }
    Ok(report)
}

/// Reads a side of a diff: a file if it exists, else a git revision of the policy repository.
fn read_side(spec: &str, policy_file: &Path) -> Result<(String, String), Failure> {
    let as_path = Path::new(spec);
    if as_path.is_file() {
        return Ok((read_file(as_path)?, spec.to_string()));
    }
    let repo = PolicyRepo::discover(policy_file);
    let (root, relative) = repo.relative_policy().map_err(|_| {
        Failure::usage(format!(
            "{spec:?} is not a file, and {} is not inside a git repository",
            policy_file.display()
        ))
    })?;
    let text = gitops::read_at_revision(root, spec, &relative)
        .map_err(|e| Failure::usage(e.to_string()))?;
    Ok((text, format!("{spec}:{}", relative.display())))
}

fn diff(
    file: Option<PathBuf>,
    old: &str,
    new: Option<&str>,
    replay: Option<&Path>,
) -> CommandResult {
    let policy_file = resolve_file(file)?;
    let (old_text, old_name) = read_side(old, &policy_file)?;
    let (new_text, new_name) = match new {
        Some(spec) => read_side(spec, &policy_file)?,
        None => (read_file(&policy_file)?, policy_file.display().to_string()),
    };
    let now = unix_now();
    let old_policy = policy::load(&old_text, now).map_err(|f| syntax_failure(&old_name, &f))?;
    let new_policy = policy::load(&new_text, now).map_err(|f| syntax_failure(&new_name, &f))?;
    let diff = policy::diff(&old_policy.policy, &new_policy.policy);
    let mut text = format!(
        "{old_name} → {new_name}: {} change(s), {} widening\n",
        diff.changes.len(),
        diff.widening().count()
    );
    for change in &diff.changes {
        text.push_str(&format!("  {change}\n"));
    }
    let mut json = json!({ "old": old_name, "new": new_name, "changes": diff.changes, "widening": diff.widening().count() });
    if let Some(path) = replay {
        let requests = read_requests(path)?;
        let rows = policy::replay(&old_policy.policy, &new_policy.policy, &requests);
        let changed: Vec<_> = rows.iter().filter(|r| r.changed()).collect();
        text.push_str(&format!(
            "\nreplay: {} request(s), {} decision(s) change\n",
            rows.len(),
            changed.len()
        ));
        for row in &changed {
            let verdict = |allowed: bool| if allowed { "allow" } else { "deny" };
            text.push_str(&format!(
                "  {}: {} → {} ({})\n",
                row.request,
                verdict(row.before.allowed),
                verdict(row.after.allowed),
                row.after.reason
            ));
        }
        json["replay"] = json!(rows);
    }
    Ok(Report::new(text, json))
}

fn read_requests(path: &Path) -> Result<Vec<Request>, Failure> {
    let text = read_file(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(i, line)| {
            Request::parse(line)
                .map_err(|e| Failure::usage(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

fn edit(file: Option<PathBuf>, edit: Edit, force: bool) -> CommandResult {
    let path = resolve_file(file)?;
    let text = read_file(&path)?;
    let source = path.display().to_string();
    let mut session =
        EditSession::open(&text, unix_now()).map_err(|f| syntax_failure(&source, &f))?;
    let before: Vec<Finding> = session.current().errors().cloned().collect();
    session
        .apply(&edit)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let introduced: Vec<Finding> = session
        .current()
        .errors()
        .filter(|f| {
            !before
                .iter()
                .any(|b| b.code == f.code && b.message == f.message)
        })
        .cloned()
        .collect();
    if !introduced.is_empty() && !force {
        return Err(Failure::invalid(
            format!(
                "refused: the edit would make the policy invalid (pass --force to write it anyway):\n{}",
                render_findings(&source, &introduced).trim_end()
            ),
            json!({ "written": false, "findings": introduced }),
        ));
    }
    let old = policy::load(&text, unix_now()).map_err(|f| syntax_failure(&source, &f))?;
    let diff = policy::diff(&old.policy, &session.current().policy);
    write_preserving_mode(&path, session.text())?;
    let mut out = format!("Wrote {source}\n");
    for change in &diff.changes {
        out.push_str(&format!("  {change}\n"));
    }
    if !introduced.is_empty() {
        out.push_str(&render_findings(&source, &introduced));
    }
    Ok(Report::new(
        out,
        json!({ "written": true, "file": source, "edit": edit, "changes": diff.changes, "findings": introduced }),
    ))
}

/// The policy repository the policy file is in (a repository is needed only to commit).
fn repo(file: Option<PathBuf>) -> Result<PolicyRepo, Failure> {
    Ok(PolicyRepo::discover(&resolve_file(file)?))
}

fn repo_failure(error: RepoError) -> Failure {
    match error {
        RepoError::Refused(refusal) => {
            let json =
                json!({ "committed": false, "file": refusal.file, "findings": refusal.errors });
            Failure::invalid(refusal.to_string(), json)
        }
        RepoError::Git(error) => git_failure(error),
        error @ RepoError::Keys(_) => Failure::invalid(
            error.to_string(),
            json!({ "committed": false, "file": crate::keyset::MANIFEST }),
        ),
        other => Failure::usage(other.to_string()),
    }
}

fn revoke_token(
    file: Option<PathBuf>,
    token: &super::TokenSource,
    id: Option<String>,
    block: Option<usize>,
    reason: String,
    by: Option<String>,
) -> CommandResult {
    let (id, what) = match id {
        Some(given) => {
            let given = given.to_lowercase();
            match policy::revocations::canonical_id(&given) {
                Ok(id) if id != given => (
                    id,
                    "the given id, in its canonical form (the low-S half of its P-256 signature pair, which revokes both halves)".to_string(),
                ),
                _ => (given, "the given id".to_string()),
            }
        }
        None => {
            let loaded = super::input::load_token(token)?;
            let view = crate::token::inspect(&loaded.text, None, unix_now())?;
            let index = block.unwrap_or(view.blocks.len() - 1);
            let chosen = view.blocks.get(index).ok_or_else(|| {
                Failure::usage(format!(
                    "the token has {} blocks (0 to {}); --block {index} does not exist",
                    view.blocks.len(),
                    view.blocks.len() - 1
                ))
            })?;
            let who = view.effective_identity.clone().unwrap_or_default();
            let what = format!(
                "block {index} ({}) of {} — the token of {who}",
                chosen.role, loaded.source
            );
            (chosen.revocation_id.clone(), what)
        }
    };
    let repo = repo(file)?;
    let path = repo.revocations_path();
    let entry = policy::NewRevocation {
        id,
        reason,
        by,
        at: unix_now(),
    };
    let id = repo.revoke(&entry).map_err(repo_failure)?;
    Ok(Report::new(
        format!(
            "Revoked {what}\n  id {id}\nin {} (not committed: `policy commit -m ...` then `policy push`; the server refuses it once it syncs)",
            path.display()
        ),
        json!({ "revoked": id, "file": path }),
    ))
}

fn revocations(file: Option<PathBuf>) -> CommandResult {
    let repo = repo(file)?;
    let path = repo.revocations_path();
    let (list, findings) = repo.revocations().map_err(repo_failure)?;
    let mut out = String::new();
    if list.is_empty() {
        out.push_str(&format!("No revocations in {}\n", path.display()));
    }
    for entry in &list.entries {
        let by = entry.by.as_deref().unwrap_or("(unknown)");
        let at = entry.at.map_or("(no time)".to_string(), |t| t.to_string());
        out.push_str(&format!(
            "{}  by {by} at {at}: {}\n",
            entry.id, entry.reason
        ));
    }
    if !findings.is_empty() {
        out.push_str(&render_findings(&path.display().to_string(), &findings));
    }
    let report = Report::new(
        out,
        json!({ "revoked": list.entries, "findings": findings }),
    );
    if findings.iter().any(Finding::is_error) {
        return Err(Failure::invalid(report.text, report.json));
    }
    Ok(report)
}

fn withdraw_revocation(file: Option<PathBuf>, id: &str) -> CommandResult {
    let repo = repo(file)?;
    let entry = repo.withdraw(id).map_err(repo_failure)?;
    let path = repo.revocations_path();
    Ok(Report::new(
        format!(
            "Withdrew the revocation of {} ({})\nfrom {} (not committed: `policy commit -m ...` then `policy push`; the server accepts the token again once it syncs)",
            entry.id,
            entry.reason,
            path.display()
        ),
        json!({ "withdrawn": entry.id, "file": path }),
    ))
}

/// Replaces the file atomically, keeping its permissions.
fn write_preserving_mode(path: &Path, text: &str) -> Result<(), Failure> {
    crate::fsutil::replace_preserving_mode(path, text.as_bytes())
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))
}

/// The repository root and the policy file's path inside it.
fn repository_of(file: Option<PathBuf>) -> Result<(PathBuf, PathBuf), Failure> {
    let repo = repo(file)?;
    let (root, relative) = repo.relative_policy().map_err(repo_failure)?;
    Ok((root.to_path_buf(), relative))
}

fn git_failure(error: gitops::GitError) -> Failure {
    match error {
        gitops::GitError::PolicyConflict {
            ref upstream,
            ref commit,
            ref conflicts,
        } => Failure::invalid(
            format!(
                "{error}\nResolve them in the console (Changes, p), or reset to the upstream there; the repository is as it was."
            ),
            json!({
                "pushed": false,
                "upstream": upstream,
                "commit": commit,
                "conflicts": conflicts,
            }),
        ),
        gitops::GitError::Rejected { .. }
        | gitops::GitError::Conflict { .. }
        | gitops::GitError::RebaseRefused { .. }
        | gitops::GitError::Diverged { .. } => Failure::invalid(error.to_string(), json!({})),
        other => Failure::usage(other.to_string()),
    }
}

fn repo_status(file: Option<PathBuf>) -> CommandResult {
    let (root, relative) = repository_of(file)?;
    let status = gitops::status(&root, &relative).map_err(git_failure)?;
    let upstream = status
        .upstream
        .clone()
        .unwrap_or_else(|| "no upstream".into());
    let text = format!(
        "On {} ({upstream}): {} is {}; {} ahead, {} behind (as of the last fetch)",
        status.branch,
        relative.display(),
        status.file,
        status.ahead,
        status.behind
    );
    Ok(Report::new(
        text,
        serde_json::to_value(&status).unwrap_or_default(),
    ))
}

fn commit(
    file: Option<PathBuf>,
    message: &str,
    fleet: &super::fleet_cmd::FleetServers,
) -> CommandResult {
    let repo = repo(file)?;
    let root = repo.root().map_err(repo_failure)?.to_path_buf();
    let mut notes = Vec::new();
    let committed = repo
        .commit_approving(message, unix_now(), |id| {
            replicas_hold(&root, id, fleet, &mut notes)
        })
        .map_err(repo_failure)?;
    let mut text = format!(
        "Committed {} as {}",
        committed.policy.display(),
        &committed.id[..12]
    );
    for note in &notes {
        text.push_str(&format!("\n{note}"));
    }
    Ok(Report::new(
        text,
        json!({ "committed": true, "commit": committed.id, "notes": notes }),
    ))
}

/// Whether every replica that answers holds key `id`'s private key (an activation being
/// committed). Replicas that cannot be asked, or none known, do not stop the commit: `notes`
/// says so.
fn replicas_hold(
    root: &Path,
    id: u32,
    servers: &super::fleet_cmd::FleetServers,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let target = super::fleet_cmd::FleetTarget {
        workspace: None,
        repo: None,
        servers: servers.clone(),
    };
    let Ok(fleet) = target.resolve(Some(root)) else {
        notes.push(format!(
            "key {id} becomes active: no replicas known to ask whether they hold it ({} or --server)",
            crate::fleet::FILE
        ));
        return Ok(());
    };
    let mut answered = Vec::new();
    for (replica, status) in super::fleet_cmd::ask_statuses(&fleet) {
        match status {
            Ok(status) => answered.push((replica, status)),
            Err(error) => notes.push(format!(
                "{} could not be asked whether it holds key {id}: {error}",
                replica.name
            )),
        }
    }
    crate::fleet::activation_refusal(id, &answered).map_or(Ok(()), Err)
}

fn push(
    file: Option<PathBuf>,
    wait: Option<(u64, super::fleet_cmd::FleetServers)>,
) -> CommandResult {
    let (root, relative) = repository_of(file)?;
    // The replicas are found before pushing: a wait that cannot start is said up front.
    let fleet = match &wait {
        Some((_, servers)) => Some(
            super::fleet_cmd::FleetTarget {
                workspace: None,
                repo: None,
                servers: servers.clone(),
            }
            .resolve(Some(&root))?,
        ),
        None => None,
    };
    let outcome = gitops::push_reconciling(&root, &relative).map_err(git_failure)?;
    let text = match &outcome {
        gitops::PushOutcome::UpToDate => {
            "Nothing to push: the upstream has every commit".to_string()
        }
        gitops::PushOutcome::Pushed { commits } => format!("Pushed {commits} commit(s)"),
        gitops::PushOutcome::Rebased {
            upstream,
            commits,
            notes,
        } => {
            let mut text = format!(
                "{upstream} had moved on; replayed {commits} commit(s) onto it (semantic rebase) and pushed"
            );
            for note in notes {
                text.push_str(&format!("\n  note: {note}"));
            }
            text
        }
    };
    let mut json = serde_json::to_value(&outcome).unwrap_or_default();
    let (Some(fleet), Some((timeout, _))) = (fleet, wait) else {
        return Ok(Report::new(text, json));
    };
    let commit = gitops::commit_id(&root, "HEAD").map_err(git_failure)?;
    eprintln!(
        "{text}\nWaiting up to {} for {} replica(s) to apply {}",
        policy::duration::format(timeout),
        fleet.replicas.len(),
        &commit[..12]
    );
    let (reports, all) =
        super::fleet_cmd::wait_for(&fleet, &commit, std::time::Duration::from_secs(timeout));
    json["commit"] = json!(commit);
    json["replicas"] = serde_json::to_value(&reports).unwrap_or_default();
    if all {
        return Ok(Report::new(
            format!("{text}\nEvery replica applied {}", &commit[..12]),
            json,
        ));
    }
    let behind: Vec<String> = reports
        .iter()
        .filter(|r| r.standing != crate::fleet::Standing::InSync)
        .map(|r| format!("{} ({})", r.name, r.standing.word()))
        .collect();
    Err(Failure::invalid(
        format!(
            "{text}\nNot every replica applied {}: {}",
            &commit[..12],
            behind.join(", ")
        ),
        json,
    ))
}

fn pull(file: Option<PathBuf>) -> CommandResult {
    let (root, _) = repository_of(file)?;
    let count = gitops::pull(&root).map_err(git_failure)?;
    let text = if count == 0 {
        "Already up to date".to_string()
    } else {
        format!("Fast-forwarded {count} commit(s)")
    };
    Ok(Report::new(text, json!({ "fast_forwarded": count })))
}

fn log(file: Option<PathBuf>, semantic: bool, limit: usize) -> CommandResult {
    let (root, relative) = repository_of(file)?;
    let commits = gitops::log(&root, &relative, limit).map_err(git_failure)?;
    let now = unix_now();
    let mut text = String::new();
    let mut entries = Vec::new();
    for commit in &commits {
        text.push_str(&format!(
            "{} {} <{}> {}\n    {}\n",
            &commit.id[..12],
            commit.author,
            commit.email,
            crate::token::clock::format_unix(commit.time),
            commit.message.lines().next().unwrap_or("")
        ));
        let mut entry = serde_json::to_value(commit).unwrap_or_default();
        if semantic {
            let changes = semantic_changes(&root, &relative, commit, now);
            for change in &changes {
                text.push_str(&format!("      {change}\n"));
            }
            entry["changes"] = json!(changes.iter().map(|c| c.to_string()).collect::<Vec<_>>());
        }
        entries.push(entry);
    }
    if commits.is_empty() {
        text.push_str("No commits touch the policy file");
    }
    Ok(Report::new(text, json!({ "commits": entries })))
}

fn semantic_changes(
    root: &Path,
    relative: &Path,
    commit: &gitops::CommitInfo,
    now: i64,
) -> Vec<policy::Change> {
    let read = |rev: &str| {
        gitops::read_at_revision(root, rev, relative)
            .ok()
            .and_then(|t| policy::load(&t, now).ok())
    };
    let Some(after) = read(&commit.id) else {
        return Vec::new();
    };
    let before = commit
        .parent
        .as_deref()
        .and_then(read)
        .map(|l| l.policy)
        .unwrap_or_default();
    policy::diff(&before, &after.policy).changes
}

/// `policy report`: the report printed, or written to `output` with its summary printed.
fn review_report(
    request: crate::review::ReportRequest,
    format: crate::review::report::Format,
    output: Option<&Path>,
) -> CommandResult {
    let report = crate::review::gather(&request).map_err(Failure::usage)?;
    let rendered = report.render(format);
    let json = serde_json::to_value(&report).unwrap_or_default();
    let Some(output) = output else {
        return Ok(Report::new(rendered.trim_end().to_string(), json));
    };
    crate::fsutil::replace_preserving_mode(output, rendered.as_bytes())
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", output.display())))?;
    Ok(Report::new(
        format!("{}: {}", output.display(), report.summary()),
        json!({ "written": output.display().to_string(), "summary": report.summary() }),
    ))
}

fn parse_lifetime(text: &str) -> Result<u64, String> {
    policy::duration::parse(text).map_err(|e| e.to_string())
}

/// `policy unused`: what the policy grants that the audit trail shows unused since `now - since`.
fn unused(loaded: &LoadedPolicy, audit: &[PathBuf], since: u64, now: i64) -> CommandResult {
    let evidence = Evidence::read(audit, since, now)?;
    let (entries, granted) = policy::unused(&loaded.policy, &evidence.usage, evidence.from);
    let mut text = evidence.header("Unused");
    for entry in &entries {
        text.push_str(&format!("  {}\n", entry.describe(now)));
    }
    let count = |kind: policy::UnusedKind| entries.iter().filter(|e| e.kind == kind).count();
    text.push_str(&format!(
        "{} of {} grants, {} of {} role permissions, {} of {} role assignments, {} of {} identities unused",
        count(policy::UnusedKind::Grant),
        granted.grants,
        count(policy::UnusedKind::RolePermission),
        granted.role_permissions,
        count(policy::UnusedKind::RoleAssignment),
        granted.role_assignments,
        count(policy::UnusedKind::Identity),
        granted.identities,
    ));
    Ok(Report::new(
        text,
        json!({
            "since": evidence.from,
            "window_seconds": since,
            "audit_files": evidence.file_names(),
            "allowed_requests": evidence.usage.events,
            "trail_starts_after_window": evidence.short_trail(),
            "granted": granted,
            "unused": entries,
        }),
    ))
}

/// The audit trail read for a window.
struct Evidence {
    files: Vec<PathBuf>,
    usage: policy::Usage,
    from: i64,
    window: String,
}

impl Evidence {
    fn read(audit: &[PathBuf], since: u64, now: i64) -> Result<Evidence, Failure> {
        let files = crate::audit_trail::audit_files(audit);
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            return Err(Failure::usage(format!(
                "{}: no such audit file (the server writes server/audit.jsonl in a workspace, or where --audit-file says)",
                missing.display()
            )));
        }
        Ok(Evidence {
            usage: crate::audit_trail::read_usage(&files),
            files,
            from: now.saturating_sub(i64::try_from(since).unwrap_or(i64::MAX)),
            window: policy::duration::format(since),
        })
    }

    fn short_trail(&self) -> bool {
        self.usage.first.is_none_or(|first| first > self.from)
    }

    fn file_names(&self) -> Vec<String> {
        self.files.iter().map(|f| f.display().to_string()).collect()
    }

    /// What was read, and a warning when the trail is shorter than the window.
    fn header(&self, what: &str) -> String {
        let mut text = format!(
            "{what} in the last {} (audit: {} file(s), {} allowed requests",
            self.window,
            self.files.len(),
            self.usage.events
        );
        match (self.usage.first, self.usage.last) {
            (Some(first), Some(last)) => text.push_str(&format!(
                ", {} to {})\n",
                crate::token::clock::format_unix(first),
                crate::token::clock::format_unix(last)
            )),
            _ => text.push_str(")\n"),
        }
        if self.short_trail() {
            text.push_str(&format!(
                "note: the audit trail does not reach back {}: access used only before it began counts as unused\n",
                self.window
            ));
        }
        text
    }
}

/// `policy tighten`: the edits removing unused access, the replay that proves them, and with
/// `apply` the policy file rewritten losslessly.
fn tighten(path: &Path, audit: &[PathBuf], since: u64, apply: bool, now: i64) -> CommandResult {
    let source = path.display().to_string();
    let text = read_file(path)?;
    let loaded = policy::load(&text, now).map_err(|f| syntax_failure(&source, &f))?;
    let evidence = Evidence::read(audit, since, now)?;
    let proposal = policy::tighten(&loaded.policy, &evidence.usage, evidence.from, now);
    let mut out = evidence.header("Tightening: access unused");
    if proposal.items.is_empty() {
        out.push_str("Nothing to remove: every piece of access was used in the window");
        if !proposal.blocked.is_empty() {
            out.push_str(" or is needed by a request seen");
        }
        out.push('\n');
    } else {
        out.push_str(&format!("Proposed edits ({}):\n", proposal.items.len()));
        for item in &proposal.items {
            out.push_str(&format!(
                "  - {}\n      {}\n",
                item.describe_edit(),
                item.unused.describe(now)
            ));
        }
    }
    for blocked in &proposal.blocked {
        out.push_str(&format!(
            "Left out: {} — it would deny {} ({})\n",
            blocked.item.describe_edit(),
            blocked.request,
            blocked.would_be.reason
        ));
    }
    for (unused, why) in &proposal.kept {
        let what = match unused.kind {
            policy::UnusedKind::Identity => format!("client {} (unused)", unused.identity),
            _ => format!(
                "{} {} on {} of {} (unused)",
                unused.kind.label(),
                unused.operation.as_deref().unwrap_or(""),
                unused.resource.as_deref().unwrap_or(""),
                unused.identity
            ),
        };
        out.push_str(&format!("Not removed: {what} — {why}\n"));
    }
    let proof = &proposal.proof;
    out.push_str(&format!(
        "Proof: {} request(s) allowed in the window replayed against the proposed policy: {} changed; {} identit(ies) seen still served\n",
        proof.replayed, proof.changed, proof.identities
    ));
    if !proof.already_denied.is_empty() {
        out.push_str(&format!(
            "note: {} request(s) the trail saw allowed are denied by the current policy already (it changed since), e.g. {}\n",
            proof.already_denied.len(),
            proof.already_denied[0]
        ));
    }
    if !proposal.findings.is_empty() {
        out.push_str(&format!(
            "The proposed policy would not validate; it is not applied:\n{}",
            render_findings(&source, &proposal.findings)
        ));
    }
    let written = apply && !proposal.items.is_empty() && proposal.findings.is_empty();
    if written {
        let text = proposal
            .write(&loaded.document, now)
            .map_err(|e| Failure::invalid(e.to_string(), json!({ "written": false })))?;
        write_preserving_mode(path, &text)?;
        out.push_str(&format!(
            "Wrote {source}: {} edit(s), comments and layout kept; review with `policy diff HEAD`, then commit\n",
            proposal.items.len()
        ));
    } else if !proposal.items.is_empty() && proposal.findings.is_empty() {
        out.push_str("Run again with --apply to write these edits (comments and layout kept)\n");
    }
    let body = json!({
        "since": evidence.from,
        "window_seconds": since,
        "audit_files": evidence.file_names(),
        "trail_starts_after_window": evidence.short_trail(),
        "items": proposal.items,
        "blocked": proposal.blocked,
        "kept": proposal.kept.iter().map(|(u, why)| json!({ "unused": u, "why": why })).collect::<Vec<_>>(),
        "proof": proposal.proof,
        "findings": proposal.findings,
        "written": written,
    });
    if apply && !proposal.findings.is_empty() {
        return Err(Failure::invalid(out, body));
    }
    Ok(Report::new(out, body))
}
