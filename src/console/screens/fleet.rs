//! The fleet on screen 6: when the repository has a `fleet.toml`, the Server screen becomes the
//! Fleet screen, with a row per replica (where it stands against the commit it should serve,
//! when it last applied a policy, its load and its root key set), and a push is followed
//! replica by replica until every one applied it, one refused it, or the wait runs out.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{ListItem, ListState, Paragraph};

use crate::console::app::{App, Level};
use crate::console::jobs::FleetView;
use crate::console::screens::Cx;
use crate::console::screens::server::ServerState;
use crate::console::ui::{list_pane, pane};
use crate::fleet::{ReplicaReport, Standing};
use crate::token::clock::describe_span;

/// How long the console follows a rollout before it says which replicas did not get there
/// (the CLI's `policy push --wait` default).
pub const ROLLOUT_WAIT: i64 = 30;

/// A push being followed across the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// The commit every replica was asked to apply.
    pub commit: String,
    /// When the replicas were nudged.
    pub started: i64,
    /// Replicas that did not take the nudge, and why (they may still poll).
    pub unnudged: Vec<(String, String)>,
    /// How it ended, once it has.
    pub end: Option<RolloutEnd>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutEnd {
    /// Every replica applied the commit, this many seconds after the nudge.
    Applied { seconds: i64 },
    /// A replica refused the commit (it keeps its last good policy).
    Refused { replica: String, reason: String },
    /// The wait ran out with these replicas not in sync (name and standing).
    TimedOut { behind: Vec<(String, String)> },
}

impl Rollout {
    pub fn new(commit: String, now: i64, nudged: Vec<(String, Result<(), String>)>) -> Rollout {
        Rollout {
            commit,
            started: now,
            unnudged: nudged
                .into_iter()
                .filter_map(|(name, result)| result.err().map(|e| (name, e)))
                .collect(),
            end: None,
        }
    }

    /// Takes a fresh view of the fleet: the rollout ends when every replica applied the
    /// commit, when one refused it, or after [`ROLLOUT_WAIT`]. Returns what to tell the user
    /// when it ends now. A view judged against another commit (asked before the push) is not
    /// evidence either way.
    pub fn observe(&mut self, view: &FleetView, now: i64) -> Option<(Level, String)> {
        if self.end.is_some() || view.expected != self.commit {
            return None;
        }
        let short = short(&self.commit);
        if let Some(refused) = view.replicas.iter().find_map(|r| match &r.standing {
            Standing::Refused { reason } => Some((r.name.clone(), reason.clone())),
            _ => None,
        }) {
            let text = format!(
                "rollout of {short}: replica {} refused it: {} (it keeps its last good policy)",
                refused.0, refused.1
            );
            self.end = Some(RolloutEnd::Refused {
                replica: refused.0,
                reason: refused.1,
            });
            return Some((Level::Error, text));
        }
        let behind: Vec<(String, String)> = view
            .replicas
            .iter()
            .filter(|r| r.standing != Standing::InSync)
            .map(|r| (r.name.clone(), standing_text(&r.standing)))
            .collect();
        let seconds = (now - self.started).max(0);
        if behind.is_empty() {
            self.end = Some(RolloutEnd::Applied { seconds });
            return Some((
                Level::Success,
                format!(
                    "rollout of {short}: all {} replica(s) applied it ({} s)",
                    view.replicas.len(),
                    seconds
                ),
            ));
        }
        if seconds >= ROLLOUT_WAIT {
            let names = behind
                .iter()
                .map(|(name, standing)| format!("{name} {standing}"))
                .collect::<Vec<_>>()
                .join(", ");
            self.end = Some(RolloutEnd::TimedOut { behind });
            return Some((
                Level::Warn,
                format!(
                    "rollout of {short}: after {ROLLOUT_WAIT} s not every replica applied it: {names}"
                ),
            ));
        }
        None
    }

    /// Still being followed.
    pub fn running(&self) -> bool {
        self.end.is_none()
    }

