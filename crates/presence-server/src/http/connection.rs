//! Connections: how many may be open, how long each may sit idle or take
//! to send its headers, how long a stream may go on, and how they end at
//! shutdown.
//!
//! hyper's own header timer cannot tell an idle keep-alive connection from
//! one that is sending its headers slowly, so the timers live here. Each
//! connection's socket is wrapped in [`Watched`], which notes when bytes
//! move; the request pipeline marks when a request starts and ends, and
//! when its answer turns out to be a stream. A small loop per connection
//! closes it when it has been idle past the keep-alive timeout, has spent
//! longer than the header timeout on headers (the slow-client attack), or
//! holds a stream that has sent nothing for longer than a reading client
//! ever waits (its reader stopped reading) or has outlived its hard
//! deadline.
//!
//! Between a request's headers and its answer, the request's deadline
//! governs, and the same loop keeps it: a request that waits sets its
//! deadline here ([`RequestGuard::set_deadline`]) and the loop marks it
//! passed, which the request sees when its task polls it next. A timer of
//! its own per request would be registered with tokio's timer wheel and
//! taken out again for nearly every report, which waits a moment for its
//! body and no longer. The loop never sleeps longer than the shortest
//! deadline a request can have, so one that starts while it sleeps is
//! heard in time.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::clock::Ticks;

/// What a connection is doing, for its timers.
const HEAD: u8 = 0;
const IN_REQUEST: u8 = 1;
const IDLE: u8 = 2;
const STREAMING: u8 = 3;

/// A request deadline that never comes.
const NO_DEADLINE: u64 = u64::MAX;

/// Milliseconds of the monotonic clock, a cheap reading that fits an
/// atomic.
pub(super) fn now_ms() -> u64 {
    Ticks::now().millis()
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
    /// When bytes last went out (ms): a stream's reader can keep the
    /// connection busy by sending, but not by reading nothing.
    last_out: AtomicU64,
    /// When the request in hand must be answered (ms), if it set a
    /// deadline; read in the request's phase only, and reset as the next
    /// request starts.
    deadline: AtomicU64,
    /// The request's deadline passed: it answers that it could not finish.
    deadline_passed: AtomicBool,
    /// Told when the answer turns out to be a stream, whose deadlines may
    /// be shorter than the timers the watch loop is sleeping on.
    streaming: tokio::sync::Notify,
}

/// Why a connection's watch loop closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The client took too long over a request's headers.
    HeaderTimeout,
    /// The connection sat idle past the keep-alive timeout.
    IdleTimeout,
    /// A stream sent nothing for its stall timeout: its reader is not
    /// reading (a reading client gets a keep-alive comment well before).
    StreamStalled,
    /// A stream outlived its hard deadline.
    StreamDeadline,
    /// A request's deadline passed: the request is told, and answers; the
    /// connection stays open.
    RequestDeadline,
}

/// The timers of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time to send a request's headers.
    pub header: Duration,
    /// Time idle.
    pub idle: Duration,
    /// A stream's time without sending anything.
    pub stream_stall: Duration,
    /// The longest a stream's answer may last, whatever it is doing.
    pub stream: Duration,
    /// The shortest deadline a request may set.
    pub request: Duration,
}

impl ConnState {
    /// A new connection: waiting for its first request's headers.
    pub fn new() -> Arc<ConnState> {
        let now = now_ms();
        Arc::new(ConnState {
            phase: AtomicU8::new(HEAD),
            since: AtomicU64::new(now),
            last_io: AtomicU64::new(now),
            last_out: AtomicU64::new(now),
            deadline: AtomicU64::new(NO_DEADLINE),
            deadline_passed: AtomicBool::new(false),
            streaming: tokio::sync::Notify::new(),
        })
    }

