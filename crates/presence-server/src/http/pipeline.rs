//! The life of one request, in stages named after what they do:
//!
//! 1. [`handle`]: routes the request (once; every later stage is given the
//!    route), gives it its id and deadline, turns a panic into a 500; its
//!    `Ending::finish` gzips whole answers for clients that accept it
//!    (`compress`), counts a request without a known caller against its
//!    address, lets the page that sent it read the answer where it may,
//!    counts it in the metrics by its route's endpoint, and logs one line
//!    (and, at debug level, one as it begins);
//! 2. `begin`: refuses what the head alone decides (`screen_head`: an
//!    address with nothing left, sizes, the route, a declared body too
//!    large), answers at once what needs no caller (health probes and
//!    scrapes among them), and hands the rest to `answer_caller`;
//! 3. `answer_caller`: authenticates the caller of a Basic header seen
//!    before through the cache of verified headers (`auth_cache`), or else
//!    parses `Authorization`, and hands the request to `answer_user` (a
//!    user) or `answer_page` (an embed key), which apply the caller's
//!    limits and only then read the body and its parameters;
//! 4. `dispatch`: calls the endpoint's handler.
//!
//! The stages up to the handler need only the head and memory, and run as
//! plain calls, `handle` included. A request without a body whose handler
//! reads memory (every read: the most frequent requests) is answered there
//! and then, a `Step::Answered` that `handle` returns as `Handled::Now`;
//! only what waits (for a body, the writer, or events) becomes a future, a
//! `Step::Waits` that `handle` returns as `Handled::Later`, which
//! [`Answering`] runs under the request's deadline. The future owns what it
//! needs (the `App` among them), so the connection holds no future for a
//! request answered at once.
//!
//! Everything the head alone decides comes before the body is read or its
//! parameters parsed, so a refused request costs no body work at all, and a
//! request without credentials from an address over its limit is refused
//! before even authentication. Rate-limit headers are added in one place,
//! `add_limit_headers`.

use std::any::Any;
use std::future::Future;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::auth::{self, Authorization, Credentials};
use super::auth_cache::{self, Held};
use super::body::Body;
use super::connection::RequestGuard;
use super::embed::{assets, cors};
use super::error::ApiError;
use super::handlers::{self, HandlerResult};
use super::head::Head;
use super::params::Params;
use super::rate_limit::Decision;
use super::request_id::{self, RequestId};
use super::routes::{self, Endpoint, Route};
use super::{App, Limits, dispatch, health, metrics};
use crate::clock::Ticks;
use crate::compression;
use crate::ids::{EmbedKeyId, UserId};
use crate::metrics::{Limiter, Series};
use crate::request_log::{self, RequestLine};
use crate::service::Caller;
use crate::service::embed::EmbedAuthError;
use crate::service::epoch::Epoch;
use crate::service::model::KeyId;

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
    /// The client accepts a gzipped answer.
    gzip: bool,
}

/// How [`handle`] leaves a request.
enum Handled {
    /// Answered on the spot, with nothing waited for: every read of
    /// memory without a body. (`None` once [`Answering`] took it.)
    Now(Option<Response<Body>>),
    /// The rest waits, for a body, the writer or events: see [`Answering`].
    Later(Later),
}

/// The answer to one request as its connection awaits it: ready at once,
/// or the request's waiting work, run under its deadline. A future of its
/// own rather than an `async` block, so that a waiting request is not
/// copied from one future's state into another's as it is polled (it is
/// a few hundred bytes).
pub struct Answering {
    handled: Handled,
    /// Marks the request's end on its connection: dropped with the answer,
    /// or held by a stream's body until the stream ends.
    guard: Option<RequestGuard>,
}

