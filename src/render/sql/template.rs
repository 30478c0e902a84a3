//! What Pigsty's bootstrap does to the template databases (`pg-init-template.sql`, run by
//! `pg-init` in `template1` and `postgres` of a new cluster), as SQL: default privileges for the
//! dbsu, the admin user and `dbrole_admin`; `pg_default_schemas`; no `CREATE` on `public` for
//! `PUBLIC`; `pg_default_extensions` (those the server has: Pigsty's psql runs on past a missing
//! one, here it is skipped and named); `file_fdw` with its server `fs`; the backup functions for
//! the replication user; the `monitor` schema with usage for the monitor, admin and replication
//! users and the monitor user's `search_path`. Pigsty's monitoring views, functions and foreign
//! tables in that schema serve its monitoring stack, which pgitops does not provision: not made.
//!
//! In: the primary's variables (`pg_default_schemas`, `pg_default_extensions`; Pigsty's lists
//! when unset), the dbsu, the names of the extensions the server has, and the [`SqlContext`].
//! Out: one script (a transaction) and the extensions skipped.

use std::sync::OnceLock;

use serde_yaml_ng::{Mapping, Value};

use super::database::{extensions, schemas};
use super::def::Def;
use super::out::Out;
use super::privileges::alter_default;
use super::quote::ident;
use super::{invalid, Result, Script, SqlContext};

/// Pigsty's `pg_default_schemas`.
const SCHEMAS: &str = "[ monitor ]";
/// Pigsty's `pg_default_extensions`.
const EXTENSIONS: &str = "[ { name: pg_stat_statements, schema: monitor }, { name: pgstattuple, schema: monitor }, \
    { name: pg_buffercache, schema: monitor }, { name: pageinspect, schema: monitor }, { name: pg_prewarm, schema: monitor }, \
    { name: pg_visibility, schema: monitor }, { name: pg_freespacemap, schema: monitor }, { name: postgres_fdw, schema: public }, \
    { name: file_fdw, schema: public }, { name: btree_gist, schema: public }, { name: btree_gin, schema: public }, \
    { name: pg_trgm, schema: public }, { name: intagg, schema: public }, { name: intarray, schema: public }, { name: pg_repack } ]";

/// The backup functions Pigsty grants the replication user (PostgreSQL 15 and later; before 15
/// also `pg_start_backup` and `pg_stop_backup`).
const BACKUP_FUNCTIONS: [&str; 10] = [
    "pg_catalog.current_setting(text)",
    "pg_catalog.set_config(text, text, boolean)",
    "pg_catalog.pg_is_in_recovery()",
    "pg_catalog.pg_create_restore_point(text)",
    "pg_catalog.pg_switch_wal()",
    "pg_catalog.pg_last_wal_replay_lsn()",
    "pg_catalog.txid_current()",
    "pg_catalog.txid_current_snapshot()",
    "pg_catalog.txid_snapshot_xmax(txid_snapshot)",
    "pg_catalog.pg_control_checkpoint()",
];
const BACKUP_FUNCTIONS_BEFORE_15: [&str; 2] = [
    "pg_catalog.pg_start_backup(text, boolean, boolean)",
    "pg_catalog.pg_stop_backup(boolean, boolean)",
];

/// The names of the extensions the server has, one a line.
pub fn available_extensions() -> Script {
    let mut out = Out::default();
    out.sql("SELECT name FROM pg_catalog.pg_available_extensions ORDER BY 1;");
    out.done_outside_transaction()
}

/// The template init of one database and the default extensions left out (not on the server).
#[derive(Debug)]
pub struct TemplateInit {
    pub script: Script,
    pub skipped: Vec<String>,
}

