//! `pg_parameters` as SQL: `ALTER SYSTEM SET` for the keys to set, `ALTER SYSTEM RESET` for the
//! keys removed from the inventory (other `postgresql.auto.conf` entries, such as a replica's
//! `primary_conninfo`, are left alone), and the query that reports which of them wait for a
//! restart. In: names and YAML values. Out: a script / a query; values quoted as for `parameters`.

use serde_yaml_ng::Value;

use super::out::Out;
use super::params::{check_guc_name, guc_value};
use super::quote::{ident, literal};
use super::{Result, Script};

/// `ALTER SYSTEM` cannot run inside a transaction block; psql runs each statement on its own.
pub fn alter_system(set: &[(&str, &Value)], reset: &[&str]) -> Result<Script> {
    let mut out = Out::default();
    for (name, value) in set {
        let field = format!("pg_parameters.{name}");
        check_guc_name(&field, name)?;
        let v = guc_value(&field, name, value, &crate::inventory::fields::LIST_GUCS)?;
        out.sql(format!("ALTER SYSTEM SET {} TO {v};", ident(&field, name)?));
    }
    for name in reset {
        let field = format!("pg_parameters.{name}");
        check_guc_name(&field, name)?;
        out.sql(format!("ALTER SYSTEM RESET {};", ident(&field, name)?));
    }
    out.sql("SELECT pg_reload_conf();".to_string());
    Ok(out.done_outside_transaction())
}

/// Lists those of `names` that are waiting for a restart.
pub fn pending_restart_query(names: &[&str]) -> Result<String> {
    let list = names
        .iter()
        .map(|n| literal("pg_parameters", n))
        .collect::<Result<Vec<_>>>()?;
    let list = if list.is_empty() {
        "NULL".to_string()
    } else {
        list.join(", ")
    };
    Ok(format!(
        "SELECT name FROM pg_settings WHERE pending_restart AND name IN ({list}) ORDER BY name;"
    ))
}
