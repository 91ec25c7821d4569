//! Writing to the shared store: the directory version every directory
//! change takes, the notification every commit sends, and the server's
//! batches, which lock their realms' sequence rows from start to commit.

use std::collections::{BTreeMap, HashMap};

use ::postgres::{Client, SimpleQueryMessage};

use super::connection::Prepared;
use super::{Names, sql_literal};
use crate::ids::{RealmId, UpdateId, UserId};
use crate::store::durability::Durability;
use crate::store::published::{Published, encode};
use crate::store::{Mutation, PresenceRow, Sequence, StoreError};

/// Takes the next directory version. The meta row stays locked until the
/// transaction ends, so versions become visible in the order they were
/// taken and a reader of "rows newer than v" never misses one that commits
/// late.
pub(super) fn next_directory_version(c: &mut Client) -> Result<i64, StoreError> {
    Ok(c.query_one(
        "UPDATE meta SET value = value + 1 WHERE key = 'directory_version' RETURNING value",
        &[],
    )?
    .try_get(0)?)
}

/// The current directory version.
pub(super) fn read_directory_version(c: &mut Client) -> Result<i64, StoreError> {
    Ok(c.query_one(DIRECTORY_VERSION, &[])?.try_get(0)?)
}

/// Reads the directory version.
pub(super) const DIRECTORY_VERSION: &str = "SELECT value FROM meta WHERE key = 'directory_version'";

/// Tells the other nodes that this transaction changed something (delivered
/// at commit, and not at all on rollback).
pub(super) fn notify(c: &mut Client, names: &Names) -> Result<(), StoreError> {
    c.execute("SELECT pg_notify($1, $2)", &[&names.channel, &names.token])?;
    Ok(())
}

/// The statements that send a committing batch's notifications: one per
/// realm carrying its published records, and the bare token as well
/// (which tells the other nodes to read) if any realm's records do not fit
/// or nothing is published.
pub(super) fn notifications(names: &Names, published: Option<&[Published]>) -> String {
    let mut out = String::new();
    let mut announce = published.is_none_or(<[Published]>::is_empty);
    for batch in published.unwrap_or_default() {
        match encode(&names.token, batch) {
            Some(payload) => {
                out.push_str("SELECT pg_notify(");
                out.push_str(&sql_literal(&names.channel));
                out.push_str(", ");
                out.push_str(&sql_literal(&payload));
                out.push_str("); ");
            }
            None => announce = true,
        }
    }
    if announce {
        out.push_str(&names.notify_sql);
        out.push_str("; ");
    }
    out
}

/// How a batch's message ends, after its writes and notifications.
///
/// In `full`, a batch of presence records alone commits without waiting for
/// the disk and then runs a transaction of its own that does (it takes a
/// transaction id, so its commit is written and flushed, and with it
/// everything before it in the log, the batch's commit included). The
/// batch's locks go at its commit, so another node's batch runs while this
/// one's flush does, and PostgreSQL can flush both at once; the batch is
/// acknowledged only once the message, flush included, is done. Other nodes
/// may so see the commit before it is durable: none shows it before its
/// own flush, or one of its own batches, has passed it (docs/ARCHITECTURE.md,
/// "Durable before shown"). A batch that changes users commits waiting for
/// the disk; in `relaxed` nothing waits.
pub(super) fn commit_sql(durability: Durability, presence_only: bool) -> &'static str {
    match (durability, presence_only) {
        (Durability::Relaxed, _) => "SET LOCAL synchronous_commit = off; COMMIT",
        (Durability::Full, true) => {
            "SET LOCAL synchronous_commit = off; COMMIT; SELECT txid_current()"
        }
        (Durability::Full, false) => "COMMIT",
    }
}

/// What `Store::wait_durable` sends: a transaction that waits for the
/// disk, and with it for everything committed before it.
pub(super) const FLUSH: &str = "SELECT txid_current()";

