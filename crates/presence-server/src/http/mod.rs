//! The HTTP layer: accept loop, routing, authentication, parameters, rate
//! limits, and errors as Zulip's JSON bodies.
//!
//! Data flows one way: a request is routed, its body read (bounded), its
//! caller authenticated and rate-limited, then one handler calls the
//! service. Every answer, refusals included, is JSON, except the presence
//! stream's, which is Server-Sent Events.

pub mod auth;
pub mod body;
pub mod client_name;
pub mod error;
pub mod event_handlers;
pub mod handlers;
pub mod params;
pub mod rate_limit;
pub mod routes;

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
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
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::compression;
use crate::config::Config;
use crate::service::{Caller, Service};
use body::Body;
use error::ApiError;
use handlers::HandlerResult;
use params::Params;
use rate_limit::RateLimiter;
use routes::Route;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long in-flight requests get to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What every request handler shares.
pub struct App {
    /// The presence service.
    pub service: Arc<Service>,
    limiter: RateLimiter,
    max_body_bytes: usize,
}

impl App {
    /// The HTTP front of a service, with the limits of `config`.
    pub fn new(service: Arc<Service>, config: &Config) -> Self {
        App {
            service,
            limiter: RateLimiter::new(config.rate_limit),
            max_body_bytes: config.max_body_bytes,
        }
    }
}

/// Serves HTTP on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish (up to a grace period) and returns.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
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
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(&app, req).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Waiting long-polls answer and streams end now, or they would hold
    // their connections open through the whole grace period.
    app.service.stop_events();
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}

/// Answers one request; never fails, since every refusal is a JSON answer.
pub async fn handle(app: &App, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = match CatchPanic(Box::pin(dispatch(app, req))).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => error_response(error),
        Err(_) => {
            tracing::error!(%method, path, "request handler panicked");
            error_response(ApiError::internal())
        }
    };
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
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

async fn dispatch(app: &App, req: Request<Incoming>) -> HandlerResult {
    let gzip = req
        .headers()
        .get(http::header::ACCEPT_ENCODING)
        .is_some_and(|v| compression::accepts_gzip(v.as_bytes()));
    let mut response = answer(app, req).await?;
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

/// Routes, authenticates and answers one request.
async fn answer(app: &App, req: Request<Incoming>) -> HandlerResult {
    let route = routes::route(req.method(), req.uri().path())?;
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body_bytes as u64) {
        return Err(ApiError::body_too_large(app.max_body_bytes));
    }
    let body = read_body(body, app.max_body_bytes).await?;
    // GET carries its parameters in the query string only.
    let form: &[u8] = if parts.method == Method::GET || parts.method == Method::HEAD {
        b""
    } else {
        &body
    };
    let params = Params::parse(parts.uri.query(), form)?;
    params.accept("client");

    if !route.needs_auth() {
        return handlers::server_settings();
    }
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(ApiError::not_logged_in)?;
    let credentials = auth::parse_basic(header.as_bytes())?;
    let service = &app.service;
    let caller = service.authenticate(&credentials.email, &credentials.key)?;

    let decision = app.limiter.check(caller.user_id(), service.now_f64());
    let result = match decision {
        Some(d) if !d.allowed => Err(ApiError::rate_limited(d.retry_after)),
        _ => endpoint(service, &route, &caller, &params, &parts).await,
    };
    let mut response = result.unwrap_or_else(error_response);
    if let Some(decision) = decision {
        for (name, value) in decision.headers() {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
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
