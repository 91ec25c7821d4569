//! The data directory and the database's files are private to the
//! server's user whatever the umask it runs under: the database holds
//! every user's key hash and who was online when.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::BIN;

/// A path's permission bits.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_new_store_is_private_under_a_permissive_umask() {
    for umask in ["022", "000"] {
        let parent = tempfile::tempdir().unwrap();
        let data = parent.path().join("state").join("presence");
        // `serve`, so that the `-wal` and `-shm` files exist while it runs.
        let mut child = Command::new("sh")
            .args(["-c", &format!("umask {umask}; exec \"$0\" \"$@\"")])
            .arg(BIN)
            .arg("--data-dir")
            .arg(&data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let files = [
            "presence.sqlite3",
            "presence.sqlite3-wal",
            "presence.sqlite3-shm",
        ];
        let deadline = Instant::now() + Duration::from_secs(20);
        while !files.iter().all(|f| data.join(f).exists()) {
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("the store's files did not all appear within 20 s (umask {umask})");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let modes: Vec<(String, u32)> = files
            .iter()
            .map(|f| ((*f).to_owned(), mode(&data.join(f))))
            .collect();
        let dir_mode = mode(&data);
        child.kill().expect("the server is stopped");
        child.wait().expect("the server is reaped");
        assert_eq!(dir_mode, 0o700, "the data directory (umask {umask})");
        for (file, mode) in modes {
            assert_eq!(mode, 0o600, "{file} (umask {umask}): {mode:o}");
        }
    }
}
