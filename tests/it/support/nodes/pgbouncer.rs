//! Pigsty's per-node layout and a real pgbouncer per test node (real-pigsty.md §5). In the node
//! dir: `pg/` (bound at `/pg` in the sshd's namespace: `bin/` = copies of Pigsty's
//! `files/postgres/*`, `tmp/`, `log/pgbouncer/`, `data/` = mount point for the data dir) and
//! `pgbouncer/` (bound at `/etc/pgbouncer`: Pigsty's `pgbouncer.ini` minus what Debian's 1.18
//! refuses, and starter `database.txt`, `useropts.txt`, `userlist.txt`, `pgb_hba.conf`). Debian's
//! `/usr/sbin/pgbouncer -d` runs as postgres inside the node's namespace; its pid file is
//! `/run/postgresql/pgbouncer.pid` = `<node>/run/pgbouncer.pid`. Owns: laying out those dirs,
//! start/HUP/stop, `psql` through port 6432.

use std::fs;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use super::{cmd, mkdir_pg, ok, own, pg, pid_in, signal, wait_for, Cluster, Node, PGBIN};

pub const PGB_PORT: u16 = 6432;

/// Pigsty's `pgbouncer.ini` for a node (`$IP`: its address), shared with `scripts/sandbox.sh`;
/// what it keeps and leaves out is said in the file.
const INI: &str = include_str!("../../../../scripts/node/pgbouncer.ini");
/// Starters until pgitops (or Pigsty) writes the real ones: the `postgres` database, no user
/// options, the dbsu with an empty password, the dbsu by peer only.
const STARTERS: &[(&str, &str)] = &[
    (
        "database.txt",
        "# pgbouncer database list\npostgres                    = host=/var/run/postgresql\n",
    ),
    ("useropts.txt", "# pgbouncer user options\n"),
    ("userlist.txt", "\"postgres\" \"\"\n"),
    (
        "pgb_hba.conf",
        "local    all                postgres                              peer\n",
    ),
];

/// `../shared/pigsty/files/postgres` from the crate root; panics clearly when missing.
fn pigsty_bin() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pigsty/files/postgres");
        assert!(
            dir.is_dir(),
            "{}: missing; the node harness copies Pigsty's files/postgres/* to each node's /pg/bin \
             (real Pigsty v4.5.0 at ../shared/pigsty from the crate root)",
            dir.display()
        );
        dir
    })
}

/// Mount points the namespace script binds over (they must exist on the host; never written).
pub(super) fn check_host() {
    let ok = Path::new("/usr/sbin/pgbouncer").exists() && Path::new("/etc/pgbouncer").is_dir();
    assert!(
        ok,
        "no pgbouncer (/usr/sbin/pgbouncer, /etc/pgbouncer): run scripts/setup.sh"
    );
    pigsty_bin();
}

/// Lays out `<node>/pg` and `<node>/pgbouncer` (see the module doc).
pub(super) fn layout(dir: &Path, ip: &str) {
    let pg = dir.join("pg");
    for d in ["", "bin", "tmp", "log", "log/pgbouncer", "data"] {
        mkdir_pg(&pg.join(d), 0o755);
    }
    for e in fs::read_dir(pigsty_bin()).unwrap().flatten() {
        let to = pg.join("bin").join(e.file_name());
        fs::copy(e.path(), &to).unwrap();
        own(&to, 0o755);
    }
    let etc = dir.join("pgbouncer");
    mkdir_pg(&etc, 0o750);
    let ini = etc.join("pgbouncer.ini");
    fs::write(&ini, INI.replace("$IP", ip)).unwrap();
    own(&ini, 0o640);
    for (name, text) in STARTERS {
        fs::write(etc.join(name), text).unwrap();
        own(&etc.join(name), 0o600);
    }
}

/// The pid in `<node>/run/pgbouncer.pid` if that process is a pgbouncer.
pub(super) fn running(dir: &Path) -> Option<i32> {
    let pid = pid_in(&dir.join("run/pgbouncer.pid"))?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains("pgbouncer")
        .then_some(pid)
}

impl Node {
    /// Starts Debian's pgbouncer as postgres in the namespace of the node's sshd (`pid`), then
    /// waits until it accepts connections on `IP:6432`.
    pub(super) fn start_pgbouncer(&self, sshd: u32) {
        let mut start = cmd("/usr/bin/nsenter -m -t");
        start.arg(sshd.to_string()).env_clear().current_dir("/");
        start.args(["/usr/sbin/runuser", "-u", "postgres", "--"]);
        ok(start.args([
            "/usr/sbin/pgbouncer",
            "-d",
            "-q",
            "/etc/pgbouncer/pgbouncer.ini",
        ]));
        let addr = (self.ip.parse::<Ipv4Addr>().unwrap(), PGB_PORT).into();
        wait_for(&format!("pgbouncer on {}", self.ip), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
    }

    /// Stops the node's pgbouncer (SIGTERM: immediate shutdown) if it runs.
    pub(super) fn stop_pgbouncer(&self) {
        signal(running(&self.dir), libc::SIGTERM);
    }

    /// pgbouncer's pid (from its pid file); panics if it does not run.
    pub fn pgbouncer_pid(&self) -> i32 {
        running(&self.dir).unwrap_or_else(|| panic!("no pgbouncer on {}", self.ip))
    }

    /// What `systemctl reload pgbouncer` does on a Pigsty node (`kill -HUP $MAINPID`), then waits
    /// until the admin console answers again.
    pub fn hup_pgbouncer(&self) {
        signal(Some(self.pgbouncer_pid()), libc::SIGHUP);
        self.pgb_sql("pgbouncer", "SHOW VERSION");
    }

    /// Real path of the node's `/etc/pgbouncer`.
    pub fn pgbouncer_dir(&self) -> PathBuf {
        self.dir.join("pgbouncer")
    }

    /// Runs `sql` through pgbouncer as the dbsu (peer over the node's socket, port 6432): the
    /// admin console with db `pgbouncer` (`SHOW DATABASES`, ...). Returns trimmed `-At` stdout.
    pub fn pgb_sql(&self, db: &str, sql: &str) -> String {
        let mut psql = pg("psql -X -At -q -v ON_ERROR_STOP=1 -p 6432 -U postgres -h");
        psql.arg(self.socket_dir()).args(["-d", db, "-c", sql]);
        let out = psql.stdin(Stdio::null()).output().expect("psql");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "pgbouncer sql on {}/{db}: {sql}\n{err}",
            self.ip
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Logs in through pgbouncer over TCP (`IP:6432`) as `user` with `password` and runs
    /// `select 1`; Err(stderr) if refused.
    pub fn pgb_login(&self, user: &str, password: &str, db: &str) -> Result<(), String> {
        let mut psql = cmd(&format!("{PGBIN}/psql -X -At -w -c"));
        psql.arg("select 1").env_clear().stdin(Stdio::null());
        psql.envs([("PGHOST", &*self.ip), ("PGPORT", "6432"), ("PGUSER", user)]);
        psql.envs([("PGDATABASE", db), ("PGPASSWORD", password)]);
        psql.envs([("PGPASSFILE", "/dev/null"), ("PGCONNECT_TIMEOUT", "5")]);
        let out = psql.output().expect("psql");
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1" {
            return Ok(());
        }
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

impl Cluster {
    /// HUPs the node's pgbouncer (see `Node::hup_pgbouncer`).
    pub fn hup_pgbouncer(&self, ip: &str) {
        self.node(ip).hup_pgbouncer();
    }
}
