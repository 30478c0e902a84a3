//! Actions for NODE, INFRA, ETCD, MINIO, REDIS and unclaimed variables: delegated to Pigsty's
//! playbooks (or manual); the native executor reports them as not native, except ETCD's
//! membership work (see `etcd`).

use super::{Action, Builder, Class, Delegated, InstanceVerb, Manual, Order, Phase, Playbook};
use super::{RemovalPhase, Step};
use crate::diff::{Change, Entity, Op};
use crate::inventory::module::Module;

pub(super) fn playbook(module: Module) -> &'static str {
    match module {
        Module::Infra => "infra",
        Module::Node => "node",
        Module::Etcd => "etcd",
        Module::Minio => "minio",
        Module::Redis => "redis",
        Module::Pgsql | Module::Other => "pgsql",
    }
}

/// A delegated action on `hosts`: destructive ones run in the removal pass on the old revision.
fn delegated(
    module: Module,
    cluster: &str,
    d: Delegated,
    hosts: Vec<String>,
    class: Class,
    p: Playbook,
) -> Action {
    let removal = class == Class::Destructive;
    let order = match removal {
        true => Order::Remove(RemovalPhase::RemoveMember),
        false => Order::Create(Phase::Member),
    };
    let a = Action::new(module, cluster, Step::Delegated(d), class, order)
        .hosts(hosts)
        .pigsty(p);
    if removal {
        a.reads_old()
    } else {
        a
    }
}

fn manual(module: Module, cluster: &str, m: Manual, host: &str, why: String) -> Action {
    let a = Action::new(
        module,
        cluster,
        Step::Manual(m),
        Class::Manual,
        Order::Create(Phase::Member),
    );
    a.hosts(vec![host.to_string()]).reason(why)
}

pub fn plan(b: &mut Builder, module: Module, cluster: &str, changes: &[&Change]) {
    let pb = playbook(module);
    let mut acts: Vec<Action> = Vec::new();
    for c in changes {
        let ip = c.name.clone();
        let one = vec![ip.clone()];
        let d = |d, hosts, class, p| delegated(module, cluster, d, hosts, class, p);
        let a = match (module, c.entity, c.op) {
            (Module::Node, Entity::Host, Op::Create) => d(Delegated::HostAdd { ip: ip.clone() }, one, Class::Online, Playbook::new("node", &ip, &[])),
            (Module::Node, Entity::Host, _) => d(Delegated::HostRemove { ip: ip.clone() }, one, Class::Destructive, Playbook::new("node-rm", &ip, &[])),
            (_, Entity::Cluster, Op::Create) => d(Delegated::ClusterCreate { name: cluster.into() }, c.hosts.clone(), Class::Online, Playbook::new(pb, cluster, &[])),
            (_, Entity::Cluster, _) => d(Delegated::ClusterRemove { name: cluster.into() }, c.hosts.clone(), Class::Destructive, Playbook::new(&format!("{pb}-rm"), cluster, &[])),
            (Module::Minio, Entity::Member, op) => manual(module, cluster, Manual::MinioMember { ip: ip.clone(), op: op.as_str() }, &ip, "MinIO topology changes (adding or removing nodes or pools) are manual, coordinated operations".into()),
            (Module::Etcd, Entity::Member, Op::Create) => {
                acts.push(etcd_refresh(cluster, &ip));
                d(Delegated::MemberAdd { ip: ip.clone() }, one, Class::Online, Playbook::new("etcd", &ip, &["-e", "etcd_init=existing"]))
            }
            (Module::Etcd, Entity::Member, Op::Delete) => {
                acts.push(etcd_refresh(cluster, &ip));
                d(Delegated::MemberRemove { ip: ip.clone() }, one, Class::Destructive, Playbook::new("etcd-rm", &ip, &[]))
            }
            (Module::Infra, Entity::Member, Op::Create) => d(Delegated::MemberAdd { ip: ip.clone() }, one, Class::Online, Playbook::new("infra", &ip, &[])),
            (Module::Infra, Entity::Member, Op::Delete) => d(Delegated::MemberRemove { ip: ip.clone() }, one, Class::Destructive, Playbook::new("infra-rm", &ip, &[])),
            (Module::Redis, Entity::RedisInstance, op) => {
                // Redis instance names are `<ip>:<port>` (the model's key).
                let Some((ip, port)) = c.name.rsplit_once(':') else { continue };
                let (ip, port) = (ip.to_string(), port.to_string());
                let e = format!("redis_port={port}");
                let (verb, class, book) = match op {
                    Op::Delete => (InstanceVerb::Remove, Class::Destructive, "redis-rm"),
                    Op::Create => (InstanceVerb::Add, Class::Online, "redis"),
                    _ => (InstanceVerb::Update, Class::Restart, "redis"),
                };
                let p = Playbook::new(book, &ip, &["-e", &e]);
                let a = d(Delegated::RedisInstance { ip: ip.clone(), port, verb }, vec![ip], class, p);
                match verb {
                    InstanceVerb::Update => a.reason("reconfiguring an instance restarts it"),
                    _ => a,
                }
            }
            (_, Entity::Member, _) => manual(module, cluster, Manual::MemberIdentity { ip: ip.clone() }, &ip, format!("`{}` of {ip} changed: member identity cannot change in place", c.fields.join(", "))),
            _ => continue,
        };
        acts.push(a);
    }
    for a in acts {
        b.push(a);
    }
    let limit = (module != Module::Node).then_some(cluster);
    super::vars::plan(b, module, cluster, limit, changes);
}

fn etcd_refresh(cluster: &str, ip: &str) -> Action {
    let p = Playbook::new(
        "etcd",
        &format!("etcd,!{ip}"),
        &["-t", "etcd_config,etcd_launch", "-f", "1"],
    );
    let order = Order::Remove(RemovalPhase::AfterRemoval);
    let a = Action::new(
        Module::Etcd,
        cluster,
        Step::Delegated(Delegated::EtcdRefresh {
            changed: ip.to_string(),
        }),
        Class::Restart,
        order,
    );
    a.pigsty(p).reason(format!("after the membership change of {ip}: refresh the other members (Patroni's etcd endpoints: each PGSQL cluster's `patroni/refresh` action)"))
}
