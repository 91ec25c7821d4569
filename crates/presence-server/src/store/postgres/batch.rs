//! Writing to the shared store: the directory version every directory
//! change takes, the notification every commit sends, and the server's
//! batches, which lock their realms' sequence rows until they commit:
//! from their start, or, for a claimed batch, from the message that
//! writes and commits it (docs/ARCHITECTURE.md, "Claimed batches").

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
    let sql = format!("{} {DEFAULT_PLANS}", open_locking(c, prepared, realms)?);
    let locked = read_locked(c, &sql).inspect_err(|_| {
        let _ = c.batch_execute("ROLLBACK");
    })?;
    Ok(realms
        .iter()
        .map(|id| locked.get(id).copied().unwrap_or_default())
        .collect())
}

/// The text that opens a batch's transaction and locks the sequence rows
/// of `realms` (in id order, under the batch's plan settings): sent alone
/// by a locked batch, at the head of its one message by a claimed one.
pub(super) fn open_locking(
    c: &mut Client,
    prepared: &mut Prepared,
    realms: &[RealmId],
) -> Result<String, StoreError> {
    prepared.name(c, LOCK_NAME, LOCK_SEQUENCES)?;
    let ids: Vec<Option<i64>> = realms.iter().map(|r| Some(r.0)).collect();
    Ok(format!(
        "BEGIN; {INDEXED_GENERIC_PLAN} EXECUTE {LOCK_NAME}({});",
        bigints(&ids)
    ))
}

/// The check constraint that refuses a claim on a realm's update ids
/// whose row no longer holds the id the batch expected
/// (`schema::SCHEMA_V5`).
pub(super) const CLAIM_CONSTRAINT: &str = "realm_sequences_claim";

/// Whether `error` is a batch's claim refused: another node took ids of
/// one of its realms since the batch's writer last read them.
pub(super) fn is_claim_lost(error: &::postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        *db.code() == ::postgres::error::SqlState::CHECK_VIOLATION
            && db.constraint() == Some(CLAIM_CONSTRAINT)
    })
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
/// users' settings and devices. Each realm's sequence moves only from the
/// id the batch expects (`locked`: what its lock read, or what a claimed
/// batch's writer knew), else the statement fails on [`CLAIM_CONSTRAINT`].
/// A batch of presence records alone is not written here but returned, as
/// the statement to send with the commit: the batch then ends in one round
/// trip, and holds its realms' locks for one fewer. `None` if the batch
/// writes nothing (the other nodes are told at commit about anything else).
pub(super) fn write_batch(
    c: &mut Client,
    prepared: &mut Prepared,
    batch: &[Mutation],
    sequences: &[Sequence],
    locked: &[(RealmId, UpdateId)],
) -> Result<Option<String>, StoreError> {
    if batch.is_empty() && sequences.is_empty() {
        return Ok(None);
    }
    let records = final_records(batch);
    let columns = Columns::new(&records, sequences, locked);
    if batch.iter().all(Mutation::is_presence) {
        return Ok(Some(execute_records_and_sequences(c, prepared, &columns)?));
    }
    // The batch changes a user (a presence-only batch returned above). The
    // directory version is taken before any user row is locked, the same
    // order the admin writes use, so the two cannot deadlock.
    let version = next_directory_version(c)?;
    c.batch_execute(INDEXED_GENERIC_PLAN)?;
    write_records_and_sequences(c, prepared, &columns)?;
    let touched = write_user_changes(c, batch)?;
    c.execute(
        "UPDATE users SET row_version = $1 WHERE id = ANY($2)",
        &[&version, &touched],
    )?;
    super::status::write(c, batch, version)?;
    Ok(Some(String::new()))
}

impl super::PgStore {
    /// Writes and commits the open batch; with the realm of each mutation,
    /// it also publishes what it wrote (see [`notifications`]). A claimed
    /// batch opens its transaction and takes its locks in the same message,
    /// and fails with [`StoreError::ClaimLost`] if a realm's sequence moved
    /// from the id its writer expected (nothing written, nothing sent).
    pub(super) fn commit(
        &mut self,
        batch: &[Mutation],
        realms: Option<&[RealmId]>,
        sequences: &[Sequence],
    ) -> Result<(), StoreError> {
        if !self.in_batch {
            return Err(StoreError::NoBatch);
        }
        let presence_only = batch.iter().all(Mutation::is_presence);
        let commit = commit_sql(self.durability, presence_only);
        let published =
            realms.and_then(|realms| publishable(batch, realms, sequences, &self.locked));
        let claiming = std::mem::take(&mut self.claiming);
        let locked = std::mem::take(&mut self.locked);
        let out = self.run_prepared(|c, prepared, names| {
            let opening = if claiming {
                let realms: Vec<RealmId> = locked.iter().map(|(id, _)| *id).collect();
                open_locking(c, prepared, &realms)?
            } else {
                String::new()
            };
            if claiming && !presence_only {
                // Users' changes are written statement by statement, inside
                // the transaction this opens.
                c.batch_execute(&opening)?;
            }
            let written = write_batch(c, prepared, batch, sequences, &locked).and_then(|pending| {
                // One round trip ends the batch: its opening if it is
                // claimed, what is left to write, the notifications (at
                // commit, if anything was written), the durability of this
                // transaction alone (admin writes keep waiting for the
                // disk), and the commit.
                let mut end = String::new();
                if claiming && presence_only {
                    end.push_str(&opening);
                }
                if let Some(pending) = pending {
                    end.push_str(&pending);
                    end.push_str(&notifications(names, published.as_deref()));
                }
                end.push_str(commit);
                Ok(c.batch_execute(&end)?)
            });
            match written {
                Ok(()) => Ok(Ok(())),
                Err(e) => {
                    let _ = c.batch_execute("ROLLBACK");
                    match e {
                        StoreError::Postgres(ref failure) if is_claim_lost(&failure.0) => {
                            Ok(Err(StoreError::ClaimLost))
                        }
                        e => Err(e),
                    }
                }
            }
        });
        self.in_batch = false;
        // A lost claim is the batch's answer, not the connection's failure:
        // its statements stay prepared.
        out.and_then(|claimed| claimed)
    }
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
/// need no join. A realm's sequence takes its new last id only if it holds
/// the id the batch expected, and -1 otherwise, which [`CLAIM_CONSTRAINT`]
/// refuses: the transaction then fails whole. The batch's lock is taken
/// before this statement runs, so the row it compares is the latest.
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
        ON CONFLICT (realm_id) DO UPDATE SET last_update_id = CASE \
        WHEN realm_sequences.last_update_id = (SELECT e.expected \
            FROM unnest($8::bigint[], $10::bigint[]) AS e(realm_id, expected) \
            WHERE e.realm_id = excluded.realm_id) \
        THEN excluded.last_update_id ELSE -1 END) \
    SELECT 1";

