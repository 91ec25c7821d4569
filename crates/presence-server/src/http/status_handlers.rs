//! The custom status endpoints (docs/PROTOCOL.md §6.17): `POST
//! /users/me/status` and `GET /users/{user_id}/status`, and the mark that
//! tells Zulip clients which parts of their schemas are this server's own.

use std::sync::Arc;

use presence_types::ErrorBody;
use presence_types::SuccessTag;
use presence_types::endpoints::EmptySuccess;
use presence_types::endpoints::user_status::{GetUserStatusResponse, UpdateStatusParams};
use utoipa::Modify;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi as Document, RefOr};

use super::client_name::request_client;
use super::handlers::{HandlerResult, empty_success, ok};
use super::params::Params;
use crate::service::{Caller, Reader, Service};

/// `POST /users/me/status`.
#[utoipa::path(
    post,
    path = "/api/v1/users/me/status",
    tag = "users",
    operation_id = "update_status",
    summary = "Change the caller's custom status",
    description = "Only the parameters given change. `status_text` is trimmed and at most 60 characters; empty clears it. `emoji_name` (empty clears the emoji) comes with `emoji_code` and `reaction_type`, which are looked up from the name when absent. The deprecated `away` turns `presence_enabled` off (`true`) or on (`false`). `expires_at` is this server's extension (`x-presence-extension`), which Zulip does not have: the server clears the status text and emoji by itself at that time. Every queue of the realm that asked for `user_status` receives an event with what changed. Bots may not call it.",
    request_body(content = UpdateStatusParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The status is durable", body = EmptySuccess,
         example = json!({"result": "success", "msg": ""})),
        (status = 400, description = "`Client did not pass any new values.`, `status_text is too long (limit: 60 characters)`, `Client must pass emoji_name if they pass either emoji_code or reaction_type.`, `Emoji '{name}' does not exist`, `Invalid emoji name.`, `Invalid emoji code.`, `Invalid emoji type.`, `Invalid custom emoji.`, `This endpoint does not accept bot requests.`, a parameter that does not parse, or this server's `expires_at must be in the future` and `expires_at needs status_text or emoji_name`", body = ErrorBody,
         example = json!({"result": "error", "msg": "status_text is too long (limit: 60 characters)", "code": "BAD_REQUEST"})),
    )
)]
pub async fn update_status(
    service: &Service,
    caller: &Caller,
    params: &Params,
    user_agent: Option<&[u8]>,
) -> HandlerResult {
    // A bot is refused whatever it sent, as Zulip's `human_users_only` does.
    caller.check_may_report()?;
    let update: UpdateStatusParams = params.read()?;
    let client = Arc::from(request_client(params, user_agent)?);
    service.update_status(caller, client, update).await?;
    empty_success(params)
}

/// `GET /users/{user_id}/status`.
#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}/status",
    tag = "users",
    operation_id = "get_user_status",
    summary = "A user's custom status",
    description = "The status of a user of the caller's realm: `away` while the user's presence is off, and the text and emoji that are set (an empty object when none is). `expires_at` is this server's extension (`x-presence-extension`). As in Zulip, the endpoint reads no query parameter and lists none.",
    params(
        ("user_id" = i64, Path, description = "The user's id", example = 7),
    ),
    responses(
        (status = 200, description = "The user's status", body = GetUserStatusResponse,
         example = json!({"result": "success", "msg": "", "status": {
             "status_text": "In a meeting", "emoji_name": "calendar", "emoji_code": "1f4c5",
             "reaction_type": "unicode_emoji"}})),
        (status = 400, description = "`No such user` (unknown, a bot, or in another realm) or `User is deactivated`", body = ErrorBody,
         example = json!({"result": "error", "msg": "No such user", "code": "BAD_REQUEST"})),
        (status = 404, description = "A `user_id` that is not all digits names no path, as in Zulip", body = ErrorBody,
         example = json!({"result": "error", "msg": "Endpoint does not exist.", "code": "NOT_FOUND"})),
    )
)]
pub fn get_user_status(service: &Service, reader: Reader<'_>, user_id: &str) -> HandlerResult {
    let status = service.user_status(reader, user_id)?;
    ok(&GetUserStatusResponse {
        result: SuccessTag::Success,
        msg: String::new(),
        ignored_parameters_unsupported: None,
        status,
    })
}

/// The schemas whose `expires_at` is this server's extension.
const EXTENDED: &[&str] = &["UpdateStatusParams", "UserStatus", "UserStatusEvent"];

/// Marks `expires_at` as an extension (`x-presence-extension: true`)
/// wherever it appears, so that a reader of the document can tell it from
/// Zulip's fields.
pub struct StatusExtension;

impl Modify for StatusExtension {
    fn modify(&self, openapi: &mut Document) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in EXTENDED {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*name) else {
                continue;
            };
            if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut("expires_at") {
                let mark: Extensions = [("x-presence-extension", serde_json::json!(true))]
                    .into_iter()
                    .collect();
                field
                    .extensions
                    .get_or_insert_with(Extensions::default)
                    .merge(mark);
            }
        }
    }
}
