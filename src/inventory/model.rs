//! The typed module model built from effective variables.
//!
//! In: a resolved [`Tree`]. Out: [`Model`] — PGSQL clusters keyed by the *resolved* `pg_cluster`
//! (not the group name) with members, users, databases and services; REDIS clusters with
//! instances keyed by port; ETCD and MINIO clusters; the INFRA group. Cluster-level definitions
//! (users, databases, services) are read from the declared primary's effective variables, as
//! Pigsty's playbooks do. Every other variable stays a raw value in the host's effective vars so
//! that it still diffs. Shape problems become diagnostics.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;

use super::ansible::Tree;
use super::defaults::Privileges;
use super::diag::Diagnostic;
use super::module::group_module;
use super::named::{named_list, Named};
use super::reuse::{PgParts, Reuse};
use super::yaml::scalar_text;
use super::{HostVars, VarSource};

#[derive(Debug, Clone)]
pub struct PgMember {
    pub host: String,
    pub seq: Option<i64>,
    /// The *declared* role; the live one is asked at apply time.
    pub role: String,
    pub offline_query: bool,
}

impl PgMember {
    pub fn instance(&self, cluster: &str) -> String {
        match self.seq {
            Some(s) => format!("{cluster}-{s}"),
            None => format!("{cluster}-?"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PgCluster {
    pub name: String,
    /// Ansible groups that hold the members (usually one, named like the cluster).
    pub groups: BTreeSet<String>,
    pub members: BTreeMap<String, PgMember>,
    /// The host whose variables define the cluster: the declared primary, else the lowest seq.
    pub primary: Option<String>,
    pub users: Vec<Named>,
    pub databases: Vec<Named>,
    pub services: Vec<Named>,
    /// `pg_default_privileges` of the primary, typed (Pigsty's when unset); the error of an
    /// entry that does not parse (validation reports it at the entry).
    pub default_privileges: Result<Privileges, String>,
}

impl PgCluster {
    pub fn declared_primary(&self) -> Option<&PgMember> {
        self.members.values().find(|m| m.role == "primary")
    }
}

#[derive(Debug, Clone, Default)]
pub struct Member {
    pub host: String,
    pub seq: Option<i64>,
}

/// ETCD, MINIO and INFRA: a name and numbered members.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub name: String,
    pub groups: BTreeSet<String>,
    pub members: BTreeMap<String, Member>,
}

#[derive(Debug, Clone, Default)]
pub struct RedisNode {
    pub host: String,
    pub node: Option<i64>,
    /// Instances keyed by port, with their options (e.g. `replica_of`).
    pub instances: BTreeMap<u16, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct RedisCluster {
    pub name: String,
    pub groups: BTreeSet<String>,
    pub nodes: BTreeMap<String, RedisNode>,
}

#[derive(Debug, Default)]
pub struct Model {
    pub pgsql: BTreeMap<String, PgCluster>,
    pub redis: BTreeMap<String, RedisCluster>,
    pub etcd: BTreeMap<String, Cluster>,
    pub minio: BTreeMap<String, Cluster>,
    pub infra: Option<Cluster>,
}

pub fn str_var<'a, V: VarSource + ?Sized>(vars: &'a V, name: &str) -> Option<&'a str> {
    vars.var(name).and_then(|v| v.value.as_str())
}

/// A TCP port variable (`ansible_port`, `pg_port`) read as Ansible reads it: an integer, or an
/// integer written as a string (`'2200'`). `Ok(None)` when unset; an error for anything else.
pub fn port_var<V: VarSource + ?Sized>(vars: &V, name: &str) -> Result<Option<u16>, String> {
    let Some(v) = vars.var(name) else {
        return Ok(None);
    };
    match ansible_uint(&v.value)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|p| *p > 0)
    {
        Some(p) => Ok(Some(p)),
        None => Err(format!("`{name}` must be a port number from 1 to 65535")),
    }
}

/// A non-negative integer as Ansible's `| int` reads it: a number, or an integer in a string.
pub fn ansible_uint(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

/// `pg_version` as Pigsty reads it (`pg_version | int`): a major version from 9 to 99, also
/// when quoted. `None` when unset or not such a number (validate refuses the latter).
pub fn pg_version_var<V: VarSource + ?Sized>(vars: &V) -> Option<u32> {
    let n = ansible_uint(&vars.var("pg_version")?.value)?;
    (9..=99).contains(&n).then_some(n as u32)
}

pub fn int_var<V: VarSource + ?Sized>(vars: &V, name: &str) -> Option<i64> {
    vars.var(name).and_then(|v| v.value.as_i64())
}

pub fn bool_var<V: VarSource + ?Sized>(vars: &V, name: &str) -> bool {
    vars.var(name)
        .and_then(|v| v.value.as_bool())
        .unwrap_or(false)
}

impl Model {
    pub fn build(tree: &Tree) -> (Model, Vec<Diagnostic>) {
        Model::build_with(tree, &Reuse::none())
    }

    /// [`Model::build`], sharing the work of PGSQL clusters with another revision ([`Reuse`]).
    pub fn build_with(tree: &Tree, reuse: &Reuse) -> (Model, Vec<Diagnostic>) {
        let mut model = Model::default();
        let mut diags = Vec::new();
        for (host, h) in &tree.hosts {
            model.add_pg_member(host, &h.vars, &mut diags);
            model.add_redis_node(host, &h.vars, &mut diags);
            if let Some(var) = h.vars.get("minio_cluster") {
                match var.value.as_str() {
                    Some(name) => {
                        add_member(&mut model.minio, name, host, int_var(&h.vars, "minio_seq"))
                    }
                    None => diags.push(Diagnostic::error_at(
                        &var.origin,
                        "`minio_cluster` must be a string",
                    )),
                }
            }
        }
        for (gname, g) in &tree.groups {
            if group_module(gname, &g.vars) == Some("etcd") {
                let name = str_var(g.vars.as_ref(), "etcd_cluster")
                    .unwrap_or("etcd")
                    .to_string();
                for host in &g.hosts {
                    let seq = int_var(&tree.hosts[host].vars, "etcd_seq");
                    add_member(&mut model.etcd, &name, host, seq);
                }
            }
        }
        if let Some(g) = tree.groups.get("infra") {
            let mut infra = Cluster {
                name: "infra".into(),
                ..Cluster::default()
            };
            infra.groups.insert("infra".into());
            for host in &g.hosts {
                let seq = int_var(&tree.hosts[host].vars, "infra_seq");
                infra.members.insert(
                    host.clone(),
                    Member {
                        host: host.clone(),
                        seq,
                    },
                );
            }
            model.infra = Some(infra);
        }
        // Users, databases, services and default privileges come from the primary's variables
        // (shared with the other revision of a pair when the cluster reads the same).
        let names: Vec<String> = model.pgsql.keys().cloned().collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let parts = reuse.models(&names, |name| {
            let cluster = &model.pgsql[name];
            let mut parts = PgParts {
                users: vec![],
                databases: vec![],
                services: vec![],
                default_privileges: Ok(Vec::new().into()),
                diags: vec![],
            };
            if let Some(p) = primary_of(cluster) {
                let (vars, diags) = (&tree.hosts[&p].vars, &mut parts.diags);
                parts.users = named_list(vars, &["pg_users"], diags);
                parts.databases = named_list(vars, &["pg_databases"], diags);
                parts.services = named_list(vars, &["pg_default_services", "pg_services"], diags);
                parts.default_privileges = super::defaults::privileges(vars);
            }
            parts
        });
        for (cluster, parts) in model.pgsql.values_mut().zip(parts) {
            cluster.primary = primary_of(cluster);
            cluster.users = parts.users;
            cluster.databases = parts.databases;
            cluster.services = parts.services;
            cluster.default_privileges = parts.default_privileges;
            diags.extend(parts.diags);
            cluster.groups = exact_groups(tree, cluster.members.keys());
        }
        for c in model.redis.values_mut() {
            c.groups = exact_groups(tree, c.nodes.keys());
        }
        for c in model.etcd.values_mut().chain(model.minio.values_mut()) {
            c.groups = exact_groups(tree, c.members.keys());
        }
        (model, diags)
    }

    fn add_pg_member(&mut self, host: &str, vars: &HostVars, diags: &mut Vec<Diagnostic>) {
        let Some(var) = vars.get("pg_cluster") else {
            return;
        };
        let Some(name) = var.value.as_str() else {
            return diags.push(Diagnostic::error_at(
                &var.origin,
                "`pg_cluster` must be a string",
            ));
        };
        let cluster = self
            .pgsql
            .entry(name.to_string())
            .or_insert_with(|| PgCluster {
                name: name.to_string(),
                groups: BTreeSet::new(),
                members: BTreeMap::new(),
                primary: None,
                users: vec![],
                databases: vec![],
                services: vec![],
                default_privileges: Ok(Vec::new().into()),
            });
        cluster.members.insert(
            host.to_string(),
            PgMember {
                host: host.to_string(),
                seq: int_var(vars, "pg_seq"),
                role: str_var(vars, "pg_role").unwrap_or("").to_string(),
                offline_query: bool_var(vars, "pg_offline_query"),
            },
        );
    }

    fn add_redis_node(&mut self, host: &str, vars: &HostVars, diags: &mut Vec<Diagnostic>) {
        let Some(var) = vars.get("redis_cluster") else {
            return;
        };
        let Some(name) = var.value.as_str() else {
            return diags.push(Diagnostic::error_at(
                &var.origin,
                "`redis_cluster` must be a string",
            ));
        };
        let mut instances = BTreeMap::new();
        if let Some(iv) = vars.get("redis_instances") {
            match iv.value.as_ref() {
                Value::Mapping(m) => {
                    for (k, v) in m {
                        match scalar_text(k).and_then(|p| p.parse::<u16>().ok()) {
                            Some(port) if port > 0 => {
                                instances.insert(port, v.clone());
                            }
                            _ => diags.push(Diagnostic::error_at(
                                &iv.origin,
                                "`redis_instances` keys must be port numbers (1-65535)",
                            )),
                        }
                    }
                }
                Value::Null => {}
                _ => diags.push(Diagnostic::error_at(
                    &iv.origin,
                    "`redis_instances` must be a mapping of port to options",
                )),
            }
        }
        let cluster = self
            .redis
            .entry(name.to_string())
            .or_insert_with(|| RedisCluster {
                name: name.to_string(),
                ..Default::default()
            });
        cluster.nodes.insert(
            host.to_string(),
            RedisNode {
                host: host.to_string(),
                node: int_var(vars, "redis_node"),
                instances,
            },
        );
    }
}

/// The host whose variables define the cluster: the declared primary, else the lowest seq.
fn primary_of(cluster: &PgCluster) -> Option<String> {
    cluster
        .declared_primary()
        .or_else(|| {
            cluster
                .members
                .values()
                .min_by_key(|m| (m.seq.unwrap_or(i64::MAX), m.host.clone()))
        })
        .map(|m| m.host.clone())
}

/// Groups whose hosts are exactly `members`: what an Ansible `-l` limit can name. Candidates are
/// the direct groups of the first member, so this stays linear in the inventory size.
fn exact_groups<'a>(
    tree: &Tree,
    mut members: impl Iterator<Item = &'a String>,
) -> BTreeSet<String> {
    let Some(first) = members.next() else {
        return BTreeSet::new();
    };
    let rest: BTreeSet<&String> = members.collect();
    tree.hosts[first]
        .groups
        .iter()
        .map(|g| &tree.groups[g])
        .filter(|g| {
            g.name != "all"
                && g.hosts.len() == rest.len() + 1
                && g.hosts.iter().all(|h| h == first || rest.contains(h))
        })
        .map(|g| g.name.clone())
        .collect()
}

fn add_member(map: &mut BTreeMap<String, Cluster>, name: &str, host: &str, seq: Option<i64>) {
    let c = map.entry(name.to_string()).or_insert_with(|| Cluster {
        name: name.to_string(),
        ..Cluster::default()
    });
    c.members.insert(
        host.to_string(),
        Member {
            host: host.to_string(),
            seq,
        },
    );
}

#[cfg(test)]
mod tests {
    use crate::inventory::{load, InventoryFiles};

