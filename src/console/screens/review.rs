//! Screen 8, Review: the security reviewer's pass over the policy's history. It steps through
//! the widening changes between two revisions one at a time — each with its commit, author and
//! message and its decision replay (the requests it turns from denied to allowed, and why) —
//! and marks them reviewed; marks are kept in the repository's git directory, so a review can
//! stop and resume. Commits whose policy cannot be read are listed too: they must be read by
//! hand. `E` writes the review report for the same range. `--readonly` opens here.

use std::collections::HashMap;
use std::path::PathBuf;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};

use std::any::Any;

use super::{Cx, Hint, Screen, hint, hints};
use crate::console::app::{App, Level};
use crate::console::complete::Choices;
use crate::console::jobs::{Job, JobResult, ReviewLoad};
use crate::console::keymap::{Action, Scope};
use crate::console::screens::clients::move_cursor;
use crate::console::ui::{pane, selected_marker};
use crate::review::marks::ReviewMark;
use crate::review::report::Format;
use crate::review::{History, ReviewedChange, ReviewedCommit};
use crate::token::clock::format_unix;

/// The revisions reviewed: `from` (exclusive; all history when None) to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub from: Option<String>,
    pub to: String,
}

impl Default for Range {
    fn default() -> Range {
        Range {
            from: None,
            to: "HEAD".to_string(),
        }
    }
}

impl Range {
    /// Reads `FROM..TO`, `FROM` (up to HEAD) or nothing (all of HEAD's history).
    pub fn parse(text: &str) -> Result<Range, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Range::default());
        }
        let (from, to) = match text.split_once("..") {
            Some((from, to)) => (from.trim(), to.trim()),
            None => (text, "HEAD"),
        };
        if from.is_empty() && to.is_empty() {
            return Err("say FROM..TO, FROM, or nothing for all history".to_string());
        }
        if [from, to]
            .iter()
            .any(|r| r.chars().any(char::is_whitespace))
        {
            return Err("a revision has no spaces: FROM..TO".to_string());
        }
        Ok(Range {
            from: (!from.is_empty()).then(|| from.to_string()),
            to: if to.is_empty() { "HEAD" } else { to }.to_string(),
        })
    }

    /// The range as the title shows it (a full commit id shortened to 12 digits).
    pub fn describe(&self) -> String {
        let short = |rev: &str| {
            if rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()) {
                rev[..12].to_string()
            } else {
                rev.to_string()
            }
        };
        match &self.from {
            Some(from) => format!("{}..{}", short(from), short(&self.to)),
            None => format!("all of {}", short(&self.to)),
        }
    }

    fn text(&self) -> String {
        match &self.from {
            Some(from) => format!("{from}..{}", self.to),
            None => String::new(),
        }
    }
}

/// One step of the review: a widening change of a commit, or a commit that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub commit: usize,
    /// The change's index in the commit, or None for an unreadable commit.
    pub change: Option<usize>,
}

#[derive(Debug, Default)]
pub struct ReviewState {
    pub range: Range,
    /// The range's history, or why it could not be read; None until asked.
    pub loaded: Option<Result<History, String>>,
    pub steps: Vec<Step>,
    pub selected: usize,
    /// Reviewed changes: (commit, change text) → when.
    pub marks: HashMap<(String, String), i64>,
    asked: bool,
}

/// What the screen asks with its prompts.
enum Asked {
    Range,
    ExportPath,
}

impl ReviewState {
    fn step(&self, step: Step) -> Option<(&ReviewedCommit, Option<&ReviewedChange>)> {
        let history = self.loaded.as_ref()?.as_ref().ok()?;
        let commit = history.commits.get(step.commit)?;
        Some((commit, step.change.and_then(|i| commit.changes.get(i))))
    }

    fn key(commit: &ReviewedCommit, change: Option<&ReviewedChange>) -> (String, String) {
        (
            commit.commit.id.clone(),
            change.map_or_else(|| "(unreadable commit)".to_string(), |c| c.text.clone()),
        )
    }

    pub fn is_reviewed(&self, step: Step) -> bool {
        self.step(step)
            .is_some_and(|(commit, change)| self.marks.contains_key(&Self::key(commit, change)))
    }

    pub fn reviewed_count(&self) -> usize {
        self.steps.iter().filter(|s| self.is_reviewed(**s)).count()
    }

