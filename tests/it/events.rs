//! Real-time presence: event queues (`POST /register`, `GET` and `DELETE
//! /events`) and the presence stream (`GET /presence/stream`).
//!
//! Transitions that happen with time (idle, offline) are driven by moving
//! the server's clock: the server notices them on its own within its
//! periodic tick, and the tests wait for the event by long-polling.

use std::time::{Duration, Instant};

use presence_server::config::Config;
use presence_tests::contract::check_schema;
use presence_tests::{Options, START, TestServer, User};
use serde_json::{Value, json};

fn options(change: impl FnOnce(&mut Config)) -> Options {
    let mut options = Options::default();
    change(&mut options.config);
    options
}

fn queue_id(registered: &Value) -> String {
    registered["queue_id"]
        .as_str()
        .expect("a queue id")
        .to_owned()
}

/// Registers `user` for presence events; the queue id.
async fn presence_queue(server: &TestServer, user: &User, extra: &[(&str, &str)]) -> String {
    let mut form = vec![("event_types", r#"["presence"]"#)];
    form.extend_from_slice(extra);
    queue_id(&server.register(user, &form).await)
}

#[tokio::test]
async fn register_answers_a_queue_and_everyones_presence() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    server.report(&users[0], "website", "active").await;

    let body = server.register(&users[1], &[]).await;
    let queue = queue_id(&body);
    assert_eq!(queue.len(), 36, "{queue}");
    assert_eq!(body["last_event_id"], -1);
    assert_eq!(body["zulip_feature_level"], 497);
    assert!(
        body["zulip_version"]
            .as_str()
            .unwrap()
            .starts_with("presence-server ")
    );
    assert_eq!(body["server_presence_ping_interval_seconds"], 60);
    assert_eq!(body["server_presence_offline_threshold_seconds"], 200);
    assert_eq!(body["server_timestamp"], json!(START as f64));
    assert!(
        body["event_queue_longpoll_timeout_seconds"]
            .as_i64()
            .unwrap()
            > 5
    );
    assert_eq!(
        body["presences"][&users[0].email]["aggregated"],
        json!({"client": "website", "status": "active", "timestamp": START})
    );
    assert!(body["presence_last_update_id"].as_i64().unwrap() >= 1);
    assert!(body.get("ignored_parameters_unsupported").is_none());

    // The modern format, keyed by user id, with either switch.
    let id = users[0].id.to_string();
    for form in [
        [("slim_presence", "true")],
        [(
            "client_capabilities",
            r#"{"simplified_presence_events": true, "notification_settings_null": true}"#,
        )],
    ] {
        let body = server.register(&users[1], &form).await;
        assert_eq!(
            body["presences"][&id],
            json!({"active_timestamp": START, "idle_timestamp": START}),
            "{form:?}"
        );
    }
}

#[tokio::test]
async fn register_fetches_presence_only_when_asked() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let user = &users[0];
    let body = server
        .register(user, &[("event_types", r#"["message"]"#)])
        .await;
    assert!(body.get("presences").is_none(), "{body}");
    assert!(body.get("server_presence_ping_interval_seconds").is_none());
    assert_eq!(body["last_event_id"], -1);

    let body = server
        .register(
            user,
            &[
                ("event_types", r#"["message"]"#),
                ("fetch_event_types", r#"["presence"]"#),
            ],
        )
        .await;
    assert_eq!(body["presences"], json!({}));
    assert_eq!(body["presence_last_update_id"], -1);

    // What the official Python client sends, and Zulip's other register
    // parameters, are understood; anything else is reported back.
    let body = server
        .register(
            user,
            &[
                ("event_types", "null"),
                ("narrow", "[]"),
                ("apply_markdown", "true"),
                ("client_gravatar", "false"),
                ("queue_colour", "blue"),
            ],
        )
        .await;
    assert!(body["presences"].is_object());
    assert_eq!(
        body["ignored_parameters_unsupported"],
        json!(["queue_colour"])
    );

    for (form, msg) in [
        (("event_types", "5"), "event_types is not a list"),
        (("event_types", r#"[1]"#), "event_types[0] is not a string"),
        (
            ("client_capabilities", "[]"),
            "client_capabilities is not a dict",
        ),
        (
            (
                "client_capabilities",
                r#"{"simplified_presence_events": 1}"#,
            ),
            "client_capabilities['simplified_presence_events'] is not a boolean",
        ),
        (("slim_presence", "yes"), "slim_presence is not valid JSON"),
    ] {
        server
            .post(user, "/register", &[form])
            .await
            .error(400, "BAD_REQUEST", msg);
    }
}

#[tokio::test]
async fn a_user_coming_online_is_an_event_on_every_queue_of_the_realm() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 4).await;
    let bob = &users[3];
    let legacy = presence_queue(&server, &users[0], &[]).await;
    let slim = presence_queue(&server, &users[1], &[("slim_presence", "true")]).await;
    let modern = presence_queue(
        &server,
        &users[2],
        &[(
            "client_capabilities",
            r#"{"simplified_presence_events":true}"#,
        )],
    )
    .await;

    server.report(bob, "website", "active").await;

    let events = server.next_presence(&users[0], &legacy, &mut -1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["id"], 0);
    assert_eq!(event["user_id"], bob.id);
    assert_eq!(event["email"], bob.email.as_str());
    assert_eq!(event["server_timestamp"], json!(START as f64));
    assert_eq!(
        event["presence"],
        json!({"website": {"client": "website", "status": "active", "timestamp": START, "pushable": false}})
    );

    let events = server.next_presence(&users[1], &slim, &mut -1).await;
    assert_eq!(events[0]["user_id"], bob.id);
    assert!(events[0].get("email").is_none(), "{}", events[0]);

    let events = server.next_presence(&users[2], &modern, &mut -1).await;
    assert_eq!(
        events[0],
        json!({"type": "presence", "id": 0,
               "presences": {bob.id.to_string(): {"active_timestamp": START, "idle_timestamp": START}}})
    );
}

#[tokio::test]
async fn a_waiting_poll_answers_when_the_event_comes() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let queue = presence_queue(&server, &users[0], &[]).await;
    let (poll, report) = tokio::join!(server.poll(&users[0], &queue, -1, false), async {
        server.until_waiting(1).await;
        server.report(&users[1], "ZulipMobile", "idle").await;
    });
    let body = poll.ok();
    let _: () = report;
    assert_eq!(body["queue_id"], queue.as_str());
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["presence"]["ZulipMobile"]["status"], "idle");
}

#[tokio::test]
async fn a_new_poll_takes_over_a_waiting_one() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let user = &users[0];
    let queue = presence_queue(&server, user, &[]).await;
    let started = Instant::now();
    let (old, new) = tokio::join!(server.poll(user, &queue, -1, false), async {
        server.until_waiting(1).await;
        server.poll(user, &queue, -1, true).await
    });
    assert_eq!(old.ok()["events"], json!([]), "the waiting poll answers");
    assert_eq!(new.ok()["events"], json!([]));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "well before a heartbeat"
    );
}

#[tokio::test]
async fn acknowledging_drops_events_and_odd_ids_are_refused() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 3).await;
    let reader = &users[0];
    let queue = presence_queue(&server, reader, &[]).await;
    // Each report is acknowledged after its event is queued.
    server.report(&users[1], "website", "active").await;
    server.report(&users[2], "website", "active").await;

    let ids = |body: Value| -> Vec<i64> {
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        ids(server.poll(reader, &queue, -1, true).await.ok()),
        [0, 1]
    );
    assert_eq!(ids(server.poll(reader, &queue, 0, true).await.ok()), [1]);
    assert_eq!(
        ids(server.poll(reader, &queue, 0, true).await.ok()),
        [1],
        "asking again gives the same events"
    );
    assert!(ids(server.poll(reader, &queue, 1, true).await.ok()).is_empty());
    server.poll(reader, &queue, 0, true).await.error(
        400,
        "BAD_REQUEST",
        "An event newer than 0 has already been pruned!",
    );
    server.poll(reader, &queue, 7, true).await.error(
        400,
        "BAD_REQUEST",
        "Event 7 was not in this queue",
    );
}

