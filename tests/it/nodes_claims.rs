//! Claimed batches on PostgreSQL (docs/ARCHITECTURE.md, "Claimed
//! batches"): a node alone on its realm takes its batches' locks with their
//! commit; a claim that finds another node's commit first writes nothing,
//! and its reports are written by a locked batch after that commit, which
//! the node then shows as well.
//!
//! Needs `PRESENCE_TEST_DATABASE_URL`; without it the test says so and
//! returns (under `CI` it fails instead).

use std::sync::Arc;

use presence_server::clock::ManualClock;
use presence_server::metrics::Claim;
use presence_tests::{Backing, START, TestServer};

use crate::nodes::node_config;

#[tokio::test]
async fn a_claim_that_finds_another_nodes_commit_runs_again_locked() {
    let Some(backing) = Backing::postgres() else {
        return;
    };
    let Backing::Postgres(schema) = backing.clone() else {
        unreachable!("a PostgreSQL backing");
    };
    let clock = Arc::new(ManualClock::new(START));
    let node = TestServer::start_on(backing, clock, node_config()).await;
    let users = node.realm_with_users("acme", 3).await;
    let (ann, bob, reader) = (&users[0], &users[1], &users[2]);
    let claims = |outcome| node.service().metrics().claims(outcome);

    // Alone on its realm, the node claims its batches' ids at commit.
    node.report(ann, "web", "active").await;
    assert_eq!(claims(Claim::Committed), 1);
    assert_eq!(claims(Claim::Lost), 0);
    let before = node.with_admin(|store| store.sequences().expect("sequences"))[0]
        .last_update_id
        .0;

    // Another node's commit whose notification has not come: a record of
    // bob's and the realm's sequence moved past it, written straight into
    // the database.
    schema
        .execute(&format!(
            "BEGIN; \
             INSERT INTO client_presence \
             (user_id, realm_id, client, last_connected_time, last_active_time, update_id) \
             SELECT u.id, u.realm_id, 'elsewhere', {START}, {START}, s.last_update_id + 1 \
             FROM users u JOIN realm_sequences s ON s.realm_id = u.realm_id WHERE u.id = {bob}; \
             UPDATE realm_sequences SET last_update_id = last_update_id + 1 \
             WHERE realm_id = (SELECT realm_id FROM users WHERE id = {bob}); \
             COMMIT",
            bob = bob.id
        ))
        .expect("the other node's commit");

    // The next claim expects the id memory holds, and loses: nothing of it
    // is written, and a locked batch takes the other commit first.
    node.report(ann, "phone", "active").await;
    assert_eq!(claims(Claim::Lost), 1);
    assert_eq!(claims(Claim::Committed), 1);
    assert_eq!(node.clients_of(ann, &bob.email).await, ["elsewhere"]);
    assert_eq!(node.clients_of(ann, &ann.email).await, ["phone", "web"]);
    let dump = node.with_admin(|store| store.export()).expect("export");
    let update_id = |client: &str| {
        dump.presence
            .iter()
            .find(|p| p.client == client)
            .map(|p| p.update_id.0)
    };
    assert_eq!(update_id("elsewhere"), Some(before + 1));
    assert_eq!(update_id("phone"), Some(before + 2));

    // An incremental reader from before the other commit gets both changes
    // (and its own report, which takes the next id).
    let since = node.incremental(reader, before).await;
    assert_eq!(since["presence_last_update_id"].as_i64(), Some(before + 3));
    let changed = since["presences"].as_object().expect("presences");
    for user in [ann, bob] {
        assert!(
            changed.contains_key(&user.id.to_string()),
            "{} missing from {since}",
            user.email
        );
    }
}
