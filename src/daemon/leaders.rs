//! The leader watch: on each tick of `[schedule] leaders`, who leads each PGSQL cluster of its
//! last applied inventory in Patroni's view, against the primary that inventory declares. It
//! only observes, never switches: a leader that is not the declared primary is reported once per
//! change (a `tracing` warning with the commit that records it, an observation in the note of the
//! cluster's last applied commit, `leaders.json` in the state directory for `pgitops status`),
//! and `pgitops_cluster_leader_declared` says it on every tick.
//!
//! In: the state (each cluster's last applied commit), those commits' inventories, the service's
//! runner and execution settings. Out: the metric, the log, the notes (pushed), the state file.
//! A tick runs only while no reconcile does (it shares the notes and the SSH masters; and a
//! switchover being applied is no failover), and is bounded ([`LIMIT`]): a reconcile that
//! starts meanwhile waits at most that long. Clusters are asked side by side; a cluster none of
//! whose members answers keeps its last view.

use super::triggers::unix_now;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::http::Metrics;
use super::Shutdown;
use pgitops::config::Config;
use pgitops::execute::native::patroni_leader;
use pgitops::execute::{ExecConfig, Runner};
use pgitops::inventory::Inventory;
use pgitops::ops::loads::LoadCache;
use pgitops::report::leaders::{changed, view, LeaderView, Leaders};
use pgitops::report::note;
use pgitops::report::state::State;
use pgitops::source::remote::Mirror;
use pgitops::source::Repo;

/// How long one tick may ask Patroni (all clusters side by side).
pub const LIMIT: Duration = Duration::from_secs(10);

/// How long one command on a member may take (a member that hangs: the next one is asked).
const PER_MEMBER: Duration = Duration::from_secs(4);

/// The watch's settings and what it keeps between ticks.
pub struct Watch<'a> {
    pub cfg: &'a Config,
    pub mirror: &'a Mirror,
    pub metrics: &'a Arc<Mutex<Metrics>>,
    /// Held by a reconcile while it runs.
    pub busy: &'a tokio::sync::Mutex<()>,
    pub exec: ExecConfig,
    pub runner: Arc<Runner>,
    pub loads: Arc<LoadCache>,
    /// Loaded inventories by commit (those of the clusters' last applied commits).
    inventories: BTreeMap<String, Arc<Inventory>>,
    views: Leaders,
    /// `[ha]`: ticks only while this instance leads.
    ha: Option<super::ha::Ha>,
}

