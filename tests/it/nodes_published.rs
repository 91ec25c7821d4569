//! Nodes that learn each other's commits from the batches published with
//! their notifications (docs/ARCHITECTURE.md, "Learning another node's
//! commit"): after concurrent writes through two nodes, both answer
//! exactly alike and as the database holds it; a batch that is not
//! published (too large, or only announced) is read back, and the next one
//! that is published is installed from its notification again.
//!
//! Needs `PRESENCE_TEST_DATABASE_URL`; without it each test says so and
//! returns (under `CI` it fails instead).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use presence_server::clock::ManualClock;
use presence_server::config::Config;
use presence_server::ids::{RealmId, UpdateId, UserId};
use presence_server::metrics::CatchUp;
use presence_server::store::{Dump, Mutation, PresenceRow, Sequence, Store};
use presence_tests::{Backing, START, TestServer, User};

use crate::nodes::{node_config, within_propagation};

/// Two nodes on a new schema, sharing one clock; `None` without a database.
async fn two_nodes(config: Config) -> Option<(TestServer, TestServer)> {
    let backing = Backing::postgres()?;
    let clock = Arc::new(ManualClock::new(START));
    let a = TestServer::start_on(backing.clone(), clock.clone(), config.clone()).await;
    let b = TestServer::start_on(backing, clock, config).await;
    Some((a, b))
}

/// How many of another node's commits `node` installed from `source`.
fn catch_ups(node: &TestServer, source: CatchUp) -> u64 {
    node.service().metrics().catch_ups(source)
}

