//! Other nodes' published batches as the changes a read-back would have
//! given: each user they touch with all of its records, from memory's
//! records and the batches' puts and removals (docs/ARCHITECTURE.md,
//! "Learning another node's commit").

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::super::model::Realm;
use crate::ids::{UpdateId, UserId};
use crate::store::published::Published;
use crate::store::{PresenceChanges, PresenceRow, UserRecords};

/// A user's records while a chain of batches is applied to them.
struct Draft {
    records: Vec<PresenceRow>,
    /// The id of the user's latest put in the chain (none yet: 0).
    latest: UpdateId,
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
) -> Option<PresenceChanges> {
    let mut drafts: BTreeMap<UserId, Draft> = BTreeMap::new();
    for batch in chain {
        for (user_id, client) in &batch.removed {
            let draft = draft_of(&mut drafts, realm, *user_id)?;
            draft.records.retain(|r| r.client != *client);
        }
        for put in &batch.puts {
            let draft = draft_of(&mut drafts, realm, put.user_id)?;
            draft.latest = draft.latest.max(put.update_id);
            match draft.records.iter_mut().find(|r| r.client == put.client) {
                Some(record) => *record = put.clone(),
                None => draft.records.push(put.clone()),
            }
        }
    }
    let mut users = Vec::with_capacity(drafts.len());
    for (user_id, mut draft) in drafts {
        if draft.latest == UpdateId::default() {
            return None;
        }
        // In the order a read gives them.
        draft.records.sort_by(|a, b| a.client.cmp(&b.client));
        users.push(UserRecords {
            user_id,
            records: draft.records,
        });
    }
    Some(PresenceChanges {
        last_update_id: until,
        users,
    })
}

/// The draft of a user, begun from memory's records (each taking the
/// user's update id, which every put of the chain is past).
fn draft_of<'a>(
    drafts: &'a mut BTreeMap<UserId, Draft>,
    realm: &Realm,
    user_id: UserId,
) -> Option<&'a mut Draft> {
    match drafts.entry(user_id) {
        Entry::Occupied(draft) => Some(draft.into_mut()),
        Entry::Vacant(slot) => {
            let user = realm.users.get(&user_id)?;
            let records = user
                .clients
                .iter()
                .map(|record| {
                    let times = record.times();
                    PresenceRow {
                        user_id,
                        client: record.client.to_string(),
                        last_connected_time: times.last_connected,
                        last_active_time: times.last_active,
                        update_id: user.update_id,
                    }
                })
                .collect();
            let latest = UpdateId::default();
            Some(slot.insert(Draft { records, latest }))
        }
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
            .iter()
            .map(|u| {
                let clients = u.records.iter().map(|r| r.client.as_str()).collect();
                (u.user_id, u.latest_update_id(), clients)
            })
            .collect();
        assert_eq!(
            users,
            vec![
                (UserId(1), UpdateId(6), vec!["mobile", "web"]),
                (UserId(2), UpdateId(5), vec!["web"]),
            ]
        );
        assert_eq!(changes.users[0].records[0], record(UserId(1), "mobile", 6));
        assert_eq!(changes.users[0].records[1].update_id, UpdateId(3));
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
