//! Test servers: started on a fresh store (SQLite in a temporary
//! directory, or a PostgreSQL schema of their own) through the same
//! `Server` the binary runs, restarted on the same store, stopped with
//! their writer drained.

use std::path::Path;
use std::sync::Arc;

use presence_server::clock::ManualClock;
use presence_server::config::Config;
use presence_server::server::Server;
use presence_server::service::Service;
use presence_server::store::Store;
use presence_server::store::postgres::PgStore;
use presence_server::store::sqlite::SqliteStore;
use presence_server::store::testing::ScratchSchema;
use tokio::sync::oneshot;

use crate::{Options, PATIENCE, START, User};

/// A running server with its own data directory and clock.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's clock: move it instead of sleeping.
    pub clock: Arc<ManualClock>,
    /// The configuration it runs with.
    pub config: Config,
    pub(crate) server: Arc<Server>,
    pub(crate) service: Arc<Service>,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) task: Option<tokio::task::JoinHandle<()>>,
    pub(crate) backing: Backing,
    pub(crate) http: reqwest::Client,
}

/// Where a test server keeps its data.
#[derive(Clone)]
pub enum Backing {
    /// An SQLite database in a temporary directory.
    Sqlite(Arc<tempfile::TempDir>),
    /// A PostgreSQL schema of the test's own, dropped with the last holder.
    Postgres(Arc<ScratchSchema>),
}

impl Backing {
    /// A new SQLite directory.
    pub fn sqlite() -> Backing {
        Backing::Sqlite(Arc::new(
            tempfile::tempdir().expect("a temporary directory"),
        ))
    }

    /// A new PostgreSQL schema, or `None` (said loudly) when
    /// `PRESENCE_TEST_DATABASE_URL` is not set; under `CI` that fails instead.
    pub fn postgres() -> Option<Backing> {
        let base = presence_server::store::testing::test_database_url()?;
        let schema = ScratchSchema::create(&base).expect("a scratch schema");
        Some(Backing::Postgres(Arc::new(schema)))
    }

    /// A new connection to the store, as the admin command has.
    pub fn open(&self) -> Box<dyn Store> {
        match self {
            Backing::Sqlite(dir) => {
                Box::new(SqliteStore::open(dir.path()).expect("the store opens"))
            }
            Backing::Postgres(schema) => {
                Box::new(PgStore::open(&schema.url()).expect("the store opens"))
            }
        }
    }
}

impl TestServer {
    /// Starts a server with default test options.
    pub async fn start() -> TestServer {
        Self::start_with(Options::default()).await
    }

    /// Starts a server with these options on a new data directory.
    pub async fn start_with(options: Options) -> TestServer {
        let clock = Arc::new(ManualClock::new(START));
        Self::start_on(Backing::sqlite(), clock, options.config).await
    }

    /// Starts a server (a node) on `backing` with this clock: servers
    /// started on one PostgreSQL backing share its data. A node on
    /// PostgreSQL connects through `config.database_url` if it is set (a
    /// relay to the same database), else straight to the backing's schema.
    pub async fn start_on(backing: Backing, clock: Arc<ManualClock>, config: Config) -> TestServer {
        Self::start_wrapped(backing, clock, config, |store| store).await
    }