/// What a committing batch publishes: each realm's records, from the
/// sequence its lock read (`locked`) to the one it sets. `None` (announce
/// only) if a realm was not locked by this batch or the batch changes
/// users.
pub(super) fn publishable(
    batch: &[Mutation],
    realms: &[RealmId],
    sequences: &[Sequence],
    locked: &[(RealmId, UpdateId)],
) -> Option<Vec<Published>> {
    let ranges = sequences
        .iter()
        .map(|s| {
            let (_, from) = locked.iter().find(|(id, _)| *id == s.realm_id)?;
            Some((s.realm_id, *from, s.last_update_id))
        })
        .collect::<Option<Vec<_>>>()?;
    crate::store::published::from_batch(batch, realms, &ranges)
}

/// The statement that locks a batch's sequence rows, in id order (so that
/// two nodes locking overlapping sets cannot deadlock).
const LOCK_SEQUENCES: &str = "SELECT realm_id, last_update_id FROM realm_sequences \
     WHERE realm_id = ANY($1) ORDER BY realm_id FOR UPDATE";

/// The settings a batch's own statements are planned under, sent before
/// each (as `SET LOCAL`, they last until the transaction ends).
///
/// A generic plan: planning a statement again for each batch's arrays, as
/// PostgreSQL would by default, costs more than it can gain. A generic
/// plan is made once and kept for the connection's life, from the sizes
/// the tables had then: made while the tables were small it joins the
/// batch's rows to whole tables by hashing, which a batch then pays for
/// each row the tables hold (a scan of every record and every user, 2 ms
/// a batch at 8,000 records). The batch's statements touch only the rows
/// their arrays name, which an index finds whatever the table's size, so
/// the plan is made with scans of whole tables, hash and merge joins
/// ruled out (a plan made again later, after `ANALYZE`, is made under the
/// same settings; BENCHMARKS.md, "PostgreSQL batches: plans kept from
/// small tables").
const INDEXED_GENERIC_PLAN: &str = "SET LOCAL plan_cache_mode = force_generic_plan; \
     SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
     SET LOCAL enable_mergejoin = off;";

/// Undoes what [`INDEXED_GENERIC_PLAN`] set, for the rest of a batch's
/// transaction: a read-back inside the batch is better planned as the
/// session plans, for the ids it asks for (the session's setting, from
/// `connection`; `TO DEFAULT` would be the server's).
const DEFAULT_PLANS: &str = "SET LOCAL plan_cache_mode = force_custom_plan; \
     SET LOCAL enable_seqscan TO DEFAULT; SET LOCAL enable_hashjoin TO DEFAULT; \
     SET LOCAL enable_mergejoin TO DEFAULT";

/// The name [`LOCK_SEQUENCES`] is prepared under in SQL.
const LOCK_NAME: &str = "presence_lock_sequences";

/// Opens a batch's transaction and locks the sequence rows of `realms`,
/// in one round trip; their values in the order asked. On failure the
/// transaction is rolled back.
///
/// The lock is taken on every batch, so it is sent as text with the
/// `BEGIN` rather than as its own message, and with a generic plan by
/// index (see [`INDEXED_GENERIC_PLAN`]).
pub(super) fn begin_locking_sequences(
    c: &mut Client,
    prepared: &mut Prepared,
    realms: &[RealmId],
) -> Result<Vec<UpdateId>, StoreError> {
    prepared.name(c, LOCK_NAME, LOCK_SEQUENCES)?;
    let ids: Vec<Option<i64>> = realms.iter().map(|r| Some(r.0)).collect();
    let sql = format!(
        "BEGIN; {INDEXED_GENERIC_PLAN} EXECUTE {LOCK_NAME}({}); {DEFAULT_PLANS}",
        bigints(&ids)
    );
    let locked = read_locked(c, &sql).inspect_err(|_| {
        let _ = c.batch_execute("ROLLBACK");
    })?;
    Ok(realms
        .iter()
        .map(|id| locked.get(id).copied().unwrap_or_default())
        .collect())
}

/// Runs `sql` and reads the sequence rows it returns.
fn read_locked(c: &mut Client, sql: &str) -> Result<HashMap<RealmId, UpdateId>, StoreError> {
    let mut found = HashMap::new();
    for message in c.simple_query(sql)? {
        if let SimpleQueryMessage::Row(row) = message {
            let number = |i: usize| -> Result<i64, StoreError> {
                row.get(i).and_then(|v| v.parse().ok()).ok_or_else(|| {
                    StoreError::Unavailable("a sequence row that is not a number".to_owned())
                })
            };
            found.insert(RealmId(number(0)?), UpdateId(number(1)?));
        }
    }
    Ok(found)
}

