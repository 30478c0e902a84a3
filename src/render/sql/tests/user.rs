//! `user_upsert`, `user_drop` and `parameters` rendering (which databases share).

use super::*;
use crate::render::sql::user::{add_days, is_verifier};

#[test]
fn user_fields() {
    let sql = user(
        "{createdb: true, superuser: false, connlimit: 3, bypassrls: true}",
        15,
    );
    has(&sql, &[
        "SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'u') AS pgitops_missing \\gset\n\\if :pgitops_missing\nCREATE ROLE \"u\" LOGIN;\n\\echo pgitops-created-role\n\\endif",
        "ALTER ROLE \"u\" WITH NOSUPERUSER CREATEDB BYPASSRLS CONNECTION LIMIT 3;",
        "COMMENT ON ROLE \"u\" IS 'business user u';",
    ]);
    lacks(&sql, &["PASSWORD", "VALID UNTIL", "GRANT", "SET"]);
    let sql = user(
        "{login: false, inherit: false, replication: true, createrole: false}",
        15,
    );
    has(
        &sql,
        &[
            "CREATE ROLE \"u\" NOLOGIN;",
            "ALTER ROLE \"u\" WITH NOLOGIN NOCREATEROLE NOINHERIT REPLICATION;",
        ],
    );
    has(
        &user("{login: null, comment: null}", 15),
        &["LOGIN;\n\\echo pgitops-created-role\n\\endif\nCOMMENT"],
    );
    let def = yaml(&format!(
        "comment: {}",
        serde_yaml_ng::to_string(NASTY).unwrap()
    ));
    let sql = text(&user_upsert("o'd\"d", &def, Secret::Redacted, &ctx(15)).unwrap());
    has(&sql, &[
        "rolname = 'o''d\"d'",
        "CREATE ROLE \"o'd\"\"d\" LOGIN;",
        "COMMENT ON ROLE \"o'd\"\"d\" IS E'it''s \"q\"; DROP ROLE x; --\n\\\\! touch /tmp/pwned\nb\\\\s $(touch /tmp/pwned) ü';",
    ]);
}

#[test]
fn user_type_errors_name_the_field() {
    let e = user_err("createdb: 'true'");
    assert_eq!(
        e,
        "pg_users[u].createdb: expected a YAML boolean (true/false, unquoted)"
    );
    assert_eq!(
        user_err("connlimit: '5'"),
        "pg_users[u].connlimit: expected a YAML integer (unquoted)"
    );
    assert_eq!(
        user_err("connlimit: -2"),
        "pg_users[u].connlimit: expected an integer >= -1"
    );
    assert!(user_err("name: v").starts_with("pg_users[u].name: expected"));
    assert!(user_err("parameters: {'a;b': 1}")
        .starts_with("pg_users[u].parameters.a;b: expected a name matching"));
    assert!(user_err("parameters: {'a..b': 1}").starts_with("pg_users[u].parameters.a..b"));
    assert!(user_err("comment: [x]").starts_with("pg_users[u].comment: expected a string"));
}

#[test]
fn passwords() {
    let def = yaml("password: Sup3rS3cret");
    let redacted = user_upsert("u", &def, Secret::Redacted, &ctx(15)).unwrap();
    let st = redacted.statements.iter().find(|s| s.secret).unwrap();
    assert_eq!(st.sql, "ALTER ROLE \"u\" PASSWORD <redacted>;");
    lacks(&redacted.to_psql_input(), &["Sup3rS3cret"]);
    let real = user_upsert("u", &def, Secret::Verifier(MD5), &ctx(15)).unwrap();
    let input = real.to_psql_input();
    assert_eq!(input.matches(MD5).count(), 1);
    has(&input, &[&format!("SET log_statement = 'none';\nSET log_min_duration_statement = -1;\nSET log_min_error_statement = 'panic';\nSET pg_stat_statements.track_utility = off;\n\\set pgitops_echo :ECHO\n\\set ECHO none\nALTER ROLE \"u\" PASSWORD '{MD5}';\n\\set ECHO :pgitops_echo\nRESET log_statement;")]);
    assert_eq!(real.statements.iter().filter(|s| s.secret).count(), 1);
    assert!(real
        .statements
        .iter()
        .any(|s| s.secret && s.sql.contains(MD5)));
    lacks(&format!("{real:?} {:?}", Secret::Verifier(MD5)), &[MD5]);
    let err = user_upsert("u", &def, Secret::Verifier("Sup3rS3cret"), &ctx(15)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pg_users[u].password: expected a SCRAM-SHA-256 or md5 verifier"
    );
    let scram = format!(
        "SCRAM-SHA-256$4096:c2FsdA==${}=:{}=",
        "A".repeat(43),
        "B".repeat(43)
    );
    assert!(is_verifier(&scram) && !is_verifier("SCRAM-SHA-256$4096:salt$short:key"));
    lacks(&user("{password: null}", 15), &["PASSWORD"]);
}

