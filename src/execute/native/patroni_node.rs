//! One PGSQL member under Patroni, on its node: what runs there now, the node facts Patroni's
//! configuration is sized from, Pigsty's layout and configuration file, the supervised
//! `patroni` service, and the waits (leader, streaming) of a cluster's creation.
//!
//! In: a host of a cluster and the [`Ctx`]. Out: observations and command results. Every
//! remote command is fixed shell text; inventory values (paths, names) travel only as
//! arguments, the configuration on stdin (it holds passwords: never logged, never in an error).

use std::time::Duration;

use serde::Deserialize;

use super::packages;
use super::pg::{become_argv, psql_argv};
use super::root_sh::sh;
use super::supervise::{self, Supervisor};
use super::Ctx;
use crate::execute::{Become, ExecError, Target};
use crate::inventory::model::{str_var, PgCluster};
use crate::render::patroni::{self as conf, Dcs, NodeFacts};

/// The first line of every configuration pgitops writes: what tells its files from others'.
pub const MARK: &str = "# written by pgitops: Patroni's configuration (Pigsty's pg_conf)\n";

/// How long a leader, or a replica's streaming, may take.
pub const WAIT: Duration = Duration::from_secs(90);

/// What a member has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Now {
    /// Patroni answers its REST API: adopted, never re-initialised.
    Patroni { leader: bool },
    /// pgitops' Patroni configuration is in place but Patroni does not answer (a creation that
    /// stopped half-way, or a stopped service): started again, Patroni keeps its data.
    Ours,
    /// PostgreSQL data or a running postmaster in `pg_data`, not under a Patroni pgitops
    /// configured: reported and left alone.
    Plain,
    /// Nothing: a node to create the member on.
    Empty,
}

/// `$1` REST address (`ip:port`), `$2` pg_data. Prints one of `patroni <json>`, `ours`,
/// `plain`, `empty`.
const OBSERVE: &str = r#"if r=$(curl -s -m 2 "http://$1/patroni" 2>/dev/null) && [ -n "$r" ]; then printf 'patroni %s\n' "$r"; exit 0; fi
ours=no; head -n 1 /etc/patroni/patroni.yml 2>/dev/null | grep -q '^# written by pgitops' && ours=yes
if [ "$ours" = yes ]; then echo ours; exit 0; fi
if [ -f "$2/PG_VERSION" ] || [ -f "$2/postmaster.pid" ]; then echo plain; exit 0; fi
echo empty"#;

/// `$1` pg_fs_main. Processors, MemTotal in KiB, the size of `pg_fs_main` in KiB (empty when
/// it does not exist), the package kind and the OS major version.
const FACTS: &str = r#"nproc
awk '/^MemTotal:/ { print $2 }' /proc/meminfo
if [ -e "$1" ]; then df -Pk "$1" | awk 'NR == 2 { print $2 }'; else echo; fi
if [ -x /usr/bin/dpkg ]; then echo deb; else echo rpm; fi
. /etc/os-release 2>/dev/null; echo "${VERSION_ID%%.*}""#;

