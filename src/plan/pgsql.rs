//! PGSQL actions: clusters, members, users, databases, HBA, services, parameters, variables.

use std::collections::BTreeSet;

use super::catalog::{parameter_needs_restart, SERVICE_VARS};
use super::{limit_hosts, phase, steps, Builder, Class, Spec};
use crate::diff::named::state;
use crate::diff::{Change, Entity, Op};
use crate::inventory::fields;
use crate::inventory::model::{Module, PgCluster};
use crate::inventory::Inventory;

/// The `-l` limit naming a cluster: its group when one holds exactly its members, else the IPs.
pub fn cluster_limit(c: &PgCluster) -> String {
    if c.groups.contains(&c.name) {
        return c.name.clone();
    }
    match c.groups.iter().next() {
        Some(g) => g.clone(),
        None => format!(
            "'{}'",
            c.members.keys().cloned().collect::<Vec<_>>().join(",")
        ),
    }
}

/// `'<limit>,!ip1,!ip2'`: the limit without some hosts.
fn limit_except(limit: &str, hosts: &[String]) -> String {
    if hosts.is_empty() {
        return limit.to_string();
    }
    let excluded: Vec<String> = hosts.iter().map(|h| format!("!{h}")).collect();
    format!("'{},{}'", limit.trim_matches('\''), excluded.join(","))
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
                format!("./pgsql-rm.yml -l {limit}"),
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
                format!("./pgsql.yml -l {limit}"),
            );
            b.push(s, steps::not_native("bootstrapping a new cluster"), None);
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
                    format!(
                        "./pgsql.yml -l {}",
                        limit_hosts(std::slice::from_ref(ip), &limit)
                    ),
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
                    format!(
                        "./pgsql-rm.yml -l {}",
                        limit_hosts(std::slice::from_ref(ip), &old_limit)
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
    users_and_databases(b, name, &limit, new, changes);
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
            format!("./pgsql.yml -l {target} -t pg_service"),
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

fn users_and_databases(
    b: &mut Builder,
    name: &str,
    limit: &str,
    new: &PgCluster,
    changes: &[&Change],
) {
    let spec = |path: String, kind, class, removal, phase, pigsty: String| Spec {
        module: Module::Pgsql,
        cluster: name,
        path,
        kind,
        hosts: new.primary.iter().cloned().collect(),
        class,
        removal,
        reads_old: false,
        phase,
        pigsty,
    };
    for c in ordered_users(changes, new) {
        let cmd = format!("./pgsql-user.yml -l {limit} -e username={}", c.name);
        match c.op {
            Op::Unmanaged => b.warn(name, format!("user {} was removed from the inventory without `state: absent`: left in place (unmanaged)", c.name)),
            Op::Delete => {
                let s = spec(format!("user/{}/drop", c.name), "user-drop", Class::Online, true, phase::DROP_USER, cmd);
                b.push(s, steps::user_drop(b.new, new, &c.name), None);
            }
            op => {
                let verb = if op == Op::Create { "create" } else { "update" };
                let s = spec(format!("user/{}/{verb}", c.name), if op == Op::Create { "user-create" } else { "user-update" }, Class::Online, false, phase::USER, cmd);
                b.push(s, steps::user_upsert(b.new, new, &c.name), None);
            }
        }
    }
    for c in changes.iter().filter(|c| c.entity == Entity::Database) {
        let cmd = format!("./pgsql-db.yml -l {limit} -e dbname={}", c.name);
        let def = c.new.as_ref();
        let st = def.map(state).unwrap_or("create");
        match c.op {
            Op::Unmanaged => b.warn(name, format!("database {} was removed from the inventory without `state: absent`: left in place (unmanaged)", c.name)),
            Op::Delete => {
                let s = spec(format!("database/{}/drop", c.name), "database-drop", Class::Destructive, true, phase::DROP_DATABASE, cmd);
                b.push(s, steps::database_drop(b.new, new, &c.name), Some("drops the database and all its data".into()));
            }
            _ if st == "recreate" => {
                let s = spec(format!("database/{}/recreate", c.name), "database-recreate", Class::Destructive, false, phase::DATABASE, cmd);
                b.push(s, steps::database_recreate(b.new, new, &c.name), Some("drops and creates the database again: all its data is lost; applied once for this commit, never re-applied".into()));
            }
            op => {
                let create_only: Vec<&String> = c.fields.iter().filter(|f| fields::DB_CREATE_ONLY.contains(&f.as_str())).collect();
                if op == Op::Update && !create_only.is_empty() {
                    let list = create_only.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ");
                    let s = spec(format!("database/{}/create-options", c.name), "database-create-options", Class::Manual, false, phase::DATABASE, String::new());
                    b.push(s, vec![], Some(format!("{list} can only be set by CREATE DATABASE; use `state: recreate` (destructive) or migrate by hand")));
                }
                let dropping = def.is_some_and(drops_schema_or_extension) && !c.old.as_ref().is_some_and(drops_schema_or_extension_same(def));
                let class = if dropping { Class::Destructive } else { Class::Online };
                let verb = if op == Op::Create { "create" } else { "update" };
                let s = spec(format!("database/{}/{verb}", c.name), if op == Op::Create { "database-create" } else { "database-update" }, class, false, phase::DATABASE, cmd);
                let reason = dropping.then(|| "drops a schema or extension (CASCADE)".to_string());
                b.push(s, steps::database_upsert(b.new, new, &c.name), reason);
                if def.is_some_and(|d| d.get("baseline").is_some_and(|v| !v.is_null())) {
                    b.warn(name, format!("database {} has a `baseline`: Pigsty re-runs it on every pgsql-db run", c.name));
                }
            }
        }
    }
}

/// The `state: absent` schemas and extensions of a database definition.
fn absent_items(def: &serde_yaml_ng::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for list in ["schemas", "extensions"] {
        for item in def
            .get(list)
            .and_then(|v| v.as_sequence())
            .into_iter()
            .flatten()
        {
            if item.get("state").and_then(|s| s.as_str()) == Some("absent") {
                if let Some(n) = item.get("name").and_then(|n| n.as_str()) {
                    out.insert(format!("{list}/{n}"));
                }
            }
        }
    }
    out
}

fn drops_schema_or_extension(def: &serde_yaml_ng::Value) -> bool {
    !absent_items(def).is_empty()
}

/// True when the old definition already dropped exactly the same items (nothing new to drop).
fn drops_schema_or_extension_same(
    new: Option<&serde_yaml_ng::Value>,
) -> impl Fn(&serde_yaml_ng::Value) -> bool + '_ {
    move |old| new.is_some_and(|n| absent_items(n).is_subset(&absent_items(old)))
}

