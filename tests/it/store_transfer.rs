//! Moving an installation between stores: what `presence-server export`
//! writes from the embedded store, `import` puts into PostgreSQL exactly,
//! and back; a node on the imported data serves what the embedded server
//! served, and continues its ids.
//!
//! Needs `PRESENCE_TEST_DATABASE_URL` (see `nodes.rs`).

use presence_server::store::Dump;
use presence_tests::{Backing, Options, TestServer};

/// The answers a reader gets that should not depend on the store (the
/// incremental fetch also reports the reader's own `reader` client).
async fn answers(
    server: &TestServer,
    reader: &presence_tests::User,
    emails: &[&str],
) -> Vec<serde_json::Value> {
    let mut out = vec![
        server.get(reader, "/realm/presence").await.ok()["presences"].take(),
        server.incremental(reader, 0).await["presences"].take(),
        server.get(reader, "/users").await.ok()["members"].take(),
    ];
    for email in emails {
        out.push(server.presence_of(reader, email).await);
    }
    out
}

#[tokio::test]
async fn a_realm_moves_from_sqlite_to_postgres_and_back_exactly() {
    let Some(postgres) = Backing::postgres() else {
        return;
    };
    let embedded = TestServer::start().await;
    let users = embedded.realm_with_users("acme", 4).await;
    embedded.create_realm("other");
    embedded
        .create_user("other", "someone@other.test", false)
        .await;
    embedded.create_user("acme", "bot@acme.test", true).await;
    let (alice, bob, carol, dave) = (&users[0], &users[1], &users[2], &users[3]);
    embedded.report(alice, "website", "active").await;
    embedded.report(bob, "ZulipMobile", "idle").await;
    embedded.report(carol, "website", "active").await;
    embedded
        .patch(carol, "/settings", &[("presence_enabled", "false")])
        .await
        .ok();
    embedded
        .patch(
            bob,
            "/settings",
            &[("enable_offline_push_notifications", "false")],
        )
        .await
        .ok();
    embedded
        .post(alice, "/users/me/android_gcm_reg_id", &[("token", "fcm-1")])
        .await
        .ok();
    embedded.report(dave, "website", "active").await;
    embedded
        .admin_store()
        .set_user_active("acme", &dave.email, false)
        .unwrap();
    let reader = alice;
    embedded
        .wait_until(|| async {
            embedded
                .get(reader, &format!("/users/{}/presence", dave.email))
                .await
                .status
                == 400
        })
        .await;
    let emails = [
        alice.email.as_str(),
        bob.email.as_str(),
        carol.email.as_str(),
    ];
    // The incremental fetch reports the reader's own client: the first
    // round records it, the second changes nothing and is the reference.
    answers(&embedded, reader, &emails).await;
    let served = answers(&embedded, reader, &emails).await;

    let dump: Dump = embedded.admin_store().export().unwrap();
    assert_eq!(dump.realms.len(), 2);
    assert!(dump.presence.len() >= 4 && !dump.devices.is_empty());
    let imported = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut store = postgres.open();
                store.import(&dump).unwrap();
                store.export().unwrap()
            })
            .join()
            .unwrap()
    });
    assert_eq!(imported, dump, "PostgreSQL holds the dump exactly");

    // A node on the imported data serves the same answers.
    let node = TestServer::start_on(
        postgres.clone(),
        embedded.clock.clone(),
        Options::default().config,
    )
    .await;
    assert_eq!(answers(&node, reader, &emails).await, served);

    // And continues: new users and new changes take fresh ids.
    let last_id = dump.presence.iter().map(|p| p.update_id).max().unwrap();
    let newcomer = node.create_user("acme", "newcomer@acme.test", false).await;
    assert!(dump.users.iter().all(|u| u.id.0 < newcomer.id));
    node.report(&newcomer, "website", "active").await;
    let moved_on = node.with_admin(|store| store.export()).unwrap();
    let newest = moved_on
        .presence
        .iter()
        .find(|p| p.user_id.0 == newcomer.id)
        .unwrap();
    assert_eq!(newest.update_id, last_id.next());

    // And back to a new embedded store, exactly.
    let back = Backing::sqlite();
    back.open().import(&moved_on).unwrap();
    assert_eq!(back.open().export().unwrap(), moved_on);
}
