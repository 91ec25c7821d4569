//! Realm-wide answers: `GET /realm/presence` and the fetch of
//! `POST /users/me/presence`, in the legacy and the modern format.

use presence_tests::{START, TestServer};
use serde_json::json;

#[tokio::test]
async fn get_realm_presence_lists_active_humans_with_data() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 3).await;
    let bot = server.create_user("acme", "bot@acme.test", true).await;
    server.report(&users[0], "website", "active").await;
    server.report(&users[1], "ZulipMobile", "idle").await;
    // users[2] never reported; the bot cannot.
    let body = server.get(&bot, "/realm/presence").await.ok();
    let presences = body["presences"].as_object().unwrap();
    let mut emails: Vec<&String> = presences.keys().collect();
    emails.sort();
    assert_eq!(emails, [&users[0].email, &users[1].email]);
    assert_eq!(
        presences[&users[0].email],
        json!({
            "aggregated": {"client": "website", "status": "active", "timestamp": START},
            "website": {"client": "website", "status": "active", "timestamp": START, "pushable": false}
        })
    );
    let ts = body["server_timestamp"].as_f64().unwrap();
    assert_eq!(ts, START as f64);
    // The legacy realm view never writes "offline".
    server.clock.advance(10_000);
    let body = server.get(&bot, "/realm/presence").await.ok();
    assert_eq!(
        body["presences"][&users[0].email]["aggregated"]["status"],
        "active"
    );
}

#[tokio::test]
async fn post_without_last_update_id_answers_legacy_by_email() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    server.report(&users[0], "website", "active").await;
    let body = server
        .post(
            &users[1],
            "/users/me/presence",
            &[("status", "idle"), ("client", "website")],
        )
        .await
        .ok();
    let presences = body["presences"].as_object().unwrap();
    assert_eq!(
        presences.len(),
        2,
        "both users, the caller included: {body}"
    );
    assert_eq!(presences[&users[1].email]["website"]["status"], "idle");
    assert!(body["server_timestamp"].is_f64());
    assert_eq!(body["presence_last_update_id"], 2);
}

#[tokio::test]
async fn modern_format_with_slim_presence_or_last_update_id() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;
    server.clock.advance(100);
    server.report(alice, "ZulipMobile", "idle").await;
    for extra in [
        ("slim_presence", "true"),
        ("last_update_id", "-1"),
        ("last_update_id", "0"),
    ] {
        let body = server
            .post(
                reader,
                "/users/me/presence",
                &[("status", "idle"), ("client", "reader"), extra],
            )
            .await
            .ok();
        assert_eq!(
            body["presences"][alice.id.to_string()],
            json!({"active_timestamp": START, "idle_timestamp": START + 100}),
            "{extra:?}: {body}"
        );
        // A user who never was active has date_joined as active_timestamp.
        assert_eq!(
            body["presences"][reader.id.to_string()]["active_timestamp"],
            START,
            "date_joined stands in"
        );
    }
}

#[tokio::test]
async fn last_update_id_returns_exactly_the_changes() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 4).await;
    let reader = server.create_user("acme", "reader@acme.test", false).await;

    // Everyone so far.
    server.report(&users[0], "website", "active").await;
    server.report(&users[1], "website", "active").await;
    let body = server.incremental(&reader, -1).await;
    let all = body["presences"].as_object().unwrap().clone();
    assert_eq!(all.len(), 3, "{body}");
    let mark = body["presence_last_update_id"].as_i64().unwrap();
    assert_eq!(mark, 3);

    // Nothing changed since: empty, and the id sent comes back.
    let body = server.incremental(&reader, mark).await;
    assert_eq!(body["presences"], json!({}));
    assert_eq!(body["presence_last_update_id"], mark);

    // Two changes: exactly those users, and the largest id.
    server.clock.advance(60);
    server.report(&users[2], "website", "active").await;
    server.report(&users[0], "website", "idle").await;
    let body = server.incremental(&reader, mark).await;
    let mut changed: Vec<String> = body["presences"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    changed.sort();
    // The reader's own report also moved (60 s later), so it is there too.
    let mut expected = vec![
        users[0].id.to_string(),
        users[2].id.to_string(),
        reader.id.to_string(),
    ];
    expected.sort();
    assert_eq!(changed, expected);
    assert_eq!(body["presence_last_update_id"], mark + 3);

    // An id from the future: nothing, and the id echoed.
    let body = server.incremental(&reader, 10_000).await;
    assert_eq!(body["presences"], json!({}));
    assert_eq!(body["presence_last_update_id"], 10_000);
}

/// Any window but 0, which empties every answer (see `conformance`).
#[tokio::test]
async fn incremental_ignores_the_history_window() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    server.report(&users[0], "website", "active").await;
    let body = server.incremental(&users[1], -1).await;
    let mark = body["presence_last_update_id"].as_i64().unwrap() - 1;
    let body = server
        .post(
            &users[1],
            "/users/me/presence",
            &[
                ("status", "idle"),
                ("last_update_id", &mark.to_string()),
                // A window that alone would list nobody.
                ("history_limit_days", "-1"),
            ],
        )
        .await
        .ok();
    assert!(
        body["presences"]
            .as_object()
            .unwrap()
            .contains_key(&users[1].id.to_string()),
        "{body}"
    );
}