    /// Marks a request's headers as received; the guard marks the
    /// connection idle again when the request is answered (or dropped).
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.deadline.store(NO_DEADLINE, Ordering::Relaxed);
        self.deadline_passed.store(false, Ordering::Relaxed);
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
        let now = now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        self.last_out.store(now, Ordering::Relaxed);
    }

    /// When the connection is due to be checked again, or why it must close
    /// now.
    ///
    /// Never later than the shortest of the header and idle timeouts and
    /// the request deadline from now: the phase may change right after this
    /// look (a slow head becomes a request, then idle), and the new phase's
    /// deadline is at least that far off. A stream's deadlines may be
    /// shorter: its start wakes the watch loop (see [`expired`]).
    fn next_check(&self, timeouts: &Timeouts) -> Result<u64, Expiry> {
        let now = now_ms();
        let header_ms = timeouts.header.as_millis() as u64;
        let idle_ms = timeouts.idle.as_millis() as u64;
        let request_ms = timeouts.request.as_millis() as u64;
        let soonest = now + header_ms.min(idle_ms).min(request_ms);
        self.due(now, timeouts).map(|due| due.min(soonest))
    }

    fn due(&self, now: u64, timeouts: &Timeouts) -> Result<u64, Expiry> {
        let header_ms = timeouts.header.as_millis() as u64;
        let idle_ms = timeouts.idle.as_millis() as u64;
        let expires = |due: u64, why: Expiry| if now >= due { Err(why) } else { Ok(due) };
        match self.phase.load(Ordering::Relaxed) {
            HEAD => expires(
                self.since.load(Ordering::Relaxed) + header_ms,
                Expiry::HeaderTimeout,
            ),
            // Measured from the last byte either way, so a response that the
            // client does not read also ends here.
            IDLE => expires(
                self.last_io.load(Ordering::Relaxed) + idle_ms,
                Expiry::IdleTimeout,
            ),
            STREAMING => {
                let stream_ms = timeouts.stream.as_millis() as u64;
                let stall_ms = timeouts.stream_stall.as_millis() as u64;
                let deadline = expires(
                    self.since.load(Ordering::Relaxed).saturating_add(stream_ms),
                    Expiry::StreamDeadline,
                )?;
                let stalled = expires(
                    self.last_out.load(Ordering::Relaxed) + stall_ms,
                    Expiry::StreamStalled,
                )?;
                Ok(deadline.min(stalled))
            }
            // The request's own deadline, if it set one; else look again
            // later.
            _ => expires(
                self.deadline.load(Ordering::Relaxed),
                Expiry::RequestDeadline,
            ),
        }
    }
}

/// Marks the end of a request on its connection when dropped.
#[derive(Debug)]
pub struct RequestGuard(Arc<ConnState>);

impl RequestGuard {
    /// The answer is a stream that goes on after its head: from now until
    /// the guard is dropped (with the body), the stream timers govern.
    pub fn streaming(self) -> RequestGuard {
        let now = now_ms();
        self.0.since.store(now, Ordering::Relaxed);
        self.0.last_out.store(now, Ordering::Relaxed);
        self.0.phase.store(STREAMING, Ordering::Relaxed);
        // A permit is kept if the watch loop is not waiting right now.
        self.0.streaming.notify_one();
        self
    }

    /// Gives the request a deadline `after` from now, which the watch loop
    /// keeps (see the module's documentation).
    pub fn set_deadline(&self, after: Duration) {
        let at = now_ms().saturating_add(after.as_millis() as u64);
        self.0.deadline.store(at, Ordering::Relaxed);
    }

    /// Whether the request's deadline has passed.
    pub fn deadline_passed(&self) -> bool {
        self.0.deadline_passed.load(Ordering::Relaxed)
    }
}

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

