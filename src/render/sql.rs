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
    SqlError::Invalid {
        field: field.into(),
        expected: expected.into(),
    }
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
    /// Carries a password: never log or echo it.
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
    fn sql(&mut self, sql: impl Into<String>) {
        self.0.push(Statement {
            sql: sql.into(),
            secret: false,
        });
    }

    /// `SELECT <cond> AS <var> \gset`, then `body` inside `\if :<var>` ... `\endif`.
    fn when(
        &mut self,
        var: &str,
        cond: &str,
        body: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        self.sql(format!("SELECT {cond} AS {var} \\gset"));
        self.sql(format!("\\if :{var}"));
        body(self)?;
        self.sql("\\endif");
        Ok(())
    }

    /// Raise `message` (a SQL text expression) when `failed` (a SQL boolean) holds over `from`.
    fn fail_if(&mut self, failed: &str, message: &str, from: &str) {
        self.sql(format!(
            "SELECT {failed} AS pgitops_fail,\n  pg_catalog.set_config('pgitops.error', \
             COALESCE({message}, ''), false) AS pgitops_error{from} \\gset"
        ));
        self.sql("\\if :pgitops_fail");
        self.sql("DO $pgitops$BEGIN RAISE EXCEPTION USING MESSAGE = pg_catalog.current_setting('pgitops.error'); END$pgitops$;");
        self.sql("\\endif");
    }

    fn done(self) -> Script {
        Script { statements: self.0 }
    }
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
            Some(n) if n != name => Err(invalid(
                def.field("name"),
                "the name the entry is applied under",
            )),
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
    fn typed<T>(
        &self,
        key: &str,
        want: &str,
        f: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>> {
        self.get(key)
            .map(|v| f(v).ok_or_else(|| invalid(self.field(key), want)))
            .transpose()
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
    fn list(&self, key: &str) -> Result<&'a [Value]> {
        Ok(self
            .typed(key, "a list", |v| v.as_sequence().map(Vec::as_slice))?
            .unwrap_or(&[]))
    }
    fn connlimit(&self) -> Result<Option<i64>> {
        match self.int("connlimit")? {
            Some(n) if !(-1..=i64::from(i32::MAX)).contains(&n) => {
                Err(invalid(self.field("connlimit"), "an integer >= -1"))
            }
            n => Ok(n),
        }
    }
}

/// A list entry: a bare name, or an object with `name` and an optional `state`.
struct Entry<'a> {
    name: &'a str,
    state: &'a str,
    obj: Option<Def<'a>>,
    field: String,
}

fn entry<'a>(field: String, v: &'a Value, states: &[&'static str]) -> Result<Entry<'a>> {
    let expected = format!(
        "a name or an object with `name` and `state` ({})",
        states.join("/")
    );
    match v {
        Value::String(name) => Ok(Entry {
            name,
            state: states[0],
            obj: None,
            field,
        }),
        Value::Mapping(map) => {
            let obj = Def {
                map,
                path: field.clone(),
            };
            let name = obj
                .str("name")?
                .ok_or_else(|| invalid(obj.field("name"), "a name"))?;
            let state = obj.str("state")?.unwrap_or(states[0]);
            if !states.contains(&state) {
                return Err(invalid(
                    obj.field("state"),
                    format!("one of {}", states.join(", ")),
                ));
            }
            Ok(Entry {
                name,
                state,
                obj: Some(obj),
                field,
            })
        }
        _ => Err(invalid(field, expected)),
    }
}

impl<'a> Entry<'a> {
    fn ident(&self) -> Result<String> {
        ident(&format!("{}.name", self.field), self.name)
    }
    /// Optional string key of the object form, quoted as an identifier.
    fn opt_ident(&self, key: &str) -> Result<Option<String>> {
        let Some(obj) = &self.obj else {
            return Ok(None);
        };
        obj.str(key)?.map(|v| ident(&obj.field(key), v)).transpose()
    }
}

const ROLE_FLAGS: [(&str, &str); 7] = [
    ("login", "LOGIN"),
    ("superuser", "SUPERUSER"),
    ("createdb", "CREATEDB"),
    ("createrole", "CREATEROLE"),
    ("inherit", "INHERIT"),
    ("replication", "REPLICATION"),
    ("bypassrls", "BYPASSRLS"),
];
const USER_LIST_GUCS: &[&str] = &[
    "search_path",
    "temp_tablespaces",
    "local_preload_libraries",
    "session_preload_libraries",
];
const DB_LIST_GUCS: &[&str] = &[
    "search_path",
    "temp_tablespaces",
    "local_preload_libraries",
    "session_preload_libraries",
    "log_destination",
];

/// Create the role if missing, then converge everything the definition states (§2.1-§2.3).
pub fn user_upsert(
    name: &str,
    def: &Mapping,
    password: Secret,
    ctx: &SqlContext,
) -> Result<Script> {
    let d = Def::new(def, format!("pg_users[{name}]"), name)?;
    let (role, lit) = (
        ident(&d.field("name"), name)?,
        literal(&d.field("name"), name)?,
    );
    let mut out = Out::default();
    let login = if d.bool("login")? == Some(false) {
        "NOLOGIN"
    } else {
        "LOGIN"
    };
    let missing = format!("NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {lit})");
    out.when("pgitops_missing", &missing, |o| {
        o.sql(format!("CREATE ROLE {role} {login};"));
        Ok(())
    })?;
    let mut attrs = Vec::new();
    for (key, kw) in ROLE_FLAGS {
        if let Some(on) = d.bool(key)? {
            attrs.push(if on {
                kw.to_string()
            } else {
                format!("NO{kw}")
            });
        }
    }
    if let Some(n) = d.connlimit()? {
        attrs.push(format!("CONNECTION LIMIT {n}"));
    }
    if !attrs.is_empty() {
        out.sql(format!("ALTER ROLE {role} WITH {};", attrs.join(" ")));
    }
    if d.get("password").is_some() {
        let value = match password {
            Secret::Redacted => "<redacted>".to_string(),
            Secret::Verifier(v) if is_verifier(v) => literal(&d.field("password"), v)?,
            Secret::Verifier(_) => {
                return Err(invalid(
                    d.field("password"),
                    "a SCRAM-SHA-256 or md5 verifier, not plaintext",
                ))
            }
        };
        out.0.push(Statement {
            sql: format!("ALTER ROLE {role} PASSWORD {value};"),
            secret: true,
        });
    }
    valid_until(&mut out, &d, &role, ctx)?;
    set_parameters(&mut out, &d, &format!("ROLE {role}"), USER_LIST_GUCS)?;
    let comment = d
        .str("comment")?
        .map_or_else(|| format!("business user {name}"), str::to_string);
    out.sql(format!(
        "COMMENT ON ROLE {role} IS {};",
        literal(&d.field("comment"), &comment)?
    ));
    grant_roles(&mut out, &d, &role, ctx)?;
    Ok(out.done())
}

/// `md5` + 32 hex, or `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` with 32-byte keys. A value
/// PostgreSQL would not recognise as a verifier would be hashed as if it were a plaintext password.
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
    let md5 =
        v.len() == 35 && v.starts_with("md5") && v[3..].bytes().all(|b| b.is_ascii_hexdigit());
    md5 || scram() == Some(true)
}

