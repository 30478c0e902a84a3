//! HBA on each target instance: `pg_hba.conf` for the instance's **live** role, written
//! atomically (keeping the previous file), checked with `pg_hba_file_rules`, then reloaded; on
//! any error the previous file is put back and the step fails, so the node keeps accepting
//! connections.
//!
//! In: the action (its hosts) and the new inventory. Out: one result per host. `observe` asks
//! each instance whether it is in recovery; the remote step asks again in the statement that
//! checks and reloads, so a file written for a role the server no longer has is never loaded.

use super::pg::{become_argv, probe, psql_argv};
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::ExecError;
use crate::inventory::model::PgCluster;
use crate::plan::{Action, HbaFile, HbaStep};
use crate::render::hba::Target;
use crate::render::hba_for;

/// The one remote step per instance, a fixed script. Its arguments: `$1` the file path, `$2`
/// the role it was rendered for (`primary` or `standby`), then the psql command; none is part
/// of the script text. Stdin: the new file. It keeps the previous file, writes the new one
/// atomically (mode 0600) and, in one statement, checks that the server still has that role,
/// asks PostgreSQL to parse the file and reloads only when both hold; otherwise it puts the
/// previous file back and exits with the reason on stdout: 3 when PostgreSQL rejects lines of
/// the file or psql fails, 5 when the server's role changed or the reload was refused.
const WRITE_CHECK_RELOAD: &str = r#"set -e
umask 077
f=$1; role=$2; shift 2
case "$role" in
  primary) q="SELECT CASE WHEN pg_is_in_recovery() THEN 'the server is in recovery now; run again'" ;;
  standby) q="SELECT CASE WHEN NOT pg_is_in_recovery() THEN 'the server was promoted meanwhile; run again'" ;;
  *) cat > /dev/null; echo "unknown role"; exit 3 ;;
esac
q="$q WHEN count(*) > 0 THEN string_agg('line ' || line_number || ': ' || error, '; ') WHEN pg_reload_conf() THEN 'reloaded' ELSE 'the reload was refused' END FROM pg_hba_file_rules WHERE error IS NOT NULL"
cat > "$f.pgitops-new"
if [ -f "$f" ]; then cp -p "$f" "$f.pgitops-prev"; fi
mv "$f.pgitops-new" "$f"
restore() { if [ -f "$f.pgitops-prev" ]; then mv "$f.pgitops-prev" "$f"; fi; }
if ! answer=$("$@" -c "$q"); then restore; echo "psql could not check the file"; exit 3; fi
case "$answer" in
  reloaded) ;;
  line*) restore; echo "$answer"; exit 3 ;;
  *) restore; echo "$answer"; exit 5 ;;
esac"#;

/// HBA files: observed is whether each target instance is in recovery now (its live role).
pub(crate) struct Hba;

impl Component for Hba {
    type Step = HbaStep;
    /// Per target host: in recovery, or why it could not be asked.
    type Observed = Vec<(String, Result<bool, String>)>;

    async fn observe(ctx: &Ctx<'_>, a: &Action, _: &HbaStep) -> Result<Self::Observed, ExecError> {
        let probes = a.hosts.iter().map(|host| async move {
            let r = probe(ctx, host).await.map_err(|e| e.to_string());
            (host.clone(), r.map(|out| out.starts_with('t')))
        });
        Ok(futures::future::join_all(probes).await)
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, step: &HbaStep, now: Self::Observed) -> Outcome {
        let c = ctx.cluster(a)?;
        // Instances are independent: all at once (each under its host's lock).
        let hosts = futures::future::join_all(now.iter().map(|(host, live)| {
            on_host(ctx, host, move || async move {
                let in_recovery = live.clone().map_err(ExecError::Refused)?;
                one(ctx, c, host, in_recovery).await
            })
        }))
        .await;
        let message = match step.files.contains(&HbaFile::Pgbouncer) {
            true => "pgb_hba.conf: written by the cluster's pgbouncer/reload action",
            false => "",
        };
        Ok((message.into(), hosts))
    }
}

/// The role `host`'s file is rendered for: in recovery, an instance keeps its declared standby
/// role (`replica`, `offline`, ...); a declared primary that is in recovery now serves as a
/// replica.
pub(super) fn live_role<'a>(c: &'a PgCluster, host: &str, in_recovery: bool) -> &'a str {
    match (in_recovery, c.members.get(host).map(|m| m.role.as_str())) {
        (false, _) => "primary",
        (true, None | Some("primary")) => "replica",
        (true, Some(r)) => r,
    }
}

pub(super) async fn one(
    ctx: &Ctx<'_>,
    c: &PgCluster,
    host: &str,
    in_recovery: bool,
) -> Result<String, ExecError> {
    let role = live_role(c, host, in_recovery);
    let text = hba_for(ctx.new, c, host, Target::Postgres, Some(role))
        .map_err(|e| ExecError::Refused(e.to_string()))?;
    let pg = ctx.pg(host);
    let path = format!("{}/pg_hba.conf", pg.data);
    let dbsu = pg.dbsu.clone();
    let psql = psql_argv(pg, "postgres")?;
    let live = if in_recovery { "standby" } else { "primary" };
    let mut argv = become_argv(ctx.cfg.become_method, &dbsu);
    argv.extend(["sh", "-c", WRITE_CHECK_RELOAD, "sh", &path, live]);
    argv.extend(psql.iter().map(String::as_str));
    let out = ctx
        .runner
        .run(
            &ctx.target(host),
            &argv,
            Some(text.as_bytes()),
            ctx.cfg.timeout,
        )
        .await?;
    match out.status {
        0 => Ok(format!("pg_hba.conf written for live role {role} and reloaded")),
        3 => Err(ExecError::Refused(format!(
            "{host}: PostgreSQL rejected the new pg_hba.conf ({}); the previous file is back in place",
            out.stdout.trim()
        ))),
        5 => Err(ExecError::Refused(format!(
            "{host}: the new pg_hba.conf was not loaded: {}; the previous file is back in place",
            out.stdout.trim()
        ))),
        _ => Err(ExecError::Failed {
            host: host.into(),
            what: format!("writing {path}"),
            stderr: out.stderr.trim().into(),
        }),
    }
}
