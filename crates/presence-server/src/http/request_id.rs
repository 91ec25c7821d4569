//! Request ids: the `X-Request-Id` of every answer and log line.
//!
//! A client (or a proxy in front) may send its own id, which is kept when it
//! is sane: 1 to 64 characters from a set that cannot break a log line or a
//! header. Otherwise the server makes one: a random start plus a counter,
//! so ids are unique within a run and cost no system call.
//!
//! An id is kept inline ([`RequestId`]): the answer's header is made from
//! it once, and the log lines read it where it is, so that no request
//! shares or copies its id's bytes on the heap more than that once.

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
    pub fn for_request(&self, given: Option<&HeaderValue>) -> RequestId {
        match given {
            Some(value) if is_sane(value.as_bytes()) => RequestId::copied(value.as_bytes()),
            _ => self.generate(),
        }
    }

    /// A new id: 16 lower-case hex digits.
    pub fn generate(&self) -> RequestId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = self.base.wrapping_add(n);
        // Written by hand: this runs for nearly every request, and the
        // formatting machinery costs more than the rest of it.
        let mut made = RequestId {
            len: 16,
            text: [0; MAX_LEN],
        };
        made.text[..8].copy_from_slice(&hex8((id >> 32) as u32));
        made.text[8..16].copy_from_slice(&hex8(id as u32));
        made
    }
}

/// `n` as eight lower-case hex digits, the most significant first: each
/// nibble spread into a byte of its own, then all eight made digits at
/// once.
fn hex8(n: u32) -> [u8; 8] {
    const BYTES: u64 = 0x0101_0101_0101_0101;
    let mut x = u64::from(n);
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // A byte of 10 or more carries into its bit 4 when 6 is added.
    let letters = ((x + 6 * BYTES) >> 4) & BYTES;
    let digits = x + u64::from(b'0') * BYTES + letters * u64::from(b'a' - b'0' - 10);
    digits.to_be_bytes()
}

/// A request's id, held inline: always sane (see [`is_sane`]).
#[derive(Clone, Copy)]
pub struct RequestId {
    len: u8,
    text: [u8; MAX_LEN],
}

impl RequestId {
    /// `id`, which [`is_sane`] accepted.
    fn copied(id: &[u8]) -> Self {
        let mut copy = RequestId {
            len: u8::try_from(id.len()).expect("sane ids are at most MAX_LEN bytes"),
            text: [0; MAX_LEN],
        };
        copy.text[..id.len()].copy_from_slice(id);
        copy
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text[..usize::from(self.len)]).expect("sane ids are ASCII")
    }

    /// The id as the answer's header value.
    pub fn header(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.text[..usize::from(self.len)])
            .expect("sane ids are valid header values")
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
        assert_eq!(ids.for_request(Some(&given)).header(), given);
        let longest = "y".repeat(MAX_LEN);
        let value = HeaderValue::from_str(&longest).unwrap();
        assert_eq!(ids.for_request(Some(&value)).as_str(), longest);
        for bad in ["", "has space", "quote\"", &"x".repeat(65)] {
            let value = HeaderValue::from_str(bad).unwrap();
            let id = ids.for_request(Some(&value));
            assert_ne!(id.header(), value, "{bad:?}");
            assert!(is_sane(id.as_str().as_bytes()));
        }
    }

    #[test]
    fn eight_hex_digits_are_what_format_writes() {
        for n in [
            0,
            9,
            10,
            15,
            0x1234_5678,
            0x9abc_def0,
            0xa0b0_c0d0,
            u32::MAX,
        ] {
            assert_eq!(hex8(n), *format!("{n:08x}").as_bytes(), "{n:#x}");
        }
        for n in (0..u32::MAX).step_by(65_521) {
            assert_eq!(hex8(n), *format!("{n:08x}").as_bytes(), "{n:#x}");
        }
    }

    #[test]
    fn generated_ids_differ() {
        let ids = RequestIds::new();
        let a = ids.generate();
        let b = ids.generate();
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(a.as_str().len(), 16);
    }

    #[test]
    fn generated_ids_are_the_counter_in_hex() {
        let ids = RequestIds {
            base: 0x0123_4567_89ab_cdee,
            next: AtomicU64::new(0),
        };
        assert_eq!(ids.generate().as_str(), "0123456789abcdee");
        assert_eq!(ids.generate().header(), "0123456789abcdef");
        assert_eq!(ids.generate().as_str(), "0123456789abcdf0");
    }
}
