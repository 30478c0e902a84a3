//! `pgitops apply`: plan from what was applied, execute natively, record.
//!
//! FROM is the commit each cluster was last applied at (clusters applied at different commits
//! are planned in groups), or the empty inventory on the first apply. After execution, each
//! cluster's state advances to TO unless one of its actions failed or awaits approval (then the
//! next apply plans it again), the objects pgitops created are recorded, and the run is written
//! as a git note on TO. The results go to the caller ([`apply_then`]) before anything is
//! written, and the note is written before the state: a note that cannot be written never
//! advances the state (see [`Applied::unrecorded`]).
//!
//! With `[repository] verify` on, each group's range passes the signature gate
//! ([`super::verified`]) while it is planned: a blocked group runs nothing and keeps its state
//! (its clusters and the unverified commit are in the note on TO); a group stopped at its last
//! verified commit is executed, noted and recorded at that commit, and the note on TO says
//! where it stopped and why.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use super::apply_record::{instance, note_of, record};
use super::plan::{parse_range, plan_between, PlanRun};
use super::verified::Held;
use super::RepoOptions;
use crate::execute::{self, ActionResult, ExecConfig, Runner, Status};
use crate::report::note::{self, Run};
use crate::report::state::State;

pub struct ApplyOptions {
    pub range: Option<String>,
    pub cluster: Option<String>,
    /// Clusters left out of this run (the daemon's backoff).
    pub skip: BTreeSet<String>,
    /// A resync: converge everything TO declares (planned from the empty inventory) to repair
    /// drift; destructive actions are left out (they only ever run from a reviewed diff).
    pub resync: bool,
    pub dry_run: bool,
    pub exec: ExecConfig,
    /// Loads kept between runs (the service's): a revision kept there is not loaded again.
    pub cache: Option<Arc<super::loads::LoadCache>>,
}

pub struct Applied {
    /// One plan per group of clusters that share a base commit.
    pub runs: Vec<PlanRun>,
    pub results: Vec<ActionResult>,
    pub note: Option<Run>,
    /// Why the results could not all be recorded. The note is written first and the state only
    /// after it, so a failed note never advances the state: the next apply plans these actions
    /// again (each step is idempotent; destructive ones are journaled) and records them.
    pub unrecorded: Option<String>,
}

impl Applied {
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.status == Status::Failed)
            || self.runs.iter().any(|r| !r.errors.is_empty())
    }
}

/// Plans from what each cluster was last applied at, executes through `runner` (its connections
/// stay open for the caller: the CLI closes them, the service keeps them), records state and
/// the note.
pub async fn apply(opts: &RepoOptions, ao: ApplyOptions, runner: &Arc<Runner>) -> Result<Applied> {
    apply_then(opts, ao, runner, |_| {}).await
}