    /// Starts a server as [`TestServer::start_on`] does, its store passed
    /// through `wrap` first: a test wraps the real store in one of its own
    /// to make a chosen call fail or panic.
    pub async fn start_wrapped(
        backing: Backing,
        clock: Arc<ManualClock>,
        mut config: Config,
        wrap: impl FnOnce(Box<dyn Store>) -> Box<dyn Store> + Send + 'static,
    ) -> TestServer {
        match &backing {
            Backing::Sqlite(dir) => config.data_dir = dir.path().to_path_buf(),
            // A node may be given a way of its own to the same database.
            Backing::Postgres(schema) => {
                config.database_url.get_or_insert_with(|| schema.url());
            }
        }
        let (opening, database_url) = (backing.clone(), config.database_url.clone());
        let server = Server::load(&config, clock.clone(), move || {
            let store: Box<dyn Store> = match (&opening, &database_url) {
                (Backing::Postgres(_), Some(url)) => Box::new(PgStore::open(url)?),
                _ => opening.open(),
            };
            Ok(wrap(store))
        })
        .await
        .expect("the server starts");
        let server = Arc::new(server);
        let service = server.service().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = server.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        TestServer {
            base,
            clock,
            config,
            server,
            service,
            stop: Some(stop),
            task: Some(task),
            backing,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the server (graceful shutdown, writer drained) and starts a new
    /// one on the same data directory, as a restart would.
    pub async fn restart(mut self) -> TestServer {
        self.shutdown().await;
        let (backing, clock, config) = (
            self.backing.clone(),
            self.clock.clone(),
            self.config.clone(),
        );
        drop(self);
        Self::start_on(backing, clock, config).await
    }

    /// Asks the server to shut down, as SIGTERM does, and returns at once:
    /// it goes on serving through its shutdown delay, then drains.
    /// [`TestServer::shutdown`] waits for the rest.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops serving and closes the store.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server task ends cleanly");
        }
        assert!(
            self.server.close(PATIENCE).await,
            "the writer commits what it holds in time"
        );
    }

    /// The data directory (of an SQLite-backed server).
    pub fn data_dir(&self) -> &Path {
        match &self.backing {
            Backing::Sqlite(dir) => dir.path(),
            Backing::Postgres(_) => panic!("a PostgreSQL-backed server has no data directory"),
        }
    }

    /// The running service, for tests that look at what it shares between
    /// requests (answers served from memory), which no HTTP answer shows.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Where the server keeps its data (start another node on it).
    pub fn backing(&self) -> Backing {
        self.backing.clone()
    }

    /// A second connection to the server's store, as the admin command has
    /// (SQLite only: a PostgreSQL store must not be used on an async
    /// worker; use [`TestServer::with_admin`]).
    pub fn admin_store(&self) -> Box<dyn Store> {
        assert!(
            matches!(self.backing, Backing::Sqlite(_)),
            "use with_admin on PostgreSQL"
        );
        self.backing.open()
    }

    /// Runs `f` on a second connection to the server's store, as the admin
    /// command has, on a thread of its own (any store may block there).
    pub fn with_admin<T: Send>(&self, f: impl FnOnce(&mut dyn Store) -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| f(self.backing.open().as_mut()))
                .join()
                .expect("the admin work does not panic")
        })
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Imports a realm of `users` users into a new store before any server
/// runs on it, much faster than creating them one by one: realm id 1,
/// users `user{i}@{realm}.test` with known keys, each reported active from
/// `website` at `now`.
pub fn import_realm(backing: &Backing, realm: &str, users: usize, now: i64) -> Vec<User> {
    use presence_server::ids::{RealmId, UpdateId, UserId};
    use presence_server::store::{Dump, PresenceRow, RealmRow, UserRow};
    let mut dump = Dump {
        realms: vec![RealmRow {
            id: RealmId(1),
            string_id: realm.to_owned(),
            name: realm.to_owned(),
            presence_disabled: false,
            deactivated: false,
            date_created: now,
        }],
        ..Dump::default()
    };
    let mut created = Vec::with_capacity(users);
    for i in 1..=users {
        let id = i as i64;
        let user = User {
            id,
            email: format!("user{i}@{realm}.test"),
            key: format!("{i:0>32}"),
        };
        dump.users.push(UserRow {
            id: UserId(id),
            realm_id: RealmId(1),
            email: user.email.clone(),
            full_name: format!("User {i}"),
            is_bot: false,
            is_active: true,
            date_joined: now,
            api_key_hash: presence_server::keys::hash(&user.key),
            presence_enabled: true,
            enable_offline_push_notifications: true,
            push_devices: 0,
        });
        dump.presence.push(PresenceRow {
            user_id: UserId(id),
            client: "website".to_owned(),
            last_connected_time: now,
            last_active_time: Some(now),
            update_id: UpdateId(id),
        });
        created.push(user);
    }
    backing.open().import(&dump).expect("the realm imports");
    created
}
