//! Native removal of a whole PGSQL cluster under Patroni on HA nodes: a 2-member `pg-test`
//! (with a 1-member etcd on its first node) is created by one commit, then its group is removed.
//! With `pg_safeguard: true` on its primary in the applied revision, the removal is refused even
//! approved, and nothing is stopped: Patroni and PostgreSQL keep their pids and the DCS keys
//! stay. Once a commit clears the safeguard, a removal is held without approval (nothing
//! stopped), then, approved, stops both members, removes their services, deletes the cluster's
//! keys from etcd and empties their data dirs, while etcd stays healthy; the same range applied
//! again finds nothing and succeeds. etcdctl, `sv`, `/proc` and the node dirs, asked from the
//! test, check each effect.

use std::process::Command;
use std::time::Instant;

use crate::support::nodes::{ha, Cluster};
use crate::support::patroni::{apply, line, ok, pid as patroni_pid, removed_again, PG_TEST_VARS};
use crate::support::Repo;

const IPS: [&str; 2] = ["127.0.67.11", "127.0.67.12"];
const ID: &str = "pg-test/cluster/pg-test/remove";

/// etcd on the first node; with `pg`, `pg-test` on both (the first its primary, guarded by
/// `pg_safeguard` when `guard`).
fn inventory(pg: bool, guard: bool) -> String {
    let etcd = format!(
        "    etcd:\n      hosts: {{ {}: {{ etcd_seq: 1 }} }}\n      vars: {{ etcd_cluster: etcd }}\n",
        IPS[0]
    );
    let mut text = format!("all:\n  vars: {{ admin_ip: 127.0.0.1 }}\n  children:\n{etcd}");
    if !pg {
        return text;
    }
    let safeguard = if guard { ", pg_safeguard: true" } else { "" };
    text += &format!(
        "    pg-test:\n      hosts:\n        {}: {{ pg_seq: 1, pg_role: primary{safeguard} }}\n        {}: {{ pg_seq: 2, pg_role: replica }}\n",
        IPS[0], IPS[1]
    );
    text + "      vars:\n" + PG_TEST_VARS
}

