//! `pgitops plan`: diff two revisions and plan the actions.

use std::collections::BTreeSet;

use anyhow::{bail, Result};

use super::{errors, load_files, read_revision, RepoOptions};
use crate::diff::{self, Diff};
use crate::inventory::Diagnostic;
use crate::plan::{self, output::Report, Plan};
use crate::source::approvals;

/// A revision range as typed: `FROM..TO` or `TO` (FROM defaults to TO's first parent).
pub fn parse_range(range: Option<&str>) -> Result<(Option<String>, String)> {
    let Some(r) = range else {
        return Ok((None, "HEAD".into()));
    };
    match r.split_once("..") {
        Some((_, to)) if to.starts_with('.') => {
            bail!("`{r}`: symmetric ranges (A...B) are not supported; use FROM..TO")
        }
        Some((from, to)) => {
            let from = if from.is_empty() { "HEAD" } else { from };
            let to = if to.is_empty() { "HEAD" } else { to };
            Ok((Some(from.to_string()), to.to_string()))
        }
        None => Ok((None, r.to_string())),
    }
}

pub struct PlanRun {
    pub from: String,
    pub to: String,
    pub diff: Diff,
    pub plan: Plan,
    /// Errors of either revision: when not empty, nothing is planned.
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl PlanRun {
    pub fn report(&self) -> Report<'_> {
        Report {
            from: &self.from,
            to: &self.to,
            diff: &self.diff,
            plan: &self.plan,
            errors: &self.errors,
            warnings: &self.warnings,
        }
    }

    pub fn has_changes(&self) -> bool {
        !self.diff.is_empty() || !self.plan.actions.is_empty()
    }
}

pub fn plan(opts: &RepoOptions, range: Option<&str>) -> Result<PlanRun> {
    let started = std::time::Instant::now();
    let repo = opts.open()?;
    let (from_rev, to_rev) = parse_range(range)?;
    let to = repo.commit(&to_rev)?;
    let from = match from_rev {
        Some(f) => Some(repo.commit(&f)?.id),
        None => to.first_parent.clone(),
    };
    let from_label = from.clone().unwrap_or_else(|| "0".repeat(40));
    let mut run = PlanRun {
        from: from_label,
        to: to.id.clone(),
        diff: Diff::default(),
        plan: Plan::default(),
        errors: vec![],
        warnings: vec![],
    };
    // The two revisions are read and loaded independently: one thread each (git2 handles are
    // per thread, so the second thread opens its own).
    let (old, new) = std::thread::scope(|s| {
        let old = s.spawn(|| -> Result<_> {
            let Some(f) = &from else {
                return Ok(load_files(None, ""));
            };
            let files = read_revision(&opts.open()?, opts, f, true)?;
            Ok(load_files(files.as_ref(), f))
        });
        let new = read_revision(&repo, opts, &to.id, false)
            .map(|files| load_files(files.as_ref(), &to.id));
        (old.join().expect("loading thread panicked"), new)
    });
    let (old, new) = (old?, new?);
    tracing::debug!(
        ms = started.elapsed().as_secs_f64() * 1e3,
        "loaded both revisions"
    );
    run.errors = errors(&old);
    run.errors.extend(errors(&new));
    let (Ok(old), Ok(new)) = (old, new) else {
        return Ok(run);
    };
    run.warnings = new.warnings().cloned().collect();
    if !run.errors.is_empty() {
        return Ok(run);
    }
    let approved: BTreeSet<String> = repo
        .commits_between(from.as_deref(), &to.id)?
        .iter()
        .flat_map(|c| approvals(&c.message).collect::<Vec<_>>())
        .collect();
    tracing::debug!(
        ms = started.elapsed().as_secs_f64() * 1e3,
        "loaded both revisions"
    );
    let t = std::time::Instant::now();
    run.diff = diff::diff(&old, &new);
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        changes = run.diff.changes.len(),
        "diffed"
    );
    run.plan = plan::build(&run.diff, &old, &new, &approved);
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        actions = run.plan.actions.len(),
        "planned"
    );
    // Freeing two large inventories takes a while; let it happen off the caller's path (a CLI
    // exits before it is done, which is fine).
    std::thread::spawn(move || drop((old, new)));
    Ok(run)
}
