//! The official Python client `zulip`, unmodified, against a server process.
//!
//! Needs `pip install zulip`. Without it the test says so and skips on a
//! developer's machine; under CI (`CI` set) a missing client is a failure.

use std::process::Command;

use crate::support::{ServerProcess, admin, create_user};

fn zulip_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import zulip"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn the_official_python_client_works_unmodified() {
    if !zulip_installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the Python package `zulip` is not installed"
        );
        eprintln!(
            "SKIPPED the_official_python_client_works_unmodified: `pip install zulip` to run it"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    let alice = create_user(dir.path(), "acme", "alice@acme.test", false);
    let bob = create_user(dir.path(), "acme", "bob@acme.test", false);
    create_user(dir.path(), "acme", "bot@acme.test", true);
    let server = ServerProcess::start(dir.path(), &["serve"]);

    // zuliprc files exactly as the official client documents them.
    let write_rc = |name: &str, email: &str, key: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("[api]\nemail={email}\nkey={key}\nsite={}\n", server.base),
        )
        .unwrap();
        path
    };
    let alice_rc = write_rc("alice.zuliprc", "alice@acme.test", &alice);
    let bob_rc = write_rc("bob.zuliprc", "bob@acme.test", &bob);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/zulip_client_compat.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(&alice_rc)
        .arg(&bob_rc)
        .arg("bot@acme.test")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python client checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
