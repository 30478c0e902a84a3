//! Unit tests of the Patroni renderer: the edge cases of Pigsty's templates (roles, `crit`,
//! `pg_rpo`, `pg_parameters`, `pg_libs`, etcd ports) and values that must stay one scalar.
//! The whole-file equality with Pigsty's templates is `tests/it/patroni_pigsty.rs`.

use super::*;
use crate::inventory::{load, InventoryFiles};

const FACTS: NodeFacts = NodeFacts {
    cpu: 8,
    mem_mb: 16384,
    mem_gb: 16,
    fs_bytes: 100 << 30,
    os_package: String::new(),
    os_version: 12,
};

/// A 3-member `pg-t` (primary, replica, offline), a 2-member etcd and an infra node.
fn inv(cluster_vars: &str, extra: &str) -> Inventory {
    let text = format!(
        "all:\n  vars:\n    admin_ip: 10.0.0.10\n  children:\n    infra:\n      hosts:\n        10.0.0.10: {{ infra_seq: 1 }}\n    etcd:\n      hosts:\n        10.0.0.21: {{ etcd_seq: 1 }}\n        10.0.0.20: {{ etcd_seq: 2 }}\n      vars:\n        etcd_cluster: etcd\n{extra}    pg-t:\n      hosts:\n        10.0.0.1: {{ pg_seq: 1, pg_role: primary }}\n        10.0.0.2: {{ pg_seq: 2, pg_role: replica }}\n        10.0.0.3: {{ pg_seq: 3, pg_role: offline }}\n      vars:\n        pg_cluster: pg-t\n{cluster_vars}"
    );
    load(&InventoryFiles::single("pigsty.yml", &text), "t").expect("parses")
}

/// Renders `host` and reads the text back (also checks that it is YAML).
fn render(i: &Inventory, host: &str) -> Value {
    let text = patroni_yml(i, host, &FACTS).expect("renders");
    let doc: Value = serde_yaml_ng::from_str(&text).expect("the output is YAML");
    assert_eq!(
        doc,
        patroni_config(i, host, &FACTS, Dcs::PigstyTls).unwrap(),
        "text and tree agree"
    );
    doc
}

fn at<'v>(doc: &'v Value, path: &str) -> &'v Value {
    path.split('/').fold(doc, |v, k| match v.get(k) {
        Some(x) => x,
        None => panic!("no {k} in {path}"),
    })
}

fn param<'v>(doc: &'v Value, name: &str) -> &'v Value {
    at(doc, "bootstrap/dcs/postgresql/parameters")
        .get(name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
}

#[test]
fn identity_addresses_and_paths() {
    let i = inv("        pg_version: 15\n", "");
    let d = render(&i, "10.0.0.2");
    assert_eq!(at(&d, "namespace"), "/pg/");
    assert_eq!(at(&d, "scope"), "pg-t");
    assert_eq!(at(&d, "name"), "pg-t-2");
    assert_eq!(at(&d, "restapi/listen"), "10.0.0.2:8008");
    assert_eq!(at(&d, "postgresql/listen"), "0.0.0.0:5432");
    assert_eq!(at(&d, "postgresql/connect_address"), "10.0.0.2:5432");
    assert_eq!(at(&d, "postgresql/data_dir"), "/pg/data");
    let allow: Vec<&str> = at(&d, "restapi/allowlist")
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(allow, ["10.0.0.1", "10.0.0.10", "10.0.0.2", "10.0.0.3"]);
    assert_eq!(at(&d, "tags/version"), "15");
    assert_eq!(at(&d, "tags/spec"), "8C.16G.100G");
    // PG15: no PG17+ builtin locale provider, no PG17 sync_replication_slots
    let initdb = at(&d, "bootstrap/initdb").as_sequence().unwrap();
    assert_eq!(initdb[0], "data-checksums");
    assert_eq!(
        initdb[2],
        Value::Mapping([("locale".into(), "C".into())].into_iter().collect())
    );
    let params = at(&d, "bootstrap/dcs/postgresql/parameters");
    assert!(params.get("sync_replication_slots").is_none());
    assert_eq!(param(&d, "wal_compression"), "lz4");
    let p = placement(&i, "10.0.0.2").unwrap();
    assert_eq!(
        (p.path.as_str(), p.link, p.owner.as_str(), p.mode),
        (
            "/pg/conf/pg-t-2.yml",
            "/etc/patroni/patroni.yml",
            "postgres",
            0o640
        )
    );
}

