//! Test nodes on loopback addresses: per node one sshd on `IP:22`, one PostgreSQL 15 on
//! `IP:5432` and one pgbouncer on `IP:6432`. Each sshd runs in a private mount namespace where
//! the node's `pg/` is bind-mounted over `/pg` (Pigsty's layout, see `pgbouncer`), its data dir
//! over `/pg/data`, its socket dir over `/var/run/postgresql`, its `pgbouncer/` over
//! `/etc/pgbouncer` and an empty file over `/root/.bashrc`, so commands over ssh see a standard
//! Pigsty host. The PostgreSQL servers are direct children (user `postgres`) with real paths;
//! pgbouncer runs as postgres inside the namespace. Owns: the initdb template, run dirs, sweeping
//! dead runs, teardown.
#![allow(dead_code)] // not every test uses every helper

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const PGBIN: &str = "/usr/lib/postgresql/15/bin";
/// Marks a run dir as ours, holding the pid of the owning test process (see `sweep`).
const OWNER: &str = "pgitops-harness.pid";
const HBA: &str = "local all postgres ident\nlocal all all scram-sha-256\n\
    host replication all 127.0.0.0/8 trust\nhost all postgres 127.0.0.0/8 trust\n\
    host all all 127.0.0.0/8 scram-sha-256\n";
/// Node-independent settings; node identity (address, port, socket dir) is on the command line.
/// full_page_writes stays on and wal_log_hints is on: `demote` may need pg_rewind.
const CONF: &str = "\npassword_encryption = scram-sha-256\nfsync = off\n\
    synchronous_commit = off\nwal_keep_size = 64MB\nwal_log_hints = on\nshared_buffers = 16MB\n";
/// Client config (`$S`: the ssh dir), testbed §2.
const SSH_CONFIG: &str =
    "Host *\n  User root\n  IdentityFile $S/id_ed25519\n  IdentitiesOnly yes\n  \
    UserKnownHostsFile $S/known_hosts\n  GlobalKnownHostsFile /dev/null\n  \
    StrictHostKeyChecking yes\n  CheckHostIP no\n  BatchMode yes\n  ConnectTimeout 5\n  \
    LogLevel ERROR\n";
/// sshd config (`$IP`, `$N`: node dir, `$S`: ssh dir), testbed §2. `LogLevel INFO` (sshd's
/// default, spelled out) logs one `Accepted publickey` line per connection: `Node::ssh_logins`
/// counts them.
const SSHD_CONFIG: &str = "ListenAddress $IP:22\nHostKey $N/ssh_host_ed25519_key\n\
    PidFile $N/sshd.pid\nAuthorizedKeysFile $S/authorized_keys\n\
    PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
    KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nUseDNS no\nPrintMotd no\n\
    MaxSessions 64\nMaxStartups 100:30:200\nSubsystem sftp /usr/lib/openssh/sftp-server\n\
    LogLevel INFO\n";
/// Run by `unshare -m` with the run dir (`$1`) and node dir (`$2`).
const SSHD_NS: &str = r#"{ [ ! -e /root/.bashrc ] || mount --bind "$1/empty_bashrc" /root/.bashrc; } &&
    mount --bind "$2/pg" /pg && mount --bind "$2/pgdata" /pg/data &&
    mount --bind "$2/run" /var/run/postgresql && mount --bind "$2/pgbouncer" /etc/pgbouncer &&
    exec /usr/sbin/sshd -D -f "$2/sshd_config" -E "$2/sshd.log""#;
static TEMPLATE: OnceLock<String> = OnceLock::new();

pub mod ha;
mod pgbouncer;

/// Where run dirs go: tmpfs if there is one (ext4 here spends 0.1–0.7 s creating the ~900 files
/// of one data dir; tmpfs 0.05 s), else /tmp. Short either way (socket paths < 108 bytes).
fn scratch() -> &'static str {
    ["/dev/shm", "/tmp"]
        .into_iter()
        .find(|d| Path::new(d).is_dir())
        .unwrap()
}

/// The nodes of one test; Drop stops every server and sshd and removes the run dir.
pub struct Cluster {
    nodes: Vec<Node>,
    ssh: PathBuf,
    base: tempfile::TempDir,
}

pub struct Node {
    pub ip: String,
    pub dir: PathBuf,
    /// An HA node (see `ha`): no PostgreSQL, Pigsty's etcd paths and a private runsvdir.
    pub ha: bool,
    pg: Mutex<Option<Child>>,
    sshd: Mutex<Option<Child>>,
}

