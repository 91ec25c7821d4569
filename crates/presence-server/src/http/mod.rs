//! The HTTP layer: accept loop, routing, authentication, parameters, rate
//! limits, and errors as Zulip's JSON bodies.
//!
//! Data flows one way: a request is routed, its body read (bounded), its
//! caller authenticated and rate-limited, then one handler calls the
//! service. Every answer, refusals included, is JSON, except the presence
//! stream's, which is Server-Sent Events; every answer carries an
//! `X-Request-Id`.
//!
//! Every resource a client can hold is bounded: open connections, in all
//! and per address (see [`admission`]; over either, 503 and close), time to
//! send headers, time idle, and a stream's time without progress and in all
//! (see [`connection`]), header and URL size (JSON 431 and 414 up to twice
//! the limits; hyper's own bare 431 beyond, which bounds the buffer), body
//! size (413), and time per request (503 past the deadline).
//!
//! With a certificate (see [`tls`]), every connection is HTTPS: its TLS
//! handshake must end within the time a request's head gets.

pub mod admission;
pub mod auth;
pub mod auth_cache;
pub mod body;
pub mod client_name;
pub mod connection;
mod dispatch;
pub mod embed;
pub mod error;
pub mod event_handlers;
pub mod handlers;
mod head;
pub mod health;
pub mod metrics;
pub mod params;
pub mod pipeline;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod status_handlers;
pub mod tls;
mod woken;

pub use pipeline::{Answering, handle};

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::Config;
use crate::ids::{EmbedKeyId, UserId};
use crate::service::Service;
use admission::{Admission, Admitted, Refuser};
use body::Body;
use connection::{ConnState, Timeouts, Watched};
use rate_limit::{RateLimiter, ip_key};
use request_id::RequestIds;
use tls::Tls;
use woken::WhenWoken;

/// The limits the HTTP layer enforces, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest request target (path and query), in bytes.
    pub max_url_bytes: usize,
    /// Most bytes of request headers.
    pub max_header_bytes: usize,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one address (or IPv6 /64).
    pub max_connections_per_ip: usize,
    /// Time to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time an idle keep-alive connection stays open.
    pub keep_alive_timeout: Duration,
    /// Time from a request's headers to its answer.
    pub request_timeout: Duration,
    /// Time in-flight requests get once shutdown starts.
    pub shutdown_grace: Duration,
    /// Time the server goes on serving, not ready, once shutdown is asked
    /// for, before it stops accepting.
    pub shutdown_delay: Duration,
    /// How long a stream may send nothing before it counts as stalled: its
    /// keep-alive interval, plus the keep-alive timeout any connection gets.
    pub stream_stall: Duration,
    /// The longest a stream's answer lasts, whatever its reader does: the
    /// stream's own end, with a few seconds to write it.
    pub stream_deadline: Duration,
}

impl Limits {
    /// The limits of a configuration.
    pub fn from_config(config: &Config) -> Self {
        Limits {
            max_body_bytes: config.max_body_bytes,
            max_url_bytes: config.max_url_bytes,
            max_header_bytes: config.max_header_bytes,
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            header_read_timeout: Duration::from_secs_f64(config.header_read_timeout_secs),
            keep_alive_timeout: Duration::from_secs_f64(config.keep_alive_timeout_secs),
            request_timeout: Duration::from_secs_f64(config.request_timeout_secs),
            shutdown_grace: Duration::from_secs_f64(config.shutdown_grace_secs),
            shutdown_delay: Duration::from_secs_f64(config.shutdown_delay_secs),
            stream_stall: Duration::from_millis(config.event_stream_keepalive_ms)
                + Duration::from_secs_f64(config.keep_alive_timeout_secs),
            stream_deadline: match config.event_stream_max_ms {
                // A stream the server never ends is bounded by its
                // progress alone.
                0 => Duration::MAX,
                max => Duration::from_millis(max) + STREAM_END_GRACE,
            },
        }
    }

    /// The timers of every connection.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            header: self.header_read_timeout,
            idle: self.keep_alive_timeout,
            stream_stall: self.stream_stall,
            stream: self.stream_deadline,
            request: self.request_timeout,
        }
    }

    /// The request head size past which hyper itself refuses with a bare
    /// 431 and never buffers more: twice what gets the JSON answers, so
    /// that a request just over a limit is told why in JSON.
    pub fn hard_head_bytes(&self) -> usize {
        2 * (self.max_url_bytes + self.max_header_bytes) + 1024
    }
}

/// How long a stream that has reached its end may take to write it, before
/// its connection is closed all the same.
const STREAM_END_GRACE: Duration = Duration::from_secs(2);

