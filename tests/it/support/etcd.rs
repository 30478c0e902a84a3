//! A real etcd cluster for tests: Debian's `/usr/bin/etcd`, one member per loopback address
//! (client port 2379, peer port 2380, each bound to its own address only), data in a temporary
//! directory, started together and waited for with `etcdctl endpoint health`. Dropping the
//! cluster kills its members (by their process ids) and removes the data.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Etcd {
    members: Vec<Child>,
    pub dir: tempfile::TempDir,
    pub ips: Vec<String>,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.kill();
            let _ = m.wait();
        }
    }
}

impl Etcd {
    /// Members `e1`, `e2`, ... on `ips`, healthy within 20 s (else the test fails).
    pub fn start(ips: &[&str]) -> Etcd {
        let dir = tempfile::Builder::new()
            .prefix("pge")
            .tempdir_in("/tmp")
            .unwrap();
        let cluster: Vec<String> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| format!("e{}=http://{ip}:2380", i + 1))
            .collect();
        let members = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                let name = format!("e{}", i + 1);
                let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
                Command::new("/usr/bin/etcd")
                    .args(["--name", &name, "--data-dir"])
                    .arg(dir.path().join(&name))
                    .args([
                        "--listen-client-urls",
                        &format!("http://{ip}:2379"),
                        "--advertise-client-urls",
                        &format!("http://{ip}:2379"),
                        "--listen-peer-urls",
                        &format!("http://{ip}:2380"),
                        "--initial-advertise-peer-urls",
                        &format!("http://{ip}:2380"),
                        "--initial-cluster",
                        &cluster.join(","),
                        "--initial-cluster-token",
                        "pgitops-ha-test",
                        "--initial-cluster-state",
                        "new",
                        "--election-timeout",
                        "1000",
                        "--heartbeat-interval",
                        "100",
                    ])
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .spawn()
                    .expect("/usr/bin/etcd (Debian's etcd-server)")
            })
            .collect();
        let etcd = Etcd {
            members,
            dir,
            ips: ips.iter().map(|s| s.to_string()).collect(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !etcd.ctl(&["endpoint", "health"]).0 {
            assert!(
                Instant::now() < deadline,
                "etcd not healthy within 20 s; logs in {}",
                etcd.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        etcd
    }

    /// The client endpoints, as a TOML array.
    pub fn endpoints_toml(&self) -> String {
        let eps: Vec<String> = self
            .ips
            .iter()
            .map(|ip| format!("\"http://{ip}:2379\""))
            .collect();
        format!("[{}]", eps.join(", "))
    }

    /// `etcdctl` (API v3) on all endpoints: (success, stdout).
    pub fn ctl(&self, args: &[&str]) -> (bool, String) {
        let eps: Vec<String> = self
            .ips
            .iter()
            .map(|ip| format!("http://{ip}:2379"))
            .collect();
        let out = Command::new("/usr/bin/etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", eps.join(",")))
            .args(["--dial-timeout=2s", "--command-timeout=3s"])
            .args(args)
            .output()
            .expect("/usr/bin/etcdctl (Debian's etcd-client)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    }

    /// The value of `key`, if it exists.
    pub fn get(&self, key: &str) -> Option<String> {
        let (ok, out) = self.ctl(&["get", key, "--print-value-only"]);
        let value = out.trim_end_matches('\n').to_string();
        (ok && !value.is_empty()).then_some(value)
    }
}
