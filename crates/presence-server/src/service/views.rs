//! The views of docs/PROTOCOL.md §5: a user's records turned into the wire formats.

use std::collections::BTreeMap;

use presence_types::{
    AggregatedPresence, ClientPresence, LegacyPresence, ModernPresence, PresenceStatus,
};

use super::model::UserEntry;
use super::rules::legacy_status;

/// A user's presence in the legacy format, or `None` if the user has no records.
///
/// `aggregated` is the entry with the largest timestamp; on a tie an
/// `active` entry wins, then the smaller client name.
pub fn legacy(user: &UserEntry) -> Option<LegacyPresence> {
    let pushable = user.pushable();
    let mut clients = BTreeMap::new();
    let mut best: Option<(i64, bool, &str)> = None;
    for record in &user.clients {
        let (status, timestamp) = legacy_status(record.times());
        let active = status == PresenceStatus::Active;
        let better = match best {
            None => true,
            Some((ts, was_active, name)) => {
                (timestamp, active) > (ts, was_active)
                    || ((timestamp, active) == (ts, was_active) && *record.client < *name)
            }
        };
        if better {
            best = Some((timestamp, active, &record.client));
        }
        clients.insert(
            record.client.to_string(),
            ClientPresence {
                client: record.client.to_string(),
                status,
                timestamp,
                pushable,
            },
        );
    }
    let (_, _, name) = best?;
    let chosen = &clients[name];
    let aggregated = AggregatedPresence {
        client: chosen.client.clone(),
        status: chosen.status,
        timestamp: chosen.timestamp,
    };
    Some(LegacyPresence {
        aggregated,
        clients,
    })
}

/// A user's presence in the modern format: the latest active and the latest
/// connected time over all clients, `date_joined` standing in for a missing one.
pub fn modern(user: &UserEntry) -> ModernPresence {
    let joined = user.account.date_joined;
    ModernPresence {
        active_timestamp: user.last_active().unwrap_or(joined),
        idle_timestamp: user.last_connected().unwrap_or(joined),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ids::{RealmId, UserId};
    use crate::service::model::{Account, ClientRecord};
    use crate::service::rules::Times;

    fn user(records: &[(&str, i64, Option<i64>)]) -> UserEntry {
        let mut entry = UserEntry::new(Account::from(crate::store::UserRow {
            id: UserId(1),
            realm_id: RealmId(1),
            email: "a@example.com".into(),
            full_name: "A".into(),
            is_bot: false,
            is_active: true,
            date_joined: 50,
            api_key_hash: [0; 32],
            presence_enabled: true,
            enable_offline_push_notifications: true,
            push_devices: 0,
        }));
        entry.clients = records
            .iter()
            .map(|(c, lc, la)| {
                ClientRecord::new(
                    Arc::from(*c),
                    Times {
                        last_connected: *lc,
                        last_active: *la,
                    },
                )
            })
            .collect();
        entry
    }

    #[test]
    fn aggregated_is_the_latest_entry() {
        let u = user(&[("website", 1000, Some(1000)), ("ZulipMobile", 1200, None)]);
        let p = legacy(&u).unwrap();
        assert_eq!(p.aggregated.client, "ZulipMobile");
        assert_eq!(p.aggregated.status, PresenceStatus::Idle);
        assert_eq!(p.aggregated.timestamp, 1200);
        assert_eq!(p.clients.len(), 2);
    }

    #[test]
    fn aggregated_ties_prefer_active_then_smaller_name() {
        let u = user(&[
            ("b", 1000, Some(1000)),
            ("a", 1000, None),
            ("c", 1000, Some(1000)),
        ]);
        let p = legacy(&u).unwrap();
        assert_eq!(p.aggregated.client, "b");
        assert_eq!(p.aggregated.status, PresenceStatus::Active);
    }

    #[test]
    fn no_records_no_legacy_presence() {
        assert!(legacy(&user(&[])).is_none());
    }

    #[test]
    fn modern_takes_maxima_and_falls_back_to_date_joined() {
        let u = user(&[("website", 1000, Some(900)), ("ZulipMobile", 1200, None)]);
        assert_eq!(
            modern(&u),
            ModernPresence {
                active_timestamp: 900,
                idle_timestamp: 1200
            }
        );
        let u = user(&[("website", 1000, None)]);
        assert_eq!(modern(&u).active_timestamp, 50);
    }
}
