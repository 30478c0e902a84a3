//! pgbouncer's files (`userlist.txt`, `useropts.txt`, `database.txt`, `pgb_hba.conf`): one
//! `<cluster>/pgbouncer/reload` action on every member with `pgbouncer_enabled` (default true),
//! as Pigsty's `pgsql-user.yml`, `pgsql-db.yml` and `pgsql.yml -t pgbouncer_hba` write them on
//! every member, replicas included.
//!
//! In: the cluster's changes. Out: the action, naming the files that may change; none when no
//! change touches pgbouncer. Its Pigsty command is none: Pigsty writes these files inside the
//! user, database and HBA playbooks of the actions before it.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use super::{Action, Builder, Class, Order, PgbFile, PgbStep, Phase, Step};
use crate::diff::{Change, Entity};
use crate::inventory::model::PgCluster;
use crate::inventory::module::Module;
use crate::inventory::Inventory;

/// Whether pgbouncer runs on `host` (`pgbouncer_enabled`, true unless set to false).
pub fn enabled(inv: &Inventory, host: &str) -> bool {
    let v = inv
        .tree
        .hosts
        .get(host)
        .and_then(|h| h.vars.get("pgbouncer_enabled"));
    v.and_then(|v| v.value.as_bool()).unwrap_or(true)
}

fn has(v: Option<&Value>, key: &str) -> bool {
    v.and_then(|d| d.get(key)).is_some()
}

/// Whether a user entry matters to pgbouncer: `pgbouncer` set (either way) or a pool setting.
fn user_relevant(c: &Change) -> bool {
    [c.old.as_ref(), c.new.as_ref()]
        .into_iter()
        .any(|d| has(d, "pgbouncer") || has(d, "pool_mode") || has(d, "pool_connlimit"))
}

/// Variables whose value shows in one of the files.
fn var_files(name: &str) -> &'static [PgbFile] {
    match name {
        "pg_default_roles" => &[PgbFile::Useropts],
        "pgbouncer_redirect_to" | "pg_localhost" => &[PgbFile::Databases],
        "pgbouncer_auth_query" | "pg_dbsu" | "pg_monitor_username" | "pg_admin_username" => {
            &[PgbFile::Userlist]
        }
        _ => &[],
    }
}

/// Plans the action for `changes` of cluster `name`; `all`: why every file is written (first
/// contact, or pgbouncer launched on a member).
pub(super) fn plan(
    b: &mut Builder,
    name: &str,
    new: &PgCluster,
    changes: &[&Change],
    all: Option<&str>,
) {
    let mut files: BTreeSet<PgbFile> = BTreeSet::new();
    let mut why: BTreeSet<String> = BTreeSet::new();
    if let Some(all) = all {
        files.extend([
            PgbFile::Userlist,
            PgbFile::Useropts,
            PgbFile::Databases,
            PgbFile::Hba,
        ]);
        why.insert(all.into());
    }
    for c in changes {
        match c.entity {
            Entity::User if user_relevant(c) => {
                files.extend([PgbFile::Userlist, PgbFile::Useropts]);
                why.insert(format!("user {} {}", c.name, c.op.as_str()));
            }
            // Every database is in database.txt unless `pgbouncer: false` on both sides.
            Entity::Database => {
                let off = |d: Option<&Value>| {
                    d.and_then(|d| d.get("pgbouncer")) == Some(&Value::Bool(false))
                };
                if !(off(c.old.as_ref()) && off(c.new.as_ref())) {
                    files.insert(PgbFile::Databases);
                    why.insert(format!("database {} {}", c.name, c.op.as_str()));
                }
            }
            Entity::Hba if c.name == "pgb_hba" => {
                files.insert(PgbFile::Hba);
                why.insert("pgb_hba rules".into());
            }
            Entity::Var if !var_files(&c.name).is_empty() => {
                files.extend(var_files(&c.name));
                why.insert(c.name.clone());
            }
            _ => {}
        }
    }
    let hosts: Vec<String> = new
        .members
        .keys()
        .filter(|h| enabled(b.new, h))
        .cloned()
        .collect();
    if files.is_empty() || hosts.is_empty() {
        return;
    }
    let step = Step::Pgbouncer(PgbStep {
        files: files.into_iter().collect(),
    });
    let a = Action::new(
        Module::Pgsql,
        name,
        step,
        Class::Reload,
        Order::Create(Phase::Pgbouncer),
    );
    let why: Vec<String> = why.into_iter().collect();
    b.push(a.hosts(hosts).reason(format!(
        "because of: {}; Pigsty writes these files inside the user, database and HBA playbooks (no command of its own)",
        why.join(", ")
    )));
}
