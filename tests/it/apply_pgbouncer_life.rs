//! pgbouncer's lifecycle, natively, on HA nodes (127.0.71.x): one commit creates a 2-member
//! `pg-test` under Patroni with `pgbouncer_enabled: true` and a `pgbouncer: true` user; pgbouncer
//! runs under each node's runit as the dbsu and the user logs in through `<node>:6432` with its
//! password on both members. The plan and the result say `max_prepared_statements` is left out
//! on Debian's pgbouncer 1.18. A `pgbouncer_poolmode` change shows in `SHOW CONFIG` with the
//! same pgbouncer pid (reloaded, not restarted); a member added by a commit gets pgbouncer too.
//! Also the plan rows of port and `pgbouncer_enabled` changes (no nodes).

use crate::support::fleet::Fleet;
use crate::support::nodes::Node;
use crate::support::patroni::{self, line, ok};
use crate::support::{actions, hosts, plan_edit, vars};

const IPS: [&str; 2] = ["127.0.71.11", "127.0.71.12"];
const THIRD: &str = "127.0.71.13";

fn a(id: &str, class: &str, pigsty: &str) -> (String, String, String, String) {
    (id.into(), class.into(), "new".into(), pigsty.into())
}

#[test]
fn pgbouncer_port_and_enabled_changes_are_restart_class() {
    let p = plan_edit(|v| {
        vars(v, "pg-test")["pgbouncer_port"] = 6433.into();
        hosts(v, "pg-meta")["127.0.10.10"]["pgbouncer_enabled"] = false.into();
        hosts(v, "pg-test")["127.0.10.13"]["pgbouncer_sslmode"] = "require".into();
    });
    assert_eq!(
        actions(&p),
        vec![
            a(
                "pg-meta/pgbouncer/disable",
                "restart",
                "./pgsql-rm.yml -l '127.0.10.10,&pg-meta' -t pgbouncer"
            ),
            // the port's restart renders the new sslmode too: no separate reload on .13
            a(
                "pg-test/pgbouncer/restart",
                "restart",
                "./pgsql.yml -l pg-test -t pgbouncer_config,pgbouncer_launch"
            ),
        ]
    );
    let p = plan_edit(|v| {
        hosts(v, "pg-test")["127.0.10.13"]["pgbouncer_sslmode"] = "require".into();
    });
    assert_eq!(
        actions(&p),
        vec![a(
            "pg-test/pgbouncer/config",
            "reload",
            "./pgsql.yml -l '127.0.10.13,&pg-test' -t pgbouncer_config,pgbouncer_reload"
        )]
    );
}

fn inventory(pg: &[&str], poolmode: &str) -> String {
    patroni::with_pgbouncer(&patroni::inventory(&IPS[..1], pg))
        + &format!("        pgbouncer_poolmode: {poolmode}\n")
}

/// The value of `key` in `SHOW CONFIG` on `n`'s admin console.
fn config(n: &Node, key: &str) -> String {
    let out = n.pgb_sql("pgbouncer", "SHOW CONFIG");
    let row = out.lines().find(|l| l.split('|').next() == Some(key));
    let row = row.unwrap_or_else(|| panic!("{key} not in SHOW CONFIG:\n{out}"));
    row.split('|').nth(1).unwrap_or_default().to_string()
}

