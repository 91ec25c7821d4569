//! `presence-server embed-key`, as an operator uses it: the key printed and
//! nothing else, a listing that never shows keys, revocation, and admin
//! changes that a running server honours from the very next request. And
//! embed keys, like API keys, never reach the log or the database in clear.

use std::time::Duration;

use crate::support::{ServerProcess, admin, create_user, run};

const INTRANET: &str = "https://intranet.acme.test";

fn create_key(dir: &std::path::Path, name: &str) -> String {
    admin(
        dir,
        &[
            "embed-key",
            "create",
            "--realm",
            "acme",
            "--name",
            name,
            "--origin",
            "https://Intranet.acme.test/",
            "--origin",
            "http://localhost:8080",
        ],
    )
    .trim_end()
    .to_owned()
}

/// A GET as a page sends it; the status.
async fn page_status(server: &ServerProcess, key: &str, path: &str) -> u16 {
    reqwest::Client::new()
        .get(server.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("the server answers")
        .status()
        .as_u16()
}

#[test]
fn embed_keys_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let key = create_key(dir.path(), "intranet");
    assert!(key.starts_with("embed_") && key.len() == 38, "{key:?}");

    let listed = admin(dir.path(), &["embed-key", "list", "--realm", "acme"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines[0], "name\torigins\tcreated\tlast_used\trevoked");
    let fields: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(fields[0], "intranet");
    assert_eq!(
        fields[1], "https://intranet.acme.test http://localhost:8080",
        "origins as browsers send them"
    );
    assert!(fields[2].ends_with("+00:00"), "{}", lines[1]);
    assert_eq!((fields[3], fields[4]), ("", ""));
    assert!(!listed.contains(&key[6..]), "a listing never shows a key");

    let again = run(
        dir.path(),
        &[
            "embed-key",
            "create",
            "--realm",
            "acme",
            "--name",
            "intranet",
            "--origin",
            INTRANET,
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("has an embed key named \"intranet\""),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(again.stdout.is_empty());
    for bad in [
        "intranet.acme.test",
        "https://acme.test/path",
        "ftp://acme.test",
    ] {
        let out = run(
            dir.path(),
            &[
                "embed-key",
                "create",
                "--realm",
                "acme",
                "--name",
                "other",
                "--origin",
                bad,
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid origin"));
    }

    admin(
        dir.path(),
        &[
            "embed-key",
            "revoke",
            "--realm",
            "acme",
            "--name",
            "intranet",
        ],
    );
    let listed = admin(dir.path(), &["embed-key", "list", "--realm", "acme"]);
    assert!(
        listed.lines().nth(1).unwrap().ends_with("+00:00"),
        "{listed}"
    );
    // Revoking again says so, and succeeds; a name never used fails.
    let revoke = |name: &str| {
        run(
            dir.path(),
            &["embed-key", "revoke", "--realm", "acme", "--name", name],
        )
    };
    let twice = revoke("intranet");
    assert_eq!(twice.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already revoked"));
    assert_eq!(revoke("nothing").status.code(), Some(1));
    // The name is free again once its key is revoked.
    create_key(dir.path(), "intranet");
}

#[tokio::test]
async fn a_running_server_honours_admin_changes_from_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let server = ServerProcess::start(
        dir.path(),
        &["--rate-limit", "off", "--ip-rate-limit", "off"],
    );
    let http = reqwest::Client::new();
    for i in 0..10 {
        // A key printed by `user create` works at once, with no retry.
        let email = format!("user{i}@acme.test");
        let key = create_user(dir.path(), "acme", &email, false);
        let me = http
            .get(server.url("/users/me"))
            .basic_auth(&email, Some(&key))
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "user {i}");
    }
    let key = create_key(dir.path(), "intranet");
    assert_eq!(page_status(&server, &key, "/users").await, 200);
    admin(
        dir.path(),
        &[
            "embed-key",
            "revoke",
            "--realm",
            "acme",
            "--name",
            "intranet",
        ],
    );
    assert_eq!(page_status(&server, &key, "/users").await, 401);
    let key = create_user(dir.path(), "acme", "last@acme.test", false);
    admin(dir.path(), &["realm", "deactivate", "acme"]);
    let me = http
        .get(server.url("/users/me"))
        .basic_auth("last@acme.test", Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
}

#[tokio::test]
async fn embed_keys_appear_neither_in_the_log_nor_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let key = create_key(dir.path(), "intranet");
    let mut server = ServerProcess::start_logging(dir.path(), &[], "trace");
    assert_eq!(page_status(&server, &key, "/users").await, 200);
    assert_eq!(page_status(&server, &key, "/users/me").await, 403);
    let wrong = format!("embed_{}", "x".repeat(32));
    assert_eq!(page_status(&server, &wrong, "/users").await, 401);
    let stream = reqwest::Client::new()
        .get(server.url("/presence/stream"))
        .bearer_auth(&key)
        .header("origin", "http://localhost:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    drop(stream);
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(15)).code(), Some(0));

    let text = server.log().join("\n");
    assert!(
        text.contains("embed_key="),
        "page requests are logged:\n{text}"
    );
    for secret in [&key, &wrong] {
        assert!(!text.contains(&secret[6..]), "a key is in the log:\n{text}");
    }
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    let hash = presence_server::keys::hash(&key);
    assert!(stored.windows(32).any(|w| w == hash), "the hash is stored");
    assert!(
        !stored.windows(32).any(|w| w == &key.as_bytes()[6..]),
        "the key is in the database in clear"
    );
}
