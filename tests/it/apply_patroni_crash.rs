//! `kill -9` of the service while it creates a cluster: once while etcd is being created, once
//! while the declared primary's PostgreSQL is bootstrapping (its replicas not yet started).
//! Each time the service is started again on the same state; the creating commit's note ends
//! `success` with a leader and two streaming replicas, and nothing was initialised twice: the
//! leader's database system identifier, its postmaster and etcd's cluster id are those seen
//! right after the second kill. Then a replica's Patroni killed with SIGKILL is started again by
//! runit and re-adopts its running PostgreSQL.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::fleet::Fleet;
use crate::support::nodes::{ha, PGBIN};
use crate::support::patroni;
use crate::support::service::Service;

const IPS: [&str; 3] = ["127.0.70.11", "127.0.70.12", "127.0.70.13"];

fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `Database system identifier` of the data directory in `dir`'s `pg/data`.
fn system_identifier(dir: &Path) -> String {
    let out = Command::new(format!("{PGBIN}/pg_controldata"))
        .arg(dir.join("pg/data"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with("Database system identifier:"))
        .unwrap_or_else(|| panic!("pg_controldata: {text}"));
    line.rsplit(' ').next().unwrap().to_string()
}

/// etcd's cluster id, asked over the first member's client URL.
fn etcd_cluster_id() -> String {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &format!("http://{}:2379", IPS[0])])
        .args(["member", "list", "-w", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("etcdctl: {}", String::from_utf8_lossy(&out.stderr)));
    v["header"]["cluster_id"].to_string()
}

#[test]
fn kill_9_during_cluster_creation_then_a_restart_converges_without_reinitialising() {
    let f = Fleet::ha(&IPS);
    let create = f
        .repo
        .commit_inventory(&patroni::inventory(&IPS, &IPS), "etcd and pg-test");
    let mut svc = Service::start(&f);
    svc.push(&f);
    let first = &f.nodes.node(IPS[0]).dir;

    // 1. killed while etcd is being created
    wait_for("etcd.conf written", Duration::from_secs(60), || {
        first.join("etcd/conf/etcd.conf").exists()
    });
    svc.crash_and_restart();

    // 2. killed while the primary's PostgreSQL bootstraps, before any replica is started
    wait_for("the primary's postmaster", Duration::from_secs(90), || {
        ha::postmaster(first).is_some()
    });
    svc.crash_and_restart();
    let replicas_started = IPS[1..]
        .iter()
        .any(|ip| ha::postmaster(&f.nodes.node(ip).dir).is_some());
    let sysid = system_identifier(first);
    let postmaster = ha::postmaster(first);
    let etcd = etcd_cluster_id();

    // 3. the restarted service converges
    let note = svc.note_with_status(&create, "success", Duration::from_secs(120));
    eprintln!("{note:#}");
    let view = patroni::view(IPS[1]);
    let leaders: Vec<_> = view.iter().filter(|m| m.1 == "leader").collect();
    assert_eq!(leaders.len(), 1, "{view:?}");
    assert_eq!(leaders[0].0, "pg-test-1", "{view:?}");
    assert_eq!(patroni::streaming(&f.nodes, IPS[0]), "pg-test-2,pg-test-3");
    f.nodes
        .node(IPS[0])
        .login("dbuser_test", "DBUser.Test", "test")
        .expect("the business user logs in");
    assert_eq!(
        system_identifier(first),
        sysid,
        "the leader not re-initialised"
    );
    assert_eq!(ha::postmaster(first), postmaster, "nor restarted");
    assert_eq!(etcd_cluster_id(), etcd, "etcd not re-created");
    for ip in &IPS[1..] {
        let dir = &f.nodes.node(ip).dir;
        assert_eq!(
            system_identifier(dir),
            sysid,
            "{ip} is a clone of the leader"
        );
    }
    eprintln!("replicas had started before the second kill: {replicas_started}");

    // 4. runit restarts a crashed Patroni, which re-adopts its running PostgreSQL
    let third = &f.nodes.node(IPS[2]).dir;
    assert!(!third.join("service/patroni/down").exists());
    let (crashed, pm) = (patroni::pid(&f.nodes, IPS[2]), ha::postmaster(third));
    // SAFETY: SIGKILL to the Patroni this test's node runs.
    unsafe { libc::kill(crashed as i32, libc::SIGKILL) };
    wait_for(
        "Patroni back and streaming",
        Duration::from_secs(30),
        || {
            let back = std::process::Command::new("sv")
                .arg("status")
                .arg(third.join("service/patroni"))
                .output()
                .is_ok_and(|o| {
                    let s = String::from_utf8_lossy(&o.stdout).to_string();
                    s.starts_with("run:") && !s.contains(&format!("(pid {crashed})"))
                });
            back && patroni::view(IPS[0])
                .iter()
                .any(|m| m.0 == "pg-test-3" && ["running", "streaming"].contains(&m.2.as_str()))
        },
    );
    assert_eq!(ha::postmaster(third), pm, "its PostgreSQL kept running");
    drop(svc);
    let left = f.nodes.stop_ha();
    assert!(left.is_empty(), "left behind: {left:?}");
}
