//! The command line: every command, flag and its help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration;

/// What `--help` ends with: where settings come from, and the exit codes.
const AFTER_HELP: &str = "\
Connection settings come from the flags, then ZULIP_SITE, ZULIP_EMAIL and
ZULIP_API_KEY, then the [api] section (site, email, key) of the zuliprc that
--config or ZULIP_CONFIG names, else ~/.zuliprc: the file Zulip's
\"Download zuliprc\" button gives, which the official Python client reads too.

Exit codes:
  0  success
  1  the server refused the request or answered something unexpected
  2  usage or configuration error (bad flags, missing or broken zuliprc)
  3  the server could not be reached (refused, unresolvable, timed out)";

/// Ask a Zulip-compatible server who is reachable, and report your own presence.
#[derive(Debug, Parser)]
#[command(name = "presence", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Where to connect, and as whom.
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where to connect, and as whom.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectionArgs {
    /// The server, e.g. chat.example.com or http://localhost:9991 [or ZULIP_SITE]
    #[arg(long, global = true, value_name = "URL")]
    pub site: Option<String>,

    /// Your account's email [or ZULIP_EMAIL]
    #[arg(long, global = true, value_name = "EMAIL")]
    pub email: Option<String>,

    /// Your account's API key [or ZULIP_API_KEY]
    #[arg(long = "api-key", global = true, value_name = "KEY")]
    pub api_key: Option<String>,

    /// The zuliprc to read [default: $ZULIP_CONFIG, else ~/.zuliprc]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The client name to report presence under [default: PresenceClient]
    #[arg(long, global = true, value_name = "NAME")]
    pub client: Option<String>,

    /// How long one request may take, e.g. 15s or 500ms
    #[arg(long, global = true, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// How often a failed read is retried (with exponential backoff)
    #[arg(long, global = true, value_name = "N", default_value_t = 3)]
    pub retries: u32,
}

/// How to print.
#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Print the server's answer as it came (JSON), one per line
    #[arg(long, global = true)]
    pub json: bool,

    /// When to use colours: auto means on a terminal, unless NO_COLOR is set
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// When to use colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show whether one user is reachable: active, idle or offline
    #[command(after_help = "Examples:\n  presence get alice@example.com\n  presence get 17 -v")]
    Get(GetArgs),

    /// Show everyone in the organization as a table
    #[command(after_help = "Examples:\n  presence realm\n  presence realm --sort state")]
    Realm(RealmArgs),

    /// Report your own presence, once or as a heartbeat
    #[command(
        after_help = "Examples:\n  presence ping\n  presence ping --status idle\n  presence ping --every 60s            # until Ctrl-C or SIGTERM\n  presence ping --every 60s --count 10"
    )]
    Ping(PingArgs),

    /// Change your presence settings
    #[command(
        after_help = "Examples:\n  presence set --invisible on    # others see you as offline\n  presence set --invisible off"
    )]
    Set(SetArgs),

    /// Set or clear your custom status ("In a meeting", an emoji)
    #[command(
        after_help = "Examples:\n  presence status set \"In a meeting\" --emoji calendar --for 1h\n  presence status clear",
        subcommand
    )]
    Status(StatusCommand),
}

/// `presence status`.
#[derive(Debug, Subcommand)]
pub enum StatusCommand {
    /// Set your status text, and optionally an emoji and how long it lasts
    Set(StatusSetArgs),
    /// Clear your status text and emoji
    Clear,
}

/// `presence status set`.
#[derive(Debug, Args)]
pub struct StatusSetArgs {
    /// The text, at most 60 characters
    #[arg(value_name = "TEXT")]
    pub text: String,
    /// An emoji by name, e.g. calendar, bus, palm_tree
    #[arg(long, value_name = "NAME")]
    pub emoji: Option<String>,
    /// Clear the status by itself after this long, e.g. 1h or 30m (a server extension)
    #[arg(long = "for", value_name = "DURATION", value_parser = crate::duration::parse_duration)]
    pub lasts: Option<std::time::Duration>,
}

/// `presence get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The user: an email or a user id
    #[arg(value_name = "USER")]
    pub user: String,

    /// Also show each of the user's clients
    #[arg(short, long)]
    pub verbose: bool,

    /// How old a report may be before the user counts as offline
    #[arg(long, value_name = "DURATION", default_value = "200s", value_parser = parse_duration)]
    pub offline_threshold: Duration,
}

/// `presence realm`.
#[derive(Debug, Args)]
pub struct RealmArgs {
    /// The order of the rows
    #[arg(long, value_enum, value_name = "KEY", default_value_t = SortKey::Name)]
    pub sort: SortKey,

    /// How old a report may be before the user counts as offline
    #[arg(long, value_name = "DURATION", default_value = "200s", value_parser = parse_duration)]
    pub offline_threshold: Duration,
}

/// The orders of `presence realm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// By full name.
    Name,
    /// Active first, then idle, then offline; by name within each.
    State,
    /// Most recently seen first; never seen last.
    LastSeen,
}

/// `presence ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    /// The status to report
    #[arg(long, value_enum, default_value_t = StatusArg::Active)]
    pub status: StatusArg,

    /// Keep reporting at this interval (e.g. 60s, 5m) until stopped
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<Duration>,

    /// With --every: stop after this many reports
    #[arg(long, value_name = "N", requires = "every", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// The statuses a client can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// In use now.
    Active,
    /// Connected, but not in use.
    Idle,
}

/// `presence set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// on: others see you as offline (presence_enabled=false); off: they see your presence again
    #[arg(long, value_enum, value_name = "on|off")]
    pub invisible: Toggle,
}

/// A switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    /// Turn it on.
    On,
    /// Turn it off.
    Off,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
