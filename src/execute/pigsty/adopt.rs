//! First contact with a running fleet: a lifecycle playbook never runs on a host that already
//! runs the module it installs.
//!
//! In: a delegated lifecycle action (`node.yml`, `pgsql.yml`, `etcd.yml`, `minio.yml`,
//! `redis.yml`, `infra.yml` on hosts the plan sees as new, e.g. every host of a first apply whose
//! base is the empty inventory). Out: [`Running`]: nothing runs (the playbook may run), every
//! target runs the module (the action is adopted: nothing runs), or only some do (neither: the
//! action is left to the operator). What "runs" means per module:
//!
//! * PGSQL: PostgreSQL answers on the member (the same probe the native executor uses);
//! * NODE: Pigsty's node profile (`/etc/profile.d/node.sh`) exists, node_exporter listens on
//!   `node_exporter_port`, or, for a PGSQL member, PostgreSQL answers;
//! * ETCD, MINIO, INFRA: `etcd_port`, `minio_port`, `nginx_port` accepts connections;
//! * REDIS: the instance's port accepts connections.
//!
//! Ports are asked on the node itself (bash's `/dev/tcp` to the host's address, run over SSH as
//! a fixed script with the address and port as its arguments: no inventory value enters the
//! script). A probe that cannot run is an error: the playbook is not run blind.

use super::super::native::{pg, Ctx};
use crate::execute::ExecError;
use crate::inventory::model::port_var;
use crate::inventory::module::Module;
use crate::plan::{Action, Delegated, InstanceVerb, Step};

/// Connects to `$0:$1` from the node; exit 0 when something accepts.
const PORT_PROBE: &str = "exec 3<>\"/dev/tcp/$0/$1\"";
/// Exit 0 when Pigsty's node profile exists (NODE's `node_profile` task writes it).
const NODE_PROFILE: &str = "/etc/profile.d/node.sh";

enum Probe {
    Postgres,
    Port(u16),
    File(&'static str),
}

/// What the targets of a lifecycle action run already.
pub enum Running {
    /// No target runs the module: the playbook may run.
    Nothing,
    /// Every target runs it (what each runs): adopt, run nothing.
    All(String),
    /// Some do and some do not: neither adopt nor run blind.
    Part { running: String, idle: Vec<String> },
}

/// What already runs on the targets of lifecycle action `a`. A host runs the module when any
/// of its probes answers.
pub async fn already_running(ctx: &Ctx<'_>, a: &Action) -> Result<Running, ExecError> {
    let probes = probes(ctx, a)?;
    let mut hosts: Vec<(&str, Option<String>)> = Vec::new();
    for (host, probe) in &probes {
        let found = answers(ctx, host, probe).await?;
        match hosts.iter_mut().find(|(h, _)| h == host) {
            Some((_, seen)) => *seen = seen.take().or(found),
            None => hosts.push((host, found)),
        }
    }
    let running: Vec<String> = hosts
        .iter()
        .filter_map(|(h, what)| what.as_ref().map(|w| format!("{h}: {w}")))
        .collect();
    let idle: Vec<String> = hosts
        .iter()
        .filter(|(_, what)| what.is_none())
        .map(|(h, _)| h.to_string())
        .collect();
    Ok(match (running.is_empty(), idle.is_empty()) {
        (true, _) => Running::Nothing,
        (false, true) => Running::All(running.join("; ")),
        (false, false) => Running::Part {
            running: running.join("; "),
            idle,
        },
    })
}

/// The probes of each target host, or none for an action that installs nothing.
fn probes(ctx: &Ctx<'_>, a: &Action) -> Result<Vec<(String, Probe)>, ExecError> {
    let port = |host: &str, key: &str, default: u16| -> Result<Probe, ExecError> {
        let vars = ctx.new.tree.hosts.get(host).map(|h| &h.vars);
        let p = vars.map(|v| port_var(v, key)).transpose();
        let p = p.map_err(|e| ExecError::Refused(format!("{host}: {e}")))?;
        Ok(Probe::Port(p.flatten().unwrap_or(default)))
    };
    let module_port = |host: &str| -> Result<Option<Probe>, ExecError> {
        Ok(match a.module {
            Module::Etcd => Some(port(host, "etcd_port", 2379)?),
            Module::Minio => Some(port(host, "minio_port", 9000)?),
            Module::Infra => Some(port(host, "nginx_port", 80)?),
            Module::Pgsql => Some(Probe::Postgres),
            _ => None,
        })
    };
    let mut out = Vec::new();
    match &a.step {
        Step::Delegated(Delegated::HostAdd { ip }) => {
            out.push((ip.clone(), Probe::File(NODE_PROFILE)));
            out.push((ip.clone(), port(ip, "node_exporter_port", 9100)?));
            if is_pg_member(ctx, ip) {
                out.push((ip.clone(), Probe::Postgres));
            }
        }
        Step::Delegated(Delegated::RedisInstance {
            ip,
            port,
            verb: InstanceVerb::Add,
        }) => {
            let p = port.parse().map_err(|_| {
                ExecError::Refused(format!("redis instance {ip}:{port}: not a port number"))
            })?;
            out.push((ip.clone(), Probe::Port(p)));
        }
        Step::Delegated(Delegated::ClusterCreate { .. }) if a.module == Module::Redis => {
            for node in ctx.new.model.redis.get(&a.cluster).into_iter() {
                for (host, n) in &node.nodes {
                    out.extend(n.instances.keys().map(|p| (host.clone(), Probe::Port(*p))));
                }
            }
        }
        Step::Delegated(Delegated::ClusterCreate { .. }) | Step::ClusterRunning { .. } => {
            for host in &a.hosts {
                out.extend(module_port(host)?.map(|p| (host.clone(), p)));
            }
        }
        Step::Delegated(Delegated::MemberAdd { ip }) => {
            out.extend(module_port(ip)?.map(|p| (ip.clone(), p)));
        }
        _ => {}
    }
    Ok(out)
}

fn is_pg_member(ctx: &Ctx<'_>, ip: &str) -> bool {
    ctx.new
        .model
        .pgsql
        .values()
        .any(|c| c.members.contains_key(ip))
}

/// What `probe` finds on `host`, if anything.
async fn answers(ctx: &Ctx<'_>, host: &str, probe: &Probe) -> Result<Option<String>, ExecError> {
    Ok(match probe {
        Probe::Postgres => pg::probe(ctx, host)
            .await
            .is_ok()
            .then(|| "PostgreSQL answers".to_string()),
        Probe::File(path) => exits_zero(ctx, host, &["test", "-e", path])
            .await?
            .then(|| format!("{path} exists (a Pigsty node)")),
        Probe::Port(p) => {
            let port = p.to_string();
            exits_zero(ctx, host, &["bash", "-c", PORT_PROBE, host, &port])
                .await?
                .then(|| format!("port {p} accepts connections"))
        }
    })
}

async fn exits_zero(ctx: &Ctx<'_>, host: &str, argv: &[&str]) -> Result<bool, ExecError> {
    let out = ctx
        .runner
        .run(&ctx.target(host), argv, None, ctx.cfg.timeout)
        .await?;
    Ok(out.status == 0)
}
