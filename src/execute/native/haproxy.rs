//! A PGSQL cluster's HAProxy services on each target host (the `service/refresh` action; Pigsty:
//! `pgsql.yml -t pg_service`); its runtime API is [`super::haproxy_runtime`].
//!
//! In: the action's hosts (the members, or `pg_service_provider`'s hosts) and the new
//! inventory. Out: per host what changed. On each host where `haproxy_enabled` (default true):
//! `/usr/sbin/haproxy` must exist; its hard file limit gives `global maxconn`; one fixed script
//! ([`APPLY`], files on stdin, their names and lengths as arguments) writes `haproxy.cfg` when it
//! is absent or pgitops' (a foreign one is left alone) and the cluster's `conf.d` files, removes
//! stale `<cluster>-*.cfg`, validates with `haproxy -c` and puts the old files back when that
//! fails. HAProxy is then installed and started under the node's supervisor when it does not
//! run, else reloaded (SIGUSR2 to the master: new workers take the listeners, established
//! connections stay with the old ones) only where a file changed. Nothing is touched on a host
//! without a supervisor, nor in a cluster where Patroni answers on no member (its REST API is
//! what the health checks ask: a PostgreSQL outside Patroni gets no services). Verified on the admin socket
//! (`/run/haproxy/admin.sock`): every service's frontend is there, every removed one gone.

use std::time::{Duration, Instant};

use super::haproxy_runtime::{runtime, RUNTIME_PY};
use super::patroni_node::{self, Now};
use super::root_sh::sh;
use super::supervise::{self, State, Supervisor};
use super::template::OURS;
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::{ExecError, Target};
use crate::plan::{Action, ServiceStep};
use crate::render::haproxy::{enabled, global_for, haproxy_cfg, service_files, word};
use crate::render::service::{Restart, ServiceSpec};

pub const ADMIN_SOCK: &str = "/run/haproxy/admin.sock";
/// Where the servers' state is saved before a reload (`server-state-file` of haproxy.cfg).
pub const SERVER_STATE: &str = "/run/haproxy/server-state";

/// Prints the hard file limit, or `absent` without the binary.
const PROBE: &str = r#"[ -x /usr/sbin/haproxy ] || { echo absent; exit 0; }
ulimit -Hn"#;

/// `$1` cluster, `$2` length of haproxy.cfg, then `<file> <length>` pairs; the texts on stdin in
/// that order. Prints `unchanged <ours|foreign>` or `changed <ours|foreign> <what>...` (`-x.cfg`:
/// removed). On a failed `haproxy -c` the old files are put back and its output goes to stderr.
const APPLY: &str = r#"set -e
E=/etc/haproxy; D=$E/conf.d; c=$1; S=$E/.pgitops-$c.new; O=$E/.pgitops-$c.old
umask 022
mkdir -p "$D"; rm -rf "$S" "$O"; mkdir -p "$S/conf.d" "$O/conf.d"
dd bs=1 count="$2" of="$S/haproxy.cfg" 2>/dev/null
shift 2
names=" "
while [ $# -gt 1 ]; do dd bs=1 count="$2" of="$S/conf.d/$1" 2>/dev/null; names="$names$1 "; shift 2; done
main=ours; changed=""
if [ -f "$E/haproxy.cfg" ] && ! head -n 1 "$E/haproxy.cfg" | grep -q '^# written by pgitops'; then main=foreign
elif ! cmp -s "$S/haproxy.cfg" "$E/haproxy.cfg"; then changed=" haproxy.cfg"; fi
for f in $names; do cmp -s "$S/conf.d/$f" "$D/$f" || changed="$changed $f"; done
for f in "$D/$c"-*.cfg; do
  [ -e "$f" ] || continue; b=${f##*/}
  case "$names" in *" $b "*) ;; *) changed="$changed -$b" ;; esac
