//! A switchover of a PGSQL cluster under Patroni, when a commit moves `pg_role: primary` from
//! one member to another (`<cluster>/primary/<ip>/switchover`, class `restart`).
//!
//! In: the action's step (the declared primary before and after) and the new revision (member
//! names `<pg_cluster>-<pg_seq>`, Patroni's REST credentials). Out: one result per member
//! involved. Observed first, through Patroni's `/cluster` on any member that answers: who leads
//! now and whether the candidate runs as a replica. When the candidate already leads (a failover
//! went its way, or a rerun), nothing is done. Otherwise `POST /switchover` to the leader's REST
//! API with `{"leader", "candidate"}` (credentials and body on curl's stdin); Patroni answers
//! once the candidate holds the leader lock. Then: the candidate awaited leading with PostgreSQL
//! serving; where pgitops runs HAProxy for the cluster, the new leader marked UP and the old one
//! DOWN at once in the services checked on `/primary` (each HAProxy host watches the candidate's `/primary` beside the request and tells its HAProxy within 50 ms of the promotion: [`super::haproxy_runtime::set_servers_health_when_leading`]) rather than
//! after `rise` checks; and the old leader awaited streaming from the new one. A failover that
//! happened by itself is never reverted here: only a commit moving `pg_role` plans this step.

use std::time::Instant;

use super::haproxy_runtime::set_servers_health_when_leading;
use super::patroni_api as api;
use super::patroni_node::{self as node, cluster_view, ClusterView};
use super::{Component, Ctx, Outcome};
use crate::execute::{ExecError, HostResult};
use crate::inventory::model::PgCluster;
use crate::plan::services::service_hosts;
use crate::plan::Action;
use crate::render::haproxy::{enabled as haproxy_enabled, leader_backends};

/// Patroni waits for the candidate up to its own timeouts; curl waits this long.
const SWITCHOVER_SECS: u64 = 90;

pub(crate) struct Switchover;

/// Who leads now (its host and Patroni name) and the candidate's Patroni name.
pub(crate) struct Observed {
    leader: Option<(String, String)>,
    candidate: String,
    /// The candidate's role and state in Patroni's `/cluster` (empty when not listed).
    candidate_state: (String, String),
}

/// Patroni's member name of each host of `c`, by host.
fn name_of(c: &PgCluster, host: &str) -> Result<String, ExecError> {
    c.members
        .get(host)
        .map(|m| m.instance(&c.name))
        .ok_or_else(|| ExecError::Refused(format!("{host} is not a member of {}", c.name)))
}

fn host_of(c: &PgCluster, name: &str) -> Option<String> {
    c.members
        .iter()
        .find(|(_, m)| m.instance(&c.name) == name)
        .map(|(h, _)| h.clone())
}

/// Patroni's `/cluster` from the first member that answers, the candidate first.
async fn view(ctx: &Ctx<'_>, c: &PgCluster, first: &str) -> Result<ClusterView, ExecError> {
    let mut last = None;
    let hosts = std::iter::once(first).chain(c.members.keys().map(String::as_str));
    for h in hosts {
        match cluster_view(ctx, h).await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ExecError::Refused(format!("{} has no members", c.name))))
}

impl Component for Switchover {
    /// The new declared primary (the candidate).
    type Step = String;
    type Observed = Observed;

