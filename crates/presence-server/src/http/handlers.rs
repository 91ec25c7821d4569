//! One function per endpoint: parameters in, service call, wire type out.
//!
//! A handler reads its endpoint's parameter struct (`Params::read`, see
//! [`super::params::FromParams`]), asks the service, and shapes the
//! answer. The rules (who may report, which tokens and app ids are good,
//! who is listed) and their refusals are the service's.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use presence_types::endpoints::EmptySuccess;
use presence_types::endpoints::get_realm_presence::GetRealmPresenceResponse;
use presence_types::endpoints::get_user_presence::GetUserPresenceResponse;
use presence_types::endpoints::push_devices::{
    AddAndroidTokenParams, AddApnsTokenParams, RemoveAndroidTokenParams, RemoveApnsTokenParams,
};
use presence_types::endpoints::server_settings::ServerSettingsResponse;
use presence_types::endpoints::settings::UpdateSettingsParams;
use presence_types::endpoints::update_presence::UpdatePresenceParams;
use presence_types::endpoints::update_presence::UpdatePresenceResponse;
use presence_types::endpoints::users::{GetOwnUserResponse, GetUsersParams, GetUsersResponse};
use presence_types::{ErrorBody, ReportedStatus, SuccessTag};
use serde::Serialize;

use super::body::Body;
use super::client_name::request_client;
use super::error::ApiError;
use super::params::Params;
use crate::ids::UpdateId;
use crate::service::{Caller, Format, Reader, Service, SharedAnswer};
use crate::store::DeviceKind;

/// The Zulip API feature level whose presence behaviour this server
/// implements in full: 497 (Zulip 12.0) made the single-user GET answer the
/// modern `active_timestamp` and `idle_timestamp` beside the legacy
/// entries, with a top-level `server_timestamp`. The presence changes
/// before it are served too: 263's `last_update_id`, 288's
/// `history_limit_days` and `presence_history_limit_days`, 419's
/// `simplified_presence_events` capability and modern `presence` event.
/// (228's limit on who may see whom does not apply: everyone in a realm
/// sees everyone.)
pub const FEATURE_LEVEL: i64 = 497;

/// The server's name and version, which it gives as `zulip_version` and
/// `zulip_merge_base`.
pub fn server_version() -> String {
    format!("presence-server {}", env!("CARGO_PKG_VERSION"))
}

/// What a handler answers.
pub type HandlerResult = Result<Response<Body>, ApiError>;

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(body).expect("wire types always serialize");
    json_response(status, Body::from_vec(bytes))
}

/// A JSON answer of bytes already written.
fn json_bytes(status: StatusCode, bytes: Bytes) -> Response<Body> {
    json_response(status, Body::from_bytes(bytes))
}

/// A JSON answer of `body`.
pub(super) fn json_response(status: StatusCode, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A 200 JSON answer.
pub(super) fn ok<T: Serialize>(body: &T) -> HandlerResult {
    Ok(json(StatusCode::OK, body))
}

/// `GET /server_settings`.
#[utoipa::path(
    get,
    path = "/api/v1/server_settings",
    tag = "server",
    operation_id = "get_server_settings",
    summary = "What this server is; needs no authentication",
    description = "The official Python client calls this from its constructor and needs `zulip_version`.",
    responses(
        (status = 200, description = "The server's version and capabilities", body = ServerSettingsResponse,
         example = json!({"result": "success", "msg": "", "zulip_version": "presence-server 0.1.0",
             "zulip_feature_level": 497, "zulip_merge_base": "presence-server 0.1.0",
             "push_notifications_enabled": false, "is_incompatible": false,
             "authentication_methods": {"password": false, "dev": false}})),
    )
)]
pub fn server_settings() -> HandlerResult {
    let version = server_version();
    // Only API keys are accepted; no interactive login method is offered.
    let authentication_methods: BTreeMap<String, bool> = [
        "password",
        "dev",
        "email",
        "ldap",
        "remoteuser",
        "github",
        "azuread",
        "gitlab",
        "apple",
        "google",
        "saml",
        "openid connect",
    ]
    .into_iter()
    .map(|m| (m.to_owned(), false))
    .collect();
    ok(&ServerSettingsResponse {
        result: SuccessTag::Success,
        msg: String::new(),
        zulip_version: version.clone(),
        zulip_feature_level: FEATURE_LEVEL,
        zulip_merge_base: version,
        push_notifications_enabled: false,
        is_incompatible: false,
        authentication_methods,
    })
}

