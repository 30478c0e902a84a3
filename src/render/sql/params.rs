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

/// List-type GUCs; `log_destination` only for databases (§2.1, §3.1).
pub(super) const LIST_GUCS: [&str; 5] = [
    "search_path",
    "temp_tablespaces",
    "local_preload_libraries",
    "session_preload_libraries",
    "log_destination",
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

/// GUC names: `^[A-Za-z_][A-Za-z0-9_.]*$` without empty dotted parts.
pub(super) fn check_guc_name(field: &str, key: &str) -> Result<()> {
    let mut chars = key.chars();
    let head_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let tail_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !head_ok || !tail_ok || key.split('.').any(str::is_empty) {
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

/// Split `a, "B", c` like PostgreSQL splits an unquoted list value.
fn split_list(field: &str, s: &str) -> Result<Vec<String>> {
    let bad = || invalid(field, "a comma-separated list of names, \"quoted\" or not");
    let (mut items, mut rest) = (Vec::new(), s.trim_start());
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let (mut item, mut tail) = (String::new(), quoted);
            loop {
                let end = tail.find('"').ok_or_else(bad)?;
                item.push_str(&tail[..end]);
                tail = &tail[end + 1..];
                let Some(t) = tail.strip_prefix('"') else {
                    break;
                };
                item.push('"'); // a doubled quote
                tail = t;
            }
            items.push(item);
            rest = tail.trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let item = rest[..end].trim_end();
            if item.is_empty() {
                return Err(bad());
            }
            items.push(item.to_ascii_lowercase());
            rest = &rest[end..];
        }
        match rest.strip_prefix(',') {
            Some(r) if !r.trim().is_empty() => rest = r.trim_start(),
            None if rest.is_empty() => {}
            _ => return Err(bad()),
        }
    }
    Ok(items)
}
