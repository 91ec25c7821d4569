//! Realms are isolated: nothing of one realm is visible from another.

use presence_tests::TestServer;

#[tokio::test]
async fn another_realm_is_no_such_user_by_email_and_id() {
    let server = TestServer::start().await;
    let acme = server.realm_with_users("acme", 2).await;
    let globex = server.realm_with_users("globex", 1).await;
    server.report(&acme[0], "website", "active").await;
    server.report(&globex[0], "website", "active").await;

    for target in [acme[0].email.clone(), acme[0].id.to_string()] {
        server
            .get(&globex[0], &format!("/users/{target}/presence"))
            .await
            .error(400, "BAD_REQUEST", "No such user");
    }
    let body = server.get(&globex[0], "/realm/presence").await.ok();
    assert_eq!(body["presences"].as_object().unwrap().len(), 1);
    assert!(body["presences"][&globex[0].email].is_object());

    let members = server.get(&globex[0], "/users").await.ok();
    let emails: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, [globex[0].email.as_str()]);

    let body = server.incremental(&globex[0], -1).await;
    let ids: Vec<&String> = body["presences"].as_object().unwrap().keys().collect();
    assert_eq!(ids, [&globex[0].id.to_string()]);
}

#[tokio::test]
async fn the_same_email_in_two_realms_is_two_users() {
    let server = TestServer::start().await;
    server.create_realm("acme");
    server.create_realm("globex");
    let a = server.create_user("acme", "pat@example.test", false).await;
    let b = server
        .create_user("globex", "pat@example.test", false)
        .await;
    assert_ne!(a.id, b.id);
    server.report(&a, "website", "active").await;
    server.report(&b, "website", "idle").await;
    let seen_by_a = server.presence_of(&a, "pat@example.test").await;
    let seen_by_b = server.presence_of(&b, "pat@example.test").await;
    assert_eq!(seen_by_a["aggregated"]["status"], "active");
    assert_eq!(seen_by_b["aggregated"]["status"], "idle");
    // A key only works with its own email.
    let mixed = presence_tests::User {
        id: a.id,
        email: a.email.clone(),
        key: b.key.clone(),
    };
    assert_eq!(server.get(&mixed, "/users/me").await.body["user_id"], b.id);
}