/// `GET /users/{user_id_or_email}/presence`.
#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id_or_email}/presence",
    tag = "presence",
    operation_id = "get_user_presence",
    summary = "One user's presence, per client plus `aggregated`, with the modern timestamps",
    description = "Looks the user up among the active users of the caller's realm: an integer is a user id, anything else an email (trimmed, any case). `aggregated.status` is `offline` when the latest timestamp is older than the offline threshold. As in Zulip 12.0 (feature level 497), the object also holds the modern `active_timestamp` and `idle_timestamp`, and the answer the server's clock in `server_timestamp`. The endpoint reads no query parameter: any sent (but `client`) are listed in `ignored_parameters_unsupported`.",
    params(
        ("user_id_or_email" = String, Path, min_length = 1, description = "A user id, or an email", example = "alice@acme.test"),
    ),
    responses(
        (status = 200, description = "The user's presence: the legacy entries and the modern timestamps", body = GetUserPresenceResponse,
         example = json!({"result": "success", "msg": "", "server_timestamp": 1795915350.25, "presence": {
             "active_timestamp": 1795915346, "idle_timestamp": 1795915346,
             "aggregated": {"client": "ZulipMobile", "status": "active", "timestamp": 1795915346},
             "website": {"client": "website", "status": "idle", "timestamp": 1795915100, "pushable": false},
             "ZulipMobile": {"client": "ZulipMobile", "status": "active", "timestamp": 1795915346, "pushable": false}}})),
        (status = 400, description = "`No such user` (unknown, deactivated, or in another realm), `Presence is not supported for bot users.`, or `No presence data for {user_id_or_email}`", body = ErrorBody,
         example = json!({"result": "error", "msg": "No such user", "code": "BAD_REQUEST"})),
    )
)]
pub fn get_user_presence(
    service: &Service,
    reader: Reader<'_>,
    target: &str,
    params: &Params,
) -> HandlerResult {
    // Zulip's view parses its parameters (it has none left since feature
    // level 487), so it lists whatever was sent.
    let ignored = params.ignored();
    let now = service.now();
    let body = user_presence_answer(ignored.as_deref(), now.as_f64(), |out| {
        service.user_presence(reader, target, now, out)
    })?;
    Ok(json_response(StatusCode::OK, Body::from_vec(body)))
}

/// The bytes of a [`GetUserPresenceResponse`], written around the presence
/// object that `presence` appends: the most frequent read is written
/// straight from memory (see `service::user_answer`), not through the wire
/// structs.
fn user_presence_answer<E>(
    ignored: Option<&[String]>,
    server_timestamp: f64,
    presence: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    let mut out = envelope_start(512, ignored, server_timestamp);
    out.extend_from_slice(br#","presence":"#);
    presence(&mut out)?;
    out.push(b'}');
    Ok(out)
}

/// `GET /realm/presence`.
#[utoipa::path(
    get,
    path = "/api/v1/realm/presence",
    tag = "presence",
    operation_id = "get_realm_presence",
    summary = "Everyone's presence in the caller's realm, keyed by email",
    description = "Active, non-bot users with a report within the default history window (14 days). Bots may call it.",
    responses(
        (status = 200, description = "Everyone's presence in the legacy format", body = GetRealmPresenceResponse,
         example = json!({"result": "success", "msg": "", "server_timestamp": 1795915346.574311, "presences": {
             "alice@acme.test": {
                 "aggregated": {"client": "ZulipMobile", "status": "active", "timestamp": 1795915346},
                 "ZulipMobile": {"client": "ZulipMobile", "status": "active", "timestamp": 1795915346, "pushable": false}}}})),
    )
)]
pub fn get_realm_presence(service: &Service, reader: Reader<'_>) -> HandlerResult {
    let answer = service.realm_presence(reader, Format::Legacy, None, None);
    let head = presences_head(None, service.now_f64(), None);
    Ok(around_presences(head, answer))
}

/// A 200 answer of `envelope` (which must end with an empty `presences`)
/// with the shared, already serialized presences in its place.
pub(super) fn with_presences<T: Serialize>(
    envelope: &T,
    answer: Arc<SharedAnswer>,
) -> Response<Body> {
    let mut head = serde_json::to_vec(envelope).expect("wire types always serialize");
    const EMPTY_LAST: &[u8] = b"\"presences\":{}}";
    assert!(
        head.ends_with(EMPTY_LAST),
        "the envelope must end with an empty `presences`"
    );
    // Keep `"presences":`, drop `{}}`.
    head.truncate(head.len() - 3);
    around_presences(head, answer)
}

