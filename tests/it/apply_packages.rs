//! A missing binary stops a native cluster creation before anything of it is written: on an HA
//! node where `/usr/bin/patroni` is hidden (a bind mount of /dev/null inside the node's own
//! mount namespace; the machine is untouched), creating `pg-test` fails naming the binary and
//! Debian's `patroni` package and how to let pgitops install it, while the etcd beside it is
//! created. Once the binary is back, the same commit creates the cluster.

use crate::support::fleet::Fleet;
use crate::support::patroni;

const IP: &str = "127.0.70.21";

fn ssh(f: &Fleet, script: &str) {
    let out = f.nodes.ssh_cmd().arg(IP).arg(script).output().unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
}

#[test]
fn a_missing_patroni_refuses_the_cluster_naming_the_package_and_writes_nothing() {
    let f = Fleet::ha(&[IP]);
    let inventory = patroni::inventory(&[IP], &[IP]);
    f.repo.commit_inventory(&inventory, "etcd and pg-test");
    ssh(&f, "mount --bind /dev/null /usr/bin/patroni");
    let run = f.apply(&["--no-ssh-reuse"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("cluster/pg-test/create"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.contains("failed"), "{line}");
    eprintln!("{line}");
    for want in [
        "missing: /usr/bin/patroni",
        "package(s) providing them: patroni",
        "pgitops_install_packages: true",
    ] {
        assert!(run.stdout.contains(want), "{want}: {}", run.stdout);
    }
    let etcd = run
        .stdout
        .lines()
        .find(|l| l.contains("etcd/cluster/etcd/create"))
        .unwrap();
    assert!(etcd.contains("applied"), "{etcd}");
    let node = f.nodes.node(IP);
    assert!(!node.dir.join("pg/conf/pg-test-1.yml").exists());
    assert!(!node.dir.join("service/patroni").exists());
    assert_eq!(std::fs::read_dir(node.dir.join("pg")).unwrap().count(), 0);

    ssh(&f, "umount /usr/bin/patroni");
    let run = f.apply(&["--no-ssh-reuse"]);
    patroni::ok(&f.nodes, &run);
    assert!(run.stdout.contains("binaries present"), "{}", run.stdout);
    assert_eq!(patroni::view(IP).len(), 1);
    let left = f.nodes.stop_ha();
    assert!(left.is_empty(), "left behind: {left:?}");
}
