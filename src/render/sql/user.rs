//! `pg_users` scripts (reference §2): create-or-converge a role (also for `pg_default_roles`);
//! drop it as Pigsty's `pg-drop-role` does (`state: absent`), or only when it owns nothing (a
//! prune).
//!
//! In: the role name, its inventory mapping, a [`Secret`] and the [`SqlContext`]. Out: a
//! [`Script`] for the dbsu to run. Protected roles (`postgres`, and for drops the admin, monitor
//! and replication users) are refused. A password is only ever a redaction marker or a verifier.
//! `expire_in` with `ctx.today = Some(d)` renders the literal date `d + N`; with `None` the server
//! computes `CURRENT_DATE + N` at run time through `\gset`, which is still valid SQL.

use serde_yaml_ng::Mapping;

use super::def::Def;
use super::out::{with, Out};
use super::params::{set_parameters, LIST_GUCS};
use super::quote::{ident, literal, names};
use super::{invalid, protected, Result, Script, Secret, SqlContext, Statement};
use crate::inventory::fields::ROLE_FLAGS;

/// What a user script prints when it created the role (it did not exist before): pgitops
/// records only roles it created, and prunes only those.
pub const CREATED_MARK: &str = "pgitops-created-role";

/// Create the role if missing, then converge everything the definition states (§2.1-§2.3).
/// Refuses `postgres`, as Pigsty's preflight does.
pub fn user_upsert(name: &str, def: &Mapping, pw: Secret, ctx: &SqlContext) -> Result<Script> {
    if name == "postgres" {
        return Err(protected("manage role", name));
    }
    let mut out = Out::default();
    role(&mut out, "pg_users", name, def, pw, false, ctx)?;
    Ok(out.done())
}

/// One `pg_default_roles` entry: its name, definition and password (used only if it is created).
pub struct DefaultRole<'a> {
    pub name: &'a str,
    pub def: &'a Mapping,
    pub password: Option<Secret<'a>>,
}

/// `pg_default_roles` (Pigsty's `pg-init-roles.sql`), in list order and in one transaction:
/// each role is created when missing and its attributes, settings, comment and memberships are
/// converged like a user's. A password is set only on a role this script creates: existing
/// system users keep the credentials Patroni, pgbouncer and the exporters use. The dbsu
/// (`postgres`) is allowed here: it exists, so only its attributes and comment are converged.
pub fn default_roles(roles: &[DefaultRole], ctx: &SqlContext) -> Result<Script> {
    let mut out = Out::default();
    for r in roles {
        role(
            &mut out,
            "pg_default_roles",
            r.name,
            r.def,
            r.password.unwrap_or(Secret::Redacted),
            r.password.is_some(),
            ctx,
        )?;
    }
    Ok(out.done())
}

/// The statements converging one role. `on_create_password`: the password statement is emitted
/// only inside `\if :pgitops_missing` (set before the role was created), from `pw`; otherwise it
/// is emitted when the definition has a `password`.
fn role(
    out: &mut Out,
    list: &str,
    name: &str,
    def: &Mapping,
    pw: Secret,
    on_create_password: bool,
    ctx: &SqlContext,
) -> Result<()> {
    let d = Def::new(def, format!("{list}[{name}]"), name)?;
    let (role, lit) = names(&d.field("name"), name)?;
    let login = if d.bool("login")? == Some(false) {
        "NOLOGIN"
    } else {
        "LOGIN"
    };
    let missing = format!("NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {lit})");
    out.when("pgitops_missing", &missing, |o| {
        o.sql(format!("CREATE ROLE {role} {login};"));
        o.sql(format!("\\echo {CREATED_MARK}"));
    });
    let mut attrs = Vec::new();
    for key in ROLE_FLAGS {
        if let Some(on) = d.bool(key)? {
            attrs.push(format!(
                "{}{}",
                if on { "" } else { "NO" },
                key.to_uppercase()
            ));
        }
    }
    if let Some(n) = d.connlimit()? {
        attrs.push(format!("CONNECTION LIMIT {n}"));
    }
    if !attrs.is_empty() {
        out.sql(format!("ALTER ROLE {role}{};", with(&attrs, " ")));
    }
    if d.get("password").is_some() || on_create_password {
        let field = d.field("password");
        let value = match pw {
            Secret::Redacted => "<redacted>".to_string(),
            Secret::Verifier(v) if is_verifier(v) => literal(&field, v)?,
            Secret::Verifier(_) => return Err(invalid(field, "a SCRAM-SHA-256 or md5 verifier")),
        };
        let sql = format!("ALTER ROLE {role} PASSWORD {value};");
        if on_create_password {
            out.sql("\\if :pgitops_missing");
            out.push(sql, true);
            out.sql("\\endif");
        } else {
            out.push(sql, true);
        }
    }
    valid_until(out, &d, &role, ctx)?;
    set_parameters(out, &d, &format!("ROLE {role}"), &LIST_GUCS[..4])?;
    d.comment(
        out,
        &format!("ROLE {role}"),
        super::default_user_comment(name),
    )?;
    grant_roles(out, &d, &role, ctx)?;
    Ok(())
}