/// A 200 answer made of `head` (an envelope written up to and including
/// its `"presences":`), the shared, already serialized presences, and the
/// closing brace: a large part is sent as is, never copied or serialized
/// again (a small one is copied, see [`Body::around_shared`]).
fn around_presences(head: Vec<u8>, answer: Arc<SharedAnswer>) -> Response<Body> {
    json_response(StatusCode::OK, Body::around_shared(head, answer, b"}"))
}

/// The fields every hand-written success answer starts with, as serde
/// writes them: `result`, `msg`, `ignored_parameters_unsupported` when
/// anything was, and `server_timestamp` (no closing brace).
fn envelope_start(capacity: usize, ignored: Option<&[String]>, server_timestamp: f64) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(br#"{"result":"success","msg":"""#);
    if let Some(ignored) = ignored {
        out.extend_from_slice(br#","ignored_parameters_unsupported":"#);
        serde_json::to_writer(&mut out, ignored).expect("strings serialize");
    }
    out.extend_from_slice(br#","server_timestamp":"#);
    serde_json::to_writer(&mut out, &server_timestamp).expect("a number serializes");
    out
}

/// The start of a realm-wide answer ([`GetRealmPresenceResponse`] or
/// [`UpdatePresenceResponse`]), as serde writes it, up to and including
/// `"presences":`: written by hand, since every poll makes one.
fn presences_head(
    ignored: Option<&[String]>,
    server_timestamp: f64,
    last_update_id: Option<i64>,
) -> Vec<u8> {
    let mut out = envelope_start(160, ignored, server_timestamp);
    if let Some(id) = last_update_id {
        out.extend_from_slice(br#","presence_last_update_id":"#);
        crate::json_out::write_int(&mut out, id);
    }
    out.extend_from_slice(br#","presences":"#);
    out
}

/// `POST /users/me/presence`: report, then (unless `ping_only`) answer with everyone.
#[utoipa::path(
    post,
    path = "/api/v1/users/me/presence",
    tag = "presence",
    operation_id = "update_presence",
    summary = "Report the caller's presence, and fetch everyone's",
    description = "Records the report for the calling client (from the `client` parameter, else the User-Agent). With `ping_only=true` the answer is the bare envelope. With `last_update_id` or `slim_presence=true` the answer is the modern format keyed by user id, and `last_update_id > 0` returns only users changed after it; otherwise the legacy format keyed by email. Bots may not call it.",
    request_body(content = UpdatePresenceParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The report is durable; everyone's presence unless `ping_only`", body = UpdatePresenceResponse,
         example = json!({"result": "success", "msg": "", "server_timestamp": 1795915346.599898,
             "presence_last_update_id": 2, "presences": {
                 "1": {"active_timestamp": 1795915346, "idle_timestamp": 1795915346},
                 "2": {"active_timestamp": 1795915300, "idle_timestamp": 1795915346}}})),
        (status = 400, description = "`Missing 'status' argument`, `Invalid status: {status}`, a parameter that does not parse, `Invalid client name` (a `client` parameter that is empty, over 30 characters, `aggregated`, `active_timestamp` or `idle_timestamp` in any case, or holds a bidirectional control, an invisible or control character; a User-Agent never fails), or `This endpoint does not accept bot requests.`", body = ErrorBody,
         example = json!({"result": "error", "msg": "Missing 'status' argument", "code": "REQUEST_VARIABLE_MISSING", "var_name": "status"})),
    )
)]
pub async fn update_presence(
    service: &Service,
    caller: &Caller,
    params: &Params,
    user_agent: Option<&[u8]>,
) -> HandlerResult {
    // A bot is refused whatever it sent.
    caller.check_may_report()?;
    // `new_user_input` is read and left unused: Zulip uses it only for
    // activity statistics.
    let UpdatePresenceParams {
        status,
        ping_only,
        new_user_input: _,
        slim_presence,
        last_update_id,
        history_limit_days,
    } = params.read()?;
    let client = request_client(params, user_agent)?;

    service
        .report(caller, &client, status == ReportedStatus::Active)
        .await?;

    if ping_only {
        // The bare envelope: `EmptySuccess` writes the same bytes.
        return empty_success(params);
    }
    let format = if last_update_id.is_some() || slim_presence {
        Format::Modern
    } else {
        Format::Legacy
    };
    let since = last_update_id.map(UpdateId);
    let answer = service.realm_presence(Reader::User(caller), format, since, history_limit_days);
    // The largest id returned; with nobody returned, the id the caller sent, or -1.
    let last = answer.last_update_id.or(since);
    let ignored = params.ignored();
    let head = presences_head(
        ignored.as_deref(),
        service.now_f64(),
        Some(last.unwrap_or(UpdateId::NONE_ON_WIRE).0),
    );
    Ok(around_presences(head, answer))
}

/// `GET /users/me`.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "users",
    operation_id = "get_own_user",
    summary = "The caller's own account",
    responses(
        (status = 200, description = "The caller", body = GetOwnUserResponse,
         links(
             ("own_presence" = (operation_id = "get_user_presence",
                 parameters(("user_id_or_email" = "$response.body#/user_id")),
                 description = "The caller's own presence, by id"))
         ),
         example = json!({"result": "success", "msg": "", "user_id": 1, "email": "alice@acme.test",
             "full_name": "Alice", "is_bot": false, "is_active": true, "date_joined": "2026-11-29T01:22:26+00:00"})),
    )
)]
pub fn own_user(service: &Service, caller: &Caller) -> HandlerResult {
    let user = service.own_user(caller)?;
    ok(&GetOwnUserResponse {
        result: SuccessTag::Success,
        msg: String::new(),
        user_id: user.user_id,
        email: user.email,
        full_name: user.full_name,
        is_bot: user.is_bot,
        is_active: user.is_active,
        date_joined: user.date_joined,
    })
}

