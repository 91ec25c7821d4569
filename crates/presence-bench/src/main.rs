//! `presence-bench`: the benchmark that `cargo xtask bench` runs.
//!
//! `presence-bench run` provisions realms in a temporary data directory,
//! starts the release `presence-server` with rate limiting off, and for each
//! scenario drives it and then a bare hyper server answering the same number
//! of bytes (`presence-bench baseline`), printing one table row per run.
//! The machines are shared and noisy: compare the ratios, not the absolute
//! figures.

mod baseline;
mod events;
mod load;
mod process;
mod provision;
mod report;
mod scenarios;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "presence-bench", about = "The presence server's benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every scenario against our server and the baseline.
    Run {
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
    },
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

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Baseline { listen, body_bytes } => {
            // Two workers, as the server under test has on this machine.
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(baseline::serve(listen, body_bytes))
        }
        Command::Run {
            sizes,
            full_answer_size,
            memory_records,
            seconds,
            warmup,
            connections,
            server,
            only,
            queues,
        } => {
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
            };
            // The load generator keeps to one thread, leaving the other
            // core to the server under test (and the same to the baseline).
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    scenarios::run(&plan).await?;
                    anyhow::Ok(())
                })
        }
    }
}
