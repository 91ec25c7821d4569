//! Refusals, an unreachable server and bad usage: the message and the exit code.

use std::time::{Duration, Instant};

use crate::support::{Account, TestServer, closed_port, presence, presence_in};

fn setup() -> (TestServer, Account) {
    let server = TestServer::start();
    server.create_realm("acme");
    let reader = server.create_user("acme", "reader@acme.test", "Reader", false);
    server.create_user("acme", "quiet@acme.test", "Quiet", false);
    server.write_home_zuliprc(&server.zuliprc_text(&reader, &server.base));
    (server, reader)
}

#[test]
fn refusals_exit_with_1_and_the_servers_message() {
    let (server, reader) = setup();
    presence(&server, &[], &["get", "nobody@acme.test"]).fails(
        1,
        "presence: the server refused: No such user (BAD_REQUEST, HTTP 400)",
    );
    presence(&server, &[], &["get", "quiet@acme.test"]).fails(
        1,
        "presence: the server refused: No presence data for quiet@acme.test (BAD_REQUEST, HTTP 400)",
    );
    let wrong = "B".repeat(32);
    presence(&server, &[], &["--api-key", &wrong, "realm"]).fails(
        1,
        "presence: the server refused: Invalid API key (UNAUTHORIZED, HTTP 401)",
    );
    presence(&server, &[], &["--api-key", "short", "ping"]).fails(
        1,
        "presence: the server refused: Malformed API key (UNAUTHORIZED, HTTP 401)",
    );
    let _ = reader;
}

#[test]
fn an_unreachable_server_exits_with_3_after_retrying() {
    let home = tempfile::tempdir().unwrap();
    let closed = closed_port();
    let site = format!("http://127.0.0.1:{}", closed.port);
    let started = Instant::now();
    let run: crate::support::Run = presence_in(
        home.path(),
        &[],
        &[
            "--site",
            &site,
            "--email",
            "a@b.c",
            "--api-key",
            "k",
            "get",
            "x@b.c",
        ],
    )
    .into();
    run.fails(3, &format!("presence: cannot reach {site}: "));
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    // Three retries after 250, 500 and 1000 ms.
    assert!(started.elapsed() >= Duration::from_millis(1750));

    let started = Instant::now();
    let run: crate::support::Run = presence_in(
        home.path(),
        &[],
        &[
            "--site",
            &site,
            "--email",
            "a@b.c",
            "--api-key",
            "k",
            "--retries",
            "0",
            "realm",
        ],
    )
    .into();
    run.fails(3, "cannot reach");
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[test]
fn a_server_that_never_answers_times_out_with_3() {
    // A peer that takes connections and then says nothing: the kernel
    // completes them into the listener's backlog, never accepted. It is
    // held until the run ends, and 10 s at most, so that a client that
    // waited on regardless would fail rather than hang.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let site = format!("http://{}", listener.local_addr().unwrap());
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _ = finished.recv_timeout(Duration::from_secs(10));
        drop(listener);
    });
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run: crate::support::Run = presence_in(
        home.path(),
        &[],
        &[
            "--site",
            &site,
            "--email",
            "a@b.c",
            "--api-key",
            "k",
            "--timeout",
            "300ms",
            "--retries",
            "0",
            "get",
            "x@b.c",
        ],
    )
    .into();
    let took = started.elapsed();
    let _ = done.send(());
    holder.join().unwrap();
    run.fails(3, "no answer before the timeout");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn usage_errors_exit_with_2() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["get"][..],
        &["frobnicate"],
        &["get", "x", "--no-such-flag"],
        &["ping", "--status", "asleep"],
        &["ping", "--every", "soon"],
        &["ping", "--every", "1s", "--count", "0"],
        &["--timeout", "0s", "realm"],
        &[],
    ] {
        let out = presence_in(home.path(), &[], args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
