//! `database_upsert` (create and provision scripts) and `database_drop`.

use super::*;

#[test]
fn database_create_options() {
    let s = db("{owner: o, template: tpl, encoding: UTF8, locale: C.UTF-8, lc_collate: C, lc_ctype: \"x'y\", \
                locale_provider: ICU, icu_locale: en-US, strategy: FILE_COPY, tablespace: ts1}");
    has(&text(&s.create), &[
        "CREATE DATABASE \"d\" WITH OWNER \"o\" TEMPLATE \"tpl\" ENCODING 'UTF8' LOCALE 'C.UTF-8' LC_COLLATE 'C' LC_CTYPE 'x''y' LOCALE_PROVIDER 'icu' ICU_LOCALE 'en-US' STRATEGY 'file_copy' TABLESPACE \"ts1\";",
        "pg_terminate_backend(pid)) AS pgitops_terminated FROM pg_catalog.pg_stat_activity\n  WHERE datname = 'tpl' AND pid <>",
        "t.spcname <> 'ts1') AS pgitops_move \\gset\n\\if :pgitops_move\nALTER DATABASE \"d\" SET TABLESPACE \"ts1\";",
    ]);
    lacks(&text(&s.provision), &["TEMPLATE \"", "ENCODING", "LOCALE"]);
    assert_eq!(
        (s.admin_db, db("template: postgres").admin_db),
        ("postgres", "template1")
    );
    let minimal = text(&db("{}").create);
    has(
        &minimal,
        &["\\if :pgitops_missing\nCREATE DATABASE \"d\";\n\\echo pgitops: database created\n\\endif"],
    );
    lacks(&minimal, &["TABLESPACE", "terminate", "ALLOW_CONNECTIONS"]);
    assert_eq!(
        db_err("strategy: fast", 15),
        "pg_databases[d].strategy: expected one of wal_log, file_copy"
    );
    let e = db_err("icu_rules: '&a<b'", 15);
    assert_eq!(
        e,
        "pg_databases[d].icu_rules: requires PostgreSQL 16+, target is PostgreSQL 15"
    );
    let old = database_upsert("d", &yaml("strategy: wal_log"), &ctx(14)).unwrap();
    has(
        &text(&old.create),
        &["-- strategy left out: needs PostgreSQL 15+"],
    );
    lacks(&text(&old.create), &["STRATEGY"]);
    assert!(db_err("locale_provider: icu", 14).contains("requires PostgreSQL 15+"));
    assert!(db_err("template: d", 15).starts_with("pg_databases[d].template"));
}

#[test]
fn database_provision() {
    let s = db("{owner: o, connlimit: 10, is_template: false, allowconn: false, revokeconn: true, \
        comment: \"it's\", schemas: [s1, {name: s2, owner: o}, {name: s3, state: absent}], \
        extensions: [citext, {name: hstore, schema: s1, version: '1.8'}, {name: pg_trgm, state: absent}]}");
    let p = text(&s.provision);
    assert!(p.starts_with("SELECT pg_catalog.current_database() <> 'd' AS pgitops_fail,"));
    has(&p, &[
        "ALTER DATABASE \"d\" OWNER TO \"o\";\nGRANT ALL PRIVILEGES ON DATABASE \"d\" TO \"o\";",
        "ALTER DATABASE \"d\" WITH CONNECTION LIMIT 10 IS_TEMPLATE false;",
        "COMMENT ON DATABASE \"d\" IS 'it''s';",
        "REVOKE CONNECT ON DATABASE \"d\" FROM PUBLIC;\nGRANT CONNECT ON DATABASE \"d\" TO \"replicator\";\nGRANT CONNECT ON DATABASE \"d\" TO \"dbuser_monitor\";\nGRANT CONNECT ON DATABASE \"d\" TO \"dbuser_dba\" WITH GRANT OPTION;\nGRANT CONNECT ON DATABASE \"d\" TO \"o\" WITH GRANT OPTION;",
        "REVOKE CREATE ON DATABASE \"d\" FROM PUBLIC;\nGRANT CREATE ON DATABASE \"d\" TO \"dbrole_admin\";",
        "REVOKE CREATE ON SCHEMA \"public\" FROM PUBLIC;\nGRANT CREATE ON SCHEMA \"public\" TO \"dbrole_admin\";",
        "CREATE SCHEMA IF NOT EXISTS \"s1\";\nCREATE SCHEMA IF NOT EXISTS \"s2\" AUTHORIZATION \"o\";\nALTER SCHEMA \"s2\" OWNER TO \"o\";\nDROP SCHEMA IF EXISTS \"s3\" CASCADE;",
        "CREATE EXTENSION IF NOT EXISTS \"citext\" CASCADE;\nCREATE EXTENSION IF NOT EXISTS \"hstore\" WITH SCHEMA \"s1\" VERSION '1.8' CASCADE;\nDROP EXTENSION IF EXISTS \"pg_trgm\" CASCADE;",
    ]);
    has(
        &text(&s.create),
        &["ALTER DATABASE \"d\" WITH ALLOW_CONNECTIONS true;"],
    );
    assert_eq!(
        text(&s.finish),
        "ALTER DATABASE \"d\" WITH ALLOW_CONNECTIONS false;"
    );
    let p = text(&db("revokeconn: false").provision);
    has(
        &p,
        &[
            "GRANT CONNECT ON DATABASE \"d\" TO PUBLIC;",
            "IS 'business database d';",
        ],
    );
    lacks(
        &text(&db("{}").provision),
        &["CONNECT ON", "OWNER", "SCHEMA IF", "EXTENSION", " SET "],
    );
    let e = db_err("extensions: [{name: x, version: 1.10}]", 15);
    assert_eq!(
        e,
        "pg_databases[d].extensions[0].version: expected a string"
    );
    assert!(db_err("schemas: [{name: s, state: drop}]", 15).contains("schemas[0].state"));
    assert!(db_err("revokeconn: 1", 15).contains("revokeconn: expected a YAML boolean"));
}

