//! Regression tests: what PostgreSQL, the renderers or the node would refuse later is refused by
//! validation, at the value's line and column; what they accept still validates.

use crate::inventory::{load, InventoryFiles, Severity};

/// A one-cluster inventory; `vars` is indented under the cluster's `vars:` (8 spaces), starting
/// on line 8.
fn inv(vars: &str) -> crate::inventory::Inventory {
    let text = format!(
        "all:\n  vars: {{ admin_ip: 10.10.10.10 }}\n  children:\n    pg-test:\n      hosts: {{ 10.10.10.11: {{ pg_seq: 1, pg_role: primary }} }}\n      vars:\n        pg_cluster: pg-test\n{vars}"
    );
    load(&InventoryFiles::single("pigsty.yml", &text), "t").expect("parses")
}

/// The one error, as displayed (`file:line:column: error: ...`), and the `vars` text.
fn error(vars: &str) -> (String, String) {
    let inv = inv(vars);
    let errors: Vec<String> = inv.errors().map(|d| d.to_string()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    (errors[0].clone(), vars.to_string())
}

fn valid(vars: &str) -> crate::inventory::Inventory {
    let inv = inv(vars);
    assert!(inv.is_valid(), "{:#?}", inv.diagnostics);
    inv
}

/// The error is at the first `token` written on `line` and its message contains `needle`.
#[track_caller]
fn at((e, vars): &(String, String), line: usize, token: &str, needle: &str) {
    let text = vars.lines().nth(line - 8).expect("the line is in vars");
    let column = text.find(token).expect("the token is on the line") + 1;
    let prefix = format!("pigsty.yml:{line}:{column}: error: ");
    assert!(e.starts_with(&prefix), "{e} (expected at {line}:{column})");
    assert!(e.contains(needle), "{e} (expected {needle:?})");
}

#[test]
fn connlimit_below_minus_one_is_refused() {
    let e = error("        pg_users:\n          - { name: u, connlimit: -5 }\n");
    at(
        &e,
        9,
        "-5",
        "`connlimit` must be an integer from -1 to 2147483647 (-1: no limit), got -5",
    );
    let e = error("        pg_databases:\n          - { name: d, connlimit: 3000000000 }\n");
    at(&e, 9, "3000000000", "got 3000000000");
    valid("        pg_users: [ { name: u, connlimit: -1 } ]\n        pg_databases: [ { name: d, connlimit: 0 } ]\n");
}

#[test]
fn nul_bytes_in_names_and_comments_are_refused() {
    for (field, token) in [
        ("schemas: [ \"a\\0b\" ]", "\"a"),
        ("extensions: [ { name: \"x\\0\" } ]", "\"x"),
        ("extensions: [ { name: x, schema: \"s\\0\" } ]", "\"s"),
        ("owner: \"o\\0\"", "\"o"),
        ("comment: \"c\\0\"", "\"c"),
    ] {
        let e = error(&format!(
            "        pg_databases:\n          - {{ name: d, {field} }}\n"
        ));
        at(&e, 9, token, "NUL byte");
    }
    let e = error("        pg_users:\n          - { name: u, roles: [ \"r\\0\" ] }\n");
    at(&e, 9, "\"r", "NUL byte");
    let e = error("        pg_users:\n          - { name: u, comment: \"c\\0\" }\n");
    at(&e, 9, "\"c", "`comment` contains a NUL byte");
    let e = error("        pg_users:\n          - { name: u, password: \"p\\0w\" }\n");
    at(&e, 9, "\"p", "`password` contains a NUL byte");
}

#[test]
fn a_name_that_yaml_reads_as_a_boolean_is_refused_with_the_token_quoted() {
    let e = error("        pg_users:\n          - { name: yes, password: x }\n");
    at(
        &e,
        9,
        "yes",
        "expected a string, got boolean (quote it: 'yes')",
    );
    let e = error("        pg_databases:\n          - name: On\n");
    at(&e, 9, "On", "(quote it: 'On')");
    let e = error("        pg_databases:\n          - { name: d, extensions: [ { name: x, version: 1.10 } ] }\n");
    at(
        &e,
        9,
        "1.10",
        "`extensions[0].version`: expected a string, got number (quote it: '1.10')",
    );
    let e = error("        pg_users:\n          - { name: u, password: 123456 }\n");
    at(
        &e,
        9,
        "123456",
        "`password`: expected a string, got integer",
    );
    assert!(
        !e.0.contains("123456"),
        "a password is never quoted: {}",
        e.0
    );
    valid("        pg_users: [ { name: 'yes' } ]\n        pg_databases: [ { name: 'on', extensions: [ { name: x, version: '1.10' } ] } ]\n");
}

#[test]
fn parameter_keys_and_values_must_be_what_set_accepts() {
    for (params, token, needle) in [
        ("{ \"a'b\": 1 }", "1", "is not a parameter name"),
        ("{ \"work_mem\\nx\": 1 }", "1", "is not a parameter name"),
        ("{ \"a..b\": 1 }", "1", "is not a parameter name"),
        (
            "{ work_mem: \"1MB\\nfsync = off\" }",
            "\"1MB",
            "one line of text",
        ),
        (
            "{ work_mem: [ 1MB ] }",
            "work_mem",
            "one line of text, a number or a boolean, got list",
        ),
        ("{ search_path: 'a,,b' }", "'a,,b'", "comma-separated list"),
        ("{ search_path: 3 }", "3", "takes a list"),
    ] {
        let e = error(&format!(
            "        pg_users:\n          - {{ name: u, parameters: {params} }}\n"
        ));
        at(&e, 9, token, needle);
    }
    let e = error("        pg_parameters: { \"x'y\": 1 }\n");
    at(&e, 8, "1", "is not a parameter name");
    let e = error("        pg_parameters: { shared_preload_libraries: '\"pg_stat' }\n");
    at(&e, 8, "'\"pg", "comma-separated list");
    valid("        pg_users: [ { name: u, parameters: { search_path: '\"$user\", public', work_mem: 64MB, x.y: on } } ]\n        pg_parameters: { shared_preload_libraries: 'pg_stat_statements, auto_explain', log_destination: [ csvlog ] }\n");
}

#[test]
fn node_settings_that_reach_files_and_commands_are_checked() {
    let e = error(
        "        node_firewall_intranet: [ \"10.0.0.0/8\\nhost all all 0.0.0.0/0 trust\" ]\n",
    );
    at(
        &e,
        8,
        "\"10",
        "`node_firewall_intranet[0]` must be an IP address or CIDR",
    );
    let e = error("        node_firewall_intranet: 10.0.0.0/8\n");
    at(&e, 8, "10.0", "must be a list of CIDRs, got string");
    let e = error("        pg_dbsu: 'postgres;rm'\n");
    at(
        &e,
        8,
        "'postgres",
        "`pg_dbsu` \"postgres;rm\" must be a Unix user name",
    );
    let e = error("        pg_data: data/pg\n");
    at(&e, 8, "data/", "`pg_data` must be an absolute path");
    let e = error("        pg_bin_dir: \"/usr/pgsql/bin\\n\"\n");
    at(
        &e,
        8,
        "\"/usr",
        "`pg_bin_dir` must be an absolute path on one line",
    );
    let e = error("        pg_version: 'sixteen'\n");
    at(
        &e,
        8,
        "'sixteen'",
        "`pg_version` must be a PostgreSQL major version",
    );
    let e = error("        pg_pwd_enc: md55\n");
    at(&e, 8, "md55", "`pg_pwd_enc` must be scram-sha-256 or md5");
    let e = error("        pg_admin_username: 'dba\"x'\n");
    at(&e, 8, "'dba", "`pg_admin_username`");
    let e = error("        pg_offline_query: 'yes'\n");
    at(&e, 8, "'yes'", "must be true or false");
    valid("        pg_dbsu: postgres\n        pg_data: /pg/data\n        node_firewall_intranet: [ 10.0.0.0/8, 'fd00::/8', 192.168.1.1 ]\n        pg_version: 16\n");
    // Pigsty reads `pg_version | int`: a quoted version is the same version
    valid("        pg_version: '16'\n");
}

#[test]
fn database_names_postgresql_or_pigsty_would_break_are_errors() {
    let e = error("        pg_databases: [ { name: \"x'; $(touch /tmp/p)\" } ]\n");
    at(
        &e,
        8,
        "\"x'",
        "breaks Pigsty's pgbouncer, HBA and SQL files",
    );
    let long = "d".repeat(64);
    let e = error(&format!("        pg_databases: [ {{ name: {long} }} ]\n"));
    at(
        &e,
        8,
        "ddd",
        "must be 1 to 63 bytes long (PostgreSQL truncates longer names), it has 64",
    );
    let e = error(&format!(
        "        pg_databases: [ {{ name: d, owner: {long} }} ]\n"
    ));
    at(&e, 8, "ddd", "it has 64");
    let inv = valid("        pg_databases: [ { name: 1db }, { name: 'meta.v2' } ]\n");
    let warnings: Vec<_> = inv.warnings().map(|d| d.message.clone()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().all(|w| w.contains("does not match")));
}

#[test]
fn other_typed_entry_fields_are_checked() {
    let user = |f: &str| {
        error(&format!(
            "        pg_users:\n          - {{ name: u, {f} }}\n"
        ))
    };
    at(
        &user("expire_at: '2030-13-01'"),
        9,
        "'2030",
        "`expire_at` must be a date YYYY-MM-DD",
    );
    at(
        &user("expire_in: 1000000"),
        9,
        "1000000",
        "from -100000 to 100000",
    );
    at(
        &user("pool_mode: fast"),
        9,
        "fast",
        "`pool_mode` must be one of transaction, session, statement",
    );
    at(
        &user("roles: [ { name: r, state: GRANT } ]"),
        9,
        "GRANT",
        "`roles[0].state` must be one of grant, revoke, absent",
    );
    at(
        &user("roles: [ { name: r, admin: 'yes' } ]"),
        9,
        "'yes'",
        "`roles[0].admin` must be true or false",
    );
    at(
        &user("roles: r"),
        9,
        "r }",
        "`roles` must be a list, got string",
    );
    at(
        &user("login: 'false'"),
        9,
        "'false'",
        "`login` must be true or false (unquoted), got string",
    );
    let db = |f: &str| {
        error(&format!(
            "        pg_databases:\n          - {{ name: d, {f} }}\n"
        ))
    };
    at(
        &db("schemas: [ { name: s, state: gone } ]"),
        9,
        "gone",
        "`schemas[0].state` must be one of create, absent",
    );
    at(
        &db("schemas: [ 3 ]"),
        9,
        "3",
        "a `schemas` entry must be a name or a mapping",
    );
    at(
        &db("extensions: [ { schema: s } ]"),
        9,
        "{ schema",
        "each `extensions` entry needs a `name`",
    );
    at(
        &db("locale: \"C\\nx\""),
        9,
        "\"C",
        "`locale` must be one line of text",
    );
    at(&db("template: d"), 9, "d }", "its own `template`");
    at(
        &db("pool_size: -1"),
        9,
        "-1",
        "`pool_size` must be an integer from 0",
    );
    at(
        &db("strategy: copy"),
        9,
        "copy",
        "`strategy` must be one of wal_log, file_copy",
    );
    let e = error(
        "        pg_version: 14\n        pg_databases: [ { name: d, locale_provider: icu } ]\n",
    );
    at(
        &e,
        9,
        "icu",
        "`locale_provider` needs PostgreSQL 15 or later; the cluster's `pg_version` is 14",
    );
    valid("        pg_databases: [ { name: d, locale_provider: ICU, strategy: FILE_COPY, schemas: [ a, { name: b, owner: 'o\"x' } ] } ]\n");
}

#[test]
fn services_are_checked_as_haproxy_reads_them() {
    let svc = |f: &str| {
        error(&format!(
            "        pg_services:\n          - {{ name: s, port: 5435, selector: '[]', {f} }}\n"
        ))
    };
    at(
        &svc("dest: \"default\\nlisten x\""),
        9,
        "\"default",
        "`dest` must be default, postgres, pgbouncer or a port number",
    );
    at(
        &svc("check: \"/x\\ny\""),
        9,
        "\"/x",
        "`check` must be one line of text",
    );
    at(
        &svc("maxconn: -1"),
        9,
        "-1",
        "`maxconn` must be an integer from 0",
    );
    let e = error("        pg_services: [ { name: ../x, port: 5435, selector: '[]' } ]\n");
    at(&e, 8, "../x", "service name \"../x\"");
    let e = error("        pg_services: [ { name: s, port: 70000, selector: '[]' } ]\n");
    at(&e, 8, "70000", "`port` must be an integer from 1 to 65535");
    valid("        pg_services: [ { name: s, port: 5435, selector: '[]', dest: 1433 } ]\n");
}

#[test]
fn errors_come_before_warnings_and_all_are_located() {
    let inv = inv("        pg_users: [ { name: u, connlimit: -5, colour: red } ]\n");
    let sev: Vec<Severity> = inv.diagnostics.iter().map(|d| d.severity).collect();
    assert_eq!(sev, [Severity::Error, Severity::Warning]);
    assert!(inv.diagnostics.iter().all(|d| d.line == 8 && d.column > 1));
}

/// Found by the fuzzer: a host key that is not an address passed (a warning) and then the HBA
/// renderer refused it as an `infra` or `cluster` address.
#[test]
fn infra_and_pgsql_host_keys_must_be_addresses() {
    let text = "all:\n  vars: { admin_ip: 10.10.10.10 }\n  children:\n    infra: { hosts: { all: { infra_seq: 1, ansible_host: u22 } } }\n    pg-test:\n      hosts: { 10.10.10.11: { pg_seq: 1, pg_role: primary } }\n      vars: { pg_cluster: pg-test }\n";
    let inv = load(&InventoryFiles::single("pigsty.yml", text), "t").expect("parses");
    let errors: Vec<String> = inv.errors().map(|d| d.to_string()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("pigsty.yml:4:"), "{errors:?}");
    assert!(
        errors[0].contains("host key \"all\" must be an IP address: it is an infra host"),
        "{errors:?}"
    );
    let text = text
        .replace("infra: { hosts: { all:", "etcd: { hosts: { all:")
        .replace("infra_seq", "etcd_seq");
    let inv = load(&InventoryFiles::single("pigsty.yml", &text), "t").expect("parses");
    assert!(
        inv.is_valid(),
        "other hosts only warn: {:?}",
        inv.diagnostics
    );
}

/// Found by the fuzzer: HBA rule lists were checked in the primary's variables only, but every
/// member's file is rendered from its own (here a replica inherits a broken `all.vars` value
/// that the primary's other group overrides).
#[test]
fn every_members_hba_rules_are_checked() {
    let text = "all:\n  vars: { admin_ip: 10.10.10.10, pg_hba_rules: -1 }\n  children:\n    pg-test:\n      hosts: { 10.10.10.11: { pg_seq: 1, pg_role: primary }, 10.10.10.12: { pg_seq: 2, pg_role: replica } }\n      vars: { pg_cluster: pg-test }\n    other:\n      hosts: { 10.10.10.11: {} }\n      vars: { pg_hba_rules: [] }\n";
    let inv = load(&InventoryFiles::single("pigsty.yml", text), "t").expect("parses");
    let errors: Vec<String> = inv.errors().map(|d| d.to_string()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("pigsty.yml:2:"), "{errors:?}");
    assert!(
        errors[0].contains("`pg_hba_rules` must be a list of rules"),
        "{errors:?}"
    );
}

/// Found by the fuzzer: `pg_default_roles` entries are rendered by the user SQL, so their fields
/// are checked as users' are (they were not, and rendering failed after validate passed).
#[test]
fn default_roles_are_checked_like_users() {
    let e = error("        pg_default_roles: [ { name: dbrole_x, superuser: 'yes' } ]\n");
    at(&e, 8, "'yes'", "`superuser`");
    let e = error("        pg_default_roles: [ { name: postgres, comment: [ a ] } ]\n");
    at(&e, 8, "comment", "`comment`");
    valid("        pg_default_roles: [ { name: postgres, superuser: true, comment: system superuser } ]\n");
}

#[test]
fn pgbouncer_settings_must_fit_its_files() {
    let e = error("        pgbouncer_redirect_to: '10.0.0.9 pool_size=1'\n");
    at(&e, 8, "'10.0.0.9", "database.txt");
    let e = error("        pg_localhost: '/run/a b'\n");
    at(&e, 8, "'/run", "database.txt");
    let e = error("        pg_databases: [ { name: d, pool_size: lots } ]\n");
    at(&e, 8, "lots", "pool_size");
    let e = error("        pg_users: [ { name: u, pool_mode: 'session x' } ]\n");
    at(&e, 8, "'session", "pool_mode");
    let e = error("        pgbouncer_enabled: 'yes'\n");
    at(&e, 8, "'yes'", "pgbouncer_enabled");
    valid("        pgbouncer_redirect_to: 10.0.0.9\n        pg_databases: [ { name: d, pool_size: 5, pool_mode: session, pool_connlimit: -1 } ]\n");
}

#[test]
fn an_unquoted_date_in_an_entry_is_a_warning_and_a_quoted_one_is_not() {
    let inv = valid(
        "        pg_users:\n          - { name: a, expire_at: 2031-01-01 }\n          - { name: b, expire_at: '2031-01-01' }\n          - { name: c, comment: \"2031-1-2 10:00:00\" }\n",
    );
    let warnings: Vec<String> = inv.warnings().map(|d| d.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].starts_with("pigsty.yml:9:35: warning: `expire_at` is an unquoted date"),
        "{}",
        warnings[0]
    );
}
