//! The template databases of a cluster pgitops bootstrapped (the `templates/init` action): what
//! Pigsty's `pg-init` runs after bootstrap (`pg-init-template.sql` in `template1`, then in
//! `postgres`), from [`crate::render::sql::template_init`].
//!
//! In: the live primary and the step. Out: the primary's result. Only on a cluster whose
//! primary runs the Patroni configuration pgitops wrote: a cluster Pigsty bootstrapped had its
//! templates initialised by Pigsty, and a PostgreSQL found running is never re-templated. The
//! extensions the server has are asked first (`pg_available_extensions`): default extensions it
//! lacks (Debian's PostgreSQL has no `pg_repack`) are skipped and named, as Pigsty's `pg-init`
//! runs on past them. Every statement is idempotent: a second run changes nothing.

use super::objects::{run, Primary};
use super::patroni_node::MARK;
use super::root_sh::sh;
use super::{on_host, Ctx, Outcome};
use crate::execute::ExecError;
use crate::plan::ObjectStep;
use crate::render::sql;

/// Prints `ours` when the Patroni configuration on the node was written by pgitops (`$1`: its
/// first line).
pub(super) const OURS: &str = r#"if [ "$(head -n 1 /etc/patroni/patroni.yml 2>/dev/null)" = "$1" ]; then echo ours; else echo other; fi"#;

pub(super) async fn init(ctx: &Ctx<'_>, p: &Primary, step: &ObjectStep) -> Outcome {
    let ObjectStep::TemplateInit { dbsu, lists, sql } = step else {
        return Err(ExecError::Refused("not a template init step".into()));
    };
    let host = on_host(ctx, &p.host, || async {
        let mark = MARK.trim_end();
        let what = "reading the Patroni configuration's first line";
        let target = ctx.target(&p.host);
        if sh(ctx, &target, what, OURS, &[mark], None).await? != "ours" {
            return Ok("not bootstrapped by pgitops (its templates are Pigsty's or its own): nothing done".to_string());
        }
        let available: Vec<String> = run(ctx, p, "postgres", &sql::available_extensions(), &[])
            .await?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let sc = sql.context(Some(p.major));
        let init = sql::template_init(dbsu, &lists.0, Some(&available), &sc)
            .map_err(|e| ExecError::Refused(e.to_string()))?;
        for db in ["template1", "postgres"] {
            run(ctx, p, db, &init.script, &[]).await?;
        }
        Ok(match init.skipped.is_empty() {
            true => "template1 and postgres initialised as Pigsty's bootstrap does".to_string(),
            false => format!(
                "template1 and postgres initialised as Pigsty's bootstrap does; default extensions not on this server, skipped: {}",
                init.skipped.join(", ")
            ),
        })
    })
    .await;
    Ok((String::new(), vec![host]))
}
