//! The probes: `GET /health/live` and `GET /health/ready`, over real HTTP.
//! Readiness follows the store (a [`FailingStore`] the test takes out and
//! brings back) and shutdown; neither probe needs credentials nor is ever
//! counted against its address.

use std::sync::Arc;
use std::time::{Duration, Instant};

use presence_server::clock::ManualClock;
use presence_server::config::RateLimit;
use presence_tests::failing::{FailingStore, Outage};
use presence_tests::{Answer, Backing, Options, PATIENCE, START, TestServer};

/// `GET` a probe without credentials.
async fn probe(server: &TestServer, which: &str) -> Answer {
    let url = format!("{}/health/{which}", server.base);
    server.send(reqwest::Client::new().get(url)).await
}

/// Polls readiness until it answers `status` (bounded by `PATIENCE`).
async fn ready_becomes(server: &TestServer, status: u16) -> Answer {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = probe(server, "ready").await;
        if answer.status.as_u16() == status {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "readiness still {} after {PATIENCE:?}: {}",
            answer.status,
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn probes_answer_without_credentials_and_are_never_limited() {
    let mut options = Options::default();
    options.config.ip_rate_limit = RateLimit::PerUser {
        requests: 2,
        per_secs: 60,
    };
    let server = TestServer::start_with(options).await;
    probe(&server, "live").await.ok();
    probe(&server, "ready").await.ok();
    let anonymous = reqwest::Client::new();
    // Only GET and HEAD: a wrong method is a refusal like any other (and
    // counts against the address, as it does on the embed's files).
    let url = format!("{}/health/ready", server.base);
    let post = server.send(anonymous.post(&url)).await;
    assert_eq!(post.status, 405);
    // Use up the address's share with requests that do count.
    let mut limited = false;
    for _ in 0..4 {
        let answer = server.send(anonymous.get(server.url("/users/me"))).await;
        limited |= answer.status == 429;
    }
    assert!(limited, "the address is over its limit");
    for _ in 0..10 {
        probe(&server, "live").await.ok();
        probe(&server, "ready").await.ok();
    }
    // HEAD is served where GET is, and is not counted either.
    let head = server.send(anonymous.head(&url)).await;
    assert_eq!(head.status, 200);
}

#[tokio::test]
async fn readiness_turns_503_while_the_store_fails_and_200_after_recovery() {
    let outage = Arc::new(Outage::default());
    let wrapped = outage.clone();
    let server = TestServer::start_wrapped(
        Backing::sqlite(),
        Arc::new(ManualClock::new(START)),
        Options::default().config,
        move |inner| Box::new(FailingStore::new(inner, wrapped)),
    )
    .await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    ready_becomes(&server, 200).await.ok();

    outage.set(true);
    let answer = ready_becomes(&server, 503).await;
    answer.error(
        503,
        "SERVICE_UNAVAILABLE",
        "Not ready: the store is failing",
    );
    assert_eq!(answer.body["reason"], "store_failing");
    // The process still answers, and reads from memory still work.
    probe(&server, "live").await.ok();
    server.get(&alice, "/users/me").await.ok();

    outage.set(false);
    ready_becomes(&server, 200).await.ok();
    server.report(&alice, "website", "active").await;
}

#[tokio::test]
async fn readiness_turns_503_once_shutdown_begins_while_the_server_still_serves() {
    let mut options = Options::default();
    // Long enough for the probes below; the test waits it out at the end.
    options.config.shutdown_delay_secs = 5.0;
    let mut server = TestServer::start_with(options).await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    ready_becomes(&server, 200).await.ok();

    let asked = Instant::now();
    server.begin_shutdown();
    let answer = ready_becomes(&server, 503).await;
    answer.error(
        503,
        "SERVICE_UNAVAILABLE",
        "Not ready: the server is shutting down",
    );
    assert_eq!(answer.body["reason"], "shutting_down");
    // Through the delay, everything else is served as before.
    probe(&server, "live").await.ok();
    server.get(&alice, "/users/me").await.ok();
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the checks above ran within the delay"
    );
    server.shutdown().await;
    assert!(asked.elapsed() >= Duration::from_secs(5), "the delay held");
}
