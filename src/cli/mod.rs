//! The command line: clap definitions and dispatch. Flags follow the Hessra CLI 0.3.7 where the
//! commands overlap. Logic lives in `token`, `token_store` and friends; this layer reads
//! arguments and files, calls them, and prints.

mod audit_cmd;
mod demo_cmd;
mod docs_cmd;
mod fleet_cmd;
mod identity;
pub(crate) mod input;
mod keys_cmd;
mod output;
mod policy_cmd;
mod remote_cmd;
mod serve_cmd;
mod token_cmd;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use output::Failure;
use output::Report;

/// Exit status for success and valid tokens.
pub const EXIT_OK: u8 = 0;
/// Exit status for invalid tokens and denials.
pub const EXIT_INVALID: u8 = 1;
/// Exit status for usage and I/O errors.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "hessra-console",
    version,
    about = "Console, token tools and authorization server for Hessra machine identity",
    long_about = "Console, token tools and authorization server for Hessra machine identity.\n\n\
        Exit status: 0 success or valid, 1 invalid or denied, 2 usage or I/O error."
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,

    #[command(flatten)]
    pub console: crate::console::ConsoleArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Identity tokens: delegate, verify, inspect, and the local token store
    #[command(subcommand)]
    Identity(identity::IdentityCommand),
    /// Authorization tokens
    #[command(subcommand)]
    Authorize(token_cmd::AuthorizeCommand),
    /// Any token: inspect; mint offline with a root key
    #[command(subcommand)]
    Token(token_cmd::TokenCommand),
    /// Key pairs for root keys, service nodes, signers and prefix attenuators
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Fetch a server's public key and CA certificate and keep them locally
    Init {
        /// Server host, host:port, or https URL
        server: String,
        #[command(flatten)]
        connection: remote_cmd::ConnectionArgs,
    },
    /// Run the authorization server until SIGINT/SIGTERM
    Serve(Box<serve_cmd::ServeArgs>),
    /// The server's audit trail: verify that no line was altered, removed, inserted or moved
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Demo workspaces
    #[command(subcommand)]
    Demo(demo_cmd::DemoCommand),
    /// The replicas that follow the policy repository (fleet.toml): are they in sync?
    #[command(subcommand)]
    Fleet(fleet_cmd::FleetCommand),
    /// clients.toml: validate, tree, can, diff, and lossless edits
    Policy {
        #[command(flatten)]
        file: policy_cmd::PolicyFile,
        #[command(subcommand)]
        command: policy_cmd::PolicyCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `hessra-console man | man -l -`
    Man {
        /// Write one page per command and subcommand into this directory instead
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
    },
}

/// Where a command reads its token from.
#[derive(Debug, Clone, Args)]
pub struct TokenSource {
    /// Name of a token in the token store (default: "default")
    #[arg(long, conflicts_with = "token_file")]
    pub token_name: Option<String>,
    /// Read the token from a file ('-' for standard input)
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
}

/// Where a command reads the root public key from.
#[derive(Debug, Clone, Args)]
pub struct PublicKeySource {
    /// Root public key: PEM text or a key string (ed25519/<hex>, secp256r1/<hex>)
    #[arg(
        long,
        env = "HESSRA_PUBLIC_KEY",
        conflicts_with = "public_key_file",
        hide_env_values = true
    )]
    pub public_key: Option<String>,
    /// File holding the root public key (PEM or key string)
    #[arg(long)]
    pub public_key_file: Option<std::path::PathBuf>,
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let Some(command) = cli.command else {
        return open_console(cli.console);
    };
    // Global flags (`--json`) go before or after the subcommand; the console's own flags make
    // no sense with a subcommand. clap's `args_conflicts_with_subcommands` would refuse the
    // global ones too, so this is checked here.
    if let Some(flag) = cli.console.given().first() {
        use clap::CommandFactory;
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{flag} opens the console; it cannot be combined with a subcommand (global flags such as --json can)"
                ),
            )
            .exit();
    }
    let result = match command {
        Command::Identity(command) => identity::run(command),
        Command::Authorize(command) => token_cmd::run_authorize(command),
        Command::Token(command) => token_cmd::run_token(command),
        Command::Keys(command) => keys_cmd::run(command),
        Command::Policy { file, command } => policy_cmd::run(command, file),
        Command::Demo(command) => demo_cmd::run(command),
        Command::Fleet(command) => fleet_cmd::run(command),
        Command::Serve(args) => serve_cmd::run(*args),
        Command::Audit(command) => audit_cmd::run(command),
        Command::Init { server, connection } => remote_cmd::init(&server, &connection),
        Command::Completions { shell } => docs_cmd::completions(shell),
        Command::Man { out } => docs_cmd::man(out.as_deref()),
    };
    output::finish(result, json)
}

/// No subcommand: the interactive console.
fn open_console(args: crate::console::ConsoleArgs) -> ExitCode {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!(
            "hessra-console: the console needs a terminal (stdin and stdout are not both one).\n\
             Run a subcommand instead; `hessra-console --help` lists them."
        );
        return ExitCode::from(EXIT_USAGE);
    }
    match crate::console::run(args) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("hessra-console: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

pub(crate) type CommandResult = Result<Report, Failure>;
