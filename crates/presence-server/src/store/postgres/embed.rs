//! Embed keys and serving nodes in the shared store.
//!
//! As in the embedded store, an embed key's row carries a row version from
//! the directory version (so every node picks up new keys and revocations,
//! told at once by the commit's notification), while its last use is
//! written without one.

use ::postgres::error::SqlState;
use ::postgres::{Client, Row};

use super::Names;
use super::batch::{next_directory_version, notify};
use super::rows::{KeyHash, realm_id};
use super::transfer::{import_error, raise_id_sequence};
use crate::ids::EmbedKeyId;
use crate::store::{
    EmbedKeyRow, EmbedKeyUse, NewEmbedKey, NodeRow, StoreError, join_origins, split_origins,
};

/// Migration 2: embed keys, and the nodes' reports.
pub const SCHEMA_V2: &str = "
CREATE TABLE embed_keys (
    id           BIGSERIAL PRIMARY KEY,
    realm_id     BIGINT NOT NULL REFERENCES realms (id),
    name         TEXT NOT NULL,
    key_hash     BYTEA NOT NULL UNIQUE,
    origins      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    row_version  BIGINT NOT NULL
);
CREATE UNIQUE INDEX embed_keys_live_name ON embed_keys (realm_id, name)
    WHERE revoked_at IS NULL;
CREATE INDEX embed_keys_row_version ON embed_keys (row_version);
CREATE TABLE server_nodes (
    id                TEXT PRIMARY KEY,
    started_at        BIGINT NOT NULL,
    seen_at           BIGINT NOT NULL,
    directory_version BIGINT NOT NULL
);
";

/// The columns [`embed_key_row`] reads, in its order.
pub const EMBED_KEY_COLUMNS: &str =
    "id, realm_id, name, key_hash, origins, created_at, last_used_at, revoked_at";

/// An embed key from a row of [`EMBED_KEY_COLUMNS`].
pub fn embed_key_row(r: &Row) -> Result<EmbedKeyRow, ::postgres::Error> {
    let KeyHash(key_hash) = r.try_get(3)?;
    let origins: String = r.try_get(4)?;
    Ok(EmbedKeyRow {
        id: r.try_get(0)?,
        realm_id: r.try_get(1)?,
        name: r.try_get(2)?,
        key_hash,
        origins: split_origins(&origins),
        created_at: r.try_get(5)?,
        last_used_at: r.try_get(6)?,
        revoked_at: r.try_get(7)?,
    })
}

fn rows(found: Vec<Row>) -> Result<Vec<EmbedKeyRow>, StoreError> {
    Ok(found.iter().map(embed_key_row).collect::<Result<_, _>>()?)
}

