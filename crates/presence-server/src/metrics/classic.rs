//! OpenMetrics text to Prometheus's classic text format (version 0.0.4),
//! for scrapers and tools that read only the latter (`promtool check
//! metrics`, older Prometheus servers, a person with curl).
//!
//! The two formats differ, for what this server exposes, in three ways: a
//! counter family is named without `_total` in OpenMetrics (its samples
//! carry the suffix) and with it in the classic format; OpenMetrics has
//! `# UNIT` lines, which the classic format lacks; and OpenMetrics ends
//! with `# EOF`. Samples are written the same in both.

use std::collections::HashSet;

/// The classic text format of `openmetrics`, an exposition without
/// exemplars or info metrics (none are registered here).
pub fn from_openmetrics(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
        match descriptor {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                if !tail.is_empty() {
                    out.push(' ');
                    out.push_str(tail);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_take_their_suffix_and_units_and_the_end_marker_go() {
        let openmetrics = "# HELP a_requests Requests.\n\
                           # TYPE a_requests counter\n\
                           a_requests_total{route=\"/x\"} 3\n\
                           # HELP a_time Time.\n\
                           # TYPE a_time histogram\n\
                           # UNIT a_time seconds\n\
                           a_time_sum 0.5\n\
                           a_time_count 1\n\
                           a_time_bucket{le=\"+Inf\"} 1\n\
                           # HELP a_open Open.\n\
                           # TYPE a_open gauge\n\
                           a_open 2\n\
                           # EOF\n";
        assert_eq!(
            from_openmetrics(openmetrics),
            "# HELP a_requests_total Requests.\n\
             # TYPE a_requests_total counter\n\
             a_requests_total{route=\"/x\"} 3\n\
             # HELP a_time Time.\n\
             # TYPE a_time histogram\n\
             a_time_sum 0.5\n\
             a_time_count 1\n\
             a_time_bucket{le=\"+Inf\"} 1\n\
             # HELP a_open Open.\n\
             # TYPE a_open gauge\n\
             a_open 2\n"
        );
    }
}
