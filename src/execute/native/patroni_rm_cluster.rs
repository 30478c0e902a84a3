//! A whole PGSQL cluster removed under Patroni (the approved `cluster/<name>/remove` action of
//! a group that left the inventory), with the semantics of Pigsty's `pgsql-rm.yml`
//! (`roles/pg_remove`).
//!
//! In: the action and the **old** revision only: the caller hands a [`Ctx`] whose both sides are
//! the old inventory, so the cluster, its members' variables and the etcd that holds its DCS
//! keys are read there. Out: one result per member. Refused whole, before anything is touched,
//! when `pg_safeguard` is true for any member (Pigsty aborts the play), or when the etcd was not
//! built by pgitops (its DCS keys could not be deleted natively). Otherwise: every member
//! observed; Patroni stopped under each node's supervisor (it stops its PostgreSQL; a postmaster
//! still running is stopped), its service removed, the replicas side by side first and the live
//! leader last (Pigsty: "remove followers first to avoid unnecessary failover"); the cluster's
//! DCS keys (`<pg_namespace>/<pg_cluster>/`, that prefix) deleted; with `pg_rm_data` (default
//! true) each member's `pg_data` contents and Patroni configuration removed. Then verified: no
//! Patroni answers on any member and no key is left under the prefix. A member whose
//! PostgreSQL runs outside Patroni is reported and left alone (not stopped, data kept); a member
//! found empty has nothing wiped. Packages are never uninstalled (`pg_rm_pkg` is reported), and
//! pgBackRest, which pgitops does not provision natively, is left as it is (`pg_rm_backup` is
//! reported). Every step is idempotent: a second run finds nothing and succeeds.

use std::collections::BTreeMap;

use futures::future::join_all;

use super::patroni_node::{self as node, Now};
use super::patroni_remove::{halt, purge};
use super::{etcd_ctl, on_host, Component, Ctx, Outcome};
use crate::execute::{ExecError, HostResult};
use crate::inventory::model::PgCluster;
use crate::inventory::{Inventory, VarSource};
use crate::plan::Action;
use crate::render::patroni::jinja::truthy;
use crate::render::patroni::placement;

pub(crate) struct PatroniRmCluster;

pub(crate) struct Observed {
    members: Vec<(String, Now)>,
}

/// `host`'s variable `k` in `inv` read as Ansible's `| bool`, else `default`.
pub(super) fn flag(inv: &Inventory, host: &str, k: &str, default: bool) -> bool {
    let vars = inv.tree.hosts.get(host).map(|h| &h.vars);
    vars.and_then(|v| v.var(k))
        .map(|v| truthy(&v.value))
        .unwrap_or(default)
}

/// The members whose `pg_safeguard` is true, as Pigsty names them (`<instance> @ <host>`).
fn guarded(inv: &Inventory, c: &PgCluster) -> Vec<String> {
    c.members
        .iter()
        .filter(|(h, _)| flag(inv, h, "pg_safeguard", false))
        .map(|(h, m)| format!("{} @ {h}", m.instance(&c.name)))
        .collect()
}

/// The cluster's DCS prefix, `<pg_namespace>/<pg_cluster>/` (Pigsty's `pg_meta_prefix` and the
/// trailing slash, so that `pg-test2` is not under `pg-test`); refused for a name Pigsty refuses.
fn dcs_prefix(namespace: &str, cluster: &str) -> Result<String, String> {
    let ok = !cluster.is_empty()
        && cluster != "root"
        && cluster
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    match ok {
        true => Ok(format!("{}/{cluster}/", namespace.trim_end_matches('/'))),
        false => Err(format!(
            "cluster name {cluster:?}: its DCS keys are not deleted (Pigsty requires [A-Za-z0-9-]+, not `root`)"
        )),
    }
}

/// The members to stop, in two waves: every member but the live leader side by side, then the
/// leader (the declared primary when no live leader is seen). Members running PostgreSQL
/// outside Patroni are in neither.
fn waves(members: &[(String, Now)], primary: Option<&str>) -> (Vec<String>, Vec<String>) {
    let managed: Vec<&(String, Now)> = members.iter().filter(|(_, n)| *n != Now::Plain).collect();
    let live: Vec<String> = managed
        .iter()
        .filter(|(_, n)| *n == Now::Patroni { leader: true })
        .map(|(h, _)| h.clone())
        .collect();
    let last = match live.is_empty() {
        false => live,
        true => managed
            .iter()
            .filter(|(h, _)| Some(h.as_str()) == primary)
            .map(|(h, _)| h.clone())
            .collect(),
    };
    let first = managed
        .iter()
        .map(|(h, _)| h.clone())
        .filter(|h| !last.contains(h))
        .collect();
    (first, last)
}