#[test]
fn expiry() {
    let sql = user("{expire_in: 3, expire_at: '2030-01-01'}", 15);
    has(&sql, &["ALTER ROLE \"u\" VALID UNTIL '2024-03-01';"]);
    has(
        &user("expire_at: infinity", 15),
        &["VALID UNTIL 'infinity';"],
    );
    let none = SqlContext {
        today: None,
        ..ctx(15)
    };
    let sql = text(&user_upsert("u", &yaml("expire_in: 30"), Secret::Redacted, &none).unwrap());
    has(&sql, &["SELECT (CURRENT_DATE + 30)::text AS pgitops_until \\gset\nALTER ROLE \"u\" VALID UNTIL :'pgitops_until';"]);
    assert_eq!(add_days("2023-12-31", 366).unwrap(), "2024-12-31");
    assert_eq!(add_days("2024-03-01", -1).unwrap(), "2024-02-29");
    assert!(add_days("2023-02-29", 1).is_err() && add_days("2023-1-01", 1).is_err());
    let bad = SqlContext {
        today: Some("today"),
        ..ctx(15)
    };
    assert!(user_upsert("u", &yaml("expire_in: 1"), Secret::Redacted, &bad).is_err());
}

#[test]
fn roles_pg15_and_pg16() {
    let def = "roles: [dbrole_readonly, {name: r1, admin: true, set: false, inherit: true}, \
               {name: r2, admin: false}, {name: r3, state: absent}, {name: r4, state: revoke}]";
    let pg16 = user(def, 16);
    has(&pg16, &[
        "GRANT \"dbrole_readonly\" TO \"u\";\nGRANT \"r1\" TO \"u\" WITH ADMIN TRUE, INHERIT TRUE;\nREVOKE SET OPTION FOR \"r1\" FROM \"u\";",
        "GRANT \"r2\" TO \"u\";\nREVOKE ADMIN OPTION FOR \"r2\" FROM \"u\";",
        "REVOKE \"r3\" FROM \"u\";\nREVOKE \"r4\" FROM \"u\";",
    ]);
    let pg15 = user(def, 15);
    has(&pg15, &["-- roles[1].set skipped: needs PostgreSQL 16+\n-- roles[1].inherit skipped: needs PostgreSQL 16+\nGRANT \"r1\" TO \"u\" WITH ADMIN OPTION;"]);
    lacks(&pg15, &["SET OPTION", "INHERIT TRUE"]);
    let e = user_err("roles: [{name: r, state: nope}]");
    assert_eq!(
        e,
        "pg_users[u].roles[0].state: expected one of grant, revoke, absent"
    );
    assert_eq!(
        user_err("roles: [{admin: true}]"),
        "pg_users[u].roles[0].name: expected a name"
    );
    assert!(user_err("roles: [{name: r, set: 'yes'}]").starts_with("pg_users[u].roles[0].set"));
}

