//! The leader watch's record: who leads each PGSQL cluster in Patroni's view against the primary
//! its last applied inventory declares, kept in `leaders.json` in the state directory (written
//! atomically by the service, read by `pgitops status`), and the observation a change adds to
//! the note of the cluster's last applied commit.
//!
//! In: a cluster of the inventory and the Patroni member name that leads it now. Out: a
//! [`LeaderView`] (pure, [`view`]), whether it is a change worth reporting ([`changed`]), and
//! the [`Observation`] and message that report it. pgitops only observes: a leader that is not
//! the declared primary is reported with the commit that records it, never switched back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::inventory::model::PgCluster;

/// The file, in the state directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("leaders.json")
}

/// One cluster's leader as last observed, against its declared primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderView {
    /// Patroni's member name of the leader (`<cluster>-<seq>`).
    pub leader: String,
    /// The inventory host of the leader (empty when no member of the inventory has that name).
    pub leader_host: String,
    /// The declared primary's host.
    pub declared: String,
    /// The declared primary's Patroni member name.
    pub declared_name: String,
    /// The leader is the declared primary.
    pub matches: bool,
    /// The commit whose inventory declares `declared` (the cluster's last applied).
    #[serde(default)]
    pub commit: String,
    /// Since when this view holds (seconds since the Unix epoch).
    #[serde(default)]
    pub since: u64,
    /// What the service logged and noted.
    #[serde(default)]
    pub message: String,
}

/// The leader watch's current view of every cluster it could observe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaders {
    #[serde(default)]
    pub clusters: BTreeMap<String, LeaderView>,
}

impl Leaders {
    /// The view in `dir` (empty when there is none or it does not read: it is rebuilt on the
    /// next tick).
    pub fn load(dir: &Path) -> Leaders {
        crate::fsutil::read_json_or_default(&path(dir))
    }

    pub fn save(&self, dir: &Path) -> Result<(), crate::fsutil::AtomicWriteError> {
        crate::fsutil::write_json(&path(dir), self)
    }
}

/// An observation recorded in a commit's note (`observations: [...]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub cluster: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// `<host> (<patroni name>)` of the leader.
    pub leader: String,
    /// `<host> (<patroni name>)` of the declared primary.
    pub declared: String,
    pub message: String,
}

/// `cluster`'s view when Patroni's member `leader` leads it (None: the inventory declares no
/// primary, nothing to compare with).
pub fn view(c: &PgCluster, leader: &str, commit: &str, at: u64) -> Option<LeaderView> {
    let declared = c.declared_primary()?;
    let declared_name = declared.instance(&c.name);
    let leader_host = c
        .members
        .values()
        .find(|m| m.instance(&c.name) == leader)
        .map(|m| m.host.clone())
        .unwrap_or_default();
    let mut v = LeaderView {
        leader: leader.to_string(),
        leader_host,
        declared: declared.host.clone(),
        declared_name,
        matches: leader == declared.instance(&c.name),
        commit: commit.to_string(),
        since: at,
        message: String::new(),
    };
    v.message = message(&c.name, &v);
    Some(v)
}

/// Whether `now` is a change from `before` worth a warning and an observation: another leader
/// or another declared primary; a first view only when the leader is not the declared primary.
pub fn changed(before: Option<&LeaderView>, now: &LeaderView) -> bool {
    match before {
        None => !now.matches,
        Some(b) => (&b.leader, &b.declared) != (&now.leader, &now.declared),
    }
}

fn who(host: &str, name: &str) -> String {
    match host {
        "" => format!("{name} (not a member in the inventory)"),
        h => format!("{h} ({name})"),
    }
}

/// What the watch says of a view: the suggestion to record a failover, or that the leader is
/// the declared primary again.
pub fn message(cluster: &str, v: &LeaderView) -> String {
    if v.matches {
        return format!(
            "{cluster}: the leader is the declared primary again: {}",
            who(&v.declared, &v.declared_name)
        );
    }
    let leader = who(&v.leader_host, &v.leader);
    let declared = who(&v.declared, &v.declared_name);
    let record = match v.leader_host.as_str() {
        "" => format!("add {} to the inventory as `pg_role: primary`", v.leader),
        h => format!("commit `pg_role: primary` on {h}"),
    };
    format!(
        "{cluster}: Patroni's leader is {leader}, the inventory declares {declared} primary (a failover or a switchover outside pgitops); {record} (and `replica` on {}) to record it; pgitops never switches back by itself",
        v.declared
    )
}

impl LeaderView {
    /// The observation this view adds to a note.
    pub fn observation(&self, cluster: &str) -> Observation {
        Observation {
            cluster: cluster.to_string(),
            at: self.since,
            leader: who(&self.leader_host, &self.leader),
            declared: who(&self.declared, &self.declared_name),
            message: self.message.clone(),
        }
    }
}

#[cfg(test)]
#[path = "leaders_tests.rs"]
mod tests;
