//! The in-memory state every read is served from.
//!
//! One [`Realm`] per organization, each behind its own lock, holds the
//! realm's users, their client records and an index from update id to user.
//! A [`Directory`] maps API key hashes and realm ids to realms. Only the
//! writer thread changes this state, and only after the store has made the
//! change durable, so a reader never sees anything that a crash could undo.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use parking_lot::RwLock;

use super::answers::AnswerCache;
pub use super::change_log::ChangeLog;
use super::email_index::EmailIndex;
use super::embed::EmbedKeys;
use super::rules::Times;
use super::user_answer::UserAnswers;
use crate::ids::{RealmId, UpdateId, UserId};
use crate::store::{RealmRow, UserRow, same_email};

/// A realm shared between readers and the writer.
pub type SharedRealm = Arc<RwLock<Realm>>;

/// The part of an API key's SHA-256 that the key index holds: 128 bits are
/// as unguessable as the whole, at half the memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// The id of a key's hash.
    pub fn of(hash: &[u8; 32]) -> KeyId {
        let mut id = [0u8; 16];
        id.copy_from_slice(&hash[..16]);
        KeyId(id)
    }
}

/// Realms by id, and the key index that authentication uses.
///
/// The maps use a fast hasher: their keys (server-assigned ids, SHA-256
/// digests) are not chosen by clients, so they cannot be made to collide.
#[derive(Default)]
pub struct Directory {
    /// Every realm by id.
    pub realms: HashMap<RealmId, SharedRealm>,
    /// API key to its owner.
    pub keys: HashMap<KeyId, KeyOwner>,
    /// Embed keys by the hash of their token.
    pub embed_keys: EmbedKeys,
}

/// Who an API key belongs to, in 8 bytes: ids are kept below 2^32 in
/// memory (four billion users), which halves the key index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyOwner {
    realm: u32,
    user: u32,
}

impl KeyOwner {
    /// The owner with these ids, if they fit.
    pub fn new(realm_id: RealmId, user_id: UserId) -> Option<KeyOwner> {
        Some(KeyOwner {
            realm: u32::try_from(realm_id.0).ok()?,
            user: u32::try_from(user_id.0).ok()?,
        })
    }

    /// The realm's id.
    pub fn realm_id(self) -> RealmId {
        RealmId(i64::from(self.realm))
    }

    /// The user's id.
    pub fn user_id(self) -> UserId {
        UserId(i64::from(self.user))
    }
}

/// A user's account as the views need it. The key hash and the realm id
/// stay in the store and the key index; memory per user is what bounds the
/// size of a realm on one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Server-wide id.
    pub id: UserId,
    /// The email as given at creation, then the display name: one
    /// allocation instead of two.
    names: Box<str>,
    /// Where the email ends in `names`.
    email_len: u32,
    /// Unix seconds of creation.
    pub date_joined: i64,
    /// How many push devices the user has registered.
    pub push_devices: u32,
    /// Bots may read presence but have none.
    pub is_bot: bool,
    /// Deactivated users cannot log in and are no presence target.
    pub is_active: bool,
    /// Whether others see this user's presence.
    pub presence_enabled: bool,
    /// Whether the user wants push notifications while offline.
    pub enable_offline_push_notifications: bool,
}

impl From<UserRow> for Account {
    fn from(row: UserRow) -> Self {
        let mut names = row.email;
        let email_len = u32::try_from(names.len()).expect("emails are short");
        names.push_str(&row.full_name);
        Account {
            id: row.id,
            names: names.into_boxed_str(),
            email_len,
            date_joined: row.date_joined,
            push_devices: row.push_devices,
            is_bot: row.is_bot,
            is_active: row.is_active,
            presence_enabled: row.presence_enabled,
            enable_offline_push_notifications: row.enable_offline_push_notifications,
        }
    }
}

impl Account {
    /// The email as given at creation (lookups ignore case).
    pub fn email(&self) -> &str {
        &self.names[..self.email_len as usize]
    }

    /// The display name.
    pub fn full_name(&self) -> &str {
        &self.names[self.email_len as usize..]
    }
}

/// One client record of a user, kept compact: a million of them should fit
/// in a couple of hundred megabytes. Times are stored as unsigned 32-bit
/// Unix seconds (good until 2106), with 0 for "never active".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client name, shared with other records of the same name.
    pub client: Arc<str>,
    last_connected: u32,
    last_active: u32,
}

