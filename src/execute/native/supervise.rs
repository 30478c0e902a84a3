//! Supervision on a node: which supervisor runs the daemons there, and installing, starting,
//! stopping, querying and removing one service under it.
//!
//! In: a host, the [`Supervision`] setting (`executor.supervisor` / `--supervisor`, and
//! `executor.runit_dir` / `--runit-dir`) and a [`ServiceSpec`]. Out: a [`Supervisor`] observed
//! per node, and command results. `auto` (the default) picks systemd when PID 1 is systemd, else
//! runit when a `runsvdir` process supervises the runit directory (default `/etc/service`;
//! compared by device and inode through `/proc/<pid>/root`, so a runsvdir in another mount
//! namespace or started with another path to the same directory is recognised); otherwise the
//! host is refused with what to do. Every command is fixed shell text; paths and names travel as
//! arguments, file text on stdin. The systemd leg is untested here (no systemd as PID 1).

use serde::Deserialize;

use super::root_sh::sh;
use super::Ctx;
use crate::execute::{ExecError, Target};
use crate::render::service::{runit_run, systemd_unit, Restart, ServiceSpec, RUNIT_LOG_RUN};

pub const DEFAULT_RUNIT_DIR: &str = "/etc/service";

/// Which supervisor pgitops uses (`executor.supervisor`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SupervisorChoice {
    /// Observed per node: systemd if PID 1 is systemd, else runit if runsvdir runs.
    #[default]
    Auto,
    Systemd,
    Runit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervision {
    pub choice: SupervisorChoice,
    /// The directory runsvdir supervises, where pgitops puts its runit services.
    pub runit_dir: String,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            choice: SupervisorChoice::Auto,
            runit_dir: DEFAULT_RUNIT_DIR.into(),
        }
    }
}

/// The supervisor of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supervisor {
    Systemd,
    Runit { dir: String },
}

/// A service's state under its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Absent,
    Down,
    Running { pid: u32 },
}

/// What [`install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    Unchanged,
    /// The definition changed (a running daemon still runs the old one until restarted).
    Changed,
    Created,
}

