//! `PATCH /settings` (presence_enabled, push notifications) and the push
//! device endpoints.

use presence_tests::{START, TestServer};
use serde_json::json;

#[tokio::test]
async fn presence_disabled_by_the_user_hides_and_enabled_restores() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;
    server.report(alice, "ZulipMobile", "active").await;
    let mark = server.incremental(reader, -1).await["presence_last_update_id"]
        .as_i64()
        .unwrap();
    server.clock.advance(10);

    let body = server
        .patch(alice, "/settings", &[("presence_enabled", "false")])
        .await
        .ok();
    assert_eq!(body, json!({"result": "success", "msg": ""}));

    // At once offline: every record moved back past the threshold.
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(p["aggregated"]["status"], "offline");
    let backdated = START + 10 - (200 + 55 + 10);
    assert_eq!(p["website"]["timestamp"], backdated);
    assert_eq!(p["ZulipMobile"]["timestamp"], backdated);
    // Incremental readers learn of it.
    let body = server.incremental(reader, mark).await;
    assert_eq!(
        body["presences"][alice.id.to_string()],
        json!({"active_timestamp": backdated, "idle_timestamp": backdated})
    );

    // Reports while hidden store nothing.
    server.clock.advance(100);
    server.report(alice, "website", "active").await;
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(p["aggregated"]["status"], "offline");
    assert_eq!(p["website"]["timestamp"], backdated);

    // Turning it on records the user active now, on the client that asked.
    server
        .send(
            server
                .request(reqwest::Method::PATCH, alice, "/settings")
                .header("user-agent", "ZulipMobile/27.1")
                .form(&[("presence_enabled", "true")]),
        )
        .await
        .ok();
    let p = server.presence_of(reader, &alice.email).await;
    assert_eq!(
        p["aggregated"],
        json!({"client": "ZulipMobile", "status": "active", "timestamp": START + 110})
    );

    // Setting the same value again changes nothing.
    let before = server.incremental(reader, -1).await["presence_last_update_id"].clone();
    server
        .patch(alice, "/settings", &[("presence_enabled", "true")])
        .await
        .ok();
    let after = server.incremental(reader, -1).await["presence_last_update_id"].clone();
    assert_eq!(before, after);
}

#[tokio::test]
async fn settings_refuse_bad_values_and_change_nothing() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    server.report(&users[0], "website", "active").await;
    server
        .patch(&users[0], "/settings", &[("presence_enabled", "no")])
        .await
        .error(400, "BAD_REQUEST", "presence_enabled is not valid JSON");
    server
        .patch(
            &users[0],
            "/settings",
            &[("enable_offline_push_notifications", "0")],
        )
        .await
        .error(
            400,
            "BAD_REQUEST",
            "enable_offline_push_notifications is not a boolean",
        );
    let p = server.presence_of(&users[1], &users[0].email).await;
    assert_eq!(p["aggregated"]["status"], "active");
}

#[tokio::test]
async fn push_device_errors() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    let apns = "/users/me/apns_device_token";
    let fcm = "/users/me/android_gcm_reg_id";

    let answer = server
        .post(&alice, apns, &[("appid", "org.zulip.Zulip")])
        .await;
    answer.error(400, "REQUEST_VARIABLE_MISSING", "Missing 'token' argument");
    assert_eq!(answer.body["var_name"], "token");
    server.post(&alice, apns, &[("token", "abcd")]).await.error(
        400,
        "REQUEST_VARIABLE_MISSING",
        "Missing 'appid' argument",
    );
    server
        .post(&alice, apns, &[("token", ""), ("appid", "org.zulip.Zulip")])
        .await
        .error(400, "BAD_REQUEST", "Empty or invalid length token");
    server
        .post(&alice, fcm, &[("token", &"x".repeat(4097))])
        .await
        .error(400, "BAD_REQUEST", "Empty or invalid length token");
    server
        .post(
            &alice,
            apns,
            &[("token", "not-hex"), ("appid", "org.zulip.Zulip")],
        )
        .await
        .error(400, "BAD_REQUEST", "Invalid APNS token");
    server
        .post(&alice, apns, &[("token", "abcd"), ("appid", "bad app id")])
        .await
        .error(400, "BAD_REQUEST", "appid has invalid format");
    server
        .delete(&alice, fcm, &[("token", "never-registered")])
        .await
        .error(400, "BAD_REQUEST", "Token does not exist");

    // Register twice, remove once: gone.
    for _ in 0..2 {
        server
            .post(
                &alice,
                apns,
                &[("token", "ABCD"), ("appid", "org.zulip.Zulip")],
            )
            .await
            .ok();
    }
    server.delete(&alice, apns, &[("token", "abcd")]).await.ok();
    server
        .delete(&alice, apns, &[("token", "abcd")])
        .await
        .error(400, "BAD_REQUEST", "Token does not exist");
}