/// `$1` dbsu, `$2` pg_data, `$3` config path, `$4` dbsu home, `$5` pg_fs_main, `$6` the
/// cluster dir name (`<cluster>-<version>`), `$7` patroni_log_dir, `$8` pg_log_dir, `$9` the
/// callback text, `$10` the instance name; the configuration on stdin. Pigsty's
/// `ssl: on` needs `/pg/cert/server.{crt,key}` and `ca.crt`: Pigsty issues them from its CA;
/// where none exist, a self-signed pair is made here (CN the instance) and is its own CA. Pigsty's layout (`roles/pgsql/tasks/dir.yml`,
/// `config.yml`): `/pg` (a link to `pg_fs_main/<cluster>-<version>` unless it exists) with
/// bin, conf, data, log, tmp, cert, spool; the file at its path, linked from
/// `/etc/patroni/patroni.yml`. Prints `changed` or `unchanged`.
const PREPARE: &str = r#"set -e
id -u "$1" >/dev/null 2>&1 || { echo "user $1 does not exist: install the PostgreSQL packages" >&2; exit 3; }
if [ ! -e /pg ]; then install -d -o "$1" -g postgres -m 0750 "$5/$6"; ln -s "$5/$6" /pg; fi
for d in /pg/bin /pg/conf /pg/log /pg/tmp /pg/cert /pg/spool "$7" "$8"; do install -d -o "$1" -g postgres -m 0750 "$d"; done
install -d -o "$1" -g postgres -m 0700 "$2" "$4"
install -d -o "$1" -g postgres -m 0755 /var/run/postgresql
install -d -m 0755 /etc/patroni
if [ ! -f /pg/cert/server.crt ] || [ ! -f /pg/cert/server.key ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=${10}" \
    -keyout /pg/cert/server.key -out /pg/cert/server.crt 2>/dev/null
  [ -f /pg/cert/ca.crt ] || cp /pg/cert/server.crt /pg/cert/ca.crt
  chown "$1:postgres" /pg/cert/server.key /pg/cert/server.crt /pg/cert/ca.crt
  chmod 0600 /pg/cert/server.key; chmod 0644 /pg/cert/server.crt /pg/cert/ca.crt
fi
cb=/pg/bin/pg-failover-callback
if ! printf '%s' "$9" | cmp -s - "$cb"; then printf '%s' "$9" > "$cb.new"; chmod 0755 "$cb.new"; mv -f "$cb.new" "$cb"; fi
f=$3
(umask 077; cat > "$f.pgitops-new")
chown "$1:postgres" "$f.pgitops-new"; chmod 0640 "$f.pgitops-new"
if [ -f "$f" ] && cmp -s "$f.pgitops-new" "$f"; then rm -f "$f.pgitops-new"; r=unchanged; else mv -f "$f.pgitops-new" "$f"; r=changed; fi
ln -sfn "$f" /etc/patroni/patroni.yml
echo $r"#;

/// Pigsty's path for Patroni's callbacks; this one only records the event in Patroni's log dir.
const CALLBACK: &str = "#!/bin/sh\n# written by pgitops: Patroni's callback (action, role, scope), recorded\necho \"$(date '+%F %T') $*\" >> /pg/log/patroni/callback.log 2>/dev/null\nexit 0\n";

/// `$1` REST address, `$2` tries (0.2 s apart), then the psql command: exits 0 once Patroni
/// says this member is the leader (`/primary` 200) and PostgreSQL accepts a query.
const WAIT_LEADER: &str = r#"a=$1; n=$2; shift 2; i=0
while :; do
  c=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$a/primary" 2>/dev/null)
  if [ "$c" = 200 ] && [ "$("$@" -c 'SELECT 1' 2>/dev/null)" = 1 ]; then exit 0; fi
  i=$((i+1)); [ $i -ge "$n" ] && { echo "Patroni at $a is not the leader with PostgreSQL serving (last REST answer: $c)" >&2; exit 1; }
  sleep 0.2
done"#;

/// `$1` tries, `$2` the awaited application names (comma-separated), then the psql command:
/// exits 0 once every one of them streams from this server (`pg_stat_replication`).
const WAIT_STREAMING: &str = r#"n=$1; want=$2; shift 2; i=0
while :; do
  got=$("$@" -c "SELECT string_agg(application_name, ',') FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null)
  all=yes; old=$IFS; IFS=,
  for w in $want; do case ",$got," in *",$w,"*) ;; *) all=no ;; esac; done
  IFS=$old
  [ $all = yes ] && exit 0
  i=$((i+1)); [ $i -ge "$n" ] && { echo "streaming: [$got], awaited: [$want]" >&2; exit 1; }
  sleep 0.2
done"#;

#[derive(Debug, Deserialize)]
struct PatroniStatus {
    #[serde(default)]
    role: String,
}

/// The host's variables: in the new revision, else in the old one (a host that left).
fn host_vars<'a>(ctx: &Ctx<'a>, host: &str) -> Option<&'a crate::inventory::HostVars> {
    let h = ctx.new.tree.hosts.get(host);
    h.or_else(|| ctx.old.tree.hosts.get(host)).map(|h| &h.vars)
}

/// The host's variable `k`, else `default`.
pub fn var(ctx: &Ctx<'_>, host: &str, k: &str, default: &str) -> String {
    let vars = host_vars(ctx, host);
    vars.and_then(|v| str_var(v, k))
        .unwrap_or(default)
        .to_string()
}

/// `ip:patroni_port` of `host`.
pub fn rest(ctx: &Ctx<'_>, host: &str) -> String {
    let vars = host_vars(ctx, host);
    let port = vars
        .and_then(|v| {
            crate::inventory::model::port_var(v, "patroni_port")
                .ok()
                .flatten()
        })
        .unwrap_or(8008);
    format!("{host}:{port}")
}

