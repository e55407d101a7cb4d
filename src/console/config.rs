//! The console's config file (`$HESSRA_CONSOLE_CONFIG`, else
//! `$XDG_CONFIG_HOME/hessra-console/config.toml`, else `~/.config/hessra-console/config.toml`,
//! macOS included) and where logs go. Mistakes in the file are reported, never ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How `y` copies (see `clipboard::Clipboard::resolve` for what "auto" picks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipboardMode {
    /// tmux's buffer inside tmux, a file where the terminal has no OSC 52, else OSC 52.
    Auto,
    /// OSC 52 escape sequence: works locally and over SSH in terminals that allow it.
    Osc52,
    /// `tmux load-buffer`.
    Tmux,
    /// A private file in the state directory.
    File,
    /// Copying turned off.
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where it was read from (None when there was no file).
    pub path: Option<PathBuf>,
    pub theme: Option<String>,
    /// `[theme_overrides]` as TOML text, applied on top of the theme.
    pub theme_overrides: Option<String>,
    pub mouse: bool,
    pub clipboard: ClipboardMode,
    pub readonly: bool,
    pub keys: BTreeMap<String, Vec<String>>,
    /// Seconds without activity after which the activity view marks an identity quiet.
    pub quiet_after: i64,
    /// Seconds between background fetches of the upstream (0: never).
    pub fetch_interval: i64,
    /// The window (seconds) in which access the audit trail never saw used is marked unused.
    pub unused_window: i64,
}

/// Background fetches run this often (seconds) unless the config says otherwise.
pub const DEFAULT_FETCH_INTERVAL: i64 = 60;

/// Access is marked unused when the audit trail shows no use of it in this many seconds (30
/// days, as `policy unused --since` defaults to) unless the config says otherwise.
pub const DEFAULT_UNUSED_WINDOW: i64 = 30 * 86_400;

impl Default for Config {
    fn default() -> Config {
        Config {
            path: None,
            theme: None,
            theme_overrides: None,
            mouse: false,
            clipboard: ClipboardMode::Auto,
            readonly: false,
            keys: BTreeMap::new(),
            quiet_after: 3_600,
            fetch_interval: DEFAULT_FETCH_INTERVAL,
            unused_window: DEFAULT_UNUSED_WINDOW,
        }
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn xdg(variable: &str, fallback: &str) -> Option<PathBuf> {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home().map(|h| h.join(fallback)))
        .map(|dir| dir.join("hessra-console"))
}

/// The config file to read.
pub fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HESSRA_CONSOLE_CONFIG") {
        return Some(PathBuf::from(path));
    }
    xdg("XDG_CONFIG_HOME", ".config").map(|dir| dir.join("config.toml"))
}

/// Where the log file goes: `$XDG_STATE_HOME/hessra-console/console.log`.
pub fn log_path() -> Option<PathBuf> {
    xdg("XDG_STATE_HOME", ".local/state").map(|dir| dir.join("console.log"))
}