    fn load(&mut self, cx: &mut Cx) {
        if !cx.has_repo {
            self.loaded = Some(Err(format!(
                "{} is not in a git repository: there is no history to review",
                cx.policy_file_name()
            )));
            return;
        }
        self.asked = true;
        cx.submit(Job::ReviewRange {
            from: self.range.from.clone(),
            to: self.range.to.clone(),
        });
    }

    fn loaded(&mut self, load: ReviewLoad) {
        let history = load.history;
        self.steps = history
            .commits
            .iter()
            .enumerate()
            .flat_map(|(i, commit)| {
                let unreadable = commit.error.is_some().then_some(Step {
                    commit: i,
                    change: None,
                });
                let widening = commit
                    .changes
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.change.widens)
                    .map(move |(j, _)| Step {
                        commit: i,
                        change: Some(j),
                    });
                unreadable.into_iter().chain(widening)
            })
            .collect();
        self.marks = load
            .marks
            .into_iter()
            .map(|m| ((m.commit, m.change), m.at))
            .collect();
        self.loaded = Some(Ok(history));
        // Start on the first change not reviewed yet.
        self.selected = self.next_unreviewed(0).unwrap_or(0);
    }

    /// The first step at or after `from` (wrapping) not reviewed.
    fn next_unreviewed(&self, from: usize) -> Option<usize> {
        let len = self.steps.len();
        (0..len)
            .map(|i| (from + i) % len)
            .find(|&i| !self.is_reviewed(self.steps[i]))
    }

    fn toggle_mark(&mut self, cx: &mut Cx) {
        let Some(&step) = self.steps.get(self.selected) else {
            cx.flash(Level::Info, "no change to mark");
            return;
        };
        let Some((commit, change)) = self.step(step) else {
            return;
        };
        let key = Self::key(commit, change);
        if self.marks.remove(&key).is_none() {
            self.marks.insert(key, cx.now);
            let left = self.steps.len() - self.reviewed_count();
            match self.next_unreviewed(self.selected) {
                Some(next) => {
                    self.selected = next;
                    cx.flash(Level::Success, format!("reviewed · {left} left"));
                }
                None => cx.flash(
                    Level::Success,
                    format!(
                        "every change of {} is reviewed ({})",
                        self.range.describe(),
                        self.steps.len()
                    ),
                ),
            }
        } else {
            cx.flash(Level::Info, "marked not reviewed");
        }
        let mut marks: Vec<ReviewMark> = self
            .marks
            .iter()
            .map(|((commit, change), at)| ReviewMark {
                commit: commit.clone(),
                change: change.clone(),
                at: *at,
            })
            .collect();
        marks.sort_by(|a, b| (a.at, &a.commit, &a.change).cmp(&(b.at, &b.commit, &b.change)));
        cx.submit(Job::SaveReviewMarks { marks });
    }

    fn detail_lines(&self, step: Step) -> Vec<String> {
        let Some((commit, change)) = self.step(step) else {
            return Vec::new();
        };
        let mut lines = vec![
            format!("commit {}", commit.commit.id),
            format!(
                "by {} <{}>, {}",
                commit.commit.author,
                commit.commit.email,
                format_unix(commit.commit.time)
            ),
            String::new(),
        ];
        lines.extend(commit.commit.message.lines().map(|l| format!("    {l}")));
        lines.push(String::new());
        match change {
            None => {
                lines.push(format!(
                    "Its changes cannot be computed: {}",
                    commit.error.as_deref().unwrap_or("?")
                ));
                lines.push("Read its text diff by hand (Changes, history).".to_string());
            }
            Some(change) => {
                lines.push(change.text.clone());
                lines.push(String::new());
                if change.replay.is_empty() {
                    lines.push(
                        "No request shows this change (a setting, the CA chain or a withdrawn revocation): what it allows is in the text above."
                            .to_string(),
                    );
                } else {
                    lines.push("Decision replay (before → after):".to_string());
                    for row in &change.replay {
                        lines.push(format!(
                            "  {}: {} → {}",
                            row.request,
                            verdict(row.before.allowed),
                            verdict(row.after.allowed)
                        ));
                        lines.push(format!("      before: {}", row.before.reason));
                        lines.push(format!("      after:  {}", row.after.reason));
                    }
                }
            }
        }
        lines.push(String::new());
        let key = Self::key(commit, change);
        lines.push(match self.marks.get(&key) {
            Some(at) => format!("✓ reviewed {}", format_unix(*at)),
            None => "not reviewed yet".to_string(),
        });
        lines
    }

    fn export(&mut self, path: &str, cx: &mut Cx) -> Result<(), String> {
        let path = PathBuf::from(path.trim());
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("html" | "htm") => Format::Html,
            Some("md" | "markdown") => Format::Md,
            Some("json") => Format::Json,
            _ => return Err("end the name in .html, .md or .json (the format)".to_string()),
        };
        cx.submit(Job::ExportReport {
            path,
            since: self.range.from.clone(),
            format,
            audit: cx
                .audit_trail()
                .map(|(live, window)| (live.to_path_buf(), window)),
        });
        Ok(())
    }
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allowed" } else { "denied" }
}

