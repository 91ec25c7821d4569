//! Realms of generated users, written as a dump and loaded with
//! `presence-server import` (into a data directory or a PostgreSQL schema),
//! with keys the benchmark knows.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;

use crate::stores::Storage;

/// The client names records are spread over (1 to 3 per user).
pub const CLIENTS: [&str; 3] = ["website", "ZulipMobile", "ZulipTerminal"];

/// A generated user.
#[derive(Clone)]
pub struct User {
    /// The user's id.
    pub id: i64,
    /// The user's email.
    pub email: String,
    /// `Basic base64(email:key)`.
    pub authorization: HeaderValue,
}

/// A generated realm.
#[derive(Clone)]
pub struct Realm {
    /// Its users, every one with 1 to 3 client records.
    pub users: Vec<User>,
}

impl Realm {
    /// How many client records the realm has.
    pub fn records(&self) -> usize {
        self.users.iter().map(|u| records_of(u.id)).sum()
    }
}

/// How many client records user `id` gets: 1, 2, 3, 1, 2, 3, ...
fn records_of(id: i64) -> usize {
    (id % 3) as usize + 1
}

/// Writes a dump of one realm per size (users active within the last
/// minute, as of `now`) and returns the realms with their credentials.
pub fn write_dump(path: &Path, sizes: &[usize], now: i64) -> anyhow::Result<Vec<Realm>> {
    write_dump_with(path, sizes, now, |_| true)
}

/// Like [`write_dump`], giving presence records only to the users (by index
/// within their realm) for which `has_presence` holds.
pub fn write_dump_with(
    path: &Path,
    sizes: &[usize],
    now: i64,
    has_presence: impl Fn(usize) -> bool,
) -> anyhow::Result<Vec<Realm>> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        r#"{{"type":"header","format":"presence-dump","version":1}}"#
    )?;
    let mut realms = Vec::new();
    let mut next_user = 1i64;
    for (realm_index, &size) in sizes.iter().enumerate() {
        let realm_id = realm_index as i64 + 1;
        let string_id = format!("bench-{size}");
        writeln!(
            out,
            r#"{{"type":"realm","id":{realm_id},"string_id":"{string_id}","name":"{string_id}","date_created":{now}}}"#
        )?;
        let mut users = Vec::with_capacity(size);
        let mut update_id = 0;
        for i in 0..size {
            let id = next_user;
            next_user += 1;
            let email = format!("user{i}@{string_id}.test");
            // 32 letters and digits, derived from the id.
            let key = format!("k{id:031}");
            writeln!(
                out,
                r#"{{"type":"user","id":{id},"realm_id":{realm_id},"email":"{email}","full_name":"User {i}","date_joined":{joined},"api_key":"{key}"}}"#,
                joined = now - 86_400
            )?;
            let seen = now - (i as i64 % 50);
            let clients = if has_presence(i) {
                &CLIENTS[..records_of(id)]
            } else {
                &[][..]
            };
            for client in clients {
                update_id += 1;
                writeln!(
                    out,
                    r#"{{"type":"presence","user_id":{id},"client":"{client}","last_connected_time":{seen},"last_active_time":{seen},"update_id":{update_id}}}"#
                )?;
            }
            let authorization = HeaderValue::from_str(&format!(
                "Basic {}",
                STANDARD.encode(format!("{email}:{key}"))
            ))?;
            users.push(User {
                id,
                email,
                authorization,
            });
        }
        realms.push(Realm { users });
    }
    out.flush()?;
    Ok(realms)
}

/// Loads a dump into a data directory or a database with the server's own
/// `import`.
pub fn import(server: &Path, storage: &Storage, dump: &Path) -> anyhow::Result<()> {
    let output = Command::new(server)
        .args(storage.flags())
        .env_remove("PRESENCE_DATABASE_URL")
        .arg("import")
        .arg(dump)
        .output()
        .with_context(|| format!("cannot run {}", server.display()))?;
    if !output.status.success() {
        bail!("import failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}
