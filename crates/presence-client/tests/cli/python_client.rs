//! One zuliprc for both: the file the official Python client `zulip` reads
//! works for `presence`, and each sees what the other reported.
//!
//! Needs `pip install zulip`. Without it the test says so and skips on a
//! developer's machine; under CI (`CI` set) a missing client is a failure.

use std::process::Command;

use crate::support::{TestServer, presence};

/// Reads `sys.argv[1]` as the zuliprc, reports idle, and prints what it
/// sees of the user `sys.argv[2]`: the aggregated status and the client
/// names (the entries, not the modern timestamps that stand beside them).
const SCRIPT: &str = r#"
import sys
import zulip
client = zulip.Client(config_file=sys.argv[1])
assert client.update_presence({"status": "idle", "ping_only": True})["result"] == "success"
answer = client.get_user_presence(sys.argv[2])
presence = answer["presence"]
clients = sorted(k for k, v in presence.items() if k != "aggregated" and isinstance(v, dict))
print(presence["aggregated"]["status"], " ".join(clients))
"#;

fn zulip_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import zulip"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn the_same_zuliprc_works_for_the_python_client_and_presence() {
    if !zulip_installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the Python package `zulip` is not installed"
        );
        eprintln!(
            "SKIPPED the_same_zuliprc_works_for_the_python_client_and_presence: `pip install zulip` to run it"
        );
        return;
    }
    let server = TestServer::start();
    server.create_realm("acme");
    let alice = server.create_user("acme", "alice@acme.test", "Alice", false);
    let bob = server.create_user("acme", "bob@acme.test", "Bob", false);
    // The site as a person writes it; both clients turn it into http://localhost:PORT/api.
    let site = format!("localhost:{}", server.port);
    let alice_rc = server.home_dir().join("alice.zuliprc");
    std::fs::write(&alice_rc, server.zuliprc_text(&alice, &site)).unwrap();
    let bob_rc = server.write_home_zuliprc(&server.zuliprc_text(&bob, &site));

    // Alice reports through `presence`, with her file.
    let alice_rc = alice_rc.to_str().unwrap();
    presence(&server, &[], &["--config", alice_rc, "ping"]).ok();

    // Bob, through Python with his file, reports idle and sees Alice active.
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(&bob_rc)
        .arg(&alice.email)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the Python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "active PresenceClient\n"
    );

    // Bob's same file, as ~/.zuliprc, drives `presence`: it sees his Python report.
    let run = presence(&server, &[], &["get", "-v", "bob@acme.test"]);
    let stdout = run.ok();
    assert!(stdout.starts_with("● bob@acme.test is idle, "), "{stdout}");
    assert!(stdout.contains("ZulipPython  idle"), "{stdout}");
}
