//! The file on disk is the truth. The console watches `clients.toml` and `revocations.toml`
//! (a cheap poll from a job on the tick: size and modification time, then the text only when
//! they moved), reloads after anything that changed them (a pull, a push that rebased, another
//! program), and never writes over a file that is not the text it loaded: a save or commit first
//! checks the file on disk, and refuses when it changed.
//!
//! When the file changed under unsaved edits, the edits are rebased semantically onto it
//! (`policy::rebase`): base = the text the console loaded, ours = the buffer, theirs = the file.
//! A clean rebase becomes the new buffer (one undoable step); a conflict opens a dialog that
//! shows each conflict with both sides, to resolve mine or theirs one by one, or to abandon the
//! rebase with everything left as it was. The same dialog resolves a push whose commits conflict
//! with the upstream, and offers resetting to the upstream (the local work kept in recovery).

use std::path::Path;
use std::time::SystemTime;

use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::app::{App, Confirmation, Level, Popup};
use super::jobs::{Job, JobResult, PolicyInput, PolicyPurpose};
use super::keymap::{Action, Scope};
use crate::policy::rebase::{Conflict, Rebased, Resolutions, Side};

/// Size and modification time of one file (`None`: not there).
pub type Stamp = Option<(u64, SystemTime)>;

/// What the watcher last saw of the two working files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamps {
    pub policy: Stamp,
    pub revocations: Stamp,
}

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// The watcher's job: the stamps now, and the policy text when its stamp moved (or when there
/// was no earlier stamp).
pub fn watch(policy_path: &Path, last: Option<&FileStamps>) -> JobResult {
    let stamps = FileStamps {
        policy: stamp(policy_path),
        revocations: stamp(&policy_path.with_file_name(crate::policy::revocations::FILE)),
    };
    let policy = (last.map(|l| &l.policy) != Some(&stamps.policy)).then(|| {
        std::fs::read_to_string(policy_path)
            .map_err(|e| format!("cannot read {}: {e}", policy_path.display()))
    });
    let revocations_changed = last.is_some_and(|l| l.revocations != stamps.revocations);
    JobResult::Watched {
        stamps,
        policy,
        revocations_changed,
    }
}

/// The watcher's state in the app.
#[derive(Debug, Clone)]
pub struct DiskWatch {
    pub stamps: Option<FileStamps>,
    last: i64,
    /// A disk text the buffer could not be rebased onto (refused or abandoned): the watcher does
    /// not ask again about the same text; a save does.
    declined: Option<String>,
    /// What the next reload should say instead of "changed on disk" (it follows a push that
    /// rebased, or a reset, whose own message matters more).
    pub reload_note: Option<String>,
}

impl Default for DiskWatch {
    fn default() -> Self {
        DiskWatch {
            stamps: None,
            last: i64::MIN,
            declined: None,
            reload_note: None,
        }
    }
}

/// Where a set of conflicts came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictOrigin {
    /// Unsaved edits (`ours`) against the file that changed on disk (`theirs`).
    Buffer {
        base: String,
        ours: String,
        theirs: String,
    },
    /// Local commits against the upstream they are pushed to.
    Push { upstream: String, commit: String },
}

/// The conflicts dialog: each conflict with both sides, and the choice made for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictsDialog {
    pub origin: ConflictOrigin,
    pub conflicts: Vec<Conflict>,
    pub choices: Vec<Option<Side>>,
    pub selected: usize,
    /// Choices made in earlier rounds (a push can meet new conflicts in a later commit).
    pub earlier: Resolutions,
}

impl ConflictsDialog {
    pub fn new(origin: ConflictOrigin, conflicts: Vec<Conflict>, earlier: Resolutions) -> Self {
        ConflictsDialog {
            choices: vec![None; conflicts.len()],
            origin,
            conflicts,
            selected: 0,
            earlier,
        }
    }

    fn resolutions(&self) -> Resolutions {
        let mut all = self.earlier.clone();
        for (conflict, choice) in self.conflicts.iter().zip(&self.choices) {
            if let Some(side) = choice {
                all.insert(conflict.thing.clone(), *side);
            }
        }
        all
    }
}

