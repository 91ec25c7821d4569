//! One error type for every refusal, turned into Zulip's JSON error body.
//!
//! Every refusal the HTTP layer makes itself (docs/PROTOCOL.md §1.3, §1.10
//! and §2) has a constructor here, so its exact string lives in one place.
//! The service's refusals are typed errors that carry their own strings
//! (`ServiceError`, `AuthError`, `EmbedAuthError`, `EventError`); the
//! `From` conversions below give each its status and code.

use http::{HeaderName, HeaderValue, StatusCode};
use presence_types::{ErrorBody, ErrorCode};

use crate::events::EventError;
use crate::service::embed::EmbedAuthError;
use crate::service::{AuthError, ServiceError};

/// The value of `WWW-Authenticate` on 401 answers.
pub const WWW_AUTHENTICATE: &str = "Basic realm=\"zulip\"";

/// The value of `WWW-Authenticate` on 401 answers to embed keys.
pub const EMBED_WWW_AUTHENTICATE: &str = "Bearer realm=\"zulip\"";

/// The JSON type a parameter was expected to hold, as its refusal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// `true` or `false`.
    Boolean,
    /// An integer that fits in 64 signed bits.
    Integer,
    /// An array (or `null`, counted as absent).
    List,
    /// An object (or `null`, counted as absent).
    Dict,
}

