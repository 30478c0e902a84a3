//! Validation: what Pigsty's `bin/validate` and the `pg_id` asserts check, and a little more.
//!
//! In: the resolved tree and model. Out: diagnostics, split into errors (the inventory is refused
//! whole) and warnings (reported, applied anyway). Each names the YAML node it is about.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde_yaml_ng::Value;

use super::ansible::Tree;
use super::diag::{Diagnostic, Severity};
use super::model::{group_module, Model, Named};
use super::positions::Seg;
use super::{HostVars, Origin, Var};
use crate::render::hba::{check_rule, Target};

struct Out(Vec<Diagnostic>);

impl Out {
    fn at(&mut self, sev: Severity, origin: &Origin, msg: String) {
        self.0
            .push(Diagnostic::new(sev, &origin.file, origin.path.clone(), msg));
    }
    fn err(&mut self, origin: &Origin, msg: String) {
        self.at(Severity::Error, origin, msg)
    }
    fn warn(&mut self, origin: &Origin, msg: String) {
        self.at(Severity::Warning, origin, msg)
    }
    /// Reports against a host's entry when the variable is missing.
    fn missing(&mut self, tree: &Tree, host: &str, msg: String) {
        let origin = tree.hosts[host]
            .origin
            .clone()
            .expect("hosts have an origin");
        self.err(&origin, msg)
    }
}

fn field_origin(base: &Named, field: &str) -> Origin {
    let base = base.origin();
    let mut path = base.path;
    path.push(Seg::Key(field.to_string()));
    Origin {
        file: base.file,
        path,
    }
}

pub fn validate(tree: &Tree, model: &Model) -> Vec<Diagnostic> {
    let mut out = Out(Vec::new());
    check_globals(tree, &mut out);
    check_hosts_and_groups(tree, &mut out);
    check_pgsql(tree, model, &mut out);
    check_seqs(tree, model, &mut out);
    out.0
}

fn is_ipv4(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok()
}

fn check_globals(tree: &Tree, out: &mut Out) {
    let root = Origin {
        file: tree
            .groups
            .get("all")
            .and_then(|g| g.origin.as_ref())
            .map(|o| o.file.clone())
            .unwrap_or_default(),
        path: vec![Seg::Key("all".into())],
    };
    match tree.all_vars.get("admin_ip") {
        None => out.err(
            &root,
            "`all.vars.admin_ip` is required (the admin node's IPv4 address)".into(),
        ),
        Some(v) if !v.value.as_str().is_some_and(is_ipv4) => {
            out.err(&v.origin, "`admin_ip` must be an IPv4 address".into())
        }
        _ => {}
    }
    if let Some(v) = tree.all_vars.get("minio_cluster") {
        out.err(&v.origin, "`minio_cluster` must not be set in `all.vars`: it would make every host a MinIO node; set it on the minio group".into());
    }
}

