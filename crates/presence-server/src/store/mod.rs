//! Durable storage: the `Store` trait and its rows.
//!
//! The store is the source of truth; the service keeps everything in memory
//! and uses the store only to load at start, to make changes durable, and to
//! learn of changes made by others (the admin command, or other server
//! nodes sharing a PostgreSQL database). Store methods are blocking: the
//! server calls them from one dedicated writer thread, never from an async
//! worker.
//!
//! Two counters let a node catch up with what others wrote:
//! - every change to realms, users, settings or push devices bumps a
//!   store-wide *directory version*, and the changed row remembers it;
//! - every presence change takes its realm's next *update id* from the
//!   realm's sequence row, which a batch locks from its start to its commit.
//!
//! Both are taken under a row lock held until commit, so they become visible
//! in the order they were taken: a reader that remembers the last value it
//! saw can fetch exactly what changed since, and never skips a change that
//! commits late.

#[cfg(test)]
mod conformance;
mod durability;
mod email;
pub mod postgres;
pub mod published;
pub mod sqlite;
mod status;
pub mod testing;

pub use durability::Durability;
pub use email::{email_key, same_email};

pub use status::{NO_EMOJI_TYPE, StatusRow};

/// The origins of an embed key as one column: they hold no spaces.
pub fn join_origins(origins: &[String]) -> String {
    origins.join(" ")
}

/// An embed key's origins from their column.
pub fn split_origins(column: &str) -> Vec<String> {
    column.split_whitespace().map(str::to_owned).collect()
}

use thiserror::Error;

use crate::ids::{EmbedKeyId, RealmId, UpdateId, UserId};

/// A realm (organization) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmRow {
    /// Server-wide id.
    pub id: RealmId,
    /// The short unique name used by the admin command, e.g. `acme`.
    pub string_id: String,
    /// The display name.
    pub name: String,
    /// Presence is neither stored nor shown in this realm.
    pub presence_disabled: bool,
    /// Nobody of this realm can log in.
    pub deactivated: bool,
    /// Unix seconds of creation.
    pub date_created: i64,
}

/// A user as stored, with the settings and device count presence needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Server-wide id.
    pub id: UserId,
    /// The realm the user belongs to.
    pub realm_id: RealmId,
    /// The email as given at creation (lookups ignore case).
    pub email: String,
    /// The display name.
    pub full_name: String,
    /// Bots may read presence but have none.
    pub is_bot: bool,
    /// Deactivated users cannot log in and are no presence target.
    pub is_active: bool,
    /// Unix seconds of creation.
    pub date_joined: i64,
    /// SHA-256 of the API key; the key itself is never stored.
    pub api_key_hash: [u8; 32],
    /// Whether others see this user's presence.
    pub presence_enabled: bool,
    /// Whether the user wants push notifications while offline.
    pub enable_offline_push_notifications: bool,
    /// How many push devices the user has registered.
    pub push_devices: u32,
}

/// One (user, client) presence record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRow {
    /// The user the record belongs to.
    pub user_id: UserId,
    /// The client name.
    pub client: String,
    /// Unix seconds of the last report of any kind.
    pub last_connected_time: i64,
    /// Unix seconds of the last active report, if any.
    pub last_active_time: Option<i64>,
    /// The realm's update id of the last change to this record.
    pub update_id: UpdateId,
}

/// An embed key as stored: a read-only credential of one realm, meant to be
/// seen in web pages, usable only from the origins it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedKeyRow {
    /// Server-wide id.
    pub id: EmbedKeyId,
    /// The realm whose presence it reads.
    pub realm_id: RealmId,
    /// Its name, unique among the realm's keys that are not revoked.
    pub name: String,
    /// SHA-256 of the key; the key itself is never stored.
    pub key_hash: [u8; 32],
    /// The web origins allowed to use it (`https://intranet.example.com`).
    pub origins: Vec<String>,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of its last use that a server recorded (to the minute).
    pub last_used_at: Option<i64>,
    /// Unix seconds of its revocation; a revoked key works no more.
    pub revoked_at: Option<i64>,
}

