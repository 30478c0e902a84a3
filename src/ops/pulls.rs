//! The plan of a pull request: its head merged onto the watched branch (the commit a merge
//! would make), planned against what is actually applied — each cluster from its own last
//! applied commit, exactly as the service's next apply would plan it — and the comment that
//! shows it.
//!
//! In: the mirror (branch head and pull request head fetched), the state directory, the SSH
//! runner (only its type: a dry run opens no connection). Out: a [`PullPlan`] (merged cleanly
//! with its plan, or the conflicting paths, or already merged) and its Markdown document.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::{Context, Result};
use git2::{Oid, Repository};

use super::apply::{apply, ApplyOptions};
use super::loads::LoadCache;
use super::plan::PlanRun;
use super::RepoOptions;
use crate::diff::Diff;
use crate::execute::{ExecConfig, Runner};
use crate::plan::markdown::{self, code, Summary};
use crate::plan::output::{short, Report};
use crate::plan::Plan;
use crate::report::pulls::MARKER;

/// What merging the pull request's head onto the branch gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// The commit a merge would make (the head itself when the branch is its ancestor).
    Clean(String),
    /// Paths that conflict: nothing can be planned.
    Conflict(Vec<String>),
    /// The head is already on the branch.
    Merged,
}

/// Merges `head` onto `branch` in the mirror's object store (no ref moves): a merge commit with
/// parents branch and head, or `head` when it already contains the branch.
pub fn merge(git: &Repository, branch: &str, head: &str) -> Result<Merge> {
    let (b, h) = (Oid::from_str(branch)?, Oid::from_str(head)?);
    if b == h || git.graph_descendant_of(b, h)? {
        return Ok(Merge::Merged);
    }
    if git.graph_descendant_of(h, b)? {
        return Ok(Merge::Clean(head.to_string()));
    }
    let (bc, hc) = (git.find_commit(b)?, git.find_commit(h)?);
    let mut index = git.merge_commits(&bc, &hc, None)?;
    if index.has_conflicts() {
        let mut paths = BTreeSet::new();
        for c in index.conflicts()? {
            let c = c?;
            for entry in [c.ancestor, c.our, c.their].into_iter().flatten() {
                paths.insert(String::from_utf8_lossy(&entry.path).into_owned());
            }
        }
        return Ok(Merge::Conflict(paths.into_iter().collect()));
    }
    let tree = git.find_tree(index.write_tree_to(git)?)?;
    // Fixed identity and time: the same branch and head always give the same merge commit.
    let when = git2::Time::new(hc.time().seconds().max(bc.time().seconds()), 0);
    let sig = git2::Signature::new("pgitops", "pgitops@localhost", &when)?;
    let message = format!(
        "pgitops: plan of {} merged onto {}",
        short(head),
        short(branch)
    );
    let id = git.commit(None, &sig, &sig, &message, &tree, &[&bc, &hc])?;
    Ok(Merge::Clean(id.to_string()))
}

/// A pull request's merge and, when it merged cleanly, its plan (one run per base commit).
pub struct PullPlan {
    pub merge: Merge,
    pub runs: Vec<PlanRun>,
}

impl PullPlan {
    /// The runs as one report's parts: changes, actions and warnings of every run (each run
    /// already holds only its own clusters), errors once.
    fn combined(
        &self,
    ) -> (
        Diff,
        Plan,
        Vec<crate::inventory::Diagnostic>,
        Vec<crate::inventory::Diagnostic>,
    ) {
        let mut diff = Diff::default();
        let mut plan = Plan::default();
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        let mut seen = BTreeSet::new();
        for r in &self.runs {
            diff.changes.extend(r.diff.changes.iter().cloned());
            plan.actions.extend(r.plan.actions.iter().cloned());
            plan.warnings.extend(r.plan.warnings.iter().cloned());
            for e in &r.errors {
                if seen.insert(e.to_string()) {
                    errors.push(e.clone());
                }
            }
            if warnings.is_empty() {
                warnings = r.warnings.clone();
            }
        }
        (diff, plan, errors, warnings)
    }

