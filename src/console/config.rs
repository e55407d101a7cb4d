//! The console's config file (`$HESSRA_CONSOLE_CONFIG`, else
//! `$XDG_CONFIG_HOME/hessra-console/config.toml`, else `~/.config/hessra-console/config.toml`,
//! macOS included) and where logs go. Mistakes in the file are reported, never ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How `y` copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipboardMode {
    /// OSC 52 escape sequence: works locally and over SSH in terminals that allow it.
    Osc52,
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
}

impl Default for Config {
    fn default() -> Config {
        Config {
            path: None,
            theme: None,
            theme_overrides: None,
            mouse: false,
            clipboard: ClipboardMode::Osc52,
            readonly: false,
            keys: BTreeMap::new(),
            quiet_after: 3_600,
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
    /// Reads the config file; a missing file gives the defaults, a bad one gives the defaults
    /// for what could not be read plus a message per problem.
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
                Config::default(),
                vec![format!("cannot read {}: {e}", path.display())],
            ),
        }
    }

    pub fn parse(text: &str, origin: &str) -> (Config, Vec<String>) {
        let mut config = Config::default();
        let mut problems = Vec::new();
        let doc: toml_edit::DocumentMut = match text.parse() {
            Ok(doc) => doc,
            Err(e) => {
                let message = e.to_string().replace('\n', " ");
                return (config, vec![format!("{origin}: {message}")]);
            }
        };
        for (key, item) in doc.iter() {
            let mut wrong = |expected: &str| {
                problems.push(format!("{origin}: {key} must be {expected}"));
            };
            match key {
                "theme" => match item.as_str() {
                    Some(name) => config.theme = Some(name.to_string()),
                    None => wrong("a theme name"),
                },
                "mouse" => match item.as_bool() {
                    Some(on) => config.mouse = on,
                    None => wrong("true or false"),
                },
                "readonly" => match item.as_bool() {
                    Some(on) => config.readonly = on,
                    None => wrong("true or false"),
                },
                "quiet_after" => match item.as_integer() {
                    Some(seconds) if seconds > 0 => config.quiet_after = seconds,
                    _ => wrong("a positive number of seconds"),
                },
                "clipboard" => match item.as_str() {
                    Some("osc52" | "auto") => config.clipboard = ClipboardMode::Osc52,
                    Some("off") => config.clipboard = ClipboardMode::Off,
                    _ => wrong("\"auto\", \"osc52\" or \"off\""),
                },
                "theme_overrides" => match item.as_table() {
                    Some(table) => {
                        let mut doc = toml_edit::DocumentMut::new();
                        for (slot, value) in table.iter() {
                            doc.insert(slot, value.clone());
                        }
                        config.theme_overrides = Some(doc.to_string());
                    }
                    None => wrong("a table of colour = \"value\""),
                },
                "keys" => match item.as_table() {
                    Some(table) => {
                        for (action, value) in table.iter() {
                            match keys_of(value) {
                                Some(keys) => {
                                    config.keys.insert(action.to_string(), keys);
                                }
                                None => problems.push(format!(
                                    "{origin}: [keys] {action} must be a key or a list of keys"
                                )),
                            }
                        }
                    }
                    None => wrong("a table of action = [\"key\", ...]"),
                },
                other => problems.push(format!(
                    "{origin}: unknown setting {other:?} (theme, theme_overrides, mouse, clipboard, readonly, quiet_after, keys)"
                )),
            }
        }
        (config, problems)
    }
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
    fn reports_mistakes_by_name() {
        let (config, problems) = Config::parse(
            "theme = 3\nmouse = \"yes\"\ncolour = 1\n[keys]\ncommit = 4\n",
            "c.toml",
        );
        assert_eq!(config.theme, None);
        assert!(!config.mouse);
        let all = problems.join("\n");
        for expected in [
            "theme must be",
            "mouse must be",
            "unknown setting \"colour\"",
            "commit must be",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
        let (_, problems) = Config::parse("theme = ", "c.toml");
        assert!(problems[0].starts_with("c.toml:"), "{problems:?}");
    }

    #[test]
    fn a_missing_file_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let (config, problems) = Config::load(Some(&dir.path().join("none.toml")));
        assert_eq!(config, Config::default());
        assert!(problems.is_empty());
    }
}
