//! The bodies of the fuzz targets: each feeds arbitrary bytes to one of the
//! parsers that read untrusted input, and checks what must hold for any
//! input. A violated property panics, which is what a fuzzer reports.
//!
//! The cargo-fuzz targets in `fuzz/` call these (with a nightly toolchain);
//! the property tests below call them too, so the same checks run in the
//! normal test suite on a stable toolchain.

use crate::http::auth::{Credentials, parse_basic};
use crate::http::client_name::{client_name, is_valid_client_name};
use crate::http::params::{Params, encode_form};

/// Splits fuzz input in two at a place chosen by its first byte.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.split_first() {
        None => (&[], &[]),
        Some((&at, rest)) => rest.split_at(usize::from(at).min(rest.len())),
    }
}

/// The query/form parser: never panics; what it accepts, encoded again,
/// parses to the same parameters; typed reads never panic.
pub fn params(data: &[u8]) {
    let (query, body) = split(data);
    let query = String::from_utf8_lossy(query);
    let Ok(parsed) = Params::parse(Some(&query), body) else {
        return;
    };
    let pairs: Vec<(String, String)> = parsed
        .names()
        .map(|name| (name.to_owned(), parsed.str(name).unwrap_or("").to_owned()))
        .collect();
    let encoded = encode_form(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let again = Params::parse(None, encoded.as_bytes()).expect("an encoded form parses");
    for (name, value) in &pairs {
        assert_eq!(again.str(name), Some(value.as_str()), "{name:?}");
        let _ = parsed.bool(name);
        let _ = parsed.int(name);
    }
    assert_eq!(again.names().count(), pairs.len());
}

/// The JSON-in-form values: a value is a boolean or integer only when it is
/// that JSON, whatever the bytes.
pub fn json_values(data: &[u8]) {
    let value = String::from_utf8_lossy(data);
    let body = encode_form([("v", value.as_ref())]);
    let parsed = Params::parse(None, body.as_bytes()).expect("an encoded form parses");
    let json = serde_json::from_str::<serde_json::Value>(&value).ok();
    match parsed.int("v") {
        Ok(Some(n)) => assert_eq!(json.as_ref().and_then(|j| j.as_i64()), Some(n)),
        Ok(None) => unreachable!("the parameter is there"),
        Err(_) => assert!(json.as_ref().is_none_or(|j| !j.is_i64())),
    }
    match parsed.bool("v") {
        Ok(Some(b)) => assert_eq!(json.as_ref().and_then(|j| j.as_bool()), Some(b)),
        Ok(None) => unreachable!("the parameter is there"),
        Err(_) => assert!(json.as_ref().is_none_or(|j| !j.is_boolean())),
    }
}

/// The Basic-auth parser: never panics; what it accepts, encoded again,
/// parses to the same credentials.
pub fn basic_auth(data: &[u8]) {
    use base64::Engine;
    let Ok(Credentials { email, key }) = parse_basic(data) else {
        return;
    };
    assert!(!email.contains(':') && !key.contains(':'));
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{email}:{key}"))
    );
    assert_eq!(
        parse_basic(header.as_bytes()).expect("an encoded pair parses"),
        Credentials { email, key }
    );
}

/// The client-name rule, from a `client` parameter or a User-Agent: never
/// panics; a User-Agent always gives a name; a name it gives is valid and
/// is given back unchanged when sent as the parameter.
pub fn client_names(data: &[u8]) {
    let (param, agent) = split(data);
    let param = String::from_utf8_lossy(param);
    assert!(
        client_name(None, Some(agent)).is_ok(),
        "a User-Agent never fails"
    );
    for result in [
        client_name(None, Some(agent)),
        client_name(Some(&param), None),
        client_name(Some(&param), Some(agent)),
    ] {
        let Ok(name) = result else { continue };
        assert!(is_valid_client_name(&name), "{name:?}");
        assert_eq!(
            client_name(Some(&name), None).expect("a given name is valid"),
            name
        );
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn params_hold_for_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            params(&data);
        }

        #[test]
        fn params_hold_for_form_like_bytes(data in "[a-z=&%+0-9A-F\u{e9}]{0,80}") {
            params(data.as_bytes());
        }

        #[test]
        fn json_values_hold_for_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            json_values(&data);
        }

        #[test]
        fn json_values_hold_for_json_like_text(data in r#"[ \-+0-9.eE"truefalsn\[\]{}]{0,24}"#) {
            json_values(data.as_bytes());
        }

        #[test]
        fn basic_auth_holds_for_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            basic_auth(&data);
        }

        #[test]
        fn basic_auth_holds_for_headers_of_base64(token in "[A-Za-z0-9+/=]{0,64}", scheme in "(Basic|basic|BASIC|Bearer) ?") {
            basic_auth(format!("{scheme}{token}").as_bytes());
        }

        #[test]
        fn client_names_hold_for_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..96)) {
            client_names(&data);
        }
    }

    /// Inputs the fuzzers or reviews have singled out, kept as regressions.
    #[test]
    fn known_awkward_inputs() {
        for data in [
            &b""[..],
            b"\x00",
            b"\x01%",
            b"\x02%4",
            b"\x00a=%FF",
            b"\x00=&=&&",
            b"\x05a%2Bb=c+d",
        ] {
            params(data);
            client_names(data);
            json_values(data);
            basic_auth(data);
        }
        for header in [
            &b"Basic Og=="[..],
            b"Basic Og",
            b"basic  YTpi",
            b"Basic\tYTpi",
        ] {
            basic_auth(header);
        }
    }
}
