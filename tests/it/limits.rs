//! The limits that keep one client from exhausting the server: the
//! per-address rate limit, URL and header size, open connections, time to
//! send headers, idle keep-alive, and the per-request deadline. Each test
//! sets its limit low and checks both the refusal and that the server
//! keeps serving.

use std::time::{Duration, Instant};

use base64::Engine;
use presence_server::config::RateLimit;
use presence_tests::raw::{address, closed_within, read_answer};
use presence_tests::{Options, PATIENCE, TestServer, contract};
use reqwest::Method;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SETTINGS_REQUEST: &[u8] = b"GET /api/v1/server_settings HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn unauthenticated_requests_are_limited_per_address() {
    let mut options = Options::default();
    options.config.ip_rate_limit = RateLimit::PerUser {
        requests: 3,
        per_secs: 60,
    };
    let server = TestServer::start_with(options).await;
    // Valid credentials never count against the address.
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    // Creating the user polled until the server knew it, and the failures
    // before that counted: start from a full bucket.
    server.clock.advance(60);
    let anonymous = reqwest::Client::new();
    for _ in 0..3 {
        let answer = server
            .send(anonymous.get(server.url("/server_settings")))
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("x-ratelimit-limit"), None);
    }
    let answer = server
        .send(anonymous.get(server.url("/server_settings")))
        .await;
    answer.error(429, "RATE_LIMIT_HIT", "API usage exceeded rate limit");
    let retry: f64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0.0 && retry <= 20.0, "{retry}");
    assert_eq!(answer.header("x-ratelimit-remaining"), Some("0"));
    // Failed credentials from the same address are refused the same way,
    // and so are requests without any.
    let wrong = server
        .send(
            anonymous
                .get(server.url("/users/me"))
                .basic_auth(&alice.email, Some("A".repeat(32))),
        )
        .await;
    wrong.error(429, "RATE_LIMIT_HIT", "API usage exceeded rate limit");
    let none = server.send(anonymous.get(server.url("/users/me"))).await;
    none.error(429, "RATE_LIMIT_HIT", "API usage exceeded rate limit");
    // A user with valid credentials behind the same address is served.
    server.get(&alice, "/users/me").await.ok();
    // Time refills the address's bucket.
    server.clock.advance(60);
    assert_eq!(
        server
            .send(anonymous.get(server.url("/server_settings")))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn failed_authentication_counts_against_the_address() {
    let mut options = Options::default();
    options.config.ip_rate_limit = RateLimit::PerUser {
        requests: 3,
        per_secs: 60,
    };
    let server = TestServer::start_with(options).await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    server.clock.advance(60);
    let guess = |key: String| {
        server.send(
            reqwest::Client::new()
                .get(server.url("/users/me"))
                .basic_auth(&alice.email, Some(key)),
        )
    };
    for i in 0..3 {
        guess(format!("{i:0>32}"))
            .await
            .error(401, "UNAUTHORIZED", "Invalid API key");
    }
    guess("0".repeat(32))
        .await
        .error(429, "RATE_LIMIT_HIT", "API usage exceeded rate limit");
    server.get(&alice, "/users/me").await.ok();
}

#[tokio::test]
async fn long_urls_and_large_headers_get_json_refusals() {
    let mut options = Options::default();
    options.config.max_url_bytes = 1024;
    options.config.max_header_bytes = 2048;
    let server = TestServer::start_with(options).await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);

    let long = format!("/users/me?pad={}", "x".repeat(1100));
    server.get(&alice, &long).await.error(
        414,
        "BAD_REQUEST",
        "URL too long (the limit is 1024 bytes)",
    );
    let answer = server
        .send(
            server
                .request(Method::GET, &alice, "/users/me")
                .header("x-padding", "y".repeat(2100)),
        )
        .await;
    answer.error(
        431,
        "BAD_REQUEST",
        "Request headers too large (the limit is 2048 bytes)",
    );
    // Far past the limits, hyper refuses before buffering the whole head.
    let answer = server
        .send(
            server
                .request(Method::GET, &alice, "/users/me")
                .header("x-padding", "y".repeat(100_000)),
        )
        .await;
    assert_eq!(answer.status, 431);
    assert_eq!(answer.body, serde_json::Value::Null, "hyper's own refusal");
    // Just under the limits, all is well.
    server
        .get(&alice, &format!("/users/me?pad={}", "x".repeat(900)))
        .await
        .ok();
}