/// The most bytes of answers a connection's socket holds unsent.
const UNSENT_BYTES_PER_CONNECTION: u32 = 128 * 1024;

/// What every request handler shares.
pub struct App {
    /// The presence service.
    pub service: Arc<Service>,
    limiter: RateLimiter<UserId>,
    /// Basic credentials already verified, by header.
    auth_cache: auth_cache::AuthCache,
    ip_limiter: RateLimiter<IpAddr>,
    /// Per embed key: every page that uses one shares its budget.
    embed_limiter: RateLimiter<EmbedKeyId>,
    limits: Limits,
    /// The longest a `GET /events` waits for events before it answers.
    long_poll_wait: Duration,
    request_ids: RequestIds,
    /// Shutdown was asked for: readiness says so from then on.
    shutting_down: AtomicBool,
}

impl App {
    /// Whether shutdown was asked for (see `serve`).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// The HTTP front of a service, with the limits of `config`.
    pub fn new(service: Arc<Service>, config: &Config) -> Self {
        App {
            service,
            limiter: RateLimiter::new(config.rate_limit),
            auth_cache: auth_cache::AuthCache::default(),
            ip_limiter: RateLimiter::new(config.ip_rate_limit),
            embed_limiter: RateLimiter::new(config.embed_rate_limit),
            limits: Limits::from_config(config),
            long_poll_wait: Duration::from_millis(config.event_heartbeat_ms),
            request_ids: RequestIds::new(),
            shutting_down: AtomicBool::new(false),
        }
    }
}

/// What the connections are told about shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish the request in flight, take no more.
    Draining,
    /// Close now.
    Stopped,
}

/// Serves HTTP on `listener` (HTTPS, with `tls`) until `shutdown`
/// completes; then answers not ready, goes on serving for the shutdown
/// delay (so that load balancers see it leave before connections are
/// refused), stops accepting, lets in-flight requests finish (up to the
/// grace period), closes what remains and returns.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = app.limits;
    let builder = connection_builder(&limits);
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_ip);
    let timeouts = limits.timeouts();
    let refuser = Refuser::new();
    let (phase_tx, phase_rx) = watch::channel(Phase::Serving);
    tokio::pin!(shutdown);
    // Far off until shutdown is asked for; then the end of the delay.
    let stop_accepting = tokio::time::sleep(Duration::MAX);
    tokio::pin!(stop_accepting);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown, if !app.is_shutting_down() => {
                app.shutting_down.store(true, Ordering::Relaxed);
                if limits.shutdown_delay.is_zero() {
                    break;
                }
                tracing::info!(
                    secs = limits.shutdown_delay.as_secs_f64(),
                    "shutting down: not ready, serving through the delay"
                );
                let until = tokio::time::Instant::now() + limits.shutdown_delay;
                stop_accepting.as_mut().reset(until);
                continue;
            }
            () = &mut stop_accepting => break,
        };
        let ip = ip_key(peer.ip());
        let slot = match admission.admit(ip) {
            Ok(slot) => slot,
            Err(refusal) => {
                refuser.refuse(stream, refusal);
                continue;
            }
        };
        set_socket_options(&stream);
        let state = ConnState::new();
        let connection = Connection {
            builder: builder.clone(),
            service: answering(app.clone(), state.clone(), ip),
            state,
            timeouts,
            phase: phase_rx.clone(),
            peer,
        };
        let watched = Watched::new(stream, connection.state.clone());
        connection.spawn(watched, tls.clone(), slot);
    }
    drop(listener);
    drain(&app, &admission, &phase_tx, limits.shutdown_grace).await;
}

/// What serving one accepted connection needs, its socket aside.
struct Connection<S> {
    builder: hyper::server::conn::http1::Builder,
    service: S,
    state: Arc<ConnState>,
    timeouts: Timeouts,
    phase: watch::Receiver<Phase>,
    peer: SocketAddr,
}

impl<S> Connection<S>
where
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Serves the connection on `watched`, its socket (over TLS with
    /// `tls`), in a task of its own that holds its admission `slot`.
    ///
    /// One task type for each: a task takes the room of its largest
    /// state, and a TLS session's is kilobytes that a plain connection (an
    /// open stream most of all) should not carry.
    fn spawn(self, watched: Watched, tls: Option<Tls>, slot: Admitted)
    where
        S: Send + 'static,
        S::Future: Send,
    {
        let Some(tls) = tls else {
            tokio::spawn(async move {
                let _slot = slot;
                self.run(TokioIo::new(watched)).await;
            });
            return;
        };
        tokio::spawn(async move {
            let _slot = slot;
            // The handshake gets the time a request's head gets.
            let handshake = tls.acceptor().accept(watched);
            let peer = self.peer;
            match tokio::time::timeout(self.timeouts.header, handshake).await {
                Ok(Ok(secured)) => self.run(TokioIo::new(secured)).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake too slow; closing"),
            }
        });
    }

    /// Speaks HTTP over `io` (the socket, or TLS over it) until the
    /// connection ends (see [`run_connection`]).
    async fn run<I>(self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let connection = self.builder.serve_connection(io, self.service);
        // Pinned here, where it lives, and lent: a connection moved into
        // `run_connection` would take its room twice in the task.
        let connection = std::pin::pin!(connection);
        let Connection {
            state,
            timeouts,
            phase,
            peer,
            ..
        } = self;
        run_connection(connection, &state, &timeouts, phase, peer).await;
    }
}

