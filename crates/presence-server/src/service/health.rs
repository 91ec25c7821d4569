//! What the writer last learned of the store, for readiness probes.
//!
//! The writer is the only thread that talks to the store, so it is the one
//! that knows whether the store answers. It records two things here, each
//! set and cleared by the writer alone and read by anyone without a lock:
//! whether its last look at the store (catching up with others' changes, or
//! opening a batch) failed, and whether its last write (a batch's commit,
//! or this node's periodic report) failed. They are kept apart because the
//! looks come every `directory_poll_ms` and the writes far less often: a
//! store that still reads but refuses writes (a read-only file, a full
//! disk) would otherwise seem to recover at every look.

use std::sync::atomic::{AtomicBool, Ordering};

/// The writer's latest word on the store.
#[derive(Debug, Default)]
pub struct StoreHealth {
    looks_failing: AtomicBool,
    writes_failing: AtomicBool,
}

impl StoreHealth {
    /// Whether the store failed the writer's last look or its last write:
    /// writes are refused, or changes by others may go unseen.
    pub fn is_failing(&self) -> bool {
        self.looks_failing.load(Ordering::Relaxed) || self.writes_failing.load(Ordering::Relaxed)
    }

    /// Records the outcome of a look at the store.
    pub(crate) fn set_looks_failing(&self, failing: bool) {
        self.looks_failing.store(failing, Ordering::Relaxed);
    }

    /// Records the outcome of a write; whether this changes what was known.
    pub(crate) fn set_writes_failing(&self, failing: bool) -> bool {
        self.writes_failing.swap(failing, Ordering::Relaxed) != failing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_failure_makes_the_store_failing_until_it_clears() {
        let health = StoreHealth::default();
        assert!(!health.is_failing());
        health.set_looks_failing(true);
        assert!(health.is_failing());
        assert!(health.set_writes_failing(true));
        health.set_looks_failing(false);
        assert!(health.is_failing(), "a write still failing");
        assert!(!health.set_writes_failing(true), "no change");
        assert!(health.set_writes_failing(false));
        assert!(!health.is_failing());
    }
}