#[tokio::test]
async fn connections_over_the_limit_are_answered_503_and_closed() {
    let mut options = Options::default();
    options.config.max_connections = 2;
    let server = TestServer::start_with(options).await;
    let addr = address(&server);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(SETTINGS_REQUEST).await.unwrap();
        assert_eq!(read_answer(&mut stream).await.0, 200);
        held.push(stream);
    }
    let mut third = TcpStream::connect(&addr).await.unwrap();
    third.write_all(SETTINGS_REQUEST).await.unwrap();
    let (status, body) = read_answer(&mut third).await;
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    contract::check("GET", "/api/v1/server_settings", 503, &body);
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    assert!(
        closed_within(&mut third, Duration::from_secs(5))
            .await
            .is_some(),
        "the refused connection is closed"
    );
    // A slot comes back once the server sees a connection end.
    drop(held.pop());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(SETTINGS_REQUEST).await.unwrap();
        if read_answer(&mut stream).await.0 == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a freed slot is not used again within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let mut options = Options::default();
    options.config.header_read_timeout_secs = 0.5;
    let server = TestServer::start_with(options).await;
    let addr = address(&server);

    // A client that sends its headers a byte at a time.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let trickle = async {
        for byte in b"GET /api/v1/server_settings HTTP/1.1\r\nx-slow: "
            .iter()
            .cycle()
        {
            if slow.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), trickle).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "a trickling client was kept {elapsed:?}"
    );
    // A client that connects and says nothing.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let closed = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(
        closed.is_some_and(|t| t < Duration::from_secs(3)),
        "{closed:?}"
    );
    // Others are still served.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream.write_all(SETTINGS_REQUEST).await.unwrap();
    assert_eq!(read_answer(&mut stream).await.0, 200);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let mut options = Options::default();
    options.config.keep_alive_timeout_secs = 0.5;
    let server = TestServer::start_with(options).await;
    let addr = address(&server);

    // A connection in use stays open past the idle timeout...
    let mut busy = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        busy.write_all(SETTINGS_REQUEST).await.unwrap();
        assert_eq!(read_answer(&mut busy).await.0, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...and is closed once it idles.
    let closed = closed_within(&mut busy, Duration::from_secs(5)).await;
    assert!(
        closed.is_some_and(|t| t >= Duration::from_millis(250) && t < Duration::from_secs(3)),
        "{closed:?}"
    );
}

#[tokio::test]
async fn a_request_past_its_deadline_is_answered_503() {
    let mut options = Options::default();
    options.config.request_timeout_secs = 0.5;
    let server = TestServer::start_with(options).await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);

    // A body that never comes in full, from a caller whose credentials
    // are good (without them, the request is refused before its body).
    let mut stream = TcpStream::connect(address(&server)).await.unwrap();
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", alice.email, alice.key));
    stream
        .write_all(
            format!(
                "POST /api/v1/users/me/presence HTTP/1.1\r\nhost: x\r\n\
                 authorization: Basic {credentials}\r\n\
                 content-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nstatus="
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let (status, body) = read_answer(&mut stream).await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    contract::check("POST", "/api/v1/users/me/presence", 503, &body);
    assert_eq!(
        body["msg"],
        "The server could not answer in time; try again"
    );

    // A write held up by a store that someone else has locked.
    let locker = rusqlite::Connection::open(server.data_dir().join("presence.sqlite3")).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        server.post(
            &alice,
            "/users/me/presence",
            &[("status", "active"), ("ping_only", "true")],
        ),
    )
    .await
    .expect("an answer within 5 s");
    answer.error(
        503,
        "SERVICE_UNAVAILABLE",
        "The server could not answer in time; try again",
    );
    assert_eq!(answer.header("retry-after"), Some("1"));
    // Reads do not wait for the store, and the write lands once it is free.
    server.get(&alice, "/users/me").await.ok();
    locker.execute_batch("COMMIT").unwrap();
    server
        .wait_until(|| async {
            server
                .get(&alice, &format!("/users/{}/presence", alice.email))
                .await
                .status
                == 200
        })
        .await;
}

#[tokio::test]
async fn every_answer_has_a_request_id() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    let a = server.get(&alice, "/users/me").await;
    let b = server.get(&alice, "/nope").await;
    let (a, b) = (
        a.header("x-request-id").unwrap().to_owned(),
        b.header("x-request-id").unwrap().to_owned(),
    );
    assert_ne!(a, b);
    assert_eq!(a.len(), 16, "{a}");
    // A sane id from the client is kept; anything else is replaced.
    let kept = server
        .send(
            server
                .request(Method::GET, &alice, "/users/me")
                .header("x-request-id", "trace-42.a_b:c"),
        )
        .await;
    assert_eq!(kept.header("x-request-id"), Some("trace-42.a_b:c"));
    let long = "z".repeat(65);
    let replaced = server
        .send(
            server
                .request(Method::GET, &alice, "/users/me")
                .header("x-request-id", &long),
        )
        .await;
    let id = replaced.header("x-request-id").unwrap();
    assert_ne!(id, long);
    assert_eq!(id.len(), 16);
}

#[tokio::test]
async fn a_long_poll_waits_past_the_request_deadline() {
    let mut options = Options::default();
    options.config.request_timeout_secs = 0.3;
    options.config.event_heartbeat_ms = 1_000;
    let server = TestServer::start_with(options).await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    let registered = server
        .register(&alice, &[("event_types", r#"["presence"]"#)])
        .await;
    let queue = registered["queue_id"].as_str().unwrap().to_owned();
    // Waiting for events is the point of the request: it ends with a
    // heartbeat, not with the deadline's 503.
    let started = Instant::now();
    let body = server.poll(&alice, &queue, -1, false).await.ok();
    assert_eq!(body["events"][0]["type"], "heartbeat");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn an_open_stream_is_not_an_idle_connection() {
    let mut options = Options::default();
    options.config.keep_alive_timeout_secs = 0.3;
    // Keep-alive comments rarer than the idle timeout.
    options.config.event_stream_keepalive_ms = 1_500;
    let server = TestServer::start_with(options).await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    let mut stream = server.open_stream(&alice, &[], None).await;
    stream.next_data().await;
    let keepalive = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream is still open")
        .expect("a keep-alive, not the end of the stream");
    assert_eq!(keepalive.comments, ["keep-alive"]);
}
