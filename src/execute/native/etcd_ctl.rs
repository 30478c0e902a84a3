//! Talking to a running etcd cluster from its member hosts: `etcdctl` (etcd-client on the
//! nodes, fixed argv with values as arguments), endpoint health, the member list, and waiting
//! until every member is healthy.
//!
//! In: the members' settings ([`EtcdMember`]). Out: etcd's answers, typed, or an `ExecError`
//! naming the host and what was asked.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::root_sh::sh_within;
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

/// `$@`: pairs of address and port. Prints the index (from 0) of each pair that accepts a TCP
/// connection (bash's `/dev/tcp`, 2 s at most each), or `all` when the node cannot probe.
const LISTENING: &str = r#"command -v bash >/dev/null && command -v timeout >/dev/null || { echo all; exit 0; }
i=0
while [ $# -ge 2 ]; do
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null && echo $i
  i=$((i+1)); shift 2
done
exit 0"#;

/// The members of `ms` whose client port accepts a connection, probed from the first reachable
/// member host (all of them where the node has no bash or `timeout` to probe with). etcdctl waits out its dial and command timeouts (5 s here) on a port where
/// nothing listens; a member not yet created is known at once this way.
async fn listening<'m>(
    ctx: &Ctx<'_>,
    ms: &[&'m EtcdMember],
) -> Result<Vec<&'m EtcdMember>, ExecError> {
    let pairs: Vec<String> = ms
        .iter()
        .flat_map(|m| [m.ip.to_string(), m.port.to_string()])
        .collect();
    let mut argv = vec!["sh", "-c", LISTENING, "sh"];
    argv.extend(pairs.iter().map(String::as_str));
    let mut last = None;
    for m in ms {
        match ctx
            .runner
            .run(&ctx.target(&m.host), &argv, None, ctx.cfg.timeout)
            .await
        {
            Ok(out) if out.stdout.trim() == "all" => return Ok(ms.to_vec()),
            Ok(out) => {
                let up: Vec<usize> = out.stdout.lines().filter_map(|l| l.parse().ok()).collect();
                return Ok(up.into_iter().filter_map(|i| ms.get(i).copied()).collect());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ExecError::Refused("no etcd member to ask".into())))
}

/// Health by client URL, asked from a member host; members whose client port does not accept
/// a connection are not asked (absent from the map: not healthy).
pub(super) async fn health(
    ctx: &Ctx<'_>,
    ms: &[&EtcdMember],
) -> Result<BTreeMap<String, bool>, ExecError> {
    let ms = listening(ctx, ms).await?;
    if ms.is_empty() {
        return Ok(BTreeMap::new());
    }
    let out = etcdctl(ctx, &ms, &["endpoint", "health", "-w", "json"]).await?;
    let list: Vec<Health> = serde_json::from_str(out.stdout.trim()).unwrap_or_default();
    Ok(list.into_iter().map(|h| (h.endpoint, h.health)).collect())
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
    let t = ctx
        .cfg
        .timeout
        .max(HEALTHY_WITHIN + Duration::from_secs(15));
    let args = [eps.as_str(), &tries];
    sh_within(ctx, &target, what, WAIT_HEALTHY, &args, None, t).await?;
    Ok(())
}

pub(super) fn last_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

/// The etcd members that hold Patroni's DCS: the `etcd` group of `ctx.new` (a removal hands a
/// context whose both sides are the old revision).
fn dcs_members(ctx: &Ctx<'_>) -> Result<Vec<EtcdMember>, ExecError> {
    let hosts = crate::render::group_hosts(ctx.new, "etcd");
    let members: Vec<EtcdMember> = hosts
        .iter()
        .filter_map(|h| crate::render::etcd::host(ctx.new, h).ok())
        .map(|h| h.member)
        .collect();
    match members.is_empty() {
        true => Err(ExecError::Refused(
            "there is no `etcd` group: Patroni's DCS cannot be reached".into(),
        )),
        false => Ok(members),
    }
}

/// Deletes `key` from Patroni's DCS (with `prefix`, every key under it); how many keys went
/// (`0`: nothing was there).
pub(super) async fn dcs_del(ctx: &Ctx<'_>, key: &str, prefix: bool) -> Result<u64, ExecError> {
    let members = dcs_members(ctx)?;
    let via: Vec<&EtcdMember> = members.iter().collect();
    let mut args = vec!["del", key];
    if prefix {
        args.push("--prefix");
    }
    let out = etcdctl(ctx, &via, &args).await?;
    let n = out.stdout.trim().parse().ok();
    match (out.status, n) {
        (0, Some(n)) => Ok(n),
        _ => Err(ExecError::Failed {
            host: via[0].host.clone(),
            what: format!("etcdctl del {key}"),
            stderr: format!("{} {}", out.stdout.trim(), out.stderr.trim()),
        }),
    }
}

/// The keys under `prefix` in Patroni's DCS.
pub(super) async fn dcs_keys(ctx: &Ctx<'_>, prefix: &str) -> Result<Vec<String>, ExecError> {
    let members = dcs_members(ctx)?;
    let via: Vec<&EtcdMember> = members.iter().collect();
    let out = etcdctl(ctx, &via, &["get", prefix, "--prefix", "--keys-only"]).await?;
    if out.status != 0 {
        return Err(ExecError::Failed {
            host: via[0].host.clone(),
            what: format!("etcdctl get {prefix} --prefix"),
            stderr: out.stderr.trim().into(),
        });
    }
    Ok(out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}
