//! The embedded store: one SQLite file in the data directory.
//!
//! WAL mode lets the admin command write while a server reads and writes the
//! same file; `synchronous = FULL` makes every commit survive a power loss,
//! and the server's group commit keeps that affordable.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{
    DeviceKind, DeviceRow, DirectoryChanges, Dump, EmbedKeyRow, Loaded, Mutation, NewEmbedKey,
    NewUser, NodeRow, PresenceChanges, PresenceRow, RealmRow, RealmSummary, Store, StoreError,
    UserChange, UserRow, email_key,
};

mod directory;
mod embed;
mod trust;

/// The schema version this program writes (SQLite's `user_version`).
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('directory_version', 0);
CREATE TABLE realms (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    string_id         TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    presence_disabled INTEGER NOT NULL DEFAULT 0,
    deactivated       INTEGER NOT NULL DEFAULT 0,
    date_created      INTEGER NOT NULL,
    row_version       INTEGER NOT NULL
);
CREATE TABLE users (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    realm_id          INTEGER NOT NULL REFERENCES realms (id),
    email             TEXT NOT NULL,
    email_key         TEXT NOT NULL,
    full_name         TEXT NOT NULL,
    is_bot            INTEGER NOT NULL,
    is_active         INTEGER NOT NULL DEFAULT 1,
    date_joined       INTEGER NOT NULL,
    api_key_hash      BLOB NOT NULL UNIQUE,
    presence_enabled  INTEGER NOT NULL DEFAULT 1,
    enable_offline_push_notifications INTEGER NOT NULL DEFAULT 1,
    row_version       INTEGER NOT NULL,
    UNIQUE (realm_id, email_key)
);
CREATE INDEX users_row_version ON users (row_version);
CREATE TABLE push_devices (
    user_id INTEGER NOT NULL REFERENCES users (id),
    kind    TEXT NOT NULL,
    token   TEXT NOT NULL,
    appid   TEXT,
    PRIMARY KEY (user_id, kind, token)
) WITHOUT ROWID;
CREATE TABLE client_presence (
    user_id             INTEGER NOT NULL REFERENCES users (id),
    client              TEXT NOT NULL,
    last_connected_time INTEGER NOT NULL,
    last_active_time    INTEGER,
    update_id           INTEGER NOT NULL,
    PRIMARY KEY (user_id, client)
) WITHOUT ROWID;
";

/// Version 2: each realm's last update id in a row of its own, which a batch
/// holds while it takes ids (the PostgreSQL store shares the design).
const SCHEMA_V2: &str = "
CREATE TABLE realm_sequences (
    realm_id       INTEGER PRIMARY KEY REFERENCES realms (id),
    last_update_id INTEGER NOT NULL DEFAULT 0
);
INSERT INTO realm_sequences (realm_id, last_update_id)
SELECT r.id, COALESCE((SELECT MAX(p.update_id) FROM client_presence p
                       JOIN users u ON u.id = p.user_id WHERE u.realm_id = r.id), 0)
FROM realms r;
";

const USER_COLUMNS: &str = "u.id, u.realm_id, u.email, u.full_name, u.is_bot, u.is_active, \
     u.date_joined, u.api_key_hash, u.presence_enabled, u.enable_offline_push_notifications, \
     (SELECT COUNT(*) FROM push_devices d WHERE d.user_id = u.id)";

const REALM_COLUMNS: &str = "id, string_id, name, presence_disabled, deactivated, date_created";

/// The file name of the database inside the data directory.
pub const DATABASE_FILE: &str = "presence.sqlite3";

