//! Presence streams whose readers stop reading, against a server process
//! whose memory is measured from the outside (`/proc/PID/status`): they
//! must not hold memory, and must be closed once they make no progress.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::support::{ServerProcess, admin};

/// Users in the realm, each with several clients: its snapshot is some
/// 5 MB, more than a socket's buffers take (up to 4 MB here), so that what
/// a server holds per unread stream shows in its own memory.
const USERS: usize = 10_000;

/// The clients each user has reported from.
const CLIENTS: [&str; 5] = [
    "website",
    "ZulipMobile",
    "ZulipTerminal",
    "ZulipPython",
    "curl",
];

/// A dump of one realm of `USERS` users, each with a known key and a
/// presence record, written to `path`.
fn write_realm(path: &Path) {
    let mut out =
        String::from("{\"type\":\"header\",\"format\":\"presence-dump\",\"version\":1}\n");
    out.push_str(
        "{\"type\":\"realm\",\"id\":1,\"string_id\":\"big\",\"name\":\"Big\",\"date_created\":1}\n",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for i in 1..=USERS {
        out.push_str(&format!(
            "{{\"type\":\"user\",\"id\":{i},\"realm_id\":1,\"email\":\"user{i}@big.test\",\
             \"full_name\":\"User {i}\",\"date_joined\":1,\"api_key\":\"{}\"}}\n",
            key(i)
        ));
        for (c, client) in CLIENTS.iter().enumerate() {
            let update_id = i * CLIENTS.len() + c;
            out.push_str(&format!(
                "{{\"type\":\"presence\",\"user_id\":{i},\"client\":\"{client}\",\
                 \"last_connected_time\":{now},\"last_active_time\":{now},\"update_id\":{update_id}}}\n"
            ));
        }
    }
    std::fs::write(path, out).unwrap();
}

fn key(i: usize) -> String {
    format!("{i:0>32}")
}

/// The server's resident memory, in bytes.
fn resident_bytes(server: &ServerProcess) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// Opens `GET /presence/stream` as user `i` on a socket with a small
/// receive buffer, reads the answer's head and stops reading.
fn open_unread_stream(address: &str, i: usize) -> TcpStream {
    let socket = socket2_like_small_buffer(address);
    let mut stream = socket;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("user{i}@big.test:{}", key(i)));
    write!(
        stream,
        "GET /api/v1/presence/stream HTTP/1.1\r\nhost: x\r\nauthorization: Basic {credentials}\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 64];
    stream.read_exact(&mut head).unwrap();
    assert!(
        head.starts_with(b"HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// A connected socket whose receive buffer is as small as the system
/// allows, so that what the server sends piles up on its side.
fn socket2_like_small_buffer(address: &str) -> TcpStream {
    let address: std::net::SocketAddr = address.parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = runtime.block_on(socket.connect(address)).unwrap();
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Reads what is left until the connection's end, which must come within
/// `limit`.
fn drain_to_end(mut stream: TcpStream, limit: Duration) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut sink = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the stream did not end within {limit:?}: {e}"),
        }
    }
}

/// `GET /realm/presence` as user 1, read to the end.
fn realm_presence(address: &str) {
    let mut stream = TcpStream::connect(address).unwrap();
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("user1@big.test:{}", key(1)));
    write!(
        stream,
        "GET /api/v1/realm/presence HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
         authorization: Basic {credentials}\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200 "));
}

/// How many streams the server has logged closing for making no progress.
fn stalled_closes(server: &ServerProcess) -> usize {
    server
        .log()
        .iter()
        .filter(|line| line.contains("closing a connection") && line.contains("StreamStalled"))
        .count()
}

#[test]
fn unread_streams_hold_no_snapshot_copies_and_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("big.jsonl");
    write_realm(&dump);
    admin(dir.path(), &["import", dump.to_str().unwrap()]);
    // A stream that sends nothing for 1 s past its 1 s keep-alive interval
    // has stalled.
    let server = ServerProcess::start_logging(
        dir.path(),
        &[
            "--rate-limit",
            "off",
            "--keep-alive-timeout-secs",
            "1",
            "--event-stream-keepalive-ms",
            "1000",
        ],
        "info,presence_server::http=debug",
    );
    let address = server.base.trim_start_matches("http://").to_owned();
    // The realm's shared answer is built and counted before the
    // measurement starts: the streams' snapshots are that answer.
    realm_presence(&address);
    let before = resident_bytes(&server);

    // Five users, ten streams each, none of them read.
    let started = Instant::now();
    let streams: Vec<TcpStream> = (0..50)
        .map(|n| open_unread_stream(&address, 1 + n % 5))
        .collect();
    let grown = resident_bytes(&server).saturating_sub(before);
    eprintln!("50 unread streams grew the server by {} KB", grown >> 10);
    assert!(
        grown < 50 << 20,
        "50 unread streams grew the server by {} MB",
        grown >> 20
    );

    // Each is cut off once it has made no progress for its stall timeout
    // (2 s here), and none lives on.
    while stalled_closes(&server) < streams.len() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} of {} unread streams closed after {:?}",
            stalled_closes(&server),
            streams.len(),
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // What the server had written before it closed still arrives, then the end.
    for stream in streams {
        drain_to_end(stream, Duration::from_secs(10));
    }
}
