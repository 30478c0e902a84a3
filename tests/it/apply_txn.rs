//! An action's statements run in one transaction where PostgreSQL allows it: a user whose later
//! statement fails leaves no role behind; a database whose provisioning fails after CREATE
//! DATABASE (which cannot be rolled back) says what was created and converges on a later apply.

use crate::support::fleet::{has_database, has_role, ok, push, user, Fleet};

#[test]
fn a_user_whose_grant_fails_is_rolled_back_whole() {
    let f = Fleet::independent(&["127.0.93.11"]);
    let mut v = f.inventory();
    // a typo in a membership: validate cannot know which roles the cluster has
    push(
        &mut v,
        "pg_users",
        "{ name: txn_app, password: 'Txn.Pass.1', connlimit: 3, comment: app, roles: [ dbrole_readonyl ] }",
    );
    let c = f.commit(&v, "add txn_app");
    let run = f.apply(&[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("[failed] pg-t/user/txn_app/create")
            && run
                .stdout
                .contains("role \"dbrole_readonyl\" does not exist"),
        "the action fails with PostgreSQL's reason:\n{}",
        run.stdout
    );
    let p = f.primary();
    assert!(
        !has_role(p, "txn_app"),
        "CREATE ROLE and the statements before the GRANT were rolled back"
    );
    assert!(has_role(p, "dbrole_readonly"), "the rest of the plan ran");
    let note = f.note(&c).to_string();
    assert!(
        note.contains("dbrole_readonyl") && !note.contains("Txn.Pass.1"),
        "{note}"
    );
    // the fix in a new commit creates the user whole
    user(&mut v, "txn_app")["roles"] = crate::support::yaml("[ dbrole_readonly ]");
    f.commit(&v, "fix the membership");
    ok(&f.apply(&[]));
    p.login("txn_app", "Txn.Pass.1", "postgres")
        .expect("the user logs in");
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT rolconnlimit || ',' || pg_has_role('txn_app', 'dbrole_readonly', 'member') \
             FROM pg_roles WHERE rolname = 'txn_app'"
        ),
        "3,true"
    );
}

#[test]
fn a_database_whose_extension_fails_says_it_was_created_and_converges_later() {
    let f = Fleet::independent(&["127.0.93.21"]);
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: txn_dbo, password: 'Dbo.Pass.1' }",
    );
    push(
        &mut v,
        "pg_databases",
        "{ name: txn_shop, owner: txn_dbo, comment: the shop, schemas: [ sales ], extensions: [ { name: no_such_extension } ] }",
    );
    let c = f.commit(&v, "add txn_shop");
    let run = f.apply(&[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("[failed] pg-t/database/txn_shop/create")
            && run
                .stdout
                .contains("created database txn_shop; then failed: 127.0.93.21: psql failed:")
            && run.stdout.contains("no_such_extension"),
        "the result says what was created and what failed:\n{}",
        run.stdout
    );
    let p = f.primary();
    assert!(has_database(p, "txn_shop"), "CREATE DATABASE stays");
    // what runs inside the database was one transaction: none of it stayed
    assert_eq!(
        p.sql(
            "txn_shop",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'sales'"
        ),
        "0"
    );
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '<none>') FROM pg_database \
             WHERE datname = 'txn_shop'"
        ),
        "<none>"
    );
    let note = f.note(&c).to_string();
    assert!(
        note.contains("created database txn_shop; then failed"),
        "{note}"
    );
    // the cluster did not advance: the next apply runs the action again; the database exists
    // now, so it is not said to be created again
    let again = f.apply(&[]);
    assert_eq!(again.code, 1, "{}{}", again.stdout, again.stderr);
    assert!(
        again
            .stdout
            .contains("[failed] pg-t/database/txn_shop/create")
            && !again.stdout.contains("created database")
            && again.stdout.contains("no_such_extension"),
        "{}",
        again.stdout
    );
    // fixed in a new commit: the existing database converges to what is declared
    let dbs = v["all"]["children"]["pg-t"]["vars"]["pg_databases"]
        .as_sequence_mut()
        .unwrap();
    dbs[0]["extensions"] = crate::support::yaml("[ { name: pg_trgm } ]");
    f.commit(&v, "fix the extension");
    let run = f.apply(&[]);
    ok(&run);
    assert!(
        run.stdout.contains("database txn_shop converged"),
        "{}",
        run.stdout
    );
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) || ',' || shobj_description(oid, 'pg_database') \
             FROM pg_database WHERE datname = 'txn_shop'"
        ),
        "txn_dbo,the shop"
    );
    assert_eq!(
        p.sql(
            "txn_shop",
            "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'sales') || ',' || \
             (SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm')"
        ),
        "1,1"
    );
    let quiet = f.apply(&[]);
    ok(&quiet);
    assert!(!quiet.stdout.contains("txn_shop"), "{}", quiet.stdout);
}
