//! One reconcile of the service: fetch the mirror, decide which clusters are due
//! ([`super::controller`]), apply them from their last applied commit with the service's
//! long-lived SSH runner, mark intermediate commits superseded, post statuses, update metrics,
//! push the notes, and requeue each cluster from its results.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use super::controller::{Controller, Due};
use super::http::Metrics;
use super::{statuses, window, Shutdown};
use pgitops::config::{Config, ExecutorKind};
use pgitops::execute::settings::Overrides;
use pgitops::execute::{ExecConfig, Runner, Status};
use pgitops::ops::apply::{apply, Applied, ApplyOptions};
use pgitops::ops::executor::{build, ExecutorSettings, PigstySettings};
use pgitops::ops::loads::LoadCache;
use pgitops::plan::output::short;
use pgitops::report::note;
use pgitops::report::state::State;
use pgitops::source::remote::Mirror;
use pgitops::source::Repo;

/// The service's working state between reconciles.
pub struct Service<'a> {
    cfg: &'a Config,
    mirror: &'a Mirror,
    metrics: &'a Arc<Mutex<Metrics>>,
    shutdown: &'a Shutdown,
    /// Execution settings; the window state is filled in per reconcile.
    exec: ExecConfig,
    /// SSH masters, opened on first use and kept for the life of the service.
    runner: Arc<Runner>,
    ctl: Controller,
    last_head: Option<String>,
    last_notes: Option<git2::Oid>,
    statuses: statuses::Statuses,
    /// The last applied revision's load (and the newest): a new commit costs one load.
    loads: Arc<LoadCache>,
    /// `[ha]`: the election, and the term whose shared state was last read.
    ha: Option<super::ha::Ha>,
    term: Option<i64>,
}

use pgitops::execute::native::supervise::Supervision;

fn executor_settings(cfg: &Config) -> ExecutorSettings {
    let e = &cfg.executor;
    ExecutorSettings {
        local: false,
        ssh_user: e.ssh_user.clone(),
        identity: e.identity.clone(),
        known_hosts: e.known_hosts.clone(),
        ssh_config: e.ssh_config.clone(),
        control_dir: e.control_dir.clone(),
        ssh_reuse: false,
        become_method: e.become_method,
        pg: Overrides {
            dbsu: e.dbsu.clone(),
            bin_dir: e.pg_bin.clone(),
            socket_dir: e.socket_dir.clone(),
        },
        timeout: Duration::from_secs(e.timeout_seconds),
        concurrency: e.concurrency,
        pigsty: (e.kind != ExecutorKind::Native).then(|| PigstySettings {
            home: e.pigsty_home.clone().unwrap_or_default(),
            ansible_playbook: e.ansible_playbook.clone(),
            native_first: e.kind == ExecutorKind::Auto,
        }),
        supervision: Supervision {
            choice: e.supervisor,
            runit_dir: e.runit_dir.clone(),
        },
    }
}

