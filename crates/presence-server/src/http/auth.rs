//! HTTP Basic credentials, parsed the way Zulip parses them (SPEC.md §6).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::ApiError;

/// An email and API key from an `Authorization: Basic ...` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The username part: the caller's email.
    pub email: String,
    /// The password part: the API key.
    pub key: String,
}

/// Parses the value of an `Authorization` header.
///
/// The scheme must be `Basic` (any case), followed by exactly one base64
/// token that decodes to UTF-8 `email:key` with exactly one colon.
pub fn parse_basic(header: &[u8]) -> Result<Credentials, ApiError> {
    let invalid = || ApiError::unauthorized("Invalid authorization header for basic auth");
    let header = std::str::from_utf8(header).map_err(|_| invalid())?;
    let mut words = header.split_whitespace();
    let scheme = words.next().ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::bad_request(
            "This endpoint requires HTTP basic authentication.",
        ));
    }
    let token = words.next().ok_or_else(invalid)?;
    if words.next().is_some() {
        return Err(invalid());
    }
    let decoded = STANDARD.decode(token).map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let mut parts = decoded.split(':');
    let (Some(email), Some(key), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    Ok(Credentials {
        email: email.to_owned(),
        key: key.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> String {
        format!("Basic {}", STANDARD.encode(s))
    }

    #[test]
    fn parses_email_and_key() {
        let c = parse_basic(basic("a@b.c:KEY").as_bytes()).unwrap();
        assert_eq!(c.email, "a@b.c");
        assert_eq!(c.key, "KEY");
        assert!(parse_basic(format!("bAsIc {}", STANDARD.encode("a:b")).as_bytes()).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn credentials_decode_what_was_encoded(email in "[^:]{0,40}", key in "[^:]{0,40}") {
            let header = basic(&format!("{email}:{key}"));
            let parsed = parse_basic(header.as_bytes()).unwrap();
            proptest::prop_assert_eq!(parsed, Credentials { email, key });
        }
    }

    #[test]
    fn other_schemes_are_bad_requests() {
        let e = parse_basic(b"Bearer abc").unwrap_err();
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body.msg,
            "This endpoint requires HTTP basic authentication."
        );
    }

    #[test]
    fn malformed_headers_are_unauthorized() {
        for header in [
            "Basic".to_owned(),
            "Basic !!!".to_owned(),
            basic("no-colon"),
            basic("a:b:c"),
            format!("{} extra", basic("a:b")),
            String::new(),
        ] {
            let e = parse_basic(header.as_bytes()).unwrap_err();
            assert_eq!(e.status, http::StatusCode::UNAUTHORIZED, "{header}");
            assert_eq!(e.body.msg, "Invalid authorization header for basic auth");
        }
    }
}
