//! `demo init DIR`: a self-contained workspace (PKI, git remote and clone, root key).

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::CommandResult;
use super::output::{Failure, Report};
use crate::workspace;

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Create a demo workspace in DIR: CA and certificates, origin.git with the demo policy,
    /// a working clone, and the server's root key
    Init {
        dir: PathBuf,
        /// Recreate an existing workspace (new keys, new policy history)
        #[arg(long)]
        force: bool,
        /// A demo fleet: fleet.toml lists N loopback replicas (a, b, c… on ports 4443, 4444…)
        /// and the console started on the workspace runs them all
        #[arg(long, default_value_t = 1, value_name = "N")]
        replicas: usize,
        /// Keep the root key set as a fleet does: keys.toml in the policy repository (public
        /// part) and the private key in server/keys/, rotated by commit and push
        #[arg(long)]
        keys_in_repository: bool,
    },
}

pub fn run(command: DemoCommand) -> CommandResult {
    let DemoCommand::Init {
        dir,
        force,
        replicas,
        keys_in_repository,
    } = command;
    let keys = if keys_in_repository {
        workspace::RootKeysIn::Repository
    } else {
        workspace::RootKeysIn::Server
    };
    let ws = workspace::init_with(&dir, force, keys, replicas)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let root_key = match keys {
        workspace::RootKeysIn::Server => {
            format!("{} (mode 0600)", ws.root_key.display())
        }
        workspace::RootKeysIn::Repository => format!(
            "{} in the repository, private key in {} (mode 0600)",
            crate::keyset::MANIFEST,
            ws.key_dir().display()
        ),
    };
    let (alice_cert, alice_key) = ws.client_cert("uri:urn:company:alice");
    let text = format!(
        "Created workspace {root}\n  policy     {policy} (clone of {origin})\n  CA         {ca}\n  server     {server}\n  clients    {clients}/<identity>.pem|.key\n  root key   {root_key}\n\nServe it:   hessra-console serve --workspace {root}\nAs alice:   --cert {alice_cert} --key {alice_key} --ca {ca}",
        root = ws.root.display(),
        policy = ws.policy_file().display(),
        origin = ws.origin.display(),
        ca = ws.ca_cert.display(),
        server = ws.server_cert.display(),
        clients = ws.clients.display(),
        alice_cert = alice_cert.display(),
        alice_key = alice_key.display(),
    );
    let mut text = text;
    if replicas > 1 {
        text.push_str(&format!(
            "\nA fleet of {replicas} replicas (fleet.toml): the console on this workspace runs them all;\n  hessra-console fleet status --workspace {root}",
            root = ws.root.display()
        ));
    }
    let json = json!({
        "replicas": replicas,
        "success": true,
        "workspace": ws.root,
        "listen": ws.listen.to_string(),
        "policy": ws.policy_file(),
        "origin": ws.origin,
        "ca_cert": ws.ca_cert,
        "root_key": (keys == workspace::RootKeysIn::Server).then_some(&ws.root_key),
        "key_dir": (keys == workspace::RootKeysIn::Repository).then(|| ws.key_dir()),
    });
    Ok(Report::new(text, json))
}
