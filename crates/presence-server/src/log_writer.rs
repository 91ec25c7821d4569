//! Where log lines go: standard error, in batches.
//!
//! Every request logs one line, so the log must be cheap. Writing each line
//! with its own system call cost about a sixth of the throughput of the
//! cheapest requests; here a line is appended to a buffer under a short
//! lock, and the buffer is written out every 100 ms, whenever it passes
//! 64 KiB, and at exit ([`flush`]). A process killed outright loses at most
//! the last 100 ms of its log, never anything it acknowledged.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;
use tracing_subscriber::fmt::MakeWriter;

/// How often the buffer is written out.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A buffer this full is written out at once.
const FLUSH_AT: usize = 64 * 1024;

/// The buffered standard error that the log writes to.
#[derive(Debug)]
pub struct BatchedStderr {
    pending: Mutex<Vec<u8>>,
    /// Held while writing out, so that batches reach stderr in order.
    writing: Mutex<()>,
}

/// The process's one buffered stderr, once [`batched_stderr`] has made it.
static STDERR: OnceLock<BatchedStderr> = OnceLock::new();

/// The process's buffered standard error, starting the thread that writes
/// it out the first time.
pub fn batched_stderr() -> &'static BatchedStderr {
    let mut started = false;
    let stderr = STDERR.get_or_init(|| {
        started = true;
        BatchedStderr {
            pending: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            writing: Mutex::new(()),
        }
    });
    if started {
        // Without the thread, lines would still be written at 64 KiB and
        // at exit; so a failure to start it is not fatal.
        let _ = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(|| {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                }
            });
    }
    stderr
}

/// Writes out whatever the log holds; call before the process exits.
pub fn flush() {
    if let Some(stderr) = STDERR.get() {
        stderr.write_out();
    }
}

impl BatchedStderr {
    fn write_out(&self) {
        let _writing = self.writing.lock();
        let batch = self.take_batch();
        if !batch.is_empty() {
            // Nowhere to report a failure to write the log.
            let _ = io::stderr().lock().write_all(&batch);
        }
    }

    /// Empties the buffer, returning what it held.
    fn take_batch(&self) -> Vec<u8> {
        std::mem::take(&mut *self.pending.lock())
    }

    /// Whether the buffer is past the size at which it is written out.
    fn is_full(&self) -> bool {
        self.pending.lock().len() >= FLUSH_AT
    }
}

/// One log line's writer.
#[derive(Debug)]
pub struct LineWriter<'a>(&'a BatchedStderr);

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.pending.lock().extend_from_slice(bytes);
        if self.0.is_full() {
            self.0.write_out();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

/// The form the log subscriber takes: the process's one buffer.
impl<'a> MakeWriter<'a> for &'static BatchedStderr {
    type Writer = LineWriter<'static>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_in_order_until_taken() {
        let stderr = BatchedStderr {
            pending: Mutex::new(Vec::new()),
            writing: Mutex::new(()),
        };
        let mut line = stderr.make_writer();
        line.write_all(b"one\n").unwrap();
        stderr.make_writer().write_all(b"two\n").unwrap();
        assert!(!stderr.is_full());
        assert_eq!(stderr.take_batch(), b"one\ntwo\n");
        assert!(stderr.take_batch().is_empty());
        stderr.pending.lock().resize(FLUSH_AT, b'x');
        assert!(stderr.is_full());
    }
}
