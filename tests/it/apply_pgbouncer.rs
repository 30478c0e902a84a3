//! Native pgbouncer objects on real nodes, each running Debian's pgbouncer in Pigsty's layout:
//! after an apply a user logs in through pgbouncer (port 6432) with its password on every
//! member; pool settings reach pgbouncer by a reload (same pid); `pgbouncer: false` keeps a
//! database out of database.txt; a dropped user leaves userlist.txt; no password or verifier
//! shows in the output or the note. Addresses 127.0.131.x.

use std::os::unix::fs::MetadataExt;

use crate::support::fleet::{ok, push, user, Fleet};
use crate::support::nodes::Node;

const APP_PW: &str = "App.Pgb.Secret1";
const TMP_PW: &str = "Tmp.Pgb.Secret2";

/// The `|`-separated row of `SHOW <what>` whose first column is `name`.
fn show_row(n: &Node, what: &str, name: &str) -> Vec<String> {
    let out = n.pgb_sql("pgbouncer", &format!("SHOW {what}"));
    let row = out.lines().find(|l| l.split('|').next() == Some(name));
    let row = row.unwrap_or_else(|| panic!("{name} not in SHOW {what} on {}:\n{out}", n.ip));
    row.split('|').map(str::to_string).collect()
}

fn file(n: &Node, name: &str) -> String {
    std::fs::read_to_string(n.pgbouncer_dir().join(name)).unwrap()
}

/// No password, and no verifier, anywhere in `text`.
fn no_secrets(what: &str, text: &str) {
    for s in [APP_PW, TMP_PW, "SCRAM-SHA-256$"] {
        assert!(!text.contains(s), "{what} shows a secret ({s}):\n{text}");
    }
}

#[test]
fn pgbouncer_files_follow_the_inventory_on_every_member() {
    let f = Fleet::new(&["127.0.131.11", "127.0.131.12"]);
    let mut v = f.inventory();
    let app = format!("{{ name: app, password: '{APP_PW}', pgbouncer: true, pool_mode: session, pool_connlimit: 20 }}");
    push(&mut v, "pg_users", &app);
    let tmp = format!("{{ name: tmpuser, password: '{TMP_PW}', pgbouncer: true }}");
    push(&mut v, "pg_users", &tmp);
    push(
        &mut v,
        "pg_databases",
        "{ name: shop, owner: app, pool_mode: transaction, pool_size: 16, pool_reserve: 4 }",
    );
    push(&mut v, "pg_databases", "{ name: hidden, pgbouncer: false }");
    // pgbouncer reaches PostgreSQL over the local socket; clients reach pgbouncer over TCP.
    push(
        &mut v,
        "pg_hba_rules",
        "{ user: all, db: all, addr: local, auth: pwd, title: 'pgbouncer backends' }",
    );
    push(
        &mut v,
        "pgb_hba_rules",
        "{ user: all, db: all, addr: intra, auth: pwd, title: 'test clients' }",
    );
    let first = f.commit(&v, "users and databases behind pgbouncer");
    let run = f.apply(&[]);
    ok(&run);
    assert!(
        run.stdout.contains("pg-t/pgbouncer/reload"),
        "{}",
        run.stdout
    );
    let mut pids = vec![];
    for n in f.nodes.nodes() {
        f.primary().sql("postgres", "SELECT 1"); // replicas replay asynchronously
        assert_eq!(n.pgb_login("app", APP_PW, "shop"), Ok(()), "{}", n.ip);
        assert!(n.pgb_login("app", "wrong", "shop").is_err(), "{}", n.ip);
        let users = file(n, "userlist.txt");
        assert!(
            users.contains("\"app\" \"SCRAM-SHA-256$"),
            "{}: {users}",
            n.ip
        );
        assert!(
            users.contains("\"tmpuser\" \"SCRAM-SHA-256$"),
            "{}: {users}",
            n.ip
        );
        assert!(users.contains("\"postgres\" \"\""), "{}: {users}", n.ip);
        let meta = std::fs::metadata(n.pgbouncer_dir().join("userlist.txt")).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600, "{}", n.ip);
        let dbs = file(n, "database.txt");
        assert!(dbs.contains("shop                        = host=/var/run/postgresql pool_mode=transaction pool_size=16 reserve_pool=4\n"), "{}: {dbs}", n.ip);
        assert!(!dbs.contains("hidden"), "pgbouncer: false: {}: {dbs}", n.ip);
        let opts = file(n, "useropts.txt");
        assert!(
            opts.contains(
                "app                         = pool_mode=session max_user_connections=20\n"
            ),
            "{opts}"
        );
        assert!(file(n, "pgb_hba.conf").contains("test clients"), "{}", n.ip);
        assert_eq!(show_row(n, "DATABASES", "shop")[5], "16", "{}", n.ip);
        assert_eq!(show_row(n, "USERS", "app")[1], "session", "{}", n.ip);
        pids.push(n.pgbouncer_pid());
    }

    // Pool settings change: a reload, not a restart.
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][0]["pool_size"] = 7.into();
    user(&mut v, "app")["pool_mode"] = "transaction".into();
    let second = f.commit(&v, "pool settings");
    let run2 = f.apply(&[]);
    ok(&run2);
    for (n, pid) in f.nodes.nodes().iter().zip(&pids) {
        assert_eq!(show_row(n, "DATABASES", "shop")[5], "7", "{}", n.ip);
        assert_eq!(show_row(n, "USERS", "app")[1], "transaction", "{}", n.ip);
        assert_eq!(n.pgbouncer_pid(), *pid, "{}: pgbouncer was restarted", n.ip);
        assert_eq!(n.pgb_login("app", APP_PW, "shop"), Ok(()), "{}", n.ip);
    }

    // A dropped user leaves userlist.txt (Pigsty leaves it there; see the report).
    user(&mut v, "tmpuser")["state"] = "absent".into();
    let third = f.commit(
        &v,
        "drop tmpuser\n\nPgitops-Approve: pg-t/user/tmpuser/drop\n",
    );
    let run3 = f.apply(&[]);
    ok(&run3);
    for n in f.nodes.nodes() {
        let users = file(n, "userlist.txt");
        assert!(!users.contains("tmpuser"), "{}: {users}", n.ip);
        assert!(users.contains("\"app\""), "{}: {users}", n.ip);
        assert!(n.pgb_login("tmpuser", TMP_PW, "shop").is_err(), "{}", n.ip);
    }

    // Nothing changed: nothing planned for pgbouncer, nothing reloaded.
    let run4 = f.apply(&[]);
    ok(&run4);
    assert!(!run4.stdout.contains("pgbouncer/reload"), "{}", run4.stdout);

    for (i, r) in [&run, &run2, &run3, &run4].iter().enumerate() {
        no_secrets(&format!("apply {i} stdout"), &r.stdout);
        no_secrets(&format!("apply {i} stderr"), &r.stderr);
    }
    for c in [&first, &second, &third] {
        no_secrets("note", &f.note(c).to_string());
    }
}
