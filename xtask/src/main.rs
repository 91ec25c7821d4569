//! Project automation, run as `cargo xtask <task>`.
//!
//! Kept small and quick to build: it depends on nothing of the workspace and
//! drives the other crates through `cargo` itself.

use std::process::ExitCode;

fn main() -> ExitCode {
    let task = std::env::args().nth(1);
    match task.as_deref() {
        None | Some("help" | "--help" | "-h") => {
            println!("usage: cargo xtask <task>\n\ntasks:\n  help    this text");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown task {other:?}; run `cargo xtask help`");
            ExitCode::FAILURE
        }
    }
}
