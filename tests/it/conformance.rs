//! Where the server follows Zulip's current code rather than an older
//! page: the single-user GET of feature level 497 (docs/PROTOCOL.md §6.2)
//! and the history window as Zulip counts it (§5.5).

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

#[tokio::test]
async fn a_huge_history_window_reaches_everyone_with_a_report() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;
    // Ten years on, where Zulip's date arithmetic would still hold.
    let days = 3_650;
    server.clock.advance(days * 86_400);
    let listed = |body: &Value| body["presences"].get(&alice.email).is_some();
    let listed_by_id = |body: &Value| body["presences"].get(alice.id.to_string()).is_some();

    assert!(
        !listed(&fetch(&server, reader, &[]).await),
        "the default 14 days"
    );
    let just_short = (days - 1).to_string();
    let exactly = days.to_string();
    assert!(!listed(
        &fetch(&server, reader, &[("history_limit_days", &just_short)]).await
    ));
    assert!(listed(
        &fetch(&server, reader, &[("history_limit_days", &exactly)]).await
    ));
    // Past where Zulip's arithmetic overflows: still everyone, never a refusal.
    for huge in ["999999999", &i64::MAX.to_string()] {
        let body = fetch(&server, reader, &[("history_limit_days", huge)]).await;
        assert!(listed(&body), "{huge}: {body}");
        let modern = fetch(
            &server,
            reader,
            &[("history_limit_days", huge), ("last_update_id", "-1")],
        )
        .await;
        assert!(listed_by_id(&modern), "{huge}: {modern}");
        let registered = server
            .register(reader, &[("presence_history_limit_days", huge)])
            .await;
        assert!(listed(&registered), "{huge}: {registered}");
    }
}

#[tokio::test]
async fn a_window_of_zero_days_empties_even_an_incremental_answer() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    let first = fetch(&server, reader, &[("last_update_id", "-1")]).await;
    let since = first["presence_last_update_id"].as_i64().unwrap();
    assert!(since > 0, "the reader's own report has an id: {first}");
    server.report(alice, "website", "active").await;
    let since_text = since.to_string();

    let zero = fetch(
        &server,
        reader,
        &[("last_update_id", &since_text), ("history_limit_days", "0")],
    )
    .await;
    assert_eq!(zero["presences"], json!({}));
    assert_eq!(zero["presence_last_update_id"], since, "the id sent stands");

    // Any other window leaves the incremental answer alone, a negative one
    // included: Zulip drops the time filter there and only 0 empties it.
    for days in ["-3", "1"] {
        let body = fetch(
            &server,
            reader,
            &[
                ("last_update_id", &since_text),
                ("history_limit_days", days),
            ],
        )
        .await;
        assert!(
            body["presences"].get(alice.id.to_string()).is_some(),
            "{days}: {body}"
        );
    }
    // Without `last_update_id`, a negative window starts in the future.
    let body = fetch(&server, reader, &[("history_limit_days", "-3")]).await;
    assert_eq!(body["presences"], json!({}));
}
