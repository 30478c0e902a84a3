//! The signature gate in front of planning: with `[repository] verify` on, every commit of the
//! range `from..to` (the set [`Repo::commits_between`] gives, merges included) must be signed by
//! an allowed key ([`crate::source::verify`]).
//!
//! With no base (the first apply, a resync) only `to` is checked: the tree applied is its tree,
//! which its signature covers.
//!
//! In: the repository, the settings and a range. Out: the commit to plan up to, and a [`Held`]
//! when the range has an unverified commit: with `unverified = "block"` nothing of the range
//! is planned (the target stays `to`, [`Held::stopped_at`] is None, and the caller plans
//! nothing); with `"stop"` the range
//! is cut at the newest commit of `to`'s first-parent line that has no unverified commit among
//! its ancestors (`stopped_at`), or blocked when there is none. [`note_approvals`] sorts the
//! `pgitops approve` notes of a commit into those that count (signed by an allowed key, or
//! verification off) and those that do not; [`held_in_note`] writes what was held into the
//! note of an apply.

use std::collections::{BTreeSet, HashSet};

use anyhow::{Context, Result};
use git2::{Oid, Sort};
use serde::Serialize;

use crate::report::note::{self, ClusterRecord, Run, Unverified};
use crate::report::state::State;
use crate::source::approval;
use crate::source::verify::{
    check, signed_parts, Failure, OnUnverified, Outcome, Settings, SignedParts,
};
use crate::source::{CommitInfo, Repo};

use super::plan::PlanRun;

/// Why a range is not applied in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    /// The oldest unverified commit of the range.
    pub commit: String,
    /// `unsigned`, `unknown-key`, `bad-signature` or `tool-failed`.
    pub reason: String,
    /// `commit <sha> is not verified: <reason in words>`.
    pub message: String,
    /// Unverified commits found in the range (with `block`, the check ends with the first
    /// window of 32 commits that has one).
    pub unverified: usize,
    /// With `unverified = "stop"`: the range was applied up to this commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
}

impl Held {
    fn new(failure: &Failure, unverified: usize, stopped_at: Option<String>) -> Held {
        Held {
            commit: failure.commit.clone(),
            reason: failure.reason.kind().to_string(),
            message: failure.to_string(),
            unverified,
            stopped_at,
        }
    }

    /// Nothing of the range is applied.
    pub fn blocked(&self) -> bool {
        self.stopped_at.is_none()
    }
}

/// Checks `from..to`. Returns the commit to plan up to (`to` itself when every commit
/// verifies or verification is off) and why the range is held, if it is. A blocked range
/// returns `to` too: the caller plans nothing for it.
pub fn gate(
    repo: &Repo,
    settings: &Settings,
    from: Option<&str>,
    to: &CommitInfo,
) -> Result<(CommitInfo, Option<Held>)> {
    if !settings.is_on() {
        return Ok((to.clone(), None));
    }
    let git = repo.git();
    let to_oid = Oid::from_str(&to.id)?;
    // With no base (a first apply, a resync) the tree applied is TO's, which TO's signature
    // covers; history from before verification was turned on is not held against it.
    let range: Vec<Oid> = match from {
        None => vec![to_oid],
        Some(f) => {
            let mut walk = git.revwalk().context("walking the range")?;
            walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
            walk.push(to_oid)?;
            walk.hide(Oid::from_str(f)?)?;
            walk.collect::<Result<_, _>>()?
        }
    };
    let stop = settings.on_unverified == OnUnverified::Stop;
    let mut failures: Vec<(Oid, Failure)> = Vec::new();
    // Oldest first, a window at a time (the tools run in parallel inside a window); `block`
    // ends at the first window with an unverified commit.
    for window in range.chunks(32) {
        let parts = window.iter().map(|oid| signed_parts(git, *oid)).collect();
        for (oid, outcome) in window.iter().zip(check_all(settings, parts)) {
            if let Outcome::Unverified { reason } = outcome {
                let commit = oid.to_string();
                failures.push((*oid, Failure { commit, reason }));
            }
        }
        if !stop && !failures.is_empty() {
            break;
        }
    }
    let Some((_, first)) = failures.first() else {
        return Ok((to.clone(), None));
    };
    tracing::warn!(range_to = %to.id, "{first}");
    if !stop {
        return Ok((to.clone(), Some(Held::new(first, failures.len(), None))));
    }
    // The newest commit on `to`'s first-parent line with no unverified commit at or before it.
    let in_range: HashSet<Oid> = range.iter().copied().collect();
    let mut cur = Some(to_oid);
    while let Some(c) = cur.filter(|c| in_range.contains(c)) {
        let clean = failures
            .iter()
            .all(|(u, _)| *u != c && !git.graph_descendant_of(c, *u).unwrap_or(true));
        if clean {
            let target = repo.commit(&c.to_string())?;
            let held = Held::new(first, failures.len(), Some(target.id.clone()));
            return Ok((target, Some(held)));
        }
        cur = git.find_commit(c)?.parent_ids().next();
    }
    Ok((to.clone(), Some(Held::new(first, failures.len(), None))))
}

