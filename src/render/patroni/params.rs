//! `bootstrap.dcs.postgresql.parameters` of Pigsty v4.5.0's four Patroni templates
//! (`roles/pgsql/templates/{oltp,olap,crit,tiny}.yml`): the shared list with each template's
//! values and version guards, and the sizes the templates compute from node facts.
//!
//! In: the host's [`Ctx`](super::Ctx) (variables, conf, facts). Out: the parameter mapping in
//! the templates' order. Pure.

use serde_yaml_ng::{Mapping, Value};

use super::jinja::{contains, float, int, plain, plain_text, text, truthy};
use super::{Conf, Ctx, PatroniError};

/// The numbers the templates compute in their `{% set %}` preamble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizing {
    pub max_connections: i64,
    pub max_prepared_transactions: i64,
    pub max_locks_per_transaction: i64,
    pub shared_buffers_mb: i64,
    pub maintenance_mb: i64,
    pub effective_cache_mb: i64,
    pub work_mem_mb: i64,
    /// 1/20 of the data disk in GB, from 1 to 100.
    pub size_twentieth: i64,
    pub max_worker_processes: i64,
    pub max_parallel_workers: i64,
    pub max_parallel_workers_per_gather: i64,
    pub max_parallel_maintenance_workers: i64,
    pub io_workers: i64,
}

fn ceil(x: f64) -> i64 {
    x.ceil() as i64
}

fn floor(x: f64) -> i64 {
    x.floor() as i64
}

pub fn sizing(c: &Ctx) -> Result<Sizing, PatroniError> {
    let (conf, f) = (c.conf, c.facts);
    let max_conn_var = c.req("pg_max_conn")?;
    let max_connections = if max_conn_var.as_str() != Some("auto") && int(max_conn_var) >= 20 {
        int(max_conn_var)
    } else {
        match conf {
            Conf::Olap => 500,
            Conf::Tiny => 250,
            Conf::Oltp | Conf::Crit => {
                // `pg_default_service_dest|default('postgres') == 'pgbouncer'`
                match c.get("pg_default_service_dest").map(text).as_deref() {
                    Some("pgbouncer") => 500,
                    _ => 1000,
                }
            }
        }
    };
    let libs = c.req("pg_libs")?;
    let citus = contains(libs, "citus");
    let timescale = contains(libs, "timescaledb");
    let max_prepared_transactions = if citus { max_connections } else { 0 };
    let max_locks_per_transaction = match (conf, citus || timescale) {
        (Conf::Olap, true) => 4 * max_connections,
        (Conf::Olap, false) => 2 * max_connections,
        (_, true) => 2 * max_connections,
        (_, false) => max_connections,
    };
    let mem = f.mem_mb as i64;
    let sb = ceil(mem as f64 * float(c.req("pg_shared_buffer_ratio")?));
    let maintenance_mb = ceil(sb as f64 * if conf == Conf::Olap { 0.50 } else { 0.25 });
    let (wm_min, wm_max) = match conf {
        Conf::Olap => (64, 8192),
        Conf::Tiny => (16, 256),
        _ => (64, 1024),
    };
    let work_mem_mb = floor(sb as f64 / max_connections as f64)
        .max(wm_min)
        .min(wm_max);
    let size_twentieth = ceil(f.fs_bytes as f64 / 21474836480.0).clamp(1, 100);
    let cpu = f.cpu as f64;
    let (max_worker_processes, max_parallel_workers, gather, mtw) = match conf {
        Conf::Oltp => (
            (f.cpu as i64 + 8).max(16),
            ceil(cpu * 0.5).max(2),
            floor(cpu * 0.2).clamp(2, 8),
            ceil(cpu * 0.33).max(2),
        ),
        Conf::Olap => (
            (f.cpu as i64 + 12).max(20),
            ceil(cpu * 0.8).max(2),
            floor(cpu * 0.5).max(2),
            ceil(cpu * 0.33).max(2),
        ),
        Conf::Crit => (
            (f.cpu as i64 + 8).max(16),
            ceil(cpu * 0.5).max(2),
            0,
            ceil(cpu * 0.33).max(2),
        ),
        Conf::Tiny => (
            (f.cpu as i64 + 4).max(12),
            floor(cpu * 0.5).max(1),
            0,
            floor(cpu * 0.33).max(1),
        ),
    };
    let io_workers = match conf {
        Conf::Oltp => ceil(cpu * 0.25).clamp(4, 16),
        Conf::Olap => ceil(cpu * 0.5).clamp(4, 32),
        Conf::Crit => ceil(cpu * 0.25).clamp(4, 8),
        Conf::Tiny => 3,
    };
    Ok(Sizing {
        max_connections,
        max_prepared_transactions,
        max_locks_per_transaction,
        shared_buffers_mb: sb,
        maintenance_mb,
        effective_cache_mb: mem - sb,
        work_mem_mb,
        size_twentieth,
        max_worker_processes,
        max_parallel_workers,
        max_parallel_workers_per_gather: gather,
        max_parallel_maintenance_workers: mtw,
        io_workers,
    })
}

