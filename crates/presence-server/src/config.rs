//! The server's settings (SPEC.md §7), from defaults, a TOML file, the
//! environment and flags, later ones winning.
//!
//! The flag and environment layer lives in `cli.rs`; this module owns the
//! struct, its defaults, and the file format, which uses the same names as
//! the flags with underscores (`offline_threshold_secs = 200`).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

/// Every setting of the server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Where the embedded store keeps its database.
    pub data_dir: PathBuf,
    /// A PostgreSQL URL: use the shared store there instead of the embedded
    /// one (several nodes may share it).
    pub database_url: Option<String>,
    /// Seconds after the last report at which a user counts as offline (Zulip: 200).
    pub offline_threshold_secs: i64,
    /// Reports closer together than this many seconds are coalesced (Zulip: 55).
    pub presence_update_min_freq_secs: i64,
    /// How often clients are told to report, in seconds (Zulip: 60).
    pub ping_interval_secs: i64,
    /// The default history window of realm-wide answers, in days (Zulip: 14).
    pub history_limit_days: i64,
    /// The per-user request rate limit, or off.
    pub rate_limit: RateLimit,
    /// The per-address limit on requests that are not authenticated
    /// (no credentials, or credentials that fail), or off (Zulip's `api_by_ip`).
    /// Requests with an embed key count against it too.
    pub ip_rate_limit: RateLimit,
    /// The limit per embed key, shared by every page that uses the key, or off.
    pub embed_rate_limit: RateLimit,
    /// The most client records one user keeps; a new client beyond it
    /// replaces the least recently connected one.
    pub max_clients_per_user: usize,
    /// The most push devices one user may register; past it, registering
    /// a new device is refused (re-registering one the user has is not).
    pub max_devices_per_user: usize,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The longest request target (path and query) accepted, in bytes.
    pub max_url_bytes: usize,
    /// The most bytes of request headers accepted (names, values and line ends).
    pub max_header_bytes: usize,
    /// The most connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// The most connections open at once from one client address (an IPv6
    /// address counts by its /64), so that one client cannot take every
    /// connection; more from it are answered 503 and closed.
    pub max_connections_per_ip: usize,
    /// Seconds a client has to send a request's headers, counted from the
    /// connection's start or the request's first byte.
    pub header_read_timeout_secs: f64,
    /// Seconds an idle keep-alive connection is kept open.
    pub keep_alive_timeout_secs: f64,
    /// Seconds a request may take from its headers to its answer (body
    /// included); past it the answer is 503.
    pub request_timeout_secs: f64,
    /// Seconds in-flight requests get to finish once shutdown starts.
    pub shutdown_grace_secs: f64,
    /// How often the server looks for changes made by the admin command, in
    /// milliseconds. The same loop notices presence going idle or offline and
    /// drops expired event queues, so this also bounds how late that happens.
    pub directory_poll_ms: u64,
    /// Seconds without a poll after which an event queue is dropped (Zulip: 600).
    pub event_queue_timeout_secs: i64,
    /// Milliseconds a `GET /events` waits without events before it answers
    /// with a `heartbeat` event (Zulip: about 50 s).
    pub event_heartbeat_ms: u64,
    /// Milliseconds of silence after which a presence stream sends a keep-alive comment.
    pub event_stream_keepalive_ms: u64,
    /// Milliseconds after which the server ends a presence stream; the
    /// client reconnects with `Last-Event-ID` and loses nothing. 0 never ends it.
    pub event_stream_max_ms: u64,
    /// The most event queues one user may hold; registering another drops
    /// the user's least recently polled one.
    pub max_queues_per_user: usize,
    /// The most presence streams one user may have open at once; another
    /// is answered 429 until one closes.
    pub max_streams_per_user: usize,
    /// The most events one queue holds; a queue whose client stops polling
    /// is dropped when it would exceed this, and its client registers again.
    pub max_events_per_queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9991)),
            data_dir: PathBuf::from("./presence-data"),
            database_url: None,
            offline_threshold_secs: 200,
            presence_update_min_freq_secs: 55,
            ping_interval_secs: 60,
            history_limit_days: 14,
            rate_limit: RateLimit::default(),
            ip_rate_limit: RateLimit::PerUser {
                requests: 100,
                per_secs: 60,
            },
            embed_rate_limit: RateLimit::PerUser {
                requests: 6000,
                per_secs: 60,
            },
            max_clients_per_user: 32,
            max_devices_per_user: 32,
            max_body_bytes: 64 * 1024,
            max_url_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
            max_connections_per_ip: 256,
            header_read_timeout_secs: 30.0,
            keep_alive_timeout_secs: 75.0,
            request_timeout_secs: 30.0,
            shutdown_grace_secs: 10.0,
            directory_poll_ms: 200,
            event_queue_timeout_secs: 600,
            event_heartbeat_ms: 50_000,
            event_stream_keepalive_ms: 15_000,
            event_stream_max_ms: 1_800_000,
            max_queues_per_user: 32,
            max_streams_per_user: 16,
            max_events_per_queue: 1000,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this struct.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with the line.
        message: String,
    },
    /// A value is out of its range.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML file on top of the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.message().to_owned(),
        })
    }

    /// Checks the ranges that the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("offline_threshold_secs", self.offline_threshold_secs),
            (
                "presence_update_min_freq_secs",
                self.presence_update_min_freq_secs,
            ),
            ("ping_interval_secs", self.ping_interval_secs),
            ("event_queue_timeout_secs", self.event_queue_timeout_secs),
        ];
        // Bounded above too, so that time arithmetic cannot overflow.
        const TEN_YEARS: i64 = 10 * 365 * 86_400;
        for (name, value) in positive {
            if !(1..=TEN_YEARS).contains(&value) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be between 1 and {TEN_YEARS} seconds, not {value}"
                )));
            }
        }
        if self.history_limit_days < 0 {
            return Err(ConfigError::Invalid(format!(
                "history_limit_days must not be negative, not {}",
                self.history_limit_days
            )));
        }
        if self.max_clients_per_user == 0 {
            return Err(ConfigError::Invalid(
                "max_clients_per_user must be at least 1".to_owned(),
            ));
        }
        let durations = [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("keep_alive_timeout_secs", self.keep_alive_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("shutdown_grace_secs", self.shutdown_grace_secs),
        ];
        const ONE_DAY: f64 = 86_400.0;
        for (name, value) in durations {
            // `!(a..=b).contains` is also true for NaN.
            if !(0.001..=ONE_DAY).contains(&value) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be between 0.001 and {ONE_DAY} seconds, not {value}"
                )));
            }
        }
        let sizes = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_url_bytes", self.max_url_bytes),
            ("max_header_bytes", self.max_header_bytes),
            ("max_connections", self.max_connections),
            ("max_connections_per_ip", self.max_connections_per_ip),
        ];
        for (name, value) in sizes {
            // Bounded so that the limits derived from them cannot overflow.
            if !(1..=1 << 30).contains(&value) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be between 1 and {}, not {value}",
                    1 << 30
                )));
            }
        }
        // A day bounds the waits so that deadlines cannot overflow.
        const DAY_MS: u64 = 86_400_000;
        let waits = [
            ("directory_poll_ms", self.directory_poll_ms),
            ("event_heartbeat_ms", self.event_heartbeat_ms),
            ("event_stream_keepalive_ms", self.event_stream_keepalive_ms),
        ];
        for (name, value) in waits {
            if !(1..=DAY_MS).contains(&value) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be between 1 and {DAY_MS} milliseconds, not {value}"
                )));
            }
        }
        if self.event_stream_max_ms > DAY_MS {
            return Err(ConfigError::Invalid(format!(
                "event_stream_max_ms must be at most {DAY_MS} milliseconds, not {}",
                self.event_stream_max_ms
            )));
        }
        let counts = [
            ("max_devices_per_user", self.max_devices_per_user),
            ("max_queues_per_user", self.max_queues_per_user),
            ("max_streams_per_user", self.max_streams_per_user),
            ("max_events_per_queue", self.max_events_per_queue),
        ];
        for (name, value) in counts {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// A rate limit rule: `REQUESTS/SECONDS` (e.g. `200/60`), or `off`. The
/// same rule type serves the per-user and the per-address limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// No limit and no `X-RateLimit-*` headers (for benchmarks).
    Off,
    /// At most `requests` per `per_secs` seconds per user (or per address).
    PerUser {
        /// The number of requests.
        requests: u32,
        /// The window, in seconds.
        per_secs: u32,
    },
}