#[tokio::test]
async fn head_on_events_looks_without_acknowledging() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 3).await;
    let reader = &users[0];
    let queue = presence_queue(&server, reader, &[]).await;
    server.report(&users[1], "website", "active").await;
    server.report(&users[2], "website", "active").await;

    let head = |last: &str| {
        server
            .request(reqwest::Method::HEAD, reader, "/events")
            .query(&[("queue_id", queue.as_str()), ("last_event_id", last)])
    };
    for last in ["0", "1"] {
        let answer = server.send(head(last)).await;
        assert_eq!(answer.status, 200, "HEAD after {last}");
    }
    assert_eq!(server.send(head("7")).await.status, 400);
    // Nothing was acknowledged: a GET still has both events.
    let body = server.poll(reader, &queue, -1, true).await.ok();
    assert_eq!(body["events"].as_array().map(Vec::len), Some(2), "{body}");
}

#[tokio::test]
async fn a_silent_queue_answers_with_heartbeats() {
    let server = TestServer::start_with(options(|c| c.event_heartbeat_ms = 200)).await;
    let users = server.realm_with_users("acme", 1).await;
    let queue = presence_queue(&server, &users[0], &[]).await;
    let started = Instant::now();
    let body = server.poll(&users[0], &queue, -1, false).await.ok();
    assert_eq!(body["events"], json!([{"type": "heartbeat", "id": 0}]));
    assert_eq!(body["queue_id"], queue.as_str(), "it waited");
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(started.elapsed() < Duration::from_secs(5));
    let body = server.poll(&users[0], &queue, 0, false).await.ok();
    assert_eq!(body["events"], json!([{"type": "heartbeat", "id": 1}]));
}