pub async fn observe(ctx: &Ctx<'_>, host: &str) -> Result<Now, ExecError> {
    let target = ctx.target(host);
    let data = ctx.pg(host).data;
    let out = sh(
        ctx,
        &target,
        "observing the member",
        OBSERVE,
        &[&rest(ctx, host), &data],
        None,
    )
    .await?;
    Ok(match out.split_once(' ') {
        Some(("patroni", json)) => {
            let s: PatroniStatus = serde_json::from_str(json).unwrap_or(PatroniStatus {
                role: String::new(),
            });
            Now::Patroni {
                leader: ["master", "primary", "standby_leader"].contains(&s.role.as_str()),
            }
        }
        _ => match out.as_str() {
            "ours" => Now::Ours,
            "plain" => Now::Plain,
            _ => Now::Empty,
        },
    })
}

/// What every member of `c` has now (asked side by side).
pub async fn observe_all(ctx: &Ctx<'_>, c: &PgCluster) -> Result<Vec<(String, Now)>, ExecError> {
    let asks = c
        .members
        .keys()
        .map(|h| async move { observe(ctx, h).await.map(|now| (h.clone(), now)) });
    futures::future::join_all(asks).await.into_iter().collect()
}

/// The member of `c` other than `except` whose Patroni holds the leader lock, if any (members
/// asked side by side; one that cannot be asked is not the leader).
pub async fn leader_among(ctx: &Ctx<'_>, c: &PgCluster, except: &str) -> Option<String> {
    let others = c
        .members
        .keys()
        .filter(|h| *h != except)
        .map(|h| async move {
            let now = observe(ctx, h).await;
            (h.clone(), now)
        });
    futures::future::join_all(others)
        .await
        .into_iter()
        .find(|(_, now)| matches!(now, Ok(Now::Patroni { leader: true })))
        .map(|(h, _)| h)
}

/// One member as observed, and the other member whose Patroni holds the leader lock, if any.
pub(crate) struct Member {
    pub now: Now,
    pub leader: Option<String>,
}

/// [`observe`] of `host`, and [`leader_among`] the other members of `c`.
pub async fn observe_member(ctx: &Ctx<'_>, c: &PgCluster, host: &str) -> Result<Member, ExecError> {
    let now = observe(ctx, host).await?;
    let leader = leader_among(ctx, c, host).await;
    Ok(Member { now, leader })
}

/// The node facts Pigsty sizes PostgreSQL from (`nproc`, /proc/meminfo, `df` of `pg_fs_main`).
pub async fn facts(ctx: &Ctx<'_>, host: &str) -> Result<NodeFacts, ExecError> {
    let target = ctx.target(host);
    let fs = var(ctx, host, "pg_fs_main", "/data/postgres");
    let out = sh(ctx, &target, "reading node facts", FACTS, &[&fs], None).await?;
    let l: Vec<&str> = out.lines().map(str::trim).collect();
    let bad = || ExecError::Failed {
        host: host.into(),
        what: "reading node facts".into(),
        stderr: format!("unexpected answer: {out}"),
    };
    let cpu = l.first().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let mem_kib: u64 = l.get(1).and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let fs_kib = l.get(2).and_then(|v| v.parse().ok());
    let pkg = l.get(3).copied().unwrap_or("deb");
    let ver = l.get(4).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(NodeFacts::observed(cpu, mem_kib * 1024, fs_kib, pkg, ver))
}

/// Writes the layout and the configuration, installs the `patroni` service (not started).
pub async fn prepare(
    ctx: &Ctx<'_>,
    host: &str,
    dcs: Dcs,
) -> Result<(Supervisor, String), ExecError> {
    let refused = |e: conf::PatroniError| ExecError::Refused(format!("{host}: {e}"));
    let target = ctx.target(host);
    let facts = facts(ctx, host).await?;
    let text = conf::patroni_yml_for(ctx.new, host, &facts, dcs).map_err(refused)?;
    let place = conf::placement(ctx.new, host).map_err(refused)?;
    let pg = ctx.pg(host);
    let home = var(ctx, host, "pg_dbsu_home", "/var/lib/pgsql");
    let version = match ctx
        .new
        .tree
        .hosts
        .get(host)
        .and_then(|h| h.vars.get("pg_version"))
    {
        Some(v) => conf::jinja::text(&v.value),
        None => "18".into(),
    };
    let needs = packages::patroni(&pg.bin_dir, &version);
    let binaries = packages::ensure(ctx, host, &needs).await?;
    let dir = format!("{}-{version}", a_cluster(ctx, host));
    let args = [
        place.owner.as_str(),
        &pg.data,
        &place.path,
        &home,
        &var(ctx, host, "pg_fs_main", "/data/postgres"),
        &dir,
        &var(ctx, host, "patroni_log_dir", "/pg/log/patroni"),
        &var(ctx, host, "pg_log_dir", "/pg/log/postgres"),
        CALLBACK,
        place
            .path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".yml"),
    ];
    let file = format!("{MARK}{text}");
    let what = "writing Patroni's layout and configuration";
    let wrote = sh(ctx, &target, what, PREPARE, &args, Some(file.as_bytes())).await?;
    let sup = supervise::detect(ctx, &target).await?;
    let spec = conf::service(&place.owner, &home, place.link);
    let installed = supervise::install(ctx, &target, &sup, &spec).await?;
    let spec_s = format!(
        "binaries {binaries}, {}C.{}G, {} {wrote}, service {installed:?}",
        facts.cpu, facts.mem_gb, place.path
    );
    Ok((sup, spec_s))
}

