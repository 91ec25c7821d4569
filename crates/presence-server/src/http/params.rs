//! Request parameters with Zulip's strict rules (docs/PROTOCOL.md §1.3).
//!
//! Parameters come from the query string and, for POST/PATCH/DELETE, from an
//! `application/x-www-form-urlencoded` body; the body wins. Non-string values
//! are JSON inside the field (`ping_only=true`, `last_update_id=-1`), parsed
//! strictly: a boolean is only `true` or `false`, an integer only a JSON
//! integer. Every parameter a handler reads is marked used; the rest are
//! reported back in `ignored_parameters_unsupported`.
//!
//! Handlers read the wire types' parameter structs through [`FromParams`]
//! (implemented in [`endpoints`]), never a parameter by name.

mod endpoints;

use std::sync::atomic::{AtomicBool, Ordering};

use super::error::{ApiError, Expected};
use crate::words;

/// A parameter struct read from a request's [`Params`] by the rules of
/// this module.
///
/// An implementation reads its fields in a fixed order, so that the first
/// parameter that is missing or does not parse is the one refused; every
/// parameter it reads counts as used, whether it keeps the value or only
/// checks it.
pub trait FromParams: Sized {
    /// Reads `Self` from `params`, or the refusal of the first parameter
    /// that is missing or does not parse.
    fn from_params(params: &Params) -> Result<Self, ApiError>;
}

/// The parameters of one request.
///
/// Names and values are kept where they are in the request's text (the
/// query string and the body) unless they had escapes to decode: a
/// request's parameters cost one allocation or two, not two for each.
/// Up to [`FEW`] entries are kept as sent, and a name is found by looking
/// at each from the last (the later of equal names wins); beyond that they
/// are sorted by name, one entry per name, and found by halves.
#[derive(Debug, Default)]
pub struct Params {
    query: Box<str>,
    /// The body, if it is UTF-8 (else every value is decoded on its own).
    body: Box<str>,
    entries: Vec<Entry>,
}

/// One parameter.
#[derive(Debug)]
struct Entry {
    name: Text,
    /// The name's [`NameKey`], for finding it without reading the text.
    key: NameKey,
    value: Text,
    /// Whether a handler read it. Atomic rather than a cell: handlers hold
    /// `&Params` across awaits on a multi-threaded runtime.
    used: AtomicBool,
}

/// A parameter's name or value.
#[derive(Debug)]
enum Text {
    /// As it stands in the query string or the body: it had nothing to
    /// decode.
    Span {
        in_body: bool,
        start: usize,
        end: usize,
    },
    /// Decoded from escapes.
    Decoded(Box<str>),
}

/// The most entries a request's parameters keep as sent; more are sorted
/// and found by halves.
const FEW: usize = 8;

/// A name's length and first eight bytes: names whose keys differ differ,
/// and a name of eight bytes or fewer is equal to another exactly when
/// their keys are (nearly every parameter name is short, or differs from
/// the others in its first eight bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NameKey {
    len: usize,
    head: u64,
}

impl NameKey {
    /// The key of `name`.
    #[inline]
    fn of(name: &[u8]) -> Self {
        NameKey {
            len: name.len(),
            head: words::word_of(&name[..name.len().min(8)]),
        }
    }

    /// Whether the key alone says the names are equal.
    fn is_whole(self) -> bool {
        self.len <= 8
    }
}

