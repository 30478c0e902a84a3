//! Running a command on a host: over SSH (the openssh crate, one multiplexed master connection
//! per host, reused; strict host-key checking) or locally. In: a host's connection target, an
//! argv and optional stdin bytes. Out: exit status, stdout, stderr. Every word of the remote
//! command line is quoted by [`crate::render::shell::word`]; nothing reaches a shell unquoted.
//! With `[ha]`, the service gives the runner its leader term's fence ([`Runner::fence`]): every
//! command is refused once the lease is known lost, so a leader paused inside an action and
//! resumed after losing the lease starts nothing more on any host.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use openssh::Session;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, OnceCell};

use super::ExecError;
use crate::render::shell;
use ssh::{registry, session};

mod conversation;
mod ssh;

pub use conversation::Conversations;

/// Where and how to reach one host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The inventory key (for messages and results).
    pub host: String,
    /// The address to connect to (`ansible_host`, else the key).
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
}

/// SSH settings from the configuration.
#[derive(Debug, Clone, Default)]
pub struct SshOptions {
    pub user: Option<String>,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    /// Short directory for the control sockets (unix socket paths are limited to 108 bytes).
    pub control_dir: PathBuf,
    pub connect_timeout: Duration,
    /// Leave master connections up for a minute after the process ends, and reuse them in the
    /// next run (the CLI); a service keeps its own for its whole life instead.
    pub reuse: bool,
}

#[derive(Debug)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs commands on hosts. `Local` runs them on this machine (the local executor).
pub enum Runner {
    Ssh(Box<SshRunner>),
    Local,
}

/// Master connections by target, opened on first use.
pub struct SshRunner {
    options: SshOptions,
    sessions: Sessions,
    conversations: Conversations,
    fence: std::sync::Mutex<Option<crate::report::shared_state::Fence>>,
}

type Sessions = Mutex<HashMap<Target, Arc<OnceCell<Arc<Session>>>>>;

impl Runner {
    pub fn ssh(options: SshOptions) -> Runner {
        Runner::Ssh(Box::new(SshRunner {
            options,
            sessions: Mutex::new(HashMap::new()),
            conversations: Conversations::default(),
            fence: Default::default(),
        }))
    }

    /// `[ha]`: from now on every command first checks that `fence`'s lease still holds.
    pub fn fence(&self, fence: Option<crate::report::shared_state::Fence>) {
        if let Runner::Ssh(ssh) = self {
            *ssh.fence.lock().expect("fence slot") = fence;
        }
    }

    /// Refuses when the runner's fence says the lease is lost (no round trip).
    pub fn check_fence(&self) -> Result<(), ExecError> {
        let Runner::Ssh(ssh) = self else {
            return Ok(());
        };
        match &*ssh.fence.lock().expect("fence slot") {
            Some(f) => f
                .held_locally()
                .map_err(|e| ExecError::Refused(e.to_string())),
            None => Ok(()),
        }
    }

    /// Runs `argv` on `target`, feeding `stdin`, within `timeout`.
    pub async fn run(
        &self,
        target: &Target,
        argv: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, ExecError> {
        self.check_fence()?;
        let work = async {
            match self {
                Runner::Local => run_local(argv, stdin).await,
                Runner::Ssh(ssh) => {
                    let child = ssh.spawn(target, argv, stdin.is_some()).await?;
                    finish_remote(child, target, stdin).await
                }
            }
        };
        within(target, timeout, work).await
    }

    /// Starts `argv` on `target` with its stdin open and returns at once: what the command does
    /// depends on what [`Started::send`] feeds it later (a `psql` connects meanwhile).
    pub async fn start(
        &self,
        target: &Target,
        argv: &[&str],
        timeout: Duration,
    ) -> Result<Started, ExecError> {
        self.check_fence()?;
        let work = async {
            Ok(match self {
                Runner::Local => Started::Local(spawn_local(argv, true)?),
                Runner::Ssh(ssh) => Started::Remote(ssh.spawn(target, argv, true).await?),
            })
        };
        within(target, timeout, work).await
    }

    /// Asks the long-lived `argv` on `target` one line (see [`Conversations`]): only for
    /// read-only requests. `Ok(None)` when there is no conversation to be had (the local runner,
    /// or it broke): the caller runs a one-shot command instead.
    pub async fn ask(
        &self,
        target: &Target,
        argv: &[&str],
        request: &str,
        timeout: Duration,
    ) -> Result<Option<String>, ExecError> {
        match self {
            Runner::Ssh(ssh) => ssh.ask(target, argv, request, timeout).await,
            Runner::Local => Ok(None),
        }
    }

    /// Ends the conversations, then closes every master connection.
    pub async fn close(&self) {
        if let Runner::Ssh(ssh) = self {
            ssh.conversations.close().await;
            for (target, cell) in ssh.sessions.lock().await.drain() {
                let session = Arc::try_unwrap(cell).ok().and_then(OnceCell::into_inner);
                let Some(s) = session.and_then(|s| Arc::try_unwrap(s).ok()) else {
                    continue;
                };
                if ssh.options.reuse {
                    // The master outlives us (ControlPersist): the next run resumes it.
                    let (ctl, _) = s.detach();
                    let reg = registry(&ssh.options, &target);
                    let _ = std::fs::create_dir_all(reg.parent().expect("a parent"))
                        .and_then(|()| std::fs::write(&reg, ctl.to_string_lossy().as_bytes()));
                } else {
                    let _ = s.close().await;
                }
            }
        }
    }
}

impl SshRunner {
    /// Starts a remote command. When the master is gone (the host rebooted, sshd restarted, the
    /// network dropped) and the command could not start, it connects again, once, with the same
    /// strict host-key check.
    async fn spawn(
        &self,
        target: &Target,
        argv: &[&str],
        stdin: bool,
    ) -> Result<RemoteChild, ExecError> {
        self.spawn_with(target, argv, stdin, true).await
    }

