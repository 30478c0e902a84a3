//! Native PGSQL cluster creation under Patroni on HA nodes (sshd + private runsvdir each, the
//! paths of etcd, Patroni and PostgreSQL their own): one pushed commit declaring a 3-member
//! etcd and a 3-member `pg-test` on the same nodes becomes a leader and two streaming
//! replicas with the business user and database in place (the user logs in); an apply of the
//! same commit changes nothing and restarts no Patroni and no PostgreSQL. Patroni's REST API
//! and `pg_stat_replication`, asked from the test, check each effect. A fourth member is added
//! by a commit, then removed by the next (held until approved): stopped, gone from Patroni's
//! view and the leader's streams, its data dir empty; the removal run again succeeds.

use std::time::Instant;

use crate::support::nodes::{ha, Cluster};
use crate::support::patroni::{self, apply, line, ok, pid as patroni_pid, view as patroni_cluster};
use crate::support::Repo;

const IPS: [&str; 3] = ["127.0.66.11", "127.0.66.12", "127.0.66.13"];
/// The member a later commit adds.
const FOURTH: &str = "127.0.66.14";

fn inventory(pg: &[&str]) -> String {
    patroni::inventory(&IPS, pg)
}

#[test]
fn patroni_cluster_created_from_one_commit_and_left_alone_by_the_next_apply() {
    let started = Instant::now();
    let nodes = Cluster::start_ha(&[IPS[0], IPS[1], IPS[2], FOURTH]);
    let ctl = tempfile::Builder::new()
        .prefix("pgp")
        .tempdir_in("/tmp")
        .unwrap();
    let repo = Repo::new();

    // 1. one commit: etcd and pg-test → a leader and two streaming replicas
    repo.commit_inventory(&inventory(&IPS), "etcd and pg-test");
    let t = Instant::now();
    let run = apply(&nodes, &repo, ctl.path());
    let serving = t.elapsed();
    ok(&nodes, &run);
    eprintln!("create: commit → serving in {serving:?}\n{}", run.stdout);
    assert!(line(&run, "etcd/cluster/etcd/create").contains("applied"));
    assert!(
        line(&run, "cluster/pg-test/create").contains("applied"),
        "{}",
        run.stdout
    );
    let view = patroni_cluster(IPS[1]);
    let leaders: Vec<_> = view.iter().filter(|m| m.1 == "leader").collect();
    assert_eq!(leaders.len(), 1, "one leader: {view:?}");
    assert_eq!(leaders[0].0, "pg-test-1", "the declared primary leads");
    let replicas: Vec<_> = view
        .iter()
        .filter(|m| m.1 == "replica" && ["running", "streaming"].contains(&m.2.as_str()))
        .collect();
    assert_eq!(replicas.len(), 2, "two running replicas: {view:?}");
    let leader = nodes.node(IPS[0]);
    let streaming = patroni::streaming(&nodes, IPS[0]);
    assert_eq!(streaming, "pg-test-2,pg-test-3");
    assert_eq!(
        nodes
            .node(IPS[2])
            .sql("postgres", "SELECT pg_is_in_recovery()"),
        "t"
    );
    leader
        .login("dbuser_test", "DBUser.Test", "test")
        .expect("the business user logs in to its database on the leader");
    // Pigsty's bootstrap of the templates: template1 and postgres, and so every later database
    let init = line(&run, "templates/init");
    assert!(init.contains("applied"), "{init}");
    assert!(run.stdout.contains("skipped: pg_repack"), "{}", run.stdout);
    for db in ["template1", "postgres", "test"] {
        let got = leader.sql(
            db,
            "SELECT (SELECT count(*) FROM pg_extension WHERE extname IN ('pg_stat_statements', 'pg_trgm', 'btree_gin')) || ' ' || has_schema_privilege('public', 'public', 'CREATE') || ' ' || (SELECT count(*) FROM pg_foreign_server WHERE srvname = 'fs')",
        );
        assert_eq!(
            got, "3 false 1",
            "{db}: extensions, CREATE on public, server fs"
        );
    }
    let search_path = leader.sql(
        "postgres",
        "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'dbuser_monitor'",
    );
    assert!(
        search_path.contains("search_path=monitor, public"),
        "{search_path}"
    );
    assert!(
        leader.login("dbuser_test", "wrong", "test").is_err(),
        "a wrong password is refused"
    );
    let conf =
        std::fs::read_to_string(nodes.node(IPS[1]).dir.join("pg/conf/pg-test-2.yml")).unwrap();
    assert!(conf.contains("protocol: http\n"), "native etcd: plain http");

    // 2. the same commit again: nothing planned, no Patroni and no PostgreSQL restarted
    let patroni_pids = || -> Vec<u32> { IPS.iter().map(|ip| patroni_pid(&nodes, ip)).collect() };
    let pids = patroni_pids();
    let pms: Vec<_> = IPS
        .iter()
        .map(|ip| ha::postmaster(&nodes.node(ip).dir))
        .collect();
    assert!(pms.iter().all(Option::is_some), "{pms:?}");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    assert!(!run.stdout.contains("applied"), "{}", run.stdout);
    let again = patroni_pids();
    assert_eq!(pids, again, "no Patroni restarted");
    let pms_again: Vec<_> = IPS
        .iter()
        .map(|ip| ha::postmaster(&nodes.node(ip).dir))
        .collect();
    assert_eq!(pms, pms_again, "no PostgreSQL restarted");
    // ... and `drift` finds the Patroni-managed cluster as applied: roles, databases, every
    // member's HBA file and pgbouncer files, `ALTER SYSTEM` parameters (replicas included)
    let mut args = nodes.apply_args(ctl.path());
    args[0] = "drift".into();
    args.extend(["--output", "json", "--exit-code"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let drift = crate::support::pgitops(repo.path(), &args);
    assert_eq!(
        drift.code, 0,
        "no drift right after the apply:\n{}\n{}",
        drift.stdout, drift.stderr
    );
    // a change by hand on the leader is found (and left alone), the password never shown
    leader.sql(
        "postgres",
        "ALTER ROLE dbuser_test PASSWORD 'Changed.By.Hand'",
    );
    let drift = crate::support::pgitops(repo.path(), &args);
    assert_eq!(drift.code, 1, "{}\n{}", drift.stdout, drift.stderr);
    assert!(
        drift.stdout.contains("dbuser_test") && drift.stdout.contains("password"),
        "{}",
        drift.stdout
    );
    assert!(!drift.stdout.contains("Changed.By.Hand") && !drift.stdout.contains("DBUser.Test"));
    leader.sql("postgres", "ALTER ROLE dbuser_test PASSWORD 'DBUser.Test'");

    // 3. a fourth member, added by a commit: Patroni clones it and it streams
    let four = [IPS[0], IPS[1], IPS[2], FOURTH];
    let grown = repo.commit_inventory(&inventory(&four), "pg-test: a fourth member");
    let t = Instant::now();
    let run = apply(&nodes, &repo, ctl.path());
    let added = t.elapsed();
    ok(&nodes, &run);
    eprintln!("add: commit → streaming in {added:?}\n{}", run.stdout);
    assert!(
        line(&run, "member/127.0.66.14/add").contains("applied"),
        "{}",
        run.stdout
    );
    let streaming = patroni::streaming(&nodes, IPS[0]);
    assert_eq!(streaming, "pg-test-2,pg-test-3,pg-test-4");
    let view = patroni_cluster(FOURTH);
    assert!(
        view.iter().any(|m| m.0 == "pg-test-4" && m.1 == "replica"),
        "{view:?}"
    );
    assert_eq!(pids, patroni_pids(), "the others keep running");

    // 4. the fourth removed: held without approval, then stopped, deregistered and wiped
    let four_pid = patroni_pid(&nodes, FOURTH);
    let id = "pg-test/member/127.0.66.14/remove";
    repo.commit_inventory(&inventory(&IPS), "pg-test: drop the fourth member");
    let run = apply(&nodes, &repo, ctl.path());
    assert!(
        line(&run, id).contains("awaiting-approval"),
        "{}",
        run.stdout
    );
    assert_eq!(
        patroni_pid(&nodes, FOURTH),
        four_pid,
        "held: nothing stopped"
    );
    assert!(patroni_cluster(IPS[1]).iter().any(|m| m.0 == "pg-test-4"));
    repo.commit(&format!("approve\n\nPgitops-Approve: {id}\n"));
    let t = Instant::now();
    let run = apply(&nodes, &repo, ctl.path());
    let removed = t.elapsed();
    ok(&nodes, &run);
    eprintln!("remove: commit → gone in {removed:?}\n{}", run.stdout);
    assert!(line(&run, id).contains("applied"), "{}", run.stdout);
    for ip in IPS {
        let view = patroni_cluster(ip);
        assert!(!view.iter().any(|m| m.0 == "pg-test-4"), "{ip}: {view:?}");
        assert_eq!(view.len(), 3, "{ip}: {view:?}");
    }
    let streams = leader.sql(
        "postgres",
        "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg-test-4'",
    );
    assert_eq!(streams, "0", "no stream from the removed member");
    let four = nodes.node(FOURTH);
    assert!(
        !four.dir.join("service/patroni").exists(),
        "its service is removed"
    );
    assert!(
        ha::postmaster(&four.dir).is_none(),
        "its PostgreSQL is down"
    );
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(four_pid as i32, 0) } == 0;
    assert!(!alive, "its Patroni ({four_pid}) is gone");
    let data = std::fs::read_dir(four.dir.join("pg/data")).unwrap().count();
    assert_eq!(data, 0, "pg_rm_data: its data dir is empty");
    assert!(
        !four.dir.join("pg/conf/pg-test-4.yml").exists(),
        "its config is gone"
    );
    assert_eq!(pids, patroni_pids(), "the others keep running");

    // 5. the removal run again over its range: nothing left to do there, and it succeeds
    let range = format!("{grown}..HEAD");
    patroni::removed_again(&nodes, &repo, ctl.path(), &range, id, "deleted 0");
    assert_eq!(patroni_cluster(IPS[0]).len(), 3);

    let left = nodes.stop_ha();
    assert!(left.is_empty(), "left behind: {left:?}");
    eprintln!("patroni test took {:?}", started.elapsed());
}
