//! The presence formats of docs/PROTOCOL.md §5.
//!
//! Two shapes exist on the wire:
//! - the legacy format, one entry per client (`website`, `ZulipMobile`, ...)
//!   plus an `aggregated` entry, keyed by email in realm-wide answers;
//! - the modern format (Zulip 7.0+), two timestamps per user, keyed by user id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The status a client reports in `POST /users/me/presence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportedStatus {
    /// The user interacted with the client recently.
    Active,
    /// The client is connected but the user is away from it.
    Idle,
}

impl ReportedStatus {
    /// Parses the wire word (`active` or `idle`); anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(ReportedStatus::Active),
            "idle" => Some(ReportedStatus::Idle),
            _ => None,
        }
    }
}

/// A status as shown to readers: what was reported, or `offline` when the
/// last report is older than the server's offline threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    /// Green: the user is using a client now.
    Active,
    /// Orange: connected, not using it.
    Idle,
    /// No report within the offline threshold. Only the single-user GET
    /// writes it (into `aggregated.status`); other views leave that to the reader.
    Offline,
}

/// One client's entry in the legacy format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClientPresence {
    /// The client name (`website`, `ZulipMobile`, `ZulipPython`, ...).
    pub client: String,
    /// `active` if the client's last active report is within 70 s of its last
    /// report of any kind, else `idle`.
    pub status: PresenceStatus,
    /// Unix seconds: the last active report when `active`, the last report of
    /// any kind when `idle`.
    pub timestamp: i64,
    /// Whether the user can be reached by a push notification: at least one
    /// registered push device and offline push notifications enabled.
    pub pushable: bool,
}

/// The `aggregated` entry of the legacy format: the client entry with the
/// latest timestamp, without `pushable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AggregatedPresence {
    /// The client whose entry was chosen.
    pub client: String,
    /// That client's status, or `offline` in the single-user GET when the
    /// timestamp is older than the offline threshold.
    pub status: PresenceStatus,
    /// That client's timestamp (Unix seconds).
    pub timestamp: i64,
}

/// A user's presence in the legacy format: `aggregated` plus one key per client.
///
/// On the wire this is one flat JSON object, e.g.
/// `{"aggregated": {...}, "website": {...}, "ZulipMobile": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LegacyPresence {
    /// The most recent client entry (largest timestamp; ties: `active` first,
    /// then the smaller client name).
    pub aggregated: AggregatedPresence,
    /// One entry per client, keyed by client name.
    #[serde(flatten)]
    pub clients: BTreeMap<String, ClientPresence>,
}

/// A user's presence in the modern format (Zulip 7.0+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModernPresence {
    /// Unix seconds of the user's last active report on any client (the
    /// user's `date_joined` if there was none).
    pub active_timestamp: i64,
    /// Unix seconds of the user's last report of any kind on any client (the
    /// user's `date_joined` if there was none).
    pub idle_timestamp: i64,
}