/// Writes a batch inside the open transaction (without committing): the
/// presence records and the realms' sequences in one statement, then the
/// users' settings and devices. A batch of presence records alone is not
/// written here but returned, as the statement to send with the commit:
/// the batch then ends in one round trip, and holds its realms' locks for
/// one fewer. `None` if the batch writes nothing (the other nodes are told
/// at commit about anything else).
pub(super) fn write_batch(
    c: &mut Client,
    prepared: &mut Prepared,
    batch: &[Mutation],
    sequences: &[Sequence],
) -> Result<Option<String>, StoreError> {
    if batch.is_empty() && sequences.is_empty() {
        return Ok(None);
    }
    let records = final_records(batch);
    if batch.iter().all(Mutation::is_presence) {
        return Ok(Some(execute_records_and_sequences(
            c, prepared, &records, sequences,
        )?));
    }
    // The batch changes a user (a presence-only batch returned above). The
    // directory version is taken before any user row is locked, the same
    // order the admin writes use, so the two cannot deadlock.
    let version = next_directory_version(c)?;
    c.batch_execute(INDEXED_GENERIC_PLAN)?;
    write_records_and_sequences(c, prepared, &records, sequences)?;
    let touched = write_user_changes(c, batch)?;
    c.execute(
        "UPDATE users SET row_version = $1 WHERE id = ANY($2)",
        &[&version, &touched],
    )?;
    super::status::write(c, batch, version)?;
    Ok(Some(String::new()))
}

/// Each presence record a batch changes, keyed by user and client, with its
/// final state: the last put, or `None` for a removal. (One statement cannot
/// touch a row twice, so each record's mutations are reduced to their final
/// effect.)
type Records<'a> = BTreeMap<(UserId, &'a str), Option<&'a PresenceRow>>;

fn final_records(batch: &[Mutation]) -> Records<'_> {
    let mut records = Records::new();
    for mutation in batch {
        match mutation {
            Mutation::PutPresence(p) => {
                records.insert((p.user_id, p.client.as_str()), Some(p));
            }
            Mutation::DeletePresence { user_id, client } => {
                records.insert((*user_id, client.as_str()), None);
            }
            _ => {}
        }
    }
    records
}

/// The statement that writes a batch's presence records and sequences: one
/// round trip, since the batch holds its realms' locks through each. Each
/// record is either removed or put (see [`final_records`]), and a realm is
/// named once, because one statement cannot touch a row twice. The realm of
/// a put record is copied from its user, so that catch-up reads of a realm
/// need no join.
const WRITE_RECORDS_AND_SEQUENCES: &str = "\
    WITH removed AS ( \
        DELETE FROM client_presence p \
        USING unnest($1::bigint[], $2::text[]) AS v(user_id, client) \
        WHERE p.user_id = v.user_id AND p.client = v.client), \
    put AS ( \
        INSERT INTO client_presence \
        (user_id, realm_id, client, last_connected_time, last_active_time, update_id) \
        SELECT v.user_id, u.realm_id, v.client, v.last_connected_time, \
        v.last_active_time, v.update_id \
        FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[]) \
        AS v(user_id, client, last_connected_time, last_active_time, update_id) \
        JOIN users u ON u.id = v.user_id \
        ON CONFLICT (user_id, client) DO UPDATE SET \
        last_connected_time = excluded.last_connected_time, \
        last_active_time = excluded.last_active_time, \
        update_id = excluded.update_id), \
    sequenced AS ( \
        INSERT INTO realm_sequences (realm_id, last_update_id) \
        SELECT * FROM unnest($8::bigint[], $9::bigint[]) \
        ON CONFLICT (realm_id) DO UPDATE SET last_update_id = excluded.last_update_id) \
    SELECT 1";

