//! HAProxy for PGSQL services: the node's `/etc/haproxy/haproxy.cfg` ([`haproxy_cfg`], Pigsty's
//! `roles/haproxy/templates/haproxy.cfg.j2`) and one `/etc/haproxy/conf.d/<cluster>-<service>.cfg`
//! per entry of `pg_default_services + pg_services` ([`service_files`], Pigsty's
//! `roles/pgsql/templates/service.cfg`, line for line).
//!
//! In: the inventory, the HAProxy host and the host whose variables define the services (the
//! member itself, or the declared primary with `pg_service_provider`). Out: file text. Pure.
//! Selectors and backup selectors are JMESPath evaluated over the cluster members' effective
//! variables (plus `inventory_hostname`), as Ansible's `json_query` does over `hostvars`.
//! Every value that lands in a file is checked first: one HAProxy word (or one line for
//! `options`), so nothing from the inventory can add a directive; the admin password is never
//! part of an error. Differences from Pigsty, on purpose: the admin socket and pid file live in
//! `/run/haproxy` (Debian's paths: Pigsty's `/var/run/haproxy.sock` would be shared by loopback
//! nodes), `global maxconn` comes from the node's hard file limit (Pigsty's 65535 needs ~131k
//! descriptors), a fractional time of `pg_rto_plan` (`0.5s`, refused by HAProxy 2.6) is written
//! in a smaller unit (`500ms`), and `pgitops_bind_node_ip: true` binds the stats listener and every service
//! without its own `ip` to the node's address instead of `*`.

use serde_yaml_ng::Value;

#[cfg(test)]
use super::haproxy_select::elide_quotes;
use super::haproxy_select::members;
pub use super::haproxy_select::select;
use super::pigsty_defaults::var;
use crate::inventory::model::PgCluster;
use crate::inventory::yaml::scalar_text;
use crate::inventory::{HostVars, Inventory};

/// The first line of every file pgitops writes here; a `haproxy.cfg` without it is foreign.
pub const MARK: &str = "# written by pgitops";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HaproxyError {
    #[error("{host}: `{var}` {why}")]
    Var {
        host: String,
        var: &'static str,
        why: String,
    },
    #[error("service {service}: `{field}` {why}")]
    Service {
        service: String,
        field: String,
        why: String,
    },
    #[error("{host} is not in the inventory")]
    NoHost { host: String },
}

pub(super) fn host_vars<'i>(inv: &'i Inventory, host: &str) -> Result<&'i HostVars, HaproxyError> {
    inv.tree
        .hosts
        .get(host)
        .map(|h| &h.vars)
        .ok_or_else(|| HaproxyError::NoHost { host: host.into() })
}

/// One HAProxy word: printable ASCII without spaces, quotes, `#`, `\` or `$`.
pub fn word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"'#\\$".contains(&b))
}

/// One line of HAProxy words (for `options`): no control characters, quotes, `#`, `\`, `$`.
fn line(s: &str) -> bool {
    !s.trim().is_empty()
        && s.bytes()
            .all(|b| (b == b' ' || b.is_ascii_graphic()) && !b"\"'#\\$".contains(&b))
}

/// A HAProxy time: digits with an optional unit (`500ms`, `1s`, `24h`; `0.5s` as Pigsty writes
/// it is accepted by HAProxy too).
fn time(s: &str) -> bool {
    let num = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[num.len()..];
    !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && ["", "us", "ms", "s", "m", "h", "d"].contains(&unit)
}

