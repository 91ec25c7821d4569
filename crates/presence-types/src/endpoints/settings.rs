//! `PATCH /api/v1/settings`: the caller's presence-related settings.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The parameters of `PATCH /settings`; each is optional and changes only that setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateSettingsParams {
    /// Whether others see the caller's presence. Off makes the caller look
    /// offline at once; on records the caller as active now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub presence_enabled: Option<bool>,
    /// Whether the caller wants push notifications while offline; with a
    /// registered device it makes the caller `pushable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub enable_offline_push_notifications: Option<bool>,
}
