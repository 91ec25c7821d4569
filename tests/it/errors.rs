//! Refusals of docs/PROTOCOL.md §1.10, §2.1 and §6.2-§6.4: status, code,
//! message and headers exactly.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use presence_server::config::RateLimit;
use presence_tests::{Options, TestServer, User};
use reqwest::Method;

async fn raw_auth(server: &TestServer, authorization: &str) -> presence_tests::Answer {
    server
        .send(
            reqwest::Client::new()
                .get(server.url("/users/me"))
                .header("Authorization", authorization),
        )
        .await
}

fn basic(email: &str, key: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{email}:{key}")))
}

#[tokio::test]
async fn missing_authorization_is_401_with_challenge() {
    let server = TestServer::start().await;
    let answer = server
        .send(reqwest::Client::new().get(server.url("/realm/presence")))
        .await;
    answer.error(
        401,
        "UNAUTHORIZED",
        "Not logged in: API authentication or user session required",
    );
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Basic realm=\"zulip\"")
    );
}

#[tokio::test]
async fn credential_errors_follow_the_table() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);

    let answer = raw_auth(&server, "Bearer abc").await;
    answer.error(
        400,
        "BAD_REQUEST",
        "This endpoint requires HTTP basic authentication.",
    );
    assert_eq!(answer.header("www-authenticate"), None);

    for header in [
        "Basic !!notbase64",
        "Basic",
        &format!("Basic {}", STANDARD.encode("nocolon")),
    ] {
        let answer = raw_auth(&server, header).await;
        answer.error(
            401,
            "UNAUTHORIZED",
            "Invalid authorization header for basic auth",
        );
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Basic realm=\"zulip\"")
        );
    }

    for key in ["short", &"a".repeat(33), &format!("{}!", "a".repeat(31))] {
        let answer = raw_auth(&server, &basic(&alice.email, key)).await;
        answer.error(401, "UNAUTHORIZED", "Malformed API key");
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Basic realm=\"zulip\"")
        );
    }

    let answer = raw_auth(&server, &basic(&alice.email, &"A".repeat(32))).await;
    answer.error(401, "UNAUTHORIZED", "Invalid API key");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Basic realm=\"zulip\"")
    );

    // The right key with somebody else's email is refused the same way.
    let answer = raw_auth(&server, &basic("someone@else.test", &alice.key)).await;
    answer.error(401, "UNAUTHORIZED", "Invalid API key");

    // The email is compared without regard to case.
    let answer = raw_auth(&server, &basic(&alice.email.to_uppercase(), &alice.key)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn deactivated_user_and_realm_are_refused() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let mut store = server.admin_store();
    store
        .set_user_active("acme", &users[0].email, false)
        .unwrap();
    server
        .wait_until(|| async { server.get(&users[0], "/users/me").await.status == 401 })
        .await;
    let answer = server.get(&users[0], "/users/me").await;
    answer.error(401, "UNAUTHORIZED", "Account is deactivated");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Basic realm=\"zulip\"")
    );

    store.set_realm_deactivated("acme", true).unwrap();
    server
        .wait_until(|| async { server.get(&users[1], "/users/me").await.status == 401 })
        .await;
    server.get(&users[1], "/users/me").await.error(
        401,
        "UNAUTHORIZED",
        "This organization has been deactivated",
    );
    // The realm is checked before the user, as in Zulip.
    server.get(&users[0], "/users/me").await.error(
        401,
        "UNAUTHORIZED",
        "This organization has been deactivated",
    );
}

#[tokio::test]
async fn rate_limit_hit_is_429_with_retry_after() {
    let mut options = Options::default();
    options.config.rate_limit = RateLimit::PerUser {
        requests: 3,
        per_secs: 60,
    };
    let server = TestServer::start_with(options).await;
    server.create_realm("acme");
    // create_user polls until the user is known; that costs tokens, so use a
    // second user for the count.
    let alice = server.create_user("acme", "alice@acme.test", false).await;
    server.clock.advance(3600);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let answer = server.get(&alice, "/users/me").await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("x-ratelimit-limit"), Some("3"));
        remaining.push(answer.header("x-ratelimit-remaining").unwrap().to_owned());
        let reset: i64 = answer.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!(reset >= presence_tests::START + 3600);
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let answer = server.get(&alice, "/users/me").await;
    answer.error(429, "RATE_LIMIT_HIT", "API usage exceeded rate limit");
    let retry: f64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0.0 && retry <= 20.0, "{retry}");
    assert_eq!(answer.body["retry-after"].as_f64(), Some(retry));
    assert_eq!(answer.header("x-ratelimit-remaining"), Some("0"));
    // Time heals.
    server.clock.advance(21);
    assert_eq!(server.get(&alice, "/users/me").await.status, 200);
}

