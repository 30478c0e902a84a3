//! The data path Pigsty gives its users, built natively on HA nodes: one commit creates etcd, a
//! 2-member `pg-test` with pgbouncer and HAProxy's default services on every member
//! (`pgitops_bind_node_ip: true`). With the user's password a client reaches the primary through
//! `<node>:5433` (HAProxy → pgbouncer → PostgreSQL) and `:5436` (HAProxy → PostgreSQL), a replica
//! through `:5434`, from either node. Then a commit moving `pg_role: primary` switches over, and
//! the primary service reaches the new leader as soon as the apply returns: pgitops tells each
//! HAProxy which server leads. The health checks here are slow on purpose for a server that is
//! down (`downinter 5s`, `rise 3`: 10-15 s before HAProxy would find the new leader itself), so
//! only that can make the service follow at once.

use crate::support::nodes::Cluster;
use crate::support::patroni::{self, apply, leader, line, ok, through, wait_until, WHO};
use crate::support::Repo;

const IPS: [&str; 2] = ["127.0.73.21", "127.0.73.22"];

/// pg-test with pgbouncer and services; `primary`: the index of the declared primary.
fn inventory(primary: usize) -> String {
    let text = patroni::with_pgbouncer(&patroni::inventory(&IPS[..1], &IPS)).replace(
        "        haproxy_enabled: false\n",
        "        pgitops_bind_node_ip: true\n        pg_rto: probe\n        pg_rto_plan:\n          norm: [ 30, 5, 10, 25, 5, '2s', '1s', '2s', 3, 3 ]\n          probe: [ 30, 5, 10, 25, 5, '1s', '1s', '5s', 3, 1 ]\n",
    );
    assert!(text.contains("pg_rto: probe") && text.contains("pgbouncer: true"));
    match primary {
        0 => text,
        _ => text
            .replace("pg_seq: 1, pg_role: primary", "pg_seq: 1, pg_role: replica")
            .replace("pg_seq: 2, pg_role: replica", "pg_seq: 2, pg_role: primary"),
    }
}

#[test]
fn clients_reach_the_primary_and_a_replica_through_the_services_before_and_after_a_switchover() {
    let nodes = Cluster::start_ha(&IPS);
    let ctl = tempfile::Builder::new()
        .prefix("pgp")
        .tempdir_in("/tmp")
        .unwrap();
    let repo = Repo::new();

    // 0. one commit: etcd, the cluster, pgbouncer, HAProxy's services
    repo.commit_inventory(&inventory(0), "etcd and pg-test with its services");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    for id in ["pgbouncer/launch", "service/refresh"] {
        assert!(line(&run, id).contains("applied"), "{}", run.stdout);
    }
    let primary = |ip: &str| format!("{ip} false");
    // Four answers in a row from one server: HAProxy balances round-robin over the servers it
    // holds UP, and a new HAProxy holds every server UP until its first check.
    let all = |ip: &str, port: u16, want: &str| {
        (0..4).all(|_| through(ip, port, WHO).is_ok_and(|w| w == want))
    };
    for ip in IPS {
        // the replica's first failed check (inter 1s, fall 1) takes it out of the primary service
        wait_until("5433 reaches the primary", 30, || {
            all(ip, 5433, &primary(IPS[0]))
        });
        assert!(all(ip, 5436, &primary(IPS[0])));
        let replica = format!("{} true", IPS[1]);
        wait_until("5434 reaches the replica", 30, || all(ip, 5434, &replica));
    }
    through(IPS[1], 5433, "CREATE TABLE through_the_service(i int)").unwrap();

    // 1. pg_role moves: a switchover, and HAProxy told as the new leader begins to lead
    repo.commit_inventory(&inventory(1), "pg-test: .22 becomes the primary");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    eprintln!("switchover:\n{}", run.stdout);
    assert!(
        line(&run, "pg-test/primary/127.0.73.22/switchover").contains("applied"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("HAProxy on 2 of 2 hosts told as pg-test-2 began to lead"),
        "{}",
        run.stdout
    );
    assert_eq!(leader(IPS[0]), "pg-test-2");
    for ip in IPS {
        for port in [5433, 5436] {
            let seen: Vec<_> = (0..4).map(|_| through(ip, port, WHO)).collect();
            assert!(
                seen.iter().all(|w| w.as_deref() == Ok(primary(IPS[1]).as_str())),
                "{ip}:{port} follows the new leader at once (a reload after the switchover keeps the servers' state): {seen:?}"
            );
        }
    }
    through(IPS[0], 5433, "INSERT INTO through_the_service VALUES (1)").unwrap();

    // 2. first contact with the same running cluster as if Pigsty had built it (no pgitops mark
    // in Patroni's configuration, no state): its services are adopted, no file written
    for ip in IPS {
        let conf = nodes.node(ip).dir.join("pg/conf");
        for e in std::fs::read_dir(&conf).unwrap().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let rest = text.split_once('\n').unwrap().1;
            assert!(text.starts_with("# written by pgitops"), "{text}");
            std::fs::write(e.path(), format!("# Pigsty's\n{rest}")).unwrap();
        }
    }
    let conf_d = |ip: &str| nodes.node(ip).dir.join("haproxy/etc/conf.d");
    let stamp = |ip: &str| -> Vec<_> {
        let mut v: Vec<_> = std::fs::read_dir(conf_d(ip))
            .unwrap()
            .flatten()
            .map(|e| (e.file_name(), e.metadata().unwrap().modified().unwrap()))
            .collect();
        v.sort();
        v
    };
    let before: Vec<_> = IPS.iter().map(|ip| stamp(ip)).collect();
    std::fs::remove_dir_all(repo.path().join(".git/pgitops")).unwrap();
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    eprintln!("first contact:\n{}", run.stdout);
    assert!(
        line(&run, "pg-test/service/refresh").contains("adopted"),
        "{}",
        run.stdout
    );
    let after: Vec<_> = IPS.iter().map(|ip| stamp(ip)).collect();
    assert_eq!(before, after, "no service file rewritten on first contact");
}
