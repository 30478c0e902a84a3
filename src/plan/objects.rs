//! Users and databases of a PGSQL cluster: create, update, drop, recreate; users ordered so that
//! a role comes before the users granted it, databases after their owners; deletions without
//! `state: absent` reported as unmanaged, never dropped.

use std::collections::BTreeSet;

use super::{phase, pigsty, steps, Builder, Class, Spec};
use crate::diff::named::state;
use crate::diff::{Change, Entity, Op};
use crate::inventory::fields;
use crate::inventory::model::PgCluster;
use crate::inventory::module::Module;

pub(super) fn plan(b: &mut Builder, name: &str, limit: &str, new: &PgCluster, changes: &[&Change]) {
    let spec = |path: String, kind, class, removal, phase, pigsty: String| Spec {
        module: Module::Pgsql,
        cluster: name,
        path,
        kind,
        hosts: new.primary.iter().cloned().collect(),
        class,
        removal,
        reads_old: false,
        phase,
        pigsty,
    };
    for c in ordered_users(changes, new) {
        let cmd = pigsty(
            "pgsql-user",
            limit,
            &["-e", &format!("username={}", c.name)],
        );
        match c.op {
            Op::Unmanaged if b.created.contains(&format!("{name}/user/{}", c.name)) => {
                let mut s = spec(format!("user/{}/drop", c.name), "user-drop", Class::Online, true, phase::DROP_USER, cmd);
                s.reads_old = true;
                b.push(s, steps::user_drop(b.old, b.old.model.pgsql.get(name).unwrap_or(new), &c.name), Some("pruned: pgitops created this user and it left the inventory".into()));
            }
            Op::Unmanaged => b.warn(name, format!("user {} was removed from the inventory without `state: absent`: left in place (unmanaged)", c.name)),
            Op::Delete => {
                let s = spec(format!("user/{}/drop", c.name), "user-drop", Class::Online, true, phase::DROP_USER, cmd);
                b.push(s, steps::user_drop(b.new, new, &c.name), None);
            }
            op => {
                let verb = if op == Op::Create { "create" } else { "update" };
                let s = spec(format!("user/{}/{verb}", c.name), if op == Op::Create { "user-create" } else { "user-update" }, Class::Online, false, phase::USER, cmd);
                b.push(s, steps::user_upsert(b.new, new, &c.name), None);
            }
        }
    }
    for c in changes.iter().filter(|c| c.entity == Entity::Database) {
        let cmd = pigsty("pgsql-db", limit, &["-e", &format!("dbname={}", c.name)]);
        let def = c.new.as_ref();
        let st = def.map(state).unwrap_or("create");
        match c.op {
            Op::Unmanaged => b.warn(name, format!("database {} was removed from the inventory without `state: absent`: left in place (unmanaged)", c.name)),
            Op::Delete => {
                let s = spec(format!("database/{}/drop", c.name), "database-drop", Class::Destructive, true, phase::DROP_DATABASE, cmd);
                b.push(s, steps::database_drop(b.new, new, &c.name), Some("drops the database and all its data".into()));
            }
            _ if st == "recreate" => {
                let s = spec(format!("database/{}/recreate", c.name), "database-recreate", Class::Destructive, false, phase::DATABASE, cmd);
                b.push(s, steps::database_recreate(b.new, new, &c.name), Some("drops and creates the database again: all its data is lost; applied once for this commit, never re-applied".into()));
            }
            op => {
                let create_only: Vec<&String> = c.fields.iter().filter(|f| fields::DB_CREATE_ONLY.contains(&f.as_str())).collect();
                if op == Op::Update && !create_only.is_empty() {
                    let list = create_only.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ");
                    let s = spec(format!("database/{}/create-options", c.name), "database-create-options", Class::Manual, false, phase::DATABASE, String::new());
                    b.push(s, vec![], Some(format!("{list} can only be set by CREATE DATABASE; use `state: recreate` (destructive) or migrate by hand")));
                }
                let dropping = def.is_some_and(drops_schema_or_extension) && !c.old.as_ref().is_some_and(drops_schema_or_extension_same(def));
                let class = if dropping { Class::Destructive } else { Class::Online };
                let verb = if op == Op::Create { "create" } else { "update" };
                let s = spec(format!("database/{}/{verb}", c.name), if op == Op::Create { "database-create" } else { "database-update" }, class, false, phase::DATABASE, cmd);
                let reason = dropping.then(|| "drops a schema or extension (CASCADE)".to_string());
                b.push(s, steps::database_upsert(b.new, new, &c.name), reason);
                if def.is_some_and(|d| d.get("baseline").is_some_and(|v| !v.is_null())) {
                    b.warn(name, format!("database {} has a `baseline`: Pigsty re-runs it on every pgsql-db run", c.name));
                }
            }
        }
    }
}

/// The `state: absent` schemas and extensions of a database definition.
fn absent_items(def: &serde_yaml_ng::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for list in ["schemas", "extensions"] {
        for item in def
            .get(list)
            .and_then(|v| v.as_sequence())
            .into_iter()
            .flatten()
        {
            if item.get("state").and_then(|s| s.as_str()) == Some("absent") {
                if let Some(n) = item.get("name").and_then(|n| n.as_str()) {
                    out.insert(format!("{list}/{n}"));
                }
            }
        }
    }
    out
}

fn drops_schema_or_extension(def: &serde_yaml_ng::Value) -> bool {
    !absent_items(def).is_empty()
}

/// True when the old definition already dropped exactly the same items (nothing new to drop).
fn drops_schema_or_extension_same(
    new: Option<&serde_yaml_ng::Value>,
) -> impl Fn(&serde_yaml_ng::Value) -> bool + '_ {
    move |old| new.is_some_and(|n| absent_items(n).is_subset(&absent_items(old)))
}

/// User changes in an order where a role granted to a user comes first.
fn ordered_users<'c>(changes: &[&'c Change], cluster: &PgCluster) -> Vec<&'c Change> {
    let users: Vec<&Change> = changes
        .iter()
        .copied()
        .filter(|c| c.entity == Entity::User)
        .collect();
    let position = |name: &str| {
        cluster
            .users
            .iter()
            .position(|u| u.name == name)
            .unwrap_or(usize::MAX)
    };
    let mut out: Vec<&Change> = Vec::new();
    fn visit<'c>(c: &'c Change, users: &[&'c Change], out: &mut Vec<&'c Change>, depth: usize) {
        if out.iter().any(|o| std::ptr::eq(*o, c)) || depth > users.len() {
            return;
        }
        for role in c
            .new
            .as_ref()
            .and_then(|d| d.get("roles"))
            .and_then(|r| r.as_sequence())
            .into_iter()
            .flatten()
        {
            let rname = role
                .as_str()
                .or_else(|| role.get("name").and_then(|n| n.as_str()));
            if let Some(dep) = users
                .iter()
                .find(|u| Some(u.name.as_str()) == rname && u.op != Op::Delete)
            {
                visit(dep, users, out, depth + 1);
            }
        }
        out.push(c);
    }
    let mut sorted = users.clone();
    sorted.sort_by_key(|c| position(&c.name));
    for c in &sorted {
        visit(c, &users, &mut out, 0);
    }
    out
}
