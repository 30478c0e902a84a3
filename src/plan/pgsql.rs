//! PGSQL actions: clusters, members, users, databases, HBA, services, parameters, variables.

use std::collections::BTreeSet;

use super::catalog::{parameter_needs_restart, patroni_pins, SERVICE_VARS};
use super::{
    limit_hosts, Action, Builder, Class, Delegated, HbaFile, HbaStep, Manual, Order, ParamStep,
    Phase, Playbook, RemovalPhase, Step,
};
use crate::diff::{Change, Entity, Op};
use crate::inventory::model::PgCluster;
use crate::inventory::module::Module;
use crate::inventory::Inventory;
use crate::render::patroni::etcd_hosts;

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

fn act(name: &str, step: Step, class: Class, order: Order) -> Action {
    Action::new(Module::Pgsql, name, step, class, order)
}

pub fn plan(b: &mut Builder, name: &str, changes: &[&Change]) {
    if let Some(c) = changes.iter().find(|c| c.entity == Entity::Cluster) {
        if c.op != Op::Create {
            let old = cluster(b.old, name).expect("a removed cluster is in the old inventory");
            let step = Step::Delegated(Delegated::ClusterRemove { name: name.into() });
            let a = act(
                name,
                step,
                Class::Destructive,
                Order::Remove(RemovalPhase::RemoveCluster),
            );
            let a = a.hosts(c.hosts.clone()).reads_old();
            let a = a.pigsty(Playbook::new("pgsql-rm", &cluster_limit(old), &[]));
            b.push(a.reason("removes data, backups and DCS metadata of every member; refused when `pg_safeguard` is set for any member"));
            return;
        }
        let new = cluster(b.new, name).expect("a created cluster is in the new inventory");
        let limit = cluster_limit(new);
        let step = Step::ClusterRunning { name: name.into() };
        let a = act(name, step, Class::Online, Order::Create(Phase::Cluster));
        b.push(
            a.hosts(c.hosts.clone())
                .pigsty(Playbook::new("pgsql", &limit, &[])),
        );
        // Pigsty creates the cluster's objects while bootstrapping; natively they are
        // converged on the running members by these actions.
        super::defaults::plan(b, name, new, "first contact with this cluster");
        super::defaults::templates(b, name, new);
        super::objects::plan(b, name, &limit, new, changes);
        hba(b, name, &limit, new, changes);
        super::pgbouncer_life::plan(b, name, &limit, new, changes, true);
        super::pgbouncer::plan(
            b,
            name,
            new,
            changes,
            Some("first contact with this cluster"),
        );
        parameters(b, name, &limit, changes);
        super::services::created(b, new, c.hosts.clone());
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
    switchover(b, name, old, new);
    let remove = Order::Remove(RemovalPhase::RemoveMember);
    for c in members {
        let ip = &c.name;
        let one = vec![ip.clone()];
        match c.op {
            Op::Create => {
                let step = Step::Delegated(Delegated::MemberAdd { ip: ip.clone() });
                let a = act(name, step, Class::Online, Order::Create(Phase::Member)).hosts(one);
                b.push(a.pigsty(Playbook::new(
                    "pgsql",
                    &limit_hosts(std::slice::from_ref(ip), &limit),
                    &[],
                )));
                refresh_services.insert(format!("member {ip} added"));
                added_members.push(ip.clone());
            }
            Op::Delete if old.members[ip].role == "primary" => {
                let step = Step::Manual(Manual::PrimaryRemoval { ip: ip.clone() });
                let a = act(name, step, Class::Manual, remove)
                    .hosts(one)
                    .reads_old();
                b.push(a.reason("refused: this host is the declared primary; removing it deletes the cluster's DCS metadata and backups. Switch over, commit the new pg_role, then remove it"));
            }
            Op::Delete => {
                let step = Step::Delegated(Delegated::MemberRemove { ip: ip.clone() });
                let a = act(name, step, Class::Destructive, remove)
                    .hosts(one)
                    .reads_old();
                let limit = limit_hosts(std::slice::from_ref(ip), &cluster_limit(old));
                b.push(
                    a.pigsty(Playbook::new("pgsql-rm", &limit, &[]))
                        .reason("stops the instance and deregisters it; deletes its data unless `pg_rm_data: false`; refused when `pg_safeguard` is set or the host is the live leader"),
                );
                removed_members.push(ip.clone());
            }
            _ => {
                for f in &c.fields {
                    if SERVICE_VARS.contains(&f.as_str()) {
                        refresh_services.insert(f.clone());
                        continue;
                    }
                    let step = Step::Manual(Manual::MemberVar {
                        ip: ip.clone(),
                        var: f.clone(),
                    });
                    let a = act(name, step, Class::Manual, Order::Create(Phase::Member))
                        .hosts(one.clone());
                    b.push(a.reason(format!("`{f}` is an instance identity or bootstrap setting; it cannot change in place")));
                }
            }
        }
    }
    let roles_changed = changes
        .iter()
        .any(|c| c.entity == Entity::Var && c.name == "pg_default_roles");
    if roles_changed {
        super::defaults::plan(b, name, new, "`pg_default_roles` changed");
    }
    super::objects::plan(b, name, &limit, new, changes);
    hba(b, name, &limit, new, changes);
    let launched = super::pgbouncer_life::plan(b, name, &limit, new, changes, false);
    let all = launched.then_some("pgbouncer launched");
    super::pgbouncer::plan(b, name, new, changes, all);
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
        // Every member, new ones too (natively a member's addition starts no HAProxy); Pigsty's
        // command leaves the new ones to their own `pgsql.yml`.
        let hosts: Vec<String> = new.members.keys().cloned().collect();
        let target = limit_except(&limit, &added_members);
        let (class, order) = match removed_members.is_empty() {
            true => (Class::Reload, Order::Create(Phase::Service)),
            false => (Class::Reload, Order::Remove(RemovalPhase::AfterRemoval)),
        };
        let why: Vec<String> = refresh_services
            .into_iter()
            .chain(
                removed_members
                    .iter()
                    .map(|m| format!("member {m} removed")),
            )
            .collect();
        let a = super::services::action(b.new, new, &target, hosts, class, order);
        b.push(a.reason(format!("because of: {}", why.join(", "))));
    }
    parameters(b, name, &limit, changes);
    super::vars::plan(b, Module::Pgsql, name, Some(&limit), changes);
}