/// Unix seconds as stored in a record: clamped into 1..=u32::MAX, a range
/// the server's clock and the import's checks keep every real time inside.
fn stored(secs: i64) -> u32 {
    u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
}

impl ClientRecord {
    /// A record of `client` with these times.
    pub fn new(client: Arc<str>, times: Times) -> Self {
        let mut record = ClientRecord {
            client,
            last_connected: 0,
            last_active: 0,
        };
        record.set_times(times);
        record
    }

    /// The record's times.
    pub fn times(&self) -> Times {
        Times {
            last_connected: i64::from(self.last_connected),
            last_active: (self.last_active != 0).then_some(i64::from(self.last_active)),
        }
    }

    /// Replaces the record's times.
    pub fn set_times(&mut self, times: Times) {
        self.last_connected = stored(times.last_connected);
        self.last_active = times.last_active.map_or(0, stored);
    }
}

/// A user: the account, and presence per client.
#[derive(Debug, Clone)]
pub struct UserEntry {
    /// The account.
    pub account: Account,
    /// The user's client records (at most `max_clients_per_user`), boxed to
    /// their exact length.
    pub clients: Box<[ClientRecord]>,
    /// The largest update id that touched this user's records (0 if none).
    pub update_id: UpdateId,
}

impl UserEntry {
    /// A user with no presence yet.
    pub fn new(account: Account) -> Self {
        UserEntry {
            account,
            clients: Box::default(),
            update_id: UpdateId::default(),
        }
    }

    /// The record of a client, if any.
    pub fn client(&self, client: &str) -> Option<&ClientRecord> {
        self.clients.iter().find(|r| &*r.client == client)
    }

    /// The latest `last_connected` over all clients.
    pub fn last_connected(&self) -> Option<i64> {
        self.clients
            .iter()
            .map(|r| i64::from(r.last_connected))
            .max()
    }

