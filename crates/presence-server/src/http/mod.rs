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

pub mod admission;
pub mod auth;
pub mod body;
pub mod client_name;
pub mod connection;
pub mod error;
pub mod event_handlers;
pub mod handlers;
pub mod params;
pub mod rate_limit;
pub mod request_id;
pub mod routes;

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::compression;
use crate::config::Config;
use crate::service::{Caller, Service};
use admission::{Admission, Refuser};
use body::Body;
use connection::{ConnState, Timeouts, Watched};
use error::ApiError;
use handlers::HandlerResult;
use params::Params;
use rate_limit::{RateLimiter, ip_key};
use request_id::RequestIds;
use routes::Route;

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
    limiter: RateLimiter<i64>,
    ip_limiter: RateLimiter<IpAddr>,
    limits: Limits,
    /// The longest a `GET /events` waits for events before it answers.
    long_poll_wait: Duration,
    request_ids: RequestIds,
}

impl App {
    /// The HTTP front of a service, with the limits of `config`.
    pub fn new(service: Arc<Service>, config: &Config) -> Self {
        App {
            service,
            limiter: RateLimiter::new(config.rate_limit),
            ip_limiter: RateLimiter::new(config.ip_rate_limit),
            limits: Limits::from_config(config),
            long_poll_wait: Duration::from_millis(config.event_heartbeat_ms),
            request_ids: RequestIds::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
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

/// Serves HTTP on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish (up to the grace period),
/// closes what remains and returns.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let limits = app.limits;
    let hard_head = limits.hard_head_bytes();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The header and idle timers are ours (see `connection`).
        .header_read_timeout(None)
        .max_header_size(hard_head)
        .max_buf_size(hard_head.max(64 * 1024));
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_ip);
    let timeouts = limits.timeouts();
    let refuser = Refuser::new();
    let (phase_tx, phase_rx) = watch::channel(Phase::Serving);
    tokio::pin!(shutdown);
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
            () = &mut shutdown => break,
        };
        let ip = ip_key(peer.ip());
        let slot = match admission.admit(ip) {
            Ok(slot) => slot,
            Err(refusal) => {
                refuser.refuse(stream, refusal);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // The kernel holds at most this much of an answer not yet sent, so
        // a reader that stops reading blocks the writes (and its stream is
        // seen to stall) instead of filling megabytes of socket buffer.
        let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(UNSENT_BYTES_PER_CONNECTION);
        let state = ConnState::new();
        let app = app.clone();
        let request_state = state.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            let guard = request_state.request_started();
            async move {
                let mut response = handle(&app, req, ip).await;
                // A stream is still in progress when its head is ready: its
                // connection is on the stream timers until the body ends.
                if response.body().is_stream() {
                    response.body_mut().hold(guard.streaming());
                } else {
                    drop(guard);
                }
                Ok::<_, Infallible>(response)
            }
        });
        let io = TokioIo::new(Watched::new(stream, state.clone()));
        let connection = builder.serve_connection(io, service);
        let mut phase = phase_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::pin!(connection);
            let mut watching_phase = true;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        return;
                    }
                    expiry = connection::expired(&state, &timeouts) => {
                        tracing::debug!(%peer, ?expiry, "closing a connection");
                        return;
                    }
                    changed = phase.changed(), if watching_phase => {
                        if changed.is_err() {
                            watching_phase = false;
                            continue;
                        }
                        match *phase.borrow_and_update() {
                            Phase::Serving => {}
                            Phase::Draining => connection.as_mut().graceful_shutdown(),
                            Phase::Stopped => return,
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    // Waiting long-polls answer and streams end now, or they would hold
    // their connections open through the whole grace period.
    app.service.stop_events();
    let _ = phase_tx.send(Phase::Draining);
    // Every connection holds a slot until it ends, so having them all back
    // means every connection has closed.
    if admission.all_closed(limits.shutdown_grace).await {
        tracing::info!("all connections closed");
    } else {
        tracing::warn!("shutdown grace period over; closing remaining connections");
        let _ = phase_tx.send(Phase::Stopped);
        admission.all_closed(Duration::from_secs(1)).await;
    }
}

/// Answers one request from `ip` (the client's address, keyed as
/// [`ip_key`] does); never fails, since every refusal is a JSON answer.
pub async fn handle(app: &App, req: Request<Incoming>, ip: IpAddr) -> Response<Body> {
    let started = Instant::now();
    let request_id = app
        .request_ids
        .for_request(req.headers().get(request_id::HEADER));
    let method = req.method().clone();
    // The path only: a query string may carry anything, secrets included.
    let path = req.uri().path().to_owned();
    // A long poll waits for events by design: its deadline counts from the
    // end of that wait.
    let deadline = match routes::route(&method, &path) {
        Ok(Route::GetEvents) if method == Method::GET => {
            app.limits.request_timeout + app.long_poll_wait
        }
        _ => app.limits.request_timeout,
    };
    let mut user_id = None;
    let work = CatchPanic(Box::pin(dispatch(app, req, ip, &mut user_id)));
    let mut response = match tokio::time::timeout(deadline, work).await {
        Ok(Ok(Ok(response))) => response,
        Ok(Ok(Err(error))) => error_response(error),
        Ok(Err(_)) => {
            tracing::error!(request_id = %request_id.to_str().unwrap_or(""), %method, path = %path, "request handler panicked");
            error_response(ApiError::internal())
        }
        Err(_) => {
            tracing::warn!(request_id = %request_id.to_str().unwrap_or(""), %method, path = %path, "request deadline passed");
            error_response(ApiError::deadline_passed())
        }
    };
    if user_id.is_none() {
        // Not authenticated (no credentials, or bad ones): the request
        // counts against its address.
        if let Some(decision) = app.ip_limiter.check(ip, app.service.now_f64())
            && !decision.allowed
        {
            response = ip_limited(decision);
        }
    }
    response
        .headers_mut()
        .insert(request_id::HEADER, request_id.clone());
    // Both print bare: a URI path has no spaces or line breaks, and a
    // request id is checked or made to have none.
    tracing::info!(
        request_id = %request_id.to_str().unwrap_or(""),
        %ip,
        %method,
        path = %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        user_id,
        "request"
    );
    response
}

fn ip_limited(decision: rate_limit::Decision) -> Response<Body> {
    let mut response = error_response(ApiError::rate_limited(decision.retry_after));
    for (name, value) in decision.headers() {
        response.headers_mut().insert(name, value);
    }
    response
}

/// Polls a request's future and turns a panic into an `Err`, so that a bug
/// costs one request a 500 answer instead of costing the connection.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

fn error_response(error: ApiError) -> Response<Body> {
    let mut response = handlers::json(error.status, &error.body);
    for (name, value) in error.headers {
        response.headers_mut().append(name, value);
    }
    response
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::body_too_large(limit))
        }
        Err(_) => Err(ApiError::bad_request("The request body could not be read")),
    }
}

