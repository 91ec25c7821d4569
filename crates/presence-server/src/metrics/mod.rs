//! What the server counts, for Prometheus: requests by route, method and
//! status, their durations, the store's commits and errors, refusals by
//! limiter, event queues and streams, and the process's own figures.
//!
//! The metrics are kept with `prometheus-client`, the Prometheus project's
//! own Rust client: every server owns its registry (no process-wide
//! recorder, so several servers in one process, as in the tests, each count
//! their own), and label sets are typed structs. A scrape is answered in
//! the OpenMetrics format when the scraper asks for it (Prometheus does),
//! and in Prometheus's classic text format otherwise (see [`classic`]).
//!
//! Labels never come from what a client sends: the route is its path
//! template from the route table (`unmatched` for a path or method not
//! served), the method one of the few the server knows (`other` beside
//! them), the status a number. The number of series is bounded whatever
//! clients send.
//!
//! Counting a request must cost next to nothing beside the request itself,
//! so the series are looked up by hashing their labels only the first time
//! each is used: after that, a request finds its counter and histogram by
//! index (route and method are small numbers) and a short scan of the
//! statuses seen on them.

mod classic;
mod process;

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The content type of an answer in Prometheus's classic text format.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The content type of an answer in the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Seconds, for request and commit durations: from a tenth of a
/// millisecond (an answer from memory) to a minute (a long poll waits about
/// fifty seconds).
const SECONDS_BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Changes in one commit: powers of two up to the writer's largest batch.
const BATCH_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// How a node installed another node's commit.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum CatchUp {
    /// From the batches the other node published with its notification.
    Published,
    /// By reading the changed users back from the store.
    Read,
}

impl CatchUp {
    fn label(self) -> &'static str {
        match self {
            CatchUp::Published => "published",
            CatchUp::Read => "read",
        }
    }
}

/// The `source` label of a catch-up.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CatchUpLabels {
    source: &'static str,
}

/// One request's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// A route's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Limiter {
    /// A user's own budget.
    User,
    /// An address's budget, for requests without a known caller and pages.
    Address,
    /// An embed key's budget, shared by every page that uses it.
    EmbedKey,
}

impl Limiter {
    fn label(self) -> &'static str {
        match self {
            Limiter::User => "user",
            Limiter::Address => "address",
            Limiter::EmbedKey => "embed_key",
        }
    }
}

/// The `limiter` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimiterLabels {
    limiter: &'static str,
}

/// The statuses of one route and method whose counters are kept at hand;
/// a request with yet another status is counted through its family.
const STATUSES_AT_HAND: usize = 4;

/// Which request series a request counts in: indexes into the route and
/// method labels the metrics were made with, and the answer's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Series {
    /// The route's index among the route labels.
    pub route: usize,
    /// The method's index among the method labels.
    pub method: usize,
    /// The answer's status.
    pub status: u16,
}

/// The counters of one route and method, by status, once resolved.
#[derive(Debug, Default)]
struct AtHand {
    by_status: [OnceLock<(u16, Counter)>; STATUSES_AT_HAND],
}

/// A histogram of seconds.
fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

/// What one server counts.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    route_labels: Vec<&'static str>,
    method_labels: &'static [&'static str],
    /// By route, then method: `route * method_labels.len() + method`.
    at_hand: Box<[AtHand]>,
    /// By route.
    durations_at_hand: Box<[OnceLock<Histogram>]>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    rate_limited: Family<LimiterLabels, Counter>,
    commit_seconds: Histogram,
    batch_changes: Histogram,
    store_errors: Counter,
    catch_ups: Family<CatchUpLabels, Counter>,
    event_queues: Gauge,
    streams_open: Gauge,
}

impl Default for Metrics {
    /// Metrics for a server with no routes: for the parts that count
    /// without serving (a writer in a test).
    fn default() -> Self {
        Metrics::new(Vec::new(), &[])
    }
}