/// Creates a key, refusing a name a live key of the realm has.
pub fn create(
    c: &mut Client,
    names: &Names,
    key: &NewEmbedKey<'_>,
) -> Result<EmbedKeyRow, StoreError> {
    let realm_id = realm_id(c, key.realm)?;
    let version = next_directory_version(c)?;
    let duplicate = || StoreError::DuplicateEmbedKey {
        realm: key.realm.to_owned(),
        name: key.name.to_owned(),
    };
    let row = c
        .query_one(
            "INSERT INTO embed_keys (realm_id, name, key_hash, origins, created_at, row_version) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &realm_id,
                &key.name,
                &&key.key_hash[..],
                &join_origins(key.origins),
                &key.now,
                &version,
            ],
        )
        .map_err(|e| match e.as_db_error() {
            Some(db)
                if *db.code() == SqlState::UNIQUE_VIOLATION
                    && db.constraint() == Some("embed_keys_live_name") =>
            {
                duplicate()
            }
            _ => e.into(),
        })?;
    notify(c, names)?;
    Ok(EmbedKeyRow {
        id: row.try_get(0)?,
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
pub fn list(c: &mut Client, realm: &str) -> Result<Vec<EmbedKeyRow>, StoreError> {
    let realm_id = realm_id(c, realm)?;
    rows(c.query(
        &format!("SELECT {EMBED_KEY_COLUMNS} FROM embed_keys WHERE realm_id = $1 ORDER BY id"),
        &[&realm_id],
    )?)
}

/// Revokes a realm's live key by name.
pub fn revoke(
    c: &mut Client,
    names: &Names,
    realm: &str,
    name: &str,
    now: i64,
) -> Result<EmbedKeyRow, StoreError> {
    let realm_id = realm_id(c, realm)?;
    let version = next_directory_version(c)?;
    let revoked = c.query_opt(
        &format!(
            "UPDATE embed_keys SET revoked_at = $1, row_version = $2 \
             WHERE realm_id = $3 AND name = $4 AND revoked_at IS NULL \
             RETURNING {EMBED_KEY_COLUMNS}"
        ),
        &[&now, &version, &realm_id, &name],
    )?;
    let Some(row) = revoked else {
        return Err(StoreError::UnknownEmbedKey {
            realm: realm.to_owned(),
            name: name.to_owned(),
        });
    };
    notify(c, names)?;
    Ok(embed_key_row(&row)?)
}

/// Records last uses, keeping the latest.
pub fn record_use(c: &mut Client, uses: &[EmbedKeyUse]) -> Result<(), StoreError> {
    let (ids, times): (Vec<EmbedKeyId>, Vec<i64>) = uses.iter().map(|u| (u.key, u.at)).unzip();
    c.execute(
        "UPDATE embed_keys k SET last_used_at = u.at \
         FROM unnest($1::BIGINT[], $2::BIGINT[]) AS u (id, at) \
         WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)",
        &[&ids, &times],
    )?;
    Ok(())
}

/// Keys changed after directory version `since`.
pub fn changed_since(c: &mut Client, since: i64) -> Result<Vec<EmbedKeyRow>, StoreError> {
    rows(c.query(
        &format!("SELECT {EMBED_KEY_COLUMNS} FROM embed_keys WHERE row_version > $1 ORDER BY id"),
        &[&since],
    )?)
}

/// Every key, for loading and export.
pub fn all(c: &mut Client) -> Result<Vec<EmbedKeyRow>, StoreError> {
    rows(c.query(
        &format!("SELECT {EMBED_KEY_COLUMNS} FROM embed_keys ORDER BY id"),
        &[],
    )?)
}

/// Adds imported keys, ids kept, and moves the id sequence past them.
pub fn import(c: &mut Client, keys: &[EmbedKeyRow]) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let version = next_directory_version(c)?;
    let insert = c.prepare(
        "INSERT INTO embed_keys (id, realm_id, name, key_hash, origins, created_at, \
         last_used_at, revoked_at, row_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )?;
    for key in keys {
        c.execute(
            &insert,
            &[
                &key.id,
                &key.realm_id,
                &key.name,
                &&key.key_hash[..],
                &join_origins(&key.origins),
                &key.created_at,
                &key.last_used_at,
                &key.revoked_at,
                &version,
            ],
        )
        .map_err(|e| import_error(&format!("embed key {:?} (id {})", key.name, key.id), e))?;
    }
    raise_id_sequence(c, "embed_keys")
}

/// Creates or refreshes a node's report, and forgets nodes silent since
/// before `forget_before`.
pub fn report_node(c: &mut Client, node: &NodeRow, forget_before: i64) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM server_nodes WHERE seen_at < $1",
        &[&forget_before],
    )?;
    c.execute(
        "INSERT INTO server_nodes (id, started_at, seen_at, directory_version) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
         seen_at = excluded.seen_at, directory_version = excluded.directory_version",
        &[
            &node.id,
            &node.started_at,
            &node.seen_at,
            &node.directory_version,
        ],
    )?;
    Ok(())
}

/// Every node's report.
pub fn nodes(c: &mut Client) -> Result<Vec<NodeRow>, StoreError> {
    c.query(
        "SELECT id, started_at, seen_at, directory_version FROM server_nodes ORDER BY id",
        &[],
    )?
    .iter()
    .map(|r| {
        Ok(NodeRow {
            id: r.try_get(0)?,
            started_at: r.try_get(1)?,
            seen_at: r.try_get(2)?,
            directory_version: r.try_get(3)?,
        })
    })
    .collect()
}
