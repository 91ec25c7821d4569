//! The shared store's connection: opened with the timeouts that keep a
//! vanished database from blocking anyone for long, reopened on demand at
//! a measured pace, and the transactions run on it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ::postgres::{Client, Config, NoTls, Statement};

use crate::store::{PostgresFailure, StoreError};

/// Run on every new connection so that a statement or a lock wait cannot
/// hold a writer for long, and a transaction left open by a stuck node
/// does not hold its realms' sequence locks for long (a batch is never idle
/// in its transaction for more than the moment its writer evaluates it).
/// String literals written by this store double their quotes and nothing
/// else, which is what standard-conforming strings read. A statement
/// prepared once is planned again at each run, for its values and the
/// tables as they are then: PostgreSQL would otherwise come to keep a
/// generic plan made from the sizes the tables had when it made it, which
/// on a store that started empty scans whole tables for good (BENCHMARKS.md,
/// "PostgreSQL batches: plans kept from small tables"). A batch's own
/// statements, run on every batch, are kept generic and planned by index
/// instead (`batch::INDEXED_GENERIC_PLAN`).
const SESSION_SETTINGS: &str = "SET statement_timeout = '5s'; SET lock_timeout = '5s'; \
     SET idle_in_transaction_session_timeout = '10s'; SET standard_conforming_strings = on; \
     SET plan_cache_mode = force_custom_plan";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(5);
/// Keepalive probes start soon, so that a peer that vanished without a word
/// is noticed while a reply is awaited, not hours later.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(2);
const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVES_RETRIES: u32 = 3;

/// The least time between two connection attempts, so that a server that
/// is down is not hammered and callers fail at once in between.
pub(super) const RECONNECT_INTERVAL: Duration = Duration::from_millis(500);

/// The statements of the batch path, prepared once per connection: a
/// statement given as text is prepared anew by each call, which costs a
/// round trip to the database of its own, and a batch holds its realms'
/// locks through every round trip it makes.
#[derive(Default)]
pub(super) struct Prepared {
    statements: HashMap<&'static str, Statement>,
    /// Statements prepared in SQL (`PREPARE name AS …`), by name: those
    /// run by `EXECUTE` inside a message of several statements, where a
    /// protocol-level statement cannot go.
    named: HashSet<&'static str>,
}

impl Prepared {
    /// `sql`, prepared on `client` the first time it is asked for.
    pub(super) fn get(
        &mut self,
        client: &mut Client,
        sql: &'static str,
    ) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Makes sure `sql` is prepared on `client` under `name`, for
    /// `EXECUTE name(…)`.
    pub(super) fn name(
        &mut self,
        client: &mut Client,
        name: &'static str,
        sql: &'static str,
    ) -> Result<(), StoreError> {
        if !self.named.contains(name) {
            // The database may hold it from before a failure that made this
            // side forget it; preparing it again would then fail, and with
            // it the transaction it runs in.
            let held = client
                .query_opt(
                    "SELECT 1 FROM pg_prepared_statements WHERE name = $1",
                    &[&name],
                )?
                .is_some();
            if !held {
                client.batch_execute(&format!("PREPARE {name} AS {sql}"))?;
            }
            self.named.insert(name);
        }
        Ok(())
    }

    /// Forgets every statement: the next use prepares it again.
    pub(super) fn clear(&mut self) {
        self.statements.clear();
        self.named.clear();
    }
}

/// The connection, reopened on demand.
pub(super) struct Connection {
    config: Config,
    client: Option<Client>,
    /// What was prepared on `client`; emptied with every new connection.
    prepared: Prepared,
    /// When the last attempt to connect was made.
    last_attempt: Option<Instant>,
    /// Why the last attempt failed, repeated while callers wait for the next.
    last_failure: String,
}

impl Connection {
    /// A connection just opened with `config`.
    pub(super) fn opened(config: Config, client: Client) -> Connection {
        Connection {
            config,
            client: Some(client),
            prepared: Prepared::default(),
            last_attempt: Some(Instant::now()),
            last_failure: String::new(),
        }
    }

    /// What every connection of the store is opened with.
    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    /// The open connection: reconnects if there is none, at most once per
    /// `RECONNECT_INTERVAL`. A connection lost while a batch was open ends
    /// the batch, and the call that finds it fails rather than continue on
    /// a new connection outside the transaction.
    pub(super) fn get(&mut self, in_batch: &mut bool) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
            self.last_failure = "the connection to PostgreSQL was closed".to_owned();
        }
        if self.client.is_none() && *in_batch {
            *in_batch = false;
            return Err(StoreError::Unavailable(
                "the connection was lost while a batch was open".to_owned(),
            ));
        }
        if self.client.is_none() {
            if let Some(at) = self.last_attempt
                && at.elapsed() < RECONNECT_INTERVAL
            {
                return Err(StoreError::Unavailable(self.last_failure.clone()));
            }
            self.last_attempt = Some(Instant::now());
            match connect(&self.config) {
                Ok(client) => {
                    self.client = Some(client);
                    self.prepared = Prepared::default();
                }
                Err(e) => {
                    self.last_failure = e.to_string();
                    return Err(e);
                }
            }
        }
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("no connection".to_owned()))
    }

    /// [`Connection::get`], with what was prepared on the connection.
    pub(super) fn get_prepared(
        &mut self,
        in_batch: &mut bool,
    ) -> Result<(&mut Client, &mut Prepared), StoreError> {
        self.get(in_batch)?;
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("no connection".to_owned()))?;
        Ok((client, &mut self.prepared))
    }

    /// After a failed call: forgets a connection that broke, so the next
    /// call reconnects, and ends the batch it carried.
    pub(super) fn after_error(&mut self, in_batch: &mut bool, error: &StoreError) {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
            self.last_failure = format!("the connection to PostgreSQL was lost: {error}");
            *in_batch = false;
        }
    }
}

