//! Bytes read a word (eight of them) at a time: the checks behind the JSON
//! and log lines written by hand, the email index's lower-casing, and the
//! parameters' name keys. Each is marked `#[inline]`: they are a few
//! instructions, called per word from other modules (other codegen units).

/// A byte of one in each place of a word.
const ONES: u64 = 0x0101_0101_0101_0101;
/// Each byte's high bit.
pub const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Up to eight bytes as a little-endian word, the places past them zero.
///
/// Assembled byte by byte below eight: copying a slice of unknown length
/// into a buffer is a call to `memcpy`, dearer than the few shifts, and
/// the shifts fold away for a name known at compile time.
#[inline]
pub fn word_of(bytes: &[u8]) -> u64 {
    if let Ok(eight) = <[u8; 8]>::try_from(bytes) {
        return u64::from_le_bytes(eight);
    }
    bytes
        .iter()
        .take(8)
        .enumerate()
        .fold(0, |word, (i, &b)| word | u64::from(b) << (8 * i))
}

/// Whether `word` holds for every eight bytes of `bytes` (read as one
/// little-endian word) and `byte` for each byte of the tail.
#[inline]
pub fn all_bytes(bytes: &[u8], word: impl Fn(u64) -> bool, byte: impl Fn(u8) -> bool) -> bool {
    let mut words = bytes.chunks_exact(8);
    words.all(|w| word(u64::from_le_bytes(w.try_into().expect("eight bytes"))))
        && words.remainder().iter().all(|&b| byte(b))
}

/// Whether some byte of `v` is below `n` (`n` at most 0x80): the
/// word-wide test, exact for the word as a whole.
#[inline]
pub fn below(v: u64, n: u8) -> bool {
    v.wrapping_sub(ONES * u64::from(n)) & !v & HIGHS != 0
}

/// Whether some byte of `v` is `b`.
#[inline]
pub fn holds(v: u64, b: u8) -> bool {
    below(v ^ (ONES * u64::from(b)), 1)
}

/// The high bit of each byte of `v` that is `b`: exact at the lowest set
/// bit (a byte just above a match may show as one too), so read it with
/// `trailing_zeros` only.
#[inline]
pub fn lowest_match(v: u64, b: u8) -> u64 {
    let x = v ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// A word of ASCII bytes with `A` to `Z` lower-cased, all eight at once:
/// a byte's high bit ends up set where it is at least `A` and not past
/// `Z`, and moved down to 0x20 it is the bit that lower-cases it.
#[inline]
pub fn ascii_lowercase(word: u64) -> u64 {
    // ASCII bytes are below 0x80, so no sum below carries into the next
    // byte.
    let at_least_a = word + ONES * u64::from(0x80 - b'A');
    let past_z = word + ONES * u64::from(0x80 - b'Z' - 1);
    let upper = at_least_a & !past_z & HIGHS;
    word | (upper >> 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_lower_case_as_ascii_does() {
        let all: Vec<u8> = (0u8..0x80).collect();
        for word in all.chunks(8) {
            let word = u64::from_le_bytes(word.try_into().unwrap());
            let expected = u64::from_le_bytes(word.to_le_bytes().map(|b| b.to_ascii_lowercase()));
            assert_eq!(ascii_lowercase(word), expected, "{word:#x}");
        }
    }

    #[test]
    fn a_short_word_is_padded_with_zeros() {
        assert_eq!(word_of(b""), 0);
        assert_eq!(word_of(b"ab"), u64::from_le_bytes(*b"ab\0\0\0\0\0\0"));
        assert_eq!(word_of(b"abcdefgh"), u64::from_le_bytes(*b"abcdefgh"));
    }
}