/// Waits (up to 5 s) until `node`'s counts of catch-ups by source reach
/// `expected`, and asserts they are exactly that: memory shows a change a
/// moment before its catch-up is counted.
async fn counted(node: &TestServer, expected: (u64, u64), what: &str) {
    let counts = || {
        (
            catch_ups(node, CatchUp::Published),
            catch_ups(node, CatchUp::Read),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts() != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counts(), expected, "{what}: (published, read)");
}

/// Each user's client names as the database holds them.
fn stored_clients(dump: &Dump) -> BTreeMap<i64, Vec<String>> {
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for p in &dump.presence {
        out.entry(p.user_id.0).or_default().push(p.client.clone());
    }
    for clients in out.values_mut() {
        clients.sort();
    }
    out
}

/// Waits (up to 5 s: the machine may be busy) until `node` shows every
/// user's clients as the database holds them.
async fn settles(node: &TestServer, reader: &User, users: &[User], dump: &Dump) {
    let stored = stored_clients(dump);
    for user in users {
        let expected = stored.get(&user.id).cloned().unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if node.clients_if_any(reader, &user.email).await == expected {
                break;
            }
            assert!(Instant::now() < deadline, "{} did not settle", user.email);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn two_busy_nodes_answer_alike_after_installing_each_others_batches() {
    // Few clients per user, so that batches also remove records.
    let config = Config {
        max_clients_per_user: 3,
        ..node_config()
    };
    let Some((a, b)) = two_nodes(config).await else {
        return;
    };
    let writers = 16;
    let users = a.realm_with_users("acme", writers + 1).await;
    for user in &users {
        within_propagation("a new user on the other node", || async {
            b.get(user, "/users/me").await.status == 200
        })
        .await;
    }
    let reader = users[writers].clone();
    let nodes = Arc::new([a, b]);
    let mut tasks = Vec::new();
    for (w, user) in users[..writers].iter().cloned().enumerate() {
        let nodes = nodes.clone();
        tasks.push(tokio::spawn(async move {
            for r in 0..60 {
                let status = if r % 3 == 0 { "idle" } else { "active" };
                let client = format!("c{}", (r + w) % 5);
                let form = [
                    ("status", status),
                    ("client", &client),
                    ("ping_only", "true"),
                ];
                let answer = nodes[(w + r) % 2].post(&user, "/users/me/presence", &form);
                assert_eq!(answer.await.status, 200);
                if r % 10 == 0 {
                    nodes[0].clock.advance(1);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let [a, b] = &*nodes;
    let dump = a.with_admin(|store| store.export()).unwrap();
    settles(a, &reader, &users[..writers], &dump).await;
    settles(b, &reader, &users[..writers], &dump).await;
    let published = catch_ups(a, CatchUp::Published) + catch_ups(b, CatchUp::Published);
    assert!(
        published > 0,
        "no batch was installed from its notification"
    );

    // Every answer is the same on both nodes, times included.
    for user in &users[..writers] {
        let (on_a, on_b) = (
            a.presence_of(&reader, &user.email).await,
            b.presence_of(&reader, &user.email).await,
        );
        assert_eq!(on_a, on_b, "{}", user.email);
    }
    let realm_a = a.get(&reader, "/realm/presence").await.ok();
    let realm_b = b.get(&reader, "/realm/presence").await.ok();
    assert_eq!(realm_a["presences"], realm_b["presences"]);

    // One more report through a, with both nodes quiet: b installs it from
    // its notification, without a read.
    let reads = catch_ups(b, CatchUp::Read);
    let published = catch_ups(b, CatchUp::Published);
    a.report(&users[0], "quiet", "active").await;
    within_propagation("a report through the other node", || async {
        b.presence_of(&reader, &users[0].email)
            .await
            .get("quiet")
            .is_some()
    })
    .await;
    counted(b, (published + 1, reads), "a quiet report").await;
}

/// The realm's id and last update id, as the database holds them.
fn realm_sequence(store: &mut dyn Store) -> (RealmId, UpdateId) {
    let realm = store.list_realms().unwrap()[0].realm.id;
    let sequences = store.sequences().unwrap();
    let last = sequences.iter().find(|s| s.realm_id == realm).unwrap();
    (realm, last.last_update_id)
}

/// Commits, as another node would, a record of `client` for each user,
/// each with an update id of its own; told the realms if `publish`.
fn commit_elsewhere(store: &mut dyn Store, users: &[User], clients: &[String], publish: bool) {
    let (realm, last) = realm_sequence(store);
    assert_eq!(store.begin_batch(&[realm]).unwrap(), vec![last]);
    let mut batch = Vec::new();
    for user in users {
        for client in clients {
            batch.push(Mutation::PutPresence(PresenceRow {
                user_id: UserId(user.id),
                client: client.clone(),
                last_connected_time: START,
                last_active_time: Some(START),
                update_id: UpdateId(last.0 + batch.len() as i64 + 1),
            }));
        }
    }
    let sequence = Sequence {
        realm_id: realm,
        last_update_id: UpdateId(last.0 + batch.len() as i64),
    };
    if publish {
        let realms = vec![realm; batch.len()];
        store
            .commit_batch_in_realms(&batch, &realms, &[sequence])
            .unwrap();
    } else {
        store.commit_batch(&batch, &[sequence]).unwrap();
    }
}

#[tokio::test]
async fn a_batch_not_published_is_read_back() {
    let Some((a, b)) = two_nodes(node_config()).await else {
        return;
    };
    let users = a.realm_with_users("acme", 21).await;
    let (reader, writers) = (&users[20], &users[..20]);
    for user in &users {
        within_propagation("a new user on the other node", || async {
            b.get(user, "/users/me").await.status == 200
        })
        .await;
    }
    let before = (
        catch_ups(&b, CatchUp::Published),
        catch_ups(&b, CatchUp::Read),
    );

    // 20 users with 15 long client names each: far past what one
    // notification may carry, so it is only announced.
    let clients: Vec<String> = (0..15)
        .map(|i| format!("a-client-with-a-long-name-{i:02}"))
        .collect();
    a.with_admin(|store| commit_elsewhere(store, writers, &clients, true));
    let dump = a.with_admin(|store| store.export()).unwrap();
    settles(&b, reader, writers, &dump).await;
    counted(&b, (before.0, before.1 + 1), "too large").await;

    // A small batch is published, and installed from its notification.
    a.with_admin(|store| commit_elsewhere(store, &writers[..1], &["small".to_owned()], true));
    let dump = a.with_admin(|store| store.export()).unwrap();
    settles(&b, reader, writers, &dump).await;
    counted(&b, (before.0 + 1, before.1 + 1), "small").await;

    // A batch only announced (as one that also changes users is).
    a.with_admin(|store| commit_elsewhere(store, &writers[..1], &["told".to_owned()], false));
    let dump = a.with_admin(|store| store.export()).unwrap();
    settles(&b, reader, writers, &dump).await;
    counted(&b, (before.0 + 1, before.1 + 2), "announced only").await;

    // Both nodes answer alike.
    for user in writers {
        let (on_a, on_b) = (
            a.presence_of(reader, &user.email).await,
            b.presence_of(reader, &user.email).await,
        );
        assert_eq!(on_a, on_b, "{}", user.email);
    }
}
