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
    let measure_from = Instant::now() + warmup;
    let gate = Gate::Window {
        measure_from,
        stop_at: measure_from + window,
    };
    let tasks = spawn(addresses, &workload, connections, gate);
    gather(tasks, window).await
}

/// Drives `workload` against two servers (or sets of nodes), `sides[0]`
/// and `sides[1]`, in turns: each warms up for `warmup` alone, then they
/// take `slice`-long turns until each has had `window` measured. Machine
/// noise that lasts longer than a turn falls on both alike, so the ratio
/// of their rates is steadier than that of two windows one after the
/// other. Each side has its own `connections` connections (and, with
/// `trickle`, one more of that workload on its first node); a request
/// counts for the turn it began in. What each side measured.
pub async fn run_in_turns(
    sides: [&[String]; 2],
    workload: Arc<dyn Workload>,
    trickle: Option<Arc<dyn Workload>>,
    connections: usize,
    turns: Turns,
) -> anyhow::Result<[Outcome; 2]> {
    anyhow::ensure!(sides.iter().all(|s| !s.is_empty()), "no server to drive");
    let start = Instant::now();
    let mut tasks: [Vec<_>; 2] = [Vec::new(), Vec::new()];
    let mut trickles = Vec::new();
    for (side, addresses) in sides.iter().enumerate() {
        let gate = Gate::Turn { turns, start, side };
        tasks[side] = spawn(addresses, &workload, connections, gate);
        if let Some(trickle) = &trickle {
            trickles.extend(spawn(&addresses[..1], trickle, 1, gate));
        }
    }
    let [ours, theirs] = tasks;
    let measured = [
        gather(ours, turns.measured()).await?,
        gather(theirs, turns.measured()).await?,
    ];
    // The trickle's own figures are not the measure: only its changes are.
    gather(trickles, turns.measured()).await?;
    Ok(measured)
}

/// How [`run_in_turns`] shares time between its two sides.
#[derive(Debug, Clone, Copy)]
pub struct Turns {
    /// Each side's unmeasured time alone, before the turns.
    pub warmup: Duration,
    /// The time each side is measured for in all.
    pub window: Duration,
    /// One turn.
    pub slice: Duration,
}

impl Turns {
    /// Turns each side takes: enough to fill its window.
    fn count(&self) -> u32 {
        let slice = self.slice.as_secs_f64().max(0.001);
        (self.window.as_secs_f64() / slice).ceil().max(1.0) as u32
    }

    /// What each side is measured for: its turns together.
    fn measured(&self) -> Duration {
        self.slice * self.count()
    }

    /// Where `side` stands `elapsed` after the start: sending (measured or
    /// not), waiting for its next turn, or done.
    fn at(&self, side: usize, elapsed: Duration) -> Step {
        let warmed = self.warmup * 2;
        if elapsed < warmed {
            let warming = usize::from(elapsed >= self.warmup);
            return match (warming == side, side) {
                (true, _) => Step::Send { measured: false },
                // Side 1 warms up after side 0; side 0 then waits for the turns.
                (false, 1) => Step::Wait(self.warmup),
                (false, _) => Step::Wait(warmed),
            };
        }
        let into = elapsed - warmed;
        let slot = (into.as_secs_f64() / self.slice.as_secs_f64()) as u32;
        if slot >= self.count() * 2 {
            return Step::Done;
        }
        if slot as usize % 2 == side {
            return Step::Send { measured: true };
        }
        let next = slot + 1;
        if next >= self.count() * 2 {
            Step::Done
        } else {
            Step::Wait(warmed + self.slice * next)
        }
    }
}

/// What a connection does next under [`Turns`].
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Send a request, counted if `measured`.
    Send { measured: bool },
    /// Wait until this long after the start.
    Wait(Duration),
    /// Stop.
    Done,
}

/// When a connection sends, and which of its requests count.
#[derive(Clone, Copy)]
enum Gate {
    /// One window: requests from `measure_from` on count, and none start
    /// at `stop_at` or after.
    Window {
        measure_from: Instant,
        stop_at: Instant,
    },
    /// Its `side`'s turns of `turns`, from `start`.
    Turn {
        turns: Turns,
        start: Instant,
        side: usize,
    },
}

impl Gate {
    /// Waits if the connection must, then says whether to send (and
    /// whether that request counts) or stop.
    async fn next(&self) -> Option<bool> {
        match *self {
            Gate::Window {
                measure_from,
                stop_at,
            } => {
                let now = Instant::now();
                (now < stop_at).then_some(now >= measure_from)
            }
            Gate::Turn { turns, start, side } => loop {
                match turns.at(side, start.elapsed()) {
                    Step::Send { measured } => return Some(measured),
                    Step::Wait(until) => tokio::time::sleep_until((start + until).into()).await,
                    Step::Done => return None,
                }
            },
        }
    }
}

/// Starts `connections` connections of `workload`, connection `i` to
/// `addresses[i % len]`, each sending as `gate` says.
fn spawn(
    addresses: &[String],
    workload: &Arc<dyn Workload>,
    connections: usize,
    gate: Gate,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<Outcome>>> {
    (0..connections)
        .map(|index| {
            let address = addresses[index % addresses.len()].clone();
            let workload = workload.clone();
            tokio::spawn(async move { connection(&address, workload, index, gate).await })
        })
        .collect()
}

/// Waits for the connections and adds up what they measured over `window`.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Outcome>>>,
    window: Duration,
) -> anyhow::Result<Outcome> {
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
    gate: Gate,
) -> anyhow::Result<Outcome> {
    let mut link = Link::open(address).await?;
    let mut state = new_state(index);
    let mut out = Outcome::default();
    while let Some(measured) = gate.next().await {
        let began = Instant::now();
        let request = workload.next(&mut state);
        state.sent += 1;
        let (ok, body) = link.exchange(request).await?;
        workload.observe(&mut state, &body);
        if let Some(pause) = workload.pause() {
            tokio::time::sleep(pause).await;
        }
        if measured {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn turns_warm_each_side_alone_then_alternate_until_each_window_is_full() {
        let turns = Turns {
            warmup: ms(1000),
            window: ms(900),
            slice: ms(250),
        };
        // 900 ms of window take four turns of 250 ms each.
        assert_eq!(turns.measured(), ms(1000));
        let at = |side, elapsed| turns.at(side, ms(elapsed));
        let send = |measured| Step::Send { measured };
        // The warm-ups, one side after the other.
        assert_eq!(at(0, 500), send(false));
        assert_eq!(at(1, 500), Step::Wait(ms(1000)));
        assert_eq!(at(1, 1200), send(false));
        assert_eq!(at(0, 1200), Step::Wait(ms(2000)));
        // Then turns: side 0 first.
        assert_eq!(at(0, 2100), send(true));
        assert_eq!(at(1, 2100), Step::Wait(ms(2250)));
        assert_eq!(at(1, 2300), send(true));
        assert_eq!(at(0, 2300), Step::Wait(ms(2500)));
        // Side 1's last turn is the last of all.
        assert_eq!(at(1, 3900), send(true));
        assert_eq!(at(0, 3900), Step::Done);
        assert_eq!(at(0, 4000), Step::Done);
        assert_eq!(at(1, 4000), Step::Done);
    }
}
