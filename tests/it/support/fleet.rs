//! A fleet for apply tests: real nodes (sshd + PostgreSQL, see `nodes`), a Git repository with
//! an inventory of one PGSQL cluster on them, and `pgitops apply` run against it over SSH.

use serde_yaml_ng::Value;

use super::nodes::{Cluster, Node};
use super::{pgitops_via, to_yaml, yaml, Repo, Run};

pub struct Fleet {
    pub nodes: Cluster,
    pub repo: Repo,
    pub ips: Vec<String>,
    ctl: tempfile::TempDir,
}

impl Fleet {
    /// Nodes at `ips` (the first a primary, the others streaming replicas).
    pub fn new(ips: &[&str]) -> Fleet {
        Fleet::start(ips, true)
    }

    /// Independent primaries (for one-node clusters).
    pub fn independent(ips: &[&str]) -> Fleet {
        Fleet::start(ips, false)
    }

    /// Empty HA nodes at `ips` (see `nodes::ha`): sshd, a private runsvdir, no PostgreSQL.
    pub fn ha(ips: &[&str]) -> Fleet {
        Fleet::on(Cluster::start_ha(ips), ips)
    }

    fn start(ips: &[&str], replicas: bool) -> Fleet {
        Fleet::on(Cluster::start(ips, replicas), ips)
    }

    fn on(nodes: Cluster, ips: &[&str]) -> Fleet {
        let ctl = tempfile::Builder::new()
            .prefix("pgc")
            .tempdir_in("/tmp")
            .unwrap();
        Fleet {
            nodes,
            repo: Repo::new(),
            ips: ips.iter().map(|s| s.to_string()).collect(),
            ctl,
        }
    }

    /// An inventory with cluster `pg-t` on the fleet's nodes. Test clients reach the nodes over
    /// TCP from 127.0.0.1 (the kernel's source address between loopback aliases). The default HBA
    /// list is replaced by one without `ssl` rules: the test servers run without certificates.
    pub fn inventory(&self) -> Value {
        let mut hosts = serde_yaml_ng::Mapping::new();
        for (i, ip) in self.ips.iter().enumerate() {
            let role = if i == 0 { "primary" } else { "replica" };
            hosts.insert(
                ip.as_str().into(),
                yaml(&format!("{{ pg_seq: {}, pg_role: {role} }}", i + 1)),
            );
        }
        let mut v = yaml(
            "all:\n  children:\n    pg-t:\n      vars:\n        pg_cluster: pg-t\n        pg_version: 15\n        pg_users: [ { name: dbrole_readonly, login: false }, { name: dbrole_admin, login: false } ]\n        pg_default_hba_rules:\n          - { user: '${dbsu}', db: all, addr: local, auth: ident, title: 'dbsu local', order: 100 }\n          - { user: '${dbsu}', db: replication, addr: local, auth: ident, title: 'dbsu replication', order: 150 }\n          - { user: '+dbrole_readonly', db: all, addr: intra, auth: pwd, title: 'members', order: 600 }\n        pg_hba_rules:\n          - { user: postgres, db: all, addr: 127.0.0.0/8, auth: trust, title: 'test harness', order: 10 }\n          - { user: postgres, db: replication, addr: 127.0.0.0/8, auth: trust, title: 'test replication', order: 11 }\n          - { user: all, db: all, addr: intra, auth: pwd, title: 'test clients' }\n  vars:\n    admin_ip: 127.0.0.1\n    pg_bin_dir: /usr/lib/postgresql/15/bin\n    node_firewall_intranet: [ 127.0.0.0/8 ]\n",
        );
        v["all"]["children"]["pg-t"]["hosts"] = Value::Mapping(hosts);
        v
    }

    pub fn commit(&self, v: &Value, message: &str) -> String {
        self.repo.commit_inventory(&to_yaml(v), message)
    }

    /// `pgitops apply` over SSH with the fleet's keys; `args` go after `apply`.
    pub fn apply(&self, args: &[&str]) -> Run {
        self.apply_via(&[], args)
    }

    /// Another verb that reaches the nodes as `apply` does (`drift`); `args` go after it.
    pub fn verb(&self, verb: &str, args: &[&str]) -> Run {
        let mut base = self.nodes.apply_args(self.ctl.path());
        base[0] = verb.to_string();
        let mut all: Vec<&str> = base.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        pgitops_via(&[], self.repo.path(), &all)
    }

    /// [`Fleet::apply`] run through `prefix` (see [`pgitops_via`]).
    pub fn apply_via(&self, prefix: &[&str], args: &[&str]) -> Run {
        let base = self.nodes.apply_args(self.ctl.path());
        let mut all: Vec<&str> = base.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        pgitops_via(prefix, self.repo.path(), &all)
    }

    pub fn primary(&self) -> &super::nodes::Node {
        self.nodes.node(&self.ips[0])
    }

    /// The runs recorded in the git note of `commit`.
    pub fn note(&self, commit: &str) -> serde_json::Value {
        let repo = git2::Repository::open(self.repo.path()).unwrap();
        let oid = git2::Oid::from_str(commit).unwrap();
        let note = repo
            .find_note(Some("refs/notes/pgitops"), oid)
            .expect("a note on the commit");
        serde_json::from_str(note.message().unwrap()).unwrap()
    }
}

/// Appends `entry` to the list at `v[group vars][key]`.
pub fn push(v: &mut Value, key: &str, entry: &str) {
    let vars = &mut v["all"]["children"]["pg-t"]["vars"];
    if vars.get(key).is_none() {
        vars[key] = Value::Sequence(vec![]);
    }
    vars[key].as_sequence_mut().unwrap().push(yaml(entry));
}

/// Polls `sql` on `node` until it returns `want` (replication is asynchronous).
pub fn eventually(node: &super::nodes::Node, sql: &str, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = node.sql("postgres", sql);
        if got == want || std::time::Instant::now() > deadline {
            assert_eq!(got, want, "{sql}");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The `pg_users` entry named `name`.
pub fn user<'a>(v: &'a mut serde_yaml_ng::Value, name: &str) -> &'a mut serde_yaml_ng::Value {
    let users = v["all"]["children"]["pg-t"]["vars"]["pg_users"]
        .as_sequence_mut()
        .unwrap();
    users.iter_mut().find(|u| u["name"] == name).unwrap()
}

pub fn ok(run: &Run) {
    assert_eq!(run.code, 0, "apply failed:\n{}\n{}", run.stdout, run.stderr);
}

/// Whether the role `name` exists on `node`.
pub fn has_role(node: &Node, name: &str) -> bool {
    node.sql(
        "postgres",
        &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{name}'"),
    ) == "1"
}

/// Whether the database `name` exists on `node`.
pub fn has_database(node: &Node, name: &str) -> bool {
    node.sql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    ) == "1"
}
