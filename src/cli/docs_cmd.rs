//! `completions` and `man`: what shells and man(1) learn about the command line, generated from
//! the same clap definitions that parse it (clap_complete, clap_mangen), so they cannot drift
//! from the commands. Writes the generated text and nothing else.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;
use serde_json::json;

use super::output::{Failure, Report};
use super::{Cli, CommandResult};

/// The name the scripts complete and the pages are titled with.
const BIN: &str = "hessra-console";

/// A completion script for `shell`, printed as is.
pub fn completions(shell: Shell) -> CommandResult {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
    let script = String::from_utf8(script)
        .map_err(|e| Failure::usage(format!("the {shell} completion script is not UTF-8: {e}")))?;
    Ok(Report::new(
        script.clone(),
        json!({ "shell": shell.to_string(), "script": script }),
    ))
}

/// The manual page (roff) on standard output, or with `out`, one page per command and
/// subcommand written into that directory (`hessra-console.1`, `hessra-console-policy.1`, …).
pub fn man(out: Option<&Path>) -> CommandResult {
    match out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| Failure::usage(format!("cannot render the manual page: {e}")))?;
            let page = String::from_utf8(page)
                .map_err(|e| Failure::usage(format!("the manual page is not UTF-8: {e}")))?;
            Ok(Report::new(page.clone(), json!({ "page": page })))
        }
        Some(dir) => write_pages(dir),
    }
}

fn write_pages(dir: &Path) -> CommandResult {
    if !dir.is_dir() {
        return Err(Failure::usage(format!(
            "{} is not a directory: create it first (mkdir -p {})",
            dir.display(),
            dir.display()
        )));
    }
    clap_mangen::generate_to(Cli::command(), dir)
        .map_err(|e| Failure::usage(format!("cannot write pages into {}: {e}", dir.display())))?;
    // The pages `generate_to` writes: one per command that is not hidden, named after it.
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    page_names(&command, &mut pages);
    pages.sort();
    Ok(Report::new(
        format!(
            "wrote {} manual pages into {}; read one with `man -l {}/{BIN}.1`",
            pages.len(),
            dir.display(),
            dir.display()
        ),
        json!({ "directory": dir.display().to_string(), "pages": pages }),
    ))
}

fn page_names(command: &clap::Command, pages: &mut Vec<String>) {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        page_names(sub, pages);
    }
    let name = command.get_display_name().unwrap_or(command.get_name());
    pages.push(format!("{name}.1"));
}
