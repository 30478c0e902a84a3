//! Checking a declared user or database against the catalogs, after a run that cannot be
//! trusted to report SQL errors (Pigsty's psql steps exit 0 whatever happened).
//!
//! In: the object's name and inventory mapping. Out: queries that return the live facts as one
//! JSON object (names in the always-quoted form [`super::quote`] gives, so they compare with the
//! declared ones as they are), and the list of declared facts the live ones contradict. What is
//! compared: for a user, existence, the flags and `connlimit` it declares, its comment (Pigsty's
//! default `business user <name>` when none), the roles it is granted or revoked; for a
//! database, existence, owner, comment (default `business database <name>`), schemas and
//! extensions (present or absent as declared), and default privileges `FOR ROLE` the owner
//! when the cluster declares some. Passwords are never read.

use serde_json::Value as Json;
use serde_yaml_ng::Mapping;

use super::def::Def;
use super::quote::literal;
use super::Result;
use crate::inventory::fields::ROLE_FLAGS;

/// Catalog column of each role flag (`ROLE_FLAGS`).
fn flag_column(flag: &str) -> String {
    match flag {
        "login" => "rolcanlogin".into(),
        "superuser" => "rolsuper".into(),
        other => format!("rol{other}"),
    }
}

/// `'"' || name || '"'` with inner quotes doubled: the form `quote::ident` writes.
fn quoted(expr: &str) -> String {
    format!("'\"' || replace({expr}, '\"', '\"\"') || '\"'")
}

/// The role's facts (`null` when it does not exist), run in any database.
pub fn user_facts(name: &str) -> Result<String> {
    let lit = literal("pg_users.name", name)?;
    let flags: Vec<String> = ROLE_FLAGS
        .iter()
        .map(|f| format!("'{f}', r.{}", flag_column(f)))
        .collect();
    Ok(format!(
        "SELECT coalesce((SELECT json_build_object({}, 'connlimit', r.rolconnlimit, \
         'comment', pg_catalog.shobj_description(r.oid, 'pg_authid'), \
         'roles', ARRAY(SELECT {} FROM pg_catalog.pg_auth_members m \
         JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid)) \
         FROM pg_catalog.pg_roles r WHERE r.rolname = {lit}), 'null')::text;",
        flags.join(", "),
        quoted("g.rolname")
    ))
}

/// The database's own facts (`null` when it does not exist), run in `postgres`.
pub fn database_facts(name: &str) -> Result<String> {
    let lit = literal("pg_databases.name", name)?;
    Ok(format!(
        "SELECT coalesce((SELECT json_build_object('owner', {}, \
         'comment', pg_catalog.shobj_description(d.oid, 'pg_database')) \
         FROM pg_catalog.pg_database d WHERE d.datname = {lit}), 'null')::text;",
        quoted("pg_catalog.pg_get_userbyid(d.datdba)")
    ))
}

/// Facts inside the database: its schemas, extensions, and default privileges of its owner.
pub fn database_inner_facts() -> String {
    format!(
        "SELECT json_build_object('schemas', ARRAY(SELECT {} FROM pg_catalog.pg_namespace n), \
         'extensions', ARRAY(SELECT {} FROM pg_catalog.pg_extension e), \
         'owner_default_acl', (SELECT count(*) FROM pg_catalog.pg_default_acl a \
         WHERE a.defaclrole = (SELECT datdba FROM pg_catalog.pg_database \
         WHERE datname = current_database())))::text;",
        quoted("n.nspname"),
        quoted("e.extname")
    )
}

fn has(list: &Json, name: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(name)))
}

/// What the live role contradicts in its definition (empty: as declared).
pub fn user_mismatches(name: &str, def: &Mapping, live: &Json) -> Result<Vec<String>> {
    let d = Def::new(def, format!("pg_users[{name}]"), name)?;
    if live.is_null() {
        return Ok(vec![format!("role {name:?} does not exist")]);
    }
    let mut out = Vec::new();
    for flag in ROLE_FLAGS {
        // Pigsty's users log in unless told otherwise.
        let want = match (flag, d.bool(flag)?) {
            (_, Some(b)) => b,
            ("login", None) => true,
            _ => continue,
        };
        if live[flag].as_bool() != Some(want) {
            out.push(format!("{flag} is {}, declared {want}", live[flag]));
        }
    }
    if let Some(n) = d.connlimit()? {
        if live["connlimit"].as_i64() != Some(n) {
            out.push(format!("connlimit is {}, declared {n}", live["connlimit"]));
        }
    }
    let comment = d
        .str("comment")?
        .map_or(super::default_user_comment(name), str::to_string);
    if live["comment"].as_str() != Some(comment.as_str()) {
        out.push(format!(
            "comment is {}, declared {comment:?}",
            live["comment"]
        ));
    }
    for e in d.entries("roles", &["grant", "revoke", "absent"])? {
        let member = has(&live["roles"], &e.ident);
        match (e.state == "grant", member) {
            (true, false) => out.push(format!("not a member of {}", e.ident)),
            (false, true) => out.push(format!("still a member of {}", e.ident)),
            _ => {}
        }
    }
    Ok(out)
}

