//! Screen 7, Messages: every status message the console showed (and the few it only kept, such
//! as a background fetch failing), with its time and level, newest at the bottom — lazygit's
//! command log. The console owns the ring (`App::messages`); this screen owns only its cursor
//! and filter, and reads the ring through `Cx` and `App`.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{ListItem, ListState, Paragraph, Wrap};

use super::{Cx, Hint, Screen, hint, hints};
use crate::console::app::{App, Flash, Level};
use crate::console::keymap::{Action, Scope};
use crate::console::screens::clients::move_cursor;
use crate::console::screens::server::clock_time;
use crate::console::theme::Theme;
use crate::console::ui::{list_pane, pane};

#[derive(Default)]
pub struct MessagesState {
    pub filter: String,
    /// The selected message among those the filter lets through (oldest first), or `None` to
    /// follow the newest: a new message moves the selection until the user moves it.
    pub selected: Option<usize>,
}

impl MessagesState {
    /// The messages the filter lets through, oldest first.
    pub fn visible<'m>(&self, messages: &'m VecDeque<Flash>) -> Vec<&'m Flash> {
        let needle = self.filter.to_lowercase();
        messages
            .iter()
            .filter(|m| {
                needle.is_empty()
                    || m.text.to_lowercase().contains(&needle)
                    || level_word(m.level).contains(&needle)
            })
            .collect()
    }

    /// The index of the selected message among `count` visible ones.
    pub fn cursor(&self, count: usize) -> usize {
        let last = count.saturating_sub(1);
        self.selected.map_or(last, |at| at.min(last))
    }
}

/// The level as the list and the filter spell it.
pub fn level_word(level: Level) -> &'static str {
    match level {
        Level::Info => "info",
        Level::Success => "ok",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

/// A glyph and the level's word, so the level reads without colour.
fn level_label(level: Level, theme: &Theme) -> (String, Style) {
    let (glyph, style) = match level {
        Level::Info => ("·", theme.text()),
        Level::Success => ("✓", theme.ok()),
        Level::Warn => ("!", theme.warn()),
        Level::Error => ("✗", theme.error()),
    };
    (format!("{glyph} {:<5}", level_word(level)), style)
}

impl Screen for MessagesState {
    fn title(&self) -> &'static str {
        "Messages"
    }

    fn scope(&self) -> Scope {
        Scope::Messages
    }

    fn hints(&self) -> Vec<Hint> {
        let mut shown = hints(&[Action::Filter]);
        shown.push(hint(Action::Select, "detail"));
        shown.push(hint(Action::Bottom, "newest"));
        shown.extend(hints(&[Action::Copy]));
        shown
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.filter)
    }

    fn set_filter(&mut self, text: String, _cx: &mut Cx) {
        self.filter = text;
        self.selected = None;
    }

    fn on_action(&mut self, action: Action, cx: &mut Cx) {
        let visible = self.visible(cx.messages());
        let mut cursor = self.cursor(visible.len());
        if move_cursor(&mut cursor, visible.len(), action) {
            // Back at the newest, the selection follows new messages again.
            let last = visible.len().saturating_sub(1);
            self.selected = (cursor < last).then_some(cursor);
            return;
        }
        let chosen = visible.get(cursor).map(|m| (*m).clone());
        match (action, chosen) {
            (Action::Select, Some(message)) => {
                let title = format!(
                    "Message · {} · {}",
                    clock_time(message.at),
                    level_word(message.level)
                );
                cx.detail(title, message.text.lines().map(str::to_string).collect());
            }
            (Action::Copy, Some(message)) => cx.copy("message", message.text),
            (Action::Select | Action::Copy, None) => cx.flash(Level::Info, "no message selected"),
            (Action::Back, _) if !self.filter.is_empty() => {
                self.filter.clear();
                self.selected = None;
            }
            _ => {}
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, app: &App) {
        render(frame, area, app);
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let state = &app.screens.messages;
    let visible = state.visible(app.messages());
    let title = if state.filter.is_empty() {
        format!("Messages ({}, newest last)", visible.len())
    } else {
        format!(
            "Messages ({} of {} match /{})",
            visible.len(),
            app.messages().len(),
            state.filter
        )
    };
    if visible.is_empty() {
        let text = if app.messages().is_empty() {
            "No messages yet. Every status message (saves, commits, errors, fetches) is kept here with its time; Enter shows one in full."
        } else {
            "No message matches the filter (Esc clears it)."
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, app.theme.muted()))
                .wrap(Wrap { trim: false })
                .block(pane(app, &title, true)),
            area,
        );
        return;
    }
    let height = usize::from(area.height.saturating_sub(2)).max(1);
    let cursor = state.cursor(visible.len());
    // Newest at the bottom: show the page that ends at the selection (or at the newest).
    let offset = (cursor + 1).saturating_sub(height);
    let items: Vec<ListItem> = visible
        .iter()
        .skip(offset)
        .take(height)
        .map(|message| {
            let (label, style) = level_label(message.level, &app.theme);
            let mut lines = message.text.lines();
            let first = lines.next().unwrap_or_default().to_string();
            let more = lines.count();
            let mut spans = vec![
                Span::styled(clock_time(message.at), app.theme.muted()),
                Span::raw(" "),
                Span::styled(label, style),
                Span::raw(" "),
                Span::raw(first),
            ];
            if more > 0 {
                spans.push(Span::styled(format!(" (+{more} lines)"), app.theme.muted()));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let mut list_state = ListState::default().with_selected(Some(cursor - offset));
    frame.render_stateful_widget(list_pane(app, &title, true, items), area, &mut list_state);
}
