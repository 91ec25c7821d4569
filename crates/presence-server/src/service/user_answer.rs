//! The single-user GET's `presence` object, written as JSON straight from a
//! user's records, and kept as bytes until the user changes.
//!
//! It is the most frequent read, and building the wire structs of
//! [`views`](super::views) (a map of owned entries) to hand them to serde
//! cost most of what the request did. This writes the same bytes serde
//! would write for [`UserPresence`](presence_types::UserPresence) (the
//! property test below holds it to that): the modern timestamps,
//! `aggregated`, then one entry per client in name order.
//!
//! Readers ask for the same user again and again between its changes (a
//! directory page, a script polling a colleague), so a realm keeps what was
//! written ([`UserAnswers`]) and a read copies it. The one part of the
//! object that moves with the clock, `aggregated.status` turning `offline`
//! past the threshold, is not kept: the copy says `offline` in its place
//! when the kept timestamp is too old at the time of the read.

use std::ops::Range;

use hashbrown::HashMap;
use parking_lot::Mutex;
use presence_types::{PresenceStatus, is_reserved_client_name};

use super::model::{ClientRecord, UserEntry};
use super::rules::legacy_status;
use super::views;
use crate::ids::UserId;
use crate::json_out::{write_int, write_str};

/// The most clients sorted on the stack; a user with more (only if the
/// per-user bound was raised that far) sorts on the heap.
const STACK_CLIENTS: usize = 16;

/// The most objects a realm keeps. Each is a few hundred bytes; past this
/// bound a read writes its object afresh and keeps nothing, until changes
/// make room (a change drops the changed user's object).
pub const KEPT_PER_REALM: usize = 131_072;

/// A user's presence object as written from its records, with
/// `aggregated.status` as the records say it (never `offline`).
#[derive(Debug, Clone)]
pub struct Written {
    bytes: Box<[u8]>,
    /// Where the value of `aggregated.status` is in `bytes`, without its
    /// quotes.
    status: Range<u32>,
    /// The timestamp `aggregated` is judged offline by.
    timestamp: i64,
}

impl Written {
    /// The object of `user`; `None` if the user has no records.
    pub fn of(user: &UserEntry) -> Option<Written> {
        let best = views::aggregated_record(&user.clients)?;
        let mut out = Vec::with_capacity(96 + 112 * user.clients.len());
        let modern = views::modern(user);
        out.extend_from_slice(b"{\"active_timestamp\":");
        write_int(&mut out, modern.active_timestamp);
        out.extend_from_slice(b",\"idle_timestamp\":");
        write_int(&mut out, modern.idle_timestamp);
        let (status, timestamp) = legacy_status(best.times());
        out.extend_from_slice(b",\"aggregated\":{\"client\":");
        write_str(&mut out, &best.client);
        let status_range = write_status_and_time(&mut out, status, timestamp);
        out.push(b'}');
        let pushable = user.pushable();
        for_each_by_name(&user.clients, |record| {
            if is_reserved_client_name(&record.client) {
                return;
            }
            let (status, timestamp) = legacy_status(record.times());
            out.push(b',');
            let name = out.len();
            write_str(&mut out, &record.client);
            let name = name..out.len();
            out.extend_from_slice(b":{\"client\":");
            // The name again, as just written: no second look for escapes.
            out.extend_from_within(name);
            write_status_and_time(&mut out, status, timestamp);
            out.extend_from_slice(if pushable {
                b",\"pushable\":true}"
            } else {
                b",\"pushable\":false}"
            });
        });
        out.push(b'}');
        Some(Written {
            bytes: out.into_boxed_slice(),
            status: position(status_range.start)..position(status_range.end),
            timestamp,
        })
    }

    /// Appends the object to `out`, with `aggregated.status` `offline` if
    /// `offline(timestamp)` says so.
    pub fn append(&self, offline: impl Fn(i64) -> bool, out: &mut Vec<u8>) {
        if offline(self.timestamp) {
            let (start, end) = (self.status.start as usize, self.status.end as usize);
            out.extend_from_slice(&self.bytes[..start]);
            out.extend_from_slice(status_word(PresenceStatus::Offline));
            out.extend_from_slice(&self.bytes[end..]);
        } else {
            out.extend_from_slice(&self.bytes);
        }
    }
}

/// Appends an entry's `status` and `timestamp` fields; where the status's
/// value is in `out`, without its quotes.
fn write_status_and_time(
    out: &mut Vec<u8>,
    status: PresenceStatus,
    timestamp: i64,
) -> Range<usize> {
    out.extend_from_slice(b",\"status\":\"");
    let start = out.len();
    out.extend_from_slice(status_word(status));
    let status = start..out.len();
    out.extend_from_slice(b"\",\"timestamp\":");
    write_int(out, timestamp);
    status
}

/// An offset into an object, which is far shorter than 4 GiB (a user has a
/// bounded number of clients, each name bounded).
fn position(offset: usize) -> u32 {
    u32::try_from(offset).expect("a presence object is small")
}

/// A realm's written presence objects, by user: at most
/// [`KEPT_PER_REALM`], each dropped when its user changes.
///
/// Readers share the realm's read lock, so the map has a lock of its own;
/// the writer, holding the realm's write lock, reaches it without locking.
#[derive(Debug, Default)]
pub struct UserAnswers {
    kept: Mutex<HashMap<UserId, Written>>,
}

