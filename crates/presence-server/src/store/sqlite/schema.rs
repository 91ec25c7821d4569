//! The embedded store's schema, and the migrations that bring an older
//! file up to it (its version is SQLite's `user_version`).

use rusqlite::Connection;

use super::{directory, embed, log, status};
use crate::store::StoreError;

/// The schema version this program writes (SQLite's `user_version`).
const SCHEMA_VERSION: i64 = 5;

/// Version 1: realms, users, push devices and presence records.
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

/// Brings the schema of the database on `conn` up to date.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // IMMEDIATE takes the write lock first, so two processes starting on
    // a new directory at once cannot both create the schema.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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
    if version < 4 {
        tx.execute_batch(status::SCHEMA_V4)?;
    }
    if version < 5 {
        tx.execute_batch(log::SCHEMA_V5)?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{RealmId, UpdateId};
    use crate::store::Store;
    use crate::store::sqlite::{DATABASE_FILE, SqliteStore};
    use crate::store::testing::sequence;

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
        assert_eq!(
            store.sequences().unwrap(),
            vec![sequence(RealmId(1), 41), sequence(RealmId(2), 0)]
        );
        let changes = store.presence_changes(RealmId(1), UpdateId(40)).unwrap();
        assert_eq!(changes.last_update_id, UpdateId(41));
        assert_eq!(changes.users.len(), 1);
        assert_eq!(
            changes.users[0].records.len(),
            2,
            "all of the user's records"
        );
    }
}
