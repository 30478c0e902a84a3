//! `pg_parameters` on each target instance with `ALTER SYSTEM` (set what the inventory says,
//! reset what it no longer says), a reload, and a report of the parameters that wait for a
//! restart. pgitops never restarts PostgreSQL.

use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use super::pg::psql;
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::ExecError;
use crate::inventory::Inventory;
use crate::plan::{Action, ParamStep};
use crate::render::sql::{alter_system, pending_restart_query};

fn params(inv: &Inventory, host: &str) -> Mapping {
    inv.tree
        .hosts
        .get(host)
        .and_then(|h| h.vars.get("pg_parameters"))
        .and_then(|v| v.value.as_mapping().cloned())
        .unwrap_or_default()
}

/// `pg_parameters`: `ALTER SYSTEM` is idempotent, so nothing is observed before it; what
/// waits for a restart is read back afterwards.
pub(crate) struct Params;

impl Component for Params {
    type Step = ParamStep;
    type Observed = ();

    async fn observe(_: &Ctx<'_>, _: &Action, _: &ParamStep) -> Result<(), ExecError> {
        Ok(())
    }

    async fn execute(ctx: &Ctx<'_>, a: &Action, _: &ParamStep, _: ()) -> Outcome {
        // Instances are independent: all at once (each under its host's lock).
        let hosts = futures::future::join_all(
            a.hosts
                .iter()
                .map(|host| on_host(ctx, host, move || one(ctx, host))),
        )
        .await;
        Ok((String::new(), hosts))
    }
}

async fn one(ctx: &Ctx<'_>, host: &str) -> Result<String, ExecError> {
    let (old, new) = (params(ctx.old, host), params(ctx.new, host));
    let set: Vec<(&str, &Value)> = new
        .iter()
        .filter_map(|(k, v)| k.as_str().map(|k| (k, v)))
        .collect();
    let reset: Vec<&str> = old
        .keys()
        .filter_map(Value::as_str)
        .filter(|k| !new.contains_key(*k))
        .collect();
    let script = alter_system(&set, &reset).map_err(|e| ExecError::Refused(e.to_string()))?;
    psql(ctx, host, "postgres", &script.to_psql_input()).await?;
    // The postmaster applies the reload asynchronously; give it a moment before asking.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let names: Vec<&str> = set.iter().map(|(k, _)| *k).collect();
    let pending = psql(
        ctx,
        host,
        "postgres",
        &pending_restart_query(&names).map_err(|e| ExecError::Refused(e.to_string()))?,
    )
    .await?;
    let pending: Vec<&str> = pending.lines().filter(|l| !l.is_empty()).collect();
    Ok(match pending.is_empty() {
        true => format!("{} set, {} reset, reloaded", set.len(), reset.len()),
        false => format!(
            "{} set, {} reset, reloaded; pending restart: {}",
            set.len(),
            reset.len(),
            pending.join(", ")
        ),
    })
}
