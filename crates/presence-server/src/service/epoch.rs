//! [`DirectoryEpoch`]: a count that moves whenever the directory in memory
//! changes in a way that could alter how an API key authenticates, or as
//! whom, so that a caller authenticated from the directory can be kept
//! until then.
//!
//! The credential cache keeps, beside each verified header, the caller it
//! authenticated as, tagged with the epoch it was read under, and uses it
//! only while the epoch is the same: a key reset, a deactivation, a
//! deletion or an email change is installed by the writer, which moves
//! the epoch, so none of them is missed (docs/ARCHITECTURE.md, "The
//! credential cache").
//!
//! The writer moves it before it starts installing such a change and again
//! when it is done. A reader takes the epoch before it reads the
//! directory; what it read is kept under that epoch, and matches a later
//! reading only if no change began or ended in between: a reader that saw
//! half a change has an epoch the end of the change moves past.

use std::sync::atomic::{AtomicU64, Ordering};

/// The directory's epoch (see the module's documentation).
#[derive(Debug, Default)]
pub struct DirectoryEpoch(AtomicU64);

/// One reading of a [`DirectoryEpoch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

impl DirectoryEpoch {
    /// The epoch now: take it before reading the directory.
    pub fn current(&self) -> Epoch {
        Epoch(self.0.load(Ordering::Acquire))
    }

    /// Runs `change`, which changes the directory in memory, with the
    /// epoch moved before and after it.
    pub(crate) fn changing<T>(&self, change: impl FnOnce() -> T) -> T {
        self.0.fetch_add(1, Ordering::AcqRel);
        let out = change();
        self.0.fetch_add(1, Ordering::AcqRel);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_moves_the_epoch_before_and_after_it() {
        let epoch = DirectoryEpoch::default();
        let before = epoch.current();
        let during = epoch.changing(|| epoch.current());
        let after = epoch.current();
        assert_ne!(before, during, "a reader inside a change sees it begun");
        assert_ne!(during, after, "and what it read is outdated at the end");
        assert_ne!(before, after);
        assert_eq!(after, epoch.current(), "nothing moves it but a change");
    }
}
