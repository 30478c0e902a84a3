//! Checks of the host-level variables that pgitops itself reads and hands to a node: the dbsu
//! and system role names, paths, the intranet CIDRs, the PostgreSQL version, password
//! encryption and the system passwords. A wrong type is an error, never "use the default".
//!
//! In: the resolved tree. Each variable layer (`all.vars`, every group's vars, every host's own
//! vars) is checked once, so a setting shared by 10,000 hosts costs one check. Out: errors at the
//! variable's position.

use serde_yaml_ng::Value;

use super::values::{shown, string, type_name, Problem};
use super::Out;
use crate::inventory::ansible::{Host, Tree};
use crate::inventory::hba_rule::norm_addr;
use crate::inventory::model::ansible_uint;
use crate::inventory::positions::Seg;
use crate::inventory::{Var, Vars};

/// Paths on the node that pgitops uses (`pg_bin_dir`, `pg_data`) or Pigsty builds from.
const PATHS: [&str; 7] = [
    "pg_bin_dir",
    "pg_data",
    "pg_fs_main",
    "pg_fs_backup",
    "pg_dbsu_home",
    "pg_localhost",
    "pg_namespace",
];

/// System roles substituted into HBA rules (`${repl}`, ...) and into SQL grants.
const ROLES: [&str; 3] = [
    "pg_replication_username",
    "pg_monitor_username",
    "pg_admin_username",
];

const PASSWORDS: [&str; 4] = [
    "pg_dbsu_password",
    "pg_replication_password",
    "pg_monitor_password",
    "pg_admin_password",
];

pub(super) fn check_layers(tree: &Tree, out: &mut Out) {
    check_layer(&tree.all_vars, out);
    for g in tree.groups.values() {
        check_layer(&g.vars, out);
    }
    for h in tree.hosts.values() {
        check_layer(&h.own, out);
    }
}

/// Why the key of a host that is not an IP address would break rendering: the HBA renderer
/// writes the keys of infra hosts (alias `infra`, in every cluster's default rules) and of a
/// cluster's members (alias `cluster`) as addresses. `None` for other hosts.
pub(super) fn address_in_hba(tree: &Tree, host: &Host) -> Option<&'static str> {
    if host.name.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    if tree
        .groups
        .get("infra")
        .is_some_and(|g| g.hosts.contains(&host.name))
    {
        Some("it is an infra host, written into every cluster's HBA files as an address")
    } else if host.vars.contains_key("pg_cluster") {
        Some("it is a PGSQL member, written into its cluster's HBA files as an address")
    } else {
        None
    }
}

fn check_layer(vars: &Vars, out: &mut Out) {
    let mut at = |key: &str, check: &dyn Fn(&Value) -> Result<(), Problem>| {
        if let Some(Var { value, origin }) = vars.get(key) {
            if let (false, Err(p)) = (value.is_null(), check(value)) {
                out.problem(origin, p);
            }
        }
    };
    at("pg_dbsu", &|v| {
        let s = string("pg_dbsu", v)?;
        let head = |b: u8| b.is_ascii_lowercase() || b == b'_';
        let tail = |b: u8| head(b) || b.is_ascii_digit() || b == b'-';
        let ok = s.len() <= 32 && s.bytes().next().is_some_and(head) && s.bytes().all(tail);
        ok.then_some(()).ok_or_else(|| {
            let s = shown(s);
            fail(format!(
                "`pg_dbsu` {s} must be a Unix user name (^[a-z_][a-z0-9_-]{{0,31}}$)"
            ))
        })
    });
    for key in ROLES {
        at(key, &|v| {
            let s = string(key, v)?;
            let head = |b: u8| b.is_ascii_lowercase() || b == b'_';
            let tail = |b: u8| head(b) || b.is_ascii_digit() || b"@.-".contains(&b);
            let ok = s.len() <= 63 && s.bytes().next().is_some_and(head) && s.bytes().all(tail);
            ok.then_some(()).ok_or_else(|| {
                let s = shown(s);
                fail(format!(
                    "`{key}` {s} must match ^[a-z_][a-z0-9_@.-]{{0,62}}$"
                ))
            })
        });
    }
    for key in PATHS {
        at(key, &|v| {
            let s = string(key, v)?;
            let ok = s.starts_with('/') && !s.chars().any(char::is_control);
            ok.then_some(()).ok_or_else(|| {
                let s = shown(s);
                fail(format!(
                    "`{key}` must be an absolute path on one line, got {s}"
                ))
            })
        });
    }
    for key in PASSWORDS {
        at(key, &|v| match v {
            Value::String(s) if s.contains('\0') => Err(fail(format!(
                "`{key}` contains a NUL byte, which no PostgreSQL client can send"
            ))),
            Value::String(_) | Value::Number(_) => Ok(()),
            other => Err(fail(format!(
                "`{key}` must be a string, got {}",
                type_name(other)
            ))),
        });
    }
    at("node_firewall_intranet", &|v| {
        let Some(items) = v.as_sequence() else {
            let got = type_name(v);
            return Err(fail(format!(
                "`node_firewall_intranet` must be a list of CIDRs, got {got}"
            )));
        };
        for (i, item) in items.iter().enumerate() {
            if item.as_str().and_then(|s| norm_addr(s, true)).is_none() {
                let got = item.as_str().map_or_else(|| type_name(item).into(), shown);
                let msg = format!(
                    "`node_firewall_intranet[{i}]` must be an IP address or CIDR, got {got}"
                );
                return Err(fail(msg).inside(Seg::Index(i)));
            }
        }
        Ok(())
    });
    at("pg_version", &|v| match ansible_uint(v) {
        Some(n) if (9..=99).contains(&n) => Ok(()),
        _ => {
            let got = v
                .as_i64()
                .map_or_else(|| type_name(v).to_string(), |n| n.to_string());
            Err(fail(format!(
                "`pg_version` must be a PostgreSQL major version such as 17, got {got}"
            )))
        }
    });
    at("pg_offline_query", &|v| match v {
        Value::Bool(_) => Ok(()),
        other => {
            let got = type_name(other);
            Err(fail(format!(
                "`pg_offline_query` must be true or false (unquoted), got {got}"
            )))
        }
    });
    // Written into pgbouncer's database.txt as `host=<value>` (one word).
    for key in ["pgbouncer_redirect_to", "pg_localhost"] {
        at(key, &|v| {
            let s = string(key, v)?;
            let bad = |c: char| c.is_whitespace() || c.is_control() || "\"'=#;,\\".contains(c);
            match s.chars().any(bad) {
                false => Ok(()),
                true => Err(fail(format!(
                    "`{key}` {} goes into pgbouncer's database.txt as host=...: no whitespace, quotes, `=`, `#`, `;`, `,` or `\\`",
                    shown(s)
                ))),
            }
        });
    }
    at("pgbouncer_enabled", &|v| match v {
        Value::Bool(_) => Ok(()),
        other => Err(fail(format!(
            "`pgbouncer_enabled` must be true or false (unquoted), got {}",
            type_name(other)
        ))),
    });
    at("pgbouncer_port", &|v| match ansible_uint(v) {
        Some(1..=65535) => Ok(()),
        _ => Err(fail(
            "`pgbouncer_port` must be a port number from 1 to 65535".into(),
        )),
    });
    at("pg_pwd_enc", &|v| match string("pg_pwd_enc", v)? {
        "scram-sha-256" | "md5" => Ok(()),
        s => Err(fail(format!(
            "`pg_pwd_enc` must be scram-sha-256 or md5, got {}",
            shown(s)
        ))),
    });
}

fn fail(message: String) -> Problem {
    Problem::new(message)
}
