//! A real etcd cluster for tests: Debian's `/usr/bin/etcd`, one member per loopback address
//! (client port 2379, peer port 2380, each bound to its own address only), data in a temporary
//! directory, started together and waited for with `etcdctl endpoint health`. Dropping the
//! cluster kills its members (by their process ids) and removes the data. [`Etcd::start_secured`]
//! serves clients over TLS only (a CA, server and client certificates made with `openssl` in the
//! data directory; client certificates required) with authentication on (user `root`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Etcd {
    members: Vec<Child>,
    pub dir: tempfile::TempDir,
    pub ips: Vec<String>,
    /// With TLS: the root password (authentication on once set).
    root_password: Option<String>,
    secured: bool,
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
        Self::start_with(ips, None)
    }

    /// [`Etcd::start`] with clients on TLS only (client certificates required) and
    /// authentication on: user `root` with `root_password`.
    pub fn start_secured(ips: &[&str], root_password: &str) -> Etcd {
        let mut etcd = Self::start_with(ips, Some(root_password));
        for args in [
            vec!["role", "add", "root"],
            vec![
                "user",
                "add",
                "root",
                &format!("--new-user-password={root_password}"),
            ],
            vec!["user", "grant-role", "root", "root"],
            vec!["auth", "enable"],
        ] {
            let (ok, out) = etcd.ctl(&args);
            assert!(
                ok || args[1] == "add" && args[0] == "role",
                "etcdctl {args:?}: {out}"
            );
        }
        etcd.root_password = Some(root_password.to_string());
        assert!(etcd.ctl(&["endpoint", "health"]).0, "healthy with auth on");
        etcd
    }

    /// A file in the data directory (the TLS files: `ca.crt`, `client.crt`, `client.key`).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A CA, a server certificate for `ips` and a client certificate (`CN=root`), P-256 keys.
    fn certificates(dir: &std::path::Path, ips: &[&str]) {
        let sh = |script: &str| {
            let out = Command::new("sh")
                .args(["-ec", script])
                .current_dir(dir)
                .output()
                .expect("sh");
            assert!(
                out.status.success(),
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        sh(&format!(
            "{key} -x509 -days 2 -subj /CN=pgitops-test-ca -keyout ca.key -out ca.crt"
        ));
        let sans: Vec<String> = ips.iter().map(|ip| format!("IP:{ip}")).collect();
        for (name, cn, ext) in [
            (
                "server",
                "etcd",
                format!(
                    "subjectAltName={}\nextendedKeyUsage=serverAuth,clientAuth",
                    sans.join(",")
                ),
            ),
            ("client", "root", "extendedKeyUsage=clientAuth".to_string()),
        ] {
            std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
            sh(&format!(
                "{key} -subj /CN={cn} -keyout {name}.key -out {name}.csr"
            ));
            sh(&format!("openssl x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile {name}.ext -out {name}.crt"));
        }
    }

    fn start_with(ips: &[&str], secured: Option<&str>) -> Etcd {
        let dir = tempfile::Builder::new()
            .prefix("pge")
            .tempdir_in("/tmp")
            .unwrap();
        if secured.is_some() {
            Self::certificates(dir.path(), ips);
        }
        let scheme = if secured.is_some() { "https" } else { "http" };
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
                let mut cmd = Command::new("/usr/bin/etcd");
                if secured.is_some() {
                    let f = |n: &str| dir.path().join(n);
                    cmd.arg("--cert-file")
                        .arg(f("server.crt"))
                        .arg("--key-file")
                        .arg(f("server.key"))
                        .arg("--trusted-ca-file")
                        .arg(f("ca.crt"))
                        .arg("--client-cert-auth");
                }
                cmd.args(["--name", &name, "--data-dir"])
                    .arg(dir.path().join(&name))
                    .args([
                        "--listen-client-urls",
                        &format!("{scheme}://{ip}:2379"),
                        "--advertise-client-urls",
                        &format!("{scheme}://{ip}:2379"),
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
            root_password: None,
            secured: secured.is_some(),
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

    fn endpoints(&self) -> Vec<String> {
        let scheme = if self.secured { "https" } else { "http" };
        self.ips
            .iter()
            .map(|ip| format!("{scheme}://{ip}:2379"))
            .collect()
    }

    /// The client endpoints, as a TOML array.
    pub fn endpoints_toml(&self) -> String {
        let eps: Vec<String> = self.endpoints().iter().map(|e| format!("{e:?}")).collect();
        format!("[{}]", eps.join(", "))
    }

    /// `etcdctl` (API v3) on all endpoints: (success, stdout).
    pub fn ctl(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new("/usr/bin/etcdctl");
        if self.secured {
            cmd.arg(format!("--cacert={}", self.file("ca.crt").display()))
                .arg(format!("--cert={}", self.file("client.crt").display()))
                .arg(format!("--key={}", self.file("client.key").display()));
        }
        if let Some(pw) = &self.root_password {
            cmd.arg(format!("--user=root:{pw}"));
        }
        let out = cmd
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints().join(",")))
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
