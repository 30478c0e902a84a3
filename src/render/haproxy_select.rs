//! JMESPath over a PGSQL cluster's members, as Ansible's `json_query` sees `hostvars`: each
//! member's effective variables as JSON plus `inventory_hostname`, ordered by `pg_seq`.
//!
//! In: the inventory, the cluster and an expression (a service's `selector` or `backup`). Out:
//! the selected host names. Pure. Python's JMESPath reads a backtick literal that is not JSON
//! as a string (Pigsty's defaults rely on it); [`elide_quotes`] does the same rewrite first.

use serde_json::{Map, Number, Value as Json};
use serde_yaml_ng::Value;

use super::haproxy::{host_vars, HaproxyError};
use crate::inventory::model::PgCluster;
use crate::inventory::yaml::scalar_text;
use crate::inventory::Inventory;

/// A YAML value as JSON for JMESPath (keys as text; tags dropped).
fn json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                n.as_f64()
                    .and_then(Number::from_f64)
                    .map_or(Json::Null, Json::Number)
            }
        }
        Value::String(s) => Json::String(s.clone()),
        Value::Sequence(s) => Json::Array(s.iter().map(json).collect()),
        Value::Mapping(m) => Json::Object(
            m.iter()
                .filter_map(|(k, v)| Some((scalar_text(k)?, json(v))))
                .collect(),
        ),
        Value::Tagged(t) => json(&t.value),
    }
}

/// The cluster's members as `hostvars` shows them to `json_query`, ordered by `pg_seq`.
pub(super) fn members(inv: &Inventory, c: &PgCluster) -> Result<Vec<Json>, HaproxyError> {
    let mut hosts: Vec<_> = c.members.values().collect();
    hosts.sort_by_key(|m| (m.seq, m.host.clone()));
    let mut out = vec![];
    for m in hosts {
        let vars = host_vars(inv, &m.host)?;
        let mut obj = Map::new();
        for k in vars.keys() {
            if let Some(v) = vars.get(k) {
                obj.insert(k.to_string(), json(&v.value));
            }
        }
        obj.insert("inventory_hostname".into(), Json::String(m.host.clone()));
        out.push(Json::Object(obj));
    }
    Ok(out)
}

/// `members | json_query(expr)`: the selected members' host names, in the result's order.
pub fn select(members: &[Json], expr: &str) -> Result<Vec<String>, String> {
    let e = jmespath::compile(&elide_quotes(expr)).map_err(|e| format!("is not JMESPath: {e}"))?;
    let data = jmespath::Variable::from_serializable(members).map_err(|e| e.to_string())?;
    let found = e.search(data).map_err(|e| format!("failed: {e}"))?;
    let Some(list) = found.as_array() else {
        return Ok(vec![]);
    };
    Ok(list
        .iter()
        .filter_map(|m| m.as_object())
        .filter_map(|o| o.get("inventory_hostname"))
        .filter_map(|h| h.as_string().cloned())
        .collect())
}

/// Python's JMESPath (the one `json_query` uses) reads a backtick literal that is not JSON as
/// a string (`primary` means "primary"; Pigsty's defaults rely on it): the same rewrite here.
pub(super) fn elide_quotes(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len() + 8);
    let mut rest = expr;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let body = &rest[start + 1..];
        let mut end = None;
        let mut esc = false;
        for (i, ch) in body.char_indices() {
            match ch {
                '\\' if !esc => esc = true,
                '`' if !esc => {
                    end = Some(i);
                    break;
                }
                _ => esc = false,
            }
        }
        let Some(end) = end else {
            out.push_str(&rest[start..]);
            return out;
        };
        let lit = body[..end].replace("\\`", "`");
        if serde_json::from_str::<Json>(&lit).is_ok() {
            out.push('`');
            out.push_str(&body[..end]);
            out.push('`');
        } else {
            let as_str = Json::String(lit.trim_start().to_string()).to_string();
            out.push('`');
            out.push_str(&as_str.replace('`', "\\`"));
            out.push('`');
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    out
}
