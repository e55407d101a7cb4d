//! The `:` command palette: commands by name, listed with what they do and filtered fuzzily as
//! they are typed; Tab completes them and their arguments (client identities, theme names,
//! paths); ctrl-p / ctrl-n step through the history. Each command maps onto an action or a setting;
//! the list of commands is the keymap's (`keymap::commands`) plus the screens by name.

use super::app::{App, Level};
use super::complete::{self, Candidate, Completion, Stage};
use super::keymap::{self, Action};
use super::screens::ScreenId;
use super::theme::BUILT_IN;

/// Every command the palette runs, with what it does: the keymap's commands (its actions and
/// `keymap::ARGUMENT_COMMANDS`), then the screens by name. Read-only mode leaves out what would
/// change something.
pub fn commands(app: &App) -> Vec<(String, String)> {
    let mut commands: Vec<(String, String)> = keymap::commands(&app.keymap)
        .into_iter()
        .map(|(name, help)| (name.to_string(), help.to_string()))
        .collect();
    for id in ScreenId::ALL {
        let title = app.screens.get(id).title();
        for word in app.screen_words(id) {
            commands.push((word, format!("go to {title}")));
        }
    }
    commands
}

/// Whether a command takes an argument (completion leaves a space after its name).
fn takes_argument(name: &str) -> bool {
    keymap::ARGUMENT_COMMANDS.iter().any(|(c, _)| *c == name)
}

/// The candidates for what has been typed: with no space yet, every command with what it
/// does (in `commands` order, each name once); after a command, its argument's: client
/// identities (`client`, `verify`), theme names (`theme`), paths (`load`).
pub fn stage(app: &App, line: &str) -> Stage {
    let Some((command, argument)) = line.split_once(' ') else {
        let mut seen = std::collections::HashSet::new();
        let candidates = commands(app)
            .into_iter()
            .filter(|(name, _)| seen.insert(name.clone()))
            .map(|(name, note)| Candidate {
                more: takes_argument(&name),
                text: name,
                note,
            })
            .collect();
        return Stage {
            base: String::new(),
            query: line.to_string(),
            candidates,
            wants_dir: None,
        };
    };
    let identities = || {
        app.loaded()
            .map(|l| complete::identities(&l.policy))
            .unwrap_or_default()
    };
    let options: Vec<String> = match command {
        "client" => identities(),
        "verify" if !argument.contains(' ') => identities(),
        "theme" => BUILT_IN.iter().map(|(n, _)| n.to_string()).collect(),
        "load" => {
            let mut stage = complete::path_stage(argument, &app.listing);
            stage.base = format!("{command} {}", stage.base);
            return stage;
        }
        _ => Vec::new(),
    };
    Stage {
        base: format!("{command} "),
        query: argument.to_string(),
        candidates: options.into_iter().map(Candidate::plain).collect(),
        wants_dir: None,
    }
}

/// Completions for what has been typed so far: whole lines, best match first.
pub fn complete(app: &App, line: &str) -> Vec<String> {
    let completion = Completion::new(stage(app, line));
    (0..completion.items.len())
        .map(|i| completion.line(i))
        .collect()
}

/// Runs a command line.
pub fn run(app: &mut App, line: &str) {
    let (command, argument) = match line.split_once(' ') {
        Some((c, a)) => (c, a.trim()),
        None => (line, ""),
    };
    match command {
        "q" | "quit" => app.dispatch(Action::Quit),
        "q!" | "quit!" => app.dispatch(Action::ForceQuit),
        "w" | "save" => app.dispatch(Action::Save),
        "wq" | "x" => {
            app.dispatch(Action::Save);
            app.dispatch(Action::Quit);
        }
        "client" => show_client(app, argument),
        "theme" if argument.is_empty() => app.cycle_theme(),
        "theme" => app.set_theme(argument),
        "commit" => {
            app.go_to(ScreenId::Changes);
            if argument.is_empty() {
                app.dispatch(Action::Commit);
            } else if let Some(reason) = app.disabled_reason(Action::Commit) {
                app.flash(Level::Warn, reason);
            } else {
                let message = argument.to_string();
                app.with_screens(ScreenId::Changes, |s, cx| {
                    match s.changes.commit_disabled(cx) {
                        Some(reason) => cx.flash(Level::Warn, reason),
                        None => s.changes.commit_message_entered(message, cx),
                    }
                });
            }
        }
        "push" => {
            app.go_to(ScreenId::Changes);
            app.dispatch(Action::Push);
        }
        "pull" => {
            app.go_to(ScreenId::Changes);
            app.dispatch(Action::Pull);
        }
        "verify" => {
            app.go_to(ScreenId::Tokens);
            app.with_screens(ScreenId::Tokens, |s, cx| s.tokens.verify_as(argument, cx));
        }
        "key" => match crate::token::keys::parse_public_key(argument) {
            Ok(_) => {
                app.with_screens(ScreenId::Tokens, |s, cx| {
                    s.tokens.custom_key = Some(argument.to_string());
                    cx.flash(Level::Info, "verification key set");
                });
            }
            Err(e) => app.flash(Level::Error, format!("key: {e}")),
        },
        "load" if argument.is_empty() => {
            app.flash(Level::Info, "load: give a path, e.g. :load ~/token.txt");
        }
        "load" => {
            app.submit(super::jobs::Job::LoadTokenFile {
                path: super::app::expand_home(argument),
            });
        }
        "filter" => {
            app.dispatch(Action::Filter);
            if let Some(input) = app.filter_input.as_mut() {
                input.select_all();
                input.cut();
                input.insert_str(argument);
            }
            app.set_filter_text(argument.to_string());
            app.filter_input = None;
        }
        "help" => app.dispatch(Action::Help),
        "notices" if app.notices.is_empty() => {
            app.flash(Level::Info, "no start-up notices");
        }
        "notices" => app.popup = Some(super::app::Popup::Notices { scroll: 0 }),
        other if app.screen_named(other).is_some() => {
            if let Some(screen) = app.screen_named(other) {
                app.go_to(screen);
            }
        }
        // A dialog's own actions answer the dialog on screen; they are not commands.
        other => match Action::from_name(other).filter(|a| a.is_command()) {
            Some(action) => app.dispatch(action),
            None => app.flash(
                Level::Error,
                format!("unknown command :{other} (Tab lists commands)"),
            ),
        },
    }
}

fn show_client(app: &mut App, identity: &str) {
    let known = app
        .loaded()
        .is_some_and(|l| l.policy.client(identity).is_some());
    if !known {
        app.flash(Level::Error, format!("no client {identity}"));
        return;
    }
    app.go_to(ScreenId::Clients);
    app.set_filter_text(String::new());
    let loaded = app.session.as_ref().map(|s| s.current());
    app.screens.clients.select_identity(identity, loaded);
}