impl<'a> Service<'a> {
    pub fn new(
        cfg: &'a Config,
        mirror: &'a Mirror,
        metrics: &'a Arc<Mutex<Metrics>>,
        shutdown: &'a Shutdown,
        ha: Option<super::ha::Ha>,
    ) -> Service<'a> {
        let (mut exec, runner) = build(executor_settings(cfg));
        exec.stop = shutdown.flag.clone();
        // A cluster left behind the last head (a crash, a hold) makes the first reconcile a
        // full one.
        let head = read_head(&cfg.state.dir);
        let behind = State::load(&cfg.state.dir)
            .is_ok_and(|s| s.clusters.values().any(|c| c.last_applied != head));
        Service {
            cfg,
            mirror,
            metrics,
            shutdown,
            exec,
            runner: Arc::new(runner),
            ctl: Controller::default(),
            last_head: head.filter(|_| !behind),
            last_notes: None,
            statuses: statuses::Statuses::new(cfg),
            loads: Arc::new(LoadCache::new(2)),
            ha,
            term: None,
        }
    }

    /// What the leader watch shares with the reconciles: the execution settings, the SSH
    /// runner and the loaded revisions.
    pub fn watch_parts(&self) -> (ExecConfig, Arc<Runner>, Arc<LoadCache>) {
        (self.exec.clone(), self.runner.clone(), self.loads.clone())
    }

    /// Plans the open pull requests against what is applied now ([`super::pulls`]).
    /// With `[ha]` only the leader comments (a standby's plans would race its comments).
    pub async fn plan_pulls(
        &self,
        pulls: &mut super::pulls::Pulls,
        yield_now: &(dyn Fn() -> bool + Sync),
    ) -> Result<()> {
        if self.ha.as_ref().is_some_and(|h| h.leading().is_none()) {
            return Ok(());
        }
        pulls
            .check(self.cfg, self.mirror, self.watch_parts(), yield_now)
            .await
    }

    pub fn wake_at(&self) -> Option<Instant> {
        self.ctl.wake_at()
    }

    /// Closes the SSH masters.
    pub async fn close(&self) {
        self.runner.close().await;
    }

    pub async fn reconcile(&mut self, resync: bool) -> Result<()> {
        let cfg = self.cfg;
        let t0 = Instant::now();
        if let Some(ha) = &self.ha {
            // A standby only keeps its mirror warm; a new leader starts from the shared state.
            match ha
                .before_reconcile(self.mirror, &cfg.state.dir, &mut self.term)
                .await?
            {
                None => return Ok(()),
                Some((fence, took_over)) => {
                    if took_over {
                        self.last_head = None;
                        self.ctl = Controller::default();
                    }
                    self.runner.fence(Some(fence.clone()));
                    self.exec.fence = Some(fence);
                }
            }
        }
        let newest = match self.mirror.fetch() {
            Ok(h) => h,
            Err(e) => {
                self.metrics.lock().expect("metrics").fetch_errors += 1;
                return Err(e.into());
            }
        };
        let repo = Repo::open(&self.mirror.path)?;
        let git = repo.git();
        let notes = notes_tip(git);
        let new_commit = self.last_head.as_deref() != Some(newest.as_str());
        let now = Instant::now();
        let due = self
            .ctl
            .due(now, new_commit || resync, notes != self.last_notes);
        self.last_notes = notes;
        let state = State::load(&cfg.state.dir)?;
        let known: BTreeSet<String> = state
            .clusters
            .keys()
            .chain(self.ctl.clusters.keys())
            .cloned()
            .collect();
        let skip: BTreeSet<String> = match due {
            Due::AllBut(skip) => skip,
            Due::Only(only) if only.is_empty() => return Ok(()),
            Due::Only(only) => known.difference(&only).cloned().collect(),
        };
        // A force push can leave applied commits off the branch: the diff is between trees, so
        // it still works; the commit's note says so.
        let head_oid = git2::Oid::from_str(&newest)?;
        let off_branch: BTreeSet<String> = state
            .clusters
            .iter()
            .filter(|(name, _)| !skip.contains(*name))
            .filter_map(|(_, c)| c.last_applied.clone())
            .filter(|a| {
                *a != newest
                    && !git2::Oid::from_str(a)
                        .is_ok_and(|a| git.graph_descendant_of(head_oid, a).unwrap_or(false))
            })
            .collect::<BTreeSet<_>>();
        note::mark_pending(git, head_oid)?;
        self.statuses.pending(&newest);
        let mut exec = self.exec.clone();
        exec.closed_classes = window::closed_classes(cfg, chrono::Utc::now());
        let opts = super::mirror_options(cfg, self.mirror, true)?;
        let options = ApplyOptions {
            range: Some(newest.clone()),
            cluster: None,
            skip: skip.clone(),
            resync,
            dry_run: false,
            exec,
            cache: Some(self.loads.clone()),
        };
        let fetched = t0.elapsed();
        let started = Instant::now();
        let done = apply(&opts, options, &self.runner).await?;
        let applied = started.elapsed();
        // Intermediate commits since the last reconcile were applied cumulatively with `newest`
        // (not when an unverified commit held the range: its note on `newest` says so).
        let held = done.runs.iter().any(|r| r.held.is_some());
        if let Some(prev) = self.last_head.as_deref().filter(|p| *p != newest && !held) {
            for c in repo
                .commits_between(Some(prev), &newest)?
                .iter()
                .filter(|c| c.id != newest)
            {
                note::mark_superseded(git, git2::Oid::from_str(&c.id)?, &newest)?;
                self.statuses.superseded(&c.id, &newest);
            }
        }
        self.last_head = Some(newest.clone());
        write_head(&cfg.state.dir, &newest)?;
        self.requeue(&done, &known, &skip);
        if let Some(why) = &done.unrecorded {
            tracing::error!(commit = %newest, "results not recorded: {why}");
        }
        if !off_branch.is_empty() {
            let short: Vec<&str> = off_branch.iter().map(|c| short(c)).collect();
            let text = format!("the branch was rewritten: last applied {} is not an ancestor of this commit; the trees were diffed", short.join(", "));
            tracing::warn!(commit = %newest, "{text}");
            note::remark(git, head_oid, &text)?;
        }
        // A deposed leader publishes nothing: its notes stay local and are dropped on takeover.
        if let Some(Err(e)) = self.exec.fence.as_ref().map(|f| f.held_locally()) {
            tracing::warn!(commit = %newest, "{e}; its notes and statuses are not published");
            return Ok(());
        }
        self.statuses.finished(&newest, &done);
        update_metrics(self.metrics, &cfg.state.dir, git, &newest, &done, applied)?;
        let pushing = Instant::now();
        if let Err(e) = self.mirror.push_notes() {
            tracing::warn!(error = %e, "pushing notes; retried on the next reconcile");
        }
        self.last_notes = notes_tip(git);
        tracing::info!(
            commit = %newest,
            result = done.note.as_ref().map(|n| n.result).unwrap_or("none"),
            fetch_ms = fetched.as_millis() as u64,
            apply_ms = applied.as_millis() as u64,
            push_ms = pushing.elapsed().as_millis() as u64,
            total_ms = t0.elapsed().as_millis() as u64,
            "reconciled"
        );
        Ok(())
    }

    /// Every cluster the run covered says when it runs next.
    fn requeue(&mut self, done: &Applied, known: &BTreeSet<String>, skip: &BTreeSet<String>) {
        if self.shutdown.triggered() {
            return;
        }
        let mut covered: BTreeSet<String> = known.clone();
        for run in &done.runs {
            covered.extend(run.plan.actions.iter().map(|a| a.cluster.clone()));
            if let Some((_, new)) = &run.inventories {
                covered.extend(new.model.pgsql.keys().cloned());
            }
        }
        let now = Instant::now();
        let wall = chrono::Utc::now();
        let cfg = self.cfg;
        let opens_in = |class| {
            window::opens_at(cfg, class, wall)
                .map(|t| (t - wall).to_std().unwrap_or_default() + Duration::from_millis(50))
        };
        for cluster in covered.difference(skip) {
            if done.unrecorded.is_some() {
                // The state did not advance: the run is retried after the cluster's backoff.
                self.ctl.failed(cluster, now);
                continue;
            }
            let mine: Vec<_> = done
                .results
                .iter()
                .filter(|r| &r.cluster == cluster)
                .collect();
            self.ctl.ran(cluster, &mine, now, &opens_in);
        }
    }
}

