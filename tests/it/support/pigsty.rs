//! Running the **real** Pigsty v4.5.0 playbooks (`../shared/pigsty`, untouched) against the test
//! nodes, following `../shared/reference/real-pigsty.md`, plus a recording stand-in for the
//! lifecycle playbooks that must never run here.
//!
//! * [`Ansible`]: an `ANSIBLE_CONFIG` of the recipe (Pigsty's `ansible.cfg` plus root login with
//!   the cluster's key, ssh config and known_hosts, strict host keys, `become_method = su`,
//!   `SYSTEMD_OFFLINE=1` for the systemd module, SSH masters inside the cluster's run dir), and a
//!   **guard** in front of `ansible-playbook` that refuses the untagged lifecycle playbooks
//!   (`node.yml`, `pgsql.yml` without `-t`, any `*-rm.yml`, `etcd.yml`, `infra.yml`,
//!   `minio.yml`, `redis.yml`): the test nodes share this machine's root filesystem, and those
//!   books would reconfigure it. pgitops must never start one here; the guard makes a bug fail
//!   the test instead of touching the machine.
//! * [`Ansible::args`] points `--pigsty-home` at a scratch home that mirrors the real tree by
//!   symlinks: in the copy of the tree here, Pigsty's own symlinks (`templates/pg-user.sql ->
//!   ../roles/pgsql/templates/pg-user.sql`, ...) arrived as one-line text files, which Ansible
//!   would render as SQL; the mirror makes them links again. Nothing in the tree is changed.
//! * [`recorder`]: a recording stand-in for `ansible-playbook` (records argv and the ANSIBLE_*
//!   variables pgitops sets, runs nothing, reports success).
#![allow(dead_code)] // not every test uses every helper

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::nodes::Cluster;

/// The real Pigsty tree, beside the project.
pub fn real_home() -> PathBuf {
    let home = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/pigsty");
    assert!(
        home.join("pgsql-user.yml").exists(),
        "the real Pigsty tree is expected at {}",
        home.display()
    );
    home
}

/// Whether `ansible-playbook` is on PATH (`scripts/setup.sh` installs ansible).
pub fn ansible_available() -> bool {
    Command::new("which")
        .arg("ansible-playbook")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Ansible controller settings for one cluster, and the guard in front of ansible-playbook.
pub struct Ansible {
    dir: tempfile::TempDir,
}

impl Ansible {
    pub fn new(cluster: &Cluster) -> Ansible {
        assert!(
            ansible_available(),
            "ansible-playbook is required: run scripts/setup.sh (it installs ansible)"
        );
        let dir = tempfile::Builder::new()
            .prefix("pga")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path().display();
        let pigsty = fs::read_to_string(real_home().join("ansible.cfg")).unwrap();
        // Pigsty's own settings, minus what the recipe replaces.
        let mut cfg: String = pigsty
            .lines()
            .filter(|l| !l.starts_with("host_key_checking") && !l.starts_with("inventory"))
            .map(|l| format!("{l}\n"))
            .collect();
        cfg += &format!(
            "host_key_checking = True\ninventory = /dev/null\nremote_user = root\n\
             private_key_file = {key}\nretry_files_enabled = False\nlocal_tmp = {d}/tmp\n\
             interpreter_python = /usr/bin/env SYSTEMD_OFFLINE=1 /usr/bin/python3\n\
             \n[privilege_escalation]\nbecome_method = su\n\
             \n[ssh_connection]\nssh_args = -F {cfgf} -o UserKnownHostsFile={kh} \
             -o ControlMaster=auto -o ControlPersist=60s -o ControlPath={ctl}/ans-%C\n",
            key = cluster.identity().display(),
            cfgf = cluster.ssh_config().display(),
            kh = cluster.known_hosts().display(),
            // In the cluster's run dir: a master must never outlive its nodes' namespaces.
            ctl = cluster.run_dir().display(),
        );
        fs::write(dir.path().join("ansible.cfg"), cfg).unwrap();
        let guard = "#!/bin/bash\n\
            # Test guard (not Pigsty's): lifecycle playbooks would reconfigure this machine.\n\
            book=$1\n\
            case \"$book\" in\n\
              *-rm.yml|node.yml|etcd.yml|infra.yml|minio.yml|redis.yml)\n\
                echo \"test guard: refusing $book against the test nodes\" >&2; exit 97;;\n\
              pgsql.yml) case \" $* \" in *' -t '*) ;; *)\n\
                echo 'test guard: refusing an untagged pgsql.yml' >&2; exit 97;; esac;;\n\
            esac\n\
            exec ansible-playbook \"$@\"\n";
        let g = dir.path().join("ansible-playbook-guard");
        fs::write(&g, guard).unwrap();
        fs::set_permissions(&g, fs::Permissions::from_mode(0o755)).unwrap();
        mirror(&real_home(), &dir.path().join("home"));
        Ansible { dir }
    }

    /// `env ANSIBLE_CONFIG=...`: the prefix to run pgitops with (see `Fleet::apply_via`).
    pub fn env(&self) -> Vec<String> {
        vec![
            "env".into(),
            format!("ANSIBLE_CONFIG={}/ansible.cfg", self.dir.path().display()),
        ]
    }

    /// `ANSIBLE_CONFIG`'s value.
    pub fn config(&self) -> String {
        format!("{}/ansible.cfg", self.dir.path().display())
    }

    /// The `[executor]` lines of a service running the real home through the guard.
    pub fn executor_toml(&self, kind: &str) -> String {
        format!(
            "kind = {kind:?}\npigsty_home = {:?}\nansible_playbook = {:?}",
            self.dir.path().join("home"),
            self.dir.path().join("ansible-playbook-guard")
        )
    }

    /// `--pigsty-home <real home> --ansible-playbook <guard>`.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--pigsty-home".into(),
            self.dir.path().join("home").display().to_string(),
            "--ansible-playbook".into(),
            self.dir
                .path()
                .join("ansible-playbook-guard")
                .display()
                .to_string(),
        ]
    }
}

