//! `pg_databases` scripts (reference §3): create-or-converge a database, drop it.
//!
//! In: the database name, its inventory mapping and the [`SqlContext`]. Out: [`DbScripts`] for an
//! upsert, a [`Script`] for a drop. `ALTER DATABASE ... SET TABLESPACE` and `ALLOW_CONNECTIONS
//! false` cannot run while connected to that database, so they live in [`DbScripts::create`] /
//! [`DbScripts::finish`], which run in [`DbScripts::admin_db`]. With `allowconn: false`, `create`
//! re-enables connections so that `provision` can connect, and `finish` disables them again. Schema
//! owners are converged with `ALTER SCHEMA ... OWNER TO`. With an `owner`, the cluster's
//! `pg_default_privileges` are granted `FOR ROLE <owner>` before the schemas are created, as
//! Pigsty's `pg-db.sql` does. `baseline` is not handled here. `postgres`, `template0` and `template1` are never dropped.
//! Version-gated create options: `strategy` (how files are copied; nothing lasts) is left out
//! below PostgreSQL 15 as Pigsty leaves it out; the locale options (`locale_provider`, `icu_*`,
//! `builtin_locale`) are refused, since leaving them out would create a database that sorts
//! differently from the declared one, for good.
//! `create` and the drop run statement by statement (PostgreSQL refuses CREATE/DROP DATABASE and
//! SET TABLESPACE in a transaction block); `provision` and `finish` each run in one transaction.

use serde_yaml_ng::Mapping;

use super::def::Def;
use super::out::{with, Out};
use super::params::{set_parameters, LIST_GUCS};
use super::privileges::alter_default;
use super::quote::{ident, literal, names};
use super::{invalid, protected, DbScripts, Result, Script, SqlContext, SqlError, DB_CREATED};

enum Kind {
    Ident,
    Literal,
    Enum(&'static [&'static str]),
}

/// Create-only options (§3.1): key (its upper case is the keyword), minimum PostgreSQL, rendering.
const CREATE_OPTS: [(&str, u32, Kind); 11] = [
    ("template", 0, Kind::Ident),
    ("encoding", 0, Kind::Literal),
    ("locale", 13, Kind::Literal),
    ("lc_collate", 0, Kind::Literal),
    ("lc_ctype", 0, Kind::Literal),
    (
        "locale_provider",
        15,
        Kind::Enum(&["libc", "icu", "builtin"]),
    ),
    ("icu_locale", 15, Kind::Literal),
    ("icu_rules", 16, Kind::Literal),
    ("builtin_locale", 17, Kind::Literal),
    ("strategy", 15, Kind::Enum(&["wal_log", "file_copy"])),
    ("tablespace", 0, Kind::Ident),
];

/// Terminates the other sessions connected to the database named by literal `lit`.
fn terminate(lit: &str) -> String {
    format!(
        "SELECT pg_catalog.count(pg_catalog.pg_terminate_backend(pid)) AS pgitops_terminated \
         FROM pg_catalog.pg_stat_activity\n  \
         WHERE datname = {lit} AND pid <> pg_catalog.pg_backend_pid() \\gset"
    )
}

/// §3: create if missing, then converge the mutable settings. See [`DbScripts`] for where and in
/// which order the scripts run.
pub fn database_upsert(name: &str, def: &Mapping, ctx: &SqlContext) -> Result<DbScripts> {
    let d = Def::new(def, format!("pg_databases[{name}]"), name)?;
    if name == "template0" {
        return Err(protected("provision database", name));
    }
    let (db, lit) = names(&d.field("name"), name)?;
    let template = d.str("template")?;
    if template == Some(name) {
        return Err(invalid(d.field("template"), "another database"));
    }
    let mut finish = Out::default();
    if d.bool("allowconn")? == Some(false) {
        finish.sql(format!("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false;"));
    }
    Ok(DbScripts {
        admin_db: if template == Some("postgres") {
            "template1"
        } else {
            "postgres"
        },
        create: create_script(&d, &db, &lit, ctx)?,
        provision: provision_script(&d, name, &db, &lit, ctx)?,
        finish: finish.done(),
    })
}

