//! pgbouncer's user and database files, as Pigsty v4.5.0's templates render them:
//! `useropts.txt` (`roles/pgsql/templates/pgbouncer.useropts`), `database.txt`
//! (`pgbouncer.database`) and `userlist.txt` (what `files/postgres/pgb-user` leaves, run for the
//! dbsu, the monitor and admin users and each `pgbouncer: true` user). `pgb_hba.conf` is the HBA
//! renderer's ([`super::hba_for`] with the pgbouncer target); `pgbouncer.ini` is [`pgbouncer_ini`]'s
//! (`pgbouncer_ini.rs`, version-aware).
//!
//! In: an [`Inventory`] and a member host (its effective variables; users and databases of its
//! cluster). Out: file text, or a [`PgbError`] for a value that would break the file. Pure: the
//! verifiers that go into `userlist.txt` are read from the node by the executor and handed in.

use serde_yaml_ng::Value;

use crate::inventory::defaults::roles as default_roles;
use crate::inventory::model::{str_var, PgCluster};
use crate::inventory::{HostVars, Inventory};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgbError {
    #[error("{0} is not a member of a PGSQL cluster")]
    NotMember(String),
    #[error("{what} {value:?} cannot be written into pgbouncer's {file} (whitespace, quotes, `=`, `#`, `;`, `,` or control characters)")]
    Token {
        file: &'static str,
        what: String,
        value: String,
    },
    #[error("{what} in pgbouncer's {file} must be {expected}")]
    Value {
        file: &'static str,
        what: String,
        expected: &'static str,
    },
    #[error("the verifier of {0} read from pg_authid cannot be written into userlist.txt")]
    Verifier(String),
}

/// What `userlist.txt` shows for a verifier in `pgitops render` (it is read live on apply).
pub const VERIFIER_PLACEHOLDER: &str = "<verifier from pg_authid>";

/// The cluster `host` is a member of.
fn cluster_of<'i>(inv: &'i Inventory, host: &str) -> Result<&'i PgCluster, PgbError> {
    let c = inv
        .model
        .pgsql
        .values()
        .find(|c| c.members.contains_key(host));
    c.ok_or_else(|| PgbError::NotMember(host.into()))
}

fn vars<'i>(inv: &'i Inventory, host: &str) -> Result<&'i HostVars, PgbError> {
    let h = inv.tree.hosts.get(host);
    h.map(|h| &h.vars)
        .ok_or_else(|| PgbError::NotMember(host.into()))
}

/// A word of a pgbouncer file: non-empty, no whitespace, quotes, `=`, `#`, `;`, `,`, `\`, control.
fn token(file: &'static str, what: &str, s: &str) -> Result<String, PgbError> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || "\"'=#;,\\".contains(c);
    match s.is_empty() || s.chars().any(bad) {
        true => Err(PgbError::Token {
            file,
            what: what.into(),
            value: s.into(),
        }),
        false => Ok(s.to_string()),
    }
}

/// An integer as Ansible's `| string` shows it: a YAML integer, or an integer in a string.
fn int(file: &'static str, what: String, v: &Value, min: i64) -> Result<i64, PgbError> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let expected = match min {
        0 => "an integer >= 0",
        _ => "an integer >= -1",
    };
    n.filter(|n| *n >= min && *n <= i32::MAX as i64)
        .ok_or(PgbError::Value {
            file,
            what,
            expected,
        })
}

fn pool_mode(file: &'static str, what: String, v: &Value) -> Result<&'static str, PgbError> {
    match v.as_str() {
        Some("transaction") => Ok("transaction"),
        Some("session") => Ok("session"),
        Some("statement") => Ok("statement"),
        _ => Err(PgbError::Value {
            file,
            what,
            expected: "transaction, session or statement",
        }),
    }
}

fn absent(def: &Value) -> bool {
    def.get("state").and_then(Value::as_str) == Some("absent")
}

/// Pigsty's `x|bool` for the flags it reads here (`true`, `yes`, `1`, ... as YAML gives them).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() == Some(1),
        Value::String(s) => matches!(s.to_lowercase().as_str(), "true" | "yes" | "on" | "1" | "y"),
        _ => false,
    }
}

/// `useropts.txt`: `pg_default_roles` (the inventory's or Pigsty's) then `pg_users`; an entry
/// with `pool_mode` or `pool_connlimit` and not `state: absent` gives
/// `%-27s = pool_mode=<m> max_user_connections=<n>` (either part empty when unset).
pub fn useropts(inv: &Inventory, host: &str) -> Result<String, PgbError> {
    const F: &str = "useropts.txt";
    let c = cluster_of(inv, host)?;
    let defaults = default_roles(vars(inv, host)?);
    let users = c.users.iter().map(|u| u.def());
    let mut out = String::from("# pgbouncer user options\n");
    for def in defaults.iter().chain(users) {
        let (mode, limit) = (def.get("pool_mode"), def.get("pool_connlimit"));
        if absent(def) || (mode.is_none() && limit.is_none()) {
            continue;
        }
        let name = def.get("name").and_then(Value::as_str).unwrap_or_default();
        let name = token(F, "user name", name)?;
        let mode = match mode {
            Some(m) => format!(
                "pool_mode={}",
                pool_mode(F, format!("{name}: pool_mode"), m)?
            ),
            None => String::new(),
        };
        let limit = match limit {
            Some(l) => format!(
                "max_user_connections={}",
                int(F, format!("{name}: pool_connlimit"), l, -1)?
            ),
            None => String::new(),
        };
        out += &format!("{name:<27} = {mode} {limit}\n");
    }
    Ok(out)
}

