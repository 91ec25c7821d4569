//! The admin commands' changes to realms and users in the embedded store,
//! beyond creating them: listing and renaming realms, setting their flags
//! and users' (saying whether anything changed), changing a user's email or
//! name, and deleting a user.
//!
//! A deleted user leaves a row in `deleted_users`, versioned like any
//! directory change, so that running servers learn of it and forget the
//! user; the user's own rows, presence and push devices are gone.

use rusqlite::{OptionalExtension, Transaction, params};

/// Part of schema version 3: the trace each deleted user leaves.
pub const SCHEMA_V3: &str = "
CREATE TABLE deleted_users (
    user_id     INTEGER PRIMARY KEY,
    realm_id    INTEGER NOT NULL,
    row_version INTEGER NOT NULL
);
CREATE INDEX deleted_users_row_version ON deleted_users (row_version);
";

use super::batch::{next_directory_version, touch_user};
use super::rows::{REALM_COLUMNS, USER_COLUMNS, query_all, realm_id, realm_row, user_id, user_row};
use crate::ids::RealmId;
use crate::store::{DeletedUser, RealmSummary, StoreError, UserChange, UserRow, email_key};

/// Every realm with its users counted.
pub fn list_realms(tx: &Transaction<'_>) -> Result<Vec<RealmSummary>, StoreError> {
    query_all(
        tx,
        &format!(
            "SELECT {REALM_COLUMNS}, \
             (SELECT COUNT(*) FROM users u WHERE u.realm_id = realms.id), \
             (SELECT COUNT(*) FROM users u WHERE u.realm_id = realms.id AND u.is_active) \
             FROM realms ORDER BY id"
        ),
        [],
        |r| {
            Ok(RealmSummary {
                realm: realm_row(r)?,
                users: r.get::<_, i64>(6)? as usize,
                active_users: r.get::<_, i64>(7)? as usize,
            })
        },
    )
}

/// Sets one column of a realm if it differs; whether it did.
pub fn set_realm_column(
    tx: &Transaction<'_>,
    string_id: &str,
    column: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<bool, StoreError> {
    let id = realm_id(tx, string_id)?;
    let same: bool = tx.query_row(
        &format!("SELECT {column} IS ?1 FROM realms WHERE id = ?2"),
        params![value, id],
        |r| r.get(0),
    )?;
    if same {
        return Ok(false);
    }
    let version = next_directory_version(tx)?;
    tx.execute(
        &format!("UPDATE realms SET {column} = ?1, row_version = ?2 WHERE id = ?3"),
        params![value, version, id],
    )?;
    Ok(true)
}

/// Refuses a change to a deactivated realm.
pub fn check_active_realm(tx: &Transaction<'_>, string_id: &str) -> Result<RealmId, StoreError> {
    let id = realm_id(tx, string_id)?;
    let deactivated: bool =
        tx.query_row("SELECT deactivated FROM realms WHERE id = ?1", [id], |r| {
            r.get(0)
        })?;
    if deactivated {
        return Err(StoreError::RealmDeactivated(string_id.to_owned()));
    }
    Ok(id)
}

/// Sets a user's `is_active` if it differs; whether it did.
pub fn set_user_active(
    tx: &Transaction<'_>,
    realm: &str,
    email: &str,
    active: bool,
) -> Result<bool, StoreError> {
    let id = user_id(tx, realm, email)?;
    let changed = tx.execute(
        "UPDATE users SET is_active = ?1 WHERE id = ?2 AND is_active != ?1",
        params![active, id],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    touch_user(tx, id)?;
    Ok(true)
}

/// Changes a user's email or name.
pub fn update_user(
    tx: &Transaction<'_>,
    realm: &str,
    email: &str,
    change: &UserChange<'_>,
) -> Result<UserRow, StoreError> {
    let id = user_id(tx, realm, email)?;
    if let Some(new) = change.email {
        let realm_id = realm_id(tx, realm)?;
        let taken: Option<i64> = tx
            .query_row(
                "SELECT id FROM users WHERE realm_id = ?1 AND email_key = ?2 AND id != ?3",
                params![realm_id, email_key(new), id],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(StoreError::DuplicateEmail {
                realm: realm.to_owned(),
                email: new.to_owned(),
            });
        }
        tx.execute(
            "UPDATE users SET email = ?1, email_key = ?2 WHERE id = ?3",
            params![new.trim(), email_key(new), id],
        )?;
    }
    if let Some(name) = change.full_name {
        tx.execute(
            "UPDATE users SET full_name = ?1 WHERE id = ?2",
            params![name, id],
        )?;
    }
    touch_user(tx, id)?;
    Ok(tx.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"),
        [id],
        user_row,
    )?)
}

/// Deletes a user with everything of theirs, leaving a versioned trace.
pub fn delete_user(tx: &Transaction<'_>, realm: &str, email: &str) -> Result<UserRow, StoreError> {
    let id = user_id(tx, realm, email)?;
    let user = tx.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"),
        [id],
        user_row,
    )?;
    // Folded first: a logged write of the user would outlive the delete.
    super::log::compact(tx)?;
    tx.execute("DELETE FROM client_presence WHERE user_id = ?1", [id])?;
    tx.execute("DELETE FROM push_devices WHERE user_id = ?1", [id])?;
    super::status::delete(tx, id)?;
    tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
    let version = next_directory_version(tx)?;
    tx.execute(
        "INSERT INTO deleted_users (user_id, realm_id, row_version) VALUES (?1, ?2, ?3)",
        params![id, user.realm_id, version],
    )?;
    Ok(user)
}

/// Users deleted after directory version `since`.
pub fn deleted_since(
    conn: &rusqlite::Connection,
    since: i64,
) -> Result<Vec<DeletedUser>, StoreError> {
    query_all(
        conn,
        "SELECT realm_id, user_id FROM deleted_users WHERE row_version > ?1 ORDER BY user_id",
        [since],
        |r| {
            Ok(DeletedUser {
                realm_id: r.get(0)?,
                user_id: r.get(1)?,
            })
        },
    )
}