#[test]
fn parameters() {
    let sql = user(
        r#"parameters: {work_mem: 64MB, statement_timeout: 1000, jit: false,
        lock_timeout: default, search_path: '"$user", Public ,"a""b"', temp_tablespaces: [Ts1, "x'y"],
        session_preload_libraries: '', pg_stat_statements.track: all, idle_session_timeout: null}"#,
        15,
    );
    has(&sql, &[
        "ALTER ROLE \"u\" SET \"work_mem\" TO '64MB';\nALTER ROLE \"u\" SET \"statement_timeout\" TO '1000';",
        "SET \"jit\" TO 'off';",
        "SET \"lock_timeout\" TO DEFAULT;",
        "SET \"search_path\" TO '$user', 'public', 'a\"b';",
        "SET \"temp_tablespaces\" TO 'Ts1', 'x''y';",
        "SET \"session_preload_libraries\" TO '';",
        "SET \"pg_stat_statements.track\" TO 'all';",
    ]);
    lacks(&sql, &["idle_session"]);
    for bad in [
        "search_path: 'a,,b'",
        "search_path: '\"a'",
        "search_path: 'a b c, \"d\" e'",
        "work_mem: [1]",
    ] {
        let e = user_err(&format!("parameters: {{{bad}}}"));
        assert!(e.starts_with("pg_users[u].parameters."), "{e}");
    }
    let db = db("parameters: {log_destination: 'stderr,CSVLOG'}");
    has(
        &text(&db.provision),
        &["SET \"log_destination\" TO 'stderr', 'csvlog';"],
    );
    has(
        &user("parameters: {log_destination: 'stderr,csvlog'}", 15),
        &["TO 'stderr,csvlog';"],
    );
}

#[test]
fn user_drop_checks_ownership() {
    for name in ["postgres", "replicator", "dbuser_dba", "dbuser_monitor"] {
        assert!(matches!(
            user_drop(name, &ctx(15)),
            Err(SqlError::Protected { .. })
        ));
    }
    let e = user_upsert("postgres", &Mapping::new(), Secret::Redacted, &ctx(15));
    assert!(matches!(e, Err(SqlError::Protected { .. })));
    let sql = text(&user_drop("o'u", &ctx(15)).unwrap());
    has(
        &sql,
        &[
            "FROM pg_catalog.pg_shdepend s",
            "rolname = 'o''u'",
            "\\if :pgitops_fail\nDO $pgitops$BEGIN RAISE EXCEPTION",
        ],
    );
    assert!(sql.ends_with("\\endif\nDROP ROLE IF EXISTS \"o'u\";"));
    lacks(&sql, &["REASSIGN", "DROP OWNED"]);
}

/// A user's statements run as one transaction: a failing GRANT leaves no role behind. The
/// password statement and its logging guards are inside it.
#[test]
fn user_scripts_run_in_one_transaction() {
    let def = yaml("{password: x, roles: [dbrole_readonly]}");
    let s = user_upsert("u", &def, Secret::Verifier(MD5), &ctx(16)).unwrap();
    let input = s.to_psql_input();
    let (begin, commit) = (
        input.find("BEGIN;\n").unwrap(),
        input.find("COMMIT;\n").unwrap(),
    );
    let (create, secret) = (input.find("CREATE ROLE").unwrap(), input.find(MD5).unwrap());
    assert!(
        begin < create && create < secret && secret < commit,
        "{input}"
    );
    assert!(input.ends_with("COMMIT;\n"), "{input}");
    let drop = user_drop("u", &ctx(16)).unwrap().to_psql_input();
    has(
        &drop,
        &["BEGIN;\n", "DROP ROLE IF EXISTS \"u\";\nCOMMIT;\n"],
    );
    let system = alter_system(&[], &["work_mem"]).unwrap().to_psql_input();
    lacks(&system, &["BEGIN;"]);
}

#[test]
fn drop_as_pigsty_does() {
    let c = ctx(15);
    let prepare = text(&user_drop_prepare("o'u", "postgres", &c).unwrap());
    has(
        &prepare,
        &[
            "ALTER ROLE \"o'u\" NOLOGIN;",
            "pg_terminate_backend(pid, 10000)",
            "WHERE usename = 'o''u' AND pid <> pg_catalog.pg_backend_pid()",
        ],
    );
    let old = text(&user_drop_prepare("u", "postgres", &ctx(13)).unwrap());
    lacks(&old, &["10000"]);
    for name in [
        "postgres",
        "dbuser_dba",
        "dbuser_monitor",
        "replicator",
        "dbsu",
    ] {
        let e = user_drop_prepare(name, "dbsu", &c).unwrap_err();
        assert!(e.to_string().contains("protected"), "{name}: {e}");
    }
    let reassign = user_reassign("u", "postgres").unwrap();
    assert!(reassign.transaction, "a failed REASSIGN drops nothing");
    has(
        &text(&reassign),
        &["REASSIGN OWNED BY \"u\" TO \"postgres\";\nDROP OWNED BY \"u\";"],
    );
    has(
        &text(&user_drop_role("u").unwrap()),
        &["DROP ROLE IF EXISTS \"u\";"],
    );
}