#[test]
fn offline_and_delayed_members_carry_pigstys_fixed_tags() {
    // Pigsty v4.5.0 writes the same tags for every role; only pg_upstream adds replicatefrom.
    let i = inv("", "");
    for host in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        let d = render(&i, host);
        assert_eq!(at(&d, "tags/nofailover"), &Value::Bool(false), "{host}");
        assert_eq!(at(&d, "tags/noloadbalance"), &Value::Bool(false), "{host}");
        assert_eq!(at(&d, "tags/clonefrom"), &Value::Bool(true), "{host}");
        assert!(at(&d, "tags").get("replicatefrom").is_none());
        assert!(at(&d, "bootstrap/dcs").get("standby_cluster").is_none());
    }
    let text = "    pg-d:\n      hosts:\n        10.0.0.5: { pg_seq: 1, pg_role: primary, pg_upstream: 10.0.0.1, pg_delay: 1h }\n        10.0.0.6: { pg_seq: 2, pg_role: delayed, pg_upstream: 10.0.0.5 }\n      vars: { pg_cluster: pg-d }\n";
    let i = inv("", text);
    let leader = render(&i, "10.0.0.5");
    assert_eq!(
        at(&leader, "bootstrap/dcs/standby_cluster/host"),
        "10.0.0.1"
    );
    assert_eq!(at(&leader, "bootstrap/dcs/standby_cluster/port"), 5432);
    assert_eq!(
        at(
            &leader,
            "bootstrap/dcs/standby_cluster/recovery_min_apply_delay"
        ),
        "1h"
    );
    let delayed = render(&i, "10.0.0.6");
    assert_eq!(at(&delayed, "tags/replicatefrom"), "10.0.0.5");
    assert_eq!(at(&delayed, "tags/nofailover"), &Value::Bool(false));
    assert!(at(&delayed, "bootstrap/dcs")
        .get("standby_cluster")
        .is_none());
}

#[test]
fn crit_and_rpo_zero_turn_on_synchronous_mode() {
    let i = inv(
        "        pg_conf: crit.yml\n        pg_checksum: false\n        pg_version: 15\n",
        "",
    );
    let d = render(&i, "10.0.0.1");
    assert_eq!(at(&d, "bootstrap/dcs/synchronous_mode"), &Value::Bool(true));
    assert_eq!(
        at(&d, "bootstrap/dcs/synchronous_mode_strict"),
        &Value::Bool(true)
    );
    assert_eq!(at(&d, "watchdog/mode"), "automatic");
    assert_eq!(
        at(&d, "bootstrap/initdb").as_sequence().unwrap()[0],
        "data-checksums"
    );
    assert_eq!(param(&d, "vacuum_defer_cleanup_age"), 500000);
    assert_eq!(param(&d, "log_connections"), "on");
    assert_eq!(at(&d, "tags/conf"), "crit.yml");
    let i = inv("        pg_rpo: 0\n        pg_rto: fast\n", "");
    let d = render(&i, "10.0.0.1");
    assert_eq!(at(&d, "bootstrap/dcs/synchronous_mode"), &Value::Bool(true));
    assert_eq!(
        at(&d, "bootstrap/dcs/synchronous_mode_strict"),
        &Value::Bool(false)
    );
    assert_eq!(at(&d, "bootstrap/dcs/maximum_lag_on_failover"), 0);
    assert_eq!(
        (
            at(&d, "bootstrap/dcs/ttl"),
            at(&d, "bootstrap/dcs/loop_wait")
        ),
        (&20.into(), &5.into())
    );
    assert_eq!(at(&d, "watchdog/mode"), "off");
    let d = render(&inv("        pg_rto: 30\n", ""), "10.0.0.1");
    assert_eq!(
        at(&d, "bootstrap/dcs/ttl"),
        30,
        "a pg_rto that names no plan means norm"
    );
    assert_eq!(
        at(&d, "bootstrap/dcs/synchronous_mode"),
        &Value::Bool(false)
    );
}

#[test]
fn pg_parameters_reach_patroni_only_through_cron_database_name() {
    let i = inv("        pg_primary_db: meta\n        pg_parameters: { cron.database_name: jobs, work_mem: 1GB }\n", "");
    let d = render(&i, "10.0.0.1");
    assert_eq!(param(&d, "cron.database_name"), "jobs");
    // the template's own work_mem: Pigsty writes pg_parameters into postgresql.auto.conf
    assert_eq!(param(&d, "work_mem"), "64MB");
    let d = render(&inv("        pg_primary_db: meta\n", ""), "10.0.0.1");
    assert_eq!(param(&d, "cron.database_name"), "meta");
}

