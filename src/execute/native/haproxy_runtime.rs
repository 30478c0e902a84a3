//! HAProxy's runtime API on a node, over its admin socket ([`ADMIN_SOCK`]) with a fixed Python
//! client (`/usr/bin/python3`; no socat or nc needed): one command and its answer
//! ([`runtime`]), and forcing servers' health UP or DOWN ([`set_servers_health`]), at once or as
//! soon as a Patroni member leads ([`set_servers_health_when_leading`], for a switchover).
//!
//! In: a host, backend and server names (each checked to be one HAProxy word, no `/` or `;`).
//! Out: HAProxy's answer, or an error naming the commands and what HAProxy said.

use std::time::Duration;

use super::haproxy::ADMIN_SOCK;
use super::root_sh::{sh, sh_within};
use super::Ctx;
use crate::execute::ExecError;
use crate::render::haproxy::word;

/// HAProxy's runtime API: `$1` the admin socket; the command on stdin; the answer on stdout.
pub(super) const RUNTIME_PY: &str = r#"import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.stdin.buffer.read())
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode("utf-8", "replace"))"#;

const RUNTIME: &str = r#"exec /usr/bin/python3 -c "$1" "$2""#;

/// One command on HAProxy's runtime API of `host` (as root, over the admin socket); the answer.
pub(crate) async fn runtime(ctx: &Ctx<'_>, host: &str, command: &str) -> Result<String, ExecError> {
    let target = ctx.target(host);
    let what = "HAProxy's runtime API";
    sh(
        ctx,
        &target,
        what,
        RUNTIME,
        &[RUNTIME_PY, ADMIN_SOCK],
        Some(command.as_bytes()),
    )
    .await
}

/// Forces each `(backend, server, up)` UP or DOWN on `host`'s HAProxy at runtime (`set server
/// <b>/<s> health up|down`), in order, in one runtime API session (one SSH command): for a
/// switchover, the new leader is served at once instead of after `rise` checks, the old one
/// dropped at once. Later checks still apply.
pub async fn set_servers_health(
    ctx: &Ctx<'_>,
    host: &str,
    servers: &[(&str, &str, bool)],
) -> Result<(), ExecError> {
    let commands = health_commands(host, servers)?;
    let answer = runtime(ctx, host, &commands).await?;
    said(host, &commands, &answer)
}

/// `$1` a Patroni REST address, `$2` tries (50 ms apart), `$3` the runtime API client, `$4` the
/// admin socket; the commands on stdin. Waits until that member answers `/primary` with 200 (it
/// leads with PostgreSQL serving: what HAProxy's own check asks), then sends the commands.
/// Prints `timeout` when it never did (nothing sent).
const WHEN_LEADING: &str = r#"i=0
while [ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' "http://$1/primary" 2>/dev/null)" != 200 ]; do
  i=$((i+1)); [ $i -ge "$2" ] && { echo timeout; exit 0; }
  sleep 0.05
done
exec /usr/bin/python3 -c "$3" "$4""#;

/// [`set_servers_health`] on `host` as soon as the Patroni member at `rest` (`ip:port`) leads,
/// watched from `host` itself every 50 ms for up to `secs`: started beside a switchover request,
/// HAProxy learns of the new leader within 50 ms of its promotion instead of after the request
/// returns (Patroni polls the switchover's result once a second) and another round trip.
/// `Ok(false)`: the member did not lead within `secs`, nothing was sent.
pub async fn set_servers_health_when_leading(
    ctx: &Ctx<'_>,
    host: &str,
    rest: &str,
    secs: u64,
    servers: &[(&str, &str, bool)],
) -> Result<bool, ExecError> {
    let commands = health_commands(host, servers)?;
    let tries = (secs * 20).to_string();
    let args = [rest, tries.as_str(), RUNTIME_PY, ADMIN_SOCK];
    let limit = Duration::from_secs(secs + 15);
    let what = "telling HAProxy who leads";
    let target = ctx.target(host);
    let answer = sh_within(
        ctx,
        &target,
        what,
        WHEN_LEADING,
        &args,
        Some(commands.as_bytes()),
        limit,
    )
    .await?;
    if answer.trim() == "timeout" {
        return Ok(false);
    }
    said(host, &commands, &answer).map(|()| true)
}

/// The runtime API line for `servers`, each name checked.
fn health_commands(host: &str, servers: &[(&str, &str, bool)]) -> Result<String, ExecError> {
    let mut commands = vec![];
    for (backend, server, up) in servers {
        let ok = |n: &str| word(n) && !n.contains(['/', ';']);
        if !ok(backend) || !ok(server) {
            return Err(ExecError::Refused(format!(
                "{host}: `{backend}/{server}` is not a HAProxy server name"
            )));
        }
        let state = if *up { "up" } else { "down" };
        commands.push(format!("set server {backend}/{server} health {state}"));
    }
    Ok(format!("{}\n", commands.join("; ")))
}

/// HAProxy answers nothing to a `set server` that worked.
fn said(host: &str, commands: &str, answer: &str) -> Result<(), ExecError> {
    match answer.trim() {
        "" => Ok(()),
        said => Err(ExecError::Failed {
            host: host.into(),
            what: commands.trim().to_string(),
            stderr: said.to_string(),
        }),
    }
}
