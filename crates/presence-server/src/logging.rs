//! The log's subscriber: the format of its lines (`--log-format`), and the
//! escaping that keeps every event on one line.
//!
//! A logged value may come from a client (a path, a client name), so it
//! must not be able to start a line of its own, forge one, or send a
//! terminal escape: in text lines, control characters and the Unicode line
//! and paragraph separators in values are written as escapes. JSON escapes
//! the control characters itself; `log_writer` escapes the separators
//! (and the other C1 controls) that JSON leaves bare.

use std::fmt::{self, Write as _};

use tracing::field::Field;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::{Writer, debug_fn};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;
use crate::{log_writer, request_log};

/// Sends the log, in `format`, through the log's buffer (see
/// [`log_writer`]), or straight to standard error if its thread cannot
/// start. `RUST_LOG` chooses what is logged (default `info`).
pub fn init(format: LogFormat) {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let buffer = log_writer::start(format == LogFormat::Json);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match (format, buffer) {
        (LogFormat::Json, Ok(buffer)) => {
            request_log::write_directly(buffer, true);
            json_subscriber(filter(), buffer).init();
        }
        // Without the buffer nothing escapes the separators: JSON's own
        // escapes still keep each line whole for any reader that splits
        // on `\n` alone.
        (LogFormat::Json, Err(_)) => json_subscriber(filter(), std::io::stderr).init(),
        (LogFormat::Text, Ok(buffer)) => {
            // On a terminal the subscriber writes even request lines, for
            // its colours.
            if !ansi {
                request_log::write_directly(buffer, false);
            }
            text_subscriber(filter(), ansi, buffer).init();
        }
        (LogFormat::Text, Err(_)) => text_subscriber(filter(), ansi, std::io::stderr).init(),
    }
}

/// The text form: the default format, with every value escaped (see
/// [`write_field`]) and colours only on a terminal (`ansi`).
pub(crate) fn text_subscriber<W>(
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .fmt_fields(debug_fn(write_field).delimited(" "))
        .with_writer(writer)
        .finish()
}

/// The JSON form (see [`json`]).
pub(crate) fn json_subscriber<W>(
    filter: EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    json(tracing_subscriber::fmt().with_env_filter(filter))
        .with_writer(writer)
        .finish()
}

/// The JSON form: the event's fields at the top level of its object, beside
/// `timestamp`, `level` and `target`, as the text form shows them.
fn json(
    builder: tracing_subscriber::fmt::SubscriberBuilder<
        tracing_subscriber::fmt::format::DefaultFields,
        tracing_subscriber::fmt::format::Format,
        EnvFilter,
    >,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::JsonFields,
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>,
    EnvFilter,
> {
    builder
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
}

/// One field of a text line, as the default formatter writes it (the
/// message bare, others `name=value`), with its value escaped.
fn write_field(writer: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    let mut out = Escaping(writer);
    match field.name() {
        "message" => write!(out, "{value:?}"),
        name => write!(out, "{}={value:?}", name.trim_start_matches("r#")),
    }
}

/// Whether a character may not appear bare in a text line: it could end
/// the line (for some reader) or drive a terminal.
fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Writes through to `W`, with the characters [`needs_escape`] names as
/// `\n`, `\r`, `\t` or `\u{..}`.
struct Escaping<'a, W: fmt::Write>(&'a mut W);

/// A writer into `out` that escapes as text lines do.
pub(crate) fn escaping<W: fmt::Write>(out: &mut W) -> impl fmt::Write + '_ {
    Escaping(out)
}

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Almost every value is printable ASCII: one pass, one write.
        if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return self.0.write_str(s);
        }
        let mut start = 0;
        for (at, c) in s.char_indices() {
            if !needs_escape(c) {
                continue;
            }
            self.0.write_str(&s[start..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            start = at + c.len_utf8();
        }
        self.0.write_str(&s[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        write!(Escaping(&mut out), "{text}").unwrap();
        out
    }

    #[test]
    fn breaks_separators_and_escapes_are_escaped_and_the_rest_kept() {
        assert_eq!(escaped("/api/v1/users/me"), "/api/v1/users/me");
        assert_eq!(
            escaped("a\nb\rc\td\u{1b}[31me\u{85}f\u{2028}g\u{2029}h\u{7f}"),
            "a\\nb\\rc\\td\\u{1b}[31me\\u{85}f\\u{2028}g\\u{2029}h\\u{7f}"
        );
        assert_eq!(escaped("café €"), "café €");
    }
}
