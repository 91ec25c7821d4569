//! Standard output, written so that a reader that goes away (`| head`)
//! ends the command quietly instead of with a panic: every line is a write
//! whose error the command returns, and `main` turns a broken pipe into the
//! exit code a shell gives a process ended by SIGPIPE.

use std::fmt::Display;
use std::io::Write;

/// The exit code of a command whose reader went away.
pub const BROKEN_PIPE: u8 = 141;

/// Writes one line to standard output.
pub fn line(text: impl Display) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// Whether a failure is only that standard output's reader went away.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
