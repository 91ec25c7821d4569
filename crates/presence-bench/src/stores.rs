//! The stores a run measures: the embedded SQLite store in a temporary data
//! directory, or PostgreSQL in a scratch schema of its own with one or more
//! server nodes sharing it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use presence_server::store::testing::ScratchSchema;

use crate::process::cpu_seconds_of;

/// Which store a run's servers use, and how many of them there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The embedded SQLite store, one server.
    Sqlite,
    /// PostgreSQL, with this many server nodes on the same schema.
    Postgres {
        /// Server processes sharing the database (1 or 2).
        nodes: usize,
    },
}

/// The most nodes a PostgreSQL run may start (the machines have two cores).
pub const MAX_NODES: usize = 2;

impl Store {
    /// How many server processes the run starts.
    pub fn nodes(self) -> usize {
        match self {
            Store::Sqlite => 1,
            Store::Postgres { nodes } => nodes,
        }
    }

    /// Whether the store needs `--database-url`.
    pub fn is_postgres(self) -> bool {
        matches!(self, Store::Postgres { .. })
    }
}

impl fmt::Display for Store {
    /// The label of the table's `store` column: `sqlite`, `postgres x1`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::Sqlite => f.write_str("sqlite"),
            Store::Postgres { nodes } => write!(f, "postgres x{nodes}"),
        }
    }
}

impl FromStr for Store {
    type Err = String;

    /// `sqlite`, `postgres` (one node), or `postgres1` / `postgres2`.
    fn from_str(s: &str) -> Result<Store, String> {
        let s = s.trim().to_ascii_lowercase();
        if s == "sqlite" {
            return Ok(Store::Sqlite);
        }
        let nodes = match s.strip_prefix("postgres") {
            Some("") => 1,
            Some(n) => n
                .parse()
                .map_err(|_| format!("{s:?}: expected sqlite, postgres1 or postgres2"))?,
            None => return Err(format!("{s:?}: expected sqlite, postgres1 or postgres2")),
        };
        if !(1..=MAX_NODES).contains(&nodes) {
            return Err(format!("{s:?}: 1 to {MAX_NODES} PostgreSQL nodes"));
        }
        Ok(Store::Postgres { nodes })
    }
}

/// Where a server keeps its state, as the flags that tell it so.
#[derive(Debug, Clone)]
pub enum Storage {
    /// `--data-dir DIR`: the embedded store.
    Dir(PathBuf),
    /// `--database-url URL`: PostgreSQL.
    Database(String),
}

impl Storage {
    /// The flags naming this storage, for `presence-server`.
    pub fn flags(&self) -> Vec<String> {
        match self {
            Storage::Dir(dir) => vec!["--data-dir".to_owned(), dir.display().to_string()],
            Storage::Database(url) => vec!["--database-url".to_owned(), url.clone()],
        }
    }
}

/// A fresh, empty storage for one run of one store, removed when dropped
/// (the directory with the run's temporary directory, the scratch schema
/// with `DROP SCHEMA ... CASCADE`). Drop it only after the servers using it.
pub struct Fresh {
    /// The flags of the storage.
    pub storage: Storage,
    /// The scratch schema, dropped with this value.
    schema: Option<ScratchSchema>,
}

/// The database processes serving a run's servers, whose CPU time the
/// table reports beside the servers' own: PostgreSQL's backends for the
/// run's connections, if it runs on this machine; none for SQLite, whose
/// work is the server's own.
#[derive(Default)]
pub struct Backends(Vec<u32>);

impl Backends {
    /// Their CPU seconds so far (user plus system), `None` without any.
    /// A backend that has gone since counts for nothing.
    pub fn cpu_seconds(&self) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        Some(
            self.0
                .iter()
                .filter_map(|&pid| cpu_seconds_of(pid).ok())
                .sum(),
        )
    }
}

impl Fresh {
    /// The backends now serving connections to the scratch schema, as
    /// found in `pg_stat_activity`; only processes of this machine named
    /// `postgres` are kept (a database elsewhere has none here).
    pub fn backends(&self) -> Backends {
        let pids = self
            .schema
            .as_ref()
            .and_then(|schema| schema.backends().ok())
            .unwrap_or_default();
        let local = |pid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        };
        Backends(
            pids.into_iter()
                .filter_map(|pid| u32::try_from(pid).ok())
                .filter(local)
                .collect(),
        )
    }

    /// The data directory `data_dir` (which must not exist yet; the
    /// server's import creates it) for SQLite, or a new scratch schema in
    /// the database at `database_url` for PostgreSQL.
    pub fn create(
        store: Store,
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> anyhow::Result<Fresh> {
        match store {
            Store::Sqlite => Ok(Fresh {
                storage: Storage::Dir(data_dir.to_owned()),
                schema: None,
            }),
            Store::Postgres { .. } => {
                let url = database_url.context("a PostgreSQL store needs --database-url")?;
                // ScratchSchema runs its blocking client on a thread of its
                // own, so this is safe from the load generator's runtime.
                let schema =
                    ScratchSchema::create(url).context("cannot create a scratch schema")?;
                Ok(Fresh {
                    storage: Storage::Database(schema.url()),
                    schema: Some(schema),
                })
            }
        }
    }
}
