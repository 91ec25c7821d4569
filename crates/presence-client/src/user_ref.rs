//! Naming a user in a path: by id or by email.

use std::fmt;

/// A user as the presence endpoints accept it: an integer id or an email.
///
/// ```
/// use presence_client::UserRef;
///
/// assert_eq!(UserRef::parse("17"), UserRef::Id(17));
/// assert_eq!(UserRef::parse("alice@example.com"), UserRef::Email("alice@example.com".into()));
/// assert_eq!(UserRef::from(17), UserRef::Id(17));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserRef {
    /// A user id.
    Id(i64),
    /// An email (matched case-insensitively by the server).
    Email(String),
}

impl UserRef {
    /// Reads what a person typed: an integer is an id, anything else an email,
    /// which is the server's own rule for the path segment.
    pub fn parse(text: &str) -> UserRef {
        match text.trim().parse::<i64>() {
            Ok(id) => UserRef::Id(id),
            Err(_) => UserRef::Email(text.to_owned()),
        }
    }

    /// The user as one percent-encoded path segment.
    pub(crate) fn path_segment(&self) -> String {
        match self {
            UserRef::Id(id) => id.to_string(),
            UserRef::Email(email) => encode_path_segment(email),
        }
    }
}

impl From<i64> for UserRef {
    fn from(id: i64) -> Self {
        UserRef::Id(id)
    }
}

impl From<&str> for UserRef {
    fn from(text: &str) -> Self {
        UserRef::parse(text)
    }
}

impl From<String> for UserRef {
    fn from(text: String) -> Self {
        UserRef::parse(&text)
    }
}

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserRef::Id(id) => write!(f, "{id}"),
            UserRef::Email(email) => f.write_str(email),
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `@`.
///
/// `+` is encoded too: it is legal in a path, but a server that decodes
/// paths like form data would read it as a space, and emails often carry
/// one (`alice+work@example.com`).
fn encode_path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_encoded_for_the_path() {
        assert_eq!(
            UserRef::parse("alice+work@example.com").path_segment(),
            "alice%2Bwork@example.com"
        );
        assert_eq!(
            UserRef::parse("a b/c?d#e%f@x.y").path_segment(),
            "a%20b%2Fc%3Fd%23e%25f@x.y"
        );
        assert_eq!(UserRef::parse("é@x.y").path_segment(), "%C3%A9@x.y");
        assert_eq!(UserRef::parse(" 42 ").path_segment(), "42");
        assert_eq!(UserRef::parse("-3"), UserRef::Id(-3));
    }
}
