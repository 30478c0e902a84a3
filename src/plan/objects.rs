//! Users and databases of a PGSQL cluster: create, update, drop, recreate; users ordered so that
//! a role comes before the users granted it, databases after their owners; deletions without
//! `state: absent` reported as unmanaged, never dropped.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{
    Action, Builder, Class, Definition, Manual, ObjectStep, Order, Phase, Playbook, RemovalPhase,
    SqlTarget, Step,
};
use crate::diff::named::state;
use crate::diff::{Change, Entity, Op};
use crate::inventory::fields;
use crate::inventory::model::{str_var, PgCluster};
use crate::inventory::module::Module;
use crate::inventory::Inventory;

/// What the SQL renderer needs from the cluster's variables (the primary's effective vars).
pub(crate) fn sql_target(inv: &Inventory, c: &PgCluster) -> SqlTarget {
    let ctx = crate::render::sql_context(inv, c, None);
    SqlTarget {
        pg_major: ctx.pg_major,
        admin: ctx.admin.to_string(),
        monitor: ctx.monitor.to_string(),
        replicator: ctx.replicator.to_string(),
        default_privileges: c.default_privileges.clone(),
    }
}

/// An entry whose definition is not a mapping is not planned (validation refuses such
/// entries; this says so if one gets through).
fn unreadable(what: &str, name: &str) -> String {
    format!("{what} {name} has no definition mapping: not planned")
}

/// The definition of the named entry.
pub(crate) fn def(list: &[crate::inventory::named::Named], name: &str) -> Option<Definition> {
    list.iter()
        .find(|n| n.name == name)
        .and_then(|n| n.def().as_mapping())
        .map(|m| Definition(m.clone()))
}

