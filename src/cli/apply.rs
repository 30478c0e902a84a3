//! `pgitops apply`: arguments, the SSH and PostgreSQL settings, and the report.

use std::path::PathBuf;

use clap::Args;

use super::{emit, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use pgitops::execute::{ActionResult, ExecutorUsed, Status};
use pgitops::ops::apply::{apply_then, ApplyOptions};
use pgitops::ops::executor::{self, PigstySettings};
use pgitops::ops::RepoOptions;

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
    #[command(flatten)]
    nodes: super::nodes::NodeArgs,
    /// Verify commit signatures as this service configuration's `[repository] verify` says.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub async fn apply(opts: &RepoOptions, a: ApplyArgs) -> anyhow::Result<u8> {
    let pigsty = a.pigsty_home.map(|home| PigstySettings {
        home,
        ansible_playbook: a.ansible_playbook,
        native_first: a.native_first,
    });
    let (exec, runner) = executor::build(a.nodes.settings(pigsty));
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