impl Params {
    /// Parses a query string and an optional form body (body values win).
    ///
    /// Fails on text that is not UTF-8 once percent-decoded, naming where.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Params, ApiError> {
        let query = query.unwrap_or("");
        if query.is_empty() && body.is_empty() {
            // Most reads send nothing at all: nothing to split or sort.
            return Ok(Params::default());
        }
        let query: Box<str> = query.into();
        let mut entries = Vec::new();
        split_pairs(query.as_bytes(), Place::Query, &mut entries)?;
        // A body that is not UTF-8 as a whole may still decode to UTF-8
        // value by value (an escape and a raw byte making one character):
        // then every value is decoded on its own, and none points into it.
        let body: Box<str> = match std::str::from_utf8(body) {
            Ok(text) => {
                split_pairs(text.as_bytes(), Place::Body, &mut entries)?;
                text.into()
            }
            Err(_) => {
                split_pairs(body, Place::Elsewhere, &mut entries)?;
                "".into()
            }
        };
        if entries.len() > FEW {
            // Among equal names the later pair wins: reversed, then sorted
            // stably, the winner comes first among its equals, and
            // `dedup_by` keeps the first of each run (in place, with no
            // second list).
            entries.reverse();
            entries.sort_by(|a, b| {
                resolve(&query, &body, &a.name).cmp(resolve(&query, &body, &b.name))
            });
            entries.dedup_by(|later, first| {
                resolve(&query, &body, &later.name) == resolve(&query, &body, &first.name)
            });
        }
        Ok(Params {
            query,
            body,
            entries,
        })
    }

    fn text<'a>(&'a self, text: &'a Text) -> &'a str {
        resolve(&self.query, &self.body, text)
    }

    /// The position of the entry named `name`: among the few a request
    /// nearly always has, by looking at each from the last, comparing
    /// their [`NameKey`]s (and the text only where the key cannot tell);
    /// by halves beyond.
    ///
    /// Inlined, so that the key of a name known at compile time is too.
    #[inline]
    fn find(&self, name: &str) -> Option<usize> {
        self.find_keyed(NameKey::of(name.as_bytes()), name)
    }

    /// [`Params::find`] with the name's key made.
    fn find_keyed(&self, key: NameKey, name: &str) -> Option<usize> {
        if self.entries.len() <= FEW {
            return self.entries.iter().rposition(|entry| {
                entry.key == key && (key.is_whole() || self.text(&entry.name) == name)
            });
        }
        self.entries
            .binary_search_by(|entry| self.text(&entry.name).cmp(name))
            .ok()
    }

    /// Reads a parameter struct (see [`FromParams`]).
    pub fn read<T: FromParams>(&self) -> Result<T, ApiError> {
        T::from_params(self)
    }

    /// A string parameter, as sent.
    #[inline]
    pub fn str(&self, name: &str) -> Option<&str> {
        let at = self.find(name)?;
        let entry = &self.entries[at];
        entry.used.store(true, Ordering::Relaxed);
        Some(self.text(&entry.value))
    }

    /// A required string parameter.
    #[inline]
    pub fn required_str(&self, name: &str) -> Result<&str, ApiError> {
        self.str(name).ok_or_else(|| ApiError::missing(name))
    }

    /// A parameter's JSON value, parsed with serde.
    fn json(&self, name: &str) -> Result<Option<serde_json::Value>, ApiError> {
        let Some(raw) = self.str(name) else {
            return Ok(None);
        };
        serde_json::from_str(raw)
            .map(Some)
            .map_err(|_| ApiError::not_json(name))
    }

    /// A JSON boolean parameter.
    #[inline]
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        // What nearly every request sends, read without a parser.
        match self.str(name) {
            None => return Ok(None),
            Some("true") => return Ok(Some(true)),
            Some("false") => return Ok(Some(false)),
            Some(_) => {}
        }
        match self.json(name)? {
            Some(serde_json::Value::Bool(b)) => Ok(Some(b)),
            _ => Err(ApiError::not_a(name, Expected::Boolean)),
        }
    }

    /// A JSON integer parameter (64-bit).
    #[inline]
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let Some(raw) = self.str(name) else {
            return Ok(None);
        };
        if let Some(n) = plain_integer(raw) {
            return Ok(Some(n));
        }
        match self.json(name)? {
            Some(serde_json::Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            _ => Err(ApiError::not_a(name, Expected::Integer)),
        }
    }

    /// Every parameter's name, sorted, each once.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self
            .entries
            .iter()
            .map(|entry| self.text(&entry.name))
            .collect();
        if self.entries.len() <= FEW {
            names.sort_unstable();
            names.dedup();
        }
        names.into_iter()
    }

    /// A JSON list of strings; JSON `null` counts as absent, as the
    /// official Python client sends `null` for a list it was not given.
    pub fn str_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.json(name)? {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    serde_json::Value::String(s) => Ok(s),
                    _ => Err(ApiError::item_not_a_string(name, i)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::not_a(name, Expected::List)),
        }
    }

    /// A JSON list of anything (or `null`), checked and otherwise unused.
    pub fn any_list(&self, name: &str) -> Result<(), ApiError> {
        match self.json(name)? {
            None | Some(serde_json::Value::Null | serde_json::Value::Array(_)) => Ok(()),
            Some(_) => Err(ApiError::not_a(name, Expected::List)),
        }
    }

    /// A JSON object (or `null`, counted as absent).
    pub fn object(
        &self,
        name: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ApiError> {
        match self.json(name)? {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(ApiError::not_a(name, Expected::Dict)),
        }
    }

    /// The parameters no handler read, sorted; `None` when there are none.
    /// `client` is never among them: every endpoint accepts it, as Zulip's
    /// do, though only some read it.
    pub fn ignored(&self) -> Option<Vec<String>> {
        let unread = |entry: &&Entry| {
            !entry.used.load(Ordering::Relaxed) && self.text(&entry.name) != "client"
        };
        // Nearly every request reads all it sends: nothing to gather.
        if !self.entries.iter().any(|entry| unread(&entry)) {
            return None;
        }
        let mut ignored: Vec<&str> = self
            .entries
            .iter()
            .filter(unread)
            .map(|entry| self.text(&entry.name))
            .collect();
        if self.entries.len() <= FEW {
            // Kept as sent: a name sent twice was read at its later entry,
            // and its earlier one was not ignored.
            let read: Vec<&str> = self
                .entries
                .iter()
                .filter(|entry| !unread(entry))
                .map(|entry| self.text(&entry.name))
                .collect();
            ignored.retain(|name| !read.contains(name));
            ignored.sort_unstable();
            ignored.dedup();
        }
        (!ignored.is_empty()).then(|| ignored.into_iter().map(str::to_owned).collect())
    }
}