#[tokio::test]
async fn dont_block_answers_at_once() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let queue = presence_queue(&server, &users[0], &[]).await;
    let body = server.poll(&users[0], &queue, -1, true).await.ok();
    assert_eq!(body["events"], json!([]));
    // Zulip names the queue only in an answer that waited.
    assert!(body.get("queue_id").is_none(), "{body}");
}

#[tokio::test]
async fn a_queue_expires_ten_minutes_after_its_last_poll() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let user = &users[0];
    let queue = presence_queue(&server, user, &[]).await;
    server.clock.advance(599);
    server.poll(user, &queue, -1, true).await.ok();
    server.clock.advance(599);
    server.poll(user, &queue, -1, true).await.ok();
    server.clock.advance(600);
    let answer = server.poll(user, &queue, -1, true).await;
    answer.error(
        400,
        "BAD_EVENT_QUEUE_ID",
        &format!("Bad event queue ID: {queue}"),
    );
    assert_eq!(answer.body["queue_id"], queue.as_str());
}

#[tokio::test]
async fn unknown_and_foreign_queues_are_bad_event_queue_ids() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let answer = server.poll(&users[0], "nope", -1, true).await;
    answer.error(400, "BAD_EVENT_QUEUE_ID", "Bad event queue ID: nope");
    assert_eq!(answer.body["queue_id"], "nope");

    // Another user's queue is no queue of the caller's.
    let queue = presence_queue(&server, &users[1], &[]).await;
    server.poll(&users[0], &queue, -1, true).await.error(
        400,
        "BAD_EVENT_QUEUE_ID",
        &format!("Bad event queue ID: {queue}"),
    );
    server
        .delete(&users[0], "/events", &[("queue_id", &queue)])
        .await
        .error(
            400,
            "BAD_EVENT_QUEUE_ID",
            &format!("Bad event queue ID: {queue}"),
        );
    server.poll(&users[1], &queue, -1, true).await.ok();

    // Zulip's plain errors for missing arguments.
    server
        .get(&users[0], "/events?last_event_id=-1")
        .await
        .error(400, "BAD_REQUEST", "Missing 'queue_id' argument");
    server
        .get(&users[1], &format!("/events?queue_id={queue}"))
        .await
        .error(400, "BAD_REQUEST", "Missing 'last_event_id' argument");
}

