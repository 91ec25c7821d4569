//! Running the binary: admin commands on a temporary data directory, and a
//! server process whose address is read from its log.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_presence-server");

/// Runs `presence-server --data-dir DIR ARGS...` to completion.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("PRESENCE_CONFIG")
        .output()
        .expect("the binary runs")
}

/// Runs an admin command that must succeed and returns its standard output.
#[track_caller]
pub fn admin(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Creates a user and returns its key.
pub fn create_user(dir: &Path, realm: &str, email: &str, bot: bool) -> String {
    let mut args = vec![
        "user",
        "create",
        "--realm",
        realm,
        "--email",
        email,
        "--full-name",
        "Test User",
    ];
    if bot {
        args.push("--bot");
    }
    admin(dir, &args).trim_end().to_owned()
}

/// A server process, killed when dropped.
pub struct ServerProcess {
    /// The child process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
    /// The thread reading the log, until the pipe closes.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts `presence-server --data-dir DIR serve --listen 127.0.0.1:0
    /// FLAGS...` (serving flags, and store flags, which may come after the
    /// command) and waits for the address it logs.
    pub fn start(dir: &Path, extra: &[&str]) -> ServerProcess {
        Self::start_logging(dir, extra, "info")
    }

    /// Starts a server as [`ServerProcess::start`] does, with `RUST_LOG`
    /// set to `filter`; every line it logs is kept (see [`ServerProcess::log`]).
    pub fn start_logging(dir: &Path, extra: &[&str], filter: &str) -> ServerProcess {
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let kept = log.clone();
        // Keep draining the log so the server never blocks on a full pipe.
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                if let Some(rest) = line.split("listening on ").nth(1) {
                    // Ends at a space (text) or a closing quote (JSON).
                    let address = rest
                        .split(|c: char| c.is_whitespace() || c == '"')
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    let _ = tx.send(address);
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server logs the address it listens on");
        ServerProcess {
            child,
            base,
            log,
            reader: Some(reader),
        }
    }

    /// Every line the server has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the server logs a line that `matches`, failing the test
    /// after `limit`.
    pub async fn until_logged(&self, what: &str, limit: Duration, matches: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + limit;
        while !self.log.lock().unwrap().iter().any(|line| matches(line)) {
            assert!(
                Instant::now() < deadline,
                "the server did not log {what} within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Starts a server as [`ServerProcess::start`] does, which also logs
    /// each request as it begins (see [`ServerProcess::until_begun`]).
    pub fn start_telling_requests(dir: &Path, extra: &[&str]) -> ServerProcess {
        Self::start_logging(dir, extra, "info,presence_server::http::pipeline=debug")
    }

    /// Waits until a server started by
    /// [`ServerProcess::start_telling_requests`] has begun work on a
    /// request for `path`: it is in the server's hands.
    pub async fn until_begun(&self, method: &str, path: &str) {
        let (method, path) = (format!("method={method}"), format!("path={path}"));
        self.until_logged(
            &format!("the start of {method} {path}"),
            Duration::from_secs(20),
            |line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                line.contains("request begins")
                    && fields.contains(&method.as_str())
                    && fields.contains(&path.as_str())
            },
        )
        .await;
    }

    /// An API URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`, and for the last of
    /// its log to be read: [`ServerProcess::log`] then holds every line.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                // The pipe closes with the process: the reader ends.
                if let Some(reader) = self.reader.take() {
                    reader.join().expect("the log reader ends");
                }
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET with Basic auth, returning status and JSON.
pub async fn get(
    server: &ServerProcess,
    email: &str,
    key: &str,
    path: &str,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(server.url(path))
        .basic_auth(email, Some(key))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// Polls until `check` holds, at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a bounded run of another program gave.
pub struct BoundedRun {
    /// Its exit status and both outputs.
    pub output: Output,
    /// Whether it was stopped for taking longer than its limit.
    pub timed_out: bool,
}

/// Runs `command` with no input, its outputs read on threads of their own
/// (so that a chatty program cannot block), in a process group of its own;
/// past `limit` the whole group (the program and whatever it started) is
/// killed.
pub fn run_bounded(command: &mut Command, limit: Duration) -> BoundedRun {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("the program runs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            out
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + limit;
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            break (status, false);
        }
        if Instant::now() >= deadline {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            break (child.wait().expect("wait works"), true);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = Output {
        status,
        stdout: stdout.join().expect("stdout read"),
        stderr: stderr.join().expect("stderr read"),
    };
    BoundedRun { output, timed_out }
}
