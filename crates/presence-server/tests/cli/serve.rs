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
    let mut server = ServerProcess::start(dir.path(), &["serve"]);
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

    let server = ServerProcess::start(dir.path(), &["serve"]);
    let (status, body) = get(&server, "a@acme.test", &key, "/users/a@acme.test/presence").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["presence"]["aggregated"]["status"], "active");
}