impl Future for Answering {
    type Output = Result<Response<Body>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let guard = this.guard.as_ref().expect("polled after its answer");
        let mut response = match &mut this.handled {
            Handled::Now(response) => response.take().expect("taken once"),
            Handled::Later(later) => std::task::ready!(later.poll_answer(cx, guard)),
        };
        let guard = this.guard.take().expect("held until the answer");
        // A stream is still in progress when its head is ready: its
        // connection is on the stream timers until the body ends.
        if response.body().is_stream() {
            response.body_mut().hold(guard.streaming());
        }
        Poll::Ready(Ok(response))
    }
}

/// Answers one request from `ip` (the client's address, keyed as
/// `ip_key` does), which `guard` marks on its connection; never fails,
/// since every refusal is a JSON answer.
///
/// A plain call: what needs only the head and memory is done here, and
/// the [`Answering`] of a request answered by it is ready when first
/// polled; a waiting request's deadline starts now.
pub fn handle(
    app: &Arc<App>,
    req: Request<Incoming>,
    ip: IpAddr,
    guard: RequestGuard,
) -> Answering {
    let started = Ticks::now();
    let head = Head::read(req.headers());
    let request_id = app.request_ids.for_request(head.request_id.as_ref());
    let method = req.method().clone();
    // Kept for the log, which shows the path only: a query string may carry
    // anything, secrets included. (Cloning shares the URI's text.)
    let uri = req.uri().clone();
    // Said as the work begins, at debug level: that a request is in the
    // server's hands while it waits (for the store, say) is known from
    // outside only by this.
    tracing::debug!(request_id = %request_id.as_str(), %method, path = %uri.path(), "request begins");
    let route = routes::route(&method, uri.path());
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
    let begun = std::panic::catch_unwind(AssertUnwindSafe(|| {
        begin(app, req, &head, route, ip, &mut note)
    }));
    let mut ending = Ending {
        started,
        request_id,
        method,
        uri,
        endpoint,
        ip,
        note,
    };
    let handled = match begun {
        Ok(Step::Answered(result)) => Handled::Now(Some(ending.finish(app, Ok(result)))),
        Ok(Step::Waits(work)) => {
            guard.set_deadline(deadline);
            Handled::Later(Later {
                app: Arc::clone(app),
                work,
                ending,
            })
        }
        Err(panic) => Handled::Now(Some(ending.finish(app, Err(panic)))),
    };
    Answering {
        handled,
        guard: Some(guard),
    }
}

/// A request whose answer waits: its work, run under its deadline.
struct Later {
    app: Arc<App>,
    work: Work,
    ending: Ending,
}

impl Later {
    /// Polls the work, and finishes its answer once it is done, its
    /// deadline (kept by the connection's watch, `guard`) has passed, or
    /// it panicked: a bug costs one request a 500 answer instead of
    /// costing the connection. (The part before it is run under
    /// `catch_unwind` in [`handle`].)
    fn poll_answer(&mut self, cx: &mut Context<'_>, guard: &RequestGuard) -> Poll<Response<Body>> {
        let work = self.work.as_mut();
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| work.poll(cx))) {
            Ok(Poll::Ready(result)) => Ok(result),
            Ok(Poll::Pending) if guard.deadline_passed() => {
                let ending = &self.ending;
                tracing::warn!(request_id = %ending.request_id.as_str(), method = %ending.method, path = %ending.uri.path(), "request deadline passed");
                Ok(Err(ApiError::deadline_passed()))
            }
            Ok(Poll::Pending) => return Poll::Pending,
            Err(panic) => Err(panic),
        };
        Poll::Ready(self.ending.finish(&self.app, outcome))
    }
}

/// What is left to do once a request's outcome is known, and what it
/// needs: the answer's last headers, the metrics and the log line.
struct Ending {
    started: Ticks,
    request_id: RequestId,
    method: Method,
    uri: Uri,
    endpoint: Endpoint,
    ip: IpAddr,
    note: Note,
}

