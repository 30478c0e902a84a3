//! The hostile corpus: inventories generated from the base inventory (`support/base.yml`) and
//! from raw text, each with what must happen to it.
//!
//! Classes: YAML syntax errors, BOM, top-level keys, alias bombs, deep nesting, huge scalars,
//! empty files, non-UTF-8 files, wrong types for every typed field, injection strings in every
//! name, password, comment, HBA and parameter field. Each case says whether it must be refused
//! (a located error) or accepted, and for an accepted hostile value how the renderers must show
//! it (an SQL literal, an SQL identifier, one HBA line) so that the test can prove it stays data.

use serde_yaml_ng::Value;

use crate::support::{base, to_yaml, BASE, SECRETS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A parse error or a validation error, located.
    Refuse,
    /// Valid; every SQL script and HBA file renders, and the proofs hold.
    Accept,
}

/// How an accepted hostile value must come out of the renderers.
#[derive(Debug, Clone)]
pub enum Proof {
    /// Quoted as an SQL literal in the plan's SQL.
    Literal(String),
    /// Quoted as an SQL identifier in the plan's SQL.
    Ident(String),
    /// On one line of the pg-meta primary's `pg_hba.conf`.
    HbaLine(String),
    /// Quoted as a literal in `ALTER SYSTEM` for `pg_parameters.work_mem`.
    System(String),
}

#[derive(Debug, Clone)]
pub struct Case {
    pub class: &'static str,
    pub name: String,
    /// The bytes of `pigsty.yml`.
    pub text: Vec<u8>,
    pub expect: Expect,
    /// Values that must never appear in any output (the base's passwords and the case's own).
    pub secrets: Vec<String>,
    pub proofs: Vec<Proof>,
    /// For a refused field: a text that the path of an error must contain (located at the node).
    pub at: Option<String>,
}

impl Case {
    fn raw(
        class: &'static str,
        name: impl Into<String>,
        text: impl Into<Vec<u8>>,
        expect: Expect,
    ) -> Case {
        Case {
            class,
            name: name.into(),
            text: text.into(),
            expect,
            secrets: SECRETS.iter().map(|s| s.to_string()).collect(),
            proofs: vec![],
            at: None,
        }
    }

    fn edit(class: &'static str, name: String, expect: Expect, f: impl FnOnce(&mut Value)) -> Case {
        let mut v = base();
        f(&mut v);
        Case::raw(class, name, to_yaml(&v), expect)
    }
}

fn meta(v: &mut Value) -> &mut Value {
    &mut v["all"]["children"]["pg-meta"]["vars"]
}