/// A new embed key, as the admin command creates it.
#[derive(Debug, Clone)]
pub struct NewEmbedKey<'a> {
    /// The realm's string id.
    pub realm: &'a str,
    /// The key's name.
    pub name: &'a str,
    /// SHA-256 of the new key.
    pub key_hash: [u8; 32],
    /// The origins allowed to use it, already checked and normalised.
    pub origins: &'a [String],
    /// Unix seconds of creation.
    pub now: i64,
}

/// A serving node as it reports itself in the store, so that an admin
/// command can wait until every running node has taken its change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// A random id the node picked at start.
    pub id: String,
    /// Unix seconds of its start.
    pub started_at: i64,
    /// Unix seconds of its latest report: a node that stops reporting is
    /// taken for gone.
    pub seen_at: i64,
    /// The directory version it has installed.
    pub directory_version: i64,
}

/// One item of what the server loads at start, in the order `Store::load`
/// gives them: every realm, then every user, then every presence record
/// grouped by user, then every embed key, then every status.
#[derive(Debug)]
pub enum Loaded {
    /// A realm.
    Realm {
        /// The realm.
        realm: RealmRow,
        /// How many users it has (so that room is made once).
        users: usize,
        /// Its last update id.
        last_update_id: UpdateId,
    },
    /// A user.
    User(UserRow),
    /// A presence record.
    Presence {
        /// The record.
        record: PresenceRow,
        /// The realm of its user.
        realm_id: RealmId,
    },
    /// An embed key, revoked ones included (a revoked key's origins still
    /// get its refusals through to the page).
    EmbedKey(EmbedKeyRow),
    /// A user's status.
    Status {
        /// The status.
        row: StatusRow,
        /// The realm of its user.
        realm_id: RealmId,
    },
}

/// A realm's last update id: where its sequence of presence changes stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequence {
    /// The realm.
    pub realm_id: RealmId,
    /// The update id of its latest change (0 before any).
    pub last_update_id: UpdateId,
}

/// When an embed key was last used, as a server records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedKeyUse {
    /// The key.
    pub key: EmbedKeyId,
    /// Unix seconds of the use.
    pub at: i64,
}

/// A realm with how many users it has, for `realm list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmSummary {
    /// The realm.
    pub realm: RealmRow,
    /// Its users, deactivated ones and bots included.
    pub users: usize,
    /// Its active users.
    pub active_users: usize,
}

/// What `user set` changes of a user.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserChange<'a> {
    /// A new email (unique in the realm).
    pub email: Option<&'a str>,
    /// A new display name.
    pub full_name: Option<&'a str>,
}

/// A user an admin deleted, as servers learn of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedUser {
    /// The realm the user was in.
    pub realm_id: RealmId,
    /// The user's id, never given again.
    pub user_id: UserId,
}

/// Realms and users changed after a given directory version.
#[derive(Debug, Default)]
pub struct DirectoryChanges {
    /// Changed or new realms.
    pub realms: Vec<RealmRow>,
    /// Changed or new users.
    pub users: Vec<UserRow>,
    /// Changed or new embed keys.
    pub embed_keys: Vec<EmbedKeyRow>,
    /// Users deleted.
    pub deleted_users: Vec<DeletedUser>,
    /// Changed or new statuses.
    pub statuses: Vec<StatusRow>,
    /// The version these changes bring the reader to.
    pub version: i64,
}

/// The current records of the users of one realm whose presence changed
/// after some update id, read in one snapshot.
#[derive(Debug, Default)]
pub struct PresenceChanges {
    /// The realm's last update id in that snapshot: the records reflect
    /// every change up to it and none after.
    pub last_update_id: UpdateId,
    /// Each changed user with all of its records.
    pub users: Vec<UserRecords>,
}

/// A user's presence records, as [`PresenceChanges`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecords {
    /// The user.
    pub user_id: UserId,
    /// All of the user's current records (none when all were removed).
    pub records: Vec<PresenceRow>,
}

impl UserRecords {
    /// The update id of the user's latest change among these records (0
    /// for none).
    pub fn latest_update_id(&self) -> UpdateId {
        self.records
            .iter()
            .map(|r| r.update_id)
            .max()
            .unwrap_or_default()
    }
}

