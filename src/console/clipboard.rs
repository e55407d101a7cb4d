//! Where `y` puts text. OSC 52 works in most terminals, locally and over SSH, but not inside
//! tmux (its default `set-clipboard external` drops the sequence from programs) and not on a
//! Linux virtual console; there the console loads tmux's paste buffer, or writes a private file
//! and says where. The choice is made once at start-up (`clipboard` in the config: "auto"
//! picks); copying through tmux or a file runs on a worker, since both touch the system.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::config::ClipboardMode;

/// How copies leave the console, resolved from the config and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clipboard {
    /// The terminal loop writes the OSC 52 escape sequence.
    Osc52,
    /// `tmux load-buffer -w -` against the server at `socket` (from `$TMUX`): tmux's buffer,
    /// and the outer terminal's clipboard when tmux forwards it.
    Tmux {
        socket: Option<PathBuf>,
    },
    /// A file only the user can read (copied tokens are secrets).
    File(PathBuf),
    Off,
}

impl Clipboard {
    /// The mode the config asks for, in this environment (`var` reads an environment
    /// variable). "auto" uses tmux's buffer inside tmux, a file on terminals without OSC 52
    /// (the Linux console, `dumb`, no `TERM`), and OSC 52 elsewhere.
    pub fn resolve(
        mode: ClipboardMode,
        var: impl Fn(&str) -> Option<String>,
        file: Option<PathBuf>,
    ) -> Clipboard {
        let file_or_off = || file.clone().map_or(Clipboard::Off, Clipboard::File);
        let tmux = || {
            var("TMUX")
                .filter(|v| !v.is_empty())
                .map(|v| Clipboard::Tmux {
                    // $TMUX is "socket,pid,session".
                    socket: v
                        .split(',')
                        .next()
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from),
                })
        };
        match mode {
            ClipboardMode::Off => Clipboard::Off,
            ClipboardMode::Osc52 => Clipboard::Osc52,
            ClipboardMode::Tmux => tmux().unwrap_or(Clipboard::Tmux { socket: None }),
            ClipboardMode::File => file_or_off(),
            ClipboardMode::Auto => {
                if let Some(tmux) = tmux() {
                    return tmux;
                }
                let term = var("TERM").unwrap_or_default();
                if matches!(term.as_str(), "" | "dumb" | "linux") {
                    file_or_off()
                } else {
                    Clipboard::Osc52
                }
            }
        }
    }

    /// Where copies go, for messages ("osc52", "the tmux buffer", the file's path).
    pub fn describe(&self) -> String {
        match self {
            Clipboard::Osc52 => "osc52".into(),
            Clipboard::Tmux { .. } => "the tmux buffer".into(),
            Clipboard::File(path) => path.display().to_string(),
            Clipboard::Off => "nowhere (copying is off)".into(),
        }
    }
}

/// The default copy file: `$XDG_STATE_HOME/hessra-console/clipboard`.
pub fn default_file() -> Option<PathBuf> {
    super::config::log_path().and_then(|log| log.parent().map(|dir| dir.join("clipboard")))
}

/// Copies `text` through tmux or into a file (the worker's half of `Clipboard`); when tmux
/// fails, the text goes to `fallback` instead and the message says why. Returns where it went.
pub fn copy(to: &Clipboard, text: &str, fallback: Option<&Path>) -> Result<String, String> {
    match to {
        Clipboard::Tmux { socket } => match to_tmux(socket.as_deref(), text) {
            Ok(()) => Ok("the tmux buffer".into()),
            Err(why) => match fallback {
                Some(file) => to_file(file, text)
                    .map(|()| format!("{} ({why})", file.display()))
                    .map_err(|e| format!("{why}; and {e}")),
                None => Err(why),
            },
        },
        Clipboard::File(path) => to_file(path, text).map(|()| path.display().to_string()),
        Clipboard::Osc52 | Clipboard::Off => Err("not a worker's copy".into()),
    }
}

fn to_tmux(socket: Option<&Path>, text: &str) -> Result<(), String> {
    let mut command = Command::new("tmux");
    if let Some(socket) = socket {
        command.arg("-S").arg(socket);
    }
    let mut child = command
        .args(["load-buffer", "-w", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run tmux: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write to tmux: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("tmux did not finish: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "tmux load-buffer failed ({}): {}",
            output.status,
            stderr.trim()
        ))
    }
}

