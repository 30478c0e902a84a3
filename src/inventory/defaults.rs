//! A PGSQL cluster's default objects: `pg_default_roles` (the dbrole_* roles and system users,
//! which Pigsty creates at bootstrap) and `pg_default_privileges` (granted on what a database
//! owner creates), with Pigsty v4.5's role defaults when the inventory does not set them.
//!
//! In: a host's effective variables. Out: the default role entries (mappings, like `pg_users`
//! entries), the typed default privileges, and validation messages with their origin. Pure.
//!
//! Decisions (as Pigsty's templates do): an absent `pg_default_roles` means Pigsty's list; an
//! absent, null or empty `pg_default_privileges` means Pigsty's list (`pg-db.sql` falls back to
//! its built-in grants when the list is empty).

use std::sync::{Arc, OnceLock};

use serde_yaml_ng::Value;

use super::default_privilege::{parse, DefaultPrivilege};
use super::positions::Seg;
use super::{Origin, VarSource};

/// Pigsty v4.5 `roles/pgsql/defaults/main.yml`: `pg_default_roles`.
const PG_DEFAULT_ROLES: &str = r#"
- { name: dbrole_readonly  ,login: false ,comment: role for global read-only access     }
- { name: dbrole_offline   ,login: false ,comment: role for restricted read-only access }
- { name: dbrole_readwrite ,login: false ,roles: [dbrole_readonly]               ,comment: role for global read-write access }
- { name: dbrole_admin     ,login: false ,roles: [pg_monitor, dbrole_readwrite]  ,comment: role for object creation }
- { name: postgres     ,superuser: true                                          ,comment: system superuser }
- { name: replicator ,replication: true  ,roles: [pg_monitor, dbrole_readonly]   ,comment: system replicator }
- { name: dbuser_dba   ,superuser: true  ,roles: [dbrole_admin]  ,pgbouncer: true ,pool_mode: session, pool_connlimit: 16 , comment: pgsql admin user }
- { name: dbuser_monitor   ,roles: [pg_monitor, dbrole_readonly] ,pgbouncer: true ,parameters: {log_min_duration_statement: 1000 } ,pool_mode: session ,pool_connlimit: 8 ,comment: pgsql monitor user }
"#;

/// Pigsty v4.5 `roles/pgsql/defaults/main.yml`: `pg_default_privileges`.
const PG_DEFAULT_PRIVILEGES: [&str; 17] = [
    "GRANT USAGE      ON SCHEMAS    TO  dbrole_readonly",
    "GRANT SELECT     ON TABLES     TO  dbrole_readonly",
    "GRANT SELECT     ON SEQUENCES  TO  dbrole_readonly",
    "GRANT EXECUTE    ON FUNCTIONS  TO  dbrole_readonly",
    "GRANT USAGE      ON SCHEMAS    TO  dbrole_offline",
    "GRANT SELECT     ON TABLES     TO  dbrole_offline",
    "GRANT SELECT     ON SEQUENCES  TO  dbrole_offline",
    "GRANT EXECUTE    ON FUNCTIONS  TO  dbrole_offline",
    "GRANT INSERT     ON TABLES     TO  dbrole_readwrite",
    "GRANT UPDATE     ON TABLES     TO  dbrole_readwrite",
    "GRANT DELETE     ON TABLES     TO  dbrole_readwrite",
    "GRANT USAGE      ON SEQUENCES  TO  dbrole_readwrite",
    "GRANT UPDATE     ON SEQUENCES  TO  dbrole_readwrite",
    "GRANT TRUNCATE   ON TABLES     TO  dbrole_admin",
    "GRANT REFERENCES ON TABLES     TO  dbrole_admin",
    "GRANT TRIGGER    ON TABLES     TO  dbrole_admin",
    "GRANT CREATE     ON SCHEMAS    TO  dbrole_admin",
];

fn builtin_roles() -> &'static [Value] {
    static ROLES: OnceLock<Vec<Value>> = OnceLock::new();
    ROLES.get_or_init(|| serde_yaml_ng::from_str(PG_DEFAULT_ROLES).expect("built-in roles parse"))
}

/// The default role entries: the inventory's `pg_default_roles`, or Pigsty's. Entries that are
/// not mappings are left out here (validation refuses them).
pub fn roles<V: VarSource + ?Sized>(vars: &V) -> Vec<Value> {
    match vars.var("pg_default_roles").map(|v| v.value.as_ref()) {
        Some(Value::Sequence(list)) => list.iter().filter(|e| e.is_mapping()).cloned().collect(),
        Some(Value::Null) => vec![],
        _ => builtin_roles().to_vec(),
    }
}

