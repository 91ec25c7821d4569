//! `GET /api/v1/users/me` and `GET /api/v1/users`: who the caller is, and who else is there.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::SuccessTag;

/// A user as listed by `GET /users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// The user's id, unique on the server.
    pub user_id: i64,
    /// The user's email, unique within the organization.
    pub email: String,
    /// The user's name.
    pub full_name: String,
    /// Whether the user is a bot (bots have no presence).
    pub is_bot: bool,
    /// Whether the account is active.
    pub is_active: bool,
    /// When the account was created, ISO 8601 with time zone (e.g. `2026-11-29T01:02:03+00:00`).
    pub date_joined: String,
}

/// The query parameters of `GET /users`.
///
/// Zulip's `client_gravatar` is accepted and checked as a boolean, and has
/// no effect: the answer has no avatars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetUsersParams {
    /// With an embed key (a page): list bots too. A user's answer lists
    /// bots whatever it says.
    #[serde(default)]
    pub include_bots: bool,
}

/// The response of `GET /users/me`: the caller's own account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GetOwnUserResponse {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// The caller's id.
    pub user_id: i64,
    /// The caller's email.
    pub email: String,
    /// The caller's name.
    pub full_name: String,
    /// Whether the caller is a bot.
    pub is_bot: bool,
    /// Always true: a deactivated user cannot call.
    pub is_active: bool,
    /// When the account was created, ISO 8601 with time zone.
    pub date_joined: String,
}

/// The response of `GET /users`: every user of the caller's organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GetUsersResponse {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// Parameters the request carried that this endpoint does not know, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ignored_parameters_unsupported: Option<Vec<String>>,
    /// The users, ordered by id, deactivated ones included (with `is_active: false`).
    pub members: Vec<User>,
}
