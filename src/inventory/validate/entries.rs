//! Checks of the entries of a PGSQL cluster: `pg_users`, `pg_databases`, `pg_services` and the
//! HBA rule lists, field by field (types from [`crate::inventory::fields`]).

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::Out;
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

pub(super) fn check_users(users: &[Named], out: &mut Out) {
    for u in users {
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
                    "user name {:?} must match ^[a-z_][a-z0-9_@.-]{{0,62}}$",
                    u.name
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
        if let Some(Value::Sequence(roles)) = u.def().get("roles") {
            for (i, r) in roles.iter().enumerate() {
                let ok = r.is_string() || r.get("name").is_some_and(Value::is_string);
                if !ok {
                    let mut o = field_origin(u, "roles");
                    o.path.push(Seg::Index(i));
                    out.err(
                        &o,
                        "a `roles` entry must be a role name or a mapping with a `name`".into(),
                    );
                }
            }
        } else if u.def().get("roles").is_some_and(|r| !r.is_null()) {
            out.err(&field_origin(u, "roles"), "`roles` must be a list".into());
        }
        if let Some(p) = u
            .def()
            .get("parameters")
            .filter(|p| !p.is_null() && !p.is_mapping())
        {
            let _ = p;
            out.err(
                &field_origin(u, "parameters"),
                "`parameters` must be a mapping".into(),
            );
        }
    }
}

pub(super) fn check_databases(dbs: &[Named], out: &mut Out) {
    for d in dbs {
        let ok = d.name.len() <= 63
            && d.name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && d.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'-');
        if !ok {
            out.warn(
                &field_origin(d, "name"),
                format!(
                    "database name {:?} does not match ^[A-Za-z_][A-Za-z0-9_$-]{{0,62}}$",
                    d.name
                ),
            );
        }
        check_fields(d, fields::database_field, out);
        check_state(d, &["create", "absent", "recreate"], out);
        for list in ["schemas", "extensions"] {
            match d.def().get(list) {
                None | Some(Value::Null) | Some(Value::Sequence(_)) => {}
                Some(_) => out.err(&field_origin(d, list), format!("`{list}` must be a list")),
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
        let at = || field_origin(n, key);
        let wrong = match kind_of(key) {
            _ if v.is_null() => None,
            None => {
                out.warn(
                    &at(),
                    format!("unknown field `{key}`; it is kept and diffed but Pigsty ignores it"),
                );
                None
            }
            Some(Kind::Bool) if !v.is_bool() => Some("true or false"),
            Some(Kind::Int) if !v.is_i64() => Some("an integer"),
            Some(Kind::Text) if !v.is_string() => Some("a string (quote it)"),
            Some(_) => None,
        };
        if let Some(expected) = wrong {
            out.err(&at(), format!("`{key}` must be {expected}"));
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
