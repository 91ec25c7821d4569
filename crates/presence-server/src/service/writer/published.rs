//! Others' commits as memory's records: from the batches other nodes
//! published (each user they touch with all of its records, from memory's
//! records and the batches' puts and removals; docs/ARCHITECTURE.md,
//! "Learning another node's commit"), or from what a read-back gave.
//!
//! Both build [`RemoteUser`]s straight from memory's records, whose names
//! are shared, so a user with many clients costs a copy of pointers, not
//! of names, while the batch that installs it holds the realm's lock.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use super::super::model::{ClientRecord, Realm};
use super::super::rules::Times;
use crate::ids::{UpdateId, UserId};
use crate::store::published::Published;
use crate::store::{PresenceChanges, PresenceRow};

/// A user as another node's commit left it: all of its records.
pub(super) struct RemoteUser {
    /// The user.
    pub user_id: UserId,
    /// The user's update id after the commit: its latest record's.
    pub update_id: UpdateId,
    /// Every record the user has after the commit.
    pub clients: Vec<ClientRecord>,
}

/// What other nodes committed in a realm up to an update id, ready for
/// memory.
pub(super) struct RemoteChanges {
    /// The realm's last update id the changes bring memory to.
    pub last_update_id: UpdateId,
    /// Each changed user.
    pub users: BTreeMap<UserId, RemoteUser>,
}

/// The changes that `chain`, which covers a realm's ids from memory's last
/// one up to `until`, makes to `realm` as memory holds it: what
/// `Store::presence_changes` would read at `until`. `None` if a user of
/// the chain is not known here (the directory is behind: the read sorts
/// that out), or is only removed from: its update id would then be that
/// of a record memory does not keep.
pub(super) fn changes_from(
    realm: &Realm,
    until: UpdateId,
    chain: &[Published],
) -> Option<RemoteChanges> {
    let mut drafts: BTreeMap<UserId, RemoteUser> = BTreeMap::new();
    for batch in chain {
        for (user_id, client) in &batch.removed {
            let draft = draft_of(&mut drafts, realm, *user_id)?;
            draft.clients.retain(|r| *r.client != **client);
        }
        for put in &batch.puts {
            let draft = draft_of(&mut drafts, realm, put.user_id)?;
            draft.update_id = draft.update_id.max(put.update_id);
            let times = times_of(put);
            match draft.clients.iter_mut().find(|r| *r.client == *put.client) {
                Some(record) => record.set_times(times),
                None => draft
                    .clients
                    .push(ClientRecord::new(Arc::from(put.client.as_str()), times)),
            }
        }
    }
    if drafts.values().any(|u| u.update_id == UpdateId::default()) {
        return None;
    }
    Some(RemoteChanges {
        last_update_id: until,
        users: drafts,
    })
}

/// The draft of a user, begun from memory's records with no put yet (an
/// update id of 0: every put of the chain is past memory's).
fn draft_of<'a>(
    drafts: &'a mut BTreeMap<UserId, RemoteUser>,
    realm: &Realm,
    user_id: UserId,
) -> Option<&'a mut RemoteUser> {
    match drafts.entry(user_id) {
        Entry::Occupied(draft) => Some(draft.into_mut()),
        Entry::Vacant(slot) => {
            let user = realm.users.get(&user_id)?;
            Some(slot.insert(RemoteUser {
                user_id,
                update_id: UpdateId::default(),
                clients: user.clients.to_vec(),
            }))
        }
    }
}

/// A read-back's changes as memory's records, each name shared with the
/// user's record of that name if memory has one. `None` if a changed user
/// is not known here (the directory is behind).
pub(super) fn changes_read(realm: &Realm, changes: PresenceChanges) -> Option<RemoteChanges> {
    let mut users = BTreeMap::new();
    for changed in changes.users {
        let user = realm.users.get(&changed.user_id)?;
        let update_id = changed.latest_update_id();
        let clients = changed
            .records
            .iter()
            .map(|row| {
                let name = user
                    .client(&row.client)
                    .map_or_else(|| Arc::from(row.client.as_str()), |r| r.client.clone());
                ClientRecord::new(name, times_of(row))
            })
            .collect();
        let user_id = changed.user_id;
        users.insert(
            user_id,
            RemoteUser {
                user_id,
                update_id,
                clients,
            },
        );
    }
    Some(RemoteChanges {
        last_update_id: changes.last_update_id,
        users,
    })
}

