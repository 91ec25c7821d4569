//! Moving a whole installation in and out of the shared store: the dump
//! `export` reads, and `import`, which adds a dump with its ids kept in one
//! transaction, table by table, and moves the id sequences past it.

use ::postgres::Client;
use ::postgres::error::SqlState;

use super::Names;
use super::batch::{next_directory_version, notify};
use super::embed;
use super::rows::{
    PRESENCE_COLUMNS, REALM_COLUMNS, USER_COLUMNS, device_row, presence_row, realm_row, stream,
    user_row,
};
use crate::ids::{RealmId, UpdateId, UserId};
use crate::store::{DeviceRow, Dump, PresenceRow, RealmRow, StoreError, UserRow, email_key};

/// Turns a constraint violation during an import into `ImportConflict`,
/// naming what conflicts; other errors pass through.
pub(super) fn import_error(what: &str, e: ::postgres::Error) -> StoreError {
    let conflict = [
        SqlState::UNIQUE_VIOLATION,
        SqlState::FOREIGN_KEY_VIOLATION,
        SqlState::NOT_NULL_VIOLATION,
    ];
    match e.as_db_error() {
        Some(db) if conflict.contains(db.code()) => StoreError::ImportConflict(format!(
            "{what}: {}",
            db.detail().unwrap_or_else(|| db.message())
        )),
        _ => e.into(),
    }
}

/// Makes a table's id sequence hand out ids above every id it holds (and
/// never lowers it, in case another process took ids meanwhile).
pub(super) fn raise_id_sequence(c: &mut Client, table: &str) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT setval('{table}_id_seq', GREATEST(\
         (SELECT COALESCE(MAX(id), 1) FROM {table}), \
         (SELECT last_value FROM {table}_id_seq)))"
    );
    c.execute(&sql, &[])?;
    Ok(())
}

/// Adds everything in `dump` inside the open transaction, ids kept, and
/// tells the other nodes: a realm, user or id that exists already refuses
/// the whole import.
pub(super) fn import_dump(c: &mut Client, names: &Names, dump: &Dump) -> Result<(), StoreError> {
    let version = next_directory_version(c)?;
    check_realms_are_new(c, &dump.realms)?;
    insert_realms(c, &dump.realms, version)?;
    insert_users(c, &dump.users, version)?;
    insert_presence(c, &dump.presence)?;
    start_sequences(c, dump)?;
    insert_devices(c, &dump.devices)?;
    // Imported rows keep their ids, which the id sequences did not hand
    // out: move them past, or later creations would collide.
    if !dump.realms.is_empty() {
        raise_id_sequence(c, "realms")?;
    }
    if !dump.users.is_empty() {
        raise_id_sequence(c, "users")?;
    }
    embed::import(c, &dump.embed_keys)?;
    super::status::import(c, &dump.statuses, version)?;
    notify(c, names)
}

/// Refuses the import if a realm of the dump exists already, by id or by
/// name, naming the dump's realm.
fn check_realms_are_new(c: &mut Client, realms: &[RealmRow]) -> Result<(), StoreError> {
    let realm_ids: Vec<RealmId> = realms.iter().map(|r| r.id).collect();
    let string_ids: Vec<&str> = realms.iter().map(|r| r.string_id.as_str()).collect();
    let Some(row) = c.query_opt(
        "SELECT id, string_id FROM realms WHERE id = ANY($1) OR string_id = ANY($2) \
         ORDER BY id LIMIT 1",
        &[&realm_ids, &string_ids],
    )?
    else {
        return Ok(());
    };
    let (id, string_id): (RealmId, String) = (row.try_get(0)?, row.try_get(1)?);
    let realm = realms
        .iter()
        .find(|r| r.id == id || r.string_id == string_id);
    let (id, string_id) = realm.map_or((id, string_id.as_str()), |r| (r.id, &r.string_id));
    Err(StoreError::ImportConflict(format!(
        "realm {string_id:?} (id {id}) exists already"
    )))
}

