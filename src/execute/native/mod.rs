//! The native executor: pgitops reaches the nodes itself and runs idempotent steps.
//!
//! In: one plan action and both inventories. Out: its [`ActionResult`]. SQL goes to the **live**
//! primary (every member is asked `pg_is_in_recovery()`; none or several primaries is refused)
//! on psql's stdin; per-instance steps (HBA, parameters) run on each target host. Actions that
//! are not PostgreSQL objects (bootstrap, node, etcd, redis, ...) are reported as not native.

mod hba;
mod objects;
mod params;
pub(crate) mod pg;

use std::time::Instant;

use super::{result, ActionResult, ExecConfig, HostLocks, HostResult, Runner, Status, Target};
use crate::inventory::model::{str_var, PgCluster};
use crate::inventory::Inventory;
use crate::plan::{Action, Approval, Class};

pub struct Ctx<'a> {
    pub old: &'a Inventory,
    pub new: &'a Inventory,
    pub runner: &'a Runner,
    pub cfg: &'a ExecConfig,
    pub locks: &'a HostLocks,
}

impl Ctx<'_> {
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
        let port = vars
            .and_then(|v| v.get("ansible_port"))
            .and_then(|v| v.value.as_u64())
            .and_then(|p| u16::try_from(p).ok());
        Target {
            host: host.to_string(),
            address: get("ansible_host").unwrap_or_else(|| host.to_string()),
            port,
            user: get("ansible_user"),
        }
    }

    pub fn cluster(&self, a: &Action) -> Option<&PgCluster> {
        self.new.model.pgsql.get(&a.cluster)
    }
}

/// `<cluster>/<entity>/<name>/<verb>` → `name` (names may contain `/`).
pub fn object_name(a: &Action) -> &str {
    let rest = &a.id[a.cluster.len() + 1..];
    let rest = rest.split_once('/').map(|(_, r)| r).unwrap_or(rest);
    rest.rsplit_once('/').map(|(n, _)| n).unwrap_or(rest)
}

pub async fn apply(ctx: &Ctx<'_>, a: &Action) -> ActionResult {
    if let Some(r) = held(a) {
        return r;
    }
    let outcome = match a.kind.as_str() {
        "user-create" | "user-update" => objects::user_upsert(ctx, a).await,
        "user-drop" => objects::user_drop(ctx, a).await,
        "database-create" | "database-update" => objects::database_upsert(ctx, a).await,
        "database-drop" => objects::database_drop(ctx, a, false).await,
        "database-recreate" => objects::database_drop(ctx, a, true).await,
        "hba-reload" => hba::apply(ctx, a).await,
        "parameters-apply" => params::apply(ctx, a).await,
        "cluster-create" if a.module == crate::inventory::module::Module::Pgsql => pg::cluster_running(ctx, a).await,
        _ => return result(a, Status::NotNative, "not performed by the native executor; run the Pigsty command shown in the plan, or use executor = \"pigsty\"", vec![]),
    };
    finish(a, outcome)
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
            "held until approved: add `Pgitops-Approve: {}` to a commit of the range",
            a.id
        );
        result(a, Status::AwaitingApproval, why, vec![])
    })
}

/// Outcome of an action's steps: a message and per-host results.
pub(crate) fn finish(
    a: &Action,
    outcome: Result<(String, Vec<HostResult>), super::ExecError>,
) -> ActionResult {
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
    Fut: std::future::Future<Output = Result<String, super::ExecError>>,
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
