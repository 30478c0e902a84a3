//! Wrong values for every typed field of users, databases, services and host variables: each
//! must be refused at the field.

use serde_yaml_ng::Value;

use super::{meta, y, Case, Expect};

/// Wrong values for every typed field; each must be refused at the field.
pub(super) fn wrong_types(out: &mut Vec<Case>) {
    let user: &[(&str, &[&str])] = &[
        ("name", &["true", "12", "[u]", "{x: 1}"]),
        ("login", &["'true'", "1", "[true]"]),
        ("superuser", &["'true'", "0"]),
        ("createdb", &["'false'", "1.5"]),
        ("createrole", &["on_", "{}"]),
        ("inherit", &["'false'", "[]"]),
        ("replication", &["1", "'TRUE'"]),
        ("bypassrls", &["'true'", "2"]),
        ("pgbouncer", &["'true'", "1"]),
        ("connlimit", &["-5", "'10'", "1.5", "true", "3000000000"]),
        ("pool_connlimit", &["-2", "'8'"]),
        ("expire_in", &["'30'", "1000000", "true"]),
        (
            "expire_at",
            &["20301231", "'2030-02-30'", "tomorrow", "'2030-1-1'"],
        ),
        ("password", &["123456", "[a]", "{x: 1}", "true"]),
        ("comment", &["5", "[c]", "{c: 1}"]),
        (
            "roles",
            &[
                "dbrole_admin",
                "{a: 1}",
                "[5]",
                "[{name: r, state: maybe}]",
                "[{admin: true}]",
                "[{name: r, admin: 'true'}]",
            ],
        ),
        (
            "parameters",
            &[
                "[a]",
                "'work_mem=1MB'",
                "{'bad key': 1}",
                "{work_mem: [1, 2]}",
                "{search_path: 'a,,b'}",
            ],
        ),
        ("pool_mode", &["fast", "1", "Session"]),
    ];
    for (field, values) in user {
        for (i, value) in values.iter().enumerate() {
            let mut c = Case::edit(
                "wrong-type",
                format!("user-{field}-{i}"),
                Expect::Refuse,
                |v| {
                    meta(v)["pg_users"][0][*field] = y(value);
                },
            );
            c.at = Some(format!("pg_users[0].{field}"));
            out.push(c);
        }
    }
    let db: &[(&str, &[&str])] = &[
        ("name", &["true", "7", "[x]"]),
        ("owner", &["5", "[x]", "''"]),
        ("template", &["1", "''", "meta"]),
        ("encoding", &["8", "[x]", "\"UTF8\\n\""]),
        ("locale", &["true", "{}"]),
        ("lc_collate", &["1"]),
        ("lc_ctype", &["[x]"]),
        ("locale_provider", &["xyz", "1"]),
        ("icu_locale", &["5"]),
        ("icu_rules", &["[r]"]),
        ("builtin_locale", &["true"]),
        ("strategy", &["5", "copy"]),
        ("tablespace", &["0", "''"]),
        ("allowconn", &["'true'", "0"]),
        ("revokeconn", &["'true'"]),
        ("register_datasource", &["1"]),
        ("is_template", &["'false'"]),
        ("pgbouncer", &["'True'"]),
        ("connlimit", &["-2", "'5'"]),
        (
            "schemas",
            &[
                "pigsty",
                "[1]",
                "[{state: absent}]",
                "[{name: s, state: x}]",
                "[{name: s, owner: 5}]",
            ],
        ),
        (
            "extensions",
            &[
                "x",
                "[{name: x, version: 1.0}]",
                "[{name: x, schema: ''}]",
                "[[x]]",
            ],
        ),
        (
            "parameters",
            &[
                "x",
                "{'a b': 1}",
                "{search_path: [1]}",
                "{work_mem: {x: 1}}",
            ],
        ),
        ("comment", &["1", "[c]"]),
        ("pool_mode", &["x"]),
        ("pool_size", &["-1", "'5'"]),
        ("pool_size_min", &["x"]),
        ("pool_reserve", &["-3"]),
        ("pool_auth_user", &["5"]),
        ("baseline", &["5", "\"a\\nb\""]),
    ];
    for (field, values) in db {
        for (i, value) in values.iter().enumerate() {
            let mut c = Case::edit(
                "wrong-type",
                format!("database-{field}-{i}"),
                Expect::Refuse,
                |v| {
                    meta(v)["pg_databases"][0][*field] = y(value);
                },
            );
            c.at = Some(format!("pg_databases[0].{field}"));
            out.push(c);
        }
    }
    let svc: &[(&str, &[&str])] = &[
        ("name", &["'a/b'", "true", "''"]),
        ("port", &["x", "0", "70000"]),
        ("selector", &["5", "\"[]\\n\""]),
        ("dest", &["\"a\\nb\"", "[x]", "0"]),
        ("maxconn", &["-1", "x"]),
        ("ip", &["[x]"]),
        ("check", &["{x: 1}"]),
        ("backup", &["5"]),
        ("options", &["\"a\\rb\""]),
    ];
    for (field, values) in svc {
        for (i, value) in values.iter().enumerate() {
            let mut c = Case::edit(
                "wrong-type",
                format!("service-{field}-{i}"),
                Expect::Refuse,
                |v| {
                    let mut s = y("{ name: standby, port: 5435, selector: '[]', dest: default }");
                    s[*field] = y(value);
                    meta(v)["pg_services"] = Value::Sequence(vec![s]);
                },
            );
            c.at = Some("pg_services[0]".to_string());
            out.push(c);
        }
    }
    host_vars(out);
}