    /// One line for the Changes screen: how far the push got.
    pub fn summary(&self, view: Option<&FleetView>) -> String {
        let short = short(&self.commit);
        match &self.end {
            Some(RolloutEnd::Applied { seconds }) => {
                format!("rollout of {short}: every replica applied it ({seconds} s)")
            }
            Some(RolloutEnd::Refused { replica, reason }) => {
                format!("rollout of {short}: {replica} refused it: {reason}")
            }
            Some(RolloutEnd::TimedOut { behind }) => format!(
                "rollout of {short}: not applied by {}",
                behind
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => match view.filter(|v| v.expected == self.commit) {
                Some(view) => {
                    let applied = view
                        .replicas
                        .iter()
                        .filter(|r| r.standing == Standing::InSync)
                        .count();
                    let waiting = view
                        .replicas
                        .iter()
                        .filter(|r| r.standing != Standing::InSync)
                        .map(|r| format!("{} {}", r.name, r.standing.word()))
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!(
                        "rollout of {short}: {applied}/{} applied, waiting for {waiting}",
                        view.replicas.len()
                    )
                }
                None => format!("rollout of {short}: asking the replicas…"),
            },
        }
    }
}

/// The requests each replica had answered at one answer of the fleet: the next answer turns
/// them into a recent rate.
#[derive(Debug, Clone, Default)]
pub struct Rates {
    sample: Option<(i64, Vec<(String, u64)>)>,
    /// Requests per second between the last two answers, by replica.
    recent: Vec<(String, f64)>,
}

impl Rates {
    /// Takes the counts of a new answer at `now`: a replica answered both times (its counter
    /// did not go back, as after a restart) gets the rate between them.
    pub fn observe(&mut self, view: &FleetView, now: i64) {
        let counts: Vec<(String, u64)> = view
            .replicas
            .iter()
            .filter_map(|r| r.requests.map(|n| (r.name.clone(), n)))
            .collect();
        match &self.sample {
            // The same second again: keep the rates and the older sample.
            Some((then, _)) if now <= *then => return,
            Some((then, before)) => {
                let seconds = (now - then) as f64;
                self.recent = counts
                    .iter()
                    .filter_map(|(name, n)| {
                        let (_, old) = before.iter().find(|(b, _)| b == name)?;
                        (n >= old).then(|| (name.clone(), (n - old) as f64 / seconds))
                    })
                    .collect();
            }
            None => {}
        }
        self.sample = Some((now, counts));
    }

    /// A replica's recent rate, once two answers were seen.
    pub fn recent(&self, name: &str) -> Option<f64> {
        self.recent
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, rate)| *rate)
    }
}

/// What happens when the fleet answers: the view is kept, its load turned into recent rates,
/// and a rollout being followed judged.
pub fn fleet_result(
    state: &mut ServerState,
    result: Result<Option<FleetView>, String>,
    cx: &mut Cx,
) {
    state.fleet = match result {
        Ok(Some(view)) => Some(Ok(view)),
        Ok(None) => None,
        Err(error) => Some(Err(error)),
    };
    if let Some(Ok(view)) = &state.fleet {
        state.rates.observe(view, cx.now);
    }
    if let (Some(rollout), Some(Ok(view))) = (state.rollout.as_mut(), state.fleet.as_ref())
        && let Some((level, text)) = rollout.observe(view, cx.now)
    {
        cx.flash(level, text);
    }
}

/// `key 2` or `keys 2, 3`.
fn key_ids(ids: &[u32]) -> String {
    let list = ids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() == 1 {
        format!("key {list}")
    } else {
        format!("keys {list}")
    }
}

fn short(commit: &str) -> String {
    commit.chars().take(8).collect()
}

fn standing_text(standing: &Standing) -> String {
    match standing {
        Standing::InSync => "in sync".into(),
        Standing::Lagging => "lagging".into(),
        Standing::Refused { reason } => format!("refused: {reason}"),
        Standing::Down { error } => format!("down: {error}"),
    }
}

/// Rows the fleet pane needs (borders included).
pub fn height(app: &App) -> u16 {
    match &app.screens.server.fleet {
        None => 0,
        Some(Err(_)) => 3,
        Some(Ok(view)) => (view.replicas.len() as u16).min(9) + 2,
    }
}

