//! The daemon's HTTP endpoint, served by hyper (HTTP/1.1) on the service's tokio runtime:
//! `GET /healthz`, `GET /metrics` ([`metrics`]: OpenMetrics text that Prometheus scrapes) and
//! `POST /hook` ([`hook`]: a signed GitHub or Gitea/Forgejo push webhook that only triggers a
//! fetch).
//!
//! The listener is unauthenticated, so it is bounded: at most [`Limits::max_connections`]
//! connections are open at once ([`cap`]: at the cap a new connection takes the place of the
//! oldest one still waiting for its request head); the request head must arrive within
//! [`Limits::header_timeout`], the body within [`Limits::body_timeout`], and a connection lives
//! at most [`Limits::connection_timeout`]; one request per connection (no keep-alive). A body
//! over [`Limits::max_body`] is answered `413 Payload Too Large`. A failing `accept` (out of file
//! descriptors) closes the oldest connection still waiting for its request head, if there is
//! one, and otherwise backs off from 100 ms doubling to 1 s instead of spinning; it is logged at
//! most once a minute, with the number of failures since the last line.

mod cap;
mod hook;
mod metrics;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;

use super::Trigger;
pub use hook::Hook;
pub use metrics::{Metrics, METRICS_CONTENT_TYPE};

/// The listener's bounds (the `[http]` settings of the configuration).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub connection_timeout: Duration,
    pub max_body: usize,
}

/// What the request handlers share.
pub struct Endpoint {
    pub metrics: Arc<Mutex<Metrics>>,
    pub triggers: UnboundedSender<Trigger>,
    pub hook: Hook,
    pub limits: Limits,
}

/// The wait after the `n`th accept error in a row: 100 ms doubling, at most 1 s.
fn backoff(n: u32) -> Duration {
    Duration::from_millis(100u64 << n.saturating_sub(1).min(4)).min(Duration::from_secs(1))
}

/// How often a failing `accept` is logged at most.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(60);

/// Accepts connections (at most `max_connections` open at once) and serves each on its own task.
pub async fn serve(listener: TcpListener, ep: Arc<Endpoint>) {
    let cap = cap::Cap::new(ep.limits.max_connections);
    // Failures in a row (for the backoff), since the last log line, and when that was.
    let (mut errors, mut unlogged, mut logged) = (0u32, 0u64, None::<Instant>);
    loop {
        match listener.accept().await {
            Ok((sock, _)) => {
                errors = 0;
                // At the cap this closes an idle connection or waits for one to end.
                let place = cap.admit().await;
                tokio::spawn(connection(sock, ep.clone(), place));
            }
            Err(e) => {
                errors = errors.saturating_add(1);
                unlogged += 1;
                ep.metrics.lock().expect("metrics").accept_errors += 1;
                if logged.is_none_or(|t| t.elapsed() >= ACCEPT_LOG_EVERY) {
                    tracing::warn!(error = %e, failures = unlogged, "accepting HTTP connections fails; backing off");
                    (unlogged, logged) = (0, Some(Instant::now()));
                }
                // Out of descriptors (or memory) below the cap: an idle connection makes room.
                let wait = if cap.evict_oldest_waiting() {
                    Duration::from_millis(10)
                } else {
                    backoff(errors)
                };
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Serves one connection: one request, within the header and connection time limits, unless a
/// newer connection takes its place while it still waits for its request head.
async fn connection(sock: TcpStream, ep: Arc<Endpoint>, place: cap::Admitted) {
    let limits = ep.limits.clone();
    let place = Arc::new(place);
    let service = hyper::service::service_fn({
        let place = place.clone();
        move |req| {
            // The request head arrived: from now on the connection is not evicted.
            place.start();
            let ep = ep.clone();
            async move { Ok::<_, Infallible>(respond(&ep, req).await) }
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(false)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(sock), service);
    tokio::select! {
        r = tokio::time::timeout(limits.connection_timeout, conn) => match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "HTTP connection"),
            Err(_) => tracing::debug!("HTTP connection closed: over the connection time limit"),
        },
        () = place.evicted() => {
            tracing::debug!("HTTP connection closed: idle at the cap, a newer one took its place");
        }
    }
}

fn reply(status: StatusCode, content_type: &'static str, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

fn text(status: StatusCode, text: impl Into<String>) -> Response<Full<Bytes>> {
    reply(status, "text/plain; charset=utf-8", text.into())
}

async fn respond(ep: &Endpoint, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/metrics") => {
            let body = ep.metrics.lock().expect("metrics").render();
            reply(StatusCode::OK, METRICS_CONTENT_TYPE, body)
        }
        (&Method::POST, "/hook") => on_hook(ep, req).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn on_hook(ep: &Endpoint, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if !ep.hook.enabled() {
        return text(
            StatusCode::NOT_FOUND,
            "webhook disabled: no secret configured\n",
        );
    }
    let (head, body) = req.into_parts();
    let max = ep.limits.max_body;
    let declared = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = match declared {
        Some(n) if n > max as u64 => Err(BodyError::TooLarge),
        _ => read_body(body, max, ep.limits.body_timeout).await,
    };
    let body = match body {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over the limit of {max} bytes\n"),
            )
        }
        Err(BodyError::TimedOut) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time\n",
            )
        }
        Err(BodyError::Broken) => return text(StatusCode::BAD_REQUEST, "unreadable body\n"),
    };
    match ep.hook.check(&head.headers, &body) {
        hook::Verdict::Disabled => text(
            StatusCode::NOT_FOUND,
            "webhook disabled: no secret configured\n",
        ),
        hook::Verdict::BadSignature => text(StatusCode::UNAUTHORIZED, "bad or missing signature\n"),
        hook::Verdict::Fetch => {
            ep.metrics.lock().expect("metrics").hook_triggers += 1;
            let _ = ep.triggers.send(Trigger::Fetch);
            text(StatusCode::ACCEPTED, "fetch triggered\n")
        }
        hook::Verdict::Duplicate(id) => {
            ep.metrics.lock().expect("metrics").hook_duplicates += 1;
            tracing::info!(delivery = %id, "duplicate webhook delivery: no fetch");
            text(
                StatusCode::OK,
                "duplicate delivery: already seen, no fetch triggered\n",
            )
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum BodyError {
    TooLarge,
    TimedOut,
    Broken,
}

/// Reads a body of at most `max` bytes within `within`. A longer body is read on and dropped
/// (up to `max` more bytes), so the client that is still sending sees the 413, not a reset.
async fn read_body(mut body: Incoming, max: usize, within: Duration) -> Result<Bytes, BodyError> {
    let read = async {
        let mut buf = Vec::new();
        let mut dropped: Option<usize> = None;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else {
                continue;
            };
            match &mut dropped {
                Some(n) => {
                    *n += data.len();
                    if *n > max {
                        break;
                    }
                }
                None if buf.len() + data.len() > max => {
                    buf = Vec::new();
                    dropped = Some(0);
                }
                None => buf.extend_from_slice(&data),
            }
        }
        match dropped {
            Some(_) => Err(BodyError::TooLarge),
            None => Ok(Bytes::from(buf)),
        }
    };
    tokio::time::timeout(within, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_back_off_from_100_ms_to_1_s() {
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000, 1000]);
    }
}
