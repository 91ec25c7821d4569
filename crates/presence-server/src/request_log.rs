//! The line every request logs, written straight into the log's buffer.
//!
//! Formatting it through the subscriber (each field through `fmt::write`,
//! the time through a calendar computed per line) cost half as much again
//! as answering a single-user GET. Here the same bytes are written by hand:
//! the time's text is kept per second, numbers go through `itoa`, and the
//! few values that could need escaping are checked in one pass. A test
//! holds the bytes to what the subscriber writes for the same request, in
//! both formats.
//!
//! The subscriber still decides whether the line is logged at all
//! (`RUST_LOG`), and still writes it where this cannot: on a terminal
//! (whose colours only it knows) or when the log's buffer could not start.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::json_out;
use crate::log_writer::LogBuffer;

/// The target the request line is logged under, as `RUST_LOG` names it.
pub const TARGET: &str = "presence_server::http::pipeline";

/// One request's line.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    /// The request id (a client's is checked to be plain before it is kept).
    pub request_id: &'a str,
    /// The client's address.
    pub ip: IpAddr,
    /// The method.
    pub method: &'a str,
    /// The path, never the query.
    pub path: &'a str,
    /// The answer's status.
    pub status: u16,
    /// Microseconds from the request's start to its answer.
    pub micros: u64,
    /// The authenticated user, if any.
    pub user_id: Option<i64>,
    /// The embed key a page called with, if any.
    pub embed_key: Option<i64>,
}

/// Where and how the line is written directly, once the log is set up.
struct Direct {
    buffer: &'static LogBuffer,
    json: bool,
}

static DIRECT: OnceLock<Direct> = OnceLock::new();

/// Lets [`log`] write request lines straight into `buffer`, as JSON or as
/// text; not called when the log goes to a terminal.
pub fn write_directly(buffer: &'static LogBuffer, json: bool) {
    let _ = DIRECT.set(Direct { buffer, json });
}

/// Logs the line `make` gives, if `RUST_LOG` lets request lines through:
/// a line that would not be written is not gathered (the question is
/// asked once, since the filter's answer costs about as much as a field).
pub fn log<'a>(make: impl FnOnce() -> RequestLine<'a>) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let line = &make();
    match DIRECT.get() {
        Some(direct) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            LINE.with(|out| {
                // A line of the thread's own, reused: no allocation per request.
                let mut out = out.borrow_mut();
                out.clear();
                format_line(
                    &mut out,
                    line,
                    direct.json,
                    now.as_secs(),
                    now.subsec_micros(),
                );
                direct.buffer.append(&out);
            });
        }
        None => through_subscriber(line),
    }
}

/// The whole line, in JSON or in text, at the time `secs`.`micros`.
fn format_line(out: &mut Vec<u8>, line: &RequestLine<'_>, json: bool, secs: u64, micros: u32) {
    if json {
        out.extend_from_slice(b"{\"timestamp\":\"");
        write_time(out, secs, micros);
        write_json(out, line);
    } else {
        write_time(out, secs, micros);
        write_text(out, line);
    }
}

/// The line as the subscriber writes it (on a terminal, without the
/// buffer, and in the tests that hold [`log`] to it).
fn through_subscriber(line: &RequestLine<'_>) {
    tracing::info!(
        target: TARGET,
        request_id = %line.request_id,
        ip = %line.ip,
        method = %line.method,
        path = %line.path,
        status = line.status,
        micros = line.micros,
        user_id = line.user_id,
        embed_key = line.embed_key,
        "request"
    );
}

thread_local! {
    /// The line being written, kept from request to request.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The last second's text (`2026-11-30T11:10:50.`), made once a second.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `2026-11-30T11:10:50.851125Z`, as the subscriber writes the time.
fn write_time(out: &mut Vec<u8>, secs: u64, micros: u32) {
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != secs {
            let iso = crate::service::iso8601(i64::try_from(secs).unwrap_or(i64::MAX));
            // `2026-11-30T11:10:50+00:00`: the part before the offset.
            second.1 = format!("{}.", &iso[..19]);
            second.0 = secs;
        }
        out.extend_from_slice(second.1.as_bytes());
    });
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(micros.min(999_999));
    out.extend(std::iter::repeat_n(b'0', 6 - digits.len()));
    out.extend_from_slice(digits.as_bytes());
    out.push(b'Z');
}

/// The text line after its time.
fn write_text(out: &mut Vec<u8>, line: &RequestLine<'_>) {
    out.extend_from_slice(b"  INFO ");
    out.extend_from_slice(TARGET.as_bytes());
    out.extend_from_slice(b": request");
    write_fields(out, line, Style::Text);
    out.push(b'\n');
}

