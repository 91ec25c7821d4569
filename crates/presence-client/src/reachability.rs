//! "Is this person reachable?": a presence answer turned into green, orange
//! or nothing, the way Zulip's web app decides it.
//!
//! The web app (`web/src/presence.ts`) keeps two timestamps per user, the
//! last active report and the last idle report, and then:
//!
//! - **active** if the active timestamp is younger than the offline threshold,
//!   even when there is a newer idle one: some client was in use recently;
//! - else **idle** if the idle timestamp is younger than the threshold;
//! - else **offline**.
//!
//! Ages are measured against the server's clock (`server_timestamp`) where
//! an answer carries it, and "younger" is strict: an age equal to the
//! threshold is already too old. A missing timestamp counts as the epoch.
//!
//! From the legacy per-client format, the web app takes the active timestamp
//! as the latest `timestamp` among entries whose status is `active`, and the
//! idle timestamp as the latest among `idle` entries. The modern format
//! carries the two timestamps directly.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use presence_types::{
    ClientPresence, LegacyPresence, ModernPresence, PresenceStatus, UserPresence,
};

/// Zulip's default offline threshold (`OFFLINE_THRESHOLD_SECS`): a user whose
/// last report is this old is offline.
pub const DEFAULT_OFFLINE_THRESHOLD: Duration = Duration::from_secs(200);

/// Whether a user can be reached now, as the web app's buddy list shows it.
///
/// The order is the buddy list's: active before idle before offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reachability {
    /// Green: a client was in use within the offline threshold.
    Active,
    /// Orange: a client was connected within the threshold, but not in use.
    Idle,
    /// No report within the threshold.
    Offline,
}

impl Reachability {
    /// Decides reachability from a presence answer (`&UserPresence`,
    /// `&LegacyPresence` or `&ModernPresence`), the server's offline
    /// threshold, and the time now in Unix seconds (preferably the
    /// answer's `server_timestamp`).
    ///
    /// ```
    /// use presence_client::{DEFAULT_OFFLINE_THRESHOLD, Reachability};
    /// use presence_client::types::ModernPresence;
    ///
    /// let presence = ModernPresence { active_timestamp: 1_000, idle_timestamp: 1_150 };
    /// let at = |now| Reachability::of(&presence, DEFAULT_OFFLINE_THRESHOLD, now);
    /// assert_eq!(at(1_100.0), Reachability::Active);
    /// assert_eq!(at(1_300.0), Reachability::Idle);
    /// assert_eq!(at(1_400.0), Reachability::Offline);
    /// ```
    pub fn of(
        presence: impl Into<ActivityTimestamps>,
        offline_threshold: Duration,
        now: f64,
    ) -> Reachability {
        presence.into().reachability(offline_threshold, now)
    }

    /// The word for it: `active`, `idle` or `offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reachability::Active => "active",
            Reachability::Idle => "idle",
            Reachability::Offline => "offline",
        }
    }
}

/// The two timestamps the web app keeps per user (its "raw presence").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityTimestamps {
    /// Unix seconds of the latest report while the user was active.
    pub active_timestamp: Option<i64>,
    /// Unix seconds of the latest report while the user was idle.
    pub idle_timestamp: Option<i64>,
}

impl ActivityTimestamps {
    /// The web app's decision (see the module documentation).
    pub fn reachability(&self, offline_threshold: Duration, now: f64) -> Reachability {
        let threshold = offline_threshold.as_secs_f64();
        let recent = |timestamp: Option<i64>| now - (timestamp.unwrap_or(0) as f64) < threshold;
        if recent(self.active_timestamp) {
            Reachability::Active
        } else if recent(self.idle_timestamp) {
            Reachability::Idle
        } else {
            Reachability::Offline
        }
    }

    /// When the user was last seen (the later of the two timestamps), as the
    /// web app shows it for offline users ("Active 3 hours ago").
    pub fn last_active(&self) -> Option<i64> {
        match (self.active_timestamp, self.idle_timestamp) {
            (Some(a), Some(i)) => Some(a.max(i)),
            (a, i) => a.or(i),
        }
    }

    fn record(&mut self, status: PresenceStatus, timestamp: i64) {
        let slot = match status {
            PresenceStatus::Active => &mut self.active_timestamp,
            PresenceStatus::Idle => &mut self.idle_timestamp,
            // Only the single-user GET's `aggregated` says offline; it is
            // a verdict, not a report, and carries no new timestamp.
            PresenceStatus::Offline => return,
        };
        *slot = Some(slot.map_or(timestamp, |seen| seen.max(timestamp)));
    }
}

impl From<&LegacyPresence> for ActivityTimestamps {
    fn from(presence: &LegacyPresence) -> Self {
        let mut timestamps = ActivityTimestamps::default();
        for entry in presence.clients.values() {
            timestamps.record(entry.status, entry.timestamp);
        }
        // `aggregated` repeats one client's entry; it matters only if the
        // per-client entries are absent.
        if presence.clients.is_empty() {
            let aggregated = &presence.aggregated;
            timestamps.record(aggregated.status, aggregated.timestamp);
        }
        timestamps
    }
}

impl From<&UserPresence> for ActivityTimestamps {
    /// The single-user GET's object, read from its per-client entries as
    /// the legacy object is, so that one user reads the same here as in a
    /// realm-wide legacy answer.
    fn from(presence: &UserPresence) -> Self {
        ActivityTimestamps::from(&presence.legacy())
    }
}

