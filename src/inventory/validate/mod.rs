//! Validation: what Pigsty's `bin/validate` and the `pg_id` asserts check, and a little more.
//!
//! In: the resolved tree and model. Out: diagnostics, split into errors (the inventory is refused
//! whole) and warnings (reported, applied anyway). Each names the YAML node it is about. This
//! file checks the fleet's shape (globals, host keys, group membership, identities);
//! [`entries`] checks the entries of PGSQL clusters (users, databases, services, HBA rules).

mod entries;
mod host;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::ansible::Tree;
use super::diag::{Diagnostic, Severity};
use super::model::{pg_version_var, port_var, Model, PgCluster};
use super::module::group_module;
use super::named::named_list;
use super::positions::Seg;
use super::reuse::Reuse;
use super::Origin;
use crate::inventory::hba_rule::Target;

pub(super) struct Out(Vec<Diagnostic>);

impl Out {
    fn at(&mut self, sev: Severity, origin: &Origin, msg: String) {
        self.0
            .push(Diagnostic::new(sev, &origin.file, origin.path.clone(), msg));
    }
    pub(super) fn err(&mut self, origin: &Origin, msg: String) {
        self.at(Severity::Error, origin, msg)
    }
    pub(super) fn warn(&mut self, origin: &Origin, msg: String) {
        self.at(Severity::Warning, origin, msg)
    }
    /// A warning that holds only if the node is written unquoted (see `Diagnostic::only_if_plain`).
    fn warn_if_plain(&mut self, origin: &Origin, msg: String) {
        let mut d = Diagnostic::new(Severity::Warning, &origin.file, origin.path.clone(), msg);
        d.only_if_plain = true;
        self.0.push(d);
    }
    /// An error from a typed value check, with its quoting hint.
    fn problem(&mut self, origin: &Origin, p: values::Problem) {
        let mut path = origin.path.clone();
        path.extend(p.inner);
        let mut d = Diagnostic::new(Severity::Error, &origin.file, path, p.message);
        d.quote_hint = p.quote_hint;
        self.0.push(d);
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

pub fn validate(tree: &Tree, model: &Model) -> Vec<Diagnostic> {
    validate_with(tree, model, &Reuse::none())
}

/// [`validate`], sharing the checks of PGSQL clusters with another revision ([`Reuse`]).
pub fn validate_with(tree: &Tree, model: &Model, reuse: &Reuse) -> Vec<Diagnostic> {
    let mut out = Out(Vec::new());
    check_globals(tree, &mut out);
    check_hosts_and_groups(tree, &mut out);
    host::check_layers(tree, &mut out);
    check_pgsql(tree, model, reuse, &mut out);
    check_seqs(tree, model, &mut out);
    out.0
}

fn is_ipv4(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok()
}

fn check_globals(tree: &Tree, out: &mut Out) {
    // Without an `all` group the document itself was refused, at its first line.
    let Some(all) = tree.groups.get("all").and_then(|g| g.origin.as_ref()) else {
        return;
    };
    let root = Origin {
        file: all.file.clone(),
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
    // A value set on a group is shared by its hosts' effective variables: checked once.
    let mut checked = std::collections::HashSet::new();
    for (name, host) in &tree.hosts {
        let origin = host.origin.as_deref().expect("hosts have an origin");
        if !is_ipv4(name) {
            if let Some(why) = host::address_in_hba(tree, host) {
                out.err(
                    origin,
                    format!(
                        "host key {} must be an IP address: {why}",
                        values::shown(name)
                    ),
                );
            } else if host.vars.contains_key("ansible_host") {
                out.warn(origin, format!("host key {name:?} is not an IPv4 address; Pigsty uses the host key as the node IP in HBA, HAProxy and Patroni"));
            } else {
                out.err(origin, format!("host key {name:?} must be an IPv4 address (or set `ansible_host` to reach it)"));
            }
        }
        // These reach ssh as its destination and login: never let one read as an ssh option.
        for key in ["ansible_host", "ansible_user"] {
            if let Some(v) = host.vars.get(key) {
                let ok = v.value.as_str().is_some_and(|s| {
                    !s.is_empty()
                        && !s.starts_with('-')
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
                });
                if !ok {
                    out.err(&v.origin, format!("`{key}` must be a host name, an address or a user name (letters, digits, `.`, `_`, `:`, `-`; not starting with `-`)"));
                }
            }
        }
        for key in ["ansible_port", "pg_port"] {
            let Some(v) = host.vars.get(key) else {
                continue;
            };
            if !checked.insert(std::sync::Arc::as_ptr(&v.value)) {
                continue;
            }
            if let Err(e) = port_var(&host.vars, key) {
                out.err(&v.origin, e);
            }
        }
        let params = host.vars.get("pg_parameters");
        if let Some(v) = params.filter(|v| checked.insert(std::sync::Arc::as_ptr(&v.value))) {
            // `ALTER SYSTEM`: anything but a mapping would read as "no parameters" and reset
            // every parameter the cluster has.
            let list = &crate::inventory::fields::LIST_GUCS;
            if let Err(p) = values::parameters("pg_parameters", &v.value, list) {
                out.problem(&v.origin, p);
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

/// Each PGSQL cluster's checks (shared with the other revision of a pair, see [`Reuse`]), in
/// cluster name order.
fn check_pgsql(tree: &Tree, model: &Model, reuse: &Reuse, out: &mut Out) {
    let names: Vec<&str> = model.pgsql.keys().map(String::as_str).collect();
    let checked = reuse.checks(&names, |name| {
        let mut out = Out(Vec::new());
        check_cluster(tree, name, &model.pgsql[name], &mut out);
        out.0
    });
    out.0.extend(checked.into_iter().flatten());
}

fn check_cluster(tree: &Tree, name: &str, cluster: &PgCluster, out: &mut Out) {
    let re_ok =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    {
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
        let Some(p) = &cluster.primary else { return };
        let vars = &tree.hosts[p].vars;
        entries::check_users(&cluster.users, out);
        // `pg_default_roles` entries are rendered by the same SQL as users: the same fields.
        let mut listed = Vec::new();
        let roles = named_list(vars, &["pg_default_roles"], &mut listed);
        out.0.extend(listed);
        entries::check_default_roles(&roles, out);
        let pg_major = pg_version_var(vars).unwrap_or(17);
        entries::check_databases(&cluster.databases, pg_major, out);
        entries::check_services(&cluster.services, out);
        // HBA files are rendered for every member from its own effective variables: check each
        // rule list a member sees, once.
        let mut seen = BTreeSet::new();
        for host in cluster.members.keys() {
            let vars = &tree.hosts[host].vars;
            for (key, target) in [
                ("pg_default_hba_rules", Target::Postgres),
                ("pg_hba_rules", Target::Postgres),
                ("pgb_default_hba_rules", Target::Pgbouncer),
                ("pgb_hba_rules", Target::Pgbouncer),
            ] {
                let Some(v) = vars.get(key) else { continue };
                if seen.insert(std::sync::Arc::as_ptr(&v.value)) {
                    entries::check_hba(vars, key, target, out);
                }
            }
        }
        for (origin, msg) in crate::inventory::defaults::check(vars) {
            out.err(&origin, msg);
        }
        let _ = primaries;
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

#[cfg(test)]
mod tests;