#[test]
fn pg_libs_and_sizing() {
    let i = inv("        pg_libs: 'timescaledb, pg_stat_statements, auto_explain'\n        pg_max_conn: 200\n", "");
    let d = render(&i, "10.0.0.1");
    assert_eq!(
        param(&d, "shared_preload_libraries"),
        "timescaledb, pg_stat_statements, auto_explain"
    );
    assert_eq!(param(&d, "max_connections"), 200);
    assert_eq!(param(&d, "max_locks_per_transaction"), 400);
    assert_eq!(param(&d, "max_prepared_transactions"), 0);
    assert_eq!(param(&d, "timescaledb.max_background_workers"), 16);
    assert_eq!(param(&d, "max_worker_processes"), 24);
    assert_eq!(param(&d, "shared_buffers"), "4096MB");
    assert_eq!(param(&d, "effective_cache_size"), "12288MB");
    assert_eq!(param(&d, "work_mem"), "64MB");
    assert_eq!(param(&d, "max_wal_size"), "20GB");
    let d = render(
        &inv(
            "        pg_libs: 'citus, pg_stat_statements'\n        pg_conf: olap.yml\n",
            "",
        ),
        "10.0.0.1",
    );
    assert_eq!(param(&d, "max_prepared_transactions"), 500);
    assert_eq!(param(&d, "max_locks_per_transaction"), 2000);
    assert!(at(&d, "bootstrap/dcs/postgresql/parameters")
        .get("timescaledb.telemetry_level")
        .is_none());
    // default service destination postgres: 1000 connections in oltp
    let d = render(
        &inv("        pg_default_service_dest: postgres\n", ""),
        "10.0.0.1",
    );
    assert_eq!(param(&d, "max_connections"), 1000);
}

#[test]
fn etcd_hosts_use_each_members_own_etcd_port() {
    let i = inv("", "");
    let d = render(&i, "10.0.0.1");
    assert_eq!(at(&d, "etcd3/hosts"), "10.0.0.20:2379,10.0.0.21:2379");
    assert_eq!(at(&d, "etcd3/username"), "pg-t");
    assert_eq!(at(&d, "etcd3/password"), "pg-t");
    let text = "all:\n  vars: { admin_ip: 10.0.0.10 }\n  children:\n    etcd:\n      hosts:\n        10.0.0.20: { etcd_seq: 1 }\n        10.0.0.21: { etcd_seq: 2, etcd_port: 2579 }\n      vars: { etcd_cluster: etcd, etcd_port: 2479 }\n    pg-t:\n      hosts: { 10.0.0.1: { pg_seq: 1, pg_role: primary } }\n      vars: { pg_cluster: pg-t, pg_etcd_password: Etcd.Pg }\n";
    let i = load(&InventoryFiles::single("pigsty.yml", text), "t").unwrap();
    let d = render(&i, "10.0.0.1");
    assert_eq!(at(&d, "etcd3/hosts"), "10.0.0.20:2479,10.0.0.21:2579");
    assert_eq!(at(&d, "etcd3/password"), "Etcd.Pg");
    let none = "all:\n  vars: { admin_ip: 10.0.0.10 }\n  children:\n    pg-t:\n      hosts: { 10.0.0.1: { pg_seq: 1, pg_role: primary } }\n      vars: { pg_cluster: pg-t }\n";
    let i = load(&InventoryFiles::single("pigsty.yml", none), "t").unwrap();
    assert_eq!(
        patroni_yml(&i, "10.0.0.1", &FACTS),
        Err(PatroniError::NoEtcd)
    );
}

#[test]
fn native_etcd_is_plain_http_without_user() {
    let i = inv("", "");
    let text = patroni_yml_for(&i, "10.0.0.1", &FACTS, Dcs::PlainHttp).unwrap();
    let d: Value = serde_yaml_ng::from_str(&text).unwrap();
    let etcd3 = d["etcd3"].as_mapping().unwrap();
    let keys: Vec<&str> = etcd3.keys().filter_map(Value::as_str).collect();
    assert_eq!(keys, ["hosts", "protocol"]);
    assert_eq!(at(&d, "etcd3/protocol"), "http");
    assert_eq!(at(&d, "etcd3/hosts"), "10.0.0.20:2379,10.0.0.21:2379");
}

#[test]
fn hostile_values_stay_one_scalar() {
    let hostile = "x'\\n  injected: 1 # \\\" [a, b]";
    let vars = format!(
        "        pg_parameters: {{ cron.database_name: \"{hostile}\" }}\n        pg_replication_password: \"on\"\n        patroni_password: \"p: '#q\"\n        pg_dbsu_password: \"yes\"\n"
    );
    let i = inv(&vars, "");
    let text = patroni_yml(&i, "10.0.0.1", &FACTS).unwrap();
    let d = render(&i, "10.0.0.1");
    let want = "x'\n  injected: 1 # \" [a, b]";
    assert_eq!(param(&d, "cron.database_name"), want);
    assert!(at(&d, "bootstrap/dcs/postgresql/parameters")
        .get("injected")
        .is_none());
    assert_eq!(
        at(&d, "postgresql/authentication/replication/password"),
        "on"
    );
    assert_eq!(at(&d, "restapi/authentication/password"), "p: '#q");
    // an unquoted template value is typed as Patroni's YAML 1.1 reader types it ...
    assert_eq!(
        at(&d, "postgresql/authentication/superuser/password"),
        &Value::Bool(true)
    );
    // ... and a string that reads as a boolean in YAML 1.1 is written quoted
    assert!(text.contains("password: \"on\""), "{text}");
    assert!(text.contains("track_commit_timestamp: \"on\""), "{text}");
}

