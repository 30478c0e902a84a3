//! pgbouncer's main configuration, `/etc/pgbouncer/pgbouncer.ini`, as Pigsty v4.5.0's
//! `roles/pgsql/templates/pgbouncer.ini` renders it, for the pgbouncer version installed on the
//! member: a setting that version does not accept (it would refuse to start) is left out and
//! named, with a comment in the file saying so.
//!
//! In: an [`Inventory`], a member host and the installed [`PgbVersion`] (`None`: unknown, every
//! setting kept). Out: an [`Ini`] (text and what was left out), or a [`PgbError`] for a value
//! that would break the file. Pure. The first line is [`INI_MARK`], what tells pgitops' file from
//! Pigsty's or a person's.

use serde_yaml_ng::Value;

use super::{pool_mode, token, truthy, vars, PgbError};
use crate::inventory::model::{port_var, str_var};
use crate::inventory::Inventory;
use crate::render::service::safe_path;

/// The first line of the `pgbouncer.ini` pgitops writes.
pub const INI_MARK: &str =
    "# written by pgitops: pgbouncer's configuration (Pigsty's pgbouncer.ini)";

const F: &str = "pgbouncer.ini";

/// A pgbouncer release, as `pgbouncer --version` prints it (`PgBouncer 1.18.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PgbVersion(pub u32, pub u32, pub u32);

impl PgbVersion {
    /// The version in the first line of `pgbouncer --version`.
    pub fn parse(out: &str) -> Option<PgbVersion> {
        let first = out.lines().next()?.trim();
        let v = first
            .strip_prefix("PgBouncer ")
            .or(first.strip_prefix("pgbouncer "))?;
        let mut it = v
            .split(|c: char| !c.is_ascii_digit())
            .map(str::parse::<u32>);
        let major = it.next()?.ok()?;
        let minor = it.next()?.ok()?;
        let patch = it.next().and_then(Result::ok).unwrap_or(0);
        Some(PgbVersion(major, minor, patch))
    }
}

impl std::fmt::Display for PgbVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Settings of Pigsty's template that older releases refuse, with the first release taking them.
pub const GATED: &[(&str, PgbVersion)] = &[("max_prepared_statements", PgbVersion(1, 21, 0))];

/// A rendered `pgbouncer.ini`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ini {
    pub text: String,
    /// `setting (pgbouncer 1.21+)` for each setting left out for the installed version.
    pub left_out: Vec<String>,
}

/// The client TLS modes pgbouncer knows.
const SSLMODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

fn value_err(what: &str, expected: &'static str) -> PgbError {
    PgbError::Value {
        file: F,
        what: what.into(),
        expected,
    }
}

/// `pg_listen` with `${ip}`, `${lo}` and (with a usable `pg_vip_address`) `${vip}` replaced, as
/// Pigsty's template does; every address one word (`*`, an IP or a host name).
fn listen_addr(v: &crate::inventory::HostVars, host: &str) -> Result<String, PgbError> {
    let raw = match v.get("pg_listen").map(|x| &*x.value) {
        None => "0.0.0.0".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(value_err(
                "pg_listen",
                "a comma-separated list of addresses",
            ))
        }
    };
    let mut l = raw.replace("${ip}", host).replace("${lo}", "127.0.0.1");
    let vip = str_var(v, "pg_vip_address").unwrap_or("127.0.0.1/24");
    let vip_on = v.get("pg_vip_enabled").is_some_and(|x| truthy(&x.value));
    if vip_on && !vip.starts_with("127.0.0") && vip.contains('/') {
        l = l.replace("${vip}", vip.split('/').next().unwrap_or_default());
    }
    let ok = |a: &str| {
        a == "*"
            || (!a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:-_".contains(&b)))
    };
    let addrs: Vec<&str> = l.split(',').map(str::trim).collect();
    match addrs.iter().all(|a| ok(a)) {
        true => Ok(addrs.join(",")),
        false => Err(PgbError::Token {
            file: F,
            what: "pg_listen (`${vip}` needs pg_vip_enabled and a pg_vip_address)".into(),
            value: l,
        }),
    }
}

/// `pgbouncer_ignore_param`: a list of parameter names.
fn ignore_param(v: Option<&Value>) -> Result<String, PgbError> {
    let default = [
        "extra_float_digits",
        "application_name",
        "TimeZone",
        "DateStyle",
        "IntervalStyle",
        "search_path",
    ];
    let names: Vec<String> = match v {
        None => default.iter().map(|s| s.to_string()).collect(),
        Some(Value::Sequence(items)) => {
            let mut out = vec![];
            for i in items {
                let s = i
                    .as_str()
                    .ok_or_else(|| value_err("pgbouncer_ignore_param", "a list of names"))?;
                let ok = !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
                if !ok {
                    return Err(PgbError::Token {
                        file: F,
                        what: "pgbouncer_ignore_param entry".into(),
                        value: s.into(),
                    });
                }
                out.push(s.to_string());
            }
            out
        }
        Some(_) => return Err(value_err("pgbouncer_ignore_param", "a list of names")),
    };
    Ok(names.join(", "))
}