#[tokio::test]
async fn empty_realm_answers_minus_one() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("quiet", 1).await;
    server.create_realm("other");
    let bot = server.create_user("other", "bot@other.test", true).await;
    // A bot cannot report, so its realm stays without presence data.
    let body = server.get(&bot, "/realm/presence").await.ok();
    assert_eq!(body["presences"], json!({}));
    // A human's fetch includes its own fresh report.
    let body = server.incremental(&users[0], -1).await;
    assert_eq!(body["presences"].as_object().unwrap().len(), 1);
    // With the history window closed nothing is returned: -1 without an id, the id with one.
    let body = server
        .post(
            &users[0],
            "/users/me/presence",
            &[("status", "idle"), ("history_limit_days", "0")],
        )
        .await
        .ok();
    assert_eq!(body["presences"], json!({}));
    assert_eq!(body["presence_last_update_id"], -1);
    let body = server
        .post(
            &users[0],
            "/users/me/presence",
            &[
                ("status", "idle"),
                ("history_limit_days", "0"),
                ("slim_presence", "true"),
            ],
        )
        .await
        .ok();
    assert_eq!(body["presences"], json!({}));
    assert_eq!(body["presence_last_update_id"], -1);

    // A realm whose only user hides their presence has no data at all.
    server.create_realm("hidden");
    let loner = server
        .create_user("hidden", "loner@hidden.test", false)
        .await;
    server
        .patch(&loner, "/settings", &[("presence_enabled", "false")])
        .await
        .ok();
    for (sent, expected) in [("-1", -1), ("0", 0)] {
        let body = server
            .post(
                &loner,
                "/users/me/presence",
                &[("status", "active"), ("last_update_id", sent)],
            )
            .await
            .ok();
        assert_eq!(body["presences"], json!({}), "{sent}");
        assert_eq!(body["presence_last_update_id"], expected, "{sent}");
    }
    let body = server
        .post(&loner, "/users/me/presence", &[("status", "active")])
        .await
        .ok();
    assert_eq!(body["presences"], json!({}));
    assert_eq!(body["presence_last_update_id"], -1);
}

#[tokio::test]
async fn history_limit_days_bounds_the_answer() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 3).await;
    let day = 86_400;
    server.report(&users[0], "website", "active").await; // 20 days ago, seen from the end
    server.clock.advance(15 * day);
    server.report(&users[1], "website", "active").await; // 5 days ago
    server.clock.advance(5 * day);
    let count = |body: serde_json::Value| body["presences"].as_object().unwrap().len();
    let fetch = |days: &'static str| {
        let server = &server;
        let reader = users[2].clone();
        async move {
            let mut form = vec![("status", "active")];
            if !days.is_empty() {
                form.push(("history_limit_days", days));
            }
            server.post(&reader, "/users/me/presence", &form).await.ok()
        }
    };
    assert_eq!(count(fetch("0").await), 0);
    assert_eq!(count(fetch("1").await), 1, "only the reader itself");
    assert_eq!(count(fetch("6").await), 2);
    assert_eq!(count(fetch("").await), 2, "the default window is 14 days");
    assert_eq!(count(fetch("30").await), 3);
    assert_eq!(
        count(fetch("1000000000000").await),
        3,
        "huge windows do not overflow"
    );
    assert_eq!(count(fetch("-5").await), 0);
    // GET /realm/presence uses the default window.
    assert_eq!(
        count(server.get(&users[2], "/realm/presence").await.ok()),
        2
    );
}

#[tokio::test]
async fn ping_only_answers_the_bare_envelope() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let body = server
        .post(
            &users[0],
            "/users/me/presence",
            &[("status", "active"), ("ping_only", "true")],
        )
        .await
        .ok();
    assert_eq!(body, json!({"result": "success", "msg": ""}));
    let body = server
        .post(
            &users[0],
            "/users/me/presence",
            &[
                ("status", "active"),
                ("ping_only", "true"),
                ("last_update_id", "5"),
                ("new_user_input", "true"),
            ],
        )
        .await
        .ok();
    assert_eq!(body, json!({"result": "success", "msg": ""}));
}

#[tokio::test]
async fn presence_disabled_realm_shows_and_stores_nothing() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    server.report(&users[0], "website", "active").await;
    server
        .admin_store()
        .set_realm_presence_disabled("acme", true)
        .unwrap();
    server
        .wait_until(|| async {
            server.get(&users[1], "/realm/presence").await.ok()["presences"] == json!({})
        })
        .await;
    let body = server.incremental(&users[1], -1).await;
    assert_eq!(body["presences"], json!({}));
    assert_eq!(body["presence_last_update_id"], -1);
    server
        .get(&users[1], &format!("/users/{}/presence", users[0].email))
        .await
        .error(
            400,
            "BAD_REQUEST",
            &format!("No presence data for {}", users[0].email),
        );
    // Reports succeed but store nothing: after re-enabling, users[1] has no data.
    server
        .admin_store()
        .set_realm_presence_disabled("acme", false)
        .unwrap();
    server
        .wait_until(|| async {
            server.get(&users[1], "/realm/presence").await.ok()["presences"] != json!({})
        })
        .await;
    server
        .get(&users[0], &format!("/users/{}/presence", users[1].email))
        .await
        .error(
            400,
            "BAD_REQUEST",
            &format!("No presence data for {}", users[1].email),
        );
}

