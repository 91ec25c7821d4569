//! Test support, public so that the end-to-end tests, the binary's tests and
//! the benchmark can use it: a PostgreSQL schema of a test's own, and the
//! database the PostgreSQL tests run against. Nothing here serves a running
//! server.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;
use super::postgres::{configure, connect, quote_ident};

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
        with_client(base_url, |client| {
            Ok(client.batch_execute(&format!("CREATE SCHEMA {}", quote_ident(&name)))?)
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

    /// `base_url` with the schema as its search path, for
    /// [`PgStore::open`](super::postgres::PgStore::open).
    pub fn url(&self) -> String {
        with_search_path(&self.base_url, &self.name)
    }

    /// The process ids of the database's backends serving connections
    /// opened with [`ScratchSchema::url`] (they carry the schema's name as
    /// their `application_name`), e.g. to read what they cost in CPU.
    pub fn backends(&self) -> Result<Vec<i32>, StoreError> {
        with_client(&self.base_url, |client| {
            let rows = client.query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                &[&self.name],
            )?;
            Ok(rows.iter().map(|r| r.get::<_, i32>(0)).collect())
        })
    }
}

/// Runs `f` on a new connection to `base_url`, on a thread of its own: the
/// blocking client must not run on an async worker, and tests and the
/// benchmark call this from async code.
fn with_client<T: Send>(
    base_url: &str,
    f: impl FnOnce(&mut ::postgres::Client) -> Result<T, StoreError> + Send,
) -> Result<T, StoreError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| f(&mut connect(&configure(base_url)?)?))
            .join()
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the database thread panicked".to_owned(),
                ))
            })
    })
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        // Best effort: a schema left behind costs disk space, not
        // correctness, since names never repeat.
        let _ = with_client(&self.base_url, |client| {
            let name = quote_ident(&self.name);
            Ok(client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))?)
        });
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
/// capture; under CI (`CI` set) they must not skip, so this panics instead.
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
pub(crate) use fixtures::{
    admin, hash, imported_realm, imported_user, load_all, new_user, put, record, scratch, sequence,
    two_nodes,
};

/// What the store's unit tests share.
#[cfg(test)]
mod fixtures {
    use super::{ScratchSchema, configure, connect, test_database_url};
    use crate::ids::{RealmId, UpdateId, UserId};
    use crate::store::postgres::PgStore;
    use crate::store::{
        DeviceKind, DeviceRow, Dump, Loaded, Mutation, NewUser, PresenceRow, RealmRow, Sequence,
        Store, UserRow,
    };

    /// A scratch schema and its URL, or `None` when the PostgreSQL tests skip.
    pub fn scratch() -> Option<(ScratchSchema, String)> {
        let base = test_database_url()?;
        let schema = ScratchSchema::create(&base).expect("create a scratch schema");
        let url = schema.url();
        Some((schema, url))
    }

    /// Two stores on the database at `url`, as two nodes have, the first
    /// having made the realm `acme` with one user.
    pub fn two_nodes(url: &str) -> (PgStore, PgStore, RealmRow, UserRow) {
        let mut a = PgStore::open(url).expect("open a");
        let realm = a.create_realm("acme", "Acme", 0).expect("realm");
        let user = a.create_user(&new_user("acme", "a@x", 1)).expect("user");
        let b = PgStore::open(url).expect("open b");
        (a, b, realm, user)
    }

    /// A connection of its own to the database at `url`, for a test to look at
    /// the store from outside or to cut other connections.
    pub fn admin(url: &str) -> ::postgres::Client {
        connect(&configure(url).expect("config")).expect("connect")
    }

    /// An API key hash that differs for every `n`.
    pub fn hash(n: u64) -> [u8; 32] {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&n.to_le_bytes());
        h
    }

    /// A new user of `realm` whose key hash is [`hash`]`(n)`.
    pub fn new_user<'a>(realm: &'a str, email: &'a str, n: u64) -> NewUser<'a> {
        NewUser {
            realm,
            email,
            full_name: "Someone",
            is_bot: false,
            api_key_hash: hash(n),
            date_joined: 1_700_000_000,
        }
    }

    /// A user of realm 10 as a dump holds it, with key hash [`hash`]`(n)`.
    pub fn imported_user(id: i64, email: &str, n: u64) -> UserRow {
        UserRow {
            id: UserId(id),
            realm_id: RealmId(10),
            email: email.to_owned(),
            full_name: "Imported".to_owned(),
            is_bot: false,
            is_active: true,
            date_joined: 5,
            api_key_hash: hash(n),
            presence_enabled: true,
            enable_offline_push_notifications: false,
            push_devices: 0,
        }
    }

    /// A dump of one deactivated realm, `acme` (id 10), with users 100 and
    /// 101, a presence record each (update ids 41 and 42) and a device of
    /// 101's (which its row does not count).
    pub fn imported_realm() -> Dump {
        Dump {
            realms: vec![RealmRow {
                id: RealmId(10),
                string_id: "acme".to_owned(),
                name: "Acme".to_owned(),
                presence_disabled: false,
                deactivated: true,
                date_created: 1,
            }],
            users: vec![imported_user(100, "a@x", 1), imported_user(101, "b@x", 2)],
            embed_keys: Vec::new(),
            statuses: Vec::new(),
            presence: vec![
                PresenceRow {
                    user_id: UserId(100),
                    client: "web".to_owned(),
                    last_connected_time: 7,
                    last_active_time: None,
                    update_id: UpdateId(41),
                },
                PresenceRow {
                    user_id: UserId(101),
                    client: "web".to_owned(),
                    last_connected_time: 8,
                    last_active_time: Some(8),
                    update_id: UpdateId(42),
                },
            ],
            devices: vec![DeviceRow {
                user_id: UserId(101),
                kind: DeviceKind::Fcm,
                token: "t".to_owned(),
                appid: None,
            }],
        }
    }

    /// A presence record of `user_id` on `client`, taking `update_id`.
    pub fn record(user_id: UserId, client: &str, update_id: i64) -> PresenceRow {
        PresenceRow {
            user_id,
            client: client.to_owned(),
            last_connected_time: 1_700_000_000 + update_id,
            last_active_time: Some(1_700_000_000),
            update_id: UpdateId(update_id),
        }
    }

    /// The mutation that writes [`record`]`(user_id, client, update_id)`.
    pub fn put(user_id: UserId, client: &str, update_id: i64) -> Mutation {
        Mutation::PutPresence(record(user_id, client, update_id))
    }

    /// A realm's sequence standing at `last`.
    pub fn sequence(realm_id: RealmId, last: i64) -> Sequence {
        Sequence {
            realm_id,
            last_update_id: UpdateId(last),
        }
    }

    /// Everything a load hands over, in its order, and the version it returns.
    pub fn load_all(store: &mut dyn Store) -> (i64, Vec<Loaded>) {
        let mut items = Vec::new();
        let version = store.load(&mut |item| items.push(item)).expect("load");
        (version, items)
    }
}

#[cfg(test)]
mod tests {
    use ::postgres::Config;

    use super::*;

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
    fn a_schema_names_the_backends_of_its_connections() {
        let Some((schema, url)) = scratch() else {
            return;
        };
        assert_eq!(schema.backends().expect("none yet"), Vec::<i32>::new());
        let mut client = admin(&url);
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .expect("pid")
            .get(0);
        assert_eq!(schema.backends().expect("backends"), vec![pid]);
        drop(client);
    }
}
