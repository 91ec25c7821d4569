//! The in-memory state every read is served from.
//!
//! One [`Realm`] per organization, each behind its own lock, holds the
//! realm's users, their client records and an index from update id to user.
//! A [`Directory`] maps API key hashes and realm ids to realms. Only the
//! writer thread changes this state, and only after the store has made the
//! change durable, so a reader never sees anything that a crash could undo.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;

use super::answers::AnswerCache;
use super::rules::Times;
use crate::store::sqlite::email_key;
use crate::store::{RealmRow, UserRow};

/// A realm shared between readers and the writer.
pub type SharedRealm = Arc<RwLock<Realm>>;

/// Realms by id, and the key index that authentication uses.
#[derive(Default)]
pub struct Directory {
    /// Every realm by id.
    pub realms: HashMap<i64, SharedRealm>,
    /// API key hash to (realm id, user id).
    pub keys: HashMap<[u8; 32], (i64, i64)>,
}

/// One client record of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client name, shared with other records of the same name.
    pub client: Arc<str>,
    /// The record's times.
    pub times: Times,
}

/// A user: the account, and presence per client.
#[derive(Debug, Clone)]
pub struct UserEntry {
    /// The account as stored.
    pub account: UserRow,
    /// The user's client records (at most `max_clients_per_user`).
    pub clients: Vec<ClientRecord>,
    /// The largest update id that touched this user's records (0 if none).
    pub update_id: i64,
}

impl UserEntry {
    /// A user with no presence yet.
    pub fn new(account: UserRow) -> Self {
        UserEntry {
            account,
            clients: Vec::new(),
            update_id: 0,
        }
    }

    /// The record of a client, if any.
    pub fn client(&self, client: &str) -> Option<&ClientRecord> {
        self.clients.iter().find(|r| &*r.client == client)
    }

    /// The latest `last_connected` over all clients.
    pub fn last_connected(&self) -> Option<i64> {
        self.clients.iter().map(|r| r.times.last_connected).max()
    }

    /// The latest `last_active` over all clients.
    pub fn last_active(&self) -> Option<i64> {
        self.clients
            .iter()
            .filter_map(|r| r.times.last_active)
            .max()
    }

    /// Whether realm-wide views list this user at all.
    pub fn is_listed(&self) -> bool {
        self.account.is_active && !self.account.is_bot && !self.clients.is_empty()
    }

    /// Whether the user can get a push notification.
    pub fn pushable(&self) -> bool {
        self.account.push_devices > 0 && self.account.enable_offline_push_notifications
    }
}

/// One organization's users and presence.
///
/// Every change goes through a method that bumps `version`, which is what
/// keeps the shared answers in `answers` honest.
pub struct Realm {
    row: RealmRow,
    /// Bumped by every change that a view could show.
    pub version: u64,
    /// Realm-wide answers serialized at some version.
    pub answers: AnswerCache,
    /// Users by id, deactivated ones and bots included. Read freely; change
    /// only through `put_account` and `put_presence`.
    pub users: HashMap<i64, UserEntry>,
    /// Email key (trimmed, lower case) to user id.
    pub by_email: HashMap<String, i64>,
    /// The largest update id used in this realm.
    pub last_update_id: i64,
    /// Update id to user, one entry per user with presence (its latest id):
    /// the incremental answer walks this from the reader's id onwards.
    pub changes: BTreeMap<i64, i64>,
    /// How many presence events this realm has produced. An event queue
    /// registered while this was `n` holds a snapshot that already reflects
    /// events up to `n`, and receives only the later ones. Only the writer
    /// changes it, as it makes an event; no view shows it.
    pub event_seq: u64,
}

impl Realm {
    /// An empty realm.
    pub fn new(row: RealmRow) -> Self {
        Realm {
            row,
            version: 0,
            answers: AnswerCache::default(),
            users: HashMap::new(),
            by_email: HashMap::new(),
            last_update_id: 0,
            changes: BTreeMap::new(),
            event_seq: 0,
        }
    }

    /// The realm as stored.
    pub fn row(&self) -> &RealmRow {
        &self.row
    }

    /// Replaces the realm's own settings.
    pub fn set_row(&mut self, row: RealmRow) {
        self.version += 1;
        self.row = row;
    }

    /// Adds a user or replaces its account, keeping its presence.
    pub fn put_account(&mut self, account: UserRow) {
        self.version += 1;
        self.by_email.insert(email_key(&account.email), account.id);
        match self.users.get_mut(&account.id) {
            Some(entry) => entry.account = account,
            None => {
                self.users.insert(account.id, UserEntry::new(account));
            }
        }
    }

    /// Replaces a user's records and moves the user to `update_id` in the change index.
    pub fn put_presence(&mut self, user_id: i64, clients: Vec<ClientRecord>, update_id: i64) {
        let Some(entry) = self.users.get_mut(&user_id) else {
            return;
        };
        self.version += 1;
        if entry.update_id > 0 {
            self.changes.remove(&entry.update_id);
        }
        entry.clients = clients;
        entry.update_id = update_id;
        if update_id > 0 {
            self.changes.insert(update_id, user_id);
        }
        self.last_update_id = self.last_update_id.max(update_id);
    }

    /// Finds an active user by the path value of the single-user GET: an
    /// integer is a user id, anything else an email (trimmed, any case).
    pub fn find_active(&self, user_id_or_email: &str) -> Option<&UserEntry> {
        let id = if !user_id_or_email.is_empty()
            && user_id_or_email.bytes().all(|b| b.is_ascii_digit())
        {
            user_id_or_email.parse::<i64>().ok()?
        } else {
            *self.by_email.get(&email_key(user_id_or_email))?
        };
        self.users.get(&id).filter(|u| u.account.is_active)
    }
}
