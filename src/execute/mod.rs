//! Execute: carry out a plan's actions on the nodes.
//!
//! In: a [`Plan`], the old and new inventories, and an [`ExecConfig`]. Out: one [`ActionResult`]
//! per action with per-host results and durations. Clusters run in parallel up to a limit,
//! actions within a cluster in plan order, and never two tasks on one host at once. The native
//! executor ([`native`]) reaches hosts through a [`Runner`] (SSH, or local).

mod fence;
pub mod native;
pub mod pigsty;
pub mod runner;
pub mod settings;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Semaphore};

use crate::inventory::Inventory;
use crate::plan::{Action, Plan};
pub use runner::{Runner, SshOptions, Target};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{host}: cannot connect: {reason}")]
    Connect { host: String, reason: String },
    #[error("{host}: {reason}")]
    Command { host: String, reason: String },
    #[error("{host}: no answer within {seconds} s")]
    Timeout { host: String, seconds: u64 },
    #[error("{host}: {what} failed: {stderr}")]
    Failed {
        host: String,
        what: String,
        stderr: String,
    },
    #[error("{0}")]
    Refused(String),
    /// A step that cannot be rolled back (`done`, e.g. `created database app`) went through, then
    /// a later one failed: the result says exactly what stays.
    #[error("{done}; then failed: {cause}")]
    Partial { done: String, cause: Box<ExecError> },
}

/// How the native executor reaches PostgreSQL on a host (`become` in `pgitops.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Become {
    /// `runuser -u <dbsu> --` (root login).
    #[default]
    Runuser,
    /// `sudo -n -u <dbsu> --`.
    Sudo,
    /// Run as the login user (it is the dbsu).
    None,
}

#[derive(Debug, Clone)]
pub struct ExecConfig {
    pub become_method: Become,
    /// Overrides of the per-host settings the inventory gives (see [`settings`]).
    pub pg: settings::Overrides,
    pub timeout: Duration,
    /// Clusters applied at once.
    pub concurrency: usize,
    /// Classes outside their allowed window now: such actions wait.
    pub closed_classes: std::collections::BTreeSet<crate::plan::Class>,
    /// Set on shutdown: running steps finish, no new action starts.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// Journal of destructive actions for the commit being applied (see `report::journal`).
    pub journal: Option<crate::report::journal::Journal>,
    /// Set: the Pigsty executor runs Pigsty's playbooks instead of the native steps.
    pub pigsty: Option<pigsty::PigstyConfig>,
    /// Which supervisor runs the daemons pgitops installs (etcd).
    pub supervision: native::supervise::Supervision,
    /// Set with `[ha]`: the leader lease of this apply's term, checked before every action
    /// (in etcd before a destructive one); a lost lease skips the rest.
    pub fence: Option<crate::report::shared_state::Fence>,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            become_method: Become::Runuser,
            pg: Default::default(),
            timeout: Duration::from_secs(60),
            concurrency: 8,
            closed_classes: Default::default(),
            stop: Default::default(),
            journal: None,
            pigsty: None,
            supervision: Default::default(),
            fence: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Done (on every host it targets).
    Applied,
    Failed,
    /// Destructive and not approved: waits for a `Pgitops-Approve` trailer.
    AwaitingApproval,
    /// Never applied automatically.
    Manual,
    /// A lifecycle action whose module already runs on its hosts: observed and taken as it is,
    /// nothing run (first contact with a running fleet).
    Adopted,
    /// Not something the native executor does (bootstrap, node, etcd, redis, ...).
    NotNative,
    /// Not run because an earlier action of the same cluster failed, or on shutdown.
    Skipped,
    /// Its class is outside the allowed window now (`[[schedule.window]]`).
    AwaitingWindow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResult {
    pub host: String,
    pub ok: bool,
    pub detail: String,
    pub ms: u64,
}

/// One action's outcome; also what a git note stores per action (read back with this type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    pub id: String,
    pub cluster: String,
    pub class: crate::plan::Class,
    pub status: Status,
    #[serde(default)]
    pub hosts: Vec<HostResult>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub ms: u64,
    /// The action created the object it names (a user that did not exist before it ran).
    /// Only such users are recorded as pgitops' own, and only those are ever pruned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
    /// Which executor ran the action (`None`: none did: held, skipped, waiting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorUsed>,
}

/// The executor that ran an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutorUsed {
    Native,
    Pigsty,
}

