//! What the writer tells the store about this node, between batches.
//!
//! - **Its report**: the node's id, that it is alive, and the directory
//!   version it has installed. An admin command that changed the directory
//!   reads these reports and returns only once every live node has
//!   installed its change (see `admin::wait_until_applied`), so its change
//!   holds from the next request any node receives. The report is written
//!   at once after a directory change is installed, and every
//!   [`REPORT_EVERY`] otherwise; a node is taken for gone once its report
//!   is [`NODE_GONE_AFTER_SECS`] old, and its row is deleted an hour later
//!   by whichever node reports next. A stopping node deletes its own.
//! - **When embed keys were last used**, for `embed-key list`: taken from
//!   memory and written every [`RECORD_USE_EVERY`], to the minute.

use std::time::{Duration, Instant};

use super::Writer;
use crate::store::{EmbedKeyUse, NodeRow, StoreError};

/// How often a node says it is alive when nothing changes.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);

/// How old a node's last report may be before admin commands stop waiting
/// for it.
pub const NODE_GONE_AFTER_SECS: i64 = 10;

/// How long the row of a node that stopped reporting is kept.
const FORGET_AFTER_SECS: i64 = 3600;

/// How often the last uses of embed keys are written down.
const RECORD_USE_EVERY: Duration = Duration::from_secs(60);

/// To the minute: a key used all day is written once a minute at most.
const USE_GRANULARITY_SECS: i64 = 60;

/// This node's standing in the store.
pub struct NodeState {
    row: NodeRow,
    reported_at: Option<Instant>,
    recorded_use_at: Instant,
}

impl NodeState {
    /// A node starting at `now` (Unix seconds) with a random id.
    pub fn new(now: i64, directory_version: i64) -> Self {
        NodeState {
            row: NodeRow {
                id: format!("{:016x}", rand::random::<u64>()),
                started_at: now,
                seen_at: now,
                directory_version,
            },
            reported_at: None,
            recorded_use_at: Instant::now(),
        }
    }
}

impl Writer {
    /// Reports this node for the first time.
    pub fn announce(&mut self) -> Result<(), StoreError> {
        self.tell_store()
    }

    /// Reports this node if its directory moved on or its last report is
    /// getting old, and records embed key uses when they are due.
    pub(super) fn tell_store(&mut self) -> Result<(), StoreError> {
        let moved = self.node.row.directory_version != self.directory_version;
        let stale = self
            .node
            .reported_at
            .is_none_or(|at| at.elapsed() >= REPORT_EVERY);
        if moved || stale {
            self.node.row.seen_at = self.clock.now_secs();
            self.node.row.directory_version = self.directory_version;
            let forget_before = self.node.row.seen_at - FORGET_AFTER_SECS;
            let reported = self.store.report_node(&self.node.row, forget_before);
            // The one write made when nothing else is: how a store that
            // stopped taking writes is noticed while no one reports.
            self.note_write_health(reported.as_ref().err());
            reported?;
            self.node.reported_at = Some(Instant::now());
        }
        if self.node.recorded_use_at.elapsed() >= RECORD_USE_EVERY {
            self.node.recorded_use_at = Instant::now();
            self.record_embed_key_use()?;
        }
        Ok(())
    }

    /// Writes when embed keys were last used, where memory is ahead.
    pub(super) fn record_embed_key_use(&mut self) -> Result<(), StoreError> {
        let uses: Vec<EmbedKeyUse> = self
            .directory
            .read()
            .embed_keys
            .iter()
            .filter_map(|key| {
                Some(EmbedKeyUse {
                    key: key.id,
                    at: key.take_unrecorded_use(USE_GRANULARITY_SECS)?,
                })
            })
            .collect();
        if uses.is_empty() {
            return Ok(());
        }
        self.store.record_embed_key_use(&uses)
    }

    /// Takes this node's row out of the store: it is stopping.
    pub(super) fn leave(&mut self) {
        if let Err(e) = self.record_embed_key_use() {
            tracing::warn!(error = %e, "could not record the last uses of embed keys");
        }
        if let Err(e) = self.store.remove_node(&self.node.row.id) {
            tracing::warn!(error = %e, "could not remove this node's report");
        }
    }
}
