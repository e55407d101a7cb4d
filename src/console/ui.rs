//! Drawing: a pure function of `App`. The title bar names the screen, the status bar shows the
//! mode (RO/RW), file and dirty marker, branch, spinner, flash and filter, the hint bar shows the
//! focused screen's keys from the live keymap, and popups draw over everything.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Clear, HighlightSpacing, List, ListItem, ListState, Paragraph, Wrap,
};

use super::app::{App, Level, Popup};
use super::complete::Choices;
use super::keymap::{Action, Scope};
use super::screens::{self, ScreenId, Screens};
use crate::policy::{Finding, Severity};

const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

pub fn selected_marker() -> &'static str {
    "▶ "
}

/// A list in a pane, its selected row highlighted and marked: every list screen draws this way.
pub fn list_pane<'a>(app: &App, title: &str, focused: bool, items: Vec<ListItem<'a>>) -> List<'a> {
    List::new(items)
        .block(pane(app, title, focused))
        .highlight_style(app.theme.selected())
        .highlight_symbol(selected_marker())
}

/// A bordered pane; the focused one is bold (and coloured when colours are on).
pub fn pane<'a>(app: &App, title: &str, focused: bool) -> Block<'a> {
    let style = if focused {
        app.theme.focused()
    } else {
        app.theme.muted()
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(format!(" {title} "), style))
}

/// A finding as one line: glyph and word, location, message.
pub fn finding_line<'a>(app: &App, finding: &Finding) -> Line<'a> {
    let (word, style) = match finding.severity {
        Severity::Error => ("✗ error", app.theme.error()),
        Severity::Warning => ("! warning", app.theme.warn()),
    };
    let at = finding
        .location
        .map_or(String::new(), |at| format!(" {at}"));
    Line::from(vec![
        Span::styled(word, style),
        Span::styled(at, app.theme.muted()),
        Span::raw(format!(" {}", finding.message)),
    ])
}

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    app.screen_height.set(area.height);
    let [title, body, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    render_title(frame, title, app);
    match app.reading_policy() {
        Some(bytes) => render_reading(frame, body, app, bytes),
        None => app.current().render(frame, body, app),
    }
    render_status(frame, status, app);
    render_hints(frame, hints, app);
    if let Some(popup) = &app.popup {
        render_popup(frame, area, app, popup);
    }
}

/// The first frame of a large policy: what is being read while a worker reads it.
fn render_reading(frame: &mut Frame, area: Rect, app: &App, bytes: usize) {
    let text = format!(
        "Reading {} ({})…\nKeys typed now act once it is read.",
        app.policy_path().display(),
        human_bytes(bytes)
    );
    let block = pane(app, app.current().title(), true);
    frame.render_widget(Paragraph::new(text).block(block), area);
}

fn human_bytes(bytes: usize) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{} KiB", bytes / 1024),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

const TITLE: &str = "hessra-console ";

/// How much of each tab's name the title bar has room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tabs {
    /// The app's name and every screen's full title.
    Full,
    /// Short titles, no app name.
    Compact,
    /// The current screen's short title; the others by number and three letters.
    Abbreviated,
}

fn tab_label(index: usize, screen: &dyn screens::Screen, tabs: Tabs, current: bool) -> String {
    match tabs {
        Tabs::Full => format!(" {} {} ", index + 1, screen.title()),
        Tabs::Abbreviated if !current => format!(
            " {} {} ",
            index + 1,
            screen.short_title().chars().take(3).collect::<String>()
        ),
        Tabs::Compact | Tabs::Abbreviated => {
            format!(" {} {} ", index + 1, screen.short_title())
        }
    }
}

/// The widest tab names that fit `width` (0: not drawn yet, so full).
fn tabs(screens: &Screens, current: ScreenId, width: u16) -> Tabs {
    let needed = |tabs: Tabs| {
        let app_name = if tabs == Tabs::Full {
            TITLE.chars().count()
        } else {
            0
        };
        app_name
            + ScreenId::ALL
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    tab_label(i, screens.get(*s), tabs, *s == current)
                        .chars()
                        .count()
                })
                .sum::<usize>()
    };
    let width = usize::from(width);
    if width == 0 || needed(Tabs::Full) <= width {
        Tabs::Full
    } else if needed(Tabs::Compact) <= width {
        Tabs::Compact
    } else {
        Tabs::Abbreviated
    }
}

