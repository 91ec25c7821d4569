//! A store the server cannot trust is refused at start-up, by every
//! command, with one line that says why and exit code 1: an empty file, a
//! file that is not SQLite or holds another program's tables, a damaged
//! database, and one that cannot be written.

use std::path::Path;

use crate::support::{admin, run};

/// Runs `realm list` and `serve` on `dir`; both must refuse with `reason`.
fn refused(dir: &Path, reason: &str) {
    for args in [
        &["realm", "list"][..],
        &["serve", "--listen", "127.0.0.1:0"],
    ] {
        let out = run(dir, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(reason),
            "{args:?}: {stderr}"
        );
        assert!(last.ends_with("refused"), "{last}");
    }
}

fn database(dir: &Path) -> std::path::PathBuf {
    dir.join("presence.sqlite3")
}

#[test]
fn an_empty_file_is_not_taken_for_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(database(dir.path()), b"").unwrap();
    refused(dir.path(), "the file is empty");
    assert_eq!(
        std::fs::metadata(database(dir.path())).unwrap().len(),
        0,
        "left as it was"
    );
}

#[test]
fn a_foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        database(dir.path()),
        b"not a database, just some text\n".repeat(200),
    )
    .unwrap();
    refused(dir.path(), "not a SQLite database");

    let other = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(database(other.path())).unwrap();
    conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        .unwrap();
    drop(conn);
    refused(other.path(), "tables of another program");
}

#[test]
fn a_damaged_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["realm", "create", "acme"]);
    for i in 0..200 {
        crate::support::create_user(dir.path(), "acme", &format!("user{i}@acme.test"), false);
    }
    // Fold the WAL into the file, then overwrite part of a page's header.
    let conn = rusqlite::Connection::open(database(dir.path())).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    drop(conn);
    let mut bytes = std::fs::read(database(dir.path())).unwrap();
    assert!(bytes.len() > 4 * 4096, "a database of several pages");
    for byte in &mut bytes[3 * 4096 + 8..3 * 4096 + 64] {
        *byte = 0xff;
    }
    std::fs::write(database(dir.path()), bytes).unwrap();
    refused(dir.path(), "the database is damaged");
}

/// A directory whose store cannot be written: a read-only mount when this
/// runs as root (which ignores file permissions), else read-only files.
struct ReadOnly {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl ReadOnly {
    fn new() -> ReadOnly {
        let dir = tempfile::tempdir().unwrap();
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        let mounted = root && mount(&["-t", "tmpfs", "-o", "size=8m", "tmpfs"], dir.path());
        admin(dir.path(), &["realm", "create", "acme"]);
        if mounted {
            assert!(
                mount(&["-o", "remount,ro"], dir.path()),
                "remounting read-only"
            );
        } else {
            use std::os::unix::fs::PermissionsExt;
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                let path = entry.unwrap().path();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
            }
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        ReadOnly { dir, mounted }
    }
}

fn mount(args: &[&str], dir: &Path) -> bool {
    std::process::Command::new("mount")
        .args(args)
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg(self.dir.path())
                .status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ =
                std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[test]
fn a_store_that_cannot_be_written_is_refused() {
    let read_only = ReadOnly::new();
    refused(read_only.dir.path(), "cannot be");
}