/// The JSON line after its time's text.
fn write_json(out: &mut Vec<u8>, line: &RequestLine<'_>) {
    out.extend_from_slice(br#"","level":"INFO","message":"request""#);
    write_fields(out, line, Style::Json);
    out.extend_from_slice(br#","target":""#);
    out.extend_from_slice(TARGET.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// How a line writes a field: ` name=value`, or `,"name":value` with
/// strings quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Text,
    Json,
}

/// A field's name with what each style writes around it before the value,
/// made at compile time: one copy per field.
#[derive(Debug, Clone, Copy)]
struct Name {
    text: &'static str,
    json: &'static str,
}

/// The [`Name`] of the field called `$name`.
macro_rules! name {
    ($name:literal) => {
        Name {
            text: concat!(" ", $name, "="),
            json: concat!(",\"", $name, "\":"),
        }
    };
}

impl Style {
    /// The field's name and what comes between it and its value.
    fn name(self, out: &mut Vec<u8>, name: Name) {
        out.extend_from_slice(match self {
            Style::Text => name.text.as_bytes(),
            Style::Json => name.json.as_bytes(),
        });
    }

    fn str(self, out: &mut Vec<u8>, name: Name, value: &str) {
        self.name(out, name);
        match self {
            Style::Text => text_value(out, value),
            Style::Json => json_out::write_str(out, value),
        }
    }

    fn int(self, out: &mut Vec<u8>, name: Name, value: impl itoa::Integer) {
        self.name(out, name);
        json_out::write_int(out, value);
    }

    fn ip(self, out: &mut Vec<u8>, name: Name, ip: IpAddr) {
        self.name(out, name);
        let quoted = self == Style::Json;
        if quoted {
            out.push(b'"');
        }
        write_ip(out, ip);
        if quoted {
            out.push(b'"');
        }
    }
}

/// The request's fields, in the order the subscriber writes them.
fn write_fields(out: &mut Vec<u8>, line: &RequestLine<'_>, style: Style) {
    style.str(out, name!("request_id"), line.request_id);
    style.ip(out, name!("ip"), line.ip);
    style.str(out, name!("method"), line.method);
    style.str(out, name!("path"), line.path);
    style.int(out, name!("status"), line.status);
    style.int(out, name!("micros"), line.micros);
    if let Some(id) = line.user_id {
        style.int(out, name!("user_id"), id);
    }
    if let Some(id) = line.embed_key {
        style.int(out, name!("embed_key"), id);
    }
}

/// An address: IPv4 by hand, the rest as `Display` writes it.
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                write_octet(out, octet);
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// An octet in decimal, its one to three digits pushed one by one.
fn write_octet(out: &mut Vec<u8>, n: u8) {
    if n >= 100 {
        out.push(b'0' + n / 100);
    }
    if n >= 10 {
        out.push(b'0' + n / 10 % 10);
    }
    out.push(b'0' + n % 10);
}

/// A value in a text line: as is when it is printable ASCII (a path, a
/// method, a request id, nearly always), else escaped as the subscriber's
/// text format escapes it.
fn text_value(out: &mut Vec<u8>, value: &str) {
    if json_out::is_printable_ascii(value.as_bytes()) {
        out.extend_from_slice(value.as_bytes());
    } else {
        let mut escaped = String::new();
        let _ = write!(crate::logging::escaping(&mut escaped), "{value}");
        out.extend_from_slice(escaped.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::EnvFilter;

    use super::*;
    use crate::logging::{json_subscriber, text_subscriber};

    /// A writer that keeps what the subscriber writes.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Kept {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines() -> Vec<RequestLine<'static>> {
        let base = RequestLine {
            request_id: "9c094b8b3819940b",
            ip: "127.0.0.1".parse().unwrap(),
            method: "GET",
            path: "/api/v1/users/alice@acme.test/presence",
            status: 200,
            micros: 184,
            user_id: Some(7),
            embed_key: None,
        };
        vec![
            base,
            RequestLine {
                user_id: None,
                embed_key: Some(3),
                ip: "::1".parse().unwrap(),
                method: "OPTIONS",
                status: 204,
                ..base
            },
            RequestLine {
                user_id: None,
                request_id: "client-sent_id.1:2",
                path: "/api/v1/users/caf\u{e9}\u{2028}\"x\\y\u{7}",
                status: 401,
                micros: 0,
                ..base
            },
        ]
    }

    /// The subscriber's bytes for `line`, and ours at the same instant.
    fn both(line: &RequestLine<'_>, json: bool) -> (String, String) {
        let kept = Kept::default();
        let writer = kept.clone();
        let make = move || writer.clone();
        let filter = EnvFilter::new("info");
        if json {
            tracing::subscriber::with_default(json_subscriber(filter, make), || {
                through_subscriber(line)
            });
        } else {
            tracing::subscriber::with_default(text_subscriber(filter, false, make), || {
                through_subscriber(line)
            });
        }
        let theirs = String::from_utf8(kept.0.lock().unwrap().clone()).unwrap();
        // Our line at the subscriber's instant, read back from its text.
        let at = if json { 14 } else { 0 };
        let time = &theirs[at..at + 27];
        let secs = secs_of(&time[..19]);
        let micros: u32 = time[20..26].parse().unwrap();
        let mut ours = Vec::new();
        format_line(&mut ours, line, json, secs, micros);
        let ours = String::from_utf8(ours).unwrap();
        (theirs, ours)
    }

    /// Unix seconds of a UTC time written `2026-11-30T11:10:50`.
    fn secs_of(text: &str) -> u64 {
        let field = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap();
        let (year, month, day) = (field(0..4), field(5..7), field(8..10));
        // Days from 1970-01-01 to a civil date (the inverse of iso8601's).
        let year = if month <= 2 { year - 1 } else { year };
        let era = year.div_euclid(400);
        let yoe = year - era * 400;
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        (days * 86_400 + field(11..13) * 3600 + field(14..16) * 60 + field(17..19)) as u64
    }

    #[test]
    fn the_text_line_is_the_subscribers() {
        for line in lines() {
            let (theirs, ours) = both(&line, false);
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn the_json_line_is_the_subscribers() {
        for line in lines() {
            let (theirs, ours) = both(&line, true);
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn the_time_is_written_to_the_microsecond() {
        assert_eq!(secs_of("2026-11-30T01:02:03"), 1_796_000_523);
        let mut out = Vec::new();
        write_time(&mut out, 1_796_000_523, 42);
        assert_eq!(out, b"2026-11-30T01:02:03.000042Z");
        let mut out = Vec::new();
        write_time(&mut out, 0, 999_999);
        assert_eq!(out, b"1970-01-01T00:00:00.999999Z");
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "255.254.200.1",
            "127.0.0.1",
            "::1",
            "2001:db8::ff00:42:8329",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            write_ip(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }
}