fn valid_until(out: &mut Out, d: &Def, role: &str, ctx: &SqlContext) -> Result<()> {
    if let Some(days) = d.int("expire_in")? {
        let field = d.field("expire_in");
        if days.abs() > 100_000 {
            return Err(invalid(
                field,
                "a number of days between -100000 and 100000",
            ));
        }
        match ctx.today {
            Some(today) => {
                let date = literal(&field, &add_days(today, days)?)?;
                out.sql(format!("ALTER ROLE {role} VALID UNTIL {date};"));
            }
            None => {
                out.sql(format!(
                    "SELECT (CURRENT_DATE + {days})::text AS pgitops_valid_until \\gset"
                ));
                out.sql(format!(
                    "ALTER ROLE {role} VALID UNTIL :'pgitops_valid_until';"
                ));
            }
        }
    } else if let Some(at) = d.str("expire_at")? {
        out.sql(format!(
            "ALTER ROLE {role} VALID UNTIL {};",
            literal(&d.field("expire_at"), at)?
        ));
    }
    Ok(())
}

/// `today + days` for a strict `YYYY-MM-DD` date.
fn add_days(today: &str, days: i64) -> Result<String> {
    let bad = || invalid("ctx.today", "a date YYYY-MM-DD");
    let b = today.as_bytes();
    let shape = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
    let digits = b
        .iter()
        .enumerate()
        .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape || !digits {
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
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        yoe + era * 400 + i64::from(m <= 2),
        m,
        doy - (153 * mp + 2) / 5 + 1,
    )
}

/// `ALTER <target> SET "<guc>" TO <value>` per non-null `parameters` entry.
fn set_parameters(out: &mut Out, d: &Def, target: &str, list_gucs: &[&str]) -> Result<()> {
    let pfield = d.field("parameters");
    let Some(params) = d.typed(
        "parameters",
        "a mapping of setting names to values",
        Value::as_mapping,
    )?
    else {
        return Ok(());
    };
    for (k, v) in params {
        let key = k
            .as_str()
            .ok_or_else(|| invalid(&pfield, "setting names that are strings"))?;
        let field = format!("{pfield}.{key}");
        let mut chars = key.chars();
        let head_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let tail_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !head_ok || !tail_ok || key.split('.').any(str::is_empty) {
            return Err(invalid(
                field,
                "a setting name matching ^[A-Za-z_][A-Za-z0-9_.]*$",
            ));
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
    if list_gucs.iter().any(|g| g.eq_ignore_ascii_case(key)) {
        let items = match v {
            Value::String(s) => split_list(field, s)?,
            Value::Sequence(seq) => seq
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid(field, "a list of strings"))
                })
                .collect::<Result<_>>()?,
            _ => {
                return Err(invalid(
                    field,
                    "a comma-separated string or a list of strings",
                ))
            }
        };
        if items.is_empty() {
            return Ok("''".to_string());
        }
        return Ok(items
            .iter()
            .map(|i| literal(field, i))
            .collect::<Result<Vec<_>>>()?
            .join(", "));
    }
    match v {
        Value::String(s) => literal(field, s),
        Value::Number(n) => literal(field, &n.to_string()),
        Value::Bool(b) => literal(field, if *b { "on" } else { "off" }),
        _ => Err(invalid(field, "a string, number or boolean")),
    }
}

/// Split `a, "B", c` like PostgreSQL splits an unquoted list value.
fn split_list(field: &str, s: &str) -> Result<Vec<String>> {
    let bad = || {
        invalid(
            field,
            "a comma-separated list of names (elements may be \"double-quoted\")",
        )
    };
    let mut items = Vec::new();
    let mut rest = s.trim_start();
    if rest.is_empty() {
        return Ok(items);
    }
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let (mut item, mut tail) = (String::new(), quoted);
            loop {
                let end = tail.find('"').ok_or_else(bad)?;
                item.push_str(&tail[..end]);
                tail = &tail[end + 1..];
                let Some(t) = tail.strip_prefix('"') else {
                    break;
                };
                item.push('"'); // "" inside quotes
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
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => return Ok(items),
            None => return Err(bad()),
        }
    }
}

/// §2.2: additive grants; `state: revoke|absent` revokes; option `false` revokes that option.
fn grant_roles(out: &mut Out, d: &Def, role: &str, ctx: &SqlContext) -> Result<()> {
    let pg16 = ctx.pg_major >= 16;
    for (i, v) in d.list("roles")?.iter().enumerate() {
        let e = entry(
            format!("{}[{i}]", d.field("roles")),
            v,
            &["grant", "revoke", "absent"],
        )?;
        let granted = e.ident()?;
        if e.state != "grant" {
            out.sql(format!("REVOKE {granted} FROM {role};"));
            continue;
        }
        let (mut with, mut revoke) = (Vec::new(), Vec::new());
        if let Some(obj) = &e.obj {
            for (key, kw) in [("admin", "ADMIN"), ("set", "SET"), ("inherit", "INHERIT")] {
                match obj.bool(key)? {
                    None => {}
                    Some(_) if !pg16 && key != "admin" => {
                        out.sql(format!("-- roles[{i}].{key} skipped: needs PostgreSQL 16+"))
                    }
                    Some(true) if !pg16 => with.push("ADMIN OPTION".to_string()),
                    Some(true) => with.push(format!("{kw} TRUE")),
                    Some(false) => revoke.push(kw),
                }
            }
        }
        let with = if with.is_empty() {
            String::new()
        } else {
            format!(" WITH {}", with.join(", "))
        };
        out.sql(format!("GRANT {granted} TO {role}{with};"));
        for kw in revoke {
            out.sql(format!("REVOKE {kw} OPTION FOR {granted} FROM {role};"));
        }
    }
    Ok(())
}

