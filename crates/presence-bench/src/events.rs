//! G: presence events at scale. Every one of N users registers an event
//! queue and holds a long poll open on it; then one user comes online, and
//! the time from that report to each poll's answer is measured, with the
//! memory each queue and each waiting poll costs.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{HeaderValue, Method};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::process::Process;
use crate::provision::{self, User};
use crate::scenarios::{Plan, server_args};
use crate::stores::Storage;

/// A new HTTP/1.1 connection to `address`, driven in the background.
pub async fn connect(address: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A request to `address` with these credentials, before its body.
pub fn request_to(
    address: &str,
    method: Method,
    path: &str,
    authorization: &HeaderValue,
) -> http::request::Builder {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, address)
        .header(http::header::AUTHORIZATION, authorization.clone())
}

/// One request on a fresh connection; the answer's status and body.
pub async fn request(
    address: &str,
    method: Method,
    path: &str,
    authorization: &HeaderValue,
    body: &'static str,
) -> anyhow::Result<(u16, Bytes)> {
    let mut sender = connect(address).await?;
    let mut builder = request_to(address, method, path, authorization);
    if !body.is_empty() {
        builder = builder.header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    }
    let response = sender
        .send_request(builder.body(Full::new(Bytes::from_static(body.as_bytes())))?)
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

/// Registers a presence queue for `user`; its id.
async fn register(address: &str, user: &User) -> anyhow::Result<String> {
    let (status, body) = request(
        address,
        Method::POST,
        "/api/v1/register",
        &user.authorization,
        "event_types=%5B%22presence%22%5D&fetch_event_types=%5B%5D",
    )
    .await?;
    if status != 200 {
        bail!(
            "register answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let answer: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(answer["queue_id"]
        .as_str()
        .context("no queue_id")?
        .to_owned())
}

/// Runs scenario G with `queues` users and prints its table.
pub async fn fan_out(plan: &Plan, dir: &Path, queues: usize) -> anyhow::Result<()> {
    let (server, users) = start_server(plan, dir, queues)?;
    let address = server.address.clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = server.resident_bytes()?;

    let started = Instant::now();
    let queue_ids = register_all(&address, &users, queues).await?;
    let register_time = started.elapsed();
    let rss_queues = server.resident_bytes()?;

    let mut answers = hold_polls(&address, &users, queue_ids).await?;
    let rss_polls = server.resident_bytes()?;

    let trigger = Instant::now();
    come_online(&address, &users[queues]).await?;
    let acknowledged = trigger.elapsed();
    let (latencies, failures) = deliveries(&mut answers, queues, trigger).await;
    print_fan_out(
        queues,
        &latencies,
        failures,
        acknowledged,
        rss_queues.saturating_sub(rss_before) as f64 / queues as f64,
        rss_polls.saturating_sub(rss_queues) as f64 / queues as f64,
        register_time,
    );
    Ok(())
}

/// Provisions a realm of `queues` users who have reported and one who
/// never has, and starts a server on it; the server and the users.
fn start_server(
    plan: &Plan,
    dir: &Path,
    queues: usize,
) -> anyhow::Result<(Process, Arc<Vec<User>>)> {
    let storage = Storage::Dir(dir.join("events"));
    let dump = dir.join("events.jsonl");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    // The last user has never reported: its first report is "coming online".
    let realms = provision::write_dump_with(&dump, &[queues + 1], now, |i| i < queues)?;
    provision::import(&plan.server, &storage, &dump)?;
    let users = Arc::new(realms[0].users.clone());
    let mut args = server_args(&storage);
    // Polls wait for the event, not for a heartbeat.
    args.extend(["--event-heartbeat-ms".to_owned(), "600000".to_owned()]);
    // Every waiting poll holds a connection, all from this one address: room
    // for all of them, and for the registrations and the report beside them.
    let room = (queues + 1024).to_string();
    args.extend(
        [
            "--max-connections",
            &room,
            "--max-connections-per-ip",
            &room,
        ]
        .map(str::to_owned),
    );
    let server = Process::start(&plan.server, &args, Duration::from_secs(60))?;
    Ok((server, users))
}

/// Registers one queue for each of the first `queues` users, a few at a
/// time; the queue ids, by user.
async fn register_all(
    address: &str,
    users: &Arc<Vec<User>>,
    queues: usize,
) -> anyhow::Result<Vec<String>> {
    let mut queue_ids = vec![String::new(); queues];
    for chunk in (0..queues).collect::<Vec<_>>().chunks(64) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let (address, users) = (address.to_owned(), users.clone());
            tasks.push(tokio::spawn(async move {
                (i, register(&address, &users[i]).await)
            }));
        }
        for task in tasks {
            let (i, id) = task.await?;
            queue_ids[i] = id?;
        }
    }
    Ok(queue_ids)
}

