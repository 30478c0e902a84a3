//! pgbouncer's files on each target member: `userlist.txt`, `useropts.txt`, `database.txt`,
//! `pgb_hba.conf` under `/etc/pgbouncer`, each written as the dbsu (mode 0600) only when its
//! text differs, then one `RELOAD` on pgbouncer's admin console where a file changed (never a
//! restart).
//!
//! In: the action (its hosts and files) and the new inventory. Out: one result per host.
//! `observe` reads the verifiers of the userlist's users from `pg_authid` on the live primary
//! (as the dbsu, SQL on stdin); they travel only inside the file sent on the write step's stdin
//! and are never part of a message, a log line or an error.
//!
//! Why the admin console and not `kill -HUP`: on a Pigsty node the unit's `ExecReload` is
//! `kill -HUP $MAINPID`, and pgbouncer's `RELOAD` command runs the same configuration reload as
//! SIGHUP. The console needs no systemd, no pid file path and no knowledge of the supervisor
//! (systemd on Pigsty, none on the sandbox), and its answer proves that pgbouncer runs and took
//! the command. It connects as the dbsu over the local socket, which Pigsty's default
//! `pgb_default_hba_rules` admit (`${dbsu}` / `pgbouncer` / `local` / `peer`) and `admin_users`
//! lists; the old `pgb_hba.conf` is still in force at that moment.

use std::fmt;

use super::pg::{become_argv, live_primary, psql, psql_argv};
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::ExecError;
use crate::inventory::model::port_var;
use crate::plan::{Action, PgbFile, PgbStep};
use crate::render::hba::Target;
use crate::render::pgbouncer::{database_txt, userlist, userlist_users, useropts};
use crate::render::{hba_for, sql::quote_literal};

/// Writes stdin to `$1` atomically if it differs; prints `changed` or `unchanged`. Fixed text:
/// the path is an argument, the content comes on stdin.
const WRITE_IF_CHANGED: &str = r#"set -e
umask 077
f=$1
cat > "$f.pgitops-new"
if [ -f "$f" ] && cmp -s "$f.pgitops-new" "$f"; then rm -f "$f.pgitops-new"; echo unchanged; exit 0; fi
mv -f "$f.pgitops-new" "$f"
echo changed"#;

/// `(role, verifier)` rows from `pg_authid`; `Debug` never shows a verifier.
pub(crate) struct Verifiers(Vec<(String, String)>);

impl fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verifiers({} roles)", self.0.len())
    }
}

pub(crate) struct Pgbouncer;

impl Component for Pgbouncer {
    type Step = PgbStep;
    /// The verifiers when `userlist.txt` is among the files.
    type Observed = Option<Verifiers>;

    async fn observe(
        ctx: &Ctx<'_>,
        a: &Action,
        step: &PgbStep,
    ) -> Result<Self::Observed, ExecError> {
        if !step.files.contains(&PgbFile::Userlist) {
            return Ok(None);
        }
        let c = ctx.cluster(a)?;
        let mut names: Vec<String> = vec![];
        for host in &a.hosts {
            let users =
                userlist_users(ctx.new, host).map_err(|e| ExecError::Refused(e.to_string()))?;
            names.extend(users.into_iter().skip(1)); // the dbsu's entry is empty
        }
        names.sort();
        names.dedup();
        let (primary, _) = live_primary(ctx, c).await?;
        let mut list = Vec::with_capacity(names.len());
        for n in &names {
            list.push(quote_literal(n).map_err(|e| ExecError::Refused(e.to_string()))?);
        }
        let sql = format!(
            "SELECT rolname, coalesce(rolpassword, '') FROM pg_authid WHERE rolname IN ({}) ORDER BY 1;\n",
            list.join(", ")
        );
        let out = psql(ctx, &primary, "postgres", &sql).await?;
        let rows = out
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Ok(Some(Verifiers(rows)))
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, step: &PgbStep, now: Self::Observed) -> Outcome {
        let now = &now;
        let hosts = futures::future::join_all(a.hosts.iter().map(|host| {
            on_host(ctx, host, move || async move {
                one(ctx, a, step, host, now.as_ref()).await
            })
        }))
        .await;
        Ok((String::new(), hosts))
    }
}