/// An ordered parameter list: `q` a quoted template literal (a string), `l` an unquoted one
/// (typed as YAML 1.1 types it), `v` a computed value.
struct P(Mapping);

impl P {
    fn q(&mut self, k: &str, s: &str) {
        self.0.insert(k.into(), Value::String(s.into()));
    }
    fn l(&mut self, k: &str, s: &str) {
        self.0.insert(k.into(), plain_text(s));
    }
    fn v(&mut self, k: &str, v: Value) {
        self.0.insert(k.into(), v);
    }
    fn n(&mut self, k: &str, n: i64) {
        self.0.insert(k.into(), Value::Number(n.into()));
    }
}

pub fn parameters(c: &Ctx, z: &Sizing) -> Result<Mapping, PatroniError> {
    let (conf, ver) = (c.conf, c.version);
    let (olap, crit, tiny) = (conf == Conf::Olap, conf == Conf::Crit, conf == Conf::Tiny);
    let mode = c.get("pg_mode").map(text).unwrap_or_else(|| "pgsql".into());
    let backrest = truthy(c.req("pgbackrest_enabled")?);
    let tw = z.size_twentieth;
    let mut p = P(Mapping::new());
    p.n("max_connections", z.max_connections);
    p.n("superuser_reserved_connections", 10);
    p.n("max_locks_per_transaction", z.max_locks_per_transaction);
    p.n("max_prepared_transactions", z.max_prepared_transactions);
    p.q("track_commit_timestamp", "on");
    p.l("wal_level", "logical");
    p.q(
        "output_plugin_libraries",
        "pgoutput, test_decoding, wal2json",
    );
    p.q("wal_log_hints", "on");
    if ver >= 15 {
        p.l("wal_compression", "lz4");
    }
    p.n("max_worker_processes", z.max_worker_processes + 8);
    p.n("max_wal_senders", 50);
    p.n("max_replication_slots", 50);
    let enc = c.get("pg_pwd_enc").map(plain);
    p.v(
        "password_encryption",
        enc.unwrap_or_else(|| "scram-sha-256".into()),
    );
    p.q("ssl", "on");
    p.q("ssl_cert_file", "/pg/cert/server.crt");
    p.q("ssl_key_file", "/pg/cert/server.key");
    p.q("ssl_ca_file", "/pg/cert/ca.crt");
    p.l("shared_buffers", &format!("{}MB", z.shared_buffers_mb));
    p.l("maintenance_work_mem", &format!("{}MB", z.maintenance_mb));
    p.l("work_mem", &format!("{}MB", z.work_mem_mb));
    p.n("max_parallel_workers", z.max_parallel_workers);
    p.n(
        "max_parallel_maintenance_workers",
        z.max_parallel_maintenance_workers,
    );
    p.n(
        "max_parallel_workers_per_gather",
        z.max_parallel_workers_per_gather,
    );
    if matches!(conf, Conf::Oltp | Conf::Crit) {
        p.l("parallel_setup_cost", "2000");
        p.l("parallel_tuple_cost", "0.2");
        p.l("min_parallel_table_scan_size", "32MB");
        p.l("min_parallel_index_scan_size", "2MB");
    }
    if ver >= 13 {
        p.l("hash_mem_multiplier", "8.0");
    }
    p.l("huge_pages", "try");
    if ver >= 18 {
        p.v("io_method", plain_text(&io_method(c)));
        if ver == 18 {
            p.n("io_workers", z.io_workers);
        }
    }
    let temp = if olap {
        (tw * 4).min(2000)
    } else {
        tw.min(200)
    };
    p.l("temp_file_limit", &format!("{temp}GB"));
    p.l("vacuum_cost_delay", if olap { "10ms" } else { "20ms" });
    p.l("vacuum_cost_limit", if olap { "10000" } else { "2000" });
    p.l("bgwriter_delay", "10ms");
    p.l("bgwriter_lru_maxpages", "800");
    p.l("bgwriter_lru_multiplier", "5.0");
    p.l("min_wal_size", &format!("{}GB", tw.min(200)));
    p.l("max_wal_size", &format!("{}GB", (tw * 4).min(2000)));
    p.l(
        "max_slot_wal_keep_size",
        &format!("{}GB", (tw * 6).min(3000)),
    );
    if ver >= 18 {
        p.l(
            "idle_replication_slot_timeout",
            if crit { "3d" } else { "7d" },
        );
    }
    p.l("wal_buffers", "16MB");
    p.l("wal_writer_delay", if crit { "10ms" } else { "20ms" });
    p.l("wal_writer_flush_after", if crit { "0" } else { "1MB" });
    p.l("commit_delay", "20");
    p.l("commit_siblings", "10");
    p.l("checkpoint_timeout", "15min");
    p.l("checkpoint_completion_target", "0.95");
    if backrest {
        let cluster = text(c.req("pg_cluster")?);
        p.q("archive_mode", "on");
        p.l("archive_timeout", "300");
        let cmd = format!("pgbackrest --stanza={cluster} archive-push %p");
        p.v("archive_command", Value::String(cmd));
    }
    if ver >= 17 {
        p.l("sync_replication_slots", "on");
    }
    if crit && ver <= 15 {
        p.l("vacuum_defer_cleanup_age", "500000");
    }
    p.l("max_standby_archive_delay", "10min");
    p.l("max_standby_streaming_delay", "3min");
    p.l("wal_receiver_status_interval", "1s");
    p.q("hot_standby_feedback", "on");
    p.l("wal_receiver_timeout", "60s");
    p.l("max_logical_replication_workers", "8");
    p.l("max_sync_workers_per_subscription", "6");
    if olap {
        p.q("enable_partitionwise_join", "on");
        p.q("enable_partitionwise_aggregate", "on");
    }
    if c.get("pg_storage_type").map(text).as_deref() == Some("SSD") {
        p.l("random_page_cost", "1.1");
        p.l("effective_io_concurrency", "200");
        if ver >= 13 {
            p.l("maintenance_io_concurrency", "100");
        }
    }
    p.l(
        "effective_cache_size",
        &format!("{}MB", z.effective_cache_mb),
    );
    let stats = match conf {
        Conf::Olap => "1000",
        Conf::Tiny => "200",
        _ => "400",
    };
    p.l("default_statistics_target", stats);
    logging(&mut p, c, &mode)?;
    p.q("track_io_timing", "on");
    p.l("track_functions", "all");
    if ver >= 18 && (olap || crit) {
        p.q("track_cost_delay_timing", "on");
    }
    p.l(
        "track_activity_query_size",
        if crit { "32768" } else { "8192" },
    );
    p.l("log_autovacuum_min_duration", "1s");
    p.l("autovacuum_max_workers", if tiny { "2" } else { "3" });
    p.l("autovacuum_naptime", "1min");
    p.l(
        "autovacuum_vacuum_threshold",
        if olap { "1000" } else { "500" },
    );
    p.l(
        "autovacuum_analyze_threshold",
        if olap { "500" } else { "250" },
    );
    if !tiny {
        p.l("autovacuum_vacuum_scale_factor", "0.08");
        p.l("autovacuum_analyze_scale_factor", "0.04");
    }
    p.l("autovacuum_vacuum_cost_delay", "-1");
    p.l("autovacuum_vacuum_cost_limit", "-1");
    p.l("autovacuum_freeze_max_age", "1000000000");
    p.l("deadlock_timeout", "50ms");
    let idle = match conf {
        Conf::Olap => "0",
        Conf::Crit => "1min",
        _ => "10min",
    };
    p.l("idle_in_transaction_session_timeout", idle);
    extensions(&mut p, c, z, &mode)?;
    Ok(p.0)
}

