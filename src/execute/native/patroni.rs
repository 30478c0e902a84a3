//! The native creation of a PGSQL cluster under Patroni, with the inventory's etcd as its DCS
//! (the `cluster/<name>/create` action).
//!
//! In: the action and the new inventory. Out: per-member results. `observe` asks every member
//! first ([`patroni_node::observe`]): a member where Patroni answers is adopted as it is; a
//! PostgreSQL not under a Patroni pgitops configured (data or a postmaster in `pg_data`) is
//! reported and left alone, and then nothing of the cluster is created. Otherwise, on each
//! member still to do: node facts, Pigsty's layout and Patroni configuration, the `patroni`
//! service under the node's supervisor (installed down); then the declared primary is started
//! first and awaited as leader with PostgreSQL serving, its `pg_hba.conf` is written through the
//! HBA component (replicas clone it), then the replicas are started and awaited until each
//! streams (`pg_stat_replication` on the leader) and Patroni's `/cluster` shows every member.
//! A second run finds Patroni everywhere and writes, starts and restarts nothing.
//!
//! The DCS: Patroni's `etcd3` section follows how the inventory's etcd runs. pgitops-native etcd
//! (its `etcd.conf` written by pgitops: plain http, no auth) gives [`Dcs::PlainHttp`]; an etcd
//! pgitops did not build (Pigsty's: https, certificates and an etcd user per cluster, none of
//! which pgitops provisions) refuses the creation, to be done by Pigsty.

use std::collections::BTreeMap;

use super::patroni_node::{self as node, Now};
use super::root_sh::sh;
use super::supervise::Supervisor;
use super::{hba, on_host, Component, Ctx, Outcome};
use crate::execute::{ExecError, HostResult};
use crate::inventory::model::PgCluster;
use crate::plan::Action;
use crate::render::patroni::{placement, Dcs};

/// The message of a cluster whose members all run under Patroni already (status `adopted`).
pub const ADOPTED: &str = "Patroni already runs every member; adopted (nothing written)";
/// The message of an added member where Patroni answers already (status `adopted`).
pub const ADOPTED_MEMBER: &str = "Patroni already runs this member; adopted (nothing written)";

const ETCD_KIND: &str = r#"if head -n 1 /etc/etcd/etcd.conf 2>/dev/null | grep -q '^# written by pgitops'; then echo native; else echo other; fi"#;

pub(crate) struct PatroniCluster;

pub(crate) struct Observed {
    members: Vec<(String, Now)>,
}

impl Component for PatroniCluster {
    type Step = String;
    type Observed = Observed;

    async fn observe(ctx: &Ctx<'_>, a: &Action, _: &String) -> Result<Observed, ExecError> {
        let members = node::observe_all(ctx, ctx.cluster(a)?).await?;
        Ok(Observed { members })
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, _: &String, now: Observed) -> Outcome {
        let c = ctx.cluster(a)?;
        if now.members.iter().any(|(_, n)| *n == Now::Plain) {
            return left_alone(ctx, now).await;
        }
        if now
            .members
            .iter()
            .all(|(_, n)| matches!(n, Now::Patroni { .. }))
        {
            let hosts = now.members.iter().map(|(h, n)| {
                let role = match n {
                    Now::Patroni { leader: true } => "leader",
                    _ => "replica",
                };
                host_result(h, Ok(format!("Patroni answers ({role})")), 0)
            });
            return Ok((ADOPTED.into(), hosts.collect()));
        }
        create(ctx, c, now).await
    }
}

pub(super) fn host_result(host: &str, r: Result<String, ExecError>, ms: u64) -> HostResult {
    let (ok, detail) = match r {
        Ok(d) => (true, d),
        Err(e) => (false, e.to_string()),
    };
    HostResult {
        host: host.into(),
        ok,
        detail,
        ms,
    }
}

/// Some member runs PostgreSQL outside Patroni: nothing is created; running members are checked.
async fn left_alone(ctx: &Ctx<'_>, now: Observed) -> Outcome {
    let checks = now.members.iter().map(|(h, n)| async move {
        let r = match n {
            Now::Plain => super::pg::psql(ctx, h, "postgres", "SELECT 1;")
                .await
                .map(|_| "PostgreSQL not under Patroni: left alone".to_string()),
            Now::Patroni { .. } => Ok("Patroni answers".into()),
            Now::Ours | Now::Empty => Err(ExecError::Refused(format!(
                "{h}: not created: other members of this cluster run PostgreSQL outside Patroni"
            ))),
        };
        host_result(h, r, 0)
    });
    let hosts = futures::future::join_all(checks).await;
    let msg = "PostgreSQL runs here outside Patroni: reported and left alone (not bootstrapped natively); its objects are converged by the actions that follow";
    Ok((msg.into(), hosts))
}

/// The DCS of the inventory's etcd, observed on its first member.
pub(super) async fn dcs(ctx: &Ctx<'_>) -> Result<Dcs, ExecError> {
    let mut hosts = crate::render::group_hosts(ctx.new, "etcd");
    hosts.sort();
    dcs_of(
        ctx,
        hosts.first().map(String::as_str),
        "create this cluster",
    )
    .await
}

/// The DCS of the etcd on `first`; refused, saying to `doing` with Pigsty, unless pgitops built
/// that etcd.
pub(super) async fn dcs_of(
    ctx: &Ctx<'_>,
    first: Option<&str>,
    doing: &str,
) -> Result<Dcs, ExecError> {
    let Some(first) = first else {
        return Err(ExecError::Refused(
            "there is no `etcd` group: Patroni needs an etcd DCS".into(),
        ));
    };
    let what = "reading /etc/etcd/etcd.conf";
    match sh(ctx, &ctx.target(first), what, ETCD_KIND, &[], None).await?.as_str() {
        "native" => Ok(Dcs::PlainHttp),
        _ => Err(ExecError::Refused(format!(
            "the etcd on {first} was not built by pgitops (Pigsty's etcd speaks https with certificates and per-cluster users that pgitops does not provision): {doing} with Pigsty (executor `pigsty` or `auto`)"
        ))),
    }
}

