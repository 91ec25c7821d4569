//! The update rule of docs/PROTOCOL.md §4.1, observed through the API: what is stored,
//! and which reports take an update id.

use presence_tests::{START, TestServer};

/// The current `presence_last_update_id` as the reader sees it.
async fn last_id(server: &TestServer, reader: &presence_tests::User) -> i64 {
    server.incremental(reader, -1).await["presence_last_update_id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn first_report_creates_a_record() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    server.report(&users[0], "website", "idle").await;
    let p = server.presence_of(&users[1], &users[0].email).await;
    assert_eq!(p["website"]["status"], "idle");
    assert_eq!(p["website"]["timestamp"], START);
    assert_eq!(p["website"]["client"], "website");
    assert_eq!(p["website"]["pushable"], false);
    assert_eq!(
        p["aggregated"],
        serde_json::json!({"client": "website", "status": "idle", "timestamp": START})
    );
}

#[tokio::test]
async fn reports_within_55_seconds_are_coalesced_without_an_id() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;
    let id = last_id(&server, reader).await;
    // The reader's own report took an id too; read again to settle it.
    let id_after_reader = last_id(&server, reader).await;
    assert!(id_after_reader >= id);

    server.clock.advance(55);
    server.report(alice, "website", "active").await;
    server.report(alice, "website", "idle").await;
    assert_eq!(
        last_id(&server, reader).await,
        id_after_reader,
        "no id is used when nothing changes"
    );
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(
        p["website"]["timestamp"], START,
        "times did not move within 55 s"
    );

    server.clock.advance(1);
    server.report(alice, "website", "active").await;
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(p["website"]["timestamp"], START + 56);
    assert!(last_id(&server, reader).await > id_after_reader);
}

#[tokio::test]
async fn idle_reports_keep_connection_and_age_activity() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;
    // Idle pings every 60 s: still active for 70 s, then idle at the latest ping.
    server.clock.advance(60);
    server.report(alice, "website", "idle").await;
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(p["website"]["status"], "active");
    assert_eq!(p["website"]["timestamp"], START);
    server.clock.advance(60);
    server.report(alice, "website", "idle").await;
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(p["website"]["status"], "idle");
    assert_eq!(p["website"]["timestamp"], START + 120);
}

#[tokio::test]
async fn active_after_idle_is_recorded_at_once() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "idle").await;
    server.clock.advance(10);
    // Within 55 s of the idle report, but the first active one: recorded.
    server.report(alice, "website", "active").await;
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(p["website"]["status"], "active");
    assert_eq!(p["website"]["timestamp"], START + 10);
}

#[tokio::test]
async fn out_of_order_reports_never_move_time_back() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;
    let before = last_id(&server, reader).await;
    // A report stamped earlier than the record (a late request, or a clock
    // step back) changes nothing.
    server.clock.advance(-500);
    server.report(alice, "website", "active").await;
    server.report(alice, "website", "idle").await;
    server.clock.advance(500);
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(p["website"]["timestamp"], START);
    assert_eq!(p["website"]["status"], "active");
    assert_eq!(last_id(&server, reader).await, before);
}

#[tokio::test]
async fn clients_are_bounded_per_user() {
    let mut options = presence_tests::Options::default();
    options.config.max_clients_per_user = 3;
    let server = TestServer::start_with(options).await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    for (i, client) in ["c1", "c2", "c3", "c4", "c5"].iter().enumerate() {
        server.report(alice, client, "active").await;
        server.clock.advance(if i == 0 { 100 } else { 1 });
    }
    let clients = server.clients_of(reader, &alice.email).await;
    // The oldest records made way for the newest.
    assert_eq!(clients, ["c3", "c4", "c5"]);
}

#[tokio::test]
async fn concurrent_reports_each_take_a_distinct_id() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 20).await;
    let reader = server.create_user("acme", "reader@acme.test", false).await;
    let start = last_id(&server, &reader).await;
    let mut tasks = Vec::new();
    for user in users.clone() {
        let request = server
            .request(reqwest::Method::POST, &user, "/users/me/presence")
            .form(&[("status", "active"), ("ping_only", "true")]);
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let body = server.incremental(&reader, start).await;
    let presences = body["presences"].as_object().unwrap();
    for user in &users {
        assert!(
            presences.contains_key(&user.id.to_string()),
            "{} missing",
            user.email
        );
    }
    assert_eq!(body["presence_last_update_id"], start + 20);
}
