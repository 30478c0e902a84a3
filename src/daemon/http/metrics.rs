//! The service's metrics: the plain counters and gauges the daemon updates (applies, failures,
//! fetch errors, the webhook's triggers and duplicates, the listener's accept errors, the leader
//! watch's verdict per cluster) and their
//! OpenMetrics text, rendered by prometheus-client for `GET /metrics`.

use std::collections::BTreeMap;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the merge-to-applied latency histogram.
const BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The content type of [`Metrics::render`]'s output (OpenMetrics text, which Prometheus reads).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The service's metrics. The daemon updates the plain fields; [`Metrics::render`] exposes them
/// through a `prometheus-client` registry as `pgitops_cluster_last_applied_timestamp_seconds`
/// (gauge per cluster), `pgitops_merge_to_applied_seconds` (histogram),
/// `pgitops_apply_duration_seconds` (`_sum` and `_count`), `pgitops_apply_failures_total` and
/// `pgitops_fetch_errors_total` (counters), `pgitops_actions_awaiting_approval` (gauge), and the
/// listener's `pgitops_hook_triggers_total`, `pgitops_hook_duplicates_total` and
/// `pgitops_http_accept_errors_total` (counters), and the leader watch's
/// `pgitops_cluster_leader_declared` (gauge per cluster: 1 when Patroni's leader is the declared
/// primary, 0 when not), and the drift check's `pgitops_drift_objects` (gauge per cluster).
#[derive(Debug)]
pub struct Metrics {
    pub last_applied: BTreeMap<String, u64>,
    pub awaiting_approval: usize,
    pub failures: u64,
    pub fetch_errors: u64,
    pub applies: u64,
    pub apply_seconds_sum: f64,
    /// Signed hooks that triggered a fetch.
    pub hook_triggers: u64,
    /// Signed hooks whose delivery id was already seen: answered, no fetch.
    pub hook_duplicates: u64,
    /// Failed `accept` calls of the listener (e.g. out of file descriptors).
    pub accept_errors: u64,
    /// Per cluster the leader watch observed: Patroni's leader is the declared primary.
    pub leader_declared: BTreeMap<String, bool>,
    /// Per cluster the drift check read: how many objects drifted.
    pub drift_objects: BTreeMap<String, u64>,
    latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            last_applied: BTreeMap::new(),
            awaiting_approval: 0,
            failures: 0,
            fetch_errors: 0,
            applies: 0,
            apply_seconds_sum: 0.0,
            hook_triggers: 0,
            hook_duplicates: 0,
            accept_errors: 0,
            leader_declared: BTreeMap::new(),
            drift_objects: BTreeMap::new(),
            latency: Histogram::new(BUCKETS),
        }
    }
}

/// A sum and a count (no buckets besides `+Inf`): the apply durations. prometheus-client has no
/// summary type, so this is exposed as a histogram with the one `+Inf` bucket; the `_sum` and
/// `_count` series keep their names.
#[derive(Debug)]
struct SumCount {
    sum: f64,
    count: u64,
}

impl EncodeMetric for SumCount {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets = [(f64::INFINITY, self.count)];
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

impl Metrics {
    /// Records the time from a commit to the end of its apply.
    pub fn observe_latency(&mut self, seconds: f64) {
        self.latency.observe(seconds);
    }

    /// The OpenMetrics text of all metrics (see [`METRICS_CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut r = Registry::default();
        let last = Family::<Vec<(&'static str, String)>, Gauge>::default();
        for (c, t) in &self.last_applied {
            let t = i64::try_from(*t).unwrap_or(i64::MAX);
            last.get_or_create(&vec![("cluster", c.clone())]).set(t);
        }
        r.register(
            "pgitops_cluster_last_applied_timestamp_seconds",
            "When each cluster last finished applying the newest commit (Unix time)",
            last,
        );
        r.register(
            "pgitops_merge_to_applied_seconds",
            "Time from a commit to the end of its apply",
            self.latency.clone(),
        );
        r.register(
            "pgitops_apply_duration_seconds",
            "Time the applies took",
            SumCount {
                sum: self.apply_seconds_sum,
                count: self.applies,
            },
        );
        r.register(
            "pgitops_apply_failures",
            "Actions that failed",
            counter(self.failures),
        );
        r.register(
            "pgitops_fetch_errors",
            "Fetches of the remote that failed",
            counter(self.fetch_errors),
        );
        r.register(
            "pgitops_actions_awaiting_approval",
            "Destructive actions of the last apply that wait for an approval",
            gauge(i64::try_from(self.awaiting_approval).unwrap_or(i64::MAX)),
        );
        r.register(
            "pgitops_hook_triggers",
            "Signed webhook deliveries that triggered a fetch",
            counter(self.hook_triggers),
        );
        r.register(
            "pgitops_hook_duplicates",
            "Signed webhook deliveries already seen (replays): answered, no fetch",
            counter(self.hook_duplicates),
        );
        r.register(
            "pgitops_http_accept_errors",
            "Connections the listener failed to accept (e.g. out of file descriptors)",
            counter(self.accept_errors),
        );
        let leaders = Family::<Vec<(&'static str, String)>, Gauge>::default();
        for (c, ok) in &self.leader_declared {
            leaders
                .get_or_create(&vec![("cluster", c.clone())])
                .set(i64::from(*ok));
        }
        r.register(
            "pgitops_cluster_leader_declared",
            "1 when Patroni's leader of the cluster is the primary its last applied inventory declares, 0 when not (a failover to record)",
            leaders,
        );
        let drift = Family::<Vec<(&'static str, String)>, Gauge>::default();
        for (c, n) in &self.drift_objects {
            let n = i64::try_from(*n).unwrap_or(i64::MAX);
            drift.get_or_create(&vec![("cluster", c.clone())]).set(n);
        }
        r.register(
            "pgitops_drift_objects",
            "Objects whose live state differs from the cluster's last applied inventory (the drift check)",
            drift,
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).expect("writing to a String");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text() {
        let mut m = Metrics::default();
        m.last_applied.insert("pg-meta".into(), 1700000000);
        m.observe_latency(0.3);
        m.hook_duplicates = 2;
        m.leader_declared.insert("pg-meta".into(), true);
        m.leader_declared.insert("pg-test".into(), false);
        m.drift_objects.insert("pg-test".into(), 3);
        let t = m.render();
        assert!(t.contains(
            "pgitops_cluster_last_applied_timestamp_seconds{cluster=\"pg-meta\"} 1700000000"
        ));
        assert!(t.contains("pgitops_merge_to_applied_seconds_bucket{le=\"0.25\"} 0"));
        assert!(t.contains("pgitops_merge_to_applied_seconds_bucket{le=\"0.5\"} 1"));
        for line in [
            "# TYPE pgitops_apply_failures counter",
            "pgitops_apply_failures_total 0",
            "pgitops_fetch_errors_total 0",
            "pgitops_apply_duration_seconds_count 0",
            "pgitops_actions_awaiting_approval 0",
            "pgitops_hook_triggers_total 0",
            "pgitops_hook_duplicates_total 2",
            "pgitops_http_accept_errors_total 0",
            "# TYPE pgitops_cluster_leader_declared gauge",
            "pgitops_cluster_leader_declared{cluster=\"pg-meta\"} 1",
            "pgitops_cluster_leader_declared{cluster=\"pg-test\"} 0",
            "pgitops_drift_objects{cluster=\"pg-test\"} 3",
            "# EOF",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} in {t}");
        }
    }
}