/// A typed list of default privileges, shared (every cluster that does not set its own shares
/// Pigsty's one list: a thousand clusters do not parse and keep a thousand copies).
pub type Privileges = Arc<[DefaultPrivilege]>;

/// The default privileges, typed: the inventory's `pg_default_privileges` unless absent, null
/// or empty, else Pigsty's. An entry that does not parse is an error naming it.
pub fn privileges<V: VarSource + ?Sized>(vars: &V) -> Result<Privileges, String> {
    static BUILTIN: OnceLock<Result<Privileges, String>> = OnceLock::new();
    let builtin = || {
        BUILTIN
            .get_or_init(|| PG_DEFAULT_PRIVILEGES.iter().map(|s| parse(s)).collect())
            .clone()
    };
    let list = match vars.var("pg_default_privileges").map(|v| v.value.as_ref()) {
        None | Some(Value::Null) => return builtin(),
        Some(Value::Sequence(l)) if l.is_empty() => return builtin(),
        Some(Value::Sequence(l)) => l,
        Some(_) => return Err("`pg_default_privileges` must be a list".into()),
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| entry(i, v).map_err(|(_, m)| m))
        .collect()
}

fn entry(i: usize, v: &Value) -> Result<DefaultPrivilege, (usize, String)> {
    let text = v.as_str().ok_or_else(|| {
        let m = format!("`pg_default_privileges[{i}]` must be a string such as `GRANT SELECT ON TABLES TO dbrole_readonly`");
        (i, m)
    })?;
    parse(text).map_err(|e| {
        let m = format!("`pg_default_privileges[{i}]` {text:?} is not a default privilege pgitops can render: expected {e}");
        (i, m)
    })
}

/// Validation of both variables, each message at the entry it is about.
pub fn check<V: VarSource + ?Sized>(vars: &V) -> Vec<(Origin, String)> {
    let mut out = Vec::new();
    let at = |origin: &Origin, i: usize| {
        let mut o = origin.clone();
        o.path.push(Seg::Index(i));
        o
    };
    if let Some(v) = vars.var("pg_default_privileges") {
        match v.value.as_ref() {
            Value::Null => {}
            Value::Sequence(list) => {
                for (i, e) in list.iter().enumerate() {
                    if let Err((i, m)) = entry(i, e) {
                        out.push((at(&v.origin, i), m));
                    }
                }
            }
            _ => out.push((
                v.origin.as_ref().clone(),
                "`pg_default_privileges` must be a list".into(),
            )),
        }
    }
    if let Some(v) = vars.var("pg_default_roles") {
        match v.value.as_ref() {
            Value::Null => {}
            Value::Sequence(list) => {
                for (i, e) in list.iter().enumerate() {
                    if !e.get("name").is_some_and(Value::is_string) {
                        let m = "a `pg_default_roles` entry must be a mapping with a `name`";
                        out.push((at(&v.origin, i), m.into()));
                    }
                }
            }
            _ => out.push((
                v.origin.as_ref().clone(),
                "`pg_default_roles` must be a list".into(),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Var, Vars};
    use std::sync::Arc;

    fn vars(key: &str, yaml: &str) -> Vars {
        let var = Var {
            value: Arc::new(serde_yaml_ng::from_str(yaml).unwrap()),
            origin: Arc::new(Origin {
                file: "pigsty.yml".into(),
                path: vec![Seg::Key(key.into())],
            }),
        };
        Vars::from([(key.to_string(), var)])
    }

    #[test]
    fn pigsty_defaults_apply_when_absent_or_empty() {
        let none = Vars::new();
        assert_eq!(roles(&none).len(), 8);
        assert_eq!(privileges(&none).unwrap().len(), 17);
        let empty = vars("pg_default_privileges", "[]");
        assert_eq!(privileges(&empty).unwrap().len(), 17);
        let one = vars(
            "pg_default_privileges",
            "[ GRANT SELECT ON TABLES TO app_ro ]",
        );
        assert_eq!(privileges(&one).unwrap().len(), 1);
        assert!(roles(&vars("pg_default_roles", "[]")).is_empty());
    }

    #[test]
    fn bad_entries_are_reported_at_their_index() {
        let bad = vars(
            "pg_default_privileges",
            "[ GRANT SELECT ON TABLES TO ro, 'GRANT ALL ON TABLES TO x; DROP TABLE t', 3 ]",
        );
        let msgs = check(&bad);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert_eq!(msgs[0].0.path.last(), Some(&Seg::Index(1)));
        assert!(
            msgs[0].1.contains("unexpected character ';'"),
            "{}",
            msgs[0].1
        );
        assert!(privileges(&bad).is_err());
        let roles = vars("pg_default_roles", "[ { name: a }, b ]");
        assert_eq!(check(&roles).len(), 1);
    }
}
