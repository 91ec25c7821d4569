//! The presence log: a batch appends each presence write to the end of a
//! table instead of updating the record in place.
//!
//! An update in place dirties the `client_presence` page of every user a
//! batch reports, and SQLite writes each dirty page whole to the WAL at
//! every commit; an append dirties the log's last page or two whatever the
//! batch holds. Every [`COMPACT_AFTER`] logged writes the server folds the
//! log into `client_presence` (each of that table's pages is then written
//! once for thousands of reports) and empties it.
//!
//! The invariant that keeps readers simple: nothing reads `client_presence`
//! while the log holds rows. Every reader of it (the load at start, the
//! catch-up read, the export) and every other writer of it (deleting a
//! user, an import) first calls [`compact`] in its write transaction.

use rusqlite::{Connection, params};

use crate::ids::UserId;
use crate::store::{PresenceRow, StoreError};

/// Logged writes after which the server folds the log into
/// `client_presence`: large enough that a fold writes each page of a
/// large realm's records once for many writes to it, small enough that a
/// fold holds the write lock for tens of milliseconds (BENCHMARKS.md, C).
pub(super) const COMPACT_AFTER: usize = 32768;

/// Version 5: the presence log. `seq` orders the writes (a later row wins);
/// a row whose `last_connected_time` is NULL removes the record. It has no
/// foreign key: a fold skips the rows of users deleted since they were
/// logged, instead of failing on them.
pub(super) const SCHEMA_V5: &str = "
CREATE TABLE presence_log (
    seq                 INTEGER PRIMARY KEY,
    user_id             INTEGER NOT NULL,
    client              TEXT NOT NULL,
    last_connected_time INTEGER,
    last_active_time    INTEGER,
    update_id           INTEGER NOT NULL
);
";

/// Logs a presence record's new values.
pub(super) fn put(tx: &Connection, p: &PresenceRow) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO presence_log \
         (user_id, client, last_connected_time, last_active_time, update_id) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(super::rows::presence_values(p))?;
    Ok(())
}

/// Logs the removal of a presence record.
pub(super) fn remove(tx: &Connection, user_id: UserId, client: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO presence_log (user_id, client, last_connected_time, update_id) \
         VALUES (?1, ?2, NULL, 0)",
    )?
    .execute(params![user_id, client])?;
    Ok(())
}

/// Folds the log into `client_presence` and empties it, inside the caller's
/// write transaction: each record takes its last logged values, or goes if
/// the last row removes it. Cheap when the log is empty.
pub(super) fn compact(tx: &Connection) -> Result<(), StoreError> {
    let empty: bool = tx
        .prepare_cached("SELECT NOT EXISTS (SELECT 1 FROM presence_log)")?
        .query_row([], |r| r.get(0))?;
    if empty {
        return Ok(());
    }
    // Every record removed anywhere in the log goes first; the next
    // statement puts back those written again after their removal.
    tx.prepare_cached(
        "DELETE FROM client_presence WHERE (user_id, client) IN \
         (SELECT user_id, client FROM presence_log WHERE last_connected_time IS NULL)",
    )?
    .execute([])?;
    // With MAX(seq), SQLite takes the other columns from the row holding
    // the maximum: each record's last write, in the table's key order.
    tx.prepare_cached(
        "INSERT INTO client_presence \
         (user_id, client, last_connected_time, last_active_time, update_id) \
         SELECT user_id, client, connected, active, update_id FROM \
         (SELECT user_id, client, last_connected_time AS connected, \
          last_active_time AS active, update_id, MAX(seq) \
          FROM presence_log GROUP BY user_id, client) AS latest \
         WHERE latest.connected IS NOT NULL \
         AND EXISTS (SELECT 1 FROM users u WHERE u.id = latest.user_id) \
         ON CONFLICT (user_id, client) DO UPDATE SET \
         last_connected_time = excluded.last_connected_time, \
         last_active_time = excluded.last_active_time, \
         update_id = excluded.update_id",
    )?
    .execute([])?;
    tx.prepare_cached("DELETE FROM presence_log")?.execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UpdateId;

    /// A database with the store's schema, a realm and two users.
    fn database() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO realms (id, string_id, name, date_created, row_version)
                 VALUES (1, 'a', 'A', 0, 1);
             INSERT INTO users (id, realm_id, email, email_key, full_name, is_bot,
                 date_joined, api_key_hash, row_version)
                 VALUES (1, 1, 'x@a', 'x@a', 'X', 0, 0, x'01', 1),
                        (2, 1, 'y@a', 'y@a', 'Y', 0, 0, x'02', 1);",
        )
        .unwrap();
        conn
    }

    fn row(user: i64, client: &str, time: i64, update_id: i64) -> PresenceRow {
        PresenceRow {
            user_id: UserId(user),
            client: client.to_owned(),
            last_connected_time: time,
            last_active_time: (time % 2 == 0).then_some(time),
            update_id: UpdateId(update_id),
        }
    }

    fn records(conn: &Connection) -> Vec<PresenceRow> {
        super::super::rows::query_all(
            conn,
            "SELECT user_id, client, last_connected_time, last_active_time, update_id \
             FROM client_presence ORDER BY user_id, client",
            [],
            super::super::rows::presence_row,
        )
        .unwrap()
    }

    fn logged(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM presence_log", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_fold_keeps_each_records_last_write_and_empties_the_log() {
        let conn = database();
        put(&conn, &row(1, "website", 10, 1)).unwrap();
        put(&conn, &row(2, "website", 11, 2)).unwrap();
        put(&conn, &row(1, "website", 13, 3)).unwrap();
        put(&conn, &row(1, "cli", 14, 4)).unwrap();
        assert!(records(&conn).is_empty(), "nothing folded before compact");
        compact(&conn).unwrap();
        assert_eq!(
            records(&conn),
            vec![
                row(1, "cli", 14, 4),
                row(1, "website", 13, 3),
                row(2, "website", 11, 2)
            ]
        );
        assert_eq!(logged(&conn), 0);
        // A second fold overwrites what the first wrote.
        put(&conn, &row(2, "website", 20, 5)).unwrap();
        compact(&conn).unwrap();
        assert_eq!(records(&conn)[2], row(2, "website", 20, 5));
    }

    #[test]
    fn a_removal_wins_only_when_it_is_the_last_write() {
        let conn = database();
        put(&conn, &row(1, "website", 10, 1)).unwrap();
        put(&conn, &row(2, "website", 10, 2)).unwrap();
        compact(&conn).unwrap();
        remove(&conn, UserId(1), "website").unwrap();
        remove(&conn, UserId(2), "website").unwrap();
        put(&conn, &row(2, "website", 12, 3)).unwrap();
        compact(&conn).unwrap();
        assert_eq!(records(&conn), vec![row(2, "website", 12, 3)]);
    }

    #[test]
    fn the_rows_of_a_deleted_user_are_dropped_not_folded() {
        let conn = database();
        put(&conn, &row(2, "website", 10, 1)).unwrap();
        put(&conn, &row(1, "website", 11, 2)).unwrap();
        conn.execute("DELETE FROM users WHERE id = 2", []).unwrap();
        compact(&conn).unwrap();
        assert_eq!(records(&conn), vec![row(1, "website", 11, 2)]);
        assert_eq!(logged(&conn), 0);
    }
}
