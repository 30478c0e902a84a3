//! PGSQL actions: clusters, members, users, databases, HBA, services, parameters, variables.

use std::collections::BTreeSet;

use super::catalog::{parameter_needs_restart, SERVICE_VARS};
use super::{limit_hosts, phase, pigsty, steps, Builder, Class, Spec};
use crate::diff::{Change, Entity, Op};
use crate::inventory::model::PgCluster;
use crate::inventory::module::Module;
use crate::inventory::Inventory;

/// The `-l` limit naming a cluster: its group when one holds exactly its members, else the IPs.
pub fn cluster_limit(c: &PgCluster) -> String {
    if c.groups.contains(&c.name) {
        return c.name.clone();
    }
    match c.groups.iter().next() {
        Some(g) => g.clone(),
        None => c.members.keys().cloned().collect::<Vec<_>>().join(","),
    }
}

/// `<limit>,!ip1,!ip2`: the limit without some hosts.
fn limit_except(limit: &str, hosts: &[String]) -> String {
    if hosts.is_empty() {
        return limit.to_string();
    }
    let excluded: Vec<String> = hosts.iter().map(|h| format!("!{h}")).collect();
    format!("{limit},{}", excluded.join(","))
}

fn cluster<'i>(inv: &'i Inventory, name: &str) -> Option<&'i PgCluster> {
    inv.model.pgsql.get(name)
}

pub fn plan(b: &mut Builder, name: &str, changes: &[&Change]) {
    let spec =
        |path: String, kind, hosts: Vec<String>, class, removal, phase, pigsty: String| Spec {
            module: Module::Pgsql,
            cluster: name,
            path,
            kind,
            hosts,
            class,
            removal,
            reads_old: removal,
            phase,
            pigsty,
        };
    if let Some(c) = changes.iter().find(|c| c.entity == Entity::Cluster) {
        let (inv, removal) = if c.op == Op::Create {
            (b.new, false)
        } else {
            (b.old, true)
        };
        let limit =
            cluster_limit(cluster(inv, name).expect("a changed cluster exists on its side"));
        if removal {
            let s = spec(
                format!("cluster/{name}/remove"),
                "cluster-remove",
                c.hosts.clone(),
                Class::Destructive,
                true,
                phase::REMOVE_CLUSTER,
                pigsty("pgsql-rm", &limit, &[]),
            );
            b.push(
                s,
                steps::not_native("removing a whole cluster"),
                Some("removes data, backups and DCS metadata of every member".into()),
            );
        } else {
            let s = spec(
                format!("cluster/{name}/create"),
                "cluster-create",
                c.hosts.clone(),
                Class::Online,
                false,
                phase::CLUSTER,
                pigsty("pgsql", &limit, &[]),
            );
            let note = "native executor: does not bootstrap; checks that the members already run PostgreSQL, then converges the objects below";
            b.push(s, vec![note.to_string()], None);
            // Pigsty creates the cluster's objects while bootstrapping; natively they are
            // converged on the running members by these actions.
            let new = cluster(b.new, name).expect("a created cluster is in the new inventory");
            super::objects::plan(b, name, &limit, new, changes);
            hba(b, name, &limit, new, changes);
            parameters(b, name, &limit, changes);
        }
        return;
    }
    let (old, new) = (
        cluster(b.old, name).expect("cluster on both sides"),
        cluster(b.new, name).expect("cluster on both sides"),
    );
    let limit = cluster_limit(new);
    let mut refresh_services = BTreeSet::new();
    let mut removed_members = Vec::new();
    let mut added_members: Vec<String> = Vec::new();

    // Members: primary first, then by seq.
    let mut members: Vec<&&Change> = changes
        .iter()
        .filter(|c| c.entity == Entity::Member)
        .collect();
    members.sort_by_key(|c| {
        new.members
            .get(&c.name)
            .map(|m| (m.role != "primary", m.seq))
            .unwrap_or((true, None))
    });
    for c in members {
        let ip = &c.name;
        match c.op {
            Op::Create => {
                let s = spec(
                    format!("member/{ip}/add"),
                    "member-add",
                    vec![ip.clone()],
                    Class::Online,
                    false,
                    phase::MEMBER,
                    pigsty("pgsql", &limit_hosts(std::slice::from_ref(ip), &limit), &[]),
                );
                b.push(s, steps::not_native("bootstrapping a new instance"), None);
                refresh_services.insert(format!("member {ip} added"));
                added_members.push(ip.clone());
            }
            Op::Delete if old.members[ip].role == "primary" => {
                let s = spec(
                    format!("member/{ip}/remove"),
                    "member-remove",
                    vec![ip.clone()],
                    Class::Manual,
                    true,
                    phase::REMOVE_MEMBER,
                    String::new(),
                );
                b.push(s, vec![], Some("refused: this host is the declared primary; removing it deletes the cluster's DCS metadata and backups. Switch over, commit the new pg_role, then remove it".into()));
            }
            Op::Delete => {
                let old_limit = cluster_limit(old);
                let s = spec(
                    format!("member/{ip}/remove"),
                    "member-remove",
                    vec![ip.clone()],
                    Class::Destructive,
                    true,
                    phase::REMOVE_MEMBER,
                    pigsty(
                        "pgsql-rm",
                        &limit_hosts(std::slice::from_ref(ip), &old_limit),
                        &[],
                    ),
                );
                b.push(
                    s,
                    steps::not_native("removing an instance"),
                    Some("stops the instance and deletes its data".into()),
                );
                removed_members.push(ip.clone());
            }
            _ => {
                for f in &c.fields {
                    if SERVICE_VARS.contains(&f.as_str()) {
                        refresh_services.insert(f.clone());
                    } else {
                        let s = spec(
                            format!("member/{ip}/{f}"),
                            "member-identity",
                            vec![ip.clone()],
                            Class::Manual,
                            false,
                            phase::MEMBER,
                            String::new(),
                        );
                        b.push(s, vec![], Some(format!("`{f}` is an instance identity or bootstrap setting; it cannot change in place")));
                    }
                }
            }
        }
    }
    super::objects::plan(b, name, &limit, new, changes);
    hba(b, name, &limit, new, changes);
    for c in changes {
        match c.entity {
            Entity::Service => {
                refresh_services.insert(format!("service {}", c.name));
            }
            Entity::Var if SERVICE_VARS.contains(&c.name.as_str()) => {
                refresh_services.insert(c.name.clone());
            }
            _ => {}
        }
    }
    if !refresh_services.is_empty() || !removed_members.is_empty() {
        // New members get their services when they are bootstrapped; refresh the others.
        let hosts: Vec<String> = new
            .members
            .keys()
            .filter(|h| !added_members.contains(h))
            .cloned()
            .collect();
        let target = limit_except(&limit, &added_members);
        let after_removal = !removed_members.is_empty();
        let ph = if after_removal {
            phase::AFTER_REMOVAL
        } else {
            phase::SERVICE
        };
        let mut s = spec(
            "service/refresh".into(),
            "service-refresh",
            hosts,
            Class::Reload,
            after_removal,
            ph,
            pigsty("pgsql", &target, &["-t", "pg_service"]),
        );
        s.reads_old = false;
        let why: Vec<String> = refresh_services
            .into_iter()
            .chain(
                removed_members
                    .iter()
                    .map(|m| format!("member {m} removed")),
            )
            .collect();
        b.push(s, vec!["render /etc/haproxy/conf.d/<cluster>-*.cfg, haproxy -c, reload haproxy (native executor: services come with the HAProxy issue)".into()], Some(format!("because of: {}", why.join(", "))));
    }
    parameters(b, name, &limit, changes);
    super::vars::plan(b, Module::Pgsql, name, Some(&limit), changes);
}

