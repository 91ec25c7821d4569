//! The admin commands' changes to realms and users in the shared store,
//! beyond creating them: listing and renaming realms, setting their flags
//! and users' (saying whether anything changed), changing a user's email or
//! name, and deleting a user. Each change takes a directory version and
//! notifies the other nodes at commit.
//!
//! A deleted user leaves a row in `deleted_users`, versioned like any
//! directory change, so that every node learns of it and forgets the user.

use ::postgres::Client;
use ::postgres::types::ToSql;

use super::Names;
use super::batch::{next_directory_version, notify};
use super::rows::{REALM_COLUMNS, USER_COLUMNS, realm_id, realm_row, user_id, user_row};
use crate::ids::{RealmId, UserId};
use crate::store::{DeletedUser, RealmSummary, StoreError, UserChange, UserRow, email_key};

/// Part of migration 2: the trace each deleted user leaves.
pub const SCHEMA_V2: &str = "
CREATE TABLE deleted_users (
    user_id     BIGINT PRIMARY KEY,
    realm_id    BIGINT NOT NULL,
    row_version BIGINT NOT NULL
);
CREATE INDEX deleted_users_row_version ON deleted_users (row_version);
";

/// Every realm with its users counted.
pub fn list_realms(c: &mut Client) -> Result<Vec<RealmSummary>, StoreError> {
    c.query(
        &format!(
            "SELECT {REALM_COLUMNS}, \
             (SELECT COUNT(*) FROM users u WHERE u.realm_id = r.id), \
             (SELECT COUNT(*) FROM users u WHERE u.realm_id = r.id AND u.is_active) \
             FROM realms r ORDER BY r.id"
        ),
        &[],
    )?
    .iter()
    .map(|r| {
        Ok(RealmSummary {
            realm: realm_row(r)?,
            users: r.try_get::<_, i64>(6)? as usize,
            active_users: r.try_get::<_, i64>(7)? as usize,
        })
    })
    .collect()
}

/// Sets one column of a realm if it differs; whether it did.
pub fn set_realm_column(
    c: &mut Client,
    names: &Names,
    string_id: &str,
    column: &str,
    value: &(dyn ToSql + Sync),
) -> Result<bool, StoreError> {
    let id = realm_id(c, string_id)?;
    let differs = c.query_one(
        &format!("SELECT {column} IS DISTINCT FROM $1 FROM realms WHERE id = $2"),
        &[value, &id],
    )?;
    if !differs.try_get::<_, bool>(0)? {
        return Ok(false);
    }
    let version = next_directory_version(c)?;
    c.execute(
        &format!("UPDATE realms SET {column} = $1, row_version = $2 WHERE id = $3"),
        &[value, &version, &id],
    )?;
    notify(c, names)?;
    Ok(true)
}

/// Refuses a change to a deactivated realm; the realm's id.
pub fn check_active_realm(c: &mut Client, string_id: &str) -> Result<RealmId, StoreError> {
    let id = realm_id(c, string_id)?;
    let deactivated: bool = c
        .query_one("SELECT deactivated FROM realms WHERE id = $1", &[&id])?
        .try_get(0)?;
    if deactivated {
        return Err(StoreError::RealmDeactivated(string_id.to_owned()));
    }
    Ok(id)
}

/// Sets a user's `is_active` if it differs; whether it did.
pub fn set_user_active(
    c: &mut Client,
    names: &Names,
    realm: &str,
    email: &str,
    active: bool,
) -> Result<bool, StoreError> {
    let id = user_id(c, realm, email)?;
    let version = next_directory_version(c)?;
    let changed = c.execute(
        "UPDATE users SET is_active = $1, row_version = $2 WHERE id = $3 AND is_active != $1",
        &[&active, &version, &id],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    notify(c, names)?;
    Ok(true)
}

fn read_user(c: &mut Client, id: UserId) -> Result<UserRow, StoreError> {
    Ok(user_row(&c.query_one(
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"),
        &[&id],
    )?)?)
}

/// Changes a user's email or name.
pub fn update_user(
    c: &mut Client,
    names: &Names,
    realm: &str,
    email: &str,
    change: &UserChange<'_>,
) -> Result<UserRow, StoreError> {
    let id = user_id(c, realm, email)?;
    let version = next_directory_version(c)?;
    if let Some(new) = change.email {
        let realm_id = realm_id(c, realm)?;
        let taken = c
            .query_opt(
                "SELECT 1 FROM users WHERE realm_id = $1 AND email_key = $2 AND id != $3",
                &[&realm_id, &email_key(new), &id],
            )?
            .is_some();
        if taken {
            return Err(StoreError::DuplicateEmail {
                realm: realm.to_owned(),
                email: new.to_owned(),
            });
        }
        c.execute(
            "UPDATE users SET email = $1, email_key = $2 WHERE id = $3",
            &[&new.trim(), &email_key(new), &id],
        )?;
    }
    if let Some(name) = change.full_name {
        c.execute(
            "UPDATE users SET full_name = $1 WHERE id = $2",
            &[&name, &id],
        )?;
    }
    c.execute(
        "UPDATE users SET row_version = $1 WHERE id = $2",
        &[&version, &id],
    )?;
    notify(c, names)?;
    read_user(c, id)
}

/// Deletes a user with everything of theirs, leaving a versioned trace.
pub fn delete_user(
    c: &mut Client,
    names: &Names,
    realm: &str,
    email: &str,
) -> Result<UserRow, StoreError> {
    let id = user_id(c, realm, email)?;
    let user = read_user(c, id)?;
    // A batch holds its realm's sequence row until it commits, and writes
    // records only of users its statement finds (`client_presence` has no
    // foreign key: the batches' join does that check for less). Waiting
    // for the row here means the records deleted below include whatever
    // such a batch wrote, and any later batch finds the user gone.
    c.execute(
        "SELECT 1 FROM realm_sequences WHERE realm_id = $1 FOR UPDATE",
        &[&user.realm_id],
    )?;
    c.execute("DELETE FROM client_presence WHERE user_id = $1", &[&id])?;
    c.execute("DELETE FROM push_devices WHERE user_id = $1", &[&id])?;
    super::status::delete(c, id)?;
    c.execute("DELETE FROM users WHERE id = $1", &[&id])?;
    let version = next_directory_version(c)?;
    c.execute(
        "INSERT INTO deleted_users (user_id, realm_id, row_version) VALUES ($1, $2, $3)",
        &[&id, &user.realm_id, &version],
    )?;
    notify(c, names)?;
    Ok(user)
}

/// Users deleted after directory version `since`.
pub fn deleted_since(c: &mut Client, since: i64) -> Result<Vec<DeletedUser>, StoreError> {
    c.query(
        "SELECT realm_id, user_id FROM deleted_users WHERE row_version > $1 ORDER BY user_id",
        &[&since],
    )?
    .iter()
    .map(|r| {
        Ok(DeletedUser {
            realm_id: r.try_get(0)?,
            user_id: r.try_get(1)?,
        })
    })
    .collect()
}
