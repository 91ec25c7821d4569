//! The web components and the who's-online page in headless Chromium,
//! against this binary: the Node tests of `tests/browser` (node:test with
//! playwright-core, which drives the system's Chromium).
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci --prefix tests/browser`.
//! Without them the test says so and skips on a developer's machine; under
//! CI (`CI` set) anything missing is a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::run_bounded;

/// The browser the tests drive.
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long the whole browser suite may take.
const LIMIT: Duration = Duration::from_secs(300);

fn browser_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// What is missing to run the browser tests, if anything.
fn missing() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        return Some("`node` (Node.js 20 or newer)".to_owned());
    }
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} (`apt-get install chromium`)"));
    }
    if !browser_tests()
        .join("node_modules/playwright-core")
        .exists()
    {
        return Some("playwright-core (`npm ci --prefix tests/browser`)".to_owned());
    }
    None
}

#[test]
fn the_web_components_work_in_a_browser() {
    if let Some(what) = missing() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the browser tests cannot run: missing {what}"
        );
        // Straight to the process's stderr: the harness captures `eprintln!`.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the_web_components_work_in_a_browser: missing {what}"
        );
        return;
    }
    let run = run_bounded(
        Command::new("node")
            .arg("--test")
            .arg(browser_tests())
            .env("PRESENCE_SERVER_BIN", env!("CARGO_BIN_EXE_presence-server"))
            .env("PRESENCE_CHROMIUM", CHROMIUM),
        LIMIT,
    );
    let timed_out = run.timed_out;
    let stdout = String::from_utf8_lossy(&run.output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.output.stderr).into_owned();
    let status = run.output.status;
    assert!(
        !timed_out,
        "the browser tests took longer than {LIMIT:?}:\n{stdout}\n{stderr}"
    );
    assert!(
        status.success(),
        "the browser tests failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0"),
        "the browser tests ran nothing:\n{stdout}"
    );
}
