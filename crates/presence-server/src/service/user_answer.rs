//! The single-user GET's `presence` object, written as JSON straight from a
//! user's records.
//!
//! It is the most frequent read, and building the wire structs of
//! [`views`](super::views) (a map of owned entries) to hand them to serde
//! cost most of what the request did. This writes the same bytes serde
//! would write for [`UserPresence`](presence_types::UserPresence) (the
//! property test below holds it to that) with no allocation but the
//! output's: the modern timestamps, `aggregated`, then one entry per
//! client in name order.

use presence_types::{PresenceStatus, is_reserved_client_name};

use super::model::{ClientRecord, UserEntry};
use super::rules::legacy_status;
use super::views;
use crate::json_out::{write_int, write_str};

/// The most clients sorted on the stack; a user with more (only if the
/// per-user bound was raised that far) sorts on the heap.
const STACK_CLIENTS: usize = 16;

/// Appends `user`'s presence object to `out`, with `aggregated.status`
/// `offline` if `offline(timestamp)` says so; false, appending nothing, if
/// the user has no records.
pub fn write(user: &UserEntry, offline: impl Fn(i64) -> bool, out: &mut Vec<u8>) -> bool {
    let Some(best) = views::aggregated_record(&user.clients) else {
        return false;
    };
    let modern = views::modern(user);
    out.extend_from_slice(b"{\"active_timestamp\":");
    write_int(out, modern.active_timestamp);
    out.extend_from_slice(b",\"idle_timestamp\":");
    write_int(out, modern.idle_timestamp);
    let (status, timestamp) = legacy_status(best.times());
    let status = if offline(timestamp) {
        PresenceStatus::Offline
    } else {
        status
    };
    out.extend_from_slice(b",\"aggregated\":{\"client\":");
    write_str(out, &best.client);
    write_status_and_time(out, status, timestamp);
    out.push(b'}');
    let pushable = user.pushable();
    for_each_by_name(&user.clients, |record| {
        if is_reserved_client_name(&record.client) {
            return;
        }
        let (status, timestamp) = legacy_status(record.times());
        out.push(b',');
        let name = out.len();
        write_str(out, &record.client);
        let name = name..out.len();
        out.extend_from_slice(b":{\"client\":");
        // The name again, as just written: no second look for escapes.
        out.extend_from_within(name);
        write_status_and_time(out, status, timestamp);
        out.extend_from_slice(if pushable {
            b",\"pushable\":true}"
        } else {
            b",\"pushable\":false}"
        });
    });
    out.push(b'}');
    true
}

/// Calls `f` on each record in client-name order.
fn for_each_by_name(records: &[ClientRecord], mut f: impl FnMut(&ClientRecord)) {
    let by_name = |a: &&ClientRecord, b: &&ClientRecord| a.client.cmp(&b.client);
    if records.len() <= STACK_CLIENTS {
        let mut sorted: [Option<&ClientRecord>; STACK_CLIENTS] = [None; STACK_CLIENTS];
        for (slot, record) in sorted.iter_mut().zip(records) {
            *slot = Some(record);
        }
        let sorted = &mut sorted[..records.len()];
        sorted.sort_unstable_by(|a, b| by_name(&a.expect("filled"), &b.expect("filled")));
        sorted.iter().flatten().for_each(|r| f(r));
    } else {
        let mut sorted: Vec<&ClientRecord> = records.iter().collect();
        sorted.sort_unstable_by(by_name);
        sorted.into_iter().for_each(f);
    }
}

fn write_status_and_time(out: &mut Vec<u8>, status: PresenceStatus, timestamp: i64) {
    out.extend_from_slice(match status {
        PresenceStatus::Active => b",\"status\":\"active\",\"timestamp\":",
        PresenceStatus::Idle => b",\"status\":\"idle\",\"timestamp\":",
        PresenceStatus::Offline => b",\"status\":\"offline\",\"timestamp\":",
    });
    write_int(out, timestamp);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use presence_types::UserPresence;
    use proptest::prelude::*;

    use super::*;
    use crate::ids::UserId;
    use crate::service::model::Account;
    use crate::service::rules::Times;
    use crate::store::UserRow;

    fn user(records: Vec<ClientRecord>, pushable: bool) -> UserEntry {
        let mut entry = UserEntry::new(Account::from(UserRow {
            id: UserId(1),
            realm_id: crate::ids::RealmId(1),
            email: "a@x.test".to_owned(),
            full_name: "A".to_owned(),
            is_bot: false,
            is_active: true,
            date_joined: 1_000,
            api_key_hash: [0; 32],
            presence_enabled: true,
            enable_offline_push_notifications: true,
            push_devices: u32::from(pushable),
        }));
        entry.clients = records.into_boxed_slice();
        entry
    }

    /// What serde writes for the same user, by way of the wire structs.
    fn through_serde(user: &UserEntry, offline: impl Fn(i64) -> bool) -> Option<Vec<u8>> {
        let mut legacy = views::legacy(user)?;
        if offline(legacy.aggregated.timestamp) {
            legacy.aggregated.status = PresenceStatus::Offline;
        }
        let presence = UserPresence::new(legacy, views::modern(user));
        Some(serde_json::to_vec(&presence).unwrap())
    }

    fn written(user: &UserEntry, offline: impl Fn(i64) -> bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        write(user, offline, &mut out).then_some(out)
    }

    #[test]
    fn a_user_without_records_writes_nothing() {
        let mut out = b"x".to_vec();
        assert!(!write(&user(Vec::new(), false), |_| false, &mut out));
        assert_eq!(out, b"x");
    }

    #[test]
    fn names_that_need_escaping_are_escaped() {
        let times = Times {
            last_connected: 2_000,
            last_active: Some(2_000),
        };
        let records = vec![
            ClientRecord::new(Arc::from("say \"hi\" \\o/"), times),
            ClientRecord::new(Arc::from("Zulip\u{e9}"), times),
        ];
        let user = user(records, true);
        assert_eq!(written(&user, |_| false), through_serde(&user, |_| false));
    }

    proptest! {
        #[test]
        fn the_bytes_are_serdes(
            records in proptest::collection::vec(
                (
                    prop_oneof![
                        Just("website"), Just("ZulipMobile"), Just("a"), Just("b"),
                        Just("aggregated"), Just("IDLE_TIMESTAMP"), Just("z\"q"),
                    ],
                    0i64..3_000,
                    proptest::option::of(0i64..3_000),
                ),
                0..6,
            ),
            pushable in any::<bool>(),
            threshold in 0i64..3_000,
        ) {
            let mut seen = std::collections::HashSet::new();
            let records: Vec<ClientRecord> = records
                .into_iter()
                .filter(|(name, ..)| seen.insert(*name))
                .map(|(name, connected, active)| {
                    let times = Times {
                        last_connected: connected.max(1),
                        last_active: active.map(|a| a.max(1)),
                    };
                    ClientRecord::new(Arc::from(name), times)
                })
                .collect();
            let user = user(records, pushable);
            let offline = |timestamp: i64| timestamp < threshold;
            prop_assert_eq!(written(&user, offline), through_serde(&user, offline));
        }
    }
}