    /// The latest `last_active` over all clients.
    pub fn last_active(&self) -> Option<i64> {
        self.clients
            .iter()
            .filter_map(|r| r.times().last_active)
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
/// keeps the shared answers in `answers` honest, and drops the changed
/// user's object from `user_answers`.
pub struct Realm {
    row: RealmRow,
    /// Bumped by every change that a view could show.
    pub version: u64,
    /// Realm-wide answers serialized at some version.
    pub answers: AnswerCache,
    /// Single-user presence objects written since their users last
    /// changed.
    pub user_answers: UserAnswers,
    /// Users by id, deactivated ones and bots included. Read freely; change
    /// only through `put_account` and `put_presence`.
    pub users: Users,
    /// Users by email, compared trimmed and without regard to case.
    by_email: EmailIndex,
    /// The largest update id used in this realm.
    pub last_update_id: UpdateId,
    /// Update id to user: the incremental answer walks this from the
    /// reader's id onwards.
    pub changes: ChangeLog,
    /// How many presence events this realm has produced. An event queue
    /// registered while this was `n` holds a snapshot that already reflects
    /// events up to `n`, and receives only the later ones. Only the writer
    /// changes it, as it makes an event; no view shows it.
    pub event_seq: u64,
    /// The users' custom statuses; only the writer changes them.
    pub statuses: super::status::Statuses,
}

impl Realm {
    /// An empty realm.
    pub fn new(row: RealmRow) -> Self {
        Realm {
            row,
            version: 0,
            answers: AnswerCache::default(),
            user_answers: UserAnswers::default(),
            users: Users::default(),
            by_email: EmailIndex::default(),
            last_update_id: UpdateId::default(),
            changes: ChangeLog::default(),
            event_seq: 0,
            statuses: Default::default(),
        }
    }

    /// Makes room for `additional` more users at once, sparing the growth
    /// steps (and the memory they would leave behind) while loading.
    pub fn reserve(&mut self, additional: usize) {
        self.users.reserve(additional);
        self.by_email.reserve(&self.users, additional);
    }

    /// The realm as stored.
    pub fn row(&self) -> &RealmRow {
        &self.row
    }

    /// Replaces the realm's own settings.
    pub fn set_row(&mut self, row: RealmRow) {
        self.version += 1;
        self.user_answers.clear();
        self.row = row;
    }

    /// Adds a user or replaces its account, keeping its presence.
    pub fn put_account(&mut self, account: Account) {
        self.version += 1;
        let id = account.id;
        self.user_answers.forget(id);
        let renamed = match self.users.get(&id) {
            None => {
                self.by_email.insert(&self.users, id, account.email());
                self.users.insert(UserEntry::new(account));
                return;
            }
            Some(entry) => (!same_email(entry.account.email(), account.email()))
                .then(|| entry.account.email().to_owned()),
        };
        if let Some(old) = &renamed {
            // The index finds users by their email: take the old one out
            // while the entry still has it.
            self.by_email.remove(id, old);
        }
        if let Some(entry) = self.users.get_mut(&id) {
            entry.account = account;
        }
        if renamed.is_some() {
            let email = self.users.get(&id).map(|u| u.account.email().to_owned());
            if let Some(email) = email {
                self.by_email.insert(&self.users, id, &email);
            }
        }
    }

    /// Removes a user (deleted by an admin), with its presence.
    pub fn remove_user(&mut self, user_id: UserId) {
        let Some(email) = self
            .users
            .get(&user_id)
            .map(|u| u.account.email().to_owned())
        else {
            return;
        };
        self.version += 1;
        self.user_answers.forget(user_id);
        self.statuses.remove(&user_id);
        self.by_email.remove(user_id, &email);
        if let Some(removed) = self.users.remove(user_id)
            && removed.update_id > UpdateId::default()
        {
            // Its entry in the change index is stale now; compaction drops it.
            self.changes.note_stale();
        }
    }

    /// Replaces a user's records and moves the user to `update_id` in the
    /// change index. Update ids must come in increasing order, as the writer
    /// assigns them; loading uses [`Realm::load_presence`] instead.
    pub fn put_presence(
        &mut self,
        user_id: UserId,
        clients: Vec<ClientRecord>,
        update_id: UpdateId,
    ) {
        if self.set_presence(user_id, clients, update_id) {
            self.changes.push(update_id, user_id);
            self.changes.compact_if_stale(&self.users);
        }
    }

    /// Installs a loaded user's records, in any order of update ids; call
    /// [`Realm::finish_loading`] once all are in.
    pub fn load_presence(
        &mut self,
        user_id: UserId,
        clients: Vec<ClientRecord>,
        update_id: UpdateId,
    ) {
        if self.set_presence(user_id, clients, update_id) {
            self.changes.load(update_id, user_id);
        }
    }

    /// Puts the change index in order after loading.
    pub fn finish_loading(&mut self) {
        self.changes.finish_loading();
    }

    /// Sets a user's records; whether the user exists and `update_id` counts.
    fn set_presence(
        &mut self,
        user_id: UserId,
        clients: Vec<ClientRecord>,
        update_id: UpdateId,
    ) -> bool {
        let clients = clients.into_boxed_slice();
        let Some(entry) = self.users.get_mut(&user_id) else {
            return false;
        };
        self.version += 1;
        self.user_answers.forget(user_id);
        let none = UpdateId::default();
        if entry.update_id > none && update_id > none {
            self.changes.note_stale();
        }
        entry.clients = clients;
        entry.update_id = update_id;
        self.last_update_id = self.last_update_id.max(update_id);
        update_id > none
    }

    /// Finds an active user by the path value of the single-user GET: an
    /// integer is a user id, anything else an email (trimmed, any case).
    pub fn find_active(&self, user_id_or_email: &str) -> Option<&UserEntry> {
        let id = if !user_id_or_email.is_empty()
            && user_id_or_email.bytes().all(|b| b.is_ascii_digit())
        {
            UserId(user_id_or_email.parse::<i64>().ok()?)
        } else {
            self.by_email.find(&self.users, user_id_or_email)?
        };
        self.users.get(&id).filter(|u| u.account.is_active)
    }
}

/// A realm's users: the entries in one dense vector (a deleted user's place
/// is taken by the last one), found by id through a small index. A map of
/// entries would hold its slack at the entries' full size.
#[derive(Default)]
pub struct Users {
    entries: Vec<UserEntry>,
    /// Positions in `entries`, hashed by the id of the entry they point at.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Users {
    fn position(&self, id: UserId) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(self.hasher.hash_one(id), |&at| {
                entries[at as usize].account.id == id
            })
            .map(|&at| at as usize)
    }

    /// The user with this id.
    pub fn get(&self, id: &UserId) -> Option<&UserEntry> {
        self.position(*id).map(|at| &self.entries[at])
    }

    fn get_mut(&mut self, id: &UserId) -> Option<&mut UserEntry> {
        self.position(*id).map(|at| &mut self.entries[at])
    }

    fn insert(&mut self, entry: UserEntry) {
        let at = u32::try_from(self.entries.len()).expect("fewer than 4 billion users in a realm");
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index
            .insert_unique(hasher.hash_one(entry.account.id), at, |&other| {
                hasher.hash_one(entries[other as usize].account.id)
            });
        self.entries.push(entry);
    }

    /// Removes the user with this id: the last entry takes its place, so
    /// the vector stays dense.
    fn remove(&mut self, id: UserId) -> Option<UserEntry> {
        let at = self.position(id)?;
        let hasher = &self.hasher;
        if let Ok(slot) = self
            .index
            .find_entry(hasher.hash_one(id), |&p| p as usize == at)
        {
            slot.remove();
        }
        let removed = self.entries.swap_remove(at);
        if at < self.entries.len() {
            // The entry moved from the end to `at`: point its index there.
            let moved = self.entries[at].account.id;
            let old = u32::try_from(self.entries.len()).expect("fewer than 4 billion users");
            if let Some(slot) = self.index.find_mut(hasher.hash_one(moved), |&p| p == old) {
                *slot = at as u32;
            }
        }
        Some(removed)
    }

    fn reserve(&mut self, additional: usize) {
        self.entries.reserve_exact(additional);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.reserve(additional, |&other| {
            hasher.hash_one(entries[other as usize].account.id)
        });
    }

    /// Every user, in the order they were added.
    pub fn values(&self) -> impl Iterator<Item = &UserEntry> {
        self.entries.iter()
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A realm for unit tests, shared by the modules that need one.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Account, Realm};
    use crate::ids::{RealmId, UserId};
    use crate::store::{RealmRow, UserRow};

    /// Realm 1 with active users 1 to `n` (`U{id}@Example.test`) and no
    /// records.
    pub fn realm_with_users(n: i64) -> Realm {
        let mut realm = Realm::new(RealmRow {
            id: RealmId(1),
            string_id: "r".into(),
            name: "r".into(),
            presence_disabled: false,
            deactivated: false,
            date_created: 0,
        });
        for id in 1..=n {
            realm.put_account(Account::from(UserRow {
                id: UserId(id),
                realm_id: RealmId(1),
                email: format!("U{id}@Example.test"),
                full_name: format!("User {id}"),
                is_bot: false,
                is_active: true,
                date_joined: 0,
                api_key_hash: [0; 32],
                presence_enabled: true,
                enable_offline_push_notifications: true,
                push_devices: 0,
            }));
        }
        realm
    }
}

#[cfg(test)]
mod tests {
    use super::testing::realm_with_users;
    use super::*;
    use crate::store::{UserRow, email_key};

