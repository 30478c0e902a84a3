//! Unit tests of `pgbouncer.ini`: Pigsty's template with its defaults (the harness's
//! `scripts/node/pgbouncer.ini`, written from it), the version gate, and hostile values refused.

use super::*;
use crate::inventory::{load, InventoryFiles};

fn inv(vars: &str) -> Inventory {
    let text = format!(
        "all:\n  children:\n    pg-t:\n      hosts:\n        10.0.0.1: {{ pg_seq: 1, pg_role: primary }}\n      vars:\n        pg_cluster: pg-t\n{vars}"
    );
    load(&InventoryFiles::single("pigsty.yml", &text), "t").expect("parses")
}

const V118: Option<PgbVersion> = Some(PgbVersion(1, 18, 0));

/// The `key = value` lines of an ini text (comments and blank lines dropped).
fn settings(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn version_parses_from_pgbouncer_output() {
    let out = "PgBouncer 1.18.0\nlibevent 2.1.12-stable\nadns: c-ares 1.18.1\n";
    assert_eq!(PgbVersion::parse(out), Some(PgbVersion(1, 18, 0)));
    assert_eq!(
        PgbVersion::parse("PgBouncer 1.24.1"),
        Some(PgbVersion(1, 24, 1))
    );
    assert_eq!(PgbVersion::parse("bash: pgbouncer: not found"), None);
}

#[test]
fn defaults_render_pigstys_template_for_1_18() {
    let i = inv("        pg_listen: '${ip}'\n");
    let ini = pgbouncer_ini(&i, "10.0.0.1", V118).unwrap();
    assert!(ini.text.starts_with(INI_MARK), "{}", ini.text);
    let harness = include_str!("../../scripts/node/pgbouncer.ini").replace("$IP", "10.0.0.1");
    assert_eq!(settings(&ini.text), settings(&harness));
    assert_eq!(
        ini.left_out,
        vec!["max_prepared_statements (pgbouncer 1.21+)"]
    );
    assert!(ini
        .text
        .contains("# left out: max_prepared_statements = 256 (pgbouncer 1.21+; installed 1.18.0)"));
}

#[test]
fn newer_and_unknown_versions_keep_every_setting() {
    let i = inv("");
    for v in [Some(PgbVersion(1, 21, 0)), Some(PgbVersion(1, 24, 1)), None] {
        let ini = pgbouncer_ini(&i, "10.0.0.1", v).unwrap();
        assert!(ini.left_out.is_empty());
        assert!(ini.text.contains("\nmax_prepared_statements     = 256\n"));
        assert!(ini
            .text
            .contains("\nlisten_addr                 = 0.0.0.0\n"));
    }
}

#[test]
fn inventory_values_reach_the_file() {
    let i = inv(
        "        pg_listen: '${ip},${lo},${vip}'\n        pg_vip_enabled: true\n        pg_vip_address: 10.0.0.9/24\n        pgbouncer_port: 6543\n        pgbouncer_poolmode: session\n        pgbouncer_sslmode: require\n        pgbouncer_auth_query: true\n        pgbouncer_log_dir: /var/log/pgb/\n        pgbouncer_ignore_param: [ extra_float_digits ]\n        pg_dbsu: pgdba\n        pg_admin_username: admin\n        pg_monitor_username: mon\n",
    );
    let t = pgbouncer_ini(&i, "10.0.0.1", V118).unwrap().text;
    for want in [
        "pool_mode                   = session\n",
        "listen_addr                 = 10.0.0.1,127.0.0.1,10.0.0.9\n",
        "listen_port                 = 6543\n",
        "admin_users                 = pgdba, admin\n",
        "stats_users                 = pgdba, mon\n",
        "auth_user                   = pgdba\n",
        "auth_query                  = SELECT username, password FROM monitor.pgbouncer_auth($1)\n",
        "client_tls_sslmode          = require\n",
        "logfile                     = /var/log/pgb/pgbouncer.log\n",
        "ignore_startup_parameters   = extra_float_digits\n",
    ] {
        assert!(t.contains(want), "{want}in:\n{t}");
    }
}

#[test]
fn hostile_values_are_refused() {
    for vars in [
        "        pgbouncer_poolmode: 'session\\nlisten_port = 1'\n",
        "        pgbouncer_poolmode: bogus\n",
        "        pgbouncer_sslmode: 'disable\\nauth_type = trust'\n",
        "        pgbouncer_port: 70000\n",
        "        pgbouncer_port: 'x'\n",
        "        pgbouncer_log_dir: '/pg/log; rm -rf /'\n",
        "        pgbouncer_log_dir: relative/dir\n",
        "        pgbouncer_log_dir: /pg/../etc\n",
        "        pgbouncer_ignore_param: 'extra_float_digits'\n",
        "        pgbouncer_ignore_param: [ 'a b' ]\n",
        "        pgbouncer_ignore_param: [ 'x\\nauth_type = trust' ]\n",
        "        pg_listen: '${vip}'\n",
        "        pg_listen: '0.0.0.0\\nauth_type = trust'\n",
        "        pg_listen: '1.2.3.4 5.6.7.8'\n",
        "        pg_dbsu: 'postgres, evil'\n",
        "        pg_admin_username: 'a=b'\n",
        "        pg_monitor_username: 'm#x'\n",
    ] {
        let r = pgbouncer_ini(&inv(vars), "10.0.0.1", V118);
        assert!(r.is_err(), "accepted {vars:?}: {r:?}");
    }
    assert!(matches!(
        pgbouncer_ini(&inv(""), "10.9.9.9", V118),
        Err(PgbError::NotMember(_))
    ));
}