/// A switchover when the declared primary moves from one member to another that both stay
/// members (a removed or a new declared primary is handled by the member actions).
fn switchover(b: &mut Builder, name: &str, old: &PgCluster, new: &PgCluster) {
    let (Some(from), Some(to)) = (old.declared_primary(), new.declared_primary()) else {
        return;
    };
    if from.host == to.host || !new.members.contains_key(&from.host) {
        return;
    }
    let (from, to) = (from.host.clone(), to.host.clone());
    if !old.members.contains_key(&to) {
        let step = Step::Manual(Manual::MemberVar {
            ip: to.clone(),
            var: "pg_role".into(),
        });
        let a = act(name, step, Class::Manual, Order::Create(Phase::Member)).hosts(vec![to]);
        b.push(a.reason("a new member cannot be switched to before it runs: add it as a replica, then move `pg_role: primary` to it in a later commit"));
        return;
    }
    let hosts = vec![from.clone(), to.clone()];
    let step = Step::Switchover { from, to };
    let a = act(name, step, Class::Restart, Order::Create(Phase::Switchover)).hosts(hosts);
    b.push(a.reason("the declared primary moved: a Patroni switchover (a few seconds without a writable primary; sessions on the old primary end); a failover that happened by itself is never reverted, only a commit moving `pg_role` switches"));
}

/// The preview of a PGSQL cluster's removal (`cluster/<name>/remove`): what the native
/// executor does; the Pigsty command (`pgsql-rm.yml`) is shown beside it.
pub(super) fn remove_preview() -> Vec<String> {
    vec![
        "native executor (members under Patroni, etcd built by pgitops; reads the old revision): refused whole, nothing touched, when `pg_safeguard` is true for any member".into(),
        "stop Patroni (it stops PostgreSQL; a postmaster left is stopped) under each node's supervisor and remove its service: replicas first, the live leader last".into(),
        "etcdctl del <pg_namespace>/<pg_cluster>/ --prefix (the cluster's DCS keys); with `pg_rm_data` (default true) empty pg_data and remove the instance's Patroni configuration".into(),
        "verify: no Patroni answers, no key left under the prefix. A PostgreSQL running outside Patroni is reported and left alone; packages are never uninstalled (`pg_rm_pkg`); pgBackRest is not provisioned natively (`pg_rm_backup`: nothing removed)".into(),
    ]
}

/// The preview of a PGSQL member's addition (`member/<ip>/add`).
pub(super) fn member_add_preview() -> Vec<String> {
    vec![
        "native executor (etcd built by pgitops): a member where Patroni answers is adopted; a PostgreSQL outside Patroni is left alone".into(),
        "check its binaries (installing packages only with `pgitops_install_packages: true`), write Pigsty's /pg layout and /pg/conf/<instance>.yml, install and start the patroni service".into(),
        "Patroni clones it from the leader; wait until it streams (the leader's pg_stat_replication) and shows in Patroni's /cluster".into(),
        "Pigsty executor: first asks the host whether it already runs PostgreSQL; if it does, the action is adopted and the playbook does not run".into(),
    ]
}

