//! Plan (pure): a diff becomes an ordered list of classified actions.
//!
//! In: the [`Diff`] of two inventories, both inventories, the approvals found in the commits of
//! the range and the objects pgitops created before. Out: a [`Plan`]: actions with a stable id
//! (`pg-meta/user/dbuser_app/create`), target cluster and hosts, the revision they read (`old`
//! for removals), a class (`online`, `reload`, `restart`, `destructive`, `manual`), one typed
//! [`Step`] of a component (its preview has passwords redacted) and the equivalent Pigsty
//! [`Playbook`]; plus warnings for what is deliberately left alone. Adding a component is a
//! variant of [`Step`] (see `step`), its planner here and its executor in `execute::native`. Order: infra, node, etcd, minio, pgsql, redis for
//! creation and the reverse for removal; inside a cluster roles before the databases they own,
//! primary before replicas. Rendering to text and JSON lives in [`output`].

pub mod catalog;
mod defaults;
pub mod etcd;
pub mod markdown;
mod modules;
mod objects;
pub mod output;
mod pgbouncer;
mod pgbouncer_life;
mod pgsql;
mod preview;
pub mod services;
mod step;
mod vars;

pub use step::{
    Definition, Delegated, HbaFile, HbaStep, InstanceVerb, Manual, ObjectStep, ParamStep, PgbFile,
    PgbOp, PgbStep, ServiceStep, SqlTarget, Step,
};

use std::collections::BTreeSet;

use serde::Serialize;

use crate::diff::Diff;
use crate::inventory::module::Module;
use crate::inventory::Inventory;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Online,
    Reload,
    Restart,
    Destructive,
    Manual,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Online => "online",
            Class::Reload => "reload",
            Class::Restart => "restart",
            Class::Destructive => "destructive",
            Class::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Revision {
    Old,
    New,
}

/// Whether a destructive action may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approval {
    NotNeeded,
    /// Held until a `Pgitops-Approve: <id>` trailer or `pgitops approve`.
    Required,
    Approved,
}

/// One action: a typed [`Step`] with its target, class, the revision it reads and its approval.
/// The id is derived from the step (`<cluster>/<step path>`) and stable across releases.
#[derive(Debug, Clone)]
pub struct Action {
    pub id: String,
    pub module: Module,
    pub cluster: String,
    pub hosts: Vec<String>,
    pub class: Class,
    pub revision: Revision,
    pub step: Step,
    /// The equivalent Pigsty invocation, run from the Pigsty home (none for manual actions).
    pub pigsty: Option<Playbook>,
    pub approval: Approval,
    /// Why an action is manual, or what to know before it runs.
    pub reason: Option<String>,
    order: Order,
}

impl Action {
    /// The preview lines: the native ETCD steps' own, a PGSQL cluster removal's or member's,
    /// else the step's.
    pub fn preview(&self) -> Vec<String> {
        if let Some(e) = etcd::EtcdStep::of(self) {
            return e.preview();
        }
        match (self.module, &self.step) {
            (Module::Pgsql, Step::Delegated(Delegated::ClusterRemove { .. })) => {
                pgsql::remove_preview()
            }
            (Module::Pgsql, Step::Delegated(Delegated::MemberAdd { .. })) => {
                pgsql::member_add_preview()
            }
            (Module::Pgsql, Step::Delegated(Delegated::MemberRemove { .. })) => {
                pgsql::member_remove_preview()
            }
            _ => self.step.preview(),
        }
    }
}

/// The plan's JSON form of an action (the contract other tools read).
impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Action", 11)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("kind", self.step.kind())?;
        st.serialize_field("module", self.module.as_str())?;
        st.serialize_field("cluster", &self.cluster)?;
        st.serialize_field("hosts", &self.hosts)?;
        st.serialize_field("class", &self.class)?;
        st.serialize_field("revision", &self.revision)?;
        let pigsty = self
            .pigsty
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        st.serialize_field("pigsty", &pigsty)?;
        st.serialize_field("steps", &self.preview())?;
        st.serialize_field("approval", &self.approval)?;
        if let Some(r) = &self.reason {
            st.serialize_field("reason", r)?;
        }
        st.end()
    }
}

/// A Pigsty playbook run: `./<book>.yml -l <limit> <args...>`, as argv (never re-split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playbook {
    pub book: String,
    pub limit: String,
    pub args: Vec<String>,
}

impl Playbook {
    pub fn new(book: &str, limit: &str, args: &[&str]) -> Playbook {
        Playbook {
            book: book.to_string(),
            limit: limit.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// The arguments after the playbook: `-l <limit> <args...>`.
    pub fn argv(&self) -> Vec<&str> {
        let mut argv = vec!["-l", self.limit.as_str()];
        argv.extend(self.args.iter().map(String::as_str));
        argv
    }

    pub fn file(&self) -> String {
        format!("{}.yml", self.book)
    }
}

/// The command line as a user would type it in the Pigsty home, every word shell-quoted.
impl std::fmt::Display for Playbook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let book = format!("./{}", self.file());
        let mut argv = vec![book.as_str()];
        argv.extend(self.argv());
        f.write_str(&crate::render::shell::line(&argv))
    }
}

