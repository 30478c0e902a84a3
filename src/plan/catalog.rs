//! What a changed variable means: the Pigsty tag that applies it and the class of the change.
//!
//! In: a variable (or PostgreSQL parameter) name. Out: a [`VarRule`]. The tables transcribe the
//! reference (§6, §7, §13); a variable not listed is `manual` with the reason "no targeted
//! action is known", so nothing is applied on a guess.

use super::Class;
use crate::inventory::module::Module;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarRule {
    /// Apply with this playbook tag list (`-t ...`) in this class.
    Tag { class: Class, tags: &'static str },
    /// Handled by another action (HBA re-render, service refresh, user/database actions).
    Covered,
    /// Never applied automatically; the reason is shown.
    Manual(&'static str),
}

const BOOTSTRAP: &str = "bootstrap-only setting: applied when the cluster is created; change it with `pg edit-config` / a rolling restart, by hand";
const UNKNOWN: &str = "no targeted action is known for this variable; review and apply by hand";

/// pgsql variables that only feed HAProxy services.
pub const SERVICE_VARS: &[&str] = &[
    "pg_weight",
    "pg_default_service_dest",
    "pg_service_provider",
    "pg_rto",
    "pg_rto_plan",
    "pg_offline_query",
    "pg_role",
];

pub fn pgsql_var(key: &str) -> VarRule {
    const BOOT: &[&str] = &[
        "pg_conf",
        "pg_libs",
        "pg_version",
        "pg_data",
        "pg_checksum",
        "pg_encoding",
        "pg_locale",
        "pg_lc_collate",
        "pg_lc_ctype",
        "pg_port",
        "pg_mode",
        "pg_namespace",
        "pg_init",
        "pg_default_schemas",
        "pg_default_extensions",
        "pg_max_conn",
        "pg_rpo",
        "pg_shared_buffer_ratio",
        "pg_upstream",
        "pg_delay",
        "pg_listen",
        "pg_packages",
        "pg_shard",
        "pg_group",
    ];
    let tag = |class, tags| VarRule::Tag { class, tags };
    match key {
        k if BOOT.contains(&k) || k.starts_with("pg_dbsu") || k.starts_with("pg_fs_") || k.starts_with("patroni_") => VarRule::Manual(BOOTSTRAP),
        k if k.ends_with("_password") || k.ends_with("_username") => VarRule::Manual("credentials of system users are set at bootstrap; Patroni, pg_exporter and .pgpass depend on them"),
        "pg_rto" | "pg_rto_plan" => VarRule::Manual(BOOTSTRAP),
        k if SERVICE_VARS.contains(&k) => VarRule::Covered,
        "pg_pwd_enc" | "node_firewall_intranet" => VarRule::Covered,
        // the default-roles action (plan/defaults)
        "pg_default_roles" => VarRule::Covered,
        "pg_default_privileges" => VarRule::Manual("granted FOR ROLE <owner> when a database with an owner is created or converged (as Pigsty's pgsql-db.yml does): existing databases get the new list when their entry next changes; entries removed from the list are not revoked (Pigsty does not either)"),
        "pg_crontab" => tag(Class::Online, "pg_crontab"),
        "pg_extensions" => tag(Class::Online, "pg_ext"),
        k if k.starts_with("pg_vip_") => tag(Class::Online, "pg_vip"),
        k if k.starts_with("pg_dns_") => tag(Class::Online, "pg_dns"),
        // pgbouncer's lifecycle actions (plan/pgbouncer_life)
        k if super::pgbouncer_life::covers(k) => VarRule::Covered,
        k if k.starts_with("pgbouncer_") => tag(Class::Reload, "pgbouncer_config,pgbouncer_reload"),
        k if k.starts_with("pgbackrest_") => tag(Class::Online, "pgbackrest_config"),
        _ => VarRule::Manual(UNKNOWN),
    }
}

pub fn node_var(key: &str) -> VarRule {
    const TAGS: &[(&str, &str)] = &[
        ("node_timezone", "node_timezone"),
        ("node_ntp_", "node_ntp"),
        ("node_etc_hosts", "node_hosts"),
        ("node_default_etc_hosts", "node_hosts"),
        ("admin_ip", "node_hosts"),
        ("node_dns_", "node_resolv"),
        ("node_firewall_", "node_firewall"),
        ("node_repo_", "node_repo"),
        ("node_packages", "node_pkg"),
        ("node_default_packages", "node_pkg"),
        ("node_tune", "node_tune"),
        ("node_hugepage_", "node_tune"),
        ("node_sysctl_params", "node_sysctl"),
        ("node_admin_", "node_admin"),
        ("node_crontab", "node_crontab"),
        ("vip_", "node_vip"),
        ("nodename", "node_name"),
        ("node_cluster", "node_name"),
        ("node_exporter_", "node_exporter"),
        ("vector_", "vector"),
    ];
    // A PGSQL cluster's hosts: the cluster's service/refresh action instead (plan::services).
    if key.starts_with("haproxy_") {
        return VarRule::Tag {
            class: Class::Reload,
            tags: "haproxy_config,haproxy_reload",
        };
    }
    match TAGS.iter().find(|(p, _)| key.starts_with(p)) {
        Some((_, tags)) => VarRule::Tag {
            class: Class::Online,
            tags,
        },
        None => VarRule::Manual(UNKNOWN),
    }
}

/// Rules for the modules whose variables are applied per cluster.
pub fn module_var(module: Module, key: &str) -> VarRule {
    match (module, key) {
        (Module::Pgsql, k) => pgsql_var(k),
        (Module::Node, k) => node_var(k),
        (Module::Minio, "minio_users" | "minio_buckets") => VarRule::Tag {
            class: Class::Online,
            tags: "minio_provision",
        },
        (Module::Minio, _) => {
            VarRule::Manual("re-running minio.yml may restart MinIO; apply by hand")
        }
        (Module::Redis, "redis_sentinel_monitor") => VarRule::Tag {
            class: Class::Online,
            tags: "redis-ha",
        },
        (Module::Redis, _) => VarRule::Tag {
            class: Class::Restart,
            tags: "redis_config,redis_launch",
        },
        (Module::Etcd, _) => VarRule::Manual(
            "etcd settings: re-run etcd.yml with the right tags by hand (it restarts members)",
        ),
        (Module::Infra, _) => {
            VarRule::Manual("infra settings: re-run the matching infra.yml tags by hand")
        }
        (Module::Other, _) => VarRule::Manual(UNKNOWN),
    }
}

/// PostgreSQL parameters that need a server restart (context `postmaster`, PG 13-17).
const RESTART_ONLY: &[&str] = &[
    "archive_mode",
    "autovacuum_freeze_max_age",
    "autovacuum_max_workers",
    "autovacuum_multixact_freeze_max_age",
    "bonjour",
    "bonjour_name",
    "cluster_name",
    "config_file",
    "data_directory",
    "data_sync_retry",
    "debug_io_direct",
    "dynamic_shared_memory_type",
    "event_source",
    "external_pid_file",
    "hba_file",
    "hot_standby",
    "huge_pages",
    "huge_page_size",
    "ident_file",
    "ignore_invalid_pages",
    "io_max_combine_limit",
    "jit_provider",
    "listen_addresses",
    "logging_collector",
    "max_connections",
    "max_files_per_process",
    "max_locks_per_transaction",
    "max_logical_replication_workers",
    "max_notify_queue_pages",
    "max_pred_locks_per_transaction",
    "max_prepared_transactions",
    "max_replication_slots",
    "max_wal_senders",
    "max_worker_processes",
    "min_dynamic_shared_memory",
    "old_snapshot_threshold",
    "port",
    "recovery_target",
    "recovery_target_action",
    "recovery_target_inclusive",
    "recovery_target_lsn",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_timeline",
    "recovery_target_xid",
    "reserved_connections",
    "shared_buffers",
    "shared_memory_type",
    "shared_preload_libraries",
    "superuser_reserved_connections",
    "summarize_wal",
    "track_activity_query_size",
    "track_commit_timestamp",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
    "wal_buffers",
    "wal_decode_buffer_size",
    "wal_level",
    "wal_log_hints",
];

pub fn parameter_needs_restart(name: &str) -> bool {
    RESTART_ONLY.contains(&name.to_ascii_lowercase().as_str())
}

/// Parameters Patroni passes to the postmaster on its command line (`CMDLINE_OPTIONS` of
/// Patroni 3.0's `postgresql/config.py`), taken from its DCS configuration: `ALTER SYSTEM`
/// (`postgresql.auto.conf`) cannot override them on a member under Patroni.
const PATRONI_CMDLINE: &[&str] = &[
    "cluster_name",
    "hot_standby",
    "listen_addresses",
    "max_connections",
    "max_locks_per_transaction",
    "max_prepared_transactions",
    "max_replication_slots",
    "max_wal_senders",
    "max_worker_processes",
    "port",
    "track_commit_timestamp",
    "wal_keep_segments",
    "wal_keep_size",
    "wal_level",
    "wal_log_hints",
];

/// Whether Patroni sets `name` on the postmaster's command line (see [`PATRONI_CMDLINE`]).
pub fn patroni_pins(name: &str) -> bool {
    PATRONI_CMDLINE.contains(&name.to_ascii_lowercase().as_str())
}