/// `/etc/pgbouncer/pgbouncer.ini` of `host` for pgbouncer `version` (see the module doc).
pub fn pgbouncer_ini(
    inv: &Inventory,
    host: &str,
    version: Option<PgbVersion>,
) -> Result<Ini, PgbError> {
    super::cluster_of(inv, host)?;
    let v = vars(inv, host)?;
    let get = |k: &str| v.get(k).map(|x| &*x.value);
    let word = |k: &str, d: &str| token(F, k, str_var(v, k).unwrap_or(d));
    let dbsu = word("pg_dbsu", "postgres")?;
    let admin = word("pg_admin_username", "dbuser_dba")?;
    let monitor = word("pg_monitor_username", "dbuser_monitor")?;
    let port = port_var(v, "pgbouncer_port")
        .map_err(|_| value_err("pgbouncer_port", "a port number from 1 to 65535"))?
        .unwrap_or(6432);
    let mode = match get("pgbouncer_poolmode") {
        None => "transaction",
        Some(m) => pool_mode(F, "pgbouncer_poolmode".into(), m)?,
    };
    let ssl = match get("pgbouncer_sslmode") {
        None => "disable",
        Some(m) => {
            let s = m.as_str().unwrap_or_default();
            SSLMODES.iter().find(|x| **x == s).copied().ok_or_else(|| {
                value_err(
                    "pgbouncer_sslmode",
                    "disable, allow, prefer, require, verify-ca or verify-full",
                )
            })?
        }
    };
    let log_dir = match get("pgbouncer_log_dir") {
        None => "/pg/log/pgbouncer",
        Some(Value::String(s)) if safe_path(s) => s.trim_end_matches('/'),
        Some(_) => {
            return Err(value_err(
                "pgbouncer_log_dir",
                "an absolute path of letters, digits, `_`, `-`, `.` and `/`",
            ))
        }
    };
    let auth_query = get("pgbouncer_auth_query").is_some_and(truthy);
    let listen = listen_addr(v, host)?;
    let ignore = ignore_param(get("pgbouncer_ignore_param"))?;

    let mut t = format!("{INI_MARK}\n");
    t += "# Path      :   /etc/pgbouncer/pgbouncer.ini (semantics of Pigsty v4.5.0's template)\n";
    t += "\n[users]\n%include /etc/pgbouncer/useropts.txt\n\n";
    t += "[databases]\n%include /etc/pgbouncer/database.txt\n\n[pgbouncer]\n";
    let mut set = |k: &str, val: &str| t += &format!("{k:<27} = {val}\n");
    set("pool_mode", mode);
    set("listen_addr", &listen);
    set("listen_port", &port.to_string());
    set("admin_users", &format!("{dbsu}, {admin}"));
    set("stats_users", &format!("{dbsu}, {monitor}"));
    t += "\n# Auth & SSL\n";
    let mut set = |k: &str, val: &str| t += &format!("{k:<27} = {val}\n");
    set("auth_type", "hba");
    set("auth_file", "/etc/pgbouncer/userlist.txt");
    set("auth_hba_file", "/etc/pgbouncer/pgb_hba.conf");
    if auth_query {
        set("auth_user", &dbsu);
        set(
            "auth_query",
            "SELECT username, password FROM monitor.pgbouncer_auth($1)",
        );
    }
    t += "\n";
    let logfile = format!("{log_dir}/pgbouncer.log");
    let rest: Vec<(&str, &str)> = vec![
        ("client_tls_sslmode", ssl),
        ("client_tls_cert_file", "/pg/cert/server.crt"),
        ("client_tls_key_file", "/pg/cert/server.key"),
        ("client_tls_ca_file", "/pg/cert/ca.crt"),
        ("server_reset_query", "DISCARD ALL"),
        ("server_reset_query_always", "0"),
        ("unix_socket_dir", "/run/postgresql"),
        ("pidfile", "/run/postgresql/pgbouncer.pid"),
        ("logfile", &logfile),
        ("application_name_add_host", "0"),
        ("max_client_conn", "20000"),
        ("min_pool_size", "0"),
        ("default_pool_size", "50"),
        ("reserve_pool_size", "30"),
        ("reserve_pool_timeout", "1"),
        ("server_lifetime", "600"),
        ("max_db_connections", "100"),
        ("max_user_connections", "100"),
        ("server_round_robin", "0"),
        ("log_connections", "0"),
        ("log_disconnections", "0"),
        ("ignore_startup_parameters", &ignore),
        ("max_prepared_statements", "256"),
    ];
    let mut left_out = vec![];
    for (k, val) in rest {
        let gate = GATED.iter().find(|(g, _)| *g == k).map(|(_, v)| *v);
        match (gate, version) {
            (Some(need), Some(have)) if have < need => {
                t += &format!(
                    "# left out: {k} = {val} (pgbouncer {}.{}+; installed {have})\n",
                    need.0, need.1
                );
                left_out.push(format!("{k} (pgbouncer {}.{}+)", need.0, need.1));
            }
            _ => t += &format!("{k:<27} = {val}\n"),
        }
    }
    Ok(Ini { text: t, left_out })
}

#[cfg(test)]
#[path = "pgbouncer_ini_tests.rs"]
mod tests;
