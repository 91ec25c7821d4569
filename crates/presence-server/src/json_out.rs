//! JSON written by hand, for the answers and log lines that every request
//! makes: the same bytes serde writes, without its general machinery; and
//! the checks, eight bytes at a time, of whether text must be escaped.

use crate::words::{HIGHS, all_bytes, below, holds};

/// Appends `s` as a JSON string: as is when nothing in it needs escaping
/// (nearly always), else as serde escapes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        serde_json::to_writer(&mut *out, s).expect("a string always serializes");
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether any byte must be escaped in a JSON string: a control character,
/// a quote or a backslash.
fn needs_escape(bytes: &[u8]) -> bool {
    !all_bytes(
        bytes,
        |v| !(below(v, 0x20) || holds(v, b'"') || holds(v, b'\\')),
        |b| b >= 0x20 && b != b'"' && b != b'\\',
    )
}

/// Whether every byte is printable ASCII (0x20 to 0x7e): what a text log
/// line writes as it is.
pub fn is_printable_ascii(bytes: &[u8]) -> bool {
    all_bytes(
        bytes,
        |v| !(below(v, 0x20) || v & HIGHS != 0 || holds(v, 0x7f)),
        |b| b.wrapping_sub(0x20) < 0x5f,
    )
}

/// Appends an integer as JSON (and text lines) write it.
pub fn write_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_integers_are_what_serde_writes() {
        for s in [
            "plain",
            "",
            "say \"hi\" \\o/",
            "tab\there",
            "caf\u{e9} \u{2028}",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        // Each byte that needs escaping, at each place of a word and of
        // the tail, among bytes that do not (some of them not ASCII).
        for special in ["\"", "\\", "\u{0}", "\u{1f}", "\n"] {
            for at in 0..20 {
                let mut text: String = "a\u{7f}\u{e9}z~ !".chars().cycle().take(20).collect();
                let cut = text.char_indices().nth(at % 14).map_or(0, |(i, _)| i);
                text.insert_str(cut, special);
                let mut out = Vec::new();
                write_str(&mut out, &text);
                assert_eq!(out, serde_json::to_vec(&text).unwrap(), "{text:?}");
            }
        }
        for text in ["/api/v1/users/a@b.c/presence", "0123456789abcdef", "", " ~"] {
            assert!(is_printable_ascii(text.as_bytes()), "{text:?}");
        }
        for odd in ["\u{7f}", "\u{1f}", "\u{e9}", "\t"] {
            for at in [0, 5, 8, 13] {
                let mut text = "abcdefghijklmn".to_owned();
                text.insert_str(at, odd);
                assert!(!is_printable_ascii(text.as_bytes()), "{text:?}");
            }
        }
        for n in [0i64, -1, 42, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_int(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n).unwrap());
        }
    }
}
