//! The executor's settings, as the CLI and `pgitops.toml` give them, turned into the
//! [`ExecConfig`] and [`Runner`] an apply uses: one function for both, so the CLI and the service
//! never disagree on a default. Per-host PostgreSQL settings come from the inventory
//! ([`crate::execute::settings`]); these only override them.

use std::path::PathBuf;
use std::time::Duration;

use crate::execute::pigsty::{AnsibleSsh, PigstyConfig};
use crate::execute::settings::Overrides;
use crate::execute::{Become, ExecConfig, Runner, SshOptions};

#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// Run the steps on this machine instead of over SSH.
    pub local: bool,
    pub ssh_user: Option<String>,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub ssh_config: Option<PathBuf>,
    pub control_dir: PathBuf,
    /// Keep SSH masters up after the process exits, for the next CLI run.
    pub ssh_reuse: bool,
    pub become_method: Become,
    pub pg: Overrides,
    /// One step on one host.
    pub timeout: Duration,
    /// Clusters applied at once.
    pub concurrency: usize,
    /// The Pigsty executor (alone, or after the native one with `native_first`).
    pub pigsty: Option<PigstySettings>,
    /// The supervisor of the daemons pgitops installs (`auto`: observed per node).
    pub supervision: crate::execute::native::supervise::Supervision,
}

#[derive(Debug, Clone)]
pub struct PigstySettings {
    pub home: PathBuf,
    pub ansible_playbook: String,
    /// `executor.kind = "auto"`: native for what is native, Pigsty for the rest.
    pub native_first: bool,
}

/// The execution settings and the connection runner for these settings.
pub fn build(s: ExecutorSettings) -> (ExecConfig, Runner) {
    let timeout = s.timeout.max(Duration::from_secs(1));
    // The Pigsty leg connects as the native one does (the local runner connects to nothing).
    let ssh = match s.local {
        true => AnsibleSsh::default(),
        false => AnsibleSsh {
            user: s.ssh_user.clone(),
            identity: s.identity.clone(),
            known_hosts: s.known_hosts.clone(),
            config_file: s.ssh_config.clone(),
        },
    };
    let runner = match s.local {
        true => Runner::Local,
        false => Runner::ssh(SshOptions {
            user: s.ssh_user,
            identity: s.identity,
            known_hosts: s.known_hosts,
            config_file: s.ssh_config,
            control_dir: s.control_dir,
            connect_timeout: Duration::from_secs(10).min(timeout),
            reuse: s.ssh_reuse,
        }),
    };
    let exec = ExecConfig {
        become_method: s.become_method,
        pg: s.pg,
        supervision: s.supervision,
        timeout,
        concurrency: s.concurrency.max(1),
        pigsty: s.pigsty.map(|p| PigstyConfig {
            home: p.home,
            ansible_playbook: p.ansible_playbook,
            native_first: p.native_first,
            old_inventory: None,
            new_inventory: PathBuf::new(),
            secrets: vec![],
            timeout: timeout * 10,
            ssh,
        }),
        ..ExecConfig::default()
    };
    (exec, runner)
}