fn to_file(path: &Path, text: &str) -> Result<(), String> {
    path.parent()
        .map_or(Ok(()), crate::fsutil::create_private_dir)
        .and_then(|()| crate::fsutil::write_private(path, text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn auto_uses_tmux_inside_tmux_a_file_without_osc52_and_osc52_elsewhere() {
        let file = Some(PathBuf::from("/state/clipboard"));
        let inside = env(&[("TMUX", "/tmp/tmux-1000/default,42,0"), ("TERM", "tmux")]);
        assert_eq!(
            Clipboard::resolve(ClipboardMode::Auto, inside, file.clone()),
            Clipboard::Tmux {
                socket: Some("/tmp/tmux-1000/default".into())
            }
        );
        for term in ["linux", "dumb", ""] {
            let vars = [("TERM", term)];
            assert_eq!(
                Clipboard::resolve(ClipboardMode::Auto, env(&vars), file.clone()),
                Clipboard::File("/state/clipboard".into()),
                "TERM={term:?}"
            );
        }
        let vars = [("TERM", "xterm-256color"), ("TMUX", "")];
        assert_eq!(
            Clipboard::resolve(ClipboardMode::Auto, env(&vars), file.clone()),
            Clipboard::Osc52
        );
        assert_eq!(
            Clipboard::resolve(ClipboardMode::Auto, env(&[]), None),
            Clipboard::Off,
            "no OSC 52 and nowhere to write: off, not a silent no-op"
        );
    }

    #[test]
    fn an_explicit_mode_is_kept() {
        let vars = [("TMUX", "/s,1,0"), ("TERM", "linux")];
        let file = Some(PathBuf::from("/f"));
        assert_eq!(
            Clipboard::resolve(ClipboardMode::Osc52, env(&vars), file.clone()),
            Clipboard::Osc52
        );
        assert_eq!(
            Clipboard::resolve(ClipboardMode::File, env(&vars), file.clone()),
            Clipboard::File("/f".into())
        );
        assert_eq!(
            Clipboard::resolve(ClipboardMode::Off, env(&vars), file),
            Clipboard::Off
        );
    }

    #[test]
    fn a_copy_file_is_private_and_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/clipboard");
        let to = Clipboard::File(path.clone());
        assert_eq!(
            copy(&to, "first", None).unwrap(),
            path.display().to_string()
        );
        copy(&to, "second", None).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_failing_tmux_falls_back_to_the_file_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clipboard");
        let to = Clipboard::Tmux {
            socket: Some(dir.path().join("no-server-here")),
        };
        let went = copy(&to, "secret", Some(&file)).unwrap();
        assert!(went.starts_with(&file.display().to_string()), "{went}");
        assert!(went.contains("tmux"), "says why tmux was not used: {went}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "secret");
        let err = copy(&to, "secret", None).unwrap_err();
        assert!(err.contains("tmux"), "{err}");
    }

    /// Against a real tmux server when tmux is installed; without it, the copy must fail
    /// saying tmux cannot run (and so fall back), never report success.
    #[test]
    fn tmux_gets_the_text_in_its_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sock");
        let tmux = |args: &[&str]| {
            Command::new("tmux")
                .arg("-S")
                .arg(&socket)
                .args(args)
                .output()
        };
        let to = Clipboard::Tmux {
            socket: Some(socket.clone()),
        };
        let Ok(started) = tmux(&["new-session", "-d", "-s", "clip"]) else {
            let err = copy(&to, "token-text", None).unwrap_err();
            assert!(err.starts_with("cannot run tmux"), "{err}");
            return;
        };
        assert!(started.status.success(), "{started:?}");
        let went = copy(&to, "token-text", None);
        let shown = tmux(&["show-buffer"]).unwrap();
        let _ = tmux(&["kill-server"]);
        assert_eq!(went.unwrap(), "the tmux buffer");
        assert_eq!(String::from_utf8_lossy(&shown.stdout), "token-text");
    }
}