/// [`apply`], calling `executed` with the results as soon as the actions have run, before
/// anything is written: the CLI prints its report there, so a note or state that cannot be
/// written (a full disk, a read-only directory) never takes the report with it.
pub async fn apply_then(
    opts: &RepoOptions,
    ao: ApplyOptions,
    runner: &Arc<Runner>,
    executed: impl FnOnce(&[ActionResult]),
) -> Result<Applied> {
    let started = Instant::now();
    let repo = opts.open()?;
    let state_dir = opts.state_dir(&repo);
    let mut state = State::load(&state_dir)?;
    let (from_rev, to_rev) = parse_range(ao.range.as_deref())?;
    let to = repo.commit(&to_rev)?;
    let keep = |c: &str| ao.cluster.as_deref().is_none_or(|want| want == c) && !ao.skip.contains(c);
    // Group clusters by the commit they were last applied at.
    let mut groups: BTreeMap<Option<String>, BTreeSet<String>> = BTreeMap::new();
    let explicit = match from_rev {
        Some(f) => Some(repo.commit(&f)?.id),
        None => None,
    };
    if explicit.is_none() && !ao.resync {
        for (name, c) in &state.clusters {
            groups
                .entry(c.last_applied.clone())
                .or_default()
                .insert(name.clone());
        }
    }
    let default_base = match ao.resync {
        true => None,
        false => explicit
            .clone()
            .or_else(|| super::plan::applied_base(&state)),
    };
    let created = state.created_ids();
    let mut runs = Vec::new();
    // Each run's clusters: its group's members, or (the default base) all not claimed.
    let mut members_of: Vec<Option<BTreeSet<String>>> = Vec::new();
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    let mut bases: Vec<Option<String>> = groups
        .keys()
        .filter(|b| **b != default_base)
        .cloned()
        .collect();
    bases.push(default_base.clone());
    for base in bases {
        let mut run = plan_between(
            &repo,
            opts,
            base.as_deref(),
            &to,
            &created,
            ao.cache.as_deref(),
        )?;
        let members = groups.get(&base).cloned().unwrap_or_default();
        let is_default = base == default_base;
        run.retain_clusters(|c| {
            keep(c) && (members.contains(c) || (is_default && !claimed.contains(c)))
        });
        members_of.push((!is_default).then(|| members.clone()));
        if !is_default {
            claimed.extend(members);
        }
        if ao.resync {
            run.plan
                .actions
                .retain(|a| a.class != crate::plan::Class::Destructive);
        }
        runs.push(run);
    }
    let member = |i: usize, c: &str| match &members_of[i] {
        Some(m) => m.contains(c),
        None => !claimed.contains(c),
    };
    tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "planned");
    if ao.dry_run {
        return Ok(Applied {
            runs,
            results: vec![],
            note: None,
            unrecorded: None,
        });
    }
    if runs.iter().any(|r| !r.errors.is_empty()) {
        // Refused whole: nothing runs; the commit's note says why (file, line, column).
        let all: Vec<&PlanRun> = runs.iter().collect();
        let mut run = note_of(&all, &[], &to.id, started);
        run.instance = instance(&ao.exec);
        run.result = "invalid";
        run.errors = runs
            .iter()
            .flat_map(|r| r.errors.iter().map(|e| e.to_string()))
            .collect();
        note::append(repo.git(), &run).context("writing the git note")?;
        for c in state.clusters.values_mut() {
            c.last_attempted = Some(to.id.clone());
        }
        if let Some(f) = &ao.exec.fence {
            f.save_state(&state).await?;
        }
        state.save(&state_dir)?;
        return Ok(Applied {
            runs,
            results: vec![],
            note: Some(run),
            unrecorded: None,
        });
    }
    let fence = ao.exec.fence.clone();
    let mut results = Vec::new();
    let scratch = tempfile::Builder::new()
        .prefix("pgitops-inv")
        .tempdir()
        .context("a temporary directory for inventories")?;
    for (i, run) in runs.iter().enumerate() {
        let Some((old, new)) = run.inventories.clone() else {
            continue;
        };
        // Journaled at the commit the run applies (TO, or where an unverified commit stopped it).
        let mut exec = ao.exec.clone();
        exec.journal =
            Some(crate::report::journal::Journal::new(&state_dir, &run.to).shared(fence.clone()));
        let cfg = Arc::new(exec);
        // The Pigsty executor reads each revision's inventory from a file.
        let cfg = match &cfg.pigsty {
            None => cfg.clone(),
            Some(p) => {
                let mut p = p.clone();
                let dir = scratch.path().join(i.to_string());
                p.new_inventory = materialize(&repo, opts, &run.to, &dir.join("new"))?
                    .context("the inventory of TO")?;
                p.old_inventory = if run.from.bytes().all(|b| b == b'0') {
                    None
                } else {
                    materialize(&repo, opts, &run.from, &dir.join("old"))?
                };
                p.secrets = crate::inventory::secrets::collect(&new.tree);
                p.secrets
                    .extend(crate::inventory::secrets::collect(&old.tree));
                Arc::new(ExecConfig {
                    pigsty: Some(p),
                    ..(*cfg).clone()
                })
            }
        };
        results.extend(execute::run(&run.plan, old, new, runner.clone(), cfg).await);
    }
    tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "executed");
    executed(&results);
    // One note per commit applied: TO (with what an unverified commit held), and any commit a
    // group stopped at. The state of each run's clusters advances to the commit it applied.
    let blocked = |r: &PlanRun| r.held.as_ref().is_some_and(Held::blocked);
    let mut targets: Vec<&str> = vec![&to.id];
    for r in runs.iter().filter(|r| !blocked(r)) {
        if !targets.contains(&r.to.as_str()) {
            targets.push(&r.to);
        }
    }
    let mut notes = Vec::new();
    for target in &targets {
        let mine: Vec<usize> = (0..runs.len())
            .filter(|i| !blocked(&runs[*i]) && runs[*i].to == *target)
            .collect();
        let chosen: Vec<&PlanRun> = mine.iter().map(|i| &runs[*i]).collect();
        let mut run = note_of(&chosen, &results, target, started);
        run.instance = instance(&ao.exec);
        if *target == to.id {
            super::verified::held_in_note(&mut run, &runs, &state, &|i, c| keep(c) && member(i, c));
        }
        let covered = move |c: &str| keep(c) && mine.iter().any(|i| member(*i, c));
        notes.push((run, chosen, covered));
    }
    let unrecorded = match notes
        .iter()
        .try_for_each(|(run, _, _)| note::append(repo.git(), run))
    {
        Err(e) => Some(format!("writing the git note: {e}; the state was not advanced, so the next apply runs these actions again and records them")),
        Ok(()) => {
            tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "noted");
            for (run, chosen, covered) in &notes {
                record(&mut state, chosen, &results, &run.commit, covered);
            }
            let shared = match &fence {
                Some(f) => f.save_state(&state).await.err().map(|e| format!("sharing the state: {e}; the state was not advanced")),
                None => None,
            };
            shared.or_else(|| state.save(&state_dir).err().map(|e| format!("saving the state: {:#}; the note is written, and the next apply runs these actions again", anyhow::Error::from(e))))
        }
    };
    let note = notes.into_iter().next().map(|(run, _, _)| run);
    Ok(Applied {
        runs,
        results,
        note,
        unrecorded,
    })
}

/// Writes the inventory files of `commit` under `dir`; returns the path to pass to `-i` (the
/// file, or the directory of a split layout). `None` when the commit has no inventory.
fn materialize(
    repo: &crate::source::Repo,
    opts: &RepoOptions,
    commit: &str,
    dir: &std::path::Path,
) -> Result<Option<std::path::PathBuf>> {
    let Some(files) = super::read_revision(repo, opts, commit, true)? else {
        return Ok(None);
    };
    for f in files.all() {
        let path = dir.join(&f.path);
        std::fs::create_dir_all(path.parent().expect("files have a parent"))
            .context("writing the inventory")?;
        std::fs::write(&path, &f.text).context("writing the inventory")?;
    }
    let main = dir.join(&files.main.path);
    Ok(Some(
        if files.group_vars.is_empty()
            && files.host_vars.is_empty()
            && opts.inventory.ends_with(&files.main.path)
        {
            main
        } else {
            main.parent().expect("a parent").to_path_buf()
        },
    ))
}
