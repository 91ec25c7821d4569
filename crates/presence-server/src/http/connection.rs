//! Connections: how many may be open, how long each may sit idle or take
//! to send its headers, and how they end at shutdown.
//!
//! hyper's own header timer cannot tell an idle keep-alive connection from
//! one that is sending its headers slowly, so both timers live here. Each
//! connection's socket is wrapped in [`Watched`], which notes when bytes
//! move; the request pipeline marks when a request starts and ends. A small
//! loop per connection closes it when it has been idle past the keep-alive
//! timeout, or has spent longer than the header timeout on headers (the
//! slow-client attack). Once a request's headers are in, the request
//! deadline of `handle` takes over.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use presence_types::{ErrorBody, ErrorCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// What a connection is doing, for its timers.
const HEAD: u8 = 0;
const IN_REQUEST: u8 = 1;
const IDLE: u8 = 2;

/// Milliseconds since the first call, a cheap clock that fits an atomic.
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// The timing state of one connection, shared by its socket wrapper, its
/// requests and its watch loop.
#[derive(Debug)]
pub struct ConnState {
    phase: AtomicU8,
    /// When the current phase began (ms).
    since: AtomicU64,
    /// When bytes last moved either way (ms).
    last_io: AtomicU64,
}

/// Why a connection's watch loop closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The client took too long over a request's headers.
    HeaderTimeout,
    /// The connection sat idle past the keep-alive timeout.
    IdleTimeout,
}

impl ConnState {
    /// A new connection: waiting for its first request's headers.
    pub fn new() -> Arc<ConnState> {
        let now = now_ms();
        Arc::new(ConnState {
            phase: AtomicU8::new(HEAD),
            since: AtomicU64::new(now),
            last_io: AtomicU64::new(now),
        })
    }

    /// Marks a request's headers as received; the guard marks the
    /// connection idle again when the request is answered (or dropped).
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.phase.store(IN_REQUEST, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    fn saw_bytes_in(&self) {
        let now = now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        // The first byte after an idle spell starts the next request's head.
        if self
            .phase
            .compare_exchange(IDLE, HEAD, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.since.store(now, Ordering::Relaxed);
        }
    }

    fn saw_bytes_out(&self) {
        self.last_io.store(now_ms(), Ordering::Relaxed);
    }

    /// When the connection is due to be checked again, or why it must close
    /// now.
    ///
    /// Never later than the shorter timeout from now: the phase may change
    /// right after this look (a slow head becomes a request, then idle), and
    /// the new phase's deadline is at least that far off.
    fn next_check(&self, header_timeout: Duration, idle_timeout: Duration) -> Result<u64, Expiry> {
        let now = now_ms();
        let header_ms = header_timeout.as_millis() as u64;
        let idle_ms = idle_timeout.as_millis() as u64;
        let soonest = now + header_ms.min(idle_ms);
        self.due(now, header_ms, idle_ms)
            .map(|due| due.min(soonest))
    }

    fn due(&self, now: u64, header_ms: u64, idle_ms: u64) -> Result<u64, Expiry> {
        match self.phase.load(Ordering::Relaxed) {
            HEAD => {
                let due = self.since.load(Ordering::Relaxed) + header_ms;
                if now >= due {
                    Err(Expiry::HeaderTimeout)
                } else {
                    Ok(due)
                }
            }
            IDLE => {
                // Measured from the last byte either way, so a response that
                // the client does not read also ends here.
                let due = self.last_io.load(Ordering::Relaxed) + idle_ms;
                if now >= due {
                    Err(Expiry::IdleTimeout)
                } else {
                    Ok(due)
                }
            }
            // The request deadline governs; look again later.
            _ => Ok(now + header_ms.min(idle_ms)),
        }
    }
}

/// Marks the end of a request on its connection when dropped.
#[derive(Debug)]
pub struct RequestGuard(Arc<ConnState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let now = now_ms();
        self.0.since.store(now, Ordering::Relaxed);
        self.0.last_io.store(now, Ordering::Relaxed);
        self.0.phase.store(IDLE, Ordering::Relaxed);
    }
}

/// A socket that reports the bytes it moves to its [`ConnState`].
pub struct Watched {
    stream: TcpStream,
    state: Arc<ConnState>,
}

