//! `pg_parameters` on each target instance with `ALTER SYSTEM` (set what the inventory says,
//! reset what it no longer says; Pigsty's `pg_param` writes `postgresql.auto.conf` the same way),
//! a reload, then what waits for a restart (`pg_settings.pending_restart` of those names).
//!
//! In: the action (its hosts) and both inventories. Out: per host what was set, what waits, and
//! what was restarted in how long. Members under Patroni (its REST API answers) with a restart
//! pending are restarted through Patroni by [`super::patroni_restart`]: replicas first, one at a
//! time, the leader last. A PostgreSQL not under Patroni is never restarted: what waits is
//! reported. The action is `restart` class when a name needs a restart, so the daemon holds it
//! outside `windows.restart`. Parameters Patroni pins on the command line are a manual action of
//! their own (see the planner); they never wait for a restart here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use super::patroni::instance;
use super::patroni_node::{self as node, Now};
use super::patroni_restart;
use super::pg::psql;
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::{ExecError, HostResult};
use crate::inventory::Inventory;
use crate::plan::{Action, ParamStep};
use crate::render::sql::{alter_system, pending_restart_query};

fn params(inv: &Inventory, host: &str) -> Mapping {
    inv.tree
        .hosts
        .get(host)
        .and_then(|h| h.vars.get("pg_parameters"))
        .and_then(|v| v.value.as_mapping().cloned())
        .unwrap_or_default()
}

/// `ALTER SYSTEM` is idempotent, so nothing of the settings is observed before it; what is
/// observed is who runs each instance (Patroni, and its live role).
pub(crate) struct Params;

impl Component for Params {
    type Step = ParamStep;
    /// Per target host: what runs it.
    type Observed = BTreeMap<String, Now>;

    async fn observe(
        ctx: &Ctx<'_>,
        a: &Action,
        _: &ParamStep,
    ) -> Result<BTreeMap<String, Now>, ExecError> {
        let asks = a.hosts.iter().map(|h| async move {
            let now = node::observe(ctx, h).await.unwrap_or(Now::Plain);
            (h.clone(), now)
        });
        Ok(futures::future::join_all(asks).await.into_iter().collect())
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, _: &ParamStep, now: Self::Observed) -> Outcome {
        // Instances are independent: all at once (each under its host's lock).
        let set = futures::future::join_all(a.hosts.iter().map(|host| async move {
            let mut pending = vec![];
            let r = on_host(ctx, host, || async {
                let (detail, p) = one(ctx, host).await?;
                pending = p;
                Ok(detail)
            })
            .await;
            (r, pending)
        }))
        .await;
        let mut results: BTreeMap<String, HostResult> = BTreeMap::new();
        let mut roll: Vec<(String, bool)> = vec![];
        for (mut r, pending) in set {
            match now.get(&r.host) {
                _ if pending.is_empty() || !r.ok => {}
                Some(Now::Patroni { leader }) => roll.push((r.host.clone(), *leader)),
                _ => {
                    r.detail += "; not under Patroni: pgitops does not restart it";
                }
            }
            results.insert(r.host.clone(), r);
        }
        if roll.is_empty() {
            return Ok((String::new(), results.into_values().collect()));
        }
        // The replicas that must stream from the leader again after its restart.
        let streams: Vec<String> = now
            .iter()
            .filter(|(_, n)| **n == Now::Patroni { leader: false })
            .map(|(h, _)| instance(ctx, h))
            .collect::<Result<_, _>>()?;
        let mut done = vec![];
        let mut stopped = None;
        for (host, leader) in patroni_restart::order(&roll) {
            let r = match &stopped {
                Some(h) => HostResult {
                    host: host.clone(),
                    ok: false,
                    detail: format!("not restarted: the restart of {h} failed"),
                    ms: 0,
                },
                None => {
                    on_host(ctx, &host, || async {
                        let d = patroni_restart::restart(ctx, &host, leader, &streams).await?;
                        let left = pending(ctx, &host).await?;
                        match left.is_empty() {
                            true => Ok(d),
                            false => Err(ExecError::Refused(format!(
                                "{d}, but still pending restart: {}",
                                left.join(", ")
                            ))),
                        }
                    })
                    .await
                }
            };
            if !r.ok && stopped.is_none() {
                stopped = Some(host.clone());
            }
            if r.ok {
                let role = if leader { "leader" } else { "replica" };
                done.push(format!("{host} ({role}) {} ms", r.ms));
            }
            if let Some(prev) = results.get_mut(&host) {
                prev.ok &= r.ok;
                prev.detail = format!("{}; {}", prev.detail, r.detail);
                prev.ms += r.ms;
            }
        }
        let msg = match done.is_empty() {
            true => "no member restarted".to_string(),
            false => format!("restarted through Patroni: {}", done.join(", then ")),
        };
        Ok((msg, results.into_values().collect()))
    }
}

/// The names this action touches on `host`: those the new revision sets, those it resets.
fn touched(ctx: &Ctx<'_>, host: &str) -> (Mapping, Vec<String>) {
    let (old, new) = (params(ctx.old, host), params(ctx.new, host));
    let reset: Vec<String> = old
        .keys()
        .filter_map(Value::as_str)
        .filter(|k| !new.contains_key(*k))
        .map(str::to_string)
        .collect();
    (new, reset)
}

/// What of the touched names waits for a restart on `host` (`pg_settings.pending_restart`).
async fn pending(ctx: &Ctx<'_>, host: &str) -> Result<Vec<String>, ExecError> {
    let (new, reset) = touched(ctx, host);
    let mut names: Vec<&str> = new.keys().filter_map(Value::as_str).collect();
    names.extend(reset.iter().map(String::as_str));
    let query = pending_restart_query(&names).map_err(|e| ExecError::Refused(e.to_string()))?;
    let out = psql(ctx, host, "postgres", &query).await?;
    Ok(out
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// `ALTER SYSTEM` and a reload on `host`: the detail, and what waits for a restart.
async fn one(ctx: &Ctx<'_>, host: &str) -> Result<(String, Vec<String>), ExecError> {
    let (new, reset) = touched(ctx, host);
    let set: Vec<(&str, &Value)> = new
        .iter()
        .filter_map(|(k, v)| k.as_str().map(|k| (k, v)))
        .collect();
    let resets: Vec<&str> = reset.iter().map(String::as_str).collect();
    let script = alter_system(&set, &resets).map_err(|e| ExecError::Refused(e.to_string()))?;
    psql(ctx, host, "postgres", &script.to_psql_input()).await?;
    // The postmaster applies the reload asynchronously; give it a moment before asking.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pending = pending(ctx, host).await?;
    let detail = match pending.is_empty() {
        true => format!("{} set, {} reset, reloaded", set.len(), reset.len()),
        false => format!(
            "{} set, {} reset, reloaded; pending restart: {}",
            set.len(),
            reset.len(),
            pending.join(", ")
        ),
    };
    Ok((detail, pending))
}
