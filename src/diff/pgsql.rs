//! PGSQL cluster diff: clusters, members, users, databases, services, HBA, parameters, vars.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;

use super::named::{Lists, Removal};
use super::{Change, Entity, Op, Spread, Unchanged};
use crate::inventory::model::PgCluster;
use crate::inventory::module::{var_module, Module};
use crate::inventory::Inventory;
use crate::render::hba::Target;
use crate::render::{hba_for, hba_inputs, HBA_CONTEXT_VARS};

/// Member identity fields; a change of any of these is a member update.
pub const MEMBER_FIELDS: &[&str] = &[
    "pg_seq",
    "pg_role",
    "pg_offline_query",
    "pg_weight",
    "pg_upstream",
    "pg_delay",
    "pg_group",
    "pg_shard",
];

/// Variables with their own entity diff, so not reported again as plain vars.
const MODELLED: &[&str] = &[
    "pg_cluster",
    "pg_users",
    "pg_databases",
    "pg_services",
    "pg_default_services",
    "pg_parameters",
    "pg_hba_rules",
    "pg_default_hba_rules",
    "pgb_hba_rules",
    "pgb_default_hba_rules",
];

pub fn diff(old: &Inventory, new: &Inventory, same: &Unchanged, out: &mut Vec<Change>) {
    let names: BTreeSet<&String> = old
        .model
        .pgsql
        .keys()
        .chain(new.model.pgsql.keys())
        .collect();
    for name in names {
        match (old.model.pgsql.get(name), new.model.pgsql.get(name)) {
            (None, Some(n)) => {
                let hosts: Vec<String> = n.members.keys().cloned().collect();
                out.push(
                    Change::new(Module::Pgsql, name, Entity::Cluster, name, Op::Create)
                        .hosts(hosts),
                );
                created(new, n, out);
            }
            (Some(o), None) => {
                let hosts: Vec<String> = o.members.keys().cloned().collect();
                out.push(
                    Change::new(Module::Pgsql, name, Entity::Cluster, name, Op::Delete)
                        .hosts(hosts),
                );
            }
            // Same members with unchanged variables and the same infra group: nothing can differ.
            (Some(o), Some(n))
                if same.infra
                    && o.members.keys().eq(n.members.keys())
                    && n.members.keys().all(|h| same.host(h)) => {}
            (Some(o), Some(n)) => cluster(old, new, o, n, out),
            (None, None) => unreachable!("name comes from one of the maps"),
        }
    }
}

/// The objects of a new cluster, as changes from nothing: its users, databases, each member's
/// HBA files and parameters.
fn created(new: &Inventory, n: &PgCluster, out: &mut Vec<Change>) {
    let lists = |entity| Lists {
        module: Module::Pgsql,
        cluster: &n.name,
        entity,
        removal: Removal::LeftInPlace,
    };
    lists(Entity::User).diff(&[], &n.users, out);
    lists(Entity::Database).diff(&[], &n.databases, out);
    let hosts: Vec<String> = n.members.keys().cloned().collect();
    for (target, file) in [(Target::Postgres, "pg_hba"), (Target::Pgbouncer, "pgb_hba")] {
        let first = hosts
            .first()
            .and_then(|h| hba_for(new, n, h, target, None).ok())
            .map(Value::from);
        out.push(
            Change::new(Module::Pgsql, &n.name, Entity::Hba, file, Op::Create)
                .fields(vec!["new cluster".into()])
                .hosts(hosts.clone())
                .values(None, first.as_ref()),
        );
    }
    let mut params: BTreeMap<String, Spread> = BTreeMap::new();
    for host in &hosts {
        param_changes(
            host,
            None,
            new.tree.hosts[host]
                .vars
                .get("pg_parameters")
                .map(|v| v.value.as_ref()),
            &mut params,
        );
    }
    for (key, spread) in params {
        out.push(spread.into_change(Module::Pgsql, &n.name, Entity::Parameter, &key));
    }
}

fn member_value(inv: &Inventory, host: &str) -> Value {
    let vars = &inv.tree.hosts[host].vars;
    Value::Mapping(
        MEMBER_FIELDS
            .iter()
            .filter_map(|k| vars.get(k).map(|v| (Value::from(*k), (*v.value).clone())))
            .collect(),
    )
}

fn cluster(old: &Inventory, new: &Inventory, o: &PgCluster, n: &PgCluster, out: &mut Vec<Change>) {
    let name = n.name.as_str();
    let hosts: BTreeSet<&String> = o.members.keys().chain(n.members.keys()).collect();
    let mut staying = Vec::new();
    for host in &hosts {
        let (ov, nv) = (
            o.members
                .contains_key(*host)
                .then(|| member_value(old, host)),
            n.members
                .contains_key(*host)
                .then(|| member_value(new, host)),
        );
        let op = match (&ov, &nv) {
            (None, Some(_)) => Op::Create,
            (Some(_), None) => Op::Delete,
            (Some(a), Some(b)) => {
                staying.push((*host).clone());
                if a == b {
                    continue;
                }
                Op::Update
            }
            (None, None) => continue,
        };
        let fields = super::named::changed_fields(
            ov.as_ref().unwrap_or(&Value::Null),
            nv.as_ref().unwrap_or(&Value::Null),
        );
        out.push(
            Change::new(Module::Pgsql, name, Entity::Member, host, op)
                .fields(fields)
                .values(ov.as_ref(), nv.as_ref())
                .hosts(vec![(*host).clone()]),
        );
    }
    let lists = |entity, removal| Lists {
        module: Module::Pgsql,
        cluster: name,
        entity,
        removal,
    };
    lists(Entity::User, Removal::LeftInPlace).diff(&o.users, &n.users, out);
    lists(Entity::Database, Removal::LeftInPlace).diff(&o.databases, &n.databases, out);
    lists(Entity::Service, Removal::Pruned).diff(&o.services, &n.services, out);
    for target in [Target::Postgres, Target::Pgbouncer] {
        hba(old, new, o, n, &staying, target, out);
    }
    per_host_vars(old, new, name, &staying, out);
}

