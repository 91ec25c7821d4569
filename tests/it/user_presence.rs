//! The seed endpoint: one user's presence, per client plus `aggregated`.

use presence_tests::{START, TestServer};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn several_clients_and_the_aggregate() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;
    server.clock.advance(30);
    server.report(alice, "ZulipMobile", "idle").await;
    server.clock.advance(30);
    server.report(alice, "ZulipTerminal", "active").await;

    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(
        p,
        json!({
            "active_timestamp": START + 60,
            "idle_timestamp": START + 60,
            "aggregated": {"client": "ZulipTerminal", "status": "active", "timestamp": START + 60},
            "website": {"client": "website", "status": "active", "timestamp": START, "pushable": false},
            "ZulipMobile": {"client": "ZulipMobile", "status": "idle", "timestamp": START + 30, "pushable": false},
            "ZulipTerminal": {"client": "ZulipTerminal", "status": "active", "timestamp": START + 60, "pushable": false},
        })
    );
    // By id, by email in any case and with spaces, and percent-encoded: the same answer.
    for target in [
        alice.id.to_string(),
        alice.email.to_uppercase(),
        format!("%20{}%20", alice.email),
        alice.email.replace('@', "%40"),
    ] {
        assert_eq!(server.presence_of(reader, &target).await, p, "{target}");
    }
    // A user may read their own presence.
    assert_eq!(server.presence_of(alice, &alice.email).await, p);
}

#[tokio::test]
async fn offline_after_the_threshold() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;
    server.clock.advance(200);
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(p["aggregated"]["status"], "active");
    server.clock.advance(1);
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(p["aggregated"]["status"], "offline");
    assert_eq!(p["aggregated"]["timestamp"], START);
    // Only `aggregated` says offline; the client entry keeps its status.
    assert_eq!(p["website"]["status"], "active");
}

#[tokio::test]
async fn offline_threshold_is_configurable() {
    let mut options = presence_tests::Options::default();
    options.config.offline_threshold_secs = 30;
    let server = TestServer::start_with(options).await;
    let users = server.realm_with_users("acme", 2).await;
    server.report(&users[0], "website", "idle").await;
    server.clock.advance(31);
    let p = server.presence_of(&users[1], &users[0].email).await;
    assert_eq!(p["aggregated"]["status"], "offline");
}

#[tokio::test]
async fn pushable_follows_devices_and_the_setting() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;
    server.report(alice, "ZulipMobile", "active").await;
    let pushable = |p: &serde_json::Value| {
        (
            p["website"]["pushable"].as_bool().unwrap(),
            p["ZulipMobile"]["pushable"].as_bool().unwrap(),
        )
    };
    assert_eq!(
        pushable(&server.presence_of(reader, &alice.email).await),
        (false, false)
    );

    server
        .post(
            alice,
            "/users/me/android_gcm_reg_id",
            &[("token", "fcm-token-1")],
        )
        .await
        .ok();
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(pushable(&p), (true, true));
    assert!(
        p["aggregated"].get("pushable").is_none(),
        "aggregated has no pushable"
    );

    server
        .patch(
            alice,
            "/settings",
            &[("enable_offline_push_notifications", "false")],
        )
        .await
        .ok();
    assert_eq!(
        pushable(&server.presence_of(reader, &alice.email).await),
        (false, false)
    );
    server
        .patch(
            alice,
            "/settings",
            &[("enable_offline_push_notifications", "true")],
        )
        .await
        .ok();
    assert_eq!(
        pushable(&server.presence_of(reader, &alice.email).await),
        (true, true)
    );

    server
        .delete(
            alice,
            "/users/me/android_gcm_reg_id",
            &[("token", "fcm-token-1")],
        )
        .await
        .ok();
    assert_eq!(
        pushable(&server.presence_of(reader, &alice.email).await),
        (false, false)
    );
}

#[tokio::test]
async fn client_name_comes_from_the_user_agent() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    for (agent, name) in [
        ("ZulipMobile/27.1 (Android 14)", "ZulipMobile"),
        ("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "website"),
        ("ZulipPython/0.9.1 (Debian; 12)", "ZulipPython"),
    ] {
        server
            .send(
                server
                    .request(Method::POST, alice, "/users/me/presence")
                    .header("user-agent", agent)
                    .form(&[("status", "active"), ("ping_only", "true")]),
            )
            .await
            .ok();
        let p = server.presence_of(reader, &alice.email).await;
        assert_eq!(p[name]["client"], name, "{agent}: {p}");
    }
    // No User-Agent at all.
    let answer = server
        .send(
            reqwest::Client::builder()
                .build()
                .unwrap()
                .post(server.url("/users/me/presence"))
                .basic_auth(&alice.email, Some(&alice.key))
                .form(&[("status", "idle"), ("ping_only", "true")]),
        )
        .await;
    answer.ok();
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(p["Unspecified"]["status"], "idle");
}

#[tokio::test]
async fn a_plus_in_the_path_is_a_plus() {
    let server = TestServer::start().await;
    server.create_realm("acme");
    let plus = server
        .create_user("acme", "pat+work@acme.test", false)
        .await;
    let reader = server.create_user("acme", "reader@acme.test", false).await;
    server.report(&plus, "website", "active").await;
    // As the official Python client sends it: the email unencoded in the path.
    let p = server.presence_of(&reader, "pat+work@acme.test").await;
    assert_eq!(p["aggregated"]["status"], "active");
    let p = server.presence_of(&reader, "pat%2Bwork%40acme.test").await;
    assert_eq!(p["aggregated"]["status"], "active");
}
