//! The `service/refresh` action of a PGSQL cluster: its HAProxy services on the hosts that serve
//! them (Pigsty's `pg_service`: the members, or with `pg_service_provider` the hosts of that
//! group, as `service_local.yml` / `service_remote.yml` choose).
//!
//! In: the new inventory and the cluster. Out: the action (class `reload`), with its native
//! [`ServiceStep`] and the Pigsty command `pgsql.yml -t pg_service`.

use super::{Action, Builder, Class, Order, Phase, Playbook, ServiceStep, Step};
use crate::inventory::model::{str_var, PgCluster};
use crate::inventory::module::Module;
use crate::inventory::Inventory;

/// `pg_service_provider` of the cluster's declared primary when it names a group (Pigsty:
/// `pg_service_provider != '' and pg_service_provider in groups`), with that group's hosts.
pub fn provider(inv: &Inventory, c: &PgCluster) -> Option<(String, Vec<String>)> {
    let definer = c.primary.as_ref()?;
    let vars = &inv.tree.hosts.get(definer)?.vars;
    let g = str_var(vars, "pg_service_provider").filter(|g| !g.is_empty())?;
    let group = inv.tree.groups.get(g)?;
    let mut hosts = vec![];
    let mut todo = vec![group];
    while let Some(grp) = todo.pop() {
        hosts.extend(grp.hosts.iter().cloned());
        todo.extend(grp.children.iter().filter_map(|c| inv.tree.groups.get(c)));
    }
    hosts.sort();
    hosts.dedup();
    Some((g.to_string(), hosts))
}

/// The hosts that serve `c`'s services: `pg_service_provider`'s group, else the members.
pub fn service_hosts(inv: &Inventory, c: &PgCluster) -> Vec<String> {
    match provider(inv, c) {
        Some((_, hosts)) => hosts,
        None => c.members.keys().cloned().collect(),
    }
}

/// The action refreshing `c`'s services; `members` are the cluster's hosts to serve them
/// (ignored with a provider group).
pub(super) fn action(
    inv: &Inventory,
    c: &PgCluster,
    limit: &str,
    members: Vec<String>,
    class: Class,
    order: Order,
) -> Action {
    let (step, hosts) = match provider(inv, c) {
        Some((g, hosts)) => (
            ServiceStep {
                provider: Some(g),
                first: false,
            },
            hosts,
        ),
        None => (
            ServiceStep {
                provider: None,
                first: false,
            },
            members,
        ),
    };
    bare(c, step, hosts, class, order).pigsty(Playbook::new("pgsql", limit, &["-t", "pg_service"]))
}

fn bare(
    c: &PgCluster,
    step: ServiceStep,
    hosts: Vec<String>,
    class: Class,
    order: Order,
) -> Action {
    Action::new(Module::Pgsql, &c.name, Step::Services(step), class, order).hosts(hosts)
}

/// A created cluster's services, after the cluster and its objects. Pigsty's `pgsql.yml`
/// renders them while creating the cluster: no narrower command.
pub(super) fn created(b: &mut Builder, c: &PgCluster, hosts: Vec<String>) {
    let order = Order::Create(Phase::Service);
    let (step, hosts) = match provider(b.new, c) {
        Some((g, hosts)) => (
            ServiceStep {
                provider: Some(g),
                first: true,
            },
            hosts,
        ),
        None => (
            ServiceStep {
                provider: None,
                first: true,
            },
            hosts,
        ),
    };
    let a = bare(c, step, hosts, Class::Reload, order);
    b.push(a.reason("the cluster's services (pg_default_services + pg_services)"));
}

/// Whether a NODE variable `key` of `cluster` feeds this component: `haproxy_*` settings
/// (not `haproxy_services`, the node's own services) of a PGSQL cluster's hosts.
pub(super) fn covers(b: &Builder, cluster: &str, key: &str) -> bool {
    key.starts_with("haproxy_")
        && key != "haproxy_services"
        && b.new.model.pgsql.contains_key(cluster)
}

/// `haproxy_*` changes of a PGSQL cluster's hosts (NODE variables) refresh its services: the
/// cluster's `service/refresh` action, emitted here unless the cluster's own changes did.
pub(super) fn node_vars(b: &mut Builder, changes: &[(&str, Vec<String>)]) {
    for (cluster, keys) in changes {
        let why = format!("changed: {}", keys.join(", "));
        let id = format!("{cluster}/service/refresh");
        if let Some(a) = b.plan.actions.iter_mut().find(|a| a.id == id) {
            let r = a.reason.take().unwrap_or_default();
            a.reason = Some(format!("{r}; {why}"));
            continue;
        }
        let c = &b.new.model.pgsql[*cluster];
        let limit = super::pgsql::cluster_limit(c);
        let hosts = c.members.keys().cloned().collect();
        let order = Order::Create(Phase::Service);
        let a = action(b.new, c, &limit, hosts, Class::Reload, order);
        b.push(a.reason(why));
    }
}
