//! Screen 6, Server: the embedded or remote server's address, the commit it applied against the
//! local HEAD (in sync or not), its last sync and error, counters, and the live audit feed with
//! a filter.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{ListItem, ListState, Paragraph, Wrap};

use super::{Cx, Hint, Screen, hint, hints};
use std::any::Any;

use crate::console::app::{App, Level};
use crate::console::jobs::{
    FleetView, Job, JobResult, KeyChange, KeyChangeFailure, ReplicaAudit, ServerStatus,
};
use crate::console::keymap::{Action, Scope};
use crate::console::screens::activity::{self, SortBy};
use crate::console::screens::clients::move_cursor;
use crate::console::screens::fleet;
use crate::console::ui::{list_pane, pane};
use crate::keyset::KeyState;
use crate::wire::{AuditEvent, KeyInfo};

/// How many audit events the console keeps.
pub const FEED_LIMIT: usize = 2_000;

/// What a Server confirmation is about.
enum ServerConfirm {
    ActivateKey(u32),
    RetireKey { id: u32, force: bool },
}

#[derive(Default)]
pub struct ServerState {
    pub status: Option<Result<ServerStatus, String>>,
    /// When the last successful status arrived.
    pub last_seen: Option<i64>,
    /// The console's own server's events, in its order (their `seq` is its cursor).
    pub events: VecDeque<AuditEvent>,
    /// The fleet's other replicas' events, each with its replica, in time order.
    pub fleet_events: VecDeque<(String, AuditEvent)>,
    pub next_seq: u64,
    /// The audit cursor of each of the fleet's other replicas.
    pub fleet_cursors: Vec<(String, u64)>,
    pub filter: String,
    /// Index into the visible (filtered, newest first) events, or activity rows.
    pub selected: usize,
    /// Per-identity activity instead of the feed.
    pub show_activity: bool,
    /// The root key set instead of the feed.
    pub show_keys: bool,
    pub sort: SortBy,
    /// Seconds without activity after which an identity is marked quiet.
    pub quiet_after: i64,
    /// The replicas of the repository's `fleet.toml` as last asked (`None` without a fleet):
    /// with one, this is the Fleet screen.
    pub fleet: Option<Result<FleetView, String>>,
    /// The last push followed across the fleet.
    pub rollout: Option<fleet::Rollout>,
    /// The fleet's replicas are selectable (instead of the feed).
    pub show_fleet: bool,
    /// Each replica's recent load, from the fleet's last two answers.
    pub rates: fleet::Rates,
}

impl ServerState {
    pub fn status_result(&mut self, result: Result<ServerStatus, String>, now: i64) {
        if result.is_ok() {
            self.last_seen = Some(now);
        }
        self.status = Some(result);
    }

    /// Appends new events; true when there were any.
    pub fn audit_result(&mut self, result: Result<(Vec<AuditEvent>, u64), String>) -> bool {
        let Ok((events, next)) = result else {
            return false;
        };
        let any = !events.is_empty();
        for event in events {
            if self.events.len() == FEED_LIMIT {
                self.events.pop_front();
            }
            self.events.push_back(event);
        }
        self.next_seq = self.next_seq.max(next);
        any
    }

    /// Merges the fleet's other replicas' new events into the feed, each tagged with its
    /// replica and kept in time order; true when there were any. A replica that could not be
    /// read keeps its cursor.
    pub fn fleet_audit_result(&mut self, pages: Vec<ReplicaAudit>) -> bool {
        let mut any = false;
        for (name, page) in pages {
            let Ok((events, next)) = page else {
                continue;
            };
            any |= !events.is_empty();
            for event in events {
                if self.fleet_events.len() == FEED_LIMIT {
                    self.fleet_events.pop_front();
                }
                let later = self
                    .fleet_events
                    .iter()
                    .rev()
                    .take_while(|(_, e)| e.time > event.time)
                    .count();
                let at = self.fleet_events.len() - later;
                self.fleet_events.insert(at, (name.clone(), event));
            }
            match self.fleet_cursors.iter_mut().find(|(n, _)| *n == name) {
                Some((_, cursor)) => *cursor = (*cursor).max(next),
                None => self.fleet_cursors.push((name, next)),
            }
        }
        any
    }

