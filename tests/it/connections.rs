//! Who gets a connection when one client tries to take them all, and what
//! a refused request costs: one address's flood leaves others served, and
//! an address over its rate limit is refused before its body is read.

use std::time::{Duration, Instant};

use base64::Engine;
use presence_server::config::RateLimit;
use presence_tests::raw::{address, read_answer};
use presence_tests::{Options, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_flood_from_one_address_leaves_another_served() {
    // The default limits: 1024 connections, 256 from any one address.
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);

    // More idle sockets than the server has connections in all.
    let mut flood = Vec::new();
    for _ in 0..1100 {
        flood.push(TcpStream::connect(address(&server)).await.unwrap());
    }
    // The flooding address is refused past its share: answered 503, or,
    // while many refusals are still being written, closed without a word.
    let mut one_more = TcpStream::connect(address(&server)).await.unwrap();
    let _ = one_more
        .write_all(b"GET /api/v1/server_settings HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), one_more.read_to_end(&mut answer))
        .await
        .expect("the refused connection ends within 5 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        read.is_err()
            || answer.is_empty()
            || (answer.starts_with("HTTP/1.1 503 ")
                && answer.contains("Too many open connections from your address")),
        "{answer}"
    );

    // ... while another address is served at once.
    let other = reqwest::Client::builder()
        .local_address(Some([127, 0, 0, 2].into()))
        .build()
        .unwrap();
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(1),
        server.send(
            other
                .get(server.url("/users/me"))
                .basic_auth(&alice.email, Some(&alice.key)),
        ),
    )
    .await
    .expect("another address is answered within 1 s");
    answer.ok();
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(flood);
}

#[tokio::test]
async fn an_address_over_its_limit_is_refused_before_its_body_is_read() {
    let mut options = Options::default();
    options.config.ip_rate_limit = RateLimit::PerUser {
        requests: 2,
        per_secs: 60,
    };
    let server = TestServer::start_with(options).await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    server.clock.advance(60);
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        alice.email,
        "0".repeat(32)
    ));
    for _ in 0..2 {
        let answer = server
            .send(
                reqwest::Client::new()
                    .get(server.url("/users/me"))
                    .header("authorization", format!("Basic {wrong}")),
            )
            .await;
        answer.error(401, "UNAUTHORIZED", "Invalid API key");
    }
    // Wrong credentials again, and a body announced but never sent: the
    // refusal must not wait for it (the request deadline is 30 s).
    let mut stream = TcpStream::connect(address(&server)).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/v1/users/me/presence HTTP/1.1\r\nhost: x\r\n\
                 authorization: Basic {wrong}\r\n\
                 content-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let (status, body) = read_answer(&mut stream).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A caller with good credentials at the same address is still served.
    server.get(&alice, "/users/me").await.ok();
}
