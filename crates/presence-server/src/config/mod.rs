//! The server's settings, from defaults, a TOML file, the environment and
//! flags, later ones winning.
//!
//! Each setting is declared once, in [`settings`]: its field, default,
//! flag, environment variable and README row all come from there. This
//! module reads the file (the same names as the fields:
//! `offline_threshold_secs = 200`), checks the ranges the types cannot
//! express, and holds the rate-limit rule and log format types.

pub mod settings;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::store::Durability;

pub use settings::{Config, SETTINGS, Scope, Setting};

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
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key go together: give both, or neither".to_owned(),
            ));
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
        if !(0.0..=ONE_DAY).contains(&self.shutdown_delay_secs) {
            return Err(ConfigError::Invalid(format!(
                "shutdown_delay_secs must be between 0 and {ONE_DAY} seconds, not {}",
                self.shutdown_delay_secs
            )));
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

/// The form of the log's lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` text, for people.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "log format must be `text` or `json`, not {other:?}"
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

impl<'de> Deserialize<'de> for Durability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_is_text_or_json() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("JSON!".parse::<LogFormat>().is_err());
        assert_eq!(LogFormat::Json.to_string(), "json");
    }

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