/// `GET /users`.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    operation_id = "get_users",
    summary = "Every user of the caller's realm, by id",
    description = "Bots and deactivated users included; use it to put names to the emails of presence answers. With an embed key (a page), only active users, and bots only with `include_bots=true`.",
    params(
        ("include_bots" = Option<bool>, Query, description = "With an embed key: list bots too (default false). A user's answer lists bots whatever it says, but it must be a JSON boolean all the same"),
        ("client_gravatar" = Option<bool>, Query, description = "Zulip's: accepted and checked as a JSON boolean, without effect (the answer has no avatars)"),
    ),
    responses(
        (status = 200, description = "The realm's users", body = GetUsersResponse,
         links(
             ("first_member_presence" = (operation_id = "get_user_presence",
                 parameters(("user_id_or_email" = "$response.body#/members/0/user_id")),
                 description = "The presence of the first user listed"))
         ),
         example = json!({"result": "success", "msg": "", "members": [
             {"user_id": 1, "email": "alice@acme.test", "full_name": "Alice", "is_bot": false, "is_active": true, "date_joined": "2026-11-29T01:22:26+00:00"},
             {"user_id": 2, "email": "bob@acme.test", "full_name": "Bob", "is_bot": false, "is_active": true, "date_joined": "2026-11-29T01:22:26+00:00"}]})),
    )
)]
pub fn users(service: &Service, reader: Reader<'_>, params: &Params) -> HandlerResult {
    // Checked for everyone, as documented; the service heeds it for pages.
    let GetUsersParams { include_bots } = params.read()?;
    ok(&GetUsersResponse {
        result: SuccessTag::Success,
        msg: String::new(),
        ignored_parameters_unsupported: params.ignored(),
        members: service.users(reader, include_bots),
    })
}

/// The bare success envelope, with the parameters no handler read.
pub(super) fn empty_success(params: &Params) -> HandlerResult {
    let Some(ignored) = params.ignored() else {
        // Nearly every ping: the same bytes every time, never serialized.
        return Ok(json_bytes(
            StatusCode::OK,
            Bytes::from_static(EMPTY_SUCCESS),
        ));
    };
    ok(&EmptySuccess {
        result: SuccessTag::Success,
        msg: String::new(),
        ignored_parameters_unsupported: Some(ignored),
    })
}

/// [`EmptySuccess`] with nothing ignored, as serde writes it.
const EMPTY_SUCCESS: &[u8] = br#"{"result":"success","msg":""}"#;

