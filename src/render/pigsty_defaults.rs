//! Pigsty v4.5.0's role defaults that pgitops' renderers read (`roles/pgsql/defaults`,
//! `roles/haproxy/defaults`): one table, so a default is written once.
//!
//! In: a variable name (and a host's variables). Out: the inventory's value, else Pigsty's
//! default, else `None`. Pure.

use std::sync::OnceLock;

use serde_yaml_ng::{Mapping, Value};

use crate::inventory::HostVars;

const DEFAULTS: &str = r#"
pg_mode: pgsql
pg_dbsu_password: ''
pg_replication_username: replicator
pg_replication_password: DBUser.Replicator
pg_dbsu: postgres
pg_dbsu_home: /var/lib/pgsql
pg_version: 18
pg_bin_dir: /usr/pgsql/bin
pg_log_dir: /pg/log/postgres
pg_data: /pg/data
pg_fs_main: /data/postgres
pg_storage_type: SSD
pg_listen: '0.0.0.0'
pg_port: 5432
pg_namespace: /pg
patroni_port: 8008
patroni_log_dir: /pg/log/patroni
patroni_ssl_enabled: false
patroni_watchdog_mode: 'off'
patroni_username: postgres
patroni_password: Patroni.API
pg_etcd_password: ''
pg_primary_db: postgres
pg_parameters: {}
pg_conf: oltp.yml
pg_max_conn: auto
pg_shared_buffer_ratio: 0.25
pg_io_method: worker
pg_rto: norm
pg_rto_plan:
  fast: [ 20  ,5  ,5  ,15 ,5  ,'1s' ,'0.5s' ,'1s' ,3 ,3 ]
  norm: [ 30  ,5  ,10 ,25 ,5  ,'2s' ,'1s'   ,'2s' ,3 ,3 ]
  safe: [ 60  ,10 ,20 ,45 ,10 ,'3s' ,'1.5s' ,'3s' ,3 ,3 ]
  wide: [ 120 ,20 ,30 ,95 ,15 ,'4s' ,'2s'   ,'4s' ,3 ,3 ]
pg_rpo: 1048576
pg_libs: 'pg_stat_statements, auto_explain'
pg_delay: 0
pg_checksum: true
pg_pwd_enc: scram-sha-256
pg_encoding: UTF8
pg_locale: C
pg_lc_collate: C
pg_lc_ctype: C
pgbackrest_enabled: true
pgbackrest_method: local
pg_default_service_dest: pgbouncer
pg_vip_enabled: false
pg_vip_address: 127.0.0.1/24
etcd_port: 2379
haproxy_admin_username: admin
haproxy_admin_password: pigsty
haproxy_exporter_port: 9101
haproxy_client_timeout: 24h
haproxy_server_timeout: 24h
exporter_metrics_path: /metrics
pg_services: []
pg_default_services:
  - { name: primary ,port: 5433 ,dest: default  ,check: /primary   ,selector: "[]" }
  - { name: replica ,port: 5434 ,dest: default  ,check: /read-only ,selector: "[]" , backup: "[? pg_role == `primary` || pg_role == `offline` ]" }
  - { name: default ,port: 5436 ,dest: postgres ,check: /primary   ,selector: "[]" }
  - { name: offline ,port: 5438 ,dest: postgres ,check: /replica   ,selector: "[? pg_role == `offline` || pg_offline_query ]" , backup: "[? pg_role == `replica` && !pg_offline_query]"}
"#;

fn table() -> &'static Mapping {
    static D: OnceLock<Mapping> = OnceLock::new();
    D.get_or_init(|| serde_yaml_ng::from_str(DEFAULTS).expect("built-in Pigsty defaults parse"))
}

/// Pigsty's default of `key`, if it has one.
pub fn default(key: &str) -> Option<&'static Value> {
    table().get(key)
}

/// `key` of a host's variables, else Pigsty's default.
pub fn var<'a>(vars: &'a HostVars, key: &str) -> Option<&'a Value> {
    vars.get(key)
        .map(|v| v.value.as_ref())
        .or_else(|| default(key))
}