    #[test]
    fn email_lookups_agree_with_the_stores_key() {
        let mut realm = realm_with_users(0);
        let stored = ["ΟΔΟΣ@x.gr", "Émile@X.fr", "plain@x.test"];
        for (i, email) in stored.iter().enumerate() {
            realm.put_account(Account::from(UserRow {
                id: UserId(i as i64 + 1),
                realm_id: RealmId(1),
                email: (*email).to_owned(),
                full_name: "n".into(),
                is_bot: false,
                is_active: true,
                date_joined: 0,
                api_key_hash: [0; 32],
                presence_enabled: true,
                enable_offline_push_notifications: true,
                push_devices: 0,
            }));
        }
        for asked in [
            "οδος@x.gr",
            "ΟΔΟΣ@X.GR",
            " émile@x.FR ",
            "emile@x.fr",
            "PLAIN@x.test",
            "οδοσ@x.gr",
        ] {
            let expected = stored
                .iter()
                .position(|e| email_key(e) == email_key(asked))
                .map(|i| UserId(i as i64 + 1));
            assert_eq!(
                realm.find_active(asked).map(|u| u.account.id),
                expected,
                "{asked}"
            );
        }
    }

    fn record(t: i64) -> Vec<ClientRecord> {
        vec![ClientRecord::new(
            Arc::from("website"),
            Times {
                last_connected: t,
                last_active: None,
            },
        )]
    }

    fn after(realm: &Realm, since: i64) -> Vec<(i64, i64)> {
        realm
            .changes
            .after(UpdateId(since), &realm.users)
            .map(|(id, u)| (id.0, u.account.id.0))
            .collect()
    }

