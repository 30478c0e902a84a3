//! `state: absent` on a user does what Pigsty's `pg-drop-role <user> <dbsu> --force` does: the
//! role's sessions end, what it owns in every database goes to the dbsu, its privileges go, and
//! the role is dropped. It is destructive, so it waits for an approval.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::fleet::{has_role, ok, push, user, Fleet};

#[test]
fn an_absent_user_is_dropped_as_pigsty_drops_it_once_approved() {
    let f = Fleet::independent(&["127.0.173.11"]);
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: olduser, password: 'Old.Pass.1' }",
    );
    push(&mut v, "pg_databases", "{ name: da }");
    push(&mut v, "pg_databases", "{ name: db2 }");
    f.commit(&v, "add olduser, da, db2");
    ok(&f.apply(&[]));
    let p = f.primary();
    p.sql(
        "da",
        "CREATE TABLE owned (id int); INSERT INTO owned VALUES (1); ALTER TABLE owned OWNER TO olduser;",
    );
    p.sql(
        "db2",
        "CREATE TABLE shared (id int); GRANT SELECT ON shared TO olduser;",
    );
    p.sql("postgres", "CREATE DATABASE olddb OWNER olduser");
    // an open session of the role
    let mut session = Command::new("/usr/lib/postgresql/15/bin/psql")
        .args([
            "-X",
            "-At",
            "-h",
            "127.0.173.11",
            "-U",
            "olduser",
            "-d",
            "da",
        ])
        .args(["-c", "SELECT pg_sleep(120)"])
        .env("PGPASSWORD", "Old.Pass.1")
        .env("PGPASSFILE", "/dev/null")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sessions = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'olduser'";
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.sql("postgres", sessions) != "1" {
        assert!(Instant::now() < deadline, "the session did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    user(&mut v, "olduser")["state"] = "absent".into();
    f.commit(&v, "drop olduser");
    let run = f.apply(&[]);
    ok(&run);
    assert!(
        run.stdout
            .contains("[awaiting-approval] pg-t/user/olduser/drop"),
        "dropping a user is destructive:\n{}",
        run.stdout
    );
    assert!(has_role(p, "olduser"));
    assert_eq!(p.sql("postgres", sessions), "1", "nothing ran");

    f.commit(&v, "approve\n\nPgitops-Approve: pg-t/user/olduser/drop\n");
    let run = f.apply(&[]);
    ok(&run);
    assert!(!has_role(p, "olduser"), "{}", run.stdout);
    assert_eq!(
        p.sql("da", "SELECT pg_get_userbyid(relowner) || ',' || (SELECT count(*) FROM owned) FROM pg_class WHERE relname = 'owned'"),
        "postgres,1",
        "the table and its rows stay, owned by the dbsu as Pigsty's user.yml sends it"
    );
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'olddb'"
        ),
        "postgres"
    );
    assert_eq!(
        p.sql(
            "db2",
            "SELECT relacl::text FROM pg_class WHERE relname = 'shared'"
        ),
        "{postgres=arwdDxt/postgres}",
        "its grant in another database is gone"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = session.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the session still runs");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "the session was terminated");
    assert!(!run.stdout.contains("Old.Pass.1"));
}

#[test]
fn a_protected_user_is_refused() {
    let f = Fleet::independent(&["127.0.173.21"]);
    let mut v = f.inventory();
    push(&mut v, "pg_users", "{ name: dbuser_dba, state: absent }");
    f.commit(
        &v,
        "drop the admin\n\nPgitops-Approve: pg-t/user/dbuser_dba/drop\n",
    );
    let run = f.apply(&[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("refusing to drop role `dbuser_dba`: it is protected"),
        "{}",
        run.stdout
    );
    assert!(has_role(f.primary(), "dbuser_dba"));
}
