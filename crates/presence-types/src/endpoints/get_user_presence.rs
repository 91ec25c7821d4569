//! `GET /api/v1/users/{user_id_or_email}/presence`: one user's presence, per client.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::SuccessTag;
use crate::presence::LegacyPresence;

/// The response of `GET /users/{user_id_or_email}/presence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GetUserPresenceResponse {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// The user's presence in the legacy format; `aggregated.status` is
    /// `offline` when the user's latest report is older than the offline threshold.
    pub presence: LegacyPresence,
}
