//! Every setting of the server, declared once.
//!
//! Each entry below gives a setting's field of [`Config`] (also its key in
//! the TOML file), its type and default, its environment variable, the
//! value name and one-line meaning that `--help` and README's table show,
//! and the default as README writes it. From that one declaration come the
//! [`Config`] struct and its `Default`, the flag (`--` and the key with
//! dashes) and the table [`SETTINGS`], which the command line builds its
//! flags from and README's Configuration table is checked against.
//!
//! Store settings (`data_dir`, `database_url`) are taken by every command
//! that opens the store; serve settings only by `serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{LogFormat, RateLimit};
use crate::store::Durability;

/// Which commands take a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every command that opens the store.
    Store,
    /// `serve` only.
    Serve,
}

/// One setting, as the command line and README show it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The field of [`Config`] and the key in the file.
    pub key: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The placeholder of its value in `--help`, e.g. `N` or `SECS`.
    pub value_name: &'static str,
    /// What it means, in a line.
    pub help: &'static str,
    /// The default, as README writes it.
    pub shown_default: &'static str,
    /// Which commands take it.
    pub scope: Scope,
    /// Parses a flag's or variable's value into a configuration.
    pub apply: fn(&str, &mut Config) -> Result<(), String>,
}

impl Setting {
    /// The flag's name: the key with dashes.
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }
}

/// Parses a value for a field of type `T` (the flag's form of it).
fn parse<T: std::str::FromStr>(value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse::<T>().map_err(|e| e.to_string())
}

/// Declares the settings: the [`Config`] struct, its defaults, and
/// [`SETTINGS`]. A field whose type is an `Option` gives the type of its
/// flag's value after `flag`.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $scope:ident $key:ident : $ty:ty = $default:expr,
            $(flag $flag:ty,)?
            env $env:literal, value $value:literal, help $help:literal, shown $shown:literal;
    )*) => {
        /// Every setting of the server (see `config::settings` for each
        /// one's flag, environment variable and default).
        #[derive(Debug, Clone, PartialEq, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $key: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $( $key: $default, )* }
            }
        }

        /// Every setting, in the order README lists them.
        pub const SETTINGS: &[Setting] = &[$(
            Setting {
                key: stringify!($key),
                env: $env,
                value_name: $value,
                help: $help,
                shown_default: $shown,
                scope: Scope::$scope,
                apply: |value, config| {
                    config.$key = settings!(@parse value $ty $(, $flag)?);
                    Ok(())
                },
            },
        )*];
    };
    (@parse $value:ident $ty:ty) => { parse::<$ty>($value)? };
    (@parse $value:ident $ty:ty, $flag:ty) => { Some(parse::<$flag>($value)?) };
}

