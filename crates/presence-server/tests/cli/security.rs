//! Secrets stay secret: API keys never reach the log, at any level, nor
//! the database in clear; and every request leaves one structured log line.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::support::{ServerProcess, admin, create_user};

/// Every byte of every file in `dir` (the database, its WAL and the rest).
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn keys_appear_neither_in_the_log_nor_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let alice = create_user(dir.path(), "acme", "alice@acme.test", false);
    let bob = create_user(dir.path(), "acme", "bob@acme.test", false);
    let mut server = ServerProcess::start_logging(
        dir.path(),
        &["--rate-limit", "200/60", "--ip-rate-limit", "2/60"],
        "trace",
    );
    let http = reqwest::Client::new();
    let me = server.url("/users/me");
    // Good credentials, with the key also where it does not belong: in the
    // query string and in a form field.
    let ok = http
        .get(&me)
        .basic_auth("alice@acme.test", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let posted = http
        .post(server.url(&format!("/users/me/presence?api_key={alice}")))
        .basic_auth("alice@acme.test", Some(&alice))
        .form(&[("status", "active"), ("api_key", alice.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    // Bad credentials of every kind, past the per-address limit too.
    for (email, key) in [
        ("alice@acme.test", bob.as_str()),
        ("bob@acme.test", &format!("{bob}!")),
        ("nobody@acme.test", alice.as_str()),
    ] {
        let refused = http
            .get(&me)
            .basic_auth(email, Some(key))
            .send()
            .await
            .unwrap();
        assert!([401, 429].contains(&refused.status().as_u16()));
    }
    let bearer = http
        .get(&me)
        .header("authorization", format!("Bearer {bob}"))
        .send()
        .await
        .unwrap();
    assert!([400, 429].contains(&bearer.status().as_u16()));
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(15)).code(), Some(0));

    let log = server.log();
    let text = log.join("\n");
    // The log is there, at trace level, with a line per request.
    let requests: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("request_id=") && l.contains("status="))
        .collect();
    assert!(requests.len() >= 6, "{text}");
    for secret in [
        alice.clone(),
        bob.clone(),
        STANDARD.encode(format!("alice@acme.test:{alice}")),
        STANDARD.encode(format!("alice@acme.test:{bob}")),
    ] {
        assert!(!text.contains(&secret), "a secret is in the log:\n{text}");
    }
    assert!(
        !text.to_lowercase().contains("authorization"),
        "the Authorization header is in the log:\n{text}"
    );

    // The database holds the keys' hashes, and never the keys.
    let stored = all_bytes(dir.path());
    for key in [&alice, &bob] {
        assert!(
            contains(&stored, &presence_server::keys::hash(key)),
            "the key's hash is stored (the check looks in the right place)"
        );
        assert!(
            !contains(&stored, key.as_bytes()),
            "a key is in the database in clear"
        );
    }
}

#[tokio::test]
async fn each_request_is_one_info_line_with_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let key = create_user(dir.path(), "acme", "alice@acme.test", false);
    let mut server = ServerProcess::start_logging(dir.path(), &[], "info");
    let response = reqwest::Client::new()
        .get(server.url("/users/alice@acme.test/presence?secret=hidden"))
        .basic_auth("alice@acme.test", Some(&key))
        .header("x-request-id", "probe-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["x-request-id"].to_str().unwrap(),
        "probe-123"
    );
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(15)).code(), Some(0));
    let log = server.log();
    // The log is written in batches; the last line before exit is there too.
    assert!(
        log.last().is_some_and(|l| l.contains("stopped")),
        "{log:#?}"
    );
    let lines: Vec<&String> = log.iter().filter(|l| l.contains("probe-123")).collect();
    assert_eq!(lines.len(), 1, "{log:#?}");
    let line = lines[0];
    for field in [
        "INFO",
        "method=GET",
        "path=/api/v1/users/alice@acme.test/presence",
        "status=400",
        "micros=",
        "user_id=1",
        "ip=127.0.0.1",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
    assert!(
        !line.contains("hidden"),
        "the query string is logged: {line}"
    );
}
