//! Native PGSQL cluster creation under Patroni on HA nodes (sshd + private runsvdir each, the
//! paths of etcd, Patroni and PostgreSQL their own): one pushed commit declaring a 3-member
//! etcd and a 3-member `pg-test` on the same nodes becomes a leader and two streaming
//! replicas with the business user and database in place (the user logs in); an apply of the
//! same commit changes nothing and restarts no Patroni and no PostgreSQL. Patroni's REST API
//! and `pg_stat_replication`, asked from the test, check each effect. A fourth member is added
//! by a commit, then removed by the next (held until approved): stopped, gone from Patroni's
//! view and the leader's streams, its data dir empty; the removal run again succeeds.

use std::process::Command;
use std::time::Instant;

use crate::support::nodes::{ha, Cluster};
use crate::support::{pgitops, Repo, Run};

const IPS: [&str; 3] = ["127.0.66.11", "127.0.66.12", "127.0.66.13"];
/// The member a later commit adds.
const FOURTH: &str = "127.0.66.14";

/// The variables of `pg-test` on HA nodes (PostgreSQL 15 from Debian, listening on the node's
/// address, small shared buffers, no pgBackRest and no pgbouncer).
pub(crate) const PG_TEST_VARS: &str = r#"        pg_cluster: pg-test
        pg_version: 15
        pg_bin_dir: /usr/lib/postgresql/15/bin
        pg_listen: '${ip}'
        pgbackrest_enabled: false
        pgbouncer_enabled: false
        pg_shared_buffer_ratio: 0.005
"#;

/// etcd on `IPS`, `pg-test` on `pg` (the first its primary).
fn inventory(pg: &[&str]) -> String {
    let etcd: Vec<String> = IPS
        .iter()
        .enumerate()
        .map(|(i, ip)| format!("{ip}: {{ etcd_seq: {} }}", i + 1))
        .collect();
    let pg: Vec<String> = pg
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let role = if i == 0 { "primary" } else { "replica" };
            format!("        {ip}: {{ pg_seq: {}, pg_role: {role} }}\n", i + 1)
        })
        .collect();
    format!(
        "all:\n  vars: {{ admin_ip: 127.0.0.1 }}\n  children:\n    etcd:\n      hosts: {{ {} }}\n      vars: {{ etcd_cluster: etcd }}\n    pg-test:\n      hosts:\n{}      vars:\n{}",
        etcd.join(", "),
        pg.concat(),
        PG_TEST_VARS.to_string()
            + r#"        pg_users:
          - { name: dbuser_test, password: DBUser.Test, pgbouncer: false }
        pg_databases:
          - { name: test, owner: dbuser_test }
        pg_hba_rules:
          - { user: dbuser_test, db: test, addr: '127.0.0.0/8', auth: pwd, title: 'test from loopback' }
"#
    )
}

pub(crate) fn apply(nodes: &Cluster, repo: &Repo, ctl: &std::path::Path) -> Run {
    apply_range(nodes, repo, ctl, None)
}