/// A time as HAProxy 2.6 reads it: a fraction (`0.5s`, Pigsty's `fast` plan) is refused there
/// ("unexpected character '.'"), so it is written in a smaller unit (`500ms`), the same time.
fn haproxy_time(t: &str) -> String {
    if !t.contains('.') {
        return t.to_string();
    }
    let num = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[num.len()..];
    let Ok(v) = num.parse::<f64>() else {
        return t.to_string();
    };
    let ms = match unit {
        "" | "ms" => v,
        "s" => v * 1e3,
        "m" => v * 6e4,
        "h" => v * 3.6e6,
        "d" => v * 8.64e7,
        _ => return format!("{}us", v.round() as u64),
    };
    match ms.fract() == 0.0 {
        true => format!("{}ms", ms as u64),
        false => format!("{}us", (ms * 1e3).round() as u64),
    }
}

/// The node-wide settings of `haproxy.cfg`.
#[derive(Clone, PartialEq, Eq)]
pub struct Global {
    pub nodename: String,
    pub host: String,
    pub maxconn: u64,
    /// The stats listener's address: `*` (Pigsty) or the node's.
    pub bind: String,
    pub exporter_port: u16,
    pub metrics_path: String,
    pub admin_username: String,
    admin_password: String,
    pub client_timeout: String,
    pub server_timeout: String,
}

impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Global({} @ {}, maxconn {})",
            self.nodename, self.host, self.maxconn
        )
    }
}

impl Global {
    /// `text` with the admin password replaced by `<redacted>` (for HAProxy's own messages).
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.admin_password, "<redacted>")
    }
}

/// `global maxconn` for a node whose hard `NOFILE` limit is `hard`: HAProxy needs about two
/// descriptors per connection plus its listeners and checks, so half the limit less 1000,
/// at most Pigsty's 65535, at least 100.
pub fn maxconn_for(hard_nofile: u64) -> u64 {
    (hard_nofile.saturating_sub(1000) / 2).clamp(100, 65535)
}

/// Whether `pgitops_bind_node_ip` is true for `host` (false by default: Pigsty's `*`).
pub fn binds_node_ip(inv: &Inventory, host: &str) -> bool {
    host_vars(inv, host)
        .ok()
        .and_then(|v| v.get("pgitops_bind_node_ip"))
        .and_then(|v| v.value.as_bool())
        .unwrap_or(false)
}

/// Whether `haproxy_enabled` is true for `host` (Pigsty's default: true).
pub fn enabled(inv: &Inventory, host: &str) -> bool {
    host_vars(inv, host)
        .ok()
        .and_then(|v| v.get("haproxy_enabled"))
        .map(|v| v.value.as_bool().unwrap_or(true))
        .unwrap_or(true)
}

fn text_var(vars: &HostVars, host: &str, key: &'static str) -> Result<String, HaproxyError> {
    let bad = |why: &str| HaproxyError::Var {
        host: host.into(),
        var: key,
        why: why.into(),
    };
    let v = var(vars, key)
        .and_then(scalar_text)
        .ok_or_else(|| bad("must be set to a scalar"))?;
    let ok = match key {
        "haproxy_client_timeout" | "haproxy_server_timeout" => time(&v),
        "exporter_metrics_path" => word(&v) && v.starts_with('/'),
        _ => word(&v),
    };
    if !ok {
        // Never the password's value; the others are shown.
        return Err(match key {
            "haproxy_admin_password" => {
                bad("must be one word without spaces, quotes, `#`, `\\` or `$`")
            }
            k if k.ends_with("_timeout") => {
                bad(&format!("`{v}` is not a HAProxy time (e.g. 24h, 30s)"))
            }
            _ => bad(&format!(
                "`{v}` must be one word without spaces, quotes, `#`, `\\` or `$`"
            )),
        });
    }
    Ok(v)
}