fn y(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

/// The whole corpus, in a fixed order.
pub fn corpus() -> Vec<Case> {
    let mut out = Vec::new();
    syntax(&mut out);
    structure(&mut out);
    sizes(&mut out);
    wrong_types(&mut out);
    injections(&mut out);
    out
}

fn syntax(out: &mut Vec<Case>) {
    use Expect::*;
    let bad = [
        "all:\n  vars: [1, 2\n",
        "all:\n  vars: {a: 1\n",
        "all:\n  vars:\n    a: 'unterminated\n",
        "all:\n  vars:\n    a: \"unterminated\n",
        "all:\n\tvars: {}\n",
        "all:\n  vars:\n   a: 1\n  b: 2\n c: 3\n",
        "all:\n  vars: {a: 1, a: 2}\n",
        "all:\n  vars:\n    a: *nowhere\n",
        "all: {}\n---\nall: {}\n",
        "all:\n  - a\n  b: c\n",
        "all:\n  vars: { : }\n  ]\n",
        "all:\n  vars:\n    a: b: c\n",
        "all:\n  vars: !!binary 'not base64'\n  x: [\n",
        "%YAML 9.9\n---\nall: {}\n",
        "all:\n  vars:\n    <<: 5\n",
        "all:\n  vars:\n    a: &x 1\n    b: &x\n",
        "all:\n  vars: {admin_ip: 10.0.0.1}\n  children: {pg: {hosts: {10.0.0.2: {pg_seq: 1}}}}\n  children: {}\n",
        "? [a, b]\n: c\nall: {}\n",
        "all:\n  vars: @reserved\n",
        "all: |\n  text\n bad\n",
        "all:\n  vars:\n    x: \"\\q\"\n",
        "[[[[[[[[[[\n",
    ];
    for (i, t) in bad.iter().enumerate() {
        out.push(Case::raw("syntax", format!("syntax-{i}"), *t, Refuse));
    }
}

fn structure(out: &mut Vec<Case>) {
    use Expect::*;
    let bom = format!("\u{feff}{BASE}");
    out.push(Case::raw("bom", "bom-then-base", bom.clone(), Accept));
    out.push(Case::raw(
        "bom",
        "bom-twice",
        format!("\u{feff}{bom}"),
        Refuse,
    ));
    out.push(Case::raw("bom", "bom-only", "\u{feff}", Refuse));
    let top = [
        (format!("ungrouped:\n  hosts: {{}}\n{BASE}"), Accept),
        (format!("x-defaults: &d {{ pg_seq: 1 }}\n{BASE}"), Refuse),
        (
            format!("x-defaults: &d {{ vars: {{ pg_seq: 1 }} }}\n{BASE}"),
            Accept,
        ),
        ("children: {}\n".to_string(), Refuse),
        ("all: [1, 2]\n".to_string(), Refuse),
        ("all: 5\n".to_string(), Refuse),
        ("all:\n".to_string(), Refuse),
        ("- all\n".to_string(), Refuse),
        ("just a scalar\n".to_string(), Refuse),
        (
            BASE.replacen("all:", "all: &root", 1) + "extra: *root\n",
            Accept,
        ),
        (
            format!("{BASE}pg-stray:\n  hosts: {{ 127.0.10.50: {{ pg_seq: 1 }} }}\n"),
            Accept,
        ),
        (BASE.replacen("name: dbuser_meta,", "name: yes,", 1), Refuse),
        (BASE.replacen("{ name: meta,", "{ name: on,", 1), Refuse),
    ];
    for (i, (t, e)) in top.into_iter().enumerate() {
        out.push(Case::raw("top-level", format!("top-{i}"), t, e));
    }
    for (i, t) in [
        "",
        " ",
        "\n\n\n",
        "# only a comment\n",
        "---\n",
        "...\n",
        "~\n",
    ]
    .iter()
    .enumerate()
    {
        out.push(Case::raw("empty", format!("empty-{i}"), *t, Refuse));
    }
    let non_utf8: [&[u8]; 4] = [
        b"all:\n  vars: { admin_ip: \xff\xfe }\n",
        b"\xff\xfeA\x00L\x00L\x00:\x00",
        b"all:\n  vars:\n    comment: \"caf\xe9\"\n",
        b"\x80",
    ];
    for (i, t) in non_utf8.iter().enumerate() {
        out.push(Case::raw(
            "non-utf8",
            format!("non-utf8-{i}"),
            t.to_vec(),
            Refuse,
        ));
    }
    // Alias bombs: `levels` levels of nine aliases each; up to 5 levels stays within the bound.
    for levels in [3, 5, 7, 9, 12] {
        let mut doc = String::from("    x-l0: &l0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..levels {
            doc.push_str(&format!(
                "    x-l{i}: &l{i} [{}]\n",
                vec![format!("*l{}", i - 1); 9].join(", ")
            ));
        }
        let expect = if levels <= 6 { Accept } else { Refuse };
        let text = BASE.replacen(
            "  vars:\n    version",
            &format!("  vars:\n{doc}    version"),
            1,
        );
        out.push(Case::raw(
            "alias-bomb",
            format!("alias-bomb-{levels}"),
            text,
            expect,
        ));
    }
    // Deep nesting inside a variable's value: the parser refuses more than 128 levels.
    for depth in [50, 120, 129, 1_000, 100_000] {
        let value = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let text = BASE.replacen(
            "  vars:\n    version",
            &format!("  vars:\n    deep: {value}\n    version"),
            1,
        );
        let expect = if depth < 125 { Accept } else { Refuse };
        out.push(Case::raw(
            "nesting",
            format!("nesting-{depth}"),
            text,
            expect,
        ));
    }
    let text = BASE.replacen(
        "  vars:\n    version",
        &format!(
            "  vars:\n    deep:{}\n    version",
            (0..200)
                .map(|i| format!("\n{}k{i}:", "  ".repeat(i + 3)))
                .collect::<String>()
        ),
        1,
    );
    out.push(Case::raw("nesting", "nesting-block-200", text, Refuse));
}

fn sizes(out: &mut Vec<Case>) {
    use Expect::*;
    let big = "x".repeat(1 << 20);
    let mut c = Case::edit("huge", "huge-comment-1MiB".into(), Accept, |v| {
        meta(v)["pg_users"][0]["comment"] = big.clone().into();
    });
    c.proofs.push(Proof::Literal(big.clone()));
    out.push(c);
    let mut c = Case::edit("huge", "huge-password-1MiB".into(), Accept, |v| {
        meta(v)["pg_users"][0]["password"] = big[..1 << 20].into();
    });
    c.secrets.push(big[..1 << 20].to_string());
    out.push(c);
    let mut c = Case::edit("huge", "huge-user-name-1MiB".into(), Refuse, |v| {
        meta(v)["pg_users"][0]["name"] = big[..1 << 20].into();
    });
    c.at = Some("pg_users[0].name".into());
    out.push(c);
    out.push(Case::edit("huge", "huge-key-1MiB".into(), Accept, |v| {
        v["all"]["vars"][big[..1 << 20].to_string()] = 1.into();
    }));
    out.push(Case::edit("huge", "huge-list-200k".into(), Accept, |v| {
        v["all"]["vars"]["long_list"] = Value::Sequence((0..200_000).map(Value::from).collect());
    }));
    out.push(Case::raw(
        "huge",
        "huge-line-4MiB",
        format!("{BASE}    # {}\n", "#".repeat(4 << 20)),
        Accept,
    ));
    let long_db = "d".repeat(64);
    let mut c = Case::edit("huge", "database-name-64-bytes".into(), Refuse, |v| {
        meta(v)["pg_databases"][0]["name"] = long_db.into();
    });
    c.at = Some("pg_databases[0].name".into());
    out.push(c);
}

/// Wrong values for every typed field; each must be refused at the field.
fn wrong_types(out: &mut Vec<Case>) {
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
            c.at = Some(format!("pg_services[0]"));
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
        ("group", "pg_version", &["'17'", "7.5", "5"]),
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
                "[{user: '@file', addr: world}]",
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

/// Strings that break out of quotes, statements, lines and shells.
pub const INJECTIONS: [&str; 15] = [
    "'",
    "\"",
    ";",
    "\n",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "\0",
    "\\",
    "--",
    "'); DROP TABLE t; --",
    "\r\n",
    "\u{202e}rtl",
    "{{ lookup('pipe','id') }}",
    "%s%n",
    "\t",
];

/// Where an injected value goes, and what must happen to it.
struct Target {
    name: &'static str,
    set: fn(&mut Value, &str),
    /// `None`: refused; `Some(proof)`: accepted and proved with it.
    fate: fn(&str) -> Option<Proof>,
    secret: bool,
    /// What the path of the refusal names.
    at: &'static str,
}

fn control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn injections(out: &mut Vec<Case>) {
    let name_like = |s: &str| (!control(s)).then(|| Proof::Ident(s.to_string()));
    let targets: Vec<Target> = vec![
        Target {
            name: "user-name",
            set: |v, s| meta(v)["pg_users"][0]["name"] = s.into(),
            fate: |s| {
                let ok =
                    |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_@.-".contains(&b);
                s.bytes().all(ok).then(|| Proof::Ident(s.into()))
            },
            secret: false,
            at: "pg_users",
        },
        Target {
            name: "user-password",
            set: |v, s| meta(v)["pg_users"][0]["password"] = s.into(),
            fate: |s| (!s.contains('\0')).then(|| Proof::Literal(String::new())),
            secret: true,
            at: "pg_users",
        },
        Target {
            name: "user-comment",
            set: |v, s| meta(v)["pg_users"][0]["comment"] = s.into(),
            fate: |s| (!s.contains('\0')).then(|| Proof::Literal(s.into())),
            secret: false,
            at: "pg_users",
        },
        Target {
            name: "database-name",
            set: |v, s| meta(v)["pg_databases"][0]["name"] = s.into(),
            fate: |s| {
                let breaks = s.chars().any(|c| {
                    c.is_whitespace()
                        || c.is_control()
                        || (c.is_ascii_punctuation() && !"_$-.".contains(c))
                });
                (!breaks).then(|| Proof::Ident(s.into()))
            },
            secret: false,
            at: "pg_databases",
        },
        Target {
            name: "database-comment",
            set: |v, s| meta(v)["pg_databases"][0]["comment"] = s.into(),
            fate: |s| (!s.contains('\0')).then(|| Proof::Literal(s.into())),
            secret: false,
            at: "pg_databases",
        },
        Target {
            name: "schema-name",
            set: |v, s| meta(v)["pg_databases"][0]["schemas"] = Value::Sequence(vec![s.into()]),
            fate: name_like,
            secret: false,
            at: "pg_databases",
        },
        Target {
            name: "extension-name",
            set: |v, s| meta(v)["pg_databases"][0]["extensions"][0]["name"] = s.into(),
            fate: name_like,
            secret: false,
            at: "pg_databases",
        },
        Target {
            name: "extension-schema",
            set: |v, s| meta(v)["pg_databases"][0]["extensions"][0]["schema"] = s.into(),
            fate: name_like,
            secret: false,
            at: "pg_databases",
        },
        Target {
            name: "database-owner",
            set: |v, s| meta(v)["pg_databases"][0]["owner"] = s.into(),
            fate: name_like,
            secret: false,
            at: "pg_databases",
        },
        Target {
            name: "granted-role",
            set: |v, s| meta(v)["pg_users"][0]["roles"] = Value::Sequence(vec![s.into()]),
            fate: name_like,
            secret: false,
            at: "pg_users",
        },
        Target {
            name: "parameter-key",
            set: |v, s| {
                meta(v)["pg_users"][0]["parameters"] =
                    Value::Mapping([(Value::from(s), Value::from(1))].into_iter().collect())
            },
            fate: |_| None,
            secret: false,
            at: "pg_users",
        },
        Target {
            name: "parameter-value",
            set: |v, s| {
                meta(v)["pg_users"][0]["parameters"] = Value::Mapping(
                    [(Value::from("work_mem"), Value::from(s))]
                        .into_iter()
                        .collect(),
                )
            },
            fate: |s| (!control(s)).then(|| Proof::Literal(s.into())),
            secret: false,
            at: "pg_users",
        },
        Target {
            name: "pg-parameter-value",
            set: |v, s| {
                meta(v)["pg_parameters"] = Value::Mapping(
                    [(Value::from("work_mem"), Value::from(s))]
                        .into_iter()
                        .collect(),
                )
            },
            fate: |s| (!control(s)).then(|| Proof::System(s.into())),
            secret: false,
            at: "pg_parameters",
        },
        Target {
            name: "hba-user",
            set: |v, s| meta(v)["pg_hba_rules"][0]["user"] = s.into(),
            fate: |s| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.@$+-".contains(&b))
                    .then(|| Proof::HbaLine(s.into()))
            },
            secret: false,
            at: "pg_hba_rules",
        },
        Target {
            name: "hba-db",
            set: |v, s| meta(v)["pg_hba_rules"][0]["db"] = s.into(),
            fate: |s| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.@$+-".contains(&b))
                    .then(|| Proof::HbaLine(s.into()))
            },
            secret: false,
            at: "pg_hba_rules",
        },
        Target {
            name: "hba-addr",
            set: |v, s| meta(v)["pg_hba_rules"][0]["addr"] = s.into(),
            fate: |_| None,
            secret: false,
            at: "pg_hba_rules",
        },
        Target {
            name: "hba-title",
            set: |v, s| meta(v)["pg_hba_rules"][0]["title"] = s.into(),
            fate: |_| Some(Proof::HbaLine("dbuser_view".into())),
            secret: false,
            at: "pg_hba_rules",
        },
        Target {
            name: "pg-dbsu",
            set: |v, s| meta(v)["pg_dbsu"] = s.into(),
            fate: |s| {
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
                    .then(|| Proof::HbaLine(s.into()))
            },
            secret: false,
            at: "pg_dbsu",
        },
        Target {
            name: "intranet-cidr",
            set: |v, s| {
                v["all"]["vars"]["node_firewall_intranet"] = Value::Sequence(vec![s.into()])
            },
            fate: |_| None,
            secret: false,
            at: "node_firewall_intranet",
        },
    ];
    for t in &targets {
        for (i, inj) in INJECTIONS.iter().enumerate() {
            let value = format!("x{inj}y");
            let fate = (t.fate)(&value);
            let expect = if fate.is_some() {
                Expect::Accept
            } else {
                Expect::Refuse
            };
            let mut c = Case::edit("injection", format!("{}-{i}", t.name), expect, |v| {
                (t.set)(v, &value)
            });
            if t.secret {
                c.secrets.push(value.clone());
            }
            c.at = Some(t.at.to_string());
            c.proofs
                .extend(fate.filter(|p| !matches!(p, Proof::Literal(s) if s.is_empty())));
            out.push(c);
        }
    }
}