fn a_cluster(ctx: &Ctx<'_>, host: &str) -> String {
    ctx.new
        .model
        .pgsql
        .values()
        .find(|c| c.members.contains_key(host))
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

pub async fn start(ctx: &Ctx<'_>, host: &str, sup: &Supervisor) -> Result<(), ExecError> {
    supervise::start(ctx, &ctx.target(host), sup, "patroni").await
}

/// The psql command on `host` as the dbsu, for the wait scripts (after their own arguments).
pub(super) fn psql_tail(ctx: &Ctx<'_>, host: &str) -> Result<Vec<String>, ExecError> {
    let pg = ctx.pg(host);
    let mut v: Vec<String> = become_argv(ctx.cfg.become_method, &pg.dbsu)
        .into_iter()
        .map(str::to_string)
        .collect();
    v.extend(psql_argv(pg, "postgres")?);
    Ok(v)
}

pub(super) async fn wait(
    ctx: &Ctx<'_>,
    target: &Target,
    what: &str,
    script: &str,
    args: &[&str],
) -> Result<(), ExecError> {
    let mut argv: Vec<&str> = match ctx.cfg.become_method {
        Become::Sudo => vec!["sudo", "-n", "--"],
        _ => vec![],
    };
    argv.extend(["sh", "-c", script, "sh"]);
    argv.extend(args);
    let t = ctx.cfg.timeout.max(WAIT + Duration::from_secs(15));
    let out = ctx.runner.run(target, &argv, None, t).await?;
    if out.status != 0 {
        return Err(ExecError::Failed {
            host: target.host.clone(),
            what: what.into(),
            stderr: out.stderr.trim().into(),
        });
    }
    Ok(())
}

pub(super) fn tries() -> String {
    (WAIT.as_millis() / 200).to_string()
}

/// Waits until Patroni on `host` holds the leader lock and its PostgreSQL answers.
pub async fn wait_leader(ctx: &Ctx<'_>, host: &str) -> Result<(), ExecError> {
    let psql = psql_tail(ctx, host)?;
    let (rest, n) = (rest(ctx, host), tries());
    let mut args: Vec<&str> = vec![&rest, &n];
    args.extend(psql.iter().map(String::as_str));
    let what = "waiting for Patroni to lead with PostgreSQL serving";
    wait(ctx, &ctx.target(host), what, WAIT_LEADER, &args).await
}

/// Waits until every one of `names` (Patroni member names) streams from the leader `host`.
pub async fn wait_streaming(ctx: &Ctx<'_>, host: &str, names: &[String]) -> Result<(), ExecError> {
    let psql = psql_tail(ctx, host)?;
    let (n, want) = (tries(), names.join(","));
    let mut args: Vec<&str> = vec![&n, &want];
    args.extend(psql.iter().map(String::as_str));
    let what = "waiting for the replicas to stream";
    wait(ctx, &ctx.target(host), what, WAIT_STREAMING, &args).await
}

#[derive(Debug, Deserialize)]
pub struct ClusterView {
    #[serde(default)]
    pub members: Vec<MemberView>,
}

#[derive(Debug, Deserialize)]
pub struct MemberView {
    pub name: String,
    pub role: String,
    pub state: String,
}

/// Patroni's own view of the cluster (`GET /cluster` on `host`).
pub async fn cluster_view(ctx: &Ctx<'_>, host: &str) -> Result<ClusterView, ExecError> {
    super::patroni_api::get(ctx, host, "/cluster").await
}