    /// Every event the feed holds: the console's own server's and the fleet's.
    pub fn all_events(&self) -> impl Iterator<Item = &AuditEvent> {
        self.events
            .iter()
            .chain(self.fleet_events.iter().map(|(_, e)| e))
    }

    /// How many events the feed holds.
    pub fn event_count(&self) -> usize {
        self.events.len() + self.fleet_events.len()
    }

    /// Events matching the filter, newest first.
    pub fn visible(&self) -> impl Iterator<Item = &AuditEvent> {
        self.visible_tagged().map(|(_, event)| event)
    }

    /// `visible`, each event with the replica it came from (`None`: the console's own
    /// server): the two feeds merged newest first; the filter also matches a replica's name.
    pub fn visible_tagged(&self) -> impl Iterator<Item = (Option<&str>, &AuditEvent)> {
        let needle = self.filter.to_lowercase();
        let mut own = self.events.iter().rev().map(|e| (None, e)).peekable();
        let mut fleet = self
            .fleet_events
            .iter()
            .rev()
            .map(|(name, e)| (Some(name.as_str()), e))
            .peekable();
        std::iter::from_fn(move || match (own.peek(), fleet.peek()) {
            (Some((_, a)), Some((_, b))) if b.time > a.time => fleet.next(),
            (Some(_), _) => own.next(),
            (None, _) => fleet.next(),
        })
        .filter(move |(source, e)| {
            needle.is_empty()
                || event_text(e).to_lowercase().contains(&needle)
                || source.is_some_and(|s| s.to_lowercase().contains(&needle))
        })
    }
}

fn event_text(event: &AuditEvent) -> String {
    let target = match (&event.operation, &event.resource) {
        (Some(op), Some(resource)) => format!(" {op} {resource}"),
        _ => String::new(),
    };
    format!(
        "{} {} {}{} — {}",
        event.result,
        event.endpoint,
        event.caller.as_deref().unwrap_or("(anonymous)"),
        target,
        event.reason
    )
}

impl Screen for ServerState {
    fn title(&self) -> &'static str {
        if self.fleet.is_some() {
            "Fleet"
        } else {
            "Server"
        }
    }

    fn scope(&self) -> Scope {
        Scope::Server
    }

    fn hints(&self) -> Vec<Hint> {
        if self.show_fleet {
            return vec![
                hint(Action::Select, "detail"),
                hint(Action::Sync, "sync all"),
                hint(Action::ShowFleet, "feed"),
                hint(Action::Copy, "copy url"),
            ];
        }
        if self.show_keys {
            let mut shown = vec![hint(Action::Select, "detail")];
            shown.extend(hints(&[
                Action::AddKey,
                Action::ActivateKey,
                Action::RetireKey,
                Action::ShowKeys,
            ]));
            return shown;
        }
        if self.show_activity {
            return vec![
                hint(Action::Filter, "filter"),
                hint(Action::Select, "detail"),
                hint(Action::SortActivity, "sort"),
                hint(Action::ShowActivity, "activity"),
                hint(Action::Copy, "copy"),
            ];
        }
        if self.fleet.is_some() {
            return vec![
                hint(Action::Filter, "filter"),
                hint(Action::Select, "detail"),
                hint(Action::Sync, "sync all"),
                hint(Action::ShowFleet, "replicas"),
                hint(Action::ShowKeys, "keys"),
                hint(Action::Copy, "copy"),
            ];
        }
        vec![
            hint(Action::Filter, "filter"),
            hint(Action::Select, "detail"),
            hint(Action::Sync, "sync"),
            hint(Action::ShowKeys, "keys"),
            hint(Action::Copy, "copy"),
        ]
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.filter)
    }

    fn set_filter(&mut self, text: String, _cx: &mut Cx) {
        self.filter = text;
        self.selected = 0;
    }

    fn render(&self, frame: &mut Frame, area: Rect, app: &App) {
        render(frame, area, app);
    }

    fn on_action(&mut self, action: Action, cx: &mut Cx) {
        self.act(action, cx);
    }

    fn on_confirm(&mut self, what: &dyn Any, cx: &mut Cx) {
        match what.downcast_ref::<ServerConfirm>() {
            Some(ServerConfirm::ActivateKey(id)) => {
                cx.submit(Job::ChangeKey(KeyChange::Activate(*id)));
            }
            Some(&ServerConfirm::RetireKey { id, force }) => {
                cx.submit(Job::ChangeKey(KeyChange::Retire { id, force }));
            }
            None => {}
        }
    }

    fn on_result(&mut self, result: JobResult, cx: &mut Cx) -> Option<JobResult> {
        match result {
            JobResult::ServerStatus(result) => self.status_result(result, cx.now),
            JobResult::ServerSynced(Ok(())) => cx.flash(Level::Info, "asked the server to sync"),
            JobResult::ServerSynced(Err(e)) => cx.flash(
                Level::Error,
                format!("the server did not take the sync: {e}"),
            ),
            JobResult::KeyChanged { change, outcome } => self.key_changed(change, outcome, cx),
            JobResult::Fleet(result) => fleet::fleet_result(self, result, cx),
            JobResult::FleetNudged { expected, nudged } => {
                if let Some(commit) = expected {
                    self.rollout = Some(fleet::Rollout::new(commit, cx.now, nudged));
                    cx.submit(Job::FleetStatus);
                } else if let Some((_, Err(error))) = nudged.first() {
                    cx.flash(
                        Level::Error,
                        format!("the fleet was not asked to sync: {error}"),
                    );
                }
            }
            // New decisions in the feed: the Changes screen replays them.
            JobResult::ServerAudit(result) => {
                if self.audit_result(result) {
                    cx.rebuild_views();
                }
            }
            JobResult::FleetAudit(pages) => {
                if self.fleet_audit_result(pages) {
                    cx.rebuild_views();
                }
            }
            other => return Some(other),
        }
        None
    }

    fn match_count(
        &self,
        policy: Option<&crate::policy::LoadedPolicy>,
        _tree: &crate::policy::DelegationTree,
    ) -> Option<(usize, usize)> {
        if self.show_activity {
            let shown = activity::visible_rows(self, policy).len();
            let all = activity::rows(self, policy, "").len();
            return Some((shown, all));
        }
        Some((self.visible().count(), self.event_count()))
    }
}

