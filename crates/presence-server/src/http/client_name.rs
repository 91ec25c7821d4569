//! Which client a request comes from (SPEC.md §2): the `client` parameter,
//! else the `User-Agent`.

use std::sync::Arc;

use super::error::ApiError;

/// The longest client name accepted, in characters (Zulip's column size).
pub const MAX_CLIENT_NAME_CHARS: usize = 30;

/// The client name of a request.
///
/// From `client` if given; else the `User-Agent` up to its first `/` or
/// space, with browsers (`Mozilla/...`) as `website`; `Unspecified` without a
/// User-Agent. A name that is empty, longer than 30 characters, or
/// `aggregated` (which would collide with the legacy format's own key) is
/// refused with `Invalid client name`.
pub fn client_name(param: Option<&str>, user_agent: Option<&[u8]>) -> Result<Arc<str>, ApiError> {
    let name: String = match (param, user_agent) {
        (Some(param), _) => param.to_owned(),
        (None, None) => "Unspecified".to_owned(),
        (None, Some(ua)) => {
            let ua = String::from_utf8_lossy(ua);
            let name = ua.trim_start().split(['/', ' ']).next().unwrap_or("");
            if name == "Mozilla" {
                "website".to_owned()
            } else if name.is_empty() {
                "Unspecified".to_owned()
            } else {
                name.to_owned()
            }
        }
    };
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_CLIENT_NAME_CHARS
        && name != "aggregated"
        && !name.chars().any(char::is_control);
    if !valid {
        return Err(ApiError::bad_request("Invalid client name"));
    }
    Ok(Arc::from(name))
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
        assert_eq!(client_name(None, None).unwrap().as_ref(), "Unspecified");
    }

    proptest::proptest! {
        #[test]
        fn a_user_agent_names_its_product(
            product in "[A-Za-z][A-Za-z0-9_.-]{0,29}",
            rest in "(/[0-9.]{1,8}( .{0,30})?)?",
        ) {
            proptest::prop_assume!(product != "aggregated");
            let name = ua(&format!("{product}{rest}"));
            let expected = if product == "Mozilla" { "website" } else { product.as_str() };
            proptest::prop_assert_eq!(name, expected);
        }

        #[test]
        fn accepted_names_are_accepted_again_as_parameters(param: Option<String>, agent: Option<Vec<u8>>) {
            if let Ok(name) = client_name(param.as_deref(), agent.as_deref()) {
                proptest::prop_assert!(!name.is_empty() && name.chars().count() <= MAX_CLIENT_NAME_CHARS);
                let again = client_name(Some(&name), None).unwrap();
                proptest::prop_assert_eq!(again, name);
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
        for bad in ["", "aggregated", &"x".repeat(31), "a\nb"] {
            let e = client_name(Some(bad), None).unwrap_err();
            assert_eq!(e.body.msg, "Invalid client name", "{bad:?}");
        }
        assert!(client_name(Some(&"é".repeat(30)), None).is_ok());
        assert!(client_name(None, Some("x".repeat(31).as_bytes())).is_err());
    }
}
