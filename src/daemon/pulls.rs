//! Plans on pull requests (`[pulls] enabled = true`): after each reconcile, the open pull
//! requests against the watched branch are listed on the forge of the first `[[reporter]]`
//! (a round gives way, between two pull requests, to a push waiting to be applied),
//! their heads fetched into the mirror, and each new head (or a moved branch, or a new apply)
//! planned as its merge would apply ([`pgitops::ops::pulls`]). The pull request gets one
//! comment, edited on every new plan, and a `pgitops/plan` status on its head: success when
//! nothing is held, pending while destructive actions wait for their trailers, failure when the
//! inventory has errors or the head does not merge. The full document, whatever its size, is
//! kept in `<state dir>/pulls/<number>.md`.
//!
//! In: the service's configuration, mirror, execution settings and loads. Out: comments and
//! statuses on the forge; a warning per failure (the next reconcile tries again).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use pgitops::config::Config;
use pgitops::execute::{ExecConfig, Runner};
use pgitops::ops::loads::LoadCache;
use pgitops::ops::pulls::{self, Merge};
use pgitops::report::forge::{Reporter, State, Status};
use pgitops::report::pulls::{Posted, Pull};
use pgitops::report::state;
use pgitops::source::remote::Mirror;

/// The status context on pull request heads.
pub const CONTEXT: &str = "pgitops/plan";

pub struct Pulls {
    reporter: Arc<Reporter>,
    /// Per pull request: what its comment was last planned from (head, branch, applied state).
    planned: HashMap<u64, String>,
    /// Per pull request: pgitops' comment (id and body), once found or made.
    comments: HashMap<u64, (u64, String)>,
}

impl Pulls {
    /// `None` unless `[pulls]` is enabled (the configuration check makes sure a reporter exists).
    pub fn new(cfg: &Config) -> Option<Pulls> {
        if !cfg.pulls.enabled {
            return None;
        }
        let settings = cfg.reporters.first()?.settings();
        match Reporter::new(&settings) {
            Ok(r) => Some(Pulls {
                reporter: Arc::new(r),
                planned: HashMap::new(),
                comments: HashMap::new(),
            }),
            Err(e) => {
                tracing::error!(error = %e, "plans on pull requests are off");
                None
            }
        }
    }

    /// Plans every open pull request whose head, branch or applied state moved since its last
    /// comment. After each pull request planned, `yield_now` is asked whether something more
    /// urgent waits (a push to apply, shutdown): then the round stops there, and the next one,
    /// after the apply, takes the rest (a pull request counts as planned only once its comment
    /// and status are posted; every round plans at least one, so frequent triggers cannot
    /// starve the plans).
    pub async fn check(
        &mut self,
        cfg: &Config,
        mirror: &Mirror,
        (exec, runner, loads): (ExecConfig, Arc<Runner>, Arc<LoadCache>),
        yield_now: &(dyn Fn() -> bool + Sync),
    ) -> Result<()> {
        let branch_name = cfg.repository.branch.clone();
        let reporter = self.reporter.clone();
        let list = branch_name.clone();
        let open = blocking(move || reporter.open_pulls(&list).map_err(Into::into)).await?;
        // A closed pull request is forgotten (its last comment stays on the forge).
        let is_open = |n: &u64| open.iter().any(|p| p.number == *n);
        self.planned.retain(|n, _| is_open(n));
        self.comments.retain(|n, _| is_open(n));
        if open.is_empty() {
            return Ok(());
        }
        mirror
            .fetch_pulls()
            .context("fetching pull request heads")?;
        let git = mirror.repo()?;
        let branch = git
            .find_reference(&format!("refs/remotes/origin/{branch_name}"))
            .and_then(|r| r.peel_to_commit())
            .context("the watched branch in the mirror")?
            .id()
            .to_string();
        let applied = std::fs::read_to_string(state::path(&cfg.state.dir)).unwrap_or_default();
        let mut tried = false;
        for pull in open {
            let key = format!("{} {branch} {:x}", pull.head, fingerprint(&applied));
            if self.planned.get(&pull.number) == Some(&key) {
                continue;
            }
            if tried && yield_now() {
                tracing::debug!(pull = pull.number, "pull request plans wait for an apply");
                break;
            }
            tried = true;
            if git2::Oid::from_str(&pull.head)
                .ok()
                .and_then(|h| git.find_commit(h).ok())
                .is_none()
            {
                tracing::warn!(pull = pull.number, head = %pull.head, "pull request head not fetched yet");
                continue;
            }
            let parts = (exec.clone(), runner.clone(), loads.clone());
            match self
                .one(cfg, mirror, &branch_name, &branch, &pull, parts)
                .await
            {
                Ok(()) => {
                    self.planned.insert(pull.number, key);
                }
                Err(e) => {
                    tracing::warn!(pull = pull.number, error = %format!("{e:#}"), "planning the pull request")
                }
            }
        }
        Ok(())
    }

