//! One `ansible-playbook` run: its command line, environment and output.
//!
//! In: the [`PigstyConfig`], the typed playbook and the inventory file. Out: [`Run`]: whether it
//! exited 0, its output (stdout then stderr) without pgitops' own lines, and each host's busy
//! time. pgitops' SSH settings reach Ansible so that both legs connect alike: `--private-key`,
//! `-u`, and `--ssh-common-args` (`-F`, `UserKnownHostsFile`, strict host-key checking), with
//! `ANSIBLE_HOST_KEY_CHECKING=True`, which overrides the home's `ansible.cfg` (Pigsty's sets it
//! to False). A small callback plugin of pgitops' own (written to a temporary directory for the
//! run) sums each host's task durations and prints them at the end: the playbook runs all hosts
//! together, so its wall time is not any one host's time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::PigstyConfig;
use crate::plan::Playbook;
use crate::render::shell;

/// How pgitops itself connects; `None` fields leave Ansible's own settings.
#[derive(Debug, Clone, Default)]
pub struct AnsibleSsh {
    pub user: Option<String>,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
}

pub struct Run {
    pub success: bool,
    pub output: String,
    /// Milliseconds each host spent in its tasks.
    pub host_ms: BTreeMap<String, u64>,
}

const CALLBACK: &str = "pgitops_timing";
const TIMING_MARK: &str = "PGITOPS-HOST-TIME ";

/// pgitops' callback: per host, the sum of its tasks' durations, printed after the recap.
const CALLBACK_SOURCE: &str = r#"# Written by pgitops for one ansible-playbook run: each host's busy time.
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
    name: pgitops_timing
    type: aggregate
    short_description: per-host task time for pgitops
    description: Prints "PGITOPS-HOST-TIME <host> <ms>" for every host at the end of the run.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'pgitops_timing'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._started = {}
        self._busy = {}

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _done(self, result, *args, **kwargs):
        key = (result._host.get_name(), result._task._uuid)
        started = self._started.pop(key, None)
        if started is not None:
            self._busy[key[0]] = self._busy.get(key[0], 0.0) + time.monotonic() - started

    v2_runner_on_ok = _done
    v2_runner_on_failed = _done
    v2_runner_on_skipped = _done
    v2_runner_on_unreachable = _done

    def v2_playbook_on_stats(self, stats):
        for host in sorted(self._busy):
            self._display.display('PGITOPS-HOST-TIME %s %d' % (host, int(self._busy[host] * 1000)))
"#;

/// The arguments after the playbook file: `-i <inventory>`, the SSH settings, `-l` and the rest.
pub fn argv(ssh: &AnsibleSsh, book: &Playbook, inventory: &Path) -> Vec<String> {
    let mut argv = vec!["-i".to_string(), inventory.display().to_string()];
    if let Some(k) = &ssh.identity {
        argv.extend(["--private-key".into(), k.display().to_string()]);
    }
    if let Some(u) = &ssh.user {
        argv.extend(["-u".into(), u.clone()]);
    }
    argv.extend(["--ssh-common-args".into(), common_args(ssh)]);
    argv.extend(book.argv().into_iter().map(str::to_string));
    argv
}

/// ssh options, as one string Ansible splits like a shell would (each word quoted).
fn common_args(ssh: &AnsibleSsh) -> String {
    let mut words = vec![];
    if let Some(f) = &ssh.config_file {
        words.extend(["-F".to_string(), f.display().to_string()]);
    }
    if let Some(k) = &ssh.known_hosts {
        words.extend(["-o".into(), format!("UserKnownHostsFile={}", k.display())]);
    }
    words.extend(["-o".into(), "StrictHostKeyChecking=yes".into()]);
    shell::line(&words)
}

