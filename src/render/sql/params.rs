//! `parameters` rendering: one `ALTER <ROLE|DATABASE> ... SET "<guc>" TO <value>` per entry.
//!
//! In: the entry's `parameters` mapping (through `Def`), the `ALTER` target and which GUCs take a
//! list. Out: statements appended to the script. GUC names must match `^[A-Za-z_][A-Za-z0-9_.]*$`
//! and are quoted anyway; values become literals (or `DEFAULT`). A list GUC given as a string is
//! split the way PostgreSQL splits an unquoted list (bare elements ASCII-lowercased, `"..."` kept
//! verbatim); given as a YAML list it is taken verbatim.

use serde_yaml_ng::Value;

use super::def::Def;
use super::out::Out;
use super::quote::{ident, literal};
use super::{invalid, Result};
use crate::inventory::fields;

/// List-type GUCs; `log_destination` only for databases (§2.1, §3.1).
pub(super) const LIST_GUCS: [&str; 5] = [
    fields::LIST_GUCS[0],
    fields::LIST_GUCS[1],
    fields::LIST_GUCS[2],
    fields::LIST_GUCS[3],
    fields::LIST_GUCS[4],
];

/// `ALTER <target> SET "<guc>" TO <value>` per non-null `parameters` entry.
pub(super) fn set_parameters(
    out: &mut Out,
    d: &Def,
    target: &str,
    list_gucs: &[&str],
) -> Result<()> {
    let pfield = d.field("parameters");
    let Some(params) = d.typed("parameters", "a mapping", Value::as_mapping)? else {
        return Ok(());
    };
    for (k, v) in params {
        let key = k.as_str().ok_or_else(|| invalid(&pfield, "string keys"))?;
        let field = format!("{pfield}.{key}");
        check_guc_name(&field, key)?;
        if !v.is_null() {
            let value = guc_value(&field, key, v, list_gucs)?;
            out.sql(format!(
                "ALTER {target} SET {} TO {value};",
                ident(&field, key)?
            ));
        }
    }
    Ok(())
}

/// GUC names: `^[A-Za-z_][A-Za-z0-9_.]*$` without empty dotted parts (the rule validation uses).
pub(super) fn check_guc_name(field: &str, key: &str) -> Result<()> {
    if !fields::is_guc_name(key) {
        return Err(invalid(field, "a name matching ^[A-Za-z_][A-Za-z0-9_.]*$"));
    }
    Ok(())
}

pub(super) fn guc_value(field: &str, key: &str, v: &Value, list_gucs: &[&str]) -> Result<String> {
    if v.as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("default"))
    {
        return Ok("DEFAULT".to_string());
    }
    if !list_gucs.iter().any(|g| g.eq_ignore_ascii_case(key)) {
        return match v {
            Value::String(s) => literal(field, s),
            Value::Number(n) => literal(field, &n.to_string()),
            Value::Bool(b) => literal(field, if *b { "on" } else { "off" }),
            _ => Err(invalid(field, "a string, number or boolean")),
        };
    }
    let items: Vec<String> = match v {
        Value::String(s) => split_list(field, s)?,
        Value::Sequence(seq) => {
            let item = |i: &Value| i.as_str().map(str::to_string);
            let items = seq.iter().map(item).collect::<Option<_>>();
            items.ok_or_else(|| invalid(field, "a list of strings"))?
        }
        _ => {
            return Err(invalid(
                field,
                "a comma-separated string or a list of strings",
            ))
        }
    };
    let quoted = items
        .iter()
        .map(|i| literal(field, i))
        .collect::<Result<Vec<_>>>()?;
    Ok(if quoted.is_empty() {
        "''".to_string()
    } else {
        quoted.join(", ")
    })
}

/// Split `a, "B", c` like PostgreSQL splits an unquoted list value (the rule validation uses).
fn split_list(field: &str, s: &str) -> Result<Vec<String>> {
    fields::split_guc_list(s)
        .ok_or_else(|| invalid(field, "a comma-separated list of names, \"quoted\" or not"))
}
