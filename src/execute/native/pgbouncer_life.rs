//! pgbouncer itself on each target member (the `pgbouncer/{launch,enable,config,restart,
//! disable}` actions): `/etc/pgbouncer/pgbouncer.ini` rendered for the installed version, the
//! `pgbouncer` service under the node's supervisor ([`supervise`]) as the dbsu.
//!
//! In: the action, its [`PgbOp`] and the new inventory. Out: one result per host. `observe` asks
//! each host whether pgitops bootstrapped its cluster (Patroni's configuration carries pgitops'
//! mark, as in [`super::template`]) and which pgbouncer is installed (`pgbouncer --version`).
//! A launch, restart or disable acts only where pgitops bootstrapped the cluster: elsewhere (a
//! fleet Pigsty built, a PostgreSQL found running) pgbouncer is left as it runs and its
//! `pgbouncer.ini` is never rewritten; the action is `adopted` (a launch with the cluster or a
//! member) or `not-native`. A config change re-renders the file on every target member and
//! RELOADs where it changed, never restarts. Every remote command is fixed shell text; values
//! travel as arguments, the file on stdin.

use super::patroni_node::MARK;
use super::root_sh::sh;
use super::supervise::{self, State, Supervisor};
use super::template::OURS;
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::{result, ActionResult, ExecError, Status};
use crate::inventory::model::port_var;
use crate::plan::{Action, PgbOp};
use crate::render::pgbouncer::{pgbouncer_ini, Ini, PgbVersion};
use crate::render::service::{Restart, ServiceSpec};

/// A host's detail where pgitops did not bootstrap the cluster.
pub const LEFT_ALONE: &str = "cluster not bootstrapped by pgitops: pgbouncer left as it runs (pgbouncer.ini not written, no service touched)";

/// The path of the pgbouncer binary and the first line of its `--version`, or `none`.
const VERSION: &str = r#"for p in /usr/sbin/pgbouncer /usr/bin/pgbouncer; do
  if [ -x "$p" ]; then echo "$p"; "$p" --version 2>&1 | head -n 1; exit 0; fi
done
echo none"#;

/// `$1` dbsu, `$2` pgbouncer_log_dir; `pgbouncer.ini` on stdin. Pigsty's `pgbouncer_dir`
/// (`/etc/pgbouncer`, the log dir), `/run/postgresql` (the unit's RuntimeDirectory), starter
/// files where missing (the files action writes the real ones), then the ini (dbsu, 0640) if it
/// differs. Prints `changed` or `unchanged`.
const WRITE: &str = r#"set -e
id -u "$1" >/dev/null 2>&1 || { echo "user $1 does not exist: install the PostgreSQL packages" >&2; exit 3; }
install -d -o "$1" -g postgres -m 0750 /etc/pgbouncer "$2"
install -d -o "$1" -g postgres -m 0755 /run/postgresql
e=/etc/pgbouncer
u=$1
starter() { if [ ! -f "$e/$1" ]; then (umask 077; printf '%s\n' "$2" > "$e/$1"); chown "$u:postgres" "$e/$1"; fi; }
starter userlist.txt "\"$u\" \"\""
starter pgb_hba.conf "local all $u peer"
starter database.txt '# pgbouncer database list'
starter useropts.txt '# pgbouncer user options'
f=$e/pgbouncer.ini
(umask 077; cat > "$f.pgitops-new")
chown "$1:postgres" "$f.pgitops-new"; chmod 0640 "$f.pgitops-new"
if [ -f "$f" ] && cmp -s "$f.pgitops-new" "$f"; then rm -f "$f.pgitops-new"; echo unchanged; else mv -f "$f.pgitops-new" "$f"; echo changed; fi"#;

/// `$1` tries (0.2 s apart), `$2` pg_isready, `$3` address, `$4` port: until pgbouncer answers.
const WAIT: &str = r#"n=$1; i=0
while ! "$2" -q -h "$3" -p "$4" -t 1 >/dev/null 2>&1; do
  i=$((i+1)); [ $i -ge "$n" ] && { echo "pgbouncer does not answer on $3:$4" >&2; exit 1; }
  sleep 0.2
done"#;

/// What one host has.
pub(crate) struct Host {
    ours: bool,
    /// The binary and its version.
    bin: Option<(String, Option<PgbVersion>)>,
}