/// The template init script (see the module). `lists`: `pg_default_schemas` and
/// `pg_default_extensions` where the inventory sets them (Pigsty's lists otherwise);
/// `available`: the extensions the server has (`None`: all).
pub fn template_init(
    dbsu: &str,
    lists: &Mapping,
    available: Option<&[String]>,
    ctx: &SqlContext,
) -> Result<TemplateInit> {
    let mut vars = lists.clone();
    static DEFAULTS: OnceLock<[(&str, Value); 2]> = OnceLock::new();
    let defaults = DEFAULTS.get_or_init(|| {
        let list = |text: &str| serde_yaml_ng::from_str::<Value>(text).expect("a fixed list");
        [
            ("pg_default_schemas", list(SCHEMAS)),
            ("pg_default_extensions", list(EXTENSIONS)),
        ]
    });
    for &(key, ref fallback) in defaults {
        if vars.get(key).is_none_or(Value::is_null) {
            vars.insert(key.into(), fallback.clone());
        }
    }
    let d = Def::vars(&vars);
    let mut out = Out::default();
    let privileges = ctx
        .default_privileges
        .map_err(|e| invalid("pg_default_privileges", e))?;
    for (field, owner) in [("pg_dbsu", dbsu), ("pg_admin_username", ctx.admin)] {
        let owner = ident(field, owner)?;
        for p in privileges {
            out.sql(alter_default(&owner, p)?);
        }
    }
    for p in privileges {
        out.sql(alter_default("\"dbrole_admin\"", p)?);
    }
    schemas(&mut out, &d, "pg_default_schemas")?;
    let public = "EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'public')";
    out.when("pgitops_public", public, |o| {
        o.sql("REVOKE CREATE ON SCHEMA \"public\" FROM PUBLIC;");
    });
    let have: Option<Vec<String>> = available
        .map(|a| a.iter().map(|n| ident("extension", n)).collect())
        .transpose()?;
    let has = |quoted: &str| have.as_ref().is_none_or(|h| h.iter().any(|n| n == quoted));
    let mut skipped = Vec::new();
    extensions(&mut out, &d, "pg_default_extensions", |e| {
        let keep = has(e);
        if !keep {
            skipped.push(e.trim_matches('"').replace("\"\"", "\""));
        }
        keep
    })?;
    if has("\"file_fdw\"") {
        out.sql("CREATE EXTENSION IF NOT EXISTS \"file_fdw\";");
        out.sql("CREATE SERVER IF NOT EXISTS \"fs\" FOREIGN DATA WRAPPER \"file_fdw\";");
    }
    let repl = ident("pg_replication_username", ctx.replicator)?;
    out.sql(format!("GRANT USAGE ON SCHEMA pg_catalog TO {repl};"));
    let mut functions = BACKUP_FUNCTIONS.to_vec();
    if ctx.pg_major < 15 {
        functions.extend(BACKUP_FUNCTIONS_BEFORE_15);
    }
    for f in functions {
        out.sql(format!("GRANT EXECUTE ON FUNCTION {f} TO {repl};"));
    }
    let monitor = ident("pg_monitor_username", ctx.monitor)?;
    out.sql("CREATE SCHEMA IF NOT EXISTS \"monitor\";");
    for (field, role) in [
        ("pg_monitor_username", ctx.monitor),
        ("pg_admin_username", ctx.admin),
        ("pg_replication_username", ctx.replicator),
    ] {
        let role = ident(field, role)?;
        out.sql(format!("GRANT USAGE ON SCHEMA \"monitor\" TO {role};"));
    }
    out.sql(format!(
        "ALTER USER {monitor} SET search_path TO \"monitor\", \"public\";"
    ));
    Ok(TemplateInit {
        script: out.done(),
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(major: u32) -> SqlContext<'static> {
        SqlContext {
            pg_major: major,
            admin: "dbuser_dba",
            monitor: "dbuser_monitor",
            replicator: "replicator",
            today: None,
            default_privileges: Ok(&[]),
        }
    }

    fn text(s: &Script) -> String {
        s.to_psql_input()
    }

    #[test]
    fn pigsty_lists_by_default_and_missing_extensions_skipped() {
        let have: Vec<String> = ["pg_stat_statements", "file_fdw", "pg_trgm"]
            .map(String::from)
            .to_vec();
        let init = template_init("postgres", &Mapping::new(), Some(&have), &ctx(15)).unwrap();
        let sql = text(&init.script);
        assert!(sql.contains("CREATE SCHEMA IF NOT EXISTS \"monitor\";"));
        assert!(sql.contains(
            "CREATE EXTENSION IF NOT EXISTS \"pg_stat_statements\" WITH SCHEMA \"monitor\" CASCADE;"
        ));
        assert!(
            sql.contains("CREATE SERVER IF NOT EXISTS \"fs\" FOREIGN DATA WRAPPER \"file_fdw\";")
        );
        assert!(sql.contains("REVOKE CREATE ON SCHEMA \"public\" FROM PUBLIC;"));
        assert!(sql
            .contains("ALTER USER \"dbuser_monitor\" SET search_path TO \"monitor\", \"public\";"));
        assert!(
            !sql.contains("pg_start_backup"),
            "PostgreSQL 15 has no pg_start_backup"
        );
        assert!(init.skipped.contains(&"pg_repack".to_string()));
        assert!(!init.skipped.contains(&"pg_trgm".to_string()));
        assert!(init.script.transaction);
    }

    #[test]
    fn inventory_lists_are_quoted_and_checked() {
        let lists: Mapping = serde_yaml_ng::from_str(
            "pg_default_schemas: [ 'a\"; DROP TABLE x; --' ]\npg_default_extensions: [ { name: pg_trgm, state: absent } ]",
        )
        .unwrap();
        let init = template_init("postgres", &lists, None, &ctx(14)).unwrap();
        let sql = text(&init.script);
        assert!(sql.contains("CREATE SCHEMA IF NOT EXISTS \"a\"\"; DROP TABLE x; --\";"));
        assert!(sql.contains("DROP EXTENSION IF EXISTS \"pg_trgm\" CASCADE;"));
        assert!(
            sql.contains("pg_start_backup"),
            "before 15: the old backup functions too"
        );
        let bad: Mapping =
            serde_yaml_ng::from_str("pg_default_extensions: [ { name: x, state: maybe } ]")
                .unwrap();
        let err = template_init("postgres", &bad, None, &ctx(15)).unwrap_err();
        assert!(
            err.to_string().contains("pg_default_extensions[0].state"),
            "{err}"
        );
    }
}
