//! Fleet visibility on the Server screen: per identity, from the audit feed — last seen, last
//! issued, tokens issued, denials — with identities gone quiet and issued identity tokens close to
//! expiry marked (by a word, not colour alone). Configured clients never seen are listed as quiet.
//! Sortable and filtered by the screen's `/`.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table, TableState};

use crate::console::app::App;
use crate::console::screens::server::ServerState;
use crate::console::ui::{pane, selected_marker};
use crate::policy::LoadedPolicy;
use crate::wire::AuditEvent;

/// Endpoints whose success issues a token.
const ISSUING: [&str; 5] = [
    "/request_identity_token",
    "/refresh_identity_token",
    "/mint_identity_token",
    "/request_token",
    "/request_stub",
];

/// An issued identity token expiring within this many seconds is marked.
pub const EXPIRING_WITHIN: i64 = 600;

/// One identity's activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub identity: String,
    pub last_seen: Option<i64>,
    pub last_issued: Option<i64>,
    pub issued: u32,
    pub denials: u32,
    /// The latest expiry of an identity token issued to it.
    pub identity_expires: Option<i64>,
}

impl Activity {
    fn new(identity: &str) -> Activity {
        Activity {
            identity: identity.to_string(),
            last_seen: None,
            last_issued: None,
            issued: 0,
            denials: 0,
            identity_expires: None,
        }
    }

    pub fn quiet(&self, now: i64, quiet_after: i64) -> bool {
        self.last_seen.is_none_or(|seen| now - seen > quiet_after)
    }

    pub fn expiring(&self, now: i64) -> bool {
        self.identity_expires
            .is_some_and(|at| at > now && at - now <= EXPIRING_WITHIN)
    }
}

/// How the activity table is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    LastSeen,
    Identity,
    Issued,
    Denials,
}

impl SortBy {
    pub fn next(self) -> SortBy {
        match self {
            SortBy::LastSeen => SortBy::Identity,
            SortBy::Identity => SortBy::Issued,
            SortBy::Issued => SortBy::Denials,
            SortBy::Denials => SortBy::LastSeen,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SortBy::LastSeen => "last seen",
            SortBy::Identity => "identity",
            SortBy::Issued => "issued",
            SortBy::Denials => "denials",
        }
    }
}

/// Aggregates the feed per identity; `configured` identities with no activity are included.
pub fn activity<'a>(
    events: impl IntoIterator<Item = &'a AuditEvent>,
    configured: impl IntoIterator<Item = &'a str>,
    sort: SortBy,
) -> Vec<Activity> {
    let mut by_identity: BTreeMap<String, Activity> = configured
        .into_iter()
        .map(|identity| (identity.to_string(), Activity::new(identity)))
        .collect();
    for event in events {
        let Some(caller) = &event.caller else {
            continue;
        };
        let entry = by_identity
            .entry(caller.clone())
            .or_insert_with(|| Activity::new(caller));
        entry.last_seen = entry.last_seen.max(Some(event.time));
        match event.result.as_str() {
            "allow" if ISSUING.contains(&event.endpoint.as_str()) => {
                entry.issued += 1;
                entry.last_issued = entry.last_issued.max(Some(event.time));
                entry.identity_expires = entry.identity_expires.max(event.expires_at);
            }
            "deny" => entry.denials += 1,
            _ => {}
        }
    }
    let mut rows: Vec<Activity> = by_identity.into_values().collect();
    match sort {
        SortBy::LastSeen => rows.sort_by_key(|row| Reverse(row.last_seen)),
        SortBy::Identity => {}
        SortBy::Issued => rows.sort_by_key(|row| Reverse(row.issued)),
        SortBy::Denials => rows.sort_by_key(|row| Reverse(row.denials)),
    }
    rows
}

fn ago(now: i64, at: Option<i64>) -> String {
    match at {
        None => "never".into(),
        Some(at) => {
            let seconds = (now - at).max(0);
            match seconds {
                s if s < 120 => format!("{s} s ago"),
                s if s < 7200 => format!("{} min ago", s / 60),
                s if s < 172_800 => format!("{} h ago", s / 3600),
                s => format!("{} d ago", s / 86_400),
            }
        }
    }
}

/// The rows the screen shows: the screen's filter applied.
pub fn visible_rows(server: &ServerState, policy: Option<&LoadedPolicy>) -> Vec<Activity> {
    rows(server, policy, &server.filter)
}