/// `dst` mirrors `src` by symlinks; a file that is a flattened symlink (one line naming a path
/// that exists relative to it) becomes that link again.
fn mirror(src: &Path, dst: &Path) {
    use std::os::unix::fs::symlink;
    fs::create_dir(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let path = e.unwrap().path();
        let to = dst.join(path.file_name().unwrap());
        if path.is_dir() && flattened_links(&path) {
            mirror(&path, &to);
            continue;
        }
        let target = flattened(&path).unwrap_or_else(|| path.clone());
        symlink(target, to).unwrap();
    }
}

/// The target of a flattened symlink.
fn flattened(path: &Path) -> Option<PathBuf> {
    if !path.is_file() || fs::metadata(path).ok()?.len() > 255 {
        return None;
    }
    let text = fs::read_to_string(path).ok()?;
    let name = text.trim_end_matches('\n');
    if name.is_empty() || name.contains(['\n', ' ']) {
        return None;
    }
    let target = path.parent()?.join(name);
    target.exists().then_some(target)
}

/// Whether the directory directly holds a flattened symlink.
fn flattened_links(dir: &Path) -> bool {
    fs::read_dir(dir)
        .unwrap()
        .any(|e| flattened(&e.unwrap().path()).is_some())
}

/// A recording stand-in for `ansible-playbook` in `dir`: each run leaves `<dir>/run.*` holding
/// its arguments (one per line), then `--env--` and the ANSIBLE_* variables pgitops sets.
pub fn recorder(dir: &Path) -> PathBuf {
    let script = dir.join("ansible-playbook-recorder");
    let text = format!(
        "#!/bin/bash\n# Recording stand-in for ansible-playbook (test harness): runs nothing.\n\
         f=$(mktemp {d}/run.XXXXXX)\nprintf '%s\\n' \"$@\" > \"$f\"\necho --env-- >> \"$f\"\n\
         env | grep -E '^ANSIBLE_(HOST_KEY_CHECKING|CALLBACKS_ENABLED)=' | sort >> \"$f\"\n\
         limit=\nwhile [ $# -gt 0 ]; do [ \"$1\" = -l ] && limit=$2; shift; done\n\
         echo 'PLAY RECAP *****'\n\
         echo \"$limit : ok=1 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0\"\n",
        d = dir.display()
    );
    fs::write(&script, text).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// The runs the recorder in `dir` recorded since the last call (each: its argv lines, `--env--`,
/// its environment lines), oldest first; they are removed.
pub fn recorded(dir: &Path) -> Vec<Vec<String>> {
    let mut runs = Vec::new();
    for p in fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        if p.file_name().unwrap().to_string_lossy().starts_with("run.") {
            let t = fs::metadata(&p).unwrap().modified().unwrap();
            let text = fs::read_to_string(&p).unwrap();
            runs.push((t, text.lines().map(str::to_string).collect::<Vec<_>>()));
            fs::remove_file(p).unwrap();
        }
    }
    runs.sort();
    runs.into_iter().map(|(_, r)| r).collect()
}