/// Removes and puts the batch's records and sets its realms' last update
/// ids (a realm named twice keeps its last value).
fn write_records_and_sequences(
    c: &mut Client,
    prepared: &mut Prepared,
    records: &Records<'_>,
    sequences: &[Sequence],
) -> Result<(), StoreError> {
    let (mut removed_users, mut removed_clients) = (Vec::new(), Vec::new());
    let (mut users, mut clients) = (Vec::new(), Vec::new());
    let (mut connected, mut active, mut update) = (Vec::new(), Vec::new(), Vec::new());
    for (&(user_id, client), record) in records {
        match record {
            None => {
                removed_users.push(user_id);
                removed_clients.push(client);
            }
            Some(p) => {
                users.push(user_id);
                clients.push(client);
                connected.push(p.last_connected_time);
                active.push(p.last_active_time);
                update.push(p.update_id);
            }
        }
    }
    let last: BTreeMap<RealmId, UpdateId> = sequences
        .iter()
        .map(|s| (s.realm_id, s.last_update_id))
        .collect();
    let (realms, ids): (Vec<RealmId>, Vec<UpdateId>) = last.into_iter().unzip();
    if removed_users.is_empty() && users.is_empty() && realms.is_empty() {
        return Ok(());
    }
    let statement = prepared.get(c, WRITE_RECORDS_AND_SEQUENCES)?;
    c.execute(
        &statement,
        &[
            &removed_users,
            &removed_clients,
            &users,
            &clients,
            &connected,
            &active,
            &update,
            &realms,
            &ids,
        ],
    )?;
    Ok(())
}

/// The name [`WRITE_RECORDS_AND_SEQUENCES`] is prepared under in SQL.
const WRITE_NAME: &str = "presence_write_records";

/// [`write_records_and_sequences`] as text to send with the commit: an
/// `EXECUTE` of the statement prepared by name, with its arrays written as
/// literals (empty if there is nothing to write).
fn execute_records_and_sequences(
    c: &mut Client,
    prepared: &mut Prepared,
    records: &Records<'_>,
    sequences: &[Sequence],
) -> Result<String, StoreError> {
    let (mut removed_users, mut removed_clients) = (Vec::new(), Vec::new());
    let (mut users, mut clients) = (Vec::new(), Vec::new());
    let (mut connected, mut active, mut update) = (Vec::new(), Vec::new(), Vec::new());
    for (&(user_id, client), record) in records {
        match record {
            None => {
                removed_users.push(Some(user_id.0));
                removed_clients.push(client);
            }
            Some(p) => {
                users.push(Some(user_id.0));
                clients.push(client);
                connected.push(Some(p.last_connected_time));
                active.push(p.last_active_time);
                update.push(Some(p.update_id.0));
            }
        }
    }
    let last: BTreeMap<RealmId, UpdateId> = sequences
        .iter()
        .map(|s| (s.realm_id, s.last_update_id))
        .collect();
    if removed_users.is_empty() && users.is_empty() && last.is_empty() {
        return Ok(String::new());
    }
    prepared.name(c, WRITE_NAME, WRITE_RECORDS_AND_SEQUENCES)?;
    let realms: Vec<Option<i64>> = last.keys().map(|r| Some(r.0)).collect();
    let ids: Vec<Option<i64>> = last.values().map(|id| Some(id.0)).collect();
    Ok(format!(
        "{INDEXED_GENERIC_PLAN} EXECUTE {WRITE_NAME}({}, {}, {}, {}, {}, {}, {}, {}, {}); ",
        bigints(&removed_users),
        texts(&removed_clients),
        bigints(&users),
        texts(&clients),
        bigints(&connected),
        bigints(&active),
        bigints(&update),
        bigints(&realms),
        bigints(&ids),
    ))
}

/// A `bigint[]` literal.
fn bigints(values: &[Option<i64>]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|v| v.map_or_else(|| "NULL".to_owned(), |v| v.to_string()))
        .collect();
    format!("'{{{}}}'::bigint[]", items.join(","))
}

/// A `text[]` literal, each element an SQL string literal.
fn texts(values: &[&str]) -> String {
    let items: Vec<String> = values.iter().map(|v| sql_literal(v)).collect();
    format!("ARRAY[{}]::text[]", items.join(","))
}

