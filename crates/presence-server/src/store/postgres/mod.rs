//! The shared store: PostgreSQL, for several server nodes on one database.
//!
//! Every node keeps its own copy of presence in memory and writes its
//! changes here in batches. A batch locks the sequence rows of the realms it
//! touches from its start to its commit, so two nodes never hand out the
//! same update id and ids become visible in the order they were taken; a
//! node that remembers the last id it saw can read exactly what changed
//! since, in one snapshot. After a commit the store sends a notification on
//! a channel named after the schema, which the other nodes' listeners turn
//! into a catch-up.
//!
//! All tables live in the connection's current schema, so several
//! installations (or tests) can share one database by giving each its own
//! `search_path`.
//!
//! Nothing may block for long when the database goes away: connections time
//! out at connect, TCP keepalives and the user timeout notice a silent peer,
//! and the server cancels statements and lock waits after a few seconds.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ::postgres::error::SqlState;
use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::{FromSql, Type};
use ::postgres::{Client, Config, NoTls, Row};
use sha2::{Digest, Sha256};

use super::{
    DeviceKind, DeviceRow, DirectoryChanges, Dump, EmbedKeyRow, Loaded, Mutation, NewEmbedKey,
    NewUser, NodeRow, Notice, PresenceChanges, PresenceRow, RealmRow, RealmSummary, Store,
    StoreError, UserChange, UserRow, email_key,
};

mod directory;
mod embed;

/// The schema, as numbered steps; a database records the steps it has had
/// in `schema_migrations`. Steps are only ever appended.
/// Step 2 brings embed keys, the nodes' reports and deleted users' traces;
/// its parts are kept beside the code that uses them.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (1, &[SCHEMA_V1]),
    (2, &[embed::SCHEMA_V2, directory::SCHEMA_V2]),
];

