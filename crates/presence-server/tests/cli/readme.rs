//! README's "Try it" section, run as written, twenty times in a row: a
//! server started the README's way (no arguments, in a fresh directory, so
//! on 127.0.0.1:9991 with its data in `./presence-data`), the section's
//! commands with `presence-server` on the `PATH`, and each `$ ` command of
//! its transcript, whose output must be what the README shows (timestamps
//! aside). README cannot drift from the binaries again.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::support::BIN;

/// The section's two blocks: the commands, and the transcript's commands
/// with the output each shows.
fn try_it() -> (String, Vec<(String, String)>) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Try it\n")
        .nth(1)
        .and_then(|rest| rest.split("\n### ").next())
        .expect("a Try it section");
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("\n```").next().expect("a closed block"))
        .collect();
    let mut transcript = Vec::new();
    for entry in blocks[1].split("\n\n") {
        let mut command = String::new();
        let mut output = String::new();
        for line in entry.lines() {
            if let Some(first) = line.strip_prefix("$ ") {
                command.push_str(first);
            } else if command.ends_with('\\') {
                command.push('\n');
                command.push_str(line);
            } else {
                output.push_str(line);
            }
        }
        transcript.push((command, output));
    }
    (blocks[0].to_owned(), transcript)
}

/// A JSON value with every number made 0: the README's timestamps are
/// examples.
fn shape(value: &Value) -> Value {
    match value {
        Value::Number(_) => Value::from(0),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        other => other.clone(),
    }
}

/// `presence-server` with no arguments, in `dir`, once it listens.
fn serve_the_readme_way(dir: &std::path::Path) -> Child {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .env_remove("PRESENCE_CONFIG")
        .env_remove("PRESENCE_LISTEN")
        .env_remove("PRESENCE_DATA_DIR")
        .env_remove("PRESENCE_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on http://127.0.0.1:9991") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the server listens on 127.0.0.1:9991 (is the port taken?)");
    child
}

#[test]
fn the_try_it_section_works_as_written_twenty_times() {
    if Command::new("curl").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI needs curl");
        eprintln!("SKIPPED the README's Try it: curl is not installed");
        return;
    }
    let (commands, transcript) = try_it();
    assert_eq!(transcript.len(), 2, "{transcript:?}");
    // `presence-server` on the PATH, as an installed binary is.
    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(BIN, bin_dir.path().join("presence-server")).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut script = format!("set -eu\n{commands}\n");
    for (i, (command, _)) in transcript.iter().enumerate() {
        script.push_str(&format!("echo '=== {i}'\n{command}\necho\n"));
    }
    for round in 1..=20 {
        let dir = tempfile::tempdir().unwrap();
        let mut server = serve_the_readme_way(dir.path());
        let out = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("PRESENCE_DATA_DIR")
            .output()
            .expect("bash runs");
        let _ = server.kill();
        let _ = server.wait();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "round {round}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (i, (command, expected)) in transcript.iter().enumerate() {
            let got = stdout
                .split(&format!("=== {i}\n"))
                .nth(1)
                .and_then(|rest| rest.lines().next())
                .unwrap_or_default();
            let got: Value = serde_json::from_str(got)
                .unwrap_or_else(|e| panic!("round {round}, {command}: {e}: {got:?}"));
            let expected: Value = serde_json::from_str(expected).expect("README shows JSON");
            assert_eq!(shape(&got), shape(&expected), "round {round}: {command}");
        }
    }
}
