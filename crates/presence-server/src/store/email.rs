//! When two emails name the same user: the one definition that the
//! stores' lookups and the in-memory index share.

/// The form of an email that lookups compare: trimmed and lower-cased.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Whether two emails have the same [`email_key`], without building the keys
/// when both are ASCII (the case of nearly every request's credentials).
pub fn same_email(a: &str, b: &str) -> bool {
    // The same bytes (a client sends the email as it was given) settle it
    // at the cost of a comparison.
    if a == b {
        true
    } else if a.is_ascii() && b.is_ascii() {
        a.trim().eq_ignore_ascii_case(b.trim())
    } else {
        email_key(a) == email_key(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_email_agrees_with_the_key() {
        for (a, b) in [
            ("a@b.c", " A@B.C "),
            ("a@b.c", "a@b.d"),
            ("Émile@x.fr", "émile@X.FR"),
            ("émile@x.fr", "emile@x.fr"),
            ("ΟΔΟΣ@x.gr", "οδος@x.gr"),
        ] {
            assert_eq!(same_email(a, b), email_key(a) == email_key(b), "{a} {b}");
        }
    }
}