impl From<&ClientPresence> for ActivityTimestamps {
    /// One client's entry on its own, for per-client detail.
    fn from(entry: &ClientPresence) -> Self {
        let mut timestamps = ActivityTimestamps::default();
        timestamps.record(entry.status, entry.timestamp);
        timestamps
    }
}

impl From<&ModernPresence> for ActivityTimestamps {
    fn from(presence: &ModernPresence) -> Self {
        ActivityTimestamps {
            active_timestamp: Some(presence.active_timestamp),
            idle_timestamp: Some(presence.idle_timestamp),
        }
    }
}

/// The local clock in Unix seconds, for answers that carry no
/// `server_timestamp` (an older server's single-user GET).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use presence_types::AggregatedPresence;

    use super::*;

    const T: Duration = DEFAULT_OFFLINE_THRESHOLD;

    fn entry(client: &str, status: PresenceStatus, timestamp: i64) -> (String, ClientPresence) {
        (
            client.to_owned(),
            ClientPresence {
                client: client.to_owned(),
                status,
                timestamp,
                pushable: false,
            },
        )
    }

    fn legacy(entries: &[(&str, PresenceStatus, i64)]) -> LegacyPresence {
        let clients: BTreeMap<String, ClientPresence> =
            entries.iter().map(|(c, s, t)| entry(c, *s, *t)).collect();
        let best = clients
            .values()
            .max_by_key(|e| e.timestamp)
            .expect("at least one entry");
        LegacyPresence {
            aggregated: AggregatedPresence {
                client: best.client.clone(),
                status: best.status,
                timestamp: best.timestamp,
            },
            clients,
        }
    }

    #[test]
    fn modern_follows_the_web_app() {
        let p = ModernPresence {
            active_timestamp: 1_000,
            idle_timestamp: 1_000,
        };
        assert_eq!(Reachability::of(&p, T, 1_000.0), Reachability::Active);
        assert_eq!(Reachability::of(&p, T, 1_199.9), Reachability::Active);
        // Strictly younger than the threshold: 200 s old is offline already.
        assert_eq!(Reachability::of(&p, T, 1_200.0), Reachability::Offline);
    }

    #[test]
    fn a_recent_active_report_beats_a_newer_idle_one() {
        let p = ModernPresence {
            active_timestamp: 1_000,
            idle_timestamp: 1_190,
        };
        assert_eq!(Reachability::of(&p, T, 1_195.0), Reachability::Active);
        assert_eq!(Reachability::of(&p, T, 1_201.0), Reachability::Idle);
        assert_eq!(Reachability::of(&p, T, 1_389.0), Reachability::Idle);
        assert_eq!(Reachability::of(&p, T, 1_390.0), Reachability::Offline);
    }

    #[test]
    fn the_threshold_is_the_callers() {
        let p = ModernPresence {
            active_timestamp: 1_000,
            idle_timestamp: 1_000,
        };
        let short = Duration::from_secs(60);
        assert_eq!(Reachability::of(&p, short, 1_059.0), Reachability::Active);
        assert_eq!(Reachability::of(&p, short, 1_060.0), Reachability::Offline);
    }

    #[test]
    fn legacy_takes_the_latest_active_and_idle_entries() {
        use PresenceStatus::{Active, Idle};
        let p = legacy(&[
            ("website", Idle, 1_300),
            ("ZulipMobile", Active, 1_150),
            ("ZulipPython", Active, 1_100),
        ]);
        let t = ActivityTimestamps::from(&p);
        assert_eq!(t.active_timestamp, Some(1_150));
        assert_eq!(t.idle_timestamp, Some(1_300));
        assert_eq!(t.last_active(), Some(1_300));
        assert_eq!(Reachability::of(&p, T, 1_340.0), Reachability::Active);
        assert_eq!(Reachability::of(&p, T, 1_360.0), Reachability::Idle);
        assert_eq!(Reachability::of(&p, T, 1_500.0), Reachability::Offline);
        let mobile = &p.clients["ZulipMobile"];
        assert_eq!(Reachability::of(mobile, T, 1_340.0), Reachability::Active);
        assert_eq!(Reachability::of(mobile, T, 1_360.0), Reachability::Offline);
    }

    #[test]
    fn legacy_with_only_idle_clients_is_never_active() {
        let p = legacy(&[("website", PresenceStatus::Idle, 1_000)]);
        let t = ActivityTimestamps::from(&p);
        assert_eq!(t.active_timestamp, None);
        assert_eq!(Reachability::of(&p, T, 1_000.0), Reachability::Idle);
        assert_eq!(Reachability::of(&p, T, 1_200.0), Reachability::Offline);
    }

    #[test]
    fn the_servers_offline_verdict_adds_no_timestamp() {
        let mut p = legacy(&[("website", PresenceStatus::Active, 1_000)]);
        p.aggregated.status = PresenceStatus::Offline;
        assert_eq!(ActivityTimestamps::from(&p).active_timestamp, Some(1_000));
        p.clients.clear();
        assert_eq!(ActivityTimestamps::from(&p), ActivityTimestamps::default());
        assert_eq!(Reachability::of(&p, T, 1_000.0), Reachability::Offline);
        assert_eq!(ActivityTimestamps::default().last_active(), None);
    }

    #[test]
    fn order_is_the_buddy_lists() {
        let mut all = [
            Reachability::Offline,
            Reachability::Active,
            Reachability::Idle,
        ];
        all.sort();
        assert_eq!(all.map(Reachability::as_str), ["active", "idle", "offline"]);
    }
}
