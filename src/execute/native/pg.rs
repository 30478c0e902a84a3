//! PostgreSQL access on a host: psql as the dbsu on the local socket, SQL on stdin; and the
//! live roles of a cluster's members.

use super::Ctx;
use crate::execute::runner::{Output, Started};
use crate::execute::settings::PgSettings;
use crate::execute::{Become, ExecError};
use crate::inventory::model::PgCluster;
use crate::render::sql::conninfo_value;

/// The command prefix that runs as the dbsu.
pub fn become_argv(how: Become, dbsu: &str) -> Vec<&str> {
    match how {
        Become::Runuser => vec!["runuser", "-u", dbsu, "--"],
        Become::Sudo => vec!["sudo", "-n", "-u", dbsu, "--"],
        Become::None => vec![],
    }
}

/// `psql` on the host's socket (`pg`: its settings), connected to `db`, unaligned and
/// tuples-only, to be run as the dbsu; the caller adds how it passes SQL.
pub fn psql_argv(pg: PgSettings, db: &str) -> Result<Vec<String>, ExecError> {
    let dbname = format!(
        "dbname={} application_name=pgitops",
        conninfo_value(db).map_err(|e| ExecError::Refused(e.to_string()))?
    );
    Ok(vec![
        format!("{}/psql", pg.bin_dir),
        "-X".into(),
        "-q".into(),
        "-A".into(),
        "-t".into(),
        "-v".into(),
        "ON_ERROR_STOP=1".into(),
        "-h".into(),
        pg.socket_dir,
        "-p".into(),
        pg.port.to_string(),
        "-d".into(),
        dbname,
    ])
}

/// Runs `sql` (psql input) in database `db` on `host`; returns psql's unaligned, tuples-only output.
pub async fn psql(ctx: &Ctx<'_>, host: &str, db: &str, sql: &str) -> Result<String, ExecError> {
    let argv = psql_stdin_argv(ctx, host, db)?;
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let target = ctx.target(host);
    let out = ctx
        .runner
        .run(&target, &argv, Some(sql.as_bytes()), ctx.cfg.timeout)
        .await?;
    psql_output(host, out)
}

/// psql on `host`, connected to `db` and waiting for its input: it does nothing until
/// [`Psql::run`] sends a script (an unused one is ended with empty input).
pub struct Psql {
    pub host: String,
    pub db: String,
    started: Started,
}

pub async fn start_psql(ctx: &Ctx<'_>, host: &str, db: &str) -> Result<Psql, ExecError> {
    let argv = psql_stdin_argv(ctx, host, db)?;
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let started = ctx
        .runner
        .start(&ctx.target(host), &argv, ctx.cfg.timeout)
        .await?;
    Ok(Psql {
        host: host.to_string(),
        db: db.to_string(),
        started,
    })
}

impl Psql {
    pub async fn run(self, ctx: &Ctx<'_>, sql: &str) -> Result<String, ExecError> {
        // Started earlier; the script is the step: fenced again now (`[ha]`).
        ctx.runner.check_fence()?;
        let target = ctx.target(&self.host);
        let out = self
            .started
            .send(&target, sql.as_bytes(), ctx.cfg.timeout)
            .await?;
        psql_output(&self.host, out)
    }
}

/// As the dbsu: psql reading its script from stdin.
fn psql_stdin_argv(ctx: &Ctx<'_>, host: &str, db: &str) -> Result<Vec<String>, ExecError> {
    let pg = ctx.pg(host);
    let mut argv: Vec<String> = become_argv(ctx.cfg.become_method, &pg.dbsu)
        .into_iter()
        .map(str::to_string)
        .collect();
    argv.extend(psql_argv(pg, db)?);
    argv.extend(["-f".into(), "-".into()]);
    Ok(argv)
}

fn psql_output(host: &str, out: Output) -> Result<String, ExecError> {
    if out.status != 0 {
        // runuser/sudo complain when the login user's home is not readable by the dbsu: noise.
        let stderr: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.starts_with("could not change directory to"))
            .collect();
        return Err(ExecError::Failed {
            host: host.to_string(),
            what: "psql".into(),
            stderr: stderr.join("\n"),
        });
    }
    Ok(out.stdout.trim().to_string())
}

const PROBE: &str =
    "SELECT pg_is_in_recovery(), current_setting('server_version_num')::int / 10000;";

/// Asks `host` whether it is in recovery, and its major version (`f|15`): through the host's
/// long-lived psql conversation (a connection named `pgitops` that stays open as long as the
/// runner), or a one-shot psql when there is none.
pub async fn probe(ctx: &Ctx<'_>, host: &str) -> Result<String, ExecError> {
    let argv = psql_stdin_argv(ctx, host, "postgres")?;
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let target = ctx.target(host);
    match ctx
        .runner
        .ask(&target, &argv, PROBE, ctx.cfg.timeout)
        .await?
    {
        Some(line) => Ok(line),
        None => psql(ctx, host, "postgres", PROBE).await,
    }
}

/// The live primary of a cluster: the one member that is not in recovery. Also returns the
/// server's major version. Refuses when no member, or more than one, answers primary.
pub async fn live_primary(ctx: &Ctx<'_>, c: &PgCluster) -> Result<(String, u32), ExecError> {
    let probes = c
        .members
        .keys()
        .map(|host| async move { (host.clone(), probe(ctx, host).await) });
    let mut primaries = Vec::new();
    let mut errors = Vec::new();
    for (host, out) in futures::future::join_all(probes).await {
        match out {
            Ok(out) => {
                let mut cols = out.split('|');
                if cols.next() == Some("f") {
                    primaries.push((host, cols.next().and_then(|v| v.parse().ok()).unwrap_or(15)));
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    match primaries.len() {
        1 => Ok(primaries.remove(0)),
        0 => Err(ExecError::Refused(format!(
            "cluster {}: no member answers as primary ({})",
            c.name,
            if errors.is_empty() {
                "all are in recovery".into()
            } else {
                errors.join("; ")
            }
        ))),
        _ => Err(ExecError::Refused(format!(
            "cluster {}: several members answer as primary ({}); refusing to guess",
            c.name,
            primaries
                .iter()
                .map(|p| p.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