impl Ending {
    /// The answer to send for `outcome` (a panic becomes a 500), counted
    /// and logged.
    fn finish(
        &mut self,
        app: &App,
        outcome: Result<HandlerResult, Box<dyn Any + Send>>,
    ) -> Response<Body> {
        let path = self.uri.path();
        let mut response = match outcome {
            Ok(Ok(mut response)) => {
                compress(&mut response, self.note.gzip);
                response
            }
            Ok(Err(error)) => error_response(error),
            Err(_) => {
                tracing::error!(request_id = %self.request_id.as_str(), method = %self.method, path = %path, "request handler panicked");
                error_response(ApiError::internal())
            }
        };
        as_the_caller_may_see_it(app, &mut response, &mut self.note, self.ip);
        response
            .headers_mut()
            .insert(request_id::HEADER, self.request_id.header());
        let elapsed = self.started.elapsed();
        let status = response.status().as_u16();
        let series = Series {
            route: self.endpoint as usize,
            method: routes::method_index(&self.method),
            status,
        };
        app.service.metrics().request(series, elapsed);
        request_log::log(|| RequestLine {
            request_id: self.request_id.as_str(),
            ip: self.ip,
            method: self.method.as_str(),
            path,
            status,
            micros: elapsed.as_micros() as u64,
            user_id: self.note.user_id.map(|id| id.0),
            embed_key: self.note.embed_key.map(|id| id.0),
        });
        response
    }
}

/// Makes `response` what the request's caller decides it is: a 429 if the
/// caller is unknown (no credentials, or bad ones) and the request finds
/// its address over its limit, and the headers that let the page that sent
/// it read it, where it may. (In place: an answer is a few hundred bytes,
/// and every request's passes through here.)
fn as_the_caller_may_see_it(app: &App, response: &mut Response<Body>, note: &mut Note, ip: IpAddr) {
    if note.user_id.is_none()
        && !note.address_settled
        && let Some(decision) = app.ip_limiter.check(ip, app.service.now_f64())
        && !decision.allowed
    {
        *response = rate_limited(app, Limiter::Address, decision);
    }
    if let Some(origin) = note.grant.take() {
        cors::grant(response, origin);
    }
    if let Some(preflight) = note.varies_by_origin {
        cors::vary(response, preflight);
    }
}

/// Where the stages that need only the head and memory leave a request.
enum Step {
    /// Answered (or refused) on the spot: nothing was waited for.
    Answered(HandlerResult),
    /// The rest waits (for the body, the writer or events), and so runs
    /// under the request's deadline.
    Waits(Work),
}

/// The part of a request's work that waits.
type Work = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;

/// Adds the `X-RateLimit-*` headers of `decision`, when a limiter decided
/// (docs/PROTOCOL.md §1.7): the one place they are added.
fn add_limit_headers(response: &mut Response<Body>, decision: Option<Decision>) {
    if let Some(decision) = decision {
        for (name, value) in decision.headers() {
            response.headers_mut().insert(name, value);
        }
    }
}

/// `result` as the answer to send, with the limit headers of `decision`.
fn limited_answer(result: HandlerResult, decision: Option<Decision>) -> Response<Body> {
    let mut response = result.unwrap_or_else(error_response);
    add_limit_headers(&mut response, decision);
    response
}

/// The 429 answer to a request `limiter` refused, with its headers; counted.
fn rate_limited(app: &App, limiter: Limiter, decision: Decision) -> Response<Body> {
    app.service.metrics().rate_limited(limiter);
    limited_answer(
        Err(ApiError::rate_limited(decision.retry_after)),
        Some(decision),
    )
}

/// An error as its JSON answer.
pub fn error_response(error: ApiError) -> Response<Body> {
    let mut response = handlers::json(error.status, &error.body);
    for (name, value) in error.headers {
        response.headers_mut().append(name, value);
    }
    response
}

