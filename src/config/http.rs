//! The `[http]` table: the service's listener (`GET /healthz`, `GET /metrics`, `POST /hook`),
//! its webhook secret and the bounds that keep an unauthenticated listener from holding the
//! service: a connection cap, time limits, a body size limit and the delivery-id window.
//!
//! ```toml
//! [http]
//! listen = "127.0.0.1:9187"         # GET /healthz, GET /metrics, POST /hook
//! hook_secret_env = "PGITOPS_HOOK_SECRET"
//! max_connections = 64              # open at once; at the cap the oldest idle one is closed
//! header_timeout_seconds = 10       # the request head must arrive within this
//! body_timeout_seconds = 10         # the body must arrive within this (else 408)
//! connection_timeout_seconds = 30   # a connection lives at most this long
//! max_body_bytes = 1048576          # a larger hook body is answered 413
//! hook_deliveries = 1024            # delivery ids remembered: a replay is answered, not fetched
//! ```
//!
//! The HTTP listener takes at most half of the process's open-files limit (raised to the hard
//! limit at start), whatever `max_connections` says, so SSH and Git always have descriptors.
//! A signed hook whose delivery id (`X-GitHub-Delivery`, `X-Gitea-Delivery`,
//! `X-Forgejo-Delivery`) is among the last `hook_deliveries` seen is answered
//! `200 duplicate delivery` and fetches nothing.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// `/metrics`, `/healthz`, `POST /hook`.
    #[serde(default = "listen")]
    pub listen: String,
    /// The webhook's HMAC secret, from this environment variable (no hook without it).
    pub hook_secret_env: Option<String>,
    /// Connections open at once; at the cap a new connection takes the place of the oldest one
    /// still waiting for its request head.
    #[serde(default = "sixty_four")]
    pub max_connections: usize,
    /// A connection whose request head has not arrived within this is closed.
    #[serde(default = "ten")]
    pub header_timeout_seconds: u64,
    /// A hook whose body has not arrived within this is answered 408.
    #[serde(default = "ten")]
    pub body_timeout_seconds: u64,
    /// A connection is closed after this, whatever it is doing.
    #[serde(default = "thirty")]
    pub connection_timeout_seconds: u64,
    /// A hook body over this is answered 413.
    #[serde(default = "one_mib")]
    pub max_body_bytes: usize,
    /// How many webhook delivery ids are remembered; a signed delivery seen again is answered
    /// but triggers no fetch.
    #[serde(default = "deliveries")]
    pub hook_deliveries: usize,
}

impl Default for Http {
    fn default() -> Self {
        toml::from_str("").expect("http defaults")
    }
}

impl Http {
    /// Refuses an unparsable `listen` address and zero limits.
    pub(super) fn check(&self) -> Result<(), String> {
        self.listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| format!("`http.listen`: {e}"))?;
        for (key, value) in [
            ("max_connections", self.max_connections as u64),
            ("header_timeout_seconds", self.header_timeout_seconds),
            ("body_timeout_seconds", self.body_timeout_seconds),
            (
                "connection_timeout_seconds",
                self.connection_timeout_seconds,
            ),
            ("max_body_bytes", self.max_body_bytes as u64),
            ("hook_deliveries", self.hook_deliveries as u64),
        ] {
            if value == 0 {
                return Err(format!("`http.{key}` must be at least 1"));
            }
        }
        Ok(())
    }
}

fn listen() -> String {
    "127.0.0.1:9187".into()
}
fn ten() -> u64 {
    10
}
fn thirty() -> u64 {
    30
}
fn sixty_four() -> usize {
    64
}
fn one_mib() -> usize {
    1 << 20
}
fn deliveries() -> usize {
    1024
}