/// pgbouncer's pid as runit supervises it, checked against its pid file.
fn supervised(n: &Node) -> i32 {
    let svc = n.dir.join("service/pgbouncer");
    let out = std::process::Command::new("sv")
        .arg("status")
        .arg(&svc)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let pid: i32 = text
        .split("(pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("pgbouncer not supervised on {}: {text}", n.ip));
    assert_eq!(
        pid,
        n.pgbouncer_pid(),
        "{}: runit runs the pid file's pgbouncer",
        n.ip
    );
    pid
}

fn logs_in_everywhere(f: &Fleet, ips: &[&str]) {
    for ip in ips {
        let n = f.nodes.node(ip);
        let mut last = Err(String::new());
        // a replica replays the user asynchronously; pgbouncer's userlist is already there
        for _ in 0..50 {
            last = n.pgb_login("dbuser_test", "DBUser.Test", "test");
            if last.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(last, Ok(()), "{ip}: login through pgbouncer");
        assert!(n.pgb_login("dbuser_test", "wrong", "test").is_err(), "{ip}");
    }
}

#[test]
fn pgbouncer_launched_with_a_native_cluster_and_reloaded_on_a_pool_setting() {
    let f = Fleet::ha(&[IPS[0], IPS[1], THIRD]);
    let created = f
        .repo
        .commit_inventory(&inventory(&IPS, "transaction"), "pg-test with pgbouncer");

    // the plan says what the version gate leaves out
    let plan = crate::support::pgitops(f.repo.path(), &["plan", "--output", "json"]);
    let json = plan.json();
    let step = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "pg-test/pgbouncer/launch")
        .unwrap_or_else(|| panic!("no launch in {json:#}"));
    let steps = step["steps"].to_string();
    assert!(
        steps.contains("max_prepared_statements needs 1.21+"),
        "{steps}"
    );

    let run = f.apply(&["--no-ssh-reuse"]);
    ok(&f.nodes, &run);
    eprintln!("{}", run.stdout);
    let launched = line(&run, "pg-test/pgbouncer/launch");
    assert!(launched.contains("applied"), "{}", run.stdout);
    assert!(line(&run, "pg-test/pgbouncer/reload").contains("applied"));
    let note = f.note(&created).to_string();
    assert!(
        note.contains("left out for pgbouncer 1.18.0: max_prepared_statements (pgbouncer 1.21+)"),
        "{note}"
    );
    assert!(!note.contains("DBUser.Test") && !note.contains("SCRAM-SHA-256$"));
    logs_in_everywhere(&f, &IPS);
    let mut pids = vec![];
    for ip in IPS {
        let n = f.nodes.node(ip);
        let ini = std::fs::read_to_string(n.pgbouncer_dir().join("pgbouncer.ini")).unwrap();
        assert!(ini.starts_with("# written by pgitops"), "{ini}");
        assert!(!ini.contains("\nmax_prepared_statements"), "{ini}");
        assert_eq!(config(n, "listen_addr"), ip);
        assert_eq!(config(n, "pool_mode"), "transaction");
        pids.push(supervised(n));
    }

    // a pool setting: re-rendered, RELOADed, the same pgbouncer
    f.repo
        .commit_inventory(&inventory(&IPS, "session"), "pgbouncer: session pooling");
    let run = f.apply(&["--no-ssh-reuse"]);
    ok(&f.nodes, &run);
    eprintln!("{}", run.stdout);
    let config_line = line(&run, "pg-test/pgbouncer/config");
    assert!(config_line.contains("applied"), "{}", run.stdout);
    assert!(!run.stdout.contains("pgbouncer/launch"), "{}", run.stdout);
    for (ip, pid) in IPS.iter().zip(&pids) {
        let n = f.nodes.node(ip);
        assert_eq!(config(n, "pool_mode"), "session", "{ip}");
        assert_eq!(supervised(n), *pid, "{ip}: reloaded, not restarted");
    }
    logs_in_everywhere(&f, &IPS);

    // a third member: Patroni clones it, pgbouncer is launched there, the others keep theirs
    let three = [IPS[0], IPS[1], THIRD];
    f.repo
        .commit_inventory(&inventory(&three, "session"), "pg-test: a third member");
    let run = f.apply(&["--no-ssh-reuse"]);
    ok(&f.nodes, &run);
    eprintln!("{}", run.stdout);
    let launched = line(&run, "pg-test/pgbouncer/launch");
    assert!(launched.contains("applied"), "{}", run.stdout);
    logs_in_everywhere(&f, &three);
    supervised(f.nodes.node(THIRD));
    for (ip, pid) in IPS.iter().zip(&pids) {
        assert_eq!(supervised(f.nodes.node(ip)), *pid, "{ip} left running");
    }

    let left = f.nodes.stop_ha();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `pg-test` on one node (etcd beside it) with pgbouncer, and `extra` of pg-test's variables.
fn one_node(ip: &str, extra: &str) -> String {
    patroni::with_pgbouncer(&patroni::inventory(&[ip], &[ip])) + extra
}

#[test]
fn pgbouncer_port_change_restarts_it_and_disabling_stops_it() {
    const IP: &str = "127.0.71.21";
    let f = Fleet::ha(&[IP]);
    let n = f.nodes.node(IP);
    let reach = |port: u16| patroni::through(IP, port, "SELECT 1");
    f.repo
        .commit_inventory(&one_node(IP, ""), "pg-test with pgbouncer");
    let run = f.apply(&["--no-ssh-reuse"]);
    ok(&f.nodes, &run);
    assert_eq!(reach(6432), Ok("1".into()));
    let before = supervised(n);

    // the port: class restart, a new pgbouncer on the new port, the old port closed
    let port = "        pgbouncer_port: 6433\n";
    f.repo
        .commit_inventory(&one_node(IP, port), "pgbouncer on 6433");
    let run = f.apply(&["--no-ssh-reuse"]);
    ok(&f.nodes, &run);
    eprintln!("port:\n{}", run.stdout);
    assert!(
        line(&run, "pg-test/pgbouncer/restart").contains("applied"),
        "{}",
        run.stdout
    );
    assert_eq!(reach(6433), Ok("1".into()));
    assert!(reach(6432).is_err(), "6432 closed");
    assert_ne!(supervised(n), before, "restarted");

    // disabled: stopped and its service removed; enabled again: launched on the same port
    let off = one_node(IP, port).replace("pgbouncer_enabled: true", "pgbouncer_enabled: false");
    f.repo.commit_inventory(&off, "pgbouncer off");
    let run = f.apply(&["--no-ssh-reuse"]);
    ok(&f.nodes, &run);
    eprintln!("off:\n{}", run.stdout);
    assert!(
        line(&run, "pg-test/pgbouncer/disable").contains("applied"),
        "{}",
        run.stdout
    );
    assert!(reach(6433).is_err(), "pgbouncer stopped");
    assert!(
        !n.dir.join("service/pgbouncer").exists(),
        "its service removed"
    );
    f.repo
        .commit_inventory(&one_node(IP, port), "pgbouncer on again");
    let run = f.apply(&["--no-ssh-reuse"]);
    ok(&f.nodes, &run);
    assert!(
        line(&run, "pg-test/pgbouncer/enable").contains("applied"),
        "{}",
        run.stdout
    );
    assert_eq!(reach(6433), Ok("1".into()));
    supervised(n);

    let left = f.nodes.stop_ha();
    assert!(left.is_empty(), "left behind: {left:?}");
}
