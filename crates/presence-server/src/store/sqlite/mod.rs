//! The embedded store: one SQLite file in the data directory.
//!
//! WAL mode lets the admin command write while a server reads and writes the
//! same file; `synchronous = FULL` makes every commit survive a power loss,
//! and the server's group commit keeps that affordable.
//!
//! This module holds [`SqliteStore`] and its [`Store`] methods; the rest is
//! in parts of one job each: the schema and its migrations (`schema`), a
//! file's trustworthiness (`trust`), reading rows (`rows`), batches and
//! versions (`batch`), the log presence writes are appended to (`log`),
//! export and import (`transfer`), and the admin
//! commands' changes to realms, users (`directory`) and embed keys
//! (`embed`).

mod batch;
mod directory;
mod embed;
mod log;
mod rows;
mod schema;
mod status;
mod transfer;
mod trust;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::ids::{RealmId, UpdateId, UserId};

use super::{
    DeviceKind, DirectoryChanges, Dump, Durability, EmbedKeyRow, EmbedKeyUse, Loaded, Mutation,
    NewEmbedKey, NewUser, NodeRow, PresenceChanges, RealmRow, RealmSummary, Sequence, Store,
    StoreError, UserChange, UserRow, email_key,
};
use batch::{
    next_directory_version, read_presence_changes, read_sequences, touch_user, write_batch,
};
use rows::{
    REALM_COLUMNS, USER_COLUMNS, presence_row, query_all, realm_id, realm_row, user_id, user_row,
};

/// The file name of the database inside the data directory.
pub const DATABASE_FILE: &str = "presence.sqlite3";

