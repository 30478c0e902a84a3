//! `pgitops serve` as a real process for tests: a bare remote on disk, the service's
//! configuration pointing at a fleet's nodes, pushes from the fleet's work repository, and the
//! notes the service pushes back.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::fleet::Fleet;

pub struct Service {
    pub child: Child,
    pub remote: tempfile::TempDir,
    pub state: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A service configuration for `f`'s nodes: the remote, the state directory, the poll interval,
/// the HTTP port, and extra lines for `[repository]` and `[executor]` (tables follow after).
pub fn config_text(
    f: &Fleet,
    remote: &std::path::Path,
    state: &std::path::Path,
    poll: u64,
    port: u16,
    repository: &str,
    executor: &str,
) -> String {
    format!(
        "[repository]\nremote = {:?}\nbranch = \"main\"\npoll_seconds = {poll}\n{repository}\n[state]\ndir = {:?}\n[executor]\nssh_user = \"root\"\nidentity = {:?}\nknown_hosts = {:?}\nssh_config = {:?}\ncontrol_dir = {:?}\n{executor}\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
        remote,
        state,
        f.nodes.identity(),
        f.nodes.known_hosts(),
        f.nodes.ssh_config(),
        state.join("ctl"),
    )
}

impl Service {
    /// A bare remote holding the fleet repository's history, and the service watching it.
    pub fn start(f: &Fleet) -> Service {
        Service::start_with(f, "", &[])
    }

    /// With `extra` TOML appended to the configuration and `env` set for the process.
    pub fn start_with(f: &Fleet, extra: &str, env: &[(&str, &str)]) -> Service {
        Service::start_prepared(f, extra, env, |_| {})
    }

    /// As [`Service::start_with`], with `prepare` applied to the command before it is spawned.
    pub fn start_prepared(
        f: &Fleet,
        extra: &str,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&mut Command),
    ) -> Service {
        Service::start_full(f, "", "", extra, env, prepare)
    }

    /// With `repository` lines added to the `[repository]` table (e.g. `verify = "ssh"`).
    pub fn start_repository(
        f: &Fleet,
        repository: &str,
        extra: &str,
        env: &[(&str, &str)],
    ) -> Service {
        Service::start_full(f, repository, "", extra, env, |_| {})
    }

    /// With `executor` lines added to the `[executor]` table (e.g. `kind = "pigsty"`).
    pub fn start_executor(f: &Fleet, executor: &str, env: &[(&str, &str)]) -> Service {
        Service::start_full(f, "", executor, "", env, |_| {})
    }

    fn start_full(
        f: &Fleet,
        repository: &str,
        executor: &str,
        extra: &str,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&mut Command),
    ) -> Service {
        let remote = tempfile::tempdir().unwrap();
        git2::Repository::init_bare(remote.path()).unwrap();
        let state = tempfile::Builder::new()
            .prefix("pgs")
            .tempdir_in("/tmp")
            .unwrap();
        let port = free_port();
        let cfg = config_text(
            f,
            remote.path(),
            state.path(),
            60,
            port,
            repository,
            executor,
        );
        let cfg_path = state.path().join("pgitops.toml");
        std::fs::write(&cfg_path, cfg + extra).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgitops"));
        cmd.args(["serve", "--config"])
            .arg(&cfg_path)
            .envs(env.iter().copied());
        prepare(&mut cmd);
        let svc = Service {
            child: cmd.spawn().unwrap(),
            remote,
            state,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the service did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        svc
    }

    /// Commits `inventory` as the base, starts the service and waits for its first apply.
    pub fn applied(f: &Fleet, inventory: &serde_yaml_ng::Value) -> Service {
        let base = f.commit(inventory, "base");
        let svc = Service::start(f);
        svc.push(f);
        assert_eq!(svc.final_note(&base)["status"], "success");
        svc
    }

    /// Kills the service with SIGKILL (no chance to clean up) and starts it again on the same
    /// configuration, state directory and remote.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let cfg_path = self.state.path().join("pgitops.toml");
        self.child = Command::new(env!("CARGO_BIN_EXE_pgitops"))
            .args(["serve", "--config"])
            .arg(&cfg_path)
            .spawn()
            .unwrap();
    }

    /// Pushes the work repository's HEAD to the remote's `main`.
    pub fn push(&self, f: &Fleet) {
        push_refs(
            f.repo.path(),
            self.remote.path(),
            &["+HEAD:refs/heads/main"],
        );
    }

    /// The note the service pushed for `commit`, once its status is final.
    pub fn final_note(&self, commit: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let repo = git2::Repository::open_bare(self.remote.path()).unwrap();
            let note = repo
                .find_note(
                    Some("refs/notes/pgitops"),
                    git2::Oid::from_str(commit).unwrap(),
                )
                .ok();
            if let Some(doc) = note
                .and_then(|n| serde_json::from_str::<serde_json::Value>(n.message().unwrap()).ok())
            {
                if doc["status"] != "pending" && !doc["status"].is_null() {
                    return doc;
                }
            }
            assert!(Instant::now() < deadline, "no final note on {commit}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The note the service pushed for `commit`, as it is now (any status), if there is one.
    pub fn note(&self, commit: &str) -> Option<serde_json::Value> {
        let repo = git2::Repository::open_bare(self.remote.path()).unwrap();
        let oid = git2::Oid::from_str(commit).unwrap();
        let note = repo.find_note(Some("refs/notes/pgitops"), oid).ok()?;
        serde_json::from_str(note.message().ok()?).ok()
    }

    /// Waits up to `within` until the note on `commit` has `status`; panics with the last note.
    pub fn note_with_status(
        &self,
        commit: &str,
        status: &str,
        within: Duration,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let note = self.note(commit);
            if note.as_ref().is_some_and(|n| n["status"] == status) {
                return note.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "the note on {commit} is not {status:?} after {within:?}: {:#}",
                note.unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The commit the remote's `main` points at.
    pub fn remote_head(&self) -> String {
        let repo = git2::Repository::open_bare(self.remote.path()).unwrap();
        let main = repo.find_reference("refs/heads/main").unwrap();
        main.target().unwrap().to_string()
    }

    /// `pgitops status` on the service's mirror and state directory.
    pub fn status(&self) -> super::Run {
        let mirror = self.state.path().join("mirror.git");
        let state = self.state.path().to_str().unwrap();
        super::pgitops(&mirror, &["--state-dir", state, "status"])
    }

    /// Panics unless the service process is still the one started (it has not exited).
    pub fn assert_running(&mut self) {
        let exited = self.child.try_wait().unwrap();
        assert!(exited.is_none(), "the service exited: {exited:?}");
    }

    pub fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

/// Pushes `specs` from the work repository at `work` to the bare remote at `remote`.
pub fn push_refs<S: AsRef<str>>(work: &std::path::Path, remote: &std::path::Path, specs: &[S]) {
    let repo = git2::Repository::open(work).unwrap();
    let mut remote = repo.remote_anonymous(remote.to_str().unwrap()).unwrap();
    let specs: Vec<&str> = specs.iter().map(AsRef::as_ref).collect();
    remote.push(&specs, None).unwrap();
}