settings! {
    /// Where the embedded store keeps its database.
    Store data_dir: PathBuf = PathBuf::from("./presence-data"),
        env "PRESENCE_DATA_DIR", value "DIR",
        help "where the SQLite database lives (created on first use)", shown "`./presence-data`";
    /// A PostgreSQL URL: use the shared store there instead of the embedded
    /// one (several nodes may share it).
    Store database_url: Option<String> = None, flag String,
        env "PRESENCE_DATABASE_URL", value "URL",
        help "use PostgreSQL at this URL instead of SQLite (several nodes may share it)", shown "none";
    /// How the server's commits reach the disk: `full` (before the
    /// answer) or `relaxed` (to the operating system or PostgreSQL before
    /// the answer, to the disk a moment later; README says what a crash
    /// may lose).
    Serve durability: Durability = Durability::Full,
        env "PRESENCE_DURABILITY", value "MODE",
        help "`full`: each change on disk before its answer; `relaxed`: on its way to disk (a killed server loses nothing, a crashed machine the last moments)", shown "`full`";
    /// The address to listen on.
    Serve listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 9991)),
        env "PRESENCE_LISTEN", value "ADDR",
        help "address to serve on", shown "`127.0.0.1:9991`";
    /// A PEM file of the certificate chain to serve HTTPS with (with
    /// `tls_key`); re-read with the key on SIGHUP.
    Serve tls_cert: Option<PathBuf> = None, flag PathBuf,
        env "PRESENCE_TLS_CERT", value "FILE",
        help "serve HTTPS with this PEM certificate chain (with --tls-key; both re-read on SIGHUP)", shown "none";
    /// The PEM file of the certificate's private key (with `tls_cert`).
    Serve tls_key: Option<PathBuf> = None, flag PathBuf,
        env "PRESENCE_TLS_KEY", value "FILE",
        help "the PEM private key of --tls-cert", shown "none";
    /// Seconds after the last report at which a user counts as offline (Zulip: 200).
    Serve offline_threshold_secs: i64 = 200,
        env "PRESENCE_OFFLINE_THRESHOLD_SECS", value "N",
        help "seconds without a report before a user is offline", shown "200";
    /// Reports closer together than this many seconds are coalesced (Zulip: 55).
    Serve presence_update_min_freq_secs: i64 = 55,
        env "PRESENCE_UPDATE_MIN_FREQ_SECS", value "N",
        help "reports closer together are coalesced", shown "55";
    /// How often clients are told to report, in seconds (Zulip: 60).
    Serve ping_interval_secs: i64 = 60,
        env "PRESENCE_PING_INTERVAL_SECS", value "N",
        help "how often clients are told to report", shown "60";
    /// The default history window of realm-wide answers, in days (Zulip: 14).
    Serve history_limit_days: i64 = 14,
        env "PRESENCE_HISTORY_LIMIT_DAYS", value "N",
        help "window of realm-wide answers", shown "14";
    /// The per-user request rate limit, or off.
    Serve rate_limit: RateLimit = RateLimit::default(),
        env "PRESENCE_RATE_LIMIT", value "RULE",
        help "per-user requests per seconds, or `off`", shown "`200/60`";
    /// The per-address limit on requests that are not authenticated
    /// (no credentials, or credentials that fail), or off (Zulip's `api_by_ip`).
    /// Requests with an embed key count against it too.
    Serve ip_rate_limit: RateLimit = RateLimit::PerUser { requests: 100, per_secs: 60 },
        env "PRESENCE_IP_RATE_LIMIT", value "RULE",
        help "per-address limit on requests without valid credentials (and on pages' requests), or `off`",
        shown "`100/60`";
    /// The limit per embed key, shared by every page that uses the key, or off.
    Serve embed_rate_limit: RateLimit = RateLimit::PerUser { requests: 6000, per_secs: 60 },
        env "PRESENCE_EMBED_RATE_LIMIT", value "RULE",
        help "limit per embed key, shared by every page using it, or `off`", shown "`6000/60`";
    /// The most client records one user keeps; a new client beyond it
    /// replaces the least recently connected one.
    Serve max_clients_per_user: usize = 32,
        env "PRESENCE_MAX_CLIENTS_PER_USER", value "N",
        help "client records kept per user", shown "32";
    /// The most push devices one user may register; past it, registering
    /// a new device is refused (re-registering one the user has is not).
    Serve max_devices_per_user: usize = 32,
        env "PRESENCE_MAX_DEVICES_PER_USER", value "N",
        help "push devices one user may register (a new one past it is refused)", shown "32";
    /// The largest request body accepted, in bytes.
    Serve max_body_bytes: usize = 64 * 1024,
        env "PRESENCE_MAX_BODY_BYTES", value "N",
        help "largest request body (larger is 413)", shown "65536";
    /// The longest request target (path and query) accepted, in bytes.
    Serve max_url_bytes: usize = 8 * 1024,
        env "PRESENCE_MAX_URL_BYTES", value "N",
        help "longest path and query (longer is 414)", shown "8192";
    /// The most bytes of request headers accepted (names, values and line ends).
    Serve max_header_bytes: usize = 16 * 1024,
        env "PRESENCE_MAX_HEADER_BYTES", value "N",
        help "largest request headers (larger is 431)", shown "16384";
    /// The most connections open at once; more are answered 503 and closed.
    Serve max_connections: usize = 1024,
        env "PRESENCE_MAX_CONNECTIONS", value "N",
        help "connections open at once (more get 503 and are closed)", shown "1024";
    /// The most connections open at once from one client address (an IPv6
    /// address counts by its /64), so that one client cannot take every
    /// connection; more from it are answered 503 and closed.
    Serve max_connections_per_ip: usize = 256,
        env "PRESENCE_MAX_CONNECTIONS_PER_IP", value "N",
        help "connections open at once from one address or IPv6 /64 (more get 503 and are closed)",
        shown "256";
    /// Seconds a client has to send a request's headers, counted from the
    /// connection's start or the request's first byte.
    Serve header_read_timeout_secs: f64 = 30.0,
        env "PRESENCE_HEADER_READ_TIMEOUT_SECS", value "SECS",
        help "time to send a request's headers (fractions allowed)", shown "30";
    /// Seconds an idle keep-alive connection is kept open.
    Serve keep_alive_timeout_secs: f64 = 75.0,
        env "PRESENCE_KEEP_ALIVE_TIMEOUT_SECS", value "SECS",
        help "how long an idle connection stays open", shown "75";
    /// Seconds a request may take from its headers to its answer (body
    /// included); past it the answer is 503.
    Serve request_timeout_secs: f64 = 30.0,
        env "PRESENCE_REQUEST_TIMEOUT_SECS", value "SECS",
        help "deadline of one request, body included (past it, 503)", shown "30";
    /// Seconds in-flight requests get to finish once shutdown starts.
    Serve shutdown_grace_secs: f64 = 10.0,
        env "PRESENCE_SHUTDOWN_GRACE_SECS", value "SECS",
        help "time in-flight requests get on SIGTERM or Ctrl-C", shown "10";
    /// Seconds the server goes on serving after SIGTERM or Ctrl-C, with
    /// `GET /health/ready` answering 503, before it stops taking
    /// connections: time for a load balancer's probes to see it leave.
    Serve shutdown_delay_secs: f64 = 0.0,
        env "PRESENCE_SHUTDOWN_DELAY_SECS", value "SECS",
        help "time the server keeps serving, not ready, on SIGTERM or Ctrl-C before it drains (for load balancers)",
        shown "0";
    /// How often the server looks for changes made by others, in
    /// milliseconds. The same loop notices presence going idle or offline and
    /// drops expired event queues, so this also bounds how late that happens.
    Serve directory_poll_ms: u64 = 200,
        env "PRESENCE_DIRECTORY_POLL_MS", value "N",
        help "how often the server looks for changes by others (admin commands, other nodes; PostgreSQL also notifies at once), idle and offline transitions, and expired queues",
        shown "200";
    /// Seconds without a poll after which an event queue is dropped (Zulip: 600).
    Serve event_queue_timeout_secs: i64 = 600,
        env "PRESENCE_EVENT_QUEUE_TIMEOUT_SECS", value "N",
        help "an event queue unused this long is dropped", shown "600";
    /// Milliseconds a `GET /events` waits without events before it answers
    /// with a `heartbeat` event (Zulip: about 50 s).
    Serve event_heartbeat_ms: u64 = 50_000,
        env "PRESENCE_EVENT_HEARTBEAT_MS", value "N",
        help "a waiting `GET /events` answers a `heartbeat` after this", shown "50000";
    /// Milliseconds of silence after which a presence stream sends a keep-alive comment.
    Serve event_stream_keepalive_ms: u64 = 15_000,
        env "PRESENCE_EVENT_STREAM_KEEPALIVE_MS", value "N",
        help "silence before a stream's keep-alive comment", shown "15000";
    /// Milliseconds after which the server ends a presence stream; the
    /// client reconnects with `Last-Event-ID` and loses nothing. 0 never ends it.
    Serve event_stream_max_ms: u64 = 1_800_000,
        env "PRESENCE_EVENT_STREAM_MAX_MS", value "N",
        help "a stream is ended after this, for the client to resume (0: never)", shown "1800000";
    /// The most event queues one user may hold; registering another drops
    /// the user's least recently polled one.
    Serve max_queues_per_user: usize = 32,
        env "PRESENCE_MAX_QUEUES_PER_USER", value "N",
        help "event queues one user may hold", shown "32";
    /// The most presence streams one user may have open at once; another
    /// is answered 429 until one closes.
    Serve max_streams_per_user: usize = 16,
        env "PRESENCE_MAX_STREAMS_PER_USER", value "N",
        help "presence streams one user may have open at once (more get 429)", shown "16";
    /// The most events one queue holds; a queue whose client stops polling
    /// is dropped when it would exceed this, and its client registers again.
    Serve max_events_per_queue: usize = 1000,
        env "PRESENCE_MAX_EVENTS_PER_QUEUE", value "N",
        help "events a queue may hold before it is dropped", shown "1000";
    /// The form of the log's lines on standard error: `text`, or `json`
    /// (one object per line, with the same fields).
    Serve log_format: LogFormat = LogFormat::Text,
        env "PRESENCE_LOG_FORMAT", value "FORMAT",
        help "log lines as `text`, or `json` (one object per line, the same fields)", shown "`text`";
}