const SCHEMA_V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('directory_version', 0);
CREATE TABLE realms (
    id                BIGSERIAL PRIMARY KEY,
    string_id         TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    presence_disabled BOOLEAN NOT NULL DEFAULT FALSE,
    deactivated       BOOLEAN NOT NULL DEFAULT FALSE,
    date_created      BIGINT NOT NULL,
    row_version       BIGINT NOT NULL
);
CREATE INDEX realms_row_version ON realms (row_version);
CREATE TABLE realm_sequences (
    realm_id       BIGINT PRIMARY KEY REFERENCES realms (id),
    last_update_id BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE users (
    id                BIGSERIAL PRIMARY KEY,
    realm_id          BIGINT NOT NULL REFERENCES realms (id),
    email             TEXT NOT NULL,
    email_key         TEXT NOT NULL,
    full_name         TEXT NOT NULL,
    is_bot            BOOLEAN NOT NULL,
    is_active         BOOLEAN NOT NULL DEFAULT TRUE,
    date_joined       BIGINT NOT NULL,
    api_key_hash      BYTEA NOT NULL UNIQUE,
    presence_enabled  BOOLEAN NOT NULL DEFAULT TRUE,
    enable_offline_push_notifications BOOLEAN NOT NULL DEFAULT TRUE,
    row_version       BIGINT NOT NULL,
    CONSTRAINT users_realm_email UNIQUE (realm_id, email_key)
);
CREATE INDEX users_row_version ON users (row_version);
CREATE TABLE push_devices (
    user_id BIGINT NOT NULL REFERENCES users (id),
    kind    TEXT NOT NULL,
    token   TEXT NOT NULL,
    appid   TEXT,
    PRIMARY KEY (user_id, kind, token)
);
CREATE TABLE client_presence (
    user_id             BIGINT NOT NULL REFERENCES users (id),
    realm_id            BIGINT NOT NULL,
    client              TEXT NOT NULL,
    last_connected_time BIGINT NOT NULL,
    last_active_time    BIGINT,
    update_id           BIGINT NOT NULL,
    PRIMARY KEY (user_id, client)
);
CREATE INDEX client_presence_realm_update ON client_presence (realm_id, update_id);
";

/// The advisory lock that serialises migrations across every process
/// sharing the database (the bytes spell `presence`).
const MIGRATION_LOCK: i64 = 0x7072_6573_656e_6365;

/// Run on every new connection so that a statement or a lock wait cannot
/// hold a writer for long, and a transaction left open by a stuck node
/// does not hold its realms' sequence locks for long (a batch is never idle
/// in its transaction for more than the moment its writer evaluates it).
const SESSION_SETTINGS: &str = "SET statement_timeout = '5s'; SET lock_timeout = '5s'; \
     SET idle_in_transaction_session_timeout = '10s'";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(5);
/// Keepalive probes start soon, so that a peer that vanished without a word
/// is noticed while a reply is awaited, not hours later.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(2);
const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVES_RETRIES: u32 = 3;

/// The least time between two connection attempts, so that a server that
/// is down is not hammered and callers fail at once in between.
const RECONNECT_INTERVAL: Duration = Duration::from_millis(500);

/// How long a listener waits for a notification before telling its
/// subscriber that all is quiet.
const LISTEN_TICK: Duration = Duration::from_secs(1);

/// The longest channel name PostgreSQL keeps whole (`NAMEDATALEN - 1`).
const MAX_CHANNEL_LEN: usize = 63;

const REALM_COLUMNS: &str = "r.id, r.string_id, r.name, r.presence_disabled, r.deactivated, \
     r.date_created";

const USER_COLUMNS: &str = "u.id, u.realm_id, u.email, u.full_name, u.is_bot, u.is_active, \
     u.date_joined, u.api_key_hash, u.presence_enabled, u.enable_offline_push_notifications, \
     (SELECT COUNT(*) FROM push_devices d WHERE d.user_id = u.id)";

const PRESENCE_COLUMNS: &str =
    "p.user_id, p.client, p.last_connected_time, p.last_active_time, p.update_id";

/// A `Store` over one PostgreSQL connection, shared with other nodes.
///
/// Its client blocks on a runtime of its own: open, use and drop it on a
/// thread that may block (the server's writer thread, a blocking task),
/// never on an async worker, where the client panics.
pub struct PgStore {
    conn: Connection,
    names: Names,
    /// Whether a batch transaction is open on the connection.
    in_batch: bool,
    /// The listener threads started by `subscribe` (kept so tests can see
    /// them end).
    listeners: Vec<JoinHandle<()>>,
}

/// What this store's notifications are sent on and carry.
struct Names {
    /// `presence_` and the schema's name: nodes of one installation share it.
    channel: String,
    /// A random token naming this store, so its listener can skip the
    /// notifications of its own commits.
    token: String,
}

/// The connection, reopened on demand.
struct Connection {
    config: Config,
    client: Option<Client>,
    /// When the last attempt to connect was made.
    last_attempt: Option<Instant>,
    /// Why the last attempt failed, repeated while callers wait for the next.
    last_failure: String,
}

impl Connection {
    /// The open connection: reconnects if there is none, at most once per
    /// `RECONNECT_INTERVAL`. A connection lost while a batch was open ends
    /// the batch, and the call that finds it fails rather than continue on
    /// a new connection outside the transaction.
    fn get(&mut self, in_batch: &mut bool) -> Result<&mut Client, StoreError> {
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
                Ok(client) => self.client = Some(client),
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

    /// After a failed call: forgets a connection that broke, so the next
    /// call reconnects, and ends the batch it carried.
    fn after_error(&mut self, in_batch: &mut bool, error: &StoreError) {
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
enum Mode {
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
fn configure(url: &str) -> Result<Config, StoreError> {
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
fn connect(config: &Config) -> Result<Client, StoreError> {
    let mut client = config.connect(NoTls).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL: {}",
            super::PostgresFailure(e)
        ))
    })?;
    client.batch_execute(SESSION_SETTINGS)?;
    Ok(client)
}

/// Runs `f` in a transaction begun as `mode`, committing if it succeeds and
/// rolling back otherwise.
fn in_transaction<T>(
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

/// Brings the schema up to date, returning the versions applied.
fn migrate(client: &mut Client) -> Result<Vec<i64>, StoreError> {
    in_transaction(client, Mode::Write, |c| {
        // The lock comes first: nodes starting together wait for each other
        // here, and the one that follows sees the schema the first made.
        c.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )?;
        let found: Option<i64> = c
            .query_one("SELECT max(version) FROM schema_migrations", &[])?
            .try_get(0)?;
        let found = found.unwrap_or(0);
        let supported = MIGRATIONS.last().map_or(0, |m| m.0);
        if found > supported {
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        let mut applied = Vec::new();
        for &(version, parts) in MIGRATIONS.iter().filter(|m| m.0 > found) {
            for sql in parts {
                c.batch_execute(sql)?;
            }
            c.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&version],
            )?;
            applied.push(version);
        }
        Ok(applied)
    })
}

/// The notification channel of the connection's schema. Names too long for
/// PostgreSQL to keep are replaced by a digest, the same on every node.
fn channel_name(schema: &str) -> String {
    let name = format!("presence_{schema}");
    if name.len() <= MAX_CHANNEL_LEN {
        return name;
    }
    let digest = Sha256::digest(schema.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("presence_{hex}")
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` URL or a
    /// `key=value` string; `options=-csearch_path=…` picks the schema) and
    /// brings its schema up to date.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let config = configure(url)?;
        let mut client = connect(&config)?;
        migrate(&mut client)?;
        let schema: Option<String> = client
            .query_one("SELECT current_schema()", &[])?
            .try_get(0)?;
        // Migrations created tables, so a schema exists; this only guards
        // against a search_path changed underneath.
        let schema = schema.ok_or_else(|| {
            StoreError::Unavailable("the search_path names no existing schema".to_owned())
        })?;
        Ok(PgStore {
            conn: Connection {
                config,
                client: Some(client),
                last_attempt: Some(Instant::now()),
                last_failure: String::new(),
            },
            names: Names {
                channel: channel_name(&schema),
                token: format!("{:016x}", rand::random::<u64>()),
            },
            in_batch: false,
            listeners: Vec::new(),
        })
    }

    /// Brings the schema of the database at `url` up to date without
    /// opening a store, and returns the versions it applied (none if it was
    /// current).
    pub fn migrate_only(url: &str) -> Result<Vec<i64>, StoreError> {
        let config = configure(url)?;
        let mut client = connect(&config)?;
        migrate(&mut client)
    }

    /// Runs `f` on the connection; after an error, drops a connection that
    /// broke.
    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Client, &Names) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let client = self.conn.get(&mut self.in_batch)?;
        let out = f(client, &self.names);
        if let Err(e) = &out {
            self.conn.after_error(&mut self.in_batch, e);
        }
        out
    }

    /// Runs `f` in a transaction of its own, or inside the open batch (whose
    /// transaction already gives a consistent view and commits with it).
    fn transaction<T>(
        &mut self,
        mode: Mode,
        f: impl FnOnce(&mut Client, &Names) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.in_batch {
            return self.run(f);
        }
        self.run(|c, names| in_transaction(c, mode, |c| f(c, names)))
    }

    /// Changes one user found by realm and email, bumping its row version.
    fn update_user_column(
        &mut self,
        realm: &str,
        email: &str,
        sql: &str,
        value: &(dyn ::postgres::types::ToSql + Sync),
    ) -> Result<(), StoreError> {
        self.transaction(Mode::Write, |c, names| {
            let version = next_directory_version(c)?;
            let id = user_id(c, realm, email)?;
            c.execute(sql, &[value, &version, &id])?;
            notify(c, names)
        })
    }
}

/// Takes the next directory version. The meta row stays locked until the
/// transaction ends, so versions become visible in the order they were
/// taken and a reader of "rows newer than v" never misses one that commits
/// late.
fn next_directory_version(c: &mut Client) -> Result<i64, StoreError> {
    Ok(c.query_one(
        "UPDATE meta SET value = value + 1 WHERE key = 'directory_version' RETURNING value",
        &[],
    )?
    .try_get(0)?)
}

fn read_directory_version(c: &mut Client) -> Result<i64, StoreError> {
    Ok(c.query_one(
        "SELECT value FROM meta WHERE key = 'directory_version'",
        &[],
    )?
    .try_get(0)?)
}

/// Tells the other nodes that this transaction changed something (delivered
/// at commit, and not at all on rollback).
fn notify(c: &mut Client, names: &Names) -> Result<(), StoreError> {
    c.execute("SELECT pg_notify($1, $2)", &[&names.channel, &names.token])?;
    Ok(())
}

fn realm_id(c: &mut Client, string_id: &str) -> Result<i64, StoreError> {
    match c.query_opt("SELECT id FROM realms WHERE string_id = $1", &[&string_id])? {
        Some(row) => Ok(row.try_get(0)?),
        None => Err(StoreError::UnknownRealm(string_id.to_owned())),
    }
}

fn user_id(c: &mut Client, realm: &str, email: &str) -> Result<i64, StoreError> {
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
struct KeyHash([u8; 32]);

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

fn realm_row(r: &Row) -> Result<RealmRow, ::postgres::Error> {
    Ok(RealmRow {
        id: r.try_get(0)?,
        string_id: r.try_get(1)?,
        name: r.try_get(2)?,
        presence_disabled: r.try_get(3)?,
        deactivated: r.try_get(4)?,
        date_created: r.try_get(5)?,
    })
}

fn user_row(r: &Row) -> Result<UserRow, ::postgres::Error> {
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

fn presence_row(r: &Row) -> Result<PresenceRow, ::postgres::Error> {
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
fn stream(
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

/// Locks the sequence rows of `realms` in id order (so that two nodes
/// locking overlapping sets cannot deadlock) and returns their values in
/// the order asked.
fn lock_sequences(c: &mut Client, realms: &[i64]) -> Result<Vec<i64>, StoreError> {
    let rows = c.query(
        "SELECT realm_id, last_update_id FROM realm_sequences \
         WHERE realm_id = ANY($1) ORDER BY realm_id FOR UPDATE",
        &[&realms],
    )?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        found.insert(row.try_get::<_, i64>(0)?, row.try_get::<_, i64>(1)?);
    }
    Ok(realms
        .iter()
        .map(|id| found.get(id).copied().unwrap_or(0))
        .collect())
}

/// Writes a batch inside the open transaction (without committing).
fn write_batch(
    c: &mut Client,
    names: &Names,
    batch: &[Mutation],
    sequences: &[(i64, i64)],
) -> Result<(), StoreError> {
    // One statement cannot touch a row twice, so each record's mutations
    // are reduced to their final effect: the last put, or a delete.
    let mut records: BTreeMap<(i64, &str), Option<&PresenceRow>> = BTreeMap::new();
    let mut touches_users = false;
    for mutation in batch {
        match mutation {
            Mutation::PutPresence(p) => {
                records.insert((p.user_id, p.client.as_str()), Some(p));
            }
            Mutation::DeletePresence { user_id, client } => {
                records.insert((*user_id, client.as_str()), None);
            }
            _ => touches_users = true,
        }
    }

    // The directory version is taken before any user row is locked, the
    // same order the admin writes use, so the two cannot deadlock.
    let version = if touches_users {
        Some(next_directory_version(c)?)
    } else {
        None
    };

    let (mut del_users, mut del_clients) = (Vec::new(), Vec::new());
    let mut put_users = Vec::new();
    let mut put_clients = Vec::new();
    let mut put_connected = Vec::new();
    let mut put_active = Vec::new();
    let mut put_update = Vec::new();
    for (&(user_id, client), record) in &records {
        match record {
            None => {
                del_users.push(user_id);
                del_clients.push(client);
            }
            Some(p) => {
                put_users.push(user_id);
                put_clients.push(client);
                put_connected.push(p.last_connected_time);
                put_active.push(p.last_active_time);
                put_update.push(p.update_id);
            }
        }
    }
    if !del_users.is_empty() {
        c.execute(
            "DELETE FROM client_presence p \
             USING unnest($1::bigint[], $2::text[]) AS v(user_id, client) \
             WHERE p.user_id = v.user_id AND p.client = v.client",
            &[&del_users, &del_clients],
        )?;
    }
    if !put_users.is_empty() {
        // The realm is copied from the user, so that catch-up reads of a
        // realm need no join.
        c.execute(
            "INSERT INTO client_presence \
             (user_id, realm_id, client, last_connected_time, last_active_time, update_id) \
             SELECT v.user_id, u.realm_id, v.client, v.last_connected_time, \
             v.last_active_time, v.update_id \
             FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) \
             AS v(user_id, client, last_connected_time, last_active_time, update_id) \
             JOIN users u ON u.id = v.user_id \
             ON CONFLICT (user_id, client) DO UPDATE SET \
             last_connected_time = excluded.last_connected_time, \
             last_active_time = excluded.last_active_time, \
             update_id = excluded.update_id",
            &[
                &put_users,
                &put_clients,
                &put_connected,
                &put_active,
                &put_update,
            ],
        )?;
    }

    // Settings and devices change rarely: a statement each is fine.
    let mut touched = Vec::new();
    for mutation in batch {
        match mutation {
            Mutation::PutPresence(_) | Mutation::DeletePresence { .. } => {}
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
                touched.push(*user_id);
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
                touched.push(*user_id);
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
                touched.push(*user_id);
            }
        }
    }
    if let Some(version) = version {
        c.execute(
            "UPDATE users SET row_version = $1 WHERE id = ANY($2)",
            &[&version, &touched],
        )?;
    }

    if !sequences.is_empty() {
        // A realm named twice keeps its last value, again because one
        // statement cannot touch a row twice.
        let last: BTreeMap<i64, i64> = sequences.iter().copied().collect();
        let (realms, ids): (Vec<i64>, Vec<i64>) = last.into_iter().unzip();
        c.execute(
            "INSERT INTO realm_sequences (realm_id, last_update_id) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[]) \
             ON CONFLICT (realm_id) DO UPDATE SET last_update_id = excluded.last_update_id",
            &[&realms, &ids],
        )?;
    }

    if !batch.is_empty() || !sequences.is_empty() {
        notify(c, names)?;
    }
    Ok(())
}

/// Turns a constraint violation during an import into `ImportConflict`,
/// naming what conflicts; other errors pass through.
fn import_error(what: &str, e: ::postgres::Error) -> StoreError {
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
fn raise_id_sequence(c: &mut Client, table: &str) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT setval('{table}_id_seq', GREATEST(\
         (SELECT COALESCE(MAX(id), 1) FROM {table}), \
         (SELECT last_value FROM {table}_id_seq)))"
    );
    c.execute(&sql, &[])?;
    Ok(())
}

fn import_dump(c: &mut Client, names: &Names, dump: &Dump) -> Result<(), StoreError> {
    let version = next_directory_version(c)?;

    let realm_ids: Vec<i64> = dump.realms.iter().map(|r| r.id).collect();
    let string_ids: Vec<&str> = dump.realms.iter().map(|r| r.string_id.as_str()).collect();
    if let Some(row) = c.query_opt(
        "SELECT id, string_id FROM realms WHERE id = ANY($1) OR string_id = ANY($2) \
         ORDER BY id LIMIT 1",
        &[&realm_ids, &string_ids],
    )? {
        let (id, string_id): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        let realm = dump
            .realms
            .iter()
            .find(|r| r.id == id || r.string_id == string_id);
        let (id, string_id) = realm.map_or((id, string_id.as_str()), |r| (r.id, &r.string_id));
        return Err(StoreError::ImportConflict(format!(
            "realm {string_id:?} (id {id}) exists already"
        )));
    }
    if !dump.realms.is_empty() {
        let realm_names: Vec<&str> = dump.realms.iter().map(|r| r.name.as_str()).collect();
        let disabled: Vec<bool> = dump.realms.iter().map(|r| r.presence_disabled).collect();
        let deactivated: Vec<bool> = dump.realms.iter().map(|r| r.deactivated).collect();
        let created: Vec<i64> = dump.realms.iter().map(|r| r.date_created).collect();
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
    }

    if !dump.users.is_empty() {
        let u = &dump.users;
        let ids: Vec<i64> = u.iter().map(|u| u.id).collect();
        let realms: Vec<i64> = u.iter().map(|u| u.realm_id).collect();
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
    }

    if !dump.presence.is_empty() {
        let p = &dump.presence;
        let users: Vec<i64> = p.iter().map(|p| p.user_id).collect();
        let clients: Vec<&str> = p.iter().map(|p| p.client.as_str()).collect();
        let connected: Vec<i64> = p.iter().map(|p| p.last_connected_time).collect();
        let active: Vec<Option<i64>> = p.iter().map(|p| p.last_active_time).collect();
        let updates: Vec<i64> = p.iter().map(|p| p.update_id).collect();
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
    }

    // Each realm's sequence starts at the largest update id its imported
    // records carry, so that new updates sort after them; a realm that
    // existed already is only ever raised.
    let presence_users: Vec<i64> = dump.presence.iter().map(|p| p.user_id).collect();
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

    if !dump.devices.is_empty() {
        let d = &dump.devices;
        let users: Vec<i64> = d.iter().map(|d| d.user_id).collect();
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
    }

    // Imported rows keep their ids, which the id sequences did not hand
    // out: move them past, or later creations would collide.
    if !dump.realms.is_empty() {
        raise_id_sequence(c, "realms")?;
    }
    if !dump.users.is_empty() {
        raise_id_sequence(c, "users")?;
    }
    embed::import(c, &dump.embed_keys)?;
    notify(c, names)
}

impl Store for PgStore {
    fn load(&mut self, sink: &mut dyn FnMut(Loaded)) -> Result<i64, StoreError> {
        self.transaction(Mode::BulkSnapshot, |c, _| {
            let version = read_directory_version(c)?;
            stream(
                c,
                &format!(
                    "SELECT {REALM_COLUMNS}, \
                     (SELECT COUNT(*) FROM users u WHERE u.realm_id = r.id), \
                     COALESCE(s.last_update_id, 0) \
                     FROM realms r LEFT JOIN realm_sequences s ON s.realm_id = r.id \
                     ORDER BY r.id"
                ),
                |r| {
                    let users: i64 = r.try_get(6)?;
                    let last: i64 = r.try_get(7)?;
                    sink(Loaded::Realm(
                        realm_row(r)?,
                        usize::try_from(users).unwrap_or(0),
                        last,
                    ));
                    Ok(())
                },
            )?;
            stream(
                c,
                &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.id"),
                |r| {
                    sink(Loaded::User(user_row(r)?));
                    Ok(())
                },
            )?;
            stream(
                c,
                &format!(
                    "SELECT {PRESENCE_COLUMNS}, p.realm_id FROM client_presence p \
                     ORDER BY p.user_id, p.client"
                ),
                |r| {
                    sink(Loaded::Presence(presence_row(r)?, r.try_get(5)?));
                    Ok(())
                },
            )?;
            for key in embed::all(c)? {
                sink(Loaded::EmbedKey(key));
            }
            Ok(version)
        })
    }

    fn begin_batch(&mut self, realms: &[i64]) -> Result<Vec<i64>, StoreError> {
        // A batch left open by a caller's mistake would hold its locks:
        // end it rather than nest.
        if self.in_batch {
            self.abort_batch();
        }
        let out = self.run(|c, _| in_transaction_open(c, |c| lock_sequences(c, realms)));
        self.in_batch = out.is_ok();
        out
    }

    fn commit_batch(
        &mut self,
        batch: &[Mutation],
        sequences: &[(i64, i64)],
    ) -> Result<(), StoreError> {
        if !self.in_batch {
            return Err(StoreError::NoBatch);
        }
        let out = self.run(|c, names| {
            let written = write_batch(c, names, batch, sequences)
                .and_then(|()| c.batch_execute("COMMIT").map_err(StoreError::from));
            if written.is_err() {
                let _ = c.batch_execute("ROLLBACK");
            }
            written
        });
        self.in_batch = false;
        out
    }

    fn abort_batch(&mut self) {
        if !self.in_batch {
            return;
        }
        let _ = self.run(|c, _| Ok(c.batch_execute("ROLLBACK")?));
        self.in_batch = false;
    }

    fn sequences(&mut self) -> Result<Vec<(i64, i64)>, StoreError> {
        self.run(|c, _| {
            c.query(
                "SELECT realm_id, last_update_id FROM realm_sequences ORDER BY realm_id",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
        })
    }

    fn presence_changes(
        &mut self,
        realm_id: i64,
        since: i64,
    ) -> Result<PresenceChanges, StoreError> {
        // The sequence value and the records must come from one snapshot:
        // a record newer than the value returned would be skipped by a
        // reader that resumes from that value.
        self.transaction(Mode::Snapshot, |c, _| {
            let last_update_id = match c.query_opt(
                "SELECT last_update_id FROM realm_sequences WHERE realm_id = $1",
                &[&realm_id],
            )? {
                Some(row) => row.try_get(0)?,
                None => 0,
            };
            let rows = c.query(
                &format!(
                    "SELECT {PRESENCE_COLUMNS} FROM client_presence p \
                     WHERE p.realm_id = $1 AND p.user_id IN \
                     (SELECT q.user_id FROM client_presence q \
                      WHERE q.realm_id = $1 AND q.update_id > $2) \
                     ORDER BY p.user_id, p.client"
                ),
                &[&realm_id, &since],
            )?;
            let records = rows
                .iter()
                .map(presence_row)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(PresenceChanges::from_records(last_update_id, records))
        })
    }

    fn directory_version(&mut self) -> Result<i64, StoreError> {
        self.run(|c, _| read_directory_version(c))
    }

    fn directory_changes(&mut self, since: i64) -> Result<DirectoryChanges, StoreError> {
        self.transaction(Mode::Snapshot, |c, _| {
            let version = read_directory_version(c)?;
            let realms = c
                .query(
                    &format!(
                        "SELECT {REALM_COLUMNS} FROM realms r WHERE r.row_version > $1 \
                         ORDER BY r.id"
                    ),
                    &[&since],
                )?
                .iter()
                .map(realm_row)
                .collect::<Result<_, _>>()?;
            let users = c
                .query(
                    &format!(
                        "SELECT {USER_COLUMNS} FROM users u WHERE u.row_version > $1 \
                         ORDER BY u.id"
                    ),
                    &[&since],
                )?
                .iter()
                .map(user_row)
                .collect::<Result<_, _>>()?;
            let embed_keys = embed::changed_since(c, since)?;
            let deleted_users = directory::deleted_since(c, since)?;
            Ok(DirectoryChanges {
                realms,
                users,
                embed_keys,
                deleted_users,
                version,
            })
        })
    }

    fn has_device(
        &mut self,
        user_id: i64,
        kind: DeviceKind,
        token: &str,
    ) -> Result<bool, StoreError> {
        self.run(|c, _| {
            Ok(c.query_opt(
                "SELECT 1 FROM push_devices WHERE user_id = $1 AND kind = $2 AND token = $3",
                &[&user_id, &kind.as_str(), &token],
            )?
            .is_some())
        })
    }

    fn create_realm(
        &mut self,
        string_id: &str,
        name: &str,
        now: i64,
    ) -> Result<RealmRow, StoreError> {
        self.transaction(Mode::Write, |c, names| {
            // Taking the version first serialises admin writes, so the
            // check below cannot race another creation of the same name.
            let version = next_directory_version(c)?;
            let exists = c
                .query_opt("SELECT 1 FROM realms WHERE string_id = $1", &[&string_id])?
                .is_some();
            if exists {
                return Err(StoreError::RealmExists(string_id.to_owned()));
            }
            let row = c
                .query_one(
                    "INSERT INTO realms (string_id, name, date_created, row_version) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&string_id, &name, &now, &version],
                )
                .map_err(|e| match e.code() {
                    Some(code) if *code == SqlState::UNIQUE_VIOLATION => {
                        StoreError::RealmExists(string_id.to_owned())
                    }
                    _ => e.into(),
                })?;
            let id: i64 = row.try_get(0)?;
            c.execute("INSERT INTO realm_sequences (realm_id) VALUES ($1)", &[&id])?;
            notify(c, names)?;
            Ok(RealmRow {
                id,
                string_id: string_id.to_owned(),
                name: name.to_owned(),
                presence_disabled: false,
                deactivated: false,
                date_created: now,
            })
        })
    }

    fn list_realms(&mut self) -> Result<Vec<RealmSummary>, StoreError> {
        self.transaction(Mode::Snapshot, |c, _| directory::list_realms(c))
    }

    fn rename_realm(&mut self, string_id: &str, name: &str) -> Result<(), StoreError> {
        self.transaction(Mode::Write, |c, names| {
            directory::set_realm_column(c, names, string_id, "name", &name).map(drop)
        })
    }

    fn set_realm_deactivated(
        &mut self,
        string_id: &str,
        deactivated: bool,
    ) -> Result<bool, StoreError> {
        self.transaction(Mode::Write, |c, names| {
            directory::set_realm_column(c, names, string_id, "deactivated", &deactivated)
        })
    }

    fn set_realm_presence_disabled(
        &mut self,
        string_id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        self.transaction(Mode::Write, |c, names| {
            directory::set_realm_column(c, names, string_id, "presence_disabled", &disabled)
        })
    }

    fn create_user(&mut self, user: &NewUser<'_>) -> Result<UserRow, StoreError> {
        self.transaction(Mode::Write, |c, names| {
            let realm_id = directory::check_active_realm(c, user.realm)?;
            let version = next_directory_version(c)?;
            let key = email_key(user.email);
            let duplicate = || StoreError::DuplicateEmail {
                realm: user.realm.to_owned(),
                email: user.email.to_owned(),
            };
            let exists = c
                .query_opt(
                    "SELECT 1 FROM users WHERE realm_id = $1 AND email_key = $2",
                    &[&realm_id, &key],
                )?
                .is_some();
            if exists {
                return Err(duplicate());
            }
            let email = user.email.trim();
            let row = c
                .query_one(
                    "INSERT INTO users (realm_id, email, email_key, full_name, is_bot, \
                     date_joined, api_key_hash, row_version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    &[
                        &realm_id,
                        &email,
                        &key,
                        &user.full_name,
                        &user.is_bot,
                        &user.date_joined,
                        &&user.api_key_hash[..],
                        &version,
                    ],
                )
                .map_err(|e| match e.as_db_error() {
                    Some(db)
                        if *db.code() == SqlState::UNIQUE_VIOLATION
                            && db.constraint() == Some("users_realm_email") =>
                    {
                        duplicate()
                    }
                    _ => e.into(),
                })?;
            notify(c, names)?;
            Ok(user.created_row(row.try_get(0)?, realm_id))
        })
    }

    fn set_user_active(
        &mut self,
        realm: &str,
        email: &str,
        active: bool,
    ) -> Result<bool, StoreError> {
        self.transaction(Mode::Write, |c, names| {
            directory::set_user_active(c, names, realm, email, active)
        })
    }

    fn update_user(
        &mut self,
        realm: &str,
        email: &str,
        change: &UserChange<'_>,
    ) -> Result<UserRow, StoreError> {
        self.transaction(Mode::Write, |c, names| {
            directory::update_user(c, names, realm, email, change)
        })
    }

    fn delete_user(&mut self, realm: &str, email: &str) -> Result<UserRow, StoreError> {
        self.transaction(Mode::Write, |c, names| {
            directory::delete_user(c, names, realm, email)
        })
    }

    fn set_api_key_hash(
        &mut self,
        realm: &str,
        email: &str,
        hash: [u8; 32],
    ) -> Result<(), StoreError> {
        self.update_user_column(
            realm,
            email,
            "UPDATE users SET api_key_hash = $1, row_version = $2 WHERE id = $3",
            &&hash[..],
        )
    }

    fn list_users(&mut self, realm: &str) -> Result<Vec<UserRow>, StoreError> {
        self.transaction(Mode::Snapshot, |c, _| {
            let realm_id = realm_id(c, realm)?;
            Ok(c.query(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.realm_id = $1 ORDER BY u.id"),
                &[&realm_id],
            )?
            .iter()
            .map(user_row)
            .collect::<Result<_, _>>()?)
        })
    }

    fn export(&mut self) -> Result<Dump, StoreError> {
        self.transaction(Mode::BulkSnapshot, |c, _| {
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
                    let KindColumn(kind) = r.try_get(1)?;
                    dump.devices.push(DeviceRow {
                        user_id: r.try_get(0)?,
                        kind,
                        token: r.try_get(2)?,
                        appid: r.try_get(3)?,
                    });
                    Ok(())
                },
            )?;
            dump.embed_keys = embed::all(c)?;
            Ok(dump)
        })
    }

    fn import(&mut self, dump: &Dump) -> Result<(), StoreError> {
        self.transaction(Mode::BulkWrite, |c, names| import_dump(c, names, dump))
    }

    fn create_embed_key(&mut self, key: &NewEmbedKey<'_>) -> Result<EmbedKeyRow, StoreError> {
        self.transaction(Mode::Write, |c, names| {
            directory::check_active_realm(c, key.realm)?;
            embed::create(c, names, key)
        })
    }

    fn list_embed_keys(&mut self, realm: &str) -> Result<Vec<EmbedKeyRow>, StoreError> {
        self.transaction(Mode::Snapshot, |c, _| embed::list(c, realm))
    }

    fn revoke_embed_key(
        &mut self,
        realm: &str,
        name: &str,
        now: i64,
    ) -> Result<EmbedKeyRow, StoreError> {
        self.transaction(Mode::Write, |c, names| {
            embed::revoke(c, names, realm, name, now)
        })
    }

    fn record_embed_key_use(&mut self, uses: &[(i64, i64)]) -> Result<(), StoreError> {
        self.run(|c, _| embed::record_use(c, uses))
    }

    fn report_node(&mut self, node: &NodeRow, forget_before: i64) -> Result<(), StoreError> {
        self.run(|c, _| embed::report_node(c, node, forget_before))
    }

    fn remove_node(&mut self, id: &str) -> Result<(), StoreError> {
        self.run(|c, _| {
            c.execute("DELETE FROM server_nodes WHERE id = $1", &[&id])?;
            Ok(())
        })
    }

    fn nodes(&mut self) -> Result<Vec<NodeRow>, StoreError> {
        self.run(|c, _| embed::nodes(c))
    }

    fn subscribe(
        &mut self,
        on_change: Box<dyn Fn(Notice) -> bool + Send>,
    ) -> Result<(), StoreError> {
        let listener = Listener {
            config: self.conn.config.clone(),
            listen: format!("LISTEN {}", quote_ident(&self.names.channel)),
            token: self.names.token.clone(),
            on_change,
            last_call: Instant::now(),
        };
        // Listening before returning: a commit made after `subscribe`
        // returns is then certain to be reported.
        let client = listener.connect()?;
        let handle = thread::Builder::new()
            .name("presence-listener".to_owned())
            .spawn(move || listener.run(client))
            .map_err(|e| StoreError::Unavailable(format!("cannot start a listener: {e}")))?;
        self.listeners.push(handle);
        Ok(())
    }
}

/// Opens a read-committed transaction that the batch keeps open, running
/// `f` in it; if `f` fails the transaction is rolled back.
fn in_transaction_open<T>(
    c: &mut Client,
    f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    c.batch_execute("BEGIN")?;
    f(c).inspect_err(|_| {
        let _ = c.batch_execute("ROLLBACK");
    })
}

/// The state of a listener thread.
struct Listener {
    config: Config,
    /// The `LISTEN` statement for the channel.
    listen: String,
    /// The token of the store's own notifications, which are not news.
    token: String,
    on_change: Box<dyn Fn(Notice) -> bool + Send>,
    /// When `on_change` was last called.
    last_call: Instant,
}

impl Listener {
    fn connect(&self) -> Result<Client, StoreError> {
        let mut client = connect(&self.config)?;
        client.batch_execute(&self.listen)?;
        Ok(client)
    }

    fn tell(&mut self, notice: Notice) -> bool {
        self.last_call = Instant::now();
        (self.on_change)(notice)
    }

    /// Waits up to a tick for notifications: `Some(true)` if another
    /// process sent any (a burst counts once), `Some(false)` if only this
    /// store did, `None` if none came.
    fn wait(&self, client: &mut Client) -> Result<Option<bool>, ::postgres::Error> {
        let mut notifications = client.notifications();
        let Some(first) = notifications.timeout_iter(LISTEN_TICK).next()? else {
            return Ok(None);
        };
        let mut news = first.payload() != self.token;
        let mut pending = notifications.iter();
        while let Some(more) = pending.next()? {
            news |= more.payload() != self.token;
        }
        Ok(Some(news))
    }

    fn run(mut self, client: Client) {
        let mut client = Some(client);
        loop {
            let keep_going = match client.as_mut() {
                Some(c) => match self.wait(c) {
                    Ok(Some(true)) => self.tell(Notice::Changed),
                    // Only our own commits: still give the subscriber its
                    // chance to stop once a tick.
                    Ok(Some(false)) if self.last_call.elapsed() < LISTEN_TICK => true,
                    Ok(_) if !c.is_closed() => self.tell(Notice::Quiet),
                    _ => {
                        client = None;
                        self.tell(Notice::Quiet)
                    }
                },
                None => {
                    thread::sleep(RECONNECT_INTERVAL);
                    match self.connect() {
                        // Notifications sent while we were away are lost.
                        Ok(c) => {
                            client = Some(c);
                            self.tell(Notice::Changed)
                        }
                        Err(_) => self.tell(Notice::Quiet),
                    }
                }
            };
            if !keep_going {
                // Dropping the client closes the connection.
                return;
            }
        }
    }
}

/// A schema of its own for one test, dropped with everything in it when
/// the value is dropped.
pub struct ScratchSchema {
    base_url: String,
    name: String,
}

static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ScratchSchema {
    /// Creates a schema with a name no other test uses in the database at
    /// `base_url`.
    pub fn create(base_url: &str) -> Result<ScratchSchema, StoreError> {
        let name = format!(
            "presence_t_{}_{}_{:08x}",
            std::process::id(),
            SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        // On a thread of its own: the blocking client must not run on an
        // async worker, and tests call this from async code.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut client = connect(&configure(base_url)?)?;
                    client.batch_execute(&format!("CREATE SCHEMA {}", quote_ident(&name)))?;
                    Ok::<(), StoreError>(())
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(
                        "the schema thread panicked".to_owned(),
                    ))
                })
        })?;
        Ok(ScratchSchema {
            base_url: base_url.to_owned(),
            name,
        })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `base_url` with the schema as its search path, for [`PgStore::open`].
    pub fn url(&self) -> String {
        with_search_path(&self.base_url, &self.name)
    }
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        // Best effort: a schema left behind costs disk space, not
        // correctness, since names never repeat. On a thread of its own,
        // because the last holder may be an async test.
        let (base_url, name) = (self.base_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            if let Ok(mut client) = configure(&base_url).and_then(|c| connect(&c)) {
                let _ = client.batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    quote_ident(&name)
                ));
            }
        });
        let _ = dropped.join();
    }
}

/// Adds a search path to a connection string, in URL or `key=value` form,
/// and names the connections after the schema too (`application_name`), so
/// that a test can find its own nodes' connections, e.g. to cut them.
/// `schema` must need no quoting (scratch names are lower-case letters,
/// digits and underscores).
fn with_search_path(base: &str, schema: &str) -> String {
    if base.starts_with("postgres://") || base.starts_with("postgresql://") {
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}options=-csearch_path%3D{schema}&application_name={schema}")
    } else {
        format!("{base} options='-csearch_path={schema}' application_name={schema}")
    }
}

/// The database the PostgreSQL tests use, from `PRESENCE_TEST_DATABASE_URL`.
///
/// Without it the tests skip, saying so on stderr past the harness's output
/// capture; under CI (`CI`
/// set) they must not skip, so this panics instead.
///
/// # Panics
///
/// If `PRESENCE_TEST_DATABASE_URL` is unset or empty while `CI` is set.
pub fn test_database_url() -> Option<String> {
    match std::env::var("PRESENCE_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "PRESENCE_TEST_DATABASE_URL is not set, but CI is: the PostgreSQL tests \
                     must run in CI; point it at a database the tests may create schemas in"
                );
            }
            // Straight to the process's stderr: the test harness captures
            // `eprintln!`, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "skipping: PRESENCE_TEST_DATABASE_URL is not set, so this PostgreSQL test \
                 did not run (set it to e.g. postgres://postgres@localhost/test)"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A scratch schema and its URL, or `None` when the tests skip.
    fn scratch() -> Option<(ScratchSchema, String)> {
        let base = test_database_url()?;
        let schema = ScratchSchema::create(&base).expect("create a scratch schema");
        let url = schema.url();
        Some((schema, url))
    }

    fn hash(n: u64) -> [u8; 32] {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&n.to_le_bytes());
        h
    }

    fn new_user<'a>(realm: &'a str, email: &'a str, n: u64) -> NewUser<'a> {
        NewUser {
            realm,
            email,
            full_name: "Someone",
            is_bot: false,
            api_key_hash: hash(n),
            date_joined: 1_700_000_000,
        }
    }

    fn put(user_id: i64, client: &str, update_id: i64) -> Mutation {
        Mutation::PutPresence(PresenceRow {
            user_id,
            client: client.to_owned(),
            last_connected_time: 1_700_000_000 + update_id,
            last_active_time: Some(1_700_000_000),
            update_id,
        })
    }

    fn load_all(store: &mut PgStore) -> (i64, Vec<Loaded>) {
        let mut items = Vec::new();
        let version = store.load(&mut |item| items.push(item)).expect("load");
        (version, items)
    }

    /// Runs a statement on a connection of its own.
    fn admin(url: &str) -> Client {
        connect(&configure(url).expect("config")).expect("connect")
    }

    #[test]
    fn search_path_is_added_to_both_forms() {
        assert_eq!(
            with_search_path("postgres://u@h/db", "s1"),
            "postgres://u@h/db?options=-csearch_path%3Ds1&application_name=s1"
        );
        assert_eq!(
            with_search_path("postgresql://u@h/db?sslmode=disable", "s1"),
            "postgresql://u@h/db?sslmode=disable&options=-csearch_path%3Ds1&application_name=s1"
        );
        assert_eq!(
            with_search_path("host=h user=u", "s1"),
            "host=h user=u options='-csearch_path=s1' application_name=s1"
        );
        for url in [
            with_search_path("postgres://u@h/db", "s1"),
            with_search_path("host=h user=u", "s1"),
        ] {
            let config: Config = url.parse().expect("parse");
            assert_eq!(config.get_options(), Some("-csearch_path=s1"));
            assert_eq!(config.get_application_name(), Some("s1"));
        }
    }

    #[test]
    fn long_channel_names_are_shortened_alike() {
        assert_eq!(channel_name("acme"), "presence_acme");
        let long = "x".repeat(63);
        assert!(channel_name(&long).len() <= MAX_CHANNEL_LEN);
        assert_eq!(channel_name(&long), channel_name(&long));
        assert_ne!(channel_name(&long), channel_name(&"y".repeat(63)));
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn migrations_apply_once_even_when_run_together() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                thread::spawn(move || PgStore::migrate_only(&url))
            })
            .collect();
        let mut applied: Vec<Vec<i64>> = threads
            .into_iter()
            .map(|t| t.join().expect("thread").expect("migrate"))
            .collect();
        applied.sort();
        assert_eq!(applied, vec![vec![], vec![], vec![], vec![1, 2]]);
        assert_eq!(
            PgStore::migrate_only(&url).expect("again"),
            Vec::<i64>::new()
        );
        PgStore::open(&url).expect("open");
        let versions: Vec<i64> = admin(&url)
            .query("SELECT version FROM schema_migrations", &[])
            .expect("versions")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, vec![1, 2]);

        admin(&url)
            .execute("INSERT INTO schema_migrations (version) VALUES (99)", &[])
            .expect("pretend a newer program ran");
        match PgStore::open(&url) {
            Err(StoreError::SchemaTooNew {
                found: 99,
                supported: 2,
            }) => {}
            other => panic!("expected SchemaTooNew, got {:?}", other.err()),
        }
    }

    #[test]
    fn admin_writes_and_a_batch_load_back() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let mut store = PgStore::open(&url).expect("open");
        assert_eq!(store.directory_version().expect("version"), 0);
        let realm = store
            .create_realm("acme", "Acme", 1_700_000_000)
            .expect("realm");
        assert!(matches!(
            store.create_realm("acme", "Again", 0),
            Err(StoreError::RealmExists(name)) if name == "acme"
        ));
        let ann = store
            .create_user(&new_user("acme", " Ann@Example.com ", 1))
            .expect("ann");
        assert_eq!(ann.email, "Ann@Example.com");
        let bob = store
            .create_user(&new_user("acme", "bob@example.com", 2))
            .expect("bob");
        assert!(bob.id > ann.id);
        assert!(matches!(
            store.create_user(&new_user("acme", "ANN@example.com", 3)),
            Err(StoreError::DuplicateEmail { .. })
        ));
        assert!(matches!(
            store.create_user(&new_user("nope", "x@example.com", 4)),
            Err(StoreError::UnknownRealm(_))
        ));
        assert!(matches!(
            store.set_user_active("acme", "nobody@example.com", false),
            Err(StoreError::UnknownUser { .. })
        ));
        assert!(matches!(
            store.set_realm_deactivated("nope", true),
            Err(StoreError::UnknownRealm(_))
        ));
        store
            .set_api_key_hash("acme", "ann@example.com", hash(9))
            .expect("key");
        store
            .set_realm_presence_disabled("acme", true)
            .expect("flag");
        store
            .set_realm_presence_disabled("acme", false)
            .expect("flag");
        let before = store.directory_version().expect("version");
        assert_eq!(before, 6, "each admin write takes one version");

        assert_eq!(
            store.begin_batch(&[realm.id, 999]).expect("begin"),
            vec![0, 0]
        );
        store
            .commit_batch(
                &[
                    put(ann.id, "web", 1),
                    put(ann.id, "mobile", 2),
                    Mutation::DeletePresence {
                        user_id: ann.id,
                        client: "mobile".to_owned(),
                    },
                    put(bob.id, "web", 3),
                    Mutation::SetUserSettings {
                        user_id: bob.id,
                        presence_enabled: false,
                        enable_offline_push_notifications: false,
                    },
                    Mutation::AddDevice {
                        user_id: bob.id,
                        kind: DeviceKind::Apns,
                        token: "tok".to_owned(),
                        appid: Some("app".to_owned()),
                    },
                ],
                &[(realm.id, 3)],
            )
            .expect("commit");
        assert!(matches!(
            store.commit_batch(&[], &[]),
            Err(StoreError::NoBatch)
        ));
        assert!(
            store
                .has_device(bob.id, DeviceKind::Apns, "tok")
                .expect("device")
        );
        assert!(
            !store
                .has_device(bob.id, DeviceKind::Fcm, "tok")
                .expect("device")
        );
        assert_eq!(store.sequences().expect("sequences"), vec![(realm.id, 3)]);

        let changes = store.directory_changes(before).expect("changes");
        assert_eq!(changes.version, before + 1);
        assert!(changes.realms.is_empty());
        assert_eq!(changes.users.len(), 1);
        assert_eq!(changes.users[0].id, bob.id);
        assert_eq!(changes.users[0].push_devices, 1);
        assert!(!changes.users[0].presence_enabled);

        let (version, items) = load_all(&mut store);
        assert_eq!(version, before + 1);
        let mut realms = Vec::new();
        let mut users = Vec::new();
        let mut presence = Vec::new();
        for item in items {
            match item {
                Loaded::Realm(row, count, last) => realms.push((row, count, last)),
                Loaded::User(row) => users.push(row),
                Loaded::Presence(row, realm_id) => presence.push((row, realm_id)),
                Loaded::EmbedKey(row) => panic!("no embed key was made: {row:?}"),
            }
        }
        assert_eq!(realms, vec![(realm.clone(), 2, 3)]);
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].api_key_hash, hash(9));
        assert_eq!(users[1].push_devices, 1);
        let keys: Vec<_> = presence
            .iter()
            .map(|(p, r)| (p.user_id, p.client.as_str(), p.update_id, *r))
            .collect();
        assert_eq!(
            keys,
            vec![(ann.id, "web", 1, realm.id), (bob.id, "web", 3, realm.id)]
        );

        // Removing the device and aborting a batch.
        store.begin_batch(&[realm.id]).expect("begin");
        store
            .commit_batch(
                &[Mutation::RemoveDevice {
                    user_id: bob.id,
                    kind: DeviceKind::Apns,
                    token: "tok".to_owned(),
                }],
                &[],
            )
            .expect("commit");
        assert!(
            !store
                .has_device(bob.id, DeviceKind::Apns, "tok")
                .expect("device")
        );
        assert_eq!(store.begin_batch(&[realm.id]).expect("begin"), vec![3]);
        store.abort_batch();
        assert_eq!(store.list_users("acme").expect("list").len(), 2);
    }

    #[test]
    fn a_second_node_waits_for_the_sequence_lock() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let mut a = PgStore::open(&url).expect("open a");
        let realm = a.create_realm("acme", "Acme", 0).expect("realm");
        let user = a.create_user(&new_user("acme", "a@x", 1)).expect("user");
        let mut b = PgStore::open(&url).expect("open b");

        assert_eq!(a.begin_batch(&[realm.id]).expect("begin a"), vec![0]);
        let (tx, rx) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let started = Instant::now();
            let seen = b.begin_batch(&[realm.id]).expect("begin b");
            tx.send(()).expect("send");
            b.commit_batch(&[put(user.id, "web", 6)], &[(realm.id, 6)])
                .expect("commit b");
            (seen, started.elapsed(), b)
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(400)).is_err(),
            "b must wait while a holds the lock"
        );
        a.commit_batch(&[put(user.id, "web", 5)], &[(realm.id, 5)])
            .expect("commit a");
        let (seen, waited, mut b) = waiter.join().expect("thread");
        assert_eq!(seen, vec![5]);
        assert!(waited >= Duration::from_millis(400));
        assert_eq!(b.sequences().expect("sequences"), vec![(realm.id, 6)]);
    }

    #[test]
    fn presence_changes_give_whole_users_from_one_snapshot() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let mut store = PgStore::open(&url).expect("open");
        let realm = store.create_realm("acme", "Acme", 0).expect("realm");
        let other = store.create_realm("other", "Other", 0).expect("realm");
        let ann = store
            .create_user(&new_user("acme", "ann@x", 1))
            .expect("ann");
        let bob = store
            .create_user(&new_user("acme", "bob@x", 2))
            .expect("bob");
        let eve = store
            .create_user(&new_user("other", "eve@x", 3))
            .expect("eve");

        store.begin_batch(&[realm.id, other.id]).expect("begin");
        store
            .commit_batch(
                &[
                    put(ann.id, "web", 1),
                    put(ann.id, "mobile", 2),
                    put(bob.id, "web", 3),
                    put(eve.id, "web", 1),
                ],
                &[(realm.id, 3), (other.id, 1)],
            )
            .expect("commit");
        store.begin_batch(&[realm.id]).expect("begin");
        store
            .commit_batch(&[put(ann.id, "web", 4)], &[(realm.id, 4)])
            .expect("commit");

        let changes = store.presence_changes(realm.id, 3).expect("changes");
        assert_eq!(changes.last_update_id, 4);
        assert_eq!(changes.users.len(), 1);
        let (user, records) = &changes.users[0];
        assert_eq!(*user, ann.id);
        let clients: Vec<_> = records
            .iter()
            .map(|r| (r.client.as_str(), r.update_id))
            .collect();
        assert_eq!(clients, vec![("mobile", 2), ("web", 4)]);

        let all = store.presence_changes(realm.id, 0).expect("changes");
        assert_eq!(
            all.users.iter().map(|u| u.0).collect::<Vec<_>>(),
            vec![ann.id, bob.id]
        );
        assert!(
            store
                .presence_changes(realm.id, 4)
                .expect("none")
                .users
                .is_empty()
        );
        assert_eq!(
            store
                .presence_changes(999, 0)
                .expect("unknown")
                .last_update_id,
            0
        );

        // Inside a batch the batch's own view is read.
        store.begin_batch(&[realm.id]).expect("begin");
        let inside = store.presence_changes(realm.id, 3).expect("inside");
        assert_eq!(inside.last_update_id, 4);
        assert!(store.has_device(ann.id, DeviceKind::Fcm, "t").is_ok());
        store.commit_batch(&[], &[]).expect("commit");
    }

    #[test]
    fn a_subscriber_hears_other_nodes_and_stops_when_asked() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let mut a = PgStore::open(&url).expect("open a");
        let realm = a.create_realm("acme", "Acme", 0).expect("realm");
        let user = a.create_user(&new_user("acme", "a@x", 1)).expect("user");
        let mut b = PgStore::open(&url).expect("open b");

        let notices = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(Mutex::new(false));
        let (seen, keep) = (Arc::clone(&notices), Arc::clone(&stop));
        b.subscribe(Box::new(move |notice| {
            if let Ok(mut seen) = seen.lock() {
                seen.push(notice);
            }
            keep.lock().map(|stop| !*stop).unwrap_or(false)
        }))
        .expect("subscribe");
        let changed = || {
            notices
                .lock()
                .expect("lock")
                .iter()
                .filter(|n| **n == Notice::Changed)
                .count()
        };

        // Its own commits are not news.
        b.begin_batch(&[realm.id]).expect("begin");
        b.commit_batch(&[put(user.id, "web", 1)], &[(realm.id, 1)])
            .expect("commit");
        thread::sleep(Duration::from_millis(1500));
        assert_eq!(changed(), 0);
        assert!(notices.lock().expect("lock").contains(&Notice::Quiet));

        a.begin_batch(&[realm.id]).expect("begin");
        a.commit_batch(&[put(user.id, "web", 2)], &[(realm.id, 2)])
            .expect("commit");
        let deadline = Instant::now() + Duration::from_secs(5);
        while changed() == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(changed(), 1);

        // A listener that loses its connection comes back and says that
        // something may have been missed.
        let listen = format!("LISTEN {}", quote_ident(&b.names.channel));
        let killed = admin(&url)
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1",
                &[&listen],
            )
            .expect("terminate");
        assert_eq!(killed.len(), 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while changed() < 2 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(changed(), 2);

        *stop.lock().expect("lock") = true;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !b.listeners.iter().all(JoinHandle::is_finished) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(b.listeners.iter().all(JoinHandle::is_finished));
    }

    #[test]
    fn import_keeps_ids_and_later_creations_do_not_collide() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let mut store = PgStore::open(&url).expect("open");
        let user = |id: i64, email: &str, n: u64| UserRow {
            id,
            realm_id: 10,
            email: email.to_owned(),
            full_name: "Imported".to_owned(),
            is_bot: false,
            is_active: true,
            date_joined: 5,
            api_key_hash: hash(n),
            presence_enabled: true,
            enable_offline_push_notifications: false,
            push_devices: 0,
        };
        let mut dump = Dump {
            realms: vec![RealmRow {
                id: 10,
                string_id: "acme".to_owned(),
                name: "Acme".to_owned(),
                presence_disabled: false,
                deactivated: true,
                date_created: 1,
            }],
            users: vec![user(100, "a@x", 1), user(101, "b@x", 2)],
            embed_keys: Vec::new(),
            presence: vec![
                PresenceRow {
                    user_id: 100,
                    client: "web".to_owned(),
                    last_connected_time: 7,
                    last_active_time: None,
                    update_id: 41,
                },
                PresenceRow {
                    user_id: 101,
                    client: "web".to_owned(),
                    last_connected_time: 8,
                    last_active_time: Some(8),
                    update_id: 42,
                },
            ],
            devices: vec![DeviceRow {
                user_id: 101,
                kind: DeviceKind::Fcm,
                token: "t".to_owned(),
                appid: None,
            }],
        };
        store.import(&dump).expect("import");
        dump.users[1].push_devices = 1;
        assert_eq!(store.export().expect("export"), dump);
        assert_eq!(store.sequences().expect("sequences"), vec![(10, 42)]);

        match store.import(&dump) {
            Err(StoreError::ImportConflict(message)) => {
                assert!(message.contains("acme"), "{message}")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        let mut clash = Dump {
            users: vec![user(200, "c@x", 1)],
            ..Dump::default()
        };
        match store.import(&clash) {
            Err(StoreError::ImportConflict(message)) => {
                assert!(message.contains("api_key_hash"), "{message}")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        clash.users[0].realm_id = 77;
        clash.users[0].api_key_hash = hash(77);
        assert!(matches!(
            store.import(&clash),
            Err(StoreError::ImportConflict(_))
        ));

        let realm = store.create_realm("beta", "Beta", 0).expect("realm");
        assert!(realm.id > 10);
        // (The imported realm is deactivated: the new user goes to the new one.)
        let created = store
            .create_user(&new_user("beta", "c@x", 3))
            .expect("user");
        assert!(created.id > 101);
        assert_eq!(store.begin_batch(&[realm.id]).expect("begin"), vec![0]);
        store.abort_batch();
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
            .commit_batch(&batch, &[(realm.id, 5000)])
            .expect("commit");
        assert!(started.elapsed() < Duration::from_secs(5));
        let changes = store.presence_changes(realm.id, 0).expect("changes");
        assert_eq!(changes.last_update_id, 5000);
        assert_eq!(changes.users.len(), 50);
        assert!(
            changes
                .users
                .iter()
                .all(|(_, records)| records.len() == 100)
        );
    }

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
        assert!(store.commit_batch(&[], &[(realm.id, 1)]).is_err());
        assert!(!store.in_batch);
        thread::sleep(RECONNECT_INTERVAL);
        assert_eq!(store.sequences().expect("sequences"), vec![(realm.id, 0)]);

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
                last_attempt: None,
                last_failure: String::new(),
            },
            names: Names {
                channel: "presence_x".to_owned(),
                token: "0".to_owned(),
            },
            in_batch: false,
            listeners: Vec::new(),
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
