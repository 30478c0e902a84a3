//! A hostile case through the real binary: a Git repository with the base inventory, then the
//! case's bytes as `pigsty.yml`; `pgitops validate` and `pgitops plan --output json`, each under
//! a 1 GiB address-space limit (`setrlimit(RLIMIT_AS)` in the child) and a 10 s timeout.
//! Neither may crash (a panic exits 101; a signal has no code), run out of time, print a secret
//! or an unlocated error, and a refused case must be refused by both.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::gen::{Case, Expect};
use super::LIMIT;
use crate::support::{Repo, BASE};

const MEMORY: u64 = 1 << 30;

pub struct Limited {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs the test's binary with the limits.
pub fn run(repo: &Path, args: &[&str]) -> Result<Limited, String> {
    run_with(Path::new(env!("CARGO_BIN_EXE_pgitops")), repo, args)
}

/// `target/release/pgitops` when it is newer than every file under `src/`.
pub fn fresh_release() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join("target/release/pgitops");
    let built = bin.metadata().and_then(|m| m.modified()).ok()?;
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let meta = e.metadata().ok()?;
            if meta.is_dir() {
                dirs.push(e.path());
            } else if meta.modified().ok()? > built {
                return None;
            }
        }
    }
    Some(bin)
}

/// Runs `bin` with the limits; `Err` on a timeout (the child is killed) or a signal.
pub fn run_with(bin: &Path, repo: &Path, args: &[&str]) -> Result<Limited, String> {
    run_within(bin, repo, args, LIMIT)
}

/// [`run_with`] with another timeout.
pub fn run_within(
    bin: &Path,
    repo: &Path,
    args: &[&str],
    limit: Duration,
) -> Result<Limited, String> {
    let mut cmd = Command::new(bin);
    cmd.arg("--repo").arg(repo).args(args);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MEMORY,
                rlim_max: MEMORY,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    // Read the pipes on threads so that a large output cannot block the child.
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out_t = read(Box::new(child.stdout.take().unwrap()));
    let err_t = read(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`pgitops {}` ran past {limit:?}", args.join(" ")));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let (stdout, stderr) = (out_t.join().unwrap(), err_t.join().unwrap());
    let code = status.code().ok_or_else(|| {
        format!(
            "`pgitops {}` was killed by a signal: {status:?}\n{stderr}",
            args.join(" ")
        )
    })?;
    Ok(Limited {
        code,
        stdout,
        stderr,
        elapsed,
    })
}

/// `file:line:column:` somewhere in the text.
fn located(text: &str) -> bool {
    text.match_indices("pigsty.yml:").any(|(i, m)| {
        let mut parts = text[i + m.len()..].splitn(3, ':');
        let num = |s: Option<&str>| {
            s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        };
        num(parts.next()) && num(parts.next())
    })
}

pub fn check(case: &Case) -> Result<(), String> {
    let repo = Repo::new();
    repo.commit_inventory(BASE, "base");
    std::fs::write(repo.path().join("pigsty.yml"), &case.text).unwrap();
    repo.commit("hostile");
    let validate = run(repo.path(), &["validate"])?;
    let plan = run(repo.path(), &["plan", "--output", "json"])?;
    for (verb, r) in [("validate", &validate), ("plan", &plan)] {
        if ![0, 1, 2].contains(&r.code) {
            return Err(format!("{verb} exited {}: {}", r.code, r.stderr));
        }
        if let Some(s) = case
            .secrets
            .iter()
            .find(|s| r.stdout.contains(s.as_str()) || r.stderr.contains(s.as_str()))
        {
            return Err(format!("{verb} printed a secret ({} bytes)", s.len()));
        }
        if r.elapsed > LIMIT {
            return Err(format!("{verb} took {:?}", r.elapsed));
        }
    }
    let refused = validate.code == 2;
    if refused != (case.expect == Expect::Refuse) {
        return Err(format!(
            "validate exited {}: {}",
            validate.code, validate.stderr
        ));
    }
    if refused {
        if plan.code != 2 {
            return Err(format!("validate refused it but plan exited {}", plan.code));
        }
        if !located(&validate.stderr) {
            return Err(format!(
                "validate's error is not located: {}",
                validate.stderr
            ));
        }
    }
    Ok(())
}