/// How every connection speaks HTTP/1.1, within `limits`.
fn connection_builder(limits: &Limits) -> hyper::server::conn::http1::Builder {
    let hard_head = limits.hard_head_bytes();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The header and idle timers are ours (see `connection`).
        .header_read_timeout(None)
        .max_header_size(hard_head)
        .max_buf_size(hard_head.max(64 * 1024));
    builder
}

/// Sets an accepted connection's socket up: answers go out at once, and
/// the kernel holds at most `UNSENT_BYTES_PER_CONNECTION` of them.
fn set_socket_options(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    // The kernel holds at most this much of an answer not yet sent, so
    // a reader that stops reading blocks the writes (and its stream is
    // seen to stall) instead of filling megabytes of socket buffer.
    let _ = socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_BYTES_PER_CONNECTION);
}

/// What answers the requests of a connection from `ip`: the pipeline, a
/// stream's answer keeping its connection on the stream timers until its
/// body ends.
fn answering(
    app: Arc<App>,
    state: Arc<ConnState>,
    ip: IpAddr,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future: Send,
> + Send {
    service_fn(move |req| handle(&app, req, ip, state.request_started()))
}

/// Serves one connection until it ends, one of its timers expires, or
/// shutdown closes it; once shutdown starts draining, the connection
/// finishes the request in flight and takes no other.
///
/// The timers and the server's phase are looked at only when one of them
/// woke the task ([`WhenWoken`]): nearly every wake-up is the connection's
/// I/O, which then polls the connection alone.
async fn run_connection(
    mut connection: Pin<&mut impl GracefulConnection<Error = hyper::Error>>,
    state: &ConnState,
    timeouts: &Timeouts,
    mut phase: watch::Receiver<Phase>,
    peer: SocketAddr,
) {
    let mut watching_phase = true;
    loop {
        let order = WhenWoken::new(next_order(
            state,
            timeouts,
            &mut phase,
            &mut watching_phase,
            peer,
        ));
        tokio::select! {
            biased;
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            order = order => match order {
                Order::Drain => connection.as_mut().graceful_shutdown(),
                Order::Close => return,
            },
        }
    }
}

/// What a connection's timers or the server's phase tell it to do.
enum Order {
    /// Finish the request in flight and take no other: shutdown began.
    Drain,
    /// Close now: a timer expired, or shutdown's grace period is over.
    Close,
}

/// Waits for the next order of a connection's timers or of the server's
/// phase (which is watched while its sender lives).
async fn next_order(
    state: &ConnState,
    timeouts: &Timeouts,
    phase: &mut watch::Receiver<Phase>,
    watching_phase: &mut bool,
    peer: SocketAddr,
) -> Order {
    loop {
        tokio::select! {
            expiry = connection::expired(state, timeouts) => {
                tracing::debug!(%peer, ?expiry, "closing a connection");
                return Order::Close;
            }
            changed = phase.changed(), if *watching_phase => {
                if changed.is_err() {
                    *watching_phase = false;
                    continue;
                }
                match *phase.borrow_and_update() {
                    Phase::Serving => {}
                    Phase::Draining => return Order::Drain,
                    Phase::Stopped => return Order::Close,
                }
            }
        }
    }
}

/// Once the server stops accepting: ends what waits for events, lets the
/// requests in flight finish within `grace`, then closes what remains.
async fn drain(app: &App, admission: &Admission, phase: &watch::Sender<Phase>, grace: Duration) {
    // Waiting long-polls answer and streams end now, or they would hold
    // their connections open through the whole grace period.
    app.service.stop_events();
    let _ = phase.send(Phase::Draining);
    // Every connection holds a slot until it ends, so having them all back
    // means every connection has closed.
    if admission.all_closed(grace).await {
        tracing::info!("all connections closed");
    } else {
        tracing::warn!("shutdown grace period over; closing remaining connections");
        let _ = phase.send(Phase::Stopped);
        admission.all_closed(Duration::from_secs(1)).await;
    }
}