impl PresenceChanges {
    /// Groups records that come ordered by user into one entry per user.
    pub fn from_records(
        last_update_id: UpdateId,
        records: impl IntoIterator<Item = PresenceRow>,
    ) -> PresenceChanges {
        let mut users: Vec<UserRecords> = Vec::new();
        for record in records {
            match users.last_mut() {
                Some(user) if user.user_id == record.user_id => user.records.push(record),
                _ => users.push(UserRecords {
                    user_id: record.user_id,
                    records: vec![record],
                }),
            }
        }
        PresenceChanges {
            last_update_id,
            users,
        }
    }
}

/// The kind of a push device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// Apple Push Notification service.
    Apns,
    /// Firebase Cloud Messaging (Android).
    Fcm,
}

impl DeviceKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Apns => "apns",
            DeviceKind::Fcm => "fcm",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<DeviceKind> {
        match name {
            "apns" => Some(DeviceKind::Apns),
            "fcm" => Some(DeviceKind::Fcm),
            _ => None,
        }
    }
}

/// A registered push device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// The device's owner.
    pub user_id: UserId,
    /// APNs or FCM.
    pub kind: DeviceKind,
    /// The device token.
    pub token: String,
    /// The app id (APNs only).
    pub appid: Option<String>,
}

/// Everything a store holds, ids included: what moves an installation from
/// one store to another (`presence-server export` / `import`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dump {
    /// Every realm.
    pub realms: Vec<RealmRow>,
    /// Every user (`push_devices` is derived from `devices` and ignored on import).
    pub users: Vec<UserRow>,
    /// Every presence record.
    pub presence: Vec<PresenceRow>,
    /// Every push device.
    pub devices: Vec<DeviceRow>,
    /// Every embed key, revoked ones included.
    pub embed_keys: Vec<EmbedKeyRow>,
    /// Every status.
    pub statuses: Vec<StatusRow>,
}

/// One change the server makes durable; a batch of them commits atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Create or overwrite a presence record.
    PutPresence(PresenceRow),
    /// Remove a presence record (to make room under the per-user client bound).
    DeletePresence {
        /// The record's user.
        user_id: UserId,
        /// The record's client.
        client: String,
    },
    /// Change a user's presence settings.
    SetUserSettings {
        /// The user.
        user_id: UserId,
        /// The new `presence_enabled`.
        presence_enabled: bool,
        /// The new `enable_offline_push_notifications`.
        enable_offline_push_notifications: bool,
    },
    /// Register a push device (a no-op if it is already registered).
    AddDevice {
        /// The device's owner.
        user_id: UserId,
        /// APNs or FCM.
        kind: DeviceKind,
        /// The device token.
        token: String,
        /// The app id (APNs only).
        appid: Option<String>,
    },
    /// Remove a push device.
    RemoveDevice {
        /// The device's owner.
        user_id: UserId,
        /// APNs or FCM.
        kind: DeviceKind,
        /// The device token.
        token: String,
    },
    /// Create or overwrite a user's status.
    PutStatus(StatusRow),
    /// Clear a user's status text and emoji, if its expiry is still
    /// `expires_at` (a no-op once cleared or replaced: any node may do it).
    ExpireStatus {
        /// The user.
        user_id: UserId,
        /// The expiry being carried out.
        expires_at: i64,
    },
}

impl Mutation {
    /// Whether it writes a presence record (a put or a removal) rather
    /// than a user's settings, devices or status.
    pub fn is_presence(&self) -> bool {
        matches!(
            self,
            Mutation::PutPresence(_) | Mutation::DeletePresence { .. }
        )
    }
}