/// Checks the request head against the size limits.
fn check_head(limits: &Limits, req: &Request<Incoming>) -> Result<(), ApiError> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > limits.max_url_bytes {
        return Err(ApiError::url_too_long(limits.max_url_bytes));
    }
    // As on the wire: `name: value\r\n`.
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Err(ApiError::headers_too_large(limits.max_header_bytes));
    }
    Ok(())
}

/// Answers a request, compressing whole answers for clients that accept
/// gzip; sets `user_id` once the caller is authenticated.
async fn dispatch(
    app: &App,
    req: Request<Incoming>,
    ip: IpAddr,
    user_id: &mut Option<i64>,
) -> HandlerResult {
    let gzip = req
        .headers()
        .get(http::header::ACCEPT_ENCODING)
        .is_some_and(|v| compression::accepts_gzip(v.as_bytes()));
    let mut response = answer(app, req, ip, user_id).await?;
    // A stream is written as it comes; only whole answers are compressed.
    if !response.body().is_stream() && response.body().len() >= compression::MIN_COMPRESSED_BYTES {
        let headers = response.headers_mut();
        headers.insert(
            http::header::VARY,
            http::HeaderValue::from_static("accept-encoding"),
        );
        if gzip {
            headers.insert(
                http::header::CONTENT_ENCODING,
                http::HeaderValue::from_static("gzip"),
            );
            let compressed = response.body().gzip();
            *response.body_mut() = compressed;
        }
    }
    Ok(response)
}

