//! A server process: its address in the log, admin commands honoured while
//! it runs, and a clean stop on SIGTERM.

use std::time::{Duration, Instant};

use crate::support::{ServerProcess, admin, create_user, eventually, get};

#[tokio::test]
async fn admin_commands_are_honoured_by_a_running_server_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    // No subcommand means `serve`.
    let server = ServerProcess::start(dir.path(), &[]);

    let started = Instant::now();
    let key = create_user(dir.path(), "acme", "carol@acme.test", false);
    eventually(Duration::from_secs(1), || async {
        get(&server, "carol@acme.test", &key, "/users/me").await.0 == 200
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));

    admin(
        dir.path(),
        &[
            "user",
            "deactivate",
            "--realm",
            "acme",
            "--email",
            "carol@acme.test",
        ],
    );
    eventually(Duration::from_secs(1), || async {
        get(&server, "carol@acme.test", &key, "/users/me").await.0 == 401
    })
    .await;
    let (_, body) = get(&server, "carol@acme.test", &key, "/users/me").await;
    assert_eq!(body["msg"], "Account is deactivated");

    admin(
        dir.path(),
        &[
            "user",
            "reactivate",
            "--realm",
            "acme",
            "--email",
            "carol@acme.test",
        ],
    );
    eventually(Duration::from_secs(1), || async {
        get(&server, "carol@acme.test", &key, "/users/me").await.0 == 200
    })
    .await;

    admin(dir.path(), &["realm", "deactivate", "acme"]);
    eventually(Duration::from_secs(1), || async {
        get(&server, "carol@acme.test", &key, "/users/me").await.1["msg"]
            == "This organization has been deactivated"
    })
    .await;
}

#[tokio::test]
async fn sigterm_finishes_and_exits_zero_keeping_data() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let key = create_user(dir.path(), "acme", "a@acme.test", false);
    let mut server = ServerProcess::start(dir.path(), &[]);
    let response = reqwest::Client::new()
        .post(server.url("/users/me/presence"))
        .basic_auth("a@acme.test", Some(&key))
        .form(&[("status", "active"), ("ping_only", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));

    let server = ServerProcess::start(dir.path(), &[]);
    let (status, body) = get(&server, "a@acme.test", &key, "/users/a@acme.test/presence").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["presence"]["aggregated"]["status"], "active");
}

/// Takes the store's write lock from outside, as another process could,
/// so that the server's next write waits for it.
fn lock_store(dir: &std::path::Path) -> rusqlite::Connection {
    let locker = rusqlite::Connection::open(dir.join("presence.sqlite3")).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    locker
}

#[tokio::test]
async fn sigterm_lets_a_slow_request_finish_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let key = create_user(dir.path(), "acme", "a@acme.test", false);
    let mut server =
        ServerProcess::start_telling_requests(dir.path(), &["--shutdown-grace-secs", "20"]);
    let address = server.base.trim_start_matches("http://").to_owned();

    // A write that has to wait for the store: in flight when the signal comes.
    let locker = lock_store(dir.path());
    let request = tokio::spawn(
        reqwest::Client::new()
            .post(server.url("/users/me/presence"))
            .basic_auth("a@acme.test", Some(&key))
            .form(&[("status", "active"), ("ping_only", "true")])
            .send(),
    );
    server
        .until_begun("POST", "/api/v1/users/me/presence")
        .await;
    server.signal("TERM");
    server
        .until_logged(
            "that it is shutting down",
            Duration::from_secs(20),
            |line| line.contains("shutting down"),
        )
        .await;
    // No new connections once shutdown has started (the listener closes
    // right after the line above).
    eventually(Duration::from_secs(5), || async {
        tokio::net::TcpStream::connect(&address).await.is_err()
    })
    .await;
    assert!(!request.is_finished(), "the request waits for the store");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server waits for the request in flight"
    );
    locker.execute_batch("COMMIT").unwrap();
    let response = request.await.unwrap().expect("the request is answered");
    assert_eq!(response.status(), 200);
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));

    let server = ServerProcess::start(dir.path(), &[]);
    let (status, body) = get(&server, "a@acme.test", &key, "/users/a@acme.test/presence").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_grace_period_bounds_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let key = create_user(dir.path(), "acme", "a@acme.test", false);
    let mut server =
        ServerProcess::start_telling_requests(dir.path(), &["--shutdown-grace-secs", "1"]);

    // A write stuck behind a lock that outlives the grace period.
    let locker = lock_store(dir.path());
    let request = tokio::spawn(
        reqwest::Client::new()
            .post(server.url("/users/me/presence"))
            .basic_auth("a@acme.test", Some(&key))
            .form(&[("status", "active"), ("ping_only", "true")])
            .send(),
    );
    server
        .until_begun("POST", "/api/v1/users/me/presence")
        .await;
    let signalled = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(8));
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0));
    // One second of grace, one to close what is left, one for the last commit.
    assert!(took < Duration::from_secs(4), "exit took {took:?}");
    let answer = request.await.unwrap();
    assert!(
        answer.is_err(),
        "the stuck request was cut off, not acknowledged: {answer:?}"
    );
    drop(locker);

    // Nothing was half-written: the server starts and serves.
    let server = ServerProcess::start(dir.path(), &[]);
    let (status, _) = get(&server, "a@acme.test", &key, "/users/me").await;
    assert_eq!(status, 200);
}