fn create_script(d: &Def, db: &str, lit: &str, ctx: &SqlContext) -> Result<Script> {
    let mut opts: Vec<String> = d
        .ident("owner")?
        .map(|o| format!("OWNER {o}"))
        .into_iter()
        .collect();
    let mut notes = Vec::new();
    for (key, min, kind) in &CREATE_OPTS {
        let (Some(v), field) = (d.str(key)?, d.field(key)) else {
            continue;
        };
        if ctx.pg_major < *min && *key == "strategy" {
            // How the files are copied, nothing that lasts: left out, as Pigsty leaves it out.
            let note = format!("-- {key} left out: needs PostgreSQL {min}+");
            notes.push(note);
            continue;
        }
        if ctx.pg_major < *min {
            let (min, actual) = (*min, ctx.pg_major);
            return Err(SqlError::Unsupported { field, min, actual });
        }
        let value = match kind {
            Kind::Ident => ident(&field, v)?,
            Kind::Literal => literal(&field, v)?,
            Kind::Enum(allowed) => match allowed.iter().find(|a| a.eq_ignore_ascii_case(v)) {
                Some(a) => literal(&field, a)?,
                None => return Err(invalid(field, format!("one of {}", allowed.join(", ")))),
            },
        };
        opts.push(format!("{} {value}", key.to_uppercase()));
    }
    let template = d
        .str("template")?
        .filter(|t| !matches!(*t, "template0" | "template1"));
    let template = template
        .map(|t| literal(&d.field("template"), t))
        .transpose()?;
    let mut out = Out::default();
    for n in notes {
        out.sql(n);
    }
    let missing = format!("NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = {lit})");
    out.when("pgitops_missing", &missing, |o| {
        if let Some(t) = &template {
            o.sql(terminate(t)); // as Pigsty does for non-standard templates
        }
        o.sql(format!("CREATE DATABASE {db}{};", with(&opts, " ")));
        o.sql(format!("\\echo {DB_CREATED}"));
    });
    if d.bool("allowconn")?.is_some() {
        out.sql(format!("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true;"));
    }
    if let Some(ts) = d.str("tablespace")? {
        let (ts_id, ts_lit) = names(&d.field("tablespace"), ts)?;
        let moved = format!(
            "EXISTS (SELECT FROM pg_catalog.pg_database d JOIN pg_catalog.pg_tablespace t \
             ON t.oid = d.dattablespace WHERE d.datname = {lit} AND t.spcname <> {ts_lit})"
        );
        out.when("pgitops_move", &moved, |o| {
            o.sql(format!("ALTER DATABASE {db} SET TABLESPACE {ts_id};"))
        });
    }
    Ok(out.done_outside_transaction())
}

fn provision_script(d: &Def, name: &str, db: &str, lit: &str, ctx: &SqlContext) -> Result<Script> {
    let mut out = Out::default();
    let message = format!(
        "pg_catalog.format('pgitops: the provisioning script of database %I must run inside it, \
         not in %I', {lit}, pg_catalog.current_database())"
    );
    out.fail_if(
        &format!("pg_catalog.current_database() <> {lit}"),
        &message,
        "",
    );
    let owner = d.ident("owner")?;
    if let Some(o) = &owner {
        out.sql(format!("ALTER DATABASE {db} OWNER TO {o};"));
        out.sql(format!("GRANT ALL PRIVILEGES ON DATABASE {db} TO {o};"));
    }
    let mut opts = Vec::new();
    if let Some(n) = d.connlimit()? {
        opts.push(format!("CONNECTION LIMIT {n}"));
    }
    if let Some(t) = d.bool("is_template")? {
        opts.push(format!("IS_TEMPLATE {t}"));
    }
    if !opts.is_empty() {
        out.sql(format!("ALTER DATABASE {db}{};", with(&opts, " ")));
    }
    set_parameters(&mut out, d, &format!("DATABASE {db}"), &LIST_GUCS)?;
    d.comment(
        &mut out,
        &format!("DATABASE {db}"),
        super::default_database_comment(name),
    )?;
    let connect = format!("CONNECT ON DATABASE {db}");
    match d.bool("revokeconn")? {
        Some(true) => {
            out.sql(format!("REVOKE {connect} FROM PUBLIC;"));
            for (field, r) in [
                ("ctx.replicator", ctx.replicator),
                ("ctx.monitor", ctx.monitor),
            ] {
                out.sql(format!("GRANT {connect} TO {};", ident(field, r)?));
            }
            for r in [Some(ident("ctx.admin", ctx.admin)?), owner.clone()]
                .into_iter()
                .flatten()
            {
                out.sql(format!("GRANT {connect} TO {r} WITH GRANT OPTION;"));
            }
        }
        Some(false) => out.sql(format!("GRANT {connect} TO PUBLIC;")),
        None => {}
    }
    out.sql(format!("REVOKE CREATE ON DATABASE {db} FROM PUBLIC;"));
    out.sql(format!(
        "GRANT CREATE ON DATABASE {db} TO \"dbrole_admin\";"
    ));
    let public = "EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'public')";
    out.when("pgitops_public", public, |o| {
        o.sql("REVOKE CREATE ON SCHEMA \"public\" FROM PUBLIC;");
        o.sql("GRANT CREATE ON SCHEMA \"public\" TO \"dbrole_admin\";");
    });
    // As Pigsty's pg-db.sql: before the schemas, so that a schema the owner gets already
    // carries the grants on SCHEMAS.
    if let Some(o) = &owner {
        let list = ctx
            .default_privileges
            .map_err(|e| invalid("pg_default_privileges", e))?;
        for p in list {
            out.sql(alter_default(o, p)?);
        }
    }
    schemas(&mut out, d, "schemas")?;
    extensions(&mut out, d, "extensions", |_| true)?;
    Ok(out.done())
}