fn notes_tip(git: &git2::Repository) -> Option<git2::Oid> {
    git.find_reference(note::NOTES_REF)
        .ok()
        .and_then(|r| r.target())
}

fn read_head(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("head"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn write_head(dir: &Path, head: &str) -> Result<()> {
    pgitops::fsutil::write_atomic(&dir.join("head"), head.as_bytes())?;
    Ok(())
}

fn update_metrics(
    metrics: &Arc<Mutex<Metrics>>,
    state_dir: &Path,
    git: &git2::Repository,
    newest: &str,
    done: &Applied,
    took: Duration,
) -> Result<()> {
    let state = State::load(state_dir)?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let committed = git
        .find_commit(git2::Oid::from_str(newest)?)?
        .time()
        .seconds()
        .max(0) as u64;
    let mut m = metrics.lock().expect("metrics");
    for (name, c) in &state.clusters {
        if c.last_applied.as_deref() == Some(newest) {
            m.last_applied.insert(name.clone(), now);
        }
    }
    m.applies += 1;
    m.apply_seconds_sum += took.as_secs_f64();
    m.failures += done
        .results
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count() as u64;
    m.awaiting_approval = done
        .results
        .iter()
        .filter(|r| r.status == Status::AwaitingApproval)
        .count();
    if !done.results.is_empty() {
        m.observe_latency(now.saturating_sub(committed) as f64);
    }
    Ok(())
}
