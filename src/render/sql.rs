//! SQL rendering for `pg_users` and `pg_databases` entries (reference §2 and §3).
//!
//! This is the one audited place where SQL text is built from inventory values:
//! * every identifier goes through [`quote_ident`] and every literal through [`quote_literal`];
//! * integers and booleans are formatted only after being read as real YAML ints/bools;
//! * GUC names must match `^[A-Za-z_][A-Za-z0-9_.]*$` (and are then quoted as well);
//! * inventory text never reaches SQL comments or psql meta-commands.
//!
//! Scripts are fed to `psql -X -v ON_ERROR_STOP=1 -f -` on stdin ([`Script::to_psql_input`]).
//! They are idempotent without DO blocks: conditionals are `SELECT ... \gset` plus `\if`. The only
//! DO block is a constant one (no inventory text) that raises the message a preceding query stored
//! in the custom setting `pgitops.error`. The executor must connect as a superuser (the dbsu).
//!
//! Decisions:
//! * Quoting refuses NUL, and identifiers must be 1..=63 bytes (PostgreSQL would silently truncate
//!   a longer one). Literals containing a backslash use `E'...'` with `\` doubled, so they mean the
//!   same whatever `standard_conforming_strings` is.
//! * The definition's `password` key only decides *whether* a password statement is emitted; its
//!   value is never read here. A [`Secret::Verifier`] must look like a SCRAM-SHA-256 or md5 verifier,
//!   so a plaintext password is never sent (nor logged) by mistake.
//! * `expire_in` with `ctx.today = Some(d)` renders the literal date `d + N`; with `None` the server
//!   computes `CURRENT_DATE + N` at run time through `\gset`, which is still valid SQL.
//! * List GUCs: a string is split the way PostgreSQL splits an unquoted list (bare elements are
//!   ASCII-lowercased, `"..."` elements kept verbatim); a YAML list is taken verbatim. Each element is
//!   rendered with `quote_literal`.
//! * Databases: `ALTER DATABASE ... SET TABLESPACE` and `ALLOW_CONNECTIONS false` cannot run while
//!   connected to that database, so they live in [`DbScripts::create`] / [`DbScripts::finish`], which
//!   run in [`DbScripts::admin_db`]. With `allowconn: false`, `create` re-enables connections so that
//!   `provision` can connect, and `finish` disables them again. Schema owners are converged with
//!   `ALTER SCHEMA ... OWNER TO`. `pg_default_privileges` and `baseline` are not handled here.

use serde_yaml_ng::{Mapping, Value};
use std::fmt;

/// A refused input. Names the field and what was expected; never carries a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    #[error("{field}: expected {expected}")]
    Invalid { field: String, expected: String },
    #[error("{field}: requires PostgreSQL {min}+, target is PostgreSQL {actual}")]
    Unsupported {
        field: String,
        min: u32,
        actual: u32,
    },
    #[error("refusing to {action} `{name}`: it is protected")]
    Protected { action: &'static str, name: String },
}

type Result<T> = std::result::Result<T, SqlError>;

fn invalid(field: impl Into<String>, expected: impl Into<String>) -> SqlError {
    let (field, expected) = (field.into(), expected.into());
    SqlError::Invalid { field, expected }
}

fn protected(action: &'static str, name: &str) -> SqlError {
    let name = name.to_string();
    SqlError::Protected { action, name }
}

/// `"..."` with `"` doubled. Refuses NUL, empty and names longer than 63 bytes.
pub fn quote_ident(s: &str) -> Result<String> {
    ident("identifier", s)
}

/// `'...'` with `'` doubled; `E'...'` with `\` doubled too when `s` holds a backslash. Refuses NUL.
pub fn quote_literal(s: &str) -> Result<String> {
    literal("literal", s)
}

fn ident(field: &str, s: &str) -> Result<String> {
    if s.is_empty() || s.len() > 63 || s.contains('\0') {
        return Err(invalid(field, "a name of 1 to 63 bytes without NUL"));
    }
    Ok(format!("\"{}\"", s.replace('"', "\"\"")))
}

/// `(identifier, literal)` for a name used both ways.
fn names(field: &str, s: &str) -> Result<(String, String)> {
    Ok((ident(field, s)?, literal(field, s)?))
}

fn literal(field: &str, s: &str) -> Result<String> {
    if s.contains('\0') {
        return Err(invalid(field, "a string without NUL bytes"));
    }
    let body = s.replace('\'', "''");
    Ok(match s.contains('\\') {
        true => format!("E'{}'", body.replace('\\', "\\\\")),
        false => format!("'{body}'"),
    })
}

/// How a password is rendered.
#[derive(Clone, Copy)]
pub enum Secret<'a> {
    /// `PASSWORD <redacted>`: for previews only, deliberately not valid SQL.
    Redacted,
    /// `PASSWORD '<verifier>'`: a SCRAM-SHA-256 or md5 verifier computed elsewhere.
    Verifier(&'a str),
}

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Secret::Redacted => "Redacted",
            Secret::Verifier(_) => "Verifier(<redacted>)",
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SqlContext<'a> {
    pub pg_major: u32,
    /// `pg_admin_username`, `pg_monitor_username`, `pg_replication_username`.
    pub admin: &'a str,
    pub monitor: &'a str,
    pub replicator: &'a str,
    /// `YYYY-MM-DD` for `expire_in`; `None` lets the server compute the date at run time.
    pub today: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct Script {
    pub statements: Vec<Statement>,
}

/// One SQL statement or psql meta-command line.
#[derive(Clone)]
pub struct Statement {
    pub sql: String,
    /// The password statement (also when redacted): never log or echo it.
    pub secret: bool,
}

impl fmt::Debug for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.secret {
            true => f.write_str("Statement(<secret>)"),
            false => write!(f, "Statement({:?})", self.sql),
        }
    }
}

/// Wrapped around secret statements so neither the server log, pg_stat_statements nor psql's echo
/// records them (requires superuser, like Pigsty's own `SET log_statement`).
const SECRET_ON: &str = "SET log_statement = 'none';\nSET log_min_duration_statement = -1;\n\
SET log_min_error_statement = 'panic';\nSET pg_stat_statements.track_utility = off;\n\
\\set pgitops_echo :ECHO\n\\set ECHO none\n";
const SECRET_OFF: &str = "\\set ECHO :pgitops_echo\nRESET log_statement;\n\
RESET log_min_duration_statement;\nRESET log_min_error_statement;\n\
RESET pg_stat_statements.track_utility;\n";

