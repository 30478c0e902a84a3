//! Diff (pure): two inventories to the list of semantic changes between them.
//!
//! In: the old and the new [`Inventory`] (the old one may be empty, for a first apply). Out:
//! [`Change`]s at entity level with field-level detail: user `pg-meta/dbuser_app` changed
//! `connlimit`; member `10.0.0.13` joined `pg-test`; `pg_hba` of two hosts of `pg-test` changed
//! because `all.vars.admin_ip` did. Comparison is on parsed values, never text, so layout, key
//! order, comments, anchors and flow vs block style are no-ops. Values are kept raw here; every
//! renderer redacts them.

pub mod drift;
mod hosts;
pub mod named;
mod pgsql;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_yaml_ng::Value;

use crate::inventory::module::Module;
use crate::inventory::{Inventory, Vars};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Entity {
    Cluster,
    Member,
    User,
    Database,
    Hba,
    Service,
    Parameter,
    RedisInstance,
    Host,
    Var,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Cluster => "cluster",
            Entity::Member => "member",
            Entity::User => "user",
            Entity::Database => "database",
            Entity::Hba => "hba",
            Entity::Service => "service",
            Entity::Parameter => "parameter",
            Entity::RedisInstance => "redis-instance",
            Entity::Host => "host",
            Entity::Var => "var",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
    Delete,
    /// Gone from the YAML without `state: absent`: left in place, reported.
    Unmanaged,
}

impl Op {
    /// The operation that turns `old` into `new`; `None` when they are equal.
    pub fn between<T: PartialEq>(old: Option<T>, new: Option<T>) -> Option<Op> {
        match (old, new) {
            (None, Some(_)) => Some(Op::Create),
            (Some(_), None) => Some(Op::Delete),
            (Some(a), Some(b)) if a != b => Some(Op::Update),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Unmanaged => "unmanaged",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    #[serde(skip)]
    pub module: Module,
    #[serde(skip)]
    pub cluster: String,
    pub entity: Entity,
    pub name: String,
    pub op: Op,
    /// Changed fields (for users: `connlimit`; for HBA: the inputs that changed it).
    pub fields: Vec<String>,
    /// Hosts the change touches (all members for a cluster-wide change).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Values before and after, for rendering (redacted by the renderer).
    #[serde(skip)]
    pub old: Option<Value>,
    #[serde(skip)]
    pub new: Option<Value>,
}

impl Change {
    pub fn new(module: Module, cluster: &str, entity: Entity, name: &str, op: Op) -> Self {
        Change {
            module,
            cluster: cluster.to_string(),
            entity,
            name: name.to_string(),
            op,
            fields: vec![],
            hosts: vec![],
            old: None,
            new: None,
        }
    }

    pub fn values(mut self, old: Option<&Value>, new: Option<&Value>) -> Self {
        self.old = old.cloned();
        self.new = new.cloned();
        self
    }

    pub fn fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }

    pub fn hosts(mut self, hosts: Vec<String>) -> Self {
        self.hosts = hosts;
        self
    }
}

/// One variable (or parameter) that differs on some hosts: the hosts, and the values on the first.
#[derive(Debug, Default)]
pub(crate) struct Spread {
    hosts: Vec<String>,
    old: Option<Value>,
    new: Option<Value>,
}

impl Spread {
    /// Records that `host` changed `key` from `a` to `b`.
    pub fn add<K: Ord>(
        map: &mut BTreeMap<K, Spread>,
        key: K,
        host: &str,
        a: Option<&Value>,
        b: Option<&Value>,
    ) {
        let e = map.entry(key).or_insert_with(|| Spread {
            hosts: vec![],
            old: a.cloned(),
            new: b.cloned(),
        });
        e.hosts.push(host.to_string());
    }

    pub fn into_change(self, module: Module, cluster: &str, entity: Entity, name: &str) -> Change {
        // Spreads only exist for values that differ.
        let op = Op::between(self.old.as_ref(), self.new.as_ref()).unwrap_or(Op::Update);
        Change::new(module, cluster, entity, name, op)
            .values(self.old.as_ref(), self.new.as_ref())
            .hosts(self.hosts)
    }
}

/// All changes, grouped by (module, cluster) in a deterministic order.
#[derive(Debug, Default, Clone)]
pub struct Diff {
    pub changes: Vec<Change>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Changes grouped by cluster: `(module, cluster) -> changes`.
    pub fn by_cluster(&self) -> BTreeMap<(Module, &str), Vec<&Change>> {
        let mut out: BTreeMap<(Module, &str), Vec<&Change>> = BTreeMap::new();
        for c in &self.changes {
            out.entry((c.module, c.cluster.as_str()))
                .or_default()
                .push(c);
        }
        out
    }
}

pub fn diff(old: &Inventory, new: &Inventory) -> Diff {
    let mut changes = Vec::new();
    let same = Unchanged::new(old, new);
    pgsql::diff(old, new, &same, &mut changes);
    hosts::diff(old, new, &same, &mut changes);
    changes.sort_by(|a, b| (a.module, &a.cluster).cmp(&(b.module, &b.cluster)));
    Diff { changes }
}

/// Hosts whose effective variables cannot differ between the two revisions: the same own
/// variables, the same groups, and every group on the way to `all` unchanged. Lets the diff skip
/// them without comparing anything per host; the rest is compared in full.
pub struct Unchanged {
    hosts: BTreeSet<String>,
    /// The `infra` group has the same members (HBA's `infra` alias depends on it).
    pub infra: bool,
}

fn same_vars(a: &Vars, b: &Vars) -> bool {
    // Revisions loaded together share the layers of unchanged parts.
    std::ptr::eq(a, b)
        || a.len() == b.len()
            && a.iter().zip(b).all(|((ka, va), (kb, vb))| {
                // Revisions loaded together share the values of unchanged parts.
                ka == kb && (std::sync::Arc::ptr_eq(&va.value, &vb.value) || va.value == vb.value)
            })
}

impl Unchanged {
    fn new(old: &Inventory, new: &Inventory) -> Unchanged {
        let (o, n) = (&old.tree, &new.tree);
        let infra =
            o.groups.get("infra").map(|g| &g.hosts) == n.groups.get("infra").map(|g| &g.hosts);
        let mut hosts = BTreeSet::new();
        if !same_vars(&o.all_vars, &n.all_vars) {
            return Unchanged { hosts, infra };
        }
        let same_group = |name: &String| match (o.groups.get(name), n.groups.get(name)) {
            (Some(a), Some(b)) => {
                a.parents == b.parents && a.depth == b.depth && same_vars(&a.vars, &b.vars)
            }
            _ => false,
        };
        let groups: BTreeSet<&String> = o.groups.keys().filter(|g| same_group(g)).collect();
        for (name, h) in &o.hosts {
            let Some(nh) = n.hosts.get(name) else {
                continue;
            };
            if h.groups != nh.groups || !same_vars(&h.own, &nh.own) {
                continue;
            }
            let mut stack: Vec<&String> = h.groups.iter().collect();
            let mut ok = true;
            while let Some(g) = stack.pop() {
                if g == "all" {
                    continue;
                }
                if !groups.contains(g) {
                    ok = false;
                    break;
                }
                stack.extend(o.groups[g].parents.iter());
            }
            if ok {
                hosts.insert(name.to_string());
            }
        }
        Unchanged { hosts, infra }
    }

    pub fn host(&self, host: &str) -> bool {
        self.hosts.contains(host)
    }
}
