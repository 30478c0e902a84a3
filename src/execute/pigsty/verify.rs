//! After a Pigsty object playbook: is the declared result there? Pigsty's psql steps exit 0
//! whatever their SQL did (errors go to `/pg/tmp/pg-db-<name>.log` or nowhere), so PLAY RECAP
//! alone cannot say an action worked.
//!
//! In: the action and its context. Out: `None` when the catalogs hold what the inventory
//! declares, else what differs (see [`crate::render::sql::verify`] for what is compared), plus
//! the `ERROR` lines a database playbook appended to Pigsty's log during the run ([`LogMark`]).

use super::super::native::{pg, Ctx};
use crate::execute::ExecError;
use crate::plan::{Action, ObjectStep, Step};
use crate::render::sql::{self, verify};

/// Where Pigsty's `pgsql-db.yml` appends psql's output for database `name` (on the primary).
fn db_log(name: &str) -> String {
    format!("/pg/tmp/pg-db-{name}.log")
}

/// The size of the database log before the run: what follows it is this run's.
pub struct LogMark {
    host: String,
    path: String,
    size: u64,
}

/// Marks the end of the log a database action's playbook will append to (none for others).
pub async fn mark(ctx: &Ctx<'_>, a: &Action) -> Option<LogMark> {
    let Step::Object(ObjectStep::DatabaseUpsert { name, .. }) = &a.step else {
        return None;
    };
    let c = ctx.cluster(a).ok()?;
    let (host, _) = pg::live_primary(ctx, c).await.ok()?;
    let path = db_log(name);
    let out = ctx
        .runner
        .run(
            &ctx.target(&host),
            &["stat", "-c", "%s", &path],
            None,
            ctx.cfg.timeout,
        )
        .await
        .ok()?;
    // A log that does not exist yet is empty.
    let size = out.stdout.trim().parse().unwrap_or(0);
    Some(LogMark { host, path, size })
}

/// For a user action: whether its role exists before the playbook runs (`None`: not a user
/// action, or it could not be asked). A role that did not exist and does afterwards was
/// created by this run, and only such roles become pgitops' own.
pub async fn role_before(ctx: &Ctx<'_>, a: &Action) -> Option<bool> {
    let Step::Object(ObjectStep::UserUpsert { name, .. }) = &a.step else {
        return None;
    };
    let (primary, _) = pg::live_primary(ctx, ctx.cluster(a).ok()?).await.ok()?;
    let q = verify::user_facts(name).ok()?;
    Some(!facts(ctx, &primary, "postgres", &q).await.ok()?.is_null())
}

/// The `ERROR` lines appended to the log since `mark`.
async fn errors_since(ctx: &Ctx<'_>, mark: &LogMark) -> Result<Vec<String>, ExecError> {
    let from = format!("+{}", mark.size + 1);
    let argv = ["tail", "-c", &from, &mark.path];
    let out = ctx
        .runner
        .run(&ctx.target(&mark.host), &argv, None, ctx.cfg.timeout)
        .await?;
    Ok(out
        .stdout
        .lines()
        .filter(|l| l.contains("ERROR:"))
        .map(str::to_string)
        .collect())
}

/// The catalogs' answer to a facts query (one JSON value) in `db` on `host`.
async fn facts(
    ctx: &Ctx<'_>,
    host: &str,
    db: &str,
    query: &str,
) -> Result<serde_json::Value, ExecError> {
    let text = pg::psql(ctx, host, db, query).await?;
    serde_json::from_str(text.trim())
        .map_err(|e| ExecError::Refused(format!("reading the catalogs' answer: {e}")))
}

/// What the catalogs (and Pigsty's log) say went wrong, if anything.
pub async fn check(
    ctx: &Ctx<'_>,
    a: &Action,
    mark: Option<&LogMark>,
) -> Result<Option<String>, ExecError> {
    let Step::Object(o) = &a.step else {
        return Ok(None);
    };
    let refused = |e: sql::SqlError| ExecError::Refused(e.to_string());
    let (primary, _) = pg::live_primary(ctx, ctx.cluster(a)?).await?;
    let ask = |db: &'static str, q: Result<String, sql::SqlError>| {
        let primary = primary.clone();
        async move { facts(ctx, &primary, db, &q.map_err(refused)?).await }
    };
    let gone = |what: &str, name: &str, live: serde_json::Value| match live.is_null() {
        true => vec![],
        false => vec![format!("{what} {name:?} still exists")],
    };
    let mut wrong = match o {
        ObjectStep::DefaultRoles { .. } | ObjectStep::TemplateInit { .. } => vec![],
        ObjectStep::UserUpsert { name, def, .. } => {
            let live = ask("postgres", verify::user_facts(name)).await?;
            verify::user_mismatches(name, &def.0, &live).map_err(refused)?
        }
        ObjectStep::UserDrop { name, .. } => gone(
            "role",
            name,
            ask("postgres", verify::user_facts(name)).await?,
        ),
        ObjectStep::DatabaseUpsert {
            name,
            def,
            sql: target,
            ..
        }
        | ObjectStep::DatabaseRecreate {
            name,
            def,
            sql: target,
        } => {
            let live = ask("postgres", verify::database_facts(name)).await?;
            let inner = match live.is_object() {
                true => Some(facts(ctx, &primary, name, &verify::database_inner_facts()).await?),
                false => None,
            };
            let privileges = target
                .default_privileges
                .as_ref()
                .is_ok_and(|p| !p.is_empty());
            verify::database_mismatches(name, &def.0, &live, inner.as_ref(), privileges)
                .map_err(refused)?
        }
        ObjectStep::DatabaseDrop { name, .. } => gone(
            "database",
            name,
            ask("postgres", verify::database_facts(name)).await?,
        ),
    };
    if let Some(m) = mark {
        let errors = errors_since(ctx, m).await?;
        if !errors.is_empty() {
            wrong.push(format!("{} on {}: {}", m.path, m.host, errors.join(" | ")));
        }
    }
    Ok((!wrong.is_empty()).then(|| format!("on {primary}: {}", wrong.join("; "))))
}