/// Per-host locks: a host in several clusters is touched by one task at a time.
#[derive(Default)]
pub struct HostLocks(std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>);

impl HostLocks {
    pub fn get(&self, host: &str) -> Arc<Mutex<()>> {
        self.0
            .lock()
            .expect("lock map")
            .entry(host.to_string())
            .or_default()
            .clone()
    }
}

/// Runs the plan natively. Results come back in plan order.
pub async fn run(
    plan: &Plan,
    old: Arc<Inventory>,
    new: Arc<Inventory>,
    runner: Arc<Runner>,
    cfg: Arc<ExecConfig>,
) -> Vec<ActionResult> {
    let mut by_cluster: BTreeMap<(String, String), Vec<(usize, Action)>> = BTreeMap::new();
    for (i, a) in plan.actions.iter().enumerate() {
        by_cluster
            .entry((a.module.as_str().to_string(), a.cluster.clone()))
            .or_default()
            .push((i, a.clone()));
    }
    let limit = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let locks = Arc::new(HostLocks::default());
    // The DCS first: etcd's lanes end before the others start (a PGSQL cluster created in the
    // same apply needs its etcd running); lanes of one wave run side by side.
    let (dcs, rest): (Vec<_>, Vec<_>) = by_cluster
        .into_iter()
        .partition(|((module, _), _)| module == crate::inventory::module::Module::Etcd.as_str());
    let mut all: Vec<(usize, ActionResult)> = Vec::new();
    for wave in [dcs, rest] {
        let mut tasks = tokio::task::JoinSet::new();
        for (_, actions) in wave {
            let (old, new, runner, cfg, limit, locks) = (
                old.clone(),
                new.clone(),
                runner.clone(),
                cfg.clone(),
                limit.clone(),
                locks.clone(),
            );
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("semaphore open");
                let ctx = native::Ctx {
                    old: &old,
                    new: &new,
                    runner: &runner,
                    cfg: &cfg,
                    locks: &locks,
                };
                let mut out = Vec::new();
                let mut failed = false;
                for (i, a) in actions {
                    let started = Instant::now();
                    let stopping = cfg.stop.load(std::sync::atomic::Ordering::SeqCst);
                    let fenced = match (&cfg.fence, stopping || failed) {
                        (Some(f), false) => fence::check(f, &a).await.err(),
                        _ => None,
                    };
                    let mut r = if let Some(why) = fenced {
                        result(&a, Status::Skipped, why, vec![])
                    } else if stopping {
                        result(
                            &a,
                            Status::Skipped,
                            "not run: pgitops is shutting down",
                            vec![],
                        )
                    } else if failed {
                        skipped(&a)
                    } else if cfg.closed_classes.contains(&a.class)
                        && a.approval != crate::plan::Approval::Required
                    {
                        result(
                            &a,
                            Status::AwaitingWindow,
                            format!(
                                "waits for the allowed window of {} actions",
                                a.class.as_str()
                            ),
                            vec![],
                        )
                    } else {
                        match &cfg.pigsty {
                            Some(p) if !(p.native_first && native::handles(&a.step)) => {
                                ran(pigsty::apply(&ctx, &a).await, ExecutorUsed::Pigsty)
                            }
                            _ => ran(native::apply(&ctx, &a).await, ExecutorUsed::Native),
                        }
                    };
                    r.ms = started.elapsed().as_millis() as u64;
                    failed |= r.status == Status::Failed;
                    out.push((i, r));
                }
                out
            });
        }
        while let Some(done) = tasks.join_next().await {
            all.extend(done.expect("cluster task panicked"));
        }
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// `r`, marked as run by `by` unless that executor held it back.
fn ran(mut r: ActionResult, by: ExecutorUsed) -> ActionResult {
    if !matches!(r.status, Status::AwaitingApproval | Status::Skipped) {
        r.executor = Some(by);
    }
    r
}

pub fn result(
    a: &Action,
    status: Status,
    message: impl Into<String>,
    hosts: Vec<HostResult>,
) -> ActionResult {
    ActionResult {
        id: a.id.clone(),
        cluster: a.cluster.clone(),
        class: a.class,
        status,
        hosts,
        message: message.into(),
        ms: 0,
        created: false,
        executor: None,
    }
}

fn skipped(a: &Action) -> ActionResult {
    result(
        a,
        Status::Skipped,
        "not run: an earlier action of this cluster failed",
        vec![],
    )
}