/// An integer written the one way JSON allows (`0` or `-?[1-9][0-9]*`; the
/// JSON parser reads `-0` as a float) that fits in 64 bits; `None` for
/// anything else, which the JSON parser then judges.
fn plain_integer(raw: &str) -> Option<i64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let well_formed = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !digits.starts_with('0'));
    if well_formed { raw.parse().ok() } else { None }
}

/// The text of `text`, found in `query` or `body`.
fn resolve<'a>(query: &'a str, body: &'a str, text: &'a Text) -> &'a str {
    match *text {
        Text::Span {
            in_body,
            start,
            end,
        } => &(if in_body { body } else { query })[start..end],
        Text::Decoded(ref text) => text,
    }
}

/// Where a form's text is, for the entries made from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The query string, which entries may point into.
    Query,
    /// The body, which entries may point into.
    Body,
    /// A body that is not kept: every entry is decoded.
    Elsewhere,
}

/// What a byte is to the split of a form, looked up in one load: nearly
/// every byte is [`PLAIN`].
const PLAIN: u8 = 0;
/// `&`, the end of a pair.
const PAIR_END: u8 = 1;
/// `=`, the end of a name (the first one in a pair).
const EQUALS: u8 = 2;
/// `%` or `+`, something to decode.
const ESCAPE: u8 = 3;

/// Each byte's meaning to [`split_pairs`].
static FORM_BYTES: [u8; 256] = {
    let mut table = [PLAIN; 256];
    table[b'&' as usize] = PAIR_END;
    table[b'=' as usize] = EQUALS;
    table[b'%' as usize] = ESCAPE;
    table[b'+' as usize] = ESCAPE;
    table
};

/// Splits `a=1&b=x+y` pairs of `raw` (found at `place`) into entries, in
/// order: one pass over the bytes, which finds each pair's end, its `=`,
/// and whether its name or value has anything to decode.
fn split_pairs(raw: &[u8], place: Place, out: &mut Vec<Entry>) -> Result<(), ApiError> {
    let what = if place == Place::Query {
        "query string"
    } else {
        "request body"
    };
    let text = |start: usize, end: usize, escaped: bool| {
        component(&raw[start..end], place, start, escaped)
            .ok_or_else(|| ApiError::form_not_utf8(what))
    };
    let mut start = 0;
    while start < raw.len() {
        let mut end = start;
        let mut equals = None;
        let (mut name_escaped, mut value_escaped) = (false, false);
        loop {
            end = next_special(raw, end);
            let Some(&byte) = raw.get(end) else {
                break;
            };
            match FORM_BYTES[usize::from(byte)] {
                PAIR_END => break,
                EQUALS if equals.is_none() => equals = Some(end),
                EQUALS => {}
                _ if equals.is_none() => name_escaped = true,
                _ => value_escaped = true,
            }
            end += 1;
        }
        if end > start {
            let (name_end, value_start) = equals.map_or((end, end), |i| (i, i + 1));
            let name = text(start, name_end, name_escaped)?;
            let key = NameKey::of(match &name {
                Text::Span { .. } => &raw[start..name_end],
                Text::Decoded(decoded) => decoded.as_bytes(),
            });
            out.push(Entry {
                name,
                key,
                value: text(value_start, end, value_escaped)?,
                used: AtomicBool::new(false),
            });
        }
        start = end + 1;
    }
    Ok(())
}