impl App {
    /// Jobs that write the working files: while one runs, what the watcher sees is the
    /// console's own doing.
    fn writing(&self) -> bool {
        self.in_flight.iter().any(|(_, job)| {
            matches!(
                job,
                Job::Save { .. }
                    | Job::Commit { .. }
                    | Job::Push
                    | Job::PushResolved { .. }
                    | Job::Pull
                    | Job::Revoke { .. }
                    | Job::ResetToUpstream
                    | Job::Reload
            )
        })
    }

    /// On the tick: poll the working files once a second.
    pub(crate) fn watch_tick(&mut self) {
        if self.now.saturating_sub(self.disk.last) < 1
            || self.writing()
            || self
                .in_flight
                .iter()
                .any(|(_, job)| matches!(job, Job::Watch { .. }))
        {
            return;
        }
        self.check_disk();
    }

    /// Polls the working files now.
    pub fn check_disk(&mut self) {
        self.disk.last = self.now;
        let last = self.disk.stamps.clone();
        self.submit(Job::Watch { last });
    }

    pub(crate) fn disk_result(&mut self, result: JobResult) {
        match result {
            JobResult::Watched {
                stamps,
                policy,
                revocations_changed,
            } => {
                if self.writing() {
                    // Our own write may be half seen: look again next time.
                    self.disk.stamps = None;
                    return;
                }
                self.disk.stamps = Some(stamps);
                if revocations_changed {
                    self.refresh_git();
                }
                match policy {
                    Some(Ok(text)) => self.disk_changed(text, false),
                    Some(Err(e)) if !self.saved_text.is_empty() => {
                        self.flash(Level::Warn, format!("{e}; ctrl-s writes the buffer back"));
                    }
                    _ => {}
                }
            }
            JobResult::DiskChanged { disk, base } => {
                if let Some(base) = base {
                    self.saved_text = base;
                }
                self.disk_changed(disk, true);
            }
            JobResult::RebasedBuffer {
                base,
                ours,
                theirs,
                resolutions,
                result,
            } => self.buffer_rebased(base, ours, theirs, resolutions, result),
            JobResult::PushConflicts {
                upstream,
                commit,
                conflicts,
                resolutions,
            } => {
                self.screens.changes.last_push = Some(format!(
                    "{} conflict(s) with {upstream}: resolve, reset or abort",
                    conflicts.len()
                ));
                self.flash(
                    Level::Warn,
                    format!(
                        "push stopped: your commits conflict with {upstream} ({} conflict(s)); nothing was changed",
                        conflicts.len()
                    ),
                );
                self.popup = Some(Popup::Conflicts(ConflictsDialog::new(
                    ConflictOrigin::Push { upstream, commit },
                    conflicts,
                    resolutions,
                )));
                self.refresh_git();
            }
            JobResult::Reset(Ok(outcome)) => {
                self.screens.changes.last_push = Some(format!("reset to {}", outcome.upstream));
                let message = format!(
                    "reset to {}; your {} local commit(s) and working files are kept in {}",
                    outcome.upstream,
                    outcome.commits,
                    outcome.kept_in.display()
                );
                self.flash(Level::Success, message.clone());
                self.disk.reload_note = Some(message);
                self.submit(Job::Reload);
                self.refresh_git();
                self.submit(Job::History);
            }
            JobResult::Reset(Err(e)) => {
                self.flash(Level::Error, format!("not reset (nothing changed): {e}"))
            }
            _ => {}
        }
    }

    /// The file on disk is `disk`. Unmodified buffer: reload. Modified: rebase the buffer onto
    /// it, never overwrite. `asked`: a save or reload wants an answer even for a text the
    /// operator already declined.
    pub(crate) fn disk_changed(&mut self, disk: String, asked: bool) {
        let note = self.disk.reload_note.take();
        if disk == self.saved_text {
            return;
        }
        let name = self.file_name();
        if !self.is_dirty() {
            self.saved_text = disk.clone();
            self.disk.declined = None;
            let why = match note {
                Some(note) => format!("{note} ({name} reloaded)"),
                None => format!("{name} changed on disk: reloaded it"),
            };
            self.derive(PolicyInput::Text(disk), PolicyPurpose::Reopen { why });
            return;
        }
        if !asked && self.disk.declined.as_deref() == Some(disk.as_str()) {
            return;
        }
        if self.screens.clients.editor_modified() || self.session.is_none() {
            self.disk.declined = Some(disk);
            self.flash(
                Level::Warn,
                format!(
                    "{name} changed on disk; your editor text is kept (not written): apply it (Esc) and save, and it is rebased onto the file"
                ),
            );
            return;
        }
        if self
            .in_flight
            .iter()
            .any(|(_, job)| matches!(job, Job::Rebase { .. }))
        {
            // One at a time; the result of the running one is checked for staleness.
            self.disk.stamps = None;
            return;
        }
        self.submit(Job::Rebase {
            base: self.saved_text.clone(),
            ours: self.text().to_string(),
            theirs: disk,
            resolutions: Resolutions::new(),
        });
    }