/// How many members were found running and stopped, empty, or left alone.
fn summary(members: &[(String, Now)]) -> String {
    let count = |f: fn(&Now) -> bool| members.iter().filter(|(_, n)| f(n)).count();
    let running = count(|n| matches!(n, Now::Patroni { .. } | Now::Ours));
    let plain = count(|n| *n == Now::Plain);
    let mut parts = vec![match running {
        0 => "no member under Patroni was found".to_string(),
        n => format!(
            "{n} of {} members stopped (replicas first, then the leader)",
            members.len()
        ),
    }];
    if plain > 0 {
        parts.push(format!("{plain} PostgreSQL outside Patroni left alone"));
    }
    parts.join(", ")
}

/// What the removal leaves on purpose: packages (`pg_rm_pkg`) and pgBackRest (`pg_rm_backup`).
fn leftovers(inv: &Inventory, c: &PgCluster) -> String {
    let host = c
        .primary
        .as_deref()
        .or(c.members.keys().next().map(String::as_str));
    let on = |k: &str| host.is_some_and(|h| flag(inv, h, k, true));
    let pkg = match on("pg_rm_pkg") {
        true => "pg_rm_pkg: packages left installed (pgitops never uninstalls packages)",
        false => "pg_rm_pkg: false, packages kept",
    };
    let backup = match on("pg_rm_backup") {
        true => "pg_rm_backup: pgitops does not provision pgBackRest natively; any backup repository is left as it is",
        false => "pg_rm_backup: false, backups kept",
    };
    format!("{pkg}; {backup}")
}

impl Component for PatroniRmCluster {
    /// The cluster's name.
    type Step = String;
    type Observed = Observed;

    async fn observe(ctx: &Ctx<'_>, a: &Action, _: &String) -> Result<Observed, ExecError> {
        let members = node::observe_all(ctx, ctx.cluster(a)?).await?;
        Ok(Observed { members })
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, name: &String, now: Observed) -> Outcome {
        let c = ctx.cluster(a)?;
        let guarded = guarded(ctx.new, c);
        if !guarded.is_empty() {
            return Err(ExecError::Refused(format!(
                "Abort due to pg_safeguard for {} is enabled: cluster {name} not removed, nothing changed (set pg_safeguard: false and apply that commit, then remove the cluster)",
                guarded.join(", ")
            )));
        }
        let defining = c
            .primary
            .as_deref()
            .or(c.members.keys().next().map(String::as_str));
        let ns = node::var(ctx, defining.unwrap_or_default(), "pg_namespace", "/pg");
        let prefix = dcs_prefix(&ns, name).map_err(ExecError::Refused)?;
        let mut etcd = crate::render::group_hosts(ctx.new, "etcd");
        etcd.sort();
        super::patroni::dcs_of(ctx, etcd.first().map(String::as_str), "remove this cluster")
            .await?;

        let mut results: BTreeMap<String, HostResult> = BTreeMap::new();
        for (h, _) in now.members.iter().filter(|(_, n)| *n == Now::Plain) {
            let left = || async {
                Ok("PostgreSQL runs here outside Patroni: reported and left alone (not stopped, data kept)".to_string())
            };
            results.insert(h.clone(), on_host(ctx, h, left).await);
        }
        let found: BTreeMap<&str, &Now> =
            now.members.iter().map(|(h, n)| (h.as_str(), n)).collect();
        let (first, last) = waves(&now.members, c.primary.as_deref());
        stop_all(ctx, &found, &first, &last, &mut results).await;
        if results.values().any(|r| !r.ok) {
            let msg = format!("{name} not removed: a member did not stop; its DCS keys and data are left (run again)");
            return Ok((msg, results.into_values().collect()));
        }

        let halted: Vec<&String> = first.iter().chain(&last).collect();
        let owner = last.first().or(first.first()).cloned().unwrap_or_default();
        let dcs = match etcd_ctl::dcs_del(ctx, &prefix, true).await {
            Ok(n) => Ok(format!("DCS {prefix}: {n} keys deleted")),
            Err(e) => Err(format!("DCS {prefix} not deleted: {e}")),
        };
        if let Some(r) = results.get_mut(&owner) {
            let (ok, text) = match &dcs {
                Ok(t) => (true, t),
                Err(t) => (false, t),
            };
            r.ok &= ok;
            r.detail += &format!("; {text}");
        }
        if let Err(e) = dcs {
            let msg = format!("{name}: members stopped, but {e}; data left (run again)");
            return Ok((msg, results.into_values().collect()));
        }

        wipe_all(ctx, &found, &halted, &mut results).await;

        let verified = verify(ctx, &halted, &prefix).await;
        let mut hosts: Vec<HostResult> = results.into_values().collect();
        let msg = match verified {
            Ok(v) => format!(
                "{name} removed: {}; {v}; {}",
                summary(&now.members),
                leftovers(ctx.new, c)
            ),
            Err(e) => {
                match hosts.iter_mut().find(|r| r.host == owner) {
                    Some(r) => {
                        r.ok = false;
                        r.detail += &format!("; {e}");
                    }
                    None => hosts.push(HostResult {
                        host: etcd.first().cloned().unwrap_or_default(),
                        ok: false,
                        detail: e.clone(),
                        ms: 0,
                    }),
                }
                format!("{name} stopped but still seen: {e}")
            }
        };
        Ok((msg, hosts))
    }
}

