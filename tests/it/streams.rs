//! What a presence stream may hold: a user's open streams are capped, and
//! a stream whose reader reads too slowly to let it finish is closed at
//! its hard deadline all the same. (Streams whose readers stop reading
//! altogether are measured from outside a server process: see the
//! binary's tests.)

use std::time::Duration;

use base64::Engine;
use presence_server::clock::ManualClock;
use presence_tests::raw::address;
use presence_tests::{Backing, Options, START, TestServer, import_realm};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_user_has_a_bounded_number_of_open_streams() {
    let mut options = Options::default();
    options.config.max_streams_per_user = 2;
    let server = TestServer::start_with(options).await;
    let users = server.realm_with_users("acme", 2).await;
    let first = server.open_stream(&users[0], &[], None).await;
    let _second = server.open_stream(&users[0], &[], None).await;
    let refused = server.get(&users[0], "/presence/stream").await;
    refused.error(429, "RATE_LIMIT_HIT", "Too many open presence streams");
    assert!(refused.header("retry-after").is_some());
    // Another user is not held back by it.
    let _other = server.open_stream(&users[1], &[], None).await;
    // Once a stream closes, its place is free again.
    drop(first);
    server
        .wait_until(|| async {
            let opened = server
                .request(reqwest::Method::GET, &users[0], "/presence/stream")
                .send()
                .await
                .unwrap();
            opened.status() == 200
        })
        .await;
}

#[tokio::test]
async fn a_reader_too_slow_to_finish_is_cut_off_at_the_hard_deadline() {
    let backing = Backing::sqlite();
    // A snapshot of some 500 KB, more than the socket buffers between a
    // slow reader and the server hold.
    let users = import_realm(&backing, "big", 3000, START);
    let mut config = Options::default().config;
    // The server ends streams after half a second; writing that end gets
    // a few seconds more.
    config.event_stream_max_ms = 500;
    let server = TestServer::start_on(backing, Arc::new(ManualClock::new(START)), config).await;

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket
        .connect(address(&server).parse().unwrap())
        .await
        .unwrap();
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", users[0].email, users[0].key));
    stream
        .write_all(
            format!(
                "GET /api/v1/presence/stream HTTP/1.1\r\nhost: x\r\nauthorization: Basic {credentials}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // A trickle, to the end of the connection: a little every few
    // milliseconds, so the connection always makes some progress, far too
    // slowly (some 50 KB/s, ten seconds for the whole answer) to read the
    // snapshot and the stream's end by the hard deadline (0.5 s + 2 s
    // after the head). The reader never speeds up, so however late the
    // server comes to its deadline, it cannot have finished by then; what
    // it wrote before it closed is still read, at the same pace.
    let mut received = Vec::new();
    let trickle = async {
        let mut chunk = [0u8; 256];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let closed = tokio::time::timeout(presence_tests::PATIENCE, trickle)
        .await
        .is_ok();
    assert!(received.starts_with(b"HTTP/1.1 200 "));
    // A stream the server ended itself finishes its chunked body; this one
    // was cut off, whatever the reader did.
    assert!(
        !received.ends_with(b"0\r\n\r\n"),
        "the stream ended normally, after {} bytes",
        received.len()
    );
    assert!(
        closed,
        "the connection still open after {:?}, {} bytes read",
        presence_tests::PATIENCE,
        received.len()
    );
}
