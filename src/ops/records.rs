//! `pgitops status`, `history` and `approve`: read and write the apply records (per-cluster
//! state, git notes, and the service's leader watch's and drift check's views).

use std::time::SystemTime;

use anyhow::{Context, Result};
use git2::Oid;
use serde::Serialize;

use super::RepoOptions;
use crate::execute::Status;
use crate::report::drift::{DriftRecord, DriftView};
use crate::report::leaders::{LeaderView, Leaders};
use crate::report::note::{self, Approval};
use crate::report::state::State;
use crate::source::approval::{self, Signer};

#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub last_applied: Option<String>,
    pub last_attempted: Option<String>,
    /// `in-sync`, `behind`, `unverified` (an unverified commit holds its range at HEAD),
    /// `failed`, `awaiting-approval` or `awaiting-window`.
    pub state: &'static str,
    /// Action ids of the last attempt that wait for approval or a window, or that failed.
    pub awaiting_approval: Vec<String>,
    pub awaiting_window: Vec<String>,
    pub failed: Vec<String>,
    /// The service's leader watch saw a leader other than the declared primary (while it lasts).
    pub failover: Option<LeaderView>,
    /// The service's last drift check of the cluster (`[schedule] drift`).
    pub drift: Option<DriftView>,
}

/// The record of `cluster` in the last run noted on `commit` that covered it.
fn last_record(repo: &git2::Repository, commit: &str, cluster: &str) -> Option<note::ClusterRun> {
    let note = note::load(repo, Oid::from_str(commit).ok()?).unwrap_or_default();
    note.runs
        .into_iter()
        .rev()
        .find_map(|r| r.clusters.into_iter().find(|c| c.name == cluster))
}

/// Actions of `cluster` with `status` in the last run recorded on `commit` that covered it.
fn last_run_actions(
    repo: &git2::Repository,
    commit: &str,
    cluster: &str,
    status: Status,
) -> Vec<String> {
    let Some(record) = last_record(repo, commit, cluster) else {
        return vec![];
    };
    record
        .actions
        .into_iter()
        .filter(|a| a.status == status)
        .map(|a| a.id)
        .collect()
}

pub fn status(opts: &RepoOptions, head: &str) -> Result<Vec<ClusterStatus>> {
    let repo = opts.open()?;
    let head = repo.commit(head)?.id;
    let dir = opts.state_dir(&repo);
    let state = State::load(&dir)?;
    let mut leaders = Leaders::load(&dir);
    let mut drift = DriftRecord::load(&dir);
    Ok(state
        .clusters
        .iter()
        .map(|(name, c)| {
            let attempted = c.last_attempted.clone().unwrap_or_default();
            let awaiting_approval =
                last_run_actions(repo.git(), &attempted, name, Status::AwaitingApproval);
            let awaiting_window =
                last_run_actions(repo.git(), &attempted, name, Status::AwaitingWindow);
            let failed = last_run_actions(repo.git(), &attempted, name, Status::Failed);
            let state = if !failed.is_empty() {
                "failed"
            } else if !awaiting_approval.is_empty() {
                "awaiting-approval"
            } else if !awaiting_window.is_empty() {
                "awaiting-window"
            } else if c.last_applied.as_deref() == Some(head.as_str()) {
                "in-sync"
            } else if last_record(repo.git(), &head, name).is_some_and(|r| r.result == "unverified")
            {
                "unverified"
            } else {
                "behind"
            };
            ClusterStatus {
                cluster: name.clone(),
                last_applied: c.last_applied.clone(),
                last_attempted: c.last_attempted.clone(),
                state,
                awaiting_approval,
                awaiting_window,
                failed,
                failover: leaders.clusters.remove(name).filter(|v| !v.matches),
                drift: drift.clusters.remove(name),
            }
        })
        .collect())
}

#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    pub commit: String,
    pub author: String,
    pub summary: String,
    /// Seconds since the Unix epoch, when the apply started.
    pub applied: u64,
    pub result: String,
}

/// Apply runs recorded on the ancestors of `head`, newest first; `cluster` filters to runs that
/// touched it (and reports that cluster's result).
pub fn history(opts: &RepoOptions, head: &str, cluster: Option<&str>) -> Result<Vec<HistoryEntry>> {
    let repo = opts.open()?;
    let mut out = Vec::new();
    for c in repo.commits_between(None, &repo.commit(head)?.id)? {
        let git = repo.git();
        let note = note::load(git, Oid::from_str(&c.id)?)?;
        let author = git
            .find_commit(Oid::from_str(&c.id)?)
            .map(|k| k.author().name().unwrap_or("").to_string())
            .unwrap_or_default();
        for run in note.runs.iter().rev() {
            let result = match cluster {
                None => Some(run.result.clone()),
                Some(name) => run
                    .clusters
                    .iter()
                    .find(|x| x.name == name)
                    .map(|x| x.result.clone()),
            };
            if let Some(result) = result {
                out.push(HistoryEntry {
                    commit: c.id.clone(),
                    author: author.clone(),
                    summary: c.summary.clone(),
                    applied: run.started,
                    result,
                });
            }
        }
    }
    Ok(out)
}

/// Records an approval of `action` on `rev`'s commit, signed by `signer` when given (with
/// commit verification on, only a signed approval counts). Returns the commit id and whether
/// the approval is new, and whether the action is held there (per the last apply run).
pub fn approve(
    opts: &RepoOptions,
    rev: &str,
    action: &str,
    signer: Option<&Signer>,
) -> Result<(String, bool, bool)> {
    let repo = opts.open()?;
    let commit = repo.commit(rev)?.id;
    let signature = match signer {
        Some(s) => Some(approval::sign(s, &commit, action).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let oid = Oid::from_str(&commit)?;
    let held = note::load(repo.git(), oid)?.runs.last().is_some_and(|run| {
        run.clusters
            .iter()
            .flat_map(|c| &c.actions)
            .any(|a| a.id == action && a.status == Status::AwaitingApproval)
    });
    let by = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let at = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let new = note::approve(
        repo.git(),
        oid,
        Approval {
            action: action.to_string(),
            by,
            at,
            signature,
        },
    )
    .context("writing the approval note")?;
    // Share it: the service picks approvals up from the remote's notes.
    if let Ok(origin) = repo.git().find_remote("origin") {
        let url = origin.url().unwrap_or("origin").to_string();
        crate::source::remote::sync_notes(repo.git(), &url, &Default::default(), &note::SYNC)
            .context("pushing the approval note to origin")?;
    }
    Ok((commit, new, held))
}
