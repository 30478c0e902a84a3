//! A PGSQL cluster's default roles (`pg_default_roles`: dbrole_*, the system users): one action
//! `<cluster>/default-roles/converge`, ordered after the cluster check and before users and
//! databases (which are granted these roles and grant to them).
//!
//! In: the cluster of the new inventory and why it is planned. Out: the action. It is planned on
//! first contact (the cluster is new to pgitops: Pigsty creates these roles while bootstrapping,
//! a cluster adopted from elsewhere may lack them) and when `pg_default_roles` changes.
//!
//! Decisions:
//! * A missing role is created; an existing one keeps its password (rotating the credentials
//!   that Patroni, pgbouncer and the exporters use is manual, as `pg_*_password` changes are).
//! * The password a created system user gets is `pg_admin_password`, `pg_monitor_password` or
//!   `pg_replication_password` when the inventory sets it (Pigsty's bootstrap does the same);
//!   Pigsty's well-known default passwords are never used: without the variable, the role is
//!   created without a password and the action's reason says so.
//! * No Pigsty command: `pgsql.yml -t pg_init` would also reset the system passwords and
//!   rebuild the monitor schema of a running cluster.

use serde_yaml_ng::Value;

use super::objects::sql_target;
use super::{Action, Builder, Class, Definition, ObjectStep, Order, Phase, Step};
use crate::inventory::defaults;
use crate::inventory::model::{str_var, PgCluster};
use crate::inventory::module::Module;

/// The system users whose password comes from a variable: (username var, default, password var).
const SYSTEM_USERS: [(&str, &str, &str); 3] = [
    ("pg_admin_username", "dbuser_dba", "pg_admin_password"),
    (
        "pg_monitor_username",
        "dbuser_monitor",
        "pg_monitor_password",
    ),
    (
        "pg_replication_username",
        "replicator",
        "pg_replication_password",
    ),
];

pub(super) fn plan(b: &mut Builder, name: &str, new: &PgCluster, why: &str) {
    let Some(primary) = &new.primary else { return };
    let vars = &b.new.tree.hosts[primary].vars;
    let mut roles = Vec::new();
    let mut no_password = Vec::new();
    for entry in defaults::roles(vars) {
        let (Some(role), Value::Mapping(mut def)) = (
            entry
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string),
            entry,
        ) else {
            continue;
        };
        let system = SYSTEM_USERS
            .iter()
            .find(|(user, dflt, _)| str_var(vars, user).unwrap_or(dflt) == role);
        if let (Some((_, _, pw_var)), false) = (system, def.contains_key("password")) {
            match str_var(vars, pw_var) {
                Some(pw) => {
                    def.insert("password".into(), pw.into());
                }
                None => no_password.push(format!("{role} (`{pw_var}` is not set)")),
            }
        }
        roles.push((role, Definition(def)));
    }
    if roles.is_empty() {
        return;
    }
    let step = ObjectStep::DefaultRoles {
        roles,
        sql: sql_target(b.new, new),
    };
    let a = on_primary(name, step, Phase::DefaultRoles, primary);
    let mut reason = format!("{why}: creates the default roles the cluster lacks and converges their attributes, memberships and comments; an existing role keeps its password");
    if !no_password.is_empty() {
        reason += &format!(
            "; created without a password if missing: {}",
            no_password.join(", ")
        );
    }
    b.push(a.reason(reason));
}

/// `<cluster>/templates/init`: what Pigsty's bootstrap does to `template1` and `postgres`, after
/// the default roles it grants to. Planned with a cluster's creation; the native executor runs
/// it only where pgitops bootstrapped the cluster.
pub(super) fn templates(b: &mut Builder, name: &str, new: &PgCluster) {
    let Some(primary) = &new.primary else { return };
    let vars = &b.new.tree.hosts[primary].vars;
    let mut lists = serde_yaml_ng::Mapping::new();
    for k in ["pg_default_schemas", "pg_default_extensions"] {
        if let Some(v) = vars.get(k) {
            lists.insert(k.into(), (*v.value).clone());
        }
    }
    let step = ObjectStep::TemplateInit {
        dbsu: str_var(vars, "pg_dbsu").unwrap_or("postgres").to_string(),
        lists: Definition(lists),
        sql: sql_target(b.new, new),
    };
    let a = on_primary(name, step, Phase::Templates, primary);
    b.push(a.reason("as Pigsty's bootstrap (pg-init-template.sql): default privileges, pg_default_schemas, pg_default_extensions, backup grants, the monitor schema; only on a cluster pgitops bootstrapped"));
}

/// An online action of the cluster `name` that runs `step` on its primary.
fn on_primary(name: &str, step: ObjectStep, phase: Phase, primary: &str) -> Action {
    let a = Action::new(
        Module::Pgsql,
        name,
        Step::Object(step),
        Class::Online,
        Order::Create(phase),
    );
    a.hosts(vec![primary.to_string()])
}