/// The fleet pane: a row per replica.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let (title, lines) = match &app.screens.server.fleet {
        None => return,
        Some(Err(error)) => (
            "Fleet".to_string(),
            vec![Line::from(Span::styled(
                format!("✗ fleet.toml: {error}"),
                theme.error(),
            ))],
        ),
        Some(Ok(view)) => {
            let in_sync = view
                .replicas
                .iter()
                .filter(|r| r.standing == Standing::InSync)
                .count();
            let title = format!(
                "Fleet ({in_sync}/{} in sync with {})",
                view.replicas.len(),
                short(&view.expected)
            );
            let width = view
                .replicas
                .iter()
                .map(|r| r.name.chars().count())
                .max()
                .unwrap_or(0);
            let lines = view
                .replicas
                .iter()
                .map(|report| replica_line(app, report, width))
                .collect();
            (title, lines)
        }
    };
    let state = &app.screens.server;
    if state.show_fleet {
        let title = format!("{title} · Enter: all of one · F: back to the feed");
        let count = lines.len();
        let items: Vec<ListItem> = lines.into_iter().map(ListItem::new).collect();
        let mut list_state = ListState::default()
            .with_selected((count > 0).then_some(state.selected.min(count - 1)));
        frame.render_stateful_widget(list_pane(app, &title, true, items), area, &mut list_state);
        return;
    }
    frame.render_widget(Paragraph::new(lines).block(pane(app, &title, false)), area);
}

/// All of one replica, for the detail popup.
pub fn replica_detail(report: &ReplicaReport, expected: &str, now: i64) -> Vec<String> {
    let mut lines = vec![
        format!("url        {}", report.url),
        format!("standing   {}", standing_text(&report.standing)),
        format!("expected   {expected} (the branch's upstream)"),
    ];
    if let Some(applied) = &report.applied {
        let when = report.applied_at.map_or(String::new(), |at| {
            format!(" ({})", crate::token::clock::describe_instant(at, now))
        });
        lines.push(format!("applied    {applied}{when}"));
    }
    if let Some(error) = &report.last_error {
        lines.push(format!("last refusal  {error}"));
    }
    if let Some(keys) = &report.keys {
        lines.push(format!("root keys  {keys}"));
    }
    if !report.missing_private_keys.is_empty() {
        lines.push(format!(
            "missing    no private key for {} in its key directory (it refuses a revision activating one)",
            key_ids(&report.missing_private_keys)
        ));
    }
    if let Some(rate) = report.requests_per_second {
        let total = report.requests.unwrap_or_default();
        lines.push(format!(
            "load       {total} requests, {rate:.2} per second since it started"
        ));
    }
    lines
}

