//! The `presence-server` binary: see `cli.rs` for its commands.

fn main() -> std::process::ExitCode {
    presence_server::cli::main()
}
