//! Tests of the SQL scripts, split by what they render: `user` (pg_users, parameters), `database`
//! (pg_databases) and `server` (an #[ignore]d run of the scripts against a real PostgreSQL 15).
//! Quoting is tested next to its code. This module holds the shared fixtures and assertions.

use super::*;
use serde_yaml_ng::Mapping;

mod database;
mod server;
mod user;

const MD5: &str = "md50123456789abcdef0123456789abcdef";
const NASTY: &str = "it's \"q\"; DROP ROLE x; --\n\\! touch /tmp/pwned\nb\\s $(touch /tmp/pwned) ü";

fn ctx(pg_major: u32) -> SqlContext<'static> {
    let (admin, monitor, replicator) = ("dbuser_dba", "dbuser_monitor", "replicator");
    let today = Some("2024-02-27");
    SqlContext {
        pg_major,
        admin,
        monitor,
        replicator,
        today,
        default_privileges: Ok(default_privileges()),
    }
}
/// Pigsty's default `pg_default_privileges`, typed.
fn default_privileges() -> &'static [crate::inventory::default_privilege::DefaultPrivilege] {
    static P: std::sync::OnceLock<crate::inventory::defaults::Privileges> =
        std::sync::OnceLock::new();
    P.get_or_init(|| {
        crate::inventory::defaults::privileges(&crate::inventory::Vars::new()).unwrap()
    })
}
fn yaml(s: &str) -> Mapping {
    serde_yaml_ng::from_str(s).unwrap()
}
fn text(s: &Script) -> String {
    let lines: Vec<_> = s.statements.iter().map(|st| st.sql.as_str()).collect();
    lines.join("\n")
}
fn user(def: &str, pg: u32) -> String {
    text(&user_upsert("u", &yaml(def), Secret::Redacted, &ctx(pg)).unwrap())
}
fn user_err(def: &str) -> String {
    let e = user_upsert("u", &yaml(def), Secret::Redacted, &ctx(16)).unwrap_err();
    e.to_string()
}
fn db(def: &str) -> DbScripts {
    database_upsert("d", &yaml(def), &ctx(15)).unwrap()
}
fn db_err(def: &str, pg: u32) -> String {
    database_upsert("d", &yaml(def), &ctx(pg))
        .unwrap_err()
        .to_string()
}
/// Asserts that `sql` contains every needle (each may span several statements).
fn has(sql: &str, needles: &[&str]) {
    for n in needles {
        assert!(sql.contains(n), "missing:\n{n}\n--- in:\n{sql}");
    }
}
fn lacks(sql: &str, needles: &[&str]) {
    for n in needles {
        assert!(!sql.contains(n), "unexpected:\n{n}\n--- in:\n{sql}");
    }
}
