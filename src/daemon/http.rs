//! The daemon's HTTP endpoint: `GET /healthz`, `GET /metrics` (OpenMetrics text rendered by
//! prometheus-client, which Prometheus scrapes) and `POST /hook` (a GitHub or Gitea/Forgejo push
//! webhook; the HMAC-SHA256 signature is checked and the hook only triggers a fetch). A deliberately small HTTP/1.1 server: one request per connection.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Trigger;

/// Upper bounds (seconds) of the merge-to-applied latency histogram.
const BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The content type of [`Metrics::render`]'s output (OpenMetrics text, which Prometheus reads).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The service's metrics. The daemon updates the plain fields; [`Metrics::render`] exposes them
/// through a `prometheus-client` registry as `pgitops_cluster_last_applied_timestamp_seconds`
/// (gauge per cluster), `pgitops_merge_to_applied_seconds` (histogram),
/// `pgitops_apply_duration_seconds` (`_sum` and `_count`), `pgitops_apply_failures_total` and
/// `pgitops_fetch_errors_total` (counters) and `pgitops_actions_awaiting_approval` (gauge).
#[derive(Debug)]
pub struct Metrics {
    pub last_applied: BTreeMap<String, u64>,
    pub awaiting_approval: usize,
    pub failures: u64,
    pub fetch_errors: u64,
    pub applies: u64,
    pub apply_seconds_sum: f64,
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
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).expect("writing to a String");
        text
    }
}

/// Checks a push webhook's signature: GitHub's `X-Hub-Signature-256: sha256=<hex>` or Gitea's
/// `X-Gitea-Signature: <hex>`, an HMAC-SHA256 of the body.
pub fn signature_ok(secret: &[u8], body: &[u8], header: &str) -> bool {
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .unwrap_or(header.trim());
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Mutex<Metrics>>,
    triggers: tokio::sync::mpsc::UnboundedSender<Trigger>,
    secret: Option<String>,
) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, triggers, secret) = (metrics.clone(), triggers.clone(), secret.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then as much body as Content-Length says (at most 1 MiB).
            let (head, body) = loop {
                let Ok(n) = sock.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_string();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .and_then(|v| v.trim().parse::<usize>().ok())
                        })
                        .unwrap_or(0)
                        .min(1 << 20);
                    while buf.len() < i + 4 + len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = (i + 4 + len).min(buf.len());
                    break (head, buf[i + 4..end].to_vec());
                }
                if buf.len() > 1 << 20 {
                    return;
                }
            };
            let request = head.lines().next().unwrap_or("").to_string();
            let header = |name: &str| {
                head.lines().find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.trim().to_string())
                })
            };
            let mut content_type = "text/plain; charset=utf-8";
            let (status, text) = match request
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["GET", "/healthz"] => ("200 OK", "ok\n".to_string()),
                ["GET", "/metrics"] => {
                    content_type = METRICS_CONTENT_TYPE;
                    ("200 OK", metrics.lock().expect("metrics lock").render())
                }
                ["POST", "/hook"] => match (
                    &secret,
                    header("X-Hub-Signature-256").or_else(|| header("X-Gitea-Signature")),
                ) {
                    (None, _) => (
                        "404 Not Found",
                        "webhook disabled: no secret configured\n".into(),
                    ),
                    (Some(s), Some(sig)) if signature_ok(s.as_bytes(), &body, &sig) => {
                        let _ = triggers.send(Trigger::Fetch);
                        ("202 Accepted", "fetch triggered\n".into())
                    }
                    _ => ("401 Unauthorized", "bad or missing signature\n".into()),
                },
                _ => ("404 Not Found", "not found\n".into()),
            };
            let reply = format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
            let _ = sock.write_all(reply.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"{\"ref\":\"refs/heads/main\"}");
        let sig = hex::encode(mac.finalize().into_bytes());
        assert!(signature_ok(
            b"s3cret",
            b"{\"ref\":\"refs/heads/main\"}",
            &format!("sha256={sig}")
        ));
        assert!(signature_ok(
            b"s3cret",
            b"{\"ref\":\"refs/heads/main\"}",
            &sig
        ));
        assert!(!signature_ok(
            b"other",
            b"{\"ref\":\"refs/heads/main\"}",
            &sig
        ));
        assert!(!signature_ok(b"s3cret", b"tampered", &sig));
    }

    #[test]
    fn metrics_text() {
        let mut m = Metrics::default();
        m.last_applied.insert("pg-meta".into(), 1700000000);
        m.observe_latency(0.3);
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
            "# EOF",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} in {t}");
        }
    }
}
