//! Custom status (docs/PROTOCOL.md §6.17): `POST /users/me/status` with
//! every parameter and every refusal, partial updates, `GET
//! /users/{user_id}/status`, `away` in step with `presence_enabled`, bots,
//! and realm isolation.

use presence_tests::{TestServer, User};
use serde_json::{Value, json};

/// The status `GET /users/{id}/status` answers, as `reader`.
async fn status_of(server: &TestServer, reader: &User, id: i64) -> Value {
    let body = server
        .get(reader, &format!("/users/{id}/status"))
        .await
        .ok();
    body["status"].clone()
}

async fn set(server: &TestServer, user: &User, form: &[(&str, &str)]) -> Value {
    server.post(user, "/users/me/status", form).await.ok()
}

#[tokio::test]
async fn every_parameter_sets_only_itself() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    assert_eq!(status_of(&server, bob, alice.id).await, json!({}));

    let body = set(&server, alice, &[("status_text", "  In a meeting  ")]).await;
    assert_eq!(body, json!({"result": "success", "msg": ""}));
    assert_eq!(
        status_of(&server, bob, alice.id).await,
        json!({"status_text": "In a meeting"})
    );

    // The emoji alone: the text stays. The code and type come from the name.
    set(&server, alice, &[("emoji_name", "calendar")]).await;
    let calendar = json!({"status_text": "In a meeting", "emoji_name": "calendar",
        "emoji_code": "1f4c5", "reaction_type": "unicode_emoji"});
    assert_eq!(status_of(&server, bob, alice.id).await, calendar);

    // All three given, for an emoji the server has no name for.
    let octopus = [
        ("emoji_name", "octopus"),
        ("emoji_code", "1f419"),
        ("reaction_type", "unicode_emoji"),
    ];
    set(&server, alice, &octopus).await;
    assert_eq!(
        status_of(&server, alice, alice.id).await["emoji_code"],
        "1f419"
    );
    set(&server, alice, &[("emoji_name", "zulip")]).await;
    assert_eq!(
        status_of(&server, alice, alice.id).await["reaction_type"],
        "zulip_extra_emoji"
    );

    // The text alone is cleared; then the emoji.
    set(&server, alice, &[("status_text", "")]).await;
    let status = status_of(&server, bob, alice.id).await;
    assert_eq!(status.get("status_text"), None);
    assert_eq!(status["emoji_name"], "zulip");
    set(
        &server,
        alice,
        &[("emoji_name", ""), ("emoji_code", "ignored")],
    )
    .await;
    assert_eq!(status_of(&server, bob, alice.id).await, json!({}));

    // Unknown parameters are listed, as Zulip lists them.
    let body = set(
        &server,
        alice,
        &[("status_text", "Back"), ("colour", "red")],
    )
    .await;
    assert_eq!(body["ignored_parameters_unsupported"], json!(["colour"]));
    // The extension: an expiry in the future, shown with the status.
    let later = (presence_tests::START + 3600).to_string();
    set(
        &server,
        alice,
        &[("status_text", "Lunch"), ("expires_at", &later)],
    )
    .await;
    let status = status_of(&server, bob, alice.id).await;
    assert_eq!(
        status,
        json!({"status_text": "Lunch", "expires_at": presence_tests::START + 3600})
    );
    // A change without one ends the expiry.
    set(&server, alice, &[("emoji_name", "bus")]).await;
    assert_eq!(
        status_of(&server, bob, alice.id).await.get("expires_at"),
        None
    );
}

/// Sends each refused request and checks its answer, and that the status
/// (set before) and presence are as they were.
async fn refused_without_change(cases: Vec<(Vec<(&str, &str)>, &str)>) {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let alice = &users[0];
    set(
        &server,
        alice,
        &[("status_text", "Keep me"), ("emoji_name", "house")],
    )
    .await;
    let kept = status_of(&server, alice, alice.id).await;
    for (form, msg) in cases {
        server
            .post(alice, "/users/me/status", &form)
            .await
            .error(400, "BAD_REQUEST", msg);
        assert_eq!(
            status_of(&server, alice, alice.id).await,
            kept,
            "after {form:?}"
        );
    }
    // Neither did `away` turn presence off along the way.
    server.report(alice, "website", "active").await;
    let me = server.presence_of(alice, &alice.email).await;
    assert_eq!(me["aggregated"]["status"], "active");
}

#[tokio::test]
async fn zulips_refusals_change_nothing() {
    let sixty_one = "x".repeat(61);
    let emoji_without_name =
        "Client must pass emoji_name if they pass either emoji_code or reaction_type.";
    refused_without_change(vec![
        (vec![], "Client did not pass any new values."),
        (vec![("client", "x")], "Client did not pass any new values."),
        (
            vec![("reaction_type", "unicode_emoji")],
            "Client did not pass any new values.",
        ),
        (
            vec![("status_text", &sixty_one)],
            "status_text is too long (limit: 60 characters)",
        ),
        (
            vec![("status_text", "a"), ("emoji_code", "1f4bb")],
            emoji_without_name,
        ),
        (
            vec![("away", "true"), ("reaction_type", "unicode_emoji")],
            emoji_without_name,
        ),
        (
            vec![("emoji_name", "invalid"), ("emoji_code", "1f4bb")],
            "Emoji 'invalid' does not exist",
        ),
        (
            vec![("emoji_name", "car"), ("emoji_code", "1f4bb")],
            "Invalid emoji name.",
        ),
        (
            vec![
                ("emoji_name", "car"),
                ("emoji_code", "1f4bb"),
                ("reaction_type", "realm_emoji"),
            ],
            "Invalid custom emoji.",
        ),
        (
            vec![
                ("emoji_name", "car"),
                ("emoji_code", "1f697"),
                ("reaction_type", "sticker"),
            ],
            "Invalid emoji type.",
        ),
        (
            vec![
                ("emoji_name", "car"),
                ("emoji_code", "nothex"),
                ("reaction_type", "unicode_emoji"),
            ],
            "Invalid emoji code.",
        ),
        (
            vec![
                ("emoji_name", "zulip"),
                ("emoji_code", "1f697"),
                ("reaction_type", "zulip_extra_emoji"),
            ],
            "Invalid emoji code.",
        ),
        (
            vec![
                ("emoji_name", "bus"),
                ("emoji_code", "zulip"),
                ("reaction_type", "zulip_extra_emoji"),
            ],
            "Invalid emoji name.",
        ),
        (vec![("away", "yes")], "away is not valid JSON"),
        (vec![("away", "1")], "away is not a boolean"),
        (
            vec![("status_text", "x"), ("client", "")],
            "Invalid client name",
        ),
    ])
    .await;
}

