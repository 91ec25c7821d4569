//! Realm-wide answers, serialized once and shared as bytes.
//!
//! Everyone in a realm polls everyone's presence, so the same answer is
//! asked for over and over. Each realm keeps answers stamped with the
//! realm's version, and hands the bytes out again while the version is the
//! same and the answer still is the one asked for.
//!
//! **What one answer serves.** The answer for a history window lists the
//! users whose last report is at or after the window's start. It is
//! therefore the answer for every start that takes in no other user and
//! leaves out none of these: every start after the latest report it left
//! out, and at or before the earliest report it kept. An entry remembers
//! that [`Span`]; any request in the same format, at the same version,
//! whose start falls in it gets the same bytes. The span is also all the
//! expiry an entry needs: a window's start moves on with the clock, and
//! once it passes the earliest kept report that user has aged out and the
//! entry no longer serves it. Every window that reaches back past the
//! realm's oldest report is one answer, whatever number of days it names;
//! so is every window between two reports.
//!
//! **Why a caller cannot thrash it.** `history_limit_days` is the caller's
//! to choose. With answers kept by window in one short list, a caller who
//! varied it on every request made the realm's answer be built every time
//! (tens of milliseconds for a large realm) and pushed everyone else's
//! answers out. Now:
//! - the default window's answer has a slot per format that only a
//!   default-window request replaces (a request naming the default's
//!   number of days is one);
//! - other windows share [`OTHERS_KEPT`] slots, the least recently used
//!   going first, behind a lock of their own, so building one never holds
//!   up a default-window reader;
//! - any request is served by a kept answer whose span holds its start,
//!   the default one's included.
//!
//! A caller who varies the window pays, within its rate limit, for each
//! different answer it asks for; it cannot make anyone else's be built
//! again, and what it can make the realm hold is bounded.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::compression::Deflated;
use crate::ids::UpdateId;

/// How many answers for windows other than the default one a realm keeps,
/// over both formats: enough for a client or two that ask for a window of
/// their own, and a bound on what callers choosing windows can hold.
pub const OTHERS_KEPT: usize = 2;

/// The two formats of a realm-wide answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Legacy per-client presence keyed by email.
    Legacy,
    /// Modern timestamps keyed by user id.
    Modern,
}

impl Format {
    /// The format's default-window slot.
    fn slot(self) -> usize {
        match self {
            Format::Legacy => 0,
            Format::Modern => 1,
        }
    }
}

/// Whether a request asks for the configured history window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The configured window (no `history_limit_days`, or its value).
    Default,
    /// Any other window.
    Other,
}

/// The window starts an answer is the answer for: after the latest report
/// it left out, and at or before the earliest report it kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// The latest last report of a user left out, if any.
    pub left_out: Option<i64>,
    /// The earliest last report of a user kept, if any.
    pub kept_from: Option<i64>,
}

impl Span {
    /// Notes a user left out, last seen at `seen`.
    pub fn leave_out(&mut self, seen: i64) {
        self.left_out = Some(self.left_out.map_or(seen, |t| t.max(seen)));
    }

    /// Notes a user kept, last seen at `seen`.
    pub fn keep(&mut self, seen: i64) {
        self.kept_from = Some(self.kept_from.map_or(seen, |t| t.min(seen)));
    }

    /// Whether the answer is the answer for a window starting at `start`.
    pub fn serves(&self, start: i64) -> bool {
        self.left_out.is_none_or(|t| t < start) && self.kept_from.is_none_or(|t| start <= t)
    }
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
    pub last_update_id: Option<UpdateId>,
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
            last_update_id: Some(UpdateId::NONE_ON_WIRE),
        })
    }
}

struct Entry {
    format: Format,
    version: u64,
    span: Span,
    answer: Arc<SharedAnswer>,
}

impl Entry {
    fn serves(&self, format: Format, version: u64, start: i64) -> bool {
        self.format == format && self.version == version && self.span.serves(start)
    }
}

/// A realm's shared answers.
#[derive(Default)]
pub struct AnswerCache {
    /// The default window's answer, by [`Format::slot`].
    default: [Mutex<Option<Entry>>; 2],
    /// Other windows' answers, the most recently used last.
    others: Mutex<Vec<Entry>>,
}

impl AnswerCache {
    /// The answer in `format` for a `window` starting at `start`, at realm
    /// `version`, built by `build` (which returns it and its span) unless a
    /// kept one serves.
    ///
    /// A slot's lock is held while building, so readers that miss together
    /// wait for one build instead of all doing it.
    pub fn get_or_build(
        &self,
        format: Format,
        window: Window,
        version: u64,
        start: i64,
        build: impl FnOnce() -> (SharedAnswer, Span),
    ) -> Arc<SharedAnswer> {
        let mut default = self.default[format.slot()].lock();
        if let Some(entry) = default
            .as_ref()
            .filter(|e| e.serves(format, version, start))
        {
            return entry.answer.clone();
        }
        if window == Window::Default {
            let entry = Self::build(format, version, build);
            let answer = entry.answer.clone();
            *default = Some(entry);
            return answer;
        }
        drop(default);
        let mut others = self.others.lock();
        if let Some(at) = others.iter().position(|e| e.serves(format, version, start)) {
            let entry = others.remove(at);
            let answer = entry.answer.clone();
            others.push(entry);
            return answer;
        }
        let entry = Self::build(format, version, build);
        let answer = entry.answer.clone();
        // An answer of an older version can never serve again.
        others.retain(|e| e.version == version);
        if others.len() >= OTHERS_KEPT {
            others.remove(0);
        }
        others.push(entry);
        answer
    }