done
if [ -z "$changed" ]; then rm -rf "$S" "$O"; echo "unchanged $main"; exit 0; fi
[ -f "$E/haproxy.cfg" ] && cp -p "$E/haproxy.cfg" "$O/"
for f in "$D/$c"-*.cfg; do [ -e "$f" ] && cp -p "$f" "$O/conf.d/"; done
[ $main = ours ] && mv -f "$S/haproxy.cfg" "$E/haproxy.cfg"
rm -f "$D/$c"-*.cfg
for f in $names; do mv -f "$S/conf.d/$f" "$D/$f"; done
if ! out=$(/usr/sbin/haproxy -c -f "$E/haproxy.cfg" -f "$D" 2>&1); then
  rm -f "$D/$c"-*.cfg
  for f in "$O/conf.d"/*; do [ -e "$f" ] && mv -f "$f" "$D/"; done
  if [ $main = ours ]; then
    if [ -f "$O/haproxy.cfg" ]; then mv -f "$O/haproxy.cfg" "$E/haproxy.cfg"; else rm -f "$E/haproxy.cfg"; fi
  fi
  rm -rf "$S" "$O"
  echo "haproxy -c refused the new files (the old ones are back): $out" >&2; exit 3
fi
rm -rf "$S" "$O"
echo "changed $main$changed""#;

/// The message of a first contact with a running cluster pgitops did not bootstrap.
pub const ADOPTED: &str = "cluster not bootstrapped by pgitops: its services adopted as they run (no file written, HAProxy not reloaded)";

pub(crate) struct Services;

/// What the members have: Patroni answering on some member (the services' health checks are
/// its REST API), and, for a first contact, pgitops' Patroni configuration on some member.
pub(crate) struct Observed {
    patroni: bool,
    ours: bool,
}

impl Component for Services {
    type Step = ServiceStep;
    type Observed = Observed;

    async fn observe(ctx: &Ctx<'_>, a: &Action, step: &ServiceStep) -> Result<Observed, ExecError> {
        let c = ctx.cluster(a)?;
        let now = patroni_node::observe_all(ctx, c).await?;
        let patroni = now.iter().any(|(_, n)| matches!(n, Now::Patroni { .. }));
        let mut ours = !step.first;
        if step.first {
            let mark = patroni_node::MARK.trim_end();
            let asks = c.members.keys().map(|h| async move {
                let what = "reading the Patroni configuration's first line";
                sh(ctx, &ctx.target(h), what, OURS, &[mark], None).await
            });
            let seen = futures::future::join_all(asks).await;
            ours = seen.iter().any(|r| matches!(r.as_deref(), Ok("ours")));
        }
        Ok(Observed { patroni, ours })
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, step: &ServiceStep, now: Observed) -> Outcome {
        if !now.patroni {
            let why = "Patroni answers on no member: the services' health checks are its REST API; HAProxy left alone";
            return Ok((why.into(), vec![]));
        }
        if !now.ours {
            return Ok((ADOPTED.into(), vec![]));
        }
        let hosts = futures::future::join_all(a.hosts.iter().map(|host| {
            on_host(
                ctx,
                host,
                move || async move { one(ctx, a, step, host).await },
            )
        }))
        .await;
        Ok((String::new(), hosts))
    }
}

/// The supervised HAProxy: Pigsty's unit runs `haproxy -Ws` (systemd notify); under a plain
/// supervisor it is `-W -db` (master-worker, foreground), reloaded by SIGUSR2.
fn spec(nofile: u32) -> ServiceSpec {
    let argv = [
        "/usr/sbin/haproxy",
        "-W",
        "-db",
        "-f",
        "/etc/haproxy/haproxy.cfg",
        "-f",
        "/etc/haproxy/conf.d",
    ];
    ServiceSpec {
        name: "haproxy".into(),
        description: "HAProxy Load Balancer".into(),
        user: "root".into(),
        group: "root".into(),
        workdir: "/".into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        nofile,
        restart: Restart::OnFailure,
        notify: false,
        oom_score_adjust: None,
        kill_main_only: false,
        reload_hup: false,
        runtime_dir: Some("haproxy".into()),
        timeouts: (30, 30),
    }
}

async fn one(
    ctx: &Ctx<'_>,
    a: &Action,
    step: &ServiceStep,
    host: &str,
) -> Result<String, ExecError> {
    if !enabled(ctx.new, host) {
        return Ok("haproxy_enabled is false: no HAProxy services here".into());
    }
    let refused = |e: &dyn ToString| ExecError::Refused(format!("{host}: {}", e.to_string()));
    let c = ctx.cluster(a)?;
    if !word(&c.name) || c.name.contains(['*', '?', '[', '/']) {
        return Err(refused(&format!(
            "cluster name `{}` cannot name HAProxy files",
            c.name
        )));
    }
    let definer = match &step.provider {
        Some(_) => c
            .primary
            .clone()
            .ok_or_else(|| refused(&"the cluster has no declared primary"))?,
        None => host.to_string(),
    };
    let target = ctx.target(host);
    let probe = sh(ctx, &target, "probing HAProxy", PROBE, &[], None).await?;
    if probe == "absent" {
        return Err(refused(
            &"/usr/sbin/haproxy is not installed (Debian/Ubuntu: apt-get install haproxy)",
        ));
    }
    let hard: u64 = probe.parse().unwrap_or(1 << 20);
    let g = global_for(ctx.new, host, hard).map_err(|e| refused(&e))?;
    let files = service_files(ctx.new, c, &definer, host).map_err(|e| refused(&e))?;
    let sup = supervise::detect(ctx, &target).await?;
    let main = haproxy_cfg(&g);
    let mut args = vec![c.name.clone(), main.len().to_string()];
    let mut stdin = main.into_bytes();
    for f in &files {
        args.push(f.name.clone());
        args.push(f.text.len().to_string());
        stdin.extend_from_slice(f.text.as_bytes());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sh(
        ctx,
        &target,
        "writing HAProxy's files",
        APPLY,
        &argv,
        Some(&stdin),
    )
    .await
    .map_err(|e| match e {
        ExecError::Failed { host, what, stderr } => ExecError::Failed {
            host,
            what,
            stderr: g.redact(&stderr),
        },
        e => e,
    })?;
    let mut words = out.split_whitespace();
    let changed = words.next() == Some("changed");
    let foreign = words.next() == Some("foreign");
    let what: Vec<&str> = words.collect();
    let removed: Vec<String> = what
        .iter()
        .filter_map(|w| w.strip_prefix('-'))
        .map(|f| f.trim_end_matches(".cfg").to_string())
        .collect();
    let mut msg = match (changed, foreign) {
        (false, _) => "HAProxy files unchanged".to_string(),
        (true, _) => format!("written {}", what.join(" ")),
    };
    if foreign {
        msg += "; /etc/haproxy/haproxy.cfg not written by pgitops: left alone";
    }
    match supervise::status(ctx, &target, &sup, "haproxy").await? {
        State::Running { .. } if !changed => return Ok(msg + "; HAProxy runs, not reloaded"),
        State::Running { .. } => {
            reload(ctx, &target, &sup).await?;
            msg += "; HAProxy reloaded (SIGUSR2)";
        }
        _ => {
            let nofile = u32::try_from(hard).unwrap_or(u32::MAX);
            supervise::install(ctx, &target, &sup, &spec(nofile)).await?;
            supervise::start(ctx, &target, &sup, "haproxy").await?;
            msg += "; HAProxy started";
        }
    }
    if foreign {
        return Ok(msg + "; frontends not checked (the admin socket is the foreign haproxy.cfg's)");
    }
    let want: Vec<String> = files
        .iter()
        .map(|f| f.name.trim_end_matches(".cfg").to_string())
        .collect();
    let started = Instant::now();
    loop {
        let stat = runtime(ctx, host, "show stat\n").await.unwrap_or_default();
        let fronts: Vec<&str> = stat
            .lines()
            .filter_map(|l| l.split_once(",FRONTEND,").map(|(p, _)| p))
            .collect();
        let missing: Vec<&String> = want
            .iter()
            .filter(|w| !fronts.contains(&w.as_str()))
            .collect();
        let left: Vec<&String> = removed
            .iter()
            .filter(|r| fronts.contains(&r.as_str()))
            .collect();
        if missing.is_empty() && left.is_empty() {
            return Ok(format!("{msg}; frontends up: {}", want.join(", ")));
        }
        if started.elapsed() > Duration::from_secs(15) {
            return Err(ExecError::Failed {
                host: host.into(),
                what: "checking HAProxy's frontends on its admin socket".into(),
                stderr: format!("missing {missing:?}, still there {left:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `$1` the runtime API client, `$2` the admin socket, `$3` the state file, then the reload
/// command: the servers' state (health, forced UP/DOWN) saved where `load-server-state-from-file`
/// reads it, so the new workers start where the old ones were instead of every server UP until
/// its first check (HAProxy 2.6); without a saved state (the API does not answer) none is loaded.
const RELOAD: &str = r#"py=$1; sock=$2; state=$3; shift 3
if printf 'show servers state\n' | /usr/bin/python3 -c "$py" "$sock" > "$state.new" 2>/dev/null; then
  mv -f "$state.new" "$state"
else
  rm -f "$state.new" "$state"
fi
"$@""#;

async fn reload(ctx: &Ctx<'_>, target: &Target, sup: &Supervisor) -> Result<(), ExecError> {
    let unit = match sup {
        Supervisor::Runit { dir } => format!("{dir}/haproxy"),
        Supervisor::Systemd => "haproxy.service".to_string(),
    };
    let mut args = vec![RUNTIME_PY, ADMIN_SOCK, SERVER_STATE];
    match sup {
        Supervisor::Runit { .. } => args.extend(["sv", "2", &unit]),
        Supervisor::Systemd => {
            args.extend(["systemctl", "kill", "-s", "USR2", "--kill-who=main", &unit])
        }
    }
    sh(ctx, target, "reloading HAProxy", RELOAD, &args, None).await?;
    Ok(())
}
