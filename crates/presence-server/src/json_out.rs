//! JSON written by hand, for the answers and log lines that every request
//! makes: the same bytes serde writes, without its general machinery.

/// Appends `s` as a JSON string: as is when nothing in it needs escaping
/// (nearly always), else as serde escapes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("a string always serializes");
    }
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
        for n in [0i64, -1, 42, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_int(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n).unwrap());
        }
    }
}
