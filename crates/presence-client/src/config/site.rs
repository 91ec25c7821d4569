//! The server address: a `site` as people write it, made into the API base URL.

/// Turns a `site` as written in a zuliprc, an environment variable or a flag
/// into the base URL that request paths are appended to, the way Zulip's
/// Python client does it:
///
/// - `localhost...` gets `http://` in front (a local development server
///   rarely has a certificate); anything else without a scheme gets `https://`;
/// - trailing slashes are removed;
/// - `/api` is appended unless the site already ends with it.
///
/// Requests then go to the result + `/v1/` + the endpoint's path.
///
/// ```
/// use presence_client::normalize_site;
///
/// assert_eq!(normalize_site("chat.example.com"), "https://chat.example.com/api");
/// assert_eq!(normalize_site("localhost:9991/"), "http://localhost:9991/api");
/// assert_eq!(normalize_site("http://10.0.0.5/api"), "http://10.0.0.5/api");
/// ```
pub fn normalize_site(site: &str) -> String {
    let site = site.trim();
    let mut base = if site.starts_with("localhost") {
        format!("http://{site}")
    } else if !site.starts_with("http") {
        format!("https://{site}")
    } else {
        site.to_owned()
    };
    let without_slashes = base.trim_end_matches('/').len();
    base.truncate(without_slashes);
    if !base.ends_with("/api") {
        base.push_str("/api");
    }
    base
}

#[cfg(test)]
mod tests {
    use super::normalize_site;

    #[test]
    fn schemes_are_added_like_the_python_client_does() {
        assert_eq!(normalize_site("localhost"), "http://localhost/api");
        assert_eq!(
            normalize_site("localhost:9991"),
            "http://localhost:9991/api"
        );
        assert_eq!(
            normalize_site("zulip.example.com"),
            "https://zulip.example.com/api"
        );
        assert_eq!(
            normalize_site("127.0.0.1:9991"),
            "https://127.0.0.1:9991/api"
        );
        assert_eq!(
            normalize_site("http://127.0.0.1:9991"),
            "http://127.0.0.1:9991/api"
        );
        assert_eq!(
            normalize_site("https://zulip.example.com"),
            "https://zulip.example.com/api"
        );
    }

    #[test]
    fn trailing_slashes_go_and_api_is_added_once() {
        assert_eq!(
            normalize_site("https://zulip.example.com///"),
            "https://zulip.example.com/api"
        );
        assert_eq!(
            normalize_site("https://zulip.example.com/api/"),
            "https://zulip.example.com/api"
        );
        assert_eq!(
            normalize_site("https://example.com/zulip"),
            "https://example.com/zulip/api"
        );
        assert_eq!(
            normalize_site(" localhost:9991 "),
            "http://localhost:9991/api"
        );
    }
}