fn replica_line(app: &App, report: &ReplicaReport, width: usize) -> Line<'static> {
    let theme = &app.theme;
    let (glyph, style) = match report.standing {
        Standing::InSync => ("✓", theme.ok()),
        Standing::Lagging => ("◌", theme.warn()),
        Standing::Refused { .. } | Standing::Down { .. } => ("✗", theme.error()),
    };
    let mut spans = vec![
        Span::styled(format!("{glyph} {:<width$} ", report.name), style),
        Span::styled(format!("{:<8} ", report.standing.word()), style),
    ];
    if let Standing::Down { error } = &report.standing {
        spans.push(Span::styled(
            format!("{}  {error}", report.url),
            theme.muted(),
        ));
        return Line::from(spans);
    }
    let applied = report.applied.as_deref().map_or("-".to_string(), short);
    let since = report.applied_at.map_or(String::new(), |at| {
        format!(" {} ago", describe_span((app.now - at).max(0) as u64))
    });
    spans.push(Span::raw(format!("applied {applied}{since}")));
    let recent = app.screens.server.rates.recent(&report.name);
    match (recent, report.requests_per_second) {
        (Some(rate), _) => spans.push(Span::styled(format!(" · {rate:.1} req/s"), theme.muted())),
        (None, Some(rate)) => spans.push(Span::styled(
            format!(" · {rate:.1} req/s since start"),
            theme.muted(),
        )),
        _ => {}
    }
    if let Some(keys) = &report.keys {
        spans.push(Span::styled(format!(" · {keys}"), theme.muted()));
    }
    if !report.missing_private_keys.is_empty() {
        spans.push(Span::styled(
            format!(
                " · no private key for {}",
                key_ids(&report.missing_private_keys)
            ),
            theme.warn(),
        ));
    }
    match (&report.standing, &report.last_error) {
        // Why it refused the commit expected comes last: the rest of the row stays in view.
        (Standing::Refused { reason }, _) => {
            spans.push(Span::styled(format!(" · {reason}"), theme.error()));
        }
        (_, Some(error)) => {
            spans.push(Span::styled(
                format!(" · last refusal: {error}"),
                theme.warn(),
            ));
        }
        _ => {}
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, standing: Standing) -> ReplicaReport {
        ReplicaReport {
            name: name.into(),
            url: format!("https://{name}.example:4443"),
            standing,
            applied: Some("c0ffee".into()),
            applied_at: Some(0),
            last_error: None,
            keys: None,
            missing_private_keys: Vec::new(),
            requests: Some(0),
            requests_per_second: Some(0.0),
        }
    }

    fn view(expected: &str, standings: Vec<Standing>) -> FleetView {
        FleetView {
            expected: expected.into(),
            replicas: standings
                .into_iter()
                .enumerate()
                .map(|(i, s)| report(&((b'a' + i as u8) as char).to_string(), s))
                .collect(),
        }
    }

    #[test]
    fn a_rollout_ends_when_every_replica_applied_the_commit() {
        let mut rollout = Rollout::new("c0ffee".into(), 100, vec![("a".into(), Ok(()))]);
        let partial = view("c0ffee", vec![Standing::InSync, Standing::Lagging]);
        assert_eq!(rollout.observe(&partial, 101), None);
        assert_eq!(
            rollout.summary(Some(&partial)),
            "rollout of c0ffee: 1/2 applied, waiting for b lagging"
        );
        let done = view("c0ffee", vec![Standing::InSync, Standing::InSync]);
        let (level, text) = rollout.observe(&done, 102).unwrap();
        assert_eq!(level, Level::Success);
        assert!(text.contains("all 2 replica(s) applied it (2 s)"), "{text}");
        assert!(!rollout.running());
        // Ended: later views change nothing.
        assert_eq!(rollout.observe(&partial, 103), None);
    }

    #[test]
    fn the_recent_rate_comes_from_two_answers_and_a_restart_resets_it() {
        let mut rates = Rates::default();
        let counts = |a: u64, b: u64| {
            let mut v = view("c0ffee", vec![Standing::InSync, Standing::InSync]);
            v.replicas[0].requests = Some(a);
            v.replicas[1].requests = Some(b);
            v
        };
        rates.observe(&counts(100, 50), 1_000);
        assert_eq!(rates.recent("a"), None, "one answer is no rate");
        // The same second again changes nothing.
        rates.observe(&counts(103, 50), 1_000);
        rates.observe(&counts(130, 40), 1_010);
        assert_eq!(rates.recent("a"), Some(3.0));
        assert_eq!(
            rates.recent("b"),
            None,
            "b restarted: its counter went back"
        );
        rates.observe(&counts(130, 60), 1_020);
        assert_eq!(rates.recent("a"), Some(0.0));
        assert_eq!(rates.recent("b"), Some(2.0));
    }

    #[test]
    fn a_view_asked_before_the_push_is_no_evidence() {
        let mut rollout = Rollout::new("c0ffee".into(), 100, Vec::new());
        let stale = view("0ld", vec![Standing::InSync]);
        assert_eq!(rollout.observe(&stale, 200), None);
        assert!(rollout.running());
        assert_eq!(
            rollout.summary(Some(&stale)),
            "rollout of c0ffee: asking the replicas…"
        );
    }

    #[test]
    fn a_refusal_ends_the_rollout_naming_the_replica_and_why() {
        let mut rollout = Rollout::new("c0ffee".into(), 100, Vec::new());
        let refused = view(
            "c0ffee",
            vec![
                Standing::InSync,
                Standing::Refused {
                    reason: "key 2 is not in the key directory".into(),
                },
            ],
        );
        let (level, text) = rollout.observe(&refused, 101).unwrap();
        assert_eq!(level, Level::Error);
        assert!(text.contains("replica b refused it: key 2"), "{text}");
    }

    #[test]
    fn the_wait_runs_out_naming_who_is_behind() {
        let mut rollout = Rollout::new(
            "c0ffee".into(),
            100,
            vec![("c".into(), Err("connection refused".into()))],
        );
        assert_eq!(
            rollout.unnudged,
            vec![("c".into(), "connection refused".into())]
        );
        let down = view(
            "c0ffee",
            vec![
                Standing::InSync,
                Standing::InSync,
                Standing::Down {
                    error: "connection refused".into(),
                },
            ],
        );
        assert_eq!(rollout.observe(&down, 100 + ROLLOUT_WAIT - 1), None);
        let (level, text) = rollout.observe(&down, 100 + ROLLOUT_WAIT).unwrap();
        assert_eq!(level, Level::Warn);
        assert!(text.contains("c down: connection refused"), "{text}");
        assert_eq!(rollout.summary(None), "rollout of c0ffee: not applied by c");
    }
}
