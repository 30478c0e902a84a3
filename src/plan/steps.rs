//! Native step previews: what the native executor will run for an action, as text.
//!
//! In: the inventory revision an action reads and the object's name. Out: lines to show in the
//! plan — SQL rendered by [`crate::render::sql`] with passwords as `<redacted>`, and the file and
//! reload steps for HBA and parameters. A preview that cannot be rendered says why instead.

use serde_yaml_ng::Mapping;

use crate::inventory::model::PgCluster;
use crate::inventory::Inventory;
use crate::render::sql::{self, Script, Secret, SqlContext};

/// An action the native executor does not perform; the program says so rather than pretend.
pub fn not_native(what: &str) -> Vec<String> {
    vec![format!("native executor: {what} is not performed natively; use executor = \"pigsty\" (it runs the command above)")]
}

fn ctx<'a>(inv: &'a Inventory, c: &PgCluster) -> SqlContext<'a> {
    crate::render::sql_context(inv, c, None)
}

/// The definition of the named entry, as a mapping.
pub fn def<'c>(list: &'c [crate::inventory::named::Named], name: &str) -> Option<&'c Mapping> {
    list.iter()
        .find(|n| n.name == name)
        .and_then(|n| n.def().as_mapping())
}

fn script(s: Result<Script, sql::SqlError>) -> Vec<String> {
    match s {
        Ok(s) => vec![s.to_psql_input()],
        Err(e) => vec![format!("cannot render SQL: {e}")],
    }
}

pub fn user_upsert(inv: &Inventory, c: &PgCluster, name: &str) -> Vec<String> {
    match def(&c.users, name) {
        Some(d) => script(sql::user_upsert(name, d, Secret::Redacted, &ctx(inv, c))),
        None => vec![],
    }
}

pub fn user_drop(inv: &Inventory, c: &PgCluster, name: &str) -> Vec<String> {
    script(sql::user_drop(name, &ctx(inv, c)))
}

pub fn database_upsert(inv: &Inventory, c: &PgCluster, name: &str) -> Vec<String> {
    let Some(d) = def(&c.databases, name) else {
        return vec![];
    };
    match sql::database_upsert(name, d, &ctx(inv, c)) {
        Ok(s) => {
            let mut out = vec![
                format!(
                    "-- in database {}\n{}",
                    s.admin_db,
                    s.create.to_psql_input()
                ),
                format!("-- in database {name:?}\n{}", s.provision.to_psql_input()),
            ];
            if !s.finish.statements.is_empty() {
                out.push(format!(
                    "-- in database {}\n{}",
                    s.admin_db,
                    s.finish.to_psql_input()
                ));
            }
            out
        }
        Err(e) => vec![format!("cannot render SQL: {e}")],
    }
}

pub fn database_drop(inv: &Inventory, c: &PgCluster, name: &str) -> Vec<String> {
    script(sql::database_drop(name, &ctx(inv, c)))
}

pub fn database_recreate(inv: &Inventory, c: &PgCluster, name: &str) -> Vec<String> {
    let mut out = database_drop(inv, c, name);
    out.extend(database_upsert(inv, c, name));
    out
}

pub fn hba(files: &[&str]) -> Vec<String> {
    files
        .iter()
        .map(|f| match *f {
            "pgb_hba" => "write /etc/pgbouncer/pgb_hba.conf atomically (live role), reload pgbouncer".to_string(),
            _ => "write pg_hba.conf atomically (live role), SELECT pg_reload_conf(), check pg_hba_file_rules; put the old file back on any error".to_string(),
        })
        .collect()
}

pub fn parameters(names: &[&str]) -> Vec<String> {
    vec![format!(
        "set {} in postgresql.auto.conf on each host, SELECT pg_reload_conf(), report parameters pending restart (never restarts)",
        names.join(", ")
    )]
}
