//! `completions` and `man`, run as a user would: the real binary, its standard output. Each
//! shell's script and the manual page name the subcommands; an unknown shell is a usage error.

use std::process::{Command, Output};

const SUBCOMMANDS: [&str; 5] = ["policy", "serve", "token", "keys", "identity"];

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hessra-console"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("standard output is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn each_shell_gets_a_script_that_completes_the_subcommands() {
    // What each shell's script looks like, so a script for the wrong shell is caught too.
    let shells = [
        ("bash", "complete -F"),
        ("zsh", "#compdef hessra-console"),
        ("fish", "complete -c hessra-console"),
        ("powershell", "Register-ArgumentCompleter"),
    ];
    for (shell, marker) in shells {
        let output = run(&["completions", shell]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        let script = stdout(&output);
        assert!(
            script.len() > 1_000,
            "{shell}: a real script, not {script:?}"
        );
        assert!(
            script.contains(marker),
            "{shell}: no {marker:?} in the script"
        );
        for subcommand in SUBCOMMANDS {
            assert!(
                script.contains(subcommand),
                "{shell}: the script does not complete {subcommand}"
            );
        }
        assert!(
            script.contains("completions") && script.contains("man"),
            "{shell}: the new commands complete too"
        );
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error_that_lists_the_shells() {
    let output = run(&["completions", "tcsh"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "nothing on standard output");
    let message = stderr(&output);
    assert!(message.contains("invalid value 'tcsh'"), "{message}");
    for shell in ["bash", "zsh", "fish", "powershell"] {
        assert!(message.contains(shell), "{message}");
    }
}

#[test]
fn a_missing_shell_is_a_usage_error() {
    let output = run(&["completions"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("<SHELL>"), "{}", stderr(&output));
}

#[test]
fn the_man_page_is_roff_that_names_the_subcommands() {
    let output = run(&["man"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let page = stdout(&output);
    // roff may open with its own definitions (`.ie`/`.el`); the page begins at `.TH`.
    let first_macro = page
        .lines()
        .find(|line| !line.starts_with(".ie") && !line.starts_with(".el"))
        .unwrap_or_default();
    assert!(
        first_macro.starts_with(".TH hessra-console 1"),
        "the page starts with its title: {first_macro:?}"
    );
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH SUBCOMMANDS",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    for subcommand in SUBCOMMANDS {
        assert!(
            page.contains(&format!("hessra\\-console\\-{subcommand}(1)")),
            "the page names {subcommand}"
        );
    }
}

#[test]
fn man_out_writes_one_page_per_command() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = run(&["man", "--out", dir.path().to_str().expect("a UTF-8 path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("the directory lists")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for page in [
        "hessra-console.1",
        "hessra-console-policy.1",
        "hessra-console-policy-validate.1",
        "hessra-console-serve.1",
        "hessra-console-completions.1",
    ] {
        assert!(
            names.iter().any(|n| n == page),
            "{page} missing from {names:?}"
        );
    }
    let policy = std::fs::read_to_string(dir.path().join("hessra-console-policy.1")).unwrap();
    assert!(policy.contains(".TH hessra-console-policy 1"), "{policy}");
    assert!(
        stdout(&output).contains(&format!("wrote {} manual pages", names.len())),
        "{}",
        stdout(&output)
    );
}

#[test]
fn man_out_into_a_missing_directory_says_so() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("no-such-dir");
    let output = run(&["man", "--out", missing.to_str().expect("a UTF-8 path")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("is not a directory"),
        "{}",
        stderr(&output)
    );
}
