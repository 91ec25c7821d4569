//! The views of docs/PROTOCOL.md §5: a user's records turned into the wire
//! formats; and a user's account as the users endpoints show it.

use std::collections::BTreeMap;

use presence_types::endpoints::users::User;
use presence_types::{
    AggregatedPresence, ClientPresence, LegacyPresence, ModernPresence, PresenceStatus,
};

use super::model::{Account, ClientRecord, UserEntry};
use super::rules::legacy_status;
use crate::ids::UserId;
use crate::json_out::write_int;

/// A user's presence in the legacy format, or `None` if the user has no records.
///
/// `aggregated` is the entry [`aggregated_record`] picks.
pub fn legacy(user: &UserEntry) -> Option<LegacyPresence> {
    let best = aggregated_record(&user.clients)?;
    let pushable = user.pushable();
    let clients: BTreeMap<String, ClientPresence> = user
        .clients
        .iter()
        .map(|record| {
            let (status, timestamp) = legacy_status(record.times());
            let entry = ClientPresence {
                client: record.client.to_string(),
                status,
                timestamp,
                pushable,
            };
            (record.client.to_string(), entry)
        })
        .collect();
    let (status, timestamp) = legacy_status(best.times());
    let aggregated = AggregatedPresence {
        client: best.client.to_string(),
        status,
        timestamp,
    };
    Some(LegacyPresence {
        aggregated,
        clients,
    })
}

/// The record the legacy `aggregated` entry shows: the largest timestamp;
/// on a tie an `active` one, then the smaller client name.
pub(super) fn aggregated_record(records: &[ClientRecord]) -> Option<&ClientRecord> {
    let key = |r: &ClientRecord| {
        let (status, timestamp) = legacy_status(r.times());
        (timestamp, status == PresenceStatus::Active)
    };
    records.iter().reduce(|best, r| {
        let (ours, theirs) = (key(r), key(best));
        if ours > theirs || (ours == theirs && *r.client < *best.client) {
            r
        } else {
            best
        }
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

/// Users' presences in the modern format as the JSON object serde writes
/// for a map keyed by the ids' decimal text: in the order of that text
/// (`"10"` before `"9"`). Written by hand: an incremental answer is made
/// for every poll, and holds a user or two.
pub fn modern_map(mut presences: Vec<(UserId, ModernPresence)>) -> Vec<u8> {
    let key = |id: UserId| {
        let mut text = itoa::Buffer::new();
        let digits = text.format(id.0).as_bytes();
        let mut key = [0u8; 20];
        key[..digits.len()].copy_from_slice(digits);
        (key, digits.len())
    };
    // Ids are unique: no two keys are equal.
    presences.sort_unstable_by(|(a, _), (b, _)| {
        let ((a, a_len), (b, b_len)) = (key(*a), key(*b));
        a[..a_len].cmp(&b[..b_len])
    });
    let mut out = Vec::with_capacity(2 + presences.len() * 64);
    out.push(b'{');
    for (n, (id, presence)) in presences.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let (text, len) = key(*id);
        out.push(b'"');
        out.extend_from_slice(&text[..len]);
        out.extend_from_slice(br#"":{"active_timestamp":"#);
        write_int(&mut out, presence.active_timestamp);
        out.extend_from_slice(br#","idle_timestamp":"#);
        write_int(&mut out, presence.idle_timestamp);
        out.push(b'}');
    }
    out.push(b'}');
    out
}

/// A user as `GET /users` and `GET /users/me` show it.
pub(super) fn user_view(account: &Account) -> User {
    User {
        user_id: account.id.0,
        email: account.email().to_owned(),
        full_name: account.full_name().to_owned(),
        is_bot: account.is_bot,
        is_active: account.is_active,
        date_joined: iso8601(account.date_joined),
    }
}

/// Formats Unix seconds as ISO 8601 in UTC, the way Zulip writes `date_joined`
/// (`2026-11-29T01:02:03+00:00`).
pub fn iso8601(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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

    proptest::proptest! {
        #[test]
        fn a_modern_map_is_what_serde_writes(
            entries in proptest::collection::btree_map(
                proptest::num::i64::ANY,
                (proptest::num::i64::ANY, proptest::num::i64::ANY),
                0..12,
            ),
            reversed: bool,
        ) {
            let mut presences: Vec<(UserId, ModernPresence)> = entries
                .iter()
                .map(|(&id, &(active, idle))| {
                    let presence = ModernPresence { active_timestamp: active, idle_timestamp: idle };
                    (UserId(id), presence)
                })
                .collect();
            if reversed {
                presences.reverse();
            }
            let by_text: BTreeMap<String, ModernPresence> = presences
                .iter()
                .map(|(id, p)| (id.to_string(), *p))
                .collect();
            proptest::prop_assert_eq!(
                modern_map(presences),
                serde_json::to_vec(&by_text).unwrap()
            );
        }
    }

    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(iso8601(1_796_000_523), "2026-11-30T01:02:03+00:00");
    }
}
