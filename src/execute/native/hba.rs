//! HBA on each target instance: render `pg_hba.conf` with the instance's **live** role, write it
//! atomically (keeping the previous file), check `pg_hba_file_rules` for error rows, then reload;
//! on any error put the previous file back and fail, so the node keeps accepting connections.

use super::pg::{become_argv, psql};
use super::{on_host, Ctx};
use crate::execute::{ExecError, HostResult};
use crate::inventory::model::str_var;
use crate::plan::Action;
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
    let mut argv = become_argv(ctx.cfg);
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

pub async fn apply(ctx: &Ctx<'_>, a: &Action) -> Result<(String, Vec<HostResult>), ExecError> {
    let c = ctx.cluster(a).ok_or_else(|| {
        ExecError::Refused(format!("cluster {} is not in the inventory", a.cluster))
    })?;
    // Instances are independent: all at once (each under its host's lock).
    let hosts = futures::future::join_all(
        a.hosts
            .iter()
            .map(|host| on_host(ctx, host, move || one(ctx, c, host))),
    )
    .await;
    Ok((
        "pgbouncer's pgb_hba.conf is not managed natively yet".into(),
        hosts,
    ))
}

async fn one(
    ctx: &Ctx<'_>,
    c: &crate::inventory::model::PgCluster,
    host: &str,
) -> Result<String, ExecError> {
    let declared = c
        .members
        .get(host)
        .map(|m| m.role.as_str())
        .unwrap_or("replica");
    let in_recovery = psql(ctx, host, "postgres", "SELECT pg_is_in_recovery();").await? == "t";
    let role = match (in_recovery, declared) {
        (false, _) => "primary",
        (true, "primary") => "replica",
        (true, r) => r,
    };
    let text = hba_for(ctx.new, c, host, Target::Postgres, Some(role))
        .map_err(|e| ExecError::Refused(e.to_string()))?;
    let data = ctx
        .new
        .tree
        .hosts
        .get(host)
        .and_then(|h| str_var(&h.vars, "pg_data"))
        .unwrap_or("/pg/data");
    let path = format!("{data}/pg_hba.conf");
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