/// `md5` + 32 hex, or `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` with 32-byte keys.
/// PostgreSQL would hash anything else as if it were a plaintext password.
pub(super) fn is_verifier(v: &str) -> bool {
    let b64 = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    };
    let scram = || {
        let (iter_salt, keys) = v.strip_prefix("SCRAM-SHA-256$")?.split_once('$')?;
        let ((iter, salt), (stored, server)) = (iter_salt.split_once(':')?, keys.split_once(':')?);
        let ok = iter.parse::<u32>().is_ok_and(|n| n > 0) && b64(salt);
        Some(ok && [stored, server].iter().all(|k| k.len() == 44 && b64(k)))
    };
    let hex = v.len() == 35 && v[3..].bytes().all(|b| b.is_ascii_hexdigit());
    (v.starts_with("md5") && hex) || scram() == Some(true)
}

fn valid_until(out: &mut Out, d: &Def, role: &str, ctx: &SqlContext) -> Result<()> {
    if let Some(days) = d.int("expire_in")? {
        let field = d.field("expire_in");
        if days.abs() > 100_000 {
            return Err(invalid(field, "at most 100000 days"));
        }
        if let Some(today) = ctx.today {
            let date = literal(&field, &add_days(today, days)?)?;
            out.sql(format!("ALTER ROLE {role} VALID UNTIL {date};"));
        } else {
            out.sql(format!(
                "SELECT (CURRENT_DATE + {days})::text AS pgitops_until \\gset"
            ));
            out.sql(format!("ALTER ROLE {role} VALID UNTIL :'pgitops_until';"));
        }
    } else if let Some(at) = d.str("expire_at")? {
        let at = literal(&d.field("expire_at"), at)?;
        out.sql(format!("ALTER ROLE {role} VALID UNTIL {at};"));
    }
    Ok(())
}

/// `today + days` for a strict `YYYY-MM-DD` date.
pub(super) fn add_days(today: &str, days: i64) -> Result<String> {
    let bad = || invalid("ctx.today", "a date YYYY-MM-DD");
    let b = today.as_bytes();
    let digits = b
        .iter()
        .enumerate()
        .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits {
        return Err(bad());
    }
    // The shape is checked above (chrono alone would accept `2023-1-01`); chrono checks the
    // calendar and does the arithmetic.
    let date = chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d").map_err(|_| bad())?;
    let date = date
        .checked_add_signed(chrono::TimeDelta::days(days))
        .ok_or_else(bad)?;
    Ok(date.format("%Y-%m-%d").to_string())
}

/// §2.2: additive grants; `state: revoke|absent` revokes; option `false` revokes that option.
fn grant_roles(out: &mut Out, d: &Def, role: &str, ctx: &SqlContext) -> Result<()> {
    let pg16 = ctx.pg_major >= 16;
    for (i, e) in d
        .entries("roles", &["grant", "revoke", "absent"])?
        .iter()
        .enumerate()
    {
        let granted = &e.ident;
        if e.state != "grant" {
            out.sql(format!("REVOKE {granted} FROM {role};"));
            continue;
        }
        let (mut opts, mut revoke) = (Vec::new(), Vec::new());
        for (key, kw) in [("admin", "ADMIN"), ("set", "SET"), ("inherit", "INHERIT")] {
            match e.opt(|o| o.bool(key))? {
                None => {}
                Some(_) if !pg16 && key != "admin" => {
                    out.sql(format!("-- roles[{i}].{key} skipped: needs PostgreSQL 16+"))
                }
                Some(true) if !pg16 => opts.push("ADMIN OPTION".to_string()),
                Some(true) => opts.push(format!("{kw} TRUE")),
                Some(false) => revoke.push(kw),
            }
        }
        out.sql(format!("GRANT {granted} TO {role}{};", with(&opts, ", ")));
        for kw in revoke {
            out.sql(format!("REVOKE {kw} OPTION FOR {granted} FROM {role};"));
        }
    }
    Ok(())
}

