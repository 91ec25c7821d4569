//! Which client a request comes from (docs/PROTOCOL.md §3.3): the `client` parameter,
//! else the `User-Agent`.
//!
//! The name is shown to everyone in the realm, as a key of the legacy
//! format and as `aggregated.client`, so a name that could make readers
//! see something else than what it is is refused: characters that reorder
//! the text around them (bidirectional controls), that show as nothing
//! (default-ignorable code points: zero-width characters, variation
//! selectors, tags), control characters and line breaks, and the keys of
//! the presence object itself in any case: `aggregated`, and the
//! `active_timestamp` and `idle_timestamp` that stand beside the entries
//! in the single-user GET.
//!
//! A `User-Agent` is read as Zulip reads it: its product name as Zulip's
//! parser finds it, cut to the 30 characters of Zulip's client column. It
//! never makes a request fail: a name that is not valid here becomes
//! `Unspecified`, Zulip's name for a request without one.

use std::borrow::Cow;

use presence_types::is_reserved_client_name;

use super::error::ApiError;
use super::params::Params;

/// The longest client name, in characters (Zulip's column size, to which
/// Zulip cuts longer names).
pub const MAX_CLIENT_NAME_CHARS: usize = 30;

/// The name of a request without a `client` parameter whose `User-Agent`
/// is absent or yields no valid name.
pub const UNSPECIFIED: &str = "Unspecified";

/// The client name of a request.
///
/// From `client` if given, refused with `Invalid client name` unless
/// [`is_valid_client_name`]; else from the `User-Agent` (see
/// [`user_agent_name`]), which never fails.
pub fn client_name<'a>(
    param: Option<&'a str>,
    user_agent: Option<&[u8]>,
) -> Result<Cow<'a, str>, ApiError> {
    match (param, user_agent) {
        (Some(name), _) if is_valid_client_name(name) => Ok(Cow::Borrowed(name)),
        (Some(_), _) => Err(ApiError::invalid_client_name()),
        (None, Some(agent)) => Ok(Cow::Owned(user_agent_name(agent))),
        (None, None) => Ok(Cow::Borrowed(UNSPECIFIED)),
    }
}

/// The client name of a request with these parameters: its `client`
/// parameter, else its `User-Agent` (see [`client_name`]). Every endpoint
/// accepts the parameter (docs/PROTOCOL.md §1.3) and the ones that record
/// a client read it; no parameter struct of the wire types names it, since
/// it is Zulip's parameter of every request. Borrowed from the parameters
/// when sent, as nearly every ping sends it.
pub fn request_client<'p>(
    params: &'p Params,
    user_agent: Option<&[u8]>,
) -> Result<Cow<'p, str>, ApiError> {
    client_name(params.str("client"), user_agent)
}

/// Whether a name may be a client's: 1 to 30 characters, not a key of the
/// presence object (`aggregated`, `active_timestamp`, `idle_timestamp`) in
/// any case, and nothing in it that could mislead a reader (see the
/// module's documentation).
pub fn is_valid_client_name(name: &str) -> bool {
    if name.is_ascii() {
        // Nearly every name. No ASCII character is a separator or
        // default-ignorable: only control characters mislead.
        return !name.is_empty()
            && name.len() <= MAX_CLIENT_NAME_CHARS
            && !is_reserved_client_name(name)
            && !name.bytes().any(|b| b.is_ascii_control());
    }
    !name.is_empty()
        && name.chars().count() <= MAX_CLIENT_NAME_CHARS
        // No character outside ASCII lower-cases to one of these letters,
        // so comparing ASCII case is comparing every case.
        && !is_reserved_client_name(name)
        && !name.chars().any(misleads)
}

/// The client name a `User-Agent` gives: Zulip's name for it, browsers
/// (`Mozilla/...`) as `website`, and [`UNSPECIFIED`] for a name that is not
/// valid here. Text that is not UTF-8 is read with replacement characters.
pub fn user_agent_name(agent: &[u8]) -> String {
    let agent = String::from_utf8_lossy(agent);
    // Zulip keeps the first 30 characters of a longer name.
    let name: String = zulip_product(&agent)
        .chars()
        .take(MAX_CLIENT_NAME_CHARS)
        .collect();
    if name == "Mozilla" {
        "website".to_owned()
    } else if is_valid_client_name(&name) {
        name
    } else {
        UNSPECIFIED.to_owned()
    }
}

