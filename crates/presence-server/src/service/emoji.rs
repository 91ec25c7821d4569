//! What the server knows of emoji, for a status's emoji
//! (docs/PROTOCOL.md §6.17): the shape of a Unicode emoji's code and name,
//! and the codes of a few dozen names people put in a status, under the
//! names Zulip gives them.
//!
//! Zulip checks a Unicode emoji against its whole emoji catalogue, which
//! changes with its versions; this server carries no catalogue. A name it
//! knows must come with that name's code; a name it does not know is
//! taken with any well-formed code, as Zulip's clients always send one.

/// Names and the code points Zulip gives them: common status emoji.
const KNOWN: &[(&str, &str)] = &[
    ("+1", "1f44d"),
    ("-1", "1f44e"),
    ("airplane", "2708"),
    ("beach", "1f3d6"),
    ("bike", "1f6b2"),
    ("bullet_train", "1f685"),
    ("bus", "1f68c"),
    ("calendar", "1f4c5"),
    ("cant_talk", "1f637"),
    ("car", "1f697"),
    ("clap", "1f44f"),
    ("computer", "1f4bb"),
    ("date", "1f4c6"),
    ("eyes", "1f440"),
    ("grinning", "1f600"),
    ("happy", "1f600"),
    ("headphones", "1f3a7"),
    ("hello", "1f44b"),
    ("hospital", "1f3e5"),
    ("hotel", "1f3e8"),
    ("house", "1f3e0"),
    ("hurt", "1f915"),
    ("island", "1f3dd"),
    ("keyboard", "2328"),
    ("landing", "1f6ec"),
    ("laptop", "1f4bb"),
    ("mask", "1f637"),
    ("microphone", "1f3a4"),
    ("mobile_phone", "1f4f1"),
    ("mountain", "26f0"),
    ("muscle", "1f4aa"),
    ("nerd", "1f913"),
    ("office", "1f3e2"),
    ("palm_tree", "1f334"),
    ("phone", "260e"),
    ("pray", "1f64f"),
    ("quiet", "1f910"),
    ("rocket", "1f680"),
    ("school", "1f3eb"),
    ("ship", "1f6a2"),
    ("sick", "1f912"),
    ("silence", "1f910"),
    ("sleeping", "1f634"),
    ("slight_smile", "1f642"),
    ("smile", "263a"),
    ("subway", "1f687"),
    ("take_off", "1f6eb"),
    ("taxi", "1f695"),
    ("telephone", "260e"),
    ("tent", "26fa"),
    ("thinking", "1f914"),
    ("thumbs_up", "1f44d"),
    ("train", "1f682"),
    ("wave", "1f44b"),
    ("working_on_it", "1f6e0"),
    ("writing", "270d"),
];

/// The longest emoji name accepted.
const MAX_NAME_CHARS: usize = 60;

/// The code Zulip gives a Unicode emoji of this name, if the server knows it.
pub fn code_of(name: &str) -> Option<&'static str> {
    KNOWN
        .binary_search_by(|(known, _)| known.cmp(&name))
        .ok()
        .map(|i| KNOWN[i].1)
}

/// Whether `name` has the shape of an emoji name: 1 to 60 of `a-z`, `0-9`,
/// `_`, `+` and `-`.
pub fn is_well_formed_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b))
}

/// Whether `code` has the shape of a Unicode emoji's code: one to eight
/// code points, each 4 to 6 lower-case hexadecimal digits, joined by `-`
/// (`1f4c5`, `1f1fa-1f1f8`), each a Unicode scalar value.
pub fn is_well_formed_code(code: &str) -> bool {
    let points: Vec<&str> = code.split('-').collect();
    points.len() <= 8
        && points.iter().all(|point| {
            (4..=6).contains(&point.len())
                && point
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                && u32::from_str_radix(point, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .is_some()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_its_codes_well_formed() {
        assert!(KNOWN.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(
            KNOWN
                .iter()
                .all(|(name, code)| { is_well_formed_name(name) && is_well_formed_code(code) })
        );
        assert_eq!(code_of("calendar"), Some("1f4c5"));
        assert_eq!(code_of("invalid"), None);
    }

    #[test]
    fn codes_and_names_are_checked_for_their_shape() {
        for good in ["1f4c5", "263a", "1f1fa-1f1f8", "0023-20e3"] {
            assert!(is_well_formed_code(good), "{good}");
        }
        for bad in [
            "", "1F4C5", "zzzz", "12", "d800", "110000", "1f4c5-", "-1f4c5",
        ] {
            assert!(!is_well_formed_code(bad), "{bad}");
        }
        assert!(is_well_formed_name("+1") && is_well_formed_name("jack-o-lantern"));
        assert!(!is_well_formed_name("Car") && !is_well_formed_name("a b"));
        assert!(!is_well_formed_name(&"a".repeat(61)));
    }
}
