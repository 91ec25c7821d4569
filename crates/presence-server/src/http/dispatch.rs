//! Which handler answers an authenticated request, and whether it answers
//! at once: most endpoints read memory and answer on the spot; the ones
//! that write (they wait for the writer) or wait for events are futures.

use http::Method;
use http::request::Parts;

use super::error::ApiError;
use super::handlers::{self, HandlerResult};
use super::params::Params;
use super::routes::Route;
use super::{event_handlers, status_handlers};
use crate::service::embed::EmbedCaller;
use crate::service::{Caller, Reader, Service};

/// The answer of a user's request whose handler reads memory only; `None`
/// for a handler that waits (see [`user`]).
pub(super) fn user_now(
    service: &Service,
    route: &Route<'_>,
    caller: &Caller,
    params: &Params,
    parts: &Parts,
) -> Option<HandlerResult> {
    let reader = Reader::User(caller);
    Some(match route {
        Route::UserPresence(target) => handlers::get_user_presence(service, reader, target, params),
        Route::RealmPresence => handlers::get_realm_presence(service, reader),
        Route::OwnUser => handlers::own_user(service, caller),
        Route::Users => handlers::users(service, reader, params),
        Route::UserStatus(id) => status_handlers::get_user_status(service, reader, id),
        Route::Register => event_handlers::register(service, caller, params),
        Route::DeleteQueue => event_handlers::delete_queue(service, caller, params),
        Route::PresenceStream => event_handlers::presence_stream(
            service,
            reader,
            params,
            &parts.headers,
            parts.method == Method::HEAD,
        ),
        _ => return None,
    })
}

/// The answer of any user's request, waiting where its handler does.
pub(super) async fn user(
    service: &Service,
    route: &Route<'_>,
    caller: &Caller,
    params: &Params,
    parts: &Parts,
) -> HandlerResult {
    if let Some(answered) = user_now(service, route, caller, params, parts) {
        return answered;
    }
    let user_agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .map(|v| v.as_bytes());
    match route {
        Route::UpdatePresence => {
            handlers::update_presence(service, caller, params, user_agent).await
        }
        Route::UpdateSettings => {
            handlers::update_settings(service, caller, params, user_agent).await
        }
        Route::UpdateStatus => {
            status_handlers::update_status(service, caller, params, user_agent).await
        }
        Route::AddApnsToken => handlers::add_apns_token(service, caller, params).await,
        Route::RemoveApnsToken => handlers::remove_apns_token(service, caller, params).await,
        Route::AddAndroidToken => handlers::add_android_token(service, caller, params).await,
        Route::RemoveAndroidToken => handlers::remove_android_token(service, caller, params).await,
        // HEAD only looks: it never waits for events, nor starts a stream.
        // Boxed: the long poll's future is the largest of these, and kept
        // inline it would make every waiting request's future too large
        // for the allocator's per-thread cache (over 1 KB), a cost paid by
        // every ping for a request that waits anyway.
        Route::GetEvents => {
            let head = parts.method == Method::HEAD;
            Box::pin(event_handlers::get_events(service, caller, params, head)).await
        }
        // Those that read memory were answered above; the rest before
        // anyone was authenticated.
        _ => unreachable!("answered at once or before authentication"),
    }
}

/// The answer of a page's request: the reads of its realm only, every one
/// of them from memory.
pub(super) fn page(
    service: &Service,
    route: &Route<'_>,
    caller: &EmbedCaller,
    params: &Params,
    parts: &Parts,
) -> HandlerResult {
    let reader = Reader::Embed(caller);
    match route {
        Route::UserPresence(target) => handlers::get_user_presence(service, reader, target, params),
        Route::RealmPresence => handlers::get_realm_presence(service, reader),
        Route::Users => handlers::users(service, reader, params),
        Route::PresenceStream => event_handlers::presence_stream(
            service,
            reader,
            params,
            &parts.headers,
            parts.method == Method::HEAD,
        ),
        _ => Err(ApiError::embed_key_not_accepted()),
    }
}