/// Writes the batch's changes to settings and devices, in order, and returns
/// the users they touched. They are rare: a statement each is fine.
fn write_user_changes(c: &mut Client, batch: &[Mutation]) -> Result<Vec<UserId>, StoreError> {
    let mut touched = Vec::new();
    for mutation in batch {
        if let Some(user_id) = write_user_change(c, mutation)? {
            touched.push(user_id);
        }
    }
    Ok(touched)
}

/// Writes one change to a user's settings or devices; the user, or `None`
/// for a presence mutation (written with the others).
fn write_user_change(c: &mut Client, mutation: &Mutation) -> Result<Option<UserId>, StoreError> {
    let user_id = match mutation {
        Mutation::PutPresence(_)
        | Mutation::DeletePresence { .. }
        | Mutation::PutStatus(_)
        | Mutation::ExpireStatus { .. } => return Ok(None),
        Mutation::SetUserSettings {
            user_id,
            presence_enabled,
            enable_offline_push_notifications,
        } => {
            c.execute(
                "UPDATE users SET presence_enabled = $1, \
                 enable_offline_push_notifications = $2 WHERE id = $3",
                &[presence_enabled, enable_offline_push_notifications, user_id],
            )?;
            user_id
        }
        Mutation::AddDevice {
            user_id,
            kind,
            token,
            appid,
        } => {
            c.execute(
                "INSERT INTO push_devices (user_id, kind, token, appid) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, kind, token) DO UPDATE SET appid = excluded.appid",
                &[user_id, &kind.as_str(), token, appid],
            )?;
            user_id
        }
        Mutation::RemoveDevice {
            user_id,
            kind,
            token,
        } => {
            c.execute(
                "DELETE FROM push_devices WHERE user_id = $1 AND kind = $2 AND token = $3",
                &[user_id, &kind.as_str(), token],
            )?;
            user_id
        }
    };
    Ok(Some(*user_id))
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    use super::{LOCK_NAME, WRITE_NAME};
    use crate::ids::{UpdateId, UserId};
    use crate::store::postgres::PgStore;
    use crate::store::testing::{load_all, new_user, put, scratch, sequence, two_nodes};
    use crate::store::{DeviceKind, Mutation, RealmRow, Store, UserRow};

    /// A store on the database at `url` with the realm `acme` and its user
    /// `ann@x`.
    fn acme_with_ann(url: &str) -> (PgStore, RealmRow, UserRow) {
        let mut store = PgStore::open(url).expect("open");
        let realm = store.create_realm("acme", "Acme", 0).expect("realm");
        let ann = store
            .create_user(&new_user("acme", "ann@x", 1))
            .expect("ann");
        (store, realm, ann)
    }

    /// Two stores on the database at `url` with a realm and a user, the
    /// first holding the realm's lock in an open batch.
    fn two_nodes_the_first_locking(url: &str) -> (PgStore, PgStore, RealmRow, UserRow) {
        let (mut a, b, realm, user) = two_nodes(url);
        assert_eq!(
            a.begin_batch(&[realm.id]).expect("begin"),
            vec![UpdateId(0)]
        );
        (a, b, realm, user)
    }

    /// Runs `f` on `b` in a thread of its own and checks that it is still
    /// waiting 400 ms later, for a lock the caller holds; join the thread
    /// once the caller lets the lock go.
    fn blocked<T: Send + 'static>(
        mut b: PgStore,
        f: impl FnOnce(&mut PgStore) -> T + Send + 'static,
    ) -> thread::JoinHandle<(T, PgStore)> {
        let (tx, rx) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let out = f(&mut b);
            let _ = tx.send(());
            (out, b)
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(400)).is_err(),
            "must wait while the lock is held"
        );
        waiter
    }

    #[test]
    fn a_second_node_waits_for_the_sequence_lock() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let (mut a, b, realm, user) = two_nodes_the_first_locking(&url);
        // However late the thread starts, it cannot begin while a holds the
        // lock; and when it begins, it sees a's commit.
        let waiter = blocked(b, move |b| {
            let seen = b.begin_batch(&[realm.id]).expect("begin b");
            b.commit_batch(&[put(user.id, "web", 6)], &[sequence(realm.id, 6)])
                .expect("commit b");
            seen
        });
        a.commit_batch(&[put(user.id, "web", 5)], &[sequence(realm.id, 5)])
            .expect("commit a");
        let (seen, mut b) = waiter.join().expect("thread");
        assert_eq!(seen, vec![UpdateId(5)]);
        assert_eq!(
            b.sequences().expect("sequences"),
            vec![sequence(realm.id, 6)]
        );
    }

    #[test]
    fn deleting_a_user_waits_for_a_batch_and_takes_its_records_too() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let (mut a, b, realm, user) = two_nodes_the_first_locking(&url);
        let deleter = blocked(b, |b| b.delete_user("acme", "a@x"));
        a.commit_batch_in_realms(
            &[put(user.id, "web", 1)],
            &[realm.id],
            &[sequence(realm.id, 1)],
        )
        .expect("commit a");
        let (deleted, mut b) = deleter.join().expect("thread");
        assert_eq!(deleted.expect("deleted").id, user.id);
        let records = |store: &mut PgStore| {
            store
                .presence_changes(realm.id, UpdateId(0))
                .expect("changes")
                .users
        };
        assert!(
            records(&mut b).is_empty(),
            "the batch's record went with its user"
        );
        // A later batch for the deleted user writes nothing.
        a.begin_batch(&[realm.id]).expect("begin");
        a.commit_batch_in_realms(
            &[put(user.id, "web", 2)],
            &[realm.id],
            &[sequence(realm.id, 2)],
        )
        .expect("commit");
        assert!(records(&mut b).is_empty());
    }

    #[test]
    fn a_batch_plans_as_usual_once_its_locks_are_taken() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let (mut a, _b, _realm, _user) = two_nodes_the_first_locking(&url);
        let settings: (String, String) = a
            .run(|c, _| {
                let mode = c.query_one("SHOW plan_cache_mode", &[])?.get(0);
                let scans = c.query_one("SHOW enable_seqscan", &[])?.get(0);
                Ok((mode, scans))
            })
            .expect("show");
        assert_eq!(
            settings,
            ("force_custom_plan".to_owned(), "on".to_owned()),
            "only the lock is planned generically and by index"
        );
        a.abort_batch();
    }

    #[test]
    fn statements_the_database_dropped_are_prepared_again() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let mut store = PgStore::open(&url).expect("open");
        let realm = store.create_realm("acme", "Acme", 0).expect("realm");
        assert_eq!(
            store.sequences().expect("prepared"),
            vec![sequence(realm.id, 0)]
        );
        // As if the database forgot them (a failover to a new server,
        // tables changed under them): the next call fails...
        store
            .run(|c, _| Ok(c.batch_execute("DEALLOCATE ALL")?))
            .expect("deallocate");
        assert!(store.sequences().is_err());
        // ...and the one after prepares them again.
        assert_eq!(
            store.sequences().expect("again"),
            vec![sequence(realm.id, 0)]
        );
    }

    #[test]
    fn a_batch_of_thousands_commits() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let mut store = PgStore::open(&url).expect("open");
        let realm = store.create_realm("acme", "Acme", 0).expect("realm");
        let users: Vec<UserRow> = (0..50)
            .map(|i| {
                let email = format!("u{i}@x");
                store
                    .create_user(&new_user("acme", &email, i))
                    .expect("user")
            })
            .collect();
        let mut batch = Vec::new();
        for user in &users {
            for c in 0..100 {
                batch.push(put(user.id, &format!("client{c}"), batch.len() as i64 + 1));
            }
        }
        assert_eq!(batch.len(), 5000);
        store.begin_batch(&[realm.id]).expect("begin");
        let started = Instant::now();
        store
            .commit_batch(&batch, &[sequence(realm.id, 5000)])
            .expect("commit");
        assert!(started.elapsed() < Duration::from_secs(5));
        let changes = store
            .presence_changes(realm.id, UpdateId(0))
            .expect("changes");
        assert_eq!(changes.last_update_id, UpdateId(5000));
        assert_eq!(changes.users.len(), 50);
        assert!(changes.users.iter().all(|user| user.records.len() == 100));
    }

    #[test]
    fn a_batch_takes_one_directory_version_for_all_its_user_changes() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let (mut store, realm, ann) = acme_with_ann(&url);
        let bob = store
            .create_user(&new_user("acme", "bob@x", 2))
            .expect("bob");
        let before = store.directory_version().expect("version");

        store.begin_batch(&[realm.id]).expect("begin");
        let batch = [
            put(ann.id, "web", 1),
            Mutation::SetUserSettings {
                user_id: ann.id,
                presence_enabled: false,
                enable_offline_push_notifications: false,
            },
            Mutation::AddDevice {
                user_id: bob.id,
                kind: DeviceKind::Apns,
                token: "tok".to_owned(),
                appid: Some("app".to_owned()),
            },
        ];
        store
            .commit_batch(&batch, &[sequence(realm.id, 1)])
            .expect("commit");
        let changes = store.directory_changes(before).expect("changes");
        assert_eq!(changes.version, before + 1);
        let changed: Vec<UserId> = changes.users.iter().map(|u| u.id).collect();
        assert_eq!(changed, vec![ann.id, bob.id]);
        assert_eq!(load_all(&mut store).0, before + 1);
    }

    /// The plan the connection keeps for a statement prepared by `name`,
    /// as `EXPLAIN` shows it.
    fn kept_plan(store: &mut PgStore, name: &str, args: &str) -> String {
        store
            .run(|c, _| {
                // The kept plan, whatever the session would plan now.
                c.batch_execute("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan")?;
                let rows = c.query(&format!("EXPLAIN EXECUTE {name}({args})"), &[])?;
                c.batch_execute("COMMIT")?;
                Ok(rows
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
                    .join("\n"))
            })
            .expect("explain")
    }

    #[test]
    fn a_batch_plan_made_on_small_tables_finds_rows_by_index() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let (mut store, realm, user) = acme_with_ann(&url);
        // The first batch makes both plans, while every table holds a row
        // or two: scanning them whole would look cheapest then, and would
        // be kept as the tables grow.
        store.begin_batch(&[realm.id]).expect("begin");
        store
            .commit_batch(&[put(user.id, "web", 1)], &[sequence(realm.id, 1)])
            .expect("commit");
        let lock = kept_plan(&mut store, LOCK_NAME, "'{1}'");
        let empty = ["'{}'"; 9].join(", ");
        let write = kept_plan(&mut store, WRITE_NAME, &empty);
        for plan in [&lock, &write] {
            assert!(plan.contains("Index Scan"), "{plan}");
            for whole in ["Seq Scan", "Hash Join", "Merge Join"] {
                assert!(!plan.contains(whole), "{whole} in\n{plan}");
            }
        }
    }

    #[test]
    fn records_written_with_the_commit_keep_any_client_name() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let (mut store, realm, user) = acme_with_ann(&url);
        let names = ["it's", "back\\slash", "ünï {c,o}de", "\"quoted\"", "NULL"];
        let batch: Vec<Mutation> = names
            .iter()
            .zip(1..)
            .map(|(name, id)| put(user.id, name, id))
            .collect();
        store.begin_batch(&[realm.id]).expect("begin");
        store
            .commit_batch(&batch, &[sequence(realm.id, 5)])
            .expect("commit");
        let changes = store
            .presence_changes(realm.id, UpdateId(0))
            .expect("changes");
        let mut stored: Vec<&str> = changes.users[0]
            .records
            .iter()
            .map(|r| r.client.as_str())
            .collect();
        let mut expected = names.to_vec();
        stored.sort_unstable();
        expected.sort_unstable();
        assert_eq!(stored, expected);

        // The statement prepared by name is prepared again once the
        // database forgot it: one batch fails, the next commits.
        store
            .run(|c, _| Ok(c.batch_execute(&format!("DEALLOCATE {WRITE_NAME}"))?))
            .expect("deallocate");
        store.begin_batch(&[realm.id]).expect("begin");
        let failed = store.commit_batch(&[put(user.id, "web", 6)], &[sequence(realm.id, 6)]);
        assert!(failed.is_err());
        store.begin_batch(&[realm.id]).expect("begin");
        store
            .commit_batch(&[put(user.id, "web", 6)], &[sequence(realm.id, 6)])
            .expect("again");
        assert_eq!(
            store.sequences().expect("sequences"),
            vec![sequence(realm.id, 6)]
        );
    }
}