/// How a standalone transaction starts. The bulk modes serve loading,
/// exporting and importing a whole installation: single statements over
/// every row, which may legitimately run far longer than a batch.
#[derive(Clone, Copy)]
pub(super) enum Mode {
    /// Read committed, for writes.
    Write,
    /// A write over a whole dump.
    BulkWrite,
    /// One consistent snapshot.
    Snapshot,
    /// One consistent snapshot of everything.
    BulkSnapshot,
}

impl Mode {
    /// The statements that begin the transaction.
    fn begin(self) -> &'static str {
        match self {
            Mode::Write => "BEGIN",
            Mode::BulkWrite => "BEGIN; SET LOCAL statement_timeout = '300s'",
            Mode::Snapshot => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            Mode::BulkSnapshot => {
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
                 SET LOCAL statement_timeout = '300s'"
            }
        }
    }
}

/// Parses a connection string (URL or `key=value` form) and adds the
/// timeouts every connection of the store uses.
pub(crate) fn configure(url: &str) -> Result<Config, StoreError> {
    let mut config: Config = url.parse()?;
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(KEEPALIVES_IDLE)
        .keepalives_interval(KEEPALIVES_INTERVAL)
        .keepalives_retries(KEEPALIVES_RETRIES)
        // Honoured on Linux, ignored elsewhere: gives up on a connection
        // whose sent data stays unacknowledged.
        .tcp_user_timeout(TCP_USER_TIMEOUT);
    Ok(config)
}

/// Opens a connection and applies the session settings.
pub(crate) fn connect(config: &Config) -> Result<Client, StoreError> {
    let mut client = config.connect(NoTls).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL: {}",
            PostgresFailure(e)
        ))
    })?;
    client.batch_execute(SESSION_SETTINGS)?;
    Ok(client)
}

/// Runs `f` in a transaction begun as `mode`, committing if it succeeds and
/// rolling back otherwise.
pub(super) fn in_transaction<T>(
    client: &mut Client,
    mode: Mode,
    f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    client.batch_execute(mode.begin())?;
    match f(client) {
        Ok(out) => {
            client.batch_execute("COMMIT")?;
            Ok(out)
        }
        Err(e) => {
            // The error that matters is the first; a failed rollback means
            // the connection is gone, which `after_error` notices.
            let _ = client.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;
    use crate::store::Store;
    use crate::store::postgres::{Names, PgStore};
    use crate::store::testing::{admin, scratch, sequence};

    #[test]
    fn a_lost_connection_ends_the_batch_and_is_reopened() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let mut store = PgStore::open(&url).expect("open");
        let realm = store.create_realm("acme", "Acme", 0).expect("realm");
        let kill = |store: &mut PgStore| {
            let pid: i32 = store
                .run(|c, _| Ok(c.query_one("SELECT pg_backend_pid()", &[])?.get(0)))
                .expect("pid");
            admin(&url)
                .execute("SELECT pg_terminate_backend($1)", &[&pid])
                .expect("terminate");
        };

        store.begin_batch(&[realm.id]).expect("begin");
        kill(&mut store);
        assert!(store.commit_batch(&[], &[sequence(realm.id, 1)]).is_err());
        assert!(!store.in_batch);
        thread::sleep(RECONNECT_INTERVAL);
        assert_eq!(
            store.sequences().expect("sequences"),
            vec![sequence(realm.id, 0)]
        );

        // Outside a batch the failing call reports the error and the next
        // one reconnects.
        kill(&mut store);
        assert!(store.directory_version().is_err());
        thread::sleep(RECONNECT_INTERVAL);
        assert_eq!(store.directory_version().expect("version"), 1);
    }

    #[test]
    fn reconnection_attempts_are_spaced() {
        // A port nothing listens on: every attempt fails at once.
        let config = configure("postgres://nobody@127.0.0.1:1/none").expect("config");
        let mut store = PgStore {
            conn: Connection {
                config,
                client: None,
                prepared: Prepared::default(),
                last_attempt: None,
                last_failure: String::new(),
            },
            names: Names::new("x"),
            in_batch: false,
            locked: Vec::new(),
            durability: crate::store::Durability::Full,
            listeners: Vec::new(),
            inbox: Default::default(),
        };
        let first = store.directory_version();
        assert!(
            matches!(&first, Err(StoreError::Unavailable(_))),
            "{first:?}"
        );
        let attempted = store.conn.last_attempt;
        assert!(attempted.is_some());
        let second = store.directory_version();
        assert!(
            matches!(&second, Err(StoreError::Unavailable(reason)) if reason.contains("connect"))
        );
        assert_eq!(store.conn.last_attempt, attempted, "no attempt in between");
        thread::sleep(RECONNECT_INTERVAL);
        assert!(store.directory_version().is_err());
        assert_ne!(
            store.conn.last_attempt, attempted,
            "a new attempt after the interval"
        );
    }
}
