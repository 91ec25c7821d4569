//! Durable storage: the `Store` trait and its rows.
//!
//! The store is the source of truth; the service keeps everything in memory
//! and uses the store only to load at start, to make changes durable, and to
//! learn of changes made by others (the admin command writing to the same
//! data directory). Store methods are blocking: the server calls them from
//! one dedicated writer thread, never from an async worker.
//!
//! Every change to realms, users, settings or push devices bumps a store-wide
//! *directory version*, and the changed row remembers it; a reader that holds
//! the version it last saw can fetch exactly the rows changed since.

pub mod sqlite;

use thiserror::Error;

/// A realm (organization) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmRow {
    /// Server-wide id.
    pub id: i64,
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
    pub id: i64,
    /// The realm the user belongs to.
    pub realm_id: i64,
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
    pub user_id: i64,
    /// The client name.
    pub client: String,
    /// Unix seconds of the last report of any kind.
    pub last_connected_time: i64,
    /// Unix seconds of the last active report, if any.
    pub last_active_time: Option<i64>,
    /// The realm's update id of the last change to this record.
    pub update_id: i64,
}

/// One item of what the server loads at start, in the order `Store::load`
/// gives them: every realm, then every user, then every presence record
/// grouped by user.
#[derive(Debug)]
pub enum Loaded {
    /// A realm, and how many users it has (so that room is made once).
    Realm(RealmRow, usize),
    /// A user.
    User(UserRow),
    /// A presence record, and the realm of its user.
    Presence(PresenceRow, i64),
}

/// Realms and users changed after a given directory version.
#[derive(Debug, Default)]
pub struct DirectoryChanges {
    /// Changed or new realms.
    pub realms: Vec<RealmRow>,
    /// Changed or new users.
    pub users: Vec<UserRow>,
    /// The version these changes bring the reader to.
    pub version: i64,
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
    pub user_id: i64,
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
}

/// One change the server makes durable; a batch of them commits atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Create or overwrite a presence record.
    PutPresence(PresenceRow),
    /// Remove a presence record (to make room under the per-user client bound).
    DeletePresence {
        /// The record's user.
        user_id: i64,
        /// The record's client.
        client: String,
    },
    /// Change a user's presence settings.
    SetUserSettings {
        /// The user.
        user_id: i64,
        /// The new `presence_enabled`.
        presence_enabled: bool,
        /// The new `enable_offline_push_notifications`.
        enable_offline_push_notifications: bool,
    },
    /// Register a push device (a no-op if it is already registered).
    AddDevice {
        /// The device's owner.
        user_id: i64,
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
        user_id: i64,
        /// APNs or FCM.
        kind: DeviceKind,
        /// The device token.
        token: String,
    },
}

/// What can go wrong in a store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database itself failed (I/O, corruption, lock time-out).
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
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

/// Durable storage for realms, users, settings, push devices and presence.
///
/// Methods block; call them from a thread that may block.
pub trait Store: Send {
    /// Reads everything the server keeps in memory, handing each item to
    /// `sink` as it is read (so that nothing is held twice while loading),
    /// and returns the directory version the items reflect.
    fn load(&mut self, sink: &mut dyn FnMut(Loaded)) -> Result<i64, StoreError>;
    /// Makes a batch of changes durable in one transaction: all or nothing.
    fn commit(&mut self, batch: &[Mutation]) -> Result<(), StoreError>;
    /// The current directory version (cheap; polled to notice outside changes).
    fn directory_version(&mut self) -> Result<i64, StoreError>;
    /// Realms and users changed after `since`.
    fn directory_changes(&mut self, since: i64) -> Result<DirectoryChanges, StoreError>;
    /// Whether a user has registered this push device.
    fn has_device(
        &mut self,
        user_id: i64,
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
    /// Sets a realm's `deactivated` flag.
    fn set_realm_deactivated(
        &mut self,
        string_id: &str,
        deactivated: bool,
    ) -> Result<(), StoreError>;
    /// Sets a realm's `presence_disabled` flag.
    fn set_realm_presence_disabled(
        &mut self,
        string_id: &str,
        disabled: bool,
    ) -> Result<(), StoreError>;
    /// Creates a user.
    fn create_user(&mut self, user: &NewUser<'_>) -> Result<UserRow, StoreError>;
    /// Sets a user's `is_active` flag.
    fn set_user_active(&mut self, realm: &str, email: &str, active: bool)
    -> Result<(), StoreError>;
    /// Replaces a user's API key hash.
    fn set_api_key_hash(
        &mut self,
        realm: &str,
        email: &str,
        hash: [u8; 32],
    ) -> Result<(), StoreError>;
    /// Every user of a realm, by id.
    fn list_users(&mut self, realm: &str) -> Result<Vec<UserRow>, StoreError>;

    /// Everything the store holds.
    fn export(&mut self) -> Result<Dump, StoreError>;
    /// Adds everything in `dump`, keeping its ids, in one transaction: a
    /// realm, user or id that exists already refuses the whole import.
    fn import(&mut self, dump: &Dump) -> Result<(), StoreError>;
}