/// The screen whose tab is at column `x` of a title bar `width` wide (for mouse clicks).
pub fn tab_at(screens: &Screens, current: ScreenId, x: u16, width: u16) -> Option<ScreenId> {
    let tabs = tabs(screens, current, width);
    let mut start = if tabs == Tabs::Full {
        TITLE.chars().count()
    } else {
        0
    };
    for (i, screen) in ScreenId::ALL.iter().enumerate() {
        let width = tab_label(i, screens.get(*screen), tabs, *screen == current)
            .chars()
            .count();
        if (start..start + width).contains(&usize::from(x)) {
            return Some(*screen);
        }
        start += width;
    }
    None
}

fn render_title(frame: &mut Frame, area: Rect, app: &App) {
    app.screen_width.set(area.width);
    let tabs = tabs(&app.screens, app.screen(), area.width);
    let mut spans = Vec::new();
    if tabs == Tabs::Full {
        spans.push(Span::styled(TITLE, app.theme.title()));
    }
    for (i, screen) in ScreenId::ALL.iter().enumerate() {
        let label = tab_label(i, app.screens.get(*screen), tabs, *screen == app.screen());
        if *screen == app.screen() {
            spans.push(Span::styled(label, app.theme.selected()));
        } else {
            spans.push(Span::styled(label, app.theme.muted()));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_status(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let mode = if app.readonly {
        Span::styled(" RO ", theme.error().add_modifier(Modifier::REVERSED))
    } else {
        Span::styled(" RW ", theme.ok().add_modifier(Modifier::REVERSED))
    };
    let file = app
        .policy_path
        .file_name()
        .map_or("clients.toml".into(), |f| f.to_string_lossy().to_string());
    let dirty = if app.is_dirty() { "*" } else { "" };
    let mut spans = vec![mode, Span::raw(format!(" {file}{dirty}"))];
    if let Some(Ok(view)) = &app.screens.changes.git {
        let s = &view.status;
        let mut branch = format!(" ⎇ {}", s.branch);
        if s.ahead > 0 {
            branch.push_str(&format!(" ↑{}", s.ahead));
        }
        if s.behind > 0 {
            branch.push_str(&format!(" ↓{}", s.behind));
        }
        spans.push(Span::styled(branch, theme.muted()));
    }
    if let Some(work) = app.busy() {
        let frame_glyph = SPINNER[app.spinner % SPINNER.len()];
        spans.push(Span::styled(
            format!(" {frame_glyph} {work}…"),
            theme.accent(),
        ));
    }
    if let Some(input) = &app.filter_input {
        let text = input.lines().join("");
        spans.push(Span::styled(format!(" /{text}▏"), theme.accent()));
    } else if !app.current_filter().is_empty() {
        spans.push(Span::styled(
            format!(" /{}", app.current_filter()),
            theme.accent(),
        ));
    }
    if (app.filter_input.is_some() || !app.current_filter().is_empty())
        && let Some((shown, total)) = app.match_count()
    {
        spans.push(Span::styled(
            format!(" {shown}/{total} match"),
            theme.muted(),
        ));
    }
    if let Some(flash) = &app.flash {
        let style = match flash.level {
            Level::Info => theme.text(),
            Level::Success => theme.ok(),
            Level::Warn => theme.warn(),
            Level::Error => theme.error(),
        };
        spans.push(Span::raw(" │ "));
        // One line fits the bar; the Messages screen has the rest.
        let mut lines = flash.text.lines();
        let first = lines.next().unwrap_or_default();
        let more = if lines.next().is_some() { " …" } else { "" };
        spans.push(Span::styled(format!("{first}{more}"), style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Key hints for the focused pane, from the live keymap. While text is being typed (a prompt,
/// the palette, the filter, the raw editor, the paste box) only the keys that work there are
/// shown: `:`, `?` and `q` would type themselves. What does not fit the width is left out, in
/// the screen's order of usefulness, but `?` help always stays: it lists the rest.
fn render_hints(frame: &mut Frame, area: Rect, app: &App) {
    let scope = app.current().scope();
    let (wanted, typing) = app.hints();
    let always = [Action::Palette, Action::Help, Action::Quit];
    let extra = if typing { &[][..] } else { &always[..] };
    let entries: Vec<(String, &str, bool)> = wanted
        .into_iter()
        .chain(screens::hints(extra))
        .filter_map(|hint| {
            let key = app.keymap.key_for(scope, hint.action)?;
            Some((key.to_string(), hint.label(), hint.action == Action::Help))
        })
        .collect();
    // Each entry is "key label" and two spaces; the last one's spaces may fall off the edge.
    let width_of = |(key, label, _): &(String, &str, bool)| {
        key.chars().count() + 1 + label.chars().count() + 2
    };
    let room = usize::from(area.width) + 2;
    let mut reserved: usize = entries.iter().filter(|e| e.2).map(width_of).sum();
    let mut used = 0;
    let mut spans = Vec::new();
    for entry in &entries {
        let width = width_of(entry);
        if entry.2 {
            reserved -= width;
        } else if used + width + reserved > room {
            continue;
        }
        used += width;
        spans.push(Span::styled(entry.0.clone(), app.theme.accent()));
        spans.push(Span::styled(format!(" {}  ", entry.1), app.theme.muted()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The key bound to `action` in `scope` (a dialog's or a screen's) as the popup's key line
/// shows it, from the live keymap: a rebound key shows as rebound.
pub fn key_of(app: &App, scope: Scope, action: Action) -> String {
    app.keymap
        .key_for(scope, action)
        .map_or_else(|| "(unbound)".to_string(), |key| key.to_string())
}

/// A dialog's key line, "↑/↓ select · m mine · …": each entry's keys (joined by `/`) and word.
pub fn key_line(app: &App, scope: Scope, entries: &[(&[Action], &str)]) -> String {
    entries
        .iter()
        .map(|(actions, word)| {
            let keys: Vec<String> = actions.iter().map(|a| key_of(app, scope, *a)).collect();
            format!("{} {word}", keys.join("/"))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

fn render_popup(frame: &mut Frame, area: Rect, app: &App, popup: &Popup) {
    match popup {
        Popup::Help { filter, scroll } => render_help(frame, area, app, filter, *scroll),
        Popup::Confirm {
            title,
            lines,
            yes_focused,
            ..
        } => {
            let width = lines
                .iter()
                .map(|l| l.chars().count() as u16 + 4)
                .max()
                .unwrap_or(30)
                .clamp(40, area.width.saturating_sub(4));
            let rect = centered(area, width, lines.len() as u16 + 5);
            frame.render_widget(Clear, rect);
            let mut text: Vec<Line> = lines.iter().map(|l| Line::from(l.clone())).collect();
            text.push(Line::from(""));
            let cancel = format!("Cancel ({})", key_of(app, Scope::Confirm, Action::No));
            let confirm = format!("Confirm ({})", key_of(app, Scope::Confirm, Action::Yes));
            text.push(buttons(
                app,
                &[&cancel, &confirm],
                usize::from(*yes_focused),
            ));
            frame.render_widget(
                Paragraph::new(text)
                    .wrap(Wrap { trim: false })
                    .block(pane(app, title, true)),
                rect,
            );
        }
        Popup::Prompt {
            title,
            hint,
            input,
            error,
            choices,
            completion,
            ..
        } => {
            // The pick-list keeps its height while typing narrows it (up to 8 rows; a path's
            // directories differ in size, so a path prompt takes them all).
            let total = match choices {
                Choices::None => 0,
                Choices::Path => 8,
                _ => completion.total.clamp(1, 8) as u16,
            };
            let rows = total.min(area.height.saturating_sub(12).max(1));
            let rect = centered(area, area.width.saturating_sub(8).min(90), 5 + rows);
            frame.render_widget(Clear, rect);
            let block = pane(app, title, true);
            let inner = block.inner(rect);
            frame.render_widget(block, rect);
            let [field, list, help] = Layout::vertical([
                Constraint::Length(1),
                Constraint::Length(rows),
                Constraint::Length(2),
            ])
            .areas(inner);
            frame.render_widget(input, field);
            let mut keys: Vec<(&[Action], &str)> = vec![(&[Action::Select], "ok")];
            if !choices.is_none() {
                render_candidates(frame, list, app, completion);
                keys.insert(0, (&[Action::FocusNext, Action::FocusPrev], "complete"));
            }
            keys.push((&[Action::Back], "cancel"));
            let help_text = match error {
                Some(why) => Span::styled(
                    format!(
                        "✗ {why} · {}",
                        key_line(app, Scope::Global, &keys[keys.len() - 1..])
                    ),
                    app.theme.error(),
                ),
                None if choices.is_none() => Span::styled(
                    format!("{hint} · {}", key_line(app, Scope::Global, &keys)),
                    app.theme.muted(),
                ),
                None => Span::styled(
                    format!(
                        "{} · {hint} · {}",
                        completion.count(),
                        key_line(app, Scope::Global, &keys)
                    ),
                    app.theme.muted(),
                ),
            };
            frame.render_widget(Paragraph::new(help_text).wrap(Wrap { trim: false }), help);
        }
        Popup::Palette {
            input, completion, ..
        } => {
            let rect = centered(
                area,
                area.width.saturating_sub(8).min(90),
                area.height.saturating_sub(4).min(18),
            );
            frame.render_widget(Clear, rect);
            let title = format!("Command · {}", completion.count());
            let block = pane(app, &title, true);
            let inner = block.inner(rect);
            frame.render_widget(block, rect);
            let [field, list, help] = Layout::vertical([
                Constraint::Length(1),
                Constraint::Min(1),
                Constraint::Length(2),
            ])
            .areas(inner);
            let [colon, field] =
                Layout::horizontal([Constraint::Length(1), Constraint::Min(1)]).areas(field);
            frame.render_widget(Paragraph::new(":"), colon);
            frame.render_widget(input, field);
            render_candidates(frame, list, app, completion);
            let keys = key_line(
                app,
                Scope::Palette,
                &[
                    (&[Action::FocusNext, Action::FocusPrev], "complete"),
                    (&[Action::HistoryBack, Action::HistoryForward], "history"),
                    (&[Action::Select], "run"),
                    (&[Action::Back], "cancel"),
                ],
            );
            frame.render_widget(
                Paragraph::new(Span::styled(keys, app.theme.muted())).wrap(Wrap { trim: false }),
                help,
            );
        }
        Popup::QuitDirty { choice } => {
            let rect = centered(area, 56, 7);
            frame.render_widget(Clear, rect);
            let key = |action| key_of(app, Scope::QuitDialog, action);
            let labels = [
                format!("Save ({})", key(Action::SaveAndQuit)),
                format!("Discard ({})", key(Action::DiscardAndQuit)),
                format!("Cancel ({})", key(Action::Back)),
            ];
            let text = vec![
                Line::from("clients.toml has unsaved edits."),
                Line::from("Save them before quitting?"),
                Line::from(""),
                buttons(app, &labels.each_ref().map(String::as_str), *choice),
            ];
            frame.render_widget(Paragraph::new(text).block(pane(app, "Quit", true)), rect);
        }
        Popup::Conflicts(dialog) => super::disk::render_conflicts(frame, area, app, dialog),
        Popup::Detail {
            title,
            lines,
            scroll,
        } => render_detail(frame, area, app, title, lines, *scroll),
        Popup::Picker {
            title,
            items,
            selected,
            ..
        } => {
            let rect = centered(area, 60, (items.len() as u16 + 2).min(14));
            frame.render_widget(Clear, rect);
            let list: Vec<ListItem> = items.iter().map(|i| ListItem::new(i.clone())).collect();
            let mut state = ListState::default().with_selected(Some(*selected));
            frame.render_stateful_widget(list_pane(app, title, true, list), rect, &mut state);
        }
        Popup::Notices { scroll } => {
            let width = area.width.saturating_sub(6).min(100);
            let keys = key_line(
                app,
                Scope::Global,
                &[(&[Action::Back, Action::Select], "closes")],
            );
            let mut lines = vec![Line::from(Span::styled(
                format!("Found at start-up. {keys}; :notices shows this again."),
                app.theme.muted(),
            ))];
            for notice in app.notices.iter().skip(*scroll) {
                lines.push(Line::from(vec![
                    Span::styled("• ", app.theme.warn()),
                    Span::raw(notice.clone()),
                ]));
            }
            let wrapped: u16 = lines
                .iter()
                .map(|l| {
                    (l.width() as u16)
                        .div_ceil(width.saturating_sub(2).max(1))
                        .max(1)
                })
                .sum();
            let rect = centered(area, width, wrapped.saturating_add(2));
            frame.render_widget(Clear, rect);
            let title = format!("Start-up notices ({})", app.notices.len());
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(pane(app, &title, true)),
                rect,
            );
        }
    }
}

/// A pick-list's candidates, best first, the chosen one highlighted (scrolled into view), each
/// with its note (a command's description) in a column after the names.
fn render_candidates(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    completion: &super::complete::Completion,
) {
    // Only the rows on display are built: a pick-list of 10,000 identities is drawn as cheaply
    // as one of ten.
    let rows = usize::from(area.height);
    let offset = completion
        .chosen
        .map_or(0, |at| (at + 1).saturating_sub(rows));
    let shown = completion.items.iter().skip(offset).take(rows);
    let width = shown
        .clone()
        .map(|c| c.text.chars().count())
        .max()
        .unwrap_or(0)
        .min(24);
    let items: Vec<ListItem> = shown
        .map(|c| {
            if c.note.is_empty() {
                ListItem::new(c.text.clone())
            } else {
                ListItem::new(Line::from(vec![
                    Span::raw(format!("{:<width$}  ", c.text)),
                    Span::styled(c.note.clone(), app.theme.muted()),
                ]))
            }
        })
        .collect();
    let mut state = ListState::default().with_selected(completion.chosen.map(|at| at - offset));
    frame.render_stateful_widget(
        List::new(items)
            .highlight_style(app.theme.selected())
            .highlight_symbol(selected_marker())
            .highlight_spacing(HighlightSpacing::Always),
        area,
        &mut state,
    );
}

fn buttons(app: &App, labels: &[&str], focused: usize) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        if i == focused {
            spans.push(Span::styled(format!("▶[ {label} ]"), app.theme.selected()));
        } else {
            spans.push(Span::raw(format!(" [ {label} ]")));
        }
        spans.push(Span::raw("  "));
    }
    Line::from(spans)
}

fn render_help(frame: &mut Frame, area: Rect, app: &App, filter: &str, scroll: usize) {
    let rect = centered(
        area,
        area.width.saturating_sub(6).min(90),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, rect);
    let needle = filter.to_lowercase();
    let scope = app.current().scope();
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{} — keys (type to filter, Esc closes)",
            app.current().title()
        ),
        app.theme.title(),
    ))];
    if !filter.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("filter: {filter}"),
            app.theme.accent(),
        )));
    }
    let mut heading = None;
    for (row_scope, keys, action) in app.keymap.help_rows(scope) {
        let text = format!("{keys} {} {}", action.name(), action.help());
        if !needle.is_empty() && !text.to_lowercase().contains(&needle) {
            continue;
        }
        if heading != Some(row_scope) {
            heading = Some(row_scope);
            lines.push(Line::from(Span::styled(
                row_scope.name(),
                app.theme.accent(),
            )));
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{keys:>16}  "), app.theme.keyword()),
            Span::raw(action.help().to_string()),
        ]));
    }
    if app.readonly {
        lines.push(Line::from(Span::styled(
            "read-only mode: editing, saving, commit, push, pull and demo flows are disabled",
            app.theme.warn(),
        )));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll as u16, 0))
            .block(pane(app, "Help", true))
            .style(Style::new()),
        rect,
    );
}