/// Runs the playbook in the Pigsty home within the configured timeout.
pub async fn run(cfg: &PigstyConfig, book: &Playbook, inventory: &Path) -> Result<Run, String> {
    let plugins = tempfile::Builder::new()
        .prefix("pgitops-cb")
        .tempdir()
        .map_err(|e| format!("a directory for pgitops' callback plugin: {e}"))?;
    std::fs::write(
        plugins.path().join(format!("{CALLBACK}.py")),
        CALLBACK_SOURCE,
    )
    .map_err(|e| format!("writing pgitops' callback plugin: {e}"))?;
    let joined = |var: &str, ours: &str, sep: &str| match std::env::var(var) {
        Ok(theirs) if !theirs.is_empty() => format!("{ours}{sep}{theirs}"),
        _ => ours.to_string(),
    };
    let file = book.file();
    let args = argv(&cfg.ssh, book, inventory);
    let mut cmd = tokio::process::Command::new(&cfg.ansible_playbook);
    cmd.arg(&file)
        .args(&args)
        .current_dir(&cfg.home)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("ANSIBLE_HOST_KEY_CHECKING", "True")
        .env(
            "ANSIBLE_CALLBACK_PLUGINS",
            joined(
                "ANSIBLE_CALLBACK_PLUGINS",
                &plugins.path().display().to_string(),
                ":",
            ),
        )
        .env(
            "ANSIBLE_CALLBACKS_ENABLED",
            joined("ANSIBLE_CALLBACKS_ENABLED", CALLBACK, ","),
        )
        .kill_on_drop(true);
    tracing::info!(playbook = %file, args = %shell::line(&args), "running ansible-playbook");
    let out = tokio::time::timeout(cfg.timeout, cmd.output())
        .await
        .map_err(|_| {
            format!(
                "ansible-playbook {file} did not finish within {} s",
                cfg.timeout.as_secs()
            )
        })?
        .map_err(|e| format!("cannot run {}: {e}", cfg.ansible_playbook))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let (output, host_ms) = split_timing(&text);
    Ok(Run {
        success: out.status.success(),
        output,
        host_ms,
    })
}

/// The output without the callback's lines, and the times those lines give.
fn split_timing(text: &str) -> (String, BTreeMap<String, u64>) {
    let mut times = BTreeMap::new();
    let mut rest = String::with_capacity(text.len());
    for line in text.lines() {
        let timing = line.strip_prefix(TIMING_MARK).and_then(|t| {
            let (host, ms) = t.rsplit_once(' ')?;
            Some((host.to_string(), ms.parse::<u64>().ok()?))
        });
        match timing {
            Some((host, ms)) => {
                times.insert(host, ms);
            }
            None => {
                rest.push_str(line);
                rest.push('\n');
            }
        }
    }
    (rest, times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_settings_reach_ansible_quoted() {
        let ssh = AnsibleSsh {
            user: Some("root".into()),
            identity: Some("/k/id key".into()),
            known_hosts: Some("/k/known hosts".into()),
            config_file: Some("/k/ssh_config".into()),
        };
        let book = Playbook::new("pgsql-user", "pg-test", &["-e", "username=app"]);
        let argv = argv(&ssh, &book, Path::new("/inv/pigsty.yml"));
        assert_eq!(
            argv,
            [
                "-i",
                "/inv/pigsty.yml",
                "--private-key",
                "/k/id key",
                "-u",
                "root",
                "--ssh-common-args",
                "-F /k/ssh_config -o 'UserKnownHostsFile=/k/known hosts' -o StrictHostKeyChecking=yes",
                "-l",
                "pg-test",
                "-e",
                "username=app"
            ]
        );
        let none = super::argv(&AnsibleSsh::default(), &book, Path::new("/i"));
        assert_eq!(
            none[2..4],
            ["--ssh-common-args", "-o StrictHostKeyChecking=yes"]
        );
    }

    #[test]
    fn timing_lines_are_read_and_removed() {
        let (rest, times) = split_timing(
            "PLAY RECAP ***\n127.0.0.1 : ok=1\nPGITOPS-HOST-TIME 127.0.0.1 1234\nPGITOPS-HOST-TIME 127.0.0.2 7\n",
        );
        assert_eq!(rest, "PLAY RECAP ***\n127.0.0.1 : ok=1\n");
        assert_eq!(times["127.0.0.1"], 1234);
        assert_eq!(times["127.0.0.2"], 7);
    }
}
