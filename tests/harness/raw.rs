//! Talking to a test server over a bare socket, for what an HTTP client
//! library would hide: answers to requests that never finish, connections
//! the server closes, refusals before any request is read.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::TestServer;

/// `127.0.0.1:PORT` of a test server.
pub fn address(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads one HTTP answer (head and a `content-length` body) from a raw
/// socket: status and body. Fails the test if none comes within 5 s.
pub async fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    tokio::time::timeout(Duration::from_secs(5), read_answer_now(stream))
        .await
        .expect("an answer within 5 s")
}

/// Reads one HTTP answer as [`read_answer`] does, without its time limit.
pub async fn read_answer_now(stream: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.expect("the body arrives");
                assert!(n > 0, "the connection closed inside a body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head[9..12].parse().expect("a status");
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
            return (status, body);
        }
        let n = stream.read(&mut chunk).await.expect("the answer arrives");
        assert!(n > 0, "the connection closed before an answer");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits until the server closes `stream`, at most `limit`; how long it took.
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut chunk = [0u8; 1024];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}