    async fn one(
        &mut self,
        cfg: &Config,
        mirror: &Mirror,
        branch_name: &str,
        branch: &str,
        pull: &Pull,
        (exec, runner, loads): (ExecConfig, Arc<Runner>, Arc<LoadCache>),
    ) -> Result<()> {
        let t0 = Instant::now();
        let opts = super::mirror_options(cfg, mirror, true)?;
        let pp = pulls::plan(&opts, &runner, exec, branch, &pull.head, Some(loads)).await?;
        let file = cfg
            .state
            .dir
            .join("pulls")
            .join(format!("{}.md", pull.number));
        let pointer = format!("`{}` on the pgitops host", file.display());
        let doc = |max| {
            pulls::document(
                pull.number,
                branch_name,
                branch,
                &pull.head,
                &pp,
                &pointer,
                max,
            )
        };
        let (full, _) = doc(usize::MAX);
        std::fs::create_dir_all(file.parent().expect("pulls dir"))?;
        pgitops::fsutil::write_atomic(&file, full.as_bytes())?;
        let (body, summary) = doc(cfg.pulls.max_comment_chars);
        let (state, description) = match (&pp.merge, &summary) {
            (Merge::Conflict(paths), _) => (
                State::Failure,
                format!(
                    "does not merge cleanly onto {branch_name} ({} path(s) conflict)",
                    paths.len()
                ),
            ),
            (Merge::Merged, _) => (State::Success, "already on the branch".to_string()),
            (_, _) if pp.unverified().is_some() => (
                State::Failure,
                pp.unverified().unwrap_or_default().to_string(),
            ),
            (_, Some(s)) if s.errors > 0 => (State::Failure, s.line()),
            (_, Some(s)) if s.held > 0 => (State::Pending, s.line()),
            (_, Some(s)) => (State::Success, s.line()),
            (_, None) => (State::Success, "nothing to plan".to_string()),
        };
        let reporter = self.reporter.clone();
        let known = self.comments.get(&pull.number).cloned();
        let (number, head) = (pull.number, pull.head.clone());
        let posted_body = body.clone();
        let posted = blocking(move || {
            let known = match known {
                Some(k) => Some(k),
                None => reporter.find_comment(number)?,
            };
            let posted = reporter.upsert_comment(number, known, &posted_body)?;
            let status = Status {
                sha: &head,
                context: CONTEXT.to_string(),
                state,
                description,
                target_url: None,
            };
            reporter.post_with_retry(&status, 3, std::time::Duration::from_millis(500))?;
            Ok(posted)
        })
        .await?;
        let id = match posted {
            Posted::Created(id) | Posted::Edited(id) | Posted::Unchanged(id) => id,
        };
        self.comments.insert(pull.number, (id, body));
        tracing::info!(
            pull = pull.number,
            head = %pull.head,
            comment = ?posted,
            ms = t0.elapsed().as_millis() as u64,
            "planned the pull request"
        );
        Ok(())
    }
}

/// Runs blocking forge calls off the runtime's workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.context("forge task")?
}

/// A cheap fingerprint of the state file's text (FNV-1a): a new apply re-plans open pulls.
fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}
