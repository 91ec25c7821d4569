//! The life of one request, in stages named after what they do:
//!
//! 1. [`handle`]: routes the request (once; every later stage is given the
//!    route), gives it its id and deadline, turns a panic into a 500,
//!    counts a request without a known caller against its address, lets
//!    the page that sent it read the answer where it may, counts it in the
//!    metrics by its route's endpoint, and logs one line (and, at debug
//!    level, one as it begins);
//! 2. `answer_and_compress`: refuses what the head alone decides
//!    (`screen_head`: an address with nothing left, sizes, the route, a
//!    declared body too large), answers at once what needs no caller
//!    (health probes and scrapes among them), hands the rest to
//!    `answer_caller`, and gzips whole answers for clients that accept it
//!    (`compress`);
//! 3. `answer_caller`: authenticates the caller of a Basic header seen
//!    before through the cache of verified headers (`auth_cache`), or else
//!    parses `Authorization`, and hands the request to `answer_user` (a
//!    user) or `answer_page` (an embed key), which apply the caller's
//!    limits and only then read the body and its parameters
//!    (`read_params`);
//! 4. `call_user_handler` or `call_page_handler`: calls the endpoint's
//!    handler.
//!
//! Everything the head alone decides comes before the body is read or its
//! parameters parsed, so a refused request costs no body work at all, and a
//! request without credentials from an address over its limit is refused
//! before even authentication. Rate-limit headers are added in one place,
//! `with_limit_headers`.

use std::any::Any;
use std::future::Future;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::auth::{self, Authorization, Credentials};
use super::auth_cache::Verified;
use super::body::Body;
use super::embed::{assets, cors};
use super::error::ApiError;
use super::handlers::{self, HandlerResult};
use super::params::Params;
use super::rate_limit::Decision;
use super::routes::{self, Endpoint, Route};
use super::{App, Limits, event_handlers, health, metrics, request_id, status_handlers};
use crate::compression;
use crate::ids::{EmbedKeyId, UserId};
use crate::metrics::{Limiter, Series};
use crate::request_log::{self, RequestLine};
use crate::service::embed::{EmbedAuthError, EmbedCaller};
use crate::service::{Caller, Reader, Service};

/// What the pipeline learns of a request on its way, for the stages that
/// finish the answer and for the log line.
#[derive(Debug, Default)]
struct Note {
    /// The user who called, once authenticated.
    user_id: Option<UserId>,
    /// The embed key a page called with, once authenticated.
    embed_key: Option<EmbedKeyId>,
    /// Whether the request counts against its address is settled already:
    /// it was counted (a page's request), or it never counts (see
    /// `costs_nothing`).
    address_settled: bool,
    /// The page origin that may read the answer, refusals included.
    grant: Option<HeaderValue>,
    /// The answer depends on the request's origin (pages may call the
    /// endpoint); `Some(true)` for a preflight.
    varies_by_origin: Option<bool>,
}

/// Answers one request from `ip` (the client's address, keyed as
/// `ip_key` does); never fails, since every refusal is a JSON answer.
pub async fn handle(app: &App, req: Request<Incoming>, ip: IpAddr) -> Response<Body> {
    let started = Instant::now();
    let request_id = app
        .request_ids
        .for_request(req.headers().get(request_id::HEADER));
    let method = req.method().clone();
    // Kept for the log, which shows the path only: a query string may carry
    // anything, secrets included. (Cloning shares the URI's text.)
    let uri = req.uri().clone();
    let path = uri.path();
    // Said as the work begins, at debug level: that a request is in the
    // server's hands while it waits (for the store, say) is known from
    // outside only by this.
    tracing::debug!(request_id = %request_id.to_str().unwrap_or(""), %method, path = %path, "request begins");
    let route = routes::route(&method, path);
    let endpoint = route.as_ref().map_or(Endpoint::Unmatched, Route::endpoint);
    // A long poll waits for events by design: its deadline counts from the
    // end of that wait.
    let deadline = match route {
        Ok(Route::GetEvents) if method == Method::GET => {
            app.limits.request_timeout + app.long_poll_wait
        }
        _ => app.limits.request_timeout,
    };
    let mut note = Note::default();
    let work = CatchPanic(Box::pin(answer_and_compress(
        app, req, route, ip, &mut note,
    )));
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
    if note.user_id.is_none() && !note.address_settled {
        // No known caller (no credentials, or bad ones): the request
        // counts against its address.
        if let Some(decision) = app.ip_limiter.check(ip, app.service.now_f64())
            && !decision.allowed
        {
            response = rate_limited(app, Limiter::Address, decision);
        }
    }
    if let Some(origin) = note.grant.take() {
        cors::grant(&mut response, origin);
    }
    if let Some(preflight) = note.varies_by_origin {
        cors::vary(&mut response, preflight);
    }
    response
        .headers_mut()
        .insert(request_id::HEADER, request_id.clone());
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let series = Series {
        route: endpoint as usize,
        method: routes::method_index(&method),
        status,
    };
    app.service.metrics().request(series, elapsed);
    request_log::log(&RequestLine {
        request_id: request_id.to_str().unwrap_or(""),
        ip,
        method: method.as_str(),
        path,
        status,
        micros: elapsed.as_micros() as u64,
        user_id: note.user_id.map(|id| id.0),
        embed_key: note.embed_key.map(|id| id.0),
    });
    response
}

