//! H: the browser audience. N pages hold the presence stream of one realm
//! open with one embed key, as the web components do; the memory each
//! stream costs the server is measured once every page has its snapshot,
//! and then one user comes online and the time until each page has the
//! event is measured. The snapshot is the realm's shared answer: it costs
//! the server once, not once per page.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{HeaderValue, Method};
use http_body_util::{BodyExt, Full};
use tokio::sync::mpsc;

use crate::events::{come_online, connect, delivery_ms, request_to};
use crate::process::Process;
use crate::provision::{self, Realm};
use crate::scenarios::{Plan, server_args};
use crate::stores::Storage;

/// The stream as the components open it: modern snapshot and events.
const STREAM_PATH: &str = "/api/v1/presence/stream?slim_presence=true\
     &client_capabilities=%7B%22simplified_presence_events%22%3Atrue%7D";

/// How many pages open their streams at once.
const OPENING_AT_ONCE: usize = 64;

/// What one page saw.
enum Seen {
    /// Its snapshot arrived, after this many bytes of stream.
    Opened(usize),
    /// The event arrived.
    Event(Instant),
    /// The stream failed, or ended early.
    Failed(String),
}

/// Splits a stream's bytes into messages (blocks ending in a blank line),
/// keeping only the start of each: enough to know its event.
#[derive(Default)]
struct Messages {
    head: Vec<u8>,
    last: u8,
}

