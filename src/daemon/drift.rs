//! The drift check in the service: on each tick of `[schedule] drift`, each applied PGSQL
//! cluster's live state against the inventory of its last applied commit (the same check as
//! `pgitops drift`). It only reports, never heals (healing is `resync`, opt-in, and never
//! drops): `pgitops_drift_objects{cluster}` on every tick, `drift.json` in the state directory
//! for `pgitops status`, a warning when a cluster's drift changes, and, with
//! `[schedule] drift_status = true`, a forge status `pgitops/drift/<cluster>` on the applied
//! commit when the verdict changes.
//!
//! In: the configuration, the mirror, the service's runner, execution settings and load cache.
//! Out: the metric, the record, the log, the statuses. A tick runs only while no reconcile does
//! (it shares the SSH masters, and an apply half done is no drift): it holds the reconcile lock,
//! and is bounded ([`LIMIT`]), so a reconcile that starts meanwhile waits at most that long.

use super::triggers::unix_now;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::http::Metrics;
use super::statuses::Statuses;
use super::Shutdown;
use pgitops::config::Config;
use pgitops::execute::{ExecConfig, Runner};
use pgitops::ops::loads::LoadCache;
use pgitops::report::drift::{DriftRecord, DriftView};
use pgitops::source::remote::Mirror;

/// How long one tick may read the nodes (all clusters).
pub const LIMIT: Duration = Duration::from_secs(60);

/// How long one command on a member may take.
const PER_COMMAND: Duration = Duration::from_secs(10);

pub struct Check<'a> {
    pub cfg: &'a Config,
    pub mirror: &'a Mirror,
    pub metrics: &'a Arc<Mutex<Metrics>>,
    /// Held by a reconcile while it runs.
    pub busy: &'a tokio::sync::Mutex<()>,
    exec: ExecConfig,
    runner: Arc<Runner>,
    loads: Arc<LoadCache>,
    statuses: Option<Statuses>,
    record: DriftRecord,
    /// `[ha]`: only the leader reads the nodes (a standby opens no SSH).
    ha: Option<super::ha::Ha>,
}

impl<'a> Check<'a> {
    pub fn new(
        cfg: &'a Config,
        mirror: &'a Mirror,
        metrics: &'a Arc<Mutex<Metrics>>,
        busy: &'a tokio::sync::Mutex<()>,
        (exec, runner, loads): (ExecConfig, Arc<Runner>, Arc<LoadCache>),
    ) -> Check<'a> {
        let mut exec = exec;
        exec.timeout = exec.timeout.min(PER_COMMAND);
        let statuses = cfg.schedule.drift_status.then(|| Statuses::new(cfg));
        Check {
            cfg,
            mirror,
            metrics,
            busy,
            exec,
            runner,
            loads,
            statuses,
            record: DriftRecord::load(&cfg.state.dir),
            ha: None,
        }
    }

    /// With `[ha]`: ticks only while this instance leads.
    pub fn only_leading(mut self, ha: Option<super::ha::Ha>) -> Check<'a> {
        self.ha = ha;
        self
    }

    /// Ticks on `schedule` until `stop` fires; a tick that comes while a reconcile runs waits
    /// for it (the check then reads what the apply left).
    pub async fn run(mut self, schedule: cron::Schedule, tz: chrono_tz::Tz, stop: &Shutdown) {
        while super::triggers::next_tick(&schedule, tz, stop, self.ha.as_ref()).await {
            let busy = tokio::select! {
                b = self.busy.lock() => b,
                () = stop.wait() => return,
            };
            let done = tokio::time::timeout(LIMIT, self.tick()).await;
            drop(busy);
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "drift check"),
                Err(_) => tracing::warn!("drift check: not done within {LIMIT:?}; skipped"),
            }
        }
    }

    async fn tick(&mut self) -> anyhow::Result<()> {
        let opts = super::mirror_options(self.cfg, self.mirror, false)?;
        let found = pgitops::ops::drift::drift(
            &opts,
            None,
            None,
            &self.runner,
            &self.exec,
            Some(&self.loads),
        )
        .await?;
        let at = unix_now();
        let mut record = DriftRecord::default();
        for d in found.iter().filter(|d| !d.never_applied) {
            let now = DriftView::of(d, at);
            let before = self.record.clusters.get(&d.cluster);
            let changed = before.is_none_or(|b| {
                (b.objects, &b.summary, &b.commit, b.failed)
                    != (now.objects, &now.summary, &now.commit, now.failed)
            });
            if d.error.is_none() {
                self.metrics
                    .lock()
                    .expect("metrics")
                    .drift_objects
                    .insert(d.cluster.clone(), now.objects as u64);
            }
            if changed {
                match (&d.error, now.objects) {
                    (Some(e), _) => {
                        tracing::warn!(cluster = %d.cluster, error = %e, "drift check: not all read")
                    }
                    (None, 0) => tracing::info!(cluster = %d.cluster, "drift check: no drift"),
                    (None, _) => {
                        tracing::warn!(cluster = %d.cluster, objects = now.objects, "{}", now.summary)
                    }
                }
                if let (Some(s), Some(sha), None) = (&self.statuses, &d.commit, &d.error) {
                    s.drift(sha, &d.cluster, now.objects > 0, now.summary.clone());
                }
            }
            record.clusters.insert(d.cluster.clone(), now);
        }
        self.metrics
            .lock()
            .expect("metrics")
            .drift_objects
            .retain(|c, _| record.clusters.contains_key(c));
        if record != self.record {
            record.save(&self.cfg.state.dir)?;
            self.record = record;
        }
        Ok(())
    }
}
