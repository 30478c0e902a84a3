//! ETCD membership as typed native steps. The plan keeps the ETCD actions' ids, kinds and
//! Pigsty commands (`etcd.yml`, `etcd-rm.yml`; the Pigsty executor adopts or runs them); this
//! module says which of them the native executor carries out itself, and what it does.
//!
//! In: an action. Out: its [`EtcdStep`] when it is ETCD work the native executor does (cluster
//! create, member add, member remove, the refresh of the other members), and preview lines.
//! Pure. Removing a whole etcd cluster stays Pigsty's (`etcd-rm.yml`).

use super::{Action, Delegated, Step};
use crate::inventory::module::Module;

/// What the native ETCD component does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcdStep {
    /// Every member of a new cluster: config with `etcd_init: new`, service, start, health.
    ClusterCreate { cluster: String },
    /// `etcdctl member add` on a healthy member, then the new member started with `existing`.
    MemberAdd { cluster: String, ip: String },
    /// Stop the member's service, `etcdctl member remove`, its data (`etcd_rm_data`).
    MemberRemove { cluster: String, ip: String },
    /// The other members' `etcd.conf` after a membership change of `changed`.
    Refresh { cluster: String, changed: String },
}

impl EtcdStep {
    /// The native ETCD step of `a`, if it has one.
    pub fn of(a: &Action) -> Option<EtcdStep> {
        if a.module != Module::Etcd {
            return None;
        }
        let cluster = a.cluster.clone();
        let Step::Delegated(d) = &a.step else {
            return None;
        };
        Some(match d {
            Delegated::ClusterCreate { .. } => EtcdStep::ClusterCreate { cluster },
            Delegated::MemberAdd { ip } => EtcdStep::MemberAdd {
                cluster,
                ip: ip.clone(),
            },
            Delegated::MemberRemove { ip } => EtcdStep::MemberRemove {
                cluster,
                ip: ip.clone(),
            },
            Delegated::EtcdRefresh { changed } => EtcdStep::Refresh {
                cluster,
                changed: changed.clone(),
            },
            _ => return None,
        })
    }

    pub fn preview(&self) -> Vec<String> {
        let observe = "ask each member first: one that already answers `etcdctl endpoint health` is adopted, never re-provisioned";
        match self {
            EtcdStep::ClusterCreate { .. } => vec![
                observe.into(),
                "write /etc/etcd/etcd.conf (etcd_init: new, initial-cluster: every member) and the etcd service (systemd unit, or runit service where runsvdir supervises) on each member; start them".into(),
                "wait until every member is healthy and the member list holds exactly the inventory's members".into(),
            ],
            EtcdStep::MemberAdd { ip, .. } => vec![
                observe.into(),
                format!("etcdctl member add <etcd_cluster>-<etcd_seq> --peer-urls=http://{ip}:<etcd_peer_port> on a healthy member (retried while etcd reports an unhealthy cluster), unless its peer URL is already listed"),
                format!("write /etc/etcd/etcd.conf on {ip} with etcd_init: existing and the cluster's member list, install and start its etcd service; wait until every member is healthy"),
            ],
            EtcdStep::MemberRemove { ip, .. } => vec![
                format!("refused when `etcd_safeguard` is set for {ip}, or when the members left healthy would have no quorum"),
                format!("stop {ip}'s etcd service, etcdctl member remove on a healthy member, then remove its service and (etcd_rm_data, default true) /etc/etcd, /var/lib/etcd and etcd_data"),
                "verify: the member list no longer holds it and the other members are healthy".into(),
            ],
            EtcdStep::Refresh { changed, .. } => vec![
                format!("native executor: rewrite /etc/etcd/etcd.conf on the other members where it differs (initial-cluster after the change of {changed}); no restart: etcd reads it only when its data dir is empty"),
            ],
        }
    }
}
