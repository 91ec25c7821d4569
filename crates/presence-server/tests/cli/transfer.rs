//! `export` and `import` move an installation between data directories
//! exactly: ids, hashed keys, settings, presence and devices.

use std::time::Duration;

use crate::support::{ServerProcess, admin, create_user, get, run};

#[tokio::test]
async fn export_then_import_round_trips_a_realm_exactly() {
    let old = tempfile::tempdir().unwrap();
    admin(
        old.path(),
        &["realm", "create", "acme", "--name", "Acme Inc"],
    );
    let alice = create_user(old.path(), "acme", "alice@acme.test", false);
    let bob = create_user(old.path(), "acme", "bob@acme.test", false);
    create_user(old.path(), "acme", "bot@acme.test", true);
    let mut server = ServerProcess::start(old.path(), &[]);
    let http = reqwest::Client::new();
    for (email, key, client) in [
        ("alice@acme.test", &alice, "website"),
        ("bob@acme.test", &bob, "ZulipMobile"),
    ] {
        let status = http
            .post(server.url("/users/me/presence"))
            .basic_auth(email, Some(key))
            .form(&[
                ("status", "active"),
                ("ping_only", "true"),
                ("client", client),
            ])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let status = http
        .post(server.url("/users/me/android_gcm_reg_id"))
        .basic_auth("alice@acme.test", Some(&alice))
        .form(&[("token", "fcm-1")])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let (_, before) = get(
        &server,
        "bob@acme.test",
        &bob,
        "/users/alice@acme.test/presence",
    )
    .await;
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(15));
    drop(server);

    let first = old.path().join("first.jsonl");
    admin(old.path(), &["export", "--output", first.to_str().unwrap()]);
    let new = tempfile::tempdir().unwrap();
    admin(new.path(), &["import", first.to_str().unwrap()]);
    let second = new.path().join("second.jsonl");
    admin(
        new.path(),
        &["export", "--output", second.to_str().unwrap()],
    );
    let first_text = std::fs::read_to_string(&first).unwrap();
    assert_eq!(first_text, std::fs::read_to_string(&second).unwrap());
    assert!(!first_text.contains(&alice), "a key in clear in the dump");
    assert_eq!(
        first_text.lines().count(),
        1 + 1 + 3 + 2 + 1,
        "{first_text}"
    );

    // The imported installation answers as the old one did, with the old keys.
    let server = ServerProcess::start(new.path(), &[]);
    let (status, after) = get(
        &server,
        "bob@acme.test",
        &bob,
        "/users/alice@acme.test/presence",
    )
    .await;
    assert_eq!(status, 200, "{after}");
    // The same presence; only the server's clock in the answer moved on.
    assert_eq!(after["presence"], before["presence"]);
    let clock = |answer: &serde_json::Value| answer["server_timestamp"].as_f64().unwrap();
    assert!(clock(&after) >= clock(&before), "{before} then {after}");
    assert_eq!(after["presence"]["website"]["pushable"], true);

    // Importing the same dump again conflicts and changes nothing.
    drop(server);
    let out = run(new.path(), &["import", first.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exists already"), "{err}");
    let third = new.path().join("third.jsonl");
    admin(new.path(), &["export", "--output", third.to_str().unwrap()]);
    assert_eq!(first_text, std::fs::read_to_string(&third).unwrap());
}

#[test]
fn a_broken_dump_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.jsonl");
    std::fs::write(
        &file,
        "{\"type\":\"header\",\"format\":\"presence-dump\",\"version\":1}\n{\"type\":\"realm\",\"id\":1}\n",
    )
    .unwrap();
    let out = run(dir.path(), &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2:"), "{err}");
}
