//! HA-capable test nodes: an sshd in a private mount namespace (no PostgreSQL) where Pigsty's
//! etcd paths are the node's own (`etcd/conf` over `/etc/etcd`, `etcd/lib` over
//! `/var/lib/etcd`, `etcd/data` over `/data/etcd`), so are the paths of Patroni and PostgreSQL
//! (`pg/` over `/pg`, `patroni/` over `/etc/patroni`, `home/` over `/var/lib/pgsql`, the dbsu's
//! home; `run/` over `/var/run/postgresql` and `tmp/` over `/tmp`, the socket dirs Pigsty's
//! configuration names, which would collide between nodes on one port; `pgbouncer/` over
//! `/etc/pgbouncer`, `haproxy/etc` over `/etc/haproxy` and `haproxy/run` over `/run/haproxy`,
//! HAProxy's admin socket dir), and a private runit: the node's `service/`
//! over `/etc/service`, supervised by one `runsvdir` the harness starts in that namespace (the
//! node's "init"; its pid in `runsvdir.pid`). The system's `/etc/service` is never supervised:
//! runsvdir is given the node dir's path and starts only after every bind mount succeeded.
//! Owns: the layout, the namespace script, stopping a node's runit tree (services down, then
//! runsvdir's HUP, then SIGKILL for leftovers) and sweeping dead runs.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::{descendants, pid_in, poll, signal};

/// Run by `unshare -m` with the run dir (`$1`) and node dir (`$2`).
pub(super) const SSHD_NS: &str = r#"{ [ ! -e /root/.bashrc ] || mount --bind "$1/empty_bashrc" /root/.bashrc; } &&
    mount --bind "$2/etcd/conf" /etc/etcd && mount --bind "$2/etcd/lib" /var/lib/etcd &&
    mount --bind "$2/etcd/data" /data/etcd && mount --bind "$2/service" /etc/service &&
    mount --bind "$2/pg" /pg && mount --bind "$2/patroni" /etc/patroni &&
    mount --bind "$2/home" /var/lib/pgsql && mount --bind "$2/run" /var/run/postgresql &&
    mount --bind "$2/tmp" /tmp && mount --bind "$2/pgbouncer" /etc/pgbouncer &&
    mount --bind "$2/haproxy/etc" /etc/haproxy && mount --bind "$2/haproxy/run" /run/haproxy &&
    { setsid runsvdir -P "$2/service" 'log: ................................................' </dev/null >/dev/null 2>&1 &
      echo $! > "$2/runsvdir.pid"; } &&
    exec /usr/sbin/sshd -D -f "$2/sshd_config" -E "$2/sshd.log""#;

/// Mount points on the host (empty directories; the mounts stay in the nodes' namespaces).
pub(super) fn check_host() {
    let dirs = ["/etc/etcd", "/data/etcd", "/var/lib/etcd", "/etc/service"];
    let pg = [
        "/pg",
        "/etc/patroni",
        "/var/lib/pgsql",
        "/var/run/postgresql",
        "/etc/pgbouncer",
        "/etc/haproxy",
        "/run/haproxy",
    ];
    for dir in dirs.into_iter().chain(pg) {
        fs::create_dir_all(dir).unwrap();
    }
    assert!(
        !super::scratch().starts_with("/tmp"),
        "HA nodes mount their own /tmp: their dirs must live elsewhere (/dev/shm)"
    );
    for bin in [
        "/usr/bin/patroni",
        "/usr/bin/curl",
        "/usr/bin/etcd",
        "/usr/bin/etcdctl",
        "/usr/bin/runsvdir",
        "/usr/bin/sv",
        "/usr/sbin/pgbouncer",
        "/usr/sbin/haproxy",
    ] {
        assert!(
            Path::new(bin).exists(),
            "{bin} missing: run scripts/setup.sh (etcd-server etcd-client runit patroni pgbouncer haproxy)"
        );
    }
}

