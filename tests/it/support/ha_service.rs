//! Several `pgitops serve` instances with one `[ha]` table: one bare remote on disk, one etcd
//! cluster, a state directory, HTTP port and log file per instance. Instances are started,
//! killed (`SIGKILL`), paused (`SIGSTOP`/`SIGCONT`) and restarted by the test, always by their
//! own process id.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::etcd::Etcd;
use super::fleet::Fleet;
use super::service::{config_text, free_port, push_refs};

pub struct Instance {
    pub name: String,
    pub child: Option<Child>,
    pub state: tempfile::TempDir,
    /// Extra environment of the service (secrets named by its configuration).
    pub env: Vec<(String, String)>,
}

impl Instance {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("serve.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: a signal to the child this test started, by its own pid.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// Writes the configuration with (`true`) or without its `[ha]` table (a service running
    /// alone, as before `[ha]` was added).
    pub fn ha_table(&self, on: bool) {
        let path = self.state.path().join("pgitops.toml");
        let full = self.state.path().join("pgitops-ha.toml");
        if !full.exists() {
            std::fs::copy(&path, &full).unwrap();
        }
        let text = std::fs::read_to_string(&full).unwrap();
        let text = match on {
            true => text,
            false => text[..text.find("[ha]").unwrap()].to_string(),
        };
        std::fs::write(path, text).unwrap();
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        let status = self.child.take().unwrap().wait().unwrap();
        assert!(
            status.success(),
            "{} stopped cleanly: {status:?}",
            self.name
        );
    }

    /// SIGKILL, and reaped.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `within` until the log has `count` lines containing `text`; the time it took.
    pub fn wait_log(&self, text: &str, count: usize, within: Duration) -> Duration {
        let t = Instant::now();
        while self.log().matches(text).count() < count {
            assert!(
                t.elapsed() < within,
                "{}: no {count}× {text:?} within {within:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        t.elapsed()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            // SAFETY: our own child, by pid; a stopped process must be continued to die cleanly.
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
        }
        self.kill9();
    }
}

pub struct HaPair {
    pub remote: tempfile::TempDir,
    pub instances: Vec<Instance>,
}

impl HaPair {
    /// Instances `names` (not started) on `f`'s nodes, sharing one remote and `etcd` with a lease
    /// of `ttl` seconds, polling every `poll` seconds.
    pub fn new(f: &Fleet, etcd: &Etcd, names: &[&str], ttl: u64, poll: u64) -> HaPair {
        Self::new_with(f, etcd, names, (ttl, poll), "", &[])
    }

    /// [`HaPair::new`] with `extra` lines in the `[ha]` table and `env` for every instance.
    pub fn new_with(
        f: &Fleet,
        etcd: &Etcd,
        names: &[&str],
        (ttl, poll): (u64, u64),
        extra: &str,
        env: &[(&str, &str)],
    ) -> HaPair {
        let remote = tempfile::tempdir().unwrap();
        git2::Repository::init_bare(remote.path()).unwrap();
        let instances = names
            .iter()
            .map(|name| {
                let state = tempfile::Builder::new()
                    .prefix("pgh")
                    .tempdir_in("/tmp")
                    .unwrap();
                let cfg = config_text(f, remote.path(), state.path(), poll, free_port(), "", "")
                    + &format!(
                        "[ha]\netcd = {}\nttl_seconds = {ttl}\nname = {name:?}\nprefix = \"/pgitops/ha-test\"\n{extra}",
                        etcd.endpoints_toml()
                    );
                std::fs::write(state.path().join("pgitops.toml"), cfg).unwrap();
                Instance {
                    name: name.to_string(),
                    child: None,
                    state,
                    env: env
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                }
            })
            .collect();
        HaPair { remote, instances }
    }

    /// Starts instance `i` (again), its output appended to its `serve.log`.
    pub fn start(&mut self, i: usize) {
        let inst = &mut self.instances[i];
        inst.kill9();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(inst.state.path().join("serve.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pgitops"))
            .args(["serve", "--config"])
            .arg(inst.state.path().join("pgitops.toml"))
            .env("PGITOPS_LOG", "info")
            .envs(inst.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        inst.child = Some(child);
    }

    /// Pushes the work repository's HEAD to the remote's `main`.
    pub fn push(&self, f: &Fleet) {
        push_refs(
            f.repo.path(),
            self.remote.path(),
            &["+HEAD:refs/heads/main"],
        );
    }

    /// The note on `commit` in the remote, if any.
    pub fn note(&self, commit: &str) -> Option<serde_json::Value> {
        let repo = git2::Repository::open_bare(self.remote.path()).unwrap();
        let oid = git2::Oid::from_str(commit).unwrap();
        let note = repo.find_note(Some("refs/notes/pgitops"), oid).ok()?;
        serde_json::from_str(note.message().ok()?).ok()
    }

    /// The note on `commit` once its status is `status`, within `within`.
    pub fn note_with(&self, commit: &str, status: &str, within: Duration) -> serde_json::Value {
        let t = Instant::now();
        loop {
            if let Some(n) = self.note(commit).filter(|n| n["status"] == status) {
                return n;
            }
            assert!(
                t.elapsed() < within,
                "the note on {commit} is not {status:?} within {within:?}: {:#}\n{}",
                self.note(commit).unwrap_or_default(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every instance's log, for failure messages.
    pub fn logs(&self) -> String {
        self.instances
            .iter()
            .map(|i| format!("--- {} ---\n{}", i.name, i.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The `(instance, term)` of every run in a note.
pub fn appliers(note: &serde_json::Value) -> Vec<(String, i64)> {
    note["runs"]
        .as_array()
        .map(|runs| {
            runs.iter()
                .map(|r| {
                    (
                        r["instance"]["name"].as_str().unwrap_or("?").to_string(),
                        r["instance"]["term"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
