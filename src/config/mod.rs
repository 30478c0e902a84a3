//! `pgitops.toml`: the service configuration. Every setting has a default; `pgitops validate
//! --config FILE` checks a file. Secrets are never written here: tokens and webhook secrets are
//! named by environment variable or file.
//!
//! In: the file's text. Out: a [`Config`] whose closed sets (executor kind, `become`, forge kind,
//! log format, window class) are enums and whose cron schedules and time zone are parsed
//! ([`schedule`]), so a bad value refuses the file at load with its line and column, and nothing
//! downstream parses or falls back again. [`Reporter::settings`] maps a `[[reporter]]` table onto
//! the forge reporter's own settings.
//!
//! ```toml
//! [repository]
//! remote = "/srv/git/pigsty.git"   # local path, file://, ssh:// or https://
//! branch = "main"
//! inventory = "pigsty.yml"
//! poll_seconds = 15
//! verify = "ssh"                    # every applied commit signed: ssh | gpg | off (default)
//! allowed_signers = "/etc/pgitops/allowed_signers"   # gpg: keyring = "/etc/pgitops/trusted.gpg"
//! unverified = "block"              # or "stop": apply up to the last verified commit
//!
//! [executor]
//! ssh_user = "root"
//! identity = "/etc/pgitops/id_ed25519"
//! known_hosts = "/etc/pgitops/known_hosts"
//!
//! [schedule]
//! timezone = "UTC"
//! resync = "0 */30 * * * *"        # cron, with seconds
//! leaders = "*/10 * * * * *"        # the leader watch: off when unset
//! [[schedule.window]]               # destructive actions only Sundays 02:00-04:00
//! class = "destructive"
//! start = "0 0 2 * * Sun"
//! minutes = 120
//!
//! [[reporter]]
//! kind = "github"                   # github | gitea | gitlab
//! url = "https://api.github.com"
//! repo = "acme/pg-inventory"        # gitlab: the project id
//! token_env = "GITHUB_TOKEN"
//!
//! [pulls]                           # plans on pull requests: see [`Pulls`]
//! enabled = true
//!
//! [http]                            # the listener and its bounds: see [`Http`]
//! listen = "127.0.0.1:9187"
//! hook_secret_env = "PGITOPS_HOOK_SECRET"
//! max_connections = 64
//!
//! [ha]                              # several instances, one leader: see [`Ha`]
//! etcd = ["http://10.10.10.10:2379"]
//! ```

mod ha;
mod http;
mod pulls;
pub mod schedule;
mod verify;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::execute::native::supervise::SupervisorChoice;
use crate::execute::Become;
use crate::report::forge::{self, ForgeKind};
pub use ha::Ha;
pub use http::Http;
pub use pulls::Pulls;
pub use schedule::{Schedule, Window, WindowClass};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub repository: Repository,
    #[serde(default)]
    pub state: State,
    #[serde(default)]
    pub executor: Executor,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub http: Http,
    #[serde(default, rename = "reporter")]
    pub reporters: Vec<Reporter>,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub pulls: Pulls,
    /// Several instances coordinated by etcd (see [`Ha`]); `None`: this one runs alone.
    pub ha: Option<Ha>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repository {
    /// A local path, `file://`, `ssh://` or `https://` URL.
    pub remote: String,
    #[serde(default = "main")]
    pub branch: String,
    #[serde(default = "pigsty_yml")]
    pub inventory: String,
    #[serde(default = "fifteen")]
    pub poll_seconds: u64,
    /// https: a token in this environment variable, or file.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// ssh: the key used to fetch and push.
    pub ssh_key: Option<PathBuf>,
    /// Commit signatures every applied commit must carry: `ssh`, `gpg` or `off` (the default);
    /// see [`Repository::verification`].
    #[serde(default)]
    pub verify: crate::source::verify::Mode,
    /// `verify = "ssh"`: the allowed signers, in the format of git's `gpg.ssh.allowedSignersFile`.
    pub allowed_signers: Option<PathBuf>,
    /// `verify = "gpg"`: a keyring file for `gpgv` (`gpg --export KEY... > file`).
    pub keyring: Option<PathBuf>,
    /// At an unverified commit: `block` (default; nothing of the range) or `stop` (apply up to
    /// the last verified commit before it).
    #[serde(default)]
    pub unverified: crate::source::verify::OnUnverified,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    #[serde(default = "state_dir")]
    pub dir: PathBuf,
}

