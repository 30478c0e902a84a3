//! `pgitops drift`: each applied PGSQL cluster's live state against the inventory of its last
//! applied commit.
//!
//! In: the repository options (the state gives each cluster's last applied commit), an optional
//! cluster, the runner and execution settings (as `apply` builds them). Out: one
//! [`Drift`] per cluster, in name order. What is compared is what a resync of that commit would
//! converge: the commit is planned from the empty inventory (as `apply --resync` plans it) and
//! the native observation ([`crate::execute::native::drift`]) reads the live side of those
//! actions, plus each member's HBA file and `ALTER SYSTEM` parameters. Nothing is written.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use futures::StreamExt;

use super::loads::LoadCache;
use super::plan::plan_between;
use super::RepoOptions;
use crate::diff::drift::Drift;
use crate::execute::native::drift::check;
use crate::execute::{ExecConfig, Runner};
use crate::report::state::State;

/// Checks the applied clusters (only `cluster` when given). A cluster the state has no applied
/// commit for is reported as never applied, and so is each PGSQL cluster of revision `head`
/// (when given: the CLI's `HEAD`) that the state does not know; a cluster whose inventory no
/// longer loads, or none of whose members answers, carries the error.
pub async fn drift(
    opts: &RepoOptions,
    cluster: Option<&str>,
    head: Option<&str>,
    runner: &Runner,
    exec: &ExecConfig,
    cache: Option<&LoadCache>,
) -> Result<Vec<Drift>> {
    let repo = opts.open()?;
    let state = State::load(&opts.state_dir(&repo))?;
    let mut by_commit: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut out = vec![];
    for (name, c) in &state.clusters {
        if cluster.is_some_and(|want| want != name) {
            continue;
        }
        match &c.last_applied {
            Some(commit) => {
                by_commit
                    .entry(commit.clone())
                    .or_default()
                    .insert(name.clone());
            }
            None => out.push(Drift::never_applied(name)),
        }
    }
    if let Some(want) = cluster.filter(|w| !state.clusters.contains_key(*w)) {
        out.push(Drift::never_applied(want));
    }
    // A revision that does not load names no cluster here (`plan` and `validate` say why).
    let loaded = head
        .filter(|_| cluster.is_none())
        .and_then(|h| repo.commit(h).ok())
        .map(|h| super::load_revision(&repo, opts, &h.id, true));
    if let Some(Ok(Ok(inv))) = loaded {
        let new = inv.model.pgsql.keys();
        let new = new.filter(|c| !state.clusters.contains_key(*c));
        out.extend(new.map(|c| Drift::never_applied(c)));
    }
    let mut checks = vec![];
    for (commit, names) in by_commit {
        let to = repo.commit(&commit)?;
        let run = plan_between(&repo, opts, None, &to, &BTreeSet::new(), cache)?;
        let (Some((_, inv)), true) = (run.inventories.clone(), run.errors.is_empty()) else {
            let why: Vec<String> = run.errors.iter().map(|e| e.to_string()).collect();
            for name in names {
                out.push(Drift {
                    cluster: name,
                    commit: Some(commit.clone()),
                    error: Some(format!(
                        "the inventory of {commit} does not load: {}",
                        why.join("; ")
                    )),
                    ..Drift::default()
                });
            }
            continue;
        };
        for name in names {
            // Applied clusters of other modules (etcd, ...) have no drift check.
            if !inv.model.pgsql.contains_key(&name) {
                continue;
            }
            let actions: Vec<_> = run
                .plan
                .actions
                .iter()
                .filter(|a| a.cluster == name)
                .cloned()
                .collect();
            checks.push((name, commit.clone(), inv.clone(), actions));
        }
    }
    let done: Vec<Drift> = futures::stream::iter(checks)
        .map(|(name, commit, inv, actions)| async move {
            check(&inv, &commit, &name, &actions, runner, exec).await
        })
        .buffer_unordered(exec.concurrency.max(1))
        .collect()
        .await;
    out.extend(done);
    out.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    Ok(out)
}