impl Messages {
    /// The events of the messages that end in `data`.
    fn feed(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        let mut ended = Vec::new();
        for &byte in data {
            if self.head.len() < 64 {
                self.head.push(byte);
            }
            if byte == b'\n' && self.last == b'\n' {
                ended.push(std::mem::take(&mut self.head));
                self.last = 0;
            } else {
                self.last = byte;
            }
        }
        ended
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One page: opens the stream, reads its snapshot, then waits for the first
/// presence event.
async fn page(address: String, authorization: HeaderValue, seen: mpsc::UnboundedSender<Seen>) {
    let result = async {
        let mut sender = connect(&address).await?;
        let request = request_to(&address, Method::GET, STREAM_PATH, &authorization)
            .body(Full::new(Bytes::new()))?;
        let response = sender.send_request(request).await?;
        if response.status() != 200 {
            bail!("the stream answered {}", response.status());
        }
        let mut body = response.into_body();
        let mut messages = Messages::default();
        let mut read = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            read += data.len();
            for head in messages.feed(&data) {
                if contains(&head, b"event: register") {
                    let _ = seen.send(Seen::Opened(read));
                } else if contains(&head, b"event: presence") {
                    let _ = seen.send(Seen::Event(Instant::now()));
                    return anyhow::Ok(());
                }
            }
        }
        bail!("the stream ended before the event")
    }
    .await;
    if let Err(e) = result {
        let _ = seen.send(Seen::Failed(e.to_string()));
    }
}

/// Creates an embed key for the realm with the server's own admin command.
fn create_key(server: &Path, storage: &Storage, realm: &str) -> anyhow::Result<String> {
    let output = Command::new(server)
        .args(storage.flags())
        .env_remove("PRESENCE_DATABASE_URL")
        .args(["embed-key", "create", "--realm", realm, "--name", "bench"])
        .args(["--origin", "https://bench.test"])
        .output()
        .with_context(|| format!("cannot run {}", server.display()))?;
    if !output.status.success() {
        bail!(
            "embed-key create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// Waits for `count` pages to report, at most `limit`; the failures.
async fn gather(
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    count: usize,
    limit: Duration,
    mut on: impl FnMut(&Seen),
) -> usize {
    let mut failures = 0;
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    for _ in 0..count {
        tokio::select! {
            got = seen.recv() => match got {
                Some(Seen::Failed(e)) => {
                    if failures == 0 {
                        eprintln!("a page failed: {e}");
                    }
                    failures += 1;
                }
                Some(other) => on(&other),
                None => break,
            },
            () = &mut deadline => break,
        }
    }
    failures
}

/// Runs scenario H: `streams` pages of a realm of `users` users.
pub async fn audience(plan: &Plan, dir: &Path, streams: usize, users: usize) -> anyhow::Result<()> {
    let (server, realms, authorization) = start_server(plan, dir, streams, users)?;
    let pages = Pages {
        address: server.address.clone(),
        authorization,
    };
    let (tx, mut seen) = mpsc::unbounded_channel();
    // One page first: the snapshot is built and counted before measuring.
    let snapshot = pages.open_first(&tx, &mut seen).await;
    let rss_before = server.resident_bytes()?;

    let started = Instant::now();
    let (opened, mut failures) = pages.open_the_rest(streams, &tx, &mut seen).await;
    let open_time = started.elapsed();
    drop(tx);
    // Let the writes of the last snapshots settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = server.resident_bytes()?;

    let announcer = realms[0].users.last().context("a realm with users")?;
    let trigger = Instant::now();
    come_online(&pages.address, announcer).await?;
    let mut latencies = Vec::with_capacity(opened);
    failures += gather(&mut seen, opened, Duration::from_secs(60), |s| {
        if let Seen::Event(at) = s {
            latencies.push(at.saturating_duration_since(trigger));
        }
    })
    .await;
    report(
        streams,
        users,
        &latencies,
        failures,
        rss_after.saturating_sub(rss_before) as f64 / opened.max(1) as f64,
        snapshot,
        open_time,
    );
    Ok(())
}

/// Provisions a realm of `users` users, the last of whom has never
/// reported, with an embed key, and starts a server with room for
/// `streams` pages; the server, the realms and the pages' credentials.
fn start_server(
    plan: &Plan,
    dir: &Path,
    streams: usize,
    users: usize,
) -> anyhow::Result<(Process, Vec<Realm>, HeaderValue)> {
    let storage = Storage::Dir(dir.join("pages"));
    let dump = dir.join("pages.jsonl");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    // The last user has never reported: its first report is "coming online".
    let realms = provision::write_dump_with(&dump, &[users], now, |i| i + 1 < users)?;
    provision::import(&plan.server, &storage, &dump)?;
    let key = create_key(&plan.server, &storage, &format!("bench-{users}"))?;
    let authorization = HeaderValue::from_str(&format!("Bearer {key}"))?;
    let mut args = server_args(&storage);
    let room = (streams + 1024).to_string();
    args.extend(
        [
            "--max-connections",
            &room,
            "--max-connections-per-ip",
            &room,
            "--embed-rate-limit",
            "off",
        ]
        .map(str::to_owned),
    );
    let server = Process::start(&plan.server, &args, Duration::from_secs(60))?;
    Ok((server, realms, authorization))
}

/// Where pages open their streams, and with what key.
struct Pages {
    address: String,
    authorization: HeaderValue,
}

impl Pages {
    /// Opens one page, which tells `seen` what it sees.
    fn open(&self, seen: &mpsc::UnboundedSender<Seen>) {
        tokio::spawn(page(
            self.address.clone(),
            self.authorization.clone(),
            seen.clone(),
        ));
    }

    /// Opens one page and waits for its snapshot; the snapshot's size in
    /// bytes (0 if it did not come within a minute).
    async fn open_first(
        &self,
        tx: &mpsc::UnboundedSender<Seen>,
        seen: &mut mpsc::UnboundedReceiver<Seen>,
    ) -> usize {
        self.open(tx);
        let mut snapshot = 0;
        gather(seen, 1, Duration::from_secs(60), |s| {
            if let Seen::Opened(bytes) = s {
                snapshot = *bytes;
            }
        })
        .await;
        snapshot
    }

    /// Opens the other `streams - 1` pages, `OPENING_AT_ONCE` at a time,
    /// each wave waited for before the next; how many pages are open, the
    /// first one included, and how many failed.
    async fn open_the_rest(
        &self,
        streams: usize,
        tx: &mpsc::UnboundedSender<Seen>,
        seen: &mut mpsc::UnboundedReceiver<Seen>,
    ) -> (usize, usize) {
        let mut failures = 0;
        let mut opened = 1;
        let mut left = streams.saturating_sub(1);
        while left > 0 {
            let wave = left.min(OPENING_AT_ONCE);
            for _ in 0..wave {
                self.open(tx);
            }
            failures += gather(seen, wave, Duration::from_secs(60), |_| opened += 1).await;
            left -= wave;
        }
        (opened, failures)
    }
}

fn report(
    streams: usize,
    users: usize,
    latencies: &[Duration],
    failures: usize,
    bytes_per_stream: f64,
    snapshot: usize,
    open_time: Duration,
) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let pct = |p: f64| delivery_ms(&sorted, p);
    println!();
    println!(
        "| H. page streams | streams | realm users | snapshot bytes | server bytes per stream | delivered | failed | delivery p50 / p99 / max ms | open time |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| H. page streams | {streams} | {users} | {snapshot} | {bytes_per_stream:.0} | {} | {failures} | {:.1} / {:.1} / {:.1} | {:.1} s |",
        sorted.len(),
        pct(50.0),
        pct(99.0),
        pct(100.0),
        open_time.as_secs_f64(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_told_apart_across_chunks() {
        let mut messages = Messages::default();
        assert!(messages.feed(b"retry: 3000\n").is_empty());
        let ended = messages.feed(b"\nid: q:-1\nevent: register\ndata: {\"a\":");
        assert_eq!(ended.len(), 1);
        assert!(messages.feed(&[b'1'; 10_000]).is_empty());
        let ended = messages.feed(b"}\n\nid: q:0\nevent: presence\ndata: {}\n\n");
        assert_eq!(ended.len(), 2);
        assert!(contains(&ended[0], b"event: register"));
        assert!(contains(&ended[1], b"event: presence"));
    }
}
