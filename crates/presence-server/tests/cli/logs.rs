//! The log as an operator's pipeline reads it: a reader of standard error
//! that stalls never holds up a request (lines are dropped and counted
//! instead, in `/metrics` too), and the count is said once the reader is
//! back; JSON lines parse one by one; and no logged value can break a line.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{BIN, ServerProcess, admin, create_user, get};

/// A server whose standard error the test reads only when it chooses to.
struct StallableServer {
    child: Child,
    base: String,
    /// The log, where the test stopped reading it.
    stderr: Option<BufReader<ChildStderr>>,
    /// The lines read so far.
    lines: Vec<String>,
}

impl StallableServer {
    /// Starts a server on a fresh data directory and reads its log up to
    /// the line with the address it listens on, then stops reading.
    fn start(dir: &std::path::Path, extra: &[&str]) -> StallableServer {
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("PRESENCE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let mut lines = Vec::new();
        let base = loop {
            let mut line = String::new();
            let read = stderr.read_line(&mut line).expect("the log reads");
            assert!(read > 0, "the server ended before listening: {lines:?}");
            let address = line.split("listening on ").nth(1).map(|rest| {
                rest.split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            });
            lines.push(line.trim_end().to_owned());
            if let Some(address) = address {
                break address;
            }
        };
        StallableServer {
            child,
            base,
            stderr: Some(stderr),
            lines,
        }
    }

    /// Sends SIGTERM, then reads the rest of the log until the process
    /// closes it, at most `limit`, and returns every line.
    fn stop_and_read_all(&mut self, limit: Duration) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let stderr = self.stderr.take().expect("read once");
        // The reader ends when the pipe closes, which the process's exit does.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let lines: Vec<String> = stderr.lines().map_while(Result::ok).collect();
            let _ = tx.send(lines);
        });
        let rest = rx
            .recv_timeout(limit)
            .expect("the server exits and closes its log in time");
        let status = self.child.wait().expect("wait works");
        assert!(status.success(), "{status:?}");
        let mut lines = std::mem::take(&mut self.lines);
        lines.extend(rest);
        lines
    }
}

impl Drop for StallableServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number a text log line gives `field`, as in `dropped=12`.
fn field_number(line: &str, field: &str) -> Option<u64> {
    let start = line.find(&format!("{field}="))? + field.len() + 1;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[tokio::test]
async fn a_stalled_log_reader_delays_no_request_and_the_dropped_lines_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = StallableServer::start(dir.path(), &["--ip-rate-limit", "off"]);
    // Long paths make long lines: the pipe and the log's 1 MiB buffer fill
    // after about 150 of them, and the rest must be dropped, not waited for.
    let name = "x".repeat(7000);
    let path = format!("/api/v1/users/{name}@acme.test/presence");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    const REQUESTS: usize = 400;
    let stalled_at = Instant::now();
    for i in 0..REQUESTS {
        let sent = Instant::now();
        let response = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i} was not answered: {e}"));
        assert_eq!(response.status(), 401, "request {i}");
        let took = sent.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "request {i} took {took:?}: it waited for the log"
        );
    }
    // While the reader is away, the scrape counts what was dropped.
    let metrics = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("the scrape is answered")
        .text()
        .await
        .unwrap();
    let counted: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("presence_log_lines_dropped_total "))
        .expect("the dropped lines are a metric")
        .parse()
        .unwrap();
    assert!(counted > 0, "the scrape counts no dropped line");
    // The reader stays away a few seconds in all: a stall, not a hiccup.
    let hold = Duration::from_secs(3).saturating_sub(stalled_at.elapsed());
    tokio::time::sleep(hold).await;
    let lines = server.stop_and_read_all(Duration::from_secs(30));
    let written = lines
        .iter()
        .filter(|line| line.contains(" request ") && line.contains(&name))
        .count();
    let summaries: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("log lines dropped"))
        .collect();
    let dropped: u64 = summaries
        .iter()
        .map(|line| field_number(line, "dropped").expect("the summary says how many"))
        .sum();
    assert!(dropped > 0, "nothing was dropped: {summaries:?}");
    assert!(written > 0, "no request line was written");
    assert!(counted <= dropped, "{counted} counted, {dropped} dropped");
    // The scrape's own line was written or dropped too.
    let scrape_written = lines
        .iter()
        .any(|line| line.contains(" request ") && line.contains("path=/metrics"));
    assert_eq!(
        written as u64 + dropped,
        REQUESTS as u64 + u64::from(!scrape_written),
        "every request's line is either written or counted as dropped"
    );
    assert!(
        lines.iter().any(|line| line.contains("stopped")),
        "the lines logged at exit are written too"
    );
}

/// A data directory whose name holds a line break, a terminal escape and
/// U+2028: the server logs it when it opens the store.
fn awkward_data_dir(parent: &std::path::Path) -> std::path::PathBuf {
    let dir = parent.join("data\nforged INFO line\u{1b}[2J\u{2028}more");
    std::fs::create_dir(&dir).unwrap();
    dir
}

#[tokio::test]
async fn json_logs_parse_line_by_line_with_the_request_fields() {
    let parent = tempfile::tempdir().unwrap();
    let dir = awkward_data_dir(parent.path());
    admin(&dir, &["realm", "create", "acme"]);
    let key = create_user(&dir, "acme", "alice@acme.test", false);
    let mut server = ServerProcess::start(&dir, &["--log-format", "json"]);
    let (status, _) = get(&server, "alice@acme.test", &key, "/realm/presence").await;
    assert_eq!(status, 200);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());
    let lines = server.log();
    let objects: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| {
            assert!(!line.contains('\u{2028}'), "a bare U+2028: {line}");
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    let request = objects
        .iter()
        .find(|o| o["message"] == "request")
        .expect("a request line");
    assert_eq!(request["level"], "INFO");
    assert!(request["timestamp"].is_string());
    assert!(
        request["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(request["ip"], "127.0.0.1");
    assert_eq!(request["method"], "GET");
    assert_eq!(request["path"], "/api/v1/realm/presence");
    assert_eq!(request["status"], 200);
    assert!(request["micros"].is_u64());
    assert!(request["user_id"].is_u64());
    let opened = objects
        .iter()
        .find(|o| o["message"] == "store opened")
        .expect("the store's line");
    let database = opened["database"].as_str().expect("a string");
    assert!(
        database.starts_with(&dir.display().to_string()),
        "the value survives escaping whole: {database:?}"
    );
    assert!(lines.iter().all(|line| !line.starts_with("forged")));
}

#[tokio::test]
async fn text_logs_keep_a_value_with_line_breaks_on_one_line() {
    let parent = tempfile::tempdir().unwrap();
    let dir = awkward_data_dir(parent.path());
    let mut server = ServerProcess::start(&dir, &[]);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());
    let lines = server.log();
    let opened = lines
        .iter()
        .find(|line| line.contains("store opened"))
        .expect("the store's line");
    assert!(
        opened.contains("data\\nforged INFO line\\u{1b}[2J\\u{2028}more"),
        "{opened:?}"
    );
    for line in &lines {
        assert!(
            !line.contains('\u{2028}') && !line.contains('\u{1b}'),
            "{line:?}"
        );
        assert!(!line.starts_with("forged"), "a forged line: {line:?}");
    }
}