    fn model(text: &str) -> crate::inventory::Inventory {
        load(&InventoryFiles::single("pigsty.yml", text), "test").expect("parses")
    }

    #[test]
    fn clusters_are_keyed_by_resolved_pg_cluster_not_group() {
        let inv = model(
            "all:\n  vars: { admin_ip: 127.0.0.1 }\n  children:\n    pg-citus:\n      hosts:\n        127.0.10.21: { pg_cluster: pg-citus1, pg_seq: 1, pg_role: primary }\n        127.0.10.22: { pg_cluster: pg-citus1, pg_seq: 2, pg_role: replica }\n        127.0.10.31: { pg_cluster: pg-citus2, pg_seq: 1, pg_role: primary }\n      vars: { pg_mode: citus, pg_users: [ { name: u } ] }\n",
        );
        let names: Vec<&String> = inv.model.pgsql.keys().collect();
        assert_eq!(names, ["pg-citus1", "pg-citus2"]);
        assert_eq!(inv.model.pgsql["pg-citus1"].members.len(), 2);
        assert_eq!(
            inv.model.pgsql["pg-citus1"].users[0].name, "u",
            "cluster definitions come from group vars"
        );
        assert!(
            inv.model.pgsql["pg-citus1"].groups.is_empty(),
            "no group holds exactly this cluster"
        );
        assert!(inv.is_valid(), "{:?}", inv.diagnostics);
    }

