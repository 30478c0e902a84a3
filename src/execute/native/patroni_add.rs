//! A member added to a PGSQL cluster under Patroni (the `member/<ip>/add` action of a host
//! added under the cluster's `hosts`): Patroni clones it from the running cluster.
//!
//! In: the action (its one host) and the new inventory. Out: the host's result. `observe` asks
//! the new host and the cluster's other members ([`patroni_node::observe`]): a new host where
//! Patroni answers is adopted; one with PostgreSQL outside Patroni is reported and left alone;
//! a cluster with no Patroni leader among its other members is refused (not created natively:
//! Pigsty's playbook adds members there). Otherwise: facts, Pigsty's layout and Patroni
//! configuration, the `patroni` service started, then awaited until it streams from the leader
//! (`pg_stat_replication`) and Patroni's `/cluster` lists it.

use super::patroni_node::{self as node, Now};
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::ExecError;
use crate::plan::Action;

pub(crate) struct PatroniMember;

impl Component for PatroniMember {
    /// The new member's host.
    type Step = String;
    type Observed = node::Member;

    async fn observe(ctx: &Ctx<'_>, a: &Action, ip: &String) -> Result<node::Member, ExecError> {
        node::observe_member(ctx, ctx.cluster(a)?, ip).await
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, ip: &String, now: node::Member) -> Outcome {
        let one = |r: Result<String, ExecError>| super::patroni::host_result(ip, r, 0);
        match now.now {
            Now::Patroni { .. } => {
                let msg = super::patroni::ADOPTED_MEMBER;
                return Ok((msg.into(), vec![one(Ok("Patroni answers: adopted".into()))]));
            }
            Now::Plain => {
                let msg = "PostgreSQL runs here outside Patroni: reported and left alone";
                return Ok((msg.into(), vec![one(Ok("left alone".into()))]));
            }
            Now::Ours | Now::Empty => {}
        }
        let Some(leader) = now.leader else {
            return Err(ExecError::Refused(format!(
                "cluster {}: no other member runs under Patroni as leader; this member is not added natively (use Pigsty's pgsql.yml)",
                a.cluster
            )));
        };
        let dcs = super::patroni::dcs(ctx).await?;
        let name = super::patroni::instance(ctx, ip)?;
        let r = on_host(ctx, ip, || async {
            let (sup, detail) = node::prepare(ctx, ip, dcs).await?;
            node::start(ctx, ip, &sup).await?;
            Ok(detail)
        })
        .await;
        if !r.ok {
            return Ok(("not started".into(), vec![r]));
        }
        let t = std::time::Instant::now();
        let streaming = node::wait_streaming(ctx, &leader, std::slice::from_ref(&name)).await;
        let ms = t.elapsed().as_millis() as u64;
        let mut r = r;
        r.ms += ms;
        match streaming {
            Ok(()) => r.detail += &format!("; started; streaming from {leader} after {ms} ms"),
            Err(e) => {
                r.ok = false;
                r.detail += &format!("; {e}");
                return Ok(("the new member did not stream".into(), vec![r]));
            }
        }
        let view = node::cluster_view(ctx, &leader).await?;
        let seen = view.members.iter().find(|m| m.name == name);
        let msg = match seen {
            Some(m) => format!("{name} added: {} {} (Patroni)", m.role, m.state),
            None => {
                r.ok = false;
                format!("{name} streams but Patroni's /cluster does not list it")
            }
        };
        Ok((msg, vec![r]))
    }
}