/// `pg_io_method` unless `auto`; for `auto`, `io_uring` on deb systems or OS version >= 10.
fn io_method(c: &Ctx) -> String {
    match c.get("pg_io_method").map(text) {
        Some(m) if m != "auto" => m,
        _ if c.facts.os_package == "deb" || c.facts.os_version >= 10 => "io_uring".into(),
        _ => "worker".into(),
    }
}

fn logging(p: &mut P, c: &Ctx, mode: &str) -> Result<(), PatroniError> {
    let (conf, ver) = (c.conf, c.version);
    if mode != "oracle" && mode != "polar" {
        p.l("log_destination", "csvlog");
    }
    p.q("logging_collector", "on");
    p.v("log_directory", plain(c.req("pg_log_dir")?));
    p.q("log_timezone", "UTC");
    p.q("log_filename", "postgresql-%a.log");
    p.q("log_file_mode", "0640");
    p.q("log_rotation_age", "1d");
    p.q("log_rotation_size", "0");
    p.q("log_truncate_on_rotation", "on");
    p.q("log_checkpoints", "on");
    p.q("log_lock_waits", "on");
    if ver >= 18 && matches!(conf, Conf::Oltp | Conf::Crit) {
        p.q("log_lock_failures", "on");
    }
    p.l("log_temp_files", "1024");
    p.q("log_replication_commands", "on");
    p.l("log_statement", "ddl");
    let slow = if conf == Conf::Olap { "1000" } else { "100" };
    p.l("log_min_duration_statement", slow);
    if ver >= 18 {
        match conf {
            Conf::Crit => p.q("log_connections", "receipt,authentication,authorization"),
            Conf::Tiny => {}
            _ => p.q("log_connections", "authorization"),
        }
        if mode != "ivory" {
            p.l("file_copy_method", "clone");
        }
    } else if conf == Conf::Crit {
        p.q("log_connections", "on");
    }
    if conf == Conf::Crit {
        p.q("log_disconnections", "on");
    }
    Ok(())
}

