//! The presence formats of docs/PROTOCOL.md §5.
//!
//! Two shapes exist on the wire:
//! - the legacy format, one entry per client (`website`, `ZulipMobile`, ...)
//!   plus an `aggregated` entry, keyed by email in realm-wide answers;
//! - the modern format (Zulip 7.0+), two timestamps per user, keyed by user id.
//!
//! The single-user GET answers both at once, the modern timestamps beside
//! the legacy entries, as Zulip does since 12.0 ([`UserPresence`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Names that are keys of a presence object and so can never be a
/// client's: `aggregated` in the legacy object, and the two modern
/// timestamps that stand beside the entries in the single-user GET
/// ([`UserPresence`]). Compared without regard to ASCII case.
pub const RESERVED_CLIENT_NAMES: [&str; 3] = ["aggregated", "active_timestamp", "idle_timestamp"];

/// Whether `name` is one of [`RESERVED_CLIENT_NAMES`], in any ASCII case.
pub fn is_reserved_client_name(name: &str) -> bool {
    RESERVED_CLIENT_NAMES
        .iter()
        .any(|reserved| name.eq_ignore_ascii_case(reserved))
}

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

/// One user's presence as the single-user GET answers it (docs/PROTOCOL.md
/// §6.2): the legacy object with the modern timestamps beside it, as Zulip
/// answers since 12.0 (feature level 497), so that readers of either format
/// find what they read.
///
/// On the wire this is one flat JSON object, e.g.
/// `{"active_timestamp": 1795915346, "idle_timestamp": 1795915346,
/// "aggregated": {...}, "website": {...}}`. The timestamps may be absent
/// only in answers of older servers, which send the legacy object alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserPresence {
    /// As in the modern format: Unix seconds of the user's last active
    /// report on any client (the user's `date_joined` if there was none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub active_timestamp: Option<i64>,
    /// As in the modern format: Unix seconds of the user's last report of
    /// any kind on any client (the user's `date_joined` if there was none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = true, nullable = false)]
    pub idle_timestamp: Option<i64>,
    /// The most recent client entry, as in the legacy format; its status
    /// is `offline` when its timestamp is older than the offline threshold.
    pub aggregated: AggregatedPresence,
    /// One entry per client, keyed by client name.
    #[serde(flatten)]
    pub clients: BTreeMap<String, ClientPresence>,
}

impl UserPresence {
    /// Both formats of one user in one object.
    ///
    /// An entry under a reserved name is left out: one key cannot hold
    /// both an entry and a timestamp, and only a record made before those
    /// names were refused can have one.
    pub fn new(legacy: LegacyPresence, modern: ModernPresence) -> Self {
        let mut clients = legacy.clients;
        clients.retain(|name, _| !is_reserved_client_name(name));
        UserPresence {
            active_timestamp: Some(modern.active_timestamp),
            idle_timestamp: Some(modern.idle_timestamp),
            aggregated: legacy.aggregated,
            clients,
        }
    }

    /// The legacy object alone.
    pub fn legacy(&self) -> LegacyPresence {
        LegacyPresence {
            aggregated: self.aggregated.clone(),
            clients: self.clients.clone(),
        }
    }

    /// The modern timestamps, when the server sent them.
    pub fn modern(&self) -> Option<ModernPresence> {
        Some(ModernPresence {
            active_timestamp: self.active_timestamp?,
            idle_timestamp: self.idle_timestamp?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_single_user_object_reads_back_both_formats() {
        let text = r#"{"active_timestamp": 90, "idle_timestamp": 100,
            "aggregated": {"client": "website", "status": "idle", "timestamp": 100},
            "website": {"client": "website", "status": "idle", "timestamp": 100, "pushable": false}}"#;
        let presence: UserPresence = serde_json::from_str(text).unwrap();
        assert_eq!(
            presence.modern(),
            Some(ModernPresence {
                active_timestamp: 90,
                idle_timestamp: 100
            })
        );
        assert_eq!(presence.clients.len(), 1, "the timestamps are not clients");
        let again: serde_json::Value = serde_json::to_value(&presence).unwrap();
        let original: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn an_entry_under_a_timestamps_name_is_left_out() {
        let entry = |client: &str| ClientPresence {
            client: client.to_owned(),
            status: PresenceStatus::Idle,
            timestamp: 5,
            pushable: false,
        };
        let legacy = LegacyPresence {
            aggregated: AggregatedPresence {
                client: "website".to_owned(),
                status: PresenceStatus::Idle,
                timestamp: 5,
            },
            clients: ["website", "idle_timestamp"]
                .into_iter()
                .map(|c| (c.to_owned(), entry(c)))
                .collect(),
        };
        let modern = ModernPresence {
            active_timestamp: 1,
            idle_timestamp: 5,
        };
        let both = UserPresence::new(legacy, modern);
        assert_eq!(both.clients.keys().collect::<Vec<_>>(), ["website"]);
        let text = serde_json::to_string(&both).unwrap();
        assert_eq!(text.matches("idle_timestamp").count(), 1, "{text}");
    }

    #[test]
    fn reserved_names_are_any_case() {
        assert!(is_reserved_client_name("Aggregated"));
        assert!(is_reserved_client_name("ACTIVE_TIMESTAMP"));
        assert!(!is_reserved_client_name("active"));
    }

    #[test]
    fn an_older_servers_legacy_object_still_reads() {
        let text = r#"{"aggregated": {"client": "website", "status": "active", "timestamp": 7},
            "website": {"client": "website", "status": "active", "timestamp": 7, "pushable": false}}"#;
        let presence: UserPresence = serde_json::from_str(text).unwrap();
        assert_eq!(presence.modern(), None);
        assert_eq!(presence.legacy().clients["website"].timestamp, 7);
    }
}