/// The keys etcd holds under `prefix`, asked from the test.
fn etcd_keys(prefix: &str) -> Vec<String> {
    let out = etcdctl(&["get", prefix, "--prefix", "--keys-only"]);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn etcdctl(args: &[&str]) -> String {
    let ep = format!("http://{}:2379", IPS[0]);
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &ep, "--dial-timeout", "2s"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn patroni_cluster_removed_natively_unless_safeguarded() {
    let started = Instant::now();
    let nodes = Cluster::start_ha(&IPS);
    let ctl = tempfile::Builder::new()
        .prefix("pgr")
        .tempdir_in("/tmp")
        .unwrap();
    let repo = Repo::new();

    // 1. etcd and pg-test, its primary guarded by pg_safeguard
    repo.commit_inventory(&inventory(true, true), "etcd and a guarded pg-test");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    assert!(line(&run, "cluster/pg-test/create").contains("applied"));
    let pids: Vec<u32> = IPS.iter().map(|ip| patroni_pid(&nodes, ip)).collect();
    let pms: Vec<i32> = IPS
        .iter()
        .map(|ip| ha::postmaster(&nodes.node(ip).dir).expect("PostgreSQL runs"))
        .collect();
    let keys = etcd_keys("/pg/pg-test/");
    for k in ["/pg/pg-test/leader", "/pg/pg-test/members/pg-test-2"] {
        assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
    }

    // 2. the group removed, approved: refused by the safeguard, nothing stopped
    let msg = format!("drop pg-test\n\nPgitops-Approve: {ID}\n");
    repo.commit_inventory(&inventory(false, false), &msg);
    let run = apply(&nodes, &repo, ctl.path());
    assert_ne!(run.code, 0, "{}", run.stdout);
    eprintln!("safeguarded:\n{}", run.stdout);
    assert!(line(&run, ID).contains("failed"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("pg_safeguard for pg-test-1 @ 127.0.67.11 is enabled"),
        "{}",
        run.stdout
    );
    let now: Vec<u32> = IPS.iter().map(|ip| patroni_pid(&nodes, ip)).collect();
    assert_eq!(now, pids, "safeguarded: no Patroni stopped");
    for (ip, pm) in IPS.iter().zip(&pms) {
        assert_eq!(ha::postmaster(&nodes.node(ip).dir), Some(*pm), "{ip}");
        assert!(alive(*pm), "{ip}: PostgreSQL {pm} still runs");
    }
    assert_eq!(etcd_keys("/pg/pg-test/"), keys, "the DCS keys stay");

    // 3. the group back without the safeguard, applied (nothing to do but note it)
    let cleared = repo.commit_inventory(&inventory(true, false), "pg-test: safeguard off");
    let run = apply(&nodes, &repo, ctl.path());
    assert!(!run.stdout.contains("failed"), "{}", run.stdout);
    assert!(!run.stdout.contains(ID), "{}", run.stdout);

    // 4. removed again: held without approval, nothing stopped
    repo.commit_inventory(&inventory(false, false), "drop pg-test");
    let run = apply(&nodes, &repo, ctl.path());
    assert!(
        line(&run, ID).contains("awaiting-approval"),
        "{}",
        run.stdout
    );
    let now: Vec<u32> = IPS.iter().map(|ip| patroni_pid(&nodes, ip)).collect();
    assert_eq!(now, pids, "held: no Patroni stopped");
    assert!(pms.iter().all(|pm| alive(*pm)));

    // 5. approved: both members stopped and wiped, the DCS keys gone, etcd healthy
    repo.commit(&format!("approve\n\nPgitops-Approve: {ID}\n"));
    let t = Instant::now();
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    eprintln!("remove: {:?}\n{}", t.elapsed(), run.stdout);
    assert!(line(&run, ID).contains("applied"), "{}", run.stdout);
    for (ip, (pid, pm)) in IPS.iter().zip(pids.iter().zip(&pms)) {
        let n = nodes.node(ip);
        assert!(!alive(*pid as i32), "{ip}: its Patroni ({pid}) is gone");
        assert!(!alive(*pm), "{ip}: its PostgreSQL ({pm}) is gone");
        assert!(ha::postmaster(&n.dir).is_none(), "{ip}: no postmaster.pid");
        assert!(!n.dir.join("service/patroni").exists(), "{ip}: service");
        let data = std::fs::read_dir(n.dir.join("pg/data")).unwrap().count();
        assert_eq!(data, 0, "{ip}: pg_rm_data empties the data dir");
        assert!(!n.dir.join("patroni/patroni.yml").exists(), "{ip}: link");
    }
    for conf in ["pg/conf/pg-test-1.yml", "pg/conf/pg-test-2.yml"] {
        let on = |ip: &str| nodes.node(ip).dir.join(conf).exists();
        assert!(!IPS.iter().any(|ip| on(ip)), "{conf} removed");
    }
    assert_eq!(etcd_keys("/pg/pg-test/"), Vec::<String>::new());
    let health = etcdctl(&["endpoint", "health", "-w", "json"]);
    assert!(
        health.contains(r#""health":true"#),
        "etcd stays healthy: {health}"
    );

    // 6. the removal again over its range: nothing left, and it succeeds
    //    and a PostgreSQL that pgitops did not create, found on the second node, is left alone
    let plain = nodes.node(IPS[1]);
    plain.start_plain_pg();
    let pm = ha::postmaster(&plain.dir).expect("a plain PostgreSQL runs");
    let range = format!("{cleared}..HEAD");
    let run = removed_again(&nodes, &repo, ctl.path(), &range, ID, "0 keys deleted");
    let left = line(&run, "ok 127.0.67.12");
    assert!(
        left.contains("outside Patroni: reported and left alone"),
        "{left}"
    );
    assert_eq!(ha::postmaster(&plain.dir), Some(pm), "not stopped");
    assert!(
        plain.dir.join("pg/data/PG_VERSION").exists(),
        "its data kept"
    );
    assert_eq!(plain.sql("postgres", "SELECT 1"), "1");

    let left = nodes.stop_ha();
    assert!(left.is_empty(), "left behind: {left:?}");
    eprintln!("cluster removal test took {:?}", started.elapsed());
}
