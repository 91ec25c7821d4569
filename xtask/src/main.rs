//! Project automation, run as `cargo xtask <task>`.
//!
//! Kept small and quick to build: it depends on nothing of the workspace and
//! drives the other crates through `cargo` itself.
//!
//! - `cargo xtask openapi` writes `openapi/presence.json` from the code;
//! - `cargo xtask openapi --check` fails if the committed file is stale;
//! - `cargo xtask bench [ARGS...]` runs the benchmark (see BENCHMARKS.md);
//! - `cargo xtask soak [--minutes N]` runs a release server under mixed load
//!   and attacks on loopback, and reports its memory and what it kept.

mod bench;
mod openapi;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  openapi           write openapi/presence.json from the code
  openapi --check   fail if openapi/presence.json is not what the code generates
  bench [ARGS...]   build in release mode and run the benchmark; `bench --help` lists ARGS
  soak [--minutes N]
                    run a release server on 127.0.0.1 under mixed load, slow
                    clients and bursts of bad requests for N minutes (10);
                    report its memory, and check it kept every acknowledged change
  help              this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        [] | ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        ["openapi"] => openapi::write(),
        ["openapi", "--check"] => openapi::check(),
        ["bench", rest @ ..] => bench::run(rest),
        ["soak", rest @ ..] => soak::run(rest),
        _ => Err(format!("unknown task {:?}\n\n{USAGE}", args.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace's root directory.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