#[tokio::test]
async fn delete_removes_the_queue_and_ends_its_poll() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let user = &users[0];
    let queue = presence_queue(&server, user, &[]).await;
    let (poll, deleted) = tokio::join!(server.poll(user, &queue, -1, false), async {
        server.until_waiting(1).await;
        server
            .delete(user, "/events", &[("queue_id", &queue)])
            .await
    });
    assert_eq!(deleted.ok(), json!({"result": "success", "msg": ""}));
    assert_eq!(poll.ok()["events"], json!([]), "the waiting poll answers");
    let bad = format!("Bad event queue ID: {queue}");
    server
        .poll(user, &queue, -1, true)
        .await
        .error(400, "BAD_EVENT_QUEUE_ID", &bad);
    server
        .delete(user, "/events", &[("queue_id", &queue)])
        .await
        .error(400, "BAD_EVENT_QUEUE_ID", &bad);
    server.delete(user, "/events", &[]).await.error(
        400,
        "REQUEST_VARIABLE_MISSING",
        "Missing 'queue_id' argument",
    );
}

#[tokio::test]
async fn the_server_notices_idle_and_offline_on_its_own() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let marker = server.marker("acme").await;
    let (reader, bob) = (&users[0], &users[1]);
    let capabilities = r#"{"simplified_presence_events":true}"#;
    let queue = presence_queue(&server, reader, &[("client_capabilities", capabilities)]).await;
    let bob_id = bob.id.to_string();
    let mut last = -1;
    let modern = |events: Vec<Value>| events[0]["presences"][&bob_id].clone();

    server.report(bob, "website", "active").await;
    let came = modern(server.next_presence(reader, &queue, &mut last).await);
    assert_eq!(
        came,
        json!({"active_timestamp": START, "idle_timestamp": START})
    );

    // Still active a minute later, connected but idle: nothing to tell.
    server.clock.advance(60);
    server.report(bob, "website", "idle").await;
    server
        .assert_no_news(reader, &queue, &mut last, &marker)
        .await;

    // The active report is still within the threshold at +200 s ...
    server.clock.set(START + 200);
    server
        .assert_no_news(reader, &queue, &mut last, &marker)
        .await;
    // ... and past it a second later: bob is idle now.
    server.clock.set(START + 201);
    let idle = modern(server.next_presence(reader, &queue, &mut last).await);
    assert_eq!(
        idle,
        json!({"active_timestamp": START, "idle_timestamp": START + 60})
    );

    // Past the threshold after the idle report, bob is offline.
    server.clock.set(START + 260);
    server
        .assert_no_news(reader, &queue, &mut last, &marker)
        .await;
    server.clock.set(START + 261);
    let offline = modern(server.next_presence(reader, &queue, &mut last).await);
    assert_eq!(
        offline, idle,
        "the timestamps are the same; the time is not"
    );
    // Nothing more happens by itself (within the queue's ten minutes).
    server.clock.advance(500);
    server
        .assert_no_news(reader, &queue, &mut last, &marker)
        .await;
}

#[tokio::test]
async fn coming_online_follows_zulips_rule() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let marker = server.marker("acme").await;
    let (reader, bob) = (&users[0], &users[1]);
    let queue = presence_queue(&server, reader, &[]).await;
    let mut last = -1;

    // A first report, even idle, is news.
    server.report(bob, "website", "idle").await;
    server.next_presence(reader, &queue, &mut last).await;
    // Idle to active is news as well: others see green now.
    server.clock.advance(10);
    server.report(bob, "website", "active").await;
    let events = server.next_presence(reader, &queue, &mut last).await;
    assert_eq!(events[0]["presence"]["website"]["status"], "active");

    // Active again 100 s later: nothing others would not see anyway.
    server.clock.set(START + 110);
    server.report(bob, "website", "active").await;
    server
        .assert_no_news(reader, &queue, &mut last, &marker)
        .await;
    // A report that changes nothing is no event either.
    server.report(bob, "website", "active").await;
    server
        .assert_no_news(reader, &queue, &mut last, &marker)
        .await;

    // 140 s without an active report is more than Zulip's 130 s (offline
    // threshold less ping interval less 10 s): bob "comes online" again,
    // although he is still shown active.
    server.clock.set(START + 250);
    server.report(bob, "website", "active").await;
    let events = server.next_presence(reader, &queue, &mut last).await;
    assert_eq!(events[0]["presence"]["website"]["timestamp"], START + 250);
}

