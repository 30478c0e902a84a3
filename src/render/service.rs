//! Supervised services: a daemon described once ([`ServiceSpec`]), rendered as a runit `run`
//! script ([`runit_run`], plus its `log/run`) or a systemd unit ([`systemd_unit`]).
//!
//! In: a typed spec (name, user, working directory, argv, limits, restart policy). Out: file
//! text. Pure. Every value is checked first ([`ServiceSpec::check`]: names and users are short
//! identifiers, paths absolute, argv words of a closed character set without spaces, quotes,
//! `$` or `%`), and the runit script quotes each word with [`super::shell::word`]: the scripts
//! are fixed text with values only as validated, quoted arguments.

use std::fmt::Write;

use super::shell;

/// What the supervisor does when the daemon exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// systemd `Restart=on-failure`; runit restarts whatever the exit (it has no other mode).
    OnFailure,
    /// systemd `Restart=no` (Pigsty's patroni unit). runit: installed with a `down` file, so
    /// nothing starts it before pgitops does; the first start removes the file, and from then
    /// on runsv restarts the daemon after a crash and when runsvdir starts (the node's boot).
    No,
}

/// One daemon under a supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Service name: the runit directory and the systemd unit (`<name>.service`).
    pub name: String,
    pub description: String,
    /// User and group the daemon runs as.
    pub user: String,
    pub group: String,
    pub workdir: String,
    /// The daemon in the foreground; `argv[0]` an absolute path.
    pub argv: Vec<String>,
    /// `LimitNOFILE` / `chpst -o`.
    pub nofile: u32,
    pub restart: Restart,
    /// systemd `Type=notify` (the daemon tells systemd it is ready) rather than `simple`.
    pub notify: bool,
    pub oom_score_adjust: Option<i32>,
    /// Stop signals go to the main process only (systemd `KillMode=process`; runit's `sv down`
    /// signals only the `run` process anyway): Patroni stops its PostgreSQL itself.
    pub kill_main_only: bool,
    /// A reload is SIGHUP to the main process (systemd `ExecReload`; runit `sv hup`).
    pub reload_hup: bool,
    /// systemd `RuntimeDirectory` (kept across restarts, mode 0755), e.g. `postgresql`.
    pub runtime_dir: Option<String>,
    /// systemd start and stop timeouts, in seconds.
    pub timeouts: (u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("service {name}: `{value}` is not a valid {what}")]
    Invalid {
        name: String,
        what: &'static str,
        value: String,
    },
}

fn ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
}

/// An absolute path of safe characters, without `..`.
pub fn safe_path(s: &str) -> bool {
    s.starts_with('/')
        && !s.split('/').any(|p| p == "..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b))
}

/// An argument word: no whitespace, quotes, `$`, `%`, `\` or control characters.
fn safe_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,@+".contains(&b))
}

impl ServiceSpec {
    pub fn check(&self) -> Result<(), ServiceError> {
        let bad = |what, value: &str| ServiceError::Invalid {
            name: self.name.clone(),
            what,
            value: value.to_string(),
        };
        if !ident(&self.name) {
            return Err(bad("service name", &self.name));
        }
        for u in [&self.user, &self.group] {
            if !ident(u) {
                return Err(bad("user or group", u));
            }
        }
        if !safe_path(&self.workdir) {
            return Err(bad("working directory", &self.workdir));
        }
        match self.argv.first() {
            Some(p) if safe_path(p) => {}
            _ => return Err(bad("program path", &self.argv.join(" "))),
        }
        if let Some(w) = self.argv.iter().find(|w| !safe_word(w)) {
            return Err(bad("argument", w));
        }
        let desc_ok = self
            .description
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" -_.".contains(&b));
        if !desc_ok {
            return Err(bad("description", &self.description));
        }
        if let Some(dir) = self.runtime_dir.as_deref().filter(|d| !ident(d)) {
            return Err(bad("runtime directory", dir));
        }
        Ok(())
    }
}

/// The runit `run` script: runs the daemon as its user with its file limit, in its working
/// directory, stderr into the log service.
pub fn runit_run(s: &ServiceSpec) -> Result<String, ServiceError> {
    s.check()?;
    let owner = format!("{}:{}", s.user, s.group);
    let mut text = String::from("#!/bin/sh\n# written by pgitops: ");
    text += &s.description;
    text += "\nexec 2>&1\ncd ";
    text += &shell::word(&s.workdir);
    text += " || exit 1\nexec ";
    let nofile = s.nofile.to_string();
    let mut argv = vec!["chpst", "-u", &owner, "-o", &nofile];
    argv.extend(s.argv.iter().map(String::as_str));
    text += &shell::line(&argv);
    text.push('\n');
    Ok(text)
}

/// The runit `log/run` script: svlogd into `./main` beside it, timestamped.
pub const RUNIT_LOG_RUN: &str = "#!/bin/sh\nmkdir -p main\nexec svlogd -tt main\n";