fn check_hosts_and_groups(tree: &Tree, out: &mut Out) {
    for (name, host) in &tree.hosts {
        let origin = host.origin.as_deref().expect("hosts have an origin");
        if !is_ipv4(name) {
            if host.vars.contains_key("ansible_host") {
                out.warn(origin, format!("host key {name:?} is not an IPv4 address; Pigsty uses the host key as the node IP in HBA, HAProxy and Patroni"));
            } else {
                out.err(origin, format!("host key {name:?} must be an IPv4 address (or set `ansible_host` to reach it)"));
            }
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for g in &host.groups {
            let Some(module) = group_module(g, &tree.groups[g].vars) else {
                continue;
            };
            if let Some(first) = seen.insert(module, g) {
                out.err(origin, format!("host {name:?} is in two {module} groups, `{first}` and `{g}`; a host belongs to at most one cluster per module"));
            }
        }
    }
    for (gname, g) in &tree.groups {
        if let Some(v) = g.vars.get("pg_cluster") {
            if v.value.as_str().is_some_and(|c| c != gname) && !g.hosts.is_empty() {
                out.warn(&v.origin, format!("group `{gname}` sets a different `pg_cluster`; by convention the group is named after the cluster"));
            }
        }
    }
}

fn check_pgsql(tree: &Tree, model: &Model, out: &mut Out) {
    let re_ok =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    for (name, cluster) in &model.pgsql {
        let any_host = cluster
            .members
            .keys()
            .next()
            .expect("a cluster has a member");
        let cvar = tree.hosts[any_host]
            .vars
            .get("pg_cluster")
            .expect("members have pg_cluster");
        if !re_ok(name) || name == "root" {
            out.err(
                &cvar.origin,
                format!("pg_cluster {name:?} must match ^[A-Za-z0-9-]+$ and must not be `root`"),
            );
        }
        let primaries: Vec<&String> = cluster
            .members
            .values()
            .filter(|m| m.role == "primary")
            .map(|m| &m.host)
            .collect();
        for (host, m) in &cluster.members {
            let vars = &tree.hosts[host].vars;
            match vars.get("pg_role") {
                None => out.missing(
                    tree,
                    host,
                    format!("member {host} of {name} needs `pg_role`"),
                ),
                Some(v)
                    if !matches!(
                        m.role.as_str(),
                        "primary" | "replica" | "standby" | "offline" | "delayed"
                    ) =>
                {
                    out.err(
                        &v.origin,
                        "`pg_role` must be one of primary, replica, standby, offline, delayed"
                            .into(),
                    )
                }
                _ => {}
            }
        }
        if primaries.len() != 1 {
            let o = &cvar.origin;
            out.err(
                o,
                format!(
                    "cluster {name} must have exactly one member with `pg_role: primary`, found {}",
                    primaries.len()
                ),
            );
        }
        let Some(p) = &cluster.primary else { continue };
        let vars = &tree.hosts[p].vars;
        check_users(&cluster.users, out);
        check_databases(&cluster.databases, out);
        check_services(&cluster.services, out);
        for (key, target) in [
            ("pg_default_hba_rules", Target::Postgres),
            ("pg_hba_rules", Target::Postgres),
            ("pgb_default_hba_rules", Target::Pgbouncer),
            ("pgb_hba_rules", Target::Pgbouncer),
        ] {
            check_hba(vars, key, target, out);
        }
        let _ = primaries;
    }
}

const USER_BOOLS: &[&str] = &[
    "login",
    "superuser",
    "createdb",
    "createrole",
    "inherit",
    "replication",
    "bypassrls",
    "pgbouncer",
];
const USER_INTS: &[&str] = &["connlimit", "expire_in", "pool_connlimit"];
const USER_FIELDS: &[&str] = &[
    "name",
    "state",
    "password",
    "expire_at",
    "comment",
    "roles",
    "parameters",
    "pool_mode",
    "search_path",
    "admin",
];

fn check_users(users: &[Named], out: &mut Out) {
    for u in users {
        let valid = u.name.len() <= 63
            && u.name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && u.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_@.-".contains(&b));
        if !valid {
            out.err(
                &field_origin(u, "name"),
                format!(
                    "user name {:?} must match ^[a-z_][a-z0-9_@.-]{{0,62}}$",
                    u.name
                ),
            );
        }
        if u.name == "postgres" {
            out.err(
                &field_origin(u, "name"),
                "the user `postgres` is managed by Pigsty itself and cannot be a pg_users entry"
                    .into(),
            );
        }
        check_fields(u, USER_BOOLS, USER_INTS, USER_FIELDS, out);
        check_state(u, &["create", "absent"], out);
        if let Some(Value::Sequence(roles)) = u.def().get("roles") {
            for (i, r) in roles.iter().enumerate() {
                let ok = r.is_string() || r.get("name").is_some_and(Value::is_string);
                if !ok {
                    let mut o = field_origin(u, "roles");
                    o.path.push(Seg::Index(i));
                    out.err(
                        &o,
                        "a `roles` entry must be a role name or a mapping with a `name`".into(),
                    );
                }
            }
        } else if u.def().get("roles").is_some_and(|r| !r.is_null()) {
            out.err(&field_origin(u, "roles"), "`roles` must be a list".into());
        }
        if let Some(p) = u
            .def()
            .get("parameters")
            .filter(|p| !p.is_null() && !p.is_mapping())
        {
            let _ = p;
            out.err(
                &field_origin(u, "parameters"),
                "`parameters` must be a mapping".into(),
            );
        }
    }
}

const DB_BOOLS: &[&str] = &[
    "is_template",
    "allowconn",
    "revokeconn",
    "pgbouncer",
    "register_datasource",
];
const DB_INTS: &[&str] = &[
    "connlimit",
    "pool_size",
    "pool_size_min",
    "pool_reserve",
    "pool_connlimit",
];
const DB_FIELDS: &[&str] = &[
    "name",
    "state",
    "owner",
    "template",
    "strategy",
    "encoding",
    "locale",
    "lc_collate",
    "lc_ctype",
    "locale_provider",
    "icu_locale",
    "icu_rules",
    "builtin_locale",
    "tablespace",
    "parameters",
    "comment",
    "schemas",
    "extensions",
    "baseline",
    "pool_mode",
    "pool_auth_user",
];

fn check_databases(dbs: &[Named], out: &mut Out) {
    for d in dbs {
        let ok = d.name.len() <= 63
            && d.name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && d.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'-');
        if !ok {
            out.warn(
                &field_origin(d, "name"),
                format!(
                    "database name {:?} does not match ^[A-Za-z_][A-Za-z0-9_$-]{{0,62}}$",
                    d.name
                ),
            );
        }
        check_fields(d, DB_BOOLS, DB_INTS, DB_FIELDS, out);
        check_state(d, &["create", "absent", "recreate"], out);
        for list in ["schemas", "extensions"] {
            match d.def().get(list) {
                None | Some(Value::Null) | Some(Value::Sequence(_)) => {}
                Some(_) => out.err(&field_origin(d, list), format!("`{list}` must be a list")),
            }
        }
    }
}