impl Default for State {
    fn default() -> Self {
        State { dir: state_dir() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Executor {
    /// `native` (pgitops reaches the nodes), `pigsty` (runs the playbooks of `pigsty_home`), or
    /// `auto` (native for what is native, the playbooks for the rest).
    #[serde(default)]
    pub kind: ExecutorKind,
    pub pigsty_home: Option<PathBuf>,
    #[serde(default = "ansible_playbook")]
    pub ansible_playbook: String,
    pub ssh_user: Option<String>,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub ssh_config: Option<PathBuf>,
    #[serde(default = "control_dir")]
    pub control_dir: PathBuf,
    #[serde(default, rename = "become")]
    /// How steps become the dbsu on a node: `runuser` (logged in as root), `sudo -n -u`, or
    /// `none` (the SSH user is the dbsu).
    pub become_method: Become,
    /// Overrides of the inventory's `pg_dbsu`, `pg_bin_dir` and the socket directory.
    pub dbsu: Option<String>,
    pub pg_bin: Option<String>,
    pub socket_dir: Option<String>,
    #[serde(default = "sixty")]
    pub timeout_seconds: u64,
    #[serde(default = "eight")]
    pub concurrency: usize,
    /// The supervisor of the daemons pgitops installs (etcd): `auto` (systemd when PID 1 is
    /// systemd, else runit when runsvdir supervises `runit_dir`), `systemd` or `runit`.
    #[serde(default)]
    pub supervisor: SupervisorChoice,
    /// The directory runsvdir supervises on the nodes (default /etc/service).
    #[serde(default = "runit_dir")]
    pub runit_dir: String,
}

fn runit_dir() -> String {
    crate::execute::native::supervise::DEFAULT_RUNIT_DIR.into()
}

impl Default for Executor {
    fn default() -> Self {
        toml::from_str("").expect("executor defaults")
    }
}

/// Who reaches the nodes: pgitops itself (`native`), Pigsty's playbooks (`pigsty`), or native
/// for what pgitops does natively and Pigsty's playbooks for the rest (`auto`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    #[default]
    Native,
    Pigsty,
    Auto,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reporter {
    /// `github`, `gitea` (also `forgejo`) or `gitlab`.
    pub kind: ForgeKind,
    /// API base URL, e.g. `https://api.github.com`, `https://gitea.example/api/v1`, `https://gitlab.example/api/v4`.
    pub url: String,
    /// `owner/name` (GitHub, Gitea) or the project id (GitLab).
    pub repo: String,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl Reporter {
    /// The forge reporter's settings for this table.
    pub fn settings(&self) -> forge::Settings {
        forge::Settings {
            kind: self.kind,
            url: self.url.clone(),
            repo: self.repo.clone(),
            token_env: self.token_env.clone(),
            token_file: self.token_file.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    #[serde(default)]
    pub format: LogFormat,
}

/// Log lines on stderr: `text` (default) or `json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn main() -> String {
    "main".into()
}
fn pigsty_yml() -> String {
    "pigsty.yml".into()
}
fn fifteen() -> u64 {
    15
}
fn sixty() -> u64 {
    60
}
fn eight() -> usize {
    8
}
fn state_dir() -> PathBuf {
    PathBuf::from("/var/lib/pgitops")
}
fn ansible_playbook() -> String {
    "ansible-playbook".into()
}
fn control_dir() -> PathBuf {
    PathBuf::from("/run/pgitops")
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let cfg: Config = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        cfg.check().map_err(invalid)?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), String> {
        if self.repository.remote.trim().is_empty() {
            return Err("`repository.remote` must name the Git remote".into());
        }
        if self.repository.poll_seconds == 0 {
            return Err("`repository.poll_seconds` must be at least 1".into());
        }
        self.repository.verification()?;
        if self.executor.kind != ExecutorKind::Native && self.executor.pigsty_home.is_none() {
            return Err(
                "`executor.kind = \"pigsty\"` and `\"auto\"` need `executor.pigsty_home`".into(),
            );
        }
        if self.schedule.windows.iter().any(|w| w.minutes == 0) {
            return Err("`schedule.window.minutes` must be at least 1".into());
        }
        self.http.check()?;
        self.pulls.check(self.reporters.len())?;
        if let Some(ha) = &self.ha {
            ha.check()?;
        }
        for r in &self.reporters {
            if r.token_env.is_none() && r.token_file.is_none() {
                return Err(format!(
                    "the {} reporter needs `token_env` or `token_file`",
                    r.kind.name()
                ));
            }
        }
        Ok(())
    }
}

/// A configuration from its text, checked as [`Config::load`] checks a file (for tests).
#[cfg(test)]
pub(crate) fn parse(text: &str) -> Result<Config, String> {
    let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
    cfg.check()?;
    Ok(cfg)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
