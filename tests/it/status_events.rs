//! Custom status in real time: `user_status` in `POST /register` and in
//! the queues and streams that asked for it, the expiry extension firing
//! by the server's clock, a restart keeping statuses, and several nodes on
//! PostgreSQL each clearing and telling exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use presence_server::clock::ManualClock;
use presence_tests::{Backing, Options, START, TestServer, User};
use serde_json::{Value, json};

async fn set(server: &TestServer, user: &User, form: &[(&str, &str)]) {
    server.post(user, "/users/me/status", form).await.ok();
}

/// A queue of `user` that takes `user_status` events; its id.
async fn status_queue(server: &TestServer, user: &User) -> String {
    let answer = server
        .register(user, &[("event_types", r#"["user_status"]"#)])
        .await;
    answer["queue_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn register_gives_the_realms_statuses_keyed_by_user_id() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 4).await;
    let (alice, bob, carol, dan) = (&users[0], &users[1], &users[2], &users[3]);
    set(
        &server,
        alice,
        &[("status_text", "In a meeting"), ("emoji_name", "calendar")],
    )
    .await;
    set(&server, bob, &[("away", "true")]).await;
    // A status set and cleared again shows nothing, as Zulip leaves it out.
    set(&server, carol, &[("status_text", "Gone")]).await;
    set(&server, carol, &[("status_text", "")]).await;
    let answer = server
        .register(
            dan,
            &[
                ("fetch_event_types", r#"["user_status"]"#),
                ("event_types", "[]"),
            ],
        )
        .await;
    assert_eq!(
        answer["user_status"],
        json!({
            alice.id.to_string(): {"status_text": "In a meeting", "emoji_name": "calendar",
                "emoji_code": "1f4c5", "reaction_type": "unicode_emoji"},
            bob.id.to_string(): {"away": true},
        })
    );
    assert!(
        answer.get("presences").is_none(),
        "presence was not asked for"
    );
    // Without the type in either list, no statuses.
    let presence_only = server
        .register(dan, &[("event_types", r#"["presence"]"#)])
        .await;
    assert!(presence_only.get("user_status").is_none());
    // Without any list, everything.
    assert!(server.register(dan, &[]).await["user_status"].is_object());
}

#[tokio::test]
async fn changes_reach_the_queues_that_asked_with_what_changed() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    let queue = status_queue(&server, bob).await;
    let presence_queue = server
        .register(bob, &[("event_types", r#"["presence"]"#)])
        .await["queue_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut last = -1;

    set(
        &server,
        alice,
        &[("status_text", "Commuting"), ("emoji_name", "bus")],
    )
    .await;
    let events = server
        .next_of_kind(bob, &queue, &mut last, "user_status")
        .await;
    assert_eq!(
        events,
        vec![
            json!({"type": "user_status", "user_id": alice.id, "status_text": "Commuting",
            "emoji_name": "bus", "emoji_code": "1f68c", "reaction_type": "unicode_emoji", "id": 0})
        ]
    );
    // Only the text changes: only the text is told.
    set(&server, alice, &[("status_text", "Driving")]).await;
    let events = server
        .next_of_kind(bob, &queue, &mut last, "user_status")
        .await;
    assert_eq!(events[0]["status_text"], "Driving");
    assert_eq!(events[0].get("emoji_name"), None);
    // Away, through the status or the settings, is told as `away`.
    set(&server, alice, &[("away", "true")]).await;
    let events = server
        .next_of_kind(bob, &queue, &mut last, "user_status")
        .await;
    assert_eq!(
        events[0],
        json!({"type": "user_status", "user_id": alice.id, "away": true, "id": events[0]["id"]})
    );
    server
        .patch(alice, "/settings", &[("presence_enabled", "true")])
        .await
        .ok();
    let events = server
        .next_of_kind(bob, &queue, &mut last, "user_status")
        .await;
    assert_eq!(events[0]["away"], false);
    // The presence-only queue never got a status event.
    let polled = server.poll(bob, &presence_queue, -1, true).await.ok();
    let kinds: Vec<&Value> = polled["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["type"])
        .collect();
    assert!(kinds.iter().all(|k| *k == "presence"), "{kinds:?}");
}

#[tokio::test]
async fn the_stream_carries_statuses_too() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    set(&server, alice, &[("status_text", "Before")]).await;
    let mut stream = server
        .open_stream(bob, &[("slim_presence", "true")], None)
        .await;
    let register = stream.next_data().await;
    assert_eq!(register.event.as_deref(), Some("register"));
    assert_eq!(
        register.json()["user_status"][alice.id.to_string()],
        json!({"status_text": "Before"})
    );
    server.until_waiting(1).await;
    set(&server, alice, &[("status_text", "After")]).await;
    let message = stream.next_data().await;
    assert_eq!(message.event.as_deref(), Some("user_status"));
    assert_eq!(message.json()["status_text"], "After");
    assert_eq!(message.json()["user_id"], alice.id);
}

#[tokio::test]
async fn an_expiry_clears_the_status_by_the_clock_and_tells_once() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    let queue = status_queue(&server, bob).await;
    let mut last = -1;
    let at = START + 60;
    let form = [
        ("status_text", "Lunch"),
        ("emoji_name", "bus"),
        ("expires_at", &at.to_string()[..]),
    ];
    set(&server, alice, &form).await;
    let set_event = server
        .next_of_kind(bob, &queue, &mut last, "user_status")
        .await;
    assert_eq!(set_event[0]["expires_at"], at);

    // Not yet: a second before, nothing happens.
    server.clock.advance(59);
    let path = format!("/users/{}/status", alice.id);
    assert_eq!(
        server.get(bob, &path).await.ok()["status"]["status_text"],
        "Lunch"
    );
    // At the time, with no request from anyone, the server clears it.
    server.clock.advance(1);
    let events = server
        .next_of_kind(bob, &queue, &mut last, "user_status")
        .await;
    assert_eq!(
        events,
        vec![
            json!({"type": "user_status", "user_id": alice.id, "status_text": "",
            "emoji_name": "", "emoji_code": "", "reaction_type": "unicode_emoji", "id": last})
        ]
    );
    assert_eq!(server.get(bob, &path).await.ok()["status"], json!({}));
    // And once: the next event is a change made now.
    set(&server, alice, &[("status_text", "Back")]).await;
    let next = server
        .next_of_kind(bob, &queue, &mut last, "user_status")
        .await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["status_text"], "Back");
}

#[tokio::test]
async fn a_restart_keeps_statuses_and_their_expiry() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    let at = (START + 100).to_string();
    set(
        &server,
        alice,
        &[
            ("status_text", "Holiday"),
            ("emoji_name", "palm_tree"),
            ("expires_at", &at),
        ],
    )
    .await;
    set(&server, bob, &[("away", "true")]).await;
    let path = format!("/users/{}/status", alice.id);
    let before = server.get(bob, &path).await.ok()["status"].clone();

    let server = server.restart().await;
    assert_eq!(server.get(bob, &path).await.ok()["status"], before);
    let bob_path = format!("/users/{}/status", bob.id);
    assert_eq!(
        server.get(alice, &bob_path).await.ok()["status"],
        json!({"away": true})
    );
    // The expiry is still kept after the restart.
    let queue = status_queue(&server, bob).await;
    let mut last = -1;
    server.clock.advance(100);
    let events = server
        .next_of_kind(bob, &queue, &mut last, "user_status")
        .await;
    assert_eq!(events[0]["status_text"], "");
    assert_eq!(server.get(bob, &path).await.ok()["status"], json!({}));
}

/// How soon another node must show a change.
const PROPAGATION: Duration = Duration::from_secs(1);

#[tokio::test]
async fn several_nodes_see_a_status_within_a_second_and_expire_it_once() {
    let Some(backing) = Backing::postgres() else {
        return;
    };
    let clock = Arc::new(ManualClock::new(START));
    let config = presence_server::config::Config {
        // The poll is slow on purpose: the store's notification carries it.
        directory_poll_ms: 5_000,
        ..Options::default().config
    };
    let a = TestServer::start_on(backing.clone(), clock.clone(), config.clone()).await;
    let b = TestServer::start_on(backing, clock.clone(), config).await;
    let users = a.realm_with_users("acme", 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    b.wait_until(|| async { b.get(bob, "/users/me").await.status == 200 })
        .await;
    let queue_a = status_queue(&a, bob).await;
    let queue_b = status_queue(&b, bob).await;

    let at = START + 30;
    let started = Instant::now();
    set(
        &a,
        alice,
        &[("status_text", "Offsite"), ("expires_at", &at.to_string())],
    )
    .await;
    let path = format!("/users/{}/status", alice.id);
    loop {
        if b.get(bob, &path).await.ok()["status"]["status_text"] == "Offsite" {
            break;
        }
        assert!(
            started.elapsed() < PROPAGATION,
            "not on the other node within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (mut last_a, mut last_b) = (-1, -1);
    let on_b = b
        .next_of_kind(bob, &queue_b, &mut last_b, "user_status")
        .await;
    assert_eq!(on_b[0]["status_text"], "Offsite");
    a.next_of_kind(bob, &queue_a, &mut last_a, "user_status")
        .await;

    // Both nodes find the expiry due at once; the status is cleared, and
    // each node tells its queues once.
    clock.advance(30);
    for (node, queue, last) in [(&a, &queue_a, &mut last_a), (&b, &queue_b, &mut last_b)] {
        let cleared = node.next_of_kind(bob, queue, last, "user_status").await;
        assert_eq!(cleared.len(), 1, "{cleared:?}");
        assert_eq!(cleared[0]["status_text"], "");
    }
    set(&b, alice, &[("status_text", "Here")]).await;
    for (node, queue, last) in [(&a, &queue_a, &mut last_a), (&b, &queue_b, &mut last_b)] {
        let next = node.next_of_kind(bob, queue, last, "user_status").await;
        assert_eq!(next.len(), 1, "no second clearing before it: {next:?}");
        assert_eq!(next[0]["status_text"], "Here");
    }
    let dump = a.with_admin(|store| store.export().unwrap());
    assert_eq!(dump.statuses[0].status_text, "Here");
}