    #[test]
    fn one_host_in_several_modules() {
        let inv = model(
            "all:\n  vars: { admin_ip: 127.0.10.10 }\n  children:\n    infra: { hosts: { 127.0.10.10: { infra_seq: 1 } } }\n    etcd: { hosts: { 127.0.10.10: { etcd_seq: 1 } }, vars: { etcd_cluster: etcd } }\n    minio: { hosts: { 127.0.10.10: { minio_seq: 1 } }, vars: { minio_cluster: minio } }\n    pg-meta: { hosts: { 127.0.10.10: { pg_seq: 1, pg_role: primary } }, vars: { pg_cluster: pg-meta } }\n    redis-ms: { hosts: { 127.0.10.10: { redis_node: 1, redis_instances: { 6379: {}, 6380: { replica_of: '127.0.10.10 6379' } } } }, vars: { redis_cluster: redis-ms } }\n",
        );
        assert!(inv.is_valid(), "{:?}", inv.diagnostics);
        let m = &inv.model;
        assert!(m
            .infra
            .as_ref()
            .unwrap()
            .members
            .contains_key("127.0.10.10"));
        assert!(m.etcd["etcd"].members.contains_key("127.0.10.10"));
        assert!(m.minio["minio"].members.contains_key("127.0.10.10"));
        assert_eq!(m.pgsql["pg-meta"].primary.as_deref(), Some("127.0.10.10"));
        let ports: Vec<&u16> = m.redis["redis-ms"].nodes["127.0.10.10"]
            .instances
            .keys()
            .collect();
        assert_eq!(ports, [&6379, &6380]);
    }

    #[test]
    fn a_host_in_two_groups_of_one_module_is_an_error() {
        let inv = model(
            "all:\n  vars: { admin_ip: 127.0.10.10 }\n  children:\n    pg-a: { hosts: { 127.0.10.11: { pg_seq: 1, pg_role: primary } }, vars: { pg_cluster: pg-a } }\n    pg-b: { hosts: { 127.0.10.11: { pg_seq: 1, pg_role: primary } }, vars: { pg_cluster: pg-b } }\n",
        );
        let errors: Vec<String> = inv.errors().map(|d| d.to_string()).collect();
        assert!(
            errors.iter().any(|e| e.contains("two pgsql groups")),
            "{errors:?}"
        );
        assert!(
            errors.iter().all(|e| e.starts_with("pigsty.yml:")),
            "{errors:?}"
        );
    }
}