impl<'a> Watch<'a> {
    pub fn new(
        cfg: &'a Config,
        mirror: &'a Mirror,
        metrics: &'a Arc<Mutex<Metrics>>,
        busy: &'a tokio::sync::Mutex<()>,
        (exec, runner, loads): (ExecConfig, Arc<Runner>, Arc<LoadCache>),
    ) -> Watch<'a> {
        let mut exec = exec;
        exec.timeout = exec.timeout.min(PER_MEMBER);
        // What was reported before a restart is not reported again.
        let views = Leaders::load(&cfg.state.dir);
        Watch {
            cfg,
            mirror,
            metrics,
            busy,
            exec,
            runner,
            loads,
            inventories: BTreeMap::new(),
            views,
            ha: None,
        }
    }

    /// With `[ha]`, the watch ticks only while this instance leads (a standby opens no SSH).
    pub fn only_leading(mut self, ha: Option<super::ha::Ha>) -> Watch<'a> {
        self.ha = ha;
        self
    }

    /// Ticks on `schedule` until `stop` fires; a tick that comes while a reconcile runs is
    /// skipped (the reconcile observes the live leaders itself).
    pub async fn run(mut self, schedule: cron::Schedule, tz: chrono_tz::Tz, stop: &Shutdown) {
        while super::triggers::next_tick(&schedule, tz, stop, self.ha.as_ref()).await {
            let Ok(_busy) = self.busy.try_lock() else {
                tracing::debug!("leader watch: a reconcile runs, tick skipped");
                continue;
            };
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %format!("{e:#}"), "leader watch");
            }
        }
    }

    /// The inventory of `commit`: kept, from the service's cache, or loaded.
    fn inventory(&mut self, commit: &str) -> anyhow::Result<Option<Arc<Inventory>>> {
        if let Some(inv) = self.inventories.get(commit) {
            return Ok(Some(inv.clone()));
        }
        let location = &self.cfg.repository.inventory;
        let loaded = match self.loads.get(commit, location) {
            Some(shared) => shared.ok(),
            None => {
                let opts = super::mirror_options(self.cfg, self.mirror, false)?;
                let repo = Repo::open(&self.mirror.path)?;
                pgitops::ops::load_revision(&repo, &opts, commit, true)?
                    .ok()
                    .map(Arc::new)
            }
        };
        if let Some(inv) = &loaded {
            self.inventories.insert(commit.to_string(), inv.clone());
        }
        Ok(loaded)
    }

    async fn tick(&mut self) -> anyhow::Result<()> {
        let dir = &self.cfg.state.dir;
        let state = State::load(dir)?;
        let mut watched = Vec::new();
        for (name, cs) in &state.clusters {
            let Some(commit) = &cs.last_applied else {
                continue;
            };
            if let Some(inv) = self.inventory(commit)? {
                if inv.model.pgsql.contains_key(name) {
                    watched.push((name.clone(), commit.clone(), inv));
                }
            }
        }
        let keep: Vec<&String> = watched.iter().map(|(_, c, _)| c).collect();
        self.inventories.retain(|c, _| keep.contains(&c));
        let (runner, exec) = (&*self.runner, &self.exec);
        let asks = watched.iter().map(|(name, _, inv)| async move {
            let c = &inv.model.pgsql[name];
            let asked = patroni_leader::leader(inv, c, runner, exec);
            (name, tokio::time::timeout(LIMIT, asked).await)
        });
        let answers = futures::future::join_all(asks).await;
        let at = unix_now();
        let mut views = Leaders::default();
        let mut noted = false;
        for ((name, commit, inv), (_, answer)) in watched.iter().zip(answers) {
            let before = self.views.clusters.get(name);
            let leader = match answer {
                Ok(Ok(Some(leader))) => Some(leader),
                Ok(Ok(None)) => {
                    tracing::debug!(cluster = %name, "leader watch: Patroni names no leader");
                    None
                }
                Ok(Err(e)) => {
                    tracing::debug!(cluster = %name, error = %e, "leader watch: no member answered");
                    None
                }
                Err(_) => {
                    tracing::debug!(cluster = %name, "leader watch: no answer within {LIMIT:?}");
                    None
                }
            };
            let Some(leader) = leader else {
                // Nothing new: the last view holds.
                if let Some(b) = before {
                    views.clusters.insert(name.clone(), b.clone());
                }
                continue;
            };
            let Some(mut now) = view(&inv.model.pgsql[name], &leader, commit, at) else {
                continue;
            };
            if changed(before, &now) {
                report(name, &now);
                noted |= self.record(name, &now);
            } else if let Some(b) = before {
                now.since = b.since;
            }
            self.metrics
                .lock()
                .expect("metrics")
                .leader_declared
                .insert(name.clone(), now.matches);
            views.clusters.insert(name.clone(), now);
        }
        // Clusters no longer applied leave the metric and the view.
        self.metrics
            .lock()
            .expect("metrics")
            .leader_declared
            .retain(|c, _| watched.iter().any(|(n, _, _)| n == c));
        if views != self.views {
            views.save(dir)?;
            self.views = views;
        }
        if noted {
            if let Err(e) = self.mirror.push_notes() {
                tracing::warn!(error = %e, "pushing notes; retried on the next reconcile");
            }
        }
        Ok(())
    }

    /// Adds the observation to the note of the cluster's last applied commit.
    fn record(&self, cluster: &str, v: &LeaderView) -> bool {
        let written = Repo::open(&self.mirror.path)
            .map_err(anyhow::Error::from)
            .and_then(|repo| {
                let oid = git2::Oid::from_str(&v.commit)?;
                note::observe(repo.git(), oid, v.observation(cluster))?;
                Ok(())
            });
        match written {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(cluster, error = %format!("{e:#}"), "recording the leader watch's observation");
                false
            }
        }
    }
}

/// The log line of a change: a warning when the leader is not the declared primary.
fn report(cluster: &str, v: &LeaderView) {
    if v.matches {
        tracing::info!(cluster, leader = %v.leader, declared = %v.declared, "{}", v.message);
    } else {
        tracing::warn!(
            cluster,
            leader = %v.leader,
            leader_host = %v.leader_host,
            declared = %v.declared,
            commit = %v.commit,
            "{}",
            v.message
        );
    }
}
