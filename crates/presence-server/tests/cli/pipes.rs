//! `presence-server ... | head`: a reader that goes away ends the command
//! quietly, with the exit code a shell gives a process ended by SIGPIPE.

use std::process::{Command, Stdio};

/// A pipe whose reader is gone before the command starts: its first write
/// fails, as `| head` makes it fail once `head` has its lines.
fn gone_reader() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer
}

use crate::support::{BIN, admin, create_user};

#[test]
fn a_reader_that_goes_away_ends_every_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    create_user(dir.path(), "acme", "alice@acme.test", false);
    for args in [
        &["openapi"][..],
        &["user", "list", "--realm", "acme"],
        &["user", "list", "--realm", "acme", "--json"],
        &["realm", "list"],
        &["embed-key", "list", "--realm", "acme"],
        &["export"],
    ] {
        let child = Command::new(BIN)
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .stdout(gone_reader())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let output = child.wait_with_output().expect("it ends");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "{args:?} said: {stderr}"
        );
    }
}
