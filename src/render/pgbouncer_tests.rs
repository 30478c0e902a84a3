//! Unit tests of the pgbouncer file renderers against Pigsty v4.5.0's templates (`%-27s`
//! padding, option order, what is left out).

use super::*;
use crate::inventory::{load, InventoryFiles};

fn inv(cluster_vars: &str, host_vars: &str) -> Inventory {
    let text = format!(
        "all:\n  children:\n    pg-t:\n      hosts:\n        10.0.0.1: {{ pg_seq: 1, pg_role: primary {host_vars} }}\n        10.0.0.2: {{ pg_seq: 2, pg_role: replica }}\n      vars:\n        pg_cluster: pg-t\n{cluster_vars}"
    );
    load(&InventoryFiles::single("pigsty.yml", &text), "t").expect("parses")
}

#[test]
fn useropts_follows_pigsty_template() {
    let i = inv(
        "        pg_users:\n          - { name: app, pool_mode: session, pool_connlimit: 20 }\n          - { name: only_mode, pool_mode: statement }\n          - { name: only_limit, pool_connlimit: '7' }\n          - { name: plain, pgbouncer: true }\n          - { name: gone, pool_mode: session, state: absent }\n",
        "",
    );
    let out = useropts(&i, "10.0.0.1").unwrap();
    // Pigsty's built-in pg_default_roles come first (dbuser_dba and dbuser_monitor set pools).
    let want = "# pgbouncer user options\n\
        dbuser_dba                  = pool_mode=session max_user_connections=16\n\
        dbuser_monitor              = pool_mode=session max_user_connections=8\n\
        app                         = pool_mode=session max_user_connections=20\n\
        only_mode                   = pool_mode=statement \n\
        only_limit                  =  max_user_connections=7\n";
    assert_eq!(out, want);
    // Same file on the replica: users are the cluster's.
    assert_eq!(useropts(&i, "10.0.0.2").unwrap(), want);
}

#[test]
fn useropts_with_own_default_roles() {
    let i = inv(
        "        pg_default_roles: [ { name: dbrole_readonly, login: false } ]\n        pg_users: []\n",
        "",
    );
    assert_eq!(
        useropts(&i, "10.0.0.1").unwrap(),
        "# pgbouncer user options\n"
    );
}

#[test]
fn database_txt_follows_pigsty_template() {
    let i = inv(
        "        pg_databases:\n          - { name: shop, pool_auth_user: dbuser_meta, pool_mode: transaction, pool_size: 16, pool_size_min: '2', pool_reserve: 4, pool_connlimit: 50 }\n          - { name: meta }\n          - { name: nopool, pgbouncer: false }\n          - { name: dropped, state: absent }\n          - { name: a_very_long_database_name_over_27 }\n",
        "",
    );
    let out = database_txt(&i, "10.0.0.1").unwrap();
    let want = "# pgbouncer database list\n\
        shop                        = host=/var/run/postgresql auth_user=dbuser_meta pool_mode=transaction pool_size=16 min_pool_size=2 reserve_pool=4 max_db_connections=50\n\
        meta                        = host=/var/run/postgresql\n\
        a_very_long_database_name_over_27 = host=/var/run/postgresql\n";
    assert_eq!(out, want);
}

#[test]
fn database_txt_redirect_and_localhost() {
    let i = inv(
        "        pg_localhost: /pg/run\n        pg_databases: [ { name: meta } ]\n",
        ", pgbouncer_redirect_to: 10.0.0.9",
    );
    let primary = database_txt(&i, "10.0.0.1").unwrap();
    assert!(
        primary.ends_with("meta                        = host=10.0.0.9\n"),
        "{primary}"
    );
    let replica = database_txt(&i, "10.0.0.2").unwrap();
    assert!(
        replica.ends_with("meta                        = host=/pg/run\n"),
        "{replica}"
    );
}

#[test]
fn database_txt_refuses_what_breaks_the_file() {
    let bad = [
        "{ name: d, pool_size: 'many' }",
        "{ name: d, pool_size: -1 }",
        "{ name: d, pool_mode: 'session pool_size=1' }",
        "{ name: d, pool_auth_user: 'a b' }",
    ];
    for b in bad {
        let i = inv(&format!("        pg_databases: [ {b} ]\n"), "");
        let e = database_txt(&i, "10.0.0.1").unwrap_err();
        assert!(e.to_string().contains("database.txt"), "{b}: {e}");
    }
    let i = inv(
        "        pg_databases: [ { name: d } ]\n",
        ", pgbouncer_redirect_to: '1.2.3.4 pool_size=9'",
    );
    assert!(matches!(
        database_txt(&i, "10.0.0.1"),
        Err(PgbError::Token { .. })
    ));
}

#[test]
fn userlist_entries_and_order() {
    let i = inv(
        "        pg_users:\n          - { name: app, pgbouncer: true }\n          - { name: nopgb }\n          - { name: off, pgbouncer: false }\n          - { name: gone, pgbouncer: true, state: absent }\n",
        "",
    );
    let users = userlist_users(&i, "10.0.0.2").unwrap();
    assert_eq!(users, ["postgres", "dbuser_monitor", "dbuser_dba", "app"]);
    let entries: Vec<(String, String)> = [
        ("postgres", ""),
        ("app", "SCRAM-SHA-256$x"),
        ("dbuser_dba", "md5y"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(
        userlist(&entries).unwrap(),
        "\"postgres\" \"\"\n\"dbuser_dba\" \"md5y\"\n\"app\" \"SCRAM-SHA-256$x\"\n"
    );
    // A verifier that would break the line is refused without being shown.
    let e = userlist(&[("app".into(), "se\"cret".into())]).unwrap_err();
    assert!(!e.to_string().contains("cret"), "{e}");
    let preview = userlist_preview(&i, "10.0.0.1").unwrap();
    assert!(
        preview.contains("\"app\" \"<verifier from pg_authid>\"\n"),
        "{preview}"
    );
    assert!(preview.contains("\"postgres\" \"\"\n"), "{preview}");
}

#[test]
fn userlist_with_auth_query_has_only_system_users() {
    let i = inv(
        "        pgbouncer_auth_query: true\n        pg_users: [ { name: app, pgbouncer: true } ]\n",
        "",
    );
    let users = userlist_users(&i, "10.0.0.1").unwrap();
    assert_eq!(users, ["postgres", "dbuser_monitor", "dbuser_dba"]);
}

#[test]
fn not_a_member() {
    let i = inv("", "");
    assert_eq!(
        useropts(&i, "10.9.9.9"),
        Err(PgbError::NotMember("10.9.9.9".into()))
    );
}
