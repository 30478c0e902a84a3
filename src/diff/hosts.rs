//! Host-level diff for the modules other than PGSQL: NODE (hosts joining or leaving, node
//! variables), INFRA, ETCD and MINIO membership, REDIS clusters and instances, and variables that
//! no module claims. Variables are compared per host and aggregated per (module, cluster, name).

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;

use super::{Change, Entity, Op, Spread, Unchanged};
use crate::inventory::model::{str_var, Cluster, RedisCluster};
use crate::inventory::module::{var_module, Module};
use crate::inventory::{HostVars, Inventory};

/// Identity variables handled as membership, not as plain variables.
const IDENTITY: &[&str] = &[
    "etcd_cluster",
    "etcd_seq",
    "minio_cluster",
    "minio_seq",
    "redis_cluster",
    "redis_node",
    "redis_instances",
    "infra_seq",
];

/// NODE cluster of a host, as Pigsty's `node_id` derives it.
pub fn node_cluster(vars: &HostVars) -> String {
    if let Some(c) = str_var(vars, "node_cluster") {
        return c.to_string();
    }
    let from_pg = vars
        .get("node_id_from_pg")
        .and_then(|v| v.value.as_bool())
        .unwrap_or(true);
    match str_var(vars, "pg_cluster") {
        Some(pg) if from_pg => pg.to_string(),
        _ => "nodes".to_string(),
    }
}

fn cluster_of(inv: &Inventory, module: Module, host: &str) -> Option<String> {
    let find = |m: &BTreeMap<String, Cluster>| {
        m.values()
            .find(|c| c.members.contains_key(host))
            .map(|c| c.name.clone())
    };
    match module {
        Module::Node => Some(node_cluster(&inv.tree.hosts[host].vars)),
        Module::Other => Some("all".into()),
        Module::Infra => inv
            .model
            .infra
            .as_ref()
            .filter(|c| c.members.contains_key(host))
            .map(|c| c.name.clone()),
        Module::Etcd => find(&inv.model.etcd),
        Module::Minio => find(&inv.model.minio),
        Module::Redis => inv
            .model
            .redis
            .values()
            .find(|c| c.nodes.contains_key(host))
            .map(|c| c.name.clone()),
        Module::Pgsql => None,
    }
}

pub fn diff(old: &Inventory, new: &Inventory, same: &Unchanged, out: &mut Vec<Change>) {
    hosts_and_vars(old, new, same, out);
    let infra = |inv: &Inventory| {
        inv.model
            .infra
            .clone()
            .map(|c| BTreeMap::from([(c.name.clone(), c)]))
            .unwrap_or_default()
    };
    members(Module::Infra, &infra(old), &infra(new), out);
    members(Module::Etcd, &old.model.etcd, &new.model.etcd, out);
    members(Module::Minio, &old.model.minio, &new.model.minio, out);
    redis(&old.model.redis, &new.model.redis, out);
}

fn hosts_and_vars(old: &Inventory, new: &Inventory, same: &Unchanged, out: &mut Vec<Change>) {
    let names: BTreeSet<&String> = old.tree.hosts.keys().chain(new.tree.hosts.keys()).collect();
    let mut agg: BTreeMap<(Module, String, String), Spread> = BTreeMap::new();
    for host in names.into_iter().filter(|h| !same.host(h)) {
        let (o, n) = (old.tree.hosts.get(host), new.tree.hosts.get(host));
        let (o, n) = match (o, n) {
            (None, Some(n)) => {
                out.push(
                    Change::new(
                        Module::Node,
                        &node_cluster(&n.vars),
                        Entity::Host,
                        host,
                        Op::Create,
                    )
                    .hosts(vec![host.clone()]),
                );
                continue;
            }
            (Some(o), None) => {
                out.push(
                    Change::new(
                        Module::Node,
                        &node_cluster(&o.vars),
                        Entity::Host,
                        host,
                        Op::Delete,
                    )
                    .hosts(vec![host.clone()]),
                );
                continue;
            }
            (Some(o), Some(n)) => (o, n),
            (None, None) => continue,
        };
        let mut keys = o.vars.keys();
        keys.extend(n.vars.keys());
        for key in keys {
            let Some(module) = var_module(key).filter(|m| *m != Module::Pgsql) else {
                continue;
            };
            if IDENTITY.contains(&key) {
                continue;
            }
            let (a, b) = (
                o.vars.get(key).map(|v| v.value.as_ref()),
                n.vars.get(key).map(|v| v.value.as_ref()),
            );
            if a == b {
                continue;
            }
            let Some(cluster) =
                cluster_of(new, module, host).or_else(|| cluster_of(old, module, host))
            else {
                continue;
            };
            Spread::add(&mut agg, (module, cluster, key.to_string()), host, a, b);
        }
    }
    for ((module, cluster, key), spread) in agg {
        out.push(spread.into_change(module, &cluster, Entity::Var, &key));
    }
}