pub(crate) struct PgbLife;

impl Component for PgbLife {
    type Step = PgbOp;
    type Observed = Vec<Result<Host, ExecError>>;

    async fn observe(ctx: &Ctx<'_>, a: &Action, _: &PgbOp) -> Result<Self::Observed, ExecError> {
        let asks = a.hosts.iter().map(|h| observe(ctx, h));
        Ok(futures::future::join_all(asks).await)
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, op: &PgbOp, now: Self::Observed) -> Outcome {
        let runs = a.hosts.iter().zip(now).map(|(host, seen)| {
            on_host(ctx, host, move || async move {
                one(ctx, *op, host, seen?).await
            })
        });
        let hosts = futures::future::join_all(runs).await;
        let msg = match hosts.iter().all(|h| h.ok && h.detail == LEFT_ALONE) {
            true => LEFT_ALONE.to_string(),
            false => String::new(),
        };
        Ok((msg, hosts))
    }
}

/// The result of a lifecycle action whose hosts were all left alone: `adopted` for a launch
/// with the cluster or a member, `not-native` otherwise (Pigsty's command does it).
pub fn status(a: &Action, op: PgbOp, r: ActionResult) -> ActionResult {
    if r.status != Status::Applied || r.message != LEFT_ALONE {
        return r;
    }
    match op {
        PgbOp::Launch { first: true } => ActionResult {
            status: Status::Adopted,
            ..r
        },
        _ => result(a, Status::NotNative, format!("{LEFT_ALONE}; run the Pigsty command shown in the plan, or use executor = \"pigsty\""), r.hosts),
    }
}

async fn observe(ctx: &Ctx<'_>, host: &str) -> Result<Host, ExecError> {
    let target = ctx.target(host);
    let mark = MARK.trim_end();
    let what = "reading the Patroni configuration's first line";
    let ours = sh(ctx, &target, what, OURS, &[mark], None).await? == "ours";
    let out = sh(
        ctx,
        &target,
        "asking pgbouncer --version",
        VERSION,
        &[],
        None,
    )
    .await?;
    let bin = out
        .split_once('\n')
        .map(|(path, v)| (path.to_string(), PgbVersion::parse(v)));
    Ok(Host { ours, bin })
}

fn var(ctx: &Ctx<'_>, host: &str, k: &str, d: &str) -> String {
    super::patroni_node::var(ctx, host, k, d)
}

/// `pgbouncer.ini` of `host` for its installed version; ` (left out ...)` for the message.
fn render(ctx: &Ctx<'_>, host: &str, h: &Host) -> Result<(Ini, String), ExecError> {
    let Some((_, version)) = &h.bin else {
        return Err(ExecError::Refused(format!(
            "{host}: pgbouncer is not installed (/usr/sbin/pgbouncer or /usr/bin/pgbouncer): install the pgbouncer package"
        )));
    };
    let ini = pgbouncer_ini(ctx.new, host, *version)
        .map_err(|e| ExecError::Refused(format!("{host}: {e}")))?;
    let note = match (ini.left_out.is_empty(), version) {
        (true, _) => String::new(),
        (false, v) => format!(
            "; left out for pgbouncer {}: {}",
            v.map(|v| v.to_string()).unwrap_or_default(),
            ini.left_out.join(", ")
        ),
    };
    Ok((ini, note))
}

async fn write(ctx: &Ctx<'_>, host: &str, ini: &Ini) -> Result<bool, ExecError> {
    let dbsu = ctx.pg(host).dbsu;
    let log_dir = var(ctx, host, "pgbouncer_log_dir", "/pg/log/pgbouncer");
    let what = "writing /etc/pgbouncer/pgbouncer.ini";
    let out = sh(
        ctx,
        &ctx.target(host),
        what,
        WRITE,
        &[&dbsu, &log_dir],
        Some(ini.text.as_bytes()),
    )
    .await?;
    Ok(out.ends_with("changed") && !out.ends_with("unchanged"))
}

