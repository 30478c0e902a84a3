//! The `[ha]` table: several `pgitops serve` instances coordinated by etcd (a leader lease, its
//! term fencing every step, and the state a new leader needs kept under `prefix`). Without the
//! table, one instance runs alone on its state directory.
//!
//! ```toml
//! [ha]
//! etcd = ["https://10.10.10.10:2379", "https://10.10.10.11:2379"]  # or all http://
//! ca_file = "/etc/pki/ca.crt"       # https: the CA that signed etcd's certificates (required)
//! cert_file = "/etc/pki/pgitops.crt" # https: a client certificate, when etcd asks for one
//! key_file = "/etc/pki/pgitops.key"
//! user = "pgitops"                  # etcd authentication (RBAC), with the password from
//! password_env = "PGITOPS_ETCD_PASSWORD"  # this environment variable (never in the file)
//! prefix = "/pgitops/pigsty/main"   # default: /pgitops/<remote's name>/<branch>
//! ttl_seconds = 10                  # the lease: a dead leader is replaced within this
//! name = "pgitops-1"                # this instance in logs and notes; default: the host name
//! ```
//!
//! In: the table's text. Out: [`Ha`], with [`Ha::prefix_for`] and [`Ha::name_or_host`] giving
//! the derived defaults; [`Ha::check`] refuses what cannot work.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ha {
    /// etcd v3 client endpoints (`http://host:port`, or all `https://host:port`).
    pub etcd: Vec<String>,
    /// With `https://` endpoints: the CA certificate (PEM) etcd's server certificates are
    /// checked against, and optionally this client's certificate and key (PEM).
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// etcd authentication: the user, and the variable holding its password.
    pub user: Option<String>,
    pub password_env: Option<String>,
    /// Key prefix of the leader key and the shared state.
    pub prefix: Option<String>,
    /// The leader lease's time to live.
    #[serde(default = "ten")]
    pub ttl_seconds: u64,
    /// This instance's id (logs, the leader key, notes).
    pub name: Option<String>,
}

fn ten() -> u64 {
    10
}

impl Ha {
    pub(super) fn check(&self) -> Result<(), String> {
        if self.etcd.is_empty() {
            return Err("`ha.etcd` must list at least one etcd endpoint".into());
        }
        let tls = self.tls();
        let scheme = if tls { "https://" } else { "http://" };
        if let Some(bad) = self
            .etcd
            .iter()
            .find(|e| !e.starts_with(scheme) || e.len() <= scheme.len())
        {
            return Err(format!(
                "`ha.etcd`: {bad:?} is not an endpoint URL ({scheme}host:port; all endpoints use the same scheme)"
            ));
        }
        match (tls, &self.ca_file, &self.cert_file, &self.key_file) {
            (true, None, _, _) => {
                return Err("`ha.ca_file` is required with https:// endpoints (the CA that signed etcd's certificates)".into())
            }
            (false, ca, cert, key) if ca.is_some() || cert.is_some() || key.is_some() => {
                return Err("`ha.ca_file`, `cert_file` and `key_file` need https:// endpoints".into())
            }
            (_, _, Some(_), None) | (_, _, None, Some(_)) => {
                return Err("`ha.cert_file` and `ha.key_file` go together".into())
            }
            _ => {}
        }
        match (&self.user, &self.password_env) {
            (Some(u), Some(_)) if u.trim().is_empty() => {
                return Err("`ha.user` must not be empty".into())
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err("`ha.user` and `ha.password_env` go together".into())
            }
            _ => {}
        }
        if self.ttl_seconds < 2 {
            return Err("`ha.ttl_seconds` must be at least 2".into());
        }
        if let Some(p) = &self.prefix {
            if !p.starts_with('/') || p.len() < 2 || p.ends_with('/') {
                return Err(format!(
                    "`ha.prefix`: {p:?} must start with `/` and not end with one"
                ));
            }
        }
        if self.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err("`ha.name` must not be empty".into());
        }
        Ok(())
    }

    /// Whether the endpoints are `https://`.
    pub fn tls(&self) -> bool {
        self.etcd.first().is_some_and(|e| e.starts_with("https://"))
    }

    /// The configured prefix, or `/pgitops/<remote's last path part, without .git>/<branch>`.
    pub fn prefix_for(&self, remote: &str, branch: &str) -> String {
        if let Some(p) = &self.prefix {
            return p.clone();
        }
        let last = remote
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("repo");
        let last = last.strip_suffix(".git").unwrap_or(last);
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| match c {
                    'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
                    _ => '_',
                })
                .collect()
        };
        format!("/pgitops/{}/{}", clean(last), clean(branch))
    }

    /// The configured name, or the host name.
    pub fn name_or_host(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "pgitops".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Ha, String> {
        let ha: Ha = toml::from_str(text).map_err(|e| e.to_string())?;
        ha.check()?;
        Ok(ha)
    }

    #[test]
    fn defaults_and_checks() {
        let ha = parse("etcd = ['http://127.0.0.1:2379']").unwrap();
        assert_eq!(ha.ttl_seconds, 10);
        assert_eq!(
            ha.prefix_for("/srv/git/pigsty.git", "main"),
            "/pgitops/pigsty/main"
        );
        assert_eq!(
            ha.prefix_for("git@example.org:acme/inv.git", "prod/eu"),
            "/pgitops/inv/prod_eu"
        );
        assert!(!ha.name_or_host().is_empty());
        let secured = parse(
            "etcd = ['https://a:2379', 'https://b:2379']\nca_file = '/ca'\ncert_file = '/c'\nkey_file = '/k'\nuser = 'pgitops'\npassword_env = 'P'",
        )
        .unwrap();
        assert!(secured.tls());
        for (bad, why) in [
            ("etcd = []", "at least one"),
            ("etcd = ['127.0.0.1:2379']", "not an endpoint"),
            ("etcd = ['https://a:2379']", "`ha.ca_file` is required"),
            (
                "etcd = ['https://a:2379', 'http://b:2379']\nca_file = '/ca'",
                "same scheme",
            ),
            ("etcd = ['http://a:2379']\nca_file = '/ca'", "need https://"),
            (
                "etcd = ['https://a:2379']\nca_file = '/ca'\ncert_file = '/c'",
                "go together",
            ),
            ("etcd = ['http://a:2379']\nuser = 'u'", "go together"),
            (
                "etcd = ['http://a:2379']\npassword_env = 'P'",
                "go together",
            ),
            ("etcd = ['http://a:1']\nttl_seconds = 1", "at least 2"),
            ("etcd = ['http://a:1']\nprefix = 'x/'", "must start with"),
            ("etcd = ['http://a:1']\nname = ' '", "must not be empty"),
            ("etcd = ['http://a:1']\nlease = 3", "unknown field"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
