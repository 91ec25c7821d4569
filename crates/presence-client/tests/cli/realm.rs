//! `presence realm`: everyone, as a table.

use presence_client::types::ReportedStatus::{Active, Idle};

use crate::support::{TestServer, presence};

fn setup() -> TestServer {
    let server = TestServer::start();
    server.create_realm("acme");
    let reader = server.create_user("acme", "reader@acme.test", "Reader Rita", false);
    let alice = server.create_user("acme", "alice@acme.test", "Alice Adams", false);
    let bob = server.create_user("acme", "bob@acme.test", "Bob Brown", false);
    server.create_user("acme", "carol@acme.test", "Carol Clark", false);
    let bot = server.create_user("acme", "bot@acme.test", "Build Bot", true);
    server.create_realm("other");
    server.create_user("other", "zed@other.test", "Zed Outsider", false);
    server.report_ago(&alice, "website", Idle, 120);
    server.report_ago(&bob, "website", Active, 7200);
    server.report(&reader, "website", Active);
    let _ = bot;
    server.write_home_zuliprc(&server.zuliprc_text(&reader, &server.base));
    server
}

#[test]
fn a_table_of_everyone_sorted_by_name() {
    let server = setup();
    let run = presence(&server, &[], &["realm"]);
    assert_eq!(
        run.ok(),
        concat!(
            "   NAME         EMAIL             STATE    LAST SEEN\n",
            "●  Alice Adams  alice@acme.test   idle     2m ago\n",
            "○  Bob Brown    bob@acme.test     offline  2h ago\n",
            "○  Carol Clark  carol@acme.test   offline  never\n",
            "●  Reader Rita  reader@acme.test  active   just now\n",
        )
    );
}

#[test]
fn sorting_by_state_and_last_seen() {
    let server = setup();
    let emails = |args: &[&str]| -> Vec<String> {
        let run = presence(&server, &[], args);
        run.ok()
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().nth(3).unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        emails(&["realm", "--sort", "state"]),
        [
            "reader@acme.test",
            "alice@acme.test",
            "bob@acme.test",
            "carol@acme.test"
        ]
    );
    assert_eq!(
        emails(&["realm", "--sort", "last-seen"]),
        [
            "reader@acme.test",
            "alice@acme.test",
            "bob@acme.test",
            "carol@acme.test"
        ]
    );
    assert_eq!(
        emails(&["realm", "--sort", "name"]),
        [
            "alice@acme.test",
            "bob@acme.test",
            "carol@acme.test",
            "reader@acme.test"
        ]
    );
    let bad = presence(&server, &[], &["realm", "--sort", "shoe-size"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn json_prints_the_realm_answer() {
    let server = setup();
    let run = presence(&server, &[], &["realm", "--json"]);
    let body: serde_json::Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(body["result"], "success");
    assert!(body["server_timestamp"].is_f64());
    let mut emails: Vec<&str> = body["presences"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        ["alice@acme.test", "bob@acme.test", "reader@acme.test"]
    );
}
