//! Whether a database file may be used at all. A server that started on a
//! file it cannot trust would refuse every key or every write while looking
//! healthy, so such a file is refused at once, with one sentence that says
//! why:
//! - an empty file (SQLite would take it for a new database, recreate the
//!   schema, and every existing key would then be refused);
//! - a file that is not a SQLite database, or one that holds another
//!   program's tables;
//! - a damaged one (`PRAGMA quick_check` finds a fault);
//! - one that cannot be written (a read-only file, directory or mount).

use std::path::Path;

use rusqlite::{Connection, MAIN_DB};

use crate::store::StoreError;

fn untrusted(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Untrusted {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Refuses an existing file that is empty: before SQLite opens it.
pub fn check_file(path: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() == 0 => Err(untrusted(
            path,
            "the file is empty (a store that lost its contents); remove it to start a new store",
        )),
        _ => Ok(()),
    }
}

/// Refuses an opened database that is not this server's, is damaged, or
/// cannot be written.
pub fn check_database(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let not_a_database = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            untrusted(path, "the file is not a SQLite database")
        }
        Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly) => untrusted(
            path,
            "the database cannot be opened for writing (a read-only file, directory or mount)",
        ),
        _ => e.into(),
    };
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(not_a_database)?;
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )
        .map_err(not_a_database)?;
    if version == 0 && tables > 0 {
        return Err(untrusted(
            path,
            "the database holds tables of another program, not this server's",
        ));
    }
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(not_a_database)?;
    if check != "ok" {
        return Err(untrusted(
            path,
            format!("the database is damaged ({})", check.replace('\n', "; ")),
        ));
    }
    if conn.is_readonly(MAIN_DB)? {
        return Err(untrusted(
            path,
            "the database cannot be written (read-only)",
        ));
    }
    Ok(())
}

/// Refuses a database whose directory or file turns out not to take a
/// write: a write transaction that changes nothing, rolled back.
pub fn check_writable(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let tried = conn.execute_batch(
        "BEGIN IMMEDIATE; UPDATE meta SET value = value WHERE key = 'directory_version'; ROLLBACK;",
    );
    if let Err(e) = tried {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(untrusted(
            path,
            format!("the database cannot be written ({e})"),
        ));
    }
    Ok(())
}
