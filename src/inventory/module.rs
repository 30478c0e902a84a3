//! Which Pigsty module a group or a variable belongs to.

use super::Vars;

/// The module a group belongs to, decided by the `*_cluster` variable its own vars define.
pub fn group_module(name: &str, vars: &Vars) -> Option<&'static str> {
    if vars.contains_key("pg_cluster") {
        Some("pgsql")
    } else if vars.contains_key("redis_cluster") {
        Some("redis")
    } else if vars.contains_key("minio_cluster") {
        Some("minio")
    } else if vars.contains_key("etcd_cluster") || name == "etcd" {
        Some("etcd")
    } else if name == "infra" {
        Some("infra")
    } else {
        None
    }
}

/// The module that a variable configures, by its name (Pigsty's prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Module {
    Infra,
    Node,
    Etcd,
    Minio,
    Pgsql,
    Redis,
    /// Variables that no module claims (`version`, `region`, docker, apps, ...).
    Other,
}

impl Module {
    pub fn as_str(self) -> &'static str {
        match self {
            Module::Infra => "infra",
            Module::Node => "node",
            Module::Etcd => "etcd",
            Module::Minio => "minio",
            Module::Pgsql => "pgsql",
            Module::Redis => "redis",
            Module::Other => "other",
        }
    }
}

/// `None` for connection settings (`ansible_*`), which describe how to reach a host, not its state.
pub fn var_module(key: &str) -> Option<Module> {
    const TABLE: &[(&str, Module)] = &[
        ("ansible_", Module::Other),
        ("pg", Module::Pgsql),
        ("patroni_", Module::Pgsql),
        ("redis_", Module::Redis),
        ("etcd_", Module::Etcd),
        ("minio_", Module::Minio),
        ("infra_", Module::Infra),
        ("grafana_", Module::Infra),
        ("nginx_", Module::Infra),
        ("repo_", Module::Infra),
        ("dns_", Module::Infra),
        ("vmetrics_", Module::Infra),
        ("vlogs_", Module::Infra),
        ("vtraces_", Module::Infra),
        ("vmalert_", Module::Infra),
        ("alertmanager_", Module::Infra),
        ("blackbox_", Module::Infra),
        ("certbot_", Module::Infra),
        ("node_", Module::Node),
        ("nodename", Module::Node),
        ("haproxy_", Module::Node),
        ("vip_", Module::Node),
        ("keepalived_", Module::Node),
        ("vector_", Module::Node),
        ("admin_ip", Module::Node),
    ];
    if key.starts_with("ansible_") {
        return None;
    }
    Some(
        TABLE
            .iter()
            .find(|(p, _)| key.starts_with(p))
            .map(|(_, m)| *m)
            .unwrap_or(Module::Other),
    )
}
