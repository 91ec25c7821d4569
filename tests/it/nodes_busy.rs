//! An incremental reader alternating between nodes that all take writes
//! on one realm at once, on one PostgreSQL database: it never misses or
//! repeats a change, its ids never go back, and when the writes end its
//! picture, like every node's memory, is the database's. Two nodes, and a
//! stress of four.
//!
//! Needs `PRESENCE_TEST_DATABASE_URL`; without it each test says so and
//! returns (under `CI` it fails instead).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use presence_server::clock::ManualClock;
use presence_server::config::Config;
use presence_server::store::Dump;
use presence_tests::{Backing, START, TestServer};
use serde_json::Value;

use crate::nodes::{node_config, within_propagation};

/// `count` nodes on a new schema, sharing one clock; `None` without a
/// database.
async fn nodes_on_one_schema(count: usize, config: Config) -> Option<Vec<TestServer>> {
    let backing = Backing::postgres()?;
    let clock = Arc::new(ManualClock::new(START));
    let mut nodes = Vec::with_capacity(count);
    for _ in 0..count {
        nodes.push(TestServer::start_on(backing.clone(), clock.clone(), config.clone()).await);
    }
    Some(nodes)
}

/// What an incremental reader knows: each user's modern presence.
type Picture = BTreeMap<String, Value>;

/// An incremental reader: its picture and the last id it was given.
struct Reader {
    picture: Picture,
    last: i64,
}

impl Reader {
    /// Takes in an incremental answer from `node`; ids must never go back.
    fn read(&mut self, answer: Value, node: usize) {
        let id = answer["presence_last_update_id"].as_i64().unwrap();
        assert!(
            id >= self.last,
            "node {node} answered presence_last_update_id {id} after {}",
            self.last
        );
        for (user, presence) in answer["presences"].as_object().unwrap() {
            self.picture.insert(user.clone(), presence.clone());
        }
        self.last = id;
    }
}

/// The modern presence of every user with records, as the database holds it.
fn picture_of(dump: &Dump) -> Picture {
    let joined: HashMap<i64, i64> = dump.users.iter().map(|u| (u.id.0, u.date_joined)).collect();
    let mut out = Picture::new();
    let mut by_user: BTreeMap<i64, (Option<i64>, i64)> = BTreeMap::new();
    for p in &dump.presence {
        let entry = by_user.entry(p.user_id.0).or_insert((None, i64::MIN));
        entry.0 = entry.0.max(p.last_active_time);
        entry.1 = entry.1.max(p.last_connected_time);
    }
    for (user, (active, connected)) in by_user {
        let joined = joined[&user];
        out.insert(
            user.to_string(),
            serde_json::json!({
                "active_timestamp": active.unwrap_or(joined),
                "idle_timestamp": connected,
            }),
        );
    }
    out
}

#[tokio::test]
async fn an_incremental_reader_across_two_busy_nodes_misses_nothing() {
    busy_nodes(2, 24, 120).await;
}

#[tokio::test]
async fn an_incremental_reader_across_four_busy_nodes_misses_nothing() {
    busy_nodes(4, 32, 60).await;
}

/// `count` nodes on one realm take `writers` users' reports at once, each
/// user sending `reports` through the nodes in turn, while one reader
/// fetches incremental answers from each node in turn. The reader's ids
/// never go back, and once the writes end its picture is the database's;
/// every node's memory is the database's too.
async fn busy_nodes(count: usize, writers: usize, reports: usize) {
    // The default bound on clients per user, so that records are also
    // removed (the oldest make room for new ones).
    let config = Config {
        max_clients_per_user: 32,
        ..node_config()
    };
    let Some(nodes) = nodes_on_one_schema(count, config).await else {
        return;
    };
    let users = nodes[0].realm_with_users("acme", writers + 1).await;
    for node in &nodes[1..] {
        for user in &users {
            within_propagation("a new user on another node", || async {
                node.get(user, "/users/me").await.status == 200
            })
            .await;
        }
    }
    let reader = users[writers].clone();
    let nodes = Arc::new(nodes);

    // Every report names a new client, so every one is a change with an id
    // of its own; the clock moves meanwhile, so the times differ.
    let mut tasks = Vec::new();
    for (w, user) in users[..writers].iter().cloned().enumerate() {
        let nodes = nodes.clone();
        tasks.push(tokio::spawn(async move {
            for r in 0..reports {
                let node = &nodes[(w + r) % count];
                let status = if r % 3 == 0 { "idle" } else { "active" };
                let client = format!("c{r}");
                node.post(
                    &user,
                    "/users/me/presence",
                    &[
                        ("status", status),
                        ("client", &client),
                        ("ping_only", "true"),
                    ],
                )
                .await
                .ok();
                if r % 10 == 0 {
                    nodes[0].clock.advance(1);
                }
            }
        }));
    }

    let mut seen = Reader {
        picture: Picture::new(),
        last: -1,
    };
    let mut fetches = 0;
    while tasks.iter().any(|w| !w.is_finished()) {
        let node = fetches % count;
        seen.read(nodes[node].incremental(&reader, seen.last).await, node);
        fetches += 1;
    }
    for writer in tasks {
        writer.await.unwrap();
    }
    // Both nodes settle on the database's last id; then the reader's
    // picture is the database's.
    let dump = nodes[0].with_admin(|store| store.export()).unwrap();
    let stored_last = dump.presence.iter().map(|p| p.update_id.0).max().unwrap();
    assert!(
        stored_last >= (writers * reports) as i64,
        "every report took an id of its own ({stored_last})"
    );
    // Settling is bounded generously: this test is about what the reader
    // sees, and the machine is busy; the other tests hold the one-second
    // bound.
    for _ in 0..2 {
        for node in 0..count {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                seen.read(nodes[node].incremental(&reader, seen.last).await, node);
                fetches += 1;
                if seen.last >= stored_last {
                    break;
                }
                assert!(Instant::now() < deadline, "node {node} did not catch up");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    let dump = nodes[0].with_admin(|store| store.export()).unwrap();
    assert_eq!(seen.picture, picture_of(&dump), "after {fetches} fetches");

    // Each node's memory is the database's, records removed included.
    for node in nodes.iter() {
        for user in &users[..writers] {
            let clients = node.clients_of(&reader, &user.email).await;
            let mut stored: Vec<&str> = dump
                .presence
                .iter()
                .filter(|p| p.user_id.0 == user.id)
                .map(|p| p.client.as_str())
                .collect();
            stored.sort_unstable();
            assert_eq!(clients, stored, "{}", user.email);
        }
    }
}