    async fn observe(ctx: &Ctx<'_>, a: &Action, to: &String) -> Result<Observed, ExecError> {
        let c = ctx.cluster(a)?;
        let candidate = name_of(c, to)?;
        let v = view(ctx, c, to).await?;
        let leader = v
            .members
            .iter()
            .find(|m| m.role == "leader" || m.role == "standby_leader")
            .map(|m| {
                host_of(c, &m.name)
                    .map(|h| (h, m.name.clone()))
                    .ok_or_else(|| {
                        ExecError::Refused(format!(
                            "Patroni's leader {} is not a member of {} in the inventory",
                            m.name, c.name
                        ))
                    })
            })
            .transpose()?;
        let candidate_state = v
            .members
            .iter()
            .find(|m| m.name == candidate)
            .map(|m| (m.role.clone(), m.state.clone()))
            .unwrap_or_default();
        Ok(Observed {
            leader,
            candidate,
            candidate_state,
        })
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, to: &String, now: Observed) -> Outcome {
        let started = Instant::now();
        let to = to.as_str();
        let Some((leader_host, leader)) = now.leader else {
            return Err(ExecError::Refused(format!(
                "{} has no leader in Patroni's view: nothing to switch over from (Patroni elects one by itself)",
                a.cluster
            )));
        };
        if leader == now.candidate {
            let detail = format!("{} already leads: nothing to do", now.candidate);
            let r = HostResult {
                host: to.to_string(),
                ok: true,
                detail,
                ms: 0,
            };
            return Ok((format!("{to} already leads {}", a.cluster), vec![r]));
        }
        let (role, state) = &now.candidate_state;
        if !matches!(role.as_str(), "replica" | "sync_standby")
            || !matches!(state.as_str(), "running" | "streaming")
        {
            return Err(ExecError::Refused(format!(
                "{} ({to}) is not a running replica in Patroni's view (role {role:?}, state {state:?}): not switched over",
                now.candidate
            )));
        }
        let body = serde_json::json!({ "leader": leader, "candidate": now.candidate }).to_string();
        let c = ctx.cluster(a)?;
        let rest = node::rest(ctx, to);
        // The HAProxy watchers start beside the request: each tells its HAProxy the moment the
        // candidate leads. A request that fails drops them (their SSH commands are killed).
        let post = api::request(
            ctx,
            &leader_host,
            "POST",
            "/switchover",
            Some(&body),
            SWITCHOVER_SECS,
        );
        let tell = route(ctx, c, &rest, &now.candidate, &leader);
        tokio::pin!(post, tell);
        let mut routed = None;
        let posted = loop {
            tokio::select! {
                r = &mut post => break r,
                t = &mut tell, if routed.is_none() => routed = Some(t),
            }
        };
        let (code, answer) = posted?;
        if code != 200 {
            return Err(ExecError::Failed {
                host: leader_host.clone(),
                what: "POST /switchover on Patroni's REST API".into(),
                stderr: format!(
                    "HTTP {code}: {}",
                    answer.chars().take(200).collect::<String>()
                ),
            });
        }
        node::wait_leader(ctx, to).await?;
        let switched = started.elapsed().as_millis() as u64;
        let routed = match routed {
            Some(r) => r,
            None => tell.await,
        };
        node::wait_streaming(ctx, to, std::slice::from_ref(&leader)).await?;
        let hosts = vec![
            HostResult {
                host: to.to_string(),
                ok: true,
                detail: format!(
                    "{} leads, PostgreSQL serving, {switched} ms after the request; {routed}",
                    now.candidate
                ),
                ms: switched,
            },
            HostResult {
                host: leader_host.clone(),
                ok: true,
                detail: format!("{leader} streams from {} again", now.candidate),
                ms: started.elapsed().as_millis() as u64,
            },
        ];
        let message = format!("switched over {}: {leader} → {}", a.cluster, now.candidate);
        Ok((message, hosts))
    }
}

/// Tells each HAProxy serving `c` (where `haproxy_enabled`) that `new` leads as soon as it does
/// (its REST API at `rest` answers `/primary`): in every backend checked on the leader, `new`
/// forced UP and `old` DOWN through the runtime API, each host watching by itself, side by
/// side. HAProxy's own checks still run afterwards. Never fails the switchover: a HAProxy that
/// cannot be told (not pgitops', not running) finds the leader by its checks; the text says so.
async fn route(ctx: &Ctx<'_>, c: &PgCluster, rest: &str, new: &str, old: &str) -> String {
    let definer = c.primary.as_deref().unwrap_or_default();
    let backends = match leader_backends(ctx.new, c, definer) {
        Ok(b) if !b.is_empty() => b,
        Ok(_) => return "no service checked on the leader".into(),
        Err(e) => return format!("HAProxy not told: {e}"),
    };
    let hosts: Vec<String> = service_hosts(ctx.new, c)
        .into_iter()
        .filter(|h| haproxy_enabled(ctx.new, h))
        .collect();
    if hosts.is_empty() {
        return "no HAProxy serves the cluster".into();
    }
    let tell = hosts.iter().map(|h| {
        let backends = &backends;
        async move {
            let mut servers: Vec<(&str, &str, bool)> = vec![];
            for b in backends {
                servers.extend([(b.as_str(), new, true), (b.as_str(), old, false)]);
            }
            set_servers_health_when_leading(ctx, h, rest, SWITCHOVER_SECS, &servers).await
        }
    });
    let results = futures::future::join_all(tell).await;
    let failed: Vec<String> = hosts
        .iter()
        .zip(results)
        .filter_map(|(h, r)| match r {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "{h}: {new} did not lead within {SWITCHOVER_SECS} s"
            )),
            Err(e) => Some(format!("{h}: {e}")),
        })
        .collect();
    let told = hosts.len() - failed.len();
    let mut text = format!(
        "HAProxy on {told} of {} hosts told as {new} began to lead ({}: {new} UP, {old} DOWN)",
        hosts.len(),
        backends.join(", ")
    );
    if !failed.is_empty() {
        text += &format!(
            "; not told, their checks find the leader: {}",
            failed.join("; ")
        );
    }
    text
}
