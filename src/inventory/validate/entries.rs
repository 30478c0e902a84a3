//! Checks of the entries of a PGSQL cluster: `pg_users`, `pg_databases`, `pg_services` and the
//! HBA rule lists, field by field (types from [`crate::inventory::fields`]).

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::{values, Out};
use crate::inventory::fields::{self, Kind};
use crate::inventory::hba_rule::{check_rule, Target};
use crate::inventory::named::Named;
use crate::inventory::positions::Seg;
use crate::inventory::{HostVars, Origin, Var};

fn field_origin(base: &Named, field: &str) -> Origin {
    let base = base.origin();
    let mut path = base.path;
    path.push(Seg::Key(field.to_string()));
    Origin {
        file: base.file,
        path,
    }
}

/// `name` must be written as a string: `name: yes` reads as the boolean `true`.
fn name_is_string(n: &Named, out: &mut Out) -> bool {
    match n.def().get("name").map(|v| values::string("name", v)) {
        Some(Err(p)) => {
            out.problem(&field_origin(n, "name"), p);
            false
        }
        _ => true,
    }
}

pub(super) fn check_users(users: &[Named], out: &mut Out) {
    for u in users {
        if !name_is_string(u, out) {
            continue;
        }
        let valid = u.name.len() <= 63
            && u.name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && u.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_@.-".contains(&b));
        if !valid {
            out.err(
                &field_origin(u, "name"),
                format!(
                    "user name {} must match ^[a-z_][a-z0-9_@.-]{{0,62}}$",
                    values::shown(&u.name)
                ),
            );
        }
        if u.name == "postgres" {
            out.err(
                &field_origin(u, "name"),
                "the user `postgres` is managed by Pigsty itself and cannot be a pg_users entry"
                    .into(),
            );
        }
        check_fields(u, fields::user_field, out);
        check_state(u, &["create", "absent"], out);
    }
}

/// `pg_default_roles` entries: SQL names with the fields of users (`postgres` is allowed here:
/// only its attributes and comment are converged).
pub(super) fn check_default_roles(roles: &[Named], out: &mut Out) {
    for r in roles {
        if !name_is_string(r, out) {
            continue;
        }
        if let Err(p) = values::sql_name("name", &r.name) {
            out.problem(&field_origin(r, "name"), p);
        }
        check_fields(r, fields::user_field, out);
    }
}

/// Characters that break a database name where Pigsty writes it unquoted or in its own quotes
/// (pgbouncer's database list `name = ...`, `"name"` in its SQL, the HBA `db` column).
fn breaks_pigsty(c: char) -> bool {
    c.is_whitespace() || c.is_control() || (c.is_ascii_punctuation() && !"_$-.".contains(c))
}

/// `pg_major`: the cluster's declared `pg_version` (17 when unset), for create-only options.
pub(super) fn check_databases(dbs: &[Named], pg_major: u32, out: &mut Out) {
    for d in dbs {
        if !name_is_string(d, out) {
            continue;
        }
        // Built only for a diagnostic: most names have none.
        let at = || field_origin(d, "name");
        if let Err(p) = values::sql_name("name", &d.name) {
            out.problem(&at(), p);
        } else if d.name.chars().any(breaks_pigsty) {
            out.err(&at(), format!("database name {} has a character that breaks Pigsty's pgbouncer, HBA and SQL files (whitespace, quotes, `=`, `,`, `;`, `#`, ...); use ^[A-Za-z_][A-Za-z0-9_$-]{{0,62}}$", values::shown(&d.name)));
        } else {
            let ok = d
                .name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && d.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'-');
            if !ok {
                out.warn(
                    &at(),
                    format!(
                        "database name {} does not match ^[A-Za-z_][A-Za-z0-9_$-]{{0,62}}$",
                        values::shown(&d.name)
                    ),
                );
            }
        }
        check_fields(d, fields::database_field, out);
        check_state(d, &["create", "absent", "recreate"], out);
        if d.def().get("template").and_then(Value::as_str) == Some(d.name.as_str()) {
            out.err(
                &field_origin(d, "template"),
                "a database cannot be its own `template`".into(),
            );
        }
        for key in fields::DB_CREATE_ONLY {
            let min = fields::database_min_version(key);
            if pg_major < min && d.def().get(key).is_some_and(|v| !v.is_null()) {
                out.err(&field_origin(d, key), format!("`{key}` needs PostgreSQL {min} or later; the cluster's `pg_version` is {pg_major}"));
            }
        }
    }
}

fn check_fields(n: &Named, kind_of: fn(&str) -> Option<Kind>, out: &mut Out) {
    let Some(map) = n.def().as_mapping() else {
        return;
    };
    for (k, v) in map {
        let Some(key) = k.as_str() else { continue };
        if v.is_null() {
            continue;
        }
        // The field's origin is built only for a diagnostic: most fields have none.
        let at = || field_origin(n, key);
        if v.as_str().is_some_and(looks_like_a_date) {
            out.warn_if_plain(&at(), format!("`{key}` is an unquoted date: Ansible reads it as a date object, and Pigsty's playbooks then fail on this entry (pgitops reads it as text); quote it"));
        }
        match kind_of(key) {
            None => out.warn(
                &at(),
                format!("unknown field `{key}`; it is kept and diffed but Pigsty ignores it"),
            ),
            Some(Kind::Params(list)) => {
                if let Err(p) = values::parameters(key, v, list) {
                    out.problem(&at(), p);
                }
            }
            Some(Kind::Entries(sub)) => check_entries(key, v, sub, &at, out),
            Some(kind) => {
                if let Err(p) = values::check(key, kind, v) {
                    out.problem(&at(), p);
                }
            }
        }
    }
}

