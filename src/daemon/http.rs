//! The daemon's HTTP endpoint: `GET /healthz`, `GET /metrics` (Prometheus text) and `POST /hook`
//! (a GitHub or Gitea/Forgejo push webhook; the HMAC-SHA256 signature is checked and the hook
//! only triggers a fetch). A deliberately small HTTP/1.1 server: one request per connection.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Trigger;

/// Upper bounds (seconds) of the merge-to-applied latency histogram.
const BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

#[derive(Debug, Default)]
pub struct Metrics {
    pub last_applied: BTreeMap<String, u64>,
    pub awaiting_approval: usize,
    pub failures: u64,
    pub fetch_errors: u64,
    pub applies: u64,
    pub apply_seconds_sum: f64,
    latency: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
}

impl Metrics {
    /// Records the time from a commit to the end of its apply.
    pub fn observe_latency(&mut self, seconds: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.latency[i] += 1;
            }
        }
        self.latency_count += 1;
        self.latency_sum += seconds;
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("# TYPE pgitops_cluster_last_applied_timestamp_seconds gauge\n");
        for (c, t) in &self.last_applied {
            let c = c
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            s.push_str(&format!(
                "pgitops_cluster_last_applied_timestamp_seconds{{cluster=\"{c}\"}} {t}\n"
            ));
        }
        s.push_str("# TYPE pgitops_merge_to_applied_seconds histogram\n");
        for (i, le) in BUCKETS.iter().enumerate() {
            s.push_str(&format!(
                "pgitops_merge_to_applied_seconds_bucket{{le=\"{le}\"}} {}\n",
                self.latency[i]
            ));
        }
        s.push_str(&format!(
            "pgitops_merge_to_applied_seconds_bucket{{le=\"+Inf\"}} {}\n",
            self.latency_count
        ));
        s.push_str(&format!(
            "pgitops_merge_to_applied_seconds_sum {}\npgitops_merge_to_applied_seconds_count {}\n",
            self.latency_sum, self.latency_count
        ));
        s.push_str(&format!("# TYPE pgitops_apply_duration_seconds summary\npgitops_apply_duration_seconds_sum {}\npgitops_apply_duration_seconds_count {}\n", self.apply_seconds_sum, self.applies));
        s.push_str(&format!(
            "# TYPE pgitops_apply_failures_total counter\npgitops_apply_failures_total {}\n",
            self.failures
        ));
        s.push_str(&format!(
            "# TYPE pgitops_fetch_errors_total counter\npgitops_fetch_errors_total {}\n",
            self.fetch_errors
        ));
        s.push_str(&format!("# TYPE pgitops_actions_awaiting_approval gauge\npgitops_actions_awaiting_approval {}\n", self.awaiting_approval));
        s
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
            let (status, text) = match request
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["GET", "/healthz"] => ("200 OK", "ok\n".to_string()),
                ["GET", "/metrics"] => ("200 OK", metrics.lock().expect("metrics lock").render()),
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
            let reply = format!("HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
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
    }
}
