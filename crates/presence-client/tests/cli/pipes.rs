//! `presence ... | head`: a reader that goes away ends the command quietly,
//! with the exit code a shell gives a process ended by SIGPIPE.

use std::process::{Command, Stdio};

/// A pipe whose reader is gone before the command starts: its first write
/// fails, as `| head` makes it fail once `head` has its lines.
fn gone_reader() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer
}

use presence_client::types::ReportedStatus;

use crate::support::{BIN, TestServer};

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let server = TestServer::start();
    server.create_realm("acme");
    let alice = server.create_user("acme", "alice@acme.test", "Alice", false);
    server.report(&alice, "website", ReportedStatus::Active);
    server.write_home_zuliprc(&server.zuliprc_text(&alice, &server.base));
    for args in [
        &["realm"][..],
        &["--json", "realm"],
        &["get", "alice@acme.test"],
    ] {
        let child = Command::new(BIN)
            .args(args)
            .env("HOME", server.home_dir())
            .env_remove("ZULIP_CONFIG")
            .stdout(gone_reader())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let output = child.wait_with_output().expect("it ends");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?} said: {stderr}");
    }
}
