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
//!
//! The server's own folds need not read the log back: the connection that
//! logged the rows remembers each record's last write ([`Logged`]) and
//! writes those, without sorting the log to find them (BENCHMARKS.md,
//! "Where a durable report's time goes").

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::LazyLock;

use rusqlite::{Connection, Statement, params};

use crate::ids::{UpdateId, UserId};
use crate::store::{Mutation, StoreError};

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

/// The number SQLite gives a log row (its `seq`): one more than the
/// largest in the log, so 1 for the first row of an empty log.
pub(super) type Seq = i64;

/// Rows one statement writes, to the log or to `client_presence`: five
/// parameters each, far under SQLite's limit, and one prepared statement
/// per count up to it. A statement's own cost (binding, stepping,
/// resetting) was most of what a row cost when each row had its own.
const ROWS_PER_STATEMENT: usize = 16;

/// The statements made by `sql` with 1 to [`ROWS_PER_STATEMENT`] rows of
/// five parameters.
fn statements_by_rows(sql: impl Fn(&str) -> String) -> Vec<String> {
    (1..=ROWS_PER_STATEMENT)
        .map(|rows| sql(&vec!["(?, ?, ?, ?, ?)"; rows].join(", ")))
        .collect()
}

/// The statements that append rows to the log.
static APPEND_ROWS: LazyLock<Vec<String>> = LazyLock::new(|| {
    statements_by_rows(|values| {
        format!(
            "INSERT INTO presence_log \
             (user_id, client, last_connected_time, last_active_time, update_id) \
             VALUES {values}"
        )
    })
});

/// The statements that put records into `client_presence`, skipping the
/// users deleted since they were logged (as [`compact`] does).
static PUT_ROWS: LazyLock<Vec<String>> = LazyLock::new(|| {
    statements_by_rows(|values| {
        format!(
            "INSERT INTO client_presence \
             (user_id, client, last_connected_time, last_active_time, update_id) \
             SELECT column1, column2, column3, column4, column5 FROM (VALUES {values}) \
             WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = column1) \
             ON CONFLICT (user_id, client) DO UPDATE SET \
             last_connected_time = excluded.last_connected_time, \
             last_active_time = excluded.last_active_time, \
             update_id = excluded.update_id"
        )
    })
});

/// A log row's or a record's five values, in the tables' column order.
struct RowValues<'a> {
    user_id: UserId,
    client: &'a str,
    /// `None` in a log row that removes the record.
    last_connected_time: Option<i64>,
    last_active_time: Option<i64>,
    update_id: UpdateId,
}

impl RowValues<'_> {
    /// The log row of a presence write (`None` for any other mutation): a
    /// removal has no times and update id 0.
    fn logged(mutation: &Mutation) -> Option<RowValues<'_>> {
        match mutation {
            Mutation::PutPresence(p) => Some(RowValues {
                user_id: p.user_id,
                client: &p.client,
                last_connected_time: Some(p.last_connected_time),
                last_active_time: p.last_active_time,
                update_id: p.update_id,
            }),
            Mutation::DeletePresence { user_id, client } => Some(RowValues {
                user_id: *user_id,
                client,
                last_connected_time: None,
                last_active_time: None,
                update_id: UpdateId(0),
            }),
            _ => None,
        }
    }

    /// A record put with `values`.
    fn record(user_id: UserId, client: &str, values: Values) -> RowValues<'_> {
        RowValues {
            user_id,
            client,
            last_connected_time: Some(values.last_connected_time),
            last_active_time: values.last_active_time,
            update_id: values.update_id,
        }
    }

    /// The record's values as the row leaves them, `None` for a removal.
    fn values(&self) -> Option<Values> {
        self.last_connected_time.map(|last_connected_time| Values {
            last_connected_time,
            last_active_time: self.last_active_time,
            update_id: self.update_id,
        })
    }

    /// Binds the five values after the first `before` parameters.
    fn bind(&self, statement: &mut Statement<'_>, before: usize) -> rusqlite::Result<()> {
        statement.raw_bind_parameter(before + 1, self.user_id)?;
        statement.raw_bind_parameter(before + 2, self.client)?;
        statement.raw_bind_parameter(before + 3, self.last_connected_time)?;
        statement.raw_bind_parameter(before + 4, self.last_active_time)?;
        statement.raw_bind_parameter(before + 5, self.update_id)
    }
}