/// The systemd unit, with the semantics of Pigsty's templates (`roles/etcd/templates/etcd.svc`
/// for etcd). UNTESTED on a systemd host: this machine has no systemd as PID 1.
pub fn systemd_unit(s: &ServiceSpec) -> Result<String, ServiceError> {
    s.check()?;
    let mut t = String::new();
    let _ = writeln!(t, "[Unit]\nDescription={}", s.description);
    t += "After=network.target\nAfter=network-online.target\nWants=network-online.target\n\n";
    let _ = writeln!(
        t,
        "[Service]\nType={}",
        if s.notify { "notify" } else { "simple" }
    );
    let _ = writeln!(t, "WorkingDirectory={}", s.workdir);
    let _ = writeln!(t, "User={}", s.user);
    if s.group != s.user {
        let _ = writeln!(t, "Group={}", s.group);
    }
    let _ = writeln!(t, "ExecStart={}", s.argv.join(" "));
    match s.restart {
        Restart::OnFailure => t += "Restart=on-failure\nRestartSec=5\n",
        Restart::No => t += "Restart=no\n",
    }
    if let Some(dir) = &s.runtime_dir {
        let _ = writeln!(t, "RuntimeDirectory={dir}");
        t += "RuntimeDirectoryMode=0755\nRuntimeDirectoryPreserve=yes\n";
    }
    if s.reload_hup {
        t += "ExecReload=/bin/kill -s HUP $MAINPID\n";
    }
    if s.kill_main_only {
        t += "KillMode=process\n";
    }
    let _ = writeln!(
        t,
        "TimeoutStartSec={}\nTimeoutStopSec={}",
        s.timeouts.0, s.timeouts.1
    );
    let _ = writeln!(t, "LimitNOFILE={}", s.nofile);
    if let Some(adj) = s.oom_score_adjust {
        let _ = writeln!(t, "OOMScoreAdjust={adj}");
    }
    t += "\n[Install]\nWantedBy=multi-user.target\n";
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceSpec {
        ServiceSpec {
            name: "etcd".into(),
            description: "Etcd Server".into(),
            user: "etcd".into(),
            group: "etcd".into(),
            workdir: "/data/etcd".into(),
            argv: vec![
                "/usr/bin/etcd".into(),
                "--config-file".into(),
                "/etc/etcd/etcd.conf".into(),
            ],
            nofile: 65536,
            restart: Restart::OnFailure,
            notify: true,
            oom_score_adjust: Some(-1000),
            kill_main_only: false,
            reload_hup: false,
            runtime_dir: None,
            timeouts: (60, 60),
        }
    }

    #[test]
    fn runit_script_is_fixed_text_with_quoted_words() {
        assert_eq!(
            runit_run(&spec()).unwrap(),
            "#!/bin/sh\n# written by pgitops: Etcd Server\nexec 2>&1\ncd /data/etcd || exit 1\n\
             exec chpst -u etcd:etcd -o 65536 /usr/bin/etcd --config-file /etc/etcd/etcd.conf\n"
        );
    }

    #[test]
    fn systemd_unit_has_pigsty_semantics() {
        // Pigsty's roles/etcd/templates/etcd.svc, rendered for etcd_data=/data/etcd.
        let pigsty = "[Unit]\nDescription=Etcd Server\nAfter=network.target\n\
            After=network-online.target\nWants=network-online.target\n\n[Service]\nType=notify\n\
            WorkingDirectory=/data/etcd\nUser=etcd\nExecStart=/usr/bin/etcd --config-file /etc/etcd/etcd.conf\n\
            Restart=on-failure\nRestartSec=5\nTimeoutStartSec=60\nTimeoutStopSec=60\n\
            LimitNOFILE=65536\nOOMScoreAdjust=-1000\n\n[Install]\nWantedBy=multi-user.target\n";
        assert_eq!(systemd_unit(&spec()).unwrap(), pigsty);
    }

    #[test]
    fn hostile_values_are_refused() {
        type Edit = Box<dyn Fn(&mut ServiceSpec)>;
        let cases: Vec<Edit> = vec![
            Box::new(|s| s.workdir = "/data/etcd; rm -rf /".into()),
            Box::new(|s| s.workdir = "relative".into()),
            Box::new(|s| s.workdir = "/data/../etc".into()),
            Box::new(|s| s.user = "root\nExecStartPre=/bin/sh".into()),
            Box::new(|s| s.argv.push("--name=$(id)".into())),
            Box::new(|s| s.argv.push("a b".into())),
            Box::new(|s| s.argv.push("%h".into())),
            Box::new(|s| s.argv[0] = "etcd".into()),
            Box::new(|s| s.name = "../x".into()),
            Box::new(|s| s.description = "x\n[Service]".into()),
            Box::new(|s| s.runtime_dir = Some("../run".into())),
        ];
        for edit in cases {
            let mut s = spec();
            edit(&mut s);
            assert!(runit_run(&s).is_err(), "{s:?}");
            assert!(systemd_unit(&s).is_err(), "{s:?}");
        }
    }
}
