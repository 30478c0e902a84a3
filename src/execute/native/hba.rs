//! HBA on each target instance: `pg_hba.conf` for the instance's **live** role, written
//! atomically (keeping the previous file), checked with `pg_hba_file_rules`, then reloaded; on
//! any error the previous file is put back and the step fails, so the node keeps accepting
//! connections.
//!
//! In: the action (its hosts) and the new inventory. Out: one result per host. The live role is
//! read by the remote step itself, at the moment it writes (no window between looking and
//! writing): pgitops renders the file for both roles the instance can have now (primary, or its
//! standby role) and the node keeps the one that matches `pg_is_in_recovery()`.

use super::pg::{become_argv, psql_argv};
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::ExecError;
use crate::inventory::model::PgCluster;
use crate::plan::{Action, HbaFile, HbaStep};
use crate::render::hba::Target;
use crate::render::hba_for;

/// The one remote step per instance, a fixed script. Its arguments: `$1` the file path, `$2` the
/// byte length of the primary's file, then the psql command; none is part of the script text.
/// Stdin: the primary's file, then the standby's (`head -c` reads exactly the first one's
/// bytes). It asks the server whether it is in recovery, keeps the matching file (mode 0600),
/// writes it atomically, asks PostgreSQL to parse it and, in the same statement, reloads only
/// when no line is in error; otherwise (or when psql fails) it puts the previous file back and
/// exits 3 with the reason on stdout (4: the server could not be asked, nothing was written).
/// On success it prints the role it wrote.
const WRITE_CHECK_RELOAD: &str = r#"set -e
umask 077
f=$1; n=$2; shift 2
case "$("$@" -c "SELECT pg_is_in_recovery()" || true)" in
  f) pick=primary; head -c "$n" > "$f.pgitops-new"; cat > /dev/null ;;
  t) pick=standby; head -c "$n" > /dev/null; cat > "$f.pgitops-new" ;;
  *) cat > /dev/null; echo "psql could not ask whether the server is in recovery"; exit 4 ;;
esac
if [ -f "$f" ]; then cp -p "$f" "$f.pgitops-prev"; fi
mv "$f.pgitops-new" "$f"
restore() { if [ -f "$f.pgitops-prev" ]; then mv "$f.pgitops-prev" "$f"; fi; }
# One statement: the file's error lines, or (none) the reload.
if ! errors=$("$@" -c "SELECT CASE WHEN count(*) > 0 THEN string_agg('line ' || line_number || ': ' || error, '; ') WHEN pg_reload_conf() THEN 'reloaded' ELSE 'the reload was refused' END FROM pg_hba_file_rules WHERE error IS NOT NULL"); then
  restore; echo "psql could not check the file"; exit 3
fi
if [ "$errors" != reloaded ]; then restore; echo "$errors"; exit 3; fi
echo "$pick""#;

/// HBA files: nothing is observed beforehand; the remote step reads the live role itself.
pub(crate) struct Hba;

impl Component for Hba {
    type Step = HbaStep;
    type Observed = ();

    async fn observe(_: &Ctx<'_>, _: &Action, _: &HbaStep) -> Result<(), ExecError> {
        Ok(())
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, step: &HbaStep, _: ()) -> Outcome {
        let c = ctx.cluster(a)?;
        // Instances are independent: all at once (each under its host's lock).
        let hosts = futures::future::join_all(
            a.hosts
                .iter()
                .map(|host| on_host(ctx, host, move || one(ctx, c, host))),
        )
        .await;
        let message = match step.files.contains(&HbaFile::Pgbouncer) {
            true => "pgbouncer's pgb_hba.conf is not managed natively yet",
            false => "",
        };
        Ok((message.into(), hosts))
    }
}

async fn one(ctx: &Ctx<'_>, c: &PgCluster, host: &str) -> Result<String, ExecError> {
    // In recovery, an instance keeps its declared standby role (`replica`, `offline`, ...); a
    // declared primary that is in recovery now serves as a replica.
    let standby = match c.members.get(host).map(|m| m.role.as_str()) {
        None | Some("primary") => "replica",
        Some(r) => r,
    };
    let render = |role| {
        hba_for(ctx.new, c, host, Target::Postgres, Some(role))
            .map_err(|e| ExecError::Refused(e.to_string()))
    };
    let (primary, replica) = (render("primary")?, render(standby)?);
    let path = format!("{}/pg_hba.conf", ctx.pg(host).data);
    let length = primary.len().to_string();
    let psql = psql_argv(ctx, host, "postgres")?;
    let dbsu = ctx.pg(host).dbsu;
    let mut argv = become_argv(ctx.cfg.become_method, &dbsu);
    argv.extend(["sh", "-c", WRITE_CHECK_RELOAD, "sh", &path, &length]);
    argv.extend(psql.iter().map(String::as_str));
    let stdin = [primary.as_bytes(), replica.as_bytes()].concat();
    let out = ctx
        .runner
        .run(&ctx.target(host), &argv, Some(&stdin), ctx.cfg.timeout)
        .await?;
    match out.status {
        0 => {
            let role = match out.stdout.trim() {
                "primary" => "primary",
                _ => standby,
            };
            Ok(format!("pg_hba.conf written for live role {role} and reloaded"))
        }
        3 => Err(ExecError::Refused(format!(
            "{host}: PostgreSQL rejected the new pg_hba.conf ({}); the previous file is back in place",
            out.stdout.trim()
        ))),
        4 => Err(ExecError::Refused(format!(
            "{host}: {}; pg_hba.conf left as it was",
            out.stdout.trim()
        ))),
        _ => Err(ExecError::Failed {
            host: host.into(),
            what: format!("writing {path}"),
            stderr: out.stderr.trim().into(),
        }),
    }
}
