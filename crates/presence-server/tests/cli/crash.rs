//! Every acknowledged change survives `kill -9` in the middle of a load.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{ServerProcess, admin, create_user, get};

#[tokio::test]
async fn kill_nine_under_load_loses_nothing_acknowledged() {
    const USERS: usize = 20;
    const CLIENTS_PER_USER: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let users: Vec<(String, String)> = (0..USERS)
        .map(|i| {
            let email = format!("u{i}@acme.test");
            let key = create_user(dir.path(), "acme", &email, false);
            (email, key)
        })
        .collect();
    let server = ServerProcess::start(
        dir.path(),
        &["--rate-limit", "off", "--max-clients-per-user", "64"],
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

    let server = ServerProcess::start(dir.path(), &["--rate-limit", "off"]);
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
