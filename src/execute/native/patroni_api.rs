//! Patroni's REST API of one member, asked on the member's node with curl: its status
//! (`GET /patroni`, open to anyone) and the requests Pigsty's configuration guards with basic
//! auth (`restapi.authentication`: `POST /restart`, `POST /reload`).
//!
//! In: a host and the [`Ctx`]. Out: the member's [`Status`], or the HTTP code and body of a
//! request. The credentials (`patroni_username` / `patroni_password` of the inventory) and the
//! request body travel in curl's configuration on **stdin** (`curl -K -`): never in argv, a log,
//! an error or a note. curl rather than `patronictl -c /etc/patroni/patroni.yml` (which reads
//! them from the file on the node): one request to exactly the member meant, its HTTP code and
//! JSON as Patroni sent them, no prompt to answer, and no Python started per request; curl is
//! already what observes the members.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::patroni_node::rest;
use super::root_sh::{sh, sh_within};
use super::Ctx;
use crate::execute::ExecError;
use crate::render::patroni::rest_auth;

/// `$1` method, `$2` REST address, `$3` seconds, `$4` path; curl's configuration on stdin.
/// Prints the body, then the HTTP code on the last line. The request leaves from the member's
/// own address (`--interface`: the node runs it against its own Patroni): Patroni's
/// `restapi.allowlist` (Pigsty: `admin_ip`, the members, the infra nodes) admits it, where a
/// loopback address would pick 127.0.0.1 as the source and be refused (403).
const REQUEST: &str = r#"curl -s -m "$3" --interface "${2%:*}" -K - -X "$1" -H 'Content-Type: application/json' -w '\n%{http_code}' "http://$2$4"
rc=$?; [ $rc = 0 ] || { echo "curl exit $rc: Patroni's REST API at $2 did not answer" >&2; exit 1; }"#;

/// What `GET /patroni` says of a member.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Status {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub postmaster_start_time: Option<String>,
    #[serde(default)]
    pub pending_restart: bool,
}

impl Status {
    pub fn leader(&self) -> bool {
        ["master", "primary", "standby_leader"].contains(&self.role.as_str())
    }
}

/// `GET /patroni` of `host`'s member.
pub async fn status(ctx: &Ctx<'_>, host: &str) -> Result<Status, ExecError> {
    get(ctx, host, "/patroni").await
}

/// `GET <path>` of `host`'s member (open to anyone: no credentials), its JSON read as `T`.
pub async fn get<T: DeserializeOwned>(
    ctx: &Ctx<'_>,
    host: &str,
    path: &str,
) -> Result<T, ExecError> {
    let script = r#"curl -s -m 3 "http://$1$2""#;
    let what = format!("asking Patroni for {path}");
    let args = [rest(ctx, host), path.to_string()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sh(ctx, &ctx.target(host), &what, script, &args, None).await?;
    serde_json::from_str(&out).map_err(|_| ExecError::Failed {
        host: host.into(),
        what: format!("reading Patroni's {path}"),
        stderr: out.chars().take(200).collect(),
    })
}

/// An authenticated `method path` to `host`'s member with `body`, allowed `secs` seconds:
/// the HTTP code and the body of the answer.
pub async fn request(
    ctx: &Ctx<'_>,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    secs: u64,
) -> Result<(u16, String), ExecError> {
    let auth = rest_auth(ctx.new, host).map_err(|e| ExecError::Refused(e.to_string()))?;
    let config = auth.curl_config(body);
    let what = format!("{method} {path} on Patroni's REST API");
    let (addr, max) = (rest(ctx, host), secs.to_string());
    let limit = Duration::from_secs(secs + 15).max(ctx.cfg.timeout);
    let args = [method, addr.as_str(), max.as_str(), path];
    let target = ctx.target(host);
    let out = sh_within(
        ctx,
        &target,
        &what,
        REQUEST,
        &args,
        Some(config.as_bytes()),
        limit,
    )
    .await?;
    Ok(split_code(&out))
}

/// The body and the HTTP code of curl's `-w '\n%{http_code}'` output (0 when unreadable).
fn split_code(out: &str) -> (u16, String) {
    match out.rsplit_once('\n') {
        Some((body, code)) => (code.trim().parse().unwrap_or(0), body.trim().to_string()),
        None => (out.trim().parse().unwrap_or(0), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_the_last_line() {
        assert_eq!(
            split_code("restarted successfully\n200"),
            (200, "restarted successfully".into())
        );
        assert_eq!(split_code("\n401"), (401, String::new()));
        assert_eq!(split_code("401"), (401, String::new()));
        assert_eq!(split_code("a\nb\n503"), (503, "a\nb".into()));
    }

    /// The request script run by the real curl against a one-shot HTTP server: the credentials
    /// and the body arrive from stdin, the code comes back on the last line, argv holds neither.
    #[test]
    fn curl_sends_the_credentials_and_body_from_stdin() {
        use std::io::{Read, Write};
        use std::process::{Command, Stdio};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&req).contains("{}") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            s.write_all(
                b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 14\r\n\r\nrestart failed",
            )
            .unwrap();
            String::from_utf8_lossy(&req).to_string()
        });
        let auth = crate::render::patroni::RestAuth {
            username: "api".into(),
            password: "p\"a\\s s".into(),
        };
        let args = ["POST", addr.as_str(), "5", "/restart"];
        let mut child = Command::new("sh")
            .args(["-c", REQUEST, "sh"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let config = auth.curl_config(Some("{}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(config.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let req = server.join().unwrap();
        assert!(req.starts_with("POST /restart "), "{req}");
        assert!(
            req.contains("Authorization: Basic YXBpOnAiYVxzIHM="),
            "{req}"
        );
        assert!(req.ends_with("{}"), "{req}");
        let out = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(split_code(&out), (503, "restart failed".into()));
    }

    #[test]
    fn a_status_reads_patronis_answer() {
        let s: Status = serde_json::from_str(r#"{"state": "running", "postmaster_start_time": "2024-01-01 00:00:00.1+00:00", "role": "replica", "server_version": 150018, "xlog": {}, "timeline": 1, "pending_restart": true, "patroni": {"version": "3.0.2", "scope": "pg-test"}}"#).unwrap();
        assert!(s.pending_restart && !s.leader());
        let s: Status = serde_json::from_str(r#"{"state": "running", "role": "master"}"#).unwrap();
        assert!(!s.pending_restart && s.leader());
    }
}
