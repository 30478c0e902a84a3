//! Plan (pure): a diff becomes an ordered list of classified actions.
//!
//! In: the [`Diff`] of two inventories, both inventories, the approvals found in the commits of
//! the range and the objects pgitops created before. Out: a [`Plan`]: actions with a stable id
//! (`pg-meta/user/dbuser_app/create`), target cluster and hosts, the revision they read (`old`
//! for removals), a class (`online`, `reload`, `restart`, `destructive`, `manual`), a preview of
//! the native steps (passwords redacted) and the equivalent Pigsty command line; plus warnings
//! for what is deliberately left alone. Order: infra, node, etcd, minio, pgsql, redis for
//! creation and the reverse for removal; inside a cluster roles before the databases they own,
//! primary before replicas. Rendering to text and JSON lives in [`output`].

pub mod catalog;
mod modules;
mod objects;
pub mod output;
mod pgsql;
pub(crate) mod steps;
mod vars;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::diff::Diff;
use crate::inventory::module::Module;
use crate::inventory::Inventory;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub id: String,
    pub kind: String,
    #[serde(serialize_with = "module_name")]
    pub module: Module,
    pub cluster: String,
    pub hosts: Vec<String>,
    pub class: Class,
    pub revision: Revision,
    /// The equivalent Pigsty invocation, run from the Pigsty home.
    pub pigsty: String,
    /// What the native executor will do (SQL with passwords redacted, files, reloads).
    pub steps: Vec<String>,
    pub approval: Approval,
    /// Why an action is manual, or what to know before it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    order: (bool, u8, u8),
}

fn module_name<S: serde::Serializer>(m: &Module, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
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

/// Phases inside a cluster, creation side.
pub(crate) mod phase {
    pub const CLUSTER: u8 = 0;
    pub const MEMBER: u8 = 1;
    pub const USER: u8 = 2;
    pub const DATABASE: u8 = 3;
    pub const HBA: u8 = 4;
    pub const SERVICE: u8 = 5;
    pub const PARAMETER: u8 = 6;
    pub const VAR: u8 = 7;
    // Removal side.
    pub const DROP_DATABASE: u8 = 0;
    pub const DROP_USER: u8 = 1;
    pub const REMOVE_MEMBER: u8 = 2;
    pub const AFTER_REMOVAL: u8 = 3;
    pub const REMOVE_CLUSTER: u8 = 4;
}

fn rank(m: Module) -> u8 {
    match m {
        Module::Infra => 0,
        Module::Node => 1,
        Module::Etcd => 2,
        Module::Minio => 3,
        Module::Pgsql => 4,
        Module::Redis => 5,
        Module::Other => 6,
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

pub(crate) struct Spec<'s> {
    pub module: Module,
    pub cluster: &'s str,
    /// `<entity>/<name>/<verb>` after the cluster, e.g. `user/dbuser_app/create`.
    pub path: String,
    pub kind: &'static str,
    pub hosts: Vec<String>,
    pub class: Class,
    /// Runs in the removal pass (reverse module order).
    pub removal: bool,
    /// Reads the old revision (removals need the identity of what is being removed).
    pub reads_old: bool,
    pub phase: u8,
    pub pigsty: String,
}

impl Builder<'_> {
    pub fn push(&mut self, s: Spec, steps: Vec<String>, reason: Option<String>) {
        let id = format!("{}/{}", s.cluster, s.path);
        let approval = match s.class {
            Class::Destructive if self.approvals.contains(&id) => Approval::Approved,
            Class::Destructive => Approval::Required,
            _ => Approval::NotNeeded,
        };
        let module_rank = if s.removal {
            6 - rank(s.module)
        } else {
            rank(s.module)
        };
        self.plan.actions.push(Action {
            id,
            kind: s.kind.to_string(),
            module: s.module,
            cluster: s.cluster.to_string(),
            hosts: s.hosts,
            class: s.class,
            revision: if s.reads_old {
                Revision::Old
            } else {
                Revision::New
            },
            pigsty: s.pigsty,
            steps,
            approval,
            reason,
            order: (s.removal, module_rank, s.phase),
        });
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
    // Stable: emission order is kept inside (removal, module, phase); clusters stay alphabetical.
    b.plan
        .actions
        .sort_by_key(|a| (a.order.0, a.order.1, a.cluster.clone(), a.order.2));
    b.plan
}

/// An Ansible limit for hosts inside a cluster: `ip1,ip2,&cls`.
pub(crate) fn limit_hosts(hosts: &[String], group: &str) -> String {
    format!("{},&{group}", hosts.join(","))
}

/// The Pigsty invocation `./<playbook>.yml -l <limit> <args...>`, every word shell-quoted.
pub(crate) fn pigsty(playbook: &str, limit: &str, args: &[&str]) -> String {
    let book = format!("./{playbook}.yml");
    let mut argv = vec![book.as_str(), "-l", limit];
    argv.extend_from_slice(args);
    crate::render::shell::line(&argv)
}