    fn build(format: Format, version: u64, build: impl FnOnce() -> (SharedAnswer, Span)) -> Entry {
        let (answer, span) = build();
        Entry {
            format,
            version,
            span,
            answer: Arc::new(answer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer tagged `tag` that kept users last seen from 100 on and left
    /// out one last seen at 50.
    fn answer(tag: &'static str) -> (SharedAnswer, Span) {
        (
            SharedAnswer {
                presences: Bytes::from_static(tag.as_bytes()),
                deflated: OnceLock::new(),
                last_update_id: None,
            },
            Span {
                left_out: Some(50),
                kept_from: Some(100),
            },
        )
    }

    fn unbuilt() -> (SharedAnswer, Span) {
        panic!("built where a kept answer serves")
    }

    #[test]
    fn serves_the_starts_of_its_span_at_its_version() {
        let cache = AnswerCache::default();
        let a = cache.get_or_build(Format::Legacy, Window::Default, 1, 100, || answer("a"));
        for start in [51, 75, 100] {
            let again = cache.get_or_build(Format::Legacy, Window::Default, 1, start, unbuilt);
            assert!(Arc::ptr_eq(&a, &again), "{start}");
        }
        // Past the earliest kept report, someone aged out.
        let later = cache.get_or_build(Format::Legacy, Window::Default, 1, 101, || answer("b"));
        assert_eq!(&later.presences[..], b"b");
        // At or before the latest left out, someone more is in.
        let wider = cache.get_or_build(Format::Legacy, Window::Default, 1, 50, || answer("c"));
        assert_eq!(&wider.presences[..], b"c");
        let newer = cache.get_or_build(Format::Legacy, Window::Default, 2, 75, || answer("d"));
        assert_eq!(&newer.presences[..], b"d");
        let other = cache.get_or_build(Format::Modern, Window::Default, 2, 75, || answer("e"));
        assert_eq!(&other.presences[..], b"e");
    }

    #[test]
    fn other_windows_never_evict_the_default_ones() {
        let cache = AnswerCache::default();
        let legacy = cache.get_or_build(Format::Legacy, Window::Default, 1, 100, || answer("l"));
        let modern = cache.get_or_build(Format::Modern, Window::Default, 1, 100, || answer("m"));
        for start in 0..50 {
            cache.get_or_build(Format::Legacy, Window::Other, 1, start, || answer("x"));
            cache.get_or_build(Format::Modern, Window::Other, 1, start, || answer("x"));
        }
        assert!(cache.others.lock().len() <= OTHERS_KEPT);
        let again = cache.get_or_build(Format::Legacy, Window::Default, 1, 100, unbuilt);
        assert!(Arc::ptr_eq(&legacy, &again));
        let again = cache.get_or_build(Format::Modern, Window::Default, 1, 100, unbuilt);
        assert!(Arc::ptr_eq(&modern, &again));
        // Another window whose start the default answer's span holds is served by it.
        let same = cache.get_or_build(Format::Modern, Window::Other, 1, 60, unbuilt);
        assert!(Arc::ptr_eq(&modern, &same));
    }

    #[test]
    fn other_windows_keep_the_most_recently_used() {
        let cache = AnswerCache::default();
        let span = |from: i64| Span {
            left_out: Some(from - 10),
            kept_from: Some(from),
        };
        let build = |tag: &'static str, from: i64| {
            move || {
                let (answer, _) = answer(tag);
                (answer, span(from))
            }
        };
        let a = cache.get_or_build(Format::Legacy, Window::Other, 1, 100, build("a", 100));
        cache.get_or_build(Format::Legacy, Window::Other, 1, 200, build("b", 200));
        // Using `a` makes `b` the one to go when `c` comes.
        cache.get_or_build(Format::Legacy, Window::Other, 1, 95, unbuilt);
        cache.get_or_build(Format::Legacy, Window::Other, 1, 300, build("c", 300));
        let still = cache.get_or_build(Format::Legacy, Window::Other, 1, 100, unbuilt);
        assert!(Arc::ptr_eq(&a, &still));
        let b = cache.get_or_build(Format::Legacy, Window::Other, 1, 200, build("b2", 200));
        assert_eq!(&b.presences[..], b"b2");
        // A new version drops every answer of the old one.
        cache.get_or_build(Format::Legacy, Window::Other, 2, 100, build("d", 100));
        assert_eq!(cache.others.lock().len(), 1);
    }

    #[test]
    fn spans_hold_the_starts_between_the_reports() {
        let mut span = Span::default();
        assert!(
            span.serves(i64::MIN) && span.serves(i64::MAX),
            "nobody at all"
        );
        span.leave_out(10);
        span.leave_out(20);
        span.keep(40);
        span.keep(30);
        assert_eq!((span.left_out, span.kept_from), (Some(20), Some(30)));
        assert!(!span.serves(20) && span.serves(21) && span.serves(30) && !span.serves(31));
    }
}