impl Cluster {
    /// Starts one node per address (distinct per test: tests run in parallel). With `replicas`
    /// the first is the primary and the others stream from it; otherwise all are primaries.
    pub fn start(ips: &[&str], replicas: bool) -> Cluster {
        let tpl = template();
        let mut c = Cluster::empty();
        let b = c.base.path().to_str().unwrap().to_string();
        for ip in ips {
            let node = Node::create(&b, ip, false);
            c.nodes.push(node);
        }
        let first = c.nodes.first().expect("no nodes");
        let all: Vec<&Node> = c.nodes.iter().collect();
        let (primaries, standbys) = all.split_at(if replicas { 1 } else { all.len() });
        each(primaries, |n| {
            ok(&mut cmd(&format!("cp -a {tpl}/. {}", n.path("pgdata"))));
            n.start_pg();
        });
        each(standbys, |n| {
            let dir = n.path("pgdata");
            let backup = format!("pg_basebackup -R -X stream -c fast --no-sync -D {dir}");
            ok(pg(&backup).args(["-d", &n.conninfo(first)]));
            n.start_pg();
        });
        for n in standbys {
            first.wait_streaming(&n.ip);
        }
        for n in &c.nodes {
            n.wait_sshd();
        }
        let all: Vec<&Node> = c.nodes.iter().collect();
        each(&all, |n| {
            let sshd = lock(&n.sshd).as_ref().map(Child::id);
            n.start_pgbouncer(sshd.expect("sshd running"));
        });
        c
    }

    /// HA nodes (see `ha`): sshd with Pigsty's etcd paths and a private runsvdir each, no
    /// PostgreSQL.
    pub fn start_ha(ips: &[&str]) -> Cluster {
        template();
        ha::check_host();
        let mut c = Cluster::empty();
        let b = c.base.path().to_str().unwrap().to_string();
        for ip in ips {
            c.nodes.push(Node::create(&b, ip, true));
        }
        for n in &c.nodes {
            n.wait_sshd();
        }
        c
    }

    /// Stops every HA node's runit tree now (Drop does it too) and returns what is left of it:
    /// runsvdir/runsv/svlogd/etcd/patroni/postgres processes of the test's nodes still alive.
    /// Every node's Patroni first, then the rest of each node's tree; nodes side by side.
    pub fn stop_ha(&self) -> Vec<String> {
        let ha: Vec<&Node> = self.nodes.iter().filter(|n| n.ha).collect();
        std::thread::scope(|s| {
            let stops: Vec<_> = ha
                .iter()
                .map(|n| s.spawn(|| ha::stop_patroni(&n.dir)))
                .collect();
            stops.into_iter().for_each(|h| h.join().unwrap());
            let stops: Vec<_> = ha
                .iter()
                .map(|n| {
                    s.spawn(|| {
                        let mut left: Vec<String> = ha::stop(&n.dir)
                            .into_iter()
                            .map(|p| format!("{}: pid {p}", n.ip))
                            .collect();
                        let names = ["etcd", "runsv", "runsvdir", "svlogd", "patroni", "postgres"];
                        left.extend(
                            ha::left_behind(&n.dir, &names)
                                .into_iter()
                                .map(|p| format!("{}: {p}", n.ip)),
                        );
                        left
                    })
                })
                .collect();
            stops.into_iter().flat_map(|h| h.join().unwrap()).collect()
        })
    }

    pub fn node(&self, ip: &str) -> &Node {
        let found = self.nodes.iter().find(|n| n.ip == ip);
        found.unwrap_or_else(|| panic!("no node {ip}"))
    }
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    /// The short per-test dir (socket paths!), e.g. for an openssh `control_directory`.
    pub fn run_dir(&self) -> &Path {
        self.base.path()
    }
    /// Holds `id_ed25519`, `known_hosts` (one `IP keytype key` line per node) and `config`.
    pub fn ssh_dir(&self) -> &Path {
        &self.ssh
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.ssh.join("known_hosts")
    }
    pub fn identity(&self) -> PathBuf {
        self.ssh.join("id_ed25519")
    }
    /// `apply` with the arguments that reach these nodes over SSH (root, the cluster's key,
    /// client config and known_hosts), control sockets in `ctl`.
    pub fn apply_args(&self, ctl: &Path) -> Vec<String> {
        let s = |p: PathBuf| p.to_string_lossy().to_string();
        vec![
            "apply".into(),
            "--ssh-user".into(),
            "root".into(),
            "--control-dir".into(),
            s(ctl.to_path_buf()),
            "--ssh-config".into(),
            s(self.ssh_config()),
            "--identity".into(),
            s(self.identity()),
            "--known-hosts".into(),
            s(self.known_hosts()),
        ]
    }

