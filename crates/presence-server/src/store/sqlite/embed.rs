//! Embed keys and serving nodes in the embedded store.
//!
//! An embed key's row carries a row version from the directory version,
//! like realms and users, so that running servers pick up new keys and
//! revocations; its last use is written without one, since no server needs
//! to hear of it.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::batch::next_directory_version;
use super::rows::{query_all, realm_id};
use super::transfer::import_error;
use crate::store::{
    EmbedKeyRow, EmbedKeyUse, NewEmbedKey, NodeRow, StoreError, join_origins, split_origins,
};

/// Schema version 3: embed keys, and the nodes' reports.
pub const SCHEMA_V3: &str = "
CREATE TABLE embed_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    realm_id     INTEGER NOT NULL REFERENCES realms (id),
    name         TEXT NOT NULL,
    key_hash     BLOB NOT NULL UNIQUE,
    origins      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    row_version  INTEGER NOT NULL
);
CREATE UNIQUE INDEX embed_keys_live_name ON embed_keys (realm_id, name)
    WHERE revoked_at IS NULL;
CREATE INDEX embed_keys_row_version ON embed_keys (row_version);
CREATE TABLE server_nodes (
    id                TEXT PRIMARY KEY,
    started_at        INTEGER NOT NULL,
    seen_at           INTEGER NOT NULL,
    directory_version INTEGER NOT NULL
);
";

/// The columns [`embed_key_row`] reads, in its order.
pub const EMBED_KEY_COLUMNS: &str =
    "id, realm_id, name, key_hash, origins, created_at, last_used_at, revoked_at";

/// An embed key from a row of [`EMBED_KEY_COLUMNS`].
pub fn embed_key_row(r: &Row<'_>) -> rusqlite::Result<EmbedKeyRow> {
    let hash: Vec<u8> = r.get(3)?;
    let key_hash: [u8; 32] = hash.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Blob,
            "key_hash is not 32 bytes".into(),
        )
    })?;
    let origins: String = r.get(4)?;
    Ok(EmbedKeyRow {
        id: r.get(0)?,
        realm_id: r.get(1)?,
        name: r.get(2)?,
        key_hash,
        origins: split_origins(&origins),
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

/// Creates a key, refusing a name a live key of the realm has.
pub fn create(tx: &Transaction<'_>, key: &NewEmbedKey<'_>) -> Result<EmbedKeyRow, StoreError> {
    let realm_id = realm_id(tx, key.realm)?;
    let taken = tx
        .query_row(
            "SELECT 1 FROM embed_keys WHERE realm_id = ?1 AND name = ?2 AND revoked_at IS NULL",
            params![realm_id, key.name],
            |_| Ok(()),
        )
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::DuplicateEmbedKey {
            realm: key.realm.to_owned(),
            name: key.name.to_owned(),
        });
    }
    let version = next_directory_version(tx)?;
    let id = tx.query_row(
        "INSERT INTO embed_keys (realm_id, name, key_hash, origins, created_at, row_version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        params![
            realm_id,
            key.name,
            &key.key_hash[..],
            join_origins(key.origins),
            key.now,
            version
        ],
        |r| r.get(0),
    )?;
    Ok(EmbedKeyRow {
        id,
        realm_id,
        name: key.name.to_owned(),
        key_hash: key.key_hash,
        origins: key.origins.to_vec(),
        created_at: key.now,
        last_used_at: None,
        revoked_at: None,
    })
}

/// Every key of a realm, oldest first.
pub fn list(tx: &Transaction<'_>, realm: &str) -> Result<Vec<EmbedKeyRow>, StoreError> {
    let realm_id = realm_id(tx, realm)?;
    query_all(
        tx,
        &format!("SELECT {EMBED_KEY_COLUMNS} FROM embed_keys WHERE realm_id = ?1 ORDER BY id"),
        [realm_id],
        embed_key_row,
    )
}

/// Revokes a realm's live key by name.
pub fn revoke(
    tx: &Transaction<'_>,
    realm: &str,
    name: &str,
    now: i64,
) -> Result<EmbedKeyRow, StoreError> {
    let realm_id = realm_id(tx, realm)?;
    let version = next_directory_version(tx)?;
    tx.query_row(
        &format!(
            "UPDATE embed_keys SET revoked_at = ?1, row_version = ?2 \
             WHERE realm_id = ?3 AND name = ?4 AND revoked_at IS NULL \
             RETURNING {EMBED_KEY_COLUMNS}"
        ),
        params![now, version, realm_id, name],
        embed_key_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::UnknownEmbedKey {
        realm: realm.to_owned(),
        name: name.to_owned(),
    })
}

/// Records last uses, keeping the latest.
pub fn record_use(tx: &Transaction<'_>, uses: &[EmbedKeyUse]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "UPDATE embed_keys SET last_used_at = ?2 \
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
    )?;
    for used in uses {
        stmt.execute(params![used.key, used.at])?;
    }
    Ok(())
}

/// Keys changed after directory version `since`.
pub fn changed_since(conn: &Connection, since: i64) -> Result<Vec<EmbedKeyRow>, StoreError> {
    query_all(
        conn,
        &format!("SELECT {EMBED_KEY_COLUMNS} FROM embed_keys WHERE row_version > ?1 ORDER BY id"),
        [since],
        embed_key_row,
    )
}

/// Every key, for loading and export.
pub fn all(conn: &Connection) -> Result<Vec<EmbedKeyRow>, StoreError> {
    query_all(
        conn,
        &format!("SELECT {EMBED_KEY_COLUMNS} FROM embed_keys ORDER BY id"),
        [],
        embed_key_row,
    )
}

/// Adds imported keys, ids kept.
pub fn import(tx: &Transaction<'_>, keys: &[EmbedKeyRow]) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let version = next_directory_version(tx)?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO embed_keys (id, realm_id, name, key_hash, origins, created_at, \
         last_used_at, revoked_at, row_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for key in keys {
        let inserted = insert.execute(params![
            key.id,
            key.realm_id,
            key.name,
            &key.key_hash[..],
            join_origins(&key.origins),
            key.created_at,
            key.last_used_at,
            key.revoked_at,
            version
        ]);
        inserted.map_err(|e| {
            import_error(e, || {
                format!(
                    "embed key {:?} (id {}, realm id {}) conflicts with an existing key, \
                     or its realm is missing",
                    key.name, key.id, key.realm_id
                )
            })
        })?;
    }
    Ok(())
}

/// Creates or refreshes a node's report, and forgets nodes silent since
/// before `forget_before`.
pub fn report_node(
    conn: &Connection,
    node: &NodeRow,
    forget_before: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM server_nodes WHERE seen_at < ?1",
        [forget_before],
    )?;
    conn.execute(
        "INSERT INTO server_nodes (id, started_at, seen_at, directory_version) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET \
         seen_at = excluded.seen_at, directory_version = excluded.directory_version",
        params![
            node.id,
            node.started_at,
            node.seen_at,
            node.directory_version
        ],
    )?;
    Ok(())
}

/// Every node's report.
pub fn nodes(conn: &Connection) -> Result<Vec<NodeRow>, StoreError> {
    query_all(
        conn,
        "SELECT id, started_at, seen_at, directory_version FROM server_nodes ORDER BY id",
        [],
        |r| {
            Ok(NodeRow {
                id: r.get(0)?,
                started_at: r.get(1)?,
                seen_at: r.get(2)?,
                directory_version: r.get(3)?,
            })
        },
    )
}
