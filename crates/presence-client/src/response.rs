//! A successful answer: the decoded value, plus what came with it.

use std::ops::Deref;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// A decoded success body together with the HTTP status, the headers and the
/// raw body text.
///
/// It dereferences to the value, so `answer.presence` works directly;
/// [`into_inner`](ResponseValue::into_inner) takes the value out. The raw
/// body is kept for callers that pass the server's answer on unchanged
/// (the `presence --json` option prints it).
#[derive(Debug, Clone)]
pub struct ResponseValue<T> {
    inner: T,
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl<T> ResponseValue<T> {
    pub(crate) fn new(inner: T, status: StatusCode, headers: HeaderMap, body: String) -> Self {
        ResponseValue {
            inner,
            status,
            headers,
            body,
        }
    }

    /// The decoded value.
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// The HTTP status (200 for every success of this API).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers (e.g. `X-RateLimit-Remaining`).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body exactly as the server sent it (JSON text).
    pub fn raw_body(&self) -> &str {
        &self.body
    }
}

impl<T> Deref for ResponseValue<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}
