//! `pgitops drift`: arguments (the repository's, and how to reach the nodes, as `apply` takes
//! them), the text or JSON report, and the exit code: 0 no drift, 1 drift found (with
//! `--exit-code`), 2 a cluster could not be checked or the repository/configuration is wrong.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{emit, Output, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use pgitops::execute::settings::Overrides;
use pgitops::execute::Become;
use pgitops::ops::executor::{self, ExecutorSettings};
use pgitops::ops::RepoOptions;

#[derive(Args)]
pub struct DriftArgs {
    /// Only this cluster.
    #[arg(long)]
    cluster: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
    /// Exit 1 when drift is found, 0 when there is none.
    #[arg(long)]
    exit_code: bool,
    /// Read the nodes on this machine instead of over SSH.
    #[arg(long)]
    local: bool,
    /// SSH login user (default: the inventory's `ansible_user`, else ssh's own default).
    #[arg(long)]
    ssh_user: Option<String>,
    #[arg(long)]
    identity: Option<PathBuf>,
    /// known_hosts file; host keys are checked strictly.
    #[arg(long)]
    known_hosts: Option<PathBuf>,
    /// ssh client configuration file.
    #[arg(long)]
    ssh_config: Option<PathBuf>,
    /// Close SSH master connections at exit instead of keeping them up for the next run.
    #[arg(long)]
    no_ssh_reuse: bool,
    /// Directory for SSH control sockets (keep it short).
    #[arg(long, default_value = "/tmp/pgitops-ssh")]
    control_dir: PathBuf,
    /// How to run as the dbsu: runuser (root login), sudo, or none (the login user is the dbsu).
    #[arg(long, default_value = "runuser", value_parser = ["runuser", "sudo", "none"])]
    r#become: String,
    /// The dbsu on every host (default: the inventory's `pg_dbsu`, else postgres).
    #[arg(long)]
    dbsu: Option<String>,
    /// PostgreSQL's bin directory on every host (default: the inventory's `pg_bin_dir`).
    #[arg(long)]
    pg_bin: Option<String>,
    /// PostgreSQL's socket directory on every host (default /var/run/postgresql).
    #[arg(long)]
    socket_dir: Option<String>,
    /// Seconds for one read on one host.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Clusters checked at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

pub async fn drift(opts: &RepoOptions, a: DriftArgs) -> anyhow::Result<u8> {
    let (exec, runner) = executor::build(ExecutorSettings {
        local: a.local,
        ssh_user: a.ssh_user,
        identity: a.identity,
        known_hosts: a.known_hosts,
        ssh_config: a.ssh_config,
        control_dir: a.control_dir,
        ssh_reuse: !a.no_ssh_reuse,
        become_method: match a.r#become.as_str() {
            "sudo" => Become::Sudo,
            "none" => Become::None,
            _ => Become::Runuser,
        },
        pg: Overrides {
            dbsu: a.dbsu,
            bin_dir: a.pg_bin,
            socket_dir: a.socket_dir,
        },
        timeout: Duration::from_secs(a.timeout),
        concurrency: a.concurrency,
        supervision: Default::default(),
        pigsty: None,
    });
    let found = pgitops::ops::drift::drift(
        opts,
        a.cluster.as_deref(),
        Some("HEAD"),
        &runner,
        &exec,
        None,
    )
    .await;
    runner.close().await;
    let found = found?;
    let objects: usize = found.iter().map(|d| d.objects()).sum();
    let failed = found.iter().any(|d| d.error.is_some());
    match a.output {
        Output::Json => {
            let doc = serde_json::json!({ "drifted": objects, "clusters": found });
            emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
        }
        Output::Text => {
            let text: String = found.iter().map(|d| d.text()).collect();
            emit(if found.is_empty() {
                "no applied cluster\n"
            } else {
                &text
            });
        }
    }
    Ok(if failed {
        EXIT_ERROR
    } else if a.exit_code && objects > 0 {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