impl ServerState {
    fn act(&mut self, action: Action, cx: &mut Cx) {
        let visible = if self.show_fleet {
            self.replicas().len()
        } else if self.show_keys {
            self.keys().len()
        } else if self.show_activity {
            activity::visible_rows(self, cx.policy()).len()
        } else {
            self.visible().count()
        };
        if move_cursor(&mut self.selected, visible, action) {
            return;
        }
        match action {
            Action::ShowActivity | Action::FocusNext | Action::FocusPrev => {
                self.show_activity = !self.show_activity;
                self.show_keys = false;
                self.show_fleet = false;
                self.selected = 0;
            }
            Action::ShowKeys => {
                self.show_keys = !self.show_keys;
                self.show_activity = false;
                self.show_fleet = false;
                self.selected = 0;
            }
            Action::ShowFleet => {
                if self.fleet.is_none() {
                    cx.flash(
                        Level::Info,
                        "no fleet.toml in the repository: this server is the only replica",
                    );
                    return;
                }
                self.show_fleet = !self.show_fleet;
                self.show_keys = false;
                self.show_activity = false;
                self.selected = 0;
            }
            Action::Select if self.show_fleet => {
                let detail = self.replicas().get(self.selected).map(|report| {
                    let expected = match &self.fleet {
                        Some(Ok(view)) => view.expected.clone(),
                        _ => String::new(),
                    };
                    (
                        format!("Replica {}", report.name),
                        fleet::replica_detail(report, &expected, cx.now),
                    )
                });
                match detail {
                    Some((title, lines)) => cx.detail(title, lines),
                    None => cx.flash(Level::Info, "nothing selected"),
                }
            }
            Action::Copy if self.show_fleet => {
                let url = self.replicas().get(self.selected).map(|r| r.url.clone());
                if let Some(url) = url {
                    cx.copy("replica URL", url);
                }
            }
            Action::AddKey | Action::ActivateKey | Action::RetireKey => self.key_action(action, cx),
            Action::Select => self.show_detail(cx),
            Action::Copy if self.show_keys => {
                let key = self.keys().get(self.selected).map(|k| k.public_key.clone());
                if let Some(key) = key {
                    cx.copy("public key", key);
                }
            }
            Action::SortActivity => {
                self.sort = self.sort.next();
                self.show_activity = true;
                self.selected = 0;
            }
            Action::Copy | Action::RevokeToken if self.show_activity => {
                let rows = activity::visible_rows(self, cx.policy());
                match (action, rows.get(self.selected)) {
                    (Action::Copy, Some(row)) => {
                        let identity = row.identity.clone();
                        cx.copy("identity", identity);
                    }
                    (Action::RevokeToken, _) => cx.flash(
                        Level::Info,
                        "Revoke: pick a request in the audit feed (v), or a token's block on the Tokens screen",
                    ),
                    _ => {}
                }
            }
            Action::Sync => {
                if !cx.has_server {
                    cx.flash(Level::Warn, "Sync: no server configured");
                } else {
                    cx.submit(Job::ServerSync);
                    if self.fleet.is_some() {
                        // Every replica, followed until each serves the upstream's commit.
                        cx.submit(Job::FleetNudge);
                    }
                }
            }
            Action::Back => {
                self.filter.clear();
            }
            Action::RevokeToken => {
                let chosen = self
                    .visible()
                    .nth(self.selected)
                    .map(|e| (e.revocation_id.clone(), event_text(e)));
                match chosen {
                    Some((Some(id), text)) => {
                        let what = format!("the token seen in \"{text}\"");
                        cx.revoke(id, what);
                    }
                    Some((None, _)) => cx.flash(
                        Level::Info,
                        "no token was presented in this request (a certificate or nothing)",
                    ),
                    None => cx.flash(Level::Info, "select a request in the audit feed first"),
                }
            }
            Action::Copy => {
                let text = self.visible().nth(self.selected).map(event_text);
                if let Some(text) = text {
                    cx.copy("audit event", text);
                }
            }
            _ => {}
        }
    }
}