pub(super) fn layout(dir: &Path) {
    for d in ["etcd/conf", "etcd/lib", "etcd/data", "service"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    for d in ["pg", "home"] {
        super::mkdir_pg(&dir.join(d), 0o750);
    }
    fs::create_dir(dir.join("patroni")).unwrap();
    super::mkdir_pg(&dir.join("pgbouncer"), 0o750);
    fs::create_dir_all(dir.join("haproxy/etc")).unwrap();
    fs::create_dir_all(dir.join("haproxy/run")).unwrap();
    fs::create_dir(dir.join("tmp")).unwrap();
    super::chmod(&dir.join("tmp"), 0o1777);
}

/// The node's postmaster (Patroni double-forks it: it is not in the runit tree).
pub fn postmaster(dir: &Path) -> Option<i32> {
    super::postmaster(&dir.join("pg/data"))
}

/// The node's runsvdir, if it still runs (checked: its command line names the node's dir).
pub(super) fn runsvdir(dir: &Path) -> Option<i32> {
    let pid = pid_in(&dir.join("runsvdir.pid"))?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let svc = dir.join("service");
    String::from_utf8_lossy(&cmdline)
        .contains(svc.to_str().unwrap())
        .then_some(pid)
}

/// Stops the node's Patroni (it stops its PostgreSQL) while etcd still runs: a Patroni whose
/// DCS is gone retries for `retry_timeout` before it lets go.
pub(super) fn stop_patroni(dir: &Path) {
    let svc = dir.join("service/patroni");
    if runsvdir(dir).is_some() && svc.exists() {
        let _ = Command::new("sv")
            .args(["-w", "20", "down"])
            .arg(&svc)
            .output();
    }
}

/// Stops the node's runit tree: `sv -w 10 down` every service (etcd gets its TERM), HUP to
/// runsvdir (it TERMs its runsv's and exits), then SIGKILL whatever of the tree is left after
/// 10 s. Returns the pids that were still alive at the end (none, normally).
pub(super) fn stop(dir: &Path) -> Vec<i32> {
    let Some(pid) = runsvdir(dir) else {
        return vec![];
    };
    let svc = dir.join("service");
    let services: Vec<_> = fs::read_dir(&svc)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    if !services.is_empty() {
        let _ = Command::new("sv")
            .args(["-w", "10", "down"])
            .args(&services)
            .output();
    }
    // Patroni stopped its PostgreSQL on `down`; one left over (a Patroni killed) is stopped here.
    if let Some(pm) = postmaster(dir) {
        signal(Some(pm), libc::SIGQUIT);
        if !poll(10, || postmaster(dir).is_none()) {
            signal(Some(pm), libc::SIGKILL);
        }
    }
    let mut tree = descendants(pid);
    tree.push(pid);
    signal(Some(pid), libc::SIGHUP);
    let alive = |p: &i32| Path::new(&format!("/proc/{p}/cwd")).exists();
    if !poll(10, || !tree.iter().any(alive)) {
        for p in tree.iter().filter(|p| alive(p)) {
            signal(Some(*p), libc::SIGKILL);
        }
        poll(5, || !tree.iter().any(alive));
    }
    tree.into_iter().filter(|p| alive(p)).collect()
}

/// Processes named `name` (pgrep -x) whose working directory is inside `dir` (etcd runs in its
/// data dir, runsv in its service dir): what a node left behind.
pub fn left_behind(dir: &Path, names: &[&str]) -> Vec<String> {
    let mut inodes = vec![];
    let dirs = ["etcd/data", "service", "service/etcd", "service/etcd/log"];
    let pg = ["pg/data", "home", "service/patroni", "service/patroni/log"];
    for d in dirs.into_iter().chain(pg) {
        if let Ok(m) = fs::metadata(dir.join(d)) {
            inodes.push((m.dev(), m.ino()));
        }
    }
    let mut found = vec![];
    for name in names {
        let out = Command::new("pgrep").args(["-x", name]).output().unwrap();
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let Ok(m) = fs::metadata(format!("/proc/{pid}/cwd")) else {
                continue;
            };
            if inodes.contains(&(m.dev(), m.ino())) {
                found.push(format!("{name} {pid}"));
            }
        }
    }
    found
}
