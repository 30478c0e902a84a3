//! The signature gate in front of planning: with `[repository] verify` on, every commit of the
//! range `from..to` (the set [`Repo::commits_between`] gives, merges included) must be signed by
//! an allowed key ([`crate::source::verify`]).
//!
//! In: the repository, the settings and a range. Out: the commit to plan up to, and a [`Held`]
//! when the range has an unverified commit: with `unverified = "block"` nothing of the range
//! is planned (the target is `from`, and [`Held::stopped_at`] is None); with `"stop"` the range
//! is cut at the newest commit of `to`'s first-parent line that has no unverified commit among
//! its ancestors (`stopped_at`), or blocked when there is none.

use std::collections::HashSet;

use anyhow::{Context, Result};
use git2::{Oid, Sort};
use serde::Serialize;

use crate::source::verify::{verify_commit, Failure, OnUnverified, Outcome, Settings};
use crate::source::{CommitInfo, Repo};

/// Why a range is not applied in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    /// The oldest unverified commit of the range.
    pub commit: String,
    /// `unsigned`, `unknown-key`, `bad-signature` or `tool-failed`.
    pub reason: String,
    /// `commit <sha> is not verified: <reason in words>`.
    pub message: String,
    /// Unverified commits in the range (with `block`, the first one ends the check: 1).
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
    let mut walk = git.revwalk().context("walking the range")?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
    walk.push(Oid::from_str(&to.id)?)?;
    if let Some(f) = from {
        walk.hide(Oid::from_str(f)?)?;
    }
    let range: Vec<Oid> = walk.collect::<Result<_, _>>()?;
    let stop = settings.on_unverified == OnUnverified::Stop;
    let mut failures: Vec<(Oid, Failure)> = Vec::new();
    for oid in &range {
        if let Outcome::Unverified { reason } = verify_commit(git, settings, *oid) {
            failures.push((
                *oid,
                Failure {
                    commit: oid.to_string(),
                    reason,
                },
            ));
            if !stop {
                break;
            }
        }
    }
    let Some((_, first)) = failures.first() else {
        return Ok((to.clone(), None));
    };
    tracing::warn!(range_to = %to.id, "{first}");
    if !stop {
        return Ok((to.clone(), Some(Held::new(first, 1, None))));
    }
    // The newest commit on `to`'s first-parent line with no unverified commit at or before it.
    let in_range: HashSet<Oid> = range.iter().copied().collect();
    let mut cur = Some(Oid::from_str(&to.id)?);
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

/// Whether `commit` verifies (for approvals read from commit messages).
pub fn verified(repo: &Repo, settings: &Settings, commit: &str) -> bool {
    !settings.is_on()
        || Oid::from_str(commit).is_ok_and(|oid| {
            matches!(
                verify_commit(repo.git(), settings, oid),
                Outcome::Verified { .. }
            )
        })
}