/// A batch's records and sequences as the ten arrays of
/// [`WRITE_RECORDS_AND_SEQUENCES`].
struct Columns<'a> {
    removed_users: Vec<Option<i64>>,
    removed_clients: Vec<&'a str>,
    users: Vec<Option<i64>>,
    clients: Vec<&'a str>,
    connected: Vec<Option<i64>>,
    active: Vec<Option<i64>>,
    update: Vec<Option<i64>>,
    realms: Vec<Option<i64>>,
    last_ids: Vec<Option<i64>>,
    /// Each realm's id as the batch expects to find it (`NULL`, which no
    /// row holds, for a realm the batch did not lock or claim).
    expected: Vec<Option<i64>>,
}

impl<'a> Columns<'a> {
    fn new(
        records: &Records<'a>,
        sequences: &[Sequence],
        locked: &[(RealmId, UpdateId)],
    ) -> Columns<'a> {
        let mut columns = Columns {
            removed_users: Vec::new(),
            removed_clients: Vec::new(),
            users: Vec::new(),
            clients: Vec::new(),
            connected: Vec::new(),
            active: Vec::new(),
            update: Vec::new(),
            realms: Vec::new(),
            last_ids: Vec::new(),
            expected: Vec::new(),
        };
        for (&(user_id, client), record) in records {
            match record {
                None => {
                    columns.removed_users.push(Some(user_id.0));
                    columns.removed_clients.push(client);
                }
                Some(p) => {
                    columns.users.push(Some(user_id.0));
                    columns.clients.push(client);
                    columns.connected.push(Some(p.last_connected_time));
                    columns.active.push(p.last_active_time);
                    columns.update.push(Some(p.update_id.0));
                }
            }
        }
        // A realm named twice keeps its last value.
        let last: BTreeMap<RealmId, UpdateId> = sequences
            .iter()
            .map(|s| (s.realm_id, s.last_update_id))
            .collect();
        for (realm_id, last_id) in last {
            columns.realms.push(Some(realm_id.0));
            columns.last_ids.push(Some(last_id.0));
            let expected = locked.iter().find(|(id, _)| *id == realm_id);
            columns.expected.push(expected.map(|(_, id)| id.0));
        }
        columns
    }

    /// Whether the statement would write nothing.
    fn is_empty(&self) -> bool {
        self.removed_users.is_empty() && self.users.is_empty() && self.realms.is_empty()
    }
}

/// Removes and puts the batch's records and sets its realms' last update
/// ids, inside the open transaction.
fn write_records_and_sequences(
    c: &mut Client,
    prepared: &mut Prepared,
    columns: &Columns<'_>,
) -> Result<(), StoreError> {
    if columns.is_empty() {
        return Ok(());
    }
    let statement = prepared.get(c, WRITE_RECORDS_AND_SEQUENCES)?;
    c.execute(
        &statement,
        &[
            &columns.removed_users,
            &columns.removed_clients,
            &columns.users,
            &columns.clients,
            &columns.connected,
            &columns.active,
            &columns.update,
            &columns.realms,
            &columns.last_ids,
            &columns.expected,
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
    columns: &Columns<'_>,
) -> Result<String, StoreError> {
    if columns.is_empty() {
        return Ok(String::new());
    }
    prepared.name(c, WRITE_NAME, WRITE_RECORDS_AND_SEQUENCES)?;
    Ok(format!(
        "{INDEXED_GENERIC_PLAN} EXECUTE {WRITE_NAME}({}, {}, {}, {}, {}, {}, {}, {}, {}, {}); ",
        bigints(&columns.removed_users),
        texts(&columns.removed_clients),
        bigints(&columns.users),
        texts(&columns.clients),
        bigints(&columns.connected),
        bigints(&columns.active),
        bigints(&columns.update),
        bigints(&columns.realms),
        bigints(&columns.last_ids),
        bigints(&columns.expected),
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
mod tests;
