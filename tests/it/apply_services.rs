//! Native HAProxy services on HA nodes: one pushed commit creates etcd, a 2-member `pg-test`
//! and its services (`pgitops_bind_node_ip: true`: every node binds its own address;
//! `pg_default_service_dest: postgres` because pgbouncer is not launched here). A client with
//! the user's password reaches the primary through `<node>:5436` and `:5433`, a replica through
//! `:5434`, from every node. A service added in `pg_services` opens its port after one apply —
//! with a steady loop of short queries through `:5434` during the reloads failing 0 times — and
//! removing it closes the port. HAProxy's runtime API forces a server DOWN (the service refuses
//! at once, the checks bring it back) and UP. After `kill -9` of the primary's Patroni and
//! postmaster, the primary service follows the new leader.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgitops::execute::native::{haproxy_runtime as haproxy, Ctx};
use pgitops::execute::runner::{Runner, SshOptions};
use pgitops::execute::{ExecConfig, HostLocks};
use pgitops::inventory::{self, InventoryFiles};

use crate::support::nodes::{ha, Cluster};
use crate::support::patroni::{self, apply, line, ok, through as q, wait_until as wait, WHO};
use crate::support::Repo;

const IPS: [&str; 2] = ["127.0.72.11", "127.0.72.12"];

const EXTRA: &str = "        pg_services:\n          - { name: extra, port: 5440, dest: postgres, check: /primary, selector: \"[]\" }\n";

fn inventory(extra: &str) -> String {
    let text = patroni::inventory(&IPS[..1], &IPS);
    let text = text.replace(
        "        haproxy_enabled: false\n",
        "        pgitops_bind_node_ip: true\n        pg_default_service_dest: postgres\n        pg_rto: fast\n        haproxy_admin_password: Adm1n.Secret\n",
    );
    assert!(text.contains("pgitops_bind_node_ip"), "{text}");
    text + extra
}

/// A loop of short queries (a new connection each) through `ip:port` until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Load {
    fn start(ip: &'static str, port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (okc, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, o, f) = (stop.clone(), okc.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            let mut errors = vec![];
            let started = Instant::now();
            while !s.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(300) {
                match q(ip, port, "SELECT 1") {
                    Ok(_) => o.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        errors.push(e);
                        f.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            errors
        });
        Load {
            stop,
            ok: okc,
            failed,
            thread,
        }
    }

    fn finish(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self.thread.join().unwrap();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            errors,
        )
    }
}

/// Runs the runtime-API helper against `host`'s HAProxy, as the lead's switchover will.
fn set_health(nodes: &Cluster, ctl: &std::path::Path, host: &str, server: &str, up: bool) {
    let inv = inventory::load(&InventoryFiles::single("pigsty.yml", &inventory("")), "t").unwrap();
    let runner = Runner::ssh(SshOptions {
        user: Some("root".into()),
        identity: Some(nodes.identity()),
        known_hosts: Some(nodes.known_hosts()),
        config_file: Some(nodes.ssh_config()),
        control_dir: ctl.to_path_buf(),
        connect_timeout: Duration::from_secs(10),
        reuse: false,
    });
    let cfg = ExecConfig::default();
    let locks = HostLocks::default();
    let ctx = Ctx {
        old: &inv,
        new: &inv,
        runner: &runner,
        cfg: &cfg,
        locks: &locks,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        haproxy::set_servers_health(&ctx, host, &[("pg-test-default", server, up)])
            .await
            .unwrap();
        let bad =
            haproxy::set_servers_health(&ctx, host, &[("pg-test-default", "no-such", up)]).await;
        assert!(bad.is_err(), "an unknown server is an error");
        runner.close().await;
    });
}

