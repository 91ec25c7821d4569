//! Where the server follows Zulip's current code rather than an older
//! page: the single-user GET of feature level 497 (docs/PROTOCOL.md §6.2).

use presence_tests::{START, TestServer, User};
use serde_json::{Value, json};

/// `POST /users/me/presence` as `reader` (idle, from its own client) with
/// these extra fields; the success body.
async fn fetch(server: &TestServer, reader: &User, extra: &[(&str, &str)]) -> Value {
    let mut form = vec![("status", "idle"), ("client", "reader")];
    form.extend_from_slice(extra);
    server.post(reader, "/users/me/presence", &form).await.ok()
}

#[tokio::test]
async fn the_single_user_answer_has_the_modern_timestamps_beside_the_entries() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;
    server.clock.advance(100);
    server.report(alice, "ZulipMobile", "idle").await;
    server.clock.advance(7);

    let body = server
        .get(reader, &format!("/users/{}/presence", alice.email))
        .await
        .ok();
    assert_eq!(body["server_timestamp"], json!((START + 107) as f64));
    let presence = &body["presence"];
    assert_eq!(presence["active_timestamp"], START);
    assert_eq!(presence["idle_timestamp"], START + 100);
    // The legacy keys are all still there, for older readers.
    assert_eq!(presence["aggregated"]["client"], "ZulipMobile");
    assert_eq!(presence["website"]["status"], "active");
    assert_eq!(presence["ZulipMobile"]["timestamp"], START + 100);
    assert_eq!(presence.as_object().unwrap().len(), 5, "{presence}");

    // The same two numbers as the realm's modern answer holds for her.
    let modern = fetch(&server, reader, &[("last_update_id", "-1")]).await;
    let mine = &modern["presences"][alice.id.to_string()];
    assert_eq!(mine["active_timestamp"], presence["active_timestamp"]);
    assert_eq!(mine["idle_timestamp"], presence["idle_timestamp"]);

    let settings = server
        .send(reqwest::Client::new().get(server.url("/server_settings")))
        .await
        .ok();
    assert_eq!(settings["zulip_feature_level"], 497);
}

#[tokio::test]
async fn no_client_takes_the_name_of_a_timestamp() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    for name in ["active_timestamp", "IDLE_TIMESTAMP"] {
        server
            .post(
                alice,
                "/users/me/presence",
                &[("status", "active"), ("client", name)],
            )
            .await
            .error(400, "BAD_REQUEST", "Invalid client name");
    }
    // A User-Agent never fails: it reports as `Unspecified`.
    let request = server
        .request(reqwest::Method::POST, alice, "/users/me/presence")
        .header("user-agent", "idle_timestamp/1.0")
        .form(&[("status", "active"), ("ping_only", "true")]);
    server.send(request).await.ok();
    let presence = server.presence_of(reader, &alice.email).await;
    assert_eq!(presence["Unspecified"]["status"], "active");
    assert_eq!(presence["idle_timestamp"], START, "still the timestamp");
}