/// The `key` entries (`schemas`) of `d`: created (with an owner when given) or dropped (`absent`).
pub(super) fn schemas(out: &mut Out, d: &Def, key: &str) -> Result<()> {
    for e in d.entries(key, &["create", "absent"])? {
        let schema = &e.ident;
        if e.state == "absent" {
            out.sql(format!("DROP SCHEMA IF EXISTS {schema} CASCADE;"));
        } else if let Some(o) = e.opt(|o| o.ident("owner"))? {
            out.sql(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {o};"
            ));
            out.sql(format!("ALTER SCHEMA {schema} OWNER TO {o};"));
        } else {
            out.sql(format!("CREATE SCHEMA IF NOT EXISTS {schema};"));
        }
    }
    Ok(())
}

/// The `key` entries (`extensions`) of `d` whose quoted name `keep` accepts: created (schema, version)
/// or dropped (`absent`).
pub(super) fn extensions(
    out: &mut Out,
    d: &Def,
    key: &str,
    mut keep: impl FnMut(&str) -> bool,
) -> Result<()> {
    for e in d.entries(key, &["create", "absent"])? {
        let ext = &e.ident;
        if e.state == "absent" {
            out.sql(format!("DROP EXTENSION IF EXISTS {ext} CASCADE;"));
            continue;
        }
        if !keep(ext) {
            continue;
        }
        let mut sql = format!("CREATE EXTENSION IF NOT EXISTS {ext}");
        if let Some(s) = e.opt(|o| o.ident("schema"))? {
            sql += &format!(" WITH SCHEMA {s}");
        }
        let version = e.opt(|o| {
            o.str("version")?
                .map(|v| literal(&o.field("version"), v))
                .transpose()
        })?;
        if let Some(v) = version {
            sql += &format!(" VERSION {v}");
        }
        out.sql(sql + " CASCADE;");
    }
    Ok(())
}

/// `DROP DATABASE IF EXISTS ... WITH (FORCE)` (PG13+; older: block and terminate sessions first),
/// after unsetting `is_template`. Run in `postgres`. Never drops postgres/template0/template1.
pub fn database_drop(name: &str, ctx: &SqlContext) -> Result<Script> {
    if matches!(name, "postgres" | "template0" | "template1") {
        return Err(protected("drop database", name));
    }
    let (db, lit) = names("pg_databases.name", name)?;
    let mut out = Out::default();
    let exists = format!("EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = {lit})");
    out.when("pgitops_exists", &exists, |o| {
        o.sql(format!("ALTER DATABASE {db} WITH IS_TEMPLATE false;"));
        if ctx.pg_major >= 13 {
            o.sql(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE);"));
        } else {
            o.sql(format!("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false;"));
            o.sql(terminate(&lit));
            o.sql(format!("DROP DATABASE IF EXISTS {db};"));
        }
    });
    Ok(out.done_outside_transaction())
}

#[cfg(test)]
mod tests {
    /// The renderer's create-only options are the ones the plan flags as needing a recreate.
    #[test]
    fn create_options_match_the_field_list() {
        let mut rendered: Vec<&str> = super::CREATE_OPTS
            .iter()
            .map(|o| o.0)
            .filter(|k| *k != "tablespace")
            .collect();
        let mut listed = crate::inventory::fields::DB_CREATE_ONLY.to_vec();
        rendered.sort_unstable();
        listed.sort_unstable();
        assert_eq!(rendered, listed);
    }
}
