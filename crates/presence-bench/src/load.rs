//! A closed-loop load generator over keep-alive HTTP/1.1 connections.
//!
//! Each connection sends a request, reads the whole answer, records the
//! latency, and sends the next: so the figures are what a fixed number of
//! busy clients get. Requests come from a [`Workload`], which may keep state
//! per connection (the incremental reader remembers its last update id).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// One request to send.
pub struct Request {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<HeaderValue>,
    /// A form body (empty for none).
    pub body: Bytes,
}

/// What a connection remembers between its requests.
pub struct Connection {
    /// A random source of the connection's own.
    pub rng: StdRng,
    /// The last `presence_last_update_id` seen (incremental readers).
    pub last_update_id: i64,
    /// Requests this connection has sent.
    pub sent: u64,
    /// The connection's index.
    pub index: usize,
}

/// A source of requests.
pub trait Workload: Send + Sync {
    /// The next request of a connection.
    fn next(&self, connection: &mut Connection) -> Request;

    /// Sees each answer's body; by default ignores it.
    fn observe(&self, _connection: &mut Connection, _body: &[u8]) {}

    /// A pause after each request, for a paced background load; none by default.
    fn pause(&self) -> Option<Duration> {
        None
    }
}

/// What a run measured.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Answers received within the measured window.
    pub requests: u64,
    /// Of those, answers that were not 2xx.
    pub failures: u64,
    /// Body bytes received within the window.
    pub body_bytes: u64,
    /// Latency of every measured request, in microseconds, sorted.
    pub latencies: Vec<u32>,
    /// The measured window.
    pub window: Duration,
}

impl Outcome {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64()
    }

    /// A latency percentile in milliseconds (`p` from 0 to 100).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        f64::from(self.latencies[rank]) / 1000.0
    }

    /// The mean body size.
    pub fn mean_body_bytes(&self) -> usize {
        (self.body_bytes / self.requests.max(1)) as usize
    }
}

/// Drives `workload` from `connections` connections: `warmup` unmeasured,
/// then `window` measured. Connection `i` goes to `addresses[i % len]`, so
/// the load is spread evenly over several server nodes.
pub async fn run(
    addresses: &[String],
    workload: Arc<dyn Workload>,
    connections: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(!addresses.is_empty(), "no server to drive");
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + window;
    let mut tasks = Vec::new();
    for index in 0..connections {
        let address = addresses[index % addresses.len()].clone();
        let workload = workload.clone();
        tasks.push(tokio::spawn(async move {
            connection(&address, workload, index, measure_from, stop_at).await
        }));
    }
    let mut total = Outcome {
        window,
        ..Outcome::default()
    };
    for task in tasks {
        let part = task.await??;
        total.requests += part.requests;
        total.failures += part.failures;
        total.body_bytes += part.body_bytes;
        total.latencies.extend(part.latencies);
    }
    total.latencies.sort_unstable();
    Ok(total)
}

/// One keep-alive connection to a server.
struct Link {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Link {
    async fn open(address: &str) -> anyhow::Result<Link> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let host = HeaderValue::from_str(address)?;
        Ok(Link { sender, host })
    }

    /// Sends a request and reads the whole answer: whether it was 2xx, and
    /// its body.
    async fn exchange(&mut self, request: Request) -> anyhow::Result<(bool, Bytes)> {
        let mut builder = http::Request::builder()
            .method(request.method)
            .uri(request.path)
            .header(http::header::HOST, self.host.clone());
        if let Some(authorization) = request.authorization {
            builder = builder.header(http::header::AUTHORIZATION, authorization);
        }
        if !request.body.is_empty() {
            builder = builder.header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        }
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(builder.body(Full::new(request.body))?)
            .await?;
        let ok = response.status().is_success();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((ok, body))
    }
}

fn new_state(index: usize) -> Connection {
    Connection {
        rng: StdRng::seed_from_u64(0x5eed ^ index as u64),
        last_update_id: -1,
        sent: 0,
        index,
    }
}

async fn connection(
    address: &str,
    workload: Arc<dyn Workload>,
    index: usize,
    measure_from: Instant,
    stop_at: Instant,
) -> anyhow::Result<Outcome> {
    let mut link = Link::open(address).await?;
    let mut state = new_state(index);
    let mut out = Outcome::default();
    loop {
        let began = Instant::now();
        if began >= stop_at {
            break;
        }
        let request = workload.next(&mut state);
        state.sent += 1;
        let (ok, body) = link.exchange(request).await?;
        workload.observe(&mut state, &body);
        if let Some(pause) = workload.pause() {
            tokio::time::sleep(pause).await;
        }
        if began >= measure_from {
            out.requests += 1;
            out.failures += u64::from(!ok);
            out.body_bytes += body.len() as u64;
            out.latencies
                .push(u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX));
        }
    }
    Ok(out)
}

/// A workload's requests sent one after the other on one connection, a
/// given number at a time (for counting, not timing: no latencies kept).
pub struct Sequence {
    link: Link,
    workload: Arc<dyn Workload>,
    state: Connection,
}

impl Sequence {
    /// Connects to `address`, as connection 0 of `workload`.
    pub async fn open(address: &str, workload: Arc<dyn Workload>) -> anyhow::Result<Sequence> {
        Sequence::open_as(address, workload, 0).await
    }

    /// Connects to `address`, as connection `index` of `workload`.
    pub async fn open_as(
        address: &str,
        workload: Arc<dyn Workload>,
        index: usize,
    ) -> anyhow::Result<Sequence> {
        Ok(Sequence {
            link: Link::open(address).await?,
            workload,
            state: new_state(index),
        })
    }

    /// Sends the next `count` requests; what they got.
    pub async fn send(&mut self, count: u64) -> anyhow::Result<Outcome> {
        let mut out = Outcome::default();
        for _ in 0..count {
            let request = self.workload.next(&mut self.state);
            self.state.sent += 1;
            let (ok, body) = self.link.exchange(request).await?;
            self.workload.observe(&mut self.state, &body);
            out.requests += 1;
            out.failures += u64::from(!ok);
            out.body_bytes += body.len() as u64;
        }
        Ok(out)
    }
}
