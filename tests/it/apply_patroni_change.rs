//! Changes to a running Patroni-managed cluster on HA nodes: a 1-member etcd and a 2-member
//! `pg-test` built from one commit; then a restart-class parameter committed is applied with
//! ALTER SYSTEM and a rolling restart through Patroni (the replica's postmaster restarted before
//! the leader's, the leader the same member afterwards, `SHOW` the new value on both), and an
//! apply of the same commit restarts nothing; then an etcd member added by a commit puts its
//! endpoint into every member's Patroni configuration, reloaded, with Patroni and PostgreSQL
//! still the same processes. The test asks PostgreSQL, Patroni's REST API, the files and the
//! node's runit itself.

use crate::support::nodes::Cluster;
use crate::support::patroni::{apply, leader, line, ok, pid as patroni_pid, PG_TEST_VARS};
use crate::support::Repo;

const PG: [&str; 2] = ["127.0.68.11", "127.0.68.12"];
/// The etcd member a later commit adds.
const ETCD2: &str = "127.0.68.13";

/// etcd on `etcd`, `pg-test` on `PG` (the first its primary) with `params` as `pg_parameters`.
fn inventory(etcd: &[&str], params: &str) -> String {
    let etcd: Vec<String> = etcd
        .iter()
        .enumerate()
        .map(|(i, ip)| format!("{ip}: {{ etcd_seq: {} }}", i + 1))
        .collect();
    format!(
        "all:\n  vars: {{ admin_ip: 127.0.0.1 }}\n  children:\n    etcd:\n      hosts: {{ {} }}\n      vars: {{ etcd_cluster: etcd }}\n    pg-test:\n      hosts:\n        {}: {{ pg_seq: 1, pg_role: primary }}\n        {}: {{ pg_seq: 2, pg_role: replica }}\n      vars:\n{}        pg_parameters: {{ {params} }}\n",
        etcd.join(", "),
        PG[0],
        PG[1],
        PG_TEST_VARS
    )
}

/// `pg_postmaster_start_time()` of `ip`'s PostgreSQL, in seconds since the epoch.
fn started(nodes: &Cluster, ip: &str) -> f64 {
    let sql = "SELECT extract(epoch FROM pg_postmaster_start_time())";
    let v = nodes.node(ip).sql("postgres", sql);
    v.parse().unwrap_or_else(|_| panic!("{ip}: {v}"))
}

#[test]
fn patroni_cluster_restarts_for_a_parameter_and_follows_etcd_membership() {
    let nodes = Cluster::start_ha(&[PG[0], PG[1], ETCD2]);
    let ctl = tempfile::Builder::new()
        .prefix("pgr")
        .tempdir_in("/tmp")
        .unwrap();
    let repo = Repo::new();

    // 0. etcd (one member) and pg-test (leader + replica)
    repo.commit_inventory(&inventory(&[PG[0]], ""), "etcd and pg-test");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    assert!(line(&run, "cluster/pg-test/create").contains("applied"));
    assert_eq!(leader(PG[1]), "pg-test-1");
    let before: Vec<f64> = PG.iter().map(|ip| started(&nodes, ip)).collect();
    let show = |ip: &str| nodes.node(ip).sql("postgres", "SHOW max_files_per_process");
    assert_eq!(show(PG[0]), "1000");

    // 1. a restart-class parameter: ALTER SYSTEM, then replica restarted, then the leader
    repo.commit_inventory(
        &inventory(&[PG[0]], "max_files_per_process: 2000"),
        "pg-test: max_files_per_process",
    );
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    eprintln!("restart:\n{}", run.stdout);
    let l = line(&run, "pg-test/parameters/apply");
    assert!(l.contains("applied"), "{l}");
    assert!(
        run.stdout.contains("restarted through Patroni"),
        "{}",
        run.stdout
    );
    for ip in PG {
        assert_eq!(show(ip), "2000", "{ip}: the new value is live");
        let pending = nodes.node(ip).sql(
            "postgres",
            "SELECT count(*) FROM pg_settings WHERE pending_restart",
        );
        assert_eq!(pending, "0", "{ip}: nothing waits for a restart");
    }
    let after: Vec<f64> = PG.iter().map(|ip| started(&nodes, ip)).collect();
    assert!(
        after[0] > before[0],
        "the leader restarted: {before:?} {after:?}"
    );
    assert!(
        after[1] > before[1],
        "the replica restarted: {before:?} {after:?}"
    );
    assert!(
        after[1] < after[0],
        "the replica's postmaster started before the leader's: {after:?}"
    );
    assert_eq!(leader(PG[1]), "pg-test-1", "a restart, not a failover");
    let streaming = nodes.node(PG[0]).sql(
        "postgres",
        "SELECT string_agg(application_name, ',') FROM pg_stat_replication WHERE state = 'streaming'",
    );
    assert_eq!(streaming, "pg-test-2");

    // 2. the same commit again: nothing restarted
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    assert!(!run.stdout.contains("applied"), "{}", run.stdout);
    let again: Vec<f64> = PG.iter().map(|ip| started(&nodes, ip)).collect();
    assert_eq!(after, again, "no PostgreSQL restarted");

    // 3. an etcd member added: Patroni's configuration lists it, Patroni reloaded, not restarted
    let pids: Vec<u32> = PG.iter().map(|ip| patroni_pid(&nodes, ip)).collect();
    repo.commit_inventory(
        &inventory(&[PG[0], ETCD2], "max_files_per_process: 2000"),
        "etcd: a second member",
    );
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    eprintln!("etcd member added:\n{}", run.stdout);
    assert!(line(&run, "etcd/member/127.0.68.13/add").contains("applied"));
    assert!(line(&run, "pg-test/patroni/refresh").contains("applied"));
    for (i, ip) in PG.iter().enumerate() {
        let file = nodes
            .node(ip)
            .dir
            .join(format!("pg/conf/pg-test-{}.yml", i + 1));
        let conf = std::fs::read_to_string(file).unwrap();
        // Only the etcd section is shown: the file holds passwords.
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&conf).unwrap();
        assert_eq!(
            doc["etcd3"]["hosts"].as_str(),
            Some("127.0.68.11:2379,127.0.68.13:2379"),
            "{ip}: {:?}",
            doc["etcd3"]
        );
    }
    let now: Vec<u32> = PG.iter().map(|ip| patroni_pid(&nodes, ip)).collect();
    assert_eq!(pids, now, "Patroni reloaded, not restarted");
    let still: Vec<f64> = PG.iter().map(|ip| started(&nodes, ip)).collect();
    assert_eq!(after, still, "no PostgreSQL restarted");
    assert_eq!(leader(PG[1]), "pg-test-1");

    let left = nodes.stop_ha();
    assert!(left.is_empty(), "left behind: {left:?}");
}