/// A `Store` over one SQLite connection.
pub struct SqliteStore {
    conn: Connection,
    /// A batch's write transaction is open on `conn`.
    in_batch: bool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir`, and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        trust::check_file(&path)?;
        let conn = Connection::open(&path)?;
        // Another process (the admin command, or the server) may hold the
        // write lock for a moment; wait for it rather than fail.
        conn.busy_timeout(Duration::from_secs(10))?;
        trust::check_database(&conn, &path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = SqliteStore {
            conn,
            in_batch: false,
        };
        store.migrate()?;
        trust::check_writable(&store.conn, &path)?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        // IMMEDIATE takes the write lock first, so two processes starting on
        // a new directory at once cannot both create the schema.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < 1 {
            tx.execute_batch(SCHEMA)?;
        }
        if version < 2 {
            tx.execute_batch(SCHEMA_V2)?;
        }
        if version < 3 {
            tx.execute_batch(embed::SCHEMA_V3)?;
            tx.execute_batch(directory::SCHEMA_V3)?;
        }
        if version < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Takes the next directory version inside a write transaction.
fn next_directory_version(tx: &Connection) -> Result<i64, StoreError> {
    Ok(tx.query_row(
        "UPDATE meta SET value = value + 1 WHERE key = 'directory_version' RETURNING value",
        [],
        |r| r.get(0),
    )?)
}

fn realm_id(tx: &Transaction<'_>, string_id: &str) -> Result<i64, StoreError> {
    tx.query_row(
        "SELECT id FROM realms WHERE string_id = ?1",
        [string_id],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::UnknownRealm(string_id.to_owned()))
}

fn user_id(tx: &Transaction<'_>, realm: &str, email: &str) -> Result<i64, StoreError> {
    let realm_id = realm_id(tx, realm)?;
    tx.query_row(
        "SELECT id FROM users WHERE realm_id = ?1 AND email_key = ?2",
        params![realm_id, email_key(email)],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::UnknownUser {
        realm: realm.to_owned(),
        email: email.to_owned(),
    })
}

fn realm_row(r: &Row<'_>) -> rusqlite::Result<RealmRow> {
    Ok(RealmRow {
        id: r.get(0)?,
        string_id: r.get(1)?,
        name: r.get(2)?,
        presence_disabled: r.get(3)?,
        deactivated: r.get(4)?,
        date_created: r.get(5)?,
    })
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    let hash: Vec<u8> = r.get(7)?;
    let api_key_hash: [u8; 32] = hash.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            7,
            rusqlite::types::Type::Blob,
            "api_key_hash is not 32 bytes".into(),
        )
    })?;
    Ok(UserRow {
        id: r.get(0)?,
        realm_id: r.get(1)?,
        email: r.get(2)?,
        full_name: r.get(3)?,
        is_bot: r.get(4)?,
        is_active: r.get(5)?,
        date_joined: r.get(6)?,
        api_key_hash,
        presence_enabled: r.get(8)?,
        enable_offline_push_notifications: r.get(9)?,
        push_devices: r.get(10)?,
    })
}

fn presence_row(r: &Row<'_>) -> rusqlite::Result<PresenceRow> {
    Ok(PresenceRow {
        user_id: r.get(0)?,
        client: r.get(1)?,
        last_connected_time: r.get(2)?,
        last_active_time: r.get(3)?,
        update_id: r.get(4)?,
    })
}

fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, f)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn touch_user(tx: &Connection, user_id: i64) -> Result<(), StoreError> {
    let version = next_directory_version(tx)?;
    tx.execute(
        "UPDATE users SET row_version = ?1 WHERE id = ?2",
        params![version, user_id],
    )?;
    Ok(())
}

/// Each realm's last update id, in the order asked (0 for a realm without one).
fn read_sequences(conn: &Connection, realms: &[i64]) -> Result<Vec<i64>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT last_update_id FROM realm_sequences WHERE realm_id = ?1")?;
    let mut last = Vec::with_capacity(realms.len());
    for &realm in realms {
        last.push(
            stmt.query_row([realm], |r| r.get(0))
                .optional()?
                .unwrap_or(0),
        );
    }
    Ok(last)
}

/// The users of a realm changed after `since`, with all their records.
fn read_presence_changes(
    conn: &Connection,
    realm_id: i64,
    since: i64,
) -> Result<PresenceChanges, StoreError> {
    let last_update_id = read_sequences(conn, &[realm_id])?[0];
    let rows = query_all(
        conn,
        "SELECT p.user_id, p.client, p.last_connected_time, p.last_active_time, p.update_id \
         FROM client_presence p WHERE p.user_id IN \
         (SELECT c.user_id FROM client_presence c JOIN users u ON u.id = c.user_id \
          WHERE u.realm_id = ?1 AND c.update_id > ?2) \
         ORDER BY p.user_id, p.client",
        params![realm_id, since],
        presence_row,
    )?;
    Ok(PresenceChanges::from_records(last_update_id, rows))
}

/// Writes a batch's mutations and new sequence values inside the open
/// write transaction.
fn write_batch(
    tx: &Connection,
    batch: &[Mutation],
    sequences: &[(i64, i64)],
) -> Result<(), StoreError> {
    for mutation in batch {
        match mutation {
            Mutation::PutPresence(p) => {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO client_presence \
                         (user_id, client, last_connected_time, last_active_time, update_id) \
                         VALUES (?1, ?2, ?3, ?4, ?5) \
                         ON CONFLICT (user_id, client) DO UPDATE SET \
                         last_connected_time = excluded.last_connected_time, \
                         last_active_time = excluded.last_active_time, \
                         update_id = excluded.update_id",
                )?;
                stmt.execute(params![
                    p.user_id,
                    p.client,
                    p.last_connected_time,
                    p.last_active_time,
                    p.update_id
                ])?;
            }
            Mutation::DeletePresence { user_id, client } => {
                tx.execute(
                    "DELETE FROM client_presence WHERE user_id = ?1 AND client = ?2",
                    params![user_id, client],
                )?;
            }
            Mutation::SetUserSettings {
                user_id,
                presence_enabled,
                enable_offline_push_notifications,
            } => {
                tx.execute(
                    "UPDATE users SET presence_enabled = ?1, \
                         enable_offline_push_notifications = ?2 WHERE id = ?3",
                    params![presence_enabled, enable_offline_push_notifications, user_id],
                )?;
                touch_user(tx, *user_id)?;
            }
            Mutation::AddDevice {
                user_id,
                kind,
                token,
                appid,
            } => {
                tx.execute(
                    "INSERT INTO push_devices (user_id, kind, token, appid) \
                         VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (user_id, kind, token) DO UPDATE SET appid = excluded.appid",
                    params![user_id, kind.as_str(), token, appid],
                )?;
                touch_user(tx, *user_id)?;
            }
            Mutation::RemoveDevice {
                user_id,
                kind,
                token,
            } => {
                tx.execute(
                    "DELETE FROM push_devices WHERE user_id = ?1 AND kind = ?2 AND token = ?3",
                    params![user_id, kind.as_str(), token],
                )?;
                touch_user(tx, *user_id)?;
            }
        }
    }
    let mut set_sequence = tx.prepare_cached(
        "INSERT INTO realm_sequences (realm_id, last_update_id) VALUES (?1, ?2) \
         ON CONFLICT (realm_id) DO UPDATE SET last_update_id = excluded.last_update_id",
    )?;
    for &(realm, last) in sequences {
        set_sequence.execute([realm, last])?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn load(&mut self, sink: &mut dyn FnMut(Loaded)) -> Result<i64, StoreError> {
        // One read transaction, so the parts agree with each other.
        let tx = self.conn.transaction()?;
        let directory_version = tx.query_row(
            "SELECT value FROM meta WHERE key = 'directory_version'",
            [],
            |r| r.get(0),
        )?;
        let mut each = |sql: &str, f: &mut dyn FnMut(&Row<'_>) -> rusqlite::Result<Loaded>| {
            let mut stmt = tx.prepare(sql)?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                sink(f(row)?);
            }
            Ok::<(), StoreError>(())
        };
        each(
            &format!(
                "SELECT {REALM_COLUMNS}, \
                 (SELECT COUNT(*) FROM users u WHERE u.realm_id = realms.id), \
                 COALESCE((SELECT last_update_id FROM realm_sequences s \
                           WHERE s.realm_id = realms.id), 0) \
                 FROM realms ORDER BY id"
            ),
            &mut |r| {
                Ok(Loaded::Realm(
                    realm_row(r)?,
                    r.get::<_, i64>(6)? as usize,
                    r.get(7)?,
                ))
            },
        )?;
        each(
            &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.id"),
            &mut |r| user_row(r).map(Loaded::User),
        )?;
        // The primary key's order: grouped by user at no sorting cost.
        each(
            "SELECT p.user_id, p.client, p.last_connected_time, p.last_active_time, \
             p.update_id, u.realm_id \
             FROM client_presence p JOIN users u ON u.id = p.user_id \
             ORDER BY p.user_id, p.client",
            &mut |r| Ok(Loaded::Presence(presence_row(r)?, r.get(5)?)),
        )?;
        for key in embed::all(&tx)? {
            sink(Loaded::EmbedKey(key));
        }
        tx.commit()?;
        Ok(directory_version)
    }

    fn begin_batch(&mut self, realms: &[i64]) -> Result<Vec<i64>, StoreError> {
        self.abort_batch();
        // IMMEDIATE takes the database's write lock: the sequences cannot
        // move under the batch.
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        self.in_batch = true;
        let read = read_sequences(&self.conn, realms);
        if read.is_err() {
            self.abort_batch();
        }
        read
    }

    fn commit_batch(
        &mut self,
        batch: &[Mutation],
        sequences: &[(i64, i64)],
    ) -> Result<(), StoreError> {
        if !self.in_batch {
            return Err(StoreError::NoBatch);
        }
        let written = write_batch(&self.conn, batch, sequences)
            .and_then(|()| Ok(self.conn.execute_batch("COMMIT")?));
        if written.is_err() {
            self.abort_batch();
        }
        self.in_batch = false;
        written
    }

    fn abort_batch(&mut self) {
        if self.in_batch {
            self.in_batch = false;
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::warn!(error = %e, "rollback failed");
            }
        }
    }

    fn sequences(&mut self) -> Result<Vec<(i64, i64)>, StoreError> {
        query_all(
            &self.conn,
            "SELECT realm_id, last_update_id FROM realm_sequences ORDER BY realm_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn presence_changes(
        &mut self,
        realm_id: i64,
        since: i64,
    ) -> Result<PresenceChanges, StoreError> {
        // Inside a batch the write lock already fixes the view; outside, a
        // read transaction is one snapshot (WAL mode).
        if self.in_batch {
            return read_presence_changes(&self.conn, realm_id, since);
        }
        let tx = self.conn.transaction()?;
        let read = read_presence_changes(&tx, realm_id, since)?;
        tx.commit()?;
        Ok(read)
    }

    fn directory_version(&mut self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT value FROM meta WHERE key = 'directory_version'",
            [],
            |r| r.get(0),
        )?)
    }

    fn directory_changes(&mut self, since: i64) -> Result<DirectoryChanges, StoreError> {
        let tx = self.conn.transaction()?;
        let version = tx.query_row(
            "SELECT value FROM meta WHERE key = 'directory_version'",
            [],
            |r| r.get(0),
        )?;
        let realms = query_all(
            &tx,
            &format!("SELECT {REALM_COLUMNS} FROM realms WHERE row_version > ?1 ORDER BY id"),
            [since],
            realm_row,
        )?;
        let users = query_all(
            &tx,
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.row_version > ?1 ORDER BY u.id"),
            [since],
            user_row,
        )?;
        let embed_keys = embed::changed_since(&tx, since)?;
        let deleted_users = directory::deleted_since(&tx, since)?;
        tx.commit()?;
        Ok(DirectoryChanges {
            realms,
            users,
            embed_keys,
            deleted_users,
            version,
        })
    }

    fn has_device(
        &mut self,
        user_id: i64,
        kind: DeviceKind,
        token: &str,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM push_devices WHERE user_id = ?1 AND kind = ?2 AND token = ?3",
                params![user_id, kind.as_str(), token],
                |r| r.get(0),
            )
            .optional()?;
        Ok(found.is_some())
    }

    fn create_realm(
        &mut self,
        string_id: &str,
        name: &str,
        now: i64,
    ) -> Result<RealmRow, StoreError> {
        self.write(|tx| {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT id FROM realms WHERE string_id = ?1",
                    [string_id],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::RealmExists(string_id.to_owned()));
            }
            let version = next_directory_version(tx)?;
            tx.execute(
                "INSERT INTO realms (string_id, name, date_created, row_version) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![string_id, name, now, version],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO realm_sequences (realm_id, last_update_id) VALUES (?1, 0)",
                [id],
            )?;
            Ok(RealmRow {
                id,
                string_id: string_id.to_owned(),
                name: name.to_owned(),
                presence_disabled: false,
                deactivated: false,
                date_created: now,
            })
        })
    }

    fn list_realms(&mut self) -> Result<Vec<RealmSummary>, StoreError> {
        let tx = self.conn.transaction()?;
        let realms = directory::list_realms(&tx)?;
        tx.commit()?;
        Ok(realms)
    }

    fn rename_realm(&mut self, string_id: &str, name: &str) -> Result<(), StoreError> {
        self.write(|tx| directory::set_realm_column(tx, string_id, "name", &name).map(drop))
    }

    fn set_realm_deactivated(
        &mut self,
        string_id: &str,
        deactivated: bool,
    ) -> Result<bool, StoreError> {
        self.write(|tx| directory::set_realm_column(tx, string_id, "deactivated", &deactivated))
    }

    fn set_realm_presence_disabled(
        &mut self,
        string_id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        self.write(|tx| directory::set_realm_column(tx, string_id, "presence_disabled", &disabled))
    }

    fn create_user(&mut self, user: &NewUser<'_>) -> Result<UserRow, StoreError> {
        self.write(|tx| {
            let realm_id = directory::check_active_realm(tx, user.realm)?;
            let key = email_key(user.email);
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT id FROM users WHERE realm_id = ?1 AND email_key = ?2",
                    params![realm_id, key],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::DuplicateEmail {
                    realm: user.realm.to_owned(),
                    email: user.email.to_owned(),
                });
            }
            let version = next_directory_version(tx)?;
            let email = user.email.trim();
            tx.execute(
                "INSERT INTO users (realm_id, email, email_key, full_name, is_bot, date_joined, \
                 api_key_hash, row_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    realm_id,
                    email,
                    key,
                    user.full_name,
                    user.is_bot,
                    user.date_joined,
                    &user.api_key_hash[..],
                    version
                ],
            )?;
            Ok(user.created_row(tx.last_insert_rowid(), realm_id))
        })
    }

    fn set_user_active(
        &mut self,
        realm: &str,
        email: &str,
        active: bool,
    ) -> Result<bool, StoreError> {
        self.write(|tx| directory::set_user_active(tx, realm, email, active))
    }

    fn update_user(
        &mut self,
        realm: &str,
        email: &str,
        change: &UserChange<'_>,
    ) -> Result<UserRow, StoreError> {
        self.write(|tx| directory::update_user(tx, realm, email, change))
    }

    fn delete_user(&mut self, realm: &str, email: &str) -> Result<UserRow, StoreError> {
        self.write(|tx| directory::delete_user(tx, realm, email))
    }

    fn set_api_key_hash(
        &mut self,
        realm: &str,
        email: &str,
        hash: [u8; 32],
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let id = user_id(tx, realm, email)?;
            tx.execute(
                "UPDATE users SET api_key_hash = ?1 WHERE id = ?2",
                params![&hash[..], id],
            )?;
            touch_user(tx, id)
        })
    }

    fn list_users(&mut self, realm: &str) -> Result<Vec<UserRow>, StoreError> {
        let tx = self.conn.transaction()?;
        let realm_id = realm_id(&tx, realm)?;
        let users = query_all(
            &tx,
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.realm_id = ?1 ORDER BY u.id"),
            [realm_id],
            user_row,
        )?;
        tx.commit()?;
        Ok(users)
    }

    fn export(&mut self) -> Result<Dump, StoreError> {
        let tx = self.conn.transaction()?;
        let realms = query_all(
            &tx,
            &format!("SELECT {REALM_COLUMNS} FROM realms ORDER BY id"),
            [],
            realm_row,
        )?;
        let users = query_all(
            &tx,
            &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.id"),
            [],
            user_row,
        )?;
        let presence = query_all(
            &tx,
            "SELECT user_id, client, last_connected_time, last_active_time, update_id \
             FROM client_presence ORDER BY user_id, client",
            [],
            presence_row,
        )?;
        let devices = query_all(
            &tx,
            "SELECT user_id, kind, token, appid FROM push_devices ORDER BY user_id, kind, token",
            [],
            |r| {
                let kind: String = r.get(1)?;
                Ok(DeviceRow {
                    user_id: r.get(0)?,
                    kind: DeviceKind::parse(&kind).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            format!("unknown device kind {kind:?}").into(),
                        )
                    })?,
                    token: r.get(2)?,
                    appid: r.get(3)?,
                })
            },
        )?;
        let embed_keys = embed::all(&tx)?;
        tx.commit()?;
        Ok(Dump {
            realms,
            users,
            presence,
            devices,
            embed_keys,
        })
    }

    fn import(&mut self, dump: &Dump) -> Result<(), StoreError> {
        self.write(|tx| {
            let conflict = |what: String| Err(StoreError::ImportConflict(what));
            for realm in &dump.realms {
                let taken: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM realms WHERE id = ?1 OR string_id = ?2",
                        params![realm.id, realm.string_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if taken.is_some() {
                    return conflict(format!(
                        "realm {:?} (id {}) exists already",
                        realm.string_id, realm.id
                    ));
                }
                let version = next_directory_version(tx)?;
                tx.execute(
                    "INSERT INTO realms (id, string_id, name, presence_disabled, deactivated, \
                     date_created, row_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        realm.id,
                        realm.string_id,
                        realm.name,
                        realm.presence_disabled,
                        realm.deactivated,
                        realm.date_created,
                        version
                    ],
                )?;
            }
            let version = next_directory_version(tx)?;
            let mut insert_user = tx.prepare_cached(
                "INSERT INTO users (id, realm_id, email, email_key, full_name, is_bot, is_active, \
                 date_joined, api_key_hash, presence_enabled, enable_offline_push_notifications, \
                 row_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for user in &dump.users {
                let inserted = insert_user.execute(params![
                    user.id,
                    user.realm_id,
                    user.email,
                    email_key(&user.email),
                    user.full_name,
                    user.is_bot,
                    user.is_active,
                    user.date_joined,
                    &user.api_key_hash[..],
                    user.presence_enabled,
                    user.enable_offline_push_notifications,
                    version
                ]);
                if let Err(e) = inserted {
                    return match e.sqlite_error_code() {
                        Some(rusqlite::ErrorCode::ConstraintViolation) => conflict(format!(
                            "user {:?} (id {}, realm id {}) conflicts with an existing user or key, \
                             or its realm is missing",
                            user.email, user.id, user.realm_id
                        )),
                        _ => Err(e.into()),
                    };
                }
            }
            let mut insert_presence = tx.prepare_cached(
                "INSERT INTO client_presence \
                 (user_id, client, last_connected_time, last_active_time, update_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for p in &dump.presence {
                insert_presence.execute(params![
                    p.user_id,
                    p.client,
                    p.last_connected_time,
                    p.last_active_time,
                    p.update_id
                ])?;
            }
            let mut insert_device = tx.prepare_cached(
                "INSERT INTO push_devices (user_id, kind, token, appid) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for d in &dump.devices {
                insert_device.execute(params![d.user_id, d.kind.as_str(), d.token, d.appid])?;
            }
            // Each imported realm continues from its largest imported id.
            let mut insert_sequence = tx.prepare_cached(
                "INSERT INTO realm_sequences (realm_id, last_update_id) \
                 SELECT ?1, COALESCE(MAX(p.update_id), 0) FROM client_presence p \
                 JOIN users u ON u.id = p.user_id WHERE u.realm_id = ?1",
            )?;
            for realm in &dump.realms {
                insert_sequence.execute([realm.id])?;
            }
            embed::import(tx, &dump.embed_keys)
        })
    }

    fn create_embed_key(&mut self, key: &NewEmbedKey<'_>) -> Result<EmbedKeyRow, StoreError> {
        self.write(|tx| {
            directory::check_active_realm(tx, key.realm)?;
            embed::create(tx, key)
        })
    }

    fn list_embed_keys(&mut self, realm: &str) -> Result<Vec<EmbedKeyRow>, StoreError> {
        let tx = self.conn.transaction()?;
        let keys = embed::list(&tx, realm)?;
        tx.commit()?;
        Ok(keys)
    }

    fn revoke_embed_key(
        &mut self,
        realm: &str,
        name: &str,
        now: i64,
    ) -> Result<EmbedKeyRow, StoreError> {
        self.write(|tx| embed::revoke(tx, realm, name, now))
    }

    fn record_embed_key_use(&mut self, uses: &[(i64, i64)]) -> Result<(), StoreError> {
        self.write(|tx| embed::record_use(tx, uses))
    }

    fn report_node(&mut self, node: &NodeRow, forget_before: i64) -> Result<(), StoreError> {
        embed::report_node(&self.conn, node, forget_before)
    }

    fn remove_node(&mut self, id: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM server_nodes WHERE id = ?1", [id])?;
        Ok(())
    }

    fn nodes(&mut self) -> Result<Vec<NodeRow>, StoreError> {
        embed::nodes(&self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::same_email;

    #[test]
    fn a_version_1_database_gets_its_realm_sequences() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 1;
                 INSERT INTO realms (id, string_id, name, date_created, row_version)
                     VALUES (1, 'a', 'A', 0, 1), (2, 'b', 'B', 0, 1);
                 INSERT INTO users (id, realm_id, email, email_key, full_name, is_bot,
                     date_joined, api_key_hash, row_version)
                     VALUES (7, 1, 'x@a', 'x@a', 'X', 0, 0, x'00', 1);
                 INSERT INTO client_presence VALUES (7, 'website', 10, 10, 41), (7, 'cli', 9, NULL, 40);",
            )
            .unwrap();
        }
        let mut store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.sequences().unwrap(), vec![(1, 41), (2, 0)]);
        let changes = store.presence_changes(1, 40).unwrap();
        assert_eq!(changes.last_update_id, 41);
        assert_eq!(changes.users.len(), 1);
        assert_eq!(changes.users[0].1.len(), 2, "all of the user's records");
    }

    #[test]
    fn same_email_agrees_with_the_key() {
        for (a, b) in [
            ("a@b.c", " A@B.C "),
            ("a@b.c", "a@b.d"),
            ("Émile@x.fr", "émile@X.FR"),
            ("émile@x.fr", "emile@x.fr"),
            ("ΟΔΟΣ@x.gr", "οδος@x.gr"),
        ] {
            assert_eq!(same_email(a, b), email_key(a) == email_key(b), "{a} {b}");
        }
    }
}
