//! `GET /api/v1/realm/presence`: everyone's presence in the caller's organization.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::SuccessTag;
use crate::presence::LegacyPresence;

/// The response of `GET /realm/presence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GetRealmPresenceResponse {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// The server's clock when the answer was made (Unix seconds, fractional).
    pub server_timestamp: f64,
    /// Legacy presence keyed by email: active, non-bot users with a report
    /// within the history window.
    pub presences: BTreeMap<String, LegacyPresence>,
}