/// `response` with the `X-RateLimit-*` headers of `decision`, when a
/// limiter decided (docs/PROTOCOL.md §1.7): the one place they are added.
fn with_limit_headers(mut response: Response<Body>, decision: Option<Decision>) -> Response<Body> {
    if let Some(decision) = decision {
        for (name, value) in decision.headers() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The 429 answer to a request `limiter` refused, with its headers; counted.
fn rate_limited(app: &App, limiter: Limiter, decision: Decision) -> Response<Body> {
    app.service.metrics().rate_limited(limiter);
    let refusal = error_response(ApiError::rate_limited(decision.retry_after));
    with_limit_headers(refusal, Some(decision))
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

/// An error as its JSON answer.
pub fn error_response(error: ApiError) -> Response<Body> {
    let mut response = handlers::json(error.status, &error.body);
    for (name, value) in error.headers {
        response.headers_mut().append(name, value);
    }
    response
}

/// Answers a request that passes [`screen_head`]: at once if it needs no
/// caller (a preflight, an embed file, the server's settings), else
/// through [`answer_caller`]; then compresses a whole answer for a client
/// that accepts gzip (docs/PROTOCOL.md §1.9).
async fn answer_and_compress(
    app: &App,
    req: Request<Incoming>,
    route: Result<Route, ApiError>,
    ip: IpAddr,
    note: &mut Note,
) -> HandlerResult {
    let gzip = req
        .headers()
        .get(http::header::ACCEPT_ENCODING)
        .is_some_and(|v| compression::accepts_gzip(v.as_bytes()));
    let route = screen_head(app, &req, route, ip, note)?;
    let (parts, body) = req.into_parts();
    let mut response = match route {
        Route::Preflight => cors::preflight(&app.service, &parts.headers)?,
        Route::Asset(asset) => assets::serve(asset, &parts.headers, parts.method == Method::HEAD),
        // Cheap by design: no body is read, nothing is parsed.
        Route::Health(probe) => health::answer(app, probe)?,
        Route::Metrics => metrics::answer(app, &parts.headers, parts.method == Method::HEAD),
        Route::ServerSettings => {
            read_params(&parts, body, app.limits.max_body_bytes).await?;
            handlers::server_settings()?
        }
        route => answer_caller(app, &route, parts, body, ip, note).await?,
    };
    compress(&mut response, gzip);
    Ok(response)
}

/// Gzips a whole answer large enough to gain from it, if `gzip`; a stream
/// is written as it comes and never compressed.
fn compress(response: &mut Response<Body>, gzip: bool) {
    if response.body().is_stream() || response.body().len() < compression::MIN_COMPRESSED_BYTES {
        return;
    }
    let headers = response.headers_mut();
    headers.append(
        http::header::VARY,
        HeaderValue::from_static("accept-encoding"),
    );
    if gzip {
        headers.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        let compressed = response.body().gzip();
        *response.body_mut() = compressed;
    }
}

/// Refuses, in the order of docs/PROTOCOL.md §1.10, what the head alone
/// decides: a request without credentials from an address with nothing
/// left, a head over its size limits, a path or method not served, a
/// declared body over its limit. Returns the route of a request that
/// passes.
fn screen_head(
    app: &App,
    req: &Request<Incoming>,
    route: Result<Route, ApiError>,
    ip: IpAddr,
    note: &mut Note,
) -> Result<Route, ApiError> {
    let has_credentials = req.headers().contains_key(http::header::AUTHORIZATION);
    note.address_settled = costs_nothing(&route);
    if !has_credentials
        && !note.address_settled
        && app.ip_limiter.is_exhausted(ip, app.service.now_f64())
    {
        // Spare the work: `handle` answers 429, since this request too
        // counts against the address and finds nothing left.
        return Err(ApiError::not_logged_in());
    }
    check_head_sizes(&app.limits, req)?;
    let route = route?;
    if route.is_embeddable() || route == Route::Preflight {
        note.varies_by_origin = Some(route == Route::Preflight);
    }
    let max_body = app.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(ApiError::body_too_large(max_body));
    }
    Ok(route)
}

/// Whether a request is one the per-address limit leaves alone: a
/// browser's preflight and the embed's files are answered from the head
/// alone, carry nothing, and are cached by browsers; counting them would
/// spend an office's shared address on page loads rather than on reads.
/// Health probes and scrapes are answered from the head too, and a probe
/// refused for its address's traffic would take a healthy server out of
/// service (a scrape, lose the figures that show the overload).
fn costs_nothing(route: &Result<Route, ApiError>) -> bool {
    matches!(
        route,
        Ok(Route::Preflight | Route::Asset(_) | Route::Health(_) | Route::Metrics)
    )
}

/// Answers a route that needs a caller, as the user or the page that the
/// `Authorization` header names.
async fn answer_caller(
    app: &App,
    route: &Route,
    parts: http::request::Parts,
    body: Incoming,
    ip: IpAddr,
    note: &mut Note,
) -> HandlerResult {
    // A failure to authenticate counts against the address (see `handle`,
    // which answers 429 instead once the address is over its limit).
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(ApiError::not_logged_in)?;
    if let Some(verified) = app.auth_cache.get(header.as_bytes()) {
        let caller = app
            .service
            .authenticate_id(&verified.email, verified.key_id)
            .inspect_err(|_| app.auth_cache.remove(header.as_bytes()))?;
        return answer_user(app, route, caller, parts, body, note).await;
    }
    match auth::parse_authorization(header.as_bytes(), route.is_embeddable())? {
        Authorization::Basic(credentials) => {
            let caller = authenticate_basic(app, header.as_bytes(), credentials)?;
            answer_user(app, route, caller, parts, body, note).await
        }
        Authorization::Bearer(token) => {
            answer_page(app, route, &token, parts, body, ip, note).await
        }
    }
}

/// Authenticates Basic credentials not seen before, and remembers their
/// header if they are good.
fn authenticate_basic(
    app: &App,
    header: &[u8],
    credentials: Credentials,
) -> Result<Caller, ApiError> {
    let key_id = crate::service::key_id_of(&credentials.key)?;
    let caller = app.service.authenticate_id(&credentials.email, key_id)?;
    let verified = Verified {
        email: credentials.email.into_boxed_str(),
        key_id,
    };
    app.auth_cache.insert(header, verified);
    Ok(caller)
}

/// Applies an authenticated user's limit, then reads the parameters and
/// calls the handler.
async fn answer_user(
    app: &App,
    route: &Route,
    caller: Caller,
    parts: http::request::Parts,
    body: Incoming,
    note: &mut Note,
) -> HandlerResult {
    let service = &app.service;
    note.user_id = Some(caller.user_id());
    let decision = app.limiter.check(caller.user_id(), service.now_f64());
    if let Some(refused) = decision.filter(|d| !d.allowed) {
        return Ok(rate_limited(app, Limiter::User, refused));
    }
    let result = match read_params(&parts, body, app.limits.max_body_bytes).await {
        Ok(params) => call_user_handler(service, route, &caller, &params, &parts).await,
        Err(e) => Err(e),
    };
    Ok(with_limit_headers(
        result.unwrap_or_else(error_response),
        decision,
    ))
}

/// Authenticates a page by its embed key, applies the address's and the
/// key's limits, then reads the parameters and calls the handler. The
/// request counts against its address as well as against the key; a page
/// on an origin that may use the key gets to read the answer, refusals
/// included, so that it can say what went wrong.
async fn answer_page(
    app: &App,
    route: &Route,
    token: &str,
    parts: http::request::Parts,
    body: Incoming,
    ip: IpAddr,
    note: &mut Note,
) -> HandlerResult {
    let service = &app.service;
    let now = service.now_f64();
    let origin = cors::origin(&parts.headers).cloned();
    let origin_text = origin.as_ref().and_then(|o| o.to_str().ok());
    note.address_settled = true;
    if let Some(refused) = app.ip_limiter.check(ip, now).filter(|d| !d.allowed) {
        note.grant = origin
            .clone()
            .filter(|_| origin_text.is_some_and(|o| service.embed_origin_known(o)));
        return Ok(rate_limited(app, Limiter::Address, refused));
    }
    let caller = match service.authenticate_embed(token, origin_text) {
        Ok(caller) => caller,
        Err(e) => {
            let told = e != EmbedAuthError::OriginNotAllowed
                && origin_text.is_some_and(|o| service.embed_origin_known(o));
            note.grant = origin.filter(|_| told);
            return Err(e.into());
        }
    };
    note.embed_key = Some(caller.key.id);
    note.grant = origin;
    let decision = app.embed_limiter.check(caller.key.id, now);
    if let Some(refused) = decision.filter(|d| !d.allowed) {
        return Ok(rate_limited(app, Limiter::EmbedKey, refused));
    }
    let result = if route.is_embeddable() {
        match read_params(&parts, body, app.limits.max_body_bytes).await {
            Ok(params) => call_page_handler(service, route, &caller, &params, &parts),
            Err(e) => Err(e),
        }
    } else {
        Err(ApiError::embed_key_not_accepted())
    };
    Ok(with_limit_headers(
        result.unwrap_or_else(error_response),
        decision,
    ))
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    // Most requests (every GET) have no body: nothing to wait for or gather.
    if hyper::body::Body::is_end_stream(&body) {
        return Ok(Bytes::new());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::body_too_large(limit))
        }
        Err(_) => Err(ApiError::body_unreadable()),
    }
}

