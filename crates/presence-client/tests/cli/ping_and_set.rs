//! `presence ping` (once, and as a heartbeat) and `presence set --invisible`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{Run, TestServer, presence};

fn setup() -> (TestServer, crate::support::Account) {
    let server = TestServer::start();
    server.create_realm("acme");
    let me = server.create_user("acme", "me@acme.test", "Me", false);
    server.create_user("acme", "other@acme.test", "Other", false);
    server.write_home_zuliprc(&server.zuliprc_text(&me, &server.base));
    (server, me)
}

fn state_of(server: &TestServer, email: &str) -> String {
    let run = presence(server, &[], &["get", email]);
    run.ok()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(',')
        .to_owned()
}

#[test]
fn a_single_ping_reports_under_the_chosen_client_name() {
    let (server, _) = setup();
    let run = presence(&server, &[], &["ping"]);
    assert_eq!(run.ok(), "reported active as me@acme.test\n");
    assert_eq!(state_of(&server, "me@acme.test"), "active");

    let run = presence(
        &server,
        &[],
        &["--client", "pager", "ping", "--status", "idle"],
    );
    run.ok();
    let verbose = presence(&server, &[], &["get", "-v", "me@acme.test"]);
    let out = verbose.ok();
    // Without --client the server names the client after the User-Agent.
    assert!(out.contains("  PresenceClient  active "), "{out}");
    assert!(out.contains("  pager           idle "), "{out}");
}

#[test]
fn ping_json_is_the_bare_envelope() {
    let (server, _) = setup();
    let run = presence(&server, &[], &["ping", "--json"]);
    assert_eq!(run.ok(), "{\"result\":\"success\",\"msg\":\"\"}\n");
}

#[test]
fn a_heartbeat_stops_after_count() {
    let (server, _) = setup();
    let started = Instant::now();
    let run = presence(&server, &[], &["ping", "--every", "100ms", "--count", "3"]);
    assert_eq!(
        run.ok(),
        "reported active (1 of 3)\nreported active (2 of 3)\nreported active (3 of 3)\n"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(state_of(&server, "me@acme.test"), "active");
}

#[cfg(unix)]
#[test]
fn a_heartbeat_stops_cleanly_on_sigterm() {
    let (server, _) = setup();
    let mut child = Command::new(crate::support::BIN)
        .args(["ping", "--every", "50ms"])
        .env("HOME", server.home_dir())
        .env_remove("ZULIP_SITE")
        .env_remove("ZULIP_EMAIL")
        .env_remove("ZULIP_API_KEY")
        .env_remove("ZULIP_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its lines as they come, so that the signal comes once it has
    // reported twice.
    let (line_tx, lines) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = line_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("no report after {seen:?}: {e}"));
        seen.push(line);
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    reader.join().unwrap();
    seen.extend(lines.try_iter());
    let stdout = seen.iter().map(|l| format!("{l}\n")).collect::<String>();
    let run = Run::from(std::process::Output {
        stdout: stdout.into_bytes(),
        ..output
    });
    let stdout = run.ok();
    assert!(stdout.lines().count() >= 2, "{stdout}");
    assert!(
        stdout.lines().all(|l| l.starts_with("reported active (")),
        "{stdout}"
    );
}

#[test]
fn a_heartbeat_keeps_going_while_the_server_is_away() {
    let closed = crate::support::closed_port();
    let home = tempfile::tempdir().unwrap();
    let site = format!("http://127.0.0.1:{}", closed.port);
    let run: Run = crate::support::presence_in(
        home.path(),
        &[],
        &[
            "--site",
            &site,
            "--email",
            "me@acme.test",
            "--api-key",
            "x",
            "--retries",
            "0",
            "ping",
            "--every",
            "50ms",
            "--count",
            "3",
        ],
    )
    .into();
    // Three failed reports, each logged, and the last one decides the exit code.
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stderr);
    assert!(lines[0].starts_with("presence: report 1 failed: cannot reach http://127.0.0.1:"));
    assert!(lines[0].ends_with("; next try in 50ms"), "{}", lines[0]);
    assert!(lines[3].starts_with("presence: cannot reach "));
}

#[test]
fn count_needs_every() {
    let (server, _) = setup();
    let run = presence(&server, &[], &["ping", "--count", "3"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--every"), "{}", run.stderr);
}

#[test]
fn invisible_hides_and_shows() {
    let (server, _) = setup();
    presence(&server, &[], &["ping"]).ok();
    let run = presence(&server, &[], &["set", "--invisible", "on"]);
    assert_eq!(run.ok(), "invisible: on (others now see you as offline)\n");
    assert_eq!(state_of(&server, "me@acme.test"), "offline");

    let run = presence(&server, &[], &["set", "--invisible", "off", "--json"]);
    assert_eq!(run.ok(), "{\"result\":\"success\",\"msg\":\"\"}\n");
    assert_eq!(state_of(&server, "me@acme.test"), "active");

    let bad = presence(&server, &[], &["set", "--invisible", "maybe"]);
    assert_eq!(bad.code, 2);
}
