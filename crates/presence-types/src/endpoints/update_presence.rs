//! `POST /api/v1/users/me/presence`: report the caller's presence and fetch everyone's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::SuccessTag;
use crate::presence::{LegacyPresence, ModernPresence, ReportedStatus};

/// The parameters of `POST /users/me/presence`, after parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdatePresenceParams {
    /// The caller's status on the calling client. Required.
    pub status: ReportedStatus,
    /// Report only: answer with the bare envelope, without anyone's presence.
    #[serde(default)]
    pub ping_only: bool,
    /// Whether the user did something since the last report (accepted and
    /// not otherwise used, as in Zulip).
    #[serde(default)]
    pub new_user_input: bool,
    /// Deprecated: answer in the modern format keyed by user id.
    #[serde(default)]
    pub slim_presence: bool,
    /// Answer in the modern format; above 0, only with users changed after this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_id: Option<i64>,
    /// Only users with a report in this many days (default 14; 0 returns nobody).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_limit_days: Option<i64>,
}

/// Everyone's presence in one of the two formats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Presences {
    /// Modern format keyed by user id (as a string).
    Modern(BTreeMap<String, ModernPresence>),
    /// Legacy format keyed by email.
    Legacy(BTreeMap<String, LegacyPresence>),
}

/// The response of `POST /users/me/presence`.
///
/// With `ping_only=true` only the envelope is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpdatePresenceResponse {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// Parameters the request carried that this endpoint does not know, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored_parameters_unsupported: Option<Vec<String>>,
    /// The server's clock when the answer was made (Unix seconds, fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_timestamp: Option<f64>,
    /// The largest update id among the returned users; if none is returned,
    /// the `last_update_id` sent, or -1 when none was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_last_update_id: Option<i64>,
    /// Everyone's presence (absent with `ping_only=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presences: Option<Presences>,
}
