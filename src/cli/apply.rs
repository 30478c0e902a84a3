//! `pgitops apply`: arguments, the SSH and PostgreSQL settings, and the report.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{emit, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use pgitops::execute::native::supervise::{Supervision, SupervisorChoice};
use pgitops::execute::settings::Overrides;
use pgitops::execute::{ActionResult, Become, ExecutorUsed, Status};
use pgitops::ops::apply::{apply_then, ApplyOptions};
use pgitops::ops::executor::{self, ExecutorSettings, PigstySettings};
use pgitops::ops::RepoOptions;

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
pub struct ApplyArgs {
    /// `FROM..TO` or `TO` (default HEAD; FROM defaults to what each cluster was last applied at).
    range: Option<String>,
    /// Only this cluster.
    #[arg(long)]
    cluster: Option<String>,
    /// Plan and show what would run; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Converge everything TO declares (repairs drift); destructive actions are left out.
    #[arg(long)]
    resync: bool,
    /// Run the steps on this machine instead of over SSH (the local executor).
    #[arg(long)]
    local: bool,
    /// Drive an existing Pigsty installation (its home directory) instead of the native steps:
    /// each action runs the narrowest Pigsty playbook, then is checked in the catalogs.
    #[arg(long)]
    pigsty_home: Option<PathBuf>,
    /// With `--pigsty-home`: run natively what pgitops does natively (users, databases, HBA,
    /// parameters, ...) and only the rest through Pigsty's playbooks (`executor.kind = "auto"`).
    #[arg(long, requires = "pigsty_home")]
    native_first: bool,
    /// The ansible-playbook program for `--pigsty-home`.
    #[arg(long, default_value = "ansible-playbook")]
    ansible_playbook: String,
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
    /// Clusters applied at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// The supervisor of the daemons pgitops installs (etcd): auto (systemd when PID 1 is
    /// systemd, else runit when runsvdir supervises --runit-dir), systemd or runit.
    #[arg(long, value_enum, default_value = "auto")]
    supervisor: SupervisorArg,
    /// The directory runsvdir supervises on the nodes.
    #[arg(long, default_value = "/etc/service")]
    runit_dir: String,
    /// Verify commit signatures as this service configuration's `[repository] verify` says.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub async fn apply(opts: &RepoOptions, a: ApplyArgs) -> anyhow::Result<u8> {
    let (exec, runner) = executor::build(ExecutorSettings {
        local: a.local,
        ssh_user: a.ssh_user,
        identity: a.identity,
        known_hosts: a.known_hosts,
        ssh_config: a.ssh_config,
        control_dir: a.control_dir,
        ssh_reuse: !a.no_ssh_reuse,
        become_method: match a.r#become {
            BecomeArg::Runuser => Become::Runuser,
            BecomeArg::Sudo => Become::Sudo,
            BecomeArg::None => Become::None,
        },
        pg: Overrides {
            dbsu: a.dbsu,
            bin_dir: a.pg_bin,
            socket_dir: a.socket_dir,
        },
        timeout: Duration::from_secs(a.timeout),
        concurrency: a.concurrency,
        supervision: Supervision {
            choice: match a.supervisor {
                SupervisorArg::Auto => SupervisorChoice::Auto,
                SupervisorArg::Systemd => SupervisorChoice::Systemd,
                SupervisorArg::Runit => SupervisorChoice::Runit,
            },
            runit_dir: a.runit_dir,
        },
        pigsty: a.pigsty_home.map(|home| PigstySettings {
            home,
            ansible_playbook: a.ansible_playbook,
            native_first: a.native_first,
        }),
    });
    let runner = std::sync::Arc::new(runner);
    let options = ApplyOptions {
        range: a.range,
        cluster: a.cluster,
        skip: Default::default(),
        resync: a.resync,
        dry_run: a.dry_run,
        exec,
        cache: None,
    };
    // The report is out as soon as the actions have run, before the note and the state are
    // written: nothing applied goes unreported, whatever happens to the records.
    let done = apply_then(opts, options, &runner, |results| emit(&report(results))).await;
    runner.close().await;
    let done = done?;
    let mut text = String::new();
    for run in &done.runs {
        for e in &run.errors {
            text.push_str(&format!("{e}\n"));
        }
    }
    if done.runs.iter().any(|r| !r.errors.is_empty()) {
        eprintln!("{text}Nothing applied: the inventory has errors.");
        return Ok(EXIT_ERROR);
    }
    let held = super::verify::held(&done.runs);
    if a.dry_run {
        for run in &done.runs {
            text.push_str(&pgitops::plan::output::text(&run.report(), false));
        }
        emit(&text);
        return Ok(if done.runs.iter().any(|r| r.has_changes()) {
            EXIT_CHANGES
        } else {
            EXIT_OK
        });
    }
    if let Some(note) = done.note.as_ref().filter(|_| done.unrecorded.is_none()) {
        text.push_str(&format!(
            "{}: {} ({} actions, {} ms); note written to refs/notes/pgitops\n",
            &note.commit[..12],
            note.result,
            done.results.len(),
            note.ms
        ));
    }
    emit(&text);
    if let Some(why) = &done.unrecorded {
        eprintln!("pgitops: error: the results above were not recorded: {why}");
        return Ok(EXIT_CHANGES);
    }
    let failed = done.failed() || done.results.iter().any(|r| r.status == Status::Failed);
    Ok(match held {
        Some(code) if !failed => code,
        _ if failed => EXIT_CHANGES,
        _ => EXIT_OK,
    })
}

/// One block per action: its status, message and per-host results.
fn report(results: &[ActionResult]) -> String {
    let mut text = String::new();
    // Name the executor when Pigsty's playbooks ran anything (alone or with the native one).
    let mixed = results
        .iter()
        .any(|r| r.executor == Some(ExecutorUsed::Pigsty));
    for r in results {
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let by = match (r.executor, mixed) {
            (Some(ExecutorUsed::Native), true) => " by native",
            (Some(ExecutorUsed::Pigsty), true) => " by pigsty",
            _ => "",
        };
        text.push_str(&format!("[{status}] {} ({} ms){by}\n", r.id, r.ms));
        if !r.message.is_empty() {
            text.push_str(&format!("    {}\n", r.message));
        }
        for h in &r.hosts {
            text.push_str(&format!(
                "    {} {}: {} ({} ms)\n",
                if h.ok { "ok" } else { "FAILED" },
                h.host,
                h.detail,
                h.ms
            ));
        }
    }
    text
}