/// Adds the dump's realms, all at directory version `version`.
fn insert_realms(c: &mut Client, realms: &[RealmRow], version: i64) -> Result<(), StoreError> {
    if realms.is_empty() {
        return Ok(());
    }
    let realm_ids: Vec<RealmId> = realms.iter().map(|r| r.id).collect();
    let string_ids: Vec<&str> = realms.iter().map(|r| r.string_id.as_str()).collect();
    let realm_names: Vec<&str> = realms.iter().map(|r| r.name.as_str()).collect();
    let disabled: Vec<bool> = realms.iter().map(|r| r.presence_disabled).collect();
    let deactivated: Vec<bool> = realms.iter().map(|r| r.deactivated).collect();
    let created: Vec<i64> = realms.iter().map(|r| r.date_created).collect();
    c.execute(
        "INSERT INTO realms (id, string_id, name, presence_disabled, deactivated, \
         date_created, row_version) \
         SELECT *, $7::bigint FROM unnest($1::bigint[], $2::text[], $3::text[], \
         $4::boolean[], $5::boolean[], $6::bigint[])",
        &[
            &realm_ids,
            &string_ids,
            &realm_names,
            &disabled,
            &deactivated,
            &created,
            &version,
        ],
    )
    .map_err(|e| import_error("the dump's realms repeat an id or a name", e))?;
    Ok(())
}

/// Adds the dump's users, all at directory version `version` (their device
/// counts are ignored: they follow from the devices).
fn insert_users(c: &mut Client, u: &[UserRow], version: i64) -> Result<(), StoreError> {
    if u.is_empty() {
        return Ok(());
    }
    let ids: Vec<UserId> = u.iter().map(|u| u.id).collect();
    let realms: Vec<RealmId> = u.iter().map(|u| u.realm_id).collect();
    let emails: Vec<&str> = u.iter().map(|u| u.email.as_str()).collect();
    let keys: Vec<String> = u.iter().map(|u| email_key(&u.email)).collect();
    let full_names: Vec<&str> = u.iter().map(|u| u.full_name.as_str()).collect();
    let bots: Vec<bool> = u.iter().map(|u| u.is_bot).collect();
    let active: Vec<bool> = u.iter().map(|u| u.is_active).collect();
    let joined: Vec<i64> = u.iter().map(|u| u.date_joined).collect();
    let hashes: Vec<&[u8]> = u.iter().map(|u| &u.api_key_hash[..]).collect();
    let enabled: Vec<bool> = u.iter().map(|u| u.presence_enabled).collect();
    let push: Vec<bool> = u
        .iter()
        .map(|u| u.enable_offline_push_notifications)
        .collect();
    c.execute(
        "INSERT INTO users (id, realm_id, email, email_key, full_name, is_bot, is_active, \
         date_joined, api_key_hash, presence_enabled, enable_offline_push_notifications, \
         row_version) \
         SELECT *, $12::bigint FROM unnest($1::bigint[], $2::bigint[], $3::text[], \
         $4::text[], $5::text[], $6::boolean[], $7::boolean[], $8::bigint[], $9::bytea[], \
         $10::boolean[], $11::boolean[])",
        &[
            &ids,
            &realms,
            &emails,
            &keys,
            &full_names,
            &bots,
            &active,
            &joined,
            &hashes,
            &enabled,
            &push,
            &version,
        ],
    )
    .map_err(|e| {
        import_error(
            "a user conflicts with an existing user or key, or its realm is missing",
            e,
        )
    })?;
    Ok(())
}

/// Adds the dump's presence records, each in its user's realm.
fn insert_presence(c: &mut Client, p: &[PresenceRow]) -> Result<(), StoreError> {
    if p.is_empty() {
        return Ok(());
    }
    let users: Vec<UserId> = p.iter().map(|p| p.user_id).collect();
    let clients: Vec<&str> = p.iter().map(|p| p.client.as_str()).collect();
    let connected: Vec<i64> = p.iter().map(|p| p.last_connected_time).collect();
    let active: Vec<Option<i64>> = p.iter().map(|p| p.last_active_time).collect();
    let updates: Vec<UpdateId> = p.iter().map(|p| p.update_id).collect();
    // A record whose user is missing gets no realm, which the NOT NULL
    // constraint refuses like a missing key.
    c.execute(
        "INSERT INTO client_presence \
         (user_id, realm_id, client, last_connected_time, last_active_time, update_id) \
         SELECT v.user_id, u.realm_id, v.client, v.last_connected_time, \
         v.last_active_time, v.update_id \
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) \
         AS v(user_id, client, last_connected_time, last_active_time, update_id) \
         LEFT JOIN users u ON u.id = v.user_id",
        &[&users, &clients, &connected, &active, &updates],
    )
    .map_err(|e| {
        import_error(
            "a presence record repeats an existing one, or its user is missing",
            e,
        )
    })?;
    Ok(())
}