/// Patroni's member name of `host` (`<pg_cluster>-<pg_seq>`).
pub(super) fn instance(ctx: &Ctx<'_>, host: &str) -> Result<String, ExecError> {
    let p = placement(ctx.new, host).map_err(|e| ExecError::Refused(e.to_string()))?;
    let file = p.path.rsplit('/').next().unwrap_or_default();
    Ok(file.trim_end_matches(".yml").to_string())
}

async fn create(ctx: &Ctx<'_>, c: &PgCluster, now: Observed) -> Outcome {
    let dcs = dcs(ctx).await?;
    let mut results: BTreeMap<String, HostResult> = BTreeMap::new();
    let todo: Vec<&String> = now
        .members
        .iter()
        .filter(|(_, n)| matches!(n, Now::Ours | Now::Empty))
        .map(|(h, _)| h)
        .collect();
    // 1. layout, configuration and service on every member to do (all at once)
    let prepared = futures::future::join_all(todo.iter().map(|h| async move {
        let mut sup = None;
        let r = on_host(ctx, h, || async {
            let (s, detail) = node::prepare(ctx, h, dcs).await?;
            sup = Some(s);
            Ok(detail)
        })
        .await;
        (r, sup)
    }))
    .await;
    let mut sups: BTreeMap<String, Supervisor> = BTreeMap::new();
    for (r, sup) in prepared {
        if let Some(s) = sup {
            sups.insert(r.host.clone(), s);
        }
        results.insert(r.host.clone(), r);
    }
    for (h, n) in &now.members {
        if let Now::Patroni { leader } = n {
            let role = if *leader { "leader" } else { "replica" };
            results.insert(
                h.clone(),
                host_result(h, Ok(format!("Patroni answers ({role}): adopted")), 0),
            );
        }
    }
    let done = |results: BTreeMap<String, HostResult>, msg: String| -> Outcome {
        Ok((msg, results.into_values().collect()))
    };
    if results.values().any(|r| !r.ok) {
        return done(
            results,
            "not started: a member could not be prepared".into(),
        );
    }
    // 2. the leader: a member that leads already, else the declared primary, started first
    let leading = now
        .members
        .iter()
        .find(|(_, n)| *n == Now::Patroni { leader: true });
    let leader = match leading {
        Some((h, _)) => h.clone(),
        None => {
            let primary = c
                .members
                .values()
                .find(|m| m.role == "primary")
                .map(|m| m.host.clone())
                .or_else(|| c.primary.clone())
                .ok_or_else(|| {
                    ExecError::Refused(format!(
                        "cluster {}: no member is declared `pg_role: primary`",
                        c.name
                    ))
                })?;
            let sup = sups.get(&primary).cloned();
            let r = on_host(ctx, &primary, || async {
                if let Some(sup) = &sup {
                    node::start(ctx, &primary, sup).await?;
                }
                node::wait_leader(ctx, &primary).await?;
                hba::one(ctx, c, &primary, false).await?;
                Ok("started; leader with PostgreSQL serving; pg_hba.conf written".to_string())
            })
            .await;
            let failed = !r.ok;
            merge(&mut results, r);
            if failed {
                return done(results, "the primary did not become the leader".into());
            }
            primary
        }
    };
    // 3. the replicas, cloned by Patroni from the leader
    let replicas: Vec<&String> = todo.iter().copied().filter(|h| **h != leader).collect();
    let started = futures::future::join_all(replicas.iter().map(|h| {
        let sup = sups.get(*h).cloned();
        on_host(ctx, h, move || async move {
            if let Some(sup) = &sup {
                node::start(ctx, h, sup).await?;
            }
            Ok("started".to_string())
        })
    }))
    .await;
    for r in started {
        merge(&mut results, r);
    }
    if results.values().any(|r| !r.ok) {
        return done(results, "a replica could not be started".into());
    }
    let names: Vec<String> = c
        .members
        .keys()
        .filter(|h| **h != leader)
        .map(|h| instance(ctx, h))
        .collect::<Result<_, _>>()?;
    let t = std::time::Instant::now();
    if let Err(e) = node::wait_streaming(ctx, &leader, &names).await {
        for h in &replicas {
            let r = host_result(h, Err(ExecError::Refused(e.to_string())), 0);
            merge(&mut results, r);
        }
        return done(results, "the replicas did not all stream".into());
    }
    for h in &replicas {
        let ms = t.elapsed().as_millis() as u64;
        merge(&mut results, host_result(h, Ok("streaming".into()), ms));
    }
    let view = node::cluster_view(ctx, &leader).await?;
    let mut seen: Vec<String> = view
        .members
        .iter()
        .map(|m| format!("{} {} {}", m.name, m.role, m.state))
        .collect();
    seen.sort();
    let msg = format!(
        "leader {} and {} streaming replica(s); Patroni: {}",
        instance(ctx, &leader)?,
        names.len(),
        seen.join(", ")
    );
    done(results, msg)
}

/// Adds a later phase's outcome to a member's result.
fn merge(results: &mut BTreeMap<String, HostResult>, r: HostResult) {
    match results.get_mut(&r.host) {
        Some(prev) => {
            prev.ok &= r.ok;
            prev.detail = format!("{}; {}", prev.detail, r.detail);
            prev.ms += r.ms;
        }
        None => {
            results.insert(r.host.clone(), r);
        }
    }
}
