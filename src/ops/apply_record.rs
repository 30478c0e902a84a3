//! What an apply records: each cluster's state advanced from the results (and the objects
//! pgitops created or dropped), and the run's git note (per cluster, per action, with the
//! instance and term under `[ha]`).
//!
//! In: the plan runs, the action results, the target commit. Out: the updated [`State`] and
//! the note's [`Run`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Instant, SystemTime};

use super::plan::PlanRun;
use crate::execute::{ActionResult, ExecConfig, Status};
use crate::plan::{ObjectStep, Step};
use crate::report::note::{self, ClusterRecord, Run};
use crate::report::state::State;

/// Advances each touched cluster's state and records what pgitops created or dropped.
/// Every cluster this run covered (all modules, also those with nothing to do) advances to `to`
/// unless one of its actions failed or waits; `covered` excludes clusters left out of the run.
pub(super) fn record(
    state: &mut State,
    runs: &[&PlanRun],
    results: &[ActionResult],
    to: &str,
    covered: &dyn Fn(&str) -> bool,
) {
    let mut clusters: BTreeSet<String> = state.clusters.keys().cloned().collect();
    for run in runs {
        if let Some((_, new)) = &run.inventories {
            let m = &new.model;
            clusters.extend(
                m.pgsql
                    .keys()
                    .chain(m.redis.keys())
                    .chain(m.etcd.keys())
                    .chain(m.minio.keys())
                    .cloned(),
            );
            clusters.extend(m.infra.iter().map(|c| c.name.clone()));
        }
        clusters.extend(run.plan.actions.iter().map(|a| a.cluster.clone()));
    }
    let actions: HashMap<&str, &crate::plan::Action> = runs
        .iter()
        .flat_map(|r| &r.plan.actions)
        .map(|a| (a.id.as_str(), a))
        .collect();
    for name in clusters.iter().map(String::as_str).filter(|c| covered(c)) {
        let mine: Vec<&ActionResult> = results.iter().filter(|r| r.cluster == name).collect();
        let entry = state.clusters.entry(name.to_string()).or_default();
        entry.last_attempted = Some(to.to_string());
        if mine.iter().all(|r| {
            !matches!(
                r.status,
                Status::Failed
                    | Status::Skipped
                    | Status::AwaitingApproval
                    | Status::AwaitingWindow
            )
        }) {
            entry.last_applied = Some(to.to_string());
        }
        for r in mine.iter().filter(|r| r.status == Status::Applied) {
            let Some(a) = actions.get(r.id.as_str()) else {
                continue;
            };
            match &a.step {
                // Only a role this action really created (not one that was there already,
                // as on first contact with a running fleet) becomes pgitops' own.
                Step::Object(ObjectStep::UserUpsert { name, .. }) if r.created => {
                    entry.created.insert(format!("user/{name}"));
                }
                Step::Object(ObjectStep::UserDrop { name, .. }) => {
                    entry.created.remove(&format!("user/{name}"));
                }
                _ => {}
            }
        }
    }
}

/// With `[ha]`: the instance and term that ran the apply, for its note.
pub(super) fn instance(exec: &ExecConfig) -> Option<note::Instance> {
    exec.fence.as_ref().map(|f| note::Instance {
        name: f.name().to_string(),
        term: f.term(),
    })
}

pub(super) fn note_of(
    runs: &[&PlanRun],
    results: &[ActionResult],
    to: &str,
    started: Instant,
) -> Run {
    let mut by_cluster: BTreeMap<(String, String), Vec<ActionResult>> = BTreeMap::new();
    let by_id: HashMap<&str, &ActionResult> = results.iter().map(|r| (r.id.as_str(), r)).collect();
    for run in runs {
        for a in &run.plan.actions {
            if let Some(r) = by_id.get(a.id.as_str()) {
                by_cluster
                    .entry((a.module.as_str().to_string(), a.cluster.clone()))
                    .or_default()
                    .push((*r).clone());
            }
        }
    }
    let verdict = |rs: &[ActionResult]| {
        if rs.iter().any(|r| r.status == Status::Failed) {
            "failure"
        } else if rs.iter().any(|r| {
            matches!(
                r.status,
                Status::AwaitingApproval | Status::AwaitingWindow | Status::Skipped
            )
        }) {
            "held"
        } else if rs.is_empty() {
            "no-change"
        } else {
            "success"
        }
    };
    let clusters: Vec<ClusterRecord> = by_cluster
        .into_iter()
        .map(|((module, name), actions)| ClusterRecord {
            name,
            module,
            result: verdict(&actions),
            actions,
        })
        .collect();
    Run {
        pgitops: env!("CARGO_PKG_VERSION"),
        commit: to.to_string(),
        from: runs.first().map(|r| r.from.clone()).unwrap_or_default(),
        started: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        ms: started.elapsed().as_millis() as u64,
        result: verdict(
            &clusters
                .iter()
                .flat_map(|c| c.actions.clone())
                .collect::<Vec<_>>(),
        ),
        clusters,
        errors: vec![],
        unverified: vec![],
        ignored_approvals: vec![],
        instance: None,
    }
}
