//! The error body of docs/PROTOCOL.md §1.2 and its machine-readable codes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::ErrorTag;

/// Zulip's machine-readable error code, sent as `code` in error bodies.
///
/// Clients match on these strings, so they are part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// A request the server refuses: bad parameter, unknown user, and most other failures.
    BadRequest,
    /// Missing or rejected credentials (HTTP 401).
    Unauthorized,
    /// A required parameter is absent; the body names it in `var_name`.
    RequestVariableMissing,
    /// The caller sent too many requests (HTTP 429); the body has `retry-after`.
    RateLimitHit,
    /// No endpoint at this path (HTTP 404).
    NotFound,
    /// The server cannot take the request now (HTTP 503), e.g. its store is unreachable.
    ServiceUnavailable,
    /// The server failed in a way that is not the caller's fault (HTTP 500).
    InternalServerError,
    /// The event queue is unknown, expired, deleted or someone else's; the
    /// body names it in `queue_id`. Register a new queue.
    BadEventQueueId,
}

impl ErrorCode {
    /// The code as it appears on the wire, e.g. `"BAD_REQUEST"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::RequestVariableMissing => "REQUEST_VARIABLE_MISSING",
            ErrorCode::RateLimitHit => "RATE_LIMIT_HIT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::InternalServerError => "INTERNAL_SERVER_ERROR",
            ErrorCode::BadEventQueueId => "BAD_EVENT_QUEUE_ID",
        }
    }
}

/// An error response: `{"result": "error", "msg": ..., "code": ...}` plus the
/// fields some errors add.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Always `"error"`.
    pub result: ErrorTag,
    /// A human-readable sentence; the exact strings are part of the contract.
    pub msg: String,
    /// The machine-readable code. Absent only on 405 Method Not Allowed, as in Zulip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub code: Option<ErrorCode>,
    /// With `REQUEST_VARIABLE_MISSING`: the name of the missing parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub var_name: Option<String>,
    /// With 405: the methods the path does accept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub allowed_methods: Option<Vec<String>>,
    /// With `RATE_LIMIT_HIT`: seconds until a request will be accepted again.
    #[serde(
        default,
        rename = "retry-after",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub retry_after: Option<f64>,
    /// With `BAD_EVENT_QUEUE_ID`: the queue id the request named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub queue_id: Option<String>,
    /// With a 503 from `GET /health/ready`: why the server is not ready,
    /// `store_failing` or `shutting_down`, for probes and operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
}

impl ErrorBody {
    /// An error body with a code and message and no extra fields.
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        ErrorBody {
            result: ErrorTag::Error,
            msg: msg.into(),
            code: Some(code),
            var_name: None,
            allowed_methods: None,
            retry_after: None,
            queue_id: None,
            reason: None,
        }
    }
}
