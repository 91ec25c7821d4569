//! The spec's request schemas admit exactly what the server accepts: a
//! request body may be left out where the spec says it is optional, and
//! for each field whose value the server checks (JSON text inside a form
//! field or query parameter, push tokens, app ids), every value of a table
//! of well-formed and malformed ones is accepted by the server if and only
//! if the spec's schema admits it. A generator of requests from the spec
//! (schemathesis) then neither sends valid-looking requests the server
//! refuses nor counts as invalid requests the server takes.

use presence_tests::contract::{operations_with_bodies, request_field_admits};
use presence_tests::{Answer, TestServer, User};
use reqwest::Method;

/// JSON lists of strings, as `event_types` takes them, and text that is not one.
const STRING_LISTS: &[&str] = &[
    r#"["presence"]"#,
    "null",
    " null\n",
    "[]",
    "\t[ \"a\" ,\r\n\"b\" ] ",
    r#"["\u00e9\n\"\\\/"]"#,
    r#"["\ud83d\ude00", "é"]"#,
    "",
    " ",
    r#""presence""#,
    "[1]",
    "[null]",
    r#"["a",]"#,
    r#"["a" "b"]"#,
    "{}",
    "true",
    r#"["\ud800"]"#,
    r#"["\udc00"]"#,
    r#"["\x"]"#,
    "[\"a\u{1}\"]",
    "[]x",
    "[",
];

/// Objects of booleans, as `client_capabilities` takes them, and text that
/// is not one.
const CAPABILITIES: &[&str] = &[
    "{}",
    "null",
    r#"{"simplified_presence_events": true}"#,
    " {\n\"simplified_presence_events\" : false , \"notification_settings_null\":true } ",
    r#"{"simplified_presence_events": 1}"#,
    r#"{"simplified_presence_events": null}"#,
    "",
    "[]",
    "true",
    r#"{"a": true,}"#,
    r#"{"a" true}"#,
    r#"{a: true}"#,
    "{",
];