pub(super) fn plan(b: &mut Builder, name: &str, limit: &str, new: &PgCluster, changes: &[&Change]) {
    let primary: Vec<String> = new.primary.iter().cloned().collect();
    let act = |step: ObjectStep, class, order| {
        Action::new(Module::Pgsql, name, Step::Object(step), class, order).hosts(primary.clone())
    };
    let sql_new = sql_target(b.new, new);
    for c in ordered_users(changes, new) {
        let user = c.name.clone();
        let cmd = Playbook::new("pgsql-user", limit, &["-e", &format!("username={user}")]);
        let drop = Order::Remove(RemovalPhase::DropUser);
        match c.op {
            Op::Unmanaged if b.created.contains(&format!("{name}/user/{user}")) => {
                let old = b.old.model.pgsql.get(name).unwrap_or(new);
                let step = ObjectStep::UserDrop { name: user, sql: sql_target(b.old, old), reassign_to: None };
                // No Pigsty command: pgsql-user.yml only drops a user declared `state: absent`;
                // run on the old revision, it would create this one again.
                let a = act(step, Class::Online, drop).reads_old();
                b.push(a.reason("pruned: pgitops created this user and it left the inventory (native only: Pigsty's pgsql-user.yml cannot drop an undeclared user)"));
            }
            Op::Unmanaged => b.warn(name, format!("user {user} was removed from the inventory without `state: absent`: left in place (unmanaged)")),
            Op::Delete => {
                // as Pigsty's user.yml: ownership goes to the dbsu
                let dbsu = new.primary.as_ref().and_then(|p| str_var(&b.new.tree.hosts[p].vars, "pg_dbsu")).unwrap_or("postgres");
                let why = format!("terminates the role's sessions, reassigns what it owns in every database to {dbsu} and drops its privileges (Pigsty's pg-drop-role), then drops it");
                let step = ObjectStep::UserDrop { name: user, sql: sql_new.clone(), reassign_to: Some(dbsu.to_string()) };
                b.push(act(step, Class::Destructive, drop).pigsty(cmd).reason(why));
            }
            op => {
                let Some(def) = def(&new.users, &user) else {
                    b.warn(name, unreadable("user", &user));
                    continue;
                };
                let step = ObjectStep::UserUpsert { name: user, def, create: op == Op::Create, sql: sql_new.clone() };
                b.push(act(step, Class::Online, Order::Create(Phase::User)).pigsty(cmd));
            }
        }
    }
    for c in changes.iter().filter(|c| c.entity == Entity::Database) {
        let db = c.name.clone();
        let cmd = Playbook::new("pgsql-db", limit, &["-e", &format!("dbname={db}")]);
        let d = c.new.as_ref();
        let st = d.map(state).unwrap_or("create");
        let create = Order::Create(Phase::Database);
        match c.op {
            Op::Unmanaged => b.warn(name, format!("database {db} was removed from the inventory without `state: absent`: left in place (unmanaged)")),
            Op::Delete => {
                let step = ObjectStep::DatabaseDrop { name: db, sql: sql_new.clone() };
                let a = act(step, Class::Destructive, Order::Remove(RemovalPhase::DropDatabase));
                b.push(a.pigsty(cmd).reason("drops the database and all its data"));
            }
            _ if st == "recreate" => {
                let Some(def) = def(&new.databases, &db) else {
                    b.warn(name, unreadable("database", &db));
                    continue;
                };
                let step = ObjectStep::DatabaseRecreate { name: db, def, sql: sql_new.clone() };
                b.push(act(step, Class::Destructive, create).pigsty(cmd).reason("drops and creates the database again: all its data is lost; applied once for this commit, never re-applied"));
            }
            op => {
                let create_only: Vec<&str> = c.fields.iter().map(String::as_str).filter(|f| fields::DB_CREATE_ONLY.contains(f)).collect();
                if op == Op::Update && !create_only.is_empty() {
                    let step = Step::Manual(Manual::DatabaseCreateOptions { name: db.clone() });
                    let a = Action::new(Module::Pgsql, name, step, Class::Manual, create).hosts(primary.clone());
                    b.push(a.reason(format!("{} can only be set by CREATE DATABASE; use `state: recreate` (destructive) or migrate by hand", create_only.join(", "))));
                }
                let dropping = d.is_some_and(drops_schema_or_extension) && !c.old.as_ref().is_some_and(drops_schema_or_extension_same(d));
                let mut why: Vec<&str> = vec![];
                if dropping {
                    why.push("drops a schema or extension (CASCADE)");
                }
                // pgitops does more than Pigsty here (its pg-db.sql runs these inside the
                // database, where PostgreSQL refuses them): said, and classed for what they cost
                let moving = op == Op::Update && c.fields.iter().any(|f| f == "tablespace") && d.is_some_and(|d| d.get("tablespace").is_some_and(|t| !t.is_null()));
                if moving {
                    why.push("moves the database to another tablespace: ALTER DATABASE ... SET TABLESPACE copies every file under an exclusive lock and fails while anyone is connected (Pigsty never moves a database)");
                }
                let closing = d.and_then(|d| d.get("allowconn")).and_then(|v| v.as_bool()) == Some(false) && (op == Op::Create || c.fields.iter().any(|f| f == "allowconn"));
                if closing {
                    why.push("allowconn: false: the database refuses new connections (Pigsty's pg-db.sql cannot apply it; pgitops does)");
                }
                let class = if dropping || moving { Class::Destructive } else { Class::Online };
                if d.is_some_and(|d| d.get("baseline").is_some_and(|v| !v.is_null())) {
                    b.warn(name, format!("database {db} has a `baseline`: Pigsty re-runs it on every pgsql-db run"));
                }
                let Some(def) = def(&new.databases, &db) else {
                    b.warn(name, unreadable("database", &db));
                    continue;
                };
                let step = ObjectStep::DatabaseUpsert { name: db, def, create: op == Op::Create, sql: sql_new.clone() };
                let mut a = act(step, class, create).pigsty(cmd);
                if !why.is_empty() {
                    a = a.reason(why.join("; "));
                }
                b.push(a);
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
    // Indexes instead of scans: a user's position in pg_users, and the (first) user change a
    // role name refers to.
    let mut positions: HashMap<&str, usize> = HashMap::with_capacity(cluster.users.len());
    for (i, u) in cluster.users.iter().enumerate() {
        positions.entry(u.name.as_str()).or_insert(i);
    }
    let mut by_role: HashMap<&str, &'c Change> = HashMap::with_capacity(users.len());
    for u in users.iter().filter(|u| u.op != Op::Delete) {
        by_role.entry(u.name.as_str()).or_insert(u);
    }
    struct Walk<'c, 'm> {
        by_role: &'m HashMap<&'m str, &'c Change>,
        limit: usize,
        out: Vec<&'c Change>,
        /// The changes in `out`, by address.
        placed: HashSet<*const Change>,
    }
    fn visit<'c>(c: &'c Change, w: &mut Walk<'c, '_>, depth: usize) {
        if w.placed.contains(&(c as *const Change)) || depth > w.limit {
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
            if let Some(dep) = rname.and_then(|r| w.by_role.get(r)).copied() {
                visit(dep, w, depth + 1);
            }
        }
        w.placed.insert(c as *const Change);
        w.out.push(c);
    }
    let mut sorted = users.clone();
    sorted.sort_by_key(|c| {
        positions
            .get(c.name.as_str())
            .copied()
            .unwrap_or(usize::MAX)
    });
    let mut walk = Walk {
        by_role: &by_role,
        limit: users.len(),
        out: Vec::new(),
        placed: HashSet::new(),
    };
    for c in &sorted {
        visit(c, &mut walk, 0);
    }
    walk.out
}
