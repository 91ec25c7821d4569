//! The end of every batch, locked or claimed: its commit, the line and
//! metrics that record it, and its changes applied to memory once they
//! are in the store.

use std::time::{Duration, Instant};

use super::batch::Batch;
use super::{Outcome, WriteError, Writer};
use crate::store::StoreError;

impl Writer {
    /// Commits an evaluated batch (or ends it, if it changes nothing) and
    /// applies it to memory; each change's final outcome.
    pub(super) fn commit_and_apply(
        &mut self,
        batch: &mut Batch,
        outcomes: Vec<Outcome>,
    ) -> Vec<Outcome> {
        let started = Instant::now();
        let committed = self.commit(batch);
        self.settle(batch, outcomes, committed, started)
    }

    /// Commits an evaluated batch, or ends it if it changes nothing.
    pub(super) fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.mutations.is_empty() {
            self.store.abort_batch();
            // No commit of its own flushes the others' commits it holds; if
            // the store cannot say they are durable, they are read again at
            // the next look (the batch's no-ops stand either way).
            if !self.held_remote.is_empty() && self.store.wait_durable().is_err() {
                self.held_remote.clear();
            }
            Ok(())
        } else {
            let realms = batch.mutation_realms();
            self.store
                .commit_batch_in_realms(&batch.mutations, &realms, &batch.sequences())
        }
    }

    /// Logs and counts a batch's commit (`committed`, begun at `started`)
    /// and applies the batch to memory if it committed; each change's
    /// final outcome.
    pub(super) fn settle(
        &mut self,
        batch: &mut Batch,
        outcomes: Vec<Outcome>,
        committed: Result<(), StoreError>,
        started: Instant,
    ) -> Vec<Outcome> {
        let (locked_at, catch_up) = self.locked_at.take().unwrap_or((started, Duration::ZERO));
        tracing::debug!(
            commands = outcomes.len(),
            mutations = batch.mutations.len(),
            commit_micros = started.elapsed().as_micros() as u64,
            lock_micros = locked_at.elapsed().as_micros() as u64,
            catch_up_micros = catch_up.as_micros() as u64,
            "batch"
        );
        if !batch.mutations.is_empty() {
            if committed.is_ok() {
                let seconds = started.elapsed().as_secs_f64();
                self.metrics.commit(batch.mutations.len(), seconds);
            }
            self.note_write_health(committed.as_ref().err());
        }
        match committed {
            Ok(()) => {
                let produced = self.changing_memory(|w| w.apply(batch));
                self.publish(produced);
                outcomes
            }
            Err(e) => {
                // If the commit's outcome is unknown (the connection broke
                // while committing), the next look at the store installs
                // whatever did commit, and the others' commits it held.
                self.held_remote.clear();
                tracing::error!(error = %e, "commit failed; the batch is refused");
                let failure = WriteError::Store(e.to_string());
                outcomes
                    .into_iter()
                    .map(|outcome| outcome.and(Err(failure.clone())))
                    .collect()
            }
        }
    }
}
