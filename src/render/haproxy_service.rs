//! One PGSQL service as Pigsty's `roles/pgsql/templates/service.cfg` renders it: a `listen`
//! section with Patroni REST health checks, its servers picked by the JMESPath `selector`,
//! `backup` servers by the backup selector.
//!
//! In: one `pg_default_services`/`pg_services` entry, the members (as JSON host variables) and
//! the cluster's rto options. Out: the file's text, or an error naming the service and field.
//! Pure. Whitespace follows the template as Ansible renders it (`trim_blocks`), including the
//! trailing space of a non-backup server line.

use serde_json::Value as Json;
use serde_yaml_ng::Value;

use super::haproxy::{check_line, select, word, HaproxyError, MARK};
use crate::inventory::yaml::scalar_text;
use crate::inventory::Inventory;

/// A service entry, each field checked.
pub(super) struct Service {
    pub name: String,
    port: u16,
    ip: Option<String>,
    dest: Option<Value>,
    check: String,
    selector: String,
    backup: Option<String>,
    maxconn: String,
    balance: String,
    options: Option<String>,
}

impl Service {
    /// The health check's URI.
    pub fn check(&self) -> &str {
        &self.check
    }

    pub fn read(v: &Value, cluster: &str) -> Result<Service, HaproxyError> {
        let name = v.get("name").and_then(scalar_text).unwrap_or_default();
        let bad = |field: &str, why: String| HaproxyError::Service {
            service: format!("{cluster}-{name}"),
            field: field.into(),
            why,
        };
        let ident = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
                && !s.starts_with('.')
        };
        if !ident(&name) {
            return Err(bad(
                "name",
                format!("`{name}` must be letters, digits, `_`, `-`, `.`"),
            ));
        }
        let text = |f: &str| v.get(f).and_then(scalar_text);
        let port = v
            .get("port")
            .and_then(crate::inventory::model::ansible_uint)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("port", "must be a port number from 1 to 65535".into()))?;
        let one_word = |f: &str, dflt: &str| -> Result<String, HaproxyError> {
            let s = text(f).unwrap_or_else(|| dflt.to_string());
            match word(&s) {
                true => Ok(s),
                false => Err(bad(
                    f,
                    format!("`{s}` must be one word without spaces, quotes, `#`, `\\` or `$`"),
                )),
            }
        };
        let ip = match v.get("ip") {
            Some(_) => Some(one_word("ip", "")?),
            None => None,
        };
        let check = one_word("check", "/")?;
        let maxconn = one_word("maxconn", "5000")?;
        if !maxconn.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "maxconn",
                format!("`{maxconn}` must be an integer from 0"),
            ));
        }
        let balance = one_word("balance", "roundrobin")?;
        let selector = text("selector")
            .filter(|s| check_line(s))
            .ok_or_else(|| bad("selector", "must be one line of JMESPath".into()))?;
        let backup = match v.get("backup") {
            Some(_) => Some(
                text("backup")
                    .filter(|s| check_line(s))
                    .ok_or_else(|| bad("backup", "must be one line of JMESPath".into()))?,
            ),
            None => None,
        };
        let options = match v.get("options") {
            Some(_) => Some(text("options").filter(|s| check_line(s)).ok_or_else(|| {
                bad(
                    "options",
                    "must be one line of HAProxy server options without quotes, `#`, `\\` or `$`"
                        .into(),
                )
            })?),
            None => None,
        };
        let dest = v.get("dest").cloned();
        if let Some(d) = &dest {
            let ok = matches!(d, Value::Number(_))
                || matches!(d.as_str(), Some("default" | "postgres" | "pgbouncer"))
                || d.as_str().is_some_and(word);
            if !ok {
                return Err(bad(
                    "dest",
                    "must be default, postgres, pgbouncer or a port number".into(),
                ));
            }
        }
        Ok(Service {
            name,
            port,
            ip,
            dest,
            check,
            selector,
            backup,
            maxconn,
            balance,
            options,
        })
    }

    /// The server port of `host` (its JSON variables) for this service.
    fn dest_port(&self, default_dest: Option<&str>, host: &Json) -> Result<String, String> {
        let dest: Value = match &self.dest {
            None => Value::from(default_dest.unwrap_or("postgres")),
            Some(d) if d.as_str() == Some("default") => {
                Value::from(default_dest.unwrap_or("postgres"))
            }
            Some(d) => d.clone(),
        };
        let var = |k: &str, d: u64| match host.get(k) {
            None | Some(Json::Null) => Ok(d.to_string()),
            Some(Json::Number(n)) if n.as_u64().is_some_and(|p| p > 0 && p < 65536) => {
                Ok(n.to_string())
            }
            Some(Json::String(s)) if s.parse::<u16>().is_ok_and(|p| p > 0) => Ok(s.clone()),
            Some(_) => Err(format!("`{k}` must be a port number")),
        };
        match &dest {
            Value::Number(n) => Ok(n.to_string()),
            v if v.as_str() == Some("postgres") => var("pg_port", 5432),
            v if v.as_str() == Some("pgbouncer") => var("pgbouncer_port", 6432),
            _ => Ok("5432".into()),
        }
    }

    fn server(
        &self,
        c: &str,
        default_dest: Option<&str>,
        h: &Json,
        backup: Option<bool>,
    ) -> Result<String, HaproxyError> {
        let host = h["inventory_hostname"].as_str().unwrap_or_default();
        let bad = |why: String| HaproxyError::Service {
            service: format!("{c}-{}", self.name),
            field: format!("server {host}"),
            why,
        };
        let text = |k: &str, d: &str| -> Result<String, HaproxyError> {
            let s = match h.get(k) {
                None | Some(Json::Null) => d.to_string(),
                Some(Json::String(s)) => s.clone(),
                Some(Json::Number(n)) => n.to_string(),
                Some(Json::Bool(b)) => b.to_string(),
                Some(_) => return Err(bad(format!("`{k}` must be a scalar"))),
            };
            match word(&s) {
                true => Ok(s),
                false => Err(bad(format!("`{k}` = `{s}` must be one word"))),
            }
        };
        let port = self.dest_port(default_dest, h).map_err(bad)?;
        let patroni = text("patroni_port", "8008")?;
        let weight = text("pg_weight", "100")?;
        if !weight.bytes().all(|b| b.is_ascii_digit())
            || !patroni.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad("`pg_weight` and `patroni_port` must be integers".into()));
        }
        let ssl = matches!(h.get("patroni_ssl_enabled"), Some(Json::Bool(true)));
        let ssl = if ssl {
            " check-ssl ca-file /pg/cert/ca.crt"
        } else {
            ""
        };
        let (pc, seq) = (text("pg_cluster", c)?, text("pg_seq", "")?);
        let tail = match backup {
            Some(true) => "backup\n",
            Some(false) => "\n",
            None => "backup\n\n",
        };
        Ok(format!(
            "    server {pc}-{seq} {host}:{port}{ssl} check port {patroni} weight {weight} {tail}"
        ))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn render(
        &self,
        c: &str,
        on: &str,
        bind_node: bool,
        rto: &str,
        default_dest: Option<&str>,
        members: &[Json],
        _inv: &Inventory,
    ) -> Result<String, HaproxyError> {
        let bad = |field: &str, why: String| HaproxyError::Service {
            service: format!("{c}-{}", self.name),
            field: field.into(),
            why,
        };
        let chosen = select(members, &self.selector)
            .map_err(|e| bad("selector", format!("`{}` {e}", self.selector)))?;
        let backups = match &self.backup {
            Some(b) => select(members, b).map_err(|e| bad("backup", format!("`{b}` {e}")))?,
            None => vec![],
        };
        let find = |h: &String| {
            members
                .iter()
                .find(|m| m["inventory_hostname"].as_str() == Some(h))
        };
        let bind = match (&self.ip, bind_node) {
            (Some(ip), _) => ip.clone(),
            (None, true) => on.to_string(),
            (None, false) => "*".into(),
        };
        let mut t = format!(
            "{MARK}: service {c}-{name} (Pigsty's service.cfg)
#---------------------------------------------------------------------
# service: {c}-{name} @ {on}:{port}
#---------------------------------------------------------------------
# service instances {inst}
# service backups   {bk}
listen {c}-{name}
    bind {bind}:{port}
    mode tcp
    maxconn {maxconn}
    balance {balance}
    option httpchk
    option http-keep-alive
    http-check send meth OPTIONS uri {check}
    http-check expect status 200
    default-server {opts}

    # servers
",
            name = self.name,
            port = self.port,
            inst = chosen.join(", "),
            bk = backups.join(", "),
            maxconn = self.maxconn,
            balance = self.balance,
            check = self.check,
            opts = self.options.as_deref().unwrap_or(rto),
        );
        for h in &chosen {
            let Some(m) = find(h) else { continue };
            t += &self.server(c, default_dest, m, Some(backups.contains(h)))?;
        }
        for h in &backups {
            if chosen.contains(h) {
                t.push('\n');
                continue;
            }
            let Some(m) = find(h) else { continue };
            t += &self.server(c, default_dest, m, None)?;
        }
        Ok(t)
    }
}
