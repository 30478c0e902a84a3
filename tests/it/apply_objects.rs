//! `pgitops apply` of users and databases on real nodes (sshd + PostgreSQL per loopback
//! address): effects checked in the catalogs, in logins and in the git note.

use crate::support::fleet::{eventually, has_database, has_role, ok, push, user, Fleet};

#[test]
fn users_are_created_changed_and_dropped() {
    let f = Fleet::new(&["127.0.30.11", "127.0.30.12"]);
    let mut v = f.inventory();
    push(&mut v, "pg_users", "{ name: app, password: 'App.Pass.1', connlimit: 5, roles: [ dbrole_readonly ], parameters: { work_mem: 8MB }, comment: the app }");
    let c1 = f.commit(&v, "add app");
    let run = f.apply(&[]);
    ok(&run);
    let p = f.primary();
    p.login("app", "App.Pass.1", "postgres")
        .expect("the new user logs in with its password");
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'app'"
        ),
        "5"
    );
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT pg_has_role('app', 'dbrole_readonly', 'member')"
        ),
        "t"
    );
    assert_eq!(p.sql("postgres", "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE rolname = 'app'"), "work_mem=8MB");
    // the replica received the role through replication
    let replica = f.nodes.node("127.0.30.12");
    eventually(
        replica,
        "SELECT count(*) FROM pg_roles WHERE rolname = 'app'",
        "1",
    );
    // the note says success and carries no secret
    let note = f.note(&c1);
    assert_eq!(note["runs"][0]["result"], "success", "{note:#}");
    let text = note.to_string() + &run.stdout + &run.stderr;
    assert!(!text.contains("App.Pass.1"));

    // change connlimit, password, membership and parameters
    let app = user(&mut v, "app");
    app["connlimit"] = 7.into();
    app["password"] = "App.Pass.2".into();
    app["roles"] = crate::support::yaml("[ { name: dbrole_readonly, state: absent } ]");
    app["parameters"] = crate::support::yaml("{ work_mem: DEFAULT, statement_timeout: 5s }");
    f.commit(&v, "change app");
    ok(&f.apply(&[]));
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'app'"
        ),
        "7"
    );
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT pg_has_role('app', 'dbrole_readonly', 'member')"
        ),
        "f"
    );
    assert_eq!(p.sql("postgres", "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE rolname = 'app'"), "statement_timeout=5s");
    assert!(
        p.login("app", "App.Pass.1", "postgres").is_err(),
        "the old password no longer works"
    );
    p.login("app", "App.Pass.2", "postgres")
        .expect("the new password works");

    // state: absent drops it (destructive, as Pigsty's pg-drop-role: approved in the commit)
    user(&mut v, "app")["state"] = "absent".into();
    f.commit(&v, "drop app\n\nPgitops-Approve: pg-t/user/app/drop\n");
    ok(&f.apply(&[]));
    assert!(!has_role(p, "app"));
}

#[test]
fn a_pruned_user_that_owns_objects_is_refused_and_nothing_else_is_harmed() {
    let f = Fleet::new(&["127.0.31.11"]);
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: owner, password: 'Owner.Pass' }",
    );
    f.commit(&v, "add owner");
    ok(&f.apply(&[]));
    let p = f.primary();
    p.sql(
        "postgres",
        "CREATE TABLE owned_thing (id int); ALTER TABLE owned_thing OWNER TO owner;",
    );
    // removed from the inventory (not `state: absent`): pgitops created it, so it is pruned,
    // but a prune never takes what the role owns
    v["all"]["children"]["pg-t"]["vars"]["pg_users"]
        .as_sequence_mut()
        .unwrap()
        .retain(|u| u["name"] != "owner");
    push(
        &mut v,
        "pg_users",
        "{ name: bystander, password: 'By.Pass' }",
    );
    f.commit(&v, "drop owner, add bystander");
    let run = f.apply(&[]);
    assert_eq!(
        run.code, 1,
        "a failed action makes apply exit 1:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("owned_thing"),
        "the refusal names what the role owns:\n{}",
        run.stdout
    );
    assert!(has_role(p, "owner"));
    assert_eq!(
        p.sql("postgres", "SELECT count(*) FROM owned_thing"),
        "0",
        "the table is untouched"
    );
    assert!(has_role(p, "bystander"), "the rest of the plan ran first");
}