impl ServerState {
    /// Enter: all of the selected audit event, identity's activity or root key in a popup.
    fn show_detail(&self, cx: &mut Cx) {
        let now = cx.now;
        let detail = if self.show_keys {
            self.keys()
                .get(self.selected)
                .map(|key| ("Root key".to_string(), key_detail(key, now)))
        } else if self.show_activity {
            activity::visible_rows(self, cx.policy())
                .get(self.selected)
                .map(|row| {
                    let lines = activity_detail(row, now, self.quiet_after);
                    (format!("Activity of {}", row.identity), lines)
                })
        } else {
            self.visible_tagged()
                .nth(self.selected)
                .map(|(source, event)| {
                    let title = match source {
                        Some(replica) => format!("Audit event {} of replica {replica}", event.seq),
                        None => format!("Audit event {}", event.seq),
                    };
                    (title, event_detail(event, now))
                })
        };
        match detail {
            Some((title, lines)) => cx.detail(title, lines),
            None => cx.flash(Level::Info, "nothing selected"),
        }
    }

    /// The fleet's replicas as last asked (none without a fleet, or when it could not be read).
    pub fn replicas(&self) -> &[crate::fleet::ReplicaReport] {
        match &self.fleet {
            Some(Ok(view)) => &view.replicas,
            _ => &[],
        }
    }

    /// The server's root keys as the Server screen lists them: signing first, then retiring,
    /// next and retired.
    pub fn keys(&self) -> Vec<&KeyInfo> {
        let Some(Ok(status)) = &self.status else {
            return Vec::new();
        };
        let mut keys: Vec<&KeyInfo> = status.keys.iter().collect();
        keys.sort_by_key(|k| (rank(k.state), k.id));
        keys
    }

