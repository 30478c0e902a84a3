//! Fixed shell scripts run as root on a node (`sudo -n` when pgitops becomes users with sudo):
//! the one way node-level steps (supervision, etcd, Patroni, packages) reach a node.
//!
//! In: a target, fixed script text, its arguments (inventory values travel only here) and
//! optional stdin. Out: the script's trimmed stdout, or an `ExecError` naming what was done.

use super::Ctx;
use crate::execute::{Become, ExecError, Target};

/// Root for node-level work: `sudo -n` when pgitops becomes users with sudo.
pub(crate) fn root(ctx: &Ctx<'_>) -> Vec<&'static str> {
    match ctx.cfg.become_method {
        Become::Sudo => vec!["sudo", "-n", "--"],
        _ => vec![],
    }
}

/// Runs fixed shell `script` with `args` as root on `target`; its stdout, or an error naming
/// `what`.
pub(crate) async fn sh(
    ctx: &Ctx<'_>,
    target: &Target,
    what: &str,
    script: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<String, ExecError> {
    sh_within(ctx, target, what, script, args, stdin, ctx.cfg.timeout).await
}

/// [`sh`] with its own time limit (for scripts that wait on purpose).
pub(crate) async fn sh_within(
    ctx: &Ctx<'_>,
    target: &Target,
    what: &str,
    script: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
    timeout: std::time::Duration,
) -> Result<String, ExecError> {
    let mut argv = root(ctx);
    argv.extend(["sh", "-c", script, "sh"]);
    argv.extend(args);
    let out = ctx.runner.run(target, &argv, stdin, timeout).await?;
    if out.status != 0 {
        return Err(ExecError::Failed {
            host: target.host.clone(),
            what: what.to_string(),
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(out.stdout.trim().to_string())
}
