//! The Pigsty executor: drives an existing Pigsty home with the narrowest playbook run per action.
//!
//! In: a plan action (its typed Pigsty command: playbook, limit and arguments as argv), the
//! inventory of the revision it reads materialised as a file, and [`PigstyConfig`]. Out: the
//! action's result, from the PLAY RECAP (`failed` or `unreachable` above zero fails) and, because
//! Pigsty ignores SQL errors, from a check in the catalogs afterwards (the role or database exists
//! or is gone). The output's tail, with every inventory secret redacted, goes into the result.

mod recap;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::native::{held, pg, Ctx};
use super::{result, ActionResult, ExecError, HostResult, Status};
use crate::plan::{Action, Delegated, ObjectStep, Playbook, Revision, Step};
use crate::render::{shell, sql};

#[derive(Debug, Clone)]
pub struct PigstyConfig {
    /// The Pigsty home (`~/pigsty`): playbooks run from there.
    pub home: PathBuf,
    /// `ansible-playbook`, or a path to it.
    pub ansible_playbook: String,
    /// The inventory of the old and the new revision, as files (`-i`).
    pub old_inventory: Option<PathBuf>,
    pub new_inventory: PathBuf,
    /// Inventory values that must never appear in what is kept of the output.
    pub secrets: Vec<String>,
    pub timeout: Duration,
}

/// Lines of output kept in the result.
const TAIL: usize = 25;

pub async fn apply(ctx: &Ctx<'_>, a: &Action) -> ActionResult {
    if let Some(r) = held(a) {
        return r;
    }
    let cfg = ctx
        .cfg
        .pigsty
        .as_ref()
        .expect("the Pigsty executor has its configuration");
    if let Step::ClusterRunning { .. } = a.step {
        // Pigsty says never to run an untagged pgsql.yml on a cluster that already runs.
        if let Ok(c) = ctx.cluster(a) {
            if pg::live_primary(ctx, c).await.is_ok() {
                return result(a, Status::Manual, "refused: the cluster already runs PostgreSQL, and an untagged pgsql.yml would restart and re-initialise it; its objects are converged by the actions that follow", vec![]);
            }
        }
    }
    if let Step::Delegated(Delegated::MemberAdd { ip }) = &a.step {
        // A member that already answers is adopted, never bootstrapped again (a retried run of
        // a range whose state did not advance plans the add again).
        if pg::probe(ctx, ip).await.is_ok() {
            return result(a, Status::Manual, format!("refused: {ip} already runs PostgreSQL, and an untagged pgsql.yml would re-initialise it; it is adopted as it is"), vec![]);
        }
    }
    let Some(book) = &a.pigsty else {
        return result(
            a,
            Status::Manual,
            "no Pigsty command for this action",
            vec![],
        );
    };
    let inventory = match a.revision {
        Revision::Old => cfg.old_inventory.clone(),
        Revision::New => Some(cfg.new_inventory.clone()),
    };
    let Some(inventory) = inventory else {
        return result(
            a,
            Status::Failed,
            "the old revision's inventory is not available",
            vec![],
        );
    };
    let started = Instant::now();
    let run = playbook(cfg, book, &inventory).await;
    let (status_ok, output) = match run {
        Ok(x) => x,
        Err(e) => return result(a, Status::Failed, e, vec![]),
    };
    let tail = redact(&last_lines(&output, TAIL), &cfg.secrets);
    let recap = recap::parse(&output);
    let mut hosts: Vec<HostResult> = recap
        .iter()
        .map(|r| HostResult {
            host: r.host.clone(),
            ok: r.failed == 0 && r.unreachable == 0,
            detail: r.summary(),
            ms: started.elapsed().as_millis() as u64,
        })
        .collect();
    if !status_ok || hosts.iter().any(|h| !h.ok) || recap.is_empty() {
        return result(
            a,
            Status::Failed,
            format!("ansible-playbook failed:\n{tail}"),
            hosts,
        );
    }
    match verify(ctx, a).await {
        Ok(None) => result(a, Status::Applied, tail, hosts),
        Ok(Some(what)) => {
            hosts.push(HostResult {
                host: "verification".into(),
                ok: false,
                detail: what.clone(),
                ms: 0,
            });
            result(a, Status::Failed, format!("{what}, although ansible-playbook succeeded (Pigsty ignores SQL errors):\n{tail}"), hosts)
        }
        Err(e) => result(
            a,
            Status::Failed,
            format!("verification failed: {e}"),
            hosts,
        ),
    }
}

/// Runs `ansible-playbook <playbook> -i <inventory> <args...>` in the Pigsty home.
async fn playbook(
    cfg: &PigstyConfig,
    p: &Playbook,
    inventory: &std::path::Path,
) -> Result<(bool, String), String> {
    let book = p.file();
    let argv = p.argv();
    let mut cmd = tokio::process::Command::new(&cfg.ansible_playbook);
    cmd.arg(&book)
        .arg("-i")
        .arg(inventory)
        .args(&argv)
        .current_dir(&cfg.home)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .kill_on_drop(true);
    tracing::info!(playbook = %book, args = %shell::line(&argv), "running ansible-playbook");
    let out = tokio::time::timeout(cfg.timeout, cmd.output())
        .await
        .map_err(|_| {
            format!(
                "ansible-playbook {book} did not finish within {} s",
                cfg.timeout.as_secs()
            )
        })?
        .map_err(|e| format!("cannot run {}: {e}", cfg.ansible_playbook))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        tracing::debug!(target: "pgitops::ansible", "{}", redact(line, &cfg.secrets));
    }
    Ok((out.status.success(), text))
}

/// What the catalogs say went wrong, if anything: the object the action is about must exist
/// after a create or update and be gone after a drop.
async fn verify(ctx: &Ctx<'_>, a: &Action) -> Result<Option<String>, ExecError> {
    let Step::Object(o) = &a.step else {
        return Ok(None);
    };
    let (catalog, column, want) = match o {
        ObjectStep::DefaultRoles { .. } => return Ok(None),
        ObjectStep::UserUpsert { .. } => ("pg_roles", "rolname", true),
        ObjectStep::UserDrop { .. } => ("pg_roles", "rolname", false),
        ObjectStep::DatabaseUpsert { .. } | ObjectStep::DatabaseRecreate { .. } => {
            ("pg_database", "datname", true)
        }
        ObjectStep::DatabaseDrop { .. } => ("pg_database", "datname", false),
    };
    let c = ctx.cluster(a)?;
    let name = o.name();
    let lit = sql::quote_literal(name).map_err(|e| ExecError::Refused(e.to_string()))?;
    let (primary, _) = pg::live_primary(ctx, c).await?;
    let found = pg::psql(
        ctx,
        &primary,
        "postgres",
        &format!("SELECT count(*) FROM pg_catalog.{catalog} WHERE {column} = {lit};"),
    )
    .await?
        != "0";
    Ok((found != want).then(|| {
        format!(
            "{catalog} on {primary}: {name:?} {}",
            if want {
                "does not exist"
            } else {
                "still exists"
            }
        )
    }))
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 3)
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "<redacted>"))
}
