//! `GET /metrics` over real HTTP: the scrape parses with Prometheus's own
//! checker (`promtool check metrics`), its counters move with the requests
//! a test makes, its labels are route templates whatever path a client
//! sends, and a scraper that asks for OpenMetrics gets it.

use std::io::Write;
use std::process::{Command, Stdio};

use std::sync::Arc;
use std::time::{Duration, Instant};

use presence_server::clock::ManualClock;
use presence_server::config::RateLimit;
use presence_tests::failing::{FailingStore, Outage};
use presence_tests::{Backing, Options, PATIENCE, START, TestServer};

/// Scrapes `/metrics`, asking for `accept` if given: the content type and
/// the text.
async fn scrape(server: &TestServer, accept: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", server.base));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("the scrape is answered");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (content_type, response.text().await.unwrap())
}

/// The value of the sample `name{labels}` (exactly those labels, in the
/// order the server writes them), or 0 if the series does not exist yet.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().expect("a number"))
}

/// Runs `promtool check metrics` on `text`; `None` if promtool is not
/// installed (never allowed under CI), else its verdict and output.
fn promtool_check(text: &str) -> Option<(bool, String)> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but promtool (Debian's `prometheus` package) is not installed"
            );
            // Straight to the process's stderr: the harness captures `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED the promtool check: install Debian's `prometheus` package to run it"
            );
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), said))
}

const OWN_PRESENCE: &str = "presence_http_requests_total{route=\"/api/v1/users/{user_id_or_email}/presence\",method=\"GET\",status=\"200\"}";
const UNMATCHED_404: &str =
    "presence_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}";
const DURATIONS: &str = "presence_http_request_duration_seconds_count{route=\"/api/v1/users/{user_id_or_email}/presence\"}";

#[tokio::test]
async fn a_scrape_passes_promtool_and_its_counters_move_with_requests() {
    let server = TestServer::start().await;
    server.create_realm("acme");
    let alice = server.create_user("acme", "alice@acme.test", false).await;
    let (content_type, before) = scrape(&server, None).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    server.report(&alice, "website", "active").await;
    for _ in 0..5 {
        server
            .get(&alice, "/users/alice@acme.test/presence")
            .await
            .ok();
    }
    // Paths a client makes up never become labels: all are `unmatched`.
    for path in ["/nope", "/users/x/y/z/w", "/secret-token-in-path"] {
        let answer = server.get(&alice, path).await;
        assert_eq!(answer.status, 404);
    }
    let (_, after) = scrape(&server, None).await;
    assert_eq!(
        sample(&after, OWN_PRESENCE) - sample(&before, OWN_PRESENCE),
        5.0
    );
    assert_eq!(
        sample(&after, UNMATCHED_404) - sample(&before, UNMATCHED_404),
        3.0
    );
    assert_eq!(sample(&after, DURATIONS) - sample(&before, DURATIONS), 5.0);
    assert!(!after.contains("secret-token") && !after.contains("/users/x/"));
    // The report was committed: one more commit, of at least one change.
    let commits = "presence_store_commit_duration_seconds_count";
    assert!(
        sample(&after, commits) > sample(&before, commits),
        "{after}"
    );
    assert!(sample(&after, "presence_store_batch_changes_sum") >= 1.0);
    assert_eq!(sample(&after, "presence_store_errors_total"), 0.0);
    assert!(sample(&after, "process_resident_memory_bytes") > 0.0);
    assert!(sample(&after, "process_open_fds") > 0.0);
    if let Some((passed, said)) = promtool_check(&after) {
        assert!(passed, "promtool check metrics: {said}\n{after}");
    }
}

#[tokio::test]
async fn refusals_queues_and_streams_are_counted() {
    let mut options = Options::default();
    options.config.rate_limit = RateLimit::PerUser {
        requests: 3,
        per_secs: 60,
    };
    let server = TestServer::start_with(options).await;
    server.create_realm("acme");
    let alice = server.create_user("acme", "alice@acme.test", false).await;
    let mut refused = 0;
    for _ in 0..6 {
        refused += u32::from(server.get(&alice, "/users/me").await.status == 429);
    }
    assert!(refused > 0, "the user's budget runs out");
    let (_, text) = scrape(&server, None).await;
    assert_eq!(
        sample(&text, "presence_rate_limited_total{limiter=\"user\"}"),
        f64::from(refused)
    );
    assert_eq!(sample(&text, "presence_event_queues"), 0.0);
    // A queue, made by someone with budget left.
    let bob = server.create_user("acme", "bob@acme.test", false).await;
    let queue = server
        .post(&bob, "/register", &[("event_types", "[\"presence\"]")])
        .await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    let (_, text) = scrape(&server, None).await;
    assert_eq!(sample(&text, "presence_event_queues"), 1.0);
    assert_eq!(sample(&text, "presence_streams_open"), 0.0);
}

#[tokio::test]
async fn scrapers_that_ask_for_openmetrics_get_it() {
    let server = TestServer::start().await;
    let prometheus = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (content_type, text) = scrape(&server, Some(prometheus)).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    // The scrape before this one is counted in this one.
    let (_, again) = scrape(&server, Some(prometheus)).await;
    assert!(again.contains("# TYPE presence_http_requests counter\n"));
    assert!(again.contains("# UNIT presence_http_request_duration_seconds seconds\n"));
    let scrapes = "presence_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"200\"}";
    assert!(sample(&again, scrapes) >= 1.0, "{again}");
}

#[tokio::test]
async fn store_failures_are_counted() {
    let outage = Arc::new(Outage::default());
    let wrapped = outage.clone();
    let server = TestServer::start_wrapped(
        Backing::sqlite(),
        Arc::new(ManualClock::new(START)),
        Options::default().config,
        move |inner| Box::new(FailingStore::new(inner, wrapped)),
    )
    .await;
    let (_, healthy) = scrape(&server, None).await;
    assert_eq!(sample(&healthy, "presence_store_errors_total"), 0.0);
    outage.set(true);
    // The writer looks at the store every `directory_poll_ms`: each look
    // that fails is counted.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, text) = scrape(&server, None).await;
        if sample(&text, "presence_store_errors_total") > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "no store error counted: {text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    outage.set(false);
}
