//! Memory built from what the store loads at start.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;

use super::super::embed::EmbedKeys;
use super::super::model::{Account, ClientRecord, Directory, KeyId, KeyOwner, Realm};
use super::super::rules::Times;
use crate::store::Loaded;

/// Builds the in-memory state from what `Store::load` hands out, one item
/// at a time.
#[derive(Default)]
pub struct DirectoryBuilder {
    realms: HashMap<i64, Realm>,
    keys: hashbrown::HashMap<KeyId, KeyOwner>,
    /// Client names seen so far: records of the same client share one string.
    names: HashSet<Arc<str>>,
    /// The user (and realm) whose records are being collected (they come
    /// grouped by user).
    current: Option<(i64, i64, Vec<ClientRecord>, i64)>,
    /// The vector records are collected in, reused from user to user.
    scratch: Vec<ClientRecord>,
    embed_keys: EmbedKeys,
}

impl DirectoryBuilder {
    /// Takes one loaded item.
    pub fn add(&mut self, item: Loaded) {
        match item {
            Loaded::Realm(row, users, last_update_id) => {
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
                    None => tracing::error!(user = user.id, "user id too large to log in"),
                }
                if let Some(realm) = self.realms.get_mut(&user.realm_id) {
                    realm.put_account(Account::from(user));
                }
            }
            Loaded::Presence(row, realm_id) => {
                if self
                    .current
                    .as_ref()
                    .is_some_and(|(user, ..)| *user != row.user_id)
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
                let (_, _, records, update_id) = self
                    .current
                    .get_or_insert_with(|| (row.user_id, realm_id, std::mem::take(scratch), 0));
                records.push(ClientRecord::new(
                    client,
                    Times {
                        last_connected: row.last_connected_time,
                        last_active: row.last_active_time,
                    },
                ));
                *update_id = (*update_id).max(row.update_id);
            }
            Loaded::EmbedKey(row) => self.embed_keys.put(&row),
        }
    }

    /// Installs the collected records of the current user.
    fn flush(&mut self) {
        if let Some((user_id, realm_id, mut records, update_id)) = self.current.take()
            && let Some(realm) = self.realms.get_mut(&realm_id)
        {
            // An exactly sized copy: shrinking the growing vector in place
            // would leave its slack behind as holes in the heap.
            let exact = records.to_vec();
            records.clear();
            realm.load_presence(user_id, exact, update_id);
            self.scratch = records;
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