/// Re-renders each staying member's HBA file from both revisions; any difference is a change,
/// whatever caused it (rule lists, `admin_ip`, infra or cluster membership, a `pg_role` swap).
fn hba(
    old: &Inventory,
    new: &Inventory,
    o: &PgCluster,
    n: &PgCluster,
    staying: &[String],
    target: Target,
    out: &mut Vec<Change>,
) {
    let mut changed_hosts = Vec::new();
    let mut sample = None;
    let infra = |inv: &Inventory| inv.tree.groups.get("infra").map(|g| g.hosts.clone());
    let same_context = infra(old) == infra(new) && o.members.keys().eq(n.members.keys());
    let inputs: Vec<&str> = hba_inputs(target)
        .iter()
        .chain(HBA_CONTEXT_VARS)
        .copied()
        .collect();
    let var = |inv: &Inventory, host: &str, key: &str| {
        inv.tree.hosts[host].vars.get(key).map(|v| v.value.clone())
    };
    for host in staying {
        // Rendering is the arbiter, but identical inputs cannot render differently.
        if same_context
            && inputs
                .iter()
                .all(|k| var(old, host, k) == var(new, host, k))
        {
            continue;
        }
        let (a, b) = (
            hba_for(old, o, host, target, None).ok(),
            hba_for(new, n, host, target, None).ok(),
        );
        if a != b {
            changed_hosts.push(host.clone());
            sample.get_or_insert((a, b));
        }
    }
    let Some((a, b)) = sample else { return };
    let mut causes: Vec<String> = Vec::new();
    for key in inputs {
        if changed_hosts
            .iter()
            .any(|h| var(old, h, key) != var(new, h, key))
        {
            causes.push(key.to_string());
        }
    }
    if infra(old) != infra(new) {
        causes.push("infra members".into());
    }
    if o.members.keys().ne(n.members.keys()) {
        causes.push("cluster members".into());
    }
    let file = match target {
        Target::Postgres => "pg_hba",
        Target::Pgbouncer => "pgb_hba",
    };
    let text = |t: Option<String>| Value::from(t.unwrap_or_else(|| "<does not render>\n".into()));
    out.push(
        Change::new(Module::Pgsql, &n.name, Entity::Hba, file, Op::Update)
            .fields(causes)
            .hosts(changed_hosts)
            .values(Some(&text(a)), Some(&text(b))),
    );
}

/// Per-host differences of pg_parameters keys and of other pgsql variables, each aggregated over
/// the hosts where it changed.
fn per_host_vars(
    old: &Inventory,
    new: &Inventory,
    cluster: &str,
    staying: &[String],
    out: &mut Vec<Change>,
) {
    let mut params: BTreeMap<String, Spread> = BTreeMap::new();
    let mut vars: BTreeMap<String, Spread> = BTreeMap::new();
    for host in staying {
        let (ov, nv) = (&old.tree.hosts[host].vars, &new.tree.hosts[host].vars);
        let mut keys = ov.keys();
        keys.extend(nv.keys());
        for key in keys {
            if var_module(key) != Some(Module::Pgsql) || MEMBER_FIELDS.contains(&key) {
                continue;
            }
            let (a, b) = (
                ov.get(key).map(|v| v.value.as_ref()),
                nv.get(key).map(|v| v.value.as_ref()),
            );
            if a == b {
                continue;
            }
            if key == "pg_parameters" {
                param_changes(host, a, b, &mut params);
            } else if !MODELLED.contains(&key) {
                Spread::add(&mut vars, key.to_string(), host, a, b);
            }
        }
    }
    for (key, spread) in params {
        out.push(spread.into_change(Module::Pgsql, cluster, Entity::Parameter, &key));
    }
    for (key, spread) in vars {
        out.push(spread.into_change(Module::Pgsql, cluster, Entity::Var, &key));
    }
}

fn param_changes(
    host: &str,
    a: Option<&Value>,
    b: Option<&Value>,
    out: &mut BTreeMap<String, Spread>,
) {
    let empty = serde_yaml_ng::Mapping::new();
    let am = a.and_then(Value::as_mapping).unwrap_or(&empty);
    let bm = b.and_then(Value::as_mapping).unwrap_or(&empty);
    let keys: BTreeSet<String> = am
        .keys()
        .chain(bm.keys())
        .filter_map(crate::inventory::yaml::scalar_text)
        .collect();
    for k in keys {
        let (x, y) = (am.get(k.as_str()), bm.get(k.as_str()));
        if x != y {
            Spread::add(out, k, host, x, y);
        }
    }
}