#[test]
fn errors_name_no_value() {
    let i = inv("        pg_replication_password: '2024-01-31'\n", "");
    let e = patroni_yml(&i, "10.0.0.1", &FACTS).unwrap_err();
    assert_eq!(
        e,
        PatroniError::Ambiguous("postgresql.authentication.replication.password".into())
    );
    assert!(!e.to_string().contains("2024"));
    // the same text inside a longer password is a plain string
    let i = inv("        pg_replication_password: '2024-01-31.Secret'\n", "");
    let d = render(&i, "10.0.0.1");
    assert_eq!(
        at(&d, "postgresql/authentication/replication/password"),
        "2024-01-31.Secret"
    );
    for odd in ["1_000", "+.inf", "0b101", "+0x1F", "2024-1-9"] {
        let i = inv(&format!("        patroni_password: '{odd}'\n"), "");
        let e = patroni_yml(&i, "10.0.0.1", &FACTS).unwrap_err();
        let at = PatroniError::Ambiguous("restapi.authentication.password".into());
        assert_eq!(e, at, "{odd}");
    }
    let e = patroni_yml(
        &inv("        pg_conf: custom.yml\n", ""),
        "10.0.0.1",
        &FACTS,
    )
    .unwrap_err();
    assert_eq!(e, PatroniError::Conf("custom.yml".into()));
    let e = patroni_yml(&inv("", ""), "10.0.0.20", &FACTS).unwrap_err();
    assert_eq!(e, PatroniError::NotMember("10.0.0.20".into()));
}

#[test]
fn node_facts_from_observations() {
    let f = NodeFacts::observed(2, 24 * (1 << 30) - 5, None, "deb", 12);
    assert_eq!((f.mem_mb, f.mem_gb, f.fs_bytes), (24576, 24, 40 << 30));
    let f = NodeFacts::observed(2, 512 << 20, Some(1024), "rpm", 9);
    assert_eq!((f.mem_mb, f.mem_gb, f.fs_bytes), (512, 1, 1 << 20));
}

#[test]
fn yaml11_typing_of_template_values() {
    use jinja::{plain_text, text};
    assert_eq!(plain_text("1048576"), 1048576);
    assert_eq!(plain_text("0.95"), Value::Number(0.95.into()));
    assert_eq!(plain_text("1e9"), "1e9", "YAML 1.1 floats need a dot");
    assert_eq!(plain_text("0640"), "0640");
    assert_eq!(plain_text("Off"), false);
    assert_eq!(plain_text("None"), "None");
    assert_eq!(text(&Value::Bool(true)), "True");
    assert_eq!(text(&Value::Number(0.25.into())), "0.25");
    assert_eq!(jinja::int(&"1.9".into()), 1);
}

#[test]
fn rest_credentials_default_to_pigstys_and_stay_out_of_debug() {
    let i = inv("", "");
    let auth = rest_auth(&i, "10.0.0.2").unwrap();
    assert_eq!(auth.username, "postgres");
    assert_eq!(auth.password, "Patroni.API");
    assert!(!format!("{auth:?}").contains("Patroni.API"));
    let i = inv(
        "        patroni_username: api\n        patroni_password: 'p\"a\\s s'\n",
        "",
    );
    let auth = rest_auth(&i, "10.0.0.1").unwrap();
    assert_eq!(auth.password, "p\"a\\s s");
    assert_eq!(
        auth.curl_config(Some("{\"a\": 1}")),
        "user = \"api:p\\\"a\\\\s s\"\ndata = \"{\\\"a\\\": 1}\"\n"
    );
    assert_eq!(auth.curl_config(None), "user = \"api:p\\\"a\\\\s s\"\n");
    assert!(matches!(
        rest_auth(&i, "10.0.0.21"),
        Err(PatroniError::NotMember(_))
    ));
}

#[test]
fn etcd_hosts_as_patroni_lists_them() {
    let i = inv("", "");
    assert_eq!(etcd_hosts(&i).unwrap(), "10.0.0.20:2379,10.0.0.21:2379");
}