/// The `name` that Zulip's `parse_user_agent` finds in a User-Agent.
///
/// Zulip matches `^(?P<name>[^/ ]*[^0-9/(]*)(/(?P<version>[^/ ]*))?([ /].*)?$`.
/// The name's first part runs to the first slash or space; at a slash, or
/// at the end, the name ends there. At a space its second part runs on
/// through anything but an ASCII digit, a slash or `(`, and the match
/// keeps the longest run after which the rest can begin: the end, a slash,
/// or a space (a header value has no line break, the one character the
/// rest could not hold). So `Acme Desktop Client/2.0 (Linux)` is named
/// `Acme Desktop Client`, and `Foo Bar 1.0` is named `Foo Bar`.
fn zulip_product(agent: &str) -> &str {
    let first = agent.find(['/', ' ']).unwrap_or(agent.len());
    let rest = &agent[first..];
    if !rest.starts_with(' ') {
        return &agent[..first];
    }
    let run = rest
        .find(|c: char| c.is_ascii_digit() || c == '/' || c == '(')
        .unwrap_or(rest.len());
    if run == rest.len() || rest[run..].starts_with('/') {
        return &agent[..first + run];
    }
    // Give back the run up to its last space, where the rest begins.
    let last_space = rest[..run].rfind(' ').expect("the run starts with a space");
    &agent[..first + last_space]
}

/// Whether a character could make a name read as something it is not.
fn misleads(c: char) -> bool {
    // Line and paragraph separators break the line as a newline does.
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || is_default_ignorable(c)
}

/// Unicode's `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt,
/// Unicode 15.1), as ranges: what a renderer shows as nothing. Every
/// bidirectional control (ALM, LRM, RLM, the embeddings and overrides, the
/// isolates) is among them. Unassigned code points of these blocks are
/// included, as Unicode includes them, so the table holds for later
/// versions too.
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark
    ('\u{115F}', '\u{1160}'),   // Hangul choseong and jungseong fillers
    ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels
    ('\u{180B}', '\u{180F}'),   // Mongolian variation selectors and vowel separator
    ('\u{200B}', '\u{200F}'),   // zero-width space, joiners, LRM, RLM
    ('\u{202A}', '\u{202E}'),   // bidirectional embeddings and overrides
    ('\u{2060}', '\u{206F}'),   // word joiner, invisible operators, isolates
    ('\u{3164}', '\u{3164}'),   // Hangul filler
    ('\u{FE00}', '\u{FE0F}'),   // variation selectors 1-16
    ('\u{FEFF}', '\u{FEFF}'),   // zero-width no-break space (byte order mark)
    ('\u{FFA0}', '\u{FFA0}'),   // halfwidth Hangul filler
    ('\u{FFF0}', '\u{FFF8}'),   // reserved
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical symbol beam and phrase controls
    ('\u{E0000}', '\u{E0FFF}'), // tags, variation selectors 17-256, reserved
];