    pub fn ssh_config(&self) -> PathBuf {
        self.ssh.join("config")
    }
    /// `ssh -F <config>`; callers add options, then the address and the remote command.
    pub fn ssh_cmd(&self) -> Command {
        let mut ssh = cmd("ssh -F");
        ssh.arg(self.ssh_config()).stdin(Stdio::null());
        ssh
    }

    /// Promotes a standby, waits until it is out of recovery, then checkpoints (so that a later
    /// pg_rewind against it sees its new timeline).
    pub fn promote(&self, ip: &str) {
        let n = self.node(ip);
        let promoted = n.sql("postgres", "select pg_promote(false)");
        assert_eq!(promoted, "t", "promote {ip}");
        let q = "select pg_is_in_recovery()";
        wait_for(&format!("{ip} promoted"), || n.sql("postgres", q) == "f");
        n.sql("postgres", "checkpoint");
    }

    /// Makes `ip` a streaming standby of `new_primary`: stops it (fast), pg_rewinds it against
    /// `new_primary` (no-op unless the timelines diverged), writes standby.signal and
    /// primary_conninfo (postgresql.auto.conf), starts it and waits until it streams.
    /// Both orders work: `stop(old); promote(new); demote(old, new)` needs no rewind;
    /// `promote(new); demote(old, new)` rewinds (the old primary's shutdown checkpoint diverges).
    /// A rewind copies `new_primary`'s config files (pg_hba.conf, postgresql*.conf) over `ip`'s.
    pub fn demote(&self, ip: &str, new_primary: &str) {
        let (n, p) = (self.node(ip), self.node(new_primary));
        n.stop_pg();
        let rewind = format!("pg_rewind --no-sync -D {}", n.path("pgdata"));
        let source = format!("host={} user=postgres dbname=postgres", p.ip);
        ok(pg(&rewind).args(["--source-server", &source]));
        let auto = n.data_dir().join("postgresql.auto.conf");
        let old = fs::read_to_string(&auto).unwrap();
        let keep = old.lines().filter(|l| !l.starts_with("primary_conninfo"));
        let mut text: String = keep.map(|l| format!("{l}\n")).collect();
        text += &format!("primary_conninfo = '{}'\n", n.conninfo(p));
        fs::write(&auto, text).unwrap();
        let signal = n.data_dir().join("standby.signal");
        fs::write(&signal, "").unwrap();
        own(&signal, 0o600);
        n.start_pg();
        p.wait_streaming(&n.ip);
    }

    /// Fast shutdown of the node's server (whoever started it); no-op if it is not running.
    pub fn stop(&self, ip: &str) {
        self.node(ip).stop_pg();
    }
    /// Stops the server if it runs, starts it as a child of the test, waits until it accepts
    /// connections (a standby: read-only ones; streaming is not awaited).
    pub fn restart(&self, ip: &str) {
        let n = self.node(ip);
        n.stop_pg();
        n.start_pg();
    }
}

impl Cluster {
    /// A run dir with the client's ssh key and config, and no nodes yet; from here on, Drop
    /// cleans up whatever a failing step leaves.
    fn empty() -> Cluster {
        let base = tempfile::Builder::new().prefix("pgt").tempdir_in(scratch());
        let base = base.expect("run dir");
        let b = base.path().to_str().unwrap().to_string();
        mark(base.path());
        let ssh = base.path().join("ssh");
        fs::create_dir(&ssh).unwrap();
        keygen(&ssh.join("id_ed25519"), "pgitops-test");
        fs::copy(ssh.join("id_ed25519.pub"), ssh.join("authorized_keys")).unwrap();
        fs::write(base.path().join("empty_bashrc"), "").unwrap();
        fs::write(ssh.join("known_hosts"), "").unwrap();
        let config = SSH_CONFIG.replace("$S", &format!("{b}/ssh"));
        fs::write(ssh.join("config"), config).unwrap();
        Cluster {
            nodes: vec![],
            ssh,
            base,
        }
    }

