//! Injection strings in every name, password, comment, HBA and parameter field: refused, or
//! accepted with the proof of how the renderers must quote them.

use serde_yaml_ng::Value;

use super::{meta, Case, Expect, Proof};

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

pub(super) fn injections(out: &mut Vec<Case>) {
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
            fate: hba_word,
            secret: false,
            at: "pg_hba_rules",
        },
        Target {
            name: "hba-db",
            set: |v, s| meta(v)["pg_hba_rules"][0]["db"] = s.into(),
            fate: hba_word,
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

/// An HBA user or database field: a plain word is written on the rule's line; anything else is
/// refused.
fn hba_word(s: &str) -> Option<Proof> {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.@$+-".contains(&b))
        .then(|| Proof::HbaLine(s.into()))
}
