//! A member removed from a PGSQL cluster under Patroni (the approved `member/<ip>/remove`
//! action of a host that left the cluster's `hosts`), with the semantics of Pigsty's
//! `pg_remove` for a replica.
//!
//! In: the action (its one host), the old revision (the host's variables: `pg_safeguard`,
//! `pg_rm_data`, its instance name) and the new one (the remaining members). Out: the host's
//! result. Refused when `pg_safeguard` is set (read as Ansible's `| bool`), or when the host is
//! the live leader (switch over first); a PostgreSQL found running outside Patroni there is
//! reported and left alone (not stopped, data kept). Otherwise, on the host ([`halt`] and
//! [`purge`], shared with the whole cluster's removal): Patroni's service told not to restart, stopped (Patroni stops
//! its PostgreSQL) and removed; a postmaster still in `pg_data/postmaster.pid` is stopped (fast,
//! then killed); the member's key (`<pg_namespace>/<pg_cluster>/members/<name>`, that one key,
//! never the cluster's prefix) is deleted from etcd, so the remaining members stop listing it now
//! rather than after `ttl`; with `pg_rm_data` (default true) the contents of `pg_data` and the
//! instance's Patroni configuration (and `/etc/patroni/patroni.yml` when it links there) are
//! removed. Then verified on the remaining members: Patroni's `/cluster` does not list it, and
//! the leader has neither a stream nor a replication slot from it. Every step is idempotent: a
//! second run on a cleaned host finds nothing to do and succeeds.

use std::time::{Duration, Instant};

use super::patroni_node::{self as node, Now};
use super::patroni_rm_cluster::flag;
use super::root_sh::sh;
use super::supervise;
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::ExecError;
use crate::plan::Action;
use crate::render::patroni::{placement, Placement};
use crate::render::sql::quote_literal;

/// `$1` pg_data: stops the postmaster named in `postmaster.pid` if it still runs (SIGINT: fast
/// shutdown, 15 s), else kills it and its children. Prints what it found.
const PG_DOWN: &str = r#"f=$1/postmaster.pid
pid=$(head -n 1 "$f" 2>/dev/null)
case "$pid" in ''|*[!0-9]*) echo "no postmaster"; exit 0 ;; esac
kill -0 "$pid" 2>/dev/null || { echo "postmaster $pid gone"; exit 0; }
kill -INT "$pid"; i=0
while kill -0 "$pid" 2>/dev/null; do
  i=$((i+1))
  if [ $i -gt 150 ]; then pkill -9 -P "$pid" 2>/dev/null; kill -9 "$pid" 2>/dev/null; echo "postmaster $pid killed"; exit 0; fi
  sleep 0.1
done
echo "postmaster $pid stopped""#;

/// `$1` pg_data, `$2` the instance's configuration, `$3` Patroni's link. A mount point keeps
/// its (emptied) data directory. Prints `removed` or `nothing`.
const PURGE: &str = r#"r=nothing
if [ -d "$1" ] && [ -n "$(ls -A "$1" 2>/dev/null)" ]; then find "$1" -mindepth 1 -delete; r=removed; fi
if [ -L "$3" ] && [ "$(readlink "$3")" = "$2" ]; then rm -f "$3"; r=removed; fi
if [ -e "$2" ]; then rm -f "$2"; r=removed; fi
echo $r"#;

pub(crate) struct PatroniRemove;

impl Component for PatroniRemove {
    /// The removed member's host.
    type Step = String;
    type Observed = node::Member;

    async fn observe(ctx: &Ctx<'_>, a: &Action, ip: &String) -> Result<node::Member, ExecError> {
        node::observe_member(ctx, ctx.cluster(a)?, ip).await
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, ip: &String, now: node::Member) -> Outcome {
        let place = placement(ctx.old, ip).map_err(|e| ExecError::Refused(e.to_string()))?;
        let name = place
            .path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".yml")
            .to_string();
        if flag(ctx.old, ip, "pg_safeguard", false) {
            return Err(ExecError::Refused(format!(
                "pg_safeguard is set for {name} @ {ip}: not removed (set pg_safeguard: false first)"
            )));
        }
        if now.now == Now::Plain {
            let msg = "PostgreSQL runs here outside Patroni: reported and left alone (not stopped, data kept)";
            let r = on_host(ctx, ip, || async { Ok("left alone".to_string()) }).await;
            return Ok((msg.into(), vec![r]));
        }
        if now.now == (Now::Patroni { leader: true }) {
            return Err(ExecError::Refused(format!(
                "{name} @ {ip} is the live leader of {}: switch over first, then remove it",
                a.cluster
            )));
        }
        let rm_data = flag(ctx.old, ip, "pg_rm_data", true);
        let data = ctx.pg(ip).data;
        let mut r = on_host(ctx, ip, || async {
            let halted = halt(ctx, ip, &data).await?;
            let key = deregister(ctx, ip, &a.cluster, &name).await?;
            let purged = purge(ctx, ip, &data, &place, rm_data).await?;
            Ok(format!(
                "found {:?}; {halted}; DCS key: {key}; {purged}",
                now.now
            ))
        })
        .await;
        if !r.ok {
            return Ok((format!("{name} not removed"), vec![r]));
        }
        let t = Instant::now();
        match verify(ctx, ip, &name, now.leader.as_deref(), a).await {
            Ok(v) => {
                r.ms += t.elapsed().as_millis() as u64;
                r.detail += &format!("; {v}");
                Ok((format!("{name} removed from {}", a.cluster), vec![r]))
            }
            Err(e) => {
                r.ok = false;
                r.detail += &format!("; {e}");
                Ok((format!("{name} stopped but still seen"), vec![r]))
            }
        }
    }
}

