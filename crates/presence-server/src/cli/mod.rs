//! The `presence-server` command line: `serve` (the default) and the admin
//! commands. Its flags, outputs and exit codes are a contract for scripts:
//! `user create`, `user reset-key` and `embed-key create` print the key and
//! nothing else on standard output; listings print a header and a line per
//! row (or JSON with `--json`); every failure is one line on standard error
//! and a non-zero exit; a reader that closes the output early ends the
//! command quietly.
//!
//! Layout: [`flags`] builds the settings' flags from their declarations,
//! [`serve`] runs the server, [`manage`] the realm, user and embed key
//! commands, and [`transfer`] export, import and migrate.

pub mod flags;
pub mod manage;
pub mod serve;
pub mod transfer;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use flags::{ImpliedServeFlags, ServeFlags, StoreFlags};
use manage::{EmbedKeyCommand, RealmCommand, UserCommand};

/// What `--help` adds after the options: examples and exit codes.
const AFTER_HELP: &str = "\
Examples:
  presence-server                                  serve on 127.0.0.1:9991, data in ./presence-data
  presence-server serve --listen 0.0.0.0:9991      serve on every interface
  presence-server realm create acme --name \"Acme Inc\"
  presence-server user create --realm acme --email alice@acme.test --full-name Alice
  presence-server embed-key create --realm acme --name intranet --origin https://intranet.acme.test
  presence-server --database-url postgres://presence@db/presence migrate

Exit codes:
  0    done (an admin change that was already so says so, and is done too)
  1    failed: one line on standard error says why; nothing was half-written
  2    usage: an unknown command or flag, or a value that does not parse
  141  the reader of standard output went away (as `| head` does)";

/// A Zulip-compatible presence server, and its admin commands.
///
/// With no command it serves. The store is the SQLite database in
/// `--data-dir`, or PostgreSQL at `--database-url`; settings come from
/// flags, then `PRESENCE_*` variables, then the `--config` file.
#[derive(Debug, Parser)]
#[command(
    name = "presence-server",
    version,
    about = "A Zulip-compatible presence server, and its admin commands",
    long_about = None,
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(flatten)]
    store: StoreFlags,
    /// Serving flags given with no command (which is then `serve`).
    #[command(flatten)]
    implied: ImpliedServeFlags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default when no command is given); `serve --help`
    /// lists its settings.
    Serve(ServeFlags),
    /// Manage realms (organizations).
    #[command(subcommand)]
    Realm(RealmCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage embed keys: read-only keys for web pages.
    #[command(subcommand)]
    EmbedKey(EmbedKeyCommand),
    /// Print the OpenAPI document of the API (JSON) on standard output.
    Openapi,
    /// Bring the database's schema up to date and exit (every start does
    /// this too; safe while other nodes start or run).
    Migrate,
    /// Write everything in the store (ids kept, keys hashed) as JSON Lines.
    Export {
        /// The file to write [default: standard output].
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Add everything in a dump to the store, in one transaction. Meant for
    /// a new store; running servers pick up what it adds.
    Import {
        /// The dump to read, or `-` for standard input.
        file: PathBuf,
    },
}

/// The exit code of a command whose reader went away: what a shell
/// reports for a process ended by SIGPIPE.
const BROKEN_PIPE: u8 = 141;

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    refuse_misplaced_serve_flags(&cli);
    let result = run(cli);
    // The log's last lines go out before the error line, and before the
    // process ends (which would lose them).
    crate::log_writer::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::from(BROKEN_PIPE),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// Runs the command. The log starts once the settings are read, in the
/// format they choose; a failure to read them is not logged but printed.
fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve::serve_command(logging_from(flags::config(
            &cli.store,
            Some(&cli.implied.0),
        )?)),
        Some(Command::Serve(serve)) => {
            serve::serve_command(logging_from(flags::config(&cli.store, Some(&serve.0))?))
        }
        Some(Command::Openapi) => {
            let mut out = std::io::stdout().lock();
            out.write_all(crate::openapi::document_json().as_bytes())?;
            Ok(out.flush()?)
        }
        Some(command) => {
            let config = logging_from(flags::config(&cli.store, None)?);
            match command {
                Command::Realm(command) => manage::realm(&config, command),
                Command::User(command) => manage::user(&config, command),
                Command::EmbedKey(command) => manage::embed_key(&config, command),
                Command::Migrate => transfer::migrate(&config),
                Command::Export { output } => transfer::export(&config, output),
                Command::Import { file } => transfer::import(&config, &file),
                Command::Serve(_) | Command::Openapi => unreachable!("matched above"),
            }
        }
    }
}

/// Starts the log in the format `config` names, and gives `config` back.
fn logging_from(config: crate::config::Config) -> crate::config::Config {
    crate::logging::init(config.log_format);
    config
}

/// Ends with a usage error (exit 2) when serving flags were given before a
/// command: they belong after `serve`, and would do nothing for any other
/// command. (Their environment variables may be set for a server; those
/// are ignored by the others.)
fn refuse_misplaced_serve_flags(cli: &Cli) {
    let misplaced = cli.implied.0.flags();
    if cli.command.is_some() && !misplaced.is_empty() {
        use clap::CommandFactory;
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{} {} a setting of `serve`: give it after `serve` (`presence-server serve {} ...`)",
                    misplaced.join(", "),
                    if misplaced.len() == 1 { "is" } else { "are" },
                    misplaced[0]
                ),
            )
            .exit();
    }
}

/// Whether a failure is only that standard output's reader went away.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<crate::transfer::TransferError>()
                .is_some_and(|e| {
                    matches!(e, crate::transfer::TransferError::Io(io)
                        if io.kind() == std::io::ErrorKind::BrokenPipe)
                })
    })
}

/// An error and its causes in one line, each said once: a message that
/// already ends with its cause's text does not get it again.
pub fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied");
        let store = crate::store::StoreError::DataDir {
            path: "/x".to_owned(),
            source: io,
        };
        let error = anyhow::Error::new(store).context("cannot open the store /x/presence.sqlite3");
        assert_eq!(
            describe(&error),
            "cannot open the store /x/presence.sqlite3: cannot use data directory /x: Permission denied"
        );
    }

    #[test]
    fn a_gone_reader_is_told_apart() {
        let gone = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&gone.context("writing the list")));
        let other = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(!is_broken_pipe(&other));
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