#[test]
fn a_user_that_was_there_before_pgitops_is_never_pruned() {
    let f = Fleet::new(&["127.0.32.11"]);
    let p = f.primary();
    p.sql("postgres", "CREATE ROLE legacy LOGIN");
    // First contact: the inventory declares a user that already runs, and a new one.
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: legacy, password: 'Legacy.Pass' }",
    );
    push(
        &mut v,
        "pg_users",
        "{ name: fresh, password: 'Fresh.Pass' }",
    );
    f.commit(&v, "adopt legacy, add fresh");
    let run = f.apply(&[]);
    ok(&run);
    assert!(
        run.stdout.contains("user legacy converged"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("user fresh created"), "{}", run.stdout);
    // Both leave the inventory without `state: absent`: only the user pgitops created goes.
    v["all"]["children"]["pg-t"]["vars"]["pg_users"]
        .as_sequence_mut()
        .unwrap()
        .retain(|u| u["name"] != "legacy" && u["name"] != "fresh");
    f.commit(&v, "both leave the inventory");
    let run = f.apply(&[]);
    ok(&run);
    assert!(
        run.stdout.contains("pg-t/user/fresh/drop"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("pg-t/user/legacy/drop"),
        "{}",
        run.stdout
    );
    assert!(
        has_role(p, "legacy"),
        "a user pgitops did not create is left in place"
    );
    assert!(!has_role(p, "fresh"));
}

#[test]
fn reverting_the_commit_that_added_a_user_removes_it() {
    let f = Fleet::new(&["127.0.32.11"]);
    let mut v = f.inventory();
    f.commit(&v, "base");
    ok(&f.apply(&[]));
    push(
        &mut v,
        "pg_users",
        "{ name: temp_user, password: 'Temp.Pass' }",
    );
    let add = f.commit(&v, "add temp_user");
    ok(&f.apply(&[]));
    let p = f.primary();
    assert!(has_role(p, "temp_user"));
    // git revert <add>: the inventory goes back to the base
    let repo = git2::Repository::open(f.repo.path()).unwrap();
    let commit = repo
        .find_commit(git2::Oid::from_str(&add).unwrap())
        .unwrap();
    repo.revert(&commit, None).unwrap();
    f.repo.commit("Revert \"add temp_user\"");
    let run = f.apply(&[]);
    ok(&run);
    assert!(
        run.stdout.contains("pg-t/user/temp_user/drop"),
        "{}",
        run.stdout
    );
    assert!(!has_role(p, "temp_user"));
}

#[test]
fn databases_with_owner_schemas_extensions_and_an_approved_drop() {
    let f = Fleet::new(&["127.0.33.11"]);
    let mut v = f.inventory();
    push(&mut v, "pg_users", "{ name: dbo, password: 'Dbo.Pass' }");
    push(&mut v, "pg_databases", "{ name: shop, owner: dbo, schemas: [ sales ], extensions: [ { name: pg_trgm } ], comment: the shop, connlimit: 20 }");
    f.commit(&v, "add shop");
    ok(&f.apply(&[]));
    let p = f.primary();
    assert_eq!(p.sql("postgres", "SELECT pg_get_userbyid(datdba) || ',' || datconnlimit FROM pg_database WHERE datname = 'shop'"), "dbo,20");
    assert_eq!(
        p.sql(
            "shop",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'sales'"
        ),
        "1"
    );
    assert_eq!(
        p.sql(
            "shop",
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'"
        ),
        "1"
    );
    let dbs = v["all"]["children"]["pg-t"]["vars"]["pg_databases"]
        .as_sequence_mut()
        .unwrap();
    dbs[0]["comment"] = "the new shop".into();
    dbs[0]["connlimit"] = 30.into();
    dbs[0]["parameters"] = crate::support::yaml("{ work_mem: 16MB }");
    f.commit(&v, "change shop");
    ok(&f.apply(&[]));
    assert_eq!(p.sql("postgres", "SELECT datconnlimit || ',' || shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'shop'"), "30,the new shop");
    assert_eq!(p.sql("postgres", "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE datname = 'shop' AND setrole = 0"), "work_mem=16MB");
    // a drop is held without approval...
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][0]["state"] = "absent".into();
    let held = f.commit(&v, "drop shop");
    let run = f.apply(&[]);
    ok(&run);
    assert!(
        run.stdout
            .contains("[awaiting-approval] pg-t/database/shop/drop"),
        "{}",
        run.stdout
    );
    assert!(has_database(p, "shop"));
    assert_eq!(f.note(&held)["runs"][0]["result"], "held");
    // ...and done once a commit of the range carries the trailer
    f.commit(&v, "approve\n\nPgitops-Approve: pg-t/database/shop/drop\n");
    ok(&f.apply(&[]));
    assert!(!has_database(p, "shop"));
}