    fn key_action(&mut self, action: Action, cx: &mut Cx) {
        if !cx.has_server {
            cx.flash(Level::Warn, "Keys: no server configured");
            return;
        }
        if action == Action::AddKey {
            self.show_keys = true;
            self.show_activity = false;
            cx.submit(Job::ChangeKey(KeyChange::Add(
                crate::token::keys::KeyAlgorithm::Ed25519,
            )));
            return;
        }
        if !self.show_keys {
            cx.flash(
                Level::Info,
                "press K for the root key set, then select a key",
            );
            return;
        }
        let selected = self.keys().get(self.selected).map(|k| (k.id, k.state));
        let Some((id, state)) = selected else {
            cx.flash(Level::Info, "the server reported no keys yet");
            return;
        };
        let Some(id) = id else {
            cx.flash(
                Level::Warn,
                "this server was given a single --root-key: it cannot rotate (start it with --key-set)",
            );
            return;
        };
        let active = self
            .keys()
            .iter()
            .find(|k| k.state == KeyState::Active)
            .and_then(|k| k.id);
        match (action, state) {
            (Action::ActivateKey, KeyState::Active) => {
                cx.flash(Level::Info, format!("key {id} already signs"));
            }
            (Action::ActivateKey, KeyState::Retired) => cx.flash(
                Level::Warn,
                format!("key {id} is retired and its private key is gone: add a key (a) instead"),
            ),
            (Action::ActivateKey, _) => {
                let previous = active.map_or("the active key".to_string(), |a| format!("key {a}"));
                cx.confirm(
                    ServerConfirm::ActivateKey(id),
                    &format!("Activate root key {id}?"),
                    vec![
                        format!("Key {id} signs every token from now on; /public_key serves it."),
                        format!(
                            "{previous} starts retiring: it keeps verifying until the tokens it signed have expired."
                        ),
                        "Clients that cached the public key must fetch it again to verify new tokens locally.".into(),
                    ],
                );
            }
            (Action::RetireKey, KeyState::Active) => cx.flash(
                Level::Warn,
                format!("key {id} signs every token: activate another key (A) first"),
            ),
            (Action::RetireKey, KeyState::Retired) => {
                cx.flash(Level::Info, format!("key {id} is already retired"));
            }
            (Action::RetireKey, _) => cx.confirm(
                ServerConfirm::RetireKey { id, force: false },
                &format!("Retire root key {id}?"),
                vec![
                    format!("Key {id} stops verifying and its private key is deleted."),
                    "The server refuses while tokens it signed may still be live, and says which."
                        .into(),
                ],
            ),
            _ => {}
        }
    }

    /// What came of a key change: on a refusal to retire, offer the forced retirement (for a
    /// compromised key), naming what it would cut off.
    fn key_changed(
        &mut self,
        change: KeyChange,
        outcome: Result<String, KeyChangeFailure>,
        cx: &mut Cx,
    ) {
        match (change, outcome) {
            (_, Ok(summary)) => {
                cx.flash(Level::Success, summary);
                cx.submit(Job::ServerStatus);
                // A key set in the repository changed keys.toml in the clone: a change to commit.
                if cx.has_repo {
                    cx.refresh_git();
                }
                // Verification on the Tokens screen follows the set.
                cx.submit(Job::ServerPublicKey);
            }
            (KeyChange::Retire { id, force: false }, Err(failure)) if failure.refused => {
                let mut lines: Vec<String> = failure.message.lines().map(str::to_string).collect();
                lines.push(String::new());
                lines.push(format!(
                    "Retire key {id} by force? Only for a compromised key: those tokens stop working."
                ));
                cx.confirm(
                    ServerConfirm::RetireKey { id, force: true },
                    &format!("Key {id} still verifies live tokens"),
                    lines,
                );
            }
            (_, Err(failure)) => cx.flash(Level::Error, failure.message),
        }
    }
}

/// A time as the detail popup shows it: the date and how long ago (or until).
fn when(at: i64, now: i64) -> String {
    format!(
        "{} ({})",
        crate::token::clock::format_unix(at),
        crate::token::clock::describe_instant(at, now)
    )
}

/// Every field of an audit event, one per line.
fn event_detail(event: &AuditEvent, now: i64) -> Vec<String> {
    let or_none = |value: &Option<String>| value.clone().unwrap_or_else(|| "(none)".into());
    let mut lines = vec![
        format!("time:      {}", when(event.time, now)),
        format!("result:    {}", event.result),
        format!("endpoint:  {}", event.endpoint),
        format!(
            "caller:    {}",
            event.caller.as_deref().unwrap_or("(anonymous)")
        ),
        format!("auth:      {}", event.auth),
        format!("operation: {}", or_none(&event.operation)),
        format!("resource:  {}", or_none(&event.resource)),
        format!("reason:    {}", event.reason),
        format!("token:     {}", or_none(&event.revocation_id)),
    ];
    if let Some(at) = event.expires_at {
        lines.push(format!("issued identity token expires {}", when(at, now)));
    }
    lines.push(format!("sequence:  {}", event.seq));
    lines
}