#[tokio::test]
async fn turning_presence_off_and_on_is_news() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (reader, bob) = (&users[0], &users[1]);
    let queue = presence_queue(&server, reader, &[]).await;
    let mut last = -1;
    server.report(bob, "website", "active").await;
    server.next_presence(reader, &queue, &mut last).await;

    server
        .patch(bob, "/settings", &[("presence_enabled", "false")])
        .await
        .ok();
    let events = server.next_presence(reader, &queue, &mut last).await;
    let timestamp = events[0]["presence"]["website"]["timestamp"]
        .as_i64()
        .unwrap();
    assert!(
        START - timestamp > 200,
        "shown offline at once: {timestamp}"
    );

    server
        .patch(
            bob,
            "/settings",
            &[("presence_enabled", "true"), ("client", "website")],
        )
        .await
        .ok();
    let events = server.next_presence(reader, &queue, &mut last).await;
    assert_eq!(events[0]["presence"]["website"]["timestamp"], START);
}

#[tokio::test]
async fn events_stay_in_their_realm() {
    let server = TestServer::start().await;
    let acme = server.realm_with_users("acme", 2).await;
    let globex = server.realm_with_users("globex", 2).await;
    let acme_queue = presence_queue(&server, &acme[0], &[]).await;
    let globex_queue = presence_queue(&server, &globex[0], &[]).await;

    server.report(&globex[1], "website", "active").await;
    let events = server
        .next_presence(&globex[0], &globex_queue, &mut -1)
        .await;
    assert_eq!(events[0]["user_id"], globex[1].id);

    // The first event the other realm's queue gets is its own realm's: the
    // one above, queued before it, did not reach it.
    server.report(&acme[1], "website", "active").await;
    let events = server.next_presence(&acme[0], &acme_queue, &mut -1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["user_id"], acme[1].id);
    // Nor can a queue be read from another realm.
    server.poll(&globex[0], &acme_queue, -1, true).await.error(
        400,
        "BAD_EVENT_QUEUE_ID",
        &format!("Bad event queue ID: {acme_queue}"),
    );
}

#[tokio::test]
async fn a_deactivated_users_queues_are_dropped() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let user = &users[0];
    let queue = presence_queue(&server, user, &[]).await;
    let mut store = server.admin_store();
    store.set_user_active("acme", &user.email, false).unwrap();
    server
        .wait_until(|| async { server.get(user, "/users/me").await.status == 401 })
        .await;
    store.set_user_active("acme", &user.email, true).unwrap();
    server
        .wait_until(|| async { server.get(user, "/users/me").await.status == 200 })
        .await;
    server.poll(user, &queue, -1, true).await.error(
        400,
        "BAD_EVENT_QUEUE_ID",
        &format!("Bad event queue ID: {queue}"),
    );
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_queues() {
    let server = TestServer::start_with(options(|c| c.max_queues_per_user = 2)).await;
    let users = server.realm_with_users("acme", 2).await;
    let user = &users[0];
    let first = presence_queue(&server, user, &[]).await;
    server.clock.advance(1);
    let second = presence_queue(&server, user, &[]).await;
    server.clock.advance(1);
    server.poll(user, &first, -1, true).await.ok();
    let third = presence_queue(&server, user, &[]).await;
    server.poll(user, &first, -1, true).await.ok();
    server.poll(user, &third, -1, true).await.ok();
    server.poll(user, &second, -1, true).await.error(
        400,
        "BAD_EVENT_QUEUE_ID",
        &format!("Bad event queue ID: {second}"),
    );
    // The bound is the user's own: another user still registers.
    presence_queue(&server, &users[1], &[]).await;
}

#[tokio::test]
async fn a_queue_nobody_reads_is_dropped_when_full() {
    let server = TestServer::start_with(options(|c| c.max_events_per_queue = 2)).await;
    let users = server.realm_with_users("acme", 4).await;
    let queue = presence_queue(&server, &users[0], &[]).await;
    for user in &users[1..] {
        server.report(user, "website", "active").await;
    }
    server.poll(&users[0], &queue, -1, true).await.error(
        400,
        "BAD_EVENT_QUEUE_ID",
        &format!("Bad event queue ID: {queue}"),
    );
}