impl Script {
    /// Text for `psql -X -v ON_ERROR_STOP=1 -f -`. Stops at the first error even without `-v`.
    /// The executor must not pass `-a`/`-e`, which would echo secret statements.
    pub fn to_psql_input(&self) -> String {
        let mut out = String::from("\\set ON_ERROR_STOP on\nSET client_encoding = 'UTF8';\n");
        for st in &self.statements {
            if st.secret {
                out.push_str(SECRET_ON);
            }
            out.push_str(&st.sql);
            out.push('\n');
            if st.secret {
                out.push_str(SECRET_OFF);
            }
        }
        out
    }
}

/// Scripts for one `pg_databases` entry, run in this order.
#[derive(Debug, Clone)]
pub struct DbScripts {
    /// Where `create` and `finish` run: `postgres`, or `template1` when the template is `postgres`.
    pub admin_db: &'static str,
    /// In `admin_db`: CREATE DATABASE if missing, re-enable connections, move tablespace.
    pub create: Script,
    /// Inside the database itself (refuses to run anywhere else).
    pub provision: Script,
    /// In `admin_db`: `ALLOW_CONNECTIONS false` when requested; often empty.
    pub finish: Script,
}

#[derive(Default)]
struct Out(Vec<Statement>);

impl Out {
    fn push(&mut self, sql: impl Into<String>, secret: bool) {
        let sql = sql.into();
        self.0.push(Statement { sql, secret });
    }
    fn sql(&mut self, sql: impl Into<String>) {
        self.push(sql, false);
    }

    /// `SELECT <cond> AS <var> \gset`, then `body` inside `\if :<var>` ... `\endif`.
    fn when(&mut self, var: &str, cond: &str, body: impl FnOnce(&mut Self)) {
        self.sql(format!("SELECT {cond} AS {var} \\gset"));
        self.sql(format!("\\if :{var}"));
        body(self);
        self.sql("\\endif");
    }

    /// Raise `message` (a SQL text expression) when `failed` (a SQL boolean) holds over `from`.
    fn fail_if(&mut self, failed: &str, message: &str, from: &str) {
        let set = format!("pg_catalog.set_config('pgitops.error', COALESCE({message}, ''), false)");
        self.sql(format!(
            "SELECT {failed} AS pgitops_fail,\n  {set} AS pgitops_error{from} \\gset"
        ));
        self.sql("\\if :pgitops_fail");
        self.sql(
            "DO $pgitops$BEGIN RAISE EXCEPTION USING MESSAGE = \
             pg_catalog.current_setting('pgitops.error'); END$pgitops$;",
        );
        self.sql("\\endif");
    }

    fn done(self) -> Script {
        Script { statements: self.0 }
    }
}

/// `""` or ` WITH <opts joined by sep>`.
fn with(opts: &[String], sep: &str) -> String {
    match opts.is_empty() {
        true => String::new(),
        false => format!(" WITH {}", opts.join(sep)),
    }
}

/// Terminates the other sessions connected to the database named by literal `lit`.
fn terminate(lit: &str) -> String {
    format!(
        "SELECT pg_catalog.count(pg_catalog.pg_terminate_backend(pid)) AS pgitops_terminated \
         FROM pg_catalog.pg_stat_activity\n  \
         WHERE datname = {lit} AND pid <> pg_catalog.pg_backend_pid() \\gset"
    )
}

/// Typed access to one inventory mapping; `path` prefixes field names in errors.
struct Def<'a> {
    map: &'a Mapping,
    path: String,
}

impl<'a> Def<'a> {
    fn new(map: &'a Mapping, path: String, name: &str) -> Result<Self> {
        let def = Def { map, path };
        match def.str("name")? {
            Some(n) if n != name => Err(invalid(def.field("name"), "the entry's own name")),
            _ => Ok(def),
        }
    }
    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }
    /// Absent and null are the same: "leave untouched".
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }
    fn typed<T>(&self, key: &str, want: &str, f: fn(&'a Value) -> Option<T>) -> Result<Option<T>> {
        let err = || invalid(self.field(key), want);
        self.get(key).map(|v| f(v).ok_or_else(err)).transpose()
    }
    fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "a YAML boolean (true/false, unquoted)", Value::as_bool)
    }
    fn int(&self, key: &str) -> Result<Option<i64>> {
        self.typed(key, "a YAML integer (unquoted)", Value::as_i64)
    }
    fn str(&self, key: &str) -> Result<Option<&'a str>> {
        self.typed(key, "a string", Value::as_str)
    }
    fn ident(&self, key: &str) -> Result<Option<String>> {
        self.str(key)?
            .map(|v| ident(&self.field(key), v))
            .transpose()
    }
    fn list(&self, key: &str) -> Result<&'a [Value]> {
        let list = self.typed(key, "a list", |v| v.as_sequence().map(Vec::as_slice))?;
        Ok(list.unwrap_or(&[]))
    }
    fn connlimit(&self) -> Result<Option<i64>> {
        match self.int("connlimit")? {
            Some(n) if n < -1 || n > i64::from(i32::MAX) => {
                Err(invalid(self.field("connlimit"), "an integer >= -1"))
            }
            n => Ok(n),
        }
    }
    /// `COMMENT ON <target> IS ...`, falling back to `<default>` when absent.
    fn comment(&self, out: &mut Out, target: &str, default: String) -> Result<()> {
        let text = self.str("comment")?.map_or(default, str::to_string);
        let text = literal(&self.field("comment"), &text)?;
        out.sql(format!("COMMENT ON {target} IS {text};"));
        Ok(())
    }
}

/// A list entry (`roles`, `schemas`, `extensions`): a bare name, or an object with `name` and an
/// optional `state` (default: the first of `states`).
struct Entry<'a> {
    ident: String,
    state: &'a str,
    obj: Option<Def<'a>>,
}

