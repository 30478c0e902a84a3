//! HBA on each target instance: render `pg_hba.conf` with the instance's **live** role, write it
//! atomically (keeping the previous file), check `pg_hba_file_rules` for error rows, then reload;
//! on any error put the previous file back and fail, so the node keeps accepting connections.

use super::pg::{become_argv, psql};
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::ExecError;
use crate::inventory::model::PgCluster;
use crate::plan::{Action, HbaFile, HbaStep};
use crate::render::hba::Target;
use crate::render::hba_for;

/// Fixed scripts; the file path is their `$1`, never part of the script text.
const WRITE: &str = "set -e; f=$1; if [ -f \"$f\" ]; then cp -p \"$f\" \"$f.pgitops-prev\"; fi; cat > \"$f.pgitops-new\"; chmod 600 \"$f.pgitops-new\"; mv \"$f.pgitops-new\" \"$f\"";
const RESTORE: &str = "set -e; f=$1; mv \"$f.pgitops-prev\" \"$f\"";

async fn shell(
    ctx: &Ctx<'_>,
    host: &str,
    script: &str,
    path: &str,
    stdin: Option<&[u8]>,
) -> Result<(), ExecError> {
    let pg = ctx.pg(host);
    let mut argv = become_argv(ctx.cfg.become_method, &pg.dbsu);
    argv.extend(["sh", "-c", script, "sh", path]);
    let out = ctx
        .runner
        .run(&ctx.target(host), &argv, stdin, ctx.cfg.timeout)
        .await?;
    if out.status != 0 {
        return Err(ExecError::Failed {
            host: host.into(),
            what: format!("writing {path}"),
            stderr: out.stderr.trim().into(),
        });
    }
    Ok(())
}

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
    shell(ctx, host, WRITE, &path, Some(text.as_bytes())).await?;
    let errors = psql(ctx, host, "postgres", "SELECT string_agg(line_number || ': ' || error, '; ') FROM pg_hba_file_rules WHERE error IS NOT NULL;").await?;
    if !errors.is_empty() {
        shell(ctx, host, RESTORE, &path, None).await?;
        psql(ctx, host, "postgres", "SELECT pg_reload_conf();").await?;
        return Err(ExecError::Refused(format!("{host}: PostgreSQL rejected the new pg_hba.conf (line {errors}); the previous file is back in place")));
    }
    psql(ctx, host, "postgres", "SELECT pg_reload_conf();").await?;
    Ok(format!(
        "pg_hba.conf written for live role {role} and reloaded"
    ))
}
