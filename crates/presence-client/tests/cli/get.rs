//! `presence get USER`.

use presence_client::types::ReportedStatus::{Active, Idle};

use crate::support::{TestServer, presence};

fn setup() -> (TestServer, crate::support::Account, crate::support::Account) {
    let server = TestServer::start();
    server.create_realm("acme");
    let reader = server.create_user("acme", "reader@acme.test", "Reader", false);
    let alice = server.create_user("acme", "alice@acme.test", "Alice", false);
    server.write_home_zuliprc(&server.zuliprc_text(&reader, &server.base));
    (server, reader, alice)
}

#[test]
fn an_active_user_is_one_line_with_a_dot() {
    let (server, _, alice) = setup();
    server.report(&alice, "website", Active);
    let run = presence(&server, &[], &["get", "alice@acme.test"]);
    let stdout = run.ok();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    // "just now", or a second or two later on a busy machine.
    assert!(
        stdout.starts_with("● alice@acme.test is active, last seen "),
        "{stdout}"
    );
    let by_id = presence(&server, &[], &["get", &alice.id.to_string()]);
    assert!(
        by_id
            .ok()
            .starts_with(&format!("● {} is active, ", alice.id))
    );
}

#[test]
fn idle_and_offline_say_how_long_ago() {
    let (server, _, alice) = setup();
    server.report_ago(&alice, "website", Idle, 65);
    let run = presence(&server, &[], &["get", "alice@acme.test"]);
    assert_eq!(run.ok(), "● alice@acme.test is idle, last seen 1m ago\n");

    let bob = server.create_user("acme", "bob@acme.test", "Bob", false);
    server.report_ago(&bob, "website", Active, 3 * 3600 + 10);
    let run = presence(&server, &[], &["get", "bob@acme.test"]);
    assert_eq!(run.ok(), "○ bob@acme.test is offline, last seen 3h ago\n");
}

#[test]
fn the_offline_threshold_is_adjustable() {
    let (server, _, alice) = setup();
    server.report_ago(&alice, "website", Active, 100);
    let run = presence(&server, &[], &["get", "alice@acme.test"]);
    assert!(run.ok().contains(" is active, "));
    let run = presence(
        &server,
        &[],
        &["get", "alice@acme.test", "--offline-threshold", "90s"],
    );
    assert_eq!(run.ok(), "○ alice@acme.test is offline, last seen 1m ago\n");
}

#[test]
fn verbose_shows_each_client() {
    let (server, _, alice) = setup();
    server.report_ago(&alice, "ZulipMobile", Active, 300);
    server.report(&alice, "website", Idle);
    server.add_device(&alice);
    let run = presence(&server, &[], &["get", "-v", "alice@acme.test"]);
    let lines: Vec<&str> = run.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("● alice@acme.test is idle, last seen "),
        "{lines:?}"
    );
    // One indented line per client, by client name.
    let words = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(
        lines[1].starts_with("  ○  ZulipMobile  offline  "),
        "{lines:?}"
    );
    assert_eq!(
        words(lines[1]),
        ["○", "ZulipMobile", "offline", "5m", "ago", "pushable"]
    );
    assert!(
        lines[2].starts_with("  ●  website      idle     "),
        "{lines:?}"
    );
    assert_eq!(words(lines[2]).last().map(String::as_str), Some("pushable"));
}

#[test]
fn json_prints_the_servers_answer() {
    let (server, _, alice) = setup();
    server.report(&alice, "website", Active);
    let run = presence(&server, &[], &["get", "alice@acme.test", "--json"]);
    let stdout = run.ok();
    assert_eq!(stdout.lines().count(), 1);
    let body: serde_json::Value = serde_json::from_str(stdout).unwrap();
    assert_eq!(body["result"], "success");
    assert_eq!(body["presence"]["aggregated"]["client"], "website");
    assert_eq!(body["presence"]["website"]["status"], "active");
}

#[test]
fn colours_only_when_asked_or_on_a_terminal() {
    let (server, _, alice) = setup();
    server.report(&alice, "website", Active);
    // stdout is a pipe here: no colours by default.
    let plain = presence(&server, &[], &["get", "alice@acme.test"]);
    assert!(!plain.ok().contains('\x1b'));
    let forced = presence(
        &server,
        &[],
        &["--color", "always", "get", "alice@acme.test"],
    );
    assert!(
        forced
            .ok()
            .starts_with("\x1b[32m●\x1b[0m alice@acme.test is active")
    );
    let no_color = presence(&server, &[("NO_COLOR", "1")], &["get", "alice@acme.test"]);
    assert!(!no_color.ok().contains('\x1b'));
}