/// The text of `file` for `host`.
fn render(
    ctx: &Ctx<'_>,
    a: &Action,
    host: &str,
    file: PgbFile,
    v: Option<&Verifiers>,
) -> Result<String, ExecError> {
    let refused = |e: &dyn ToString| ExecError::Refused(format!("{host}: {}", e.to_string()));
    match file {
        PgbFile::Useropts => useropts(ctx.new, host).map_err(|e| refused(&e)),
        PgbFile::Databases => database_txt(ctx.new, host).map_err(|e| refused(&e)),
        PgbFile::Hba => hba_for(ctx.new, ctx.cluster(a)?, host, Target::Pgbouncer, None)
            .map_err(|e| refused(&e)),
        PgbFile::Userlist => {
            let users = userlist_users(ctx.new, host).map_err(|e| refused(&e))?;
            let found = v.map(|v| v.0.as_slice()).unwrap_or_default();
            let mut entries = vec![(users[0].clone(), String::new())];
            for u in &users[1..] {
                // A role missing from pg_authid gets no entry (Pigsty's pgb-user fails for it).
                if let Some((n, ver)) = found.iter().find(|(n, _)| n == u) {
                    entries.push((n.clone(), ver.clone()));
                }
            }
            userlist(&entries).map_err(|e| refused(&e))
        }
    }
}

async fn one(
    ctx: &Ctx<'_>,
    a: &Action,
    step: &PgbStep,
    host: &str,
    v: Option<&Verifiers>,
) -> Result<String, ExecError> {
    let pg = ctx.pg(host);
    let target = ctx.target(host);
    let mut changed = vec![];
    for &file in &step.files {
        let text = render(ctx, a, host, file, v)?;
        let path = format!("/etc/pgbouncer/{}", file.name());
        let mut argv = become_argv(ctx.cfg.become_method, &pg.dbsu);
        argv.extend(["sh", "-c", WRITE_IF_CHANGED, "sh", &path]);
        let out = ctx
            .runner
            .run(&target, &argv, Some(text.as_bytes()), ctx.cfg.timeout)
            .await?;
        match (out.status, out.stdout.trim()) {
            (0, "changed") => changed.push(file.name()),
            (0, "unchanged") => {}
            _ => {
                return Err(ExecError::Failed {
                    host: host.into(),
                    what: format!("writing {path}"),
                    stderr: out.stderr.trim().into(),
                })
            }
        }
    }
    if changed.is_empty() {
        return Ok("pgbouncer files unchanged; not reloaded".into());
    }
    reload(ctx, host, &format!("writing {}", changed.join(", "))).await?;
    Ok(format!(
        "written {}; pgbouncer reloaded",
        changed.join(", ")
    ))
}

/// `RELOAD` on the admin console of `host`'s pgbouncer (as the dbsu over the local socket, on
/// `pgbouncer_port`); `after` names what was written, for the error.
pub(super) async fn reload(ctx: &Ctx<'_>, host: &str, after: &str) -> Result<(), ExecError> {
    let vars = ctx.new.tree.hosts.get(host).map(|h| &h.vars);
    let port = vars.and_then(|v| port_var(v, "pgbouncer_port").ok().flatten());
    let mut console = ctx.pg(host);
    console.port = port.unwrap_or(6432);
    let dbsu = console.dbsu.clone();
    let psql = psql_argv(console, "pgbouncer")?;
    let mut argv = become_argv(ctx.cfg.become_method, &dbsu);
    argv.extend(psql.iter().map(String::as_str));
    let out = ctx
        .runner
        .run(
            &ctx.target(host),
            &argv,
            Some(b"RELOAD;\n"),
            ctx.cfg.timeout,
        )
        .await?;
    if out.status != 0 {
        return Err(ExecError::Failed {
            host: host.into(),
            what: format!("pgbouncer RELOAD after {after}"),
            stderr: out.stderr.trim().into(),
        });
    }
    Ok(())
}
