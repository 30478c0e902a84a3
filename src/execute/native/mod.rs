//! The native executor: pgitops reaches the nodes itself and runs idempotent steps.
//!
//! In: one plan action and both inventories. Out: its [`ActionResult`]. Each component
//! implements [`Component`]: `observe` what the nodes have now, then `execute` the action's step
//! from there; `apply` dispatches on the typed step. SQL goes to the **live** primary (every
//! member is asked `pg_is_in_recovery()`; none or several primaries is refused) on psql's stdin;
//! per-instance steps (HBA, parameters, pgbouncer's files) run on each target host; ETCD
//! membership ([`etcd`]) and PGSQL clusters and members under Patroni ([`patroni`],
//! [`patroni_add`], [`patroni_remove`], and a whole cluster's removal, which reads the old
//! revision only: [`patroni_rm_cluster`]) run under the node's supervisor ([`supervise`]); a
//! running cluster's members are restarted for parameters ([`patroni_restart`]) and their
//! Patroni configuration refreshed after etcd membership changes ([`patroni_refresh`]) through
//! Patroni's REST API ([`patroni_api`]); HAProxy services ([`haproxy`]); the service's leader
//! watch reads who leads ([`patroni_leader`]); the drift check reads, read-only, what the
//! nodes have now ([`drift`]). Steps delegated to Pigsty (node, removing an etcd
//! cluster, redis, ...) are reported as not native.

pub mod drift;
mod etcd;
mod etcd_ctl;
mod etcd_remove;
pub mod haproxy;
pub mod haproxy_runtime;
mod hba;
mod objects;
mod packages;
mod params;
mod patroni;
mod patroni_add;
mod patroni_api;
pub mod patroni_leader;
mod patroni_node;
mod patroni_refresh;
mod patroni_remove;
mod patroni_restart;
mod patroni_rm_cluster;
mod patroni_switchover;
pub(crate) mod pg;
mod pgbouncer;
mod pgbouncer_life;
mod root_sh;
pub mod supervise;
mod template;

use std::time::Instant;

use super::settings::PgSettings;
use super::Target;
use super::{result, ActionResult, ExecConfig, ExecError, HostLocks, HostResult, Runner, Status};
use crate::inventory::model::{port_var, str_var, PgCluster};
use crate::inventory::module::Module;
use crate::inventory::Inventory;
use crate::plan::etcd::EtcdStep;
use crate::plan::{Action, Approval, Class, Delegated, PgbOp, Step};

pub struct Ctx<'a> {
    pub old: &'a Inventory,
    pub new: &'a Inventory,
    pub runner: &'a Runner,
    pub cfg: &'a ExecConfig,
    pub locks: &'a HostLocks,
}

impl<'a> Ctx<'a> {
    /// A context that reads one inventory (the leader watch, the drift check): old and new are
    /// the same revision.
    pub fn reading(
        inv: &'a Inventory,
        runner: &'a Runner,
        cfg: &'a ExecConfig,
        locks: &'a HostLocks,
    ) -> Ctx<'a> {
        Ctx {
            old: inv,
            new: inv,
            runner,
            cfg,
            locks,
        }
    }

    /// The connection target of an inventory host (`ansible_host`, `ansible_port`, `ansible_user`).
    pub fn target(&self, host: &str) -> Target {
        let vars = self
            .new
            .tree
            .hosts
            .get(host)
            .or_else(|| self.old.tree.hosts.get(host))
            .map(|h| &h.vars);
        let get = |k: &str| vars.and_then(|v| str_var(v, k)).map(str::to_string);
        // Validation refuses a port that does not read as one.
        let port = vars.and_then(|v| port_var(v, "ansible_port").ok().flatten());
        Target {
            host: host.to_string(),
            address: get("ansible_host").unwrap_or_else(|| host.to_string()),
            port,
            user: get("ansible_user"),
        }
    }

    pub fn cluster(&self, a: &Action) -> Result<&PgCluster, ExecError> {
        self.new.model.pgsql.get(&a.cluster).ok_or_else(|| {
            ExecError::Refused(format!("cluster {} is not in the inventory", a.cluster))
        })
    }

    /// Where PostgreSQL lives on `host`: its variables in the new revision (the old one for a
    /// host that left), with the configured overrides.
    pub fn pg(&self, host: &str) -> PgSettings {
        let inv = match self.new.tree.hosts.contains_key(host) {
            true => self.new,
            false => self.old,
        };
        PgSettings::of(inv, host, &self.cfg.pg)
    }
}

