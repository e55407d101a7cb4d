//! `keys generate`: key pairs for roots, service nodes, signers and prefix attenuators.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::CommandResult;
use super::output::{Failure, Report};
use crate::token::keys::{self, KeyAlgorithm};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key pair: the private key (PKCS#8 PEM, mode 0600) and PATH.pub (SPKI PEM)
    Generate {
        /// Where to write the private key
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = Algorithm::Ed25519)]
        algorithm: Algorithm,
        /// Replace existing files
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Algorithm {
    Ed25519,
    Secp256r1,
}

pub fn run(command: KeysCommand) -> CommandResult {
    let KeysCommand::Generate {
        out,
        algorithm,
        force,
    } = command;
    let algorithm = match algorithm {
        Algorithm::Ed25519 => KeyAlgorithm::Ed25519,
        Algorithm::Secp256r1 => KeyAlgorithm::Secp256r1,
    };
    let public_path = public_path(&out);
    for path in [&out, &public_path] {
        if path.exists() && !force {
            return Err(Failure::usage(format!(
                "{} already exists; pass --force to replace it",
                path.display()
            )));
        }
    }
    let pair = keys::generate(algorithm);
    keys::write_private_key_file(&out, &pair)?;
    let public_pem = keys::public_key_pem(&pair.public())?;
    std::fs::write(&public_path, &public_pem)
        .map_err(|e| Failure::usage(format!("{}: {e}", public_path.display())))?;
    let key_string = keys::key_string(&pair.public());
    Ok(Report::new(
        format!(
            "Private key: {} (mode 0600)\nPublic key:  {}\n{key_string}",
            out.display(),
            public_path.display()
        ),
        json!({
            "success": true,
            "algorithm": algorithm.name(),
            "private_key_path": out,
            "public_key_path": public_path,
            "public_key": key_string,
            "public_key_pem": public_pem,
        }),
    ))
}

fn public_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}