/// What can go wrong in a store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The embedded database failed (I/O, corruption, lock time-out).
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// PostgreSQL failed or the connection to it broke.
    #[error("PostgreSQL: {0}")]
    Postgres(PostgresFailure),
    /// The database cannot be reached now; the store will try again.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A batch method was called out of order (a bug in the caller).
    #[error("no batch is open")]
    NoBatch,
    /// The database file cannot be trusted: empty, foreign, damaged or
    /// read-only.
    #[error("{reason}; refused")]
    Untrusted {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The data directory could not be created or opened.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The database was written by a newer version of this program.
    #[error("the database has schema version {found}, newer than this program's {supported}")]
    SchemaTooNew {
        /// The version found.
        found: i64,
        /// The newest this program knows.
        supported: i64,
    },
    /// No realm has this string id.
    #[error("no realm named {0:?}")]
    UnknownRealm(String),
    /// The realm is deactivated: nothing may be added to it.
    #[error("realm {0:?} is deactivated (reactivate it first)")]
    RealmDeactivated(String),
    /// A realm with this string id exists already.
    #[error("a realm named {0:?} exists already")]
    RealmExists(String),
    /// No user of the realm has this email.
    #[error("no user with email {email:?} in realm {realm:?}")]
    UnknownUser {
        /// The realm's string id.
        realm: String,
        /// The email looked for.
        email: String,
    },
    /// An import would overwrite something the store has.
    #[error("cannot import: {0}")]
    ImportConflict(String),
    /// The realm has a user with this email already.
    #[error("realm {realm:?} has a user with email {email:?} already")]
    DuplicateEmail {
        /// The realm's string id.
        realm: String,
        /// The email.
        email: String,
    },
    /// The realm has a live embed key of this name already.
    #[error("realm {realm:?} has an embed key named {name:?} already")]
    DuplicateEmbedKey {
        /// The realm's string id.
        realm: String,
        /// The name.
        name: String,
    },
    /// The realm has no live embed key of this name.
    #[error("realm {realm:?} has no embed key named {name:?} (or it is revoked already)")]
    UnknownEmbedKey {
        /// The realm's string id.
        realm: String,
        /// The name.
        name: String,
    },
}

/// What went wrong with PostgreSQL, said the way an operator needs it:
/// what failed (the database is missing, the login was refused, the server
/// cannot be reached), then PostgreSQL's own words.
#[derive(Debug)]
pub struct PostgresFailure(pub ::postgres::Error);

impl std::fmt::Display for PostgresFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use ::postgres::error::SqlState;
        let error = &self.0;
        if let Some(db) = error.as_db_error() {
            let what = match *db.code() {
                SqlState::INVALID_CATALOG_NAME => Some("the database does not exist"),
                SqlState::INVALID_PASSWORD | SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                    Some("the login was refused")
                }
                SqlState::INSUFFICIENT_PRIVILEGE => Some("permission denied"),
                _ => None,
            };
            return match what {
                Some(what) => write!(f, "{what} ({})", db.message()),
                None => write!(f, "{}", db.message()),
            };
        }
        let io = std::error::Error::source(error)
            .and_then(|source| source.downcast_ref::<std::io::Error>());
        match io {
            Some(io) => write!(f, "cannot reach the server ({io})"),
            None => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for PostgresFailure {}

impl From<::postgres::Error> for StoreError {
    fn from(error: ::postgres::Error) -> Self {
        StoreError::Postgres(PostgresFailure(error))
    }
}

/// A new user, as the admin command creates it.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// The realm's string id.
    pub realm: &'a str,
    /// The email.
    pub email: &'a str,
    /// The display name.
    pub full_name: &'a str,
    /// Whether the user is a bot.
    pub is_bot: bool,
    /// SHA-256 of the new API key.
    pub api_key_hash: [u8; 32],
    /// Unix seconds of creation.
    pub date_joined: i64,
}

impl NewUser<'_> {
    /// The row a store holds for this user once created with `id` in the
    /// realm `realm_id`: active, presence on, push on, no devices, and the
    /// email as given but trimmed.
    pub fn created_row(&self, id: UserId, realm_id: RealmId) -> UserRow {
        UserRow {
            id,
            realm_id,
            email: self.email.trim().to_owned(),
            full_name: self.full_name.to_owned(),
            is_bot: self.is_bot,
            is_active: true,
            date_joined: self.date_joined,
            api_key_hash: self.api_key_hash,
            presence_enabled: true,
            enable_offline_push_notifications: true,
            push_devices: 0,
        }
    }
}