/// Every field of a root key, one per line (the public key whole).
fn key_detail(key: &KeyInfo, now: i64) -> Vec<String> {
    let state = match key.state {
        KeyState::Active => "active (signs new tokens)",
        KeyState::Retiring => "retiring (verifies, does not sign)",
        KeyState::Next => "next (published, not signing)",
        KeyState::Retired => "retired (private key deleted)",
    };
    let mut lines = vec![
        format!(
            "id:         {}",
            key.id
                .map_or("(single key file)".into(), |id| id.to_string())
        ),
        format!("state:      {state}"),
        format!("public key: {}", key.public_key),
    ];
    let times = [
        ("created:   ", key.created_at),
        ("activated: ", key.activated_at),
        ("retiring:  ", key.retiring_since),
        ("verifies until:", key.verify_until),
        ("retired:   ", key.retired_at),
    ];
    for (name, at) in times {
        if let Some(at) = at {
            lines.push(format!("{name} {}", when(at, now)));
        }
    }
    lines
}

/// One identity's activity, every figure spelled out.
fn activity_detail(row: &activity::Activity, now: i64, quiet_after: i64) -> Vec<String> {
    let at = |time: Option<i64>| time.map_or("never".to_string(), |t| when(t, now));
    let mut lines = vec![
        format!("identity:    {}", row.identity),
        format!("last seen:   {}", at(row.last_seen)),
        format!("last issued: {}", at(row.last_issued)),
        format!("tokens issued: {}", row.issued),
        format!("denials:     {}", row.denials),
        format!("identity token expires: {}", at(row.identity_expires)),
    ];
    if row.quiet(now, quiet_after) {
        lines.push(format!(
            "quiet: not seen in the last {}",
            crate::token::clock::describe_span(quiet_after.max(0) as u64)
        ));
    }
    if row.expiring(now) {
        lines.push("expiring: its identity token runs out soon".into());
    }
    lines
}

/// `ed25519/cdcdcdcdcdcdcdcd…`: enough to tell keys apart (`y` copies the whole key).
fn short_key(key: &str) -> String {
    match key.split_once('/') {
        Some((algorithm, hex)) if hex.len() > 16 => format!("{algorithm}/{}…", &hex[..16]),
        _ => key.to_string(),
    }
}

fn rank(state: KeyState) -> u8 {
    match state {
        KeyState::Active => 0,
        KeyState::Retiring => 1,
        KeyState::Next => 2,
        KeyState::Retired => 3,
    }
}