/// The big inventories: `clusters` one-member clusters with a user and a database each, and
/// one cluster with `users` users.
pub fn big(clusters: u32, users: u32) -> Vec<(String, String)> {
    let mut c = String::from("all:\n  vars: { admin_ip: 10.0.0.1 }\n  children:\n");
    for i in 0..clusters {
        let ip = format!("10.{}.{}.{}", 1 + i / 65_536, (i / 256) % 256, i % 256);
        c.push_str(&format!("    pg-c{i}:\n      hosts: {{ {ip}: {{ pg_seq: 1, pg_role: primary }} }}\n      vars: {{ pg_cluster: pg-c{i}, pg_users: [ {{ name: u{i}, password: Pw.{i} }} ], pg_databases: [ {{ name: d{i}, owner: u{i} }} ] }}\n"));
    }
    let mut u = String::from("all:\n  vars: { admin_ip: 10.0.0.1 }\n  children:\n    pg-big:\n      hosts: { 10.0.0.2: { pg_seq: 1, pg_role: primary } }\n      vars:\n        pg_cluster: pg-big\n        pg_users:\n");
    for i in 0..users {
        u.push_str(&format!(
            "          - {{ name: user{i}, password: Pw.{i}, connlimit: 5, comment: 'c''{i}' }}\n"
        ));
    }
    vec![
        (format!("{clusters} clusters"), c),
        (format!("{users} users"), u),
    ]
}