/// `database.txt`: each database of `pg_databases` unless `pgbouncer: false` or
/// `state: absent`, as `%-27s = host=<pgbouncer_redirect_to or pg_localhost> [auth_user=]
/// [pool_mode=] [pool_size=] [min_pool_size=] [reserve_pool=] [max_db_connections=]`.
pub fn database_txt(inv: &Inventory, host: &str) -> Result<String, PgbError> {
    const F: &str = "database.txt";
    let c = cluster_of(inv, host)?;
    let v = vars(inv, host)?;
    let target = match str_var(v, "pgbouncer_redirect_to").filter(|s| !s.is_empty()) {
        Some(to) => token(F, "pgbouncer_redirect_to", to)?,
        None => token(
            F,
            "pg_localhost",
            str_var(v, "pg_localhost").unwrap_or("/var/run/postgresql"),
        )?,
    };
    let mut out = String::from("# pgbouncer database list\n");
    for db in &c.databases {
        let def = db.def();
        if def.get("pgbouncer").is_some_and(|p| !truthy(p)) || absent(def) {
            continue;
        }
        let name = token(F, "database name", &db.name)?;
        let mut conn = format!("host={target}");
        if let Some(u) = def.get("pool_auth_user") {
            let u = u.as_str().unwrap_or_default();
            conn += &format!(
                " auth_user={}",
                token(F, &format!("{name}: pool_auth_user"), u)?
            );
        }
        if let Some(m) = def.get("pool_mode") {
            conn += &format!(
                " pool_mode={}",
                pool_mode(F, format!("{name}: pool_mode"), m)?
            );
        }
        for (key, word, min) in [
            ("pool_size", "pool_size", 0),
            ("pool_size_min", "min_pool_size", 0),
            ("pool_reserve", "reserve_pool", 0),
            ("pool_connlimit", "max_db_connections", -1),
        ] {
            if let Some(n) = def.get(key) {
                conn += &format!(" {word}={}", int(F, format!("{name}: {key}"), n, min)?);
            }
        }
        out += &format!("{name:<27} = {conn}\n");
    }
    Ok(out)
}

/// Who gets a `userlist.txt` entry, in Pigsty's order: the dbsu (empty password), the monitor
/// and admin users, then each `pgbouncer: true` user of `pg_users` not `state: absent` (none
/// with `pgbouncer_auth_query: true`). The first element is the dbsu.
pub fn userlist_users(inv: &Inventory, host: &str) -> Result<Vec<String>, PgbError> {
    const F: &str = "userlist.txt";
    let c = cluster_of(inv, host)?;
    let v = vars(inv, host)?;
    let s = |k: &str, d: &'static str| str_var(v, k).unwrap_or(d).to_string();
    let mut names = vec![
        s("pg_dbsu", "postgres"),
        s("pg_monitor_username", "dbuser_monitor"),
        s("pg_admin_username", "dbuser_dba"),
    ];
    let auth_query = v
        .get("pgbouncer_auth_query")
        .is_some_and(|q| truthy(&q.value));
    for u in c.users.iter().filter(|_| !auth_query) {
        let def = u.def();
        if !absent(def) && def.get("pgbouncer").is_some_and(truthy) {
            names.push(u.name.clone());
        }
    }
    for n in &names {
        token(F, "user name", n)?;
    }
    Ok(names)
}

/// `userlist.txt` from `(name, verifier)` entries as `pgb-user` leaves it: `"name" "verifier"`
/// lines, sorted in reverse, duplicates removed (byte order; pgb-user's `sort -r` uses the
/// node's locale). The verifier is never part of an error.
pub fn userlist(entries: &[(String, String)]) -> Result<String, PgbError> {
    let mut lines = Vec::with_capacity(entries.len());
    for (name, verifier) in entries {
        token("userlist.txt", "user name", name)?;
        if verifier.chars().any(|c| c == '"' || c.is_control()) {
            return Err(PgbError::Verifier(name.clone()));
        }
        lines.push(format!("\"{name}\" \"{verifier}\"\n"));
    }
    lines.sort_unstable_by(|a, b| b.cmp(a));
    lines.dedup();
    Ok(lines.concat())
}

/// `userlist.txt` for `pgitops render`: the entries with [`VERIFIER_PLACEHOLDER`] for every
/// verifier but the dbsu's (empty), since verifiers are only read live, on apply.
pub fn userlist_preview(inv: &Inventory, host: &str) -> Result<String, PgbError> {
    let names = userlist_users(inv, host)?;
    let entries: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let v = if i == 0 { "" } else { VERIFIER_PLACEHOLDER };
            (n.clone(), v.replace('"', ""))
        })
        .collect();
    userlist(&entries)
}

#[path = "pgbouncer_ini.rs"]
mod ini;
pub use ini::{pgbouncer_ini, Ini, PgbVersion, GATED, INI_MARK};

#[cfg(test)]
#[path = "pgbouncer_tests.rs"]
mod tests;