fn hba(b: &mut Builder, name: &str, limit: &str, new: &PgCluster, changes: &[&Change]) {
    let hba: Vec<&&Change> = changes.iter().filter(|c| c.entity == Entity::Hba).collect();
    if hba.is_empty() {
        return;
    }
    let hosts: BTreeSet<String> = hba.iter().flat_map(|c| c.hosts.iter().cloned()).collect();
    let hosts: Vec<String> = hosts.into_iter().collect();
    let target = if hosts.len() == new.members.len() {
        limit.to_string()
    } else {
        limit_hosts(&hosts, limit)
    };
    let causes: BTreeSet<&String> = hba.iter().flat_map(|c| c.fields.iter()).collect();
    let files: Vec<&str> = hba.iter().map(|c| c.name.as_str()).collect();
    let spec = Spec {
        module: Module::Pgsql,
        cluster: name,
        path: "hba/reload".into(),
        kind: "hba-reload",
        hosts,
        class: Class::Reload,
        removal: false,
        reads_old: false,
        phase: phase::HBA,
        pigsty: pigsty(
            "pgsql",
            &target,
            &["-t", "pg_hba,pg_reload,pgbouncer_hba,pgbouncer_reload"],
        ),
    };
    let why = causes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    b.push(
        spec,
        steps::hba(&files),
        (!why.is_empty()).then(|| format!("changed: {why}")),
    );
}

fn parameters(b: &mut Builder, name: &str, limit: &str, changes: &[&Change]) {
    let params: Vec<&&Change> = changes
        .iter()
        .filter(|c| c.entity == Entity::Parameter)
        .collect();
    if params.is_empty() {
        return;
    }
    let hosts: BTreeSet<String> = params
        .iter()
        .flat_map(|c| c.hosts.iter().cloned())
        .collect();
    let restart: Vec<&str> = params
        .iter()
        .filter(|c| parameter_needs_restart(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    let class = if restart.is_empty() {
        Class::Reload
    } else {
        Class::Restart
    };
    let spec = Spec {
        module: Module::Pgsql,
        cluster: name,
        path: "parameters/apply".into(),
        kind: "parameters-apply",
        hosts: hosts.into_iter().collect(),
        class,
        removal: false,
        reads_old: false,
        phase: phase::PARAMETER,
        pigsty: pigsty("pgsql", limit, &["-t", "pg_param,pg_reload"]),
    };
    let names: Vec<&str> = params.iter().map(|c| c.name.as_str()).collect();
    let reason = (!restart.is_empty())
        .then(|| format!("needs a restart to take effect: {}", restart.join(", ")));
    b.push(spec, steps::parameters(&names), reason);
}