/// The commits whose `Pgitops-Approve` trailers and approval notes count for `from..to`: the
/// range, all verified by [`gate`] when verification is on; with no base, only `to` then (the
/// only commit the gate checked).
pub fn approval_commits(
    repo: &Repo,
    settings: &Settings,
    from: Option<&str>,
    to: &CommitInfo,
) -> Result<Vec<CommitInfo>> {
    if settings.is_on() && from.is_none() {
        return Ok(vec![to.clone()]);
    }
    Ok(repo.commits_between(from, &to.id)?)
}

/// Checks `parts` in order, on up to four threads (each check runs one or two processes).
fn check_all(settings: &Settings, parts: Vec<SignedParts>) -> Vec<Outcome> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let size = parts.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<SignedParts>> = Vec::new();
    let mut rest = parts.into_iter();
    loop {
        let chunk: Vec<SignedParts> = rest.by_ref().take(size).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    std::thread::scope(|s| {
        let running: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    c.into_iter()
                        .map(|p| check(settings, p))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        running
            .into_iter()
            .flat_map(|h| h.join().expect("a verification thread panicked"))
            .collect()
    })
}

/// The `pgitops approve` notes on `commit`: the action ids that count, and the ones that do
/// not (`<action> on <sha> (<why>)`). With verification off every note counts; with it on, only
/// a note signed by an allowed key ([`crate::source::approval`]).
pub fn note_approvals(
    repo: &Repo,
    settings: &Settings,
    commit: &str,
) -> (Vec<String>, Vec<String>) {
    let Ok(oid) = Oid::from_str(commit) else {
        return (vec![], vec![]);
    };
    let (mut counted, mut ignored) = (Vec::new(), Vec::new());
    for a in note::approval_records(repo.git(), oid) {
        match approval::verify(settings, commit, &a.action, a.signature.as_deref()) {
            Outcome::Verified { .. } => counted.push(a.action),
            Outcome::Unverified { reason } => ignored.push(format!(
                "{} on {} ({})",
                a.action,
                crate::plan::output::short(commit),
                reason.kind()
            )),
        }
    }
    // A note with a signed and an unsigned approval of one action counts once, silently.
    ignored.retain(|i| !counted.iter().any(|c| i.starts_with(&format!("{c} on "))));
    (counted, ignored)
}

/// Adds to the note on TO what unverified commits held: per held run, the commit, why, the
/// clusters it kept back, and where a `stop` cut the range; and the approval notes that were
/// not counted. Blocked clusters are listed with
/// the result `unverified` and no actions; the run's result is `unverified` unless an action
/// failed.
pub fn held_in_note(
    note: &mut Run,
    runs: &[PlanRun],
    state: &State,
    member: &dyn Fn(usize, &str) -> bool,
) {
    for (i, r) in runs.iter().enumerate() {
        let Some(held) = &r.held else { continue };
        let clusters: Vec<String> = match held.blocked() {
            // A blocked run planned nothing: its clusters are the ones the state knows.
            true => state
                .clusters
                .keys()
                .filter(|c| member(i, c))
                .cloned()
                .collect(),
            false => {
                let mut names: BTreeSet<String> =
                    r.plan.actions.iter().map(|a| a.cluster.clone()).collect();
                names.extend(state.clusters.keys().filter(|c| member(i, c)).cloned());
                names.into_iter().collect()
            }
        };
        if held.blocked() {
            for name in &clusters {
                note.clusters.push(ClusterRecord {
                    name: name.clone(),
                    // Nothing was planned, so the module is not known.
                    module: String::new(),
                    result: "unverified",
                    actions: vec![],
                });
            }
        }
        note.unverified.push(Unverified {
            commit: held.commit.clone(),
            reason: held.reason.clone(),
            message: held.message.clone(),
            clusters,
            stopped_at: held.stopped_at.clone(),
        });
    }
    for r in runs {
        for a in &r.ignored_approvals {
            if !note.ignored_approvals.contains(a) {
                note.ignored_approvals.push(a.clone());
            }
        }
    }
    if !note.unverified.is_empty() && note.result != "failure" {
        note.result = "unverified";
    }
}