/// Pigsty's `pgbouncer.svc` as a [`ServiceSpec`]: the dbsu, `<bin> /etc/pgbouncer/pgbouncer.ini`,
/// restarted on failure, reload by SIGHUP, runtime dir `postgresql`.
fn spec(ctx: &Ctx<'_>, host: &str, bin: &str) -> ServiceSpec {
    ServiceSpec {
        name: "pgbouncer".into(),
        description: "A lightweight connection pooler for PostgreSQL".into(),
        user: ctx.pg(host).dbsu,
        group: "postgres".into(),
        workdir: "/etc/pgbouncer".into(),
        argv: vec![bin.into(), "/etc/pgbouncer/pgbouncer.ini".into()],
        nofile: 655360,
        restart: Restart::OnFailure,
        notify: false,
        oom_score_adjust: None,
        kill_main_only: false,
        reload_hup: true,
        runtime_dir: Some("postgresql".into()),
        timeouts: (300, 300),
    }
}

/// Waits until pgbouncer answers on its first listen address and `pgbouncer_port`.
async fn wait(ctx: &Ctx<'_>, host: &str, ini: &Ini) -> Result<u16, ExecError> {
    let vars = ctx.new.tree.hosts.get(host).map(|h| &h.vars);
    let port = vars
        .and_then(|v| port_var(v, "pgbouncer_port").ok().flatten())
        .unwrap_or(6432);
    let listen = ini
        .text
        .lines()
        .find_map(|l| l.strip_prefix("listen_addr"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|l| l.split(',').next())
        .map(str::trim)
        .unwrap_or("127.0.0.1");
    let addr = match listen {
        "*" | "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        a => a,
    };
    let isready = format!("{}/pg_isready", ctx.pg(host).bin_dir.trim_end_matches('/'));
    let what = "waiting for pgbouncer to answer";
    let p = port.to_string();
    super::patroni_node::wait(
        ctx,
        &ctx.target(host),
        what,
        WAIT,
        &["75", &isready, addr, &p],
    )
    .await?;
    Ok(port)
}

async fn one(ctx: &Ctx<'_>, op: PgbOp, host: &str, h: Host) -> Result<String, ExecError> {
    if !h.ours && op != PgbOp::Config {
        return Ok(LEFT_ALONE.into());
    }
    let target = ctx.target(host);
    if op == PgbOp::Stop {
        let sup = supervise::detect(ctx, &target).await?;
        let was = supervise::status(ctx, &target, &sup, "pgbouncer").await?;
        supervise::remove(ctx, &target, &sup, "pgbouncer").await?;
        return Ok(format!(
            "service pgbouncer stopped and removed (was {was:?}); /etc/pgbouncer kept"
        ));
    }
    let (ini, note) = render(ctx, host, &h)?;
    let changed = write(ctx, host, &ini).await?;
    let file = if changed {
        "pgbouncer.ini written"
    } else {
        "pgbouncer.ini unchanged"
    };
    if op == PgbOp::Config {
        if !changed {
            return Ok(format!("{file}; not reloaded{note}"));
        }
        super::pgbouncer::reload(ctx, host, "writing pgbouncer.ini").await?;
        return Ok(format!("{file}; pgbouncer reloaded (not restarted){note}"));
    }
    let bin = h.bin.as_ref().map(|b| b.0.clone()).unwrap_or_default();
    let sup = supervise::detect(ctx, &target).await?;
    let installed = supervise::install(ctx, &target, &sup, &spec(ctx, host, &bin)).await?;
    let before = supervise::status(ctx, &target, &sup, "pgbouncer").await?;
    let running = matches!(before, State::Running { .. });
    let restart = op == PgbOp::Restart
        || (running && (changed || installed != supervise::Installed::Unchanged));
    if restart && running {
        supervise::stop(ctx, &target, &sup, "pgbouncer").await?;
    }
    start(ctx, &target, &sup).await?;
    let port = wait(ctx, host, &ini).await?;
    let how = match (running, restart) {
        (true, true) => "restarted",
        (true, false) => "already running",
        _ => "started",
    };
    Ok(format!(
        "{file}; service pgbouncer {installed:?}, {how}, answers on port {port}{note}"
    ))
}

async fn start(
    ctx: &Ctx<'_>,
    target: &crate::execute::Target,
    sup: &Supervisor,
) -> Result<(), ExecError> {
    supervise::start(ctx, target, sup, "pgbouncer").await
}