/// User changes in an order where a role granted to a user comes first.
fn ordered_users<'c>(changes: &[&'c Change], cluster: &PgCluster) -> Vec<&'c Change> {
    let users: Vec<&Change> = changes
        .iter()
        .copied()
        .filter(|c| c.entity == Entity::User)
        .collect();
    let position = |name: &str| {
        cluster
            .users
            .iter()
            .position(|u| u.name == name)
            .unwrap_or(usize::MAX)
    };
    let mut out: Vec<&Change> = Vec::new();
    fn visit<'c>(c: &'c Change, users: &[&'c Change], out: &mut Vec<&'c Change>, depth: usize) {
        if out.iter().any(|o| std::ptr::eq(*o, c)) || depth > users.len() {
            return;
        }
        for role in c
            .new
            .as_ref()
            .and_then(|d| d.get("roles"))
            .and_then(|r| r.as_sequence())
            .into_iter()
            .flatten()
        {
            let rname = role
                .as_str()
                .or_else(|| role.get("name").and_then(|n| n.as_str()));
            if let Some(dep) = users
                .iter()
                .find(|u| Some(u.name.as_str()) == rname && u.op != Op::Delete)
            {
                visit(dep, users, out, depth + 1);
            }
        }
        out.push(c);
    }
    let mut sorted = users.clone();
    sorted.sort_by_key(|c| position(&c.name));
    for c in &sorted {
        visit(c, &users, &mut out, 0);
    }
    out
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
        pigsty: format!(
            "./pgsql.yml -l {target} -t pg_hba,pg_reload,pgbouncer_hba,pgbouncer_reload"
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
        pigsty: format!("./pgsql.yml -l {limit} -t pg_param,pg_reload"),
    };
    let names: Vec<&str> = params.iter().map(|c| c.name.as_str()).collect();
    let reason = (!restart.is_empty())
        .then(|| format!("needs a restart to take effect: {}", restart.join(", ")));
    b.push(spec, steps::parameters(&names), reason);
}