/// The settings of `host`'s `haproxy.cfg`; `hard_nofile` is the node's hard file limit.
pub fn global_for(inv: &Inventory, host: &str, hard_nofile: u64) -> Result<Global, HaproxyError> {
    let vars = host_vars(inv, host)?;
    let nodename = match vars.get("nodename").and_then(|v| scalar_text(&v.value)) {
        Some(n) => n,
        None => host.to_string(),
    };
    if !word(&nodename) || !word(host) {
        return Err(HaproxyError::Var {
            host: host.into(),
            var: "nodename",
            why: format!("`{nodename}` must be one word"),
        });
    }
    let port = var(vars, "haproxy_exporter_port")
        .and_then(crate::inventory::model::ansible_uint)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .ok_or(HaproxyError::Var {
            host: host.into(),
            var: "haproxy_exporter_port",
            why: "must be a port number from 1 to 65535".into(),
        })?;
    Ok(Global {
        nodename,
        host: host.into(),
        maxconn: maxconn_for(hard_nofile),
        bind: match binds_node_ip(inv, host) {
            true => host.into(),
            false => "*".into(),
        },
        exporter_port: port,
        metrics_path: text_var(vars, host, "exporter_metrics_path")?,
        admin_username: text_var(vars, host, "haproxy_admin_username")?,
        admin_password: text_var(vars, host, "haproxy_admin_password")?,
        client_timeout: text_var(vars, host, "haproxy_client_timeout")?,
        server_timeout: text_var(vars, host, "haproxy_server_timeout")?,
    })
}

/// `/etc/haproxy/haproxy.cfg`: Pigsty's template with the differences named in the module doc.
pub fn haproxy_cfg(g: &Global) -> String {
    format!(
        "{MARK}: HAProxy's main configuration (Pigsty's haproxy.cfg.j2; services in /etc/haproxy/conf.d)
# {node} @ {host}

global
    user        haproxy
    group       haproxy
    node        {node}
    pidfile     /run/haproxy/haproxy.pid
    stats socket /run/haproxy/admin.sock mode 600 level admin
    server-state-file /run/haproxy/server-state     # saved by pgitops before each reload
    maxconn     {maxconn}                       # Pigsty: 65535; here from the node's hard NOFILE limit

defaults
    mode               tcp
    retries            3
    timeout queue      3s
    timeout connect    3s
    timeout client     {client}
    timeout server     {server}
    timeout check      3s
    load-server-state-from-file global  # a reload keeps each server's health

userlist stats-auth
    group admin users {user}
    user {user}  insecure-password {password}
    group readonly users haproxy
    user haproxy insecure-password haproxy

listen stats
    bind {bind}:{port}
    mode  http
    stats enable
    stats hide-version
    stats uri /haproxy/{node}/
    stats refresh 30s
    stats show-node
    acl AUTH       http_auth(stats-auth)
    acl AUTH_ADMIN http_auth_group(stats-auth) admin
    stats http-request auth unless AUTH
    stats admin if AUTH_ADMIN
    http-request use-service prometheus-exporter if {{ path {metrics} }}
",
        node = g.nodename,
        host = g.host,
        maxconn = g.maxconn,
        client = g.client_timeout,
        server = g.server_timeout,
        user = g.admin_username,
        password = g.admin_password,
        bind = g.bind,
        port = g.exporter_port,
        metrics = g.metrics_path,
    )
}

/// One service file: its name in `conf.d` and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFile {
    pub name: String,
    pub text: String,
}

/// The files of `cluster`'s services on HAProxy host `on`, defined by `definer`'s variables.
pub fn service_files(
    inv: &Inventory,
    c: &PgCluster,
    definer: &str,
    on: &str,
) -> Result<Vec<ServiceFile>, HaproxyError> {
    let dv = host_vars(inv, definer)?;
    let members = members(inv, c)?;
    let bind_node = binds_node_ip(inv, on);
    let rto = rto_options(dv, definer)?;
    let default_dest = var(dv, "pg_default_service_dest").and_then(scalar_text);
    let mut out = vec![];
    for s in services(dv, c, definer)? {
        let text = s.render(
            &c.name,
            on,
            bind_node,
            &rto,
            default_dest.as_deref(),
            &members,
            inv,
        )?;
        out.push(ServiceFile {
            name: format!("{}-{}.cfg", c.name, s.name),
            text,
        });
    }
    // `pg_default_services + pg_services`: a later entry of the same name overwrites the file.
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<ServiceFile> = out
        .into_iter()
        .rev()
        .filter(|f| seen.insert(f.name.clone()))
        .collect();
    kept.reverse();
    Ok(kept)
}

