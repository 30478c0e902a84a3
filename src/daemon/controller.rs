//! The service as a per-cluster controller (pure): after each run, every cluster says when it
//! must be reconciled again — never (until a new commit), at a time (its backoff after a failure,
//! or when the window of a held class opens), or when an approval arrives. The loop sleeps until
//! the earliest of these or a trigger, and reconciles the clusters that are due.
//!
//! In: each cluster's action results of the last run, the time its held classes open, and the
//! clock. Out: [`Requeue`] per cluster and the set of clusters due now.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use pgitops::execute::{ActionResult, Status};
use pgitops::plan::Class;

/// When a cluster must run next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Requeue {
    /// Run again at this time (backoff, or a window opening), whatever else happens.
    pub at: Option<Instant>,
    /// Run again when approvals change (an action waits for one).
    pub on_approval: bool,
}

/// The error policy: 10 s after the first failure, doubling, at most 10 minutes.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs((5u64 << failures.clamp(1, 7)).min(600))
}

/// A cluster's controller state.
#[derive(Debug, Clone, Default)]
pub struct ClusterCtl {
    /// Failed runs in a row.
    pub failures: u32,
    pub next: Requeue,
}

/// All clusters the service has seen.
#[derive(Debug, Default)]
pub struct Controller {
    pub clusters: BTreeMap<String, ClusterCtl>,
}

/// Which clusters a reconcile covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Every cluster except these (a new commit or a resync: all but those in backoff).
    AllBut(BTreeSet<String>),
    /// Only these (nothing new: requeued clusters whose time came or whose approval arrived).
    Only(BTreeSet<String>),
}

impl Controller {
    /// The earliest requeue time of any cluster.
    pub fn wake_at(&self) -> Option<Instant> {
        self.clusters.values().filter_map(|c| c.next.at).min()
    }

    /// The clusters due at `now`: all but those in backoff when the branch moved (or a resync
    /// asks), else those whose time came or whose approval may have arrived.
    pub fn due(&self, now: Instant, new_commit: bool, approvals_changed: bool) -> Due {
        let in_backoff = |c: &ClusterCtl| c.failures > 0 && c.next.at.is_some_and(|t| t > now);
        if new_commit {
            let held = self.clusters.iter().filter(|(_, c)| in_backoff(c));
            return Due::AllBut(held.map(|(n, _)| n.clone()).collect());
        }
        let ready = |c: &ClusterCtl| {
            c.next.at.is_some_and(|t| t <= now) || (approvals_changed && c.next.on_approval)
        };
        Due::Only(
            self.clusters
                .iter()
                .filter(|(_, c)| ready(c))
                .map(|(n, _)| n.clone())
                .collect(),
        )
    }

    /// A cluster whose run failed or could not be recorded: retried after its backoff.
    pub fn failed(&mut self, cluster: &str, now: Instant) {
        let ctl = self.clusters.entry(cluster.to_string()).or_default();
        ctl.failures += 1;
        ctl.next = Requeue {
            at: Some(now + backoff(ctl.failures)),
            on_approval: false,
        };
    }

    /// Records a cluster's run: its results decide when it runs next. `opens_in` gives the time
    /// until a closed class's window opens (None: it never opens on its own).
    pub fn ran(
        &mut self,
        cluster: &str,
        results: &[&ActionResult],
        now: Instant,
        opens_in: &dyn Fn(Class) -> Option<Duration>,
    ) {
        if results.iter().any(|r| r.status == Status::Failed) {
            return self.failed(cluster, now);
        }
        let ctl = self.clusters.entry(cluster.to_string()).or_default();
        ctl.failures = 0;
        let window = results
            .iter()
            .filter(|r| r.status == Status::AwaitingWindow)
            .filter_map(|r| opens_in(r.class))
            .min();
        ctl.next = Requeue {
            at: window.map(|d| now + d),
            on_approval: results.iter().any(|r| r.status == Status::AwaitingApproval),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: Status, class: Class) -> ActionResult {
        ActionResult {
            id: "pg-a/database/x/drop".into(),
            cluster: "pg-a".into(),
            class,
            status,
            hosts: vec![],
            message: String::new(),
            ms: 0,
            created: false,
            executor: None,
        }
    }

    #[test]
    fn failures_back_off_and_a_new_commit_skips_clusters_in_backoff() {
        let mut c = Controller::default();
        let now = Instant::now();
        let failed = result(Status::Failed, Class::Online);
        c.ran("pg-a", &[&failed], now, &|_| None);
        assert_eq!(c.wake_at(), Some(now + Duration::from_secs(10)));
        c.ran("pg-a", &[&failed], now, &|_| None);
        assert_eq!(c.wake_at(), Some(now + Duration::from_secs(20)));
        c.ran("pg-b", &[], now, &|_| None);
        let skip = BTreeSet::from(["pg-a".to_string()]);
        assert_eq!(c.due(now, true, false), Due::AllBut(skip));
        let later = now + Duration::from_secs(21);
        let only = BTreeSet::from(["pg-a".to_string()]);
        assert_eq!(c.due(later, false, false), Due::Only(only));
        let ok = result(Status::Applied, Class::Online);
        c.ran("pg-a", &[&ok], later, &|_| None);
        assert_eq!(c.wake_at(), None);
    }

    #[test]
    fn a_closed_window_requeues_at_its_opening_and_approvals_wake_held_clusters() {
        let mut c = Controller::default();
        let now = Instant::now();
        let waits = result(Status::AwaitingWindow, Class::Restart);
        let held = result(Status::AwaitingApproval, Class::Destructive);
        let opens = |class: Class| (class == Class::Restart).then(|| Duration::from_secs(7));
        c.ran("pg-a", &[&waits], now, &opens);
        c.ran("pg-b", &[&held], now, &opens);
        assert_eq!(c.wake_at(), Some(now + Duration::from_secs(7)));
        assert_eq!(c.due(now, false, false), Due::Only(BTreeSet::new()));
        let b = BTreeSet::from(["pg-b".to_string()]);
        assert_eq!(c.due(now, false, true), Due::Only(b));
        let a = BTreeSet::from(["pg-a".to_string()]);
        let at = now + Duration::from_secs(7);
        assert_eq!(c.due(at, false, false), Due::Only(a));
    }
}