impl<'a> Def<'a> {
    /// The list under `key`, each entry parsed; states are validated.
    fn entries(&self, key: &str, states: &[&'static str]) -> Result<Vec<Entry<'a>>> {
        let parse = |(i, v): (usize, &'a Value)| {
            let field = format!("{}[{i}]", self.field(key));
            let obj = match v {
                Value::String(name) => {
                    let ident = ident(&format!("{field}.name"), name)?;
                    return Ok(Entry {
                        ident,
                        state: states[0],
                        obj: None,
                    });
                }
                Value::Mapping(map) => Def { map, path: field },
                _ => return Err(invalid(field, "a name or an object with `name`")),
            };
            let ident = obj
                .ident("name")?
                .ok_or_else(|| invalid(obj.field("name"), "a name"))?;
            let state = obj.str("state")?.unwrap_or(states[0]);
            if !states.contains(&state) {
                let want = format!("one of {}", states.join(", "));
                return Err(invalid(obj.field("state"), want));
            }
            Ok(Entry {
                ident,
                state,
                obj: Some(obj),
            })
        };
        self.list(key)?.iter().enumerate().map(parse).collect()
    }
}

impl<'a> Entry<'a> {
    /// A field of the object form; `None` for the bare-name form.
    fn opt<T>(&self, f: impl FnOnce(&Def<'a>) -> Result<Option<T>>) -> Result<Option<T>> {
        self.obj.as_ref().map_or(Ok(None), f)
    }
}

const ROLE_FLAGS: [&str; 7] = [
    "login",
    "superuser",
    "createdb",
    "createrole",
    "inherit",
    "replication",
    "bypassrls",
];
/// List-type GUCs; `log_destination` only for databases (§2.1, §3.1).
const LIST_GUCS: [&str; 5] = [
    "search_path",
    "temp_tablespaces",
    "local_preload_libraries",
    "session_preload_libraries",
    "log_destination",
];

/// Create the role if missing, then converge everything the definition states (§2.1-§2.3).
/// Refuses `postgres`, as Pigsty's preflight does.
pub fn user_upsert(name: &str, def: &Mapping, pw: Secret, ctx: &SqlContext) -> Result<Script> {
    if name == "postgres" {
        return Err(protected("manage role", name));
    }
    let d = Def::new(def, format!("pg_users[{name}]"), name)?;
    let (role, lit) = names(&d.field("name"), name)?;
    let mut out = Out::default();
    let login = if d.bool("login")? == Some(false) {
        "NOLOGIN"
    } else {
        "LOGIN"
    };
    let missing = format!("NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {lit})");
    out.when("pgitops_missing", &missing, |o| {
        o.sql(format!("CREATE ROLE {role} {login};"))
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
    if d.get("password").is_some() {
        let field = d.field("password");
        let value = match pw {
            Secret::Redacted => "<redacted>".to_string(),
            Secret::Verifier(v) if is_verifier(v) => literal(&field, v)?,
            Secret::Verifier(_) => return Err(invalid(field, "a SCRAM-SHA-256 or md5 verifier")),
        };
        out.push(format!("ALTER ROLE {role} PASSWORD {value};"), true);
    }
    valid_until(&mut out, &d, &role, ctx)?;
    set_parameters(&mut out, &d, &format!("ROLE {role}"), &LIST_GUCS[..4])?;
    d.comment(
        &mut out,
        &format!("ROLE {role}"),
        format!("business user {name}"),
    )?;
    grant_roles(&mut out, &d, &role, ctx)?;
    Ok(out.done())
}

/// `md5` + 32 hex, or `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` with 32-byte keys.
/// PostgreSQL would hash anything else as if it were a plaintext password.
fn is_verifier(v: &str) -> bool {
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
fn add_days(today: &str, days: i64) -> Result<String> {
    let bad = || invalid("ctx.today", "a date YYYY-MM-DD");
    let b = today.as_bytes();
    let digits = b
        .iter()
        .enumerate()
        .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| today[r].parse::<i64>().map_err(|_| bad());
    let ymd = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&ymd.1) || civil_from_days(days_from_civil(ymd)) != ymd {
        return Err(bad());
    }
    let (y, m, d) = civil_from_days(days_from_civil(ymd) + days);
    Ok(format!("{y:04}-{m:02}-{d:02}"))
}

/// Days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil((y, m, d): (i64, i64, i64)) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let (m, d) = (
        if mp < 10 { mp + 3 } else { mp - 9 },
        doy - (153 * mp + 2) / 5 + 1,
    );
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `ALTER <target> SET "<guc>" TO <value>` per non-null `parameters` entry.
fn set_parameters(out: &mut Out, d: &Def, target: &str, list_gucs: &[&str]) -> Result<()> {
    let pfield = d.field("parameters");
    let Some(params) = d.typed("parameters", "a mapping", Value::as_mapping)? else {
        return Ok(());
    };
    for (k, v) in params {
        let key = k.as_str().ok_or_else(|| invalid(&pfield, "string keys"))?;
        let field = format!("{pfield}.{key}");
        let mut chars = key.chars();
        let head_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let tail_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !head_ok || !tail_ok || key.split('.').any(str::is_empty) {
            return Err(invalid(field, "a name matching ^[A-Za-z_][A-Za-z0-9_.]*$"));
        }
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

fn guc_value(field: &str, key: &str, v: &Value, list_gucs: &[&str]) -> Result<String> {
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

/// [`user_ownership_check`] then `DROP ROLE IF EXISTS`. No REASSIGN, no DROP OWNED.
pub fn user_drop(name: &str, ctx: &SqlContext) -> Result<Script> {
    let mut script = user_ownership_check(name, ctx)?;
    let sql = format!("DROP ROLE IF EXISTS {};", ident("pg_users.name", name)?);
    script.statements.push(Statement { sql, secret: false });
    Ok(script)
}

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
    for (key, min, kind) in &CREATE_OPTS {
        let (Some(v), field) = (d.str(key)?, d.field(key)) else {
            continue;
        };
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
    let missing = format!("NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = {lit})");
    out.when("pgitops_missing", &missing, |o| {
        if let Some(t) = &template {
            o.sql(terminate(t)); // as Pigsty does for non-standard templates
        }
        o.sql(format!("CREATE DATABASE {db}{};", with(&opts, " ")));
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
    Ok(out.done())
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
        format!("business database {name}"),
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
            for r in [Some(ident("ctx.admin", ctx.admin)?), owner]
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
    for e in d.entries("schemas", &["create", "absent"])? {
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
    for e in d.entries("extensions", &["create", "absent"])? {
        let ext = &e.ident;
        if e.state == "absent" {
            out.sql(format!("DROP EXTENSION IF EXISTS {ext} CASCADE;"));
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
    Ok(out.done())
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
    Ok(out.done())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5: &str = "md50123456789abcdef0123456789abcdef";
    const NASTY: &str =
        "it's \"q\"; DROP ROLE x; --\n\\! touch /tmp/pwned\nb\\s $(touch /tmp/pwned) ü";

    fn ctx(pg_major: u32) -> SqlContext<'static> {
        let (admin, monitor, replicator) = ("dbuser_dba", "dbuser_monitor", "replicator");
        let today = Some("2024-02-27");
        SqlContext {
            pg_major,
            admin,
            monitor,
            replicator,
            today,
        }
    }
    fn yaml(s: &str) -> Mapping {
        serde_yaml_ng::from_str(s).unwrap()
    }
    fn text(s: &Script) -> String {
        let lines: Vec<_> = s.statements.iter().map(|st| st.sql.as_str()).collect();
        lines.join("\n")
    }
    fn user(def: &str, pg: u32) -> String {
        text(&user_upsert("u", &yaml(def), Secret::Redacted, &ctx(pg)).unwrap())
    }
    fn user_err(def: &str) -> String {
        let e = user_upsert("u", &yaml(def), Secret::Redacted, &ctx(16)).unwrap_err();
        e.to_string()
    }
    fn db(def: &str) -> DbScripts {
        database_upsert("d", &yaml(def), &ctx(15)).unwrap()
    }
    fn db_err(def: &str, pg: u32) -> String {
        database_upsert("d", &yaml(def), &ctx(pg))
            .unwrap_err()
            .to_string()
    }
    /// Asserts that `sql` contains every needle (each may span several statements).
    fn has(sql: &str, needles: &[&str]) {
        for n in needles {
            assert!(sql.contains(n), "missing:\n{n}\n--- in:\n{sql}");
        }
    }
    fn lacks(sql: &str, needles: &[&str]) {
        for n in needles {
            assert!(!sql.contains(n), "unexpected:\n{n}\n--- in:\n{sql}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b; c").unwrap(), "\"a\"\"b; c\"");
        assert_eq!(quote_ident("ünï\nx").unwrap(), "\"ünï\nx\"");
        let pwn = "it's; $(touch /tmp/pwned)";
        assert_eq!(quote_literal(pwn).unwrap(), "'it''s; $(touch /tmp/pwned)'");
        assert_eq!(quote_literal("a\\'b\nü").unwrap(), "E'a\\\\''b\nü'");
        assert!(quote_ident("a\0").is_err() && quote_literal("a\0").is_err());
        assert!(quote_ident("").is_err() && quote_ident(&"x".repeat(64)).is_err());
        assert!(quote_ident(&"é".repeat(31)).is_ok() && quote_ident(&"é".repeat(32)).is_err());
    }

    #[test]
    fn user_fields() {
        let sql = user(
            "{createdb: true, superuser: false, connlimit: 3, bypassrls: true}",
            15,
        );
        has(&sql, &[
            "SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'u') AS pgitops_missing \\gset\n\\if :pgitops_missing\nCREATE ROLE \"u\" LOGIN;\n\\endif",
            "ALTER ROLE \"u\" WITH NOSUPERUSER CREATEDB BYPASSRLS CONNECTION LIMIT 3;",
            "COMMENT ON ROLE \"u\" IS 'business user u';",
        ]);
        lacks(&sql, &["PASSWORD", "VALID UNTIL", "GRANT", "SET"]);
        let sql = user(
            "{login: false, inherit: false, replication: true, createrole: false}",
            15,
        );
        has(
            &sql,
            &[
                "CREATE ROLE \"u\" NOLOGIN;",
                "ALTER ROLE \"u\" WITH NOLOGIN NOCREATEROLE NOINHERIT REPLICATION;",
            ],
        );
        has(
            &user("{login: null, comment: null}", 15),
            &["LOGIN;\n\\endif\nCOMMENT"],
        );
        let def = yaml(&format!(
            "comment: {}",
            serde_yaml_ng::to_string(NASTY).unwrap()
        ));
        let sql = text(&user_upsert("o'd\"d", &def, Secret::Redacted, &ctx(15)).unwrap());
        has(&sql, &[
            "rolname = 'o''d\"d'",
            "CREATE ROLE \"o'd\"\"d\" LOGIN;",
            "COMMENT ON ROLE \"o'd\"\"d\" IS E'it''s \"q\"; DROP ROLE x; --\n\\\\! touch /tmp/pwned\nb\\\\s $(touch /tmp/pwned) ü';",
        ]);
    }

    #[test]
    fn user_type_errors_name_the_field() {
        let e = user_err("createdb: 'true'");
        assert_eq!(
            e,
            "pg_users[u].createdb: expected a YAML boolean (true/false, unquoted)"
        );
        assert_eq!(
            user_err("connlimit: '5'"),
            "pg_users[u].connlimit: expected a YAML integer (unquoted)"
        );
        assert_eq!(
            user_err("connlimit: -2"),
            "pg_users[u].connlimit: expected an integer >= -1"
        );
        assert!(user_err("name: v").starts_with("pg_users[u].name: expected"));
        assert!(user_err("parameters: {'a;b': 1}")
            .starts_with("pg_users[u].parameters.a;b: expected a name matching"));
        assert!(user_err("parameters: {'a..b': 1}").starts_with("pg_users[u].parameters.a..b"));
        assert!(user_err("comment: [x]").starts_with("pg_users[u].comment: expected a string"));
    }

    #[test]
    fn passwords() {
        let def = yaml("password: Sup3rS3cret");
        let redacted = user_upsert("u", &def, Secret::Redacted, &ctx(15)).unwrap();
        let st = redacted.statements.iter().find(|s| s.secret).unwrap();
        assert_eq!(st.sql, "ALTER ROLE \"u\" PASSWORD <redacted>;");
        lacks(&redacted.to_psql_input(), &["Sup3rS3cret"]);
        let real = user_upsert("u", &def, Secret::Verifier(MD5), &ctx(15)).unwrap();
        let input = real.to_psql_input();
        assert_eq!(input.matches(MD5).count(), 1);
        has(&input, &[&format!("SET log_statement = 'none';\nSET log_min_duration_statement = -1;\nSET log_min_error_statement = 'panic';\nSET pg_stat_statements.track_utility = off;\n\\set pgitops_echo :ECHO\n\\set ECHO none\nALTER ROLE \"u\" PASSWORD '{MD5}';\n\\set ECHO :pgitops_echo\nRESET log_statement;")]);
        assert_eq!(real.statements.iter().filter(|s| s.secret).count(), 1);
        assert!(real
            .statements
            .iter()
            .any(|s| s.secret && s.sql.contains(MD5)));
        lacks(&format!("{real:?} {:?}", Secret::Verifier(MD5)), &[MD5]);
        let err = user_upsert("u", &def, Secret::Verifier("Sup3rS3cret"), &ctx(15)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pg_users[u].password: expected a SCRAM-SHA-256 or md5 verifier"
        );
        let scram = format!(
            "SCRAM-SHA-256$4096:c2FsdA==${}=:{}=",
            "A".repeat(43),
            "B".repeat(43)
        );
        assert!(is_verifier(&scram) && !is_verifier("SCRAM-SHA-256$4096:salt$short:key"));
        lacks(&user("{password: null}", 15), &["PASSWORD"]);
    }

    #[test]
    fn expiry() {
        let sql = user("{expire_in: 3, expire_at: '2030-01-01'}", 15);
        has(&sql, &["ALTER ROLE \"u\" VALID UNTIL '2024-03-01';"]);
        has(
            &user("expire_at: infinity", 15),
            &["VALID UNTIL 'infinity';"],
        );
        let none = SqlContext {
            today: None,
            ..ctx(15)
        };
        let sql = text(&user_upsert("u", &yaml("expire_in: 30"), Secret::Redacted, &none).unwrap());
        has(&sql, &["SELECT (CURRENT_DATE + 30)::text AS pgitops_until \\gset\nALTER ROLE \"u\" VALID UNTIL :'pgitops_until';"]);
        assert_eq!(add_days("2023-12-31", 366).unwrap(), "2024-12-31");
        assert_eq!(add_days("2024-03-01", -1).unwrap(), "2024-02-29");
        assert!(add_days("2023-02-29", 1).is_err() && add_days("2023-1-01", 1).is_err());
        let bad = SqlContext {
            today: Some("today"),
            ..ctx(15)
        };
        assert!(user_upsert("u", &yaml("expire_in: 1"), Secret::Redacted, &bad).is_err());
    }

    #[test]
    fn roles_pg15_and_pg16() {
        let def = "roles: [dbrole_readonly, {name: r1, admin: true, set: false, inherit: true}, \
                   {name: r2, admin: false}, {name: r3, state: absent}, {name: r4, state: revoke}]";
        let pg16 = user(def, 16);
        has(&pg16, &[
            "GRANT \"dbrole_readonly\" TO \"u\";\nGRANT \"r1\" TO \"u\" WITH ADMIN TRUE, INHERIT TRUE;\nREVOKE SET OPTION FOR \"r1\" FROM \"u\";",
            "GRANT \"r2\" TO \"u\";\nREVOKE ADMIN OPTION FOR \"r2\" FROM \"u\";",
            "REVOKE \"r3\" FROM \"u\";\nREVOKE \"r4\" FROM \"u\";",
        ]);
        let pg15 = user(def, 15);
        has(&pg15, &["-- roles[1].set skipped: needs PostgreSQL 16+\n-- roles[1].inherit skipped: needs PostgreSQL 16+\nGRANT \"r1\" TO \"u\" WITH ADMIN OPTION;"]);
        lacks(&pg15, &["SET OPTION", "INHERIT TRUE"]);
        let e = user_err("roles: [{name: r, state: nope}]");
        assert_eq!(
            e,
            "pg_users[u].roles[0].state: expected one of grant, revoke, absent"
        );
        assert_eq!(
            user_err("roles: [{admin: true}]"),
            "pg_users[u].roles[0].name: expected a name"
        );
        assert!(user_err("roles: [{name: r, set: 'yes'}]").starts_with("pg_users[u].roles[0].set"));
    }

    #[test]
    fn parameters() {
        let sql = user(
            r#"parameters: {work_mem: 64MB, statement_timeout: 1000, jit: false,
            lock_timeout: default, search_path: '"$user", Public ,"a""b"', temp_tablespaces: [Ts1, "x'y"],
            session_preload_libraries: '', pg_stat_statements.track: all, idle_session_timeout: null}"#,
            15,
        );
        has(&sql, &[
            "ALTER ROLE \"u\" SET \"work_mem\" TO '64MB';\nALTER ROLE \"u\" SET \"statement_timeout\" TO '1000';",
            "SET \"jit\" TO 'off';",
            "SET \"lock_timeout\" TO DEFAULT;",
            "SET \"search_path\" TO '$user', 'public', 'a\"b';",
            "SET \"temp_tablespaces\" TO 'Ts1', 'x''y';",
            "SET \"session_preload_libraries\" TO '';",
            "SET \"pg_stat_statements.track\" TO 'all';",
        ]);
        lacks(&sql, &["idle_session"]);
        for bad in [
            "search_path: 'a,,b'",
            "search_path: '\"a'",
            "search_path: 'a b c, \"d\" e'",
            "work_mem: [1]",
        ] {
            let e = user_err(&format!("parameters: {{{bad}}}"));
            assert!(e.starts_with("pg_users[u].parameters."), "{e}");
        }
        let db = db("parameters: {log_destination: 'stderr,CSVLOG'}");
        has(
            &text(&db.provision),
            &["SET \"log_destination\" TO 'stderr', 'csvlog';"],
        );
        has(
            &user("parameters: {log_destination: 'stderr,csvlog'}", 15),
            &["TO 'stderr,csvlog';"],
        );
    }

    #[test]
    fn user_drop_checks_ownership() {
        for name in ["postgres", "replicator", "dbuser_dba", "dbuser_monitor"] {
            assert!(matches!(
                user_drop(name, &ctx(15)),
                Err(SqlError::Protected { .. })
            ));
        }
        let e = user_upsert("postgres", &Mapping::new(), Secret::Redacted, &ctx(15));
        assert!(matches!(e, Err(SqlError::Protected { .. })));
        let sql = text(&user_drop("o'u", &ctx(15)).unwrap());
        has(
            &sql,
            &[
                "FROM pg_catalog.pg_shdepend s",
                "rolname = 'o''u'",
                "\\if :pgitops_fail\nDO $pgitops$BEGIN RAISE EXCEPTION",
            ],
        );
        assert!(sql.ends_with("\\endif\nDROP ROLE IF EXISTS \"o'u\";"));
        lacks(&sql, &["REASSIGN", "DROP OWNED"]);
    }

    #[test]
    fn database_create_options() {
        let s = db("{owner: o, template: tpl, encoding: UTF8, locale: C.UTF-8, lc_collate: C, lc_ctype: \"x'y\", \
                    locale_provider: ICU, icu_locale: en-US, strategy: FILE_COPY, tablespace: ts1}");
        has(&text(&s.create), &[
            "CREATE DATABASE \"d\" WITH OWNER \"o\" TEMPLATE \"tpl\" ENCODING 'UTF8' LOCALE 'C.UTF-8' LC_COLLATE 'C' LC_CTYPE 'x''y' LOCALE_PROVIDER 'icu' ICU_LOCALE 'en-US' STRATEGY 'file_copy' TABLESPACE \"ts1\";",
            "pg_terminate_backend(pid)) AS pgitops_terminated FROM pg_catalog.pg_stat_activity\n  WHERE datname = 'tpl' AND pid <>",
            "t.spcname <> 'ts1') AS pgitops_move \\gset\n\\if :pgitops_move\nALTER DATABASE \"d\" SET TABLESPACE \"ts1\";",
        ]);
        lacks(&text(&s.provision), &["TEMPLATE \"", "ENCODING", "LOCALE"]);
        assert_eq!(
            (s.admin_db, db("template: postgres").admin_db),
            ("postgres", "template1")
        );
        let minimal = text(&db("{}").create);
        has(
            &minimal,
            &["\\if :pgitops_missing\nCREATE DATABASE \"d\";\n\\endif"],
        );
        lacks(&minimal, &["TABLESPACE", "terminate", "ALLOW_CONNECTIONS"]);
        assert_eq!(
            db_err("strategy: fast", 15),
            "pg_databases[d].strategy: expected one of wal_log, file_copy"
        );
        let e = db_err("icu_rules: '&a<b'", 15);
        assert_eq!(
            e,
            "pg_databases[d].icu_rules: requires PostgreSQL 16+, target is PostgreSQL 15"
        );
        assert!(db_err("strategy: wal_log", 14).contains("requires PostgreSQL 15+"));
        assert!(db_err("template: d", 15).starts_with("pg_databases[d].template"));
    }

    #[test]
    fn database_provision() {
        let s = db("{owner: o, connlimit: 10, is_template: false, allowconn: false, revokeconn: true, \
            comment: \"it's\", schemas: [s1, {name: s2, owner: o}, {name: s3, state: absent}], \
            extensions: [citext, {name: hstore, schema: s1, version: '1.8'}, {name: pg_trgm, state: absent}]}");
        let p = text(&s.provision);
        assert!(p.starts_with("SELECT pg_catalog.current_database() <> 'd' AS pgitops_fail,"));
        has(&p, &[
            "ALTER DATABASE \"d\" OWNER TO \"o\";\nGRANT ALL PRIVILEGES ON DATABASE \"d\" TO \"o\";",
            "ALTER DATABASE \"d\" WITH CONNECTION LIMIT 10 IS_TEMPLATE false;",
            "COMMENT ON DATABASE \"d\" IS 'it''s';",
            "REVOKE CONNECT ON DATABASE \"d\" FROM PUBLIC;\nGRANT CONNECT ON DATABASE \"d\" TO \"replicator\";\nGRANT CONNECT ON DATABASE \"d\" TO \"dbuser_monitor\";\nGRANT CONNECT ON DATABASE \"d\" TO \"dbuser_dba\" WITH GRANT OPTION;\nGRANT CONNECT ON DATABASE \"d\" TO \"o\" WITH GRANT OPTION;",
            "REVOKE CREATE ON DATABASE \"d\" FROM PUBLIC;\nGRANT CREATE ON DATABASE \"d\" TO \"dbrole_admin\";",
            "REVOKE CREATE ON SCHEMA \"public\" FROM PUBLIC;\nGRANT CREATE ON SCHEMA \"public\" TO \"dbrole_admin\";",
            "CREATE SCHEMA IF NOT EXISTS \"s1\";\nCREATE SCHEMA IF NOT EXISTS \"s2\" AUTHORIZATION \"o\";\nALTER SCHEMA \"s2\" OWNER TO \"o\";\nDROP SCHEMA IF EXISTS \"s3\" CASCADE;",
            "CREATE EXTENSION IF NOT EXISTS \"citext\" CASCADE;\nCREATE EXTENSION IF NOT EXISTS \"hstore\" WITH SCHEMA \"s1\" VERSION '1.8' CASCADE;\nDROP EXTENSION IF EXISTS \"pg_trgm\" CASCADE;",
        ]);
        has(
            &text(&s.create),
            &["ALTER DATABASE \"d\" WITH ALLOW_CONNECTIONS true;"],
        );
        assert_eq!(
            text(&s.finish),
            "ALTER DATABASE \"d\" WITH ALLOW_CONNECTIONS false;"
        );
        let p = text(&db("revokeconn: false").provision);
        has(
            &p,
            &[
                "GRANT CONNECT ON DATABASE \"d\" TO PUBLIC;",
                "IS 'business database d';",
            ],
        );
        lacks(
            &text(&db("{}").provision),
            &["CONNECT ON", "OWNER", "SCHEMA IF", "EXTENSION", " SET "],
        );
        let e = db_err("extensions: [{name: x, version: 1.10}]", 15);
        assert_eq!(
            e,
            "pg_databases[d].extensions[0].version: expected a string"
        );
        assert!(db_err("schemas: [{name: s, state: drop}]", 15).contains("schemas[0].state"));
        assert!(db_err("revokeconn: 1", 15).contains("revokeconn: expected a YAML boolean"));
    }

    #[test]
    fn database_drop_rules() {
        for name in ["postgres", "template0", "template1"] {
            assert!(matches!(
                database_drop(name, &ctx(15)),
                Err(SqlError::Protected { .. })
            ));
        }
        has(&text(&database_drop("d", &ctx(13)).unwrap()), &["\\if :pgitops_exists\nALTER DATABASE \"d\" WITH IS_TEMPLATE false;\nDROP DATABASE IF EXISTS \"d\" WITH (FORCE);\n\\endif"]);
        let sql = text(&database_drop("d", &ctx(12)).unwrap());
        has(
            &sql,
            &["pg_terminate_backend", "DROP DATABASE IF EXISTS \"d\";"],
        );
    }

    /// A throwaway PostgreSQL 15 on a unix socket in a temp dir (Debian paths). As root, server and
    /// psql run through `runuser -u postgres`. Run: `cargo test -- --ignored real_server`.
    struct Server(std::path::PathBuf);
    const BIN: &str = "/usr/lib/postgresql/15/bin";

    fn as_postgres(prog: &str) -> std::process::Command {
        let id = std::process::Command::new("id").arg("-u").output().unwrap();
        if id.stdout != b"0\n" {
            return std::process::Command::new(prog);
        }
        let mut cmd = std::process::Command::new("runuser");
        cmd.args(["-u", "postgres", "--", prog]);
        cmd
    }

    impl Server {
        fn start() -> Self {
            let dir = std::env::temp_dir().join(format!("pgitops-sql-{}", std::process::id()));
            std::fs::create_dir_all(dir.join("ts1")).unwrap();
            let chown = ["-R", "postgres:postgres"];
            let _ = std::process::Command::new("chown")
                .args(chown)
                .arg(&dir)
                .status();
            let (data, initdb) = (dir.join("data"), format!("{BIN}/initdb"));
            let args = [
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ];
            let init = as_postgres(&initdb).args(args).arg(&data).output().unwrap();
            assert!(
                init.status.success(),
                "{}",
                String::from_utf8_lossy(&init.stderr)
            );
            let opts = format!(
                "-k {} -c listen_addresses='' -c log_statement=all \
                                -c shared_preload_libraries=pg_stat_statements",
                dir.display()
            );
            let mut ctl = as_postgres(&format!("{BIN}/pg_ctl"));
            ctl.args(["-w", "-o", &opts, "-l"])
                .arg(dir.join("log"))
                .arg("-D")
                .arg(&data);
            assert!(ctl.arg("start").status().unwrap().success());
            Server(dir)
        }
        /// Feeds `input` to psql on stdin; returns (success, stdout + stderr).
        fn psql(&self, db: &str, input: &str) -> (bool, String) {
            use std::{io::Write, process::Stdio};
            let mut cmd = as_postgres("psql");
            cmd.args([
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-f",
                "-",
                "-d",
                db,
                "-h",
            ])
            .arg(&self.0);
            let (i, o, e) = (Stdio::piped(), Stdio::piped(), Stdio::piped());
            let mut child = cmd.stdin(i).stdout(o).stderr(e).spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
            (out.status.success(), text.into_owned())
        }
        fn twice(&self, db: &str, script: &Script) -> String {
            let input = script.to_psql_input();
            let runs = [self.psql(db, &input), self.psql(db, &input)];
            for (ok, out) in &runs {
                assert!(ok, "script failed in {db}:\n{input}\n---\n{out}");
            }
            runs.map(|r| r.1).concat()
        }
        fn expect(&self, db: &str, sql: &str, want: &str) {
            let (ok, out) = self.psql(db, sql);
            assert!(
                ok && out.trim_end_matches('\n') == want,
                "{sql}\n-> {out}\nwant {want}"
            );
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let mut ctl = as_postgres(&format!("{BIN}/pg_ctl"));
            let _ = ctl
                .args(["-m", "immediate", "-D"])
                .arg(self.0.join("data"))
                .arg("stop")
                .output();
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    #[ignore = "needs PostgreSQL 15 binaries; run manually"]
    fn real_server_runs_scripts_twice() {
        let pg = Server::start();
        let c = SqlContext {
            today: None,
            ..ctx(15)
        };
        let ts = quote_literal(&pg.0.join("ts1").to_string_lossy()).unwrap();
        let setup = format!("CREATE TABLESPACE ts1 LOCATION {ts}; CREATE ROLE nobody;\n\
            CREATE EXTENSION pg_stat_statements; SET password_encryption = 'scram-sha-256';\n\
            CREATE ROLE tmp PASSWORD 'pw'; SELECT rolpassword FROM pg_authid WHERE rolname = 'tmp';");
        let (ok, out) = pg.psql("postgres", &setup);
        let verifier = out
            .lines()
            .find(|l| l.starts_with("SCRAM") && ok)
            .unwrap()
            .to_string();
        for (name, def) in [
            ("dbrole_admin", "login: false"),
            ("replicator", "replication: true"),
            ("dbuser_dba", "superuser: true"),
            ("dbuser_monitor", "roles: [pg_monitor]"),
        ] {
            pg.twice(
                "postgres",
                &user_upsert(name, &yaml(def), Secret::Redacted, &c).unwrap(),
            );
        }
        let name = "app'\"; $(touch /tmp/pwned) ünï";
        let lit = quote_literal(name).unwrap();
        let mut def = yaml(
            r#"{login: true, superuser: false, createdb: true, createrole: false,
            inherit: true, replication: false, bypassrls: false, connlimit: 5, expire_in: 30,
            expire_at: '2000-01-01', password: x, roles: [dbrole_admin, {name: pg_monitor, admin: true,
            set: true, inherit: false}, {name: pg_read_all_data, state: absent}, {name: pg_signal_backend,
            admin: false}], parameters: {search_path: '"$user", Public, "odd""s"', work_mem: 64MB,
            statement_timeout: 1000, log_min_duration_statement: DEFAULT, pg_stat_statements.track: all,
            temp_tablespaces: [ts1]}}"#,
        );
        def.insert("comment".into(), NASTY.into());
        let out = pg.twice(
            "postgres",
            &user_upsert(name, &def, Secret::Verifier(&verifier), &c).unwrap(),
        );
        assert!(!out.contains(&verifier));
        let role = format!("FROM pg_authid WHERE rolname = {lit}");
        pg.expect(
            "postgres",
            &format!("SELECT shobj_description(oid, 'pg_authid') {role}"),
            NASTY,
        );
        pg.expect("postgres", &format!("SELECT rolpassword {role}"), &verifier);
        let attrs =
            "rolcanlogin, rolcreatedb, rolconnlimit, rolvaliduntil > now() + interval '29 days'";
        pg.expect("postgres", &format!("SELECT {attrs} {role}"), "t|t|5|t");
        let setconfig =
            "SELECT array_to_string(setconfig, ' / ') FROM pg_db_role_setting WHERE setrole =";
        let want =
            "search_path=\"$user\", public, \"odd\"\"s\" / work_mem=64MB / statement_timeout=1000 / \
                    pg_stat_statements.track=all / temp_tablespaces=ts1";
        pg.expect(
            "postgres",
            &format!("{setconfig} (SELECT oid {role})"),
            want,
        );
        let members = format!(
            "SELECT string_agg(roleid::regrole || ':' || admin_option, ',' ORDER BY roleid::regrole::text) \
            FROM pg_auth_members WHERE member = (SELECT oid {role})"
        );
        pg.expect(
            "postgres",
            &members,
            "dbrole_admin:false,pg_monitor:true,pg_signal_backend:false",
        );

        let dbname = "app \"db\"; ü";
        let mut ddef = yaml(
            r#"{template: template0, encoding: UTF8, lc_collate: C, lc_ctype: C,
            locale_provider: ICU, icu_locale: en-US, strategy: WAL_LOG, tablespace: ts1, connlimit: 20,
            is_template: false, allowconn: false, revokeconn: true, parameters: {search_path: 'app, public',
            work_mem: 8MB, jit: off}, schemas: [app, {name: gone, state: absent}], extensions: [citext,
            {name: hstore, schema: app, version: '1.8'}, {name: pg_trgm, state: absent}]}"#,
        );
        for (key, value) in [("owner", name), ("comment", NASTY)] {
            ddef.insert(key.into(), value.into());
        }
        let mut other = yaml("name: other");
        other.insert("owner".into(), name.into());
        ddef["schemas"]
            .as_sequence_mut()
            .unwrap()
            .push(other.into());
        let apply = |def: &Mapping| {
            let s = database_upsert(dbname, def, &c).unwrap();
            for _ in 0..2 {
                pg.twice(s.admin_db, &s.create);
                pg.twice(dbname, &s.provision);
                pg.twice(s.admin_db, &s.finish);
            }
        };
        apply(&ddef);
        let db = format!(
            "FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace \
                          WHERE datname = {}",
            quote_literal(dbname).unwrap()
        );
        let cols = format!("SELECT datallowconn, datconnlimit, spcname, daticulocale, \
            has_database_privilege('nobody', d.oid, 'CONNECT'), \
            has_database_privilege('dbuser_monitor', d.oid, 'CONNECT'), pg_get_userbyid(datdba) = {lit}");
        pg.expect("postgres", &format!("{cols} {db}"), "f|20|ts1|en-US|f|t|t");
        pg.expect(
            "postgres",
            &format!("SELECT shobj_description(d.oid, 'pg_database') {db}"),
            NASTY,
        );
        ddef.insert("allowconn".into(), true.into());
        ddef.insert("revokeconn".into(), false.into());
        ddef.insert("tablespace".into(), "pg_default".into());
        apply(&ddef);
        pg.expect(
            "postgres",
            &format!("{cols} {db}"),
            "t|20|pg_default|en-US|t|t|t",
        );
        let ext =
            "SELECT string_agg(extname || '@' || extnamespace::regnamespace, ',' ORDER BY extname) \
                   FROM pg_extension";
        pg.expect(dbname, ext, "citext@public,hstore@app,plpgsql@pg_catalog");
        let owners = format!("SELECT string_agg(nspname || ':' || (nspowner::regrole::text = \
            quote_ident({lit})), ',' ORDER BY nspname) FROM pg_namespace WHERE nspname IN ('app', 'other')");
        pg.expect(dbname, &owners, "app:false,other:true");
        let provision = database_upsert(dbname, &ddef, &c)
            .unwrap()
            .provision
            .to_psql_input();
        let (ok, out) = pg.psql("postgres", &provision);
        assert!(!ok && out.contains("must run inside it"), "{out}");

        let (ok, out) = pg.psql("postgres", &user_drop(name, &c).unwrap().to_psql_input());
        assert!(
            !ok && out.contains("refusing to drop role") && out.contains("owns database"),
            "{out}"
        );
        assert!(
            out.contains("has 1 dependent object(s) in database \"app \"\"db\"\"; ü\""),
            "{out}"
        );
        let (ok, out) = pg.psql(
            dbname,
            &user_ownership_check(name, &c).unwrap().to_psql_input(),
        );
        assert!(!ok && out.contains("owns schema other"), "{out}");
        pg.twice("postgres", &database_drop(dbname, &c).unwrap());
        pg.expect("postgres", &format!("SELECT count(*) {db}"), "0");
        pg.twice("postgres", &user_drop(name, &c).unwrap());
        pg.expect("postgres", &format!("SELECT count(*) {role}"), "0");

        let log = std::fs::read_to_string(pg.0.join("log")).unwrap();
        assert!(
            log.contains("COMMENT ON ROLE") && !log.contains(&verifier),
            "log leaked the verifier"
        );
        let pgss = "SELECT count(*) FILTER (WHERE query LIKE '%SCRAM-SHA-256$%'), \
            count(*) FILTER (WHERE query LIKE 'COMMENT ON ROLE%') > 0 FROM pg_stat_statements";
        pg.expect("postgres", pgss, "0|t");
        assert!(!std::path::Path::new("/tmp/pwned").exists());
    }
}