impl Default for RateLimit {
    fn default() -> Self {
        // Zulip's default API rule.
        RateLimit::PerUser {
            requests: 200,
            per_secs: 60,
        }
    }
}

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(RateLimit::Off);
        }
        let bad =
            || format!("rate limit must be `off` or REQUESTS/SECONDS like `200/60`, not {s:?}");
        let (requests, per_secs) = s.split_once('/').ok_or_else(bad)?;
        let requests: u32 = requests.trim().parse().map_err(|_| bad())?;
        let per_secs: u32 = per_secs.trim().parse().map_err(|_| bad())?;
        if requests == 0 || per_secs == 0 {
            return Err(bad());
        }
        Ok(RateLimit::PerUser { requests, per_secs })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimit::Off => f.write_str("off"),
            RateLimit::PerUser { requests, per_secs } => write!(f, "{requests}/{per_secs}"),
        }
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_parses_rules_and_off() {
        assert_eq!("off".parse::<RateLimit>(), Ok(RateLimit::Off));
        assert_eq!(
            "10/5".parse::<RateLimit>(),
            Ok(RateLimit::PerUser {
                requests: 10,
                per_secs: 5
            })
        );
        assert!("10".parse::<RateLimit>().is_err());
        assert!("0/5".parse::<RateLimit>().is_err());
        assert!("a/b".parse::<RateLimit>().is_err());
    }

    #[test]
    fn limits_out_of_range_are_refused() {
        assert!(Config::default().validate().is_ok());
        for config in [
            Config {
                request_timeout_secs: 0.0,
                ..Config::default()
            },
            Config {
                shutdown_grace_secs: f64::NAN,
                ..Config::default()
            },
            Config {
                max_connections: 0,
                ..Config::default()
            },
            Config {
                max_devices_per_user: 0,
                ..Config::default()
            },
            Config {
                max_header_bytes: usize::MAX,
                ..Config::default()
            },
        ] {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }

    #[test]
    fn file_overrides_defaults_and_rejects_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("presence-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("presence.toml");
        std::fs::write(&file, "offline_threshold_secs = 30\nrate_limit = \"off\"\n").unwrap();
        let config = Config::from_file(&file).unwrap();
        assert_eq!(config.offline_threshold_secs, 30);
        assert_eq!(config.rate_limit, RateLimit::Off);
        assert_eq!(config.presence_update_min_freq_secs, 55);
        std::fs::write(
            &file,
            "ip_rate_limit = \"off\"\nrequest_timeout_secs = 2.5\nmax_connections = 7\n",
        )
        .unwrap();
        let config = Config::from_file(&file).unwrap();
        assert_eq!(config.ip_rate_limit, RateLimit::Off);
        assert_eq!(config.request_timeout_secs, 2.5);
        assert_eq!(config.max_connections, 7);
        std::fs::write(&file, "offline_treshold_secs = 30\n").unwrap();
        let err = Config::from_file(&file).unwrap_err().to_string();
        assert!(err.contains("offline_treshold_secs"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
