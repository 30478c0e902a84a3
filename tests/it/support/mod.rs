//! Test support: real Git repositories made with git2, the real `pgitops` binary, and the base
//! inventory (`base.yml`) edited as a YAML value.

use std::path::Path;
use std::process::Command;

use serde_yaml_ng::Value;

pub const BASE: &str = include_str!("base.yml");

/// Every password-like value in `base.yml`; none may appear in any output.
pub const SECRETS: &[&str] = &[
    "DBUser.Meta.Secret",
    "DBUser.View.Secret",
    "Test.User.Secret",
    "S3User.Backup.Secret",
    "Redis.Secret.Pass",
    "Admin.Pass.Secret",
    "Monitor.Pass.Secret",
    "Repl.Pass.Secret",
    "Patroni.Pass.Secret",
    "Grafana.Pass.Secret",
    "Url.Embedded.Secret",
];

pub struct Repo {
    pub dir: tempfile::TempDir,
    repo: git2::Repository,
}

impl Repo {
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = git2::Repository::init(dir.path()).expect("git init");
        Repo { dir, repo }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, text: &str) {
        let p = self.dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Commits the whole work tree (additions, changes and deletions); returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("Test", "test@127.0.0.1").unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
            .to_string()
    }

    /// Writes `pigsty.yml` and commits it.
    pub fn commit_inventory(&self, text: &str, message: &str) -> String {
        self.write("pigsty.yml", text);
        self.commit(message)
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

pub fn pgitops(repo: &Path, args: &[&str]) -> Run {
    pgitops_via(&[], repo, args)
}

/// `pgitops` run through `prefix` (a program and its arguments, e.g. `nsenter -t PID -m --`).
pub fn pgitops_via(prefix: &[&str], repo: &Path, args: &[&str]) -> Run {
    let bin = env!("CARGO_BIN_EXE_pgitops");
    let mut cmd = match prefix.split_first() {
        None => Command::new(bin),
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest).arg(bin);
            cmd
        }
    };
    let out = cmd
        .arg("--repo")
        .arg(repo)
        .args(args)
        .output()
        .expect("run pgitops");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn base() -> Value {
    serde_yaml_ng::from_str(BASE).unwrap()
}

pub fn to_yaml(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap()
}

/// The `vars` mapping of a group.
pub fn vars<'a>(v: &'a mut Value, group: &str) -> &'a mut Value {
    &mut v["all"]["children"][group]["vars"]
}

pub fn hosts<'a>(v: &'a mut Value, group: &str) -> &'a mut Value {
    &mut v["all"]["children"][group]["hosts"]
}

pub fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

/// A repository with the base inventory, then a second commit edited by `edit`; returns the
/// JSON plan of that commit.
pub fn plan_edit(edit: impl FnOnce(&mut Value)) -> serde_json::Value {
    plan_edit_msg("change", edit)
}

pub fn plan_edit_msg(message: &str, edit: impl FnOnce(&mut Value)) -> serde_json::Value {
    let repo = Repo::new();
    repo.commit_inventory(BASE, "base");
    let mut v = base();
    edit(&mut v);
    repo.commit_inventory(&to_yaml(&v), message);
    let run = pgitops(repo.path(), &["plan", "--output", "json"]);
    assert_eq!(run.code, 0, "plan failed: {}\n{}", run.stderr, run.stdout);
    for s in SECRETS {
        assert!(
            !run.stdout.contains(s) && !run.stderr.contains(s),
            "secret {s} leaked:\n{}",
            run.stdout
        );
    }
    run.json()
}

/// The actions of a plan as `(id, class, revision, pigsty)`.
pub fn actions(plan: &serde_json::Value) -> Vec<(String, String, String, String)> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("id"), s("class"), s("revision"), s("pigsty"))
        })
        .collect()
}

/// Finds one action by id, or panics listing the plan's actions.
pub fn action<'a>(plan: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no action {id}; actions: {:#?}", actions(plan)))
}

pub fn ids(plan: &serde_json::Value) -> Vec<String> {
    actions(plan).into_iter().map(|a| a.0).collect()
}
pub mod etcd;
pub mod fleet;
pub mod ha_service;
pub mod nodes;
pub mod patroni;
pub mod pigsty;
pub mod pull_forge;
pub mod service;
pub mod signing;