    fn file_name(&self) -> String {
        self.policy_path.file_name().map_or_else(
            || "clients.toml".into(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    fn buffer_rebased(
        &mut self,
        base: String,
        ours: String,
        theirs: String,
        resolutions: Resolutions,
        result: Result<Rebased, String>,
    ) {
        if base != self.saved_text || ours != self.text() {
            // The buffer or the base moved while this ran: start over from what is there now.
            self.disk.stamps = None;
            self.check_disk();
            return;
        }
        let name = self.file_name();
        match result {
            Err(e) => {
                self.disk.declined = Some(theirs);
                self.flash(
                    Level::Error,
                    format!(
                        "{name} changed on disk and your unsaved edits cannot be rebased onto it: {e}. Nothing was written; your edits are kept"
                    ),
                );
            }
            Ok(rebased) if rebased.is_clean() => {
                let why = format!(
                    "{name} changed on disk: rebased {} edit(s) onto it ({}); u undoes",
                    rebased.replayed,
                    rebased.summary()
                );
                self.disk.declined = None;
                self.derive(
                    PolicyInput::Text(rebased.text),
                    PolicyPurpose::Rebased { disk: theirs, why },
                );
            }
            Ok(rebased) => {
                self.flash(
                    Level::Warn,
                    format!(
                        "{name} changed on disk and {} of your edit(s) conflict with it: choose for each",
                        rebased.conflicts.len()
                    ),
                );
                self.popup = Some(Popup::Conflicts(ConflictsDialog::new(
                    ConflictOrigin::Buffer { base, ours, theirs },
                    rebased.conflicts,
                    resolutions,
                )));
            }
        }
    }

    pub(crate) fn conflicts_key(&mut self, mut dialog: ConflictsDialog, key: KeyEvent) {
        let count = dialog.conflicts.len();
        match self.keymap.lookup(Scope::Conflicts, &key) {
            Some(Action::Back | Action::Abandon) => {
                if let ConflictOrigin::Buffer { theirs, .. } = &dialog.origin {
                    self.disk.declined = Some(theirs.clone());
                    self.flash(
                        Level::Warn,
                        "rebase abandoned: your edits are kept unsaved and the file is as it was; a save asks again",
                    );
                } else {
                    self.screens.changes.last_push = Some("push abandoned; nothing changed".into());
                    self.flash(
                        Level::Info,
                        "push abandoned: your commits and the working files are as they were",
                    );
                }
                return;
            }
            Some(Action::Down) => {
                dialog.selected = (dialog.selected + 1).min(count.saturating_sub(1))
            }
            Some(Action::Up) => dialog.selected = dialog.selected.saturating_sub(1),
            Some(Action::TakeMine) => {
                dialog.choices[dialog.selected] = Some(Side::Mine);
                dialog.selected = (dialog.selected + 1).min(count.saturating_sub(1));
            }
            Some(Action::TakeTheirs) => {
                dialog.choices[dialog.selected] = Some(Side::Theirs);
                dialog.selected = (dialog.selected + 1).min(count.saturating_sub(1));
            }
            Some(Action::AllMine) => dialog.choices.fill(Some(Side::Mine)),
            Some(Action::AllTheirs) => dialog.choices.fill(Some(Side::Theirs)),
            Some(Action::ResetToUpstream)
                if matches!(dialog.origin, ConflictOrigin::Push { .. }) =>
            {
                let ConflictOrigin::Push { upstream, .. } = &dialog.origin else {
                    unreachable!("matched just above")
                };
                let lines = vec![
                    format!("Reset this branch and the working files to {upstream}?"),
                    "Your local commits and working clients.toml / revocations.toml are kept"
                        .into(),
                    "first in the console's recovery directory (the flash says where).".into(),
                ];
                self.confirm(
                    Confirmation::ResetToUpstream,
                    "Reset to the upstream",
                    lines,
                );
                return;
            }
            Some(Action::Select) => {
                let left = dialog.choices.iter().filter(|c| c.is_none()).count();
                if left > 0 {
                    self.flash(
                        Level::Warn,
                        format!(
                            "choose mine ({}) or theirs ({}) for every conflict: {left} left",
                            super::ui::key_of(self, Scope::Conflicts, Action::TakeMine),
                            super::ui::key_of(self, Scope::Conflicts, Action::TakeTheirs),
                        ),
                    );
                } else {
                    let resolutions = dialog.resolutions();
                    match dialog.origin {
                        ConflictOrigin::Buffer { base, ours, theirs } => {
                            self.submit(Job::Rebase {
                                base,
                                ours,
                                theirs,
                                resolutions,
                            });
                        }
                        ConflictOrigin::Push { .. } => {
                            self.screens.changes.last_push = Some("pushing (resolved)…".into());
                            self.submit(Job::PushResolved { resolutions });
                        }
                    }
                    return;
                }
            }
            _ => {}
        }
        self.popup = Some(Popup::Conflicts(dialog));
    }
}

/// The conflicts dialog.
pub fn render_conflicts(frame: &mut Frame, area: Rect, app: &App, dialog: &ConflictsDialog) {
    let width = area.width.saturating_sub(4).min(110);
    let height = area.height.saturating_sub(2);
    let rect = super::ui::centered(area, width, height);
    frame.render_widget(Clear, rect);
    let (title, intro) = match &dialog.origin {
        ConflictOrigin::Buffer { .. } => (
            "Conflicts: your unsaved edits vs the file on disk".to_string(),
            "The file changed on disk; these edits of yours changed the same things:".to_string(),
        ),
        ConflictOrigin::Push { upstream, commit } => (
            format!("Conflicts: your commits vs {upstream}"),
            format!("{commit} and {upstream} changed the same things:"),
        ),
    };
    let mut lines = vec![Line::from(intro), Line::from("")];
    for (i, (conflict, choice)) in dialog.conflicts.iter().zip(&dialog.choices).enumerate() {
        let marker = if i == dialog.selected { "▶ " } else { "  " };
        let chosen = match choice {
            None => "[ ? ]",
            Some(Side::Mine) => "[mine]",
            Some(Side::Theirs) => "[theirs]",
        };
        let why = match &conflict.kind {
            crate::policy::rebase::ConflictKind::BothChanged => "changed on both sides".to_string(),
            crate::policy::rebase::ConflictKind::YouRemoved => {
                "you removed it; they changed it".into()
            }
            crate::policy::rebase::ConflictKind::TheyRemoved => {
                "they removed it; you changed it".into()
            }
            crate::policy::rebase::ConflictKind::NoLongerApplies(why) => {
                format!("your change no longer applies: {why}")
            }
        };
        let style = if i == dialog.selected {
            app.theme.selected()
        } else {
            ratatui::style::Style::default()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{marker}{chosen} {}", conflict.what), style),
            Span::styled(format!("  ({why})"), app.theme.muted()),
        ]));
        lines.push(Line::from(format!(
            "      was: {}   mine: {}   theirs: {}",
            conflict.base, conflict.mine, conflict.theirs
        )));
    }
    lines.push(Line::from(""));
    let mut keys: Vec<(&[Action], &str)> = vec![
        (&[Action::Up, Action::Down], "select"),
        (&[Action::TakeMine], "mine"),
        (&[Action::TakeTheirs], "theirs"),
        (&[Action::AllMine, Action::AllTheirs], "all"),
        (&[Action::Select], "apply"),
    ];
    if matches!(dialog.origin, ConflictOrigin::Push { .. }) {
        keys.push((&[Action::ResetToUpstream], "reset to the upstream"));
    }
    keys.push((&[Action::Back, Action::Abandon], "abort (nothing changes)"));
    lines.push(Line::from(Span::styled(
        super::ui::key_line(app, Scope::Conflicts, &keys),
        app.theme.muted(),
    )));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(super::ui::pane(app, &title, true)),
        rect,
    );
}