/// Writes `rows` in order with `statements` (see [`statements_by_rows`]),
/// [`ROWS_PER_STATEMENT`] at a time.
fn write_rows(
    tx: &Connection,
    statements: &[String],
    rows: &[RowValues<'_>],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut statement = tx.prepare_cached(&statements[chunk.len() - 1])?;
        for (i, row) in chunk.iter().enumerate() {
            row.bind(&mut statement, i * 5)?;
        }
        statement.raw_execute()?;
    }
    Ok(())
}

/// Appends a batch's presence writes to the log in the batch's order; the
/// number of the last row, `None` if the batch has no presence write.
pub(super) fn append(tx: &Connection, batch: &[Mutation]) -> Result<Option<Seq>, StoreError> {
    let rows: Vec<RowValues<'_>> = batch.iter().filter_map(RowValues::logged).collect();
    write_rows(tx, &APPEND_ROWS, &rows)?;
    Ok((!rows.is_empty()).then(|| tx.last_insert_rowid()))
}

/// A record's values as a log row leaves them (its key aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Values {
    last_connected_time: i64,
    last_active_time: Option<i64>,
    update_id: UpdateId,
}

/// A user's records as this connection last logged them: each client's
/// values, or `None` if its last row removes it.
type Clients = Vec<LoggedClient>;

/// One record's last write, with a hash of its client name: a user who
/// reports from many clients between two folds has as many of these, and a
/// write finds its own by comparing hashes side by side in the list
/// instead of following every name to compare it.
#[derive(Debug)]
struct LoggedClient {
    /// `client` hashed by [`Logged`]'s hasher.
    hash: u64,
    client: Box<str>,
    /// The last write, `None` for a removal.
    values: Option<Values>,
}

/// What one connection logged since its last fold: each record's last
/// write, so that the next fold writes those without reading the log (see
/// the module's documentation), and how many rows it logged.
///
/// The records are used only while they provably are the whole log. An
/// empty log numbers its rows 1, 2, 3, ..., and a batch holds the write
/// lock, so the rows logged here are the whole log exactly when each
/// batch's last row is numbered its row count past the last batch's, and
/// the log still ends at that row when it is folded. A fold by anyone else
/// (another process, or a reader's fold on this connection), a fold whose
/// transaction rolled back, or rows a crash left behind each break that
/// numbering, and the fold then reads the log as [`compact`] does. (Only
/// the server's writer appends to the log; the admin commands fold it.)
/// The records are at most [`COMPACT_AFTER`], a few megabytes.
#[derive(Debug, Default)]
pub(super) struct Logged {
    /// Each record's last write, by user.
    records: HashMap<UserId, Clients>,
    /// How client names are hashed in `records`.
    hasher: hashbrown::DefaultHashBuilder,
    /// The number of the last row logged here (0 for none since the last fold).
    last_seq: Seq,
    /// Rows logged here since the last fold.
    rows: usize,
    /// The log holds rows that `records` does not account for.
    untrusted: bool,
}

impl Logged {
    /// Notes a committed batch, whose last log row is numbered `last_seq`
    /// (`None` if it logged nothing).
    pub(super) fn committed(&mut self, batch: &[Mutation], last_seq: Option<Seq>) {
        let Some(last_seq) = last_seq else {
            return;
        };
        // The rows `append` logged, in its order.
        let logged_rows = || batch.iter().filter_map(RowValues::logged);
        let rows = logged_rows().count();
        if self.untrusted || last_seq != self.last_seq + rows as Seq {
            self.untrusted = true;
            self.records = HashMap::new();
        } else {
            for row in logged_rows() {
                self.write(row.user_id, row.client, row.values());
            }
        }
        // Last: had the records been left half written, the next batch's
        // rows would not continue this number.
        self.last_seq = last_seq;
        self.rows += rows;
    }

    /// Whether this connection logged enough rows to fold the log.
    pub(super) fn due(&self) -> bool {
        self.rows >= COMPACT_AFTER
    }

    fn write(&mut self, user_id: UserId, client: &str, values: Option<Values>) {
        let hash = self.hasher.hash_one(client);
        let clients = self.records.entry(user_id).or_default();
        match clients
            .iter_mut()
            .find(|c| c.hash == hash && *c.client == *client)
        {
            Some(last) => last.values = values,
            None => clients.push(LoggedClient {
                hash,
                client: client.into(),
                values,
            }),
        }
    }
}

/// How a fold found each record's last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fold {
    /// The log was empty: there was nothing to fold.
    Empty,
    /// From the connection's [`Logged`] records.
    FromMemory,
    /// By reading the log ([`compact`]).
    FromLog,
}