#[tokio::test]
async fn extreme_ids_and_windows_are_answered_not_crashed() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    for (name, value) in [
        ("last_update_id", i64::MAX.to_string()),
        ("last_update_id", i64::MIN.to_string()),
        ("history_limit_days", i64::MAX.to_string()),
        ("history_limit_days", i64::MIN.to_string()),
    ] {
        let body = server
            .post(
                &users[0],
                "/users/me/presence",
                &[("status", "active"), (name, &value)],
            )
            .await
            .ok();
        assert!(body["presences"].is_object(), "{name}={value}: {body}");
    }
    let body = server.incremental(&users[0], i64::MAX).await;
    assert_eq!(body["presences"], json!({}));
    assert_eq!(body["presence_last_update_id"], i64::MAX);
}

#[tokio::test]
async fn shared_realm_answers_follow_every_change() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 3).await;
    let (alice, bob, reader) = (&users[0], &users[1], &users[2]);
    let realm = || async { server.get(reader, "/realm/presence").await.ok()["presences"].clone() };
    server.report(alice, "website", "active").await;
    server.clock.advance(86_400);
    server.report(bob, "website", "active").await;
    let first = realm().await;
    assert_eq!(realm().await, first, "the same answer twice");
    assert_eq!(first.as_object().unwrap().len(), 2);

    // A device changes `pushable` without any update id.
    server
        .post(bob, "/users/me/android_gcm_reg_id", &[("token", "t")])
        .await
        .ok();
    assert_eq!(realm().await[&bob.email]["website"]["pushable"], true);

    // Alice ages out of the 14-day window as time passes, with no change at all.
    server.clock.advance(13 * 86_400);
    assert!(realm().await.get(&alice.email).is_some());
    server.clock.advance(1);
    assert!(realm().await.get(&alice.email).is_none(), "aged out");

    // Deactivation removes bob; a new report brings alice back.
    server
        .admin_store()
        .set_user_active("acme", &bob.email, false)
        .unwrap();
    server
        .wait_until(|| async { realm().await.get(&bob.email).is_none() })
        .await;
    server.report(alice, "ZulipMobile", "active").await;
    assert_eq!(
        realm().await[&alice.email]["aggregated"]["client"],
        "ZulipMobile"
    );

    // The modern full answer is shared as well, and follows the same changes.
    let modern = || async {
        server
            .post(
                reader,
                "/users/me/presence",
                &[
                    ("status", "idle"),
                    ("client", "r"),
                    ("slim_presence", "true"),
                ],
            )
            .await
            .ok()
    };
    let body = modern().await;
    assert!(body["presences"].get(bob.id.to_string()).is_none());
    assert!(body["presences"].get(alice.id.to_string()).is_some());
    let id = body["presence_last_update_id"].as_i64().unwrap();
    server.clock.advance(60);
    server.report(alice, "ZulipMobile", "active").await;
    let body = modern().await;
    assert!(body["presence_last_update_id"].as_i64().unwrap() > id);
    assert_eq!(
        body["presences"][alice.id.to_string()]["active_timestamp"],
        START + 14 * 86_400 + 1 + 60
    );
}

/// GETs `path` as `reader` accepting gzip; returns the raw body and headers.
async fn gzip_get(
    server: &TestServer,
    reader: &presence_tests::User,
    path: &str,
) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let response = server
        .request(reqwest::Method::GET, reader, path)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn large_answers_are_gzipped_for_clients_that_accept_it() {
    use std::io::Read;
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 20).await;
    for user in &users {
        server.report(user, "website", "active").await;
    }
    let plain = server.get(&users[0], "/realm/presence").await;
    assert!(plain.header("content-encoding").is_none());
    assert_eq!(plain.header("vary"), Some("accept-encoding"));
    let plain = plain.body;

    let (headers, first) = gzip_get(&server, &users[0], "/realm/presence").await;
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["vary"], "accept-encoding");
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&first[..])
        .read_to_end(&mut decoded)
        .unwrap();
    let decoded: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
    presence_tests::contract::check("GET", "/api/v1/realm/presence", 200, &decoded);
    assert_eq!(decoded, plain);
    assert!(
        first.len() * 3 < serde_json::to_vec(&plain).unwrap().len(),
        "it compresses"
    );
    // The shared part is compressed once and reused: the same bytes again.
    let (_, second) = gzip_get(&server, &users[0], "/realm/presence").await;
    assert_eq!(first, second);

    // Small answers are sent as they are.
    let (headers, _) = gzip_get(&server, &users[0], "/users/me").await;
    assert!(headers.get("content-encoding").is_none());
}