#[tokio::test]
async fn a_stream_starts_with_a_snapshot_and_sends_events() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (reader, bob) = (&users[0], &users[1]);
    let mut stream = server.open_stream(reader, &[], None).await;
    let first = stream.next().await.unwrap();
    assert_eq!(first.retry.as_deref(), Some("3000"));

    let register = stream.next_data().await;
    assert_eq!(register.event.as_deref(), Some("register"));
    let body = register.json();
    check_schema("RegisterResponse", &body);
    let queue = queue_id(&body);
    assert_eq!(register.id, Some(format!("{queue}:-1")));
    assert_eq!(body["presences"], json!({}));

    server.report(bob, "website", "active").await;
    let message = stream.next_data().await;
    assert_eq!(message.id, Some(format!("{queue}:0")));
    assert_eq!(message.event.as_deref(), Some("presence"));
    let event = message.json();
    check_schema("Event", &event);
    assert_eq!(event["user_id"], bob.id);
    assert_eq!(event["id"], 0);
}

#[tokio::test]
async fn a_dropped_stream_resumes_without_loss_or_duplicates() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 4).await;
    let reader = &users[0];
    let query = [(
        "client_capabilities",
        r#"{"simplified_presence_events":true}"#,
    )];
    let mut stream = server.open_stream(reader, &query, None).await;
    let queue = queue_id(&stream.next_data().await.json());

    server.report(&users[1], "website", "active").await;
    let seen = stream.next_data().await;
    assert_eq!(seen.id, Some(format!("{queue}:0")));
    drop(stream);

    // This one happens while nobody listens.
    server.report(&users[2], "website", "active").await;

    let mut stream = server.open_stream(reader, &query, seen.id.as_deref()).await;
    let resumed = stream.next_data().await;
    assert_eq!(
        resumed.id,
        Some(format!("{queue}:1")),
        "no snapshot, no repeat"
    );
    assert!(resumed.json()["presences"][users[2].id.to_string()].is_object());

    server.report(&users[3], "website", "active").await;
    let next = stream.next_data().await;
    assert_eq!(next.id, Some(format!("{queue}:2")));
    assert!(next.json()["presences"][users[3].id.to_string()].is_object());
}

#[tokio::test]
async fn a_stream_whose_queue_is_gone_starts_afresh() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    server.report(&users[1], "website", "active").await;
    let mut stream = server
        .open_stream(&users[0], &[("slim_presence", "true")], Some("gone:3"))
        .await;
    let register = stream.next_data().await;
    assert_eq!(register.event.as_deref(), Some("register"));
    let body = register.json();
    assert_ne!(body["queue_id"], "gone");
    assert!(body["presences"][users[1].id.to_string()].is_object());
}

#[tokio::test]
async fn a_silent_stream_sends_keep_alives_and_ends_in_time() {
    let server = TestServer::start_with(options(|c| {
        c.event_stream_keepalive_ms = 100;
        c.event_stream_max_ms = 1_000;
    }))
    .await;
    let users = server.realm_with_users("acme", 1).await;
    let mut stream = server.open_stream(&users[0], &[], None).await;
    stream.next_data().await;
    let keepalive = stream.next().await.unwrap();
    assert_eq!(keepalive.comments, ["keep-alive"]);
    let started = Instant::now();
    while stream.next().await.is_some() {}
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_stream_needs_credentials_and_head_only_looks() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let answer = server
        .send(reqwest::Client::new().get(server.url("/presence/stream")))
        .await;
    answer.error(
        401,
        "UNAUTHORIZED",
        "Not logged in: API authentication or user session required",
    );
    let head = server
        .request(reqwest::Method::HEAD, &users[0], "/presence/stream")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "text/event-stream");
}

#[tokio::test]
async fn stopping_the_server_answers_waiting_polls() {
    let mut server = TestServer::start_with(options(|c| c.event_heartbeat_ms = 60_000)).await;
    let users = server.realm_with_users("acme", 1).await;
    let queue = presence_queue(&server, &users[0], &[]).await;
    let poll = server
        .request(reqwest::Method::GET, &users[0], "/events")
        .query(&[("queue_id", queue.as_str()), ("last_event_id", "-1")])
        .send();
    let waiting = tokio::spawn(poll);
    server.until_waiting(1).await;
    let started = Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let answer = waiting.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["events"], json!([]));
}