/// Checks the request head against the size limits.
fn check_head_sizes(limits: &Limits, req: &Request<Incoming>) -> Result<(), ApiError> {
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

/// Calls the endpoint's handler for a user.
async fn call_user_handler(
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
    let reader = Reader::User(caller);
    match route {
        Route::UserPresence(target) => handlers::get_user_presence(service, reader, target, params),
        Route::RealmPresence => handlers::get_realm_presence(service, reader),
        Route::UpdatePresence => {
            handlers::update_presence(service, caller, params, user_agent).await
        }
        Route::OwnUser => handlers::own_user(service, caller),
        Route::Users => handlers::users(service, reader, params),
        Route::UpdateSettings => {
            handlers::update_settings(service, caller, params, user_agent).await
        }
        Route::UpdateStatus => {
            status_handlers::update_status(service, caller, params, user_agent).await
        }
        Route::UserStatus(id) => status_handlers::get_user_status(service, reader, id),
        Route::AddApnsToken => handlers::add_apns_token(service, caller, params).await,
        Route::RemoveApnsToken => handlers::remove_apns_token(service, caller, params).await,
        Route::AddAndroidToken => handlers::add_android_token(service, caller, params).await,
        Route::RemoveAndroidToken => handlers::remove_android_token(service, caller, params).await,
        Route::Register => event_handlers::register(service, caller, params),
        // HEAD only looks: it never waits for events, nor starts a stream.
        Route::GetEvents => event_handlers::get_events(service, caller, params, head).await,
        Route::DeleteQueue => event_handlers::delete_queue(service, caller, params),
        Route::PresenceStream => {
            event_handlers::presence_stream(service, reader, params, &parts.headers, head)
        }
        // Answered before anyone is authenticated.
        Route::ServerSettings
        | Route::Preflight
        | Route::Asset(_)
        | Route::Health(_)
        | Route::Metrics => unreachable!("answered before authentication"),
    }
}

/// Calls the endpoint's handler for a page: the reads of its realm only.
fn call_page_handler(
    service: &Service,
    route: &Route,
    caller: &EmbedCaller,
    params: &Params,
    parts: &http::request::Parts,
) -> HandlerResult {
    let reader = Reader::Embed(caller);
    let head = parts.method == Method::HEAD;
    match route {
        Route::UserPresence(target) => handlers::get_user_presence(service, reader, target, params),
        Route::RealmPresence => handlers::get_realm_presence(service, reader),
        Route::Users => handlers::users(service, reader, params),
        Route::PresenceStream => {
            event_handlers::presence_stream(service, reader, params, &parts.headers, head)
        }
        _ => Err(ApiError::embed_key_not_accepted()),
    }
}