/// Takes a request as far as the head and memory allow: refuses what
/// [`screen_head`] refuses, answers what needs no caller (a preflight, an
/// embed file, a probe or scrape, the server's settings), and hands the
/// rest to [`answer_caller`].
fn begin(
    app: &Arc<App>,
    req: Request<Incoming>,
    head: &Head,
    route: Result<Route<'_>, ApiError>,
    ip: IpAddr,
    note: &mut Note,
) -> Step {
    note.gzip = head
        .accept_encoding
        .as_ref()
        .is_some_and(|v| compression::accepts_gzip(v.as_bytes()));
    let route = match screen_head(app, &req, head, route, ip, note) {
        Ok(route) => route,
        Err(refused) => return Step::Answered(Err(refused)),
    };
    let (parts, body) = req.into_parts();
    let head_only = parts.method == Method::HEAD;
    match route {
        Route::Preflight => Step::Answered(cors::preflight(&app.service, &parts.headers)),
        Route::Asset(asset) => Step::Answered(Ok(assets::serve(asset, &parts.headers, head_only))),
        // Cheap by design: no body is read, nothing is parsed.
        Route::Health(probe) => Step::Answered(health::answer(app, probe)),
        Route::Metrics => Step::Answered(Ok(metrics::answer(app, &parts.headers, head_only))),
        Route::ServerSettings => {
            with_params(parts, body, app.limits.max_body_bytes, |_, params| {
                params.and_then(|_| handlers::server_settings())
            })
        }
        route => answer_caller(app, route, head, parts, body, ip, note),
    }
}

