//! Reading the embedded store's rows: the columns each kind of row is read
//! from, the conversions from a row to the store's types, and the lookups
//! of a realm or user by name that admin changes start from.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::ids::{RealmId, UserId};
use crate::store::{DeviceKind, DeviceRow, PresenceRow, RealmRow, StoreError, UserRow, email_key};

/// The columns [`user_row`] reads, in its order (users as `u`).
pub(super) const USER_COLUMNS: &str = "u.id, u.realm_id, u.email, u.full_name, u.is_bot, \
     u.is_active, u.date_joined, u.api_key_hash, u.presence_enabled, \
     u.enable_offline_push_notifications, \
     (SELECT COUNT(*) FROM push_devices d WHERE d.user_id = u.id)";

/// The columns [`realm_row`] reads, in its order.
pub(super) const REALM_COLUMNS: &str =
    "id, string_id, name, presence_disabled, deactivated, date_created";

/// The id of the realm named `string_id`.
pub(super) fn realm_id(tx: &Transaction<'_>, string_id: &str) -> Result<RealmId, StoreError> {
    tx.query_row(
        "SELECT id FROM realms WHERE string_id = ?1",
        [string_id],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::UnknownRealm(string_id.to_owned()))
}

/// The id of the user of `realm` with this email (compared as
/// [`email_key`]s).
pub(super) fn user_id(
    tx: &Transaction<'_>,
    realm: &str,
    email: &str,
) -> Result<UserId, StoreError> {
    let realm_id = realm_id(tx, realm)?;
    tx.query_row(
        "SELECT id FROM users WHERE realm_id = ?1 AND email_key = ?2",
        params![realm_id, email_key(email)],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::UnknownUser {
        realm: realm.to_owned(),
        email: email.to_owned(),
    })
}

/// A realm from a row of [`REALM_COLUMNS`].
pub(super) fn realm_row(r: &Row<'_>) -> rusqlite::Result<RealmRow> {
    Ok(RealmRow {
        id: r.get(0)?,
        string_id: r.get(1)?,
        name: r.get(2)?,
        presence_disabled: r.get(3)?,
        deactivated: r.get(4)?,
        date_created: r.get(5)?,
    })
}

/// A user from a row of [`USER_COLUMNS`].
pub(super) fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    let hash: Vec<u8> = r.get(7)?;
    let api_key_hash: [u8; 32] = hash.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            7,
            rusqlite::types::Type::Blob,
            "api_key_hash is not 32 bytes".into(),
        )
    })?;
    Ok(UserRow {
        id: r.get(0)?,
        realm_id: r.get(1)?,
        email: r.get(2)?,
        full_name: r.get(3)?,
        is_bot: r.get(4)?,
        is_active: r.get(5)?,
        date_joined: r.get(6)?,
        api_key_hash,
        presence_enabled: r.get(8)?,
        enable_offline_push_notifications: r.get(9)?,
        push_devices: r.get(10)?,
    })
}

/// A presence record from a row of `user_id, client, last_connected_time,
/// last_active_time, update_id`.
pub(super) fn presence_row(r: &Row<'_>) -> rusqlite::Result<PresenceRow> {
    Ok(PresenceRow {
        user_id: r.get(0)?,
        client: r.get(1)?,
        last_connected_time: r.get(2)?,
        last_active_time: r.get(3)?,
        update_id: r.get(4)?,
    })
}

/// A presence record's values in the order `user_id, client,
/// last_connected_time, last_active_time, update_id`, for an insert.
pub(super) fn presence_values(p: &PresenceRow) -> [&dyn rusqlite::ToSql; 5] {
    [
        &p.user_id,
        &p.client,
        &p.last_connected_time,
        &p.last_active_time,
        &p.update_id,
    ]
}

/// Every row `sql` selects, each read by `f`.
pub(super) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, f)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A push device from a row of `user_id, kind, token, appid`.
pub(super) fn device_row(r: &Row<'_>) -> rusqlite::Result<DeviceRow> {
    let kind: String = r.get(1)?;
    Ok(DeviceRow {
        user_id: r.get(0)?,
        kind: DeviceKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("unknown device kind {kind:?}").into(),
            )
        })?,
        token: r.get(2)?,
        appid: r.get(3)?,
    })
}

/// Stores an id as its integer and reads it back.
macro_rules! integer_column {
    ($id:ty) => {
        impl rusqlite::ToSql for $id {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }

        impl rusqlite::types::FromSql for $id {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(value).map(Self)
            }
        }
    };
}
crate::ids::for_each_id!(integer_column);
