//! Users' custom statuses in the shared store: the table (migration 3),
//! reading them at start and as changed since a directory version, the
//! batch's writes, and their part of export and import.
//!
//! A status row carries the directory version of its last change, so every
//! node installs it with the directory, told at once by the commit's
//! notification. An expiry is written on condition that the row still has
//! that expiry: whichever node carries it out first clears the status, and
//! the others' writes change nothing.

use ::postgres::{Client, Row};

use crate::ids::{RealmId, UserId};
use crate::store::{Mutation, StatusRow, StoreError};

/// Migration 3: one status row per user that set one.
pub const SCHEMA_V3: &str = "
CREATE TABLE user_status (
    user_id       BIGINT PRIMARY KEY REFERENCES users (id),
    status_text   TEXT NOT NULL,
    emoji_name    TEXT NOT NULL,
    emoji_code    TEXT NOT NULL,
    reaction_type TEXT NOT NULL,
    expires_at    BIGINT,
    row_version   BIGINT NOT NULL
);
CREATE INDEX user_status_row_version ON user_status (row_version);
";

const COLUMNS: &str = "user_id, status_text, emoji_name, emoji_code, reaction_type, expires_at";

fn status_row(r: &Row) -> Result<StatusRow, ::postgres::Error> {
    Ok(StatusRow {
        user_id: r.try_get(0)?,
        status_text: r.try_get(1)?,
        emoji_name: r.try_get(2)?,
        emoji_code: r.try_get(3)?,
        reaction_type: r.try_get(4)?,
        expires_at: r.try_get(5)?,
    })
}

/// Every status, by user.
pub(super) fn all(c: &mut Client) -> Result<Vec<StatusRow>, StoreError> {
    let rows = c.query(
        &format!("SELECT {COLUMNS} FROM user_status ORDER BY user_id"),
        &[],
    )?;
    Ok(rows.iter().map(status_row).collect::<Result<_, _>>()?)
}

/// Every status with its user's realm, for loading.
pub(super) fn loaded(c: &mut Client) -> Result<Vec<(StatusRow, RealmId)>, StoreError> {
    let rows = c.query(
        "SELECT s.user_id, s.status_text, s.emoji_name, s.emoji_code, s.reaction_type, \
         s.expires_at, u.realm_id FROM user_status s JOIN users u ON u.id = s.user_id \
         ORDER BY s.user_id",
        &[],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push((status_row(r)?, r.try_get(6)?));
    }
    Ok(out)
}

/// The statuses changed after directory version `since`.
pub(super) fn changed_since(c: &mut Client, since: i64) -> Result<Vec<StatusRow>, StoreError> {
    let rows = c.query(
        &format!("SELECT {COLUMNS} FROM user_status WHERE row_version > $1 ORDER BY user_id"),
        &[&since],
    )?;
    Ok(rows.iter().map(status_row).collect::<Result<_, _>>()?)
}

/// Writes a batch's status changes at the batch's directory version.
pub(super) fn write(c: &mut Client, batch: &[Mutation], version: i64) -> Result<(), StoreError> {
    for mutation in batch {
        match mutation {
            Mutation::PutStatus(row) => put(c, row, version)?,
            Mutation::ExpireStatus {
                user_id,
                expires_at,
            } => {
                let cleared = StatusRow::empty(*user_id);
                c.execute(
                    "UPDATE user_status SET status_text = $2, emoji_name = $3, \
                     emoji_code = $4, reaction_type = $5, expires_at = NULL, row_version = $6 \
                     WHERE user_id = $1 AND expires_at = $7",
                    &[
                        user_id,
                        &cleared.status_text,
                        &cleared.emoji_name,
                        &cleared.emoji_code,
                        &cleared.reaction_type,
                        &version,
                        expires_at,
                    ],
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn put(c: &mut Client, row: &StatusRow, version: i64) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO user_status (user_id, status_text, emoji_name, emoji_code, \
         reaction_type, expires_at, row_version) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (user_id) DO UPDATE SET status_text = excluded.status_text, \
         emoji_name = excluded.emoji_name, emoji_code = excluded.emoji_code, \
         reaction_type = excluded.reaction_type, expires_at = excluded.expires_at, \
         row_version = excluded.row_version",
        &[
            &row.user_id,
            &row.status_text,
            &row.emoji_name,
            &row.emoji_code,
            &row.reaction_type,
            &row.expires_at,
            &version,
        ],
    )?;
    Ok(())
}

/// Removes a user's status (the user is being deleted).
pub(super) fn delete(c: &mut Client, user_id: UserId) -> Result<(), StoreError> {
    c.execute("DELETE FROM user_status WHERE user_id = $1", &[&user_id])?;
    Ok(())
}

/// Adds a dump's statuses at the import's directory version.
pub(super) fn import(c: &mut Client, rows: &[StatusRow], version: i64) -> Result<(), StoreError> {
    for row in rows {
        put(c, row, version)?;
    }
    Ok(())
}