    /// Restarts the node's sshd as a node reboot would: the listener *and* every connection it
    /// serves (its descendants) get SIGTERM (SIGKILL after 5 s), so established SSH masters
    /// break; then the same config and host key are started again (the log is appended to) and
    /// the port awaited.
    pub fn restart_sshd(&self, ip: &str) {
        let n = self.node(ip);
        let mut guard = lock(&n.sshd);
        let mut old = guard.take().expect("sshd running");
        let listener = old.id() as i32;
        let mut pids = descendants(listener);
        pids.push(listener);
        for &p in &pids {
            signal(Some(p), libc::SIGTERM);
        }
        let alive = |p: &i32| Path::new(&format!("/proc/{p}/cwd")).exists();
        if !poll(5, || !pids.iter().any(alive)) {
            for p in pids.iter().filter(|p| alive(p)) {
                signal(Some(*p), libc::SIGKILL);
            }
        }
        let _ = old.wait();
        wait_for(&format!("old sshd on {ip} gone"), || {
            !pids.iter().any(alive)
        });
        let b = self.base.path().to_str().unwrap();
        let log = append(&n.dir.join("sshd.log"), "");
        *guard = Some(spawn_sshd(b, &n.dir, log, n.ha));
        drop(guard);
        n.wait_sshd();
    }
}

/// Starts the sshd of node dir `dir` (run dir `b`) in its private mount namespace (`SSHD_NS`),
/// stderr to `log`; the child's pid is sshd's.
fn spawn_sshd(b: &str, dir: &Path, log: fs::File, ha: bool) -> Child {
    let mut unshare = cmd("unshare -m --propagation private sh -c");
    let d = dir.to_str().unwrap();
    let script = if ha { ha::SSHD_NS } else { SSHD_NS };
    unshare.args([script, "sh", b, d]).stdin(Stdio::null());
    let sshd = unshare.stdout(Stdio::null()).stderr(log).spawn();
    sshd.expect("spawn unshare/sshd")
}

/// Every live descendant of `pid` (children, their children, ...), from /proc.
pub(super) fn descendants(pid: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = vec![];
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
        if let Some(pp) = after.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            parents.push((p, pp));
        }
    }
    let mut found = vec![];
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(c, _) in parents.iter().filter(|(_, pp)| *pp == p) {
            found.push(c);
            frontier.push(c);
        }
    }
    found
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.nodes.iter().any(|n| n.ha) {
            self.stop_ha();
        }
        for n in &self.nodes {
            n.stop_pgbouncer();
            signal(postmaster(&n.data_dir()), libc::SIGINT);
            let listener = lock(&n.sshd).as_ref().map(|c| c.id() as i32);
            // Its connections too: SSH masters a killed service left behind (ControlPersist)
            // then see the connection close and exit instead of outliving the test.
            for p in listener.map(descendants).unwrap_or_default() {
                signal(Some(p), libc::SIGTERM);
            }
            signal(listener, libc::SIGTERM);
        }
        for n in &self.nodes {
            if !n.pg_gone(10) {
                signal(postmaster(&n.data_dir()), libc::SIGQUIT);
                n.pg_gone(5);
            }
            if let Some(mut c) = lock(&n.sshd).take() {
                let _ = c.wait();
            }
            poll(5, || pgbouncer::running(&n.dir).is_none());
        }
    } // then `base` (the TempDir) removes the run dir
}

