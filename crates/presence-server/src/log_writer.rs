//! Where log lines go: a bounded buffer in memory, written to standard
//! error by a thread of its own.
//!
//! Every request logs a line, and a request must never wait for its line:
//! a reader of standard error that stalls (a full pipe nobody drains) would
//! otherwise stall every request behind it. So a line is appended to the
//! buffer under a short lock, and only the `log-writer` thread ever writes
//! to standard error. When the buffer is full, the line is dropped whole
//! and counted, never waited for; once the writer can go on, it logs one
//! line saying how many were dropped. [`flush`], called before the process
//! exits, waits for what is pending to be written, but only so long: a
//! stalled reader must not hang the exit.
//!
//! The writer thread wakes for the first line of a batch and lets the next
//! ones gather for [`GATHER`] before it writes them all at once: a busy
//! server pays one wake-up and one `write` per few milliseconds of lines.
//!
//! The formatter writes each event with one `write` of the whole line, so
//! "a write" and "a line" are the same thing here.

use std::cell::Cell;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// The most bytes of lines waiting to be written; past it, lines are dropped.
pub const CAPACITY: usize = 1024 * 1024;

/// How long the writer thread lets lines gather once the first of a batch
/// wakes it: under load, one wake-up and one write serve every line of a
/// few milliseconds, instead of one each. Lines reach standard error that
/// much later, which nobody reading a log can tell.
pub const GATHER: Duration = Duration::from_millis(5);

/// How long [`flush`] waits for the writer before giving up on the rest.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(2);

thread_local! {
    /// Set on the writer thread: its own lines (the dropped-lines summary)
    /// are never dropped, or a count would be lost for good.
    static ON_WRITER_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// The lines waiting for standard error, and what became of earlier ones.
#[derive(Debug, Default)]
struct State {
    pending: Vec<u8>,
    /// Lines dropped since the writer last said so.
    dropped: u64,
    /// Lines dropped since the process started.
    dropped_total: u64,
    /// Bytes ever taken into `pending`.
    accepted: u64,
    /// Bytes ever taken out of `pending` and written (or failed to write).
    written: u64,
}

/// The log's buffer and the signals between its writers and its thread.
#[derive(Debug, Default)]
pub struct LogBuffer {
    state: Mutex<State>,
    /// Wakes the writer thread: there is something to write.
    wake: Condvar,
    /// Wakes [`flush`]: the writer thread has written a batch.
    written: Condvar,
    /// Escape U+0085, U+2028 and U+2029 (and the other C1 controls), which
    /// a JSON encoder leaves bare but some readers take as line breaks.
    escape_separators: bool,
}

/// The process's one buffer, once [`start`] has made it.
static BUFFER: OnceLock<LogBuffer> = OnceLock::new();

/// Makes the process's buffer and starts the thread that writes it to
/// standard error. Fails only if the thread cannot be started; the caller
/// then logs to standard error directly.
pub fn start(escape_separators: bool) -> io::Result<&'static LogBuffer> {
    let mut made = false;
    let buffer = BUFFER.get_or_init(|| {
        made = true;
        LogBuffer {
            escape_separators,
            ..LogBuffer::default()
        }
    });
    if made {
        std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || buffer.write_out(io::stderr()))?;
    }
    Ok(buffer)
}

/// Writes out what the log holds, waiting at most [`FLUSH_DEADLINE`]; call
/// before the process exits. Returns whether everything was written.
pub fn flush() -> bool {
    BUFFER
        .get()
        .is_none_or(|buffer| buffer.flush_within(FLUSH_DEADLINE))
}

/// How many lines have been dropped since the process started, because
/// standard error was not read fast enough.
pub fn dropped_total() -> u64 {
    BUFFER
        .get()
        .map_or(0, |buffer| buffer.state.lock().dropped_total)
}

impl LogBuffer {
    /// Takes a line, or drops and counts it if the buffer is full.
    pub fn append(&self, line: &[u8]) {
        let mut state = self.state.lock();
        let exempt = ON_WRITER_THREAD.with(Cell::get);
        // Escaping can only lengthen a line by a few bytes: the bound is
        // kept to within that.
        if !exempt && state.pending.len() + line.len() > CAPACITY {
            let lines = line.iter().filter(|&&b| b == b'\n').count().max(1) as u64;
            state.dropped += lines;
            state.dropped_total += lines;
            return;
        }
        let was_empty = state.pending.is_empty();
        let before = state.pending.len();
        if self.escape_separators {
            extend_escaping_separators(&mut state.pending, line);
        } else {
            state.pending.extend_from_slice(line);
        }
        state.accepted += (state.pending.len() - before) as u64;
        drop(state);
        // Only the first line of a batch wakes the writer; while it writes,
        // the lines after it gather without a wake-up each.
        if was_empty {
            self.wake.notify_one();
        }
    }

