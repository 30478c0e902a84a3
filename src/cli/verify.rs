//! `--config` of `plan` and `apply`, and the key of `approve --ssh-key`/`--gpg-key`: commit signature verification as the service's
//! configuration says, and what an unverified commit did to the plan, on stderr (text) or in
//! the JSON document (`unverified`, `ignored_approvals`).

use std::path::{Path, PathBuf};

use super::{emit, Command, EXIT_CHANGES, EXIT_ERROR};
use pgitops::ops::plan::PlanRun;
use pgitops::ops::RepoOptions;
use pgitops::plan::output::short;
use pgitops::source::approval::Signer;

/// The key `approve --ssh-key` or `--gpg-key` signs with.
pub fn signer(ssh_key: Option<PathBuf>, gpg_key: Option<String>) -> Option<Signer> {
    ssh_key.map(Signer::Ssh).or(gpg_key.map(Signer::Gpg))
}

/// Sets `opts.verify` from the `--config` file of `plan` or `apply`.
pub fn configure(opts: &mut RepoOptions, command: &Command) -> anyhow::Result<()> {
    let path = match command {
        Command::Plan { config, .. } => config.as_deref(),
        Command::Apply(a) => a.config.as_deref(),
        _ => None,
    };
    if let Some(path) = path {
        opts.verify = settings(path)?;
    }
    Ok(())
}

fn settings(path: &Path) -> anyhow::Result<pgitops::source::verify::Settings> {
    let cfg = pgitops::config::Config::load(path)?;
    cfg.repository
        .verification()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The lines that say what verification held or left out of a plan.
fn lines(run: &PlanRun) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(h) = &run.held {
        out.push(match &h.stopped_at {
            None => format!(
                "unverified: {}; nothing of this range is planned",
                h.message
            ),
            Some(at) => format!(
                "unverified: {}; planned up to {}, the last verified commit",
                h.message,
                short(at)
            ),
        });
    }
    if !run.ignored_approvals.is_empty() {
        out.push(format!(
            "approval notes are not counted while commit verification is on unless an allowed key signed them: {} (sign with `pgitops approve --ssh-key` or `--gpg-key`, or approve with a `Pgitops-Approve:` trailer in a signed commit)",
            run.ignored_approvals.join(", ")
        ));
    }
    out
}

/// Prints a plan's verification lines on stderr; whether its range was blocked.
pub fn print(run: &PlanRun) -> bool {
    for l in lines(run) {
        eprintln!("{l}");
    }
    run.held.as_ref().is_some_and(|h| h.blocked())
}

/// The plan as JSON with `unverified` and `ignored_approvals` added.
pub fn write_json(run: &PlanRun) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    pgitops::plan::output::write_json(&run.report(), &mut buf)?;
    let mut doc: serde_json::Value = serde_json::from_slice(&buf)?;
    doc["unverified"] = serde_json::to_value(&run.held)?;
    doc["ignored_approvals"] = serde_json::to_value(&run.ignored_approvals)?;
    emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
    Ok(())
}

/// After an apply: prints what unverified commits held; the exit code they call for (2 when a
/// range was blocked, 1 when one was stopped short), if any.
pub fn held(runs: &[PlanRun]) -> Option<u8> {
    let mut code = None;
    for run in runs {
        let _ = print(run);
        if let Some(h) = &run.held {
            code = Some(match (h.blocked(), code) {
                (true, _) | (false, Some(EXIT_ERROR)) => EXIT_ERROR,
                (false, _) => EXIT_CHANGES,
            });
        }
    }
    code
}
