//! The admin commands' contract: output, errors and exit codes.

use crate::support::{BIN, admin, create_user, run};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn user_create_prints_the_key_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    admin(
        dir.path(),
        &["realm", "create", "acme", "--name", "Acme Inc"],
    );
    let out = run(
        dir.path(),
        &[
            "user",
            "create",
            "--realm",
            "acme",
            "--email",
            "a@acme.test",
            "--full-name",
            "A",
        ],
    );
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.strip_suffix('\n').expect("one line");
    assert_eq!(key.len(), 32, "{stdout:?}");
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
    // The key is not stored in clear.
    let db = std::fs::read(dir.path().join("presence.sqlite3")).unwrap();
    assert!(
        !db.windows(32).any(|w| w == key.as_bytes()),
        "key stored in clear"
    );
    let wal = std::fs::read(dir.path().join("presence.sqlite3-wal")).unwrap_or_default();
    assert!(
        !wal.windows(32).any(|w| w == key.as_bytes()),
        "key in the WAL in clear"
    );

    let new_key = admin(
        dir.path(),
        &[
            "user",
            "reset-key",
            "--realm",
            "acme",
            "--email",
            "a@acme.test",
        ],
    );
    assert_eq!(new_key.trim_end().len(), 32);
    assert_ne!(new_key.trim_end(), key);
}

#[test]
fn failures_are_one_line_and_nonzero_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    create_user(dir.path(), "acme", "a@acme.test", false);

    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "user",
                "create",
                "--realm",
                "acme",
                "--email",
                "A@acme.test",
                "--full-name",
                "Dup",
            ],
            "already",
        ),
        (
            &[
                "user",
                "create",
                "--realm",
                "nope",
                "--email",
                "b@acme.test",
                "--full-name",
                "B",
            ],
            "no realm named \"nope\"",
        ),
        (
            &[
                "user",
                "create",
                "--realm",
                "acme",
                "--email",
                "not-an-email",
                "--full-name",
                "C",
            ],
            "invalid email",
        ),
        (&["realm", "create", "acme"], "exists already"),
        (&["realm", "create", "Bad_Id"], "invalid realm id"),
        (
            &[
                "user",
                "deactivate",
                "--realm",
                "acme",
                "--email",
                "ghost@acme.test",
            ],
            "no user",
        ),
        (&["realm", "deactivate", "ghost"], "no realm"),
    ];
    for (args, needle) in cases {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    }
    // Nothing half-written: still exactly one user.
    let list = admin(dir.path(), &["user", "list", "--realm", "acme"]);
    assert_eq!(list.lines().count(), 2, "{list}");

    // Bad arguments are usage errors (exit 2).
    for args in [
        &["user", "create", "--realm", "acme"][..],
        &["realm", "set", "acme", "--presence-disabled", "maybe"],
        &["--rate-limit", "lots", "user", "list", "--realm", "acme"],
        &["frobnicate"],
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn global_options_go_before_or_after_and_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let status = std::process::Command::new(BIN)
        .args(["realm", "create", "acme", "--data-dir", path])
        .status()
        .unwrap();
    assert!(status.success());
    let out = std::process::Command::new(BIN)
        .args(["user", "list", "--realm", "acme"])
        .env("PRESENCE_DATA_DIR", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "user_id\temail\tfull_name\tis_bot\tis_active\n"
    );
}

#[test]
fn user_list_shows_bots_and_deactivation() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    create_user(dir.path(), "acme", "a@acme.test", false);
    create_user(dir.path(), "acme", "bot@acme.test", true);
    admin(
        dir.path(),
        &[
            "user",
            "deactivate",
            "--realm",
            "acme",
            "--email",
            "a@acme.test",
        ],
    );
    let list = admin(dir.path(), &["user", "list", "--realm", "acme"]);
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(
        rows,
        [
            "1\ta@acme.test\tTest User\tfalse\tfalse",
            "2\tbot@acme.test\tTest User\ttrue\ttrue"
        ]
    );
    admin(
        dir.path(),
        &[
            "user",
            "reactivate",
            "--realm",
            "acme",
            "--email",
            "a@acme.test",
        ],
    );
    let list = admin(dir.path(), &["user", "list", "--realm", "acme"]);
    assert!(
        list.contains("1\ta@acme.test\tTest User\tfalse\ttrue"),
        "{list}"
    );
}

#[test]
fn a_config_file_is_read_and_unknown_keys_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("presence.toml");
    std::fs::write(
        &config,
        "rate_limit = \"off\"\noffline_threshold_secs = 30\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "realm",
            "create",
            "acme",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(&config, "offline_threshold = 30\n").unwrap();
    let out = run(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "realm",
            "create",
            "other",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("offline_threshold"),
        "{}",
        stderr(&out)
    );
}
