//! Users and databases on the live primary: the SQL of [`crate::render::sql`], with a plaintext
//! password turned into a SCRAM-SHA-256 verifier here (md5 and SCRAM verifiers pass through).

use super::pg::{live_primary, psql, start_psql, Psql};
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::ExecError;
use crate::plan::{Action, Definition, ObjectStep};
use crate::render::sql::{self, Script, Secret, SqlContext};

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

/// Runs a script on the primary (through the psql started early when it waits in `db`); a
/// failure's text never carries the verifier.
pub(super) async fn run(
    ctx: &Ctx<'_>,
    p: &Primary,
    db: &str,
    script: &Script,
    secrets: &[String],
) -> Result<String, ExecError> {
    let input = script.to_psql_input();
    let early = p.early(db);
    let out = match early {
        Some(psql) => psql.run(ctx, &input).await,
        None => psql(ctx, &p.host, db, &input).await,
    };
    out.map_err(|e| match e {
        ExecError::Failed { host, what, stderr } => ExecError::Failed {
            host,
            what,
            stderr: secrets
                .iter()
                .fold(stderr, |t, s| t.replace(s.as_str(), "<redacted>")),
        },
        e => e,
    })
}

/// Users and databases: observed is the live primary and its major version.
pub(crate) struct Objects;

pub(crate) struct Primary {
    pub(super) host: String,
    pub(super) major: u32,
    /// psql started on the declared primary while the members were asked, when that is the
    /// live primary: it has run nothing yet.
    early: std::sync::Mutex<Option<Psql>>,
}

impl Primary {
    /// The early psql, when it waits in `db`.
    fn early(&self, db: &str) -> Option<Psql> {
        let mut early = self.early.lock().expect("early psql");
        early.take_if(|p| p.db == db)
    }

    /// Ends the early psql if no script used it.
    async fn finish(self, ctx: &Ctx<'_>) {
        let early = self.early.into_inner().expect("early psql");
        if let Some(psql) = early {
            let _ = psql.run(ctx, "").await;
        }
    }
}

impl Component for Objects {
    type Step = ObjectStep;
    type Observed = Primary;

    /// Asks every member whether it is the primary. Meanwhile psql connects on the declared
    /// primary (nothing is sent to it until the answers agree it is the live one), which saves
    /// a connection's time on the common path.
    async fn observe(ctx: &Ctx<'_>, a: &Action, _: &ObjectStep) -> Result<Primary, ExecError> {
        let c = ctx.cluster(a)?;
        let early = async {
            match &c.primary {
                Some(host) => start_psql(ctx, host, "postgres").await.ok(),
                None => None,
            }
        };
        let (live, early) = tokio::join!(live_primary(ctx, c), early);
        let (early, unused) = match early {
            Some(p) if live.as_ref().is_ok_and(|(h, _)| *h == p.host) => (Some(p), None),
            other => (None, other),
        };
        if let Some(psql) = unused {
            let _ = psql.run(ctx, "").await;
        }
        let (host, major) = live?;
        Ok(Primary {
            host,
            major,
            early: std::sync::Mutex::new(early),
        })
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, step: &ObjectStep, p: Primary) -> Outcome {
        let mut outcome = execute(ctx, a, step, &p).await;
        p.finish(ctx).await;
        let declared = ctx.new.model.pgsql.get(&a.cluster);
        let declared = declared.and_then(|c| c.primary.as_deref());
        if let (Ok((_, hosts)), Some(declared)) = (&mut outcome, declared) {
            for h in hosts.iter_mut().filter(|h| h.host != declared) {
                h.detail += &format!(
                    " (the inventory declares {declared} primary: a failover happened; left as it is, pgitops never switches back by itself: declare `pg_role: primary` on {} to record it, or commit nothing and keep {declared} declared until a commit moves `pg_role`)",
                    h.host
                );
            }
        }
        outcome
    }
}