fn protect_role(name: &str, ctx: &SqlContext) -> Result<()> {
    if ["postgres", ctx.replicator, ctx.admin, ctx.monitor].contains(&name) {
        return Err(SqlError::Protected {
            action: "drop role",
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Fails (at run time) when the role owns objects, holds privileges or is named in policies.
/// Uses `pg_shdepend`, which is cluster-wide: objects in the current database and shared objects
/// (databases, tablespaces) are described one by one; other databases are reported as counts.
/// For details there, the executor may run this script connected to each database it names.
pub fn user_ownership_check(name: &str, ctx: &SqlContext) -> Result<Script> {
    protect_role(name, ctx)?;
    let lit = literal("pg_users.name", name)?;
    let mine = format!(
        "s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass\n    \
         AND s.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = {lit})"
    );
    let here =
        "(SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())";
    let from = format!(
        "\nFROM (SELECT CASE s.deptype WHEN 'o' THEN 'owns ' WHEN 'a' THEN 'has privileges on ' \
         ELSE 'is referenced by ' END\n    || pg_catalog.pg_describe_object(s.classid, s.objid, s.objsubid) AS what\n  \
         FROM pg_catalog.pg_shdepend s WHERE {mine} AND s.dbid IN (0, {here})\n  UNION ALL\n  \
         SELECT pg_catalog.format('has %s dependent object(s) in database %I', pg_catalog.count(*), db.datname)\n  \
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

/// Create-only options (§3.1): key, keyword, minimum PostgreSQL major, rendering.
const CREATE_OPTS: [(&str, &str, u32, Kind); 11] = [
    ("template", "TEMPLATE", 0, Kind::Ident),
    ("encoding", "ENCODING", 0, Kind::Literal),
    ("locale", "LOCALE", 13, Kind::Literal),
    ("lc_collate", "LC_COLLATE", 0, Kind::Literal),
    ("lc_ctype", "LC_CTYPE", 0, Kind::Literal),
    (
        "locale_provider",
        "LOCALE_PROVIDER",
        15,
        Kind::Enum(&["libc", "icu", "builtin"]),
    ),
    ("icu_locale", "ICU_LOCALE", 15, Kind::Literal),
    ("icu_rules", "ICU_RULES", 16, Kind::Literal),
    ("builtin_locale", "BUILTIN_LOCALE", 17, Kind::Literal),
    (
        "strategy",
        "STRATEGY",
        15,
        Kind::Enum(&["wal_log", "file_copy"]),
    ),
    ("tablespace", "TABLESPACE", 0, Kind::Ident),
];

/// §3: create if missing, then converge the mutable settings. See [`DbScripts`] for where each
/// script runs.
pub fn database_upsert(name: &str, def: &Mapping, ctx: &SqlContext) -> Result<DbScripts> {
    let d = Def::new(def, format!("pg_databases[{name}]"), name)?;
    if name == "template0" {
        return Err(SqlError::Protected {
            action: "provision database",
            name: name.to_string(),
        });
    }
    let (db, lit) = (
        ident(&d.field("name"), name)?,
        literal(&d.field("name"), name)?,
    );
    let owner = d
        .str("owner")?
        .map(|o| ident(&d.field("owner"), o))
        .transpose()?;
    let template = d.str("template")?;
    if template == Some(name) {
        return Err(invalid(
            d.field("template"),
            "a database other than the one being created",
        ));
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
        create: create_script(&d, &db, &lit, owner.as_deref(), ctx)?,
        provision: provision_script(&d, name, &db, &lit, owner.as_deref(), ctx)?,
        finish: finish.done(),
    })
}

fn create_script(
    d: &Def,
    db: &str,
    lit: &str,
    owner: Option<&str>,
    ctx: &SqlContext,
) -> Result<Script> {
    let mut opts: Vec<String> = owner.map(|o| format!("OWNER {o}")).into_iter().collect();
    for (key, kw, min, kind) in &CREATE_OPTS {
        let (Some(v), field) = (d.str(key)?, d.field(key)) else {
            continue;
        };
        if ctx.pg_major < *min {
            return Err(SqlError::Unsupported {
                field,
                min: *min,
                actual: ctx.pg_major,
            });
        }
        let value = match kind {
            Kind::Ident => ident(&field, v)?,
            Kind::Literal => literal(&field, v)?,
            Kind::Enum(allowed) => match allowed.iter().find(|a| a.eq_ignore_ascii_case(v)) {
                Some(a) => literal(&field, a)?,
                None => return Err(invalid(field, format!("one of {}", allowed.join(", ")))),
            },
        };
        opts.push(format!("{kw} {value}"));
    }
    let mut out = Out::default();
    let missing = format!("NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = {lit})");
    out.when("pgitops_missing", &missing, |o| {
        if let Some(t) = d.str("template")?.filter(|t| !matches!(*t, "template0" | "template1")) {
            o.sql(format!(
                "SELECT pg_catalog.count(pg_catalog.pg_terminate_backend(pid)) AS pgitops_terminated \
                 FROM pg_catalog.pg_stat_activity WHERE datname = {} AND pid <> pg_catalog.pg_backend_pid() \\gset",
                literal(&d.field("template"), t)?
            ));
        }
        let with = if opts.is_empty() { String::new() } else { format!(" WITH {}", opts.join(" ")) };
        o.sql(format!("CREATE DATABASE {db}{with};"));
        Ok(())
    })?;
    if d.bool("allowconn")?.is_some() {
        out.sql(format!("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true;"));
    }
    if let Some(ts) = d.str("tablespace")? {
        let (ts_lit, ts_id) = (
            literal(&d.field("tablespace"), ts)?,
            ident(&d.field("tablespace"), ts)?,
        );
        let moved = format!(
            "EXISTS (SELECT FROM pg_catalog.pg_database d JOIN pg_catalog.pg_tablespace t \
             ON t.oid = d.dattablespace WHERE d.datname = {lit} AND t.spcname <> {ts_lit})"
        );
        out.when("pgitops_move", &moved, |o| {
            o.sql(format!("ALTER DATABASE {db} SET TABLESPACE {ts_id};"));
            Ok(())
        })?;
    }
    Ok(out.done())
}

fn provision_script(
    d: &Def,
    name: &str,
    db: &str,
    lit: &str,
    owner: Option<&str>,
    ctx: &SqlContext,
) -> Result<Script> {
    let mut out = Out::default();
    let message = format!(
        "pg_catalog.format('pgitops: the provisioning script of database %I must run inside it, not in %I', \
         {lit}, pg_catalog.current_database())"
    );
    out.fail_if(
        &format!("pg_catalog.current_database() <> {lit}"),
        &message,
        "",
    );
    if let Some(o) = owner {
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
        out.sql(format!("ALTER DATABASE {db} WITH {};", opts.join(" ")));
    }
    set_parameters(&mut out, d, &format!("DATABASE {db}"), DB_LIST_GUCS)?;
    let comment = d
        .str("comment")?
        .map_or_else(|| format!("business database {name}"), str::to_string);
    out.sql(format!(
        "COMMENT ON DATABASE {db} IS {};",
        literal(&d.field("comment"), &comment)?
    ));
    match d.bool("revokeconn")? {
        Some(true) => {
            out.sql(format!("REVOKE CONNECT ON DATABASE {db} FROM PUBLIC;"));
            for (field, r) in [
                ("ctx.replicator", ctx.replicator),
                ("ctx.monitor", ctx.monitor),
            ] {
                out.sql(format!(
                    "GRANT CONNECT ON DATABASE {db} TO {};",
                    ident(field, r)?
                ));
            }
            for r in [
                Some(ident("ctx.admin", ctx.admin)?),
                owner.map(str::to_string),
            ]
            .into_iter()
            .flatten()
            {
                out.sql(format!(
                    "GRANT CONNECT ON DATABASE {db} TO {r} WITH GRANT OPTION;"
                ));
            }
        }
        Some(false) => out.sql(format!("GRANT CONNECT ON DATABASE {db} TO PUBLIC;")),
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
        Ok(())
    })?;
    for (i, v) in d.list("schemas")?.iter().enumerate() {
        let e = entry(
            format!("{}[{i}]", d.field("schemas")),
            v,
            &["create", "absent"],
        )?;
        let schema = e.ident()?;
        if e.state == "absent" {
            out.sql(format!("DROP SCHEMA IF EXISTS {schema} CASCADE;"));
        } else if let Some(o) = e.opt_ident("owner")? {
            out.sql(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {o};"
            ));
            out.sql(format!("ALTER SCHEMA {schema} OWNER TO {o};"));
        } else {
            out.sql(format!("CREATE SCHEMA IF NOT EXISTS {schema};"));
        }
    }
    for (i, v) in d.list("extensions")?.iter().enumerate() {
        let e = entry(
            format!("{}[{i}]", d.field("extensions")),
            v,
            &["create", "absent"],
        )?;
        let ext = e.ident()?;
        if e.state == "absent" {
            out.sql(format!("DROP EXTENSION IF EXISTS {ext} CASCADE;"));
            continue;
        }
        let mut sql = format!("CREATE EXTENSION IF NOT EXISTS {ext}");
        if let Some(s) = e.opt_ident("schema")? {
            sql += &format!(" WITH SCHEMA {s}");
        }
        if let Some(obj) = &e.obj {
            if let Some(ver) = obj.str("version")? {
                sql += &format!(" VERSION {}", literal(&obj.field("version"), ver)?);
            }
        }
        out.sql(sql + " CASCADE;");
    }
    Ok(out.done())
}

/// `DROP DATABASE IF EXISTS ... WITH (FORCE)` (PG13+; older: block and terminate sessions first),
/// after unsetting `is_template`. Run in `postgres`. Never drops postgres/template0/template1.
pub fn database_drop(name: &str, ctx: &SqlContext) -> Result<Script> {
    if matches!(name, "postgres" | "template0" | "template1") {
        return Err(SqlError::Protected {
            action: "drop database",
            name: name.to_string(),
        });
    }
    let (db, lit) = (
        ident("pg_databases.name", name)?,
        literal("pg_databases.name", name)?,
    );
    let mut out = Out::default();
    let exists = format!("EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = {lit})");
    out.when("pgitops_exists", &exists, |o| {
        o.sql(format!("ALTER DATABASE {db} WITH IS_TEMPLATE false;"));
        if ctx.pg_major >= 13 {
            o.sql(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE);"));
        } else {
            o.sql(format!("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false;"));
            o.sql(format!(
                "SELECT pg_catalog.count(pg_catalog.pg_terminate_backend(pid)) AS pgitops_terminated \
                 FROM pg_catalog.pg_stat_activity WHERE datname = {lit} \\gset"
            ));
            o.sql(format!("DROP DATABASE IF EXISTS {db};"));
        }
        Ok(())
    })?;
    Ok(out.done())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5: &str = "md50123456789abcdef0123456789abcdef";
    const NASTY: &str =
        "it's \"q\"; DROP ROLE x; --\n\\! touch /tmp/pwned\nback\\slash $(touch /tmp/pwned) ünï";

    fn ctx(pg_major: u32) -> SqlContext<'static> {
        let (admin, monitor, replicator) = ("dbuser_dba", "dbuser_monitor", "replicator");
        SqlContext {
            pg_major,
            admin,
            monitor,
            replicator,
            today: Some("2024-02-27"),
        }
    }
    fn yaml(s: &str) -> Mapping {
        serde_yaml_ng::from_str(s).unwrap()
    }
    fn text(s: &Script) -> String {
        s.statements
            .iter()
            .map(|st| st.sql.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
    fn user(def: &str, pg: u32) -> String {
        text(&user_upsert("u", &yaml(def), Secret::Redacted, &ctx(pg)).unwrap())
    }
    fn field_err(r: Result<impl fmt::Debug>) -> String {
        let e = r.unwrap_err();
        assert!(matches!(e, SqlError::Invalid { .. }), "{e}");
        e.to_string()
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b; c").unwrap(), "\"a\"\"b; c\"");
        assert_eq!(quote_ident("ünï\nx").unwrap(), "\"ünï\nx\"");
        assert_eq!(
            quote_literal("it's; $(touch /tmp/pwned)").unwrap(),
            "'it''s; $(touch /tmp/pwned)'"
        );
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
        assert!(sql.contains("SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'u') AS pgitops_missing \\gset\n\\if :pgitops_missing\nCREATE ROLE \"u\" LOGIN;\n\\endif"));
        assert!(sql
            .contains("ALTER ROLE \"u\" WITH NOSUPERUSER CREATEDB BYPASSRLS CONNECTION LIMIT 3;"));
        assert!(sql.contains("COMMENT ON ROLE \"u\" IS 'business user u';"));
        assert!(
            !sql.contains("PASSWORD") && !sql.contains("VALID UNTIL") && !sql.contains("GRANT")
        );
        let sql = user(
            "{login: false, inherit: false, replication: true, createrole: false, comment: null}",
            15,
        );
        assert!(sql.contains("CREATE ROLE \"u\" NOLOGIN;"));
        assert!(sql.contains("ALTER ROLE \"u\" WITH NOLOGIN NOCREATEROLE NOINHERIT REPLICATION;"));
        assert!(user("{login: null}", 15).contains("CREATE ROLE \"u\" LOGIN;\n\\endif\nCOMMENT"));
        let def = yaml(&format!(
            "comment: {}",
            serde_yaml_ng::to_string(NASTY).unwrap()
        ));
        let sql = text(&user_upsert("o'd\"d", &def, Secret::Redacted, &ctx(15)).unwrap());
        assert!(
            sql.contains("rolname = 'o''d\"d'") && sql.contains("CREATE ROLE \"o'd\"\"d\" LOGIN;")
        );
        let lit = "E'it''s \"q\"; DROP ROLE x; --\n\\\\! touch /tmp/pwned\nback\\\\slash $(touch /tmp/pwned) ünï'";
        assert!(sql.contains(&format!("COMMENT ON ROLE \"o'd\"\"d\" IS {lit};")));
    }

    #[test]
    fn user_type_errors_name_the_field() {
        let r = user_upsert("u", &yaml("createdb: 'true'"), Secret::Redacted, &ctx(15));
        assert_eq!(
            field_err(r),
            "pg_users[u].createdb: expected a YAML boolean (true/false, unquoted)"
        );
        let r = user_upsert("u", &yaml("connlimit: '5'"), Secret::Redacted, &ctx(15));
        assert!(field_err(r).starts_with("pg_users[u].connlimit: expected a YAML integer"));
        assert!(user_upsert("u", &yaml("connlimit: -2"), Secret::Redacted, &ctx(15)).is_err());
        assert!(field_err(user_upsert(
            "u",
            &yaml("name: v"),
            Secret::Redacted,
            &ctx(15)
        ))
        .contains(".name"));
        let r = user_upsert(
            "u",
            &yaml("parameters: {'a;b': 1}"),
            Secret::Redacted,
            &ctx(15),
        );
        assert!(field_err(r).starts_with("pg_users[u].parameters.a;b: expected a setting name"));
        assert!(user_upsert(
            "u",
            &yaml("parameters: {'a..b': 1}"),
            Secret::Redacted,
            &ctx(15)
        )
        .is_err());
    }

    #[test]
    fn passwords() {
        let def = yaml("password: Sup3rS3cret");
        let redacted = user_upsert("u", &def, Secret::Redacted, &ctx(15)).unwrap();
        let st = redacted.statements.iter().find(|s| s.secret).unwrap();
        assert_eq!(st.sql, "ALTER ROLE \"u\" PASSWORD <redacted>;");
        assert!(!redacted.to_psql_input().contains("Sup3rS3cret"));
        let real = user_upsert("u", &def, Secret::Verifier(MD5), &ctx(15)).unwrap();
        let input = real.to_psql_input();
        assert_eq!(input.matches(MD5).count(), 1);
        assert!(input.contains(&format!(
            "SET log_statement = 'none';\nSET log_min_duration_statement = -1;"
        )));
        assert!(
            !format!("{real:?}").contains(MD5)
                && real.statements.iter().filter(|s| s.secret).count() == 1
        );
        let st = real
            .statements
            .iter()
            .find(|s| s.sql.contains(MD5))
            .unwrap();
        assert!(st.secret && st.sql == format!("ALTER ROLE \"u\" PASSWORD '{MD5}';"));
        let err = user_upsert("u", &def, Secret::Verifier("Sup3rS3cret"), &ctx(15)).unwrap_err();
        assert!(!err.to_string().contains("Sup3rS3cret") && err.to_string().contains("password"));
        let scram = format!(
            "SCRAM-SHA-256$4096:c2FsdA==${}:{}",
            "A".repeat(43) + "=",
            "B".repeat(43) + "="
        );
        assert!(is_verifier(&scram) && !is_verifier("SCRAM-SHA-256$4096:salt$short:key"));
        assert!(!user("{password: null}", 15).contains("PASSWORD"));
    }

    #[test]
    fn expiry() {
        assert!(user("{expire_in: 3, expire_at: '2030-01-01'}", 15)
            .contains("ALTER ROLE \"u\" VALID UNTIL '2024-03-01';"));
        assert!(user("expire_at: infinity", 15).contains("VALID UNTIL 'infinity';"));
        let none = SqlContext {
            today: None,
            ..ctx(15)
        };
        let sql = text(&user_upsert("u", &yaml("expire_in: 30"), Secret::Redacted, &none).unwrap());
        assert!(sql.contains("SELECT (CURRENT_DATE + 30)::text AS pgitops_valid_until \\gset\nALTER ROLE \"u\" VALID UNTIL :'pgitops_valid_until';"));
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
        assert!(pg16.contains("GRANT \"dbrole_readonly\" TO \"u\";\nGRANT \"r1\" TO \"u\" WITH ADMIN TRUE, INHERIT TRUE;\nREVOKE SET OPTION FOR \"r1\" FROM \"u\";"));
        assert!(pg16.contains("GRANT \"r2\" TO \"u\";\nREVOKE ADMIN OPTION FOR \"r2\" FROM \"u\";"));
        assert!(pg16.contains("REVOKE \"r3\" FROM \"u\";\nREVOKE \"r4\" FROM \"u\";"));
        let pg15 = user(def, 15);
        assert!(pg15.contains("-- roles[1].set skipped: needs PostgreSQL 16+\n-- roles[1].inherit skipped: needs PostgreSQL 16+\nGRANT \"r1\" TO \"u\" WITH ADMIN OPTION;"));
        assert!(!pg15.contains("SET OPTION") && !pg15.contains("INHERIT TRUE"));
        let r = user_upsert(
            "u",
            &yaml("roles: [{name: r, state: nope}]"),
            Secret::Redacted,
            &ctx(16),
        );
        assert_eq!(
            field_err(r),
            "pg_users[u].roles[0].state: expected one of grant, revoke, absent"
        );
        assert!(user_upsert(
            "u",
            &yaml("roles: [{admin: true}]"),
            Secret::Redacted,
            &ctx(16)
        )
        .is_err());
        assert!(user_upsert(
            "u",
            &yaml("roles: [{name: r, set: 'yes'}]"),
            Secret::Redacted,
            &ctx(16)
        )
        .is_err());
    }

    #[test]
    fn parameters() {
        let sql = user(
            r#"parameters: {work_mem: 64MB, statement_timeout: 1000, jit: false, lock_timeout: default,
            search_path: '"$user", Public ,"a""b"', temp_tablespaces: [Ts1, "x'y"], session_preload_libraries: '',
            pg_stat_statements.track: all, idle_session_timeout: null}"#,
            15,
        );
        assert!(sql.contains("ALTER ROLE \"u\" SET \"work_mem\" TO '64MB';\nALTER ROLE \"u\" SET \"statement_timeout\" TO '1000';"));
        assert!(
            sql.contains("SET \"jit\" TO 'off';")
                && sql.contains("SET \"lock_timeout\" TO DEFAULT;")
        );
        assert!(sql.contains("SET \"search_path\" TO '$user', 'public', 'a\"b';"));
        assert!(sql.contains("SET \"temp_tablespaces\" TO 'Ts1', 'x''y';"));
        assert!(sql.contains("SET \"session_preload_libraries\" TO '';"));
        assert!(
            sql.contains("SET \"pg_stat_statements.track\" TO 'all';")
                && !sql.contains("idle_session")
        );
        assert!(user_upsert(
            "u",
            &yaml("parameters: {search_path: 'a,,b'}"),
            Secret::Redacted,
            &ctx(15)
        )
        .is_err());
        assert!(user_upsert(
            "u",
            &yaml("parameters: {search_path: '\"a'}"),
            Secret::Redacted,
            &ctx(15)
        )
        .is_err());
        assert!(user_upsert(
            "u",
            &yaml("parameters: {work_mem: [1]}"),
            Secret::Redacted,
            &ctx(15)
        )
        .is_err());
        let db = database_upsert(
            "d",
            &yaml("parameters: {log_destination: 'stderr,CSVLOG'}"),
            &ctx(15),
        )
        .unwrap();
        assert!(text(&db.provision).contains("SET \"log_destination\" TO 'stderr', 'csvlog';"));
        assert!(user("parameters: {log_destination: 'stderr,csvlog'}", 15)
            .contains("TO 'stderr,csvlog';"));
    }

    #[test]
    fn user_drop_checks_ownership() {
        for name in ["postgres", "replicator", "dbuser_dba", "dbuser_monitor"] {
            assert!(matches!(
                user_drop(name, &ctx(15)),
                Err(SqlError::Protected { .. })
            ));
        }
        let sql = text(&user_drop("o'u", &ctx(15)).unwrap());
        assert!(sql.contains("FROM pg_catalog.pg_shdepend s") && sql.contains("rolname = 'o''u'"));
        assert!(sql.contains("\\if :pgitops_fail\nDO $pgitops$BEGIN RAISE EXCEPTION"));
        assert!(
            sql.ends_with("\\endif\nDROP ROLE IF EXISTS \"o'u\";") && !sql.contains("REASSIGN")
        );
    }

    #[test]
    fn database_create_options() {
        let def = yaml("{owner: o, template: tpl, encoding: UTF8, locale: C.UTF-8, lc_collate: C, lc_ctype: \"x'y\", \
                        locale_provider: ICU, icu_locale: en-US, strategy: FILE_COPY, tablespace: ts1}");
        let s = database_upsert("d", &def, &ctx(15)).unwrap();
        let create = text(&s.create);
        assert!(create.contains("CREATE DATABASE \"d\" WITH OWNER \"o\" TEMPLATE \"tpl\" ENCODING 'UTF8' LOCALE 'C.UTF-8' \
            LC_COLLATE 'C' LC_CTYPE 'x''y' LOCALE_PROVIDER 'icu' ICU_LOCALE 'en-US' STRATEGY 'file_copy' TABLESPACE \"ts1\";"));
        assert!(create.contains("pg_terminate_backend(pid)) AS pgitops_terminated FROM pg_catalog.pg_stat_activity WHERE datname = 'tpl'"));
        assert!(create.contains("t.spcname <> 'ts1') AS pgitops_move \\gset\n\\if :pgitops_move\nALTER DATABASE \"d\" SET TABLESPACE \"ts1\";"));
        assert!(!text(&s.provision).contains("TEMPLATE") && s.admin_db == "postgres");
        let plain = database_upsert("d", &yaml("template: postgres"), &ctx(15)).unwrap();
        assert_eq!(plain.admin_db, "template1");
        let minimal = text(
            &database_upsert("d", &Mapping::new(), &ctx(15))
                .unwrap()
                .create,
        );
        assert!(
            minimal.contains("\\if :pgitops_missing\nCREATE DATABASE \"d\";\n\\endif")
                && !minimal.contains("TABLESPACE")
        );
        let r = database_upsert("d", &yaml("strategy: fast"), &ctx(15));
        assert_eq!(
            field_err(r),
            "pg_databases[d].strategy: expected one of wal_log, file_copy"
        );
        let r = database_upsert("d", &yaml("icu_rules: '&a<b'"), &ctx(15)).unwrap_err();
        assert_eq!(
            r.to_string(),
            "pg_databases[d].icu_rules: requires PostgreSQL 16+, target is PostgreSQL 15"
        );
        assert!(database_upsert("d", &yaml("strategy: wal_log"), &ctx(14)).is_err());
    }

    #[test]
    fn database_provision() {
        let def = yaml("{owner: o, connlimit: 10, is_template: false, allowconn: false, revokeconn: true, comment: \"it's\", \
            schemas: [s1, {name: s2, owner: o}, {name: s3, state: absent}], \
            extensions: [citext, {name: hstore, schema: s1, version: '1.8'}, {name: pg_trgm, state: absent}]}");
        let s = database_upsert("d", &def, &ctx(15)).unwrap();
        let p = text(&s.provision);
        assert!(p.starts_with("SELECT pg_catalog.current_database() <> 'd' AS pgitops_fail,"));
        for line in [
            "ALTER DATABASE \"d\" OWNER TO \"o\";\nGRANT ALL PRIVILEGES ON DATABASE \"d\" TO \"o\";",
            "ALTER DATABASE \"d\" WITH CONNECTION LIMIT 10 IS_TEMPLATE false;",
            "COMMENT ON DATABASE \"d\" IS 'it''s';",
            "REVOKE CONNECT ON DATABASE \"d\" FROM PUBLIC;\nGRANT CONNECT ON DATABASE \"d\" TO \"replicator\";\n\
             GRANT CONNECT ON DATABASE \"d\" TO \"dbuser_monitor\";\nGRANT CONNECT ON DATABASE \"d\" TO \"dbuser_dba\" WITH GRANT OPTION;\n\
             GRANT CONNECT ON DATABASE \"d\" TO \"o\" WITH GRANT OPTION;",
            "REVOKE CREATE ON DATABASE \"d\" FROM PUBLIC;\nGRANT CREATE ON DATABASE \"d\" TO \"dbrole_admin\";",
            "REVOKE CREATE ON SCHEMA \"public\" FROM PUBLIC;\nGRANT CREATE ON SCHEMA \"public\" TO \"dbrole_admin\";",
            "CREATE SCHEMA IF NOT EXISTS \"s1\";\nCREATE SCHEMA IF NOT EXISTS \"s2\" AUTHORIZATION \"o\";\n\
             ALTER SCHEMA \"s2\" OWNER TO \"o\";\nDROP SCHEMA IF EXISTS \"s3\" CASCADE;",
            "CREATE EXTENSION IF NOT EXISTS \"citext\" CASCADE;\nCREATE EXTENSION IF NOT EXISTS \"hstore\" WITH SCHEMA \"s1\" VERSION '1.8' CASCADE;\n\
             DROP EXTENSION IF EXISTS \"pg_trgm\" CASCADE;",
        ] {
            assert!(p.contains(line), "missing {line}");
        }
        assert!(text(&s.create).contains("ALTER DATABASE \"d\" WITH ALLOW_CONNECTIONS true;"));
        assert_eq!(
            text(&s.finish),
            "ALTER DATABASE \"d\" WITH ALLOW_CONNECTIONS false;"
        );
        let p = text(
            &database_upsert("d", &yaml("revokeconn: false"), &ctx(15))
                .unwrap()
                .provision,
        );
        assert!(
            p.contains("GRANT CONNECT ON DATABASE \"d\" TO PUBLIC;")
                && p.contains("IS 'business database d';")
        );
        let p = text(
            &database_upsert("d", &Mapping::new(), &ctx(15))
                .unwrap()
                .provision,
        );
        assert!(!p.contains("CONNECT ON") && !p.contains("OWNER") && !p.contains("SCHEMA IF"));
        let r = database_upsert(
            "d",
            &yaml("extensions: [{name: x, version: 1.10}]"),
            &ctx(15),
        );
        assert_eq!(
            field_err(r),
            "pg_databases[d].extensions[0].version: expected a string"
        );
        assert!(
            database_upsert("d", &yaml("schemas: [{name: s, state: drop}]"), &ctx(15)).is_err()
        );
        assert!(database_upsert("d", &yaml("revokeconn: 1"), &ctx(15)).is_err());
    }

    #[test]
    fn database_drop_rules() {
        for name in ["postgres", "template0", "template1"] {
            assert!(matches!(
                database_drop(name, &ctx(15)),
                Err(SqlError::Protected { .. })
            ));
        }
        let sql = text(&database_drop("d", &ctx(13)).unwrap());
        assert!(sql.contains("\\if :pgitops_exists\nALTER DATABASE \"d\" WITH IS_TEMPLATE false;\nDROP DATABASE IF EXISTS \"d\" WITH (FORCE);\n\\endif"));
        let sql = text(&database_drop("d", &ctx(12)).unwrap());
        assert!(
            sql.contains("pg_terminate_backend") && sql.contains("DROP DATABASE IF EXISTS \"d\";")
        );
    }

    /// A throwaway PostgreSQL 15 on a unix socket in a temp dir (Debian paths; as root it runs the
    /// server through `runuser -u postgres`). Run with `cargo test -- --ignored real_server`.
    struct Server(std::path::PathBuf);
    const BIN: &str = "/usr/lib/postgresql/15/bin";

    fn as_postgres(prog: &str) -> std::process::Command {
        let out = std::process::Command::new("id").arg("-u").output().unwrap();
        if out.stdout != b"0\n" {
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
            let _ = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status();
            let data = dir.join("data");
            let init = [
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
            assert!(as_postgres(&format!("{BIN}/initdb"))
                .args(init)
                .arg(&data)
                .output()
                .unwrap()
                .status
                .success());
            let opts = format!(
                "-k {} -c listen_addresses='' -c log_statement=all \
                                -c shared_preload_libraries=pg_stat_statements",
                dir.display()
            );
            let mut ctl = as_postgres(&format!("{BIN}/pg_ctl"));
            ctl.args(["-w", "-o", &opts, "-l"])
                .arg(dir.join("log"))
                .arg("-D")
                .arg(&data)
                .arg("start");
            assert!(ctl.status().unwrap().success());
            Server(dir)
        }
        /// Feeds `input` to psql on stdin; returns (success, stdout + stderr).
        fn psql(&self, db: &str, input: &str) -> (bool, String) {
            use std::io::Write;
            let mut child = as_postgres("psql")
                .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(&self.0)
                .args(["-d", db, "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
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
            let mut all = String::new();
            for _ in 0..2 {
                let (ok, out) = self.psql(db, &script.to_psql_input());
                assert!(
                    ok,
                    "script failed in {db}:\n{}\n---\n{out}",
                    script.to_psql_input()
                );
                all += &out;
            }
            all
        }
        fn query(&self, db: &str, sql: &str) -> String {
            let (ok, out) = self.psql(db, sql);
            assert!(ok, "{sql}: {out}");
            out.trim_end_matches('\n').to_string()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let data = self.0.join("data");
            let _ = as_postgres(&format!("{BIN}/pg_ctl"))
                .args(["-m", "immediate", "-D"])
                .arg(data)
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
        let ts = format!(
            "CREATE TABLESPACE ts1 LOCATION {};",
            quote_literal(&pg.0.join("ts1").to_string_lossy()).unwrap()
        );
        pg.query(
            "postgres",
            &format!("{ts}\nCREATE EXTENSION pg_stat_statements;\nCREATE ROLE nobody;"),
        );
        let defaults = [
            ("dbrole_admin", "login: false"),
            ("replicator", "replication: true"),
            ("dbuser_dba", "superuser: true"),
        ];
        for (name, def) in defaults
            .into_iter()
            .chain([("dbuser_monitor", "roles: [pg_monitor]")])
        {
            pg.twice(
                "postgres",
                &user_upsert(name, &yaml(def), Secret::Redacted, &c).unwrap(),
            );
        }
        let verifier = pg.query(
            "postgres",
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE tmp PASSWORD 'pw';\n\
            SELECT rolpassword FROM pg_authid WHERE rolname = 'tmp'; DROP ROLE tmp;",
        );
        let verifier = verifier
            .lines()
            .find(|l| l.starts_with("SCRAM"))
            .unwrap()
            .to_string();
        let name = "app'\"; $(touch /tmp/pwned) ünï";
        let lit = quote_literal(name).unwrap();
        let mut def = yaml(
            r#"{login: true, superuser: false, createdb: true, createrole: false, inherit: true,
            replication: false, bypassrls: false, connlimit: 5, expire_in: 30, expire_at: '2000-01-01', password: x,
            roles: [dbrole_admin, {name: pg_monitor, admin: true, set: true, inherit: false},
                    {name: pg_read_all_data, state: absent}, {name: pg_signal_backend, admin: false}],
            parameters: {search_path: '"$user", Public, "odd""s"', work_mem: 64MB, statement_timeout: 1000,
                         log_min_duration_statement: DEFAULT, pg_stat_statements.track: all, temp_tablespaces: [ts1]}}"#,
        );
        def.insert("comment".into(), NASTY.into());
        let out = pg.twice(
            "postgres",
            &user_upsert(name, &def, Secret::Verifier(&verifier), &c).unwrap(),
        );
        assert!(!out.contains(&verifier));
        let role = format!("FROM pg_authid WHERE rolname = {lit}");
        assert_eq!(
            pg.query(
                "postgres",
                &format!("SELECT shobj_description(oid, 'pg_authid') {role}")
            ),
            NASTY
        );
        assert_eq!(
            pg.query("postgres", &format!("SELECT rolpassword {role}")),
            verifier
        );
        let attrs =
            "rolcanlogin, rolcreatedb, rolconnlimit, rolvaliduntil > now() + interval '29 days'";
        assert_eq!(
            pg.query("postgres", &format!("SELECT {attrs} {role}")),
            "t|t|5|t"
        );
        let settings = pg.query(
            "postgres",
            &format!(
                "SELECT array_to_string(setconfig, E'\\n') FROM pg_db_role_setting \
            WHERE setrole = (SELECT oid {role})"
            ),
        );
        assert!(
            settings.contains("search_path=\"$user\", public, \"odd\"\"s\"")
                && settings.contains("work_mem=64MB")
        );
        assert!(
            !settings.contains("log_min_duration")
                && settings.contains("pg_stat_statements.track=all")
        );
        let members = pg.query("postgres", &format!("SELECT string_agg(r.rolname || ':' || m.admin_option, ',' ORDER BY r.rolname) \
            FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = (SELECT oid {role})"));
        assert_eq!(
            members,
            "dbrole_admin:false,pg_monitor:true,pg_signal_backend:false"
        );

        let dbname = "app \"db\"; ü";
        let mut ddef = yaml(
            r#"{template: template0, encoding: UTF8, lc_collate: C, lc_ctype: C, locale_provider: ICU,
            icu_locale: en-US, strategy: WAL_LOG, tablespace: ts1, connlimit: 20, is_template: false, allowconn: false,
            revokeconn: true, parameters: {search_path: 'app, public', work_mem: 8MB, jit: off},
            schemas: [app, {name: gone, state: absent}],
            extensions: [citext, {name: hstore, schema: app, version: '1.8'}, {name: pg_trgm, state: absent}]}"#,
        );
        ddef.insert("owner".into(), name.into());
        ddef.insert("comment".into(), NASTY.into());
        let mut schemas = ddef["schemas"].as_sequence().unwrap().clone();
        schemas.push(yaml("name: other").into());
        schemas
            .last_mut()
            .unwrap()
            .as_mapping_mut()
            .unwrap()
            .insert("owner".into(), name.into());
        ddef.insert("schemas".into(), schemas.into());
        let apply = |def: &Mapping| {
            let s = database_upsert(dbname, def, &c).unwrap();
            for _ in 0..2 {
                pg.twice(s.admin_db, &s.create);
                pg.twice(dbname, &s.provision);
                pg.twice(s.admin_db, &s.finish);
            }
        };
        apply(&ddef);
        let dblit = quote_literal(dbname).unwrap();
        let db = format!("FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE datname = {dblit}");
        let cols = "datallowconn, datconnlimit, spcname, daticulocale, has_database_privilege('nobody', d.oid, 'CONNECT'), \
                    has_database_privilege('dbuser_monitor', d.oid, 'CONNECT'), pg_get_userbyid(datdba) = ";
        assert_eq!(
            pg.query("postgres", &format!("SELECT {cols}{lit} {db}")),
            "f|20|ts1|en-US|f|t|t"
        );
        assert_eq!(
            pg.query(
                "postgres",
                &format!("SELECT shobj_description(d.oid, 'pg_database') {db}")
            ),
            NASTY
        );
        ddef.insert("allowconn".into(), true.into());
        ddef.insert("revokeconn".into(), false.into());
        ddef.insert("tablespace".into(), "pg_default".into());
        apply(&ddef);
        assert_eq!(
            pg.query("postgres", &format!("SELECT {cols}{lit} {db}")),
            "t|20|pg_default|en-US|t|t|t"
        );
        let ext = "SELECT string_agg(extname || '@' || extnamespace::regnamespace, ',' ORDER BY extname) FROM pg_extension";
        assert_eq!(
            pg.query(dbname, ext),
            "citext@public,hstore@app,plpgsql@pg_catalog"
        );
        let owners = "SELECT string_agg(nspname || ':' || (nspowner = (SELECT oid FROM pg_roles WHERE rolname = ";
        let owners = format!("{owners}{lit}))::text, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname IN ('app', 'other')");
        assert_eq!(pg.query(dbname, &owners), "app:false,other:true");
        let (ok, out) = pg.psql(
            "postgres",
            &database_upsert(dbname, &ddef, &c)
                .unwrap()
                .provision
                .to_psql_input(),
        );
        assert!(!ok && out.contains("must run inside it"), "{out}");

        let (ok, out) = pg.psql("postgres", &user_drop(name, &c).unwrap().to_psql_input());
        assert!(
            !ok && out.contains("refusing to drop role") && out.contains("owns database"),
            "{out}"
        );
        eprintln!("{out}");
        assert!(out.contains("dependent object(s) in database"), "{out}");
        let (ok, out) = pg.psql(
            dbname,
            &user_ownership_check(name, &c).unwrap().to_psql_input(),
        );
        assert!(!ok && out.contains("owns schema other"), "{out}");
        pg.twice("postgres", &database_drop(dbname, &c).unwrap());
        assert_eq!(pg.query("postgres", &format!("SELECT count(*) {db}")), "0");
        pg.twice("postgres", &user_drop(name, &c).unwrap());
        assert_eq!(
            pg.query("postgres", &format!("SELECT count(*) {role}")),
            "0"
        );

        let log = std::fs::read_to_string(pg.0.join("log")).unwrap();
        assert!(
            log.contains("COMMENT ON ROLE") && !log.contains(&verifier),
            "server log leaked the verifier"
        );
        let pgss = "SELECT count(*) FILTER (WHERE query LIKE '%SCRAM-SHA-256$%'), \
                    count(*) FILTER (WHERE query LIKE 'COMMENT ON ROLE%') > 0 FROM pg_stat_statements";
        assert_eq!(
            pg.query("postgres", pgss),
            "0|t",
            "pg_stat_statements recorded the verifier"
        );
        assert!(!std::path::Path::new("/tmp/pwned").exists());
    }
}
