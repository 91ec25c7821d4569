//! The table `cargo xtask bench` prints, one row per scenario and size.

use crate::load::Outcome;

/// One measured scenario, ours beside the baseline.
pub struct Row {
    /// The scenario's letter and name.
    pub scenario: String,
    /// Users in the realm.
    pub users: usize,
    /// The store and node count the server ran with (`sqlite`, `postgres x2`).
    pub store: String,
    /// Our server's outcome.
    pub ours: Outcome,
    /// Our server's CPU seconds over the window (all its nodes together).
    pub ours_cpu: f64,
    /// The baseline's outcome.
    pub baseline: Outcome,
    /// The baseline's CPU seconds over the window.
    pub baseline_cpu: f64,
    /// The database's CPU seconds over the window, for a PostgreSQL store
    /// on this machine (see [`crate::stores::Backends`]).
    pub database_cpu: Option<f64>,
    /// The lowest and highest ratio of the rounds this row was chosen
    /// from, when there were several.
    pub ratio_range: Option<(f64, f64)>,
}

/// The header of the table.
pub fn header() -> String {
    "| scenario | users | store | ours req/s | baseline req/s | ratio | ours p50 / p99 ms | baseline p50 / p99 ms | ours CPU s per 1k req | baseline CPU s per 1k req | database CPU s per 1k req | body bytes | non-2xx |\n\
     |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        .to_owned()
}

fn per_thousand(cpu: f64, requests: u64) -> f64 {
    cpu / requests.max(1) as f64 * 1000.0
}

impl Row {
    /// Our throughput over the baseline's.
    pub fn ratio(&self) -> f64 {
        self.ours.rate() / self.baseline.rate().max(f64::MIN_POSITIVE)
    }

    /// Of several rounds of one scenario, the one whose ratio is the median
    /// (the lower of the middle two for an even count), with the range of
    /// all their ratios.
    pub fn median(mut rounds: Vec<Row>) -> Row {
        assert!(!rounds.is_empty(), "a scenario has at least one round");
        rounds.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
        let range = (rounds[0].ratio(), rounds[rounds.len() - 1].ratio());
        let several = rounds.len() > 1;
        let mut row = rounds.swap_remove((rounds.len() - 1) / 2);
        row.ratio_range = several.then_some(range);
        row
    }

    /// The ratio, with the rounds' range after it when there were several.
    fn ratio_cell(&self) -> String {
        match self.ratio_range {
            Some((low, high)) => format!("{:.2} ({low:.2}-{high:.2})", self.ratio()),
            None => format!("{:.2}", self.ratio()),
        }
    }

    /// The row as markdown.
    pub fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {:.0} | {:.0} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.3} | {:.3} | {} | {} | {} |",
            self.scenario,
            self.users,
            self.store,
            self.ours.rate(),
            self.baseline.rate(),
            self.ratio_cell(),
            self.ours.percentile_ms(50.0),
            self.ours.percentile_ms(99.0),
            self.baseline.percentile_ms(50.0),
            self.baseline.percentile_ms(99.0),
            per_thousand(self.ours_cpu, self.ours.requests),
            per_thousand(self.baseline_cpu, self.baseline.requests),
            self.database_cpu.map_or_else(
                || "-".to_owned(),
                |cpu| format!("{:.3}", per_thousand(cpu, self.ours.requests))
            ),
            self.ours.mean_body_bytes(),
            self.ours.failures,
        )
    }
}

/// The rows of several stores' runs of the same scenarios, each scenario's
/// rows together (in the order of `runs`), so that stores sit side by side.
pub fn side_by_side(runs: &[Vec<Row>]) -> Vec<&Row> {
    let longest = runs.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| runs.iter().filter_map(move |rows| rows.get(i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A round in which ours answered `ours` requests to the baseline's 100.
    fn round(ours: u64) -> Row {
        let outcome = |requests| Outcome {
            requests,
            failures: 0,
            body_bytes: 0,
            latencies: Vec::new(),
            window: Duration::from_secs(1),
        };
        Row {
            scenario: "A".to_owned(),
            users: 1,
            store: "sqlite".to_owned(),
            ours: outcome(ours),
            ours_cpu: 0.0,
            baseline: outcome(100),
            baseline_cpu: 0.0,
            database_cpu: None,
            ratio_range: None,
        }
    }

    #[test]
    fn several_rounds_show_the_median_and_their_range() {
        let row = Row::median(vec![round(90), round(40), round(85), round(70), round(95)]);
        assert_eq!(row.ours.requests, 85);
        assert!(row.markdown().contains("| 0.85 (0.40-0.95) |"));
        // The lower middle one of an even count.
        assert_eq!(Row::median(vec![round(90), round(80)]).ours.requests, 80);
        let one = Row::median(vec![round(77)]);
        assert_eq!(one.ratio_range, None);
        assert!(one.markdown().contains("| 0.77 |"));
    }
}
