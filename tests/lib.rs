//! Helpers for the end-to-end tests: a real server on `127.0.0.1:0` over a
//! real store (SQLite in a temporary directory, or PostgreSQL in a schema of
//! its own), a controllable clock, and a small HTTP client that returns
//! status, headers and JSON. Several servers on one PostgreSQL schema are
//! several nodes.
//!
//! Every JSON body received goes through [`contract::check`], which holds
//! it to the committed OpenAPI spec.
//!
//! Users are created the way an operator creates them, through the admin
//! functions on a second connection to the same database, and the helpers
//! wait until the running server has noticed them.
//!
//! Event queues and presence streams have helpers too ([`TestServer::poll`],
//! [`sse::EventStream`]); every wait they do is bounded, so a missing event
//! fails the test instead of hanging it.

pub mod contract;
pub mod raw;
pub mod sse;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use presence_server::clock::{Clock, ManualClock};
use presence_server::config::{Config, RateLimit};
use presence_server::server::Server;
use presence_server::service::Service;
use presence_server::store::Store;
use presence_server::store::postgres::PgStore;
use presence_server::store::sqlite::SqliteStore;
use presence_server::store::testing::ScratchSchema;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::sync::oneshot;

/// The time test servers start at (2027-01-15).
pub const START: i64 = 1_800_000_000;

/// The longest any helper waits for the server before failing the test.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A user's credentials.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's id.
    pub id: i64,
    /// The email.
    pub email: String,
    /// The API key.
    pub key: String,
}

/// An answer: status, headers, and the body parsed as JSON.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as JSON (`Value::Null` for an empty body, as after HEAD).
    pub body: Value,
}

impl Answer {
    /// Asserts a success answer and returns its body.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.body["result"], "success", "{}", self.body);
        assert_eq!(self.body["msg"], "", "{}", self.body);
        self.body
    }

    /// Asserts an error answer with this status, code and message.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str, msg: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.body["result"], "error", "{}", self.body);
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert_eq!(self.body["msg"], msg, "{}", self.body);
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How to start a test server.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's configuration (listen address and data dir are set by the harness).
    pub config: Config,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: Config {
                rate_limit: RateLimit::Off,
                ip_rate_limit: RateLimit::Off,
                directory_poll_ms: 20,
                // Short enough that a poll waiting for an event that never
                // comes ends well within a test's patience.
                event_heartbeat_ms: 5_000,
                ..Config::default()
            },
        }
    }
}