#[test]
fn database_drop_rules() {
    for name in ["postgres", "template0", "template1"] {
        assert!(matches!(
            database_drop(name, &ctx(15)),
            Err(SqlError::Protected { .. })
        ));
    }
    has(&text(&database_drop("d", &ctx(13)).unwrap()), &["\\if :pgitops_exists\nALTER DATABASE \"d\" WITH IS_TEMPLATE false;\nDROP DATABASE IF EXISTS \"d\" WITH (FORCE);\n\\endif"]);
    let sql = text(&database_drop("d", &ctx(12)).unwrap());
    has(
        &sql,
        &["pg_terminate_backend", "DROP DATABASE IF EXISTS \"d\";"],
    );
}

/// CREATE/DROP DATABASE run statement by statement (PostgreSQL refuses them in a transaction
/// block); what runs inside the database and the finish each run in one transaction.
#[test]
fn database_scripts_run_in_transactions_where_postgres_allows() {
    let s = db("{owner: o, allowconn: false, extensions: [postgis]}");
    let (create, provision) = (s.create.to_psql_input(), s.provision.to_psql_input());
    lacks(&create, &["BEGIN;", "COMMIT;"]);
    assert!(!s.create.transaction && s.provision.transaction && s.finish.transaction);
    has(&provision, &["SET client_encoding = 'UTF8';\nBEGIN;\n"]);
    assert!(provision.ends_with("CASCADE;\nCOMMIT;\n"), "{provision}");
    let drop = database_drop("d", &ctx(15)).unwrap().to_psql_input();
    lacks(&drop, &["BEGIN;", "COMMIT;"]);
    assert!(DbScripts::created("\npgitops: database created\n"));
    assert!(!DbScripts::created(""));
}

#[test]
fn default_privileges_for_the_owner_come_before_the_schemas() {
    let sql = text(&db("{owner: o, schemas: [app]}").provision);
    let first = sql
        .find("ALTER DEFAULT PRIVILEGES FOR ROLE \"o\" GRANT USAGE ON SCHEMAS TO \"dbrole_readonly\";")
        .expect(&sql);
    let schema = sql.find("CREATE SCHEMA IF NOT EXISTS \"app\";").unwrap();
    assert!(first < schema, "{sql}");
    assert_eq!(
        sql.matches("ALTER DEFAULT PRIVILEGES FOR ROLE \"o\"")
            .count(),
        17
    );
    has(
        &sql,
        &["ALTER DEFAULT PRIVILEGES FOR ROLE \"o\" GRANT CREATE ON SCHEMAS TO \"dbrole_admin\";"],
    );
    // without an owner, Pigsty grants none
    lacks(
        &text(&db("{schemas: [app]}").provision),
        &["DEFAULT PRIVILEGES"],
    );
    // an entry that did not parse is refused, never skipped
    let bad = SqlContext {
        default_privileges: Err("pg_default_privileges[0] ..."),
        ..ctx(15)
    };
    let e = database_upsert("d", &yaml("owner: o"), &bad).unwrap_err();
    assert!(
        e.to_string().starts_with("pg_default_privileges: expected"),
        "{e}"
    );
}