/// The backends (`<cluster>-<service>`) of `c`'s services, defined by `definer`'s variables,
/// whose health check asks for the leader (`/primary`, `/leader`, `/master`, `/read-write`):
/// where a switchover tells HAProxy at once which server leads.
pub fn leader_backends(
    inv: &Inventory,
    c: &PgCluster,
    definer: &str,
) -> Result<Vec<String>, HaproxyError> {
    let dv = host_vars(inv, definer)?;
    let mut names: Vec<String> = services(dv, c, definer)?
        .into_iter()
        .filter(|s| ["/primary", "/leader", "/master", "/read-write"].contains(&s.check()))
        .map(|s| format!("{}-{}", c.name, s.name))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// `pg_default_services + pg_services` of `definer`, each entry read and checked.
fn services(
    dv: &HostVars,
    c: &PgCluster,
    definer: &str,
) -> Result<Vec<super::haproxy_service::Service>, HaproxyError> {
    let mut out = vec![];
    for key in ["pg_default_services", "pg_services"] {
        let list = match var(dv, key) {
            Some(Value::Sequence(s)) => s.clone(),
            Some(Value::Null) | None => vec![],
            Some(_) => {
                return Err(HaproxyError::Var {
                    host: definer.into(),
                    var: if key == "pg_services" {
                        "pg_services"
                    } else {
                        "pg_default_services"
                    },
                    why: "must be a list".into(),
                })
            }
        };
        for svc in &list {
            out.push(super::haproxy_service::Service::read(svc, &c.name)?);
        }
    }
    Ok(out)
}

/// Pigsty's `haproxy_rto_options` from `pg_rto_plan[pg_rto]` (`norm` when `pg_rto` names none).
fn rto_options(vars: &HostVars, host: &str) -> Result<String, HaproxyError> {
    let bad = |why: &str| HaproxyError::Var {
        host: host.into(),
        var: "pg_rto_plan",
        why: why.into(),
    };
    let plan = var(vars, "pg_rto_plan")
        .and_then(Value::as_mapping)
        .ok_or_else(|| bad("must be a mapping of modes"))?;
    let wanted = var(vars, "pg_rto").cloned().unwrap_or(Value::Null);
    let mode = if plan.contains_key(&wanted) {
        wanted
    } else {
        Value::from("norm")
    };
    let list = plan
        .get(&mode)
        .and_then(Value::as_sequence)
        .ok_or_else(|| bad("has no entry for `pg_rto` nor `norm`"))?;
    let item = |i: usize| {
        list.get(i)
            .and_then(scalar_text)
            .ok_or_else(|| bad("entries need 10 items"))
    };
    let (inter, fast, down, rise, fall) = (item(5)?, item(6)?, item(7)?, item(8)?, item(9)?);
    for t in [&inter, &fast, &down] {
        if !time(t) {
            return Err(bad(&format!("`{t}` is not a HAProxy time")));
        }
    }
    for n in [&rise, &fall] {
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("rise and fall must be counts, not `{n}`")));
        }
    }
    let (inter, fast, down) = (
        haproxy_time(&inter),
        haproxy_time(&fast),
        haproxy_time(&down),
    );
    Ok(format!("inter {inter} fastinter {fast} downinter {down} rise {rise} fall {fall} on-marked-down shutdown-sessions slowstart 30s maxconn 3000 maxqueue 128 weight 100"))
}

pub(crate) fn check_line(s: &str) -> bool {
    line(s)
}

#[cfg(test)]
#[path = "haproxy_tests.rs"]
mod tests;
