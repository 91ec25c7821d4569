//! `presence`: ask a Zulip-compatible server who is reachable, and report
//! your own presence, from a terminal or a script.
//!
//! Layout: [`cli`] declares the command line, [`connect`] makes a client
//! from flags, environment and zuliprc, [`commands`] holds one module per
//! command, [`output`] writes standard output, and [`failure`] turns errors
//! into a message and an exit code.

mod cli;
mod commands;
mod connect;
mod duration;
mod failure;
mod output;
mod style;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

fn main() -> ExitCode {
    // Usage errors exit with 2 and `--help` with 0, as clap does.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("presence: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if output::is_broken_pipe(&err) => ExitCode::from(output::BROKEN_PIPE),
        Err(err) => {
            let (message, code) = failure::describe(&err);
            eprintln!("presence: {message}");
            code
        }
    }
}
