//! The server's one source of time, injectable so tests can move it; and
//! the monotonic clock that times requests and connections.
//!
//! Every rule of the contract is about time (55 s coalescing, 70 s active
//! window, 200 s offline threshold, 14-day history); tests drive those rules
//! with a [`ManualClock`] instead of sleeping.
//!
//! Both clocks are read with one `clock_gettime` each, through `rustix`:
//! every request reads the time several times, and `std`'s `SystemTime`
//! and `Instant` add checked arithmetic on top of each reading that cost
//! more than the reading itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rustix::time::{ClockId, Timespec, clock_gettime};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Unix time in microseconds.
    fn now_micros(&self) -> i64;

    /// One reading, for work that needs the time in more than one form.
    fn now(&self) -> Now {
        Now {
            micros: self.now_micros(),
        }
    }

    /// Unix time in whole seconds (what presence records store).
    fn now_secs(&self) -> i64 {
        self.now().secs()
    }

    /// Unix time in fractional seconds (what `server_timestamp` carries).
    fn now_f64(&self) -> f64 {
        self.now().as_f64()
    }
}

/// One reading of a [`Clock`]: an answer that states the time and judges
/// records by it reads the clock once (a read costs more than the rest of
/// the arithmetic), and both agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    micros: i64,
}

impl Now {
    /// Unix time in whole seconds.
    pub fn secs(self) -> i64 {
        self.micros.div_euclid(1_000_000)
    }

    /// Unix time in fractional seconds.
    pub fn as_f64(self) -> f64 {
        self.micros as f64 / 1e6
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        let now = clock_gettime(ClockId::Realtime);
        now.tv_sec * 1_000_000 + now.tv_nsec / 1_000
    }
}

/// A reading of the monotonic clock: nanoseconds from an arbitrary start
/// (the machine's boot), never going back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticks(u64);

impl Ticks {
    /// The monotonic clock now.
    pub fn now() -> Ticks {
        Ticks(nanos(clock_gettime(ClockId::Monotonic)))
    }

    /// Milliseconds from the clock's start.
    pub fn millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// The time from `earlier` to this reading (zero if `earlier` is not
    /// earlier).
    pub fn since(self, earlier: Ticks) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// The time from this reading to now.
    pub fn elapsed(self) -> Duration {
        Ticks::now().since(self)
    }
}

/// A monotonic reading in nanoseconds; a monotonic clock is never
/// negative.
fn nanos(t: Timespec) -> u64 {
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs * 1_000_000_000 + nanos
}

/// A clock that stands still until told to move; for tests.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock showing `secs` Unix seconds.
    pub fn new(secs: i64) -> Self {
        ManualClock {
            micros: AtomicI64::new(secs * 1_000_000),
        }
    }

    /// Moves the clock forward (or back, with a negative value) by `secs`.
    pub fn advance(&self, secs: i64) {
        self.micros.fetch_add(secs * 1_000_000, Ordering::SeqCst);
    }

    /// Sets the clock to `secs` Unix seconds.
    pub fn set(&self, secs: i64) {
        self.micros.store(secs * 1_000_000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.micros.load(Ordering::SeqCst)
    }
}
