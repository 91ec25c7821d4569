//! Request ids: the `X-Request-Id` of every answer and log line.
//!
//! A client (or a proxy in front) may send its own id, which is kept when it
//! is sane: 1 to 64 characters from a set that cannot break a log line or a
//! header. Otherwise the server makes one: a random start plus a counter,
//! so ids are unique within a run and cost no system call.

use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderName, HeaderValue};

/// The header that carries the id both ways (a name made once: a name
/// given as text is parsed at every use).
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-sent id kept.
pub const MAX_LEN: usize = 64;

/// Makes request ids.
#[derive(Debug)]
pub struct RequestIds {
    base: u64,
    next: AtomicU64,
}

impl RequestIds {
    /// A generator with a random start.
    pub fn new() -> Self {
        RequestIds {
            base: rand::random(),
            next: AtomicU64::new(0),
        }
    }

    /// The id of a request: the client's if sane, else a new one.
    pub fn for_request(&self, given: Option<&HeaderValue>) -> HeaderValue {
        match given {
            Some(value) if is_sane(value.as_bytes()) => value.clone(),
            _ => self.generate(),
        }
    }

    /// A new id: 16 lower-case hex digits.
    pub fn generate(&self) -> HeaderValue {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = self.base.wrapping_add(n);
        // Written by hand: this runs for nearly every request, and the
        // formatting machinery costs more than the rest of it.
        let mut text = [0u8; 16];
        for (i, digit) in text.iter_mut().enumerate() {
            *digit = DIGITS[((id >> (60 - 4 * i)) & 0xf) as usize];
        }
        HeaderValue::from_bytes(&text).expect("hex digits are a valid header value")
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

/// Whether a client-sent id may be kept: 1 to 64 of `A-Z a-z 0-9 - _ . :`.
pub fn is_sane(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        let ids = RequestIds::new();
        let given = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(ids.for_request(Some(&given)), given);
        for bad in ["", "has space", "quote\"", &"x".repeat(65)] {
            let value = HeaderValue::from_str(bad).unwrap();
            let id = ids.for_request(Some(&value));
            assert_ne!(id, value, "{bad:?}");
            assert!(is_sane(id.as_bytes()));
        }
    }

    #[test]
    fn generated_ids_differ() {
        let ids = RequestIds::new();
        let a = ids.generate();
        let b = ids.generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn generated_ids_are_the_counter_in_hex() {
        let ids = RequestIds {
            base: 0x0123_4567_89ab_cdee,
            next: AtomicU64::new(0),
        };
        assert_eq!(ids.generate(), "0123456789abcdee");
        assert_eq!(ids.generate(), "0123456789abcdef");
        assert_eq!(ids.generate(), "0123456789abcdf0");
    }
}
