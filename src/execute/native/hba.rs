//! HBA on each target instance: render `pg_hba.conf` with the instance's **live** role, write it
//! atomically (keeping the previous file), check `pg_hba_file_rules` for error rows, then reload;
//! on any error put the previous file back and fail, so the node keeps accepting connections.

use super::pg::{become_argv, psql, psql_argv};
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::ExecError;
use crate::inventory::model::PgCluster;
use crate::plan::{Action, HbaFile, HbaStep};
use crate::render::hba::Target;
use crate::render::hba_for;

/// The one remote step per instance, a fixed script: the file path is `$1` and the psql command
/// the remaining arguments, never part of the script text; the new file comes on stdin. It keeps
/// the previous file, writes the new one atomically, asks PostgreSQL to parse it
/// (`pg_hba_file_rules`), and reloads only when no line is in error; otherwise (or when psql
/// fails) it puts the previous file back and exits 3 with the errors on stdout.
const WRITE_CHECK_RELOAD: &str = r#"set -e
f=$1; shift
if [ -f "$f" ]; then cp -p "$f" "$f.pgitops-prev"; fi
cat > "$f.pgitops-new"; chmod 600 "$f.pgitops-new"; mv "$f.pgitops-new" "$f"
restore() { if [ -f "$f.pgitops-prev" ]; then mv "$f.pgitops-prev" "$f"; fi; }
if ! errors=$("$@" -c "SELECT string_agg(line_number || ': ' || error, '; ') FROM pg_hba_file_rules WHERE error IS NOT NULL"); then
  restore; echo "psql could not check the file"; exit 3
fi
if [ -n "$errors" ]; then restore; printf '%s
' "$errors"; exit 3; fi
"$@" -c "SELECT pg_reload_conf()" >/dev/null"#;

/// HBA files: observed is whether each target instance is in recovery now (its live role).
pub(crate) struct Hba;

impl Component for Hba {
    type Step = HbaStep;
    /// Per target host: in recovery, or why it could not be asked.
    type Observed = Vec<(String, Result<bool, String>)>;

    async fn observe(ctx: &Ctx<'_>, a: &Action, _: &HbaStep) -> Result<Self::Observed, ExecError> {
        let probes = a.hosts.iter().map(|host| async move {
            let r = psql(ctx, host, "postgres", "SELECT pg_is_in_recovery();").await;
            (host.clone(), r.map(|t| t == "t").map_err(|e| e.to_string()))
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
            true => "pgbouncer's pgb_hba.conf is not managed natively yet",
            false => "",
        };
        Ok((message.into(), hosts))
    }
}

async fn one(
    ctx: &Ctx<'_>,
    c: &PgCluster,
    host: &str,
    in_recovery: bool,
) -> Result<String, ExecError> {
    let declared = c
        .members
        .get(host)
        .map(|m| m.role.as_str())
        .unwrap_or("replica");
    let role = match (in_recovery, declared) {
        (false, _) => "primary",
        (true, "primary") => "replica",
        (true, r) => r,
    };
    let text = hba_for(ctx.new, c, host, Target::Postgres, Some(role))
        .map_err(|e| ExecError::Refused(e.to_string()))?;
    let path = format!("{}/pg_hba.conf", ctx.pg(host).data);
    let psql = psql_argv(ctx, host, "postgres")?;
    let dbsu = ctx.pg(host).dbsu;
    let mut argv = become_argv(ctx.cfg.become_method, &dbsu);
    argv.extend(["sh", "-c", WRITE_CHECK_RELOAD, "sh", path.as_str()]);
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
        0 => {}
        3 => return Err(ExecError::Refused(format!("{host}: PostgreSQL rejected the new pg_hba.conf (line {}); the previous file is back in place", out.stdout.trim()))),
        _ => {
            return Err(ExecError::Failed {
                host: host.into(),
                what: format!("writing {path}"),
                stderr: out.stderr.trim().into(),
            })
        }
    }
    Ok(format!(
        "pg_hba.conf written for live role {role} and reloaded"
    ))
}