/// The position of the first byte at or after `from` that is not
/// [`PLAIN`] (`raw.len()` if none): eight bytes at a time, then one by one.
fn next_special(raw: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(eight) = raw.get(at..at + 8) {
        let word = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
        let found = words::lowest_match(word, b'&')
            | words::lowest_match(word, b'=')
            | words::lowest_match(word, b'%')
            | words::lowest_match(word, b'+');
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < raw.len() && FORM_BYTES[usize::from(raw[at])] == PLAIN {
        at += 1;
    }
    at
}

/// A name or value as it stands at `start` of `place`, or decoded if it has
/// escapes (or its place is not kept); `None` if it is not UTF-8.
fn component(raw: &[u8], place: Place, start: usize, escaped: bool) -> Option<Text> {
    if place == Place::Elsewhere || escaped {
        return decode_form_component(raw).map(|text| Text::Decoded(text.into_boxed_str()));
    }
    // The query string and a kept body are UTF-8 already, and are split
    // only at ASCII bytes: every stretch of them is UTF-8 too.
    Some(Text::Span {
        in_body: place == Place::Body,
        start,
        end: start + raw.len(),
    })
}

/// Decodes a form field's name or value: `+` is a space, `%XX` a byte.
/// `None` if the result is not UTF-8.
pub fn decode_form_component(raw: &[u8]) -> Option<String> {
    percent_decode(raw, true)
}

/// Encodes a form field's name or value so that [`decode_form_component`]
/// gives it back: unreserved characters stay, a space is `+`, every other
/// byte is `%XX`.
pub fn encode_form_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Encodes name-value pairs as a form body (`a=1&b=x+y`).
pub fn encode_form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                encode_form_component(name),
                encode_form_component(value)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes a URL path segment: `%XX` is a byte and `+` stays a plus, so
/// `a+b@example.com` in a path is that address.
pub fn decode_path_segment(raw: &[u8]) -> Option<String> {
    percent_decode(raw, false)
}

/// Decodes `%XX` escapes (and `+` as a space in forms); `None` if the result
/// is not UTF-8. A `%` not followed by two hex digits stands for itself, as
/// browsers send it.
fn percent_decode(raw: &[u8], plus_is_space: bool) -> Option<String> {
    if !raw
        .iter()
        .any(|&b| b == b'%' || (plus_is_space && b == b'+'))
    {
        // Nothing to decode (an email in a path, nearly always).
        return std::str::from_utf8(raw).ok().map(str::to_owned);
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' if plus_is_space => bytes.push(b' '),
            b'%' if i + 2 < raw.len() && hex(raw[i + 1]).is_some() && hex(raw[i + 2]).is_some() => {
                bytes.push(hex(raw[i + 1])? * 16 + hex(raw[i + 2])?);
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    String::from_utf8(bytes).ok()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(e: ApiError) -> String {
        e.body.msg
    }

    #[test]
    fn body_wins_over_query() {
        let p = Params::parse(Some("status=idle&a=1"), b"status=active").unwrap();
        assert_eq!(p.str("status"), Some("active"));
        assert_eq!(p.ignored(), Some(vec!["a".to_owned()]));
    }

    #[test]
    fn booleans_are_strict_json() {
        let p = Params::parse(None, b"a=true&b=yes&c=1&d=%22true%22").unwrap();
        assert_eq!(p.bool("a").unwrap(), Some(true));
        assert_eq!(msg(p.bool("b").unwrap_err()), "b is not valid JSON");
        assert_eq!(msg(p.bool("c").unwrap_err()), "c is not a boolean");
        assert_eq!(msg(p.bool("d").unwrap_err()), "d is not a boolean");
        assert_eq!(p.bool("missing").unwrap(), None);
    }

    #[test]
    fn integers_are_strict_json() {
        let p = Params::parse(None, b"a=-1&b=1.5&c=%225%22&d=abc&e=99999999999999999999").unwrap();
        assert_eq!(p.int("a").unwrap(), Some(-1));
        assert_eq!(msg(p.int("b").unwrap_err()), "b is not an integer");
        assert_eq!(msg(p.int("c").unwrap_err()), "c is not an integer");
        assert_eq!(msg(p.int("d").unwrap_err()), "d is not valid JSON");
        assert_eq!(msg(p.int("e").unwrap_err()), "e is not an integer");
    }

    #[test]
    fn lists_and_objects_are_strict_json() {
        let p = Params::parse(
            None,
            b"a=%5B%22x%22%5D&b=null&c=%5B1%5D&d=%7B%7D&e=%22s%22&f=%5B%5B%5D%5D",
        )
        .unwrap();
        assert_eq!(p.str_list("a").unwrap(), Some(vec!["x".to_owned()]));
        assert_eq!(p.str_list("b").unwrap(), None);
        assert_eq!(msg(p.str_list("c").unwrap_err()), "c[0] is not a string");
        assert_eq!(msg(p.str_list("d").unwrap_err()), "d is not a list");
        assert!(p.object("d").unwrap().unwrap().is_empty());
        assert_eq!(msg(p.object("e").unwrap_err()), "e is not a dict");
        assert!(p.any_list("f").is_ok());
        assert_eq!(msg(p.any_list("d").unwrap_err()), "d is not a list");
    }

    #[test]
    fn bad_utf8_is_refused() {
        assert!(Params::parse(None, &[0x61, 0x3d, 0xff]).is_err());
        assert!(Params::parse(Some("a=%FF"), b"").is_err());
    }

    #[test]
    fn plus_is_a_space_in_forms_only() {
        assert_eq!(decode_form_component(b"a+b%2B").as_deref(), Some("a b+"));
        assert_eq!(decode_path_segment(b"a+b%40c").as_deref(), Some("a+b@c"));
    }

    proptest::proptest! {
        #[test]
        fn forms_decode_what_was_encoded(
            pairs in proptest::collection::btree_map(".{0,12}", ".{0,24}", 0..8)
        ) {
            let body = encode_form(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let params = Params::parse(None, body.as_bytes()).unwrap();
            let names: Vec<&str> = params.names().collect();
            let expected: Vec<&str> = pairs.keys().map(String::as_str).collect();
            proptest::prop_assert_eq!(names, expected);
            for (name, value) in &pairs {
                proptest::prop_assert_eq!(params.str(name), Some(value.as_str()));
            }
        }

        #[test]
        fn the_body_wins_over_the_query(name in "[a-z_]{1,10}", q in ".{0,10}", b in ".{0,10}") {
            let query = encode_form([(name.as_str(), q.as_str())]);
            let body = encode_form([(name.as_str(), b.as_str())]);
            let params = Params::parse(Some(&query), body.as_bytes()).unwrap();
            proptest::prop_assert_eq!(params.str(&name), Some(b.as_str()));
        }

        #[test]
        fn json_integers_and_booleans_round_trip(n: i64, flag: bool) {
            let (n_text, flag_text) = (n.to_string(), flag.to_string());
            let body = encode_form([("n", n_text.as_str()), ("f", flag_text.as_str())]);
            let params = Params::parse(None, body.as_bytes()).unwrap();
            proptest::prop_assert_eq!(params.int("n").unwrap(), Some(n));
            proptest::prop_assert_eq!(params.bool("f").unwrap(), Some(flag));
            // Each is refused as the other type, never taken for it.
            proptest::prop_assert!(params.bool("n").is_err());
            proptest::prop_assert!(params.int("f").is_err());
        }

        #[test]
        fn json_values_never_panic_and_only_integers_pass(value in ".{0,40}") {
            let body = encode_form([("v", value.as_str())]);
            let params = Params::parse(None, body.as_bytes()).unwrap();
            if let Ok(Some(n)) = params.int("v") {
                let parsed: serde_json::Value = serde_json::from_str(&value).unwrap();
                proptest::prop_assert_eq!(parsed.as_i64(), Some(n));
            }
            if let Ok(Some(b)) = params.bool("v") {
                proptest::prop_assert_eq!(value.trim(), b.to_string());
            }
        }
    }

    #[test]
    fn plain_integers_are_read_as_the_json_parser_reads_them() {
        for raw in [
            "0",
            "-0",
            "7",
            "-7",
            "01",
            "-01",
            "00",
            "-",
            "",
            "+1",
            "1e3",
            " 1",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
        ] {
            let json = serde_json::from_str::<serde_json::Value>(raw).ok();
            let by_parser = json.as_ref().and_then(serde_json::Value::as_i64);
            if let Some(n) = plain_integer(raw) {
                assert_eq!(Some(n), by_parser, "{raw:?}");
            }
            let params = Params::parse(None, encode_form([("v", raw)]).as_bytes()).unwrap();
            assert_eq!(params.int("v").ok().flatten(), by_parser, "{raw:?}");
        }
    }

    #[test]
    fn names_sharing_their_first_eight_bytes_are_told_apart() {
        let params =
            Params::parse(None, b"presence_a=1&presence_b=2&presence=3&pres%65nce_c=4").unwrap();
        assert_eq!(params.str("presence_a"), Some("1"));
        assert_eq!(params.str("presence_b"), Some("2"));
        assert_eq!(params.str("presence"), Some("3"));
        assert_eq!(params.str("presence_c"), Some("4"));
        assert_eq!(params.str("presence_d"), None);
        assert_eq!(params.str("presenc"), None);
        assert_eq!(params.str("presence\0"), None);
    }

    #[test]
    fn a_name_given_twice_keeps_its_last_value_and_is_listed_once() {
        let p = Params::parse(Some("b=1&a=2&b=3"), b"c=4&b=5&c=6").unwrap();
        assert_eq!(p.names().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!((p.str("b"), p.str("c")), (Some("5"), Some("6")));
        assert_eq!(p.ignored(), Some(vec!["a".to_owned()]));
    }

    #[test]
    fn the_next_special_byte_is_found_as_a_byte_by_byte_look_finds_it() {
        const ALPHABET: &[u8] = b"a&=%+";
        let naive = |raw: &[u8], from: usize| {
            (from..raw.len())
                .find(|&i| FORM_BYTES[usize::from(raw[i])] != PLAIN)
                .unwrap_or(raw.len())
        };
        // Every text of up to six letters, each behind a run of plain bytes
        // long enough to start it at every place of a word.
        for len in 0..=6u32 {
            for n in 0..ALPHABET.len().pow(len) {
                let tail = (0..len).map(|i| ALPHABET[n / ALPHABET.len().pow(i) % ALPHABET.len()]);
                for lead in 0..9 {
                    let raw: Vec<u8> = std::iter::repeat_n(b'x', lead)
                        .chain(tail.clone())
                        .collect();
                    for from in 0..=raw.len() {
                        assert_eq!(
                            next_special(&raw, from),
                            naive(&raw, from),
                            "{raw:?} {from}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_unread_name_given_twice_is_ignored_once() {
        let p = Params::parse(Some("x=1&y=2"), b"x=3&z=4").unwrap();
        assert_eq!(p.str("y"), Some("2"));
        assert_eq!(p.ignored(), Some(vec!["x".to_owned(), "z".to_owned()]));
        assert_eq!(p.str("x"), Some("3"));
        assert_eq!(p.ignored(), Some(vec!["z".to_owned()]));
        let sent_client = Params::parse(Some("client=a&q=1"), b"client=b").unwrap();
        assert_eq!(sent_client.ignored(), Some(vec!["q".to_owned()]));
    }

    #[test]
    fn many_parameters_are_found_as_few_are() {
        // More than are looked at in turn: these are found by halves.
        let query: Vec<String> = (0..20)
            .map(|i| format!("p{i:02}={i}&p{i:02}=x{i}"))
            .collect();
        let p = Params::parse(Some(&query.join("&")), b"p07=body").unwrap();
        assert_eq!(p.names().count(), 20);
        for i in (0..20).filter(|&i| i != 7) {
            assert_eq!(p.str(&format!("p{i:02}")), Some(format!("x{i}").as_str()));
        }
        assert_eq!(p.str("p07"), Some("body"));
        assert_eq!(p.str("p20"), None);
    }

    #[test]
    fn escapes_decode() {
        let p = Params::parse(Some("e=a%40b.c&s=x+y&t=100%&u"), b"").unwrap();
        assert_eq!(p.str("e"), Some("a@b.c"));
        assert_eq!(p.str("s"), Some("x y"));
        assert_eq!(p.str("t"), Some("100%"));
        assert_eq!(p.str("u"), Some(""));
    }
}
