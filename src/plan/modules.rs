//! Actions for NODE, INFRA, ETCD, MINIO, REDIS and unclaimed variables.

use super::{phase, pigsty, steps, Builder, Class, Spec};
use crate::diff::{Change, Entity, Op};
use crate::inventory::module::Module;

struct Act {
    path: String,
    kind: &'static str,
    hosts: Vec<String>,
    class: Class,
    removal: bool,
    phase: u8,
    pigsty: String,
    reason: Option<String>,
}

fn act(path: String, kind: &'static str, hosts: Vec<String>, class: Class, pigsty: String) -> Act {
    let removal = class == Class::Destructive;
    Act {
        path,
        kind,
        hosts,
        class,
        removal,
        phase: if removal {
            phase::REMOVE_MEMBER
        } else {
            phase::MEMBER
        },
        pigsty,
        reason: None,
    }
}

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

pub fn plan(b: &mut Builder, module: Module, cluster: &str, changes: &[&Change]) {
    let mut acts: Vec<Act> = Vec::new();
    let pb = playbook(module);
    for c in changes {
        let one = vec![c.name.clone()];
        let a = match (module, c.entity, c.op) {
            (Module::Node, Entity::Host, Op::Create) => act(format!("host/{}/add", c.name), "node-add", one, Class::Online, pigsty("node", &c.name, &[])),
            (Module::Node, Entity::Host, _) => act(format!("host/{}/remove", c.name), "node-remove", one, Class::Destructive, pigsty("node-rm", &c.name, &[])),
            (_, Entity::Cluster, Op::Create) => act(format!("cluster/{cluster}/create"), "cluster-create", c.hosts.clone(), Class::Online, pigsty(pb, cluster, &[])),
            (_, Entity::Cluster, _) => act(format!("cluster/{cluster}/remove"), "cluster-remove", c.hosts.clone(), Class::Destructive, pigsty(&format!("{pb}-rm"), cluster, &[])),
            (Module::Minio, Entity::Member, _) => Act {
                reason: Some("MinIO topology changes (adding or removing nodes or pools) are manual, coordinated operations".into()),
                ..act(format!("member/{}/{}", c.name, c.op.as_str()), "member-manual", one, Class::Manual, String::new())
            },
            (Module::Etcd, Entity::Member, Op::Create) => {
                acts.push(etcd_refresh(&c.name));
                act(format!("member/{}/add", c.name), "member-add", one, Class::Online, pigsty("etcd", &c.name, &["-e", "etcd_init=existing"]))
            }
            (Module::Etcd, Entity::Member, Op::Delete) => {
                acts.push(etcd_refresh(&c.name));
                act(format!("member/{}/remove", c.name), "member-remove", one, Class::Destructive, pigsty("etcd-rm", &c.name, &[]))
            }
            (Module::Infra, Entity::Member, Op::Create) => act(format!("member/{}/add", c.name), "member-add", one, Class::Online, pigsty("infra", &c.name, &[])),
            (Module::Infra, Entity::Member, Op::Delete) => act(format!("member/{}/remove", c.name), "member-remove", one, Class::Destructive, pigsty("infra-rm", &c.name, &[])),
            (Module::Redis, Entity::RedisInstance, op) => {
                let (ip, port) = c.name.rsplit_once(':').expect("redis instance ids are ip:port");
                match op {
                    Op::Delete => act(format!("instance/{}/remove", c.name), "redis-instance-remove", one_host(ip), Class::Destructive, pigsty("redis-rm", ip, &["-e", &format!("redis_port={port}")])),
                    Op::Create => act(format!("instance/{}/add", c.name), "redis-instance-add", one_host(ip), Class::Online, pigsty("redis", ip, &["-e", &format!("redis_port={port}")])),
                    _ => Act {
                        reason: Some("reconfiguring an instance restarts it".into()),
                        ..act(format!("instance/{}/update", c.name), "redis-instance-update", one_host(ip), Class::Restart, pigsty("redis", ip, &["-e", &format!("redis_port={port}")]))
                    },
                }
            }
            (_, Entity::Member, _) => Act {
                reason: Some(format!("`{}` of {} changed: member identity cannot change in place", c.fields.join(", "), c.name)),
                ..act(format!("member/{}/identity", c.name), "member-identity", one, Class::Manual, String::new())
            },
            _ => continue,
        };
        acts.push(a);
    }
    for a in acts {
        let spec = Spec {
            module,
            cluster,
            path: a.path,
            kind: a.kind,
            hosts: a.hosts,
            class: a.class,
            removal: a.removal,
            reads_old: a.removal,
            phase: a.phase,
            pigsty: a.pigsty,
        };
        let steps = if spec.class == Class::Manual {
            vec![]
        } else {
            steps::not_native(spec.kind)
        };
        b.push(spec, steps, a.reason);
    }
    let limit = (module != Module::Node).then_some(cluster);
    super::vars::plan(b, module, cluster, limit, changes);
}

fn one_host(ip: &str) -> Vec<String> {
    vec![ip.to_string()]
}

fn etcd_refresh(ip: &str) -> Act {
    Act {
        reason: Some(format!("after the membership change of {ip}: refresh the other members, then Patroni's etcd endpoints with `./pgsql.yml -t pg_conf,patroni_reload`")),
        phase: phase::AFTER_REMOVAL,
        ..act("members/refresh".into(), "etcd-refresh", vec![], Class::Restart, pigsty("etcd", &format!("etcd,!{ip}"), &["-t", "etcd_config,etcd_launch", "-f", "1"]))
    }
}
