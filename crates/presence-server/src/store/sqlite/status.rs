//! Users' custom statuses in the embedded store: the table (schema version
//! 4), reading them at start and as changed since a directory version,
//! the batch's writes, and their part of export and import.

use rusqlite::{Connection, Row, params};

use super::batch::next_directory_version;
use super::rows::query_all;
use crate::ids::{RealmId, UserId};
use crate::store::{StatusRow, StoreError};

/// Version 4: one status row per user that set one.
pub(super) const SCHEMA_V4: &str = "
CREATE TABLE user_status (
    user_id       INTEGER PRIMARY KEY REFERENCES users (id),
    status_text   TEXT NOT NULL,
    emoji_name    TEXT NOT NULL,
    emoji_code    TEXT NOT NULL,
    reaction_type TEXT NOT NULL,
    expires_at    INTEGER,
    row_version   INTEGER NOT NULL
);
CREATE INDEX user_status_row_version ON user_status (row_version);
";

const COLUMNS: &str = "user_id, status_text, emoji_name, emoji_code, reaction_type, expires_at";

fn status_row(r: &Row<'_>) -> rusqlite::Result<StatusRow> {
    Ok(StatusRow {
        user_id: r.get(0)?,
        status_text: r.get(1)?,
        emoji_name: r.get(2)?,
        emoji_code: r.get(3)?,
        reaction_type: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

/// Every status, by user.
pub(super) fn all(conn: &Connection) -> Result<Vec<StatusRow>, StoreError> {
    query_all(
        conn,
        &format!("SELECT {COLUMNS} FROM user_status ORDER BY user_id"),
        [],
        status_row,
    )
}

/// Every status with its user's realm, for loading.
pub(super) fn loaded(conn: &Connection) -> Result<Vec<(StatusRow, RealmId)>, StoreError> {
    query_all(
        conn,
        "SELECT s.user_id, s.status_text, s.emoji_name, s.emoji_code, s.reaction_type, \
         s.expires_at, u.realm_id FROM user_status s JOIN users u ON u.id = s.user_id \
         ORDER BY s.user_id",
        [],
        |r| Ok((status_row(r)?, r.get(6)?)),
    )
}

/// The statuses changed after directory version `since`.
pub(super) fn changed_since(conn: &Connection, since: i64) -> Result<Vec<StatusRow>, StoreError> {
    query_all(
        conn,
        &format!("SELECT {COLUMNS} FROM user_status WHERE row_version > ?1 ORDER BY user_id"),
        [since],
        status_row,
    )
}

/// Creates or overwrites a status, at a new directory version.
pub(super) fn put(tx: &Connection, row: &StatusRow) -> Result<(), StoreError> {
    let version = next_directory_version(tx)?;
    tx.execute(
        "INSERT INTO user_status (user_id, status_text, emoji_name, emoji_code, \
         reaction_type, expires_at, row_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (user_id) DO UPDATE SET status_text = excluded.status_text, \
         emoji_name = excluded.emoji_name, emoji_code = excluded.emoji_code, \
         reaction_type = excluded.reaction_type, expires_at = excluded.expires_at, \
         row_version = excluded.row_version",
        params![
            row.user_id,
            row.status_text,
            row.emoji_name,
            row.emoji_code,
            row.reaction_type,
            row.expires_at,
            version
        ],
    )?;
    Ok(())
}

/// Clears a status whose expiry is still `expires_at`; nothing otherwise.
pub(super) fn expire(tx: &Connection, user_id: UserId, expires_at: i64) -> Result<(), StoreError> {
    let due: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM user_status WHERE user_id = ?1 AND expires_at = ?2)",
        params![user_id, expires_at],
        |r| r.get(0),
    )?;
    if due {
        put(tx, &StatusRow::empty(user_id))?;
    }
    Ok(())
}

/// Removes a user's status (the user is being deleted).
pub(super) fn delete(tx: &Connection, user_id: UserId) -> Result<(), StoreError> {
    tx.execute("DELETE FROM user_status WHERE user_id = ?1", [user_id])?;
    Ok(())
}

/// Adds a dump's statuses, all at one directory version.
pub(super) fn import(tx: &Connection, rows: &[StatusRow]) -> Result<(), StoreError> {
    for row in rows {
        put(tx, row)?;
    }
    Ok(())
}