/// Outcome of an action's steps: a message and per-host results.
pub(crate) type Outcome = Result<(String, Vec<HostResult>), ExecError>;

/// The IO side of a component; its pure side is the planner in `plan/` that emits its steps.
/// `observe` reads what the nodes have now (the live primary, live roles); `execute` carries out
/// one step from there, idempotently (or journaled where it cannot be).
pub(crate) trait Component {
    type Step;
    type Observed;
    async fn observe(
        ctx: &Ctx<'_>,
        a: &Action,
        step: &Self::Step,
    ) -> Result<Self::Observed, ExecError>;
    async fn execute(ctx: &Ctx<'_>, a: &Action, step: &Self::Step, now: Self::Observed) -> Outcome;
}

async fn run<C: Component>(ctx: &Ctx<'_>, a: &Action, step: &C::Step) -> Outcome {
    let now = C::observe(ctx, a, step).await?;
    C::execute(ctx, a, step, now).await
}

pub async fn apply(ctx: &Ctx<'_>, a: &Action) -> ActionResult {
    if let Some(r) = held(a) {
        return r;
    }
    let outcome = match &a.step {
        Step::Object(s) => run::<objects::Objects>(ctx, a, s).await,
        Step::Hba(s) => run::<hba::Hba>(ctx, a, s).await,
        Step::Parameters(s) => run::<params::Params>(ctx, a, s).await,
        Step::Pgbouncer(s) => run::<pgbouncer::Pgbouncer>(ctx, a, s).await,
        Step::PgbService(op) => {
            let r = finish(a, run::<pgbouncer_life::PgbLife>(ctx, a, op).await);
            return pgbouncer_life::status(a, *op, r);
        }
        Step::Services(s) => {
            let r = finish(a, run::<haproxy::Services>(ctx, a, s).await);
            return match r.status == Status::Applied && r.message == haproxy::ADOPTED {
                true => ActionResult { status: Status::Adopted, ..r },
                false => r,
            };
        }
        Step::PatroniRefresh { etcd } => {
            run::<patroni_refresh::PatroniRefresh>(ctx, a, etcd).await
        }
        Step::ClusterRunning { name } => {
            let r = finish(a, run::<patroni::PatroniCluster>(ctx, a, name).await);
            return match r.status == Status::Applied && r.message == patroni::ADOPTED {
                true => ActionResult { status: Status::Adopted, ..r },
                false => r,
            };
        }
        Step::Switchover { to, .. } => run::<patroni_switchover::Switchover>(ctx, a, to).await,
        Step::Delegated(_) if EtcdStep::of(a).is_some() => {
            let step = EtcdStep::of(a).expect("an etcd step");
            let r = finish(a, run::<etcd::Etcd>(ctx, a, &step).await);
            return match r.status == Status::Applied && r.message == etcd::ADOPTED {
                true => ActionResult { status: Status::Adopted, ..r },
                false => r,
            };
        }
        Step::Delegated(Delegated::MemberAdd { ip }) if a.module == Module::Pgsql => {
            let r = finish(a, run::<patroni_add::PatroniMember>(ctx, a, ip).await);
            return match r.status == Status::Applied && r.message == patroni::ADOPTED_MEMBER {
                true => ActionResult { status: Status::Adopted, ..r },
                false => r,
            };
        }
        Step::Delegated(Delegated::MemberRemove { ip }) if a.module == Module::Pgsql => {
            run::<patroni_remove::PatroniRemove>(ctx, a, ip).await
        }
        Step::Delegated(Delegated::ClusterRemove { name }) if a.module == Module::Pgsql => {
            // A removal reads the old revision only: its cluster, hosts and etcd.
            let old = Ctx { new: ctx.old, ..*ctx };
            run::<patroni_rm_cluster::PatroniRmCluster>(&old, a, name).await
        }
        Step::Delegated(Delegated::ConfigApply { tag, .. }) if tag == "pg_vip" => return result(a, Status::NotNative, "not performed by the native executor: an L2 VIP (vip-manager binding `pg_vip_address` on `pg_vip_interface` to the leader) is not built natively; run the Pigsty command shown in the plan, or use executor = \"pigsty\" or \"auto\"", vec![]),
        Step::Delegated(_) => return result(a, Status::NotNative, "not performed by the native executor; run the Pigsty command shown in the plan, or use executor = \"pigsty\" or \"auto\"", vec![]),
        Step::Manual(_) => return result(a, Status::Manual, a.reason.clone().unwrap_or_default(), vec![]),
    };
    let mut r = finish(a, outcome);
    r.created = r.status == Status::Applied && r.message == objects::CREATED;
    r
}

/// Whether the native executor carries out `step` itself (for `executor.kind = "auto"`). Not a
/// cluster's creation nor a member's addition: natively they run under Patroni with
/// pgitops-native etcd (plain http) only, while Pigsty's leg adopts a running cluster or
/// bootstraps a new one with its own etcd (TLS). Not ETCD either: pgitops' etcd speaks plain http,
/// and a Pigsty-built cluster (TLS) stays with Pigsty's playbooks in `auto`. pgbouncer: its
/// configuration changes (re-rendered, reloaded) and the launch that comes with a cluster or a
/// member (natively only where pgitops bootstrapped the cluster; Pigsty's pgsql.yml launched it
/// elsewhere, and the launch is adopted); a restart, enabling or disabling it goes to Pigsty's
/// command in `auto` (natively they act only on clusters pgitops bootstrapped). Not HAProxy
/// services either: on Pigsty's nodes HAProxy runs under Pigsty's unit with Pigsty's
/// `haproxy.cfg` (its admin socket elsewhere), so `auto` keeps `pgsql.yml -t pg_service`.
pub fn handles(step: &Step) -> bool {
    matches!(
        step,
        Step::Object(_)
            | Step::Hba(_)
            | Step::Parameters(_)
            | Step::Pgbouncer(_)
            | Step::Switchover { .. }
            | Step::PgbService(PgbOp::Config | PgbOp::Launch { first: true })
    )
}

/// Manual actions and destructive ones without approval do not run, whatever the executor.
pub fn held(a: &Action) -> Option<ActionResult> {
    if a.class == Class::Manual {
        return Some(result(
            a,
            Status::Manual,
            a.reason.clone().unwrap_or_default(),
            vec![],
        ));
    }
    (a.approval == Approval::Required).then(|| {
        let why = format!(
            "held until approved: add `Pgitops-Approve: {id}` to a commit of the range, or run `pgitops approve {id}`",
            id = a.id
        );
        result(a, Status::AwaitingApproval, why, vec![])
    })
}

/// Outcome of an action's steps: a message and per-host results.
pub(crate) fn finish(a: &Action, outcome: Outcome) -> ActionResult {
    match outcome {
        Ok((message, hosts)) => {
            let status = if hosts.iter().all(|h| h.ok) {
                Status::Applied
            } else {
                Status::Failed
            };
            result(a, status, message, hosts)
        }
        Err(e) => result(a, Status::Failed, e.to_string(), vec![]),
    }
}

/// Runs `step` on `host` under the host's lock, timing it.
pub async fn on_host<F, Fut>(ctx: &Ctx<'_>, host: &str, step: F) -> HostResult
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<String, ExecError>>,
{
    let lock = ctx.locks.get(host);
    let _guard = lock.lock().await;
    let started = Instant::now();
    let (ok, detail) = match step().await {
        Ok(d) => (true, d),
        Err(e) => (false, e.to_string()),
    };
    HostResult {
        host: host.to_string(),
        ok,
        detail,
        ms: started.elapsed().as_millis() as u64,
    }
}
