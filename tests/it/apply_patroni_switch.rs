//! Switchover by inventory on HA nodes: a 1-member etcd and a 2-member `pg-test` built from one
//! commit; a commit that moves `pg_role: primary` to the replica switches the leader (Patroni's
//! `/cluster`, the old leader streaming from the new one, a write on the new leader), and the
//! same commit applied again does nothing. A switchover made behind pgitops' back (by hand
//! through Patroni's REST API, as a failover would) is left alone by an unrelated commit, and a
//! commit that then declares the member that already leads finds nothing to do.

use crate::support::nodes::Cluster;
use crate::support::patroni::{apply, leader, line, ok, streaming, switch_by_hand, PG_TEST_VARS};
use crate::support::Repo;

const PG: [&str; 2] = ["127.0.73.11", "127.0.73.12"];

/// etcd on the first node, `pg-test` on `PG` with `primary` its declared primary, and `users`.
fn inventory(primary: usize, users: &str) -> String {
    let role = |i: usize| if i == primary { "primary" } else { "replica" };
    format!(
        "all:\n  vars: {{ admin_ip: 127.0.73.99 }}\n  children:\n    etcd:\n      hosts: {{ {}: {{ etcd_seq: 1 }} }}\n      vars: {{ etcd_cluster: etcd }}\n    pg-test:\n      hosts:\n        {}: {{ pg_seq: 1, pg_role: {} }}\n        {}: {{ pg_seq: 2, pg_role: {} }}\n      vars:\n{}        pg_users: [{users}]\n",
        PG[0],
        PG[0],
        role(0),
        PG[1],
        role(1),
        PG_TEST_VARS
    )
}

/// Waits up to 60 s until `name` streams from the leader on `ip`.
fn await_streaming(nodes: &Cluster, ip: &str, name: &str) {
    for _ in 0..300 {
        if streaming(nodes, ip).split(',').any(|n| n == name) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{name} does not stream from {ip}: {}", streaming(nodes, ip));
}

#[test]
fn moving_pg_role_switches_over_and_a_failover_is_never_reverted() {
    let nodes = Cluster::start_ha(&PG);
    let ctl = tempfile::Builder::new()
        .prefix("pgs")
        .tempdir_in("/tmp")
        .unwrap();
    let repo = Repo::new();

    // 0. etcd and pg-test, .11 leading
    repo.commit_inventory(&inventory(0, ""), "etcd and pg-test");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    assert_eq!(leader(PG[1]), "pg-test-1");

    // 1. pg_role: primary moves to .12: a switchover, class restart
    repo.commit_inventory(&inventory(1, ""), "pg-test: .12 becomes the primary");
    let plan = crate::support::pgitops(repo.path(), &["plan", "--output", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let switch = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "pg-test/primary/127.0.73.12/switchover")
        .unwrap_or_else(|| panic!("no switchover in {plan}"));
    assert_eq!(switch["class"], "restart");
    let steps = switch["steps"].to_string();
    assert!(steps.contains("127.0.73.11 → 127.0.73.12"), "{steps}");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    eprintln!("switchover:\n{}", run.stdout);
    let l = line(&run, "pg-test/primary/127.0.73.12/switchover");
    assert!(l.contains("applied"), "{}", run.stdout);
    assert_eq!(leader(PG[0]), "pg-test-2");
    await_streaming(&nodes, PG[1], "pg-test-1");
    nodes
        .node(PG[1])
        .sql("postgres", "CREATE TABLE after_switch(i int)");
    assert_eq!(
        nodes
            .node(PG[0])
            .sql("postgres", "SELECT pg_is_in_recovery()"),
        "t"
    );

    // 2. the same commit again: nothing planned, nothing switched
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    assert!(!run.stdout.contains("switchover"), "{}", run.stdout);
    assert_eq!(leader(PG[0]), "pg-test-2");

    // 3. the leader moves behind pgitops' back; an unrelated commit leaves it where it is
    switch_by_hand(PG[1], "pg-test-2", "pg-test-1");
    assert_eq!(leader(PG[1]), "pg-test-1");
    let user = "{ name: dbuser_later, password: DBUser.Later, pgbouncer: false }";
    repo.commit_inventory(&inventory(1, user), "pg-test: a user");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    assert!(!run.stdout.contains("switchover"), "{}", run.stdout);
    assert!(
        line(&run, "user/dbuser_later/create").contains("applied")
            && run.stdout.contains("a failover happened"),
        "the report names the leader the inventory does not declare:\n{}",
        run.stdout
    );
    assert_eq!(leader(PG[1]), "pg-test-1");

    // 4. the inventory catches up: the member declared already leads, nothing is done
    repo.commit_inventory(&inventory(0, user), "pg-test: .11 is the primary again");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    let l = line(&run, "pg-test/primary/127.0.73.11/switchover");
    assert!(l.contains("applied"), "{}", run.stdout);
    assert!(run.stdout.contains("already leads"), "{}", run.stdout);
    assert_eq!(leader(PG[0]), "pg-test-1");
}