impl Metrics {
    /// Every metric at zero, registered under its name, for requests
    /// labelled by `route_labels` and `method_labels` (see [`Series`]).
    pub fn new(route_labels: Vec<&'static str>, method_labels: &'static [&'static str]) -> Self {
        let mut registry = Registry::default();
        let series = route_labels.len() * method_labels.len();
        let metrics = Metrics {
            registry: Registry::default(),
            at_hand: (0..series).map(|_| AtHand::default()).collect(),
            durations_at_hand: route_labels.iter().map(|_| OnceLock::new()).collect(),
            route_labels,
            method_labels,
            requests: Family::default(),
            durations: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            rate_limited: Family::default(),
            commit_seconds: seconds_histogram(),
            batch_changes: Histogram::new(BATCH_BUCKETS),
            store_errors: Counter::default(),
            catch_ups: Family::default(),
            event_queues: Gauge::default(),
            streams_open: Gauge::default(),
        };
        let presence = registry.sub_registry_with_prefix("presence");
        presence.register(
            "http_requests",
            "Requests answered, by route template, method and status",
            metrics.requests.clone(),
        );
        presence.register_with_unit(
            "http_request_duration",
            "Time from a request's head to its answer's head, by route template",
            Unit::Seconds,
            metrics.durations.clone(),
        );
        presence.register(
            "rate_limited",
            "Requests refused with 429, by the limit that refused them",
            metrics.rate_limited.clone(),
        );
        presence.register_with_unit(
            "store_commit_duration",
            "Time to commit one batch of changes to the store",
            Unit::Seconds,
            metrics.commit_seconds.clone(),
        );
        presence.register(
            "store_batch_changes",
            "Changes written by one commit",
            metrics.batch_changes.clone(),
        );
        presence.register(
            "store_errors",
            "Store operations that failed (looks, commits, reports)",
            metrics.store_errors.clone(),
        );
        presence.register(
            "store_catch_ups",
            "Other nodes' commits installed, by source: published with their notification, or read",
            metrics.catch_ups.clone(),
        );
        presence.register(
            "event_queues",
            "Event queues open",
            metrics.event_queues.clone(),
        );
        presence.register(
            "streams_open",
            "Presence streams open",
            metrics.streams_open.clone(),
        );
        presence.register_collector(Box::new(process::DroppedLogLines));
        registry.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts an answered request and how long it took.
    pub fn request(&self, series: Series, took: Duration) {
        let route = self.route_labels[series.route];
        let duration = self.durations_at_hand[series.route]
            .get_or_init(|| self.durations.get_or_create_owned(&RouteLabels { route }));
        duration.observe(took.as_secs_f64());
        let labels = || RequestLabels {
            route,
            method: self.method_labels[series.method],
            status: series.status,
        };
        let index = series.route * self.method_labels.len() + series.method;
        for slot in &self.at_hand[index].by_status {
            let (status, counter) =
                slot.get_or_init(|| (series.status, self.requests.get_or_create_owned(&labels())));
            if *status == series.status {
                counter.inc();
                return;
            }
        }
        self.requests.get_or_create(&labels()).inc();
    }

    /// Counts a request refused by `limiter`.
    pub fn rate_limited(&self, limiter: Limiter) {
        let labels = LimiterLabels {
            limiter: limiter.label(),
        };
        self.rate_limited.get_or_create(&labels).inc();
    }

    /// Records a commit of `changes` changes that took `seconds`.
    pub fn commit(&self, changes: usize, seconds: f64) {
        self.commit_seconds.observe(seconds);
        self.batch_changes.observe(changes as f64);
    }

    /// Counts a failed store operation.
    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    /// Counts another node's commits installed from `source`.
    pub fn catch_up(&self, source: CatchUp) {
        let labels = CatchUpLabels {
            source: source.label(),
        };
        self.catch_ups.get_or_create(&labels).inc();
    }

    /// How many catch-ups came from `source` so far.
    pub fn catch_ups(&self, source: CatchUp) -> u64 {
        let labels = CatchUpLabels {
            source: source.label(),
        };
        self.catch_ups.get_or_create(&labels).get()
    }

    /// Renders every metric, with the gauges read at scrape time set first:
    /// in OpenMetrics if `openmetrics`, else in the classic text format.
    pub fn render(&self, now: Sampled, openmetrics: bool) -> String {
        self.event_queues.set(now.event_queues as i64);
        self.streams_open.set(now.streams_open as i64);
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail, and every metric here encodes.
        let _ = encode(&mut out, &self.registry);
        if openmetrics {
            out
        } else {
            classic::from_openmetrics(&out)
        }
    }
}

/// The gauges read when a scrape comes, from the parts that hold them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sampled {
    /// Event queues open.
    pub event_queues: usize,
    /// Presence streams open.
    pub streams_open: usize,
}

/// Whether a scraper's `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&[u8]>) -> bool {
    accept.is_some_and(|accept| {
        accept
            .windows(b"application/openmetrics-text".len())
            .any(|w| w.eq_ignore_ascii_case(b"application/openmetrics-text"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: [&str; 2] = ["unmatched", "/api/v1/realm/presence"];
    const METHODS: [&str; 2] = ["GET", "other"];

    fn series(route: usize, method: usize, status: u16) -> Series {
        Series {
            route,
            method,
            status,
        }
    }

    #[test]
    fn requests_are_counted_by_route_method_and_status() {
        let metrics = Metrics::new(ROUTES.to_vec(), &METHODS);
        let ms = Duration::from_millis;
        metrics.request(series(1, 0, 200), ms(1));
        metrics.request(series(1, 0, 200), ms(2));
        metrics.request(series(0, 0, 404), ms(0));
        metrics.rate_limited(Limiter::Address);
        metrics.commit(3, 0.004);
        let text = metrics.render(
            Sampled {
                event_queues: 4,
                streams_open: 1,
            },
            false,
        );
        assert!(text.contains(
            "presence_http_requests_total{route=\"/api/v1/realm/presence\",method=\"GET\",status=\"200\"} 2\n"
        ), "{text}");
        assert!(
            text.contains("presence_http_request_duration_seconds_count{route=\"unmatched\"} 1\n")
        );
        assert!(text.contains("presence_rate_limited_total{limiter=\"address\"} 1\n"));
        assert!(text.contains("presence_store_batch_changes_sum 3.0\n"));
        assert!(text.contains("presence_event_queues 4\n"));
        assert!(text.contains("presence_streams_open 1\n"));
        assert!(text.contains("# TYPE presence_http_requests_total counter\n"));
        assert!(!text.contains("# EOF"));
        let open = metrics.render(Sampled::default(), true);
        assert!(open.contains("# TYPE presence_http_requests counter\n"));
        assert!(open.ends_with("# EOF\n"));
        assert!(open.contains("presence_event_queues 0\n"));
    }

    #[test]
    fn statuses_past_those_at_hand_are_counted_all_the_same() {
        let metrics = Metrics::new(ROUTES.to_vec(), &METHODS);
        let statuses = [200, 400, 401, 404, 429, 503];
        for round in 1..=3 {
            for status in statuses {
                metrics.request(series(1, 1, status), Duration::ZERO);
            }
            let text = metrics.render(Sampled::default(), false);
            for status in statuses {
                let line = format!(
                    "presence_http_requests_total{{route=\"/api/v1/realm/presence\",method=\"other\",status=\"{status}\"}} {round}\n"
                );
                assert!(text.contains(&line), "{line} in {text}");
            }
            let count = format!(
                "presence_http_request_duration_seconds_count{{route=\"/api/v1/realm/presence\"}} {}\n",
                round * statuses.len()
            );
            assert!(text.contains(&count), "{count}");
        }
    }

    #[test]
    fn openmetrics_is_given_to_scrapers_that_ask_for_it() {
        let prometheus = b"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prometheus)));
        assert!(!wants_openmetrics(Some(b"text/plain")));
        assert!(!wants_openmetrics(Some(b"*/*")));
        assert!(!wants_openmetrics(None));
    }
}