impl Watched {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream, state: Arc<ConnState>) -> Self {
        Watched { stream, state }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.saw_bytes_in();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.state.saw_bytes_out();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.state.saw_bytes_out();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Waits until the connection is due a look, and says if it must close.
pub async fn expired(
    state: &ConnState,
    header_timeout: Duration,
    idle_timeout: Duration,
) -> Expiry {
    loop {
        match state.next_check(header_timeout, idle_timeout) {
            Err(expiry) => return expiry,
            Ok(due) => {
                let wait = due.saturating_sub(now_ms()).max(1);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        }
    }
}

/// How many over-limit connections may be getting their 503 at once; past
/// that they are closed without a word, so refusing costs little too.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// How long a refused connection may take to receive its answer.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// The complete HTTP answer to a connection over the limit.
fn overloaded_answer() -> Bytes {
    static ANSWER: OnceLock<Bytes> = OnceLock::new();
    ANSWER
        .get_or_init(|| {
            let body = serde_json::to_string(&ErrorBody::new(
                ErrorCode::ServiceUnavailable,
                "The server has too many open connections; try again",
            ))
            .expect("an error body serializes");
            Bytes::from(format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ))
        })
        .clone()
}

/// Refuses a connection that would go over the limit: answers 503 with a
/// JSON body and closes, without ever reading a request through hyper.
pub struct Refuser {
    in_flight: Arc<Semaphore>,
    /// Refusals not yet logged, and when the last log line was (ms): a
    /// flood is logged once a second, not once a connection.
    unlogged: AtomicU64,
    logged_at: AtomicU64,
}

impl Refuser {
    /// A refuser with its own small budget of concurrent refusals.
    pub fn new() -> Self {
        Refuser {
            in_flight: Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT)),
            unlogged: AtomicU64::new(0),
            logged_at: AtomicU64::new(0),
        }
    }

    /// Answers 503 on `stream` and closes it, in the background; `limit`
    /// is the connection limit, for the log.
    pub fn refuse(&self, mut stream: TcpStream, limit: usize) {
        let refused = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_ms();
        let last = self.logged_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.unlogged.fetch_sub(refused, Ordering::Relaxed);
            tracing::warn!(
                refused,
                limit,
                "too many open connections; refusing new ones"
            );
        }
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(REFUSAL_TIME, async {
                stream.write_all(&overloaded_answer()).await?;
                stream.shutdown().await?;
                // Read what the client sends until it closes: closing with
                // unread input would reset the connection, and the client
                // could lose the answer.
                let mut sink = [0u8; 4096];
                let mut total = 0usize;
                while total < 1 << 16 {
                    match stream.read(&mut sink).await? {
                        0 => break,
                        n => total += n,
                    }
                }
                Ok::<_, io::Error>(())
            })
            .await;
        });
    }
}

impl Default for Refuser {
    fn default() -> Self {
        Refuser::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_drive_the_timers() {
        let state = ConnState::new();
        let long = Duration::from_secs(60);
        assert!(state.next_check(long, long).is_ok());
        // A new connection that sends nothing is on the header clock.
        assert_eq!(
            state.next_check(Duration::ZERO, long),
            Err(Expiry::HeaderTimeout)
        );
        let guard = state.request_started();
        assert!(state.next_check(Duration::ZERO, Duration::ZERO).is_ok());
        drop(guard);
        assert_eq!(
            state.next_check(long, Duration::ZERO),
            Err(Expiry::IdleTimeout)
        );
        assert!(state.next_check(Duration::ZERO, long).is_ok());
        state.saw_bytes_in();
        assert_eq!(
            state.next_check(Duration::ZERO, long),
            Err(Expiry::HeaderTimeout)
        );
    }

    #[test]
    fn a_long_deadline_never_hides_a_shorter_one_to_come() {
        // A new connection is on the header clock (a minute here); if it
        // turns idle right after this look, the idle clock (half a second)
        // must still be heard in time.
        let state = ConnState::new();
        let due = state
            .next_check(Duration::from_secs(60), Duration::from_millis(500))
            .unwrap();
        assert!(due <= now_ms() + 500, "{due}");
    }

    #[test]
    fn the_refusal_is_a_complete_json_answer() {
        let answer = overloaded_answer();
        let text = std::str::from_utf8(&answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    }
}
