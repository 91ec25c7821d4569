//! Turning an error into one line on stderr and an exit code.

use std::process::ExitCode;

use presence_client::config::Setting;
use presence_client::{ConfigError, Error};

// Success is 0 (`ExitCode::SUCCESS`).

/// The server refused, or answered something the API does not document.
pub const SERVER_REFUSED: u8 = 1;
/// The command line or the configuration is wrong.
pub const USAGE: u8 = 2;
/// The server could not be reached.
pub const UNREACHABLE: u8 = 3;

/// The message and exit code for an error that ended a command.
pub fn describe(err: &anyhow::Error) -> (String, ExitCode) {
    if let Some(err) = err.downcast_ref::<Error>() {
        let (message, code) = describe_request_error(err);
        return (message, ExitCode::from(code));
    }
    if let Some(err) = err.downcast_ref::<ConfigError>() {
        return (describe_config_error(err), ExitCode::from(USAGE));
    }
    (format!("{err:#}"), ExitCode::from(SERVER_REFUSED))
}

/// The message and exit code for a failed request.
pub fn describe_request_error(err: &Error) -> (String, u8) {
    match err {
        Error::Transport(inner) => {
            let server = inner
                .url()
                .map(|url| url.origin().ascii_serialization())
                .unwrap_or_else(|| "the server".to_owned());
            let why = if inner.is_timeout() {
                "no answer before the timeout".to_owned()
            } else {
                root_cause(inner)
            };
            (format!("cannot reach {server}: {why}"), UNREACHABLE)
        }
        Error::Api { status, body } => {
            let code = body.code.map_or("no code", |c| c.as_str());
            (
                format!(
                    "the server refused: {} ({code}, HTTP {})",
                    body.msg,
                    status.as_u16()
                ),
                SERVER_REFUSED,
            )
        }
        Error::InvalidResponse { status, source, .. } => (
            format!(
                "the server's answer (HTTP {}) is not what the API documents: {source}",
                status.as_u16()
            ),
            SERVER_REFUSED,
        ),
        Error::UnexpectedStatus { status, body } => {
            let excerpt: String = body.chars().take(120).collect();
            (
                format!(
                    "unexpected answer from the server: HTTP {}: {}",
                    status.as_u16(),
                    excerpt.trim()
                ),
                SERVER_REFUSED,
            )
        }
        other => (other.to_string(), SERVER_REFUSED),
    }
}

fn describe_config_error(err: &ConfigError) -> String {
    match err {
        // Name the flag too: on the command line it is the quickest fix.
        ConfigError::Missing { setting, .. } => {
            let flag = match setting {
                Setting::Site => "--site",
                Setting::Email => "--email",
                Setting::ApiKey => "--api-key",
            };
            format!("{err} (or pass {flag})")
        }
        other => other.to_string(),
    }
}

/// The innermost cause, which is the informative one for connection
/// failures ("Connection refused", "failed to lookup address").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
