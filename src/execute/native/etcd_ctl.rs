//! Talking to a running etcd cluster from its member hosts: `etcdctl` (etcd-client on the
//! nodes, fixed argv with values as arguments), endpoint health, the member list, and waiting
//! until every member is healthy.
//!
//! In: the members' settings ([`EtcdMember`]). Out: etcd's answers, typed, or an `ExecError`
//! naming the host and what was asked.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::Ctx;
use crate::execute::ExecError;
use crate::render::etcd::EtcdMember;

/// `$1` endpoints, `$2` tries (0.2 s apart): exits 0 once every endpoint is healthy, else prints
/// the last answer and exits 1.
const WAIT_HEALTHY: &str = r#"i=0
while :; do
  ETCDCTL_API=3 etcdctl --endpoints "$1" --dial-timeout 1s --command-timeout 2s endpoint health >/dev/null 2>&1 && exit 0
  i=$((i+1)); [ $i -ge "$2" ] && break
  sleep 0.2
done
ETCDCTL_API=3 etcdctl --endpoints "$1" --dial-timeout 1s --command-timeout 2s endpoint health 2>&1 | grep -v '"level"' >&2
exit 1"#;

/// `$1` endpoints: `etcdctl endpoint health -w json` over those that accept a TCP connection
/// (probed with bash's /dev/tcp, 1 s each, when the host has bash); `[]` when none does. etcdctl
/// alone waits its whole `--command-timeout` (5 s) for an endpoint that refuses connections,
/// which is every endpoint of a cluster not created yet.
const HEALTH: &str = r#"eps=$1
if command -v bash >/dev/null 2>&1; then
  eps=$(bash -c 'out=""; IFS=,; for ep in $1; do hp=${ep#*://}; hp=${hp%%/*}
    timeout 1 bash -c "exec 3<>/dev/tcp/${hp%:*}/${hp##*:}" 2>/dev/null && out="$out${out:+,}$ep"
  done; echo "$out"' bash "$1")
  [ -n "$eps" ] || { echo '[]'; exit 0; }
fi
exec env ETCDCTL_API=3 etcdctl --endpoints "$eps" --dial-timeout 2s --command-timeout 5s endpoint health -w json"#;

/// How long a change may take to become healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
struct Health {
    endpoint: String,
    health: bool,
}

#[derive(Debug, Deserialize)]
struct MemberList {
    #[serde(default)]
    members: Vec<LiveMember>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct LiveMember {
    #[serde(rename = "ID")]
    pub(super) id: u64,
    #[serde(default)]
    pub(super) name: String,
    #[serde(rename = "peerURLs", default)]
    pub(super) peer_urls: Vec<String>,
}

pub(super) fn endpoints(ms: &[&EtcdMember]) -> String {
    let v: Vec<String> = ms.iter().map(|m| m.client_url()).collect();
    v.join(",")
}

/// Runs etcdctl on the first reachable member host with `args`; its output.
pub(super) async fn etcdctl(
    ctx: &Ctx<'_>,
    via: &[&EtcdMember],
    args: &[&str],
) -> Result<crate::execute::runner::Output, ExecError> {
    let eps = endpoints(via);
    let mut argv = vec!["env", "ETCDCTL_API=3", "etcdctl", "--endpoints", &eps];
    argv.extend(["--dial-timeout", "2s", "--command-timeout", "5s"]);
    argv.extend(args);
    let mut last = None;
    for m in via {
        match ctx
            .runner
            .run(&ctx.target(&m.host), &argv, None, ctx.cfg.timeout)
            .await
        {
            Ok(out) => return Ok(out),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ExecError::Refused("no etcd member to ask".into())))
}

/// Health by client URL, asked from the first member host that runs the check (see [`HEALTH`]).
pub(super) async fn health(
    ctx: &Ctx<'_>,
    ms: &[&EtcdMember],
) -> Result<BTreeMap<String, bool>, ExecError> {
    let eps = endpoints(ms);
    let mut argv: Vec<&str> = vec!["sh", "-c", HEALTH, "sh", &eps];
    if ctx.cfg.become_method == crate::execute::Become::Sudo {
        argv.splice(0..0, ["sudo", "-n", "--"]);
    }
    let mut last = None;
    for m in ms {
        match ctx
            .runner
            .run(&ctx.target(&m.host), &argv, None, ctx.cfg.timeout)
            .await
        {
            Ok(out) => {
                let list: Vec<Health> = serde_json::from_str(out.stdout.trim()).unwrap_or_default();
                return Ok(list.into_iter().map(|h| (h.endpoint, h.health)).collect());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ExecError::Refused("no etcd member to ask".into())))
}

pub(super) async fn member_list(
    ctx: &Ctx<'_>,
    via: &[&EtcdMember],
) -> Result<Vec<LiveMember>, ExecError> {
    let out = etcdctl(ctx, via, &["member", "list", "-w", "json"]).await?;
    let host = via.first().map(|m| m.host.clone()).unwrap_or_default();
    let list: MemberList =
        serde_json::from_str(out.stdout.trim()).map_err(|_| ExecError::Failed {
            host,
            what: "etcdctl member list".into(),
            stderr: out.stderr.trim().into(),
        })?;
    Ok(list.members)
}

/// Waits until every one of `ms` is healthy (asked from the first).
pub(super) async fn wait_healthy(ctx: &Ctx<'_>, ms: &[&EtcdMember]) -> Result<(), ExecError> {
    let tries = (HEALTHY_WITHIN.as_millis() / 200).to_string();
    let target = ctx.target(&ms[0].host);
    let what = "waiting for every etcd member to be healthy";
    let eps = endpoints(ms);
    let mut argv: Vec<&str> = vec!["sh", "-c", WAIT_HEALTHY, "sh", &eps, &tries];
    if ctx.cfg.become_method == crate::execute::Become::Sudo {
        argv.splice(0..0, ["sudo", "-n", "--"]);
    }
    let t = ctx
        .cfg
        .timeout
        .max(HEALTHY_WITHIN + Duration::from_secs(15));
    let out = ctx.runner.run(&target, &argv, None, t).await?;
    if out.status != 0 {
        return Err(ExecError::Failed {
            host: target.host,
            what: what.into(),
            stderr: out.stderr.trim().into(),
        });
    }
    Ok(())
}

pub(super) fn last_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}