fn check_fields(n: &Named, bools: &[&str], ints: &[&str], known: &[&str], out: &mut Out) {
    let Some(map) = n.def().as_mapping() else {
        return;
    };
    for (k, v) in map {
        let Some(key) = k.as_str() else { continue };
        let at = || field_origin(n, key);
        if v.is_null() {
            continue;
        }
        if bools.contains(&key) && !v.is_bool() {
            out.err(&at(), format!("`{key}` must be true or false"));
        } else if ints.contains(&key) && !v.is_i64() {
            out.err(&at(), format!("`{key}` must be an integer"));
        } else if key == "password" && !v.is_string() {
            out.err(&at(), "`password` must be a string (quote it)".into());
        } else if !bools.contains(&key) && !ints.contains(&key) && !known.contains(&key) {
            out.warn(
                &at(),
                format!("unknown field `{key}`; it is kept and diffed but Pigsty ignores it"),
            );
        }
    }
}

fn check_state(n: &Named, allowed: &[&str], out: &mut Out) {
    if let Some(s) = n.def().get("state").filter(|s| !s.is_null()) {
        if !s.as_str().is_some_and(|s| allowed.contains(&s)) {
            out.warn(
                &field_origin(n, "state"),
                format!(
                    "`state` should be one of {}; any other value does nothing",
                    allowed.join(", ")
                ),
            );
        }
    }
}

fn check_services(services: &[Named], out: &mut Out) {
    let mut ports: BTreeMap<i64, &str> = BTreeMap::new();
    for s in services {
        for f in ["port", "selector"] {
            if s.def().get(f).is_none_or(Value::is_null) {
                out.err(&s.origin(), format!("service {:?} needs `{f}`", s.name));
            }
        }
        if let Some(p) = s.def().get("port").and_then(Value::as_i64) {
            if let Some(other) = ports.insert(p, &s.name) {
                out.err(
                    &field_origin(s, "port"),
                    format!(
                        "service {:?} uses port {p}, already used by {other:?}",
                        s.name
                    ),
                );
            }
        }
    }
}

fn check_hba(vars: &HostVars, key: &str, target: Target, out: &mut Out) {
    let Some(Var { value, origin }) = vars.get(key) else {
        return;
    };
    let Some(rules) = value.as_sequence() else {
        if !value.is_null() {
            out.err(origin, format!("`{key}` must be a list of rules"));
        }
        return;
    };
    for (i, rule) in rules.iter().enumerate() {
        let mut o = (**origin).clone();
        o.path.push(Seg::Index(i));
        if let Err(msg) = check_rule(rule, target) {
            out.err(&o, msg);
        } else if rule.get("title").is_none() {
            out.warn(&o, format!("`{key}` rule without a `title`"));
        }
    }
}

/// `*_seq` identities: required, non-negative integers, unique within the cluster.
fn check_seqs(tree: &Tree, model: &Model, out: &mut Out) {
    let mut groups: Vec<(String, &str, Vec<&String>)> = Vec::new();
    for c in model.pgsql.values() {
        groups.push((c.name.clone(), "pg_seq", c.members.keys().collect()));
    }
    for c in model.etcd.values() {
        groups.push((c.name.clone(), "etcd_seq", c.members.keys().collect()));
    }
    for c in model.minio.values() {
        groups.push((c.name.clone(), "minio_seq", c.members.keys().collect()));
    }
    for c in model.redis.values() {
        groups.push((c.name.clone(), "redis_node", c.nodes.keys().collect()));
        for host in c.nodes.keys() {
            if let Some(v) = tree.hosts[host]
                .vars
                .get("redis_fs_main")
                .filter(|v| v.value.as_str() == Some("/data"))
            {
                out.warn(&v.origin, "`redis_fs_main` is `/data` itself; Pigsty v4.5 refuses that (use a subdirectory such as /data/redis)".into());
            }
        }
    }
    if let Some(c) = &model.infra {
        groups.push(("infra".into(), "infra_seq", c.members.keys().collect()));
    }
    for (cluster, var, hosts) in groups {
        let mut seen: BTreeSet<i64> = BTreeSet::new();
        for host in hosts {
            match tree.hosts[host].vars.get(var) {
                None => out.missing(
                    tree,
                    host,
                    format!("host {host} of {cluster} needs `{var}`"),
                ),
                Some(v) => match v.value.as_i64() {
                    Some(n) if n >= 0 => {
                        if !seen.insert(n) {
                            out.err(&v.origin, format!("`{var}` {n} is used twice in {cluster}"));
                        }
                    }
                    _ => out.err(&v.origin, format!("`{var}` must be a non-negative integer")),
                },
            }
        }
    }
}