/// A remark on the plan that is not an action: objects left in place, re-run baselines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanWarning {
    pub cluster: String,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub warnings: Vec<PlanWarning>,
}

/// Where an action sorts: the creation pass (modules in order infra, node, etcd, minio, pgsql,
/// redis) before the removal pass (modules in reverse); inside a cluster by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Order {
    Create(Phase),
    Remove(RemovalPhase),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Cluster,
    Member,
    Switchover,
    DefaultRoles,
    Templates,
    User,
    Database,
    Hba,
    PgbouncerLaunch,
    Pgbouncer,
    Service,
    Parameter,
    Var,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RemovalPhase {
    DropDatabase,
    DropUser,
    RemoveMember,
    AfterRemoval,
    RemoveCluster,
}

impl Order {
    fn removal(self) -> bool {
        matches!(self, Order::Remove(_))
    }
}

fn ordering(x: &Action, y: &Action) -> std::cmp::Ordering {
    let (xr, yr) = (x.order.removal(), y.order.removal());
    xr.cmp(&yr)
        .then_with(|| match xr {
            false => x.module.cmp(&y.module),
            true => y.module.cmp(&x.module),
        })
        .then_with(|| x.cluster.cmp(&y.cluster))
        .then_with(|| x.order.cmp(&y.order))
}

impl Action {
    /// A new action on `cluster`; it reads the new revision, targets no host and has no Pigsty
    /// command until told otherwise.
    pub(crate) fn new(
        module: Module,
        cluster: &str,
        step: Step,
        class: Class,
        order: Order,
    ) -> Action {
        Action {
            id: format!("{cluster}/{}", step.path()),
            module,
            cluster: cluster.to_string(),
            hosts: vec![],
            class,
            revision: Revision::New,
            step,
            pigsty: None,
            approval: Approval::NotNeeded,
            reason: None,
            order,
        }
    }

    pub(crate) fn hosts(mut self, hosts: Vec<String>) -> Action {
        self.hosts = hosts;
        self
    }

    pub(crate) fn reads_old(mut self) -> Action {
        self.revision = Revision::Old;
        self
    }

    pub(crate) fn pigsty(mut self, p: Playbook) -> Action {
        self.pigsty = Some(p);
        self
    }

    pub(crate) fn reason(mut self, why: impl Into<String>) -> Action {
        self.reason = Some(why.into());
        self
    }
}

/// Collects actions while the plan is built.
pub(crate) struct Builder<'a> {
    pub old: &'a Inventory,
    pub new: &'a Inventory,
    pub approvals: &'a BTreeSet<String>,
    /// Objects pgitops created (`<cluster>/<entity>/<name>`): removed from the YAML, they are pruned.
    pub created: &'a BTreeSet<String>,
    pub plan: Plan,
}

impl Builder<'_> {
    pub fn push(&mut self, mut a: Action) {
        a.approval = match a.class {
            Class::Destructive if self.approvals.contains(&a.id) => Approval::Approved,
            Class::Destructive => Approval::Required,
            _ => Approval::NotNeeded,
        };
        self.plan.actions.push(a);
    }

    pub fn warn(&mut self, cluster: &str, message: String) {
        self.plan.warnings.push(PlanWarning {
            cluster: cluster.to_string(),
            message,
        });
    }
}

/// Builds the plan. `approvals` holds action ids approved for this range; `created` the objects
/// pgitops created earlier (see [`Builder::created`]).
pub fn build(
    diff: &Diff,
    old: &Inventory,
    new: &Inventory,
    approvals: &BTreeSet<String>,
    created: &BTreeSet<String>,
) -> Plan {
    let mut b = Builder {
        old,
        new,
        approvals,
        created,
        plan: Plan::default(),
    };
    for ((module, cluster), changes) in diff.by_cluster() {
        match module {
            Module::Pgsql => pgsql::plan(&mut b, cluster, &changes),
            _ => modules::plan(&mut b, module, cluster, &changes),
        }
    }
    let haproxy: Vec<(&str, Vec<String>)> = diff
        .by_cluster()
        .into_iter()
        .filter(|((m, _), _)| *m == Module::Node)
        .map(|((_, cluster), changes)| {
            let keys = changes
                .iter()
                .filter(|c| c.entity == crate::diff::Entity::Var);
            let keys = keys.filter(|c| services::covers(&b, cluster, &c.name));
            (cluster, keys.map(|c| c.name.clone()).collect::<Vec<_>>())
        })
        .filter(|(_, keys)| !keys.is_empty())
        .collect();
    services::node_vars(&mut b, &haproxy);
    pgsql::patroni_refresh(&mut b);
    // Stable: emission order is kept inside (removal, module, phase); clusters stay alphabetical.
    b.plan.actions.sort_by(ordering);
    b.plan
}

/// An Ansible limit for hosts inside a cluster: `ip1,ip2,&cls`.
pub(crate) fn limit_hosts(hosts: &[String], group: &str) -> String {
    format!("{},&{group}", hosts.join(","))
}
