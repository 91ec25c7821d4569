//! Rate limiting with Zulip's headers (docs/PROTOCOL.md §1.7): per user for
//! authenticated requests, per IP address for everything else.
//!
//! A token bucket per key: it holds up to `requests` tokens and refills at
//! `requests / per_secs` a second, so a client may burst to the limit and
//! then goes at the sustained rate. That matches the rule "N requests per S
//! seconds" without a per-request log.
//!
//! Memory is bounded: a bucket that has refilled completely is the same as
//! no bucket, so such buckets are swept out whenever the map has doubled
//! since the last sweep; and the map never holds more than a fixed number of
//! keys. A key that finds the map full (only a flood from very many
//! addresses at once can do that) is refused until buckets drain.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

use http::{HeaderName, HeaderValue};
use parking_lot::Mutex;

use crate::config::RateLimit;

/// The most keys a limiter tracks at once (a bucket is a few dozen bytes,
/// so this bounds a limiter to a few megabytes).
pub const MAX_TRACKED_KEYS: usize = 100_000;

/// A sweep runs when the map has grown to twice its size after the last
/// one, and never below this size.
const MIN_SWEEP_AT: usize = 1024;

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

/// A rate limiter: one token bucket per key (a user id, or an address).
pub struct RateLimiter<K> {
    rule: RateLimit,
    max_keys: usize,
    state: Mutex<Buckets<K>>,
}

struct Buckets<K> {
    map: HashMap<K, Bucket>,
    sweep_at: usize,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// A limiter enforcing `rule`, tracking at most [`MAX_TRACKED_KEYS`] keys.
    pub fn new(rule: RateLimit) -> Self {
        Self::with_capacity(rule, MAX_TRACKED_KEYS)
    }

    /// A limiter enforcing `rule` that tracks at most `max_keys` keys.
    pub fn with_capacity(rule: RateLimit, max_keys: usize) -> Self {
        RateLimiter {
            rule,
            max_keys,
            state: Mutex::new(Buckets {
                map: HashMap::new(),
                sweep_at: MIN_SWEEP_AT.min(max_keys),
            }),
        }
    }

    /// Whether this limiter limits anything.
    pub fn is_on(&self) -> bool {
        self.rule != RateLimit::Off
    }

    /// How many keys have a bucket now.
    pub fn tracked(&self) -> usize {
        self.state.lock().map.len()
    }

    /// Whether `key` has no whole token left at time `now`, without taking one.
    pub fn is_exhausted(&self, key: K, now: f64) -> bool {
        let RateLimit::PerUser { requests, per_secs } = self.rule else {
            return false;
        };
        let (capacity, rate) = rule_rates(requests, per_secs);
        let state = self.state.lock();
        match state.map.get(&key) {
            Some(bucket) => bucket.level(capacity, rate, now) < 1.0,
            None => state.map.len() >= self.max_keys,
        }
    }

    /// Takes one token from `key`'s bucket at time `now` (Unix seconds,
    /// fractional); `None` when limiting is off.
    pub fn check(&self, key: K, now: f64) -> Option<Decision> {
        let RateLimit::PerUser { requests, per_secs } = self.rule else {
            return None;
        };
        let (capacity, rate) = rule_rates(requests, per_secs);
        let mut state = self.state.lock();
        if !state.map.contains_key(&key) && state.map.len() >= state.sweep_at {
            state.sweep(capacity, rate, now, self.max_keys);
        }
        if !state.map.contains_key(&key) && state.map.len() >= self.max_keys {
            // Full of keys that are all still draining: refuse newcomers
            // rather than grow, for as long as one token takes to come back.
            let retry_after = 1.0 / rate;
            return Some(Decision {
                allowed: false,
                limit: requests,
                remaining: 0,
                reset_at: (now + retry_after).ceil() as i64,
                retry_after,
            });
        }
        let bucket = state.map.entry(key).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        bucket.tokens = bucket.level(capacity, rate, now);
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

impl<K: Hash + Eq + Copy> Buckets<K> {
    /// Drops every bucket that is full again at `now`: forgetting it
    /// changes no answer, since a missing bucket starts full.
    fn sweep(&mut self, capacity: f64, rate: f64, now: f64, max_keys: usize) {
        self.map
            .retain(|_, bucket| bucket.level(capacity, rate, now) < capacity);
        self.sweep_at = (self.map.len() * 2).clamp(MIN_SWEEP_AT.min(max_keys), max_keys);
    }
}

impl Bucket {
    /// The tokens the bucket holds at `now`.
    fn level(&self, capacity: f64, rate: f64, now: f64) -> f64 {
        let elapsed = (now - self.updated).max(0.0);
        (self.tokens + elapsed * rate).min(capacity)
    }
}

/// A rule's bucket size and refill rate per second.
fn rule_rates(requests: u32, per_secs: u32) -> (f64, f64) {
    let capacity = f64::from(requests);
    (capacity, capacity / f64::from(per_secs))
}

/// The key of an address for per-address limits: an IPv4 address (also when
/// it comes IPv4-mapped), or an IPv6 address's /64 network, since one
/// machine commonly holds a whole /64.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
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
        let limiter = RateLimiter::new(RateLimit::Off);
        assert!(limiter.check(1, 0.0).is_none());
        assert!(!limiter.is_exhausted(1, 0.0));
        assert!(!limiter.is_on());
    }

    #[test]
    fn exhaustion_is_seen_without_taking_a_token() {
        let limiter = RateLimiter::new(RateLimit::PerUser {
            requests: 2,
            per_secs: 60,
        });
        assert!(!limiter.is_exhausted(7, 0.0));
        limiter.check(7, 0.0);
        assert!(!limiter.is_exhausted(7, 0.0));
        limiter.check(7, 0.0);
        assert!(limiter.is_exhausted(7, 0.0));
        assert!(limiter.is_exhausted(7, 0.0), "peeking takes nothing");
        assert!(!limiter.is_exhausted(7, 30.0));
    }

    #[test]
    fn refilled_buckets_are_swept_so_memory_stays_bounded() {
        let limiter = RateLimiter::new(RateLimit::PerUser {
            requests: 10,
            per_secs: 10,
        });
        // A flood of one request from each of many keys...
        for key in 0..50_000u32 {
            limiter.check(key, 1000.0).unwrap();
        }
        let during = limiter.tracked();
        assert!(during <= 50_000);
        // ...is forgotten once those buckets are full again: later keys
        // trigger a sweep instead of adding to the flood's entries.
        for key in 100_000..120_000u32 {
            limiter.check(key, 2000.0).unwrap();
        }
        assert!(
            limiter.tracked() <= 20_000,
            "{} buckets kept after a sweep (had {during})",
            limiter.tracked()
        );
    }

    #[test]
    fn a_full_map_refuses_newcomers_instead_of_growing() {
        let limiter = RateLimiter::with_capacity(
            RateLimit::PerUser {
                requests: 5,
                per_secs: 60,
            },
            100,
        );
        for key in 0..100u32 {
            assert!(limiter.check(key, 0.0).unwrap().allowed);
        }
        let refused = limiter.check(1000, 0.0).unwrap();
        assert!(!refused.allowed);
        assert!(refused.retry_after > 0.0);
        assert_eq!(limiter.tracked(), 100);
        // Known keys keep their own buckets.
        assert!(limiter.check(5, 0.0).unwrap().allowed);
        // Once the old buckets are full again, they make room.
        assert!(limiter.check(1000, 60.0).unwrap().allowed);
        assert!(limiter.tracked() <= 100);
    }

    #[test]
    fn addresses_are_keyed_by_ipv4_or_ipv6_network() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        let other: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ip_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
