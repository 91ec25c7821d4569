//! Reading the shared store's rows: the columns each kind of row is read
//! from, the conversions from a row to the store's types, and the lookups
//! of a realm or user by name that admin changes start from.

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::{FromSql, Type};
use ::postgres::{Client, Row};

use crate::ids::{RealmId, UserId};
use crate::store::{DeviceKind, DeviceRow, PresenceRow, RealmRow, StoreError, UserRow, email_key};

/// The columns [`realm_row`] reads, in its order (realms as `r`).
pub(super) const REALM_COLUMNS: &str =
    "r.id, r.string_id, r.name, r.presence_disabled, r.deactivated, r.date_created";

/// The columns [`user_row`] reads, in its order (users as `u`).
pub(super) const USER_COLUMNS: &str = "u.id, u.realm_id, u.email, u.full_name, u.is_bot, \
     u.is_active, u.date_joined, u.api_key_hash, u.presence_enabled, \
     u.enable_offline_push_notifications, \
     (SELECT COUNT(*) FROM push_devices d WHERE d.user_id = u.id)";

/// The columns [`presence_row`] reads, in its order (records as `p`).
pub(super) const PRESENCE_COLUMNS: &str =
    "p.user_id, p.client, p.last_connected_time, p.last_active_time, p.update_id";

/// The id of the realm named `string_id`.
pub(super) fn realm_id(c: &mut Client, string_id: &str) -> Result<RealmId, StoreError> {
    match c.query_opt("SELECT id FROM realms WHERE string_id = $1", &[&string_id])? {
        Some(row) => Ok(row.try_get(0)?),
        None => Err(StoreError::UnknownRealm(string_id.to_owned())),
    }
}

/// The id of the user of `realm` with this email (compared as
/// [`email_key`]s).
pub(super) fn user_id(c: &mut Client, realm: &str, email: &str) -> Result<UserId, StoreError> {
    let realm_id = realm_id(c, realm)?;
    match c.query_opt(
        "SELECT id FROM users WHERE realm_id = $1 AND email_key = $2",
        &[&realm_id, &email_key(email)],
    )? {
        Some(row) => Ok(row.try_get(0)?),
        None => Err(StoreError::UnknownUser {
            realm: realm.to_owned(),
            email: email.to_owned(),
        }),
    }
}

/// An API key hash column, which must hold exactly 32 bytes.
pub(super) struct KeyHash(pub(super) [u8; 32]);

impl<'a> FromSql<'a> for KeyHash {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let bytes = <&[u8] as FromSql>::from_sql(ty, raw)?;
        let hash = bytes
            .try_into()
            .map_err(|_| format!("api_key_hash has {} bytes, not 32", bytes.len()))?;
        Ok(KeyHash(hash))
    }

    fn accepts(ty: &Type) -> bool {
        <&[u8] as FromSql>::accepts(ty)
    }
}

/// A device kind column, which must name a known kind.
struct KindColumn(DeviceKind);

impl<'a> FromSql<'a> for KindColumn {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let name = <&str as FromSql>::from_sql(ty, raw)?;
        let kind =
            DeviceKind::parse(name).ok_or_else(|| format!("unknown device kind {name:?}"))?;
        Ok(KindColumn(kind))
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

/// A realm from a row of [`REALM_COLUMNS`].
pub(super) fn realm_row(r: &Row) -> Result<RealmRow, ::postgres::Error> {
    Ok(RealmRow {
        id: r.try_get(0)?,
        string_id: r.try_get(1)?,
        name: r.try_get(2)?,
        presence_disabled: r.try_get(3)?,
        deactivated: r.try_get(4)?,
        date_created: r.try_get(5)?,
    })
}

/// A user from a row of [`USER_COLUMNS`].
pub(super) fn user_row(r: &Row) -> Result<UserRow, ::postgres::Error> {
    let KeyHash(api_key_hash) = r.try_get(7)?;
    let devices: i64 = r.try_get(10)?;
    Ok(UserRow {
        id: r.try_get(0)?,
        realm_id: r.try_get(1)?,
        email: r.try_get(2)?,
        full_name: r.try_get(3)?,
        is_bot: r.try_get(4)?,
        is_active: r.try_get(5)?,
        date_joined: r.try_get(6)?,
        api_key_hash,
        presence_enabled: r.try_get(8)?,
        enable_offline_push_notifications: r.try_get(9)?,
        push_devices: u32::try_from(devices).unwrap_or(u32::MAX),
    })
}

/// A presence record from a row of [`PRESENCE_COLUMNS`].
pub(super) fn presence_row(r: &Row) -> Result<PresenceRow, ::postgres::Error> {
    Ok(PresenceRow {
        user_id: r.try_get(0)?,
        client: r.try_get(1)?,
        last_connected_time: r.try_get(2)?,
        last_active_time: r.try_get(3)?,
        update_id: r.try_get(4)?,
    })
}

/// Runs a query without parameters and hands each row to `f` as it arrives,
/// so that a large table is never held whole.
pub(super) fn stream(
    c: &mut Client,
    sql: &str,
    mut f: impl FnMut(&Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut rows = c.query_raw(sql, std::iter::empty::<i64>())?;
    while let Some(row) = rows.next()? {
        f(&row)?;
    }
    Ok(())
}

/// A push device from a row of `user_id, kind, token, appid`.
pub(super) fn device_row(r: &Row) -> Result<DeviceRow, ::postgres::Error> {
    let KindColumn(kind) = r.try_get(1)?;
    Ok(DeviceRow {
        user_id: r.try_get(0)?,
        kind,
        token: r.try_get(2)?,
        appid: r.try_get(3)?,
    })
}

/// Stores an id as a `BIGINT` and reads it back.
macro_rules! bigint_column {
    ($id:ty) => {
        impl ::postgres::types::ToSql for $id {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut bytes::BytesMut,
            ) -> Result<::postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.0.to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <i64 as ::postgres::types::ToSql>::accepts(ty)
            }

            ::postgres::types::to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $id {
            fn from_sql(
                ty: &Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                i64::from_sql(ty, raw).map(Self)
            }

            fn accepts(ty: &Type) -> bool {
                <i64 as FromSql>::accepts(ty)
            }
        }
    };
}
crate::ids::for_each_id!(bigint_column);
