//! Admin changes made on the store while the server runs are honoured
//! within a second, and `GET /users/me`, `GET /users` reflect them.

use std::time::{Duration, Instant};

use presence_tests::{TestServer, User};
use serde_json::{Value, json};

/// The members `GET /users` lists to `reader`.
async fn members(server: &TestServer, reader: &User) -> Vec<Value> {
    let mut body = server.get(reader, "/users").await.ok();
    match body["members"].take() {
        Value::Array(members) => members,
        other => panic!("members is not a list: {other}"),
    }
}

/// The ids of `members`, in their order.
fn ids_of(members: &[Value]) -> Vec<i64> {
    members
        .iter()
        .map(|m| m["user_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn created_deactivated_reactivated_and_rekeyed_users() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 1).await;
    let admin = &users[0];

    // A user created by the admin path can log in within a second.
    let started = Instant::now();
    let carol = server.create_user("acme", "carol@acme.test", false).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    let me = server.get(&carol, "/users/me").await.ok();
    assert_eq!(me["email"], "carol@acme.test");
    assert_eq!(me["full_name"], "Name of carol@acme.test");
    assert_eq!(me["is_bot"], false);
    assert_eq!(me["is_active"], true);
    assert_eq!(me["user_id"], carol.id);
    assert!(me["date_joined"].as_str().unwrap().ends_with("+00:00"));
    server.report(&carol, "website", "active").await;

    // Deactivated: refused, no longer a target, out of realm views, still listed as inactive.
    let mut store = server.admin_store();
    store.set_user_active("acme", &carol.email, false).unwrap();
    let started = Instant::now();
    server
        .wait_until(|| async { server.get(&carol, "/users/me").await.status == 401 })
        .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    server
        .get(admin, &format!("/users/{}/presence", carol.email))
        .await
        .error(400, "BAD_REQUEST", "No such user");
    let realm = server.get(admin, "/realm/presence").await.ok();
    assert!(realm["presences"].get(&carol.email).is_none());
    let listed = members(&server, admin)
        .await
        .into_iter()
        .find(|m| m["email"] == "carol@acme.test")
        .unwrap();
    assert_eq!(listed["is_active"], false);

    // Reactivated: back, with the presence kept.
    store.set_user_active("acme", &carol.email, true).unwrap();
    server
        .wait_until(|| async { server.get(&carol, "/users/me").await.status == 200 })
        .await;
    let p = server.presence_of(admin, &carol.email).await;
    assert_eq!(p["aggregated"]["client"], "website");

    // A new key: the old one stops working, the new one works.
    let new_key = presence_server::admin::reset_key(store.as_mut(), "acme", &carol.email).unwrap();
    server
        .wait_until(|| async { server.get(&carol, "/users/me").await.status == 401 })
        .await;
    server
        .get(&carol, "/users/me")
        .await
        .error(401, "UNAUTHORIZED", "Invalid API key");
    let renewed = presence_tests::User {
        key: new_key,
        ..carol.clone()
    };
    assert_eq!(
        server.get(&renewed, "/users/me").await.ok()["user_id"],
        carol.id
    );
}

#[tokio::test]
async fn users_lists_the_realm_by_id_with_bots() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let bot = server.create_user("acme", "bot@acme.test", true).await;
    let members = members(&server, &bot).await;
    assert_eq!(ids_of(&members), [users[0].id, users[1].id, bot.id]);
    assert_eq!(members[2]["is_bot"], true);
    assert_eq!(
        members[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "date_joined",
            "email",
            "full_name",
            "is_active",
            "is_bot",
            "user_id"
        ]
    );
    let me = server.get(&bot, "/users/me").await.ok();
    assert_eq!(me["is_bot"], json!(true));
}

#[tokio::test]
async fn a_deactivation_the_server_has_seen_refuses_every_next_request() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 4).await;
    let (admin, carol) = (&users[0], &users[1]);
    server.report(carol, "website", "active").await;
    let mut store = server.admin_store();

    store.set_user_active("acme", &carol.email, false).unwrap();
    // Once another user sees the change, nothing of the user's gets through:
    // reads, writes, and settings alike, with no grace for cached sessions.
    server
        .wait_until(|| async {
            members(&server, admin)
                .await
                .iter()
                .any(|m| m["user_id"] == carol.id && m["is_active"] == false)
        })
        .await;
    server
        .get(carol, "/users/me")
        .await
        .error(401, "UNAUTHORIZED", "Account is deactivated");
    server
        .post(carol, "/users/me/presence", &[("status", "active")])
        .await
        .error(401, "UNAUTHORIZED", "Account is deactivated");
    server
        .patch(carol, "/settings", &[("presence_enabled", "false")])
        .await
        .error(401, "UNAUTHORIZED", "Account is deactivated");

    // A realm: the first refusal any of its users sees means all are refused.
    store.set_realm_deactivated("acme", true).unwrap();
    server
        .wait_until(|| async { server.get(admin, "/users/me").await.status == 401 })
        .await;
    for user in &users[2..] {
        server.get(user, "/realm/presence").await.error(
            401,
            "UNAUTHORIZED",
            "This organization has been deactivated",
        );
        server
            .post(user, "/users/me/presence", &[("status", "idle")])
            .await
            .error(
                401,
                "UNAUTHORIZED",
                "This organization has been deactivated",
            );
    }
}

#[tokio::test]
async fn a_deleted_user_is_refused_at_once_though_its_header_was_held() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 3).await;
    let (admin, carol, dave) = (&users[0], &users[1], &users[2]);
    // Both headers have authenticated: the server holds them with their callers.
    server.report(carol, "website", "active").await;
    server.report(dave, "website", "active").await;

    server
        .admin_store()
        .delete_user("acme", &carol.email)
        .unwrap();
    server
        .wait_until(|| async { !ids_of(&members(&server, admin).await).contains(&carol.id) })
        .await;
    // Once another user sees the deletion, the held header gets nothing.
    server
        .get(carol, "/users/me")
        .await
        .error(401, "UNAUTHORIZED", "Invalid API key");
    server
        .post(carol, "/users/me/presence", &[("status", "active")])
        .await
        .error(401, "UNAUTHORIZED", "Invalid API key");
    // Everyone else's held header works as before.
    assert_eq!(server.get(dave, "/users/me").await.ok()["user_id"], dave.id);
}