fn host_vars(out: &mut Vec<Case>) {
    // (where: all | group | host, variable, wrong values)
    let table: &[(&str, &str, &[&str])] = &[
        ("group", "pg_dbsu", &["5", "'a;b'", "Root", "'-oX'"]),
        ("group", "pg_bin_dir", &["relative/bin", "5", "\"/x\\ny\""]),
        ("group", "pg_data", &["['/a']", "''"]),
        ("group", "pg_fs_main", &["data"]),
        (
            "host",
            "pg_port",
            &["x", "0", "70000", "-1", "'5432; rm -rf /'"],
        ),
        ("host", "ansible_port", &["x", "[22]"]),
        (
            "host",
            "ansible_host",
            &["'-oProxyCommand=x'", "5", "'a b'"],
        ),
        ("host", "ansible_user", &["'a b'", "[root]"]),
        ("host", "pg_seq", &["one", "-1", "1.5"]),
        ("host", "pg_role", &["master", "5"]),
        ("group", "pg_cluster", &["5", "'pg meta'", "root"]),
        ("group", "pg_version", &["'seventeen'", "7.5", "5"]),
        ("host", "pg_offline_query", &["'true'", "1"]),
        ("group", "pg_pwd_enc", &["sha1", "5"]),
        (
            "all",
            "node_firewall_intranet",
            &[
                "10.0.0.0/8",
                "[x]",
                "[5]",
                "[\"10.0.0.0/8\\nhost all all 0/0 trust\"]",
            ],
        ),
        ("all", "admin_ip", &["localhost", "5", "'10.0.0.1; x'"]),
        (
            "group",
            "pg_parameters",
            &[
                "[x]",
                "x",
                "{\"a'b\": 1}",
                "{work_mem: {x: 1}}",
                "{work_mem: \"1\\n\"}",
            ],
        ),
        (
            "group",
            "pg_hba_rules",
            &[
                "x",
                "[{addr: \"0.0.0.0/0\\nhost\", auth: trust}]",
                "[{user: 'a b', addr: world}]",
                "[5]",
                "[{user: all, addr: world, auth: magic}]",
                // `@file` and comma lists are legal pg_hba.conf; an empty list element is not
                "[{user: 'a,,b', addr: world}]",
                "[{rules: [\"host all all 0/0 trust\\nlocal all all trust\"]}]",
            ],
        ),
        (
            "group",
            "pg_default_hba_rules",
            &["{}", "[{user: '${nobody}', addr: local}]"],
        ),
        (
            "group",
            "pgb_hba_rules",
            &[
                "[{db: replication, addr: world}]",
                "[{addr: world, role: king}]",
            ],
        ),
        (
            "group",
            "pg_users",
            &["x", "{a: 1}", "[5]", "[{password: x}]"],
        ),
        ("group", "pg_databases", &["5", "[[x]]"]),
        ("group", "pg_services", &["{}", "[{name: s}]"]),
        ("group", "pg_replication_username", &["'a;b'", "5"]),
        ("group", "pg_admin_username", &["5", "'X Y'"]),
        ("group", "pg_monitor_username", &["\"m\\n\""]),
        ("all", "pg_admin_password", &["[x]", "{x: 1}", "\"p\\0w\""]),
        ("host", "redis_instances", &["x", "{abc: {}}"]),
        ("host", "redis_node", &["x"]),
    ];
    for (place, var, values) in table {
        for (i, value) in values.iter().enumerate() {
            let mut c = Case::edit(
                "wrong-type",
                format!("{place}-{var}-{i}"),
                Expect::Refuse,
                |v| {
                    let value = y(value);
                    match *place {
                        "all" => v["all"]["vars"][*var] = value,
                        "group" => meta(v)[*var] = value,
                        _ if var.starts_with("redis") => {
                            v["all"]["children"]["redis-ms"]["hosts"]["127.0.10.10"][*var] = value
                        }
                        _ => v["all"]["children"]["pg-test"]["hosts"]["127.0.10.12"][*var] = value,
                    }
                },
            );
            c.at = Some(var.to_string());
            out.push(c);
        }
    }
}
