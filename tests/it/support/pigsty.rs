//! A minimal "Pigsty home" for tests of the `pigsty` executor: test-fixture playbooks with
//! Pigsty's file names and variables (`pigsty_home/*.yml`: `pgsql-user.yml`, `pgsql-db.yml`,
//! `pgsql.yml` for the tags `pg_hba,pg_reload,pgbouncer_hba,pgbouncer_reload`, `pgsql-rm.yml`)
//! that make the real change on the test nodes, run by the real `ansible-playbook` over SSH.
//! They imitate Pigsty's playbooks; they are not Pigsty's code (see each file's header).
//!
//! Smoke check, by hand (what the playbooks were verified with). Roles in `roles:` must exist
//! first (`username=dbrole_readonly` before `app`), else the GRANT fails: rc 0, `ignored=1`.
//!
//! ```text
//! let f = Fleet::new(&["127.0.231.11", "127.0.231.12"]);
//! let home = pigsty::home(&f.nodes);
//! let mut v = f.inventory();
//! fleet::push(&mut v, "pg_users", "{ name: app, password: S3cret, connlimit: 5 }");
//! fleet::push(&mut v, "pg_databases", "{ name: shop, owner: app }");
//! let inv = home.path().join("pigsty.yml");
//! std::fs::write(&inv, to_yaml(&v)).unwrap();
//! let out = Command::new("ansible-playbook").current_dir(home.path())
//!     .args(["pgsql-user.yml", "-i", inv.to_str().unwrap(), "-l", "pg-t", "-e", "username=app"])
//!     .output().unwrap();
//! // rc 0; PLAY RECAP: "127.0.231.11 : ok=3 changed=2 unreachable=0 failed=0 skipped=1
//! //   rescued=0 ignored=0" and "127.0.231.12 : ok=1 changed=0 ... skipped=3 ... ignored=0"
//! assert_eq!(f.primary().sql("postgres", "select rolconnlimit from pg_roles where rolname = 'app'"), "5");
//! ```
//!
//! Notes: the playbooks need no `become` (root over SSH, `runuser -u postgres` for the dbsu) and
//! write their SQL files into the node's private socket dir (`/var/run/postgresql`). SQL errors
//! are ignored like Pigsty does (rc 0): check `ignored=` in PLAY RECAP. Unlike Pigsty, any psql
//! `ERROR:` other than "role ... already exists" counts (Pigsty's psql step never fails; only its
//! pg_authid check catches a role that is missing). SSH masters outlive a run by up to 60 s
//! (ControlPersist; sockets in the home dir).
#![allow(dead_code)] // not every test uses every helper

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use super::nodes::Cluster;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/pigsty_home");

/// A fresh Pigsty home (a short temp dir under /tmp: the SSH ControlPath lives in it) holding the
/// fixture playbooks and an `ansible.cfg` that reaches `cluster`'s nodes as root with its key,
/// client config and known_hosts (strict host key checking). Run `ansible-playbook` with this
/// directory as the working directory; Ansible reads `./ansible.cfg` (the dir is 0700, so it is
/// not ignored as world-writable). No inventory is configured: pass `-i <file>`.
pub fn home(cluster: &Cluster) -> tempfile::TempDir {
    let home = tempfile::Builder::new()
        .prefix("pgh")
        .tempdir_in("/tmp")
        .expect("pigsty home");
    for e in fs::read_dir(FIXTURES).expect("pigsty_home fixtures") {
        let src = e.unwrap().path();
        if src.extension().is_some_and(|x| x == "yml") {
            let dst = home.path().join(src.file_name().unwrap());
            fs::copy(&src, &dst).unwrap();
            fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let h = home.path().display();
    let (key, cfg, kh) = (
        cluster.identity(),
        cluster.ssh_config(),
        cluster.known_hosts(),
    );
    let mut text = String::from("[defaults]\n");
    for line in [
        "host_key_checking = True".to_string(),
        "forks = 10".into(),
        "remote_user = root".into(),
        format!("private_key_file = {}", key.display()),
        "retry_files_enabled = False".into(),
        "stdout_callback = default".into(),
        "interpreter_python = /usr/bin/python3".into(),
        "deprecation_warnings = False".into(),
        "force_valid_group_names = ignore".into(),
        format!("local_tmp = {h}/.ansible/tmp"),
    ] {
        writeln!(text, "{line}").unwrap();
    }
    // A single `%`: Ansible passes ssh_args verbatim (no ConfigParser interpolation), and ssh
    // reads `%%C` as the literal `%C`, one socket shared by every host: commands for one node
    // would then run on another.
    writeln!(
        text,
        "\n[ssh_connection]\nssh_args = -F {} -o UserKnownHostsFile={} -o ControlMaster=auto \
         -o ControlPersist=60s -o ControlPath={h}/cp-%C\npipelining = True",
        cfg.display(),
        kh.display()
    )
    .unwrap();
    fs::write(home.path().join("ansible.cfg"), text).unwrap();
    home
}

/// Whether `ansible-playbook` is on PATH (`apt-get install -y ansible-core` provides it).
pub fn ansible_available() -> bool {
    Command::new("which")
        .arg("ansible-playbook")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
