//! The command line: parse arguments, call one op, render, map the outcome to an exit code.
//!
//! Exit codes: 0 ok / no changes; 1 changes found (`plan --exit-code`, `drift --exit-code`); 2 usage, configuration,
//! repository or inventory error (the inventory does not parse or fails validation; `render`:
//! an unknown file name, a host that is not in the inventory or not in a PGSQL cluster, or a
//! file that cannot be rendered).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod apply;
mod drift;
mod nodes;
mod records;
mod render;
mod verify;

use pgitops::ops::{self, RepoOptions};
use pgitops::plan::{markdown, output};

pub const EXIT_OK: u8 = 0;
pub const EXIT_CHANGES: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "pgitops",
    version,
    about = "GitOps for Pigsty PostgreSQL inventories: plan and apply only what a commit changed"
)]
struct Cli {
    /// The Git repository holding the inventory.
    #[arg(long, global = true, default_value = ".")]
    repo: PathBuf,
    /// Inventory inside the repository: a file, or a directory in Ansible split layout
    /// (hosts.yml + group_vars/ + host_vars/).
    #[arg(long, global = true, default_value = "pigsty.yml")]
    inventory: String,
    /// Where apply state is kept (default: `<git dir>/pgitops`).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// `plan --output`: the text and JSON forms, and the Markdown document a pull request comment
/// holds (at most GitHub's 65,536 characters).
#[derive(Clone, Copy, ValueEnum)]
enum PlanOutput {
    Text,
    Json,
    Markdown,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a commit range changes and the actions it needs.
    Plan {
        /// `FROM..TO` or `TO` (default HEAD). FROM defaults to the commit most clusters were
        /// last applied at (the state directory), else TO's first parent.
        range: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: PlanOutput,
        /// Exit 1 when there are changes, 0 when there are none.
        #[arg(long)]
        exit_code: bool,
        /// Verify commit signatures as this service configuration's `[repository] verify`
        /// says (pgitops.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Apply a commit range natively over SSH and record the result as a git note.
    Apply(Box<apply::ApplyArgs>),
    /// Each applied cluster's live state against the inventory of its last applied commit.
    Drift(Box<drift::DriftArgs>),
    /// Per cluster: last applied and attempted commits, state, actions awaiting approval.
    Status {
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Apply runs recorded in the git notes, newest first.
    History {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Approve a held destructive action on a commit (recorded in its git note).
    Approve {
        /// The commit whose apply holds the action.
        rev: String,
        /// The action id, e.g. `pg-meta/database/meta2/drop`.
        action: String,
        /// Sign the approval with this SSH private key (namespace `pgitops-approve`): with
        /// `[repository] verify` on, only approvals signed by an allowed key count.
        #[arg(long, conflicts_with = "gpg_key")]
        ssh_key: Option<PathBuf>,
        /// Sign the approval with this GPG key (id or fingerprint in your keyring).
        #[arg(long)]
        gpg_key: Option<String>,
    },
    /// Run the sync service: pull, apply what changed, report on the commits.
    Serve {
        #[arg(long, default_value = "/etc/pgitops/pgitops.toml")]
        config: PathBuf,
    },
    /// Print the exact file pgitops writes on a host (e.g. `render --host 10.10.10.10
    /// pg_hba.conf`), for the host's declared pg_role.
    Render(render::RenderArgs),
    /// Check the inventory of a revision (default HEAD).
    Validate {
        rev: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Check this service configuration (pgitops.toml) instead of an inventory.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// The parsed command line.
pub struct Args(Cli);

/// Parses the command line (exits on `--help`, `--version` and usage errors).
pub fn parse() -> Args {
    Args(Cli::parse())
}

impl Args {
    /// Whether the command only reads the local repository: no fetch, push or HTTPS request, so
    /// libgit2 needs no CA roots (see `pgitops::source::offline`).
    pub fn is_offline(&self) -> bool {
        matches!(
            self.0.command,
            Command::Plan { .. }
                | Command::Status { .. }
                | Command::History { .. }
                | Command::Validate { .. }
                | Command::Render(_)
        )
    }
}

/// Runs one command on the caller's runtime.
pub async fn main(Args(cli): Args) -> ExitCode {
    // The service's configuration may ask for JSON logs (`[log] format = "json"`).
    let json = match &cli.command {
        Command::Serve { config } => pgitops::config::Config::load(config)
            .is_ok_and(|c| c.log.format == pgitops::config::LogFormat::Json),
        _ => false,
    };
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PGITOPS_LOG"));
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
    let mut opts = RepoOptions {
        state_dir: cli.state_dir,
        repo: cli.repo,
        inventory: cli.inventory,
        verify: Default::default(),
    };
    if let Err(e) = verify::configure(&mut opts, &cli.command) {
        eprintln!("pgitops: error: {}", chain_once(&e));
        return ExitCode::from(EXIT_ERROR);
    }
    let result = match cli.command {
        Command::Plan {
            range,
            output,
            exit_code,
            ..
        } => plan(&opts, range.as_deref(), output, exit_code),
        Command::Apply(args) => apply::apply(&opts, *args).await,
        Command::Drift(args) => drift::drift(&opts, *args).await,
        Command::Serve { config } => {
            let shutdown = crate::daemon::Shutdown::new();
            tokio::spawn(crate::daemon::on_signals(shutdown.clone()));
            crate::daemon::serve(&config, shutdown)
                .await
                .map(|()| EXIT_OK)
        }
        Command::Status { output } => records::status(&opts, "HEAD", output),
        Command::History { cluster, output } => {
            records::history(&opts, "HEAD", cluster.as_deref(), output)
        }
        Command::Approve {
            rev,
            action,
            ssh_key,
            gpg_key,
        } => records::approve(&opts, &rev, &action, verify::signer(ssh_key, gpg_key)),
        Command::Render(args) => render::render(&opts, &args),
        Command::Validate {
            config: Some(path), ..
        } => pgitops::config::Config::load(&path)
            .map(|_| {
                emit(&format!("{}: valid\n", path.display()));
                EXIT_OK
            })
            .map_err(Into::into),
        Command::Validate {
            rev,
            output,
            config: None,
        } => validate(&opts, rev.as_deref().unwrap_or("HEAD"), output),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("pgitops: error: {}", chain_once(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn plan(
    opts: &RepoOptions,
    range: Option<&str>,
    out: PlanOutput,
    exit_code: bool,
) -> anyhow::Result<u8> {
    let run = ops::plan::plan(opts, range)?;
    let report = run.report();
    match out {
        PlanOutput::Json if opts.verify.is_on() => verify::write_json(&run)?,
        PlanOutput::Json => {
            // A closed stdout (`| head`) is not an error of the plan.
            let _ = output::write_json(&report, std::io::stdout().lock());
        }
        PlanOutput::Markdown => {
            let rest = format!(
                "`pgitops plan --output text {}..{}`",
                report.from, report.to
            );
            let held: Vec<String> = run
                .held
                .iter()
                .map(|h| format!("**Signature check:** {}", markdown::code(&h.message)))
                .collect();
            emit(&markdown::markdown(
                &report,
                &held,
                markdown::GITHUB_COMMENT_LIMIT,
                &rest,
            ));
        }
        PlanOutput::Text => {
            let text = output::text(&report, std::io::stdout().is_terminal());
            // A blocked range has no plan to show: only why.
            match (verify::print(&run), run.errors.is_empty()) {
                (true, _) => {}
                (false, true) => emit(&text),
                (false, false) => eprint!("{text}"),
            }
        }
    }
    let code = if !run.errors.is_empty() || run.held.as_ref().is_some_and(|h| h.blocked()) {
        EXIT_ERROR
    } else if exit_code && run.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    };
    // The process exits next; freeing two large inventories first would only cost time.
    std::mem::forget(run);
    Ok(code)
}

fn validate(opts: &RepoOptions, rev: &str, out: Output) -> anyhow::Result<u8> {
    let v = ops::validate::validate(opts, rev)?;
    let valid = v.errors.is_empty();
    match out {
        Output::Json => {
            let doc = serde_json::json!({ "commit": v.commit, "valid": valid, "errors": v.errors, "warnings": v.warnings });
            emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
        }
        Output::Text => {
            for d in v.errors.iter().chain(&v.warnings) {
                eprintln!("{d}");
            }
            let verdict = if valid { "valid" } else { "INVALID" };
            emit(&format!(
                "{} at {}: {verdict} ({} hosts, {} PGSQL clusters, {} errors, {} warnings)\n",
                opts.inventory,
                &v.commit[..12],
                v.hosts,
                v.clusters,
                v.errors.len(),
                v.warnings.len()
            ));
        }
    }
    // The process exits next; freeing a large inventory first would only cost time.
    std::mem::forget(v);
    Ok(if valid { EXIT_OK } else { EXIT_ERROR })
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub(crate) fn emit(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// An error and its causes, `: `-joined, each said once: a cause whose text the message so far
/// already holds (libraries that print their source inside their own message) is left out.
fn chain_once(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod chain_tests {
    #[test]
    fn each_cause_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("etcd: {0}")]
        struct Wrapper(#[source] std::io::Error);
        let inner = std::io::Error::other("authentication failed");
        let e = anyhow::Error::new(Wrapper(inner)).context("connecting to etcd at x");
        assert_eq!(
            super::chain_once(&e),
            "connecting to etcd at x: etcd: authentication failed"
        );
        let plain = anyhow::anyhow!("disk full").context("writing the note");
        assert_eq!(super::chain_once(&plain), "writing the note: disk full");
    }
}