    #[test]
    fn the_change_log_returns_each_users_latest_change_once() {
        let mut realm = realm_with_users(3);
        realm.put_presence(UserId(1), record(10), UpdateId(1));
        realm.put_presence(UserId(2), record(10), UpdateId(2));
        realm.put_presence(UserId(1), record(20), UpdateId(3));
        realm.put_presence(UserId(3), record(20), UpdateId(4));
        assert_eq!(after(&realm, 0), [(2, 2), (3, 1), (4, 3)]);
        assert_eq!(after(&realm, 2), [(3, 1), (4, 3)]);
        assert_eq!(after(&realm, i64::MAX), []);
        // Many changes of one user: stale entries are dropped, answers stay the same.
        for id in 5..100 {
            realm.put_presence(UserId(2), record(id), UpdateId(id));
        }
        assert!(realm.changes.len() <= 2 * 3 + 1, "{}", realm.changes.len());
        assert_eq!(after(&realm, 4), [(99, 2)]);
        assert_eq!(realm.last_update_id, UpdateId(99));
    }

    #[test]
    fn loading_in_any_order_is_sorted_once() {
        let mut realm = realm_with_users(3);
        realm.load_presence(UserId(3), record(10), UpdateId(7));
        realm.load_presence(UserId(1), record(10), UpdateId(9));
        realm.load_presence(UserId(2), record(10), UpdateId(8));
        realm.finish_loading();
        assert_eq!(after(&realm, 7), [(8, 2), (9, 1)]);
    }

    #[test]
    fn users_are_found_by_id_and_by_email_in_any_case() {
        let realm = realm_with_users(1000);
        assert_eq!(realm.users.len(), 1000);
        assert_eq!(
            realm.users.get(&UserId(777)).unwrap().account.full_name(),
            "User 777"
        );
        assert!(realm.users.get(&UserId(1001)).is_none());
        assert_eq!(
            realm.find_active(" u123@EXAMPLE.test ").unwrap().account.id,
            UserId(123)
        );
        assert_eq!(
            realm.find_active("123").unwrap().account.email(),
            "U123@Example.test"
        );
        assert!(realm.find_active("nobody@example.test").is_none());
    }

    #[test]
    fn records_keep_their_times() {
        let times = Times {
            last_connected: 1_800_000_000,
            last_active: Some(1_799_999_000),
        };
        assert_eq!(ClientRecord::new(Arc::from("x"), times).times(), times);
        let never = Times {
            last_connected: 5,
            last_active: None,
        };
        assert_eq!(ClientRecord::new(Arc::from("x"), never).times(), never);
    }

    #[test]
    fn a_deleted_user_is_gone_and_the_others_still_found() {
        let mut realm = realm_with_users(5);
        realm.put_presence(UserId(2), Vec::new(), UpdateId(7));
        realm.remove_user(UserId(2));
        assert!(realm.users.get(&UserId(2)).is_none());
        assert!(realm.find_active("u2@example.test").is_none());
        for id in [1, 3, 4, 5] {
            assert_eq!(
                realm.find_active(&id.to_string()).unwrap().account.id,
                UserId(id)
            );
            let email = format!("u{id}@example.test");
            assert_eq!(
                realm.find_active(&email).unwrap().account.id,
                UserId(id),
                "{email}"
            );
        }
        assert_eq!(realm.users.len(), 4);
        assert_eq!(realm.changes.after(UpdateId(0), &realm.users).count(), 0);
        // The last entry moved into the hole; removing it again works too.
        realm.remove_user(UserId(5));
        assert_eq!(
            realm.find_active("U4@example.test").unwrap().account.id,
            UserId(4)
        );
        assert!(realm.find_active("5").is_none());
    }

    #[test]
    fn a_new_email_is_found_and_the_old_one_not() {
        let mut realm = realm_with_users(3);
        let mut account = realm.users.get(&UserId(2)).unwrap().account.clone();
        let mut row_email = "new@example.test".to_owned();
        row_email.push_str("Renamed");
        account.names = row_email.into_boxed_str();
        account.email_len = "new@example.test".len() as u32;
        realm.put_account(account);
        assert_eq!(
            realm.find_active("NEW@example.test").unwrap().account.id,
            UserId(2)
        );
        assert_eq!(
            realm.users.get(&UserId(2)).unwrap().account.full_name(),
            "Renamed"
        );
        assert!(realm.find_active("u2@example.test").is_none());
        assert_eq!(
            realm.find_active("u3@example.test").unwrap().account.id,
            UserId(3)
        );
    }
}
