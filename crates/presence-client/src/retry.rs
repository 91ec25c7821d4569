//! When to try an idempotent request again, and how long to wait first.
//!
//! Only GET requests are retried: repeating a GET cannot change anything on
//! the server, while a repeated POST after a lost answer might be applied
//! twice. Only failures that can pass are retried: no answer at all, a
//! server error (5xx), or a rate limit (429). A 4xx other than 429 will not
//! get better by asking again.

use std::time::Duration;

use reqwest::StatusCode;

/// How a client retries idempotent requests: exponential backoff, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times a request is repeated after the first try (0: never).
    pub max_retries: u32,
    /// The wait before the first retry; each later wait doubles it.
    pub initial_backoff: Duration,
    /// No wait is longer than this. A 429 whose `Retry-After` asks for
    /// longer is not retried: the caller gets the rate-limit error at once.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Three retries after 250 ms, 500 ms and 1 s, none longer than 5 s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (0 for the first retry):
    /// `initial_backoff * 2^retry`, capped at `max_backoff`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use presence_client::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default();
    /// assert_eq!(policy.backoff(0), Duration::from_millis(250));
    /// assert_eq!(policy.backoff(2), Duration::from_secs(1));
    /// assert_eq!(policy.backoff(10), Duration::from_secs(5));
    /// ```
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Whether an answer with this status is worth retrying.
    pub fn is_retryable_status(status: StatusCode) -> bool {
        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
    }

    /// The wait before retry number `retry` after an answer that asked for
    /// `retry_after` (from a 429's `Retry-After`), or `None` if the request
    /// should not be retried (retries used up, or the server asks for a
    /// longer wait than `max_backoff`).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        let backoff = self.backoff(retry);
        match retry_after {
            Some(asked) if asked > self.max_backoff => None,
            Some(asked) => Some(asked.max(backoff)),
            None => Some(backoff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
        };
        let waits: Vec<u128> = (0..5).map(|r| policy.backoff(r).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(700));
    }

    #[test]
    fn retries_stop_when_used_up() {
        let policy = RetryPolicy::default();
        assert!(policy.delay(2, None).is_some());
        assert_eq!(policy.delay(3, None), None);
        assert_eq!(RetryPolicy::none().delay(0, None), None);
    }

    #[test]
    fn retry_after_is_honoured_or_given_up_on() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_millis(10))),
            Some(Duration::from_millis(250))
        );
        assert_eq!(policy.delay(0, Some(Duration::from_secs(30))), None);
    }

    #[test]
    fn only_passing_failures_are_retryable() {
        assert!(RetryPolicy::is_retryable_status(
            StatusCode::SERVICE_UNAVAILABLE
        ));
        assert!(RetryPolicy::is_retryable_status(
            StatusCode::INTERNAL_SERVER_ERROR
        ));
        assert!(RetryPolicy::is_retryable_status(
            StatusCode::TOO_MANY_REQUESTS
        ));
        assert!(!RetryPolicy::is_retryable_status(StatusCode::BAD_REQUEST));
        assert!(!RetryPolicy::is_retryable_status(StatusCode::UNAUTHORIZED));
        assert!(!RetryPolicy::is_retryable_status(StatusCode::OK));
    }
}