/// Starts each realm's sequence at the largest update id its imported
/// records carry, so that new updates sort after them; a realm that
/// existed already is only ever raised.
fn start_sequences(c: &mut Client, dump: &Dump) -> Result<(), StoreError> {
    let realm_ids: Vec<RealmId> = dump.realms.iter().map(|r| r.id).collect();
    let presence_users: Vec<UserId> = dump.presence.iter().map(|p| p.user_id).collect();
    c.execute(
        "INSERT INTO realm_sequences (realm_id, last_update_id) \
         SELECT t.realm_id, COALESCE((SELECT MAX(p.update_id) FROM client_presence p \
         WHERE p.realm_id = t.realm_id), 0) \
         FROM (SELECT unnest($1::bigint[]) \
               UNION SELECT u.realm_id FROM users u WHERE u.id = ANY($2)) AS t(realm_id) \
         ON CONFLICT (realm_id) DO UPDATE SET last_update_id = \
         GREATEST(realm_sequences.last_update_id, excluded.last_update_id)",
        &[&realm_ids, &presence_users],
    )?;
    Ok(())
}

/// Adds the dump's push devices.
fn insert_devices(c: &mut Client, d: &[DeviceRow]) -> Result<(), StoreError> {
    if d.is_empty() {
        return Ok(());
    }
    let users: Vec<UserId> = d.iter().map(|d| d.user_id).collect();
    let kinds: Vec<&str> = d.iter().map(|d| d.kind.as_str()).collect();
    let tokens: Vec<&str> = d.iter().map(|d| d.token.as_str()).collect();
    let appids: Vec<Option<&str>> = d.iter().map(|d| d.appid.as_deref()).collect();
    c.execute(
        "INSERT INTO push_devices (user_id, kind, token, appid) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])",
        &[&users, &kinds, &tokens, &appids],
    )
    .map_err(|e| {
        import_error(
            "a push device repeats an existing one, or its user is missing",
            e,
        )
    })?;
    Ok(())
}

/// Everything the store holds, read in the open snapshot a row at a time.
pub(super) fn export_dump(c: &mut Client) -> Result<Dump, StoreError> {
    let mut dump = Dump::default();
    stream(
        c,
        &format!("SELECT {REALM_COLUMNS} FROM realms r ORDER BY r.id"),
        |r| {
            dump.realms.push(realm_row(r)?);
            Ok(())
        },
    )?;
    stream(
        c,
        &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.id"),
        |r| {
            dump.users.push(user_row(r)?);
            Ok(())
        },
    )?;
    stream(
        c,
        &format!(
            "SELECT {PRESENCE_COLUMNS} FROM client_presence p \
             ORDER BY p.user_id, p.client"
        ),
        |r| {
            dump.presence.push(presence_row(r)?);
            Ok(())
        },
    )?;
    stream(
        c,
        "SELECT user_id, kind, token, appid FROM push_devices \
         ORDER BY user_id, kind, token",
        |r| {
            dump.devices.push(device_row(r)?);
            Ok(())
        },
    )?;
    dump.embed_keys = embed::all(c)?;
    dump.statuses = super::status::all(c)?;
    Ok(dump)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::postgres::PgStore;
    use crate::store::testing::{hash, imported_realm, imported_user, new_user, scratch, sequence};

    #[test]
    fn import_keeps_ids_and_later_creations_do_not_collide() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let mut store = PgStore::open(&url).expect("open");
        let mut dump = imported_realm();
        store.import(&dump).expect("import");
        dump.users[1].push_devices = 1;
        assert_eq!(store.export().expect("export"), dump);
        assert_eq!(
            store.sequences().expect("sequences"),
            vec![sequence(RealmId(10), 42)]
        );

        match store.import(&dump) {
            Err(StoreError::ImportConflict(message)) => {
                assert!(message.contains("acme"), "{message}")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        let mut clash = Dump {
            users: vec![imported_user(200, "c@x", 1)],
            ..Dump::default()
        };
        match store.import(&clash) {
            Err(StoreError::ImportConflict(message)) => {
                assert!(message.contains("api_key_hash"), "{message}")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        clash.users[0].realm_id = RealmId(77);
        clash.users[0].api_key_hash = hash(77);
        assert!(matches!(
            store.import(&clash),
            Err(StoreError::ImportConflict(_))
        ));

        let realm = store.create_realm("beta", "Beta", 0).expect("realm");
        assert!(realm.id > RealmId(10));
        // (The imported realm is deactivated: the new user goes to the new one.)
        let created = store
            .create_user(&new_user("beta", "c@x", 3))
            .expect("user");
        assert!(created.id > UserId(101));
        assert_eq!(
            store.begin_batch(&[realm.id]).expect("begin"),
            vec![UpdateId(0)]
        );
        store.abort_batch();
    }
}