#[tokio::test]
async fn every_authenticated_answer_has_rate_limit_headers() {
    let mut options = Options::default();
    options.config.rate_limit = RateLimit::PerUser {
        requests: 200,
        per_secs: 60,
    };
    let server = TestServer::start_with(options).await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    for answer in [
        server.get(&alice, "/users/me").await,
        server.get(&alice, "/users/nobody@acme.test/presence").await,
        server.post(&alice, "/users/me/presence", &[]).await,
    ] {
        assert!(answer.header("x-ratelimit-limit").is_some(), "{answer:?}");
        assert!(
            answer.header("x-ratelimit-remaining").is_some(),
            "{answer:?}"
        );
        assert!(answer.header("x-ratelimit-reset").is_some(), "{answer:?}");
    }
    let unauthenticated = server
        .send(reqwest::Client::new().get(server.url("/server_settings")))
        .await;
    assert_eq!(unauthenticated.header("x-ratelimit-limit"), None);
}

#[tokio::test]
async fn target_errors() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let bot = server.create_user("acme", "bot@acme.test", true).await;
    let (reader, quiet) = (&users[0], &users[1]);

    for target in ["nobody@acme.test", "999999", "-1"] {
        server
            .get(reader, &format!("/users/{target}/presence"))
            .await
            .error(400, "BAD_REQUEST", "No such user");
    }
    for target in [bot.email.clone(), bot.id.to_string()] {
        server
            .get(reader, &format!("/users/{target}/presence"))
            .await
            .error(
                400,
                "BAD_REQUEST",
                "Presence is not supported for bot users.",
            );
    }
    // The message repeats the value as given, case and all.
    let as_given = quiet.email.to_uppercase();
    server
        .get(reader, &format!("/users/{as_given}/presence"))
        .await
        .error(
            400,
            "BAD_REQUEST",
            &format!("No presence data for {as_given}"),
        );
    server
        .get(reader, &format!("/users/{}/presence", quiet.id))
        .await
        .error(
            400,
            "BAD_REQUEST",
            &format!("No presence data for {}", quiet.id),
        );
}

#[tokio::test]
async fn status_errors() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    let answer = server
        .post(&alice, "/users/me/presence", &[("ping_only", "true")])
        .await;
    answer.error(400, "REQUEST_VARIABLE_MISSING", "Missing 'status' argument");
    assert_eq!(answer.body["var_name"], "status");
    server
        .post(&alice, "/users/me/presence", &[("status", "away")])
        .await
        .error(400, "BAD_REQUEST", "Invalid status: away");
    for (name, value, msg) in [
        ("ping_only", "yes", "ping_only is not valid JSON"),
        ("ping_only", "1", "ping_only is not a boolean"),
        ("last_update_id", "1.5", "last_update_id is not an integer"),
        (
            "last_update_id",
            "\"3\"",
            "last_update_id is not an integer",
        ),
        (
            "history_limit_days",
            "x",
            "history_limit_days is not valid JSON",
        ),
        ("slim_presence", "null", "slim_presence is not a boolean"),
        ("new_user_input", "True", "new_user_input is not valid JSON"),
    ] {
        server
            .post(
                &alice,
                "/users/me/presence",
                &[("status", "active"), (name, value)],
            )
            .await
            .error(400, "BAD_REQUEST", msg);
    }
    // None of the refused reports was stored.
    let bob = server.create_user("acme", "bob@acme.test", false).await;
    server
        .get(&bob, &format!("/users/{}/presence", alice.email))
        .await
        .error(
            400,
            "BAD_REQUEST",
            &format!("No presence data for {}", alice.email),
        );
}

