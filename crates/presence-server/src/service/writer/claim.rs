//! Claimed batches: reports evaluated against memory without first
//! locking their realms, their update ids claimed when they commit
//! (docs/ARCHITECTURE.md, "Claimed batches").
//!
//! A locked batch costs a shared store a round trip before its changes
//! can be evaluated: the lock, and the realms' last ids read under it.
//! A node that is the only writer of a realm already knows those ids
//! (memory holds every commit up to them), so it evaluates at once and
//! sends one message that locks, checks the ids it expected, writes and
//! commits. Where other nodes write to the same realm the check would
//! often fail, and each failure costs a wasted message: a realm in which
//! this node saw another's commit within [`CONTENDED_FOR`] is written by
//! locked batches only.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::batch::Batch;
use super::{Change, Outcome, Writer};
use crate::ids::{RealmId, UpdateId};
use crate::metrics::Claim;
use crate::store::StoreError;

/// How long after another node's commit in a realm this node's batches
/// there take their locks first.
pub(super) const CONTENDED_FOR: Duration = Duration::from_secs(1);

/// When this node last saw another node write to each realm.
#[derive(Default)]
pub(super) struct Contention {
    seen: HashMap<RealmId, Instant>,
}

impl Contention {
    /// Another node wrote to `realm_id` (its commit was installed here, or
    /// it took ids a claim expected).
    pub(super) fn saw(&mut self, realm_id: RealmId) {
        self.seen.insert(realm_id, Instant::now());
    }

    /// Whether another node wrote to one of `realms` within
    /// [`CONTENDED_FOR`]; forgets what is older.
    fn any(&mut self, realms: &[RealmId]) -> bool {
        if self.seen.is_empty() {
            return false;
        }
        let now = Instant::now();
        self.seen
            .retain(|_, at| now.duration_since(*at) < CONTENDED_FOR);
        realms.iter().any(|realm| self.seen.contains_key(realm))
    }
}

impl Writer {
    /// Runs `changes` as a claimed batch if they are all reports, the
    /// store has claimed batches and no other node wrote to their realms
    /// lately: each change's outcome. `None` if the batch was not tried,
    /// or lost its claim (nothing was written): the caller runs it locked.
    pub(super) fn run_claimed(&mut self, changes: &[Change]) -> Option<Vec<Outcome>> {
        if !changes.iter().all(Change::is_report) {
            return None;
        }
        let mut realms: Vec<RealmId> = changes.iter().map(|c| c.who().realm_id).collect();
        realms.sort_unstable();
        realms.dedup();
        if self.contention.any(&realms) {
            return None;
        }
        let expected: Vec<UpdateId> = realms.iter().map(|&realm| self.known(realm)).collect();
        if !self.store.begin_claiming(&realms, &expected) {
            return None;
        }
        let reports: Vec<Change> = changes.iter().filter_map(copy_report).collect();
        let mut batch = Batch::default();
        let outcomes = reports
            .into_iter()
            .map(|change| self.evaluate(&mut batch, change))
            .collect();
        let started = Instant::now();
        match self.commit(&batch) {
            Err(StoreError::ClaimLost) => {
                self.metrics.claim(Claim::Lost);
                tracing::debug!(realms = ?realms, "claim lost; the batch runs locked");
                for realm in realms {
                    self.contention.saw(realm);
                }
                None
            }
            committed => {
                if committed.is_ok() && !batch.mutations.is_empty() {
                    self.metrics.claim(Claim::Committed);
                }
                Some(self.settle(&mut batch, outcomes, committed, started))
            }
        }
    }
}

/// A copy of `change` if it is a report (its client's name shared), else
/// `None`: a claimed batch keeps its changes to run again if it loses.
fn copy_report(change: &Change) -> Option<Change> {
    match change {
        Change::Report {
            who,
            client,
            active,
            now,
        } => Some(Change::Report {
            who: *who,
            client: client.clone(),
            active: *active,
            now: *now,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_realms_another_node_wrote_to_are_contended() {
        let mut contention = Contention::default();
        let (acme, zeta) = (RealmId(1), RealmId(2));
        assert!(!contention.any(&[acme, zeta]));
        contention.saw(zeta);
        assert!(!contention.any(&[acme]));
        assert!(contention.any(&[acme, zeta]));
        // What was seen long ago is forgotten.
        contention
            .seen
            .insert(acme, Instant::now() - CONTENDED_FOR * 2);
        assert!(!contention.any(&[acme]));
        assert!(!contention.seen.contains_key(&acme));
        assert!(contention.any(&[zeta]));
    }
}