#[test]
fn services_follow_the_inventory_reload_without_failures_and_follow_the_leader() {
    let started = Instant::now();
    let nodes = Cluster::start_ha(&IPS);
    let ctl = tempfile::Builder::new()
        .prefix("pgs")
        .tempdir_in("/tmp")
        .unwrap();
    let repo = Repo::new();

    // 1. one commit: etcd, pg-test and its services
    repo.commit_inventory(&inventory(""), "etcd, pg-test and services");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    eprintln!("create:\n{}", run.stdout);
    assert!(
        line(&run, "pg-test/service/refresh").contains("applied"),
        "{}",
        run.stdout
    );
    for ip in IPS {
        let cfg =
            std::fs::read_to_string(nodes.node(ip).dir.join("haproxy/etc/haproxy.cfg")).unwrap();
        assert!(
            cfg.starts_with("# written by pgitops") && cfg.contains(&format!("bind {ip}:9101"))
        );
        assert_eq!(
            q(ip, 5436, WHO).unwrap(),
            format!("{} false", IPS[0]),
            "{ip}:5436 → primary"
        );
        assert_eq!(
            q(ip, 5433, WHO).unwrap(),
            format!("{} false", IPS[0]),
            "{ip}:5433 → primary"
        );
        assert_eq!(
            q(ip, 5434, WHO).unwrap(),
            format!("{} true", IPS[1]),
            "{ip}:5434 → replica"
        );
    }
    assert!(
        !run.stdout.contains("DBUser.Test") && !run.stdout.contains("Adm1n"),
        "no password shown"
    );
    // the stats page: the admin's password lets in, another does not (curl reads it on stdin)
    let stats = |pw: &str| {
        use std::io::Write;
        let url = format!("http://{}:9101/haproxy/{}/", IPS[0], IPS[0]);
        let mut child = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-m",
                "3",
                "-K",
                "-",
                &url,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let cfg = format!("user = \"admin:{pw}\"\n");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(cfg.as_bytes())
            .unwrap();
        String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).to_string()
    };
    assert_eq!(stats("Adm1n.Secret"), "200");
    assert_eq!(stats("wrong"), "401");

    // 2. a new service: its port opens after one apply; reads never fail during the reloads
    let load = Load::start(IPS[1], 5434);
    std::thread::sleep(Duration::from_millis(500));
    repo.commit_inventory(&inventory(EXTRA), "pg-test: a service more");
    let run = apply(&nodes, &repo, ctl.path());
    std::thread::sleep(Duration::from_millis(500));
    let (good, failed, errors) = load.finish();
    ok(&nodes, &run);
    eprintln!("add service:\n{}", run.stdout);
    let refresh = line(&run, "pg-test/service/refresh");
    assert!(refresh.contains("applied"), "{}", run.stdout);
    eprintln!("reload under load: {good} queries ok, {failed} failed");
    assert_eq!(failed, 0, "reads failed during the reload: {errors:?}");
    assert!(good > 10, "the load ran: {good}");
    for ip in IPS {
        assert_eq!(
            q(ip, 5440, WHO).unwrap(),
            format!("{} false", IPS[0]),
            "{ip}:5440"
        );
    }
    // the same commit again: nothing to do
    let run = apply(&nodes, &repo, ctl.path());
    assert!(!run.stdout.contains("applied"), "{}", run.stdout);

    // 3. the service removed: its port closes
    repo.commit_inventory(&inventory(""), "pg-test: the extra service goes");
    let run = apply(&nodes, &repo, ctl.path());
    ok(&nodes, &run);
    assert!(
        line(&run, "pg-test/service/refresh").contains("applied"),
        "{}",
        run.stdout
    );
    for ip in IPS {
        let e = q(ip, 5440, WHO).unwrap_err();
        assert!(e.contains("refused"), "{ip}:5440 closed: {e}");
        assert!(!nodes
            .node(ip)
            .dir
            .join("haproxy/etc/conf.d/pg-test-extra.cfg")
            .exists());
        assert!(q(ip, 5436, WHO).is_ok());
    }

    // 4. the runtime API: the primary forced DOWN on one node's HAProxy, then back by checks;
    //    the replica forced UP into the primary service
    set_health(&nodes, ctl.path(), IPS[1], "pg-test-1", false);
    assert!(q(IPS[1], 5436, WHO).is_err(), "forced down: no server");
    assert!(
        q(IPS[0], 5436, WHO).is_ok(),
        "the other node's HAProxy is untouched"
    );
    wait("checks bring pg-test-1 back", 15, || {
        q(IPS[1], 5436, WHO).is_ok()
    });
    set_health(&nodes, ctl.path(), IPS[1], "pg-test-2", true);
    let seen: Vec<String> = (0..4).filter_map(|_| q(IPS[1], 5436, WHO).ok()).collect();
    assert!(
        seen.contains(&format!("{} true", IPS[1])),
        "forced up: the replica served: {seen:?}"
    );
    wait("checks drop pg-test-2 again", 15, || {
        (0..4).all(|_| q(IPS[1], 5436, WHO).is_ok_and(|w| w.ends_with("false")))
    });

    // 5. the primary killed: the primary service follows the new leader
    let first = nodes.node(IPS[0]);
    let sv = first.dir.join("service/patroni");
    Command::new("sv").arg("once").arg(&sv).output().unwrap();
    let out = Command::new("sv").arg("status").arg(&sv).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let pid: i32 = text
        .split("(pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap()
        .parse()
        .unwrap();
    let pm = ha::postmaster(&first.dir).expect("the primary's postmaster");
    let killed = Instant::now();
    // SAFETY: kill(2) of pids read from runit and postmaster.pid of this test's node.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::kill(pm, libc::SIGKILL);
    }
    wait("the primary service reaches the new leader", 90, || {
        q(IPS[1], 5436, WHO).is_ok_and(|w| w == format!("{} false", IPS[1]))
    });
    eprintln!(
        "after kill -9: writes through {}:5436 reach the new leader after {:?}",
        IPS[1],
        killed.elapsed()
    );
    // each service checks on its own: the `primary` service (5433) follows too
    wait("5433 follows the new leader", 15, || {
        q(IPS[1], 5433, WHO).is_ok_and(|w| w == format!("{} false", IPS[1]))
    });

    let left = nodes.stop_ha();
    assert!(left.is_empty(), "left behind: {left:?}");
    eprintln!("services test took {:?}", started.elapsed());
}
