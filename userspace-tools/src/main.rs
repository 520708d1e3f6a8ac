//! ssictl: the command-line tool of the ssi cluster.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod device;
mod kv;
mod migrate;
mod nodes;
mod page;
mod ping;
mod region;
mod service;
mod stats;
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
    /// List the nodes this node knows: id, address, state, the leader each reports,
    /// last round trip and message counters (`*` marks the leader this node sees).
    Nodes,
    /// Measure round trips to a node, like ping(8). Exits 0 only if every ping was
    /// answered.
    Ping {
        /// The node to ping.
        node: u32,
        /// Number of pings.
        #[arg(short = 'c', long, default_value_t = 5)]
        count: u32,
        /// Payload bytes carried both ways (at most 1024).
        #[arg(
            short = 's',
            long = "size",
            value_name = "PAYLOAD_BYTES",
            default_value_t = 56
        )]
        size: u32,
        /// Pause between pings, in milliseconds.
        #[arg(
            short = 'i',
            long = "interval",
            value_name = "INTERVAL_MS",
            default_value_t = 0
        )]
        interval_ms: u64,
        /// Give up on one ping after this many milliseconds (1..=60000).
        #[arg(long = "timeout-ms", value_name = "MS", default_value_t = 1000)]
        timeout_ms: u32,
    },
    /// The cluster's replicated key-value bookkeeping store.
    Kv {
        #[command(subcommand)]
        action: KvAction,
    },
    /// Expose pages for one-sided reads by other nodes, and read theirs.
    Page {
        #[command(subcommand)]
        action: PageAction,
    },
    /// Services other modules registered (e.g. 1: the migration engine).
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Move a running process to another node: it keeps running there, its memory
    /// follows page by page on demand, and it keeps its PID, parent, terminal and exit
    /// status here (ptrace rights over the process are needed). A thread id of a
    /// multi-threaded process moves that thread alone: its siblings keep running where
    /// they are and all of them share one address space; the PID of a multi-threaded
    /// process moves every thread of it, one at a time. A thread that moved away is
    /// named by its id here wherever it runs (NODE may be this node: it comes back).
    Migrate {
        /// The process, or one thread of it (a PID or thread id of this node).
        pid: u32,
        /// The destination node (it must run `ssictl daemon`).
        node: u32,
        /// Move only this thread, even if it is its process's main thread.
        #[arg(long)]
        thread: bool,
    },
    /// List the processes ssi knows cluster-wide: migrated ones where they run, their
    /// home stand-ins and relays, with their cluster-wide id HOME_NODE:HOME_PID.
    Ps,
    /// Run this node's migration daemon: it turns a forked child into each process that
    /// migrates here and reports its exit. Needs root.
    Daemon {
        /// Exit after the first migrated process has ended.
        #[arg(long)]
        once: bool,
    },
    /// Regions: named memory every node can map (with libssi, e.g. ssi-memtest).
    Region {
        #[command(subcommand)]
        action: RegionAction,
    },
}

