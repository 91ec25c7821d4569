//! One function per endpoint: parameters in, service call, wire type out.
//!
//! Handlers know the contract's parameter names and response shapes; the
//! rules themselves live in the service.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use presence_types::endpoints::EmptySuccess;
use presence_types::endpoints::get_realm_presence::GetRealmPresenceResponse;
use presence_types::endpoints::get_user_presence::GetUserPresenceResponse;
use presence_types::endpoints::server_settings::ServerSettingsResponse;
use presence_types::endpoints::update_presence::{Presences, UpdatePresenceResponse};
use presence_types::endpoints::users::{GetOwnUserResponse, GetUsersResponse};
use presence_types::{ReportedStatus, SuccessTag};
use serde::Serialize;

use super::client_name::client_name;
use super::error::ApiError;
use super::params::Params;
use crate::service::{Caller, Service};
use crate::store::DeviceKind;

/// The Zulip API feature level whose presence behaviour this server
/// implements in full: 263 (Zulip 9.0) added `last_update_id` and
/// `presence_last_update_id`. (Level 288's `history_limit_days` is served
/// too, but the same level's `/register` counterpart comes with events.)
pub const FEATURE_LEVEL: i64 = 263;

/// What a handler answers.
pub type HandlerResult = Result<Response<Full<Bytes>>, ApiError>;

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).expect("wire types always serialize");
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("a valid response")
}

fn ok<T: Serialize>(body: &T) -> HandlerResult {
    Ok(json(StatusCode::OK, body))
}

/// `GET /server_settings`.
pub fn server_settings() -> HandlerResult {
    let version = format!("presence-server {}", env!("CARGO_PKG_VERSION"));
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
pub fn get_user_presence(service: &Service, caller: &Caller, target: &str) -> HandlerResult {
    let presence = service.user_presence(caller, target)?;
    ok(&GetUserPresenceResponse {
        result: SuccessTag::Success,
        msg: String::new(),
        presence,
    })
}

/// `GET /realm/presence`.
pub fn get_realm_presence(service: &Service, caller: &Caller) -> HandlerResult {
    let (presences, _) = service.realm_presence_legacy(caller, None);
    ok(&GetRealmPresenceResponse {
        result: SuccessTag::Success,
        msg: String::new(),
        presences,
        server_timestamp: service.now_f64(),
    })
}

/// `POST /users/me/presence`: report, then (unless `ping_only`) answer with everyone.
pub async fn update_presence(
    service: &Service,
    caller: &Caller,
    params: &Params,
    user_agent: Option<&[u8]>,
) -> HandlerResult {
    if caller.is_bot {
        return Err(crate::service::ServiceError::BotReport.into());
    }
    let status = params.required_str("status")?;
    let status = ReportedStatus::parse(status)
        .ok_or_else(|| ApiError::bad_request(format!("Invalid status: {status}")))?;
    let ping_only = params.bool("ping_only")?.unwrap_or(false);
    // Accepted for compatibility; Zulip uses it only for activity statistics.
    let _new_user_input = params.bool("new_user_input")?.unwrap_or(false);
    let slim_presence = params.bool("slim_presence")?.unwrap_or(false);
    let last_update_id = params.int("last_update_id")?;
    let history_limit_days = params.int("history_limit_days")?;
    let client = client_name(params.str("client"), user_agent)?;

    service
        .report(caller, client, status == ReportedStatus::Active)
        .await?;

    let mut response = UpdatePresenceResponse {
        result: SuccessTag::Success,
        msg: String::new(),
        ignored_parameters_unsupported: params.ignored(),
        server_timestamp: None,
        presence_last_update_id: None,
        presences: None,
    };
    if ping_only {
        return ok(&response);
    }
    let (presences, last_id) = if last_update_id.is_some() || slim_presence {
        let (map, id) = service.realm_presence_modern(caller, last_update_id, history_limit_days);
        (Presences::Modern(map), id)
    } else {
        let (map, id) = service.realm_presence_legacy(caller, history_limit_days);
        (Presences::Legacy(map), id)
    };
    response.server_timestamp = Some(service.now_f64());
    response.presence_last_update_id = Some(last_id);
    response.presences = Some(presences);
    ok(&response)
}

/// `GET /users/me`.
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
pub fn users(service: &Service, caller: &Caller) -> HandlerResult {
    ok(&GetUsersResponse {
        result: SuccessTag::Success,
        msg: String::new(),
        members: service.users(caller),
    })
}

fn empty_success(params: &Params) -> HandlerResult {
    ok(&EmptySuccess {
        result: SuccessTag::Success,
        msg: String::new(),
        ignored_parameters_unsupported: params.ignored(),
    })
}

/// `PATCH /settings`.
pub async fn update_settings(
    service: &Service,
    caller: &Caller,
    params: &Params,
    user_agent: Option<&[u8]>,
) -> HandlerResult {
    let presence_enabled = params.bool("presence_enabled")?;
    let push = params.bool("enable_offline_push_notifications")?;
    let client = client_name(params.str("client"), user_agent)?;
    service
        .update_settings(caller, client, presence_enabled, push)
        .await?;
    empty_success(params)
}

/// The longest push token accepted, as in Zulip.
const MAX_TOKEN_LEN: usize = 4096;

fn token(params: &Params, kind: DeviceKind) -> Result<String, ApiError> {
    let token = params.required_str("token")?;
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::bad_request("Empty or invalid length token"));
    }
    if kind == DeviceKind::Apns {
        // APNs tokens are hexadecimal; store them in one case so that the
        // same device is not registered twice.
        if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::bad_request("Invalid APNS token"));
        }
        return Ok(token.to_ascii_lowercase());
    }
    Ok(token.to_owned())
}

/// `POST /users/me/apns_device_token` and `/users/me/android_gcm_reg_id`.
pub async fn add_device(
    service: &Service,
    caller: &Caller,
    params: &Params,
    kind: DeviceKind,
) -> HandlerResult {
    let token = token(params, kind)?;
    let appid = match kind {
        DeviceKind::Apns => {
            let appid = params.required_str("appid")?;
            let valid = !appid.is_empty()
                && appid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !valid {
                return Err(ApiError::bad_request("appid has invalid format"));
            }
            Some(appid.to_owned())
        }
        DeviceKind::Fcm => None,
    };
    service.add_device(caller, kind, token, appid).await?;
    empty_success(params)
}

/// `DELETE /users/me/apns_device_token` and `/users/me/android_gcm_reg_id`.
pub async fn remove_device(
    service: &Service,
    caller: &Caller,
    params: &Params,
    kind: DeviceKind,
) -> HandlerResult {
    let token = token(params, kind)?;
    service.remove_device(caller, kind, token).await?;
    empty_success(params)
}