    /// The writer thread: forever takes what is pending and writes it to
    /// `sink`, first saying how many lines were dropped, if any were.
    fn write_out(&self, mut sink: impl Write) {
        ON_WRITER_THREAD.with(|on| on.set(true));
        let mut batch = Vec::new();
        loop {
            let mut state = self.state.lock();
            while state.pending.is_empty() && state.dropped == 0 {
                self.wake.wait(&mut state);
            }
            // Lines appended meanwhile find the buffer not empty and wake
            // nobody: they go out with this batch.
            drop(state);
            std::thread::sleep(GATHER);
            state = self.state.lock();
            let dropped = state.dropped;
            if dropped > 0 {
                // Logged through the subscriber, so that it takes the
                // log's format; it lands where the lines went missing.
                drop(state);
                tracing::warn!(
                    dropped,
                    "log lines dropped: standard error was not read fast enough"
                );
                state = self.state.lock();
                state.dropped -= dropped;
            }
            // The buffers trade places: neither is allocated again.
            std::mem::swap(&mut state.pending, &mut batch);
            drop(state);
            // Nowhere to report a failure to write the log; the lines are
            // counted as written so that `flush` does not wait for them.
            let _ = sink.write_all(&batch);
            let _ = sink.flush();
            let mut state = self.state.lock();
            state.written += batch.len() as u64;
            drop(state);
            batch.clear();
            self.written.notify_all();
        }
    }

    /// Waits until every line taken before the call (and the dropped-lines
    /// summary, if one is due) is written, at most `limit`.
    fn flush_within(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut state = self.state.lock();
        let mut target = state.accepted;
        let mut summary_due = false;
        loop {
            if state.dropped > 0 {
                summary_due = true;
            } else if summary_due {
                // The summary is in now: wait for it too.
                summary_due = false;
                target = state.accepted;
            }
            if !summary_due && state.written >= target {
                return true;
            }
            if self.written.wait_until(&mut state, deadline).timed_out() {
                return false;
            }
        }
    }
}

/// Appends `line` to `out` with the C1 controls (U+0080 to U+009F, among
/// them U+0085) and U+2028 and U+2029 as JSON escapes. In a JSON line they
/// can only be inside strings, where the escape means the same character.
fn extend_escaping_separators(out: &mut Vec<u8>, line: &[u8]) {
    let mut rest = line;
    while let Some(at) = rest.iter().position(|&b| b == 0xC2 || b == 0xE2) {
        let (head, tail) = rest.split_at(at);
        out.extend_from_slice(head);
        let escaped = match tail {
            [0xC2, second @ 0x80..=0x9F, ..] => Some((u32::from(*second), 2)),
            [0xE2, 0x80, third @ (0xA8 | 0xA9), ..] => Some((0x2000 + u32::from(*third - 0x80), 3)),
            _ => None,
        };
        match escaped {
            Some((code, len)) => {
                out.extend_from_slice(format!("\\u{code:04x}").as_bytes());
                rest = &tail[len..];
            }
            None => {
                out.push(tail[0]);
                rest = &tail[1..];
            }
        }
    }
    out.extend_from_slice(rest);
}

/// One log line's writer.
#[derive(Debug)]
pub struct LineWriter<'a>(&'a LogBuffer);

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The form the log subscriber takes: the process's one buffer.
impl<'a> MakeWriter<'a> for &'static LogBuffer {
    type Writer = LineWriter<'static>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_buffer_drops_whole_lines_and_counts_them() {
        let buffer = LogBuffer::default();
        let line = vec![b'x'; 1000];
        let mut line = line;
        line.push(b'\n');
        let fit = CAPACITY / line.len();
        for _ in 0..fit + 5 {
            LineWriter(&buffer).write_all(&line).unwrap();
        }
        let state = buffer.state.lock();
        assert_eq!(state.pending.len(), fit * line.len());
        assert!(state.pending.ends_with(b"x\n"), "no line is cut");
        assert_eq!((state.dropped, state.dropped_total), (5, 5));
        assert_eq!(state.accepted, state.pending.len() as u64);
    }

    #[test]
    fn flush_gives_up_at_its_deadline_when_nothing_writes() {
        let buffer = LogBuffer::default();
        LineWriter(&buffer).write_all(b"stuck\n").unwrap();
        let started = Instant::now();
        assert!(!buffer.flush_within(Duration::from_millis(50)));
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(LogBuffer::default().flush_within(Duration::ZERO));
    }

    #[test]
    fn the_writer_thread_writes_what_is_pending_and_flush_sees_it() {
        #[derive(Clone, Default)]
        struct Sink(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                self.0.lock().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let buffer: &'static LogBuffer = Box::leak(Box::default());
        let sink = Sink::default();
        let out = sink.clone();
        std::thread::spawn(move || buffer.write_out(sink));
        LineWriter(buffer).write_all(b"one\n").unwrap();
        LineWriter(buffer).write_all(b"two\n").unwrap();
        assert!(buffer.flush_within(Duration::from_secs(10)));
        assert_eq!(*out.0.lock(), b"one\ntwo\n");
    }

    #[test]
    fn separators_become_json_escapes_and_the_rest_stays() {
        let mut out = Vec::new();
        let line = "{\"v\":\"a\u{85}b\u{2028}c\u{2029}d\u{9f}é€\u{2027}\"}\n";
        extend_escaping_separators(&mut out, line.as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"v\":\"a\\u0085b\\u2028c\\u2029d\\u009fé€\u{2027}\"}\n"
        );
    }
}