/// `PATCH /settings`.
#[utoipa::path(
    patch,
    path = "/api/v1/settings",
    tag = "users",
    operation_id = "update_settings",
    summary = "Change the caller's presence settings",
    description = "Turning `presence_enabled` off makes the caller look offline at once; turning it on records the caller active now, on the calling client.",
    request_body(content = Option<UpdateSettingsParams>, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The settings are durable", body = EmptySuccess,
         example = json!({"result": "success", "msg": ""})),
        (status = 400, description = "A value that is not a JSON boolean, or `Invalid client name` (a `client` parameter only; a User-Agent never fails)", body = ErrorBody,
         example = json!({"result": "error", "msg": "presence_enabled is not a boolean", "code": "BAD_REQUEST"})),
    )
)]
pub async fn update_settings(
    service: &Service,
    caller: &Caller,
    params: &Params,
    user_agent: Option<&[u8]>,
) -> HandlerResult {
    let UpdateSettingsParams {
        presence_enabled,
        enable_offline_push_notifications,
    } = params.read()?;
    let client = Arc::from(request_client(params, user_agent)?);
    service
        .update_settings(
            caller,
            client,
            presence_enabled,
            enable_offline_push_notifications,
        )
        .await?;
    empty_success(params)
}

/// `POST /users/me/apns_device_token`.
#[utoipa::path(
    post,
    path = "/api/v1/users/me/apns_device_token",
    tag = "push devices",
    operation_id = "add_apns_token",
    summary = "Register an Apple device",
    request_body(content = AddApnsTokenParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Registered (again, if it was)", body = EmptySuccess,
         links(
             ("remove" = (operation_id = "remove_apns_token",
                 request_body = json!({"token": "$request.body#/token"}),
                 description = "Removes the device just registered"))
         ),
         example = json!({"result": "success", "msg": ""})),
        (status = 400, description = "`Missing 'token' argument`, `Missing 'appid' argument`, `appid has invalid format`, `appid is too long (limit: 255 characters)`, `Empty or invalid length token` (empty, or over 4096 characters), `Invalid APNS token` (not pairs of hexadecimal digits), or `Too many push devices (the limit is 32); remove one first` (a new device past `max_devices_per_user`)", body = ErrorBody,
         example = json!({"result": "error", "msg": "Invalid APNS token", "code": "BAD_REQUEST"})),
    )
)]
pub async fn add_apns_token(service: &Service, caller: &Caller, params: &Params) -> HandlerResult {
    let AddApnsTokenParams { token, appid } = params.read()?;
    service.add_apns_device(caller, &token, &appid).await?;
    empty_success(params)
}

/// `POST /users/me/android_gcm_reg_id`.
#[utoipa::path(
    post,
    path = "/api/v1/users/me/android_gcm_reg_id",
    tag = "push devices",
    operation_id = "add_android_token",
    summary = "Register an Android device",
    request_body(content = AddAndroidTokenParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Registered (again, if it was)", body = EmptySuccess,
         links(
             ("remove" = (operation_id = "remove_android_token",
                 request_body = json!({"token": "$request.body#/token"}),
                 description = "Removes the device just registered"))
         ),
         example = json!({"result": "success", "msg": ""})),
        (status = 400, description = "`Missing 'token' argument`, `Empty or invalid length token` (empty, or over 4096 characters), `Invalid FCM token` (a NUL), or `Too many push devices (the limit is 32); remove one first` (a new device past `max_devices_per_user`)", body = ErrorBody,
         example = json!({"result": "error", "msg": "Empty or invalid length token", "code": "BAD_REQUEST"})),
    )
)]
pub async fn add_android_token(
    service: &Service,
    caller: &Caller,
    params: &Params,
) -> HandlerResult {
    let AddAndroidTokenParams { token } = params.read()?;
    service.add_fcm_device(caller, &token).await?;
    empty_success(params)
}

/// `DELETE /users/me/apns_device_token`.
#[utoipa::path(
    delete,
    path = "/api/v1/users/me/apns_device_token",
    tag = "push devices",
    operation_id = "remove_apns_token",
    summary = "Remove an Apple device",
    request_body(content = RemoveApnsTokenParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Removed", body = EmptySuccess, example = json!({"result": "success", "msg": ""})),
        (status = 400, description = "`Missing 'token' argument`, `Empty or invalid length token`, `Invalid APNS token`, or `Token does not exist`", body = ErrorBody,
         example = json!({"result": "error", "msg": "Token does not exist", "code": "BAD_REQUEST"})),
    )
)]
pub async fn remove_apns_token(
    service: &Service,
    caller: &Caller,
    params: &Params,
) -> HandlerResult {
    let RemoveApnsTokenParams { token } = params.read()?;
    service
        .remove_device(caller, DeviceKind::Apns, &token)
        .await?;
    empty_success(params)
}