impl Screen for ReviewState {
    fn title(&self) -> &'static str {
        "Review"
    }

    fn scope(&self) -> Scope {
        Scope::Review
    }

    fn hints(&self) -> Vec<Hint> {
        let mut shown = hints(&[Action::MarkReviewed, Action::NextUnreviewed]);
        shown.push(hint(Action::Select, "detail"));
        shown.extend(hints(&[Action::ReviewRange, Action::ExportReport]));
        shown
    }

    fn on_enter(&mut self, cx: &mut Cx) {
        if !self.asked {
            self.load(cx);
        }
    }

    fn on_action(&mut self, action: Action, cx: &mut Cx) {
        if move_cursor(&mut self.selected, self.steps.len(), action) {
            return;
        }
        match action {
            Action::Refresh => self.load(cx),
            Action::MarkReviewed => self.toggle_mark(cx),
            Action::NextUnreviewed => match self.next_unreviewed(self.selected + 1) {
                Some(next) => self.selected = next,
                None => cx.flash(Level::Info, "nothing left to review in this range"),
            },
            Action::ReviewRange => cx.prompt_or_empty(
                Asked::Range,
                "Review range",
                "FROM..TO, or FROM (up to HEAD): a commit, tag or branch; empty: all history",
                &self.range.text(),
            ),
            Action::ExportReport => {
                let name = format!(
                    "policy-review-{}.html",
                    format_unix(cx.now)
                        .chars()
                        .filter(char::is_ascii_digit)
                        .take(12)
                        .collect::<String>()
                );
                cx.prompt_choosing(
                    Asked::ExportPath,
                    "Write the review report",
                    "a file ending in .html, .md or .json",
                    &name,
                    Choices::Path,
                );
            }
            Action::Select | Action::Copy => {
                let Some(&step) = self.steps.get(self.selected) else {
                    cx.flash(Level::Info, "no change selected");
                    return;
                };
                let lines = self.detail_lines(step);
                if action == Action::Copy {
                    cx.copy("change", lines.join("\n"));
                } else {
                    cx.detail("Change under review", lines);
                }
            }
            _ => {}
        }
    }

    fn on_prompt(&mut self, what: &dyn Any, text: &str, cx: &mut Cx) -> Result<(), String> {
        match what.downcast_ref::<Asked>() {
            Some(Asked::Range) => {
                self.range = Range::parse(text)?;
                self.load(cx);
                Ok(())
            }
            Some(Asked::ExportPath) => self.export(text, cx),
            None => Ok(()),
        }
    }

    fn on_result(&mut self, result: JobResult, cx: &mut Cx) -> Option<JobResult> {
        match result {
            JobResult::Review(Ok(load)) => {
                let current = Range {
                    from: load.from.clone(),
                    to: load.to.clone(),
                };
                // A range asked for before the one now current is stale.
                if current == self.range {
                    self.loaded(*load);
                }
            }
            JobResult::Review(Err(error)) => {
                cx.flash(Level::Error, format!("review: {error}"));
                self.loaded = Some(Err(error));
                self.steps.clear();
            }
            JobResult::ReviewMarksSaved(Err(error)) => cx.flash(
                Level::Error,
                format!("the review marks were not kept: {error}"),
            ),
            JobResult::ReviewMarksSaved(Ok(())) => {}
            JobResult::Exported(Ok((path, summary))) => cx.flash(
                Level::Success,
                format!("wrote {}: {summary}", path.display()),
            ),
            JobResult::Exported(Err(error)) => {
                cx.flash(Level::Error, format!("report not written: {error}"))
            }
            other => return Some(other),
        }
        None
    }

    fn render(&self, frame: &mut Frame, area: Rect, app: &App) {
        render(self, frame, area, app);
    }
}

