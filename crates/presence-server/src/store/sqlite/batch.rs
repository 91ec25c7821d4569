//! Writing to the embedded store: the directory version every directory
//! change takes, and the server's batches: the sequences they start from,
//! the catch-up reads made in them, and their mutations.

use rusqlite::{Connection, OptionalExtension, params};

use super::log::{self, Seq};
use super::rows::{presence_row, query_all};
use crate::ids::{RealmId, UpdateId, UserId};
use crate::store::{Mutation, PresenceChanges, Sequence, StoreError};

/// Takes the next directory version inside a write transaction.
pub(super) fn next_directory_version(tx: &Connection) -> Result<i64, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE meta SET value = value + 1 WHERE key = 'directory_version' RETURNING value",
        )?
        .query_row([], |r| r.get(0))?)
}

/// Gives a user a new row version, so that servers pick up its change.
pub(super) fn touch_user(tx: &Connection, user_id: UserId) -> Result<(), StoreError> {
    let version = next_directory_version(tx)?;
    tx.prepare_cached("UPDATE users SET row_version = ?1 WHERE id = ?2")?
        .execute(params![version, user_id])?;
    Ok(())
}

/// Each realm's last update id, in the order asked (0 for a realm without one).
pub(super) fn read_sequences(
    conn: &Connection,
    realms: &[RealmId],
) -> Result<Vec<UpdateId>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT last_update_id FROM realm_sequences WHERE realm_id = ?1")?;
    let mut last = Vec::with_capacity(realms.len());
    for &realm in realms {
        last.push(
            stmt.query_row([realm], |r| r.get(0))
                .optional()?
                .unwrap_or_default(),
        );
    }
    Ok(last)
}

/// The users of a realm changed after `since`, with all their records,
/// read in the caller's write transaction after folding the presence log.
pub(super) fn read_presence_changes(
    conn: &Connection,
    realm_id: RealmId,
    since: UpdateId,
) -> Result<PresenceChanges, StoreError> {
    log::compact(conn)?;
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

/// Writes a batch inside the open write transaction: its presence writes
/// appended to the log, its other mutations in order, and the realms' new
/// sequence values; the number of the last row it logged.
pub(super) fn write_batch(
    tx: &Connection,
    batch: &[Mutation],
    sequences: &[Sequence],
) -> Result<Option<Seq>, StoreError> {
    for mutation in batch {
        write_mutation(tx, mutation)?;
    }
    let last_logged = log::append(tx, batch)?;
    set_sequences(tx, sequences)?;
    Ok(last_logged)
}

/// Writes one mutation other than a presence write (those go to the log);
/// a change to a user's settings or devices also gives the user a new row
/// version.
fn write_mutation(tx: &Connection, mutation: &Mutation) -> Result<(), StoreError> {
    match mutation {
        Mutation::PutPresence(_) | Mutation::DeletePresence { .. } => Ok(()),
        Mutation::SetUserSettings {
            user_id,
            presence_enabled,
            enable_offline_push_notifications,
        } => {
            tx.prepare_cached(
                "UPDATE users SET presence_enabled = ?1, \
                     enable_offline_push_notifications = ?2 WHERE id = ?3",
            )?
            .execute(params![
                presence_enabled,
                enable_offline_push_notifications,
                user_id
            ])?;
            touch_user(tx, *user_id)
        }
        Mutation::AddDevice {
            user_id,
            kind,
            token,
            appid,
        } => {
            tx.prepare_cached(
                "INSERT INTO push_devices (user_id, kind, token, appid) \
                     VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (user_id, kind, token) DO UPDATE SET appid = excluded.appid",
            )?
            .execute(params![user_id, kind.as_str(), token, appid])?;
            touch_user(tx, *user_id)
        }
        Mutation::RemoveDevice {
            user_id,
            kind,
            token,
        } => {
            tx.prepare_cached(
                "DELETE FROM push_devices WHERE user_id = ?1 AND kind = ?2 AND token = ?3",
            )?
            .execute(params![user_id, kind.as_str(), token])?;
            touch_user(tx, *user_id)
        }
        Mutation::PutStatus(row) => super::status::put(tx, row),
        Mutation::ExpireStatus {
            user_id,
            expires_at,
        } => super::status::expire(tx, *user_id, *expires_at),
    }
}

/// Sets each realm's last update id.
fn set_sequences(tx: &Connection, sequences: &[Sequence]) -> Result<(), StoreError> {
    let mut set_sequence = tx.prepare_cached(
        "INSERT INTO realm_sequences (realm_id, last_update_id) VALUES (?1, ?2) \
         ON CONFLICT (realm_id) DO UPDATE SET last_update_id = excluded.last_update_id",
    )?;
    for sequence in sequences {
        set_sequence.execute(params![sequence.realm_id, sequence.last_update_id])?;
    }
    Ok(())
}
