//! `pgitops plan` against `ansible-inventory --list` on a large Pigsty inventory, and the cost
//! of `validate` and `plan` as one cluster's user list grows.
//!
//! Fleet case: generates N PostgreSQL clusters (env `PGITOPS_BENCH_CLUSTERS`, default 1000) of
//! 3 members each, commits the inventory twice (the second commit changes one user's
//! `connlimit` in one cluster), then measures wall time and the child's peak RSS (`wait4` ->
//! `ru_maxrss`) of
//!
//! * `pgitops plan --repo <dir> --output json HEAD~1..HEAD`, `PGITOPS_BENCH_RUNS` times (11);
//!   the plan must be that user update (and its cluster's pgbouncer reload);
//! * `ansible-inventory -i pigsty.yml --list`, `PGITOPS_BENCH_ANSIBLE_RUNS` times (3), if
//!   installed.
//!
//! `PGITOPS_BENCH_CLUSTERS=0` skips this case.
//!
//! Users case: one cluster with N users for each N of `PGITOPS_BENCH_USERS` (comma separated,
//! default `1000,10000,50000`; empty skips it), committed twice (one user's connlimit changed);
//! measures `pgitops validate` and `pgitops plan`, `PGITOPS_BENCH_USER_RUNS` times (5) each, and
//! prints the cost per user, which stays flat when the cost is linear.
//!
//! The binary is `PGITOPS_BIN` (default `target/release/pgitops`, relative to the crate root),
//! so build it first: `cargo build --release && cargo bench --bench plan_vs_ansible`.
//! `PGITOPS_BENCH_BASELINE=<binary>` also measures another build (say, the one before a change)
//! in the same run, interleaved run by run, so both see the same machine load.
//! All addresses are in 127.0.0.0/8 and nothing connects anywhere.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use support::generate::{self, cluster_name, DATABASES, HBA_RULES, USERS};
use support::{env_usize, fail, measure, one_action, row, run_once, tail, Run, HEADER};

/// The builds under test: (label, binary).
fn builds() -> Vec<(String, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = std::env::var("PGITOPS_BIN").unwrap_or_else(|_| "target/release/pgitops".into());
    let mut out = vec![("pgitops".to_string(), root.join(bin))];
    if let Some(base) = std::env::var_os("PGITOPS_BENCH_BASELINE") {
        out.push(("baseline".to_string(), root.join(base)));
    }
    out
}

/// Runs `args` on every build, `runs` rounds, interleaved; checks each plan has one action.
fn bench(
    builds: &[(String, PathBuf)],
    args: &[&str],
    runs: usize,
    scratch: &Path,
    is_plan: bool,
) -> Vec<Vec<Run>> {
    let (out, err) = (scratch.join("cmd.out"), scratch.join("cmd.err"));
    let mut all: Vec<Vec<Run>> = builds.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for (i, (_, bin)) in builds.iter().enumerate() {
            // validate exits 0 (valid) or 1 (errors); the generated inventories are valid.
            all[i].push(run_once(bin, args, &out, &err, &[0]));
            if is_plan {
                one_action(&out);
            }
        }
    }
    all
}