fn extensions(p: &mut P, c: &Ctx, z: &Sizing, mode: &str) -> Result<(), PatroniError> {
    let conf = c.conf;
    let libs = c.req("pg_libs")?;
    p.v("shared_preload_libraries", Value::String(text(libs)));
    p.l("auto_explain.log_min_duration", "1s");
    p.q("auto_explain.log_analyze", "on");
    p.q("auto_explain.log_verbose", "on");
    p.q("auto_explain.log_timing", "on");
    p.l("auto_explain.log_nested_statements", "true");
    let pss_max = if conf == Conf::Tiny { "2500" } else { "10000" };
    p.l("pg_stat_statements.max", pss_max);
    p.l("pg_stat_statements.track", "all");
    p.q("pg_stat_statements.track_utility", "off");
    p.q("pg_stat_statements.track_planning", "off");
    p.q("pg_wait_sampling.profile_pid", "false");
    p.q("pg_wait_sampling.profile_queries", "all");
    p.l("pg_wait_sampling.history_size", "100000");
    if contains(libs, "timescaledb") {
        p.q("timescaledb.telemetry_level", "off");
        p.n("timescaledb.max_background_workers", z.max_worker_processes);
    }
    if contains(libs, "pgsodium") {
        p.l("pgsodium.getkey_script", "/pg/bin/pgsodium_getkey");
        p.l("pgsodium.enable_event_trigger", "off");
    }
    if conf != Conf::Crit && contains(libs, "pg_duckdb") {
        p.l("duckdb.allow_community_extensions", "true");
    }
    if mode == "polar" {
        p.q("polar_resource_manager.enable_resource_manager", "off");
    }
    // pg_cron: `pg_parameters['cron.database_name']` when set, else `pg_primary_db`
    let from_params = c
        .get("pg_parameters")
        .and_then(Value::as_mapping)
        .and_then(|m| m.get("cron.database_name"));
    let db = match from_params {
        Some(v) => plain(v),
        None => c
            .get("pg_primary_db")
            .map(plain)
            .unwrap_or_else(|| "postgres".into()),
    };
    p.v("cron.database_name", db);
    Ok(())
}