/// A `Store` over one SQLite connection.
pub struct SqliteStore {
    conn: Connection,
    /// A batch's write transaction is open on `conn`.
    in_batch: bool,
    /// What this connection logged since it last folded the presence log.
    logged: log::Logged,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir`, and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        create_private_dir(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        trust::check_file(&path)?;
        let new = !path.exists();
        let conn = Connection::open(&path)?;
        if new {
            // Made private before anything is written to it; SQLite gives
            // the `-wal` and `-shm` files it makes later the database
            // file's own mode, so they are private too.
            make_private(&path).map_err(|source| StoreError::DataDir {
                path: path.display().to_string(),
                source,
            })?;
        }
        // Another process (the admin command, or the server) may hold the
        // write lock for a moment; wait for it rather than fail.
        conn.busy_timeout(Duration::from_secs(10))?;
        trust::check_database(&conn, &path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut store = SqliteStore {
            conn,
            in_batch: false,
            logged: log::Logged::default(),
        };
        schema::migrate(&mut store.conn)?;
        trust::check_writable(&store.conn, &path)?;
        Ok(store)
    }

    /// Runs `f` in a write transaction, taking the write lock first, and
    /// commits if it succeeds.
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

/// Statements kept prepared per connection: enough for every statement a
/// batch or a read of the running server makes (sixteen of them append to
/// the presence log and sixteen put records when it is folded, one per row
/// count), so that none is parsed again while the batch holds the write
/// lock.
const STATEMENT_CACHE: usize = 96;

/// Runs `sql` (one statement without parameters, a transaction's `BEGIN`,
/// `COMMIT` or `ROLLBACK`) from the connection's prepared statements.
fn run_cached(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Creates the data directory (and its parents) if it is missing, the
/// directory itself readable by its owner alone whatever the umask: it
/// holds every user's key hashes. An existing directory is left as the
/// operator made it.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        // Made by another process in the meantime: as the operator's.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
        // The mode asked for is still masked by the umask: set it outright.
        Ok(()) => set_mode(dir, 0o700),
    }
}

/// Makes a file the store just created readable and writable by its owner
/// alone (0600), whatever the umask made it.
fn make_private(path: &Path) -> std::io::Result<()> {
    set_mode(path, 0o600)
}

/// Sets a path's permission bits (nothing to set off Unix).
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

impl Store for SqliteStore {
    fn load(&mut self, sink: &mut dyn FnMut(Loaded)) -> Result<i64, StoreError> {
        // One transaction, so the parts agree with each other; a write
        // transaction, as the presence log is folded before it is read.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        log::compact(&tx)?;
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
                Ok(Loaded::Realm {
                    realm: realm_row(r)?,
                    users: r.get::<_, i64>(6)? as usize,
                    last_update_id: r.get(7)?,
                })
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
            &mut |r| {
                Ok(Loaded::Presence {
                    record: presence_row(r)?,
                    realm_id: r.get(5)?,
                })
            },
        )?;
        for key in embed::all(&tx)? {
            sink(Loaded::EmbedKey(key));
        }
        for (row, realm_id) in status::loaded(&tx)? {
            sink(Loaded::Status { row, realm_id });
        }
        tx.commit()?;
        Ok(directory_version)
    }

    fn begin_batch(&mut self, realms: &[RealmId]) -> Result<Vec<UpdateId>, StoreError> {
        self.abort_batch();
        // IMMEDIATE takes the database's write lock: the sequences cannot
        // move under the batch.
        run_cached(&self.conn, "BEGIN IMMEDIATE")?;
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
        sequences: &[Sequence],
    ) -> Result<(), StoreError> {
        if !self.in_batch {
            return Err(StoreError::NoBatch);
        }
        let written = write_batch(&self.conn, batch, sequences)
            .and_then(|last| run_cached(&self.conn, "COMMIT").map(|()| last));
        if written.is_err() {
            self.abort_batch();
        }
        self.in_batch = false;
        self.logged.committed(batch, written?);
        if self.logged.due() {
            // The batch is committed whatever happens here: a fold that
            // fails leaves the log to the next one.
            let logged = std::mem::take(&mut self.logged);
            if let Err(e) = self.write(|tx| log::fold(tx, logged)) {
                tracing::warn!(error = %e, "folding the presence log failed");
            }
        }
        Ok(())
    }

    fn set_durability(&mut self, durability: Durability) -> Result<(), StoreError> {
        // A setting of this connection alone: the admin command's own
        // connection keeps FULL. In WAL mode NORMAL writes each commit to
        // the WAL before it returns and syncs the WAL at checkpoints.
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Relaxed => "NORMAL",
        };
        self.conn.pragma_update(None, "synchronous", synchronous)?;
        Ok(())
    }

    fn abort_batch(&mut self) {
        if self.in_batch {
            self.in_batch = false;
            if let Err(e) = run_cached(&self.conn, "ROLLBACK") {
                tracing::warn!(error = %e, "rollback failed");
            }
        }
    }

    fn sequences(&mut self) -> Result<Vec<Sequence>, StoreError> {
        query_all(
            &self.conn,
            "SELECT realm_id, last_update_id FROM realm_sequences ORDER BY realm_id",
            [],
            |r| {
                Ok(Sequence {
                    realm_id: r.get(0)?,
                    last_update_id: r.get(1)?,
                })
            },
        )
    }

    /// Asked at every poll: the statement is kept prepared, as is
    /// `directory_version`'s, so that an idle server's look at the store
    /// is two steps of a prepared statement and no parsing of SQL.
    fn sequences_total(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT COALESCE(SUM(last_update_id), 0) FROM realm_sequences")?
            .query_row([], |r| r.get(0))?)
    }

    fn presence_changes(
        &mut self,
        realm_id: RealmId,
        since: UpdateId,
    ) -> Result<PresenceChanges, StoreError> {
        // The read folds the presence log first, so it needs the write
        // lock: a batch holds it already.
        if self.in_batch {
            return read_presence_changes(&self.conn, realm_id, since);
        }
        self.write(|tx| read_presence_changes(tx, realm_id, since))
    }

    fn directory_version(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = 'directory_version'")?
            .query_row([], |r| r.get(0))?)
    }

    fn directory_changes(&mut self, since: i64) -> Result<DirectoryChanges, StoreError> {
        // Inside a batch the write lock already fixes the view.
        if self.in_batch {
            return read_directory_changes(&self.conn, since);
        }
        let tx = self.conn.transaction()?;
        let read = read_directory_changes(&tx, since)?;
        tx.commit()?;
        Ok(read)
    }

    fn has_device(
        &mut self,
        user_id: UserId,
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
            let id = RealmId(tx.last_insert_rowid());
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
            Ok(user.created_row(UserId(tx.last_insert_rowid()), realm_id))
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
        // A write transaction, as the presence log is folded before it is read.
        self.write(|tx| {
            log::compact(tx)?;
            transfer::export_dump(tx)
        })
    }

    fn import(&mut self, dump: &Dump) -> Result<(), StoreError> {
        self.write(|tx| {
            log::compact(tx)?;
            transfer::import_dump(tx, dump)
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

    fn record_embed_key_use(&mut self, uses: &[EmbedKeyUse]) -> Result<(), StoreError> {
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

/// Realms, users, embed keys and statuses changed after directory version
/// `since`, read in one snapshot (the caller's transaction).
fn read_directory_changes(conn: &Connection, since: i64) -> Result<DirectoryChanges, StoreError> {
    let version = conn.query_row(
        "SELECT value FROM meta WHERE key = 'directory_version'",
        [],
        |r| r.get(0),
    )?;
    let realms = query_all(
        conn,
        &format!("SELECT {REALM_COLUMNS} FROM realms WHERE row_version > ?1 ORDER BY id"),
        [since],
        realm_row,
    )?;
    let users = query_all(
        conn,
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.row_version > ?1 ORDER BY u.id"),
        [since],
        user_row,
    )?;
    Ok(DirectoryChanges {
        realms,
        users,
        embed_keys: embed::changed_since(conn, since)?,
        deleted_users: directory::deleted_since(conn, since)?,
        statuses: status::changed_since(conn, since)?,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{new_user, put, sequence};

    /// Rows waiting in the presence log.
    fn logged(store: &SqliteStore) -> usize {
        store
            .conn
            .query_row("SELECT COUNT(*) FROM presence_log", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn batches_are_logged_and_folded_once_enough_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        let realm = store.create_realm("acme", "Acme", 0).unwrap();
        let user = store.create_user(&new_user("acme", "a@x", 1)).unwrap();
        // One batch short of the fold: every write waits in the log.
        let below = log::COMPACT_AFTER - 1;
        let writes: Vec<Mutation> = (1..=below as i64)
            .map(|n| put(user.id, &format!("c{}", n % 40), n))
            .collect();
        store.begin_batch(&[realm.id]).unwrap();
        store
            .commit_batch(&writes, &[sequence(realm.id, below as i64)])
            .unwrap();
        assert_eq!(logged(&store), below);
        // The next batch reaches the bound and folds the log.
        let last = below as i64 + 1;
        store.begin_batch(&[realm.id]).unwrap();
        store
            .commit_batch(&[put(user.id, "c0", last)], &[sequence(realm.id, last)])
            .unwrap();
        assert_eq!(logged(&store), 0);
        let changes = store.presence_changes(realm.id, UpdateId(0)).unwrap();
        let records = &changes.users[0].records;
        assert_eq!(records.len(), 40, "one record per client");
        let c0 = records.iter().find(|r| r.client == "c0").unwrap();
        assert_eq!(c0.update_id, UpdateId(last), "the last write of c0");
    }

    #[test]
    fn durability_is_the_connections_synchronous_level() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        let level = |store: &SqliteStore| -> i64 {
            store
                .conn
                .query_row("PRAGMA synchronous", [], |row| row.get(0))
                .unwrap()
        };
        // SQLite's numbers: 2 is FULL, 1 is NORMAL.
        assert_eq!(level(&store), 2);
        store.set_durability(Durability::Relaxed).unwrap();
        assert_eq!(level(&store), 1);
        store.set_durability(Durability::Full).unwrap();
        assert_eq!(level(&store), 2);
    }
}