/// The rows whose identity contains `filter` (all for an empty one).
pub fn rows(server: &ServerState, policy: Option<&LoadedPolicy>, filter: &str) -> Vec<Activity> {
    let configured: Vec<&str> = policy
        .map(|l| {
            l.policy
                .clients
                .iter()
                .map(|c| c.identity.as_str())
                .collect()
        })
        .unwrap_or_default();
    let needle = filter.to_lowercase();
    activity(server.all_events(), configured, server.sort)
        .into_iter()
        .filter(|row| needle.is_empty() || row.identity.to_lowercase().contains(&needle))
        .collect()
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let rows = visible_rows(&app.screens.server, app.loaded());
    let now = app.now;
    let quiet_after = app.screens.server.quiet_after;
    let height = area.height.saturating_sub(3) as usize;
    let selected = app
        .screens
        .server
        .selected
        .min(rows.len().saturating_sub(1));
    let offset = selected.saturating_sub(height.saturating_sub(1));
    let header = Row::new([
        "identity",
        "last seen",
        "last issued",
        "issued",
        "denials",
        "state",
    ])
    .style(app.theme.accent());
    let body: Vec<Row> = rows
        .iter()
        .skip(offset)
        .take(height)
        .map(|row| {
            let mut marks = Vec::new();
            if row.quiet(now, quiet_after) {
                marks.push(Span::styled("quiet", app.theme.muted()));
            }
            if row.expiring(now) {
                marks.push(Span::styled("! expiring", app.theme.warn()));
            }
            if row.denials > 0 {
                marks.push(Span::styled("✗ denied", app.theme.error()));
            }
            let state = ratatui::text::Line::from(
                marks
                    .into_iter()
                    .flat_map(|m| [m, Span::raw(" ")])
                    .collect::<Vec<_>>(),
            );
            Row::new(vec![
                Cell::from(row.identity.clone()),
                Cell::from(ago(now, row.last_seen)),
                Cell::from(ago(now, row.last_issued)),
                Cell::from(row.issued.to_string()),
                Cell::from(row.denials.to_string()),
                Cell::from(state),
            ])
        })
        .collect();
    let title = format!(
        "Activity ({} identities, sorted by {}; o sorts, v shows the feed; quiet after {} min)",
        rows.len(),
        app.screens.server.sort.name(),
        quiet_after / 60
    );
    let widths = [
        Constraint::Min(24),
        Constraint::Length(11),
        Constraint::Length(11),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(28),
    ];
    let mut state =
        TableState::default().with_selected((!rows.is_empty()).then_some(selected - offset));
    frame.render_stateful_widget(
        Table::new(body, widths)
            .header(header)
            .block(pane(app, &title, true))
            .row_highlight_style(app.theme.selected())
            .highlight_symbol(selected_marker()),
        area,
        &mut state,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        time: i64,
        caller: &str,
        endpoint: &str,
        result: &str,
        expires: Option<i64>,
    ) -> AuditEvent {
        AuditEvent {
            seq: 0,
            time,
            caller: Some(caller.into()),
            auth: "mtls".into(),
            endpoint: endpoint.into(),
            resource: None,
            operation: None,
            result: result.into(),
            reason: String::new(),
            revocation_id: None,
            expires_at: expires,
        }
    }

    #[test]
    fn aggregates_per_identity_and_marks_quiet_and_expiring() {
        let now = 10_000;
        let events = [
            event(
                9_000,
                "a",
                "/request_identity_token",
                "allow",
                Some(now + 300),
            ),
            event(9_500, "a", "/request_token", "deny", None),
            event(9_900, "b", "/request_token", "allow", None),
            event(1_000, "c", "/status", "allow", None),
        ];
        let rows = activity(&events, ["a", "never-seen"], SortBy::LastSeen);
        let names: Vec<&str> = rows.iter().map(|r| r.identity.as_str()).collect();
        assert_eq!(names, ["b", "a", "c", "never-seen"]);
        let a = &rows[1];
        assert_eq!((a.issued, a.denials, a.last_issued), (1, 1, Some(9_000)));
        assert!(a.expiring(now));
        assert!(!a.quiet(now, 3_600));
        assert!(rows[2].quiet(now, 3_600), "c was last seen 9000 s ago");
        assert!(rows[3].quiet(now, 3_600) && rows[3].last_seen.is_none());
        assert_eq!(rows[2].issued, 0, "a status read issues nothing");
        let by_denials = activity(&events, ["a"], SortBy::Denials);
        assert_eq!(by_denials[0].identity, "a");
    }
}
