//! Users and databases on the live primary: the SQL of [`crate::render::sql`], with a plaintext
//! password turned into a SCRAM-SHA-256 verifier here (md5 and SCRAM verifiers pass through).

use serde_yaml_ng::Mapping;

use super::pg::{live_primary, psql};
use super::{object_name, on_host, Ctx};
use crate::execute::{ExecError, HostResult};
use crate::inventory::model::PgCluster;
use crate::plan::steps::def;
use crate::plan::Action;
use crate::render::sql::{self, Script, Secret};
use crate::render::sql_context;

type Outcome = Result<(String, Vec<HostResult>), ExecError>;

fn cluster<'a>(ctx: &'a Ctx<'_>, a: &Action) -> Result<&'a PgCluster, ExecError> {
    ctx.cluster(a)
        .ok_or_else(|| ExecError::Refused(format!("cluster {} is not in the inventory", a.cluster)))
}

fn render(r: Result<Script, sql::SqlError>) -> Result<Script, ExecError> {
    r.map_err(|e| ExecError::Refused(e.to_string()))
}

/// A stored verifier is sent as is; anything else is plaintext and becomes a SCRAM verifier.
fn verifier(password: &str) -> String {
    let md5 = password.len() == 35
        && password.starts_with("md5")
        && password[3..].bytes().all(|b| b.is_ascii_hexdigit());
    if md5 || password.starts_with("SCRAM-SHA-256$") {
        password.to_string()
    } else {
        postgres_protocol::password::scram_sha_256(password.as_bytes())
    }
}

/// Runs a script on the primary; a failure's text never carries the verifier.
async fn run(
    ctx: &Ctx<'_>,
    host: &str,
    db: &str,
    script: &Script,
    secret: Option<&str>,
) -> Result<String, ExecError> {
    psql(ctx, host, db, &script.to_psql_input())
        .await
        .map_err(|e| match (e, secret) {
            (ExecError::Failed { host, what, stderr }, Some(s)) => ExecError::Failed {
                host,
                what,
                stderr: stderr.replace(s, "<redacted>"),
            },
            (e, _) => e,
        })
}

pub async fn user_upsert(ctx: &Ctx<'_>, a: &Action) -> Outcome {
    let c = cluster(ctx, a)?;
    let name = object_name(a);
    let d: &Mapping = def(&c.users, name)
        .ok_or_else(|| ExecError::Refused(format!("user {name} is not in pg_users")))?;
    let (primary, major) = live_primary(ctx, c).await?;
    let v = d.get("password").and_then(|p| p.as_str()).map(verifier);
    let secret = v
        .as_deref()
        .map(Secret::Verifier)
        .unwrap_or(Secret::Redacted);
    let script = render(sql::user_upsert(
        name,
        d,
        secret,
        &sql_context(ctx.new, c, Some(major)),
    ))?;
    let host = on_host(ctx, &primary, || async {
        run(ctx, &primary, "postgres", &script, v.as_deref())
            .await
            .map(|_| format!("user {name} converged on the live primary"))
    })
    .await;
    Ok((String::new(), vec![host]))
}

pub async fn user_drop(ctx: &Ctx<'_>, a: &Action) -> Outcome {
    let c = cluster(ctx, a)?;
    let name = object_name(a);
    let (primary, major) = live_primary(ctx, c).await?;
    let script = render(sql::user_drop(name, &sql_context(ctx.new, c, Some(major))))?;
    let host = on_host(ctx, &primary, || async {
        run(ctx, &primary, "postgres", &script, None)
            .await
            .map(|_| format!("user {name} dropped"))
    })
    .await;
    Ok((String::new(), vec![host]))
}

pub async fn database_upsert(ctx: &Ctx<'_>, a: &Action) -> Outcome {
    let c = cluster(ctx, a)?;
    let name = object_name(a).to_string();
    let d = def(&c.databases, &name)
        .ok_or_else(|| ExecError::Refused(format!("database {name} is not in pg_databases")))?;
    let (primary, major) = live_primary(ctx, c).await?;
    let s = sql::database_upsert(&name, d, &sql_context(ctx.new, c, Some(major)))
        .map_err(|e| ExecError::Refused(e.to_string()))?;
    let host = on_host(ctx, &primary, || async {
        run(ctx, &primary, s.admin_db, &s.create, None).await?;
        run(ctx, &primary, &name, &s.provision, None).await?;
        if !s.finish.statements.is_empty() {
            run(ctx, &primary, s.admin_db, &s.finish, None).await?;
        }
        Ok(format!("database {name} converged on the live primary"))
    })
    .await;
    Ok((String::new(), vec![host]))
}

/// Drops a database (approved destructive action); `recreate` creates it again afterwards.
/// Journaled (when the executor has a journal): a drop that finished is never run again, and a
/// run interrupted by a crash is completed, not repeated.
pub async fn database_drop(ctx: &Ctx<'_>, a: &Action, recreate: bool) -> Outcome {
    let journal = ctx.cfg.journal.as_ref();
    let entry = journal.map(|j| j.get(&a.id)).unwrap_or_default();
    if entry.has("done") {
        return Ok((
            "done before a restart (journal): not run again".into(),
            vec![],
        ));
    }
    let record = |step: Option<&'static str>| -> Result<(), ExecError> {
        let Some(j) = journal else { return Ok(()) };
        j.record(&a.id, |e| match step {
            None => e.started += 1,
            Some(s) => e.steps.push(s.to_string()),
        })
        .map(|_| ())
        .map_err(|e| ExecError::Refused(format!("writing the journal: {e}")))
    };
    let c = cluster(ctx, a)?;
    let name = object_name(a).to_string();
    let (primary, major) = live_primary(ctx, c).await?;
    let script = render(sql::database_drop(
        &name,
        &sql_context(ctx.new, c, Some(major)),
    ))?;
    let lit = sql::quote_literal(&name).map_err(|e| ExecError::Refused(e.to_string()))?;
    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = {lit};");
    record(None)?;
    let mut hosts = Vec::new();
    if !entry.has("dropped") {
        let host = on_host(ctx, &primary, || async {
            if entry.started > 0 && psql(ctx, &primary, "postgres", &exists).await? == "0" {
                return Ok(format!(
                    "database {name} was already dropped by an interrupted run"
                ));
            }
            run(ctx, &primary, "postgres", &script, None)
                .await
                .map(|_| format!("database {name} dropped"))
        })
        .await;
        let ok = host.ok;
        hosts.push(host);
        if !ok {
            return Ok((String::new(), hosts));
        }
        record(Some("dropped"))?;
    }
    let mut msg = String::new();
    if recreate {
        let (m, rest) = database_upsert(ctx, a).await?;
        msg = m;
        hosts.extend(rest);
    }
    if hosts.iter().all(|h| h.ok) {
        record(Some("done"))?;
    }
    Ok((msg, hosts))
}