/// When a poll was answered, and its status (0 if it failed).
type Answered = (Instant, u16);

/// Holds a long poll open on every queue (user `i` polls `queue_ids[i]`);
/// returns once every poll is sent and the server has had time to take
/// them in, with where their answers arrive.
async fn hold_polls(
    address: &str,
    users: &Arc<Vec<User>>,
    queue_ids: Vec<String>,
) -> anyhow::Result<UnboundedReceiver<Answered>> {
    let queues = queue_ids.len();
    let sent = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel::<Answered>();
    for (i, queue_id) in queue_ids.into_iter().enumerate() {
        let (address, users, sent, done) = (
            address.to_owned(),
            users.clone(),
            sent.clone(),
            done_tx.clone(),
        );
        tokio::spawn(async move {
            let path = format!("/api/v1/events?queue_id={queue_id}&last_event_id=-1");
            let status = poll(&address, &path, &users[i].authorization, &sent).await;
            let _ = done.send((Instant::now(), status.unwrap_or(0)));
        });
    }
    drop(done_tx);
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.load(Ordering::SeqCst) < queues {
        if Instant::now() > deadline {
            bail!(
                "only {} of {queues} polls were sent",
                sent.load(Ordering::SeqCst)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the server take every request in before the event.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(done_rx)
}

/// One long poll on its own connection, counted in `sent` once it is on
/// its way; the answer's status, once its body has arrived.
async fn poll(
    address: &str,
    path: &str,
    authorization: &HeaderValue,
    sent: &AtomicUsize,
) -> anyhow::Result<u16> {
    let mut sender = connect(address).await?;
    let request =
        request_to(address, Method::GET, path, authorization).body(Full::new(Bytes::new()))?;
    let pending = sender.send_request(request);
    sent.fetch_add(1, Ordering::SeqCst);
    let response = pending.await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

/// Sends the report that makes `user` come online: the presence event
/// every queue and stream of the realm waits for.
pub async fn come_online(address: &str, user: &User) -> anyhow::Result<()> {
    let (status, body) = request(
        address,
        Method::POST,
        "/api/v1/users/me/presence",
        &user.authorization,
        "status=active&ping_only=true&client=website",
    )
    .await?;
    if status != 200 {
        bail!(
            "the report answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// Waits at most a minute for the answers of `queues` polls: how long
/// after `trigger` each successful one came, sorted, and how many failed.
async fn deliveries(
    answers: &mut UnboundedReceiver<Answered>,
    queues: usize,
    trigger: Instant,
) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::with_capacity(queues);
    let mut failures = 0;
    let wait = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(wait);
    while latencies.len() + failures < queues {
        tokio::select! {
            got = answers.recv() => match got {
                Some((at, 200)) => latencies.push(at.saturating_duration_since(trigger)),
                Some(_) => failures += 1,
                None => break,
            },
            () = &mut wait => break,
        }
    }
    latencies.sort_unstable();
    (latencies, failures)
}

/// The `p`th percentile of sorted delivery times, in milliseconds (NaN if
/// nothing was delivered).
pub fn delivery_ms(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((p / 100.0) * (sorted.len().max(1) - 1) as f64).round() as usize)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// Prints scenario G's table.
fn print_fan_out(
    queues: usize,
    latencies: &[Duration],
    failures: usize,
    acknowledged: Duration,
    bytes_per_queue: f64,
    bytes_per_poll: f64,
    register_time: Duration,
) {
    let pct = |p: f64| delivery_ms(latencies, p);
    println!();
    println!(
        "| G. event fan-out | queues | delivered | failed | delivery p50 / p99 / max ms | report acknowledged ms | bytes per queue | bytes per waiting poll | register time |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| G. event fan-out | {queues} | {} | {failures} | {:.1} / {:.1} / {:.1} | {:.1} | {:.0} | {:.0} | {:.1} s |",
        latencies.len(),
        pct(50.0),
        pct(99.0),
        pct(100.0),
        acknowledged.as_secs_f64() * 1000.0,
        bytes_per_queue,
        bytes_per_poll,
        register_time.as_secs_f64(),
    );
}
