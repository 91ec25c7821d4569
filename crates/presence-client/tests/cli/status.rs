//! `presence status set|clear`, and the status text in `get` and `realm`.

use crate::support::{TestServer, presence, real_now};

fn setup() -> TestServer {
    let server = TestServer::start();
    server.create_realm("acme");
    let me = server.create_user("acme", "me@acme.test", "Me", false);
    server.create_user("acme", "other@acme.test", "Other", false);
    server.write_home_zuliprc(&server.zuliprc_text(&me, &server.base));
    server
}

#[test]
fn a_status_is_set_shown_and_cleared() {
    let server = setup();
    presence(&server, &[], &["ping"]).ok();
    let run = presence(
        &server,
        &[],
        &["status", "set", "In a meeting", "--emoji", "calendar"],
    );
    assert_eq!(run.ok(), "status: In a meeting\n");
    let out = presence(&server, &[], &["get", "me@acme.test"])
        .ok()
        .to_owned();
    assert!(
        out.contains("\n  status: :calendar: In a meeting\n"),
        "{out}"
    );
    let table = presence(&server, &[], &["realm"]).ok().to_owned();
    let header = table.lines().next().unwrap();
    assert!(header.ends_with("STATUS"), "{table}");
    assert!(table.contains(":calendar: In a meeting"), "{table}");

    assert_eq!(
        presence(&server, &[], &["status", "clear"]).ok(),
        "status cleared\n"
    );
    let out = presence(&server, &[], &["get", "me@acme.test"])
        .ok()
        .to_owned();
    assert!(!out.contains("status:"), "{out}");
    let table = presence(&server, &[], &["realm"]).ok().to_owned();
    assert!(
        !table.contains("STATUS"),
        "no column without statuses: {table}"
    );
}

#[test]
fn a_status_for_a_while_expires_with_the_servers_extension() {
    let server = setup();
    let before = real_now();
    let run = presence(
        &server,
        &[],
        &["status", "set", "Lunch", "--for", "1h", "--json"],
    );
    assert_eq!(run.ok(), "{\"result\":\"success\",\"msg\":\"\"}\n");
    let out = presence(&server, &[], &["--json", "realm"]).ok().to_owned();
    assert!(out.starts_with('{'), "{out}");
    let client = server.client(
        &server.create_user("acme", "third@acme.test", "Third", false),
        "t",
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let statuses = runtime.block_on(client.statuses()).unwrap();
    let status = statuses.values().next().expect("one status");
    assert_eq!(status.status_text.as_deref(), Some("Lunch"));
    let expires = status.expires_at.expect("an expiry");
    assert!(
        (before + 3600..=real_now() + 3600).contains(&expires),
        "{expires}"
    );
}

#[test]
fn refusals_are_the_servers() {
    let server = setup();
    let long = "x".repeat(61);
    presence(&server, &[], &["status", "set", &long])
        .fails(1, "status_text is too long (limit: 60 characters)");
    presence(&server, &[], &["status", "set", "x", "--emoji", "nope"])
        .fails(1, "Emoji 'nope' does not exist");
}
