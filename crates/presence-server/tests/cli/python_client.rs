//! The official Python client `zulip`, unmodified, against a server process.
//!
//! Needs `pip install zulip`. Without it the tests say so and skip on a
//! developer's machine; under CI (`CI` set) a missing client is a failure.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::{ServerProcess, admin, create_user, run_bounded};

fn zulip_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import zulip"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Whether to skip a test for want of the client (never under CI).
fn skip(test: &str) -> bool {
    if zulip_installed() {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the Python package `zulip` is not installed"
    );
    // Straight to the process's stderr: the harness captures `eprintln!`.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: `pip install zulip` to run it"
    );
    true
}

/// A script of `tests/python`.
fn script(name: &str) -> String {
    format!("{}/../../tests/python/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Writes a zuliprc exactly as the official client documents it.
fn zuliprc(dir: &Path, server: &ServerProcess, email: &str, key: &str) -> PathBuf {
    let path = dir.join(format!("{email}.zuliprc"));
    std::fs::write(
        &path,
        format!("[api]\nemail={email}\nkey={key}\nsite={}\n", server.base),
    )
    .unwrap();
    path
}

/// Runs `python3 SCRIPT ARGS...`, killing it if it takes longer than `limit`.
fn run_python(script: &str, args: &[&OsStr], limit: Duration) -> Output {
    let run = run_bounded(Command::new("python3").arg(script).args(args), limit);
    run.output
}

#[test]
fn the_official_python_client_works_unmodified() {
    if skip("the_official_python_client_works_unmodified") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let alice = create_user(dir.path(), "acme", "alice@acme.test", false);
    let bob = create_user(dir.path(), "acme", "bob@acme.test", false);
    create_user(dir.path(), "acme", "bot@acme.test", true);
    let server = ServerProcess::start(dir.path(), &[]);
    let alice_rc = zuliprc(dir.path(), &server, "alice@acme.test", &alice);
    let bob_rc = zuliprc(dir.path(), &server, "bob@acme.test", &bob);
    let out = run_python(
        &script("zulip_client_compat.py"),
        &[
            alice_rc.as_os_str(),
            bob_rc.as_os_str(),
            OsStr::new("bot@acme.test"),
        ],
        Duration::from_secs(120),
    );
    expect_all_passed(&out);
}

/// Asserts that a script exited 0 and reported no failed check.
#[track_caller]
fn expect_all_passed(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python client checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[test]
fn the_official_python_client_receives_presence_events() {
    if skip("the_official_python_client_receives_presence_events") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let users = ["alice", "bob", "carol", "dave"].map(|name| {
        let email = format!("{name}@acme.test");
        let key = create_user(dir.path(), "acme", &email, false);
        (email, key)
    });
    // Heartbeats every second, so that waiting polls come back quickly.
    let server = ServerProcess::start(dir.path(), &["--event-heartbeat-ms", "1000"]);
    let rcs: Vec<PathBuf> = users
        .iter()
        .map(|(email, key)| zuliprc(dir.path(), &server, email, key))
        .collect();
    let args: Vec<&OsStr> = rcs.iter().map(|rc| rc.as_os_str()).collect();
    let out = run_python(
        &script("zulip_client_events.py"),
        &args,
        Duration::from_secs(90),
    );
    expect_all_passed(&out);
}

#[test]
fn the_official_python_client_sets_reads_and_follows_a_status() {
    if skip("the_official_python_client_sets_reads_and_follows_a_status") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let alice = create_user(dir.path(), "acme", "alice@acme.test", false);
    let bob = create_user(dir.path(), "acme", "bob@acme.test", false);
    let server = ServerProcess::start(dir.path(), &["--event-heartbeat-ms", "1000"]);
    let alice_rc = zuliprc(dir.path(), &server, "alice@acme.test", &alice);
    let bob_rc = zuliprc(dir.path(), &server, "bob@acme.test", &bob);
    let out = run_python(
        &script("zulip_client_status.py"),
        &[alice_rc.as_os_str(), bob_rc.as_os_str()],
        Duration::from_secs(90),
    );
    expect_all_passed(&out);
}