impl Node {
    fn create(b: &str, ip: &str, ha: bool) -> Node {
        let loopback = ip.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback());
        assert!(loopback, "{ip}: not in 127.0.0.0/8");
        let dir = Path::new(b).join(ip);
        let made = fs::create_dir(&dir);
        made.unwrap_or_else(|e| panic!("{ip}: {e} (same address twice?)"));
        mkdir_pg(&dir.join("run"), 0o2775);
        mkdir_pg(&dir.join("pgdata"), 0o700);
        match ha {
            true => ha::layout(&dir),
            false => pgbouncer::layout(&dir, ip),
        }
        keygen(&dir.join("ssh_host_ed25519_key"), ip);
        let public = fs::read_to_string(dir.join("ssh_host_ed25519_key.pub")).unwrap();
        let public: Vec<&str> = public.split_whitespace().take(2).collect();
        let known = format!("{ip} {}\n", public.join(" "));
        append(&Path::new(b).join("ssh/known_hosts"), &known);
        let d = dir.to_str().unwrap();
        let config = SSHD_CONFIG.replace("$IP", ip).replace("$N", d);
        let config = config.replace("$S", &format!("{b}/ssh"));
        fs::write(dir.join("sshd_config"), config).unwrap();
        let log = fs::File::create(dir.join("sshd.log")).unwrap();
        let sshd = Mutex::new(Some(spawn_sshd(b, &dir, log, ha)));
        let (ip, pg) = (ip.to_string(), Mutex::new(None));
        Node {
            ip,
            dir,
            ha,
            pg,
            sshd,
        }
    }

    /// How many SSH connections this node's sshd accepted (its `Accepted publickey` log lines;
    /// the log survives `Cluster::restart_sshd`).
    pub fn ssh_logins(&self) -> usize {
        let log = fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("Accepted publickey"))
            .count()
    }

    /// Real path of the data dir (`/pg/data` over ssh).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("pgdata")
    }
    /// Real path of the socket dir (`/var/run/postgresql` over ssh).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("run")
    }
    pub fn hba_file(&self) -> PathBuf {
        self.data_dir().join("pg_hba.conf")
    }
    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir.display())
    }
    /// How a standby of `primary` connects (application_name: the standby's address).
    fn conninfo(&self, primary: &Node) -> String {
        let app = format!("application_name={}", self.ip);
        format!("host={} port=5432 user=postgres {app}", primary.ip)
    }

    /// Runs SQL (read from stdin: statements run one by one) as the superuser over the socket;
    /// returns trimmed stdout (`-At`, command tags suppressed); panics with stderr on failure.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let mut psql = pg("psql -X -At -q -v ON_ERROR_STOP=1 -p 5432 -U postgres -f - -h");
        psql.arg(self.socket_dir()).env("PGDATABASE", db);
        psql.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = psql.stdin(Stdio::piped()).spawn().expect("psql");
        let input = child.stdin.take().unwrap().write_all(sql.as_bytes());
        let out = child.wait_with_output().unwrap();
        let (ip, err) = (&self.ip, String::from_utf8_lossy(&out.stderr));
        let done = input.is_ok() && out.status.success();
        assert!(done, "sql on {ip}/{db}: {sql}\n{err}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Logs in over TCP (`IP:5432`) as `user` with `password`; Err(stderr) if refused.
    /// Note: `host all postgres 127.0.0.0/8 trust` lets `postgres` in with any password.
    pub fn login(&self, user: &str, password: &str, db: &str) -> Result<(), String> {
        let mut psql = cmd(&format!("{PGBIN}/psql -X -At -w -c"));
        psql.arg("select 1").env_clear().stdin(Stdio::null());
        psql.envs([("PGHOST", &*self.ip), ("PGPORT", "5432"), ("PGUSER", user)]);
        psql.envs([("PGDATABASE", db), ("PGPASSWORD", password)]);
        psql.envs([("PGPASSFILE", "/dev/null"), ("PGCONNECT_TIMEOUT", "5")]);
        let out = psql.output().expect("psql");
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1" {
            return Ok(());
        }
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Runs `remote_cmd` on the node with the ssh CLI and the cluster's client config.
    pub fn ssh(&self, cluster: &Cluster, remote_cmd: &str) -> Output {
        let mut ssh = cluster.ssh_cmd();
        ssh.arg(&self.ip).arg(remote_cmd).output().expect("ssh")
    }

    fn start_pg(&self) {
        self.start_pg_in(&self.data_dir());
    }

    /// A PostgreSQL outside Patroni in an HA node's `pg/data` (a copy of the template, started
    /// as a plain node's is; `stop_ha` stops it).
    pub fn start_plain_pg(&self) {
        let data = self.dir.join("pg/data");
        ok(&mut cmd(&format!(
            "cp -a {}/. {}",
            template(),
            data.display()
        )));
        self.start_pg_in(&data);
    }

    fn start_pg_in(&self, data: &Path) {
        let log = append(&self.dir.join("pg.log"), "");
        let (d, ip, s) = (data.display(), &self.ip, self.path("run"));
        let opts = format!("-c listen_addresses={ip} -c unix_socket_directories={s}");
        let mut postgres = pg(&format!("postgres -D {d} -c port=5432 {opts}"));
        postgres.stdout(log.try_clone().unwrap()).stderr(log);
        let child = postgres.spawn().expect("spawn postgres");
        let pid = child.id().to_string();
        *lock(&self.pg) = Some(child);
        let pidfile = data.join("postmaster.pid");
        wait_for(&format!("postgres on {ip}"), || {
            if let Some(Ok(Some(st))) = lock(&self.pg).as_mut().map(Child::try_wait) {
                let log = fs::read_to_string(self.dir.join("pg.log")).unwrap_or_default();
                panic!("postgres on {ip} exited ({st}):\n{log}");
            }
            let text = fs::read_to_string(&pidfile).unwrap_or_default();
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            lines.len() >= 8 && lines[0] == pid && matches!(lines[7], "ready" | "standby")
        });
    }

    fn stop_pg(&self) {
        signal(postmaster(&self.data_dir()), libc::SIGINT);
        let stopped = self.pg_gone(30);
        assert!(stopped, "postgres on {} does not stop", self.ip);
    }

    /// Waits until no postmaster runs in the data dir, then reaps the child; false on timeout.
    fn pg_gone(&self, secs: u64) -> bool {
        let gone = poll(secs, || postmaster(&self.data_dir()).is_none());
        if let Some(mut c) = lock(&self.pg).take().filter(|_| gone) {
            let _ = c.wait();
        }
        gone
    }

    fn wait_streaming(&self, standby: &str) {
        let q = format!(
            "select count(*) from pg_stat_replication \
             where application_name = '{standby}' and state = 'streaming'"
        );
        let what = format!("{standby} streaming from {}", self.ip);
        wait_for(&what, || self.sql("postgres", &q) == "1");
    }

    fn wait_sshd(&self) {
        let addr = (self.ip.parse::<Ipv4Addr>().unwrap(), 22).into();
        wait_for(&format!("sshd on {}", self.ip), || {
            if let Some(Ok(Some(st))) = lock(&self.sshd).as_mut().map(Child::try_wait) {
                let log = fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default();
                panic!("sshd on {} exited ({st}):\n{log}", self.ip);
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
    }
}

/// The data dir of this test process's initdb template (made once, removed at exit). First
/// checks the host and sweeps what killed test runs left behind.
fn template() -> &'static str {
    TEMPLATE.get_or_init(|| {
        assert_eq!(unsafe { libc::geteuid() }, 0, "the node harness needs root");
        let postgres = Path::new(PGBIN).join("postgres");
        assert!(postgres.exists(), "no PostgreSQL 15: run scripts/setup.sh");
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "no sshd: run scripts/setup.sh"
        );
        // sshd's privsep dir; mount points for the nodes' private bind mounts.
        for dir in ["/run/sshd", "/pg/data", "/var/run/postgresql"] {
            fs::create_dir_all(dir).unwrap();
        }
        pgbouncer::check_host();
        sweep();
        let dir = PathBuf::from(format!("{}/pgtpl-{}", scratch(), std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        mark(&dir);
        extern "C" fn remove_template() {
            if let Some(t) = TEMPLATE.get() {
                let _ = fs::remove_dir_all(Path::new(t).parent().unwrap());
            }
        }
        unsafe { libc::atexit(remove_template) };
        let data = dir.join("pgdata");
        mkdir_pg(&data, 0o700);
        let (opts, d) = ("--auth=trust --no-sync --no-instructions", data.display());
        let initdb = format!("initdb -U postgres -E UTF8 --locale=C.UTF-8 {opts} -D {d}");
        ok(&mut pg(&initdb));
        fs::write(data.join("pg_hba.conf"), HBA).unwrap();
        append(&data.join("postgresql.conf"), CONF);
        d.to_string()
    })
}

/// Makes a fresh run dir traversable for postgres and marks it with our pid.
fn mark(dir: &Path) {
    chmod(dir, 0o755);
    fs::write(dir.join(OWNER), std::process::id().to_string()).unwrap();
}

/// Removes marked run dirs whose test process is gone (SIGKILLed), after killing their servers
/// and sshds and waiting (up to 5 s) until those are gone and their addresses free.
fn sweep() {
    for e in fs::read_dir(scratch()).into_iter().flatten().flatten() {
        let owner = pid_in(&e.path().join(OWNER));
        if owner.is_none_or(|pid| unsafe { libc::kill(pid, 0) } == 0) {
            continue;
        }
        let mut pids = vec![];
        for node in fs::read_dir(e.path()).into_iter().flatten().flatten() {
            let node = node.path();
            ha::stop(&node);
            let pm = postmaster(&node.join("pgdata"));
            signal(pm, libc::SIGQUIT);
            let sshd = pid_in(&node.join("sshd.pid")).filter(|pid| {
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let config = node.join("sshd_config");
                String::from_utf8_lossy(&cmdline).contains(config.to_str().unwrap())
            });
            signal(sshd, libc::SIGTERM);
            let pgb = pgbouncer::running(&node);
            signal(pgb, libc::SIGTERM);
            pids.extend(pm.into_iter().chain(sshd).chain(pgb));
        }
        // A zombie has no cwd: it counts as gone.
        poll(5, || {
            pids.iter()
                .all(|p| !Path::new(&format!("/proc/{p}/cwd")).exists())
        });
        let _ = fs::remove_dir_all(e.path());
    }
}

/// The pid of the postmaster running in `data` (checked: its cwd is `data`), if any.
fn postmaster(data: &Path) -> Option<i32> {
    let pid = pid_in(&data.join("postmaster.pid"))?;
    let cwd = fs::metadata(format!("/proc/{pid}/cwd")).ok()?;
    let dir = fs::metadata(data).ok()?;
    (cwd.dev() == dir.dev() && cwd.ino() == dir.ino()).then_some(pid)
}

/// The number on the first line of a pid file.
fn pid_in(file: &Path) -> Option<i32> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().next()?.trim().parse().ok()
}

fn signal(pid: Option<i32>, sig: i32) {
    if let Some(pid) = pid {
        unsafe { libc::kill(pid, sig) };
    }
}

fn postgres_ids() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
        assert!(!pw.is_null(), "no user postgres: run scripts/setup.sh");
        unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
    })
}