/// Folds the log inside the caller's write transaction: from `logged` if
/// it is the whole log, else by reading the log. The caller starts a new
/// [`Logged`] either way; if the transaction then rolls back, the next
/// batch's rows do not continue the numbers that one expects, so it is not
/// used until a fold commits.
pub(super) fn fold(tx: &Connection, logged: Logged) -> Result<Fold, StoreError> {
    let last: Option<Seq> = tx
        .prepare_cached("SELECT MAX(seq) FROM presence_log")?
        .query_row([], |r| r.get(0))?;
    match last {
        None => Ok(Fold::Empty),
        Some(last) if !logged.untrusted && last == logged.last_seq => {
            write_records(tx, logged.records)?;
            tx.prepare_cached("DELETE FROM presence_log")?.execute([])?;
            Ok(Fold::FromMemory)
        }
        Some(_) => compact(tx).map(|()| Fold::FromLog),
    }
}

/// Writes each record's last write into `client_presence`, in the table's
/// key order: the removals one by one (a statement removing several
/// records scans the table), then the records put, several a statement.
fn write_records(tx: &Connection, records: HashMap<UserId, Clients>) -> Result<(), StoreError> {
    let mut users: Vec<_> = records.into_iter().collect();
    users.sort_unstable_by_key(|(user_id, _)| *user_id);
    let mut remove =
        tx.prepare_cached("DELETE FROM client_presence WHERE user_id = ?1 AND client = ?2")?;
    let mut puts = Vec::new();
    for (user_id, clients) in &mut users {
        // SQLite compares text keys bytewise, as `str`'s order does.
        clients.sort_unstable_by(|a, b| a.client.cmp(&b.client));
        for LoggedClient { client, values, .. } in clients.iter() {
            match values {
                Some(v) => puts.push(RowValues::record(*user_id, client, *v)),
                None => {
                    remove.execute(params![*user_id, &**client])?;
                }
            }
        }
    }
    write_rows(tx, &PUT_ROWS, &puts)
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
    use crate::store::PresenceRow;

    fn put(conn: &Connection, p: &PresenceRow) -> Result<Option<Seq>, StoreError> {
        append(conn, &[Mutation::PutPresence(p.clone())])
    }

    fn remove(conn: &Connection, user_id: UserId, client: &str) -> Result<Option<Seq>, StoreError> {
        append(conn, &[remove_row(user_id.0, client)])
    }

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

    /// A connection that logs batches as the store does: each in its own
    /// transaction, noted in `logged` once committed.
    struct Logger {
        conn: Connection,
        logged: Logged,
    }

    impl Logger {
        fn new() -> Logger {
            Logger {
                conn: database(),
                logged: Logged::default(),
            }
        }

        fn batch(&mut self, batch: &[Mutation]) {
            let tx = self.conn.unchecked_transaction().unwrap();
            let last = log_batch(&tx, batch);
            tx.commit().unwrap();
            self.logged.committed(batch, last);
        }

        /// A batch whose transaction rolls back: nothing to note.
        fn rolled_back(&mut self, batch: &[Mutation]) {
            let tx = self.conn.unchecked_transaction().unwrap();
            log_batch(&tx, batch);
            drop(tx);
        }

        fn fold(&mut self) -> Fold {
            let tx = self.conn.unchecked_transaction().unwrap();
            let fold = fold(&tx, std::mem::take(&mut self.logged)).unwrap();
            tx.commit().unwrap();
            fold
        }
    }

    /// Logs a batch of presence writes, as the store's batches do; the
    /// number of the last row.
    fn log_batch(tx: &Connection, batch: &[Mutation]) -> Option<Seq> {
        append(tx, batch).unwrap()
    }

    fn put_row(user: i64, client: &str, time: i64) -> Mutation {
        Mutation::PutPresence(row(user, client, time, time))
    }

    fn remove_row(user: i64, client: &str) -> Mutation {
        Mutation::DeletePresence {
            user_id: UserId(user),
            client: client.to_owned(),
        }
    }

    #[test]
    fn the_server_folds_from_memory_until_someone_else_touches_the_log() {
        let mut logger = Logger::new();
        assert_eq!(logger.fold(), Fold::Empty);
        logger.batch(&[put_row(1, "website", 10), put_row(2, "website", 11)]);
        logger.batch(&[put_row(1, "website", 12), remove_row(2, "website")]);
        assert_eq!(logger.fold(), Fold::FromMemory);
        assert_eq!(records(&logger.conn), vec![row(1, "website", 12, 12)]);
        assert_eq!(logged(&logger.conn), 0);

        // Another connection folds in between: the next fold reads the log.
        logger.batch(&[put_row(1, "website", 13)]);
        compact(&logger.conn).unwrap();
        logger.batch(&[put_row(2, "cli", 14)]);
        assert_eq!(logger.fold(), Fold::FromLog);
        assert_eq!(
            records(&logger.conn),
            vec![row(1, "website", 13, 13), row(2, "cli", 14, 14)]
        );

        // Someone else's fold after the last batch leaves nothing to fold.
        logger.batch(&[put_row(1, "website", 15)]);
        compact(&logger.conn).unwrap();
        assert_eq!(logger.fold(), Fold::Empty);
        assert_eq!(records(&logger.conn)[0], row(1, "website", 15, 15));

        // A fold that rolls back leaves the log to be read by the next one.
        logger.batch(&[put_row(2, "cli", 16)]);
        let tx = logger.conn.unchecked_transaction().unwrap();
        assert_eq!(
            fold(&tx, std::mem::take(&mut logger.logged)).unwrap(),
            Fold::FromMemory
        );
        drop(tx);
        logger.batch(&[put_row(1, "website", 17)]);
        assert_eq!(logger.fold(), Fold::FromLog);
        assert_eq!(
            records(&logger.conn),
            vec![row(1, "website", 17, 17), row(2, "cli", 16, 16)]
        );

        // Back to memory after a fold commits.
        logger.batch(&[put_row(2, "cli", 18)]);
        assert_eq!(logger.fold(), Fold::FromMemory);
    }

    #[test]
    fn rows_left_in_the_log_are_read_by_the_fold() {
        let mut logger = Logger::new();
        // As after a crash: rows logged by a connection that is gone.
        put(&logger.conn, &row(1, "website", 10, 1)).unwrap();
        logger.batch(&[put_row(2, "website", 11)]);
        assert_eq!(logger.fold(), Fold::FromLog);
        assert_eq!(
            records(&logger.conn),
            vec![row(1, "website", 10, 1), row(2, "website", 11, 11)]
        );
    }

    /// One step of [`a_fold_from_memory_writes_what_reading_the_log_does`].
    #[derive(Debug, Clone)]
    enum Step {
        Batch(Vec<Mutation>),
        RolledBack(Vec<Mutation>),
        ForeignFold,
        Fold,
        DeleteUser2,
        Import,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        let mutation = (1..=2i64, 0..3usize, 1..100i64, any::<bool>()).prop_map(
            |(user, client, time, removes)| {
                let client = ["website", "cli", "mobile"][client];
                if removes {
                    remove_row(user, client)
                } else {
                    put_row(user, client, time)
                }
            },
        );
        let batch = proptest::collection::vec(mutation, 1..40);
        prop_oneof![
            6 => batch.clone().prop_map(Step::Batch),
            1 => batch.prop_map(Step::RolledBack),
            1 => Just(Step::ForeignFold),
            2 => Just(Step::Fold),
            1 => Just(Step::DeleteUser2),
            1 => Just(Step::Import),
        ]
    }

    proptest::proptest! {
        #[test]
        fn a_fold_from_memory_writes_what_reading_the_log_does(
            steps in proptest::collection::vec(step(), 1..40)
        ) {
            // The same steps on two databases: one folds as the server
            // does, the other always by reading the log.
            let mut server = Logger::new();
            let reader = database();
            for step in &steps {
                match step {
                    Step::Batch(batch) => {
                        server.batch(batch);
                        let tx = reader.unchecked_transaction().unwrap();
                        log_batch(&tx, batch);
                        tx.commit().unwrap();
                    }
                    Step::RolledBack(batch) => server.rolled_back(batch),
                    Step::ForeignFold => compact(&server.conn).unwrap(),
                    Step::Fold => {
                        server.fold();
                        compact(&reader).unwrap();
                        proptest::prop_assert_eq!(records(&server.conn), records(&reader));
                    }
                    Step::Import => {
                        // As an import: the log folded, then records written.
                        for conn in [&server.conn, &reader] {
                            compact(conn).unwrap();
                            conn.execute_batch(
                                "INSERT OR REPLACE INTO client_presence VALUES \
                                 (1, 'website', 1000, 1000, 1000)",
                            )
                            .unwrap();
                        }
                    }
                    Step::DeleteUser2 => {
                        // As the store deletes a user: the log folded first
                        // (on the server's connection, unknown to `logged`).
                        for conn in [&server.conn, &reader] {
                            compact(conn).unwrap();
                            conn.execute_batch(
                                "DELETE FROM client_presence WHERE user_id = 2; \
                                 DELETE FROM users WHERE id = 2",
                            )
                            .unwrap();
                        }
                    }
                }
            }
            server.fold();
            compact(&reader).unwrap();
            proptest::prop_assert_eq!(records(&server.conn), records(&reader));
        }
    }
}
