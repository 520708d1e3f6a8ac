//! ssictl: the command-line tool of the ssi cluster.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod device;
mod nodes;
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
    /// Configure peer nodes.
    Node {
        #[command(subcommand)]
        action: NodeAction,
    },
    /// List the nodes this node knows: id, address, state, leader.
    Nodes,
}

#[derive(Subcommand)]
enum NodeAction {
    /// Add a peer: its node id and IPv4 address (port 7471 unless given).
    Add {
        /// The peer's node id (0..63).
        id: u32,
        /// ADDR or ADDR:PORT.
        addr: String,
    },
    /// Remove a peer.
    Remove {
        /// The peer's node id.
        id: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Status => status::run(&cli.device, cli.json),
        Command::Node {
            action: NodeAction::Add { id, addr },
        } => nodes::add(&cli.device, id, &addr),
        Command::Node {
            action: NodeAction::Remove { id },
        } => nodes::remove(&cli.device, id),
        Command::Nodes => nodes::list(&cli.device, cli.json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ssictl: {e}");
            ExitCode::FAILURE
        }
    }
}