#[tokio::test]
async fn this_servers_refusals_change_nothing() {
    let past = presence_tests::START.to_string();
    refused_without_change(vec![
        (
            vec![("status_text", "x"), ("expires_at", "soon")],
            "expires_at is not valid JSON",
        ),
        (
            vec![("status_text", "x"), ("expires_at", "1.5")],
            "expires_at is not an integer",
        ),
        (
            vec![("status_text", "x"), ("expires_at", &past)],
            "expires_at must be in the future",
        ),
        (
            vec![("away", "false"), ("expires_at", "4000000000")],
            "expires_at needs status_text or emoji_name",
        ),
        (
            vec![("status_text", "a\u{0}b")],
            "status_text may not contain a NUL character",
        ),
    ])
    .await;
}

#[tokio::test]
async fn bots_neither_set_nor_have_a_status_and_targets_are_checked() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    let bot = server.create_user("acme", "bot@acme.test", true).await;
    server
        .post(&bot, "/users/me/status", &[("status_text", "beep")])
        .await
        .error(
            400,
            "BAD_REQUEST",
            "This endpoint does not accept bot requests.",
        );
    // A bot may read; a bot is no target.
    assert_eq!(status_of(&server, &bot, alice.id).await, json!({}));
    let path = format!("/users/{}/status", bot.id);
    server
        .get(alice, &path)
        .await
        .error(400, "BAD_REQUEST", "No such user");
    server
        .get(alice, "/users/999999/status")
        .await
        .error(400, "BAD_REQUEST", "No such user");
    let huge = "/users/99999999999999999999999/status";
    server
        .get(alice, huge)
        .await
        .error(400, "BAD_REQUEST", "No such user");
    // Zulip's route takes digits only.
    server.get(alice, "/users/bob/status").await.error(
        404,
        "NOT_FOUND",
        "Endpoint does not exist.",
    );
    let wrong = server.get(alice, "/users/me/status").await;
    assert_eq!(wrong.status, 405);
    // A deactivated user is refused as Zulip refuses one.
    set(&server, bob, &[("status_text", "Leaving")]).await;
    server.admin_change(|store| store.set_user_active("acme", &bob.email, false).unwrap());
    let path = format!("/users/{}/status", bob.id);
    server
        .wait_until(|| async { server.get(alice, &path).await.status == 400 })
        .await;
    server
        .get(alice, &path)
        .await
        .error(400, "BAD_REQUEST", "User is deactivated");
}

#[tokio::test]
async fn away_and_presence_enabled_are_one_setting() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    server.report(alice, "website", "active").await;

    set(&server, alice, &[("away", "true")]).await;
    assert_eq!(
        status_of(&server, bob, alice.id).await,
        json!({"away": true})
    );
    // Away is presence off: alice looks offline at once.
    let p = server.presence_of(bob, &alice.email).await;
    assert_eq!(p["aggregated"]["status"], "offline");

    // Presence turned on through the settings is away turned off.
    server
        .patch(alice, "/settings", &[("presence_enabled", "true")])
        .await
        .ok();
    assert_eq!(status_of(&server, bob, alice.id).await, json!({}));
    server
        .patch(alice, "/settings", &[("presence_enabled", "false")])
        .await
        .ok();
    assert_eq!(
        status_of(&server, bob, alice.id).await,
        json!({"away": true})
    );

    // `away: false` with a text: presence on, recorded active now on the
    // client that asked, and the text set, in one request.
    let form = [
        ("away", "false"),
        ("status_text", "Back"),
        ("client", "ZulipMobile"),
    ];
    set(&server, alice, &form).await;
    assert_eq!(
        status_of(&server, bob, alice.id).await,
        json!({"status_text": "Back"})
    );
    let p = server.presence_of(bob, &alice.email).await;
    assert_eq!(p["aggregated"]["status"], "active");
    assert_eq!(p["aggregated"]["client"], "ZulipMobile");
}

#[tokio::test]
async fn statuses_stay_in_their_realm() {
    let server = TestServer::start().await;
    let acme = server.realm_with_users("acme", 1).await;
    let beta = server.realm_with_users("beta", 1).await;
    set(&server, &acme[0], &[("status_text", "Acme only")]).await;
    let path = format!("/users/{}/status", acme[0].id);
    server
        .get(&beta[0], &path)
        .await
        .error(400, "BAD_REQUEST", "No such user");
    let answer = server
        .register(&beta[0], &[("event_types", r#"["user_status"]"#)])
        .await;
    assert_eq!(answer["user_status"], json!({}));
}
