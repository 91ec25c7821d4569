//! Memory built from what the store loads at start.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;

use super::super::embed::EmbedKeys;
use super::super::model::{Account, ClientRecord, Directory, KeyId, KeyOwner, Realm};
use super::super::rules::Times;
use crate::ids::{RealmId, UpdateId, UserId};
use crate::store::Loaded;

/// One user's records as they are being collected.
struct Collecting {
    user_id: UserId,
    realm_id: RealmId,
    records: Vec<ClientRecord>,
    /// The largest update id among them.
    update_id: UpdateId,
}

/// Builds the in-memory state from what `Store::load` hands out, one item
/// at a time.
#[derive(Default)]
pub struct DirectoryBuilder {
    realms: HashMap<RealmId, Realm>,
    keys: hashbrown::HashMap<KeyId, KeyOwner>,
    /// Client names seen so far: records of the same client share one string.
    names: HashSet<Arc<str>>,
    /// The user whose records are being collected (they come grouped by
    /// user).
    current: Option<Collecting>,
    /// The vector records are collected in, reused from user to user.
    scratch: Vec<ClientRecord>,
    embed_keys: EmbedKeys,
}

impl DirectoryBuilder {
    /// Takes one loaded item.
    pub fn add(&mut self, item: Loaded) {
        match item {
            Loaded::Realm {
                realm: row,
                users,
                last_update_id,
            } => {
                let mut realm = Realm::new(row);
                realm.last_update_id = last_update_id;
                realm.reserve(users);
                self.keys.reserve(users);
                self.realms.insert(realm.row().id, realm);
            }
            Loaded::User(user) => {
                match KeyOwner::new(user.realm_id, user.id) {
                    Some(owner) => {
                        self.keys.insert(KeyId::of(&user.api_key_hash), owner);
                    }
                    None => tracing::error!(user = user.id.0, "user id too large to log in"),
                }
                if let Some(realm) = self.realms.get_mut(&user.realm_id) {
                    realm.put_account(Account::from(user));
                }
            }
            Loaded::Presence {
                record: row,
                realm_id,
            } => {
                if self
                    .current
                    .as_ref()
                    .is_some_and(|current| current.user_id != row.user_id)
                {
                    self.flush();
                }
                let client = match self.names.get(row.client.as_str()) {
                    Some(name) => name.clone(),
                    None => {
                        let name: Arc<str> = Arc::from(row.client);
                        self.names.insert(name.clone());
                        name
                    }
                };
                let scratch = &mut self.scratch;
                let current = self.current.get_or_insert_with(|| Collecting {
                    user_id: row.user_id,
                    realm_id,
                    records: std::mem::take(scratch),
                    update_id: UpdateId::default(),
                });
                current.records.push(ClientRecord::new(
                    client,
                    Times {
                        last_connected: row.last_connected_time,
                        last_active: row.last_active_time,
                    },
                ));
                current.update_id = current.update_id.max(row.update_id);
            }
            Loaded::EmbedKey(row) => self.embed_keys.put(&row),
            Loaded::Status { row, realm_id } => {
                if let Some(realm) = self.realms.get_mut(&realm_id) {
                    realm.statuses.insert(row.user_id, row);
                }
            }
        }
    }

    /// Installs the collected records of the current user.
    fn flush(&mut self) {
        if let Some(mut current) = self.current.take()
            && let Some(realm) = self.realms.get_mut(&current.realm_id)
        {
            // An exactly sized copy: shrinking the growing vector in place
            // would leave its slack behind as holes in the heap.
            let exact = current.records.to_vec();
            current.records.clear();
            realm.load_presence(current.user_id, exact, current.update_id);
            self.scratch = current.records;
        }
    }

    /// The finished state.
    pub fn finish(mut self) -> Directory {
        self.flush();
        Directory {
            realms: self
                .realms
                .into_iter()
                .map(|(id, mut realm)| {
                    realm.finish_loading();
                    (id, Arc::new(RwLock::new(realm)))
                })
                .collect(),
            keys: self.keys,
            embed_keys: self.embed_keys,
        }
    }
}
