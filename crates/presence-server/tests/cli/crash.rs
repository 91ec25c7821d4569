//! Every acknowledged change survives `kill -9` in the middle of a load,
//! on both stores and in both durability modes: `relaxed` only lets the
//! disk lag behind the operating system (SQLite) or PostgreSQL, which a
//! killed server process does not touch.
//!
//! The PostgreSQL cases need `PRESENCE_TEST_DATABASE_URL`; without it they
//! say so and return (under `CI` they fail instead).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use presence_server::store::testing::{ScratchSchema, test_database_url};
use tempfile::TempDir;

use crate::support::{ServerProcess, admin, get};

/// Where a test's installation keeps its data: a data directory, or a
/// scratch PostgreSQL schema (the directory then goes unused).
struct Installation {
    dir: TempDir,
    store_flags: Vec<String>,
    _schema: Option<ScratchSchema>,
}

impl Installation {
    fn sqlite() -> Installation {
        Installation {
            dir: tempfile::tempdir().unwrap(),
            store_flags: Vec::new(),
            _schema: None,
        }
    }

    /// A scratch schema, or `None` when no test database is configured.
    fn postgres() -> Option<Installation> {
        let schema = ScratchSchema::create(&test_database_url()?).unwrap();
        Some(Installation {
            dir: tempfile::tempdir().unwrap(),
            store_flags: vec!["--database-url".to_owned(), schema.url()],
            _schema: Some(schema),
        })
    }

    /// `args` with the store's flags in front.
    fn with_store<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all: Vec<&str> = self.store_flags.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        all
    }

    fn admin(&self, args: &[&str]) -> String {
        admin(self.dir.path(), &self.with_store(args))
    }

    fn start(&self, args: &[&str]) -> ServerProcess {
        ServerProcess::start(self.dir.path(), &self.with_store(args))
    }
}

#[tokio::test]
async fn kill_nine_under_load_loses_nothing_acknowledged() {
    kill_nine_under_load(Installation::sqlite(), "full").await;
}

#[tokio::test]
async fn kill_nine_under_load_loses_nothing_acknowledged_when_relaxed() {
    kill_nine_under_load(Installation::sqlite(), "relaxed").await;
}

#[tokio::test]
async fn kill_nine_under_load_loses_nothing_acknowledged_on_postgres() {
    if let Some(installation) = Installation::postgres() {
        kill_nine_under_load(installation, "full").await;
    }
}

#[tokio::test]
async fn kill_nine_under_load_loses_nothing_acknowledged_on_postgres_when_relaxed() {
    if let Some(installation) = Installation::postgres() {
        kill_nine_under_load(installation, "relaxed").await;
    }
}

/// Kills the server with SIGKILL while users make durable changes as fast
/// as they can, then checks on a new server that each change that was
/// acknowledged is there.
async fn kill_nine_under_load(installation: Installation, durability: &str) {
    const USERS: usize = 20;
    const CLIENTS_PER_USER: usize = 30;
    installation.admin(&["realm", "create", "acme"]);
    let users: Vec<(String, String)> = (0..USERS)
        .map(|i| {
            let email = format!("u{i}@acme.test");
            let args = [
                "user",
                "create",
                "--realm",
                "acme",
                "--email",
                &email,
                "--full-name",
                "Test User",
            ];
            let key = installation.admin(&args).trim_end().to_owned();
            (email, key)
        })
        .collect();
    let server = installation.start(&[
        "--rate-limit",
        "off",
        "--max-clients-per-user",
        "64",
        "--durability",
        durability,
    ]);
    assert!(
        server
            .log()
            .iter()
            .any(|line| line.contains(&format!("durability={durability}"))),
        "the server says how it commits: {:?}",
        server.log()
    );

    // Each request creates a new client record: a durable write every time.
    let acknowledged: Arc<Mutex<HashSet<(usize, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for (i, (email, key)) in users.iter().cloned().enumerate() {
        let url = server.url("/users/me/presence");
        let acknowledged = acknowledged.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for c in 0..CLIENTS_PER_USER {
                let client = format!("client{c}");
                let sent = http
                    .post(&url)
                    .basic_auth(&email, Some(&key))
                    .form(&[
                        ("status", "active"),
                        ("ping_only", "true"),
                        ("client", &client),
                    ])
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => {
                        acknowledged.lock().unwrap().insert((i, client));
                    }
                    // The server died: stop this user's load.
                    _ => return,
                }
            }
        }));
    }
    // Kill once a good part of the load is acknowledged, with more in flight.
    let target = USERS * CLIENTS_PER_USER / 3;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < target {
        assert!(
            std::time::Instant::now() < deadline,
            "the load did not progress"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.signal("KILL");
    let mut server = server;
    let status = server.wait_exit(Duration::from_secs(10));
    // Killed outright: no shutdown code ran, so nothing could be flushed late.
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status:?}"
    );
    for task in tasks {
        task.await.unwrap();
    }
    drop(server);
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= target);
    assert!(
        acknowledged.len() < USERS * CLIENTS_PER_USER,
        "the kill came too late to test anything"
    );

    let server = installation.start(&["--rate-limit", "off"]);
    let (reader_email, reader_key) = &users[0];
    let mut missing = Vec::new();
    for (i, (email, _)) in users.iter().enumerate() {
        let (status, body) = get(
            &server,
            reader_email,
            reader_key,
            &format!("/users/{email}/presence"),
        )
        .await;
        let clients: HashSet<String> = if status == 200 {
            body["presence"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        } else {
            HashSet::new()
        };
        for (_, client) in acknowledged.iter().filter(|(u, _)| *u == i) {
            if !clients.contains(client) {
                missing.push(format!("{email}/{client}"));
            }
        }
    }
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");

    // Each acknowledged change took its own update id, and none was reused
    // after the restart.
    let answer: serde_json::Value = reqwest::Client::new()
        .post(server.url("/users/me/presence"))
        .basic_auth(reader_email, Some(reader_key))
        .form(&[("status", "idle"), ("last_update_id", "-1")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last_id = answer["presence_last_update_id"].as_i64().unwrap();
    assert!(
        last_id > acknowledged.len() as i64,
        "{last_id} ids for {} acknowledged changes and one more",
        acknowledged.len()
    );
}