/// Whether `c` is a default-ignorable code point.
fn is_default_ignorable(c: char) -> bool {
    DEFAULT_IGNORABLE
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ua(s: &str) -> String {
        client_name(None, Some(s.as_bytes())).unwrap().to_string()
    }

    #[test]
    fn user_agents_map_to_names() {
        assert_eq!(ua("ZulipPython/0.9.1 (Debian; 12)"), "ZulipPython");
        assert_eq!(ua("ZulipMobile/27.1 (Android 14)"), "ZulipMobile");
        assert_eq!(ua("Mozilla/5.0 (X11; Linux x86_64)"), "website");
        assert_eq!(ua("curl/8.5.0"), "curl");
        assert_eq!(ua("ZulipTerminal"), "ZulipTerminal");
        assert_eq!(ua("/weird"), "Unspecified");
        assert_eq!(ua(""), "Unspecified");
        assert_eq!(client_name(None, None).unwrap().as_ref(), "Unspecified");
    }

    #[test]
    fn user_agent_names_are_found_as_zulips_parser_finds_them() {
        // The name runs to the first slash, spaces included...
        assert_eq!(ua("Acme Desktop Client/2.0 (Linux)"), "Acme Desktop Client");
        // ...and stops before the space ahead of a version or a comment.
        assert_eq!(ua("Foo Bar 1.0"), "Foo Bar");
        assert_eq!(ua("Foo Bar (compatible)"), "Foo Bar");
        assert_eq!(ua("Foo  1.0"), "Foo ");
        assert_eq!(ua("Foo 2Go/3"), "Foo");
        // Digits and parentheses belong to a first word.
        assert_eq!(ua("Zulip2Go(beta)/3"), "Zulip2Go(beta)");
        // Cut to 30 characters, as Zulip stores it.
        assert_eq!(
            ua("ThisIsAVeryLongProductTokenName12345/1.0"),
            "ThisIsAVeryLongProductTokenNam"
        );
    }

    #[test]
    fn user_agents_that_would_mislead_are_unspecified() {
        for agent in [
            "x\u{202e}etisbew/1.0",
            "website\u{200b}/1.0",
            "Aggregated/1.0",
            "AGGREGATED",
            "Tab\tbed/1.0",
        ] {
            assert_eq!(ua(agent), "Unspecified", "{agent:?}");
        }
        assert_eq!(
            client_name(None, Some(b"\xffZulip/1")).unwrap().as_ref(),
            "\u{fffd}Zulip"
        );
    }

    /// Zulip's pattern matched the way its regular expression engine
    /// matches it: each part of the name as long as it can be, then
    /// shorter, the first part before the second, until the rest of the
    /// header can follow (the end, or a slash or space: the version and the
    /// comment take any text without a line break).
    fn zulip_product_by_backtracking(agent: &str) -> &str {
        let chars: Vec<(usize, char)> = agent.char_indices().collect();
        let at = |i: usize| chars.get(i).map_or(agent.len(), |&(b, _)| b);
        let first_max = chars
            .iter()
            .take_while(|(_, c)| !matches!(c, '/' | ' '))
            .count();
        for first in (0..=first_max).rev() {
            let second_max = chars[first..]
                .iter()
                .take_while(|(_, c)| !(c.is_ascii_digit() || matches!(c, '/' | '(')))
                .count();
            for second in (0..=second_max).rev() {
                let end = first + second;
                if matches!(chars.get(end), None | Some((_, '/' | ' '))) {
                    return &agent[..at(end)];
                }
            }
        }
        unreachable!("an empty name is followed by the rest")
    }

    proptest::proptest! {
        #[test]
        fn the_product_is_what_zulips_pattern_matches(agent in "[ab/ 1(é]{0,14}") {
            proptest::prop_assert_eq!(zulip_product(&agent), zulip_product_by_backtracking(&agent));
        }

        /// Zulip names a User-Agent by its product token, cut to 30
        /// characters. (The rule before refused a product over 30
        /// characters; Zulip takes its first 30, so the property now
        /// covers longer products too.)
        #[test]
        fn a_user_agent_names_its_product(
            product in "[A-Za-z][A-Za-z0-9_.-]{0,59}",
            rest in "(/[0-9.]{1,8}( .{0,30})?)?",
        ) {
            let name = ua(&format!("{product}{rest}"));
            let cut: String = product.chars().take(MAX_CLIENT_NAME_CHARS).collect();
            let expected = if cut == "Mozilla" {
                "website"
            } else if is_reserved_client_name(&cut) {
                "Unspecified"
            } else {
                cut.as_str()
            };
            proptest::prop_assert_eq!(name, expected);
        }

        #[test]
        fn a_user_agent_never_fails_a_request(agent: Vec<u8>) {
            let name = client_name(None, Some(&agent));
            proptest::prop_assert!(name.is_ok_and(|n| is_valid_client_name(&n)));
        }

        #[test]
        fn accepted_names_are_accepted_again_as_parameters(param: Option<String>, agent: Option<Vec<u8>>) {
            if let Ok(name) = client_name(param.as_deref(), agent.as_deref()) {
                proptest::prop_assert!(!name.is_empty() && name.chars().count() <= MAX_CLIENT_NAME_CHARS);
                let again = client_name(Some(&name), None).unwrap();
                proptest::prop_assert_eq!(&again, &name);
            }
        }
    }

    #[test]
    fn the_parameter_wins() {
        let name = client_name(Some("ZulipTerminal"), Some(b"curl/8")).unwrap();
        assert_eq!(name.as_ref(), "ZulipTerminal");
    }

    #[test]
    fn bad_names_are_refused() {
        let bidi = [
            '\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ];
        let mut bad: Vec<String> = [
            "",
            "aggregated",
            "Aggregated",
            "aGGREGATED",
            "active_timestamp",
            "Idle_Timestamp",
            "a\nb",
            "a\u{85}b",
        ]
        .map(str::to_owned)
        .into();
        bad.push("x".repeat(31));
        bad.extend(bidi.iter().map(|c| format!("x{c}etisbew")));
        bad.extend(
            [
                '\u{ad}',
                '\u{200b}',
                '\u{2060}',
                '\u{feff}',
                '\u{fe0f}',
                '\u{e0041}',
                '\u{2028}',
            ]
            .iter()
            .map(|c| format!("website{c}")),
        );
        for bad in &bad {
            let e = client_name(Some(bad), None).unwrap_err();
            assert_eq!(e.body.msg, "Invalid client name", "{bad:?}");
        }
        for good in [
            &"é".repeat(30),
            "Zulip-Ελληνικά",
            "a b",
            "😀",
            "aggregated2",
        ] {
            assert!(client_name(Some(good), None).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn the_ignorable_table_is_sorted_and_disjoint() {
        for pair in DEFAULT_IGNORABLE.windows(2) {
            assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:?}");
        }
    }
}