/// On `ip`: Patroni's service told not to restart, stopped (Patroni stops its PostgreSQL) and
/// removed under the node's supervisor; a postmaster still named in `data/postmaster.pid` is
/// stopped (fast, then killed). What was done.
pub(super) async fn halt(ctx: &Ctx<'_>, ip: &str, data: &str) -> Result<String, ExecError> {
    let target = ctx.target(ip);
    let sup = supervise::detect(ctx, &target).await?;
    supervise::once(ctx, &target, &sup, "patroni").await?;
    supervise::stop(ctx, &target, &sup, "patroni").await?;
    supervise::remove(ctx, &target, &sup, "patroni").await?;
    let what = "making sure PostgreSQL is down";
    let pg = sh(ctx, &target, what, PG_DOWN, &[data], None).await?;
    Ok(format!("patroni service stopped and removed; {pg}"))
}

/// With `rm_data` (`pg_rm_data`), the contents of `data` and the instance's Patroni
/// configuration (and `/etc/patroni/patroni.yml` when it links there) removed on `ip`.
pub(super) async fn purge(
    ctx: &Ctx<'_>,
    ip: &str,
    data: &str,
    place: &Placement,
    rm_data: bool,
) -> Result<String, ExecError> {
    if !rm_data {
        return Ok("pg_rm_data: false, data kept".into());
    }
    let args = [data, &place.path, place.link];
    let what = "removing the data and the configuration";
    let out = sh(ctx, &ctx.target(ip), what, PURGE, &args, None).await?;
    Ok(format!("data and configuration: {out}"))
}

/// Deletes the member's key from the inventory's etcd; what was deleted (`0` when Patroni's
/// lease had expired it already).
async fn deregister(
    ctx: &Ctx<'_>,
    ip: &str,
    cluster: &str,
    name: &str,
) -> Result<String, ExecError> {
    let ns = node::var(ctx, ip, "pg_namespace", "/pg");
    let key = format!("{}/{cluster}/members/{name}", ns.trim_end_matches('/'));
    let n = super::etcd_ctl::dcs_del(ctx, &key, false).await?;
    Ok(format!("{key} deleted {n}"))
}

/// Waits until no remaining member's Patroni lists `name` and the leader has no stream and no
/// slot from it.
async fn verify(
    ctx: &Ctx<'_>,
    ip: &str,
    name: &str,
    leader: Option<&str>,
    a: &Action,
) -> Result<String, ExecError> {
    let c = ctx.cluster(a)?;
    let ask = leader
        .map(str::to_string)
        .or_else(|| c.members.keys().find(|h| *h != ip).cloned())
        .ok_or_else(|| ExecError::Refused("no remaining member to ask".into()))?;
    let lit = |s: &str| quote_literal(s).map_err(|e| ExecError::Refused(e.to_string()));
    let (app, slot) = (lit(name)?, lit(&name.replace(['-', '.'], "_"))?);
    let sql = format!(
        "SELECT (SELECT count(*) FROM pg_stat_replication WHERE application_name = {app}) || ',' || (SELECT count(*) FROM pg_replication_slots WHERE slot_name = {slot});"
    );
    let deadline = Instant::now() + node::WAIT;
    let mut last = String::new();
    while Instant::now() < deadline {
        let view = node::cluster_view(ctx, &ask).await?;
        let listed = view.members.iter().any(|m| m.name == name);
        let leader_has = match leader {
            Some(l) => super::pg::psql(ctx, l, "postgres", &sql).await?,
            _ => "0,0".into(),
        };
        if !listed && leader_has.trim() == "0,0" {
            let on = match leader {
                Some(l) => format!("; no stream and no slot on the leader {l}"),
                None => "; no leader to ask about streams".into(),
            };
            return Ok(format!("Patroni on {ask} no longer lists it{on}"));
        }
        last = format!("listed by Patroni: {listed}; streams,slots on the leader: {leader_has}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(ExecError::Failed {
        host: ask,
        what: format!("waiting for {name} to be gone"),
        stderr: last,
    })
}
