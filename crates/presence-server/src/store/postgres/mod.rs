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
//!
//! This module holds [`PgStore`] and its [`Store`] methods; the rest is in
//! parts of one job each: the schema and its migrations (`schema`), the
//! connection and its transactions (`connection`), reading rows (`rows`),
//! batches, versions and notifications (`batch`), export and import
//! (`transfer`), the listener thread (`listener`), and the admin commands'
//! changes to realms, users (`directory`) and embed keys (`embed`).

mod batch;
mod connection;
mod directory;
mod embed;
mod listener;
mod rows;
mod schema;
mod status;
mod transfer;

use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;
use std::time::Duration;

use ::postgres::Client;
use ::postgres::error::SqlState;

use crate::ids::{RealmId, UpdateId, UserId};

use super::published::{Inbox, Published};
use super::{
    DeviceKind, DirectoryChanges, Dump, Durability, EmbedKeyRow, EmbedKeyUse, Loaded, Mutation,
    NewEmbedKey, NewUser, NodeRow, Notice, PresenceChanges, RealmRow, RealmSummary, Sequence,
    Store, StoreError, UserChange, UserRow, email_key,
};
use batch::{
    DIRECTORY_VERSION, FLUSH, begin_locking_sequences, commit_sql, next_directory_version,
    notifications, notify, publishable, read_directory_version, write_batch,
};
use connection::{Connection, Mode, Prepared, in_transaction};
use rows::{
    PRESENCE_COLUMNS, REALM_COLUMNS, USER_COLUMNS, presence_row, realm_id, realm_row, stream,
    user_id, user_row,
};
use schema::{channel_name, migrate};

pub(super) use connection::{configure, connect};
pub(super) use schema::quote_ident;

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
    /// The open batch's realms and their last update ids as it locked
    /// them: under the lock they cannot move, so a catch-up read inside
    /// the batch need not read them again.
    locked: Vec<(RealmId, UpdateId)>,
    /// How batches commit: with `relaxed`, each batch's transaction sets
    /// `synchronous_commit = off` for itself alone.
    durability: Durability,
    /// The listener threads started by `subscribe` (kept so tests can see
    /// them end).
    listeners: Vec<JoinHandle<()>>,
    /// The batches other nodes published, as the listener received them.
    inbox: Arc<Inbox>,
}

/// What this store's notifications are sent on and carry.
struct Names {
    /// `presence_` and the schema's name: nodes of one installation share it.
    channel: String,
    /// A random token naming this store, so its listener can skip the
    /// notifications of its own commits.
    token: String,
    /// `SELECT pg_notify(channel, token)` as plain text, so that a batch
    /// sends it with its `COMMIT` in one round trip.
    notify_sql: String,
}

impl Names {
    /// The names of a store on `schema`, with a new token.
    fn new(schema: &str) -> Names {
        let channel = channel_name(schema);
        let token = format!("{:016x}", rand::random::<u64>());
        let notify_sql = format!(
            "SELECT pg_notify({}, {})",
            sql_literal(&channel),
            sql_literal(&token)
        );
        Names {
            channel,
            token,
            notify_sql,
        }
    }
}

