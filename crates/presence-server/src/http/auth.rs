//! Credentials: HTTP Basic (a user's email and API key), parsed the way
//! Zulip parses them, or a Bearer token (an embed key, see
//! `service::embed`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::ApiError;
use crate::service::embed::EMBED_KEY_PREFIX;

/// An email and API key from an `Authorization: Basic ...` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The username part: the caller's email.
    pub email: String,
    /// The password part: the API key.
    pub key: String,
}

/// What an `Authorization` header carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Authorization {
    /// A user's email and API key.
    Basic(Credentials),
    /// A Bearer token: an embed key, for pages.
    Bearer(String),
}

/// Parses the value of an `Authorization` header for an endpoint that takes
/// embed keys (`takes_embed_keys`) or not.
///
/// `Basic` (any case) must be followed by exactly one base64 token that
/// decodes to UTF-8 `email:key` with exactly one colon. `Bearer` followed
/// by one token is a page's where embed keys are taken, so that a token no
/// key has is refused as an embed key (401); elsewhere only a token that
/// starts as embed keys do is, so that the page is told the endpoint does
/// not take them. Any other scheme or token gets Zulip's refusal of
/// whatever is not Basic.
pub fn parse_authorization(
    header: &[u8],
    takes_embed_keys: bool,
) -> Result<Authorization, ApiError> {
    let invalid = ApiError::invalid_basic_auth;
    let text = std::str::from_utf8(header).map_err(|_| invalid())?;
    let mut words = text.split_whitespace();
    let scheme = words.next().ok_or_else(invalid)?;
    if scheme.eq_ignore_ascii_case("bearer")
        && let (Some(token), None) = (words.next(), words.next())
        && (takes_embed_keys || token.starts_with(EMBED_KEY_PREFIX))
    {
        return Ok(Authorization::Bearer(token.to_owned()));
    }
    parse_basic(header).map(Authorization::Basic)
}

/// Parses the value of an `Authorization` header that must be `Basic`.
///
/// The scheme must be `Basic` (any case), followed by exactly one base64
/// token that decodes to UTF-8 `email:key` with exactly one colon.
pub fn parse_basic(header: &[u8]) -> Result<Credentials, ApiError> {
    let invalid = ApiError::invalid_basic_auth;
    let header = std::str::from_utf8(header).map_err(|_| invalid())?;
    let mut words = header.split_whitespace();
    let scheme = words.next().ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::basic_auth_required());
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
    fn bearer_tokens_are_embed_keys() {
        for takes_embed_keys in [false, true] {
            assert_eq!(
                parse_authorization(b"Bearer embed_abc", takes_embed_keys).unwrap(),
                Authorization::Bearer("embed_abc".to_owned())
            );
            // Malformed Bearer headers are refused as Zulip refuses anything
            // but Basic.
            for other in ["Bearer", "Bearer embed_a embed_b", "Digest x"] {
                let e = parse_authorization(other.as_bytes(), takes_embed_keys).unwrap_err();
                assert_eq!(e.status, http::StatusCode::BAD_REQUEST, "{other}");
            }
            assert_eq!(
                parse_authorization(basic("a@b.c:K").as_bytes(), takes_embed_keys).unwrap(),
                Authorization::Basic(Credentials {
                    email: "a@b.c".to_owned(),
                    key: "K".to_owned()
                })
            );
        }
        // Any other token is an embed key where embed keys are taken, and
        // refused as Zulip refuses anything but Basic elsewhere.
        assert_eq!(
            parse_authorization(b"Bearer abc", true).unwrap(),
            Authorization::Bearer("abc".to_owned())
        );
        let e = parse_authorization(b"Bearer abc", false).unwrap_err();
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
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