/// What YAML 1.1 (PyYAML, Ansible) resolves to a timestamp when unquoted: `YYYY-M-D`, with or
/// without a time after it.
fn looks_like_a_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date = |end: usize| {
        let (m, d) = s
            .get(5..end)
            .and_then(|md| md.split_once('-'))
            .unwrap_or(("", ""));
        (1..=2).contains(&m.len())
            && (1..=2).contains(&d.len())
            && m.bytes().chain(d.bytes()).all(|c| c.is_ascii_digit())
    };
    let end = s.find(['T', 't', ' ']).unwrap_or(s.len());
    digits(0..4) && b.get(4) == Some(&b'-') && date(end)
}

/// A list of names (`roles`, `schemas`, `extensions`): each a name, or a mapping with a `name`
/// and the fields `sub` types.
fn check_entries(
    key: &str,
    v: &Value,
    sub: fn(&str) -> Option<Kind>,
    at: &dyn Fn() -> Origin,
    out: &mut Out,
) {
    let Some(items) = v.as_sequence() else {
        let got = values::type_name(v);
        return out.err(&at(), format!("`{key}` must be a list, got {got}"));
    };
    for (i, item) in items.iter().enumerate() {
        let o = || {
            let mut o = at();
            o.path.push(Seg::Index(i));
            o
        };
        let field = format!("{key}[{i}]");
        match item {
            Value::String(s) => {
                if let Err(p) = values::sql_name(&field, s) {
                    out.problem(&o(), p);
                }
            }
            Value::Mapping(m) => {
                if m.get("name").is_none_or(Value::is_null) {
                    out.err(&o(), format!("each `{key}` entry needs a `name`"));
                }
                for (k, v) in m {
                    let Some(k) = k.as_str() else { continue };
                    let (Some(kind), false) = (sub(k), v.is_null()) else {
                        continue;
                    };
                    if let Err(p) = values::check(&format!("{field}.{k}"), kind, v) {
                        let mut fo = o();
                        fo.path.push(Seg::Key(k.to_string()));
                        out.problem(&fo, p);
                    }
                }
            }
            other => out.err(
                &o(),
                format!(
                    "a `{key}` entry must be a name or a mapping with a `name`, got {}",
                    values::type_name(other)
                ),
            ),
        }
    }
}

fn check_state(n: &Named, allowed: &[&str], out: &mut Out) {
    if let Some(s) = n.def().get("state").filter(|s| !s.is_null()) {
        if !s.as_str().is_some_and(|s| allowed.contains(&s)) {
            out.warn(
                &field_origin(n, "state"),
                format!(
                    "`state` should be one of {}; any other value does nothing",
                    allowed.join(", ")
                ),
            );
        }
    }
}

pub(super) fn check_services(services: &[Named], out: &mut Out) {
    let mut ports: BTreeMap<i64, &str> = BTreeMap::new();
    for s in services {
        if !name_is_string(s, out) {
            continue;
        }
        let service_name = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        if s.name.is_empty() || s.name.len() > 63 || !s.name.chars().all(service_name) {
            let shown = values::shown(&s.name);
            out.err(&field_origin(s, "name"), format!("service name {shown} must be 1 to 63 letters, digits, `_`, `.` or `-` (it names HAProxy files)"));
        }
        check_fields(s, fields::service_field, out);
        let dest_ok = |v: &Value| match v {
            Value::String(d) => !d.is_empty() && !d.chars().any(char::is_control),
            Value::Number(_) => v.as_i64().is_some_and(|p| (1..=65535).contains(&p)),
            _ => v.is_null(),
        };
        if let Some(dest) = s.def().get("dest").filter(|v| !dest_ok(v)) {
            let got = values::type_name(dest);
            out.err(
                &field_origin(s, "dest"),
                format!("`dest` must be default, postgres, pgbouncer or a port number, got {got}"),
            );
        }
        for f in ["port", "selector"] {
            if s.def().get(f).is_none_or(Value::is_null) {
                out.err(&s.origin(), format!("service {:?} needs `{f}`", s.name));
            }
        }
        if let Some(p) = s.def().get("port").and_then(Value::as_i64) {
            if let Some(other) = ports.insert(p, &s.name) {
                out.err(
                    &field_origin(s, "port"),
                    format!(
                        "service {:?} uses port {p}, already used by {other:?}",
                        s.name
                    ),
                );
            }
        }
    }
}

pub(super) fn check_hba(vars: &HostVars, key: &str, target: Target, out: &mut Out) {
    let Some(Var { value, origin }) = vars.get(key) else {
        return;
    };
    let Some(rules) = value.as_sequence() else {
        if !value.is_null() {
            out.err(origin, format!("`{key}` must be a list of rules"));
        }
        return;
    };
    // The rule's location is built only when there is something to say about it.
    let at = |i: usize| {
        let mut o = (**origin).clone();
        o.path.push(Seg::Index(i));
        o
    };
    for (i, rule) in rules.iter().enumerate() {
        if let Err(msg) = check_rule(rule, target) {
            out.err(&at(i), msg);
        } else if rule.get("title").is_none() {
            out.warn(&at(i), format!("`{key}` rule without a `title`"));
        }
    }
}
