//! The Pigsty executor: drives an existing Pigsty home with the narrowest playbook run per action.
//!
//! In: a plan action (its typed Pigsty command: playbook, limit and arguments as argv), the
//! inventory of the revision it reads materialised as a file, and [`PigstyConfig`]. Out: the
//! action's result, from the PLAY RECAP (`failed` or `unreachable` above zero fails) and, because
//! Pigsty ignores SQL errors, from a check of the declared result in the catalogs and Pigsty's
//! logs afterwards ([`verify`]). A lifecycle playbook never runs where its module already runs
//! ([`adopt`]). The output's tail, with every inventory secret redacted, goes into the result.

mod adopt;
mod ansible;
mod recap;
mod verify;

pub use ansible::AnsibleSsh;

use adopt::Running;

use std::path::PathBuf;
use std::time::Duration;

use super::native::{held, Ctx};
use super::{result, ActionResult, HostResult, Status};
use crate::plan::{Action, Delegated, InstanceVerb, Revision, Step};

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
    /// How pgitops connects, passed on to every playbook run.
    pub ssh: AnsibleSsh,
    /// `executor.kind = "auto"`: what the native executor does runs natively; only the rest
    /// (bootstrap, nodes, etcd, ...) runs Pigsty's playbooks.
    pub native_first: bool,
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
    if installs(&a.step) {
        let what = a
            .pigsty
            .as_ref()
            .map_or("the playbook".into(), |p| p.file());
        match adopt::already_running(ctx, a).await {
            Ok(Running::Nothing) => {}
            Ok(Running::All(found)) => return result(a, Status::Adopted, format!("adopted as it runs, nothing run ({found}): {what} never runs on a host that already runs its module"), vec![]),
            Ok(Running::Part { running, idle }) => return result(a, Status::Manual, format!("refused: {running}, but {} do not; pgitops neither adopts a partly running {} nor runs {what} on it: bring the rest up by hand", idle.join(", "), a.module.as_str()), vec![]),
            Err(e) => return result(a, Status::Failed, format!("cannot tell whether the targets already run {}, so {what} is not run: {e}", a.module.as_str()), vec![]),
        }
    }
    let Some(book) = &a.pigsty else {
        if matches!(a.step, Step::Services(_)) {
            // A created cluster's services: its own pgsql.yml run rendered them.
            let why = "rendered by Pigsty's pgsql.yml with the cluster (pg_service); nothing run";
            return result(a, Status::Adopted, why, vec![]);
        }
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
    let mark = verify::mark(ctx, a).await;
    let existed = verify::role_before(ctx, a).await;
    let run = match ansible::run(cfg, book, &inventory).await {
        Ok(run) => run,
        Err(e) => return result(a, Status::Failed, e, vec![]),
    };
    for line in run.output.lines().filter(|l| !l.trim().is_empty()) {
        tracing::debug!(target: "pgitops::ansible", "{}", redact(line, &cfg.secrets));
    }
    let status_ok = run.success;
    let tail = redact(&last_lines(&run.output, TAIL), &cfg.secrets);
    let recap = recap::parse(&run.output);
    let mut hosts: Vec<HostResult> = recap
        .iter()
        .map(|r| HostResult {
            host: r.host.clone(),
            ok: r.failed == 0 && r.unreachable == 0,
            detail: r.summary(),
            ms: run.host_ms.get(&r.host).copied().unwrap_or(0),
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
    match verify::check(ctx, a, mark.as_ref()).await {
        Ok(None) => {
            let mut r = result(a, Status::Applied, tail, hosts);
            r.created = existed == Some(false);
            r
        }
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

/// Whether `step` installs a module on its hosts (a lifecycle playbook that must never run where
/// the module already runs; see [`adopt`]).
fn installs(step: &Step) -> bool {
    matches!(
        step,
        Step::ClusterRunning { .. }
            | Step::Delegated(
                Delegated::HostAdd { .. }
                    | Delegated::ClusterCreate { .. }
                    | Delegated::MemberAdd { .. }
                    | Delegated::RedisInstance {
                        verb: InstanceVerb::Add,
                        ..
                    }
            )
    )
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