const DETECT: &str = r#"d=$1
if [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then echo systemd; exit 0; fi
want=$(stat -Lc %d:%i "$d" 2>/dev/null) || { echo none; exit 0; }
for p in $(pgrep -x runsvdir); do
  a=$(tr '\0' '\n' < /proc/$p/cmdline | sed 1d | grep -v '^-' | head -n 1)
  case $a in /*) f=/proc/$p/root$a ;; *) f=/proc/$p/cwd/$a ;; esac
  [ "$(stat -Lc %d:%i "$f" 2>/dev/null)" = "$want" ] && { echo runit; exit 0; }
done
echo none"#;

/// `$1` dir, `$2` name, `$3` log/run text, `$4` `down` or `up`; run text on stdin. A new service
/// is built as a hidden directory (runsvdir ignores those) and moved in whole.
const RUNIT_INSTALL: &str = r#"set -e
d=$1/$2; new=$1/.$2.pgitops-new
umask 022
tmp=$(mktemp)
cat > "$tmp"
if [ -f "$d/run" ] && cmp -s "$tmp" "$d/run"; then rm -f "$tmp"; echo unchanged; exit 0; fi
if [ -d "$d" ]; then
  install -m 0755 "$tmp" "$d/run.pgitops-new"; mv -f "$d/run.pgitops-new" "$d/run"; rm -f "$tmp"
  echo changed; exit 0
fi
rm -rf "$new"; mkdir -p "$new/log"
install -m 0755 "$tmp" "$new/run"; rm -f "$tmp"
printf '%s' "$3" > "$new/log/run"; chmod 0755 "$new/log/run"
[ "$4" = down ] && : > "$new/down"
mv "$new" "$d"
echo created"#;

/// Waits (up to 12 s: runsvdir scans every 5 s) until runsv supervises `$1`, then `sv up`, and
/// removes the `down` file a service is installed with (see [`Restart::No`]).
const RUNIT_START: &str = r#"i=0
while ! sv status "$1" >/dev/null 2>&1; do
  i=$((i+1)); [ $i -gt 120 ] && { echo "runsvdir did not pick up $1 within 12 s" >&2; exit 1; }
  sleep 0.1
done
sv up "$1" >/dev/null
rm -f "$1/down""#;

const RUNIT_STOP: &str = r#"[ -d "$1" ] || exit 0
sv status "$1" >/dev/null 2>&1 || exit 0
sv -w 30 down "$1" >/dev/null"#;

const RUNIT_REMOVE: &str = r#"[ -d "$1" ] || exit 0
if sv status "$1" >/dev/null 2>&1; then
  sv -w 30 down "$1" >/dev/null || true
  sv exit "$1" >/dev/null 2>&1 || true
  sv exit "$1/log" >/dev/null 2>&1 || true
fi
rm -rf "$1""#;

/// `$1` unit path, `$2` unit name; unit text on stdin.
const SYSTEMD_INSTALL: &str = r#"set -e
f=$1
cat > "$f.pgitops-new"
if [ -f "$f" ] && cmp -s "$f.pgitops-new" "$f"; then rm -f "$f.pgitops-new"; echo unchanged; exit 0; fi
old=changed; [ -f "$f" ] || old=created
chmod 0644 "$f.pgitops-new"; mv -f "$f.pgitops-new" "$f"
systemctl daemon-reload
systemctl enable "$2" >/dev/null 2>&1
echo $old"#;

/// Observes the supervisor of `target`'s node (or takes the configured one).
pub async fn detect(ctx: &Ctx<'_>, target: &Target) -> Result<Supervisor, ExecError> {
    let s = &ctx.cfg.supervision;
    let runit = || Supervisor::Runit {
        dir: s.runit_dir.clone(),
    };
    match s.choice {
        SupervisorChoice::Systemd => return Ok(Supervisor::Systemd),
        SupervisorChoice::Runit => return Ok(runit()),
        SupervisorChoice::Auto => {}
    }
    let seen = sh(
        ctx,
        target,
        "detecting the supervisor",
        DETECT,
        &[&s.runit_dir],
        None,
    )
    .await?;
    match seen.as_str() {
        "systemd" => Ok(Supervisor::Systemd),
        "runit" => Ok(runit()),
        _ => Err(ExecError::Refused(format!(
            "{}: no supervisor: PID 1 is not systemd and no runsvdir supervises {}; start `runsvdir -P {}` (or set executor.supervisor / --supervisor, executor.runit_dir / --runit-dir)",
            target.host, s.runit_dir, s.runit_dir
        ))),
    }
}

fn runit_path(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

fn unit_path(name: &str) -> String {
    format!("/etc/systemd/system/{name}.service")
}

/// Installs (or updates) `spec` under `sup`; starts nothing (runit starts a new service that has
/// no `down` file as soon as runsvdir picks it up, as systemd would at boot).
pub async fn install(
    ctx: &Ctx<'_>,
    target: &Target,
    sup: &Supervisor,
    spec: &ServiceSpec,
) -> Result<Installed, ExecError> {
    let refused =
        |e: &dyn ToString| ExecError::Refused(format!("{}: {}", target.host, e.to_string()));
    let what = format!("installing service {}", spec.name);
    let out = match sup {
        Supervisor::Runit { dir } => {
            let run = runit_run(spec).map_err(|e| refused(&e))?;
            let down = if spec.restart == Restart::No {
                "down"
            } else {
                "up"
            };
            let args = [dir.as_str(), &spec.name, RUNIT_LOG_RUN, down];
            sh(
                ctx,
                target,
                &what,
                RUNIT_INSTALL,
                &args,
                Some(run.as_bytes()),
            )
            .await?
        }
        Supervisor::Systemd => {
            let unit = systemd_unit(spec).map_err(|e| refused(&e))?;
            let args = [unit_path(&spec.name), format!("{}.service", spec.name)];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            sh(
                ctx,
                target,
                &what,
                SYSTEMD_INSTALL,
                &args,
                Some(unit.as_bytes()),
            )
            .await?
        }
    };
    Ok(match out.as_str() {
        "unchanged" => Installed::Unchanged,
        "created" => Installed::Created,
        _ => Installed::Changed,
    })
}

pub async fn start(
    ctx: &Ctx<'_>,
    target: &Target,
    sup: &Supervisor,
    name: &str,
) -> Result<(), ExecError> {
    let systemd = "systemctl start \"$1\"";
    control(ctx, target, sup, name, "starting", RUNIT_START, systemd).await
}

/// Stops the service and waits until it is down; a missing service is already stopped.
pub async fn stop(
    ctx: &Ctx<'_>,
    target: &Target,
    sup: &Supervisor,
    name: &str,
) -> Result<(), ExecError> {
    let systemd = "systemctl stop \"$1\" 2>/dev/null || true";
    control(ctx, target, sup, name, "stopping", RUNIT_STOP, systemd).await
}

/// Runs the fixed `runit` or `systemd` script for `name` (its one argument: the runit service
/// directory, or the systemd unit).
async fn control(
    ctx: &Ctx<'_>,
    target: &Target,
    sup: &Supervisor,
    name: &str,
    doing: &str,
    runit: &str,
    systemd: &str,
) -> Result<(), ExecError> {
    let what = format!("{doing} service {name}");
    let (script, arg) = match sup {
        Supervisor::Runit { dir } => (runit, runit_path(dir, name)),
        Supervisor::Systemd => (systemd, format!("{name}.service")),
    };
    sh(ctx, target, &what, script, &[&arg], None).await?;
    Ok(())
}

/// From now on, do not restart the daemon when it exits (runit `sv once`; systemd: nothing,
/// its `Restart=on-failure` waits `RestartSec` and the caller stops it right after).
pub async fn once(
    ctx: &Ctx<'_>,
    target: &Target,
    sup: &Supervisor,
    name: &str,
) -> Result<(), ExecError> {
    if let Supervisor::Runit { dir } = sup {
        let script = "[ -d \"$1\" ] || exit 0; sv status \"$1\" >/dev/null 2>&1 || exit 0; sv once \"$1\" >/dev/null";
        let what = format!("service {name}: sv once");
        sh(ctx, target, &what, script, &[&runit_path(dir, name)], None).await?;
    }
    Ok(())
}

pub async fn status(
    ctx: &Ctx<'_>,
    target: &Target,
    sup: &Supervisor,
    name: &str,
) -> Result<State, ExecError> {
    let what = format!("querying service {name}");
    let out = match sup {
        Supervisor::Runit { dir } => {
            let script = "[ -d \"$1\" ] || { echo absent; exit 0; }; sv status \"$1\" 2>/dev/null || echo down";
            sh(ctx, target, &what, script, &[&runit_path(dir, name)], None).await?
        }
        Supervisor::Systemd => {
            let script = "systemctl cat \"$1\" >/dev/null 2>&1 || { echo absent; exit 0; }; echo \"pid $(systemctl show -p MainPID --value \"$1\")\"";
            sh(
                ctx,
                target,
                &what,
                script,
                &[&format!("{name}.service")],
                None,
            )
            .await?
        }
    };
    Ok(parse_status(&out))
}

/// `run: /etc/service/etcd: (pid 123) 45s; run: log: ...` (runit) or `pid 123` (systemd).
fn parse_status(out: &str) -> State {
    if out == "absent" {
        return State::Absent;
    }
    let first = out.split(';').next().unwrap_or("");
    let pid = first
        .split("pid ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p > 0);
    match pid {
        Some(pid) if !first.starts_with("down") => State::Running { pid },
        _ => State::Down,
    }
}

/// Stops the service and removes its definition.
pub async fn remove(
    ctx: &Ctx<'_>,
    target: &Target,
    sup: &Supervisor,
    name: &str,
) -> Result<(), ExecError> {
    let what = format!("removing service {name}");
    match sup {
        Supervisor::Runit { dir } => {
            sh(
                ctx,
                target,
                &what,
                RUNIT_REMOVE,
                &[&runit_path(dir, name)],
                None,
            )
            .await?;
        }
        Supervisor::Systemd => {
            let script = "systemctl disable --now \"$2\" >/dev/null 2>&1 || true; rm -f \"$1\"; systemctl daemon-reload";
            let args = [unit_path(name), format!("{name}.service")];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            sh(ctx, target, &what, script, &args, None).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status("run: /etc/service/etcd: (pid 4242) 12s; run: log: (pid 4240) 12s"),
            State::Running { pid: 4242 }
        );
        assert_eq!(
            parse_status("down: /etc/service/etcd: 3s, normally up; run: log: (pid 4240) 12s"),
            State::Down
        );
        assert_eq!(parse_status("absent"), State::Absent);
        assert_eq!(parse_status("pid 0"), State::Down);
        assert_eq!(parse_status("pid 77"), State::Running { pid: 77 });
    }
}