/// Waits until the connection is due a look, and says why it must close;
/// a request whose deadline passes is told on the way.
pub async fn expired(state: &ConnState, timeouts: &Timeouts) -> Expiry {
    loop {
        match state.next_check(timeouts) {
            Err(Expiry::RequestDeadline) => {
                state.deadline.store(NO_DEADLINE, Ordering::Relaxed);
                state.deadline_passed.store(true, Ordering::Relaxed);
                // The connection is polled again on the task's next turn,
                // and with it the request, which then sees the mark.
                tokio::task::yield_now().await;
            }
            Err(expiry) => return expiry,
            Ok(due) => {
                let wait = due.saturating_sub(now_ms()).max(1);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(wait)) => {}
                    () = state.streaming.notified() => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts(header: Duration, idle: Duration) -> Timeouts {
        Timeouts {
            header,
            idle,
            stream_stall: idle,
            stream: Duration::from_secs(3600),
            request: Duration::from_secs(3600),
        }
    }

    #[test]
    fn phases_drive_the_timers() {
        let state = ConnState::new();
        let long = Duration::from_secs(60);
        let zero = Duration::ZERO;
        assert!(state.next_check(&timeouts(long, long)).is_ok());
        // A new connection that sends nothing is on the header clock.
        assert_eq!(
            state.next_check(&timeouts(zero, long)),
            Err(Expiry::HeaderTimeout)
        );
        let guard = state.request_started();
        assert!(state.next_check(&timeouts(zero, zero)).is_ok());
        drop(guard);
        assert_eq!(
            state.next_check(&timeouts(long, zero)),
            Err(Expiry::IdleTimeout)
        );
        assert!(state.next_check(&timeouts(zero, long)).is_ok());
        state.saw_bytes_in();
        assert_eq!(
            state.next_check(&timeouts(zero, long)),
            Err(Expiry::HeaderTimeout)
        );
    }

    #[test]
    fn a_stream_ends_when_it_stalls_or_outlives_its_deadline() {
        let state = ConnState::new();
        let long = Duration::from_secs(60);
        let guard = state.request_started().streaming();
        // Neither the header clock nor the idle clock of a quiet connection
        // applies; what counts is bytes going out.
        assert!(state.next_check(&timeouts(Duration::ZERO, long)).is_ok());
        assert_eq!(
            state.next_check(&timeouts(long, Duration::ZERO)),
            Err(Expiry::StreamStalled)
        );
        // A reader that sends bytes but reads none does not keep it alive.
        state.saw_bytes_in();
        assert_eq!(
            state.next_check(&timeouts(long, Duration::ZERO)),
            Err(Expiry::StreamStalled)
        );
        state.saw_bytes_out();
        let ended = Timeouts {
            header: long,
            idle: long,
            stream_stall: long,
            stream: Duration::ZERO,
            request: long,
        };
        assert_eq!(state.next_check(&ended), Err(Expiry::StreamDeadline));
        drop(guard);
        assert!(state.next_check(&ended).is_ok(), "idle again");
    }

    #[tokio::test]
    async fn a_stream_starting_wakes_the_watch_with_its_shorter_deadline() {
        let state = ConnState::new();
        let timeouts = Timeouts {
            header: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            stream_stall: Duration::from_secs(60),
            stream: Duration::from_millis(50),
            request: Duration::from_secs(60),
        };
        let guard = state.request_started();
        let watch = tokio::spawn({
            let state = state.clone();
            async move { expired(&state, &timeouts).await }
        });
        // The watch is asleep on the request's minute-long timers now.
        tokio::task::yield_now().await;
        let _streaming = guard.streaming();
        let expiry = tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .expect("the stream's deadline is heard, not the minute's")
            .unwrap();
        assert_eq!(expiry, Expiry::StreamDeadline);
    }

    #[tokio::test]
    async fn a_request_is_told_its_deadline_passed_and_the_connection_stays() {
        let state = ConnState::new();
        let minute = Duration::from_secs(60);
        let timeouts = Timeouts {
            header: minute,
            idle: minute,
            stream_stall: minute,
            stream: minute,
            request: Duration::from_millis(50),
        };
        let guard = state.request_started();
        let watch = tokio::spawn({
            let state = state.clone();
            async move { expired(&state, &timeouts).await }
        });
        // Set after the watch fell asleep: its sleep is no longer than the
        // shortest deadline, so this one is heard.
        tokio::task::yield_now().await;
        guard.set_deadline(Duration::from_millis(50));
        let told = tokio::time::timeout(Duration::from_secs(5), async {
            while !guard.deadline_passed() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(told.is_ok(), "the deadline was not marked passed");
        assert!(!watch.is_finished(), "a request's deadline closes nothing");
        drop(guard);
        assert!(state.next_check(&timeouts).is_ok());
        watch.abort();
    }

    #[test]
    fn a_long_deadline_never_hides_a_shorter_one_to_come() {
        // A new connection is on the header clock (a minute here); if it
        // turns idle right after this look, the idle clock (half a second)
        // must still be heard in time.
        let state = ConnState::new();
        let due = state
            .next_check(&timeouts(
                Duration::from_secs(60),
                Duration::from_millis(500),
            ))
            .unwrap();
        assert!(due <= now_ms() + 500, "{due}");
    }
}
