//! `pgitops plan`: diff two revisions and plan the actions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{bail, Result};

use super::loads::{self, LoadCache, Shared};
use super::verified::{approval_commits, gate, note_approvals, Held};
use super::{load_files, read_revision, RepoOptions};
use crate::diff::{self, Diff};
use crate::inventory::{self, Diagnostic, Inventory};
use crate::plan::{self, output::Report, Plan};
use crate::report::state::State;
use crate::source::{approvals, CommitInfo, Repo};

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
    /// Both inventories, for an executor (absent when there were errors).
    pub inventories: Option<(Arc<Inventory>, Arc<Inventory>)>,
    /// An unverified commit in the range (`[repository] verify`): blocked (nothing planned) or
    /// stopped at the last verified commit (`to` is that commit).
    pub held: Option<Held>,
    /// `pgitops approve` notes not counted because commit verification is on and no allowed
    /// key signed them: `<action> on <sha> (<why>)`.
    pub ignored_approvals: Vec<String>,
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

    /// Keeps only the changes and actions of the named clusters.
    pub fn retain_clusters(&mut self, keep: impl Fn(&str) -> bool) {
        self.diff.changes.retain(|c| keep(&c.cluster));
        self.plan.actions.retain(|a| keep(&a.cluster));
        self.plan.warnings.retain(|w| keep(&w.cluster));
    }
}

/// `pgitops plan`: FROM defaults to what was applied (the state in `state_dir`, when there is
/// one), else to TO's first parent.
pub fn plan(opts: &RepoOptions, range: Option<&str>) -> Result<PlanRun> {
    let repo = opts.open()?;
    let (from_rev, to_rev) = parse_range(range)?;
    let to = repo.commit(&to_rev)?;
    let state = State::load(&opts.state_dir(&repo))?;
    let from = match from_rev {
        Some(f) => Some(repo.commit(&f)?.id),
        None if !state.clusters.is_empty() => applied_base(&state),
        None => to.first_parent.clone(),
    };
    let run = plan_between(
        &repo,
        opts,
        from.as_deref(),
        &to,
        &state.created_ids(),
        None,
    )?;
    Ok(run)
}

/// The commit most clusters were last applied at (ties: the first in name order).
pub fn applied_base(state: &State) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in state.clusters.values() {
        if let Some(sha) = &c.last_applied {
            *counts.entry(sha).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(sha, _)| sha.to_string())
}

/// Plans `from..to` (`from` None: from the empty inventory). `created`: objects pgitops created.
/// `cache`: loads kept between plans (the service's); a revision found there is not loaded
/// again, and both revisions are kept there afterwards.
pub fn plan_between(
    repo: &Repo,
    opts: &RepoOptions,
    from: Option<&str>,
    to: &CommitInfo,
    created: &BTreeSet<String>,
    cache: Option<&LoadCache>,
) -> Result<PlanRun> {
    let started = std::time::Instant::now();
    // With `[repository] verify` on, the range is cut or blocked at an unverified commit.
    let (to, held) = gate(repo, &opts.verify, from, to)?;
    let to = &to;
    let mut run = PlanRun {
        from: from.map(str::to_string).unwrap_or_else(|| "0".repeat(40)),
        to: to.id.clone(),
        diff: Diff::default(),
        plan: Plan::default(),
        errors: vec![],
        warnings: vec![],
        inventories: None,
        held,
        ignored_approvals: vec![],
    };
    if run.held.as_ref().is_some_and(Held::blocked) {
        return Ok(run);
    }
    let (old, new) = load_both(repo, opts, from, &to.id, cache)?;
    tracing::debug!(
        ms = started.elapsed().as_secs_f64() * 1e3,
        "loaded both revisions"
    );
    let from_label = from.unwrap_or("");
    run.errors = loads::errors(&old, from_label);
    run.errors.extend(loads::errors(&new, &to.id));
    let (Ok(old), Ok(new)) = (old, new) else {
        return Ok(run);
    };
    run.warnings = loads::warnings(&new, &to.id);
    if !run.errors.is_empty() {
        return Ok(run);
    }
    // Approvals: `Pgitops-Approve` trailers and `pgitops approve` notes on the range's commits
    // (with verification on, every commit here is verified, and a note counts only when an
    // allowed key signed it: git does not sign notes).
    let mut approved: BTreeSet<String> = BTreeSet::new();
    for c in approval_commits(repo, &opts.verify, from, to)? {
        approved.extend(approvals(&c.message));
        let (counted, ignored) = note_approvals(repo, &opts.verify, &c.id);
        approved.extend(counted);
        run.ignored_approvals.extend(ignored);
    }
    let t = std::time::Instant::now();
    run.diff = diff::diff(&old, &new);
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        changes = run.diff.changes.len(),
        "diffed"
    );
    run.plan = plan::build(&run.diff, &old, &new, &approved, created);
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        actions = run.plan.actions.len(),
        "planned"
    );
    run.inventories = Some((old, new));
    Ok(run)
}

/// Loads `from` (None: the empty inventory) and `to`: from `cache` when kept there, once when
/// both hold the same inventory files, else one thread each (git2 handles are per thread, so
/// the second thread opens its own repository).
fn load_both(
    repo: &Repo,
    opts: &RepoOptions,
    from: Option<&str>,
    to: &str,
    cache: Option<&LoadCache>,
) -> Result<(Shared, Shared)> {
    let kept = |rev: &str| cache.and_then(|c| c.get(rev, &opts.inventory));
    let (old_kept, new_kept) = (from.and_then(kept), kept(to));
    let (old, new) = match (from, old_kept, new_kept) {
        (None, _, Some(new)) => (Ok(Arc::new(Inventory::empty(""))), new),
        (Some(_), Some(old), Some(new)) => (old, new),
        (Some(_), Some(old), None) => (old, load_shared(repo, opts, to, false)?),
        (Some(f), None, Some(new)) => (load_shared(repo, opts, f, true)?, new),
        (None, _, None) => (
            Ok(Arc::new(Inventory::empty(""))),
            load_shared(repo, opts, to, false)?,
        ),
        (Some(f), None, None) => {
            let (old_files, new_files) = std::thread::scope(|s| {
                let old = s.spawn(|| read_revision(&opts.open()?, opts, f, true));
                let new = read_revision(repo, opts, to, false);
                (old.join().expect("reading thread panicked"), new)
            });
            let (old_files, new_files) = (old_files?, new_files?);
            if old_files.is_some() && old_files == new_files {
                // The same inventory files (a commit that changed something else): one load.
                let both = share(load_files(new_files.as_ref(), to));
                (both.clone(), both)
            } else if let (Some(o), Some(n)) = (&old_files, &new_files) {
                let (old, new) = inventory::load_pair((o, f), (n, to));
                (share(old), share(new))
            } else {
                std::thread::scope(|s| {
                    let old = s.spawn(|| share(load_files(old_files.as_ref(), f)));
                    let new = share(load_files(new_files.as_ref(), to));
                    (old.join().expect("loading thread panicked"), new)
                })
            }
        }
    };
    if let Some(c) = cache {
        if let Some(f) = from {
            c.put(f, &opts.inventory, &old);
        }
        c.put(to, &opts.inventory, &new);
    }
    Ok((old, new))
}

fn load_shared(
    repo: &Repo,
    opts: &RepoOptions,
    rev: &str,
    missing_is_empty: bool,
) -> Result<Shared> {
    let files = read_revision(repo, opts, rev, missing_is_empty)?;
    Ok(share(load_files(files.as_ref(), rev)))
}

fn share(loaded: super::Loaded) -> Shared {
    loaded.map(Arc::new)
}
