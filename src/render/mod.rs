//! Renderers of node artefacts from the inventory: `pg_hba.conf`/`pgb_hba.conf` ([`hba`]), SQL
//! scripts ([`sql`], the one audited place that quotes SQL identifiers and literals), pgbouncer's
//! user and database files ([`pgbouncer`]), Patroni's configuration ([`patroni`]), command
//! lines ([`shell`], the one place that quotes shell words), HAProxy's configuration and PGSQL services ([`haproxy`]), supervised services ([`service`]:
//! runit scripts and systemd units) and etcd's config ([`etcd`]).
//!
//! In: a loaded [`Inventory`] and a cluster member. Out: file text or SQL. Pure; shared by
//! validation, the plan's previews and the executors, so that what is previewed is what runs.

pub mod etcd;
pub mod haproxy;
mod haproxy_select;
mod haproxy_service;
pub mod hba;
pub mod patroni;
pub mod pgbouncer;
mod pigsty_defaults;
pub mod service;
pub mod shell;
pub mod sql;

use std::sync::OnceLock;

use serde_yaml_ng::Value;

use crate::inventory::model::{pg_version_var, str_var, PgCluster};
use crate::inventory::{HostVars, Inventory};
use hba::{HbaContext, HbaError, Target};

/// Pigsty v4.5's role defaults for the HBA lists, used when the inventory does not set them.
const PG_DEFAULT_HBA: &str = r#"
- {user: '${dbsu}'    ,db: all         ,addr: local     ,auth: ident ,title: 'dbsu access via local os user ident'  ,order: 100}
- {user: '${dbsu}'    ,db: replication ,addr: local     ,auth: ident ,title: 'dbsu replication from local os ident' ,order: 150}
- {user: '${repl}'    ,db: replication ,addr: localhost ,auth: pwd   ,title: 'replicator replication from localhost',order: 200}
- {user: '${repl}'    ,db: replication ,addr: intra     ,auth: pwd   ,title: 'replicator replication from intranet' ,order: 250}
- {user: '${repl}'    ,db: postgres    ,addr: intra     ,auth: pwd   ,title: 'replicator postgres db from intranet' ,order: 300}
- {user: '${monitor}' ,db: all         ,addr: localhost ,auth: pwd   ,title: 'monitor from localhost with password' ,order: 350}
- {user: '${monitor}' ,db: all         ,addr: infra     ,auth: pwd   ,title: 'monitor from infra host with password',order: 400}
- {user: '${admin}'   ,db: all         ,addr: intra     ,auth: pwd   ,title: 'admin @ intranet nodes with pwd'      ,order: 450}
- {user: '${admin}'   ,db: all         ,addr: world     ,auth: ssl   ,title: 'admin @ everywhere with ssl & pwd'    ,order: 500}
- {user: '+dbrole_readonly',db: all    ,addr: localhost ,auth: pwd   ,title: 'pgbouncer read/write via local socket',order: 550}
- {user: '+dbrole_readonly',db: all    ,addr: intra     ,auth: pwd   ,title: 'read/write biz user via password'     ,order: 600}
- {user: '+dbrole_offline' ,db: all    ,addr: intra     ,auth: pwd   ,title: 'allow etl offline tasks from intranet',order: 650}
"#;

const PGB_DEFAULT_HBA: &str = r#"
- {user: '${dbsu}'    ,db: pgbouncer   ,addr: local     ,auth: peer  ,title: 'dbsu local admin access with os ident',order: 100}
- {user: 'all'        ,db: all         ,addr: localhost ,auth: pwd   ,title: 'allow all user local access with pwd' ,order: 150}
- {user: '${monitor}' ,db: pgbouncer   ,addr: intra     ,auth: pwd   ,title: 'monitor access via intranet with pwd' ,order: 200}
- {user: '${monitor}' ,db: all         ,addr: world     ,auth: deny  ,title: 'reject all other monitor access addr' ,order: 250}
- {user: '${admin}'   ,db: all         ,addr: intra     ,auth: pwd   ,title: 'admin access via intranet with pwd'   ,order: 300}
- {user: '${admin}'   ,db: all         ,addr: world     ,auth: deny  ,title: 'reject all other admin access addr'   ,order: 350}
- {user: 'all'        ,db: all         ,addr: intra     ,auth: pwd   ,title: 'allow all user intra access with pwd' ,order: 400}
"#;

fn builtin(target: Target) -> &'static Value {
    static PG: OnceLock<Value> = OnceLock::new();
    static PGB: OnceLock<Value> = OnceLock::new();
    let (cell, text) = match target {
        Target::Postgres => (&PG, PG_DEFAULT_HBA),
        Target::Pgbouncer => (&PGB, PGB_DEFAULT_HBA),
    };
    cell.get_or_init(|| serde_yaml_ng::from_str(text).expect("built-in HBA defaults parse"))
}