fn fleet(builds: &[(String, PathBuf)], runs: usize, scratch: &Path) {
    let clusters = env_usize("PGITOPS_BENCH_CLUSTERS", 1000);
    let ansible_runs = env_usize("PGITOPS_BENCH_ANSIBLE_RUNS", 3);
    if clusters == 0 {
        return;
    }
    if clusters > 254 * 200 {
        fail("PGITOPS_BENCH_CLUSTERS must be between 0 (skip) and 50800");
    }
    // PGITOPS_BENCH_KEEP=DIR keeps the generated repository in DIR (for profiling).
    let repo = std::env::var_os("PGITOPS_BENCH_KEEP")
        .map(PathBuf::from)
        .unwrap_or_else(|| scratch.join("repo"));
    let t = Instant::now();
    let v1 = generate::generate(clusters, None);
    let v2 = generate::generate(clusters, Some(clusters / 2));
    let gen_ms = t.elapsed().as_secs_f64() * 1000.0;
    support::two_commits(&repo, &v1, &v2);
    let inventory = repo.join("pigsty.yml");

    println!(
        "inventory: {clusters} clusters x 3 hosts ({} hosts), {USERS} users, {DATABASES} databases, \
         {HBA_RULES} HBA rules per cluster",
        clusters * 3 + 3
    );
    println!(
        "pigsty.yml: {} bytes ({:.2} MiB), generated twice in {gen_ms:.0} ms; expected change: \
         {}/user/dbuser_app3",
        v2.len(),
        v2.len() as f64 / 1048576.0,
        cluster_name(clusters / 2)
    );
    let repo_s = repo.to_str().expect("UTF-8 path");
    let args = ["plan", "--repo", repo_s, "--output", "json", "HEAD~1..HEAD"];
    let plan_runs = bench(builds, &args, runs, scratch, true);
    let id = one_action(&scratch.join("cmd.out"));
    println!("plan: the user update [{id:?}] (and its pgbouncer reload)");

    // ansible-inventory on the same (second) file
    let mut ansible = Vec::new();
    let (aout, aerr) = (PathBuf::from("/dev/null"), scratch.join("ansible.err"));
    for _ in 0..ansible_runs {
        let mut cmd = Command::new("ansible-inventory");
        cmd.arg("-i")
            .arg(&inventory)
            .arg("--list")
            .env("ANSIBLE_LOCAL_TEMP", scratch);
        match measure(cmd, &aout, &aerr) {
            None => {
                println!("ansible-inventory: not found, skipped");
                break;
            }
            Some(run) if run.exit_code != 0 => {
                println!(
                    "ansible-inventory exited with {}, skipped:\n{}",
                    run.exit_code,
                    tail(&aerr)
                );
                ansible.clear();
                break;
            }
            Some(run) => ansible.push(run),
        }
    }

    println!("\n{HEADER}");
    let medians: Vec<f64> = builds
        .iter()
        .zip(&plan_runs)
        .map(|((label, _), r)| row(&format!("{label} plan"), r).0)
        .collect();
    if !ansible.is_empty() {
        let (ansible_ms, _) = row("ansible-inventory --list", &ansible);
        println!();
        for ((label, _), ms) in builds.iter().zip(&medians) {
            println!(
                "speed ratio ansible/{label} (median wall): {:.1}x",
                ansible_ms / ms
            );
        }
    }
}

fn users_case(builds: &[(String, PathBuf)], runs: usize, scratch: &Path) {
    let list = std::env::var("PGITOPS_BENCH_USERS").unwrap_or_else(|_| "1000,10000,50000".into());
    let sizes: Vec<usize> = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| fail(&format!("PGITOPS_BENCH_USERS: {s:?} is not a number")))
        })
        .collect();
    if sizes.is_empty() {
        return;
    }
    println!("\none cluster with N users (3 members, {DATABASES} databases, {HBA_RULES} HBA rules); the second commit changes one user");
    println!(
        "{:<10} {:>7} {:<9} {:>8} {:>10} {:>8} {:>8} {:>10}",
        "build", "users", "command", "MiB", "wall ms", "min", "RSS MB", "µs/user"
    );
    for n in sizes {
        if n == 0 {
            continue;
        }
        let repo = scratch.join(format!("users-{n}"));
        let (v1, v2) = (
            generate::one_cluster(n, None),
            generate::one_cluster(n, Some(n / 2)),
        );
        support::two_commits(&repo, &v1, &v2);
        let repo_s = repo.to_str().expect("UTF-8 path");
        let validate = bench(
            builds,
            &["validate", "--repo", repo_s],
            runs,
            scratch,
            false,
        );
        let plan_args = ["plan", "--repo", repo_s, "--output", "json", "HEAD~1..HEAD"];
        let plan = bench(builds, &plan_args, runs, scratch, true);
        for (i, (label, _)) in builds.iter().enumerate() {
            for (cmd, r) in [("validate", &validate[i]), ("plan", &plan[i])] {
                let (wm, wlo, _) = support::stats(r.iter().map(|r| r.wall_ms).collect());
                let (rm, _, _) = support::stats(r.iter().map(|r| r.rss_mb).collect());
                println!(
                    "{label:<10} {n:>7} {cmd:<9} {:>8.1} {wm:>10.1} {wlo:>8.1} {rm:>8.1} {:>10.1}",
                    v2.len() as f64 / 1048576.0,
                    wm * 1000.0 / n as f64
                );
            }
        }
    }
}

fn main() {
    let runs = env_usize("PGITOPS_BENCH_RUNS", 11).max(1);
    let user_runs = env_usize("PGITOPS_BENCH_USER_RUNS", 5).max(1);
    let builds = builds();
    let tmp = tempfile::tempdir().expect("temp dir");
    fleet(&builds, runs, tmp.path());
    users_case(&builds, user_runs, tmp.path());
}