    /// A command with its stdin and stdout piped and its stderr discarded (a conversation).
    async fn spawn_piped(&self, target: &Target, argv: &[&str]) -> Result<Started, ExecError> {
        Ok(Started::Remote(
            self.spawn_with(target, argv, true, false).await?,
        ))
    }

    async fn spawn_with(
        &self,
        target: &Target,
        argv: &[&str],
        stdin: bool,
        stderr: bool,
    ) -> Result<RemoteChild, ExecError> {
        let s = session(&self.options, &self.sessions, target).await?;
        match spawn_remote(s.clone(), target, argv, stdin, stderr).await {
            Err(e) if s.check().await.is_err() => {
                tracing::info!(host = %target.host, error = %e, "SSH master lost; reconnecting");
                self.sessions.lock().await.remove(target);
                let s = session(&self.options, &self.sessions, target).await?;
                spawn_remote(s, target, argv, stdin, stderr).await
            }
            r => r,
        }
    }
}

type RemoteChild = openssh::Child<Arc<Session>>;

/// `work`, or a timeout error for `target` once `timeout` has passed.
pub(super) async fn within<T>(
    target: &Target,
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T, ExecError>>,
) -> Result<T, ExecError> {
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ExecError::Timeout {
            host: target.host.clone(),
            seconds: timeout.as_secs(),
        })?
}

/// A command started on a host, waiting for its input.
pub enum Started {
    Remote(RemoteChild),
    Local(tokio::process::Child),
}

impl Started {
    /// Feeds `stdin` (then end of input) and waits for the command, within `timeout`.
    pub async fn send(
        self,
        target: &Target,
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Output, ExecError> {
        let work = async {
            match self {
                Started::Remote(child) => finish_remote(child, target, Some(stdin)).await,
                Started::Local(child) => finish_local(child, Some(stdin)).await,
            }
        };
        within(target, timeout, work).await
    }
}

async fn spawn_remote(
    session: Arc<Session>,
    target: &Target,
    argv: &[&str],
    stdin: bool,
    stderr: bool,
) -> Result<RemoteChild, ExecError> {
    let (program, args) = argv.split_first().expect("a command has a program");
    let mut cmd = session.arc_raw_command(shell::word(program));
    cmd.raw_args(args.iter().map(|a| shell::word(a)));
    cmd.stdin(if stdin {
        openssh::Stdio::piped()
    } else {
        openssh::Stdio::null()
    });
    cmd.stdout(openssh::Stdio::piped());
    cmd.stderr(if stderr {
        openssh::Stdio::piped()
    } else {
        openssh::Stdio::null()
    });
    cmd.spawn().await.map_err(|e| ExecError::Command {
        host: target.host.clone(),
        reason: e.to_string(),
    })
}

async fn finish_remote(
    mut child: RemoteChild,
    target: &Target,
    stdin: Option<&[u8]>,
) -> Result<Output, ExecError> {
    let fail = |reason: String| ExecError::Command {
        host: target.host.clone(),
        reason,
    };
    if let Some(mut w) = child.stdin().take() {
        w.write_all(stdin.unwrap_or_default())
            .await
            .map_err(|e| fail(format!("writing stdin: {e}")))?;
        w.shutdown().await.ok();
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(Output {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

async fn run_local(argv: &[&str], stdin: Option<&[u8]>) -> Result<Output, ExecError> {
    let child = spawn_local(argv, stdin.is_some())?;
    finish_local(child, stdin).await
}

fn spawn_local(argv: &[&str], stdin: bool) -> Result<tokio::process::Child, ExecError> {
    let (program, args) = argv.split_first().expect("a command has a program");
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.spawn().map_err(|e| ExecError::Command {
        host: "localhost".into(),
        reason: format!("{program}: {e}"),
    })
}

async fn finish_local(
    mut child: tokio::process::Child,
    stdin: Option<&[u8]>,
) -> Result<Output, ExecError> {
    let fail = |e: std::io::Error| ExecError::Command {
        host: "localhost".into(),
        reason: e.to_string(),
    };
    if let Some(mut w) = child.stdin.take() {
        w.write_all(stdin.unwrap_or_default()).await.map_err(fail)?;
        drop(w);
    }
    let out = child.wait_with_output().await.map_err(fail)?;
    Ok(Output {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