/// The variables an HBA file is rendered from, for a target: used to explain what changed.
pub fn hba_inputs(target: Target) -> &'static [&'static str] {
    match target {
        Target::Postgres => &["pg_default_hba_rules", "pg_hba_rules"],
        Target::Pgbouncer => &["pgb_default_hba_rules", "pgb_hba_rules"],
    }
}

/// Variables besides the rule lists that feed the rendering.
pub const HBA_CONTEXT_VARS: &[&str] = &[
    "pg_dbsu",
    "pg_replication_username",
    "pg_monitor_username",
    "pg_admin_username",
    "admin_ip",
    "node_firewall_intranet",
    "pg_role",
    "pg_offline_query",
    "pg_pwd_enc",
];

/// The hosts of `group` and of its descendants, as Ansible's `groups[group]` lists them.
pub(crate) fn group_hosts(inv: &Inventory, group: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    let mut todo = vec![group];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = todo.pop() {
        let Some(g) = inv.tree.groups.get(name).filter(|_| seen.insert(name)) else {
            continue;
        };
        hosts.extend(g.hosts.iter().cloned());
        todo.extend(g.children.iter().map(String::as_str));
    }
    hosts
}

/// Renders the HBA file of `host` (a member of `cluster`). `role` overrides the declared
/// `pg_role` (the executor passes the live role).
pub fn hba_for(
    inv: &Inventory,
    cluster: &PgCluster,
    host: &str,
    target: Target,
    role: Option<&str>,
) -> Result<String, HbaError> {
    let vars: &HostVars = &inv.tree.hosts[host].vars;
    let s = |k: &str, d: &'static str| str_var(vars, k).unwrap_or(d).to_string();
    let infra_ips = group_hosts(inv, "infra");
    let cluster_ips: Vec<String> = cluster.members.keys().cloned().collect();
    let intranet: Vec<String> = match vars.get("node_firewall_intranet").map(|v| v.value.as_ref()) {
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => vec![
            "10.0.0.0/8".into(),
            "192.168.0.0/16".into(),
            "172.16.0.0/12".into(),
        ],
    };
    let member = &cluster.members[host];
    // the host's effective value, as Ansible resolves it (group or host level may set it)
    let admin_ip = s("admin_ip", "127.0.0.1");
    let (dbsu, repl, monitor, admin, enc) = (
        s("pg_dbsu", "postgres"),
        s("pg_replication_username", "replicator"),
        s("pg_monitor_username", "dbuser_monitor"),
        s("pg_admin_username", "dbuser_dba"),
        s("pg_pwd_enc", "scram-sha-256"),
    );
    let ctx = HbaContext {
        dbsu: &dbsu,
        repl: &repl,
        monitor: &monitor,
        admin: &admin,
        admin_ip: &admin_ip,
        infra_ips: &infra_ips,
        cluster_ips: &cluster_ips,
        intranet: &intranet,
        pg_role: role.unwrap_or(&member.role),
        offline_query: member.offline_query,
        pwd_enc: &enc,
    };
    let [defaults, rules] = hba_inputs(target) else {
        unreachable!("two inputs per target")
    };
    let default_list = vars
        .get(defaults)
        .map(|v| v.value.as_ref())
        .unwrap_or_else(|| builtin(target));
    let null = Value::Null;
    let user_list = vars.get(rules).map(|v| v.value.as_ref()).unwrap_or(&null);
    hba::render(&[default_list, user_list], &ctx, target)
}

/// SQL context from the cluster's variables (the primary's effective vars). `pg_major` is the
/// server's when the executor knows it; previews use `pg_version` (default 17).
pub fn sql_context<'a>(
    inv: &'a Inventory,
    c: &'a PgCluster,
    pg_major: Option<u32>,
) -> sql::SqlContext<'a> {
    let vars = c.primary.as_ref().map(|p| &inv.tree.hosts[p].vars);
    let get = |k: &str, d: &'static str| vars.and_then(|v| str_var(v, k)).unwrap_or(d);
    let declared = vars.and_then(pg_version_var);
    sql::SqlContext {
        pg_major: pg_major.or(declared).unwrap_or(17),
        admin: get("pg_admin_username", "dbuser_dba"),
        monitor: get("pg_monitor_username", "dbuser_monitor"),
        replicator: get("pg_replication_username", "replicator"),
        today: None,
        default_privileges: c.default_privileges.as_deref().map_err(String::as_str),
    }
}