/// A stored record's times.
fn times_of(row: &PresenceRow) -> Times {
    Times {
        last_connected: row.last_connected_time,
        last_active: row.last_active_time,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ids::RealmId;
    use crate::service::model::ClientRecord;
    use crate::service::model::testing::realm_with_users;
    use crate::service::rules::Times;
    use crate::store::testing::record;

    fn batch(first: i64, last: i64, puts: Vec<PresenceRow>, removed: &[(i64, &str)]) -> Published {
        Published {
            realm_id: RealmId(1),
            first: UpdateId(first),
            last: UpdateId(last),
            puts,
            removed: removed
                .iter()
                .map(|&(user, client)| (UserId(user), client.to_owned()))
                .collect(),
        }
    }

    #[test]
    fn a_chain_gives_each_user_all_its_records_at_its_latest_put() {
        let mut realm = realm_with_users(2);
        let times = Times {
            last_connected: 1_700_000_003,
            last_active: Some(1_700_000_000),
        };
        let kept = ClientRecord::new(Arc::from("web"), times);
        let evicted = ClientRecord::new(Arc::from("old"), times);
        realm.put_presence(UserId(1), vec![kept, evicted], UpdateId(3));
        let chain = [
            batch(
                4,
                5,
                vec![record(UserId(1), "mobile", 4), record(UserId(2), "web", 5)],
                &[(1, "old")],
            ),
            batch(6, 6, vec![record(UserId(1), "mobile", 6)], &[]),
        ];
        let changes = changes_from(&realm, UpdateId(6), &chain).expect("known users");
        assert_eq!(changes.last_update_id, UpdateId(6));
        let users: Vec<(UserId, UpdateId, Vec<&str>)> = changes
            .users
            .values()
            .map(|u| {
                let mut clients: Vec<&str> = u.clients.iter().map(|r| &*r.client).collect();
                clients.sort_unstable();
                (u.user_id, u.update_id, clients)
            })
            .collect();
        assert_eq!(
            users,
            vec![
                (UserId(1), UpdateId(6), vec!["mobile", "web"]),
                (UserId(2), UpdateId(5), vec!["web"]),
            ]
        );
        let web = changes.users[&UserId(1)]
            .clients
            .iter()
            .find(|r| &*r.client == "web")
            .expect("kept");
        assert_eq!(
            web.times(),
            times,
            "a record no batch touched keeps memory's times"
        );
        let mobile = changes.users[&UserId(1)]
            .clients
            .iter()
            .find(|r| &*r.client == "mobile")
            .expect("put");
        let put = record(UserId(1), "mobile", 6);
        assert_eq!(mobile.times(), times_of(&put), "the latest put's times");
    }

    #[test]
    fn a_read_shares_the_names_memory_has() {
        let mut realm = realm_with_users(1);
        let times = Times {
            last_connected: 1_700_000_003,
            last_active: None,
        };
        let web: Arc<str> = Arc::from("web");
        realm.put_presence(
            UserId(1),
            vec![ClientRecord::new(web.clone(), times)],
            UpdateId(2),
        );
        let read = PresenceChanges {
            last_update_id: UpdateId(4),
            users: vec![crate::store::UserRecords {
                user_id: UserId(1),
                records: vec![record(UserId(1), "mobile", 4), record(UserId(1), "web", 3)],
            }],
        };
        let changes = changes_read(&realm, read).expect("a known user");
        assert_eq!(changes.last_update_id, UpdateId(4));
        assert_eq!(changes.users[&UserId(1)].update_id, UpdateId(4));
        let names: Vec<&Arc<str>> = changes.users[&UserId(1)]
            .clients
            .iter()
            .map(|r| &r.client)
            .collect();
        assert!(Arc::ptr_eq(names[1], &web), "memory's name is shared");
        assert_eq!(&**names[0], "mobile");
        let unknown = PresenceChanges {
            last_update_id: UpdateId(5),
            users: vec![crate::store::UserRecords {
                user_id: UserId(9),
                records: vec![record(UserId(9), "web", 5)],
            }],
        };
        assert!(changes_read(&realm, unknown).is_none());
    }

    #[test]
    fn an_unknown_user_or_a_removal_alone_is_left_to_the_read() {
        let realm = realm_with_users(1);
        let unknown = [batch(1, 1, vec![record(UserId(9), "web", 1)], &[])];
        assert!(changes_from(&realm, UpdateId(1), &unknown).is_none());
        let removal_only = [batch(1, 1, Vec::new(), &[(1, "web")])];
        assert!(changes_from(&realm, UpdateId(1), &removal_only).is_none());
    }
}