/// A running server with its own data directory and clock.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's clock: move it instead of sleeping.
    pub clock: Arc<ManualClock>,
    /// The configuration it runs with.
    pub config: Config,
    server: Arc<Server>,
    service: Arc<Service>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    backing: Backing,
    http: reqwest::Client,
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

    /// Creates a realm through the admin path.
    pub fn create_realm(&self, string_id: &str) {
        let now = self.clock.now_secs();
        self.with_admin(|store| presence_server::admin::create_realm(store, string_id, None, now))
            .expect("the realm is created");
    }

    /// Creates a user through the admin path and waits until the server knows it.
    pub async fn create_user(&self, realm: &str, email: &str, is_bot: bool) -> User {
        let now = self.clock.now_secs();
        let (row, key) = self
            .with_admin(|store| {
                presence_server::admin::create_user(
                    store,
                    realm,
                    email,
                    &format!("Name of {email}"),
                    is_bot,
                    now,
                )
            })
            .expect("the user is created");
        let user = User {
            id: row.id,
            email: email.to_owned(),
            key,
        };
        self.wait_until(|| {
            let user = user.clone();
            async move { self.get(&user, "/users/me").await.status == StatusCode::OK }
        })
        .await;
        user
    }

    /// Creates an embed key for pages on `origins` through the admin path,
    /// as the admin command does (returning once the server has it); returns
    /// the key.
    pub async fn create_embed_key(&self, realm: &str, name: &str, origins: &[&str]) -> String {
        let now = self.clock.now_secs();
        let origins: Vec<String> = origins.iter().map(|o| (*o).to_owned()).collect();
        let (_, key) = self
            .admin_change(|store| {
                presence_server::admin::create_embed_key(store, realm, name, &origins, now)
            })
            .expect("the embed key is created");
        key
    }

    /// `GET path` as a page would send it: the embed key as a Bearer token,
    /// and `origin` as the page's `Origin`.
    pub async fn page_get(&self, key: &str, path: &str, origin: Option<&str>) -> Answer {
        let mut request = self.http.get(self.url(path)).bearer_auth(key);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        self.send(request).await
    }

    /// Runs an admin change, then waits as the admin command does until
    /// every running node has installed it.
    pub fn admin_change<T: Send>(&self, f: impl FnOnce(&mut dyn Store) -> T + Send) -> T {
        let clock = self.clock.clone();
        self.with_admin(|store| {
            let out = f(store);
            let lagging = presence_server::admin::wait_until_applied(
                store,
                || clock.now_secs(),
                presence_server::admin::APPLY_WAIT,
            )
            .expect("the nodes' reports are readable");
            assert!(
                lagging.is_empty(),
                "nodes did not apply the change: {lagging:?}"
            );
            out
        })
    }

    /// Creates a realm and `n` users in it named `user{i}@{realm}.test`.
    pub async fn realm_with_users(&self, realm: &str, n: usize) -> Vec<User> {
        self.create_realm(realm);
        let mut users = Vec::new();
        for i in 0..n {
            users.push(
                self.create_user(realm, &format!("user{i}@{realm}.test"), false)
                    .await,
            );
        }
        users
    }

    /// Polls `check` until it is true, failing the test after five seconds.
    pub async fn wait_until<F, Fut>(&self, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !check().await {
            assert!(Instant::now() < deadline, "condition not met within 5 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The URL of an API path (`/users/me` becomes `{base}/api/v1/users/me`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.base, path)
    }

    /// Sends a request and reads the answer, holding its body to the spec.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let (client, request) = request.build_split();
        let request = request.expect("a valid request");
        let method = request.method().as_str().to_owned();
        let path = request.url().path().to_owned();
        let response = client
            .execute(request)
            .await
            .expect("the request is answered");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        if !bytes.is_empty() {
            assert_eq!(
                headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/json"),
                "every body is JSON"
            );
        }
        if !body.is_null() {
            contract::check(&method, &path, status.as_u16(), &body);
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A request builder with the user's Basic credentials.
    pub fn request(
        &self,
        method: reqwest::Method,
        user: &User,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .basic_auth(&user.email, Some(&user.key))
    }

    /// `GET path` as `user`.
    pub async fn get(&self, user: &User, path: &str) -> Answer {
        self.send(self.request(reqwest::Method::GET, user, path))
            .await
    }

    /// `POST path` as `user` with a form body.
    pub async fn post(&self, user: &User, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(self.request(reqwest::Method::POST, user, path).form(form))
            .await
    }

    /// `PATCH path` as `user` with a form body.
    pub async fn patch(&self, user: &User, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(self.request(reqwest::Method::PATCH, user, path).form(form))
            .await
    }

    /// `DELETE path` as `user` with a form body.
    pub async fn delete(&self, user: &User, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(self.request(reqwest::Method::DELETE, user, path).form(form))
            .await
    }

    /// Reports presence from a named client and checks that it succeeded.
    pub async fn report(&self, user: &User, client: &str, status: &str) {
        self.post(
            user,
            "/users/me/presence",
            &[
                ("status", status),
                ("client", client),
                ("ping_only", "true"),
            ],
        )
        .await
        .ok();
    }

    /// The single-user GET's `presence` object for `target` (id or email).
    pub async fn presence_of(&self, reader: &User, target: &str) -> Value {
        self.get(reader, &format!("/users/{target}/presence"))
            .await
            .ok()["presence"]
            .take()
    }

    /// `POST /users/me/presence` with `last_update_id` (and idle status from a
    /// reader's own client), returning the body.
    pub async fn incremental(&self, reader: &User, last_update_id: i64) -> Value {
        let id = last_update_id.to_string();
        self.post(
            reader,
            "/users/me/presence",
            &[
                ("status", "idle"),
                ("client", "reader"),
                ("last_update_id", &id),
            ],
        )
        .await
        .ok()
    }
}

impl TestServer {
    /// `POST /register` as `user`; the success body.
    pub async fn register(&self, user: &User, form: &[(&str, &str)]) -> Value {
        self.post(user, "/register", form).await.ok()
    }

    /// `GET /events` as `user`.
    pub async fn poll(
        &self,
        user: &User,
        queue_id: &str,
        last_event_id: i64,
        dont_block: bool,
    ) -> Answer {
        let last = last_event_id.to_string();
        let dont_block = if dont_block { "true" } else { "false" };
        let request = self.request(reqwest::Method::GET, user, "/events").query(&[
            ("queue_id", queue_id),
            ("last_event_id", &last),
            ("dont_block", dont_block),
        ]);
        tokio::time::timeout(PATIENCE, self.send(request))
            .await
            .expect("GET /events answers in time")
    }

    /// Long-polls a queue until it holds `presence` events after `*last`,
    /// acknowledging heartbeats on the way; returns those events and moves
    /// `*last` past them.
    pub async fn next_presence(&self, user: &User, queue_id: &str, last: &mut i64) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(
                Instant::now() < deadline,
                "no presence event within {PATIENCE:?}"
            );
            let body = self.poll(user, queue_id, *last, false).await.ok();
            let events = body["events"].as_array().cloned().unwrap_or_default();
            for event in &events {
                *last = (*last).max(event["id"].as_i64().expect("an event id"));
            }
            let presence: Vec<Value> = events
                .into_iter()
                .filter(|e| e["type"] == "presence")
                .collect();
            if !presence.is_empty() {
                return presence;
            }
        }
    }

    /// Waits until `n` event queues have a reader waiting on them (a
    /// long-poll of `GET /events`, or a stream): each such request has
    /// reached its queue, and what happens to the queue now reaches it.
    pub async fn until_waiting(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let waiting = self.service.waiting_readers();
            if waiting >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{waiting} of {n} queues have a reader waiting after {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Creates a user of `realm` with presence off, for
    /// [`TestServer::assert_no_news`]; turning presence off before any
    /// report makes no event.
    pub async fn marker(&self, realm: &str) -> User {
        let marker = self
            .create_user(realm, &format!("marker@{realm}.test"), false)
            .await;
        self.patch(&marker, "/settings", &[("presence_enabled", "false")])
            .await
            .ok();
        marker
    }

    /// Asserts that a queue of `marker`'s realm gets no presence event
    /// after `*last`, neither from what was acknowledged so far nor from
    /// anything due by the server's clock as it is, and moves `*last` past
    /// what it read.
    ///
    /// Instead of waiting a while and finding nothing, it makes two events
    /// it knows and checks that they are the first to come: `marker` (see
    /// [`TestServer::marker`]) turns presence on, then off again, which
    /// leaves it with nothing that ages. An acknowledged change has its
    /// event queued already. The writer takes the second change in a turn
    /// of its loop after the one that took the first, and ends every turn
    /// by publishing the idle and offline transitions due by the clock; so
    /// an event due now would come before the second marker event.
    pub async fn assert_no_news(
        &self,
        reader: &User,
        queue_id: &str,
        last: &mut i64,
        marker: &User,
    ) {
        for on in ["true", "false"] {
            self.patch(
                marker,
                "/settings",
                &[("presence_enabled", on), ("client", "marker")],
            )
            .await
            .ok();
        }
        let mut markers = 0;
        while markers < 2 {
            for event in self.next_presence(reader, queue_id, last).await {
                assert!(
                    event_is_about(&event, marker.id),
                    "an event came before the marker's: {event}"
                );
                markers += 1;
            }
        }
        assert_eq!(markers, 2, "the marker's two events, and no more");
    }

    /// Opens `GET /presence/stream` as `user`, resuming after
    /// `last_event_id` if given.
    pub async fn open_stream(
        &self,
        user: &User,
        query: &[(&str, &str)],
        last_event_id: Option<&str>,
    ) -> sse::EventStream {
        let mut request = self
            .request(reqwest::Method::GET, user, "/presence/stream")
            .query(query);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the stream opens in time")
            .expect("the stream opens");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        sse::EventStream::new(response)
    }
}

impl TestServer {
    /// Opens the presence stream as the web components do: with an embed
    /// key, the modern format and modern events.
    pub async fn open_page_stream(&self, key: &str) -> sse::EventStream {
        let request = self
            .http
            .get(self.url("/presence/stream"))
            .bearer_auth(key)
            .query(&[
                ("slim_presence", "true"),
                (
                    "client_capabilities",
                    r#"{"simplified_presence_events":true}"#,
                ),
            ]);
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the stream opens in time")
            .expect("the stream opens");
        assert_eq!(response.status(), StatusCode::OK);
        sse::EventStream::new(response)
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
    use presence_server::store::{Dump, PresenceRow, RealmRow, UserRow};
    let mut dump = Dump {
        realms: vec![RealmRow {
            id: 1,
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
            id,
            realm_id: 1,
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
            user_id: id,
            client: "website".to_owned(),
            last_connected_time: now,
            last_active_time: Some(now),
            update_id: id,
        });
        created.push(user);
    }
    backing.open().import(&dump).expect("the realm imports");
    created
}

/// Whether a presence event, in any of its formats, is about this user.
pub fn event_is_about(event: &Value, user_id: i64) -> bool {
    event["user_id"] == user_id || event["presences"].get(user_id.to_string()).is_some()
}

/// The path of a file next to the test sources.
pub fn source_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Whether a store holds a user with this email in this realm.
pub fn store_has_user(store: &mut dyn Store, realm: &str, email: &str) -> bool {
    store
        .list_users(realm)
        .map(|users| users.iter().any(|u| u.email == email))
        .unwrap_or(false)
}
