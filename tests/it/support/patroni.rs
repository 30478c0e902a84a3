//! Patroni clusters on HA test nodes, as the tests see them: the inventory of a 3-member etcd
//! with a `pg-test` beside it, Patroni's own view (`/cluster` over its REST API), the pid runit
//! supervises, the leader's streams, and an apply failure shown with each node's Patroni and
//! PostgreSQL logs.
#![allow(dead_code)] // not every test uses every helper

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::nodes::{Cluster, PGBIN};
use super::{pgitops, Repo, Run};

/// The variables of `pg-test` on HA nodes (PostgreSQL 15 from Debian, listening on the node's
/// address, small shared buffers, no pgBackRest, no pgbouncer and no HAProxy: Pigsty's services
/// bind `*`, which several loopback nodes cannot share; tests of services turn HAProxy on with
/// `pgitops_bind_node_ip`).
pub const PG_TEST_VARS: &str = r#"        pg_cluster: pg-test
        pg_version: 15
        pg_bin_dir: /usr/lib/postgresql/15/bin
        pg_listen: '${ip}'
        pgbackrest_enabled: false
        pgbouncer_enabled: false
        haproxy_enabled: false
        pg_shared_buffer_ratio: 0.005
"#;

/// etcd on `etcd` (members `etcd_seq` 1..), `pg-test` on `pg` (the first its primary), with a
/// business user and database and an HBA rule letting the user in from loopback.
pub fn inventory(etcd: &[&str], pg: &[&str]) -> String {
    let etcd: Vec<String> = etcd
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

/// [`inventory`] with pgbouncer on every member: `dbuser_test` in its userlist, let in from
/// pgbouncer's local socket to PostgreSQL and from loopback to pgbouncer (`pgb_hba_rules`, the
/// last variable, so a caller can append more of pg-test's variables after it).
pub fn with_pgbouncer(inventory: &str) -> String {
    let text = inventory
        .replace("pgbouncer_enabled: false", "pgbouncer_enabled: true")
        .replace(
            "password: DBUser.Test, pgbouncer: false",
            "password: DBUser.Test, pgbouncer: true",
        )
        .replace(
            "title: 'test from loopback' }\n",
            "title: 'test from loopback' }\n          - { user: dbuser_test, db: test, addr: local, auth: pwd, title: 'pgbouncer to postgres' }\n",
        );
    assert!(text.contains("pgbouncer to postgres"), "{text}");
    text + "        pgb_hba_rules:\n          - { user: dbuser_test, db: test, addr: '127.0.0.0/8', auth: pwd, title: 'test clients' }\n"
}

/// Fails with the run's output and each node's Patroni and PostgreSQL logs unless it succeeded.
pub fn ok(nodes: &Cluster, run: &Run) {
    if run.code == 0 {
        return;
    }
    panic!(
        "apply failed:\n{}\n{}\n{}",
        run.stdout,
        run.stderr,
        logs(nodes)
    );
}

/// The last lines of each node's Patroni and PostgreSQL logs.
pub fn logs(nodes: &Cluster) -> String {
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
    logs
}

/// Patroni's `/cluster` as the test sees it: (name, role, state), sorted.
pub fn view(ip: &str) -> Vec<(String, String, String)> {
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
pub fn pid(nodes: &Cluster, ip: &str) -> u32 {
    let svc = nodes.node(ip).dir.join("service/patroni");
    let out = Command::new("sv").arg("status").arg(&svc).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let pid = text.split("(pid ").nth(1).and_then(|r| r.split(')').next());
    pid.and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("patroni not running on {ip}: {text}"))
}

/// The application names streaming from the leader on `ip`, sorted, comma-separated.
pub fn streaming(nodes: &Cluster, ip: &str) -> String {
    nodes.node(ip).sql(
        "postgres",
        "SELECT coalesce(string_agg(application_name, ',' ORDER BY application_name), '') FROM pg_stat_replication WHERE state = 'streaming'",
    )
}

/// `pgitops apply` on `nodes` without SSH connection reuse, from what was applied last.
pub fn apply(nodes: &Cluster, repo: &Repo, ctl: &Path) -> Run {
    apply_range(nodes, repo, ctl, None)
}

/// [`apply`] over `range` (`A..B`) when given.
pub fn apply_range(nodes: &Cluster, repo: &Repo, ctl: &Path, range: Option<&str>) -> Run {
    let mut args = nodes.apply_args(ctl);
    args.push("--no-ssh-reuse".into());
    args.extend(range.map(str::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    pgitops(repo.path(), &args)
}

/// The output line of action `id`.
pub fn line<'a>(run: &'a Run, id: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("no {id} in:\n{}", run.stdout))
}

/// A removal applied again over `range`: it succeeds, finds nothing (`found Empty`) and deletes
/// nothing from the DCS (`deleted`: how its report says so).
pub fn removed_again(
    nodes: &Cluster,
    repo: &Repo,
    ctl: &Path,
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

/// A switchover by hand through Patroni's REST API on `via` (Pigsty's default REST
/// credentials), as a failover would move the leader behind pgitops' back.
pub fn switch_by_hand(via: &str, leader: &str, candidate: &str) {
    let body = format!(r#"{{"leader": "{leader}", "candidate": "{candidate}"}}"#);
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "60",
            "-u",
            "postgres:Patroni.API",
            "-XPOST",
            "-d",
        ])
        .arg(&body)
        // from the member's own address, which Patroni's allowlist admits (not 127.0.0.1)
        .args(["--interface", via])
        .arg(format!("http://{via}:8008/switchover"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Successfully"), "switchover by hand: {text}");
}

/// The leader's name in Patroni's `/cluster`, asked of `ip` (exactly one leader).
pub fn leader(ip: &str) -> String {
    let leaders: Vec<String> = view(ip)
        .into_iter()
        .filter(|m| m.1 == "leader")
        .map(|m| m.0)
        .collect();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    leaders[0].clone()
}

/// `sql` as the business user (`dbuser_test` / `DBUser.Test` on `test`) through `ip:port`: its trimmed output, or psql's error.
pub fn through(ip: &str, port: u16, sql: &str) -> Result<String, String> {
    let out = Command::new(format!("{PGBIN}/psql"))
        .args(["-X", "-At", "-w", "-c", sql])
        .env_clear()
        .stdin(Stdio::null())
        .envs([
            ("PGHOST", ip),
            ("PGPORT", &port.to_string()),
            ("PGUSER", "dbuser_test"),
        ])
        .envs([("PGDATABASE", "test"), ("PGPASSWORD", "DBUser.Test")])
        .envs([("PGPASSFILE", "/dev/null"), ("PGCONNECT_TIMEOUT", "3")])
        .output()
        .expect("psql");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// Which server answers: its first listen address (the node's under `pg_listen: '${ip}'`, also
/// through pgbouncer, which reaches PostgreSQL over its socket) and whether it is in recovery.
pub const WHO: &str =
    "SELECT split_part(current_setting('listen_addresses'), ',', 1) || ' ' || pg_is_in_recovery()";

pub fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
