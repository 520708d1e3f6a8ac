//! ssictl: the command-line tool of the ssi cluster.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod device;
mod status;

/// Control and inspect an ssi single-system-image cluster node.
#[derive(Parser)]
#[command(name = "ssictl", version, about)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// The ssi control device.
    #[arg(long, global = true, default_value = device::DEFAULT_DEVICE)]
    device: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show this node's id, ABI version, migration engine and registered transports.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Status => status::run(&cli.device, cli.json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ssictl: {e}");
            ExitCode::FAILURE
        }
    }
}