#[tokio::test]
async fn bots_may_read_but_not_post() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    let bot = server.create_user("acme", "bot@acme.test", true).await;
    server.report(&alice, "website", "active").await;
    server
        .post(&bot, "/users/me/presence", &[("status", "active")])
        .await
        .error(
            400,
            "BAD_REQUEST",
            "This endpoint does not accept bot requests.",
        );
    // Even without a status: the bot check comes first.
    server.post(&bot, "/users/me/presence", &[]).await.error(
        400,
        "BAD_REQUEST",
        "This endpoint does not accept bot requests.",
    );
    let presence = server.presence_of(&bot, &alice.email).await;
    assert_eq!(presence["aggregated"]["status"], "active");
    let realm = server.get(&bot, "/realm/presence").await.ok();
    assert!(realm["presences"][&alice.email].is_object());
    assert!(realm["presences"].get(&bot.email).is_none());
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    for path in [
        "/api/v1/nope",
        "/api/v1/users/me/presence/extra",
        "/nope",
        "/api/v2/users",
    ] {
        let answer = server
            .send(reqwest::Client::new().get(format!("{}{path}", server.base)))
            .await;
        answer.error(404, "NOT_FOUND", "Endpoint does not exist.");
    }
    let answer = server.get(&alice, "/users/me/presence").await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.body["result"], "error");
    assert_eq!(answer.body["msg"], "Method Not Allowed");
    assert!(answer.body.get("code").is_none(), "{}", answer.body);
    assert_eq!(answer.body["allowed_methods"], serde_json::json!(["POST"]));
    assert_eq!(answer.header("allow"), Some("POST"));

    // Pages' browsers may also ask what a read endpoint allows.
    let answer = server
        .send(server.request(Method::PUT, &alice, "/realm/presence"))
        .await;
    assert_eq!(answer.status, 405);
    assert_eq!(
        answer.body["allowed_methods"],
        serde_json::json!(["GET", "HEAD", "OPTIONS"])
    );
}

#[tokio::test]
async fn head_is_served_like_get() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    let answer = server
        .send(server.request(Method::HEAD, &alice, "/users/me"))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, serde_json::Value::Null);
    assert!(
        answer
            .header("content-length")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn malformed_bodies_are_refused_and_change_nothing() {
    let mut options = Options::default();
    options.config.max_body_bytes = 1024;
    let server = TestServer::start_with(options).await;
    let users = server.realm_with_users("acme", 2).await;
    let alice = &users[0];
    let big = format!("status=active&pad={}", "x".repeat(2000));
    let answer = server
        .send(
            server
                .request(Method::POST, alice, "/users/me/presence")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(big),
        )
        .await;
    answer.error(
        413,
        "BAD_REQUEST",
        "Request body too large (the limit is 1024 bytes)",
    );

    let answer = server
        .send(
            server
                .request(Method::POST, alice, "/users/me/presence")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(b"status=active&x=\xff".to_vec()),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["code"], "BAD_REQUEST");
    assert!(
        answer.body["msg"].as_str().unwrap().contains("UTF-8"),
        "{}",
        answer.body
    );

    let answer = server
        .send(server.request(
            Method::POST,
            alice,
            "/users/me/presence?status=active&x=%C3%28",
        ))
        .await;
    assert_eq!(answer.status, 400);

    // Nothing of the refused reports was stored.
    server
        .get(&users[1], &format!("/users/{}/presence", alice.email))
        .await
        .error(
            400,
            "BAD_REQUEST",
            &format!("No presence data for {}", alice.email),
        );
}

#[tokio::test]
async fn client_names_are_bounded() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    for name in ["x".repeat(31), "aggregated".to_owned(), String::new()] {
        server
            .post(
                &alice,
                "/users/me/presence",
                &[("status", "active"), ("client", &name)],
            )
            .await
            .error(400, "BAD_REQUEST", "Invalid client name");
    }
    // A User-Agent never fails a request: a long product name is cut to
    // 30 characters, as Zulip cuts it.
    let body = server
        .send(
            server
                .request(Method::POST, &alice, "/users/me/presence")
                .header("user-agent", format!("{}/1.0", "Y".repeat(40)))
                .form(&[("status", "active")]),
        )
        .await
        .ok();
    assert_eq!(
        body["presences"][&alice.email]["aggregated"]["client"],
        "Y".repeat(30)
    );
}

#[tokio::test]
async fn unknown_parameters_are_listed_not_refused() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    let body = server
        .post(
            &alice,
            "/users/me/presence",
            &[
                ("status", "active"),
                ("zeta", "1"),
                ("alpha", "2"),
                ("ping_only", "true"),
            ],
        )
        .await
        .ok();
    assert_eq!(
        body["ignored_parameters_unsupported"],
        serde_json::json!(["alpha", "zeta"])
    );
    let body = server
        .patch(
            &alice,
            "/settings",
            &[("presence_enabled", "true"), ("theme", "dark")],
        )
        .await
        .ok();
    assert_eq!(
        body["ignored_parameters_unsupported"],
        serde_json::json!(["theme"])
    );
}

#[tokio::test]
async fn bad_paths_never_reach_another_user() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let reader: &User = &users[0];
    for target in [
        "%FF",
        "..%2F..%2Fsettings",
        "%00",
        "99999999999999999999999",
        " ",
    ] {
        let answer = server
            .get(reader, &format!("/users/{target}/presence"))
            .await;
        assert_eq!(answer.status, 400, "{target}: {}", answer.body);
        assert_eq!(answer.body["result"], "error");
    }
}
