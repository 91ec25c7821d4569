//! `presence-bench`: the benchmark that `cargo xtask bench` runs.
//!
//! `presence-bench run` provisions realms in a temporary data directory (or,
//! with `--database-url`, in a scratch schema of a PostgreSQL database),
//! starts the release `presence-server` with rate limiting off (one process,
//! or `--nodes 2` on PostgreSQL), and for each scenario drives it and then a
//! bare hyper server answering the same number of bytes (`presence-bench
//! baseline`), printing one table row per run. `--stores` runs several
//! stores one after the other. The machines are shared and noisy: compare
//! the ratios, not the absolute figures. `--instructions` counts
//! instructions per request under callgrind instead, a figure that does not
//! move with the machine's load (see `instructions`).

mod baseline;
mod events;
mod instructions;
mod load;
mod pages;
mod prime;
mod process;
mod provision;
mod report;
mod scenarios;
mod stores;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};

use crate::stores::{MAX_NODES, Store};

#[derive(Parser)]
#[command(name = "presence-bench", about = "The presence server's benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every scenario against our server and the baseline.
    Run(Box<RunArgs>),
    /// Serve a fixed body of N bytes to every request (the baseline).
    Baseline {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Size of the body.
        #[arg(long)]
        body_bytes: usize,
    },
}

/// What `presence-bench run` takes.
#[derive(Args)]
struct RunArgs {
    /// Realm sizes for scenarios A, B, C and E, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    /// Realm size of scenario D (the full legacy answer).
    #[arg(long, default_value_t = 10_000)]
    full_answer_size: usize,
    /// Client records of scenario F (memory and start-up).
    #[arg(long, default_value_t = 1_000_000)]
    memory_records: usize,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Unmeasured warm-up seconds before each measurement.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Connections the load generator keeps open.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The server binary [default: target/release/presence-server].
    #[arg(long)]
    server: Option<PathBuf>,
    /// Run only these scenarios (letters, comma-separated, e.g. `A,C`).
    #[arg(long, value_delimiter = ',')]
    only: Vec<char>,
    /// Event queues, each with a waiting long poll, of scenario G.
    #[arg(long, default_value_t = 10_000)]
    queues: usize,
    /// Pages holding a presence stream open with one embed key, in scenario H.
    #[arg(long, default_value_t = 10_000)]
    page_streams: usize,
    /// Users of the realm those pages show, in scenario H.
    #[arg(long, default_value_t = 10_000)]
    page_realm_users: usize,
    /// Run on PostgreSQL at this URL instead of the embedded store; each
    /// run imports into a scratch schema of its own, dropped afterwards.
    #[arg(
        long,
        env = "PRESENCE_BENCH_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    database_url: Option<String>,
    /// Server processes on the PostgreSQL store, sharing its schema;
    /// connection i goes to node i % N [default: 1].
    #[arg(long, value_name = "N", conflicts_with = "stores")]
    nodes: Option<usize>,
    /// Stores to run A to E on, one after the other, comma-separated:
    /// `sqlite`, `postgres1`, `postgres2` (the PostgreSQL ones need
    /// `--database-url`) [default: `postgres<N>` with `--database-url`,
    /// else `sqlite`].
    #[arg(long, value_delimiter = ',', value_name = "STORES")]
    stores: Vec<Store>,
    /// How the servers of A to E commit: `full` or `relaxed` (their
    /// `--durability`).
    #[arg(long, default_value = "full", value_name = "MODE")]
    durability: String,
    /// Measure each of A to E this many times, ours and the baseline in
    /// turn, and show the round with the median ratio beside the range of
    /// all the rounds' ratios (on a busy machine one round can be far off).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99))]
    rounds: u32,
    /// Count instructions per request under callgrind instead of
    /// measuring throughput: A, A with the default log, B and E, each
    /// beside the baseline, on the embedded store at each `--sizes`; C too
    /// when `--only` names it (every user first reports from more clients
    /// than a user may have, so its warm-up grows with the realm).
    #[arg(long)]
    instructions: bool,
    /// Requests counted per scenario with `--instructions`.
    #[arg(long, default_value_t = 2_000)]
    counted_requests: u64,
    /// Requests sent before counting starts, with `--instructions`.
    #[arg(long, default_value_t = 300)]
    uncounted_requests: u64,
    /// Keep each count's callgrind profile in this directory (read
    /// them with `callgrind_annotate`), with `--instructions`.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
    /// With `--instructions`, simulate the caches too and count
    /// last-level cache misses per request (slower).
    #[arg(long, requires = "instructions")]
    cache_misses: bool,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Baseline { listen, body_bytes } => {
            // Two workers, as the server under test has on this machine.
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(baseline::serve(listen, body_bytes))
        }
        Command::Run(args) => {
            let RunArgs {
                sizes,
                full_answer_size,
                memory_records,
                seconds,
                warmup,
                connections,
                server,
                only,
                queues,
                page_streams,
                page_realm_users,
                database_url,
                nodes,
                stores,
                durability,
                rounds,
                instructions,
                counted_requests,
                uncounted_requests,
                profiles,
                cache_misses,
            } = *args;
            let stores = choose_stores(stores, nodes, database_url.as_deref())?;
            let this = std::env::current_exe()?;
            let server = server.unwrap_or_else(|| {
                this.parent()
                    .map(|dir| dir.join("presence-server"))
                    .unwrap_or_else(|| PathBuf::from("presence-server"))
            });
            let plan = scenarios::Plan {
                sizes,
                full_answer_size,
                memory_records,
                warmup: Duration::from_secs_f64(warmup),
                window: Duration::from_secs_f64(seconds),
                connections,
                server,
                this,
                only: only.into_iter().map(|c| c.to_ascii_uppercase()).collect(),
                queues,
                page_streams,
                page_realm_users,
                stores,
                database_url,
                durability,
                rounds: rounds as usize,
            };
            // The load generator keeps to one thread, leaving the other
            // core to the server under test (and the same to the baseline).
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    if instructions {
                        let counts = instructions::Counts {
                            warmup: uncounted_requests,
                            requests: counted_requests,
                            profiles,
                            cache_misses,
                        };
                        instructions::run(&plan, counts).await?;
                    } else {
                        scenarios::run(&plan).await?;
                    }
                    anyhow::Ok(())
                })
        }
    }
}

/// The stores a run measures: `--stores` as given, else one from
/// `--database-url` and `--nodes`; refuses PostgreSQL without a URL.
fn choose_stores(
    stores: Vec<Store>,
    nodes: Option<usize>,
    database_url: Option<&str>,
) -> anyhow::Result<Vec<Store>> {
    if let Some(n) = nodes.filter(|n| !(1..=MAX_NODES).contains(n)) {
        bail!("--nodes {n}: 1 to {MAX_NODES} nodes");
    }
    let stores = match (stores.is_empty(), database_url, nodes) {
        (false, _, _) => stores,
        (true, Some(_), nodes) => vec![Store::Postgres {
            nodes: nodes.unwrap_or(1),
        }],
        (true, None, None) => vec![Store::Sqlite],
        (true, None, Some(_)) => {
            bail!("--nodes needs --database-url (or PRESENCE_BENCH_DATABASE_URL)")
        }
    };
    if database_url.is_none() && stores.iter().any(|s| s.is_postgres()) {
        bail!("the PostgreSQL stores need --database-url (or PRESENCE_BENCH_DATABASE_URL)");
    }
    Ok(stores)
}
