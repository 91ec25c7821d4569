//! `GET /api/v1/server_settings`: what this server is, without authentication.
//!
//! The official Python client reads `zulip_version` and `zulip_feature_level`
//! from here before its first real call.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::SuccessTag;

/// The response of `GET /server_settings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerSettingsResponse {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// The server's name and version, e.g. `"presence-server 0.1.0"`.
    pub zulip_version: String,
    /// The highest Zulip API feature level whose presence behaviour this server implements.
    pub zulip_feature_level: i64,
    /// The Zulip release this server's behaviour follows.
    pub zulip_merge_base: String,
    /// Whether the server sends push notifications (never: it only tracks devices).
    pub push_notifications_enabled: bool,
    /// Whether the client is too old for this server (never: any Zulip client may call).
    pub is_incompatible: bool,
    /// Which ways of logging in are enabled, by Zulip's method names.
    pub authentication_methods: BTreeMap<String, bool>,
}
