//! Previews of object steps: the SQL each runs, from the one audited renderer
//! ([`crate::render::sql`]), with passwords as `<redacted>` and where each script runs.

use super::step::{Definition, ObjectStep, SqlTarget};
use crate::render::sql::{self, Secret};

impl ObjectStep {
    pub(super) fn preview(&self) -> Vec<String> {
        let one = |s: Result<sql::Script, sql::SqlError>| match s {
            Ok(s) => s.to_psql_input(),
            Err(e) => format!("cannot render SQL: {e}"),
        };
        match self {
            ObjectStep::DefaultRoles { roles, sql } => {
                let roles: Vec<sql::DefaultRole> = roles
                    .iter()
                    .map(|(name, def)| sql::DefaultRole {
                        name,
                        def: &def.0,
                        password: def.0.contains_key("password").then_some(Secret::Redacted),
                    })
                    .collect();
                vec![one(sql::default_roles(&roles, &sql.context(None)))]
            }
            ObjectStep::TemplateInit { dbsu, lists, sql } => {
                // A summary, not the script: the same few kilobytes for every new cluster
                // would dominate a large plan (the SQL: `render::sql::template_init`).
                let set = |k: &str| match lists.0.contains_key(k) {
                    true => format!("{k} (the inventory's)"),
                    false => format!("{k} (Pigsty's)"),
                };
                vec![
                    "native executor: only on a cluster pgitops bootstrapped (its Patroni configuration written by pgitops); default extensions the server lacks are skipped and named".into(),
                    format!(
                        "in template1, then in postgres, one transaction: default privileges for {dbsu}, {} and dbrole_admin; {}; REVOKE CREATE ON SCHEMA public FROM PUBLIC; {}; file_fdw and server fs; the backup grants of {}; schema monitor and the search_path of {}",
                        sql.admin,
                        set("pg_default_schemas"),
                        set("pg_default_extensions"),
                        sql.replicator,
                        sql.monitor
                    ),
                ]
            }
            ObjectStep::UserUpsert { name, def, sql, .. } => vec![one(sql::user_upsert(
                name,
                &def.0,
                Secret::Redacted,
                &sql.context(None),
            ))],
            ObjectStep::UserDrop {
                name,
                sql,
                reassign_to: None,
            } => vec![one(sql::user_drop(name, &sql.context(None)))],
            ObjectStep::UserDrop {
                name,
                sql,
                reassign_to: Some(to),
            } => vec![
                format!(
                    "-- in database postgres\n{}",
                    one(sql::user_drop_prepare(name, to, &sql.context(None)))
                ),
                format!(
                    "-- in every database that allows connections\n{}",
                    one(sql::user_reassign(name, to))
                ),
                format!(
                    "-- in database postgres\n{}",
                    one(sql::user_drop_role(name))
                ),
            ],
            ObjectStep::DatabaseUpsert { name, def, sql, .. } => database(name, def, sql),
            ObjectStep::DatabaseDrop { name, sql } => {
                vec![one(sql::database_drop(name, &sql.context(None)))]
            }
            ObjectStep::DatabaseRecreate { name, def, sql } => {
                let mut out = vec![one(sql::database_drop(name, &sql.context(None)))];
                out.extend(database(name, def, sql));
                out
            }
        }
    }
}

fn database(name: &str, def: &Definition, t: &SqlTarget) -> Vec<String> {
    match sql::database_upsert(name, &def.0, &t.context(None)) {
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
