//! Everything acknowledged survives a restart of the server.

use presence_tests::{START, TestServer};

#[tokio::test]
async fn restart_keeps_presence_settings_devices_and_ids() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 3).await;
    let (alice, bob, reader) = (&users[0], &users[1], &users[2]);
    server.report(alice, "website", "active").await;
    server.clock.advance(30);
    server.report(alice, "ZulipMobile", "idle").await;
    server.report(bob, "website", "active").await;
    server
        .post(alice, "/users/me/android_gcm_reg_id", &[("token", "t1")])
        .await
        .ok();
    server
        .patch(bob, "/settings", &[("presence_enabled", "false")])
        .await
        .ok();

    let alice_before = server.presence_of(reader, &alice.email).await;
    let bob_before = server.presence_of(reader, &bob.email).await;
    // The reader's fetch reports its own presence too, so it goes first.
    let ids_before = server.incremental(reader, -1).await;
    let realm_before = server.get(reader, "/realm/presence").await.ok()["presences"].clone();
    let users_before = server.get(reader, "/users").await.ok()["members"].clone();

    let server = server.restart().await;

    assert_eq!(server.presence_of(reader, &alice.email).await, alice_before);
    assert_eq!(alice_before["website"]["pushable"], true);
    assert_eq!(server.presence_of(reader, &bob.email).await, bob_before);
    assert_eq!(
        server.get(reader, "/realm/presence").await.ok()["presences"],
        realm_before
    );
    assert_eq!(
        server.get(reader, "/users").await.ok()["members"],
        users_before
    );
    let ids_after = server.incremental(reader, -1).await;
    assert_eq!(ids_after["presences"], ids_before["presences"]);
    assert_eq!(
        ids_after["presence_last_update_id"],
        ids_before["presence_last_update_id"]
    );

    // bob's presence stays off: reports store nothing.
    server.clock.advance(100);
    server.report(bob, "website", "active").await;
    assert_eq!(server.presence_of(reader, &bob.email).await, bob_before);

    // Ids go on from where they were, never reused.
    let mark = ids_after["presence_last_update_id"].as_i64().unwrap();
    server.report(alice, "website", "active").await;
    let body = server.incremental(reader, mark).await;
    assert_eq!(
        body["presences"][alice.id.to_string()]["active_timestamp"],
        START + 130
    );
    assert!(body["presence_last_update_id"].as_i64().unwrap() > mark);
    assert_eq!(body["presences"].get(bob.id.to_string()), None);
}
