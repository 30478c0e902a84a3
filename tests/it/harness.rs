//! Smoke tests of the node harness (`support::nodes`): replication, password logins over TCP,
//! promote/demote, standard paths and strict host keys over ssh. Addresses 127.0.21.x–127.0.25.x.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::nodes::{Cluster, Node, PGBIN};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `select pg_is_in_recovery()` over ssh and the standard socket dir, as on a Pigsty host.
fn recovery_over_ssh(c: &Cluster, n: &Node) -> String {
    let psql = format!("runuser -u postgres -- {PGBIN}/psql -X -h /var/run/postgresql");
    let out = n.ssh(c, &format!("{psql} -Atc 'select pg_is_in_recovery()'"));
    assert!(out.status.success(), "ssh {}: {}", n.ip, stderr(&out));
    stdout(&out)
}

fn recovery(n: &Node) -> String {
    n.sql("postgres", "select pg_is_in_recovery()")
}

fn wait_role(n: &Node, role: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let q = format!("select count(*) from pg_roles where rolname = '{role}'");
    while n.sql("postgres", &q) != "1" {
        assert!(Instant::now() < deadline, "{role} never reached {}", n.ip);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn replicas_stream_and_ssh_sees_standard_paths() {
    let ips = ["127.0.21.11", "127.0.21.12", "127.0.21.13"];
    let c = Cluster::start(&ips, true);
    let (p, r1, r2) = (c.node(ips[0]), c.node(ips[1]), c.node(ips[2]));
    let q = "select application_name from pg_stat_replication where state = 'streaming' order by 1";
    assert_eq!(p.sql("postgres", q), "127.0.21.12\n127.0.21.13");
    p.sql("postgres", "create role smoke_replicated");
    wait_role(r1, "smoke_replicated");
    wait_role(r2, "smoke_replicated");
    assert_eq!(recovery_over_ssh(&c, p), "f");
    assert_eq!(recovery_over_ssh(&c, r1), "t");
    for n in [p, r1, r2] {
        let out = n.ssh(
            &c,
            "test -f /pg/data/PG_VERSION && echo ok && cat /pg/data/PG_VERSION",
        );
        assert_eq!(stdout(&out), "ok\n15", "{}: {}", n.ip, stderr(&out));
    }
    // /pg/data over ssh is the node's own data dir: not another node's, not the host's.
    std::fs::write(r2.data_dir().join("harness-marker"), "r2").unwrap();
    assert_eq!(stdout(&r2.ssh(&c, "cat /pg/data/harness-marker")), "r2");
    assert!(!r1
        .ssh(&c, "test -e /pg/data/harness-marker")
        .status
        .success());
    assert!(!std::path::Path::new("/pg/data/harness-marker").exists());
    // Root's .bashrc (pyenv, ≈90 ms per command) is masked for commands over ssh.
    assert_eq!(stdout(&p.ssh(&c, "wc -c < /root/.bashrc")), "0");
}

#[test]
fn password_login_over_tcp() {
    let c = Cluster::start(&["127.0.22.11"], false);
    let n = c.node("127.0.22.11");
    assert_eq!(
        n.sql("postgres", "show password_encryption"),
        "scram-sha-256"
    );
    n.sql(
        "postgres",
        "create role smoke_user login password 'Right.Pass'",
    );
    n.login("smoke_user", "Right.Pass", "postgres").unwrap();
    for (user, password) in [("smoke_user", "Wrong.Pass"), ("smoke_nobody", "Right.Pass")] {
        let err = n.login(user, password, "postgres").unwrap_err();
        assert!(
            err.contains("password authentication failed"),
            "{user}: {err}"
        );
    }
    let q = "select rolpassword from pg_authid where rolname = 'smoke_user'";
    assert!(n.sql("postgres", q).starts_with("SCRAM-SHA-256$"));
    let hba = std::fs::read_to_string(n.hba_file()).unwrap();
    assert!(
        hba.contains("host all all 127.0.0.0/8 scram-sha-256"),
        "{hba}"
    );
}

#[test]
fn promote_and_demote_round_trip() {
    let ips = ["127.0.23.11", "127.0.23.12"];
    let c = Cluster::start(&ips, true);
    let (a, b) = (c.node(ips[0]), c.node(ips[1]));
    // Clean order: stop the old primary first, then promote; no rewind is needed.
    c.stop(&a.ip);
    c.promote(&b.ip);
    c.demote(&a.ip, &b.ip);
    assert_eq!((recovery(a), recovery(b)), ("t".into(), "f".into()));
    assert_eq!(recovery_over_ssh(&c, a), "t");
    b.sql("postgres", "create role smoke_after_switch");
    wait_role(a, "smoke_after_switch");
    // And back, promoting while the old primary still runs: demote rewinds it.
    c.promote(&a.ip);
    c.demote(&b.ip, &a.ip);
    assert_eq!((recovery(a), recovery(b)), ("f".into(), "t".into()));
    a.sql("postgres", "create role smoke_after_switchback");
    wait_role(b, "smoke_after_switchback");
    let timeline = "select timeline_id from pg_control_checkpoint()";
    assert_eq!(a.sql("postgres", timeline), "3");
    c.restart(&b.ip);
    assert_eq!(recovery(b), "t");
    a.sql("postgres", "create role smoke_after_restart");
    wait_role(b, "smoke_after_restart");
}

#[test]
fn unknown_host_key_is_refused() {
    let ips = ["127.0.24.11", "127.0.24.12"];
    let c = Cluster::start(&ips, false);
    let known = std::fs::read_to_string(c.known_hosts()).unwrap();
    assert_eq!(known.lines().count(), 2, "{known}");
    let kept = known.lines().filter(|l| !l.starts_with("127.0.24.12 "));
    let kept: String = kept.map(|l| format!("{l}\n")).collect();
    std::fs::write(c.known_hosts(), kept).unwrap();
    let out = c.node(ips[1]).ssh(&c, "true");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("Host key verification failed"),
        "{out:?}"
    );
    let out = c.node(ips[0]).ssh(&c, "echo reachable");
    assert_eq!(stdout(&out), "reachable", "{}", stderr(&out));
}

#[test]
fn restart_sshd_breaks_open_masters_and_logins_are_counted() {
    let ip = "127.0.25.11";
    let c = Cluster::start(&[ip], false);
    let n = c.node(ip);
    assert_eq!(n.ssh_logins(), 0, "the harness itself does not log in");
    let path = c.run_dir().join("cm");
    let control = |extra: &[&str]| {
        let mut ssh = c.ssh_cmd();
        ssh.arg("-o").arg(format!("ControlPath={}", path.display()));
        ssh.args(extra).arg(ip).output().expect("ssh")
    };
    // a master that would outlive its command (as the service's do)
    let out = control(&["-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-fN"]);
    assert!(out.status.success(), "master: {}", stderr(&out));
    assert!(control(&["-O", "check"]).status.success());
    assert!(n.ssh(&c, "true").status.success());
    assert_eq!(n.ssh_logins(), 2, "the master and one plain login");
    c.restart_sshd(ip);
    let deadline = Instant::now() + Duration::from_secs(5);
    while control(&["-O", "check"]).status.success() {
        assert!(
            Instant::now() < deadline,
            "the master survived the sshd restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = n.ssh(&c, "true");
    assert!(
        out.status.success(),
        "same host key after restart: {}",
        stderr(&out)
    );
    assert_eq!(n.ssh_logins(), 3, "the log is kept across the restart");
    // a master left open (as by a killed service) does not outlive the cluster
    let out = control(&["-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-fN"]);
    assert!(out.status.success(), "master: {}", stderr(&out));
    let check = stderr(&control(&["-O", "check"]));
    let pid = check.split("pid=").nth(1).and_then(|s| s.split(')').next());
    let pid = pid
        .unwrap_or_else(|| panic!("no master pid in {check:?}"))
        .to_string();
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}/cwd")).exists() {
        assert!(
            Instant::now() < deadline,
            "master {pid} outlived the cluster"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each node runs its own pgbouncer in Pigsty's layout: ssh sees the node's /etc/pgbouncer and
/// /pg/bin, the admin console answers as the dbsu, a HUP reloads in place (same pid), and the
/// teardown stops it.
#[test]
fn pgbouncer_per_node_in_pigsty_layout() {
    let ips = ["127.0.130.11", "127.0.130.12"];
    let c = Cluster::start(&ips, true);
    let mut pids = vec![];
    for n in ips.map(|ip| c.node(ip)) {
        let check = "grep -c '^listen_addr *= ' /etc/pgbouncer/pgbouncer.ini && \
            grep '^listen_addr' /etc/pgbouncer/pgbouncer.ini && test -x /pg/bin/pgb-user && \
            stat -c %U /pg/bin/pgb-user /pg/tmp && test -f /pg/data/PG_VERSION && echo ok";
        let out = n.ssh(&c, check);
        let want = format!(
            "1\nlisten_addr                 = {}\npostgres\npostgres\nok",
            n.ip
        );
        assert_eq!(stdout(&out), want, "{}: {}", n.ip, stderr(&out));
        let dbs = n.pgb_sql("pgbouncer", "SHOW DATABASES");
        assert!(dbs.lines().any(|l| l.starts_with("postgres|")), "{dbs}");
        assert_eq!(n.pgb_sql("postgres", "select 7"), "7");
        let pid = n.pgbouncer_pid();
        // A new database.txt entry shows after a HUP, with the same process.
        let db = n.pgbouncer_dir().join("database.txt");
        let more = "template1                   = host=/var/run/postgresql pool_size=3\n";
        std::fs::write(&db, std::fs::read_to_string(&db).unwrap() + more).unwrap();
        c.hup_pgbouncer(&n.ip);
        let dbs = n.pgb_sql("pgbouncer", "SHOW DATABASES");
        let row = dbs.lines().find(|l| l.starts_with("template1|"));
        assert!(row.is_some_and(|r| r.contains("|3|")), "{dbs}");
        assert_eq!(n.pgbouncer_pid(), pid, "HUP must not restart pgbouncer");
        pids.push(pid);
    }
    drop(c);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}/cwd")).exists(),
            "{pid} left running"
        );
    }
}