/// Routes, authenticates and answers one request; sets `user_id` once the
/// caller is authenticated.
///
/// The order is what keeps refusals cheap: everything the head alone
/// decides (size limits, route, credentials, rate limits) comes before the
/// body is read or its parameters parsed, so a request that is refused
/// costs no body work at all; a caller without credentials from an address
/// over its limit is refused before even that.
async fn answer(
    app: &App,
    req: Request<Incoming>,
    ip: IpAddr,
    user_id: &mut Option<i64>,
) -> HandlerResult {
    let has_credentials = req.headers().contains_key(http::header::AUTHORIZATION);
    if !has_credentials && app.ip_limiter.is_exhausted(ip, app.service.now_f64()) {
        // Spare the work: `handle` answers 429, since this request too
        // counts against the address and finds nothing left.
        return Err(ApiError::not_logged_in());
    }
    check_head(&app.limits, &req)?;
    let route = routes::route(req.method(), req.uri().path())?;
    let (parts, body) = req.into_parts();
    let max_body = app.limits.max_body_bytes;
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(ApiError::body_too_large(max_body));
    }
    if !route.needs_auth() {
        read_params(&parts, body, max_body).await?;
        return handlers::server_settings();
    }
    // A failure here counts against the address (see `handle`), which
    // answers 429 instead once the address is over its limit.
    let caller = authenticate(&app.service, &parts.headers)?;
    *user_id = Some(caller.user_id());
    let service = &app.service;
    let decision = app.limiter.check(caller.user_id(), service.now_f64());
    let result = match decision {
        Some(d) if !d.allowed => Err(ApiError::rate_limited(d.retry_after)),
        _ => match read_params(&parts, body, max_body).await {
            Ok(params) => endpoint(service, &route, &caller, &params, &parts).await,
            Err(e) => Err(e),
        },
    };
    let mut response = result.unwrap_or_else(error_response);
    if let Some(decision) = decision {
        for (name, value) in decision.headers() {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

/// The caller that a request's `Authorization` header names.
fn authenticate(service: &Service, headers: &http::HeaderMap) -> Result<Caller, ApiError> {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(ApiError::not_logged_in)?;
    let credentials = auth::parse_basic(header.as_bytes())?;
    Ok(service.authenticate(&credentials.email, &credentials.key)?)
}

/// Reads a request's body (bounded) and parses its parameters: the query
/// string, and for methods other than GET and HEAD the form body too.
async fn read_params(
    parts: &http::request::Parts,
    body: Incoming,
    max_body: usize,
) -> Result<Params, ApiError> {
    let body = read_body(body, max_body).await?;
    let form: &[u8] = if parts.method == Method::GET || parts.method == Method::HEAD {
        b""
    } else {
        &body
    };
    let params = Params::parse(parts.uri.query(), form)?;
    params.accept("client");
    Ok(params)
}

/// Calls the endpoint's handler for an authenticated caller.
async fn endpoint(
    service: &Service,
    route: &Route,
    caller: &Caller,
    params: &Params,
    parts: &http::request::Parts,
) -> HandlerResult {
    let user_agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .map(|v| v.as_bytes());
    let head = parts.method == Method::HEAD;
    match route {
        Route::ServerSettings => handlers::server_settings(),
        Route::UserPresence(target) => handlers::get_user_presence(service, caller, target),
        Route::RealmPresence => handlers::get_realm_presence(service, caller),
        Route::UpdatePresence => {
            handlers::update_presence(service, caller, params, user_agent).await
        }
        Route::OwnUser => handlers::own_user(service, caller),
        Route::Users => handlers::users(service, caller),
        Route::UpdateSettings => {
            handlers::update_settings(service, caller, params, user_agent).await
        }
        Route::AddApnsToken => handlers::add_apns_token(service, caller, params).await,
        Route::RemoveApnsToken => handlers::remove_apns_token(service, caller, params).await,
        Route::AddAndroidToken => handlers::add_android_token(service, caller, params).await,
        Route::RemoveAndroidToken => handlers::remove_android_token(service, caller, params).await,
        Route::Register => event_handlers::register(service, caller, params),
        // HEAD only looks: it never waits for events, nor starts a stream.
        Route::GetEvents => event_handlers::get_events(service, caller, params, head).await,
        Route::DeleteQueue => event_handlers::delete_queue(service, caller, params),
        Route::PresenceStream => {
            event_handlers::presence_stream(service, caller, params, &parts.headers, head)
        }
    }
}
