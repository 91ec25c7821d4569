//! Moving a whole installation in and out of the embedded store: the dump
//! `export` reads, and `import`, which adds a dump with its ids kept in one
//! transaction, table by table.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::batch::next_directory_version;
use super::embed;
use super::rows::{
    REALM_COLUMNS, USER_COLUMNS, device_row, presence_row, presence_values, query_all, realm_row,
    user_row,
};
use crate::store::{DeviceRow, Dump, PresenceRow, RealmRow, StoreError, UserRow, email_key};

/// Everything the store holds, read in the open transaction.
pub(super) fn export_dump(tx: &Connection) -> Result<Dump, StoreError> {
    let realms = query_all(
        tx,
        &format!("SELECT {REALM_COLUMNS} FROM realms ORDER BY id"),
        [],
        realm_row,
    )?;
    let users = query_all(
        tx,
        &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.id"),
        [],
        user_row,
    )?;
    let presence = query_all(
        tx,
        "SELECT user_id, client, last_connected_time, last_active_time, update_id \
         FROM client_presence ORDER BY user_id, client",
        [],
        presence_row,
    )?;
    let devices = query_all(
        tx,
        "SELECT user_id, kind, token, appid FROM push_devices ORDER BY user_id, kind, token",
        [],
        device_row,
    )?;
    let embed_keys = embed::all(tx)?;
    let statuses = super::status::all(tx)?;
    Ok(Dump {
        realms,
        users,
        presence,
        devices,
        embed_keys,
        statuses,
    })
}

/// Turns a constraint violation during an import into `ImportConflict`,
/// saying what `conflict` says; other errors pass through.
pub(super) fn import_error(e: rusqlite::Error, conflict: impl FnOnce() -> String) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::ImportConflict(conflict()),
        _ => e.into(),
    }
}

/// Adds everything in `dump` inside the open write transaction, ids kept: a
/// realm, user or id that exists already refuses the whole import.
pub(super) fn import_dump(tx: &Transaction<'_>, dump: &Dump) -> Result<(), StoreError> {
    insert_realms(tx, &dump.realms)?;
    insert_users(tx, &dump.users)?;
    insert_presence(tx, &dump.presence)?;
    insert_devices(tx, &dump.devices)?;
    start_sequences(tx, &dump.realms)?;
    embed::import(tx, &dump.embed_keys)?;
    super::status::import(tx, &dump.statuses)
}

/// Adds the dump's realms, each at a directory version of its own, refusing
/// one whose id or name is taken.
fn insert_realms(tx: &Transaction<'_>, realms: &[RealmRow]) -> Result<(), StoreError> {
    for realm in realms {
        let taken: Option<i64> = tx
            .query_row(
                "SELECT id FROM realms WHERE id = ?1 OR string_id = ?2",
                params![realm.id, realm.string_id],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(StoreError::ImportConflict(format!(
                "realm {:?} (id {}) exists already",
                realm.string_id, realm.id
            )));
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
    Ok(())
}

/// Adds the dump's users, all at one directory version (their device counts
/// are ignored: they follow from the devices).
fn insert_users(tx: &Transaction<'_>, users: &[UserRow]) -> Result<(), StoreError> {
    let version = next_directory_version(tx)?;
    let mut insert_user = tx.prepare_cached(
        "INSERT INTO users (id, realm_id, email, email_key, full_name, is_bot, is_active, \
         date_joined, api_key_hash, presence_enabled, enable_offline_push_notifications, \
         row_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for user in users {
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
        inserted.map_err(|e| {
            import_error(e, || {
                format!(
                    "user {:?} (id {}, realm id {}) conflicts with an existing user or key, \
                     or its realm is missing",
                    user.email, user.id, user.realm_id
                )
            })
        })?;
    }
    Ok(())
}

/// Adds the dump's presence records.
fn insert_presence(tx: &Transaction<'_>, presence: &[PresenceRow]) -> Result<(), StoreError> {
    let mut insert_presence = tx.prepare_cached(
        "INSERT INTO client_presence \
         (user_id, client, last_connected_time, last_active_time, update_id) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for p in presence {
        insert_presence.execute(presence_values(p))?;
    }
    Ok(())
}

/// Adds the dump's push devices.
fn insert_devices(tx: &Transaction<'_>, devices: &[DeviceRow]) -> Result<(), StoreError> {
    let mut insert_device = tx.prepare_cached(
        "INSERT INTO push_devices (user_id, kind, token, appid) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for d in devices {
        insert_device.execute(params![d.user_id, d.kind.as_str(), d.token, d.appid])?;
    }
    Ok(())
}

/// Starts each imported realm's sequence at its largest imported update id.
fn start_sequences(tx: &Transaction<'_>, realms: &[RealmRow]) -> Result<(), StoreError> {
    let mut insert_sequence = tx.prepare_cached(
        "INSERT INTO realm_sequences (realm_id, last_update_id) \
         SELECT ?1, COALESCE(MAX(p.update_id), 0) FROM client_presence p \
         JOIN users u ON u.id = p.user_id WHERE u.realm_id = ?1",
    )?;
    for realm in realms {
        insert_sequence.execute([realm.id])?;
    }
    Ok(())
}
