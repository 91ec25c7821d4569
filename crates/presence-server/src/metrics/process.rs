//! Figures read at scrape time rather than counted as they happen: the
//! process's own (the `process_*` metrics every Prometheus client library
//! exports, read from Linux's `/proc`), and the log lines dropped because
//! standard error was not read fast enough (counted by [`crate::log_writer`]
//! for the whole process).
//!
//! On a system without `/proc` the process metrics are left out rather
//! than reported as zero; so is the start time where only the process's
//! own part of `/proc` is visible (systemd's `ProcSubset=pid`, which the
//! unit in `deploy/` sets), since it needs the boot time from `/proc/stat`.

use std::fs;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use crate::log_writer;

/// Clock ticks per second in `/proc/<pid>/stat`: Linux's `USER_HZ`, which
/// is 100 on every architecture it reports through `/proc` on.
const TICKS_PER_SECOND: f64 = 100.0;

/// The `process_*` metrics of this process.
#[derive(Debug)]
pub struct ProcessCollector;

/// What `/proc` says of this process.
#[derive(Debug, Default, PartialEq)]
struct ProcessFigures {
    cpu_seconds: f64,
    start_time_seconds: Option<f64>,
    virtual_bytes: i64,
    resident_bytes: i64,
    threads: i64,
    open_fds: i64,
    max_fds: Option<i64>,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(figures) = read_figures() else {
            return Ok(());
        };
        let mut counter = |name, help, unit, value: f64| -> Result<(), std::fmt::Error> {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, unit, MetricType::Counter)?)
        };
        counter(
            "process_cpu",
            "User and system CPU time spent.",
            Some(&Unit::Seconds),
            figures.cpu_seconds,
        )?;
        let mut gauge = |name, help, unit, value: i64| -> Result<(), std::fmt::Error> {
            let metric = ConstGauge::new(value);
            metric.encode(encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?)
        };
        gauge(
            "process_resident_memory",
            "Resident memory size.",
            Some(&Unit::Bytes),
            figures.resident_bytes,
        )?;
        gauge(
            "process_virtual_memory",
            "Virtual memory size.",
            Some(&Unit::Bytes),
            figures.virtual_bytes,
        )?;
        gauge(
            "process_open_fds",
            "Open file descriptors.",
            None,
            figures.open_fds,
        )?;
        if let Some(max) = figures.max_fds {
            gauge(
                "process_max_fds",
                "Most file descriptors the process may open.",
                None,
                max,
            )?;
        }
        gauge("process_threads", "Threads.", None, figures.threads)?;
        let Some(start) = figures.start_time_seconds else {
            return Ok(());
        };
        ConstGauge::new(start).encode(encoder.encode_descriptor(
            "process_start_time",
            "Start time of the process since the Unix epoch.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?)
    }
}

/// Reads this process's figures, or `None` without `/proc`.
fn read_figures() -> Option<ProcessFigures> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let boot_time = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| field_after(&text, "btime"));
    let mut figures = parse_stat(&stat, boot_time)?;
    figures.resident_bytes = field_after(&status, "VmRSS:")? * 1024;
    figures.open_fds = fs::read_dir("/proc/self/fd").ok()?.count() as i64;
    figures.max_fds = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| field_after(&text, "Max open files"));
    Some(figures)
}

/// The figures `/proc/self/stat` holds, given the boot time in seconds
/// since the epoch if it is known.
fn parse_stat(stat: &str, boot_time: Option<i64>) -> Option<ProcessFigures> {
    // The command name, in parentheses, may hold spaces and parentheses of
    // its own: the fields that count start after the last `)`.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // `fields[0]` is the stat line's third field (the state).
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let ticks = field(14)? + field(15)?;
    let started_ticks = field(22)?;
    Some(ProcessFigures {
        cpu_seconds: ticks as f64 / TICKS_PER_SECOND,
        threads: field(20)? as i64,
        start_time_seconds: boot_time
            .map(|boot| boot as f64 + started_ticks as f64 / TICKS_PER_SECOND),
        virtual_bytes: field(23)? as i64,
        ..ProcessFigures::default()
    })
}

/// The first number after `label` at the start of a line of `text`.
fn field_after(text: &str, label: &str) -> Option<i64> {
    text.lines()
        .find_map(|line| line.strip_prefix(label))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `log_lines_dropped_total`: lines the log dropped since the process
/// started.
#[derive(Debug)]
pub struct DroppedLogLines;

impl Collector for DroppedLogLines {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let dropped = ConstCounter::new(log_writer::dropped_total());
        dropped.encode(encoder.encode_descriptor(
            "log_lines_dropped",
            "Log lines dropped because standard error was not read fast enough.",
            None,
            MetricType::Counter,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_line_gives_cpu_threads_start_and_size() {
        let stat = "22321 (a (b) c) R 22318 22318 4171 0 -1 4194304 98 0 0 0 250 50 0 0 20 0 3 0 32014 3133440 359 18446744073709551615";
        let figures = parse_stat(stat, Some(1_000_000)).unwrap();
        assert_eq!(figures.cpu_seconds, 3.0);
        assert_eq!(figures.threads, 3);
        assert!((figures.start_time_seconds.unwrap() - 1_000_320.14).abs() < 1e-6);
        let unbooted = parse_stat(stat, None).unwrap();
        assert_eq!((unbooted.start_time_seconds, unbooted.threads), (None, 3));
        assert_eq!(figures.virtual_bytes, 3_133_440);
        assert_eq!(parse_stat("22321 (cut", None), None);
    }

    #[test]
    fn labelled_numbers_are_found_at_line_starts() {
        let status = "Name:\tx\nVmSize:\t    3892 kB\nVmRSS:\t    2136 kB\n";
        assert_eq!(field_after(status, "VmRSS:"), Some(2136));
        assert_eq!(field_after(status, "Threads:"), None);
        let limits = "Max open files            20000                20000                files\n";
        assert_eq!(field_after(limits, "Max open files"), Some(20000));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_figures() {
        let figures = read_figures().unwrap();
        assert!(figures.resident_bytes > 0 && figures.threads >= 1 && figures.open_fds >= 3);
        assert!(figures.start_time_seconds.unwrap() > 1.0e9);
    }
}