/// `apply` over `range` (`A..B`), or from what was applied last.
pub(crate) fn apply_range(
    nodes: &Cluster,
    repo: &Repo,
    ctl: &std::path::Path,
    range: Option<&str>,
) -> Run {
    let mut args = nodes.apply_args(ctl);
    args.push("--no-ssh-reuse".into());
    args.extend(range.map(str::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    pgitops(repo.path(), &args)
}

/// The apply succeeded; otherwise fails with its output and each node's Patroni logs.
pub(crate) fn ok(nodes: &Cluster, run: &Run) {
    if run.code == 0 {
        return;
    }
    let mut logs = String::new();
    for n in nodes.nodes() {
        let mut files = vec!["service/patroni/log/main/current".to_string()];
        files.push("pg/log/patroni/patroni.log".into());
        for e in std::fs::read_dir(n.dir.join("pg/log/postgres"))
            .into_iter()
            .flatten()
            .flatten()
        {
            files.push(format!(
                "pg/log/postgres/{}",
                e.file_name().to_string_lossy()
            ));
        }
        for f in files {
            let text = std::fs::read_to_string(n.dir.join(&f)).unwrap_or_default();
            let tail: Vec<&str> = text
                .lines()
                .rev()
                .filter(|l| !l.contains("  File ") && !l.contains("^^^"))
                .take(40)
                .collect();
            logs += &format!("--- {} {f}\n", n.ip);
            logs += &tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            logs.push('\n');
        }
    }
    panic!("apply failed:\n{}\n{}\n{logs}", run.stdout, run.stderr);
}

/// Patroni's `/cluster` as the test sees it: (name, role, state), sorted.
fn patroni_cluster(ip: &str) -> Vec<(String, String, String)> {
    let out = Command::new("curl")
        .args(["-s", "-m", "3", &format!("http://{ip}:8008/cluster")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("/cluster: {}", String::from_utf8_lossy(&out.stdout)));
    let s = |m: &serde_json::Value, k: &str| m[k].as_str().unwrap_or_default().to_string();
    let mut members: Vec<_> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (s(m, "name"), s(m, "role"), s(m, "state")))
        .collect();
    members.sort();
    members
}

/// Patroni's pid under the node's runit.
pub(crate) fn patroni_pid(nodes: &Cluster, ip: &str) -> u32 {
    let svc = nodes.node(ip).dir.join("service/patroni");
    let out = Command::new("sv").arg("status").arg(&svc).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let pid = text.split("(pid ").nth(1).and_then(|r| r.split(')').next());
    pid.and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("patroni not running on {ip}: {text}"))
}

/// A removal applied again over `range`: it succeeds, finds nothing (`found Empty`) and deletes
/// nothing from the DCS (`deleted`: how its report says so).
pub(crate) fn removed_again(
    nodes: &Cluster,
    repo: &Repo,
    ctl: &std::path::Path,
    range: &str,
    id: &str,
    deleted: &str,
) -> Run {
    let run = apply_range(nodes, repo, ctl, Some(range));
    ok(nodes, &run);
    eprintln!("remove again:\n{}", run.stdout);
    assert!(line(&run, id).contains("applied"), "{}", run.stdout);
    assert!(
        run.stdout.contains("found Empty") && run.stdout.contains(deleted),
        "nothing left to stop or delete: {}",
        run.stdout
    );
    run
}

pub(crate) fn line<'a>(run: &'a Run, id: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("no {id} in:\n{}", run.stdout))
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
    let streaming = leader.sql(
        "postgres",
        "SELECT string_agg(application_name, ',' ORDER BY application_name) FROM pg_stat_replication WHERE state = 'streaming'",
    );
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
    assert!(
        leader.login("dbuser_test", "wrong", "test").is_err(),
        "a wrong password is refused"
    );
    let conf =
        std::fs::read_to_string(nodes.node(IPS[1]).dir.join("pg/conf/pg-test-2.yml")).unwrap();
    assert!(conf.contains("protocol: http\n"), "native etcd: plain http");

    // 2. the same commit again: nothing planned, no Patroni and no PostgreSQL restarted
    let pids: Vec<u32> = IPS.iter().map(|ip| patroni_pid(&nodes, ip)).collect();
    let pms: Vec<_> = IPS
        .iter()
        .map(|ip| ha::postmaster(&nodes.node(ip).dir))
        .collect();
    assert!(pms.iter().all(Option::is_some), "{pms:?}");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    assert!(!run.stdout.contains("applied"), "{}", run.stdout);
    let again: Vec<u32> = IPS.iter().map(|ip| patroni_pid(&nodes, ip)).collect();
    assert_eq!(pids, again, "no Patroni restarted");
    let pms_again: Vec<_> = IPS
        .iter()
        .map(|ip| ha::postmaster(&nodes.node(ip).dir))
        .collect();
    assert_eq!(pms, pms_again, "no PostgreSQL restarted");

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
    let streaming = leader.sql(
        "postgres",
        "SELECT string_agg(application_name, ',' ORDER BY application_name) FROM pg_stat_replication WHERE state = 'streaming'",
    );
    assert_eq!(streaming, "pg-test-2,pg-test-3,pg-test-4");
    let view = patroni_cluster(FOURTH);
    assert!(
        view.iter().any(|m| m.0 == "pg-test-4" && m.1 == "replica"),
        "{view:?}"
    );
    assert_eq!(
        pids,
        IPS.iter()
            .map(|ip| patroni_pid(&nodes, ip))
            .collect::<Vec<_>>(),
        "the others keep running"
    );

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
    assert_eq!(
        pids,
        IPS.iter()
            .map(|ip| patroni_pid(&nodes, ip))
            .collect::<Vec<_>>(),
        "the others keep running"
    );

    // 5. the removal run again over its range: nothing left to do there, and it succeeds
    removed_again(
        &nodes,
        &repo,
        ctl.path(),
        &format!("{grown}..HEAD"),
        id,
        "deleted 0",
    );
    assert_eq!(patroni_cluster(IPS[0]).len(), 3);

    let left = nodes.stop_ha();
    assert!(left.is_empty(), "left behind: {left:?}");
    eprintln!("patroni test took {:?}", started.elapsed());
}
