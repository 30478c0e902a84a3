//! The native ETCD module on HA nodes (sshd + private runsvdir each, Pigsty's etcd paths): a
//! pushed `etcd` group of 3 becomes a healthy cluster under runit, a 4th host joins, its approved
//! removal takes it out of the member list, an apply of the same commit restarts nothing, and
//! runit restarts a killed etcd. etcdctl from the test checks each effect.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_yaml_ng::Value;

use crate::support::nodes::Cluster;
use crate::support::{pgitops, to_yaml, yaml, Repo, Run};

const IPS: [&str; 4] = ["127.0.62.11", "127.0.62.12", "127.0.62.13", "127.0.62.14"];

fn inventory(n: usize) -> Value {
    let hosts: Vec<String> = IPS[..n]
        .iter()
        .enumerate()
        .map(|(i, ip)| format!("{ip}: {{ etcd_seq: {} }}", i + 1))
        .collect();
    yaml(&format!(
        "all:\n  vars: {{ admin_ip: 127.0.0.1 }}\n  children:\n    etcd:\n      hosts: {{ {} }}\n      vars: {{ etcd_cluster: etcd }}\n",
        hosts.join(", ")
    ))
}

fn apply(nodes: &Cluster, repo: &Repo, ctl: &std::path::Path) -> Run {
    let mut args = nodes.apply_args(ctl);
    args.push("--no-ssh-reuse".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    pgitops(repo.path(), &args)
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "apply failed:\n{}\n{}", run.stdout, run.stderr);
}

/// `etcdctl <args> -w json` against `ips`, from the test.
fn etcdctl(ips: &[&str], args: &[&str]) -> serde_json::Value {
    let eps: Vec<String> = ips.iter().map(|ip| format!("http://{ip}:2379")).collect();
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            &eps.join(","),
            "--dial-timeout",
            "2s",
            "-w",
            "json",
        ])
        .args(args)
        .output()
        .expect("etcdctl");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "etcdctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Member names, sorted.
fn members(ips: &[&str]) -> Vec<String> {
    let list = etcdctl(ips, &["member", "list"]);
    let mut names: Vec<String> = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap_or("<unstarted>").to_string())
        .collect();
    names.sort();
    names
}

fn healthy(ips: &[&str]) -> bool {
    let h = etcdctl(ips, &["endpoint", "health"]);
    h.as_array().unwrap().iter().all(|e| e["health"] == true)
}

/// etcd's pid under the node's runit (`sv status`, from the host on the node's real path).
fn etcd_pid(nodes: &Cluster, ip: &str) -> u32 {
    let svc = nodes.node(ip).dir.join("service/etcd");
    let out = Command::new("sv").arg("status").arg(&svc).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let pid = text.split("(pid ").nth(1).and_then(|r| r.split(')').next());
    pid.and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("etcd not running on {ip}: {text}"))
}

fn action(run: &Run, id: &str) -> String {
    run.stdout
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("no {id} in:\n{}", run.stdout))
        .to_string()
}

#[test]
fn etcd_cluster_created_grown_shrunk_and_supervised_by_runit() {
    let started = Instant::now();
    let nodes = Cluster::start_ha(&IPS);
    let ctl = tempfile::Builder::new()
        .prefix("pge")
        .tempdir_in("/tmp")
        .unwrap();
    let repo = Repo::new();
    let three = &IPS[..3];

    // 1. create: three members, etcd_init new, healthy
    repo.commit_inventory(&to_yaml(&inventory(3)), "etcd: three members");
    let t = Instant::now();
    let run = apply(&nodes, &repo, ctl.path());
    ok(&run);
    eprintln!("create: apply took {:?}\n{}", t.elapsed(), run.stdout);
    assert!(
        action(&run, "etcd/cluster/etcd/create").contains("applied"),
        "{}",
        run.stdout
    );
    assert!(healthy(three));
    assert_eq!(members(three), ["etcd-1", "etcd-2", "etcd-3"]);
    let conf = std::fs::read_to_string(nodes.node(IPS[1]).dir.join("etcd/conf/etcd.conf")).unwrap();
    assert!(
        conf.contains("name: etcd-2\n") && conf.contains("initial-cluster-state: \"new\""),
        "{conf}"
    );

    // 2. a fourth host joins (member add, then started with `existing`)
    repo.commit_inventory(&to_yaml(&inventory(4)), "etcd: a fourth member");
    let t = Instant::now();
    let run = apply(&nodes, &repo, ctl.path());
    ok(&run);
    eprintln!("add: apply took {:?}\n{}", t.elapsed(), run.stdout);
    assert!(
        action(&run, "etcd/member/127.0.62.14/add").contains("applied"),
        "{}",
        run.stdout
    );
    assert!(healthy(&IPS));
    assert_eq!(members(&IPS), ["etcd-1", "etcd-2", "etcd-3", "etcd-4"]);
    let conf = std::fs::read_to_string(nodes.node(IPS[3]).dir.join("etcd/conf/etcd.conf")).unwrap();
    assert!(
        conf.contains("initial-cluster-state: \"existing\""),
        "{conf}"
    );

    // 3. removing it without approval is held; with its trailer it leaves the member list
    let id = "etcd/member/127.0.62.14/remove";
    repo.commit_inventory(&to_yaml(&inventory(3)), "etcd: drop the fourth");
    let run = apply(&nodes, &repo, ctl.path());
    assert!(
        action(&run, id).contains("awaiting-approval"),
        "{}",
        run.stdout
    );
    assert_eq!(members(three).len(), 4, "held: still a member");
    repo.commit(&format!("approve\n\nPgitops-Approve: {id}\n"));
    let run = apply(&nodes, &repo, ctl.path());
    ok(&run);
    eprintln!("remove:\n{}", run.stdout);
    assert!(action(&run, id).contains("applied"), "{}", run.stdout);
    assert_eq!(members(three), ["etcd-1", "etcd-2", "etcd-3"]);
    assert!(healthy(three));
    let gone = nodes.node(IPS[3]).dir.join("service/etcd");
    assert!(!gone.exists(), "its runit service is removed");
    let data = nodes.node(IPS[3]).dir.join("etcd/data");
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "etcd_rm_data: its data is gone"
    );

    // 4. the same commit again: nothing to do, nothing restarted
    let pids: Vec<u32> = three.iter().map(|ip| etcd_pid(&nodes, ip)).collect();
    let run = apply(&nodes, &repo, ctl.path());
    ok(&run);
    assert!(!run.stdout.contains("applied"), "{}", run.stdout);
    let again: Vec<u32> = three.iter().map(|ip| etcd_pid(&nodes, ip)).collect();
    assert_eq!(pids, again, "no etcd restarted");

    // 5. kill -9 one etcd: runit starts it again and the cluster is whole
    unsafe { libc::kill(pids[1] as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = Command::new("sv")
            .arg("status")
            .arg(nodes.node(IPS[1]).dir.join("service/etcd"))
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&text.stdout).to_string();
        let restarted = s.starts_with("run:") && !s.contains(&format!("(pid {})", pids[1]));
        if restarted && healthy(three) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "etcd on {} not restarted: {s}",
            IPS[1]
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // teardown: no runsvdir, runsv, svlogd or etcd of these nodes is left
    let left = nodes.stop_ha();
    assert!(left.is_empty(), "left behind: {left:?}");
    eprintln!("etcd test took {:?}", started.elapsed());
}