/// The preview of a PGSQL member's removal (`member/<ip>/remove`).
pub(super) fn member_remove_preview() -> Vec<String> {
    vec![
        "native executor: refused when `pg_safeguard` is true or the host is the live leader; a PostgreSQL outside Patroni is reported and left alone".into(),
        "stop Patroni (it stops PostgreSQL) under the node's supervisor, remove its service, delete the member's DCS key; with `pg_rm_data` (default true) empty pg_data and remove its Patroni configuration".into(),
        "verify: gone from Patroni's /cluster and from the leader's pg_stat_replication".into(),
    ]
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
    let files = hba
        .iter()
        .map(|c| match c.name.as_str() {
            "pgb_hba" => HbaFile::Pgbouncer,
            _ => HbaFile::Postgres,
        })
        .collect();
    let step = Step::Hba(HbaStep { files });
    let a = act(name, step, Class::Reload, Order::Create(Phase::Hba)).hosts(hosts);
    let tags = "pg_hba,pg_reload,pgbouncer_hba,pgbouncer_reload";
    let mut a = a.pigsty(Playbook::new("pgsql", &target, &["-t", tags]));
    let why: Vec<&str> = causes.iter().map(|s| s.as_str()).collect();
    if !why.is_empty() {
        a = a.reason(format!("changed: {}", why.join(", ")));
    }
    b.push(a);
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
    let hosts: Vec<String> = hosts.into_iter().collect();
    let (pinned, free): (Vec<&&Change>, Vec<&&Change>) =
        params.iter().partition(|c| patroni_pins(&c.name));
    // A pinned parameter never waits for a restart under Patroni (the command line wins).
    let restart: Vec<&str> = free
        .iter()
        .filter(|c| parameter_needs_restart(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    let class = if restart.is_empty() {
        Class::Reload
    } else {
        Class::Restart
    };
    let names = params.iter().map(|c| c.name.clone()).collect();
    let step = Step::Parameters(ParamStep { names });
    let a = act(name, step, class, Order::Create(Phase::Parameter));
    let mut a =
        a.hosts(hosts.clone())
            .pigsty(Playbook::new("pgsql", limit, &["-t", "pg_param,pg_reload"]));
    if !restart.is_empty() {
        a = a.reason(format!(
            "needs a restart to take effect: {}; under Patroni the members are restarted through Patroni (replicas first, the leader last), inside the restart window",
            restart.join(", ")
        ));
    }
    b.push(a);
    if !pinned.is_empty() {
        let names: Vec<String> = pinned.iter().map(|c| c.name.clone()).collect();
        let why = format!(
            "not applied: Patroni passes {} to PostgreSQL on the postmaster's command line, which postgresql.auto.conf (ALTER SYSTEM) cannot override; change it in Patroni's DCS configuration (`pg edit-config <cluster>` / `patronictl edit-config`), then restart the members. A PostgreSQL not under Patroni takes the ALTER SYSTEM value at its next restart",
            names.join(", ")
        );
        let step = Step::Manual(Manual::PatroniParameters { names });
        let a = act(name, step, Class::Manual, Order::Create(Phase::Parameter)).hosts(hosts);
        b.push(a.reason(why));
    }
}

/// Patroni's etcd endpoints after the `etcd` group changed: every PGSQL cluster on both sides
/// gets its members' Patroni configuration re-rendered (members that join are created with the
/// new endpoints already). Pigsty: `pgsql.yml -t pg_conf,patroni_reload`.
pub fn patroni_refresh(b: &mut Builder) {
    let (Ok(old), Ok(new)) = (etcd_hosts(b.old), etcd_hosts(b.new)) else {
        return;
    };
    if old == new {
        return;
    }
    let clusters: Vec<(String, Vec<String>)> = b
        .new
        .model
        .pgsql
        .values()
        .filter_map(|c| {
            let before = b.old.model.pgsql.get(&c.name)?;
            let hosts: Vec<String> = c
                .members
                .keys()
                .filter(|h| before.members.contains_key(*h))
                .cloned()
                .collect();
            (!hosts.is_empty()).then(|| (c.name.clone(), hosts))
        })
        .collect();
    for (name, hosts) in clusters {
        let limit = limit_hosts(&hosts, &cluster_limit(&b.new.model.pgsql[&name]));
        let step = Step::PatroniRefresh { etcd: new.clone() };
        let a = act(&name, step, Class::Reload, Order::Create(Phase::Member)).hosts(hosts);
        let a = a.pigsty(Playbook::new(
            "pgsql",
            &limit,
            &["-t", "pg_conf,patroni_reload"],
        ));
        b.push(a.reason(format!("the etcd endpoints changed: {old} -> {new}")));
    }
}
