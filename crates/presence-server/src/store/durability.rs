//! How the server's commits reach the disk: `full` (each acknowledged
//! change is on disk before the answer) or `relaxed` (on its way to disk:
//! safe from the server process dying, not from the machine or the
//! database crashing).
//!
//! Presence is soft state that clients send again every minute, so a
//! deployment may trade the last moments before an operating-system crash
//! for throughput. What `relaxed` may lose, by store:
//! - SQLite (`synchronous = NORMAL` in WAL mode): commits are written to
//!   the WAL file before the answer, and the WAL is flushed to disk at each
//!   checkpoint (when it reaches 1,000 pages, about 4 MB); an
//!   operating-system crash or power loss may lose the commits since the
//!   last checkpoint.
//! - PostgreSQL (`synchronous_commit = off` for the server's batches):
//!   PostgreSQL's WAL writer flushes within three times `wal_writer_delay`
//!   (600 ms at its default); a crash of PostgreSQL or of its machine may
//!   lose the batches of that window.
//!
//! Either way a killed server process loses nothing it acknowledged: the
//! commit is in the operating system's or PostgreSQL's hands before the
//! answer. Admin changes always wait for the disk.

use std::fmt;
use std::str::FromStr;

/// How the server's batches commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Each commit reaches the disk before it is acknowledged.
    #[default]
    Full,
    /// Each commit reaches the operating system (SQLite) or PostgreSQL
    /// before it is acknowledged, and the disk a moment later.
    Relaxed,
}

impl FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "full" => Ok(Durability::Full),
            "relaxed" => Ok(Durability::Relaxed),
            other => Err(format!(
                "durability must be `full` or `relaxed`, not {other:?}"
            )),
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Durability::Full => "full",
            Durability::Relaxed => "relaxed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_is_full_or_relaxed() {
        for d in [Durability::Full, Durability::Relaxed] {
            assert_eq!(d.to_string().parse::<Durability>(), Ok(d));
        }
        assert!("fsync".parse::<Durability>().is_err());
    }
}