fn members(
    module: Module,
    old: &BTreeMap<String, Cluster>,
    new: &BTreeMap<String, Cluster>,
    out: &mut Vec<Change>,
) {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let (o, n) = (old.get(name), new.get(name));
        let hosts = |c: Option<&Cluster>| {
            c.map(|c| c.members.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        match (o, n) {
            (None, Some(_)) => out
                .push(Change::new(module, name, Entity::Cluster, name, Op::Create).hosts(hosts(n))),
            (Some(_), None) => out
                .push(Change::new(module, name, Entity::Cluster, name, Op::Delete).hosts(hosts(o))),
            (Some(o), Some(n)) => {
                let all: BTreeSet<&String> = o.members.keys().chain(n.members.keys()).collect();
                for h in all {
                    let (a, b) = (
                        o.members.get(h).map(|m| m.seq),
                        n.members.get(h).map(|m| m.seq),
                    );
                    let Some(op) = Op::between(a, b) else {
                        continue;
                    };
                    let seq = |s: Option<Option<i64>>| s.flatten().map(Value::from);
                    out.push(
                        Change::new(module, name, Entity::Member, h, op)
                            .hosts(vec![h.clone()])
                            .fields(vec!["seq".into()])
                            .values(seq(a).as_ref(), seq(b).as_ref()),
                    );
                }
            }
            (None, None) => {}
        }
    }
}

fn redis(
    old: &BTreeMap<String, RedisCluster>,
    new: &BTreeMap<String, RedisCluster>,
    out: &mut Vec<Change>,
) {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let (o, n) = (old.get(name), new.get(name));
        let instances = |c: Option<&RedisCluster>| -> BTreeMap<(String, u16), Value> {
            c.map(|c| {
                c.nodes
                    .values()
                    .flat_map(|node| {
                        node.instances
                            .iter()
                            .map(|(p, v)| ((node.host.clone(), *p), v.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let hosts = |c: Option<&RedisCluster>| {
            c.map(|c| c.nodes.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        match (o, n) {
            (None, Some(_)) => out.push(
                Change::new(Module::Redis, name, Entity::Cluster, name, Op::Create).hosts(hosts(n)),
            ),
            (Some(_), None) => out.push(
                Change::new(Module::Redis, name, Entity::Cluster, name, Op::Delete).hosts(hosts(o)),
            ),
            _ => {
                let (a, b) = (instances(o), instances(n));
                let keys: BTreeSet<&(String, u16)> = a.keys().chain(b.keys()).collect();
                for key in keys {
                    let (x, y) = (a.get(key), b.get(key));
                    let Some(op) = Op::between(x, y) else {
                        continue;
                    };
                    let id = format!("{}:{}", key.0, key.1);
                    out.push(
                        Change::new(Module::Redis, name, Entity::RedisInstance, &id, op)
                            .hosts(vec![key.0.clone()])
                            .values(x, y),
                    );
                }
                let nodes = |c: Option<&RedisCluster>| {
                    c.map(|c| {
                        c.nodes
                            .iter()
                            .map(|(h, n)| (h.clone(), n.node))
                            .collect::<BTreeMap<_, _>>()
                    })
                    .unwrap_or_default()
                };
                let (na, nb) = (nodes(o), nodes(n));
                for (h, seq) in &nb {
                    if na.get(h).is_some_and(|s| s != seq) {
                        let v = |s: Option<i64>| s.map(Value::from);
                        out.push(
                            Change::new(Module::Redis, name, Entity::Member, h, Op::Update)
                                .hosts(vec![h.clone()])
                                .fields(vec!["redis_node".into()])
                                .values(v(na[h]).as_ref(), v(*seq).as_ref()),
                        );
                    }
                }
            }
        }
    }
}
