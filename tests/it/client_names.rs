//! Client names as the realm sees them: the `client` parameter is refused
//! when it could mislead a reader, and a `User-Agent` is read the way
//! Zulip reads it, never failing the request.

use presence_tests::{TestServer, User};
use reqwest::Method;

/// The client names of a user's presence as `reader` sees it.
async fn client_keys(server: &TestServer, reader: &User, target: &User) -> Vec<String> {
    server.clients_of(reader, &target.email).await
}

#[tokio::test]
async fn names_that_mislead_are_refused() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    for name in [
        "x\u{202e}etisbew",
        "\u{2067}website\u{2069}",
        "website\u{200b}",
        "web\u{00ad}site",
        "website\u{fe0f}",
        "website\u{e0041}",
        "Aggregated",
        "AGGREGATED",
        "line\u{2028}break",
    ] {
        server
            .post(
                alice,
                "/users/me/presence",
                &[("status", "active"), ("client", name)],
            )
            .await
            .error(400, "BAD_REQUEST", "Invalid client name");
        server
            .patch(
                alice,
                "/settings",
                &[("presence_enabled", "false"), ("client", name)],
            )
            .await
            .error(400, "BAD_REQUEST", "Invalid client name");
    }
    // Nothing of it reached the realm.
    server
        .get(reader, &format!("/users/{}/presence", alice.email))
        .await
        .error(
            400,
            "BAD_REQUEST",
            &format!("No presence data for {}", alice.email),
        );
    // Names from other scripts are names like any other.
    server.report(alice, "Zulip-Ελληνικά", "active").await;
    assert_eq!(
        client_keys(&server, reader, alice).await,
        ["Zulip-Ελληνικά"]
    );
}

#[tokio::test]
async fn user_agents_name_the_client_as_zulip_does_and_never_fail() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    let report = |agent: &'static [u8]| {
        server.send(
            server
                .request(Method::POST, alice, "/users/me/presence")
                .header("user-agent", agent)
                .form(&[("status", "active"), ("ping_only", "true")]),
        )
    };
    // A long product token: Zulip keeps the first 30 characters.
    report(b"ThisIsAVeryLongProductTokenName12345/1.0")
        .await
        .ok();
    // The name runs to the first slash, spaces included, as Zulip's parser reads it.
    report(b"Acme Desktop Client/2.0 (Linux)").await.ok();
    // What would mislead, or collide with `aggregated`, is `Unspecified`.
    report("x\u{202e}etisbew/1.0".as_bytes()).await.ok();
    report(b"Aggregated/1.0").await.ok();
    report(b"Tab\tbed/1.0").await.ok();
    assert_eq!(
        client_keys(&server, reader, alice).await,
        [
            "Acme Desktop Client",
            "ThisIsAVeryLongProductTokenNam",
            "Unspecified"
        ]
    );
    // Settings take the same name, and never fail on it either.
    server
        .send(
            server
                .request(Method::PATCH, alice, "/settings")
                .header("user-agent", "ThisIsAVeryLongProductTokenName12345/1.0")
                .form(&[("presence_enabled", "false")]),
        )
        .await
        .ok();
    server
        .send(
            server
                .request(Method::PATCH, alice, "/settings")
                .header("user-agent", "AnotherVeryLongProductTokenName12345/1.0")
                .form(&[("presence_enabled", "true")]),
        )
        .await
        .ok();
    let presence = server.presence_of(reader, &alice.email).await;
    assert_eq!(
        presence["aggregated"]["client"],
        "AnotherVeryLongProductTokenNam"
    );
}