async fn execute(ctx: &Ctx<'_>, a: &Action, step: &ObjectStep, p: &Primary) -> Outcome {
    match step {
        ObjectStep::DefaultRoles { roles, sql } => {
            default_roles(ctx, p, roles, &sql.context(Some(p.major))).await
        }
        ObjectStep::TemplateInit { .. } => super::template::init(ctx, p, step).await,
        ObjectStep::UserUpsert { name, def, sql, .. } => {
            user_upsert(ctx, p, name, def, &sql.context(Some(p.major))).await
        }
        ObjectStep::UserDrop {
            name,
            sql,
            reassign_to: Some(to),
        } => user_drop_reassign(ctx, p, name, to, &sql.context(Some(p.major))).await,
        ObjectStep::UserDrop {
            name,
            sql,
            reassign_to: None,
        } => {
            let script = render(sql::user_drop(name, &sql.context(Some(p.major))))?;
            let host = on_host(ctx, &p.host, || async {
                run(ctx, p, "postgres", &script, &[])
                    .await
                    .map(|_| format!("user {name} dropped"))
            })
            .await;
            Ok((String::new(), vec![host]))
        }
        ObjectStep::DatabaseUpsert { name, def, sql, .. } => {
            database_upsert(ctx, p, name, def, &sql.context(Some(p.major))).await
        }
        ObjectStep::DatabaseDrop { name, sql } => {
            database_drop(ctx, a, p, name, None, &sql.context(Some(p.major))).await
        }
        ObjectStep::DatabaseRecreate { name, def, sql } => {
            database_drop(ctx, a, p, name, Some(def), &sql.context(Some(p.major))).await
        }
    }
}

async fn user_upsert(
    ctx: &Ctx<'_>,
    p: &Primary,
    name: &str,
    def: &Definition,
    sc: &SqlContext<'_>,
) -> Outcome {
    let v = def.0.get("password").and_then(|p| p.as_str()).map(verifier);
    let secret = v
        .as_deref()
        .map(Secret::Verifier)
        .unwrap_or(Secret::Redacted);
    let script = render(sql::user_upsert(name, &def.0, secret, sc))?;
    let created = std::sync::atomic::AtomicBool::new(false);
    let host = on_host(ctx, &p.host, || async {
        let out = run(ctx, p, "postgres", &script, v.as_slice()).await?;
        let made = out.lines().any(|l| l.trim() == sql::CREATED_MARK);
        created.store(made, std::sync::atomic::Ordering::Relaxed);
        Ok(match made {
            true => format!("user {name} created on the live primary"),
            false => format!("user {name} converged on the live primary"),
        })
    })
    .await;
    let message = match created.into_inner() {
        true => CREATED.to_string(),
        false => String::new(),
    };
    Ok((message, vec![host]))
}

/// The message of a user action that created its role (it did not exist before).
pub(crate) const CREATED: &str = "created: the role did not exist before";

/// The databases a role's objects can be reached in (`datallowconn`), names hex-encoded so that
/// any name survives psql's line output.
const CONNECTABLE: &str = "SELECT encode(convert_to(datname, 'UTF8'), 'hex') \
    FROM pg_catalog.pg_database WHERE datallowconn ORDER BY datname;";

fn unhex(line: &str) -> Option<String> {
    String::from_utf8(hex::decode(line.trim()).ok()?).ok()
}

/// `state: absent`, as Pigsty's `pg-drop-role <role> <dbsu> --force`: disable login and end the
/// role's sessions, then in every database that allows connections reassign what it owns to the
/// dbsu and drop its privileges (one transaction per database: a failed REASSIGN drops nothing),
/// then drop the role. A failure stops there and says what was done; the next apply resumes.
async fn user_drop_reassign(
    ctx: &Ctx<'_>,
    p: &Primary,
    name: &str,
    to: &str,
    sc: &SqlContext<'_>,
) -> Outcome {
    let prepare = render(sql::user_drop_prepare(name, to, sc))?;
    let reassign = render(sql::user_reassign(name, to))?;
    let drop = render(sql::user_drop_role(name))?;
    let host =
        on_host(ctx, &p.host, || async {
            run(ctx, p, "postgres", &prepare, &[]).await?;
            let listed = psql(ctx, &p.host, "postgres", CONNECTABLE).await?;
            let dbs: Vec<String> = listed.lines().filter_map(unhex).collect();
            let mut done = vec![];
            let partial =
                |done: &[String], cause| ExecError::Partial {
                    done: format!(
                "disabled login of {name} and ended its sessions; reassigned to {to} in: {}",
                if done.is_empty() { "none".to_string() } else { done.join(", ") }
            ),
                    cause: Box::new(cause),
                };
            for db in &dbs {
                if let Err(e) = run(ctx, p, db, &reassign, &[]).await {
                    return Err(partial(&done, e));
                }
                done.push(db.clone());
            }
            match run(ctx, p, "postgres", &drop, &[]).await {
                Ok(_) => Ok(format!(
                    "user {name} dropped; what it owned in {} database(s) now belongs to {to}",
                    dbs.len()
                )),
                Err(e) => Err(partial(&done, e)),
            }
        })
        .await;
    Ok((String::new(), vec![host]))
}