/// `DELETE /users/me/android_gcm_reg_id`.
#[utoipa::path(
    delete,
    path = "/api/v1/users/me/android_gcm_reg_id",
    tag = "push devices",
    operation_id = "remove_android_token",
    summary = "Remove an Android device",
    request_body(content = RemoveAndroidTokenParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Removed", body = EmptySuccess, example = json!({"result": "success", "msg": ""})),
        (status = 400, description = "`Missing 'token' argument`, `Empty or invalid length token`, `Invalid FCM token`, or `Token does not exist`", body = ErrorBody,
         example = json!({"result": "error", "msg": "Token does not exist", "code": "BAD_REQUEST"})),
    )
)]
pub async fn remove_android_token(
    service: &Service,
    caller: &Caller,
    params: &Params,
) -> HandlerResult {
    let RemoveAndroidTokenParams { token } = params.read()?;
    service
        .remove_device(caller, DeviceKind::Fcm, &token)
        .await?;
    empty_success(params)
}

#[cfg(test)]
mod tests {
    use presence_types::UserPresence;
    use presence_types::endpoints::update_presence::Presences;

    use super::*;

    #[test]
    fn the_single_user_answer_is_what_serde_writes() {
        let presence = r#"{"active_timestamp":5,"idle_timestamp":7,"aggregated":{"client":"website","status":"idle","timestamp":7},"website":{"client":"website","status":"idle","timestamp":7,"pushable":false}}"#;
        let parsed: UserPresence = serde_json::from_str(presence).unwrap();
        for ignored in [None, Some(vec!["a".to_owned(), "b\"c".to_owned()])] {
            for timestamp in [1795915350.25, 1795915350.0, 0.1] {
                let written = user_presence_answer(ignored.as_deref(), timestamp, |out| {
                    out.extend_from_slice(presence.as_bytes());
                    Ok::<(), ()>(())
                })
                .unwrap();
                let expected = serde_json::to_vec(&GetUserPresenceResponse {
                    result: SuccessTag::Success,
                    msg: String::new(),
                    ignored_parameters_unsupported: ignored.clone(),
                    server_timestamp: Some(timestamp),
                    presence: parsed.clone(),
                })
                .unwrap();
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(expected).unwrap()
                );
            }
        }
        let refused = user_presence_answer(None, 1.0, |_| Err("no data"));
        assert_eq!(refused, Err("no data"));
    }

    #[test]
    fn the_realm_wide_heads_are_what_serde_writes() {
        // The envelope with an empty `presences`, less its `{}}`.
        let head_of = |envelope: Vec<u8>| envelope[..envelope.len() - 3].to_vec();
        let realm = serde_json::to_vec(&GetRealmPresenceResponse {
            result: SuccessTag::Success,
            msg: String::new(),
            server_timestamp: 1795915350.5,
            presences: BTreeMap::new(),
        })
        .unwrap();
        assert_eq!(presences_head(None, 1795915350.5, None), head_of(realm));
        for ignored in [None, Some(vec!["x".to_owned()])] {
            for last in [-1, 0, 42, i64::MAX] {
                let update = serde_json::to_vec(&UpdatePresenceResponse {
                    result: SuccessTag::Success,
                    msg: String::new(),
                    ignored_parameters_unsupported: ignored.clone(),
                    server_timestamp: Some(0.25),
                    presence_last_update_id: Some(last),
                    presences: Some(Presences::Modern(BTreeMap::new())),
                })
                .unwrap();
                assert_eq!(
                    presences_head(ignored.as_deref(), 0.25, Some(last)),
                    head_of(update)
                );
            }
        }
    }

    #[test]
    fn the_bare_envelope_is_what_serde_writes() {
        let serialized = serde_json::to_vec(&EmptySuccess {
            result: SuccessTag::Success,
            msg: String::new(),
            ignored_parameters_unsupported: None,
        })
        .unwrap();
        assert_eq!(serialized, EMPTY_SUCCESS);
        let ping = serde_json::to_vec(&UpdatePresenceResponse {
            result: SuccessTag::Success,
            msg: String::new(),
            ignored_parameters_unsupported: None,
            server_timestamp: None,
            presence_last_update_id: None,
            presences: None,
        })
        .unwrap();
        assert_eq!(ping, EMPTY_SUCCESS, "a ping's answer is the bare envelope");
    }
}