/// Fails (at run time) when the role owns objects, holds privileges or is named in policies.
/// Reads `pg_shdepend`, which is cluster-wide and is what DROP ROLE itself checks: objects in the
/// current database and shared objects (databases, tablespaces) are named one by one, other
/// databases as counts. For names there, run this script connected to each database it lists.
pub fn user_ownership_check(name: &str, ctx: &SqlContext) -> Result<Script> {
    if ["postgres", ctx.replicator, ctx.admin, ctx.monitor].contains(&name) {
        return Err(protected("drop role", name));
    }
    let lit = literal("pg_users.name", name)?;
    let mine = format!(
        "s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass\n    \
         AND s.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = {lit})"
    );
    let here = "(SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())";
    let from = format!(
        "\nFROM (SELECT CASE s.deptype WHEN 'o' THEN 'owns ' WHEN 'a' THEN 'has privileges on ' \
         ELSE 'is referenced by ' END\n    \
         || pg_catalog.pg_describe_object(s.classid, s.objid, s.objsubid) AS what\n  \
         FROM pg_catalog.pg_shdepend s WHERE {mine} AND s.dbid IN (0, {here})\n  UNION ALL\n  \
         SELECT pg_catalog.format('has %s dependent object(s) in database %I', \
         pg_catalog.count(*), db.datname)\n  \
         FROM pg_catalog.pg_shdepend s JOIN pg_catalog.pg_database db ON db.oid = s.dbid\n  \
         WHERE {mine} AND db.oid <> {here}\n  GROUP BY db.datname) AS dep"
    );
    let message = format!(
        "pg_catalog.format('pgitops: refusing to drop role %I: it %s', {lit}, \
         pg_catalog.string_agg(dep.what, '; ' ORDER BY dep.what))"
    );
    let mut out = Out::default();
    out.fail_if("pg_catalog.count(*) > 0", &message, &from);
    Ok(out.done())
}

/// [`user_ownership_check`] then `DROP ROLE IF EXISTS`. No REASSIGN, no DROP OWNED: used when
/// pgitops prunes a user it created (Pigsty never drops on removal, so nothing is forced).
pub fn user_drop(name: &str, ctx: &SqlContext) -> Result<Script> {
    let mut script = user_ownership_check(name, ctx)?;
    let sql = format!("DROP ROLE IF EXISTS {};", ident("pg_users.name", name)?);
    script.statements.push(Statement { sql, secret: false });
    Ok(script)
}

/// Pigsty's `pg-drop-role`, step by step (`state: absent`). [`user_drop_prepare`] runs first in
/// `postgres`, then [`user_reassign`] in every database that allows connections, then
/// [`user_drop_role`]. The successor is the dbsu, where Pigsty's `user.yml` sends ownership.
///
/// This step, outside a transaction so that `NOLOGIN` holds before the sessions end: disable
/// login, terminate the role's sessions (waiting up to 10 s for each on PostgreSQL 14+, as
/// `--force` does). Refuses the protected roles and the successor itself.
pub fn user_drop_prepare(name: &str, successor: &str, ctx: &SqlContext) -> Result<Script> {
    if [
        "postgres",
        successor,
        ctx.replicator,
        ctx.admin,
        ctx.monitor,
    ]
    .contains(&name)
    {
        return Err(protected("drop role", name));
    }
    let (role, lit) = names("pg_users.name", name)?;
    let mut out = Out::default();
    let exists = format!("EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {lit})");
    let wait = if ctx.pg_major >= 14 { ", 10000" } else { "" };
    out.when("pgitops_exists", &exists, |o| {
        o.sql(format!("ALTER ROLE {role} NOLOGIN;"));
        o.sql(format!(
            "SELECT pg_catalog.count(pg_catalog.pg_terminate_backend(pid{wait})) AS pgitops_terminated \
             FROM pg_catalog.pg_stat_activity\n  WHERE usename = {lit} AND pid <> pg_catalog.pg_backend_pid() \\gset"
        ));
    });
    Ok(out.done_outside_transaction())
}

/// In one database, in one transaction: `REASSIGN OWNED BY <role> TO <successor>` (this also
/// moves the databases and tablespaces it owns), then `DROP OWNED BY <role>` (its privileges
/// and default privileges). If the REASSIGN fails, nothing is dropped: Pigsty's safety rule.
pub fn user_reassign(name: &str, successor: &str) -> Result<Script> {
    let (role, lit) = names("pg_users.name", name)?;
    let to = ident("pg_dbsu", successor)?;
    let mut out = Out::default();
    let exists = format!("EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {lit})");
    out.when("pgitops_exists", &exists, |o| {
        o.sql(format!("REASSIGN OWNED BY {role} TO {to};"));
        o.sql(format!("DROP OWNED BY {role};"));
    });
    Ok(out.done())
}

/// The last step: `DROP ROLE IF EXISTS`. PostgreSQL refuses it while the role still has
/// dependencies (in a database that allows no connections), and so does Pigsty.
pub fn user_drop_role(name: &str) -> Result<Script> {
    let mut out = Out::default();
    out.sql(format!(
        "DROP ROLE IF EXISTS {};",
        ident("pg_users.name", name)?
    ));
    Ok(out.done())
}
