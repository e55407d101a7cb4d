//! The `:` command palette: commands by name with Tab completion (commands, action names,
//! client identities, theme names) and history. Each command maps onto an action or a setting.

use super::app::{App, Level};
use super::keymap::Action;
use super::screens::ScreenId;
use super::theme::BUILT_IN;

/// Commands with an argument, and what the argument is.
const COMMANDS: &[(&str, &str)] = &[
    ("client", "IDENTITY — show a client"),
    ("theme", "NAME — switch theme"),
    ("commit", "[MESSAGE] — commit clients.toml"),
    ("push", "— push to the remote"),
    ("pull", "— pull from the remote"),
    ("save", "— save clients.toml (also :w)"),
    ("verify", "[IDENTITY [DOMAIN]] — verify the loaded token"),
    (
        "key",
        "KEY — root public key for verification (PEM or ed25519/…)",
    ),
    ("load", "PATH — load a token file"),
    ("filter", "TEXT — filter the current screen"),
    ("help", "— keys"),
    (
        "notices",
        "— what start-up found wrong (config, keys, ports)",
    ),
    ("quit", "— quit (also :q; :q! discards edits)"),
];

/// Completions for what has been typed so far.
pub fn complete(app: &App, line: &str) -> Vec<String> {
    let (command, argument) = match line.split_once(' ') {
        Some((c, a)) => (c, Some(a)),
        None => (line, None),
    };
    let Some(argument) = argument else {
        // Commands, the screens by name, and every action the keymap allows (read-only mode
        // leaves out what would change something).
        let screens = ScreenId::ALL.iter().flat_map(|id| app.screen_words(*id));
        let actions = Action::ALL
            .iter()
            .filter(|a| app.keymap.is_enabled(**a))
            .map(|a| a.name().to_string());
        let mut names: Vec<String> = COMMANDS
            .iter()
            .map(|(c, _)| c.to_string())
            .chain(screens)
            .chain(actions)
            .filter(|n| n.starts_with(command))
            .collect();
        names.sort();
        names.dedup();
        return names
            .into_iter()
            .map(|n| match COMMANDS.iter().find(|(c, _)| *c == n) {
                Some(_) => format!("{n} "),
                None => n,
            })
            .collect();
    };
    let options: Vec<String> = match command {
        "client" => app
            .loaded()
            .map(|l| {
                l.policy
                    .clients
                    .iter()
                    .map(|c| c.identity.clone())
                    .collect()
            })
            .unwrap_or_default(),
        "theme" => BUILT_IN.iter().map(|(n, _)| n.to_string()).collect(),
        _ => Vec::new(),
    };
    options
        .into_iter()
        .filter(|o| o.contains(argument))
        .take(50)
        .map(|o| format!("{command} {o}"))
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
        other => match Action::from_name(other) {
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
