//! A real presence server inside the test process, and the `presence`
//! binary run against it with a clean environment and its own HOME.
//!
//! The server's clock is a manual one set to the real time, because the
//! binary measures the single-user answer against the local clock; tests
//! move the server's clock to make reports look old instead of sleeping.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use presence_client::Client;
use presence_client::types::ReportedStatus;
use presence_server::clock::{Clock, ManualClock};
use presence_server::config::{Config, RateLimit};
use presence_server::server::Server;
use presence_server::store::sqlite::SqliteStore;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_presence");

/// An account on the test server.
#[derive(Debug, Clone)]
pub struct Account {
    /// The user id.
    pub id: i64,
    /// The email.
    pub email: String,
    /// The API key.
    pub key: String,
}

/// A server on `127.0.0.1:0` with a SQLite store in a temporary directory.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The port it listens on.
    pub port: u16,
    /// The server's clock.
    pub clock: Arc<ManualClock>,
    /// A scratch directory for HOME and config files (separate from the data).
    pub home: tempfile::TempDir,
    data: tempfile::TempDir,
    server: Arc<Server>,
    stop: Option<oneshot::Sender<()>>,
    // Last, so the server task is dropped after everything it uses.
    runtime: Runtime,
}

/// The real time in whole Unix seconds.
pub fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

impl TestServer {
    /// Starts a server whose clock shows the real time.
    pub fn start() -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let data = tempfile::tempdir().expect("a temporary directory");
        let home = tempfile::tempdir().expect("a temporary directory");
        let clock = Arc::new(ManualClock::new(real_now()));
        let config = Config {
            rate_limit: RateLimit::Off,
            ip_rate_limit: RateLimit::Off,
            directory_poll_ms: 20,
            data_dir: data.path().to_path_buf(),
            ..Config::default()
        };
        let path = data.path().to_path_buf();
        let server = runtime
            .block_on(Server::load(&config, clock.clone(), move || {
                Ok(Box::new(SqliteStore::open(&path)?))
            }))
            .expect("the server starts");
        let server = Arc::new(server);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("an address").port();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = server.clone();
        runtime.spawn(async move {
            serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        TestServer {
            base: format!("http://127.0.0.1:{port}"),
            port,
            clock,
            home,
            data,
            server,
            stop: Some(stop),
            runtime,
        }
    }

    /// Creates a realm through the admin path.
    pub fn create_realm(&self, string_id: &str) {
        let mut store = SqliteStore::open(self.data.path()).expect("the store opens");
        presence_server::admin::create_realm(&mut store, string_id, None, self.clock.now_secs())
            .expect("the realm is created");
    }

    /// Creates a user and waits until the running server knows it.
    pub fn create_user(&self, realm: &str, email: &str, full_name: &str, bot: bool) -> Account {
        let mut store = SqliteStore::open(self.data.path()).expect("the store opens");
        let (row, key) = presence_server::admin::create_user(
            &mut store,
            realm,
            email,
            full_name,
            bot,
            self.clock.now_secs(),
        )
        .expect("the user is created");
        let account = Account {
            id: row.id.0,
            email: email.to_owned(),
            key,
        };
        let client = self.client(&account, "setup");
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.runtime.block_on(client.own_user()).is_err() {
            assert!(Instant::now() < deadline, "the server never saw {email}");
            std::thread::sleep(Duration::from_millis(10));
        }
        account
    }

    /// A library client for `account`, reporting under `client_name`.
    pub fn client(&self, account: &Account, client_name: &str) -> Client {
        Client::builder(&self.base, &account.email, &account.key)
            .client_name(client_name)
            .build()
            .expect("a client")
    }

    /// Reports presence for `account` from `client_name` at the server's current time.
    pub fn report(&self, account: &Account, client_name: &str, status: ReportedStatus) {
        self.runtime
            .block_on(self.client(account, client_name).ping(status))
            .expect("the report is accepted");
    }

    /// Reports presence as if it happened `secs` seconds ago.
    pub fn report_ago(
        &self,
        account: &Account,
        client_name: &str,
        status: ReportedStatus,
        secs: i64,
    ) {
        self.clock.advance(-secs);
        self.report(account, client_name, status);
        self.clock.advance(secs);
    }

    /// Registers an Android device for `account` (which makes it pushable).
    pub fn add_device(&self, account: &Account) {
        let params = presence_client::types::endpoints::push_devices::AddAndroidTokenParams {
            token: format!("token-{}", account.id),
        };
        self.runtime
            .block_on(self.client(account, "setup").add_android_token(&params))
            .expect("the device is registered");
    }

    /// Writes `~/.zuliprc` in the test HOME and returns its path.
    pub fn write_home_zuliprc(&self, text: &str) -> PathBuf {
        let path = self.home.path().join(".zuliprc");
        std::fs::write(&path, text).expect("the file is written");
        path
    }

    /// A zuliprc exactly as Zulip's "Download zuliprc" gives it and the
    /// official Python client reads it.
    pub fn zuliprc_text(&self, account: &Account, site: &str) -> String {
        format!(
            "[api]\nemail={}\nkey={}\nsite={site}\n",
            account.email, account.key
        )
    }

    /// The scratch HOME.
    pub fn home_dir(&self) -> &Path {
        self.home.path()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.service().close();
    }
}

/// `presence ARGS...` with HOME set to `home`, no ZULIP_* or NO_COLOR
/// variables, and extra variables from `env`.
pub fn presence_in(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("HOME", home)
        .env_remove("ZULIP_SITE")
        .env_remove("ZULIP_EMAIL")
        .env_remove("ZULIP_API_KEY")
        .env_remove("ZULIP_CONFIG")
        .env_remove("NO_COLOR");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the binary runs")
}

/// What a run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The exit code.
    pub code: i32,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            stdout: String::from_utf8(output.stdout).expect("UTF-8 output"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 errors"),
            code: output.status.code().expect("an exit code, not a signal"),
        }
    }
}

impl Run {
    /// Asserts exit code 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts this exit code, an empty stdout, and one line on stderr
    /// containing `needle`.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(self.stdout, "", "nothing on stdout when failing");
        assert!(
            self.stderr.contains(needle),
            "{needle:?} not in: {}",
            self.stderr
        );
        assert_eq!(self.stderr.lines().count(), 1, "one line: {}", self.stderr);
    }
}

/// `presence ARGS...` in the server's HOME with these variables.
pub fn presence(server: &TestServer, env: &[(&str, &str)], args: &[&str]) -> Run {
    presence_in(server.home_dir(), env, args).into()
}

/// A port on which nothing listens, and nothing else can start to while
/// this lives: a socket bound to it but not listening, so that a connection
/// is refused (a port merely bound and released could be taken by another
/// test's server meanwhile).
pub struct ClosedPort {
    _socket: socket2::Socket,
    /// The port.
    pub port: u16,
}

/// A port that refuses connections for as long as the value lives.
pub fn closed_port() -> ClosedPort {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("an address");
    socket.bind(&any.into()).expect("bind");
    let port = socket
        .local_addr()
        .expect("an address")
        .as_socket()
        .expect("an IP address")
        .port();
    ClosedPort {
        _socket: socket,
        port,
    }
}
