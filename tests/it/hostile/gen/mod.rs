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

    pub(super) fn edit(
        class: &'static str,
        name: String,
        expect: Expect,
        f: impl FnOnce(&mut Value),
    ) -> Case {
        let mut v = base();
        f(&mut v);
        Case::raw(class, name, to_yaml(&v), expect)
    }
}

mod inject;
mod types;

use inject::injections;
use types::wrong_types;

pub(super) fn meta(v: &mut Value) -> &mut Value {
    &mut v["all"]["children"]["pg-meta"]["vars"]
}

pub(super) fn y(text: &str) -> Value {
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