/// A refusal: status, JSON body and any headers it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body (boxed: errors travel through every `Result` of the
    /// request path, and should stay small there).
    pub body: Box<ErrorBody>,
    /// Headers the error adds (`WWW-Authenticate`, `Retry-After`, `Allow`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a code and message and the given status.
    fn new(status: StatusCode, code: ErrorCode, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            body: Box::new(ErrorBody::new(code, msg)),
            headers: Vec::new(),
        }
    }

    /// A 400 `BAD_REQUEST` with this message.
    fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, msg)
    }

    /// A 401 `UNAUTHORIZED` with `WWW-Authenticate`.
    fn unauthorized(msg: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, msg);
        e.headers.push((
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(WWW_AUTHENTICATE),
        ));
        e
    }

    /// A 401 `UNAUTHORIZED` for an embed key. Its challenge is `Bearer`, not
    /// `Basic`: a browser shows no login prompt for it.
    fn embed_unauthorized(msg: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, msg);
        e.headers.push((
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(EMBED_WWW_AUTHENTICATE),
        ));
        e
    }

    /// A 403: the caller may not do this (Zulip's shape for access denied).
    fn forbidden(msg: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, ErrorCode::BadRequest, msg)
    }

    /// No `Authorization` header on an endpoint that needs one.
    pub fn not_logged_in() -> Self {
        ApiError::unauthorized("Not logged in: API authentication or user session required")
    }

    /// A required parameter is absent.
    pub fn missing(name: &str) -> Self {
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::RequestVariableMissing,
            format!("Missing '{name}' argument"),
        );
        e.body.var_name = Some(name.to_owned());
        e
    }

    /// A required parameter is absent, refused as Zulip refuses it on
    /// `GET /events`: a plain `BAD_REQUEST`, without `var_name`.
    pub fn missing_plain(name: &str) -> Self {
        ApiError::bad_request(format!("Missing '{name}' argument"))
    }

    /// A JSON parameter whose value is not JSON.
    pub fn not_json(name: &str) -> Self {
        ApiError::bad_request(format!("{name} is not valid JSON"))
    }

    /// A JSON parameter (or a part of one, such as `name['key']`) whose
    /// value is JSON of another type than `expected`.
    pub fn not_a(name: &str, expected: Expected) -> Self {
        let expected = match expected {
            Expected::Boolean => "a boolean",
            Expected::Integer => "an integer",
            Expected::List => "a list",
            Expected::Dict => "a dict",
        };
        ApiError::bad_request(format!("{name} is not {expected}"))
    }

    /// Item `index` (from 0) of a list of strings is not a string.
    pub fn item_not_a_string(name: &str, index: usize) -> Self {
        ApiError::bad_request(format!("{name}[{index}] is not a string"))
    }

    /// The query string or the body (`what`) is not UTF-8 once decoded.
    pub fn form_not_utf8(what: &str) -> Self {
        ApiError::bad_request(format!("The {what} is not valid UTF-8 form data"))
    }

    /// The user segment of a path is not UTF-8 once decoded.
    pub fn path_user_not_utf8() -> Self {
        ApiError::bad_request("The user in the path is not valid UTF-8")
    }

    /// The body could not be read from the connection.
    pub fn body_unreadable() -> Self {
        ApiError::bad_request("The request body could not be read")
    }

    /// `status` is neither `active` nor `idle`.
    pub fn invalid_status(status: &str) -> Self {
        ApiError::bad_request(format!("Invalid status: {status}"))
    }

    /// A `client` parameter that may not be a client's name.
    pub fn invalid_client_name() -> Self {
        ApiError::bad_request("Invalid client name")
    }

    /// An `Authorization` header that is not well-formed Basic credentials.
    pub fn invalid_basic_auth() -> Self {
        ApiError::unauthorized("Invalid authorization header for basic auth")
    }

    /// An `Authorization` header of another scheme than Basic, where Basic
    /// is needed.
    pub fn basic_auth_required() -> Self {
        ApiError::bad_request("This endpoint requires HTTP basic authentication.")
    }

    /// A page's embed key on an endpoint that pages may not call.
    pub fn embed_key_not_accepted() -> Self {
        ApiError::forbidden("This endpoint does not accept embed keys")
    }

    /// A preflight from an origin that no embed key names.
    pub fn origin_without_embed_key() -> Self {
        ApiError::forbidden("No embed key may be used from this origin")
    }

    /// No endpoint at this path.
    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "Endpoint does not exist.",
        )
    }

    /// The path exists but not with this method; `allowed` lists the methods it has.
    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        let mut body = ErrorBody::new(ErrorCode::BadRequest, "Method Not Allowed");
        // Zulip's 405 carries no code.
        body.code = None;
        body.allowed_methods = Some(allowed.iter().map(|m| (*m).to_owned()).collect());
        let allow = HeaderValue::from_str(&allowed.join(", ")).expect("method names are ASCII");
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            body: Box::new(body),
            headers: vec![(http::header::ALLOW, allow)],
        }
    }

    /// The caller is over its rate limit; `retry_after` in seconds.
    pub fn rate_limited(retry_after: f64) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimitHit,
            "API usage exceeded rate limit",
        );
        e.body.retry_after = Some(retry_after);
        let header = HeaderValue::from_str(&format!("{retry_after}")).expect("a number is ASCII");
        e.headers.push((http::header::RETRY_AFTER, header));
        e
    }

    /// The request body is larger than the server accepts.
    pub fn body_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BadRequest,
            format!("Request body too large (the limit is {limit} bytes)"),
        )
    }

    /// The request target (path and query) is longer than the server accepts.
    pub fn url_too_long(limit: usize) -> Self {
        ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::BadRequest,
            format!("URL too long (the limit is {limit} bytes)"),
        )
    }

    /// The request headers are larger than the server accepts.
    pub fn headers_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::BadRequest,
            format!("Request headers too large (the limit is {limit} bytes)"),
        )
    }

    /// The request was not answered within the server's deadline. A change
    /// it asked for may still be made; asking again is safe, since every
    /// change of this API is idempotent.
    pub fn deadline_passed() -> Self {
        let mut e = ApiError::unavailable("The server could not answer in time; try again");
        e.headers
            .push((http::header::RETRY_AFTER, HeaderValue::from_static("1")));
        e
    }

    /// A failure that is the server's fault (a bug); details go to the log only.
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalServerError,
            "Internal server error",
        )
    }

    /// A 503 `SERVICE_UNAVAILABLE` with this message.
    /// A 503 from the readiness probe, with its machine-readable `reason`.
    pub fn not_ready(reason: &str, msg: &str) -> Self {
        let mut e = ApiError::unavailable(msg);
        e.body.reason = Some(reason.to_owned());
        e
    }

    fn unavailable(msg: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            msg,
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::unauthorized(e.to_string())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unavailable => ApiError::unavailable(e.to_string()),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<EmbedAuthError> for ApiError {
    fn from(e: EmbedAuthError) -> Self {
        match e {
            EmbedAuthError::OriginNotAllowed => ApiError::forbidden(e.to_string()),
            EmbedAuthError::Invalid
            | EmbedAuthError::Revoked
            | EmbedAuthError::RealmDeactivated => ApiError::embed_unauthorized(e.to_string()),
        }
    }
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> Self {
        match e {
            EventError::BadQueueId(ref queue_id) => {
                let mut error = ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadEventQueueId,
                    e.to_string(),
                );
                error.body.queue_id = Some(queue_id.clone());
                error
            }
            EventError::Pruned(_) | EventError::NotInQueue(_) => {
                ApiError::bad_request(e.to_string())
            }
            EventError::ShuttingDown => ApiError::unavailable(e.to_string()),
            // A stream frees its place when it closes; a few seconds is a
            // fair wait before trying again.
            EventError::TooManyStreams => {
                let mut error = ApiError::rate_limited(5.0);
                error.body.msg = e.to_string();
                error
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_queue_names_the_queue_as_zulip_does() {
        let e = ApiError::from(EventError::BadQueueId("abc".to_owned()));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body.code, Some(ErrorCode::BadEventQueueId));
        assert_eq!(e.body.msg, "Bad event queue ID: abc");
        assert_eq!(e.body.queue_id.as_deref(), Some("abc"));
    }
}