/// `pg_default_roles` in one transaction; a password (a verifier, as for users) only reaches a
/// role the script creates.
async fn default_roles(
    ctx: &Ctx<'_>,
    p: &Primary,
    roles: &[(String, Definition)],
    sc: &SqlContext<'_>,
) -> Outcome {
    let verifiers: Vec<Option<String>> = roles
        .iter()
        .map(|(_, d)| d.0.get("password").and_then(|p| p.as_str()).map(verifier))
        .collect();
    let list: Vec<sql::DefaultRole> = roles
        .iter()
        .zip(&verifiers)
        .map(|((name, def), v)| sql::DefaultRole {
            name,
            def: &def.0,
            password: v.as_deref().map(Secret::Verifier),
        })
        .collect();
    let script = render(sql::default_roles(&list, sc))?;
    let secrets: Vec<String> = verifiers.into_iter().flatten().collect();
    let host = on_host(ctx, &p.host, || async {
        run(ctx, p, "postgres", &script, &secrets).await.map(|_| {
            format!(
                "{} default roles converged on the live primary",
                roles.len()
            )
        })
    })
    .await;
    Ok((String::new(), vec![host]))
}

/// CREATE DATABASE runs on its own (it cannot run in a transaction block); what follows runs in
/// transactions of its own. When the database was created by this run and a later script fails,
/// the result says `created database <name>; then failed: <why>`: the database stays, the
/// cluster's state does not advance, and the next apply converges it.
async fn database_upsert(
    ctx: &Ctx<'_>,
    p: &Primary,
    name: &str,
    def: &Definition,
    sc: &SqlContext<'_>,
) -> Outcome {
    let s =
        sql::database_upsert(name, &def.0, sc).map_err(|e| ExecError::Refused(e.to_string()))?;
    let host = on_host(ctx, &p.host, || async {
        let created = sql::DbScripts::created(&run(ctx, p, s.admin_db, &s.create, &[]).await?);
        let rest = async {
            run(ctx, p, name, &s.provision, &[]).await?;
            if !s.finish.statements.is_empty() {
                run(ctx, p, s.admin_db, &s.finish, &[]).await?;
            }
            Ok(())
        };
        match (rest.await, created) {
            (Ok(()), true) => Ok(format!("database {name} created on the live primary")),
            (Ok(()), false) => Ok(format!("database {name} converged on the live primary")),
            (Err(cause), true) => Err(ExecError::Partial {
                done: format!("created database {name}"),
                cause: Box::new(cause),
            }),
            (Err(e), false) => Err(e),
        }
    })
    .await;
    Ok((String::new(), vec![host]))
}

/// Drops a database (approved destructive action); `recreate` creates it again afterwards.
/// Journaled (when the executor has a journal): a drop that finished is never run again, and a
/// run interrupted by a crash is completed, not repeated.
async fn database_drop(
    ctx: &Ctx<'_>,
    a: &Action,
    p: &Primary,
    name: &str,
    recreate: Option<&Definition>,
    sc: &SqlContext<'_>,
) -> Outcome {
    let journal = ctx.cfg.journal.as_ref();
    let entry = journal.map(|j| j.get(&a.id)).unwrap_or_default();
    if entry.has("done") {
        return Ok((
            "done before a restart (journal): not run again".into(),
            vec![],
        ));
    }
    let record = |step: Option<&'static str>| async move {
        let Some(j) = journal else { return Ok(()) };
        j.record(&a.id, |e| match step {
            None => e.started += 1,
            Some(s) => e.steps.push(s.to_string()),
        })
        .await
        .map(|_| ())
        .map_err(|e| ExecError::Refused(format!("writing the journal: {e}")))
    };
    let script = render(sql::database_drop(name, sc))?;
    let lit = sql::quote_literal(name).map_err(|e| ExecError::Refused(e.to_string()))?;
    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = {lit};");
    record(None).await?;
    let mut hosts = Vec::new();
    let primary = &p.host;
    if !entry.has("dropped") {
        let host = on_host(ctx, primary, || async {
            if entry.started > 0 && psql(ctx, primary, "postgres", &exists).await? == "0" {
                return Ok(format!(
                    "database {name} was already dropped by an interrupted run"
                ));
            }
            run(ctx, p, "postgres", &script, &[])
                .await
                .map(|_| format!("database {name} dropped"))
        })
        .await;
        let ok = host.ok;
        hosts.push(host);
        if !ok {
            return Ok((String::new(), hosts));
        }
        record(Some("dropped")).await?;
    }
    let mut msg = String::new();
    if entry.has("dropped") {
        msg = format!(
            "database {name} was dropped before a restart or takeover (journal): not dropped again"
        );
    }
    if let Some(def) = recreate {
        let (m, rest) = database_upsert(ctx, p, name, def, sc).await?;
        msg = m;
        hosts.extend(rest);
    }
    if hosts.iter().all(|h| h.ok) {
        record(Some("done")).await?;
    }
    Ok((msg, hosts))
}
