//! Shared by the plan benchmarks: run a command and measure it (wall time and the child's peak
//! RSS), summarise runs, commit a generated inventory to a scratch repository.

use std::fs::File;
use std::path::Path;
use std::process::{exit, Command, Stdio};
use std::time::Instant;

pub mod generate;

pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| fail(&format!("{name}={v:?} is not a number"))),
        Err(_) => default,
    }
}

pub fn fail(msg: &str) -> ! {
    eprintln!("plan_vs_ansible: {msg}");
    exit(2)
}

pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=pgitops-bench",
            "-c",
            "user.email=bench@localhost",
        ])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run git: {e}")));
    if !status.success() {
        fail(&format!("git {args:?} failed: {status}"));
    }
}

/// A new repository in `repo` (which must not exist) with two commits of `pigsty.yml`: `v1`,
/// then `v2`.
pub fn two_commits(repo: &Path, v1: &str, v2: &str) {
    std::fs::create_dir(repo).expect("repo dir (PGITOPS_BENCH_KEEP must not exist yet)");
    let inventory = repo.join("pigsty.yml");
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::write(&inventory, v1).expect("write v1");
    git(repo, &["add", "pigsty.yml"]);
    git(repo, &["commit", "-q", "-m", "bench: initial inventory"]);
    std::fs::write(&inventory, v2).expect("write v2");
    git(
        repo,
        &["commit", "-q", "-a", "-m", "bench: change one user"],
    );
}

pub struct Run {
    pub wall_ms: f64,
    pub rss_mb: f64,
    pub exit_code: i32,
}

/// Spawns `cmd` with stdout/stderr to the given files and reaps it with `wait4`, so that the
/// peak RSS is the child's own. Returns None if the program cannot be started.
pub fn measure(mut cmd: Command, stdout: &Path, stderr: &Path) -> Option<Run> {
    cmd.stdin(Stdio::null())
        .stdout(File::create(stdout).expect("stdout file"))
        .stderr(File::create(stderr).expect("stderr file"));
    let start = Instant::now();
    let child = cmd.spawn().ok()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it in for our own child `pid`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            fail(&format!("wait4({pid}): {err}"));
        }
    }
    let wall_ms = start.elapsed().as_secs_f64() * 1000.0;
    drop(child); // already reaped by wait4; dropping a Child neither waits nor kills
    let exit_code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Some(Run {
        wall_ms,
        rss_mb: usage.ru_maxrss as f64 / 1024.0,
        exit_code,
    })
}

/// (median, min, max); the median of an even count is the mean of the two middle values.
pub fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

pub const HEADER: &str =
    "command                    runs    wall ms       min       max     RSS MB      min      max";

/// Prints one summary row; returns the median wall time and the median peak RSS.
pub fn row(name: &str, runs: &[Run]) -> (f64, f64) {
    let (wm, wlo, whi) = stats(runs.iter().map(|r| r.wall_ms).collect());
    let (rm, rlo, rhi) = stats(runs.iter().map(|r| r.rss_mb).collect());
    println!(
        "{name:<26} {:>4} {wm:>10.1} {wlo:>9.1} {whi:>9.1} {rm:>10.1} {rlo:>8.1} {rhi:>8.1}",
        runs.len()
    );
    (wm, rm)
}

pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Runs `bin args...` once; exits the benchmark when it cannot start or exits with a code not
/// in `ok`.
pub fn run_once(bin: &Path, args: &[&str], out: &Path, err: &Path, ok: &[i32]) -> Run {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let run = measure(cmd, out, err).unwrap_or_else(|| {
        fail(&format!(
            "cannot start {} (cargo build --release?)",
            bin.display()
        ))
    });
    if !ok.contains(&run.exit_code) {
        eprintln!(
            "{} {args:?} exited with {}:\n{}",
            bin.display(),
            run.exit_code,
            tail(err)
        );
        exit(1);
    }
    run
}

/// The id of the one user update in a `plan --output json` document; exits unless the plan is
/// that update, optionally followed by its cluster's `<cluster>/pgbouncer/reload` (which a user
/// with `pgbouncer` set brings: its files are rewritten where they changed).
pub fn one_action(out: &Path) -> String {
    let plan: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out).unwrap_or_default(),
    )
    .unwrap_or_else(|e| {
        eprintln!("pgitops plan output is not JSON: {e}\n{}", tail(out));
        exit(1)
    });
    let actions = plan
        .get("actions")
        .and_then(|a| a.as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let ids: Vec<&str> = actions
        .iter()
        .filter_map(|a| a.get("id")?.as_str())
        .collect();
    let cluster = ids
        .first()
        .and_then(|id| id.split_once("/user/"))
        .map(|(c, _)| c);
    let expected = match (ids.as_slice(), cluster) {
        ([user], Some(_)) => user.ends_with("/update"),
        ([user, reload], Some(c)) => {
            user.ends_with("/update") && *reload == format!("{c}/pgbouncer/reload")
        }
        _ => false,
    };
    if !expected || ids.len() != actions.len() {
        eprintln!(
            "expected one user update (and its cluster's pgbouncer reload), the plan has {}: {ids:?}",
            actions.len()
        );
        exit(1);
    }
    ids[0].to_string()
}
