//! How the CLI reaches the nodes: the SSH, `become` and PostgreSQL options `apply` and `drift`
//! share (flattened into both), turned into the executor's settings in one place.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use pgitops::execute::native::supervise::{Supervision, SupervisorChoice};
use pgitops::execute::settings::Overrides;
use pgitops::execute::Become;
use pgitops::ops::executor::{ExecutorSettings, PigstySettings};

#[derive(Clone, Copy, clap::ValueEnum)]
enum BecomeArg {
    Runuser,
    Sudo,
    None,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SupervisorArg {
    Auto,
    Systemd,
    Runit,
}

#[derive(Args)]
pub struct NodeArgs {
    /// Run the steps on this machine instead of over SSH (the local executor).
    #[arg(long)]
    local: bool,
    /// SSH login user (default: the inventory's `ansible_user`, else ssh's own default).
    #[arg(long)]
    ssh_user: Option<String>,
    #[arg(long)]
    identity: Option<PathBuf>,
    /// known_hosts file; host keys are checked strictly (an unknown or changed key is refused).
    #[arg(long)]
    known_hosts: Option<PathBuf>,
    /// ssh client configuration file.
    #[arg(long)]
    ssh_config: Option<PathBuf>,
    /// Close SSH master connections at exit instead of keeping them up for a minute for the
    /// next run (a changed known_hosts file never resumes an old connection).
    #[arg(long)]
    no_ssh_reuse: bool,
    /// Directory for SSH control sockets (keep it short).
    #[arg(long, default_value = "/tmp/pgitops-ssh")]
    control_dir: PathBuf,
    /// How to run as the dbsu: runuser (root login), sudo, or none (the login user is the dbsu).
    #[arg(long, value_enum, default_value = "runuser")]
    r#become: BecomeArg,
    /// The dbsu on every host (default: the inventory's `pg_dbsu`, else postgres).
    #[arg(long)]
    dbsu: Option<String>,
    /// PostgreSQL's bin directory on every host (default: the inventory's `pg_bin_dir`, else
    /// /usr/pgsql/bin).
    #[arg(long)]
    pg_bin: Option<String>,
    /// PostgreSQL's socket directory on every host (default /var/run/postgresql).
    #[arg(long)]
    socket_dir: Option<String>,
    /// Seconds for one step on one host.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Clusters handled at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// The supervisor of the daemons pgitops installs (etcd): auto (systemd when PID 1 is
    /// systemd, else runit when runsvdir supervises --runit-dir), systemd or runit.
    #[arg(long, value_enum, default_value = "auto")]
    supervisor: SupervisorArg,
    /// The directory runsvdir supervises on the nodes.
    #[arg(long, default_value = "/etc/service")]
    runit_dir: String,
}

impl NodeArgs {
    /// The executor's settings; `pigsty`: drive a Pigsty home too (apply only).
    pub fn settings(self, pigsty: Option<PigstySettings>) -> ExecutorSettings {
        ExecutorSettings {
            local: self.local,
            ssh_user: self.ssh_user,
            identity: self.identity,
            known_hosts: self.known_hosts,
            ssh_config: self.ssh_config,
            control_dir: self.control_dir,
            ssh_reuse: !self.no_ssh_reuse,
            become_method: match self.r#become {
                BecomeArg::Runuser => Become::Runuser,
                BecomeArg::Sudo => Become::Sudo,
                BecomeArg::None => Become::None,
            },
            pg: Overrides {
                dbsu: self.dbsu,
                bin_dir: self.pg_bin,
                socket_dir: self.socket_dir,
            },
            timeout: Duration::from_secs(self.timeout),
            concurrency: self.concurrency,
            supervision: Supervision {
                choice: match self.supervisor {
                    SupervisorArg::Auto => SupervisorChoice::Auto,
                    SupervisorArg::Systemd => SupervisorChoice::Systemd,
                    SupervisorArg::Runit => SupervisorChoice::Runit,
                },
                runit_dir: self.runit_dir,
            },
            pigsty,
        }
    }
}
