//! The `hessra-console` binary: hands the process arguments to the command line.

fn main() -> std::process::ExitCode {
    hessra_console::cli::main()
}
