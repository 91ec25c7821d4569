//! `--help` of every command, as a committed snapshot: a change to the
//! command line shows in review as a change to these files. Refresh them
//! with `SNAPSHOTS=overwrite cargo test -p presence-server --test cli help`.

use std::process::Command;

use crate::support::BIN;

/// The help of `presence-server ARGS... --help`, with no terminal: the
/// text a script or a pager gets.
fn help(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--help")
        .env_remove("PRESENCE_CONFIG")
        .env_remove("PRESENCE_DATA_DIR")
        .env_remove("PRESENCE_DATABASE_URL")
        .env("COLUMNS", "100")
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

#[test]
fn every_commands_help_is_as_committed() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["realm"],
        &["realm", "create"],
        &["realm", "list"],
        &["realm", "rename"],
        &["realm", "deactivate"],
        &["realm", "reactivate"],
        &["realm", "set"],
        &["user"],
        &["user", "create"],
        &["user", "list"],
        &["user", "set"],
        &["user", "deactivate"],
        &["user", "reactivate"],
        &["user", "reset-key"],
        &["user", "delete"],
        &["embed-key"],
        &["embed-key", "create"],
        &["embed-key", "list"],
        &["embed-key", "revoke"],
        &["openapi"],
        &["migrate"],
        &["export"],
        &["import"],
    ];
    let mut all = String::new();
    for args in commands {
        let text = help(args);
        // Only `serve` (and the top level, which serves) shows serving flags.
        if !args.is_empty() && args[0] != "serve" {
            assert!(!text.contains("--listen"), "{args:?} shows serving flags");
        }
        all.push_str(&format!(
            "$ presence-server {} --help\n{text}\n",
            args.join(" ")
        ));
    }
    assert!(help(&[]).contains("Exit codes:") && help(&[]).contains("Examples:"));
    snapbox::assert_data_eq!(all, snapbox::file!["help/all.txt"]);
}