/// Stops `first` (the replicas) side by side, then `last` (the leader) unless a stop failed;
/// each member's result goes into `results`.
async fn stop_all(
    ctx: &Ctx<'_>,
    found: &BTreeMap<&str, &Now>,
    first: &[String],
    last: &[String],
    results: &mut BTreeMap<String, HostResult>,
) {
    let stop = |h: String| {
        let data = ctx.pg(&h).data;
        let was = found
            .get(h.as_str())
            .copied()
            .cloned()
            .unwrap_or(Now::Empty);
        async move {
            let r = on_host(ctx, &h, || async {
                let halted = halt(ctx, &h, &data).await?;
                Ok(format!("found {was:?}; {halted}"))
            })
            .await;
            (h, r)
        }
    };
    results.extend(join_all(first.iter().cloned().map(stop)).await);
    for h in last {
        if results.values().any(|r| !r.ok) {
            break;
        }
        let (h, r) = stop(h.clone()).await;
        results.insert(h, r);
    }
}

/// Removes the data (`pg_rm_data`) and Patroni configuration of the stopped members where
/// something was found; each outcome is added to the member's result.
async fn wipe_all(
    ctx: &Ctx<'_>,
    found: &BTreeMap<&str, &Now>,
    halted: &[&String],
    results: &mut BTreeMap<String, HostResult>,
) {
    let wipe = halted.iter().map(|h| {
        let (data, rm) = (ctx.pg(h).data, flag(ctx.new, h, "pg_rm_data", true));
        let ours = !matches!(found.get(h.as_str()), Some(Now::Empty));
        async move {
            let r = on_host(ctx, h, || async {
                if !ours {
                    return Ok("nothing found to remove".to_string());
                }
                let place = placement(ctx.new, h).map_err(|e| ExecError::Refused(e.to_string()))?;
                purge(ctx, h, &data, &place, rm).await
            })
            .await;
            ((*h).clone(), r)
        }
    });
    for (h, w) in join_all(wipe).await {
        if let Some(r) = results.get_mut(&h) {
            r.ok &= w.ok;
            r.ms += w.ms;
            r.detail += &format!("; {}", w.detail);
        }
    }
}

/// No Patroni answers on the stopped members and no key is left under `prefix`.
async fn verify(ctx: &Ctx<'_>, halted: &[&String], prefix: &str) -> Result<String, String> {
    let asks = halted
        .iter()
        .map(|h| async move { (h.as_str(), node::observe(ctx, h).await) });
    for (h, now) in join_all(asks).await {
        match now {
            Ok(Now::Patroni { .. }) => return Err(format!("Patroni still answers on {h}")),
            Err(e) => return Err(format!("{h} could not be asked: {e}")),
            Ok(_) => {}
        }
    }
    let keys = etcd_ctl::dcs_keys(ctx, prefix)
        .await
        .map_err(|e| e.to_string())?;
    match keys.is_empty() {
        true => Ok(format!(
            "no Patroni answers and no key is left under {prefix}"
        )),
        false => Err(format!("keys left under {prefix}: {}", keys.join(", "))),
    }
}

#[cfg(test)]
#[path = "patroni_rm_cluster_tests.rs"]
mod tests;
