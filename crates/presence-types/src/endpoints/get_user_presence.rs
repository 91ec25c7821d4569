//! `GET /api/v1/users/{user_id_or_email}/presence`: one user's presence, per
//! client, with the modern timestamps beside the legacy entries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::SuccessTag;
use crate::presence::UserPresence;

/// The response of `GET /users/{user_id_or_email}/presence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GetUserPresenceResponse {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// The query parameters the request carried (`client` aside), sorted:
    /// this endpoint reads none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ignored_parameters_unsupported: Option<Vec<String>>,
    /// The server's clock when it read the presence (Unix seconds,
    /// fractional), as in Zulip 12.0 (feature level 497). Absent only in
    /// answers of older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub server_timestamp: Option<f64>,
    /// The user's presence: one entry per client, `aggregated` (whose
    /// status is `offline` when the user's latest report is older than the
    /// offline threshold), and the modern `active_timestamp` and
    /// `idle_timestamp`.
    pub presence: UserPresence,
}