#[derive(Subcommand)]
enum RegionAction {
    /// Create a region homed on this node; print its name, size, mode, home and
    /// generation. It stays until removed.
    Create {
        /// 1 to 40 characters of A-Z a-z 0-9 . _ -, not starting with a dot.
        name: String,
        /// Bytes, a multiple of 4096, at most 4G; K, M and G suffixes (e.g. 64M).
        #[arg(value_parser = region::size_arg)]
        size: u64,
        /// Permission bits, in octal (checked like a file's when another user opens it).
        #[arg(long, default_value = "0600", value_parser = region::mode_arg)]
        mode: u32,
    },
    /// List the cluster's regions with this node's counters: pages resident and owned
    /// here, read and write faults, pages fetched, invalidations, lost pages (home only),
    /// SIGBUS faults and mappings.
    List,
    /// Remove a region from the whole cluster (its owner or root); its mappings get
    /// SIGBUS from then on.
    #[command(alias = "remove")]
    Rm {
        /// The region's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum ServiceAction {
    /// Send DATA to service SERVICE on node NODE and print the answer.
    Call {
        /// The node.
        node: u32,
        /// The service id (1: migrate, which answers "probe").
        service: u16,
        /// The request (at most 256 bytes).
        #[arg(default_value = "")]
        data: String,
        /// Give up after this many milliseconds (1..=60000).
        #[arg(long = "timeout-ms", value_name = "MS", default_value_t = 1000)]
        timeout_ms: u32,
    },
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

#[derive(Subcommand)]
enum KvAction {
    /// Write a key through the leader and print the version of the write.
    Put {
        /// The key (1..=48 bytes).
        key: String,
        /// The value (at most 192 bytes); "" deletes the key.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Print a key's value from this node's replica (exit 1 if it is not set).
    Get {
        /// The key (1..=48 bytes).
        key: String,
    },
}

/// Where the exposed page comes from.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct PageSource {
    /// Expose the test pattern of SEED: byte i (0..4096) is
    /// (SEED*31 + i*7 + i/256) & 0xff, in wrapping 32-bit arithmetic.
    #[arg(long, value_name = "SEED")]
    pattern: Option<u32>,
    /// Expose the contents of PATH (exactly 4096 bytes; for a device or pipe, its first
    /// 4096 bytes).
    #[arg(long, value_name = "PATH")]
    file: Option<String>,
}

#[derive(Subcommand)]
enum PageAction {
    /// Expose a 4096-byte page and print its handle (JSON: handle and SHA-256).
    Expose {
        #[command(flatten)]
        source: PageSource,
    },
    /// Withdraw an exposed page.
    Unexpose {
        /// The handle `page expose` printed.
        handle: u64,
    },
    /// Read a page another node exposed with one-sided reads; print its SHA-256 and the
    /// read latencies.
    Read {
        /// The node that exposed the page.
        node: u32,
        /// The handle it printed.
        handle: u64,
        /// Read the page this many times (1..=100000) and report min/median/max.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Write the page read to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<String>,
        /// Compare with the pattern of SEED (see `page expose --pattern`); exit 1 and
        /// print the first differing offset if the page differs.
        #[arg(long, value_name = "SEED")]
        expect_pattern: Option<u32>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dev = &cli.device;
    let json = cli.json;
    let ok = |r: Result<(), String>| r.map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Status => ok(status::run(dev, json)),
        Command::Node {
            action: NodeAction::Add { id, addr },
        } => ok(nodes::add(dev, id, &addr)),
        Command::Node {
            action: NodeAction::Remove { id },
        } => ok(nodes::remove(dev, id)),
        Command::Nodes => ok(nodes::list(dev, json)),
        Command::Ping {
            node,
            count,
            size,
            interval_ms,
            timeout_ms,
        } => ping::run(
            dev,
            &ping::PingArgs {
                node,
                count,
                size,
                interval_ms,
                timeout_ms,
            },
            json,
        ),
        Command::Service {
            action:
                ServiceAction::Call {
                    node,
                    service,
                    data,
                    timeout_ms,
                },
        } => service::call(dev, node, service, &data, timeout_ms, json),
        Command::Kv {
            action: KvAction::Put { key, value },
        } => kv::put(dev, &key, &value, json),
        Command::Kv {
            action: KvAction::Get { key },
        } => kv::get(dev, &key, json),
        Command::Page {
            action: PageAction::Expose { source },
        } => {
            let src = match (source.pattern, source.file) {
                (Some(seed), _) => page::Source::Pattern(seed),
                (None, Some(path)) => page::Source::File(path),
                (None, None) => unreachable!("clap requires --pattern or --file"),
            };
            page::expose(dev, &src, json)
        }
        Command::Page {
            action: PageAction::Unexpose { handle },
        } => page::unexpose(dev, handle),
        Command::Page {
            action:
                PageAction::Read {
                    node,
                    handle,
                    repeat,
                    out,
                    expect_pattern,
                },
        } => page::read(
            dev,
            &page::ReadArgs {
                node,
                handle,
                repeat,
                out,
                expect_pattern,
            },
            json,
        ),
        Command::Migrate { pid, node, thread } => {
            ok(migrate::migrate(dev, pid, node, thread, json))
        }
        Command::Ps => ok(migrate::ps(dev, json)),
        Command::Daemon { once } => ok(migrate::daemon(dev, once)),
        Command::Region {
            action: RegionAction::Create { name, size, mode },
        } => ok(region::create(dev, &name, size, mode, json)),
        Command::Region {
            action: RegionAction::List,
        } => ok(region::list(dev, json)),
        Command::Region {
            action: RegionAction::Rm { name },
        } => ok(region::remove(dev, &name)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ssictl: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn migration_commands_parse() {
        match parse(&["migrate", "1234", "2"]).unwrap().command {
            Command::Migrate { pid, node, thread } => {
                assert_eq!((pid, node, thread), (1234, 2, false))
            }
            _ => panic!(),
        }
        assert!(parse(&["migrate", "1234"]).is_err());
        assert!(parse(&["migrate", "-1", "2"]).is_err());
        assert!(matches!(
            parse(&["daemon", "--once"]).unwrap().command,
            Command::Daemon { once: true }
        ));
        assert!(matches!(
            parse(&["--json", "ps"]).unwrap().command,
            Command::Ps
        ));
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ssictl").chain(args.iter().copied()))
    }

    #[test]
    fn ping_defaults_and_flags() {
        match parse(&["ping", "3"]).unwrap().command {
            Command::Ping {
                node,
                count,
                size,
                interval_ms,
                timeout_ms,
            } => assert_eq!(
                (node, count, size, interval_ms, timeout_ms),
                (3, 5, 56, 0, 1000)
            ),
            _ => panic!(),
        }
        let cli = parse(&[
            "--json",
            "ping",
            "3",
            "-c",
            "2",
            "-s",
            "1024",
            "-i",
            "10",
            "--timeout-ms",
            "50",
        ])
        .unwrap();
        assert!(cli.json);
        match cli.command {
            Command::Ping {
                count,
                size,
                interval_ms,
                timeout_ms,
                ..
            } => assert_eq!((count, size, interval_ms, timeout_ms), (2, 1024, 10, 50)),
            _ => panic!(),
        }
        assert!(parse(&["ping"]).is_err());
        assert!(parse(&["ping", "-1"]).is_err());
    }

    #[test]
    fn kv_accepts_empty_and_dash_values() {
        for v in ["", "-x", "a b"] {
            match parse(&["kv", "put", "k", v]).unwrap().command {
                Command::Kv {
                    action: KvAction::Put { key, value },
                } => assert_eq!((key.as_str(), value.as_str()), ("k", v)),
                _ => panic!(),
            }
        }
        assert!(parse(&["kv", "put", "k"]).is_err());
        assert!(parse(&["kv", "get", "k"]).is_ok());
    }

    #[test]
    fn region_sizes_modes_and_names() {
        match parse(&["region", "create", "shm", "64M"]).unwrap().command {
            Command::Region {
                action: RegionAction::Create { name, size, mode },
            } => assert_eq!((name.as_str(), size, mode), ("shm", 64 << 20, 0o600)),
            _ => panic!(),
        }
        match parse(&["region", "create", "shm", "8192", "--mode", "0644"])
            .unwrap()
            .command
        {
            Command::Region {
                action: RegionAction::Create { size, mode, .. },
            } => assert_eq!((size, mode), (8192, 0o644)),
            _ => panic!(),
        }
        assert!(parse(&["region", "create", "shm", "64Q"]).is_err());
        assert!(parse(&["region", "create", "shm", "4K", "--mode", "0999"]).is_err());
        assert!(parse(&["region", "create", "shm"]).is_err());
        assert!(parse(&["--json", "region", "list"]).unwrap().json);
        for verb in ["rm", "remove"] {
            match parse(&["region", verb, "shm"]).unwrap().command {
                Command::Region {
                    action: RegionAction::Rm { name },
                } => assert_eq!(name, "shm"),
                _ => panic!(),
            }
        }
    }

    #[test]
    fn page_expose_needs_exactly_one_source() {
        assert!(parse(&["page", "expose"]).is_err());
        assert!(parse(&["page", "expose", "--pattern", "1", "--file", "f"]).is_err());
        assert!(parse(&["page", "expose", "--pattern", "1"]).is_ok());
        assert!(parse(&["page", "expose", "--file", "f"]).is_ok());
        assert!(parse(&["page", "expose", "--pattern", "-1"]).is_err());
        match parse(&[
            "page",
            "read",
            "1",
            "77",
            "--repeat",
            "10",
            "--expect-pattern",
            "4",
        ])
        .unwrap()
        .command
        {
            Command::Page {
                action:
                    PageAction::Read {
                        node,
                        handle,
                        repeat,
                        out,
                        expect_pattern,
                    },
            } => assert_eq!(
                (node, handle, repeat, out, expect_pattern),
                (1, 77, 10, None, Some(4))
            ),
            _ => panic!(),
        }
    }
}
