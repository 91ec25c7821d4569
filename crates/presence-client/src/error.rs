//! What can go wrong with a request, sorted by what the caller can do about it.
//!
//! The four cases follow progenitor's client error: the request never got an
//! answer (retrying may help), the server refused with a documented error
//! (look at its `code`), the server answered something the API does not
//! document (a proxy's HTML page, a truncated body), or an undocumented status.

use presence_types::{ErrorBody, ErrorCode};
use reqwest::StatusCode;
use thiserror::Error;

/// A failed request.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// No answer: the connection was refused or dropped, the name did not
    /// resolve, TLS failed, or the timeout passed.
    #[error("cannot reach the server")]
    Transport(#[source] reqwest::Error),

    /// The server refused the request with a documented error body (SPEC §6):
    /// `body.code` says why in machine-readable form, `body.msg` in words.
    #[error("the server refused the request: {} ({})", body.msg, describe_code(body.code, *status))]
    Api {
        /// The HTTP status (400, 401, 429, ...).
        status: StatusCode,
        /// The whole error body, with `code`, `msg` and the extra fields
        /// some errors carry (`var_name`, `retry-after`, `allowed_methods`).
        /// Boxed: every call's `Result` carries this variant's room.
        body: Box<ErrorBody>,
    },

    /// The server answered with a status the request expects, but the body
    /// is not the JSON the API documents for it.
    #[error("the server's answer (HTTP {}) is not what the API documents", status.as_u16())]
    InvalidResponse {
        /// The HTTP status.
        status: StatusCode,
        /// The body as received (lossily decoded as UTF-8).
        body: String,
        /// Why it did not decode.
        #[source]
        source: serde_json::Error,
    },

    /// The server answered with an error status and a body that is not an
    /// API error body (e.g. an HTML page from a proxy in front of it).
    #[error("unexpected answer from the server: HTTP {}", status.as_u16())]
    UnexpectedStatus {
        /// The HTTP status.
        status: StatusCode,
        /// The body as received (lossily decoded as UTF-8).
        body: String,
    },
}

fn describe_code(code: Option<ErrorCode>, status: StatusCode) -> String {
    match code {
        Some(code) => format!("{}, HTTP {}", code.as_str(), status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

impl Error {
    /// The API error code, when the server refused with a documented error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Api { body, .. } => body.code,
            _ => None,
        }
    }

    /// The API error body, when the server refused with a documented error.
    pub fn api_error(&self) -> Option<&ErrorBody> {
        match self {
            Error::Api { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered at all.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Transport(e) => e.status(),
            Error::Api { status, .. }
            | Error::InvalidResponse { status, .. }
            | Error::UnexpectedStatus { status, .. } => Some(*status),
        }
    }

    /// Whether the request got no answer (the server is down or unreachable,
    /// or the timeout passed).
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_show_message_code_and_status() {
        let e = Error::Api {
            status: StatusCode::BAD_REQUEST,
            body: Box::new(ErrorBody::new(ErrorCode::BadRequest, "No such user")),
        };
        assert_eq!(
            e.to_string(),
            "the server refused the request: No such user (BAD_REQUEST, HTTP 400)"
        );
        assert_eq!(e.code(), Some(ErrorCode::BadRequest));
        assert_eq!(e.status(), Some(StatusCode::BAD_REQUEST));
        assert!(!e.is_transport());
    }

    #[test]
    fn unexpected_status_keeps_the_body() {
        let e = Error::UnexpectedStatus {
            status: StatusCode::BAD_GATEWAY,
            body: "<html>".into(),
        };
        assert_eq!(e.to_string(), "unexpected answer from the server: HTTP 502");
        assert_eq!(e.code(), None);
    }
}
