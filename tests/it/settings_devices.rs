//! `PATCH /settings` (presence_enabled, push notifications) and the push
//! device endpoints.

use presence_tests::{Options, START, TestServer};
use reqwest::Method;
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
async fn a_bot_turning_presence_back_on_gets_no_record() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let bot = server.create_user("acme", "bot@acme.test", true).await;
    let reader = &users[0];
    let mark = server.incremental(reader, -1).await["presence_last_update_id"].clone();

    for value in ["false", "true"] {
        let body = server
            .patch(&bot, "/settings", &[("presence_enabled", value)])
            .await
            .ok();
        assert_eq!(body, json!({"result": "success", "msg": ""}));
    }

    // The setting changed, but bots have no presence: no record, no update id.
    let body = server.incremental(reader, -1).await;
    assert_eq!(body["presence_last_update_id"], mark);
    assert!(
        body["presences"].get(bot.id.to_string()).is_none(),
        "{body}"
    );
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

/// A token of 4,096 characters, different for each `i`: the longest Zulip takes.
fn long_token(i: usize) -> String {
    format!("{i:04}{}", "t".repeat(4092))
}

#[tokio::test]
async fn push_devices_per_user_are_capped() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    let fcm = "/users/me/android_gcm_reg_id";
    let apns = "/users/me/apns_device_token";
    for i in 0..32 {
        server
            .post(alice, fcm, &[("token", &long_token(i))])
            .await
            .ok();
    }
    let full = "Too many push devices (the limit is 32); remove one first";
    server
        .post(alice, fcm, &[("token", &long_token(32))])
        .await
        .error(400, "BAD_REQUEST", full);
    server
        .post(
            alice,
            apns,
            &[("token", "abcd"), ("appid", "org.zulip.Zulip")],
        )
        .await
        .error(400, "BAD_REQUEST", full);
    // Registering a device the user has is no new device.
    server
        .post(alice, fcm, &[("token", &long_token(0))])
        .await
        .ok();
    // Nothing refused was stored.
    let devices = |user_id: i64| {
        let dump = server
            .with_admin(|store| store.export())
            .expect("an export");
        dump.devices
            .into_iter()
            .filter(|d| d.user_id.0 == user_id)
            .map(|d| d.token)
            .collect::<Vec<_>>()
    };
    let stored = devices(alice.id);
    assert_eq!(stored.len(), 32);
    assert!(!stored.contains(&long_token(32)) && !stored.contains(&"abcd".to_owned()));
    // The cap is per user, and removing a device makes room again.
    server
        .post(bob, fcm, &[("token", &long_token(32))])
        .await
        .ok();
    server
        .delete(alice, fcm, &[("token", &long_token(5))])
        .await
        .ok();
    server
        .post(alice, fcm, &[("token", &long_token(32))])
        .await
        .ok();
    assert_eq!(devices(alice.id).len(), 32);
}

#[tokio::test]
async fn push_device_strings_are_bounded_as_zulip_bounds_them() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    let apns = "/users/me/apns_device_token";
    let fcm = "/users/me/android_gcm_reg_id";
    // Zulip has no bound on the app id; a bundle id is far shorter than 255.
    server
        .post(
            &alice,
            apns,
            &[("token", "abcd"), ("appid", &"a".repeat(60_000))],
        )
        .await
        .error(
            400,
            "BAD_REQUEST",
            "appid is too long (limit: 255 characters)",
        );
    server
        .post(
            &alice,
            apns,
            &[("token", "abcd"), ("appid", &"a".repeat(255))],
        )
        .await
        .ok();
    // Zulip checks the app id before the token.
    server
        .post(&alice, apns, &[("token", ""), ("appid", "bad app id")])
        .await
        .error(400, "BAD_REQUEST", "appid has invalid format");
    // An APNs token is bytes in hexadecimal, two digits each: Zulip's
    // `bytes.fromhex`, which also skips whitespace between the pairs.
    server
        .post(
            &alice,
            apns,
            &[("token", "abc"), ("appid", "org.zulip.Zulip")],
        )
        .await
        .error(400, "BAD_REQUEST", "Invalid APNS token");
    server
        .post(
            &alice,
            apns,
            &[("token", "AB CD ef01"), ("appid", "org.zulip.Zulip")],
        )
        .await
        .ok();
    // Stored as the bytes' hexadecimal: the same device under either spelling.
    server
        .delete(&alice, apns, &[("token", "abcdef01")])
        .await
        .ok();
    // The length is counted in characters, as Zulip counts it.
    server
        .post(&alice, fcm, &[("token", &"é".repeat(4096))])
        .await
        .ok();
    server
        .post(&alice, fcm, &[("token", &"é".repeat(4097))])
        .await
        .error(400, "BAD_REQUEST", "Empty or invalid length token");
    // A NUL cannot be stored (PostgreSQL refuses it, for Zulip too).
    server.post(&alice, fcm, &[("token", "a\0b")]).await.error(
        400,
        "BAD_REQUEST",
        "Invalid FCM token",
    );
}

#[tokio::test]
async fn the_device_cap_holds_for_registrations_that_arrive_together() {
    let mut options = Options::default();
    options.config.max_devices_per_user = 3;
    let server = TestServer::start_with(options).await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    // Ten at once: the writer takes those that wait together as one batch,
    // and counts each registration against the ones before it.
    let mut sent = tokio::task::JoinSet::new();
    for i in 0..10 {
        let request = server
            .request(Method::POST, &alice, "/users/me/android_gcm_reg_id")
            .form(&[("token", format!("token-{i}"))]);
        sent.spawn(async move { request.send().await.expect("an answer").status() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = sent.join_next().await {
        statuses.push(status.expect("the request task ends").as_u16());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 400, 400, 400, 400, 400, 400, 400]);
    let dump = server
        .with_admin(|store| store.export())
        .expect("an export");
    assert_eq!(dump.devices.len(), 3);
}