/// What the live database contradicts in its definition (empty: as declared). `inner` is
/// [`database_inner_facts`]' answer, `None` when the database does not exist.
pub fn database_mismatches(
    name: &str,
    def: &Mapping,
    live: &Json,
    inner: Option<&Json>,
    default_privileges: bool,
) -> Result<Vec<String>> {
    let d = Def::new(def, format!("pg_databases[{name}]"), name)?;
    let (true, Some(inner)) = (live.is_object(), inner) else {
        return Ok(vec![format!("database {name:?} does not exist")]);
    };
    let mut out = Vec::new();
    let owner = d.ident("owner")?;
    if let Some(o) = &owner {
        if live["owner"].as_str() != Some(o.as_str()) {
            out.push(format!("owner is {}, declared {o}", live["owner"]));
        }
    }
    let comment = d
        .str("comment")?
        .map_or(super::default_database_comment(name), str::to_string);
    if live["comment"].as_str() != Some(comment.as_str()) {
        out.push(format!(
            "comment is {}, declared {comment:?}",
            live["comment"]
        ));
    }
    for (key, what) in [("schemas", "schema"), ("extensions", "extension")] {
        for e in d.entries(key, &["create", "absent"])? {
            match (e.state == "create", has(&inner[key], &e.ident)) {
                (true, false) => out.push(format!("{what} {} is missing", e.ident)),
                (false, true) => out.push(format!("{what} {} is still there", e.ident)),
                _ => {}
            }
        }
    }
    if owner.is_some() && default_privileges && inner["owner_default_acl"].as_i64() == Some(0) {
        out.push("no default privileges FOR ROLE the owner (pg_default_privileges)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(yaml: &str) -> Mapping {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn a_user_is_held_against_what_it_declares() {
        let def = map("{ name: app, connlimit: 5, createdb: true, roles: [ dbrole_readwrite, { name: old, state: absent } ] }");
        let live = serde_json::json!({"login": true, "superuser": false, "createdb": true,
            "createrole": false, "inherit": true, "replication": false, "bypassrls": false,
            "connlimit": 5, "comment": "business user app", "roles": ["\"dbrole_readwrite\""]});
        assert!(user_mismatches("app", &def, &live).unwrap().is_empty());
        let mut wrong = live.clone();
        wrong["connlimit"] = (-1).into();
        wrong["roles"] = serde_json::json!(["\"old\""]);
        wrong["login"] = false.into();
        assert_eq!(
            user_mismatches("app", &def, &wrong).unwrap(),
            [
                "login is false, declared true",
                "connlimit is -1, declared 5",
                "not a member of \"dbrole_readwrite\"",
                "still a member of \"old\""
            ]
        );
        let gone = user_mismatches("app", &def, &Json::Null).unwrap();
        assert_eq!(gone, ["role \"app\" does not exist"]);
    }

    #[test]
    fn a_database_is_held_against_what_it_declares() {
        let def = map("{ name: shop, owner: app, comment: 'the shop', schemas: [ app ], extensions: [ { name: pg_trgm }, { name: gone, state: absent } ] }");
        let live = serde_json::json!({"owner": "\"app\"", "comment": "the shop"});
        let inner = serde_json::json!({"schemas": ["\"public\"", "\"app\""],
            "extensions": ["\"plpgsql\"", "\"pg_trgm\""], "owner_default_acl": 4});
        let check = |inner: &Json, privs| {
            database_mismatches("shop", &def, &live, Some(inner), privs).unwrap()
        };
        assert!(check(&inner, true).is_empty());
        let mut wrong = inner.clone();
        wrong["extensions"] = serde_json::json!(["\"gone\""]);
        wrong["owner_default_acl"] = 0.into();
        assert_eq!(
            check(&wrong, true),
            [
                "extension \"pg_trgm\" is missing",
                "extension \"gone\" is still there",
                "no default privileges FOR ROLE the owner (pg_default_privileges)"
            ]
        );
        assert_eq!(check(&wrong, false).len(), 2);
        let none = database_mismatches("shop", &def, &Json::Null, None, true).unwrap();
        assert_eq!(none, ["database \"shop\" does not exist"]);
    }

    #[test]
    fn facts_queries_quote_the_name() {
        let q = user_facts("x'; DROP ROLE y; --").unwrap();
        assert!(q.contains("r.rolname = 'x''; DROP ROLE y; --'"), "{q}");
        assert!(database_facts("a\0b").is_err());
    }
}