/// Reads the request's parameters and answers with them: at once when the
/// request has no body (every GET), else once the body is read. `answer`
/// is given the parameters, or why they could not be read.
fn with_params(
    parts: Parts,
    body: Incoming,
    max_body: usize,
    answer: impl FnOnce(&Parts, Result<Params, ApiError>) -> HandlerResult + Send + 'static,
) -> Step {
    if hyper::body::Body::is_end_stream(&body) {
        let params = parse_params(&parts, b"");
        return Step::Answered(answer(&parts, params));
    }
    Step::Waits(Box::pin(async move {
        let params = read_params(&parts, body, max_body).await;
        answer(&parts, params)
    }))
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
fn screen_head<'p>(
    app: &App,
    req: &Request<Incoming>,
    head: &Head,
    route: Result<Route<'p>, ApiError>,
    ip: IpAddr,
    note: &mut Note,
) -> Result<Route<'p>, ApiError> {
    let has_credentials = head.authorization.is_some();
    note.address_settled = costs_nothing(&route);
    if !has_credentials
        && !note.address_settled
        && app.ip_limiter.is_exhausted(ip, app.service.now_f64())
    {
        // Spare the work: `handle` answers 429, since this request too
        // counts against the address and finds nothing left.
        return Err(ApiError::not_logged_in());
    }
    check_head_sizes(&app.limits, req, head)?;
    let route = route?;
    if route.is_embeddable() || route == Route::Preflight {
        note.varies_by_origin = Some(route == Route::Preflight);
    }
    let max_body = app.limits.max_body_bytes;
    if head.declared_length().is_some_and(|n| n > max_body as u64) {
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
fn costs_nothing(route: &Result<Route<'_>, ApiError>) -> bool {
    matches!(
        route,
        Ok(Route::Preflight | Route::Asset(_) | Route::Health(_) | Route::Metrics)
    )
}

/// Answers a route that needs a caller, as the user or the page that the
/// `Authorization` header names.
fn answer_caller(
    app: &Arc<App>,
    route: Route<'_>,
    head: &Head,
    parts: Parts,
    body: Incoming,
    ip: IpAddr,
    note: &mut Note,
) -> Step {
    // A failure to authenticate counts against the address (see `handle`,
    // which answers 429 instead once the address is over its limit).
    let Some(header) = &head.authorization else {
        return Step::Answered(Err(ApiError::not_logged_in()));
    };
    match identify(app, header, route.is_embeddable()) {
        Ok(Identified::User(caller)) => answer_user(app, route, caller, parts, body, note),
        Ok(Identified::Page(token)) => answer_page(app, route, &token, parts, body, ip, note),
        Err(refused) => Step::Answered(Err(refused)),
    }
}

/// Who an `Authorization` header names.
enum Identified {
    /// A user, authenticated.
    User(Caller),
    /// A page, by its embed key (not checked yet).
    Page(String),
}

/// Authenticates the caller of a Basic header seen before through the
/// cache of verified headers, or else parses the header.
fn identify(app: &App, header: &HeaderValue, embeddable: bool) -> Result<Identified, ApiError> {
    let header = header.as_bytes();
    // Taken before anything is read from the directory (see `auth_cache`).
    let epoch = app.service.directory_epoch();
    match app.auth_cache.get(header, epoch) {
        Some(Held::Caller(caller)) => return Ok(Identified::User(caller)),
        Some(Held::Verified(verified)) => {
            let (email, key_id) = (verified.email(), verified.key_id());
            return match app.service.authenticate_id(email, key_id) {
                Ok(caller) => {
                    hold(app, header, (email, key_id), (epoch, &caller));
                    Ok(Identified::User(caller))
                }
                Err(e) => {
                    app.auth_cache.remove(header);
                    Err(e.into())
                }
            };
        }
        None => {}
    }
    match auth::parse_authorization(header, embeddable)? {
        Authorization::Basic(credentials) => {
            authenticate_basic(app, header, credentials, epoch).map(Identified::User)
        }
        Authorization::Bearer(token) => Ok(Identified::Page(token)),
    }
}

/// Authenticates Basic credentials not seen before (`epoch` taken before),
/// and remembers their header if they are good.
fn authenticate_basic(
    app: &App,
    header: &[u8],
    credentials: Credentials,
    epoch: Epoch,
) -> Result<Caller, ApiError> {
    let key_id = crate::service::key_id_of(&credentials.key)?;
    let caller = app.service.authenticate_id(&credentials.email, key_id)?;
    hold(app, header, (&credentials.email, key_id), (epoch, &caller));
    Ok(caller)
}

/// Keeps `header` in the cache of verified headers with the caller it
/// authenticated as.
fn hold(app: &App, header: &[u8], verified_as: (&str, KeyId), caller: (Epoch, &Caller)) {
    let bound = auth_cache::bound(app.service.key_count());
    app.auth_cache.insert(header, verified_as, caller, bound);
}

/// Applies an authenticated user's limit, then reads the parameters and
/// calls the handler: at once for a request without a body whose handler
/// reads memory only (see [`dispatch::user_now`]).
fn answer_user(
    app: &Arc<App>,
    route: Route<'_>,
    caller: Caller,
    parts: Parts,
    body: Incoming,
    note: &mut Note,
) -> Step {
    let service = &app.service;
    note.user_id = Some(caller.user_id());
    // A limiter that is off needs no clock.
    let decision = if app.limiter.is_on() {
        app.limiter.check(caller.user_id(), service.now_f64())
    } else {
        None
    };
    if let Some(refused) = decision.filter(|d| !d.allowed) {
        return Step::Answered(Ok(rate_limited(app, Limiter::User, refused)));
    }
    let finish = move |result: HandlerResult| Ok(limited_answer(result, decision));
    if hyper::body::Body::is_end_stream(&body) {
        let answered = match parse_params(&parts, b"") {
            Ok(params) => dispatch::user_now(service, &route, &caller, &params, &parts),
            Err(e) => Some(Err(e)),
        };
        if let Some(result) = answered {
            return Step::Answered(finish(result));
        }
    }
    let app = Arc::clone(app);
    let route = route.into_owned();
    Step::Waits(Box::pin(async move {
        let max_body = app.limits.max_body_bytes;
        let result = match read_params(&parts, body, max_body).await {
            Ok(params) => dispatch::user(&app.service, &route, &caller, &params, &parts).await,
            Err(e) => Err(e),
        };
        finish(result)
    }))
}

/// Authenticates a page by its embed key, applies the address's and the
/// key's limits, then reads the parameters and calls the handler. The
/// request counts against its address as well as against the key; a page
/// on an origin that may use the key gets to read the answer, refusals
/// included, so that it can say what went wrong.
fn answer_page(
    app: &Arc<App>,
    route: Route<'_>,
    token: &str,
    parts: Parts,
    body: Incoming,
    ip: IpAddr,
    note: &mut Note,
) -> Step {
    let service = &app.service;
    let now = service.now_f64();
    let origin = cors::origin(&parts.headers).cloned();
    let origin_text = origin.as_ref().and_then(|o| o.to_str().ok());
    note.address_settled = true;
    if let Some(refused) = app.ip_limiter.check(ip, now).filter(|d| !d.allowed) {
        note.grant = origin
            .clone()
            .filter(|_| origin_text.is_some_and(|o| service.embed_origin_known(o)));
        return Step::Answered(Ok(rate_limited(app, Limiter::Address, refused)));
    }
    let caller = match service.authenticate_embed(token, origin_text) {
        Ok(caller) => caller,
        Err(e) => {
            let told = e != EmbedAuthError::OriginNotAllowed
                && origin_text.is_some_and(|o| service.embed_origin_known(o));
            note.grant = origin.filter(|_| told);
            return Step::Answered(Err(e.into()));
        }
    };
    note.embed_key = Some(caller.key.id);
    note.grant = origin;
    let decision = app.embed_limiter.check(caller.key.id, now);
    if let Some(refused) = decision.filter(|d| !d.allowed) {
        return Step::Answered(Ok(rate_limited(app, Limiter::EmbedKey, refused)));
    }
    if !route.is_embeddable() {
        let refused = Err(ApiError::embed_key_not_accepted());
        return Step::Answered(Ok(limited_answer(refused, decision)));
    }
    let app = Arc::clone(app);
    let route = route.into_owned();
    with_params(
        parts,
        body,
        app.limits.max_body_bytes,
        move |parts, params| {
            let service = &app.service;
            let result =
                params.and_then(|params| dispatch::page(service, &route, &caller, &params, parts));
            Ok(limited_answer(result, decision))
        },
    )
}

/// Reads a request's body, at most `limit` bytes of it. A body that comes
/// in one frame (a small form nearly always does) is kept as that frame's
/// bytes, with nothing gathered or copied.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    // Most requests (every GET) have no body: nothing to wait for or gather.
    if hyper::body::Body::is_end_stream(&body) {
        return Ok(Bytes::new());
    }
    let mut first: Option<Bytes> = None;
    let mut gathered: Vec<u8> = Vec::new();
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::body_unreadable())?;
        // Trailers, if a chunked body has any, are not parameters.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total > limit {
            return Err(ApiError::body_too_large(limit));
        }
        if let Some(earlier) = first.take() {
            gathered.extend_from_slice(&earlier);
        }
        if gathered.is_empty() {
            first = Some(data);
        } else {
            gathered.extend_from_slice(&data);
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(gathered)))
}

/// Checks the request head against the size limits.
fn check_head_sizes(limits: &Limits, req: &Request<Incoming>, head: &Head) -> Result<(), ApiError> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > limits.max_url_bytes {
        return Err(ApiError::url_too_long(limits.max_url_bytes));
    }
    if head.bytes > limits.max_header_bytes {
        return Err(ApiError::headers_too_large(limits.max_header_bytes));
    }
    Ok(())
}

/// Reads a request's body (bounded) and parses its parameters.
async fn read_params(parts: &Parts, body: Incoming, max_body: usize) -> Result<Params, ApiError> {
    let bytes = read_body(body, max_body).await?;
    parse_params(parts, &bytes)
}

/// Parses a request's parameters: the query string, and for methods other
/// than GET and HEAD the form `body` too.
fn parse_params(parts: &Parts, body: &[u8]) -> Result<Params, ApiError> {
    let form: &[u8] = if parts.method == Method::GET || parts.method == Method::HEAD {
        b""
    } else {
        body
    };
    Params::parse(parts.uri.query(), form)
}
