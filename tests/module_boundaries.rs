//! The console and the command line talk to a server through `crate::wire` and `crate::client`
//! only. Two files start the embedded server and may use `crate::server` to run it: the
//! console's `launch.rs` and the CLI's `serve_cmd.rs`. Anything else reaching into the server's
//! internals fails here, naming the file and line.

use std::path::{Path, PathBuf};

/// Files allowed to use `crate::server`, relative to `src/`.
const STARTS_THE_SERVER: [&str; 2] = ["console/launch.rs", "cli/serve_cmd.rs"];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The top-level items of each `use crate::{…}` group, with the line the group starts on.
fn grouped_crate_imports(text: &str) -> Vec<(usize, String)> {
    let mut items = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(at) = rest.find("use crate::{") {
        let start = offset + at;
        let body_start = start + "use crate::{".len();
        let mut depth = 1;
        let mut item = String::new();
        let line = text[..start].matches('\n').count() + 1;
        let mut end = body_start;
        for (i, c) in text[body_start..].char_indices() {
            end = body_start + i + c.len_utf8();
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 1 => {
                    items.push((line, std::mem::take(&mut item)));
                    continue;
                }
                _ => {}
            }
            if depth == 0 {
                break;
            }
            item.push(c);
        }
        items.push((line, item));
        offset = end;
        rest = &text[end..];
    }
    items
        .into_iter()
        .map(|(line, item)| (line, item.trim().to_string()))
        .collect()
}

/// Every place a file reaches `crate::server`: `file:line: text`.
fn server_uses(root: &Path, file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let name = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let mut found: Vec<String> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| line.contains("crate::server"))
        .map(|(i, line)| format!("src/{name}:{}: {}", i + 1, line.trim()))
        .collect();
    for (line, item) in grouped_crate_imports(&text) {
        let is_server = item == "server"
            || item.starts_with("server::")
            || item.starts_with("server ")
            || item.starts_with("server{");
        if is_server {
            found.push(format!("src/{name}:{line}: use crate::{{{item}, …}}"));
        }
    }
    found
}

#[test]
fn the_console_and_the_cli_use_the_server_only_to_start_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join("console"), &mut files);
    rust_files(&src.join("cli"), &mut files);
    assert!(files.len() > 10, "the console and CLI sources were found");
    let violations: Vec<String> = files
        .iter()
        .filter(|file| {
            let relative = file.strip_prefix(&src).unwrap_or(file);
            !STARTS_THE_SERVER
                .iter()
                .any(|allowed| relative == Path::new(allowed))
        })
        .flat_map(|file| server_uses(&src, file))
        .collect();
    assert!(
        violations.is_empty(),
        "the console and the CLI talk to a server through crate::wire and crate::client; \
         these reach into crate::server (only console/launch.rs and cli/serve_cmd.rs, which \
         start it, may):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scan_finds_direct_and_grouped_server_imports() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("screen.rs");
    std::fs::write(
        &file,
        "use crate::wire::AuditEvent;\n\
         // crate::server in a comment is fine\n\
         use crate::server::KeyInfo;\n\
         use crate::{\n    policy,\n    server::{self, Status},\n};\n\
         use crate::{console::screens::{server::ServerState}};\n",
    )
    .expect("the sample is written");
    let found = server_uses(dir.path(), &file);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("src/screen.rs:3: use crate::server::KeyInfo"));
    assert!(found[1].starts_with("src/screen.rs:4: use crate::{server::{self, Status}"));
}
