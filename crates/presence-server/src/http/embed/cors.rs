//! Cross-origin requests from pages, done the way browsers check them.
//!
//! A page's request with an embed key carries an `Authorization` header,
//! so the browser first sends a preflight (`OPTIONS`) with the page's
//! origin and nothing else; it is granted when some embed key names that
//! origin. The request itself is then granted by its key's own origins.
//! A grant echoes the origin exactly (never `*`: the answer depends on the
//! credential), and every answer of an endpoint pages may call says
//! `Vary: Origin`, so that caches keep one answer per origin. Requests with
//! a user's API key get no grant: a page must never hold one.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use super::super::body::Body;
use super::super::error::ApiError;
use crate::service::Service;

/// How long a browser may reuse a preflight's answer, in seconds.
pub const PREFLIGHT_MAX_AGE_SECS: u32 = 600;

/// The methods pages may use.
const ALLOWED_METHODS: &str = "GET, HEAD";

/// The request headers pages may send: the key, and a stream's resume point.
const ALLOWED_HEADERS: &str = "authorization, last-event-id";

/// The answer headers a page may read besides the simple ones.
const EXPOSED_HEADERS: &str =
    "retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, x-request-id";

/// The `Origin` of a request from a page, if it has one that is usable as
/// a header value again.
pub fn origin(headers: &HeaderMap) -> Option<&HeaderValue> {
    headers
        .get(header::ORIGIN)
        .filter(|v| v.to_str().is_ok_and(|o| o != "null"))
}

/// Answers a preflight: granted for an origin that some embed key names,
/// refused (403, without a grant) for any other.
pub fn preflight(service: &Service, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    let mut response = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ALLOW, "GET, HEAD, OPTIONS")
        .body(Body::default())
        .expect("a valid response");
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser's preflight: just say what the path allows.
        return Ok(response);
    };
    let known = origin.to_str().is_ok_and(|o| service.embed_origin_known(o));
    if !known {
        return Err(ApiError::origin_without_embed_key());
    }
    let out = response.headers_mut();
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOWED_HEADERS),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(PREFLIGHT_MAX_AGE_SECS),
    );
    Ok(response)
}

/// Lets the page on `origin` read `response`.
pub fn grant(response: &mut Response<Body>, origin: HeaderValue) {
    let out = response.headers_mut();
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    out.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
}

/// Marks an answer of an endpoint pages may call as depending on the
/// request's origin (a preflight's also on what it asks for).
pub fn vary(response: &mut Response<Body>, preflight: bool) {
    let value = if preflight {
        "origin, access-control-request-method, access-control-request-headers"
    } else {
        "origin"
    };
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static(value));
}