/// Where the detail popup goes on a screen `area`, for `wrapped` lines of text: as wide as fits
/// (up to 100 columns), as tall as its text plus its key line, within the screen.
fn detail_rect(area: Rect, wrapped: usize) -> Rect {
    let width = area.width.saturating_sub(4).min(100);
    let height = u16::try_from(wrapped)
        .unwrap_or(u16::MAX)
        .saturating_add(3)
        .min(area.height.saturating_sub(2));
    centered(area, width, height)
}

/// The detail popup's text width on a screen `width` columns wide.
fn detail_text_width(width: u16) -> usize {
    usize::from(width.saturating_sub(4).min(100).saturating_sub(2)).max(1)
}

/// `lines` wrapped at word boundaries to `width` columns (a word longer than that is cut).
pub fn wrap_lines(lines: &[String], width: usize) -> Vec<String> {
    lines
        .iter()
        .flat_map(|line| wrap_line(line, width))
        .collect()
}

fn wrap_line(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    for mut word in line.split_inclusive(' ') {
        loop {
            let visible = word.trim_end_matches(' ').chars().count();
            if used + visible <= width {
                break;
            }
            let room = width.saturating_sub(used);
            if used > 0 && (visible <= width || room == 0) {
                out.push(current.trim_end().to_string());
                current.clear();
                used = 0;
                continue;
            }
            let cut = word
                .char_indices()
                .nth(room)
                .map_or(word.len(), |(at, _)| at);
            current.push_str(&word[..cut]);
            out.push(std::mem::take(&mut current));
            used = 0;
            word = &word[cut..];
        }
        current.push_str(word);
        used += word.chars().count();
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current.trim_end().to_string());
    }
    out
}