fn render_keys(frame: &mut Frame, area: Rect, app: &App) {
    let keys = app.screens.server.keys();
    let items: Vec<ListItem> = keys
        .iter()
        .map(|key| {
            let (glyph, style) = match key.state {
                KeyState::Active => ("● active  ", app.theme.ok()),
                KeyState::Retiring => ("◐ retiring", app.theme.warn()),
                KeyState::Next => ("○ next    ", app.theme.accent()),
                KeyState::Retired => ("✗ retired ", app.theme.muted()),
            };
            let id = key.id.map_or("-".to_string(), |id| id.to_string());
            let when = match key.state {
                KeyState::Next => "published, not signing".to_string(),
                KeyState::Active => key.activated_at.map_or("signing".into(), |at| {
                    format!(
                        "signing since {}",
                        crate::token::clock::describe_instant(at, app.now)
                    )
                }),
                KeyState::Retiring => match key.verify_until {
                    Some(until) if until > app.now => format!(
                        "verifies until {} ({})",
                        crate::token::clock::format_unix(until),
                        crate::token::clock::describe_instant(until, app.now)
                    ),
                    _ => "its tokens have expired: may be retired".into(),
                },
                KeyState::Retired => key.retired_at.map_or("retired".into(), |at| {
                    format!(
                        "retired {}",
                        crate::token::clock::describe_instant(at, app.now)
                    )
                }),
            };
            ListItem::new(Line::from(vec![
                Span::styled(format!("{id:>3} "), app.theme.title()),
                Span::styled(glyph, style),
                Span::styled(
                    format!(" {:<27}  ", short_key(&key.public_key)),
                    app.theme.muted(),
                ),
                Span::raw(when),
            ]))
        })
        .collect();
    let title = format!(
        "Root keys ({}, signing first; K: back to the feed)",
        keys.len()
    );
    let selected = app
        .screens
        .server
        .selected
        .min(keys.len().saturating_sub(1));
    let mut list_state = ListState::default().with_selected((!keys.is_empty()).then_some(selected));
    frame.render_stateful_widget(list_pane(app, &title, true, items), area, &mut list_state);
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let [info_area, fleet_area, feed_area] = Layout::vertical([
        Constraint::Length(9),
        Constraint::Length(fleet::height(app)),
        Constraint::Min(4),
    ])
    .areas(area);
    fleet::render(frame, fleet_area, app);
    frame.render_widget(
        Paragraph::new(info_lines(app))
            .wrap(Wrap { trim: false })
            .block(pane(app, "Server", false)),
        info_area,
    );
    if app.screens.server.show_keys {
        render_keys(frame, feed_area, app);
        return;
    }
    if app.screens.server.show_activity {
        activity::render(frame, feed_area, app);
        return;
    }
    let state = &app.screens.server;
    let height = feed_area.height.saturating_sub(2) as usize;
    let offset = state.selected.saturating_sub(height.saturating_sub(1));
    // With a fleet each event names its replica; the console's own server by its fleet name.
    let tagged = state.fleet.is_some();
    let own = own_replica_name(app);
    let items: Vec<ListItem> = state
        .visible_tagged()
        .skip(offset)
        .take(height)
        .map(|(source, event)| {
            let (glyph, style) = match event.result.as_str() {
                "allow" => ("✓ allow", app.theme.ok()),
                "deny" => ("✗ deny ", app.theme.error()),
                _ => ("! error", app.theme.warn()),
            };
            let time = clock_time(event.time);
            let target = match (&event.operation, &event.resource) {
                (Some(op), Some(resource)) => format!(" {op} {resource}"),
                _ => String::new(),
            };
            let replica = if tagged {
                format!(" {:<3}", source.unwrap_or(&own))
            } else {
                String::new()
            };
            ListItem::new(Line::from(vec![
                Span::styled(time, app.theme.muted()),
                Span::styled(replica, app.theme.accent()),
                Span::raw(" "),
                Span::styled(glyph, style),
                Span::raw(format!(
                    " {} {}{}",
                    event.endpoint,
                    event.caller.as_deref().unwrap_or("(anonymous)"),
                    target
                )),
                Span::styled(format!(" — {}", event.reason), app.theme.muted()),
            ]))
        })
        .collect();
    let count = state.visible().count();
    let title = if state.filter.is_empty() {
        format!("Audit feed ({count}, newest first; v: activity per identity)")
    } else {
        format!(
            "Audit feed ({count} of {} match /{})",
            state.event_count(),
            state.filter
        )
    };
    let mut list_state =
        ListState::default().with_selected((count > 0).then_some(state.selected - offset));
    frame.render_stateful_widget(
        list_pane(app, &title, true, items),
        feed_area,
        &mut list_state,
    );
}

/// The console's own server's name in the fleet (the replica at its URL), else "this".
fn own_replica_name(app: &App) -> String {
    let (Some((url, _)), Some(Ok(view))) = (&app.server, &app.screens.server.fleet) else {
        return "this".into();
    };
    view.replicas
        .iter()
        .find(|r| crate::console::jobs::same_server(&r.url, url))
        .map_or("this".into(), |r| r.name.clone())
}

/// `HH:MM:SS` (UTC) of a Unix time.
pub(crate) fn clock_time(unix: i64) -> String {
    let seconds = unix.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        (seconds % 3600) / 60,
        seconds % 60
    )
}

fn short(commit: &str) -> String {
    commit.chars().take(8).collect()
}