fn render(state: &ReviewState, frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let history = match &state.loaded {
        None => {
            frame.render_widget(
                Paragraph::new("Reading the changes to review…").block(pane(app, "Review", true)),
                area,
            );
            return;
        }
        Some(Err(error)) => {
            frame.render_widget(
                Paragraph::new(vec![
                    Line::from(Span::styled(error.clone(), theme.error())),
                    Line::from(Span::styled(
                        "r chooses another range; f5 reads again.",
                        theme.muted(),
                    )),
                ])
                .wrap(Wrap { trim: false })
                .block(pane(
                    app,
                    &format!("Review {}", state.range.describe()),
                    true,
                )),
                area,
            );
            return;
        }
        Some(Ok(history)) => history,
    };
    let reviewed = state.reviewed_count();
    let mut title = format!(
        "Review {} · {} commit(s) · {} to review, {reviewed} reviewed",
        state.range.describe(),
        history.commits.len(),
        state.steps.len()
    );
    if history.truncated {
        title.push_str(" · newest only");
    }
    if state.steps.is_empty() {
        let text = if history.commits.is_empty() {
            "No commit in this range changed the policy or its revocations. r chooses another range."
        } else {
            "No change in this range widens what anyone may do. r chooses another range."
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, theme.muted()))
                .wrap(Wrap { trim: false })
                .block(pane(app, &title, true)),
            area,
        );
        return;
    }
    let list_height = (area.height / 3).clamp(4, 12);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(list_height), Constraint::Min(4)]).areas(area);
    let items: Vec<ListItem> = state
        .steps
        .iter()
        .map(|&step| {
            let (commit, change) = state.step(step).expect("steps index the history");
            let (mark, mark_style) = if state.is_reviewed(step) {
                ("✓ ", theme.ok())
            } else {
                ("· ", theme.muted())
            };
            let what = match change {
                Some(change) => Span::styled(
                    change.text.trim_start_matches("+ WIDENS ").to_string(),
                    theme.text(),
                ),
                None => Span::styled("cannot be read: review its text by hand", theme.error()),
            };
            ListItem::new(Line::from(vec![
                Span::styled(mark, mark_style),
                Span::styled(
                    commit.commit.id.chars().take(8).collect::<String>(),
                    theme.accent(),
                ),
                Span::raw(" "),
                Span::styled(format!("{:<10.10} ", commit.commit.author), theme.muted()),
                what,
            ]))
        })
        .collect();
    let mut list_state = ListState::default().with_selected(Some(state.selected));
    frame.render_stateful_widget(
        List::new(items)
            .block(pane(app, &title, true))
            .highlight_style(theme.selected())
            .highlight_symbol(selected_marker()),
        top,
        &mut list_state,
    );
    let step = state.steps[state.selected.min(state.steps.len() - 1)];
    let lines: Vec<Line> = state
        .detail_lines(step)
        .into_iter()
        .map(|line| {
            let style = if line.starts_with("+ WIDENS") || line.starts_with("Its changes") {
                theme.error()
            } else if line.starts_with("✓") {
                theme.ok()
            } else if line.starts_with("      ") || line.starts_with("by ") {
                theme.muted()
            } else {
                theme.text()
            };
            Line::from(Span::styled(line, style))
        })
        .collect();
    let position = format!(
        "Change {} of {} · space marks reviewed, n the next",
        state.selected + 1,
        state.steps.len()
    );
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(pane(app, &position, false)),
        bottom,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_git_writes_them() {
        assert_eq!(Range::parse("").unwrap(), Range::default());
        assert_eq!(
            Range::parse("v1..main").unwrap(),
            Range {
                from: Some("v1".into()),
                to: "main".into()
            }
        );
        assert_eq!(
            Range::parse("abc123").unwrap(),
            Range {
                from: Some("abc123".into()),
                to: "HEAD".into()
            }
        );
        assert_eq!(Range::parse("v1..").unwrap().to, "HEAD");
        assert!(Range::parse("..").is_err());
        assert!(Range::parse("a b..c").is_err());
    }
}
