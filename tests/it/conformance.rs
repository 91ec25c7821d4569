//! Where the server follows Zulip's current code rather than an older
//! page: the single-user GET of feature level 497 (docs/PROTOCOL.md §6.2),
//! the history window as Zulip counts it (§5.5), which `GET` answers list
//! the parameters nobody read (§1.4), and when a poll names its queue
//! (§6.11).

use presence_tests::{START, TestServer, User};
use reqwest::Method;
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

/// `GET path` with this query as `user`; the success body.
async fn get_with(server: &TestServer, user: &User, path: &str, query: &[(&str, &str)]) -> Value {
    let request = server.request(Method::GET, user, path).query(query);
    server.send(request).await.ok()
}

#[tokio::test]
async fn typed_get_views_list_what_they_did_not_read() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;
    let ignored = |body: &Value| body["ignored_parameters_unsupported"].clone();

    // Zulip's single-user view has no parameter left since feature level
    // 487, `slim_presence` included; `client` is never listed.
    let path = format!("/users/{}/presence", alice.email);
    let body = get_with(
        &server,
        reader,
        &path,
        &[("zeta", "1"), ("slim_presence", "true"), ("client", "x")],
    )
    .await;
    assert_eq!(ignored(&body), json!(["slim_presence", "zeta"]));
    let body = get_with(&server, reader, &path, &[("client", "x")]).await;
    assert!(
        body.get("ignored_parameters_unsupported").is_none(),
        "{body}"
    );

    // `GET /users` reads `include_bots` and Zulip's `client_gravatar`.
    let query = [
        ("include_bots", "true"),
        ("client_gravatar", "false"),
        ("user_ids", "[1]"),
    ];
    let body = get_with(&server, reader, "/users", &query).await;
    assert_eq!(ignored(&body), json!(["user_ids"]));
    let request = server
        .request(Method::GET, reader, "/users")
        .query(&[("client_gravatar", "1")]);
    server
        .send(request)
        .await
        .error(400, "BAD_REQUEST", "client_gravatar is not a boolean");

    // A poll reads the options of a queue Zulip would make, and lists the rest.
    let registered = server
        .register(reader, &[("event_types", "[\"presence\"]")])
        .await;
    let queue = registered["queue_id"].as_str().unwrap();
    let query = [
        ("queue_id", queue),
        ("last_event_id", "-1"),
        ("dont_block", "true"),
        ("apply_markdown", "true"),
        ("event_types", "[\"presence\"]"),
        ("narrow", "[]"),
        ("lifespan_secs", "60"),
        ("mystery", "1"),
    ];
    let body = get_with(&server, reader, "/events", &query).await;
    assert_eq!(ignored(&body), json!(["mystery"]));
    let request = server.request(Method::GET, reader, "/events").query(&[
        ("queue_id", queue),
        ("last_event_id", "-1"),
        ("apply_markdown", "yes"),
    ]);
    server
        .send(request)
        .await
        .error(400, "BAD_REQUEST", "apply_markdown is not valid JSON");
}

#[tokio::test]
async fn plain_get_views_list_nothing() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let alice = &users[0];
    server.report(alice, "website", "active").await;
    let query = [("zeta", "1"), ("slim_presence", "true")];
    // Zulip's views of these take no parameters and never look.
    for path in ["/realm/presence", "/users/me"] {
        let body = get_with(&server, alice, path, &query).await;
        assert!(
            body.get("ignored_parameters_unsupported").is_none(),
            "{path}: {body}"
        );
    }
    let request = reqwest::Client::new()
        .get(server.url("/server_settings"))
        .query(&query);
    let body = server.send(request).await.ok();
    assert!(
        body.get("ignored_parameters_unsupported").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn a_poll_names_its_queue_only_when_it_waited() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    let registered = server
        .register(reader, &[("event_types", "[\"presence\"]")])
        .await;
    let queue = registered["queue_id"].as_str().unwrap().to_owned();
    let poll = |last: &'static str, dont_block: &'static str| {
        let request = server.request(Method::GET, reader, "/events").query(&[
            ("queue_id", queue.as_str()),
            ("last_event_id", last),
            ("dont_block", dont_block),
            ("mystery", "1"),
        ]);
        server.send(request)
    };

    // Answered at once, empty: the unknown parameter, no queue id.
    let body = poll("-1", "true").await.ok();
    assert_eq!(
        body,
        json!({"result": "success", "msg": "", "events": [],
        "ignored_parameters_unsupported": ["mystery"]})
    );

    // Answered at once, with an event already there: the same shape.
    server.report(alice, "website", "active").await;
    let body = poll("-1", "false").await.ok();
    assert_eq!(body["events"].as_array().unwrap().len(), 1, "{body}");
    assert!(body.get("queue_id").is_none(), "{body}");
    assert_eq!(body["ignored_parameters_unsupported"], json!(["mystery"]));

    // Waiting, then answered by the next event: the queue id, no list.
    let (waited, ()) = tokio::join!(poll("0", "false"), async {
        server.until_waiting(1).await;
        server.report(alice, "ZulipMobile", "idle").await;
    });
    let body = waited.ok();
    assert_eq!(body["queue_id"], queue.as_str());
    assert!(
        body.get("ignored_parameters_unsupported").is_none(),
        "{body}"
    );
    assert_eq!(body["events"][0]["id"], 1);
}
