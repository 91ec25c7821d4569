//! Custom status: `POST /api/v1/users/me/status` and `GET
//! /api/v1/users/{user_id}/status`, Zulip's user status API ("In a
//! meeting", an emoji), and the `user_status` event and register data.
//!
//! A status is a text of at most 60 characters and an emoji (name, code
//! and reaction type). Zulip's deprecated `away` is the inverse of the
//! user's `presence_enabled` setting. `expires_at` is this server's own
//! extension: the time at which the server clears the status by itself.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::SuccessTag;

/// The longest `status_text`, in characters (Zulip's limit).
pub const MAX_STATUS_TEXT_CHARS: usize = 60;

/// The reaction type of Unicode emoji, and of a status without emoji.
pub const UNICODE_EMOJI: &str = "unicode_emoji";

/// The parameters of `POST /users/me/status`; only those given change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateStatusParams {
    /// The status text; empty clears it. At most 60 characters once
    /// trimmed of surrounding whitespace (so the limit is not a length
    /// of what is sent), and without a NUL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "In a meeting")]
    pub status_text: Option<String>,
    /// Deprecated in Zulip: `true` turns the caller's `presence_enabled`
    /// off, `false` turns it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub away: Option<bool>,
    /// The emoji's name (`calendar`); empty clears the emoji.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "calendar")]
    pub emoji_name: Option<String>,
    /// The emoji's code: for `unicode_emoji`, its code points in
    /// lower-case hexadecimal joined by `-` (`1f4c5`). Looked up from the
    /// name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "1f4c5")]
    pub emoji_code: Option<String>,
    /// `unicode_emoji`, `realm_emoji` or `zulip_extra_emoji`. Looked up
    /// from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "unicode_emoji")]
    pub reaction_type: Option<String>,
    /// This server's extension, ignored by Zulip: Unix seconds at which the
    /// server clears the status text and emoji by itself. Only with
    /// `status_text` or `emoji_name`, and later than now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = 1_800_003_600)]
    pub expires_at: Option<i64>,
}

/// A user's status as answers show it: only what is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserStatus {
    /// Present, and `true`, when the user has `presence_enabled` off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub away: Option<bool>,
    /// The status text, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub status_text: Option<String>,
    /// The emoji's name, when there is an emoji.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub emoji_name: Option<String>,
    /// The emoji's code, with `emoji_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub emoji_code: Option<String>,
    /// The emoji's reaction type, with `emoji_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reaction_type: Option<String>,
    /// This server's extension: when the status clears by itself (Unix
    /// seconds), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub expires_at: Option<i64>,
}

impl UserStatus {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == UserStatus::default()
    }
}

/// The response of `GET /users/{user_id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GetUserStatusResponse {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// Parameters the request carried that this endpoint does not know, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ignored_parameters_unsupported: Option<Vec<String>>,
    /// The user's status; empty when none was ever set.
    pub status: UserStatus,
}

/// A `user_status` event: what changed in a user's status. Only the
/// fields that changed are present; the three emoji fields come together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserStatusEvent {
    /// The user whose status changed.
    pub user_id: i64,
    /// The new `away` (the inverse of `presence_enabled`), if it was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub away: Option<bool>,
    /// The new status text (empty: cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub status_text: Option<String>,
    /// The new emoji's name (empty: cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub emoji_name: Option<String>,
    /// The new emoji's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub emoji_code: Option<String>,
    /// The new emoji's reaction type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reaction_type: Option<String>,
    /// This server's extension: when the new status clears by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub expires_at: Option<i64>,
    /// The event's id in its queue.
    pub id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_shows_only_what_is_set() {
        let status = UserStatus {
            status_text: Some("In a meeting".to_owned()),
            ..UserStatus::default()
        };
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"status_text":"In a meeting"}"#
        );
        assert!(UserStatus::default().is_empty() && !status.is_empty());
    }
}