impl UserAnswers {
    /// Appends `user`'s presence object to `out`, with `aggregated.status`
    /// `offline` if `offline(timestamp)` says so, from the kept copy if
    /// there is one (a fresh one is kept if there is room); false,
    /// appending nothing, if the user has no records.
    pub fn append(
        &self,
        user: &UserEntry,
        offline: impl Fn(i64) -> bool,
        out: &mut Vec<u8>,
    ) -> bool {
        let id = user.account.id;
        let mut kept = self.kept.lock();
        if let Some(written) = kept.get(&id) {
            written.append(offline, out);
            return true;
        }
        let Some(written) = Written::of(user) else {
            return false;
        };
        written.append(offline, out);
        if kept.len() < KEPT_PER_REALM {
            kept.insert(id, written);
        }
        true
    }

    /// Drops a user's object: the user's records or account changed.
    pub fn forget(&mut self, user_id: UserId) {
        self.kept.get_mut().remove(&user_id);
    }

    /// Drops every object.
    pub fn clear(&mut self) {
        self.kept.get_mut().clear();
    }

    /// How many objects are kept.
    pub fn count(&self) -> usize {
        self.kept.lock().len()
    }
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

/// A status as its JSON string's text.
fn status_word(status: PresenceStatus) -> &'static [u8] {
    match status {
        PresenceStatus::Active => b"active",
        PresenceStatus::Idle => b"idle",
        PresenceStatus::Offline => b"offline",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use presence_types::UserPresence;
    use proptest::prelude::*;

    use super::*;
    use crate::ids::{UpdateId, UserId};
    use crate::service::model::testing::realm_with_users;
    use crate::service::model::{Account, Realm};
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

    /// Appends `user`'s object, written afresh; false if it has none.
    fn write(user: &UserEntry, offline: impl Fn(i64) -> bool, out: &mut Vec<u8>) -> bool {
        match Written::of(user) {
            Some(written) => {
                written.append(offline, out);
                true
            }
            None => false,
        }
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

    /// `user`'s object as `realm` answers it, at a clock that makes
    /// timestamps before `threshold` offline.
    fn answered(realm: &Realm, user: UserId, threshold: i64) -> Vec<u8> {
        let mut out = Vec::new();
        let entry = realm.users.get(&user).expect("a user");
        assert!(
            realm
                .user_answers
                .append(entry, |t| t < threshold, &mut out)
        );
        out
    }

    fn one_record(client: &str, at: i64) -> Vec<ClientRecord> {
        let times = Times {
            last_connected: at,
            last_active: Some(at),
        };
        vec![ClientRecord::new(Arc::from(client), times)]
    }

    #[test]
    fn a_kept_object_goes_with_any_change_of_its_user() {
        let mut realm = realm_with_users(2);
        realm.put_presence(UserId(1), one_record("website", 1_000), UpdateId(1));
        realm.put_presence(UserId(2), one_record("website", 1_000), UpdateId(2));
        let first = answered(&realm, UserId(1), 0);
        answered(&realm, UserId(2), 0);
        assert_eq!(realm.user_answers.count(), 2);

        // New records: the next read shows them, and the other user's object
        // stays.
        realm.put_presence(UserId(1), one_record("ZulipMobile", 1_500), UpdateId(3));
        assert_eq!(realm.user_answers.count(), 1);
        let second = answered(&realm, UserId(1), 0);
        assert_ne!(first, second);
        let entry = realm.users.get(&UserId(1)).unwrap();
        assert_eq!(Some(second), written(entry, |_| false));

        // An account's change (a push device) shows as `pushable`.
        let mut account = entry.account.clone();
        account.push_devices = 1;
        realm.put_account(account);
        assert!(
            String::from_utf8(answered(&realm, UserId(1), 0))
                .unwrap()
                .contains("\"pushable\":true")
        );

        realm.remove_user(UserId(2));
        assert_eq!(realm.user_answers.count(), 1);
        let row = realm.row().clone();
        realm.set_row(row);
        assert_eq!(realm.user_answers.count(), 0);
    }

    #[test]
    fn a_kept_object_turns_offline_with_the_clock() {
        let mut realm = realm_with_users(1);
        realm.put_presence(UserId(1), one_record("website", 1_000), UpdateId(1));
        let online = answered(&realm, UserId(1), 0);
        // Kept while online, read past the threshold: what writing afresh
        // at that time gives.
        let offline = answered(&realm, UserId(1), 2_000);
        let entry = realm.users.get(&UserId(1)).unwrap();
        assert_eq!(Some(offline.clone()), through_serde(entry, |t| t < 2_000));
        assert_ne!(online, offline);
        assert_eq!(realm.user_answers.count(), 1);
    }

    #[test]
    fn a_realm_keeps_a_bounded_number_of_objects() {
        let users = KEPT_PER_REALM as i64 + 10;
        let mut realm = realm_with_users(users);
        for id in 1..=users {
            realm.put_presence(UserId(id), one_record("website", 1_000), UpdateId(id));
        }
        for id in 1..=users {
            let entry = realm.users.get(&UserId(id)).unwrap();
            // Past the bound, still answered: written afresh.
            assert_eq!(
                Some(answered(&realm, UserId(id), 0)),
                written(entry, |_| false)
            );
        }
        assert_eq!(realm.user_answers.count(), KEPT_PER_REALM);
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