/// Durable storage for realms, users, settings, push devices and presence.
///
/// Methods block; call them from a thread that may block.
pub trait Store: Send {
    /// Reads everything the server keeps in memory, handing each item to
    /// `sink` as it is read (so that nothing is held twice while loading),
    /// and returns the directory version the items reflect.
    fn load(&mut self, sink: &mut dyn FnMut(Loaded)) -> Result<i64, StoreError>;
    /// Starts a batch of changes: opens a write transaction and locks the
    /// update-id sequences of `realms` (sorted, without repeats) until the
    /// batch ends, so that no other writer takes ids of these realms
    /// meanwhile. Returns each realm's last update id as stored, in the same
    /// order; a realm that does not exist reads 0.
    fn begin_batch(&mut self, realms: &[RealmId]) -> Result<Vec<UpdateId>, StoreError>;
    /// Writes `batch`, sets each realm of `sequences` to its new last update
    /// id, tells other nodes, and commits: all or nothing. The transaction
    /// is over afterwards, whether this succeeded or not.
    fn commit_batch(
        &mut self,
        batch: &[Mutation],
        sequences: &[Sequence],
    ) -> Result<(), StoreError>;
    /// [`Store::commit_batch`], told the realm of each mutation's user
    /// (`realms[i]` is `batch[i]`'s), so that a store shared by several
    /// nodes can publish each realm's changes with its notification
    /// ([`published`]). The default commits without publishing.
    fn commit_batch_in_realms(
        &mut self,
        batch: &[Mutation],
        _realms: &[RealmId],
        sequences: &[Sequence],
    ) -> Result<(), StoreError> {
        self.commit_batch(batch, sequences)
    }
    /// Other nodes' published batches of a realm covering exactly its ids
    /// after `since` up to `until`, in order, if this store heard them all
    /// (waiting up to `wait` for the last); else `None`: read the changes.
    fn published(
        &mut self,
        _realm_id: RealmId,
        _since: UpdateId,
        _until: UpdateId,
        _wait: std::time::Duration,
    ) -> Option<Vec<published::Published>> {
        None
    }
    /// The realms of which this store holds batches other nodes published
    /// (see [`Store::published_following`]).
    fn published_realms(&mut self) -> Vec<RealmId> {
        Vec::new()
    }
    /// Other nodes' published batches of a realm that follow its update id
    /// `since` without a gap, in order (none if there are none); `None` if
    /// the store holds a batch of the realm that does not follow them (a
    /// notification went missing): read the changes instead. A contiguous
    /// chain from `since` is every commit in its range, whatever the
    /// sequence now says (docs/ARCHITECTURE.md, "Learning another node's
    /// commit").
    fn published_following(
        &mut self,
        _realm_id: RealmId,
        _since: UpdateId,
    ) -> Option<Vec<published::Published>> {
        None
    }
    /// Returns once everything committed so far, by any process, is on
    /// disk as this store's durability promises it: a node shows another's
    /// commit only after this (or after one of its own batches, whose
    /// commit does the same). A store whose commits are durable once
    /// visible returns at once.
    fn wait_durable(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Ends a batch without writing anything.
    fn abort_batch(&mut self);
    /// How this store's later batches commit (see [`Durability`]); until
    /// told, `full`. Admin changes always wait for the disk.
    fn set_durability(&mut self, durability: Durability) -> Result<(), StoreError>;
    /// Every realm's last update id.
    fn sequences(&mut self) -> Result<Vec<Sequence>, StoreError>;
    /// The sum of every realm's last update id, read in one answer. Ids
    /// only grow, so an unchanged total means that no realm changed: a
    /// node that finds the total it saw last skips reading the
    /// [`Store::sequences`], whose cost grows with the number of realms.
    fn sequences_total(&mut self) -> Result<i64, StoreError>;
    /// The users of a realm whose records changed after update id `since`,
    /// with all their current records, read in one snapshot (inside a
    /// batch, the batch's own view).
    fn presence_changes(
        &mut self,
        realm_id: RealmId,
        since: UpdateId,
    ) -> Result<PresenceChanges, StoreError>;
    /// The current directory version (cheap; polled to notice outside changes).
    fn directory_version(&mut self) -> Result<i64, StoreError>;
    /// Realms and users changed after `since`.
    fn directory_changes(&mut self, since: i64) -> Result<DirectoryChanges, StoreError>;
    /// Whether a user has registered this push device.
    fn has_device(
        &mut self,
        user_id: UserId,
        kind: DeviceKind,
        token: &str,
    ) -> Result<bool, StoreError>;

    /// Creates a realm.
    fn create_realm(
        &mut self,
        string_id: &str,
        name: &str,
        now: i64,
    ) -> Result<RealmRow, StoreError>;
    /// Every realm, with its users counted.
    fn list_realms(&mut self) -> Result<Vec<RealmSummary>, StoreError>;
    /// Gives a realm a new display name.
    fn rename_realm(&mut self, string_id: &str, name: &str) -> Result<(), StoreError>;
    /// Sets a realm's `deactivated` flag; whether it changed.
    fn set_realm_deactivated(
        &mut self,
        string_id: &str,
        deactivated: bool,
    ) -> Result<bool, StoreError>;
    /// Sets a realm's `presence_disabled` flag; whether it changed.
    fn set_realm_presence_disabled(
        &mut self,
        string_id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError>;
    /// Creates a user (refused in a deactivated realm).
    fn create_user(&mut self, user: &NewUser<'_>) -> Result<UserRow, StoreError>;
    /// Sets a user's `is_active` flag; whether it changed.
    fn set_user_active(
        &mut self,
        realm: &str,
        email: &str,
        active: bool,
    ) -> Result<bool, StoreError>;
    /// Changes a user's email or name; the user as it is now.
    fn update_user(
        &mut self,
        realm: &str,
        email: &str,
        change: &UserChange<'_>,
    ) -> Result<UserRow, StoreError>;
    /// Deletes a user with its presence and push devices; the user as it was.
    fn delete_user(&mut self, realm: &str, email: &str) -> Result<UserRow, StoreError>;
    /// Replaces a user's API key hash.
    fn set_api_key_hash(
        &mut self,
        realm: &str,
        email: &str,
        hash: [u8; 32],
    ) -> Result<(), StoreError>;
    /// Every user of a realm, by id.
    fn list_users(&mut self, realm: &str) -> Result<Vec<UserRow>, StoreError>;

    /// Creates an embed key (refused in a deactivated realm).
    fn create_embed_key(&mut self, key: &NewEmbedKey<'_>) -> Result<EmbedKeyRow, StoreError>;
    /// Every embed key of a realm, revoked ones included, oldest first.
    fn list_embed_keys(&mut self, realm: &str) -> Result<Vec<EmbedKeyRow>, StoreError>;
    /// Revokes a realm's live embed key by name, at `now`.
    fn revoke_embed_key(
        &mut self,
        realm: &str,
        name: &str,
        now: i64,
    ) -> Result<EmbedKeyRow, StoreError>;
    /// Records when embed keys were last used; a time earlier than the one
    /// stored is ignored. Not a directory change: no server needs to hear of
    /// it.
    fn record_embed_key_use(&mut self, uses: &[EmbedKeyUse]) -> Result<(), StoreError>;

    /// Records that a serving node is alive and has installed directory
    /// changes up to a version (creating its row at the first report), and
    /// forgets the nodes that stopped reporting before `forget_before`.
    fn report_node(&mut self, node: &NodeRow, forget_before: i64) -> Result<(), StoreError>;
    /// Removes a node's row (it stopped).
    fn remove_node(&mut self, id: &str) -> Result<(), StoreError>;
    /// Every node's latest report.
    fn nodes(&mut self) -> Result<Vec<NodeRow>, StoreError>;

    /// Everything the store holds.
    fn export(&mut self) -> Result<Dump, StoreError>;
    /// Adds everything in `dump`, keeping its ids, in one transaction: a
    /// realm, user or id that exists already refuses the whole import.
    fn import(&mut self, dump: &Dump) -> Result<(), StoreError>;

    /// Tells `on_change`, from a thread of the store's own, when another
    /// process has committed something: [`Notice::Changed`] soon after such
    /// a commit (and after a reconnection, when some may have been missed),
    /// [`Notice::Quiet`] at least once a second otherwise. The thread ends,
    /// releasing its connection, once `on_change` returns false. A store
    /// that cannot tell does nothing: its reader finds changes by polling.
    fn subscribe(
        &mut self,
        on_change: Box<dyn Fn(Notice) -> bool + Send>,
    ) -> Result<(), StoreError> {
        drop(on_change);
        Ok(())
    }
}

/// What a store's subscription reports (see [`Store::subscribe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Someone else committed a change (or may have): catch up.
    Changed,
    /// Others committed presence records alone, and the store holds every
    /// one of those commits as a published batch: install them from there
    /// ([`Store::published_following`]), with no look at the store.
    Published,
    /// Nothing new; the subscriber may say whether it still listens.
    Quiet,
}
