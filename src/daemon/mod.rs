//! `pgitops serve`: the pull-based sync service.
//!
//! Triggers (a poll interval, a file-system watch on a local-path remote's refs, SIGHUP, the
//! webhook, the resync schedule) reach one reconcile loop over a channel. Each reconcile fetches
//! the mirror, marks the newest commit `pending`, applies it from each cluster's last applied
//! commit (clusters in backoff after a failure are left out until their retry time), notes the
//! intermediate commits as superseded, pushes the notes, and updates the metrics. The first
//! SIGTERM takes no new work and lets running steps finish (partial results are recorded, exit
//! 0); a second one exits at once.

mod http;
mod lock;
mod statuses;
mod triggers;
mod window;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use crate::config::{secret, BecomeMethod, Config, ExecutorKind};
use crate::execute::{Become, ExecConfig, Runner, SshOptions, Status};
use crate::ops::apply::{apply, ApplyOptions};
use crate::ops::RepoOptions;
use crate::report::note;
use crate::source::remote::{Credentials, Mirror};
use crate::source::Repo;
use http::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Fetch,
    Resync,
    Shutdown,
}

/// A cluster's failures in a row and when it is tried again.
struct Backoff {
    failures: u32,
    retry_at: Instant,
}

pub fn serve(config_path: &Path) -> Result<()> {
    let cfg = Config::load(config_path)?;
    std::fs::create_dir_all(&cfg.state.dir)
        .with_context(|| format!("creating the state directory {}", cfg.state.dir.display()))?;
    let _lock = lock::Lock::acquire(&cfg.state.dir)?;
    let token = secret(
        cfg.repository.token_env.as_deref(),
        cfg.repository.token_file.as_deref(),
    );
    let mirror = Mirror::open(
        &cfg.state.dir,
        &cfg.repository.remote,
        &cfg.repository.branch,
        Credentials {
            ssh_key: cfg.repository.ssh_key.clone(),
            token,
        },
        note::SYNC,
    )?;
    let (tx, rx) = mpsc::channel::<Trigger>();
    let stop = Arc::new(AtomicBool::new(false));
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(&cfg.http.listen))
        .with_context(|| format!("listening on {}", cfg.http.listen))?;
    let hook_secret = cfg
        .http
        .hook_secret_env
        .as_deref()
        .and_then(|e| std::env::var(e).ok());
    rt.spawn(http::serve(
        listener,
        metrics.clone(),
        tx.clone(),
        hook_secret,
    ));
    rt.spawn(triggers::signals(tx.clone(), stop.clone()));
    rt.spawn(triggers::poll(
        tx.clone(),
        Duration::from_secs(cfg.repository.poll_seconds),
    ));
    if let Some(expr) = cfg.schedule.resync.clone() {
        rt.spawn(triggers::resync(
            tx.clone(),
            expr.to_string(),
            cfg.schedule.timezone,
        ));
    }
    let _watcher = triggers::watch(&cfg.repository.remote, tx.clone());
    tracing::info!(remote = %cfg.repository.remote, branch = %cfg.repository.branch, listen = %cfg.http.listen, "pgitops serving");
    let _ = tx.send(Trigger::Fetch);
    let mut svc = Service {
        cfg: &cfg,
        mirror: &mirror,
        stop: &stop,
        metrics: &metrics,
        backoff: BTreeMap::new(),
        last_head: read_head(&cfg),
        last_notes: None,
        statuses: statuses::Statuses::new(&cfg),
    };
    loop {
        let wait = svc
            .backoff
            .values()
            .map(|b| b.retry_at.saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(Duration::from_secs(3600));
        let first = match rx.recv_timeout(wait.max(Duration::from_millis(50))) {
            Ok(t) => t,
            Err(mpsc::RecvTimeoutError::Timeout) => Trigger::Fetch,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        // Coalesce a burst of triggers into one reconcile.
        let triggers: Vec<Trigger> = std::iter::once(first).chain(rx.try_iter()).collect();
        if stop.load(Ordering::SeqCst) || triggers.contains(&Trigger::Shutdown) {
            break;
        }
        if let Err(e) = svc.reconcile(triggers.contains(&Trigger::Resync)) {
            tracing::error!(error = %format!("{e:#}"), "reconcile failed");
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    if let Err(e) = mirror.push_notes() {
        tracing::warn!(error = %e, "pushing notes at shutdown");
    }
    tracing::info!("pgitops stopped");
    Ok(())
}

fn notes_tip(git: &git2::Repository) -> Option<git2::Oid> {
    git.find_reference(note::NOTES_REF)
        .ok()
        .and_then(|r| r.target())
}

fn head_file(cfg: &Config) -> std::path::PathBuf {
    cfg.state.dir.join("head")
}

fn read_head(cfg: &Config) -> Option<String> {
    std::fs::read_to_string(head_file(cfg))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn write_head(cfg: &Config, head: &str) -> Result<()> {
    let tmp = cfg.state.dir.join(".head.tmp");
    std::fs::write(&tmp, head)?;
    std::fs::rename(tmp, head_file(cfg))?;
    Ok(())
}

fn exec_config(cfg: &Config, stop: &Arc<AtomicBool>) -> (ExecConfig, Runner) {
    let e = &cfg.executor;
    let timeout = Duration::from_secs(e.timeout_seconds.max(1));
    let runner = Runner::ssh(SshOptions {
        user: e.ssh_user.clone(),
        identity: e.identity.clone(),
        known_hosts: e.known_hosts.clone(),
        config_file: e.ssh_config.clone(),
        control_dir: e.control_dir.clone(),
        connect_timeout: Duration::from_secs(10).min(timeout),
        reuse: false,
    });
    let become_method = match e.become_method {
        BecomeMethod::Sudo => Become::Sudo,
        BecomeMethod::None => Become::None,
        BecomeMethod::Runuser => Become::Runuser,
    };
    let exec = ExecConfig {
        become_method,
        dbsu: e.dbsu.clone(),
        pg_bin: e.pg_bin.clone(),
        socket_dir: e.socket_dir.clone(),
        timeout,
        concurrency: e.concurrency,
        closed_classes: window::closed_classes(cfg, chrono::Utc::now()),
        stop: stop.clone(),
        journal: None,
        pigsty: (e.kind == ExecutorKind::Pigsty).then(|| crate::execute::pigsty::PigstyConfig {
            home: e.pigsty_home.clone().unwrap_or_default(),
            ansible_playbook: e.ansible_playbook.clone(),
            old_inventory: None,
            new_inventory: Default::default(),
            secrets: vec![],
            timeout: timeout * 10,
        }),
    };
    (exec, runner)
}

/// The service's working state between reconciles.
struct Service<'a> {
    cfg: &'a Config,
    mirror: &'a Mirror,
    stop: &'a Arc<AtomicBool>,
    metrics: &'a Arc<Mutex<Metrics>>,
    backoff: BTreeMap<String, Backoff>,
    last_head: Option<String>,
    last_notes: Option<git2::Oid>,
    statuses: statuses::Statuses,
}

impl Service<'_> {
    fn reconcile(&mut self, resync: bool) -> Result<()> {
        let (cfg, mirror, stop, metrics) = (self.cfg, self.mirror, self.stop, self.metrics);
        let newest = match mirror.fetch() {
            Ok(h) => h,
            Err(e) => {
                metrics.lock().expect("metrics").fetch_errors += 1;
                return Err(e.into());
            }
        };
        let opts = RepoOptions {
            repo: mirror.path.clone(),
            inventory: cfg.repository.inventory.clone(),
            state_dir: Some(cfg.state.dir.clone()),
        };
        let state = crate::report::state::State::load(&cfg.state.dir)?;
        let now = Instant::now();
        let due = self.backoff.values().any(|b| b.retry_at <= now);
        // (A first run has no last head, so it is never idle; an inventory without clusters is
        // not "behind" forever.)
        let behind = state
            .clusters
            .values()
            .any(|c| c.last_applied.as_deref() != Some(newest.as_str()));
        let held = state.clusters.values().any(|c| {
            c.last_attempted.as_deref() == Some(newest.as_str())
                && c.last_applied.as_deref() != Some(newest.as_str())
        });
        let repo = Repo::open(&mirror.path)?;
        let git = repo.git();
        // A held action is retried when the notes changed (an approval arrived), not on every poll.
        let notes = notes_tip(git);
        let new_notes = notes != self.last_notes;
        let idle = self.last_head.as_deref() == Some(newest.as_str()) && !due && !resync;
        if idle && (!behind || (held && !new_notes)) {
            return Ok(());
        }
        // A force push can leave applied commits off the branch: the diff is between trees, so
        // it still works; the commit's note says so.
        let head_oid = git2::Oid::from_str(&newest)?;
        let mut off_branch: Vec<String> = state
            .clusters
            .values()
            .filter_map(|c| c.last_applied.clone())
            .filter(|a| {
                *a != newest
                    && !git2::Oid::from_str(a)
                        .is_ok_and(|a| git.graph_descendant_of(head_oid, a).unwrap_or(false))
            })
            .collect();
        off_branch.dedup();
        note::mark_pending(git, head_oid)?;
        self.statuses.pending(&newest);
        let skip = self
            .backoff
            .iter()
            .filter(|(_, b)| b.retry_at > now)
            .map(|(c, _)| c.clone())
            .collect();
        let (exec, runner) = exec_config(cfg, stop);
        let started = Instant::now();
        let done = apply(
            &opts,
            ApplyOptions {
                range: Some(newest.clone()),
                cluster: None,
                skip,
                resync,
                dry_run: false,
                exec,
                runner,
            },
        )?;
        // Intermediate commits since the last reconcile were applied cumulatively with `newest`.
        if let Some(prev) = self.last_head.as_deref().filter(|p| *p != newest) {
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
        write_head(cfg, &newest)?;
        let mut failed_clusters = Vec::new();
        for r in &done.results {
            if r.status == Status::Failed {
                failed_clusters.push(r.cluster.clone());
            }
        }
        let applied: Vec<String> = done
            .runs
            .iter()
            .flat_map(|r| r.plan.actions.iter().map(|a| a.cluster.clone()))
            .filter(|c| !failed_clusters.contains(c))
            .collect();
        for c in applied {
            self.backoff.remove(&c);
        }
        for c in &failed_clusters {
            let b = self.backoff.entry(c.clone()).or_insert(Backoff {
                failures: 0,
                retry_at: now,
            });
            b.failures += 1;
            b.retry_at = Instant::now() + Duration::from_secs((5u64 << b.failures.min(7)).min(600));
        }
        if !off_branch.is_empty() {
            let short: Vec<&str> = off_branch.iter().map(|c| &c[..12.min(c.len())]).collect();
            let text = format!("the branch was rewritten: last applied {} is not an ancestor of this commit; the trees were diffed", short.join(", "));
            tracing::warn!(commit = %newest, "{text}");
            note::remark(git, head_oid, &text)?;
        }
        self.statuses.finished(&newest, &done);
        update_metrics(
            metrics,
            &cfg.state.dir,
            git,
            &newest,
            &done,
            started.elapsed(),
        )?;
        if let Err(e) = mirror.push_notes() {
            tracing::warn!(error = %e, "pushing notes; retried on the next reconcile");
        }
        self.last_notes = notes_tip(git);
        tracing::info!(commit = %newest, result = done.note.as_ref().map(|n| n.result).unwrap_or("none"), "reconciled");
        Ok(())
    }
}

fn update_metrics(
    metrics: &Arc<Mutex<Metrics>>,
    state_dir: &Path,
    git: &git2::Repository,
    newest: &str,
    done: &crate::ops::apply::Applied,
    took: Duration,
) -> Result<()> {
    let state = crate::report::state::State::load(state_dir)?;
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
