//! Every command explains itself.

use crate::support::presence_in;

#[test]
fn every_command_has_help() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["get", "--help"],
        &["realm", "--help"],
        &["ping", "--help"],
        &["set", "--help"],
        &["help", "ping"],
    ] {
        let out = presence_in(home.path(), &[], args);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout.contains("Usage: presence"), "{args:?}: {stdout}");
    }
}

#[test]
fn top_level_help_documents_settings_and_exit_codes() {
    let home = tempfile::tempdir().unwrap();
    let out = presence_in(home.path(), &[], &["--help"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "get",
        "realm",
        "ping",
        "set",
        "--json",
        "--site",
        "--email",
        "--api-key",
        "--config",
        "ZULIP_API_KEY",
        "~/.zuliprc",
        "Exit codes:",
        "3  the server could not be reached",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
}

#[test]
fn version_is_the_crates() {
    let home = tempfile::tempdir().unwrap();
    let out = presence_in(home.path(), &[], &["--version"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("presence {}\n", env!("CARGO_PKG_VERSION"))
    );
}