impl Config {
    /// Reads the config file; a missing file gives the defaults. Problems come back as
    /// messages naming the file, line and column and the fix. A problem that could widen what
    /// the console may do fails closed: see `parse`.
    pub fn load(path: Option<&Path>) -> (Config, Vec<String>) {
        let Some(path) = path else {
            return (Config::default(), Vec::new());
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let (mut config, problems) = Config::parse(&text, &path.display().to_string());
                config.path = Some(path.to_path_buf());
                (config, problems)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Config::default(), Vec::new()),
            Err(e) => (
                Config {
                    path: Some(path.to_path_buf()),
                    readonly: true,
                    ..Config::default()
                },
                vec![format!(
                    "started read-only: cannot read the config file {} ({e}), so whether it asks for read-only mode is unknown; fix its permissions",
                    path.display()
                )],
            ),
        }
    }

    /// Reads config text (`origin` names it in messages).
    ///
    /// Fail closed: `readonly` is the one setting whose mistake could widen what the console
    /// may do, so a `readonly` that is not true or false, a misspelling of it (`read-only`,
    /// `read_only`) or a file that does not parse at all starts the console read-only, and
    /// the message says why and how to fix it. `clipboard` turns a capability on, so a wrong
    /// value turns copying off. Everything else is cosmetic (theme, colours, mouse, keys,
    /// quiet_after): a wrong value is reported and the default used.
    pub fn parse(text: &str, origin: &str) -> (Config, Vec<String>) {
        let mut config = Config::default();
        let mut problems = Vec::new();
        let at = |span: Option<std::ops::Range<usize>>| match span {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                format!("{origin}:{line}:{column}")
            }
            None => origin.to_string(),
        };
        let doc = match toml_edit::Document::parse(text.to_string()) {
            Ok(doc) => doc,
            Err(e) => {
                config.readonly = true;
                let message = e.message().trim().replace('\n', " ");
                return (
                    config,
                    vec![format!(
                        "{}: started read-only: the config file does not parse ({message}), so whether it asks for read-only mode is unknown; fix the TOML there",
                        at(e.span())
                    )],
                );
            }
        };
        let root = doc.as_table();
        for (key, item) in root.iter() {
            let key_at = at(root.key(key).and_then(toml_edit::Key::span));
            let value_at = at(item.span());
            let shown = item.as_value().map_or_else(
                || "a table".to_string(),
                |v| v.to_string().trim().to_string(),
            );
            let mut wrong = |expected: &str, outcome: &str| {
                problems.push(format!(
                    "{value_at}: {key} = {shown} must be {expected}; {outcome}"
                ));
            };
            match key {
                "readonly" => match item.as_bool() {
                    Some(on) => config.readonly = on,
                    None => {
                        config.readonly = true;
                        problems.push(format!(
                            "{value_at}: started read-only: readonly = {shown} is not true or false; fix: write readonly = true, or readonly = false to allow edits"
                        ));
                    }
                },
                "theme" => match item.as_str() {
                    Some(name) if super::theme::Theme::built_in(name).is_ok() => {
                        config.theme = Some(name.to_string())
                    }
                    _ => wrong(&theme_names(), "using the default theme"),
                },
                "mouse" => match item.as_bool() {
                    Some(on) => config.mouse = on,
                    None => wrong("true or false", "mouse capture stays off"),
                },
                "quiet_after" => {
                    let seconds = match (item.as_integer(), item.as_str()) {
                        (Some(seconds), _) => crate::policy::duration::parse(&seconds.to_string()),
                        (None, Some(text)) => crate::policy::duration::parse(text),
                        _ => Err(crate::policy::duration::DurationError::Empty),
                    };
                    match seconds {
                        Ok(seconds) => config.quiet_after = seconds as i64,
                        Err(e) => wrong(&format!("a duration ({e})"), "using 3600"),
                    }
                }
                "fetch_interval" => {
                    let seconds = match (item.as_integer(), item.as_str()) {
                        (Some(0), _) | (None, Some("0" | "off")) => Ok(0),
                        (Some(seconds), _) => crate::policy::duration::parse(&seconds.to_string()),
                        (None, Some(text)) => crate::policy::duration::parse(text),
                        _ => Err(crate::policy::duration::DurationError::Empty),
                    };
                    match seconds {
                        Ok(seconds) => config.fetch_interval = seconds as i64,
                        Err(e) => wrong(
                            &format!("a duration, or 0 to turn it off ({e})"),
                            &format!("fetching every {DEFAULT_FETCH_INTERVAL} s"),
                        ),
                    }
                }
                "unused_window" => {
                    let seconds = match (item.as_integer(), item.as_str()) {
                        (Some(seconds), _) => crate::policy::duration::parse(&seconds.to_string()),
                        (None, Some(text)) => crate::policy::duration::parse(text),
                        _ => Err(crate::policy::duration::DurationError::Empty),
                    };
                    match seconds {
                        Ok(seconds) => config.unused_window = seconds as i64,
                        Err(e) => wrong(&format!("a duration ({e})"), "using 30d"),
                    }
                }
                "clipboard" => match item.as_str() {
                    Some("auto") => config.clipboard = ClipboardMode::Auto,
                    Some("osc52") => config.clipboard = ClipboardMode::Osc52,
                    Some("tmux") => config.clipboard = ClipboardMode::Tmux,
                    Some("file") => config.clipboard = ClipboardMode::File,
                    Some("off") => config.clipboard = ClipboardMode::Off,
                    _ => {
                        config.clipboard = ClipboardMode::Off;
                        wrong(
                            "\"auto\", \"osc52\", \"tmux\", \"file\" or \"off\"",
                            "copying is off until it is fixed",
                        );
                    }
                },
                "theme_overrides" => match item.as_table_like() {
                    Some(table) => {
                        let mut doc = toml_edit::DocumentMut::new();
                        let mut probe = super::theme::Theme::built_in("default")
                            .expect("the default theme is built in");
                        for (slot, value) in table.iter() {
                            let checked = value
                                .as_str()
                                .ok_or_else(|| format!("{slot} must be a colour string"))
                                .and_then(|colour| probe.set(slot, colour));
                            match checked {
                                Ok(()) => {
                                    doc.insert(slot, toml_edit::value(value.as_str().unwrap_or_default()));
                                }
                                Err(e) => problems.push(format!(
                                    "{}: [theme_overrides] {e}; that colour keeps the theme's",
                                    at(value.span())
                                )),
                            }
                        }
                        config.theme_overrides = Some(doc.to_string());
                    }
                    None => wrong("a table of colour = \"value\"", "no colours are overridden"),
                },
                "keys" => match item.as_table_like() {
                    Some(table) => {
                        for (action, value) in table.iter() {
                            let value_at = at(value.span());
                            match check_keys(action, value) {
                                Ok(keys) => {
                                    config.keys.insert(action.to_string(), keys);
                                }
                                Err(e) => problems.push(format!(
                                    "{value_at}: [keys] {action}: {e}; its default keys stay"
                                )),
                            }
                        }
                    }
                    None => wrong("a table of action = [\"key\", ...]", "the default keys stay"),
                },
                other if normalized(other) == "readonly" => {
                    config.readonly = true;
                    problems.push(format!(
                        "{key_at}: started read-only: unknown setting {other:?}, read as a misspelt readonly; fix: write readonly = true (or false)"
                    ));
                }
                other => problems.push(format!(
                    "{key_at}: unknown setting {other:?}, ignored (settings: theme, theme_overrides, mouse, clipboard, readonly, quiet_after, fetch_interval, unused_window, keys)"
                )),
            }
        }
        // Read-only first: it is what the operator most needs to know.
        problems.sort_by_key(|p| !p.contains("started read-only"));
        (config, problems)
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A setting name without case, `-`, `_` or spaces (`read-only` → `readonly`).
fn normalized(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn theme_names() -> String {
    let names: Vec<String> = super::theme::BUILT_IN
        .iter()
        .map(|(name, _)| format!("{name:?}"))
        .collect();
    format!("one of {}", names.join(", "))
}

/// A `[keys]` entry: a known action and keys that parse.
fn check_keys(action: &str, item: &toml_edit::Item) -> Result<Vec<String>, String> {
    if super::keymap::Action::from_name(action).is_none() {
        return Err("no such action (the help, ?, lists their names)".into());
    }
    let keys = keys_of(item).ok_or("must be a key or a list of keys")?;
    for key in &keys {
        super::keymap::KeySpec::parse(key)?;
    }
    Ok(keys)
}

fn keys_of(item: &toml_edit::Item) -> Option<Vec<String>> {
    if let Some(one) = item.as_str() {
        return Some(vec![one.to_string()]);
    }
    item.as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_setting() {
        let (config, problems) = Config::parse(
            r##"
theme = "deuteranopia"
mouse = true
readonly = true
clipboard = "off"
[theme_overrides]
accent = "#ff8800"
[keys]
commit = ["ctrl-k", "C"]
push = "ctrl-p"
"##,
            "config.toml",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config.theme.as_deref(), Some("deuteranopia"));
        assert!(config.mouse && config.readonly);
        assert_eq!(config.clipboard, ClipboardMode::Off);
        assert!(config.theme_overrides.unwrap().contains("#ff8800"));
        assert_eq!(config.keys["commit"], vec!["ctrl-k", "C"]);
        assert_eq!(config.keys["push"], vec!["ctrl-p"]);
    }

    #[test]
    fn reports_mistakes_with_file_line_column_and_the_fix() {
        let (config, problems) = Config::parse(
            "theme = 3\nmouse = \"yes\"\ncolour = 1\n[keys]\ncommit = 4\nfly = \"f\"\npush = \"hyper-p\"\n[theme_overrides]\naccent = \"plaid\"\n",
            "c.toml",
        );
        assert_eq!(config.theme, None);
        assert!(!config.mouse);
        assert!(!config.readonly, "cosmetic mistakes do not change the mode");
        assert!(config.keys.is_empty(), "{:?}", config.keys);
        let all = problems.join("\n");
        for expected in [
            "c.toml:1:9: theme = 3 must be one of \"default\"",
            "c.toml:2:9: mouse = \"yes\" must be true or false",
            "c.toml:3:1: unknown setting \"colour\"",
            "c.toml:5:10: [keys] commit: must be a key",
            "c.toml:6:7: [keys] fly: no such action",
            "c.toml:7:8: [keys] push: unknown key \"hyper-p\"",
            "c.toml:9:10: [theme_overrides] accent = \"plaid\" is not a colour",
        ] {
            assert!(all.contains(expected), "{expected}\n{all}");
        }
        assert!(
            !all.contains("--"),
            "config problems never name command-line flags: {all}"
        );
    }

    #[test]
    fn fetch_interval_takes_a_duration_or_zero_for_off() {
        assert_eq!(Config::default().fetch_interval, DEFAULT_FETCH_INTERVAL);
        for (text, seconds) in [
            ("fetch_interval = 300\n", 300),
            ("fetch_interval = \"2m\"\n", 120),
            ("fetch_interval = 0\n", 0),
            ("fetch_interval = \"off\"\n", 0),
        ] {
            let (config, problems) = Config::parse(text, "config.toml");
            assert!(problems.is_empty(), "{text}: {problems:?}");
            assert_eq!(config.fetch_interval, seconds, "{text}");
        }
        let (config, problems) = Config::parse("fetch_interval = -1\n", "config.toml");
        assert_eq!(config.fetch_interval, DEFAULT_FETCH_INTERVAL);
        assert!(
            problems.len() == 1 && problems[0].contains("fetching every 60 s"),
            "{problems:?}"
        );
    }

    #[test]
    fn unused_window_takes_a_duration_and_keeps_30d_on_a_mistake() {
        assert_eq!(Config::default().unused_window, DEFAULT_UNUSED_WINDOW);
        for (text, seconds) in [
            ("unused_window = \"7d\"\n", 604_800),
            ("unused_window = 3600\n", 3_600),
        ] {
            let (config, problems) = Config::parse(text, "config.toml");
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(config.unused_window, seconds, "{text}");
        }
        for text in ["unused_window = 0\n", "unused_window = \"soon\"\n"] {
            let (config, problems) = Config::parse(text, "config.toml");
            assert_eq!(config.unused_window, DEFAULT_UNUSED_WINDOW, "{text}");
            assert!(problems[0].contains("using 30d"), "{problems:?}");
        }
    }

    #[test]
    fn quiet_after_takes_a_lifetime_as_everywhere_else() {
        for (text, seconds) in [
            ("quiet_after = 900\n", 900),
            ("quiet_after = \"1h30m\"\n", 5_400),
            ("quiet_after = \"2d\"\n", 172_800),
        ] {
            let (config, problems) = Config::parse(text, "config.toml");
            assert!(problems.is_empty(), "{text}: {problems:?}");
            assert_eq!(config.quiet_after, seconds, "{text}");
        }
        for (text, why) in [
            ("quiet_after = 0\n", "is zero"),
            ("quiet_after = -5\n", "is negative"),
            ("quiet_after = \"soon\"\n", "is not a duration"),
            ("quiet_after = true\n", "no duration given"),
        ] {
            let (config, problems) = Config::parse(text, "config.toml");
            assert_eq!(config.quiet_after, 3_600, "{text}: the default stays");
            assert!(
                problems.len() == 1
                    && problems[0].contains(why)
                    && problems[0].contains("using 3600"),
                "{text}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_mistake_in_readonly_fails_closed() {
        for text in [
            "readonly = \"yes\"\n",
            "readonly = 1\n",
            "read-only = true\n",
            "Read_Only = false\n",
            "theme = \"light\"\nreadonly = tru\n",
            "readonly = [\n",
        ] {
            let (config, problems) = Config::parse(text, "c.toml");
            assert!(config.readonly, "{text:?} must start read-only");
            assert!(
                problems[0].contains("started read-only") && problems[0].starts_with("c.toml:"),
                "{text:?}: {problems:?}"
            );
            assert!(problems[0].contains("readonly") || problems[0].contains("parse"));
        }
        let (_, problems) = Config::parse("mouse = true\nreadonly = \"yes\"\n", "c.toml");
        assert!(problems[0].starts_with("c.toml:2:12: started read-only: readonly = \"yes\" is not true or false; fix: write readonly = true"), "{problems:?}");
        let (config, problems) = Config::parse("clipboard = \"system\"\n", "c.toml");
        assert_eq!(
            config.clipboard,
            ClipboardMode::Off,
            "a wrong clipboard turns copying off"
        );
        assert!(problems[0].contains("copying is off"), "{problems:?}");
        let (config, problems) = Config::parse("readonly = false\n", "c.toml");
        assert!(!config.readonly && problems.is_empty());
    }

    #[test]
    fn an_unreadable_config_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: it exists and cannot be read as text.
        let (config, problems) = Config::load(Some(dir.path()));
        assert!(config.readonly);
        assert!(problems[0].contains("started read-only"), "{problems:?}");
    }

    #[test]
    fn a_missing_file_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let (config, problems) = Config::load(Some(&dir.path().join("none.toml")));
        assert_eq!(config, Config::default());
        assert!(problems.is_empty());
    }
}