    /// Why a merged range would not be applied in full (`[repository] verify`): the first
    /// unverified commit, in words.
    pub fn unverified(&self) -> Option<&str> {
        let held = self.runs.iter().find_map(|r| r.held.as_ref())?;
        Some(held.message.as_str())
    }

    /// The bases the runs planned from (short ids).
    fn bases(&self) -> Vec<&str> {
        let mut b: Vec<&str> = self.runs.iter().map(|r| short(&r.from)).collect();
        b.dedup();
        b
    }
}

/// Plans the pull request whose head is `head` against what is applied (the state directory),
/// as the service's next apply would (a dry run: nothing is executed, no connection opened).
pub async fn plan(
    opts: &RepoOptions,
    runner: &Arc<Runner>,
    exec: ExecConfig,
    branch: &str,
    head: &str,
    cache: Option<Arc<LoadCache>>,
) -> Result<PullPlan> {
    let git = Repository::open_bare(&opts.repo).context("opening the mirror")?;
    let merged = merge(&git, branch, head).context("merging the pull request's head")?;
    let Merge::Clean(sha) = &merged else {
        return Ok(PullPlan {
            merge: merged,
            runs: vec![],
        });
    };
    let options = ApplyOptions {
        range: Some(sha.clone()),
        cluster: None,
        skip: BTreeSet::new(),
        resync: false,
        dry_run: true,
        exec,
        cache,
    };
    let runs = apply(opts, options, runner).await?.runs;
    Ok(PullPlan {
        merge: merged,
        runs,
    })
}

/// The comment (starting with [`MARKER`]) and the summary for the status.
pub fn document(
    number: u64,
    branch_name: &str,
    branch: &str,
    head: &str,
    pp: &PullPlan,
    full_plan: &str,
    max_chars: usize,
) -> (String, Option<Summary>) {
    let intro = vec![format!(
        "Pull request #{number} at {}, merged onto {} ({}).",
        code(short(head)),
        code(branch_name),
        code(short(branch))
    )];
    let merge = match &pp.merge {
        Merge::Clean(sha) => sha,
        Merge::Merged => {
            let text = format!(
                "{MARKER}\n{}\n\nThe head is already on the branch: nothing to plan.\n",
                intro.join("\n")
            );
            return (text, None);
        }
        Merge::Conflict(paths) => {
            let list: String = paths.iter().map(|p| format!("- {}\n", code(p))).collect();
            let text = format!(
                "{MARKER}\n{}\n\n**Does not merge cleanly** onto {}: nothing can be planned until the \
                 conflicts are resolved.\n\n{list}",
                intro.join("\n"),
                code(branch_name)
            );
            return (text, None);
        }
    };
    let (diff, plan, errors, warnings) = pp.combined();
    let mut intro = intro;
    if let Some(why) = pp.unverified() {
        intro.push(format!(
            "\n**Signature check:** {} — with `[repository] verify` on, the merged range is not \
             applied in full until every commit in it is signed by an allowed key.",
            code(why)
        ));
    }
    intro.push(format!(
        "Planned against what is applied (each cluster from its last applied commit: {}), as \
         the next apply after the merge would run it.",
        pp.bases()
            .iter()
            .map(|b| code(b))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let from = if pp.bases().len() == 1 {
        pp.runs[0].from.clone()
    } else {
        "applied".to_string()
    };
    let report = Report {
        from: &from,
        to: merge,
        diff: &diff,
        plan: &plan,
        errors: &errors,
        warnings: &warnings,
    };
    let summary = Summary::of(&report);
    let budget = max_chars.saturating_sub(MARKER.len() + 1);
    let text = markdown::markdown(&report, &intro, budget, full_plan);
    (format!("{MARKER}\n{text}"), Some(summary))
}