/// README's Configuration table, as these declarations make it: a row per
/// setting, after the row of `--config` itself.
pub fn readme_table() -> String {
    let mut out = String::from(
        "| flag | environment | file key | default | meaning |\n\
         | --- | --- | --- | --- | --- |\n\
         | `--config FILE` | `PRESENCE_CONFIG` | | none | the TOML settings file |\n",
    );
    for s in SETTINGS {
        out.push_str(&format!(
            "| `--{} {}` | `{}` | `{}` | {} | {} |\n",
            s.flag(),
            s.value_name,
            s.env,
            s.key,
            s.shown_default,
            s.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_parses_its_default_as_shown() {
        for setting in SETTINGS {
            let shown = setting.shown_default.trim_matches('`');
            if shown == "none" {
                continue;
            }
            let mut config = Config::default();
            (setting.apply)(shown, &mut config).unwrap_or_else(|e| panic!("{}: {e}", setting.key));
            assert_eq!(
                config,
                Config::default(),
                "{} shows its default",
                setting.key
            );
        }
    }

    #[test]
    fn flags_and_variables_are_unique() {
        let mut flags: Vec<String> = SETTINGS.iter().map(Setting::flag).collect();
        let mut envs: Vec<&str> = SETTINGS.iter().map(|s| s.env).collect();
        flags.sort();
        flags.dedup();
        envs.sort_unstable();
        envs.dedup();
        assert_eq!(flags.len(), SETTINGS.len());
        assert_eq!(envs.len(), SETTINGS.len());
    }

    #[test]
    fn readme_lists_every_setting_as_declared() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md");
        let table = readme_table();
        assert!(
            readme.contains(&table),
            "README's Configuration table differs from the settings' declarations; it should read:\n{table}"
        );
    }
}
