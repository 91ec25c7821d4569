//! Per-user rate limiting with Zulip's headers (SPEC.md §6).
//!
//! A token bucket per user: it holds up to `requests` tokens and refills at
//! `requests / per_secs` a second, so a client may burst to the limit and
//! then goes at the sustained rate. That matches the rule "N requests per S
//! seconds" without a per-request log.

use std::collections::HashMap;

use http::{HeaderName, HeaderValue};
use parking_lot::Mutex;

use crate::config::RateLimit;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: f64,
}

/// The outcome of one check, with what the headers report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// `X-RateLimit-Limit`: the bucket's size.
    pub limit: u32,
    /// `X-RateLimit-Remaining`: whole requests left now.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: Unix time at which the bucket is full again.
    pub reset_at: i64,
    /// Seconds until one request is allowed (0 when allowed).
    pub retry_after: f64,
}

impl Decision {
    /// The three `X-RateLimit-*` headers.
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 3] {
        [
            (
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderValue::from(self.limit),
            ),
            (
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderValue::from(self.remaining),
            ),
            (
                HeaderName::from_static("x-ratelimit-reset"),
                HeaderValue::from(self.reset_at),
            ),
        ]
    }
}

/// The rate limiter of a server: one bucket per user id.
pub struct RateLimiter {
    rule: RateLimit,
    buckets: Mutex<HashMap<i64, Bucket>>,
}

impl RateLimiter {
    /// A limiter enforcing `rule`.
    pub fn new(rule: RateLimit) -> Self {
        RateLimiter {
            rule,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `user_id`'s bucket at time `now` (Unix seconds,
    /// fractional); `None` when limiting is off.
    pub fn check(&self, user_id: i64, now: f64) -> Option<Decision> {
        let RateLimit::PerUser { requests, per_secs } = self.rule else {
            return None;
        };
        let capacity = f64::from(requests);
        let rate = capacity / f64::from(per_secs);
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(user_id).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = (now - bucket.updated).max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = bucket.updated.max(now);
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let retry_after = if allowed {
            0.0
        } else {
            ((1.0 - bucket.tokens) / rate * 1000.0).ceil() / 1000.0
        };
        Some(Decision {
            allowed,
            limit: requests,
            remaining: bucket.tokens.floor() as u32,
            reset_at: (now + (capacity - bucket.tokens) / rate).ceil() as i64,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_to_the_limit_then_refuses_then_refills() {
        let limiter = RateLimiter::new(RateLimit::PerUser {
            requests: 3,
            per_secs: 60,
        });
        let remaining: Vec<u32> = (0..3)
            .map(|_| limiter.check(1, 1000.0).unwrap())
            .map(|d| {
                assert!(d.allowed);
                d.remaining
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.check(1, 1000.0).unwrap();
        assert!(!refused.allowed);
        assert!((refused.retry_after - 20.0).abs() < 0.01, "{refused:?}");
        assert_eq!(refused.reset_at, 1060);
        // Another user has a bucket of its own.
        assert!(limiter.check(2, 1000.0).unwrap().allowed);
        // One token comes back every 20 s.
        assert!(limiter.check(1, 1020.0).unwrap().allowed);
        assert!(!limiter.check(1, 1020.0).unwrap().allowed);
    }

    #[test]
    fn off_means_no_decision() {
        assert!(RateLimiter::new(RateLimit::Off).check(1, 0.0).is_none());
    }
}