/// Text the server takes as capabilities although the spec does not admit
/// it: keys the server does not know, with values other than booleans, are
/// ignored (as Zulip ignores them), which no regular expression can say.
const CAPABILITIES_BEYOND_THE_SPEC: &[&str] = &[r#"{"other": [1, {"x": null}]}"#];

/// Whether the server accepted a request, or refused it for a value of a
/// field; anything else fails the test.
fn accepted(answer: &Answer, what: &str) -> bool {
    match answer.status.as_u16() {
        200 => true,
        400 => false,
        status => panic!("{what}: answered {status}: {}", answer.body),
    }
}

async fn register_accepts(server: &TestServer, user: &User, field: &str, value: &str) -> bool {
    let answer = server.post(user, "/register", &[(field, value)]).await;
    accepted(&answer, &format!("register {field}={value:?}"))
}

#[tokio::test]
async fn bodies_are_optional_exactly_where_the_spec_says() {
    let server = TestServer::start().await;
    let user = server.realm_with_users("acme", 1).await.remove(0);
    let operations = operations_with_bodies();
    assert!(operations.len() >= 8, "{operations:?}");
    for (method, template, required) in operations {
        let path = template.strip_prefix("/api/v1").unwrap();
        let method: Method = method.parse().unwrap();
        let answer = server
            .send(server.request(method.clone(), &user, path))
            .await;
        assert_eq!(
            accepted(&answer, &format!("{method} {path} without a body")),
            !required,
            "{method} {path}: {}",
            answer.body
        );
    }
}

#[tokio::test]
async fn json_text_fields_admit_what_the_server_parses() {
    let server = TestServer::start().await;
    let user = server.realm_with_users("acme", 1).await.remove(0);
    for field in ["event_types", "fetch_event_types"] {
        for value in STRING_LISTS {
            assert_eq!(
                register_accepts(&server, &user, field, value).await,
                request_field_admits("POST", "/api/v1/register", field, value),
                "{field}={value:?}"
            );
        }
    }
    for value in CAPABILITIES {
        let admitted =
            request_field_admits("POST", "/api/v1/register", "client_capabilities", value);
        assert_eq!(
            register_accepts(&server, &user, "client_capabilities", value).await,
            admitted,
            "client_capabilities={value:?}"
        );
        // The stream takes the same parameter, checked before it starts.
        let head = server
            .send(
                server
                    .request(Method::HEAD, &user, "/presence/stream")
                    .query(&[("client_capabilities", value)]),
            )
            .await;
        assert_eq!(
            head.status == 200,
            request_field_admits(
                "GET",
                "/api/v1/presence/stream",
                "client_capabilities",
                value
            ),
            "stream client_capabilities={value:?}: {}",
            head.status
        );
        assert_eq!(admitted, head.status == 200, "{value:?}");
    }
    for value in CAPABILITIES_BEYOND_THE_SPEC {
        assert!(register_accepts(&server, &user, "client_capabilities", value).await);
        assert!(!request_field_admits(
            "POST",
            "/api/v1/register",
            "client_capabilities",
            value
        ));
    }
}

#[tokio::test]
async fn push_tokens_and_app_ids_admit_what_the_server_takes() {
    let server = TestServer::start().await;
    let user = server.realm_with_users("acme", 1).await.remove(0);
    let apns = "/api/v1/users/me/apns_device_token";
    let fcm = "/api/v1/users/me/android_gcm_reg_id";
    let long_hex = "ab".repeat(2048);
    let too_long_hex = format!("{long_hex}ab");
    let apns_tokens = [
        "c0ffee",
        "C0FFEE",
        " c0 ff\tee\n",
        "\u{b}c0\u{c}ff\rEE ",
        &long_hex,
        "",
        "   ",
        "c0f",
        "c 0ffee",
        "0xc0ffee",
        "zz",
        "c0\u{a0}ff",
        "éé",
        &too_long_hex,
    ];
    for token in apns_tokens {
        let add = server
            .post(
                &user,
                "/users/me/apns_device_token",
                &[("token", token), ("appid", "org.zulip.Zulip")],
            )
            .await;
        let admitted = request_field_admits("POST", apns, "token", token);
        assert_eq!(accepted(&add, token), admitted, "APNs token {token:?}");
        // Removing takes the same tokens: a registered one goes, and one of
        // any other form is refused for its form.
        assert_eq!(
            request_field_admits("DELETE", apns, "token", token),
            admitted
        );
        let remove = server
            .delete(&user, "/users/me/apns_device_token", &[("token", token)])
            .await;
        assert_eq!(accepted(&remove, token), admitted, "APNs token {token:?}");
    }

    let long = "é".repeat(4096);
    let too_long = "x".repeat(4097);
    for token in ["fcm-token", "a b\u{1}c", &long, "", "a\0b", &too_long] {
        let add = server
            .post(&user, "/users/me/android_gcm_reg_id", &[("token", token)])
            .await;
        let admitted = request_field_admits("POST", fcm, "token", token);
        assert_eq!(accepted(&add, token), admitted, "FCM token {token:?}");
        assert_eq!(
            request_field_admits("DELETE", fcm, "token", token),
            admitted
        );
        let remove = server
            .delete(&user, "/users/me/android_gcm_reg_id", &[("token", token)])
            .await;
        assert_eq!(accepted(&remove, token), admitted, "FCM token {token:?}");
    }

    let longest = "a".repeat(255);
    let too_long = "a".repeat(256);
    for appid in [
        "org.zulip.Zulip",
        "A-1.b",
        &longest,
        "",
        "org zulip",
        "org.zulip/Zulip",
        "org.zulip.Zulip\n",
        "zülip",
        &too_long,
    ] {
        let add = server
            .post(
                &user,
                "/users/me/apns_device_token",
                &[("token", "c0ffee"), ("appid", appid)],
            )
            .await;
        assert_eq!(
            accepted(&add, appid),
            request_field_admits("POST", apns, "appid", appid),
            "appid {appid:?}"
        );
    }
}