/// A command from a line of space-separated words (program first; our paths have no spaces).
fn cmd(line: &str) -> Command {
    let mut words = line.split_whitespace();
    let mut c = Command::new(words.next().unwrap());
    c.args(words);
    c
}

/// `cmd` for a program in PGBIN, run as postgres with a minimal environment.
fn pg(line: &str) -> Command {
    let (uid, gid) = postgres_ids();
    let mut c = cmd(&format!("{PGBIN}/{line}"));
    c.uid(uid).gid(gid).current_dir("/").env_clear();
    c.env("HOME", "/var/lib/postgresql")
        .env("PATH", "/usr/bin:/bin");
    c
}

/// Runs a command to completion; panics with its output unless it succeeds.
fn ok(c: &mut Command) -> Output {
    let out = c.stdin(Stdio::null()).output();
    let out = out.unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let (o, e) = (&out.stdout, &out.stderr);
    let text = String::from_utf8_lossy(o) + String::from_utf8_lossy(e);
    assert!(out.status.success(), "{c:?}: {}\n{text}", out.status);
    out
}

fn keygen(path: &Path, comment: &str) {
    let mut keygen = cmd("ssh-keygen -q -t ed25519 -N");
    ok(keygen.args(["", "-C", comment, "-f"]).arg(path));
}

fn mkdir_pg(dir: &Path, mode: u32) {
    fs::create_dir(dir).unwrap();
    own(dir, mode);
}

/// Gives `path` to postgres, with `mode`.
fn own(path: &Path, mode: u32) {
    let (uid, gid) = postgres_ids();
    chown(path, Some(uid), Some(gid)).unwrap();
    chmod(path, mode);
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Appends `text` to a file (created if missing; ownership kept); returns the file.
fn append(path: &Path, text: &str) -> fs::File {
    let mut f = fs::OpenOptions::new().create(true).append(true).open(path);
    let f = f.as_mut().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.try_clone().unwrap()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls `done` every 5 ms until it holds (true) or `secs` have passed (false).
fn poll(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(5));
    }
    true
}

/// `poll` for up to 30 s; panics naming `what` on timeout.
fn wait_for(what: &str, done: impl FnMut() -> bool) {
    assert!(poll(30, done), "timed out waiting for {what}");
}

/// Runs `f` for every node in parallel.
fn each(nodes: &[&Node], f: impl Fn(&Node) + Sync) {
    std::thread::scope(|s| {
        for n in nodes {
            s.spawn(|| f(n));
        }
    });
}