fn info_lines(app: &App) -> Vec<Line<'static>> {
    let theme = &app.theme;
    let Some((url, embedded)) = &app.server else {
        return vec![
            Line::from("No server configured."),
            Line::from(Span::styled(
                "Start with no arguments (demo workspace), --workspace DIR, or --server URL --cert --key --ca.",
                theme.muted(),
            )),
        ];
    };
    let kind = if *embedded { "embedded" } else { "remote" };
    let operator = app.operator.clone().unwrap_or("(none)".into());
    let mut lines = vec![Line::from(vec![
        Span::styled(url.clone(), theme.title()),
        Span::styled(format!("  {kind} · operator {operator}"), theme.muted()),
    ])];
    let status = match &app.screens.server.status {
        None => {
            lines.push(Line::from("waiting for the first status…"));
            return lines;
        }
        Some(Err(e)) => {
            lines.push(Line::from(Span::styled(
                format!("✗ unreachable: {e}"),
                theme.error(),
            )));
            if let Some(seen) = app.screens.server.last_seen {
                lines.push(Line::from(format!(
                    "last answered {} s ago",
                    app.now - seen
                )));
            }
            return lines;
        }
        Some(Ok(status)) => status,
    };
    let local_head = match &app.screens.changes.git {
        Some(Ok(view)) => view.status.head.clone(),
        _ => None,
    };
    let applied = short(&status.policy_revision);
    let sync = match &local_head {
        Some(head)
            if head.starts_with(&status.policy_revision)
                || status.policy_revision.starts_with(head.as_str()) =>
        {
            Span::styled("✓ in sync with local HEAD".to_string(), theme.ok())
        }
        Some(head) => Span::styled(
            format!(
                "! local HEAD is {} (not pushed or not synced yet)",
                short(head)
            ),
            theme.warn(),
        ),
        None => Span::raw(""),
    };
    lines.push(Line::from(vec![
        Span::raw(format!("applied {applied} from {}  ", status.policy_source)),
        sync,
    ]));
    lines.push(Line::from(format!(
        "loaded {} s ago · {} clients · up {} s",
        app.now - status.policy_loaded_at,
        status.clients,
        app.now - status.started_at
    )));
    match &status.last_reload_error {
        Some(error) => lines.push(Line::from(Span::styled(
            format!(
                "✗ last sync refused{}: {} (keeping the last good policy)",
                error
                    .revision
                    .as_deref()
                    .map_or(String::new(), |r| format!(" {}", short(r))),
                error.message
            ),
            theme.error(),
        ))),
        None => lines.push(Line::from(Span::styled(
            "✓ last sync applied cleanly",
            theme.ok(),
        ))),
    }
    lines.push(Line::from(format!(
        "requests {} · allowed {} · denied {}",
        status.requests, status.allowed, status.denied
    )));
    lines.push(key_line(app));
    if let Some(error) = &status.key_set_error {
        lines.push(Line::from(Span::styled(
            format!("✗ key set refused: {}", error.message),
            theme.error(),
        )));
    }
    lines
}

/// The root key set in one line: the signing key, then retiring and next ones.
fn key_line(app: &App) -> Line<'static> {
    let theme = &app.theme;
    let mut spans = vec![Span::styled("root keys ", theme.muted())];
    let name = |id: Option<u32>| id.map_or("single key".to_string(), |id| format!("key {id}"));
    let mut retired = 0;
    let keys = app.screens.server.keys();
    let reported = !keys.is_empty();
    for key in keys {
        let (text, style) = match key.state {
            KeyState::Active => (format!("● {} signs", name(key.id)), theme.ok()),
            KeyState::Retiring => (
                match key.verify_until {
                    Some(until) if until > app.now => format!(
                        "◐ {} retiring, {} left",
                        name(key.id),
                        crate::token::clock::describe_span((until - app.now) as u64)
                    ),
                    _ => format!("◐ {} retiring, may be retired now", name(key.id)),
                },
                theme.warn(),
            ),
            KeyState::Next => (format!("○ {} next", name(key.id)), theme.accent()),
            KeyState::Retired => {
                retired += 1;
                continue;
            }
        };
        if spans.len() > 1 {
            spans.push(Span::styled(" · ", theme.muted()));
        }
        spans.push(Span::styled(text, style));
    }
    if retired > 0 {
        spans.push(Span::styled(format!(" · {retired} retired"), theme.muted()));
    }
    if !reported {
        spans.push(Span::styled("(not reported by this server)", theme.muted()));
    }
    Line::from(spans)
}