/// `text` as an SQL string literal (standard-conforming: only `'` is
/// doubled).
fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
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
            conn: Connection::opened(config, client),
            names: Names::new(&schema),
            in_batch: false,
            locked: Vec::new(),
            durability: Durability::Full,
            listeners: Vec::new(),
            inbox: Arc::default(),
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

    /// [`PgStore::run`], with the statements prepared on the connection.
    fn run_prepared<T>(
        &mut self,
        f: impl FnOnce(&mut Client, &mut Prepared, &Names) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (client, prepared) = self.conn.get_prepared(&mut self.in_batch)?;
        let out = f(client, prepared, &self.names);
        if let Err(e) = &out {
            // A prepared statement the database no longer takes (its tables
            // changed under it, say) must not fail every later call: the
            // statements are prepared again after any failure.
            prepared.clear();
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

impl PgStore {
    /// Writes and commits the open batch; with the realm of each mutation,
    /// it also publishes what it wrote (see [`notifications`]).
    fn commit(
        &mut self,
        batch: &[Mutation],
        realms: Option<&[RealmId]>,
        sequences: &[Sequence],
    ) -> Result<(), StoreError> {
        if !self.in_batch {
            return Err(StoreError::NoBatch);
        }
        let commit = commit_sql(self.durability, batch.iter().all(Mutation::is_presence));
        let published =
            realms.and_then(|realms| publishable(batch, realms, sequences, &self.locked));
        let out = self.run_prepared(|c, prepared, names| {
            let written = write_batch(c, prepared, batch, sequences).and_then(|pending| {
                // One round trip ends the batch: what is left to write, the
                // notifications (at commit, if anything was written), the
                // durability of this transaction alone (admin writes keep
                // waiting for the disk), and the commit.
                let mut end = String::new();
                if let Some(pending) = pending {
                    end.push_str(&pending);
                    end.push_str(&notifications(names, published.as_deref()));
                }
                end.push_str(commit);
                Ok(c.batch_execute(&end)?)
            });
            if written.is_err() {
                let _ = c.batch_execute("ROLLBACK");
            }
            written
        });
        self.in_batch = false;
        out
    }
}

/// The users of a realm whose records changed after `since`, with all
/// their records, and the realm's last update id (read here unless the
/// caller's batch holds it, `last`), in the caller's transaction. The
/// changed users are found by the realm's update-id index and their records
/// by the primary key, so the read costs what changed, not the realm's
/// size.
fn read_presence_changes(
    c: &mut Client,
    prepared: &mut Prepared,
    realm_id: RealmId,
    since: UpdateId,
    last: Option<UpdateId>,
) -> Result<PresenceChanges, StoreError> {
    static CHANGED_USERS_RECORDS: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {PRESENCE_COLUMNS} FROM client_presence p \
             WHERE p.user_id = ANY(ARRAY(SELECT DISTINCT q.user_id FROM client_presence q \
              WHERE q.realm_id = $1 AND q.update_id > $2)) \
             ORDER BY p.user_id, p.client"
        )
    });
    let last_update_id = match last {
        Some(last) => last,
        None => {
            let sequence = prepared.get(
                c,
                "SELECT last_update_id FROM realm_sequences WHERE realm_id = $1",
            )?;
            match c.query_opt(&sequence, &[&realm_id])? {
                Some(row) => row.try_get(0)?,
                None => UpdateId::default(),
            }
        }
    };
    let records = prepared.get(c, CHANGED_USERS_RECORDS.as_str())?;
    let rows = c.query(&records, &[&realm_id, &since])?;
    let records = rows
        .iter()
        .map(presence_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PresenceChanges::from_records(last_update_id, records))
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
                    sink(Loaded::Realm {
                        realm: realm_row(r)?,
                        users: usize::try_from(users).unwrap_or(0),
                        last_update_id: r.try_get(7)?,
                    });
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
                    sink(Loaded::Presence {
                        record: presence_row(r)?,
                        realm_id: r.try_get(5)?,
                    });
                    Ok(())
                },
            )?;
            for key in embed::all(c)? {
                sink(Loaded::EmbedKey(key));
            }
            for (row, realm_id) in status::loaded(c)? {
                sink(Loaded::Status { row, realm_id });
            }
            Ok(version)
        })
    }

    fn begin_batch(&mut self, realms: &[RealmId]) -> Result<Vec<UpdateId>, StoreError> {
        // A batch left open by a caller's mistake would hold its locks:
        // end it rather than nest.
        if self.in_batch {
            self.abort_batch();
        }
        let out = self.run_prepared(|c, prepared, _| begin_locking_sequences(c, prepared, realms));
        self.in_batch = out.is_ok();
        self.locked = match &out {
            Ok(ids) => realms.iter().copied().zip(ids.iter().copied()).collect(),
            Err(_) => Vec::new(),
        };
        out
    }

    fn commit_batch(
        &mut self,
        batch: &[Mutation],
        sequences: &[Sequence],
    ) -> Result<(), StoreError> {
        self.commit(batch, None, sequences)
    }

    fn commit_batch_in_realms(
        &mut self,
        batch: &[Mutation],
        realms: &[RealmId],
        sequences: &[Sequence],
    ) -> Result<(), StoreError> {
        self.commit(batch, Some(realms), sequences)
    }

    fn published(
        &mut self,
        realm_id: RealmId,
        since: UpdateId,
        until: UpdateId,
        wait: Duration,
    ) -> Option<Vec<Published>> {
        // Without a listener nothing arrives: waiting would be in vain.
        if self.listeners.is_empty() {
            return None;
        }
        self.inbox.take(realm_id, since, until, wait)
    }

    fn published_realms(&mut self) -> Vec<RealmId> {
        self.inbox.realms()
    }

    fn published_following(
        &mut self,
        realm_id: RealmId,
        since: UpdateId,
    ) -> Option<Vec<Published>> {
        self.inbox.take_following(realm_id, since)
    }

    fn wait_durable(&mut self) -> Result<(), StoreError> {
        if self.durability == Durability::Relaxed {
            return Ok(());
        }
        self.run(|c, _| Ok(c.batch_execute(FLUSH)?))
    }

    fn set_durability(&mut self, durability: Durability) -> Result<(), StoreError> {
        self.durability = durability;
        Ok(())
    }

    fn abort_batch(&mut self) {
        if !self.in_batch {
            return;
        }
        let _ = self.run(|c, _| Ok(c.batch_execute("ROLLBACK")?));
        self.in_batch = false;
    }

    fn sequences(&mut self) -> Result<Vec<Sequence>, StoreError> {
        self.run_prepared(|c, prepared, _| {
            let statement = prepared.get(
                c,
                "SELECT realm_id, last_update_id FROM realm_sequences ORDER BY realm_id",
            )?;
            c.query(&statement, &[])?
                .iter()
                .map(|r| {
                    Ok(Sequence {
                        realm_id: r.try_get(0)?,
                        last_update_id: r.try_get(1)?,
                    })
                })
                .collect()
        })
    }

    fn sequences_total(&mut self) -> Result<i64, StoreError> {
        // Looked at by every catch-up, as the directory version is: both
        // prepared, a round trip each.
        self.run_prepared(|c, prepared, _| {
            let statement = prepared.get(
                c,
                "SELECT COALESCE(SUM(last_update_id), 0)::bigint FROM realm_sequences",
            )?;
            Ok(c.query_one(&statement, &[])?.try_get(0)?)
        })
    }

    fn presence_changes(
        &mut self,
        realm_id: RealmId,
        since: UpdateId,
    ) -> Result<PresenceChanges, StoreError> {
        // The sequence value and the records must come from one snapshot:
        // a record newer than the value returned would be skipped by a
        // reader that resumes from that value. Inside a batch (a node
        // catching up under its realms' locks) the batch is that snapshot.
        if self.in_batch {
            let locked = self.locked.iter().find(|(id, _)| *id == realm_id);
            let last = locked.map(|&(_, last)| last);
            return self.run_prepared(|c, prepared, _| {
                read_presence_changes(c, prepared, realm_id, since, last)
            });
        }
        self.run_prepared(|c, prepared, _| {
            in_transaction(c, Mode::Snapshot, |c| {
                read_presence_changes(c, prepared, realm_id, since, None)
            })
        })
    }

    fn directory_version(&mut self) -> Result<i64, StoreError> {
        self.run_prepared(|c, prepared, _| {
            let statement = prepared.get(c, DIRECTORY_VERSION)?;
            Ok(c.query_one(&statement, &[])?.try_get(0)?)
        })
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
            let statuses = status::changed_since(c, since)?;
            Ok(DirectoryChanges {
                realms,
                users,
                embed_keys,
                deleted_users,
                statuses,
                version,
            })
        })
    }

    fn has_device(
        &mut self,
        user_id: UserId,
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
            let id: RealmId = row.try_get(0)?;
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
        self.transaction(Mode::BulkSnapshot, |c, _| transfer::export_dump(c))
    }

    fn import(&mut self, dump: &Dump) -> Result<(), StoreError> {
        self.transaction(Mode::BulkWrite, |c, names| {
            transfer::import_dump(c, names, dump)
        })
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

    fn record_embed_key_use(&mut self, uses: &[EmbedKeyUse]) -> Result<(), StoreError> {
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
        let inbox = Arc::clone(&self.inbox);
        let handle = listener::start(self.conn.config().clone(), &self.names, on_change, inbox)?;
        self.listeners.push(handle);
        Ok(())
    }
}