/// How far the detail popup can scroll (in wrapped lines) on a screen `width` × `height`; an
/// undrawn console (0 × 0) counts as 80 × 24.
pub(crate) fn detail_scroll_limit(lines: &[String], width: u16, height: u16) -> usize {
    let (width, height) = if width == 0 {
        (80, 24)
    } else {
        (width, height)
    };
    let wrapped = wrap_lines(lines, detail_text_width(width)).len();
    let rect = detail_rect(Rect::new(0, 0, width, height), wrapped);
    let shown = usize::from(rect.height.saturating_sub(3));
    wrapped.saturating_sub(shown)
}

fn render_detail(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    title: &str,
    lines: &[String],
    scroll: usize,
) {
    let wrapped = wrap_lines(lines, detail_text_width(area.width));
    let rect = detail_rect(area, wrapped.len());
    let shown = usize::from(rect.height.saturating_sub(3));
    let scroll = scroll.min(wrapped.len().saturating_sub(shown));
    let title = if wrapped.len() > shown {
        format!(
            "{title} ({}–{} of {} lines)",
            scroll + 1,
            (scroll + shown).min(wrapped.len()),
            wrapped.len()
        )
    } else {
        title.to_string()
    };
    frame.render_widget(Clear, rect);
    let block = pane(app, &title, true);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [text_area, keys_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    let text: Vec<Line> = wrapped
        .into_iter()
        .skip(scroll)
        .take(shown)
        .map(Line::from)
        .collect();
    frame.render_widget(Paragraph::new(text), text_area);
    let keys = key_line(
        app,
        Scope::Global,
        &[
            (&[Action::Up, Action::Down], "scroll"),
            (&[Action::Copy], "copy"),
            (&[Action::Back], "close"),
        ],
    );
    frame.render_widget(
        Paragraph::new(Span::styled(keys, app.theme.muted())),
        keys_area,
    );
}

#[cfg(test)]
mod tests {
    use super::wrap_lines;

    fn wrap(text: &str, width: usize) -> Vec<String> {
        wrap_lines(&[text.to_string()], width)
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_cuts_only_words_longer_than_the_width() {
        assert_eq!(wrap("", 10), vec![""]);
        assert_eq!(wrap("short", 10), vec!["short"]);
        assert_eq!(
            wrap("one two three four", 9),
            vec!["one two", "three", "four"]
        );
        assert_eq!(wrap("abcdefghij klm", 4), vec!["abcd", "efgh", "ij", "klm"]);
        assert_eq!(wrap("ab cdefghij", 5), vec!["ab cd", "efghi", "j"]);
        assert_eq!(
            wrap("✓ signé à l'heure", 8),
            vec!["✓ signé", "à", "l'heure"]
        );
    }

    #[test]
    fn every_wrapped_line_fits() {
        let text = "unknown key \"favourite_colour\" in client uri:urn:company:alice; known keys: identifier, resources, identity_token_enabled";
        for width in 1..40 {
            for line in wrap(text, width) {
                assert!(line.chars().count() <= width, "{width}: {line:?}");
            }
        }
    }
}
