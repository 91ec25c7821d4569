//! Realm-wide answers, serialized once and shared as bytes.
//!
//! Everyone in a realm polls everyone's presence, so the same answer is
//! asked for over and over. Each realm keeps its recent answers keyed by
//! (format, history window) and stamped with the realm's version: while the
//! version is the same and no included user has aged out of the window, the
//! bytes are handed out again instead of being rebuilt.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::compression::Deflated;

/// How many answers a realm keeps (distinct windows are rare: most clients
/// send the default).
const KEPT: usize = 4;

/// The two formats of a realm-wide answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Legacy per-client presence keyed by email.
    Legacy,
    /// Modern timestamps keyed by user id.
    Modern,
}

/// A serialized realm-wide answer.
#[derive(Debug)]
pub struct SharedAnswer {
    /// The `presences` object, as JSON.
    pub presences: Bytes,
    /// The `presences` bytes compressed, made when a client first asks for gzip.
    pub deflated: OnceLock<Deflated>,
    /// The `presence_last_update_id` this answer fixes: the largest update
    /// id among its users, -1 for a realm with presence disabled, and `None`
    /// when it is empty for any other reason (the caller's own id stands).
    pub last_update_id: Option<i64>,
}

impl SharedAnswer {
    /// The answer with nobody in it.
    pub fn empty() -> Arc<SharedAnswer> {
        Arc::new(SharedAnswer {
            presences: Bytes::from_static(b"{}"),
            deflated: OnceLock::new(),
            last_update_id: None,
        })
    }

    /// The answer of a realm with presence disabled: nobody, and -1.
    pub fn disabled() -> Arc<SharedAnswer> {
        Arc::new(SharedAnswer {
            presences: Bytes::from_static(b"{}"),
            deflated: OnceLock::new(),
            last_update_id: Some(-1),
        })
    }
}

struct Entry {
    format: Format,
    days: i64,
    version: u64,
    /// The last Unix second at which every included user is still inside
    /// the window.
    valid_until: i64,
    answer: Arc<SharedAnswer>,
}

/// A realm's recent answers.
#[derive(Default)]
pub struct AnswerCache {
    entries: Mutex<Vec<Entry>>,
}

impl AnswerCache {
    /// The answer for `(format, days)` at realm `version` and time `now`,
    /// built by `build` (which returns the answer and its `valid_until`)
    /// unless a current one is kept.
    ///
    /// The lock is held while building, so readers that miss together wait
    /// for one build instead of all doing it.
    pub fn get_or_build(
        &self,
        format: Format,
        days: i64,
        version: u64,
        now: i64,
        build: impl FnOnce() -> (SharedAnswer, i64),
    ) -> Arc<SharedAnswer> {
        let mut entries = self.entries.lock();
        if let Some(entry) = entries.iter().find(|e| {
            e.format == format && e.days == days && e.version == version && now <= e.valid_until
        }) {
            return entry.answer.clone();
        }
        let (answer, valid_until) = build();
        let answer = Arc::new(answer);
        entries.retain(|e| !(e.format == format && e.days == days));
        if entries.len() >= KEPT {
            entries.remove(0);
        }
        entries.push(Entry {
            format,
            days,
            version,
            valid_until,
            answer: answer.clone(),
        });
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(tag: &'static str) -> (SharedAnswer, i64) {
        (
            SharedAnswer {
                presences: Bytes::from_static(tag.as_bytes()),
                deflated: OnceLock::new(),
                last_update_id: None,
            },
            100,
        )
    }

    #[test]
    fn reuses_until_the_version_or_the_window_moves() {
        let cache = AnswerCache::default();
        let a = cache.get_or_build(Format::Legacy, 14, 1, 50, || answer("a"));
        let again = cache.get_or_build(Format::Legacy, 14, 1, 100, || answer("b"));
        assert!(Arc::ptr_eq(&a, &again));
        let newer = cache.get_or_build(Format::Legacy, 14, 2, 100, || answer("c"));
        assert_eq!(&newer.presences[..], b"c");
        let later = cache.get_or_build(Format::Legacy, 14, 2, 101, || answer("d"));
        assert_eq!(&later.presences[..], b"d");
        let other = cache.get_or_build(Format::Modern, 14, 2, 101, || answer("e"));
        assert_eq!(&other.presences[..], b"e");
    }

    #[test]
    fn keeps_a_bounded_number() {
        let cache = AnswerCache::default();
        for days in 0..10 {
            cache.get_or_build(Format::Legacy, days, 1, 0, || answer("x"));
        }
        assert_eq!(cache.entries.lock().len(), KEPT);
    }
}
