//! `pgitops apply` on real nodes (sshd + PostgreSQL per loopback address), asserting effects in
//! the catalogs, in logins, and in the git note.

use crate::support::fleet::{push, Fleet};
use crate::support::SECRETS;

/// Polls `sql` on `node` until it returns `want` (replication is asynchronous).
fn eventually(node: &crate::support::nodes::Node, sql: &str, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = node.sql("postgres", sql);
        if got == want || std::time::Instant::now() > deadline {
            assert_eq!(got, want, "{sql}");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The `pg_users` entry named `name`.
fn user<'a>(v: &'a mut serde_yaml_ng::Value, name: &str) -> &'a mut serde_yaml_ng::Value {
    let users = v["all"]["children"]["pg-t"]["vars"]["pg_users"]
        .as_sequence_mut()
        .unwrap();
    users.iter_mut().find(|u| u["name"] == name).unwrap()
}

fn ok(run: &crate::support::Run) {
    assert_eq!(run.code, 0, "apply failed:\n{}\n{}", run.stdout, run.stderr);
}

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

    // state: absent drops it
    user(&mut v, "app")["state"] = "absent".into();
    f.commit(&v, "drop app");
    ok(&f.apply(&[]));
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'app'"
        ),
        "0"
    );
}

#[test]
fn a_user_that_owns_objects_is_refused_and_nothing_else_is_harmed() {
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
    user(&mut v, "owner")["state"] = "absent".into();
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
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'owner'"
        ),
        "1"
    );
    assert_eq!(
        p.sql("postgres", "SELECT count(*) FROM owned_thing"),
        "0",
        "the table is untouched"
    );
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'bystander'"
        ),
        "1",
        "the rest of the plan ran first"
    );
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
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'temp_user'"
        ),
        "1"
    );
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
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'temp_user'"
        ),
        "0"
    );
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
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'shop'"
        ),
        "1"
    );
    assert_eq!(f.note(&held)["runs"][0]["result"], "pending");
    // ...and done once a commit of the range carries the trailer
    f.commit(&v, "approve\n\nPgitops-Approve: pg-t/database/shop/drop\n");
    ok(&f.apply(&[]));
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'shop'"
        ),
        "0"
    );
}

#[test]
fn hba_rules_admit_deny_and_a_rejected_file_is_rolled_back() {
    let f = Fleet::new(&["127.0.34.11", "127.0.34.12"]);
    let mut v = f.inventory();
    // without a rule for it, `guest` is refused (the test rules admit `all` only with order > 1000)
    v["all"]["children"]["pg-t"]["vars"]["pg_hba_rules"][2] = crate::support::yaml(
        "{ user: dbrole_readonly, db: all, addr: intra, auth: pwd, title: 'members only' }",
    );
    push(
        &mut v,
        "pg_users",
        "{ name: guest, password: 'Guest.Pass' }",
    );
    f.commit(&v, "guest");
    ok(&f.apply(&[]));
    let p = f.primary();
    assert!(
        p.login("guest", "Guest.Pass", "postgres").is_err(),
        "no rule admits guest yet"
    );
    push(
        &mut v,
        "pg_hba_rules",
        "{ user: guest, db: postgres, addr: intra, auth: pwd, title: 'guest may connect' }",
    );
    f.commit(&v, "admit guest");
    ok(&f.apply(&[]));
    p.login("guest", "Guest.Pass", "postgres")
        .expect("the new rule admits guest");
    // the replica got its own file, rendered for its role
    let replica_hba = std::fs::read_to_string(f.nodes.node("127.0.34.12").hba_file()).unwrap();
    assert!(replica_hba.contains("guest may connect"), "{replica_hba}");
    push(
        &mut v,
        "pg_hba_rules",
        "{ user: guest, db: all, addr: world, auth: deny, title: 'deny guest', order: 5 }",
    );
    f.commit(&v, "deny guest");
    ok(&f.apply(&[]));
    assert!(
        p.login("guest", "Guest.Pass", "postgres").is_err(),
        "the deny rule refuses guest"
    );
    // a line PostgreSQL rejects: the previous file is put back and the node still accepts logins
    let before = std::fs::read_to_string(p.hba_file()).unwrap();
    push(
        &mut v,
        "pg_hba_rules",
        "{ rules: [ 'host all all 127.0.0.1/32 no-such-method' ], title: 'broken' }",
    );
    f.commit(&v, "broken rule");
    let run = f.apply(&[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("rejected the new pg_hba.conf"),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read_to_string(p.hba_file()).unwrap(), before);
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL"
        ),
        "0"
    );
}

#[test]
fn parameters_reload_and_restart_only_ones_are_reported() {
    let f = Fleet::new(&["127.0.35.11"]);
    let mut v = f.inventory();
    v["all"]["children"]["pg-t"]["vars"]["pg_parameters"] =
        crate::support::yaml("{ work_mem: 12MB }");
    f.commit(&v, "work_mem");
    ok(&f.apply(&[]));
    let p = f.primary();
    assert_eq!(p.sql("postgres", "SHOW work_mem"), "12MB");
    v["all"]["children"]["pg-t"]["vars"]["pg_parameters"] =
        crate::support::yaml("{ work_mem: 12MB, shared_buffers: 64MB }");
    f.commit(&v, "shared_buffers");
    let run = f.apply(&[]);
    ok(&run);
    assert!(
        run.stdout.contains("pending restart: shared_buffers"),
        "{}",
        run.stdout
    );
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'"
        ),
        "t"
    );
}

#[test]
fn sql_goes_to_the_live_primary_after_a_failover() {
    let f = Fleet::new(&["127.0.36.11", "127.0.36.12"]);
    let mut v = f.inventory();
    f.commit(&v, "base");
    ok(&f.apply(&[]));
    // fail over behind the inventory's back: .12 is now primary, .11 its replica
    f.nodes.stop("127.0.36.11");
    f.nodes.promote("127.0.36.12");
    f.nodes.demote("127.0.36.11", "127.0.36.12");
    push(
        &mut v,
        "pg_users",
        "{ name: after_failover, password: 'AF.Pass' }",
    );
    f.commit(&v, "a user after the failover");
    let run = f.apply(&[]);
    ok(&run);
    assert!(
        run.stdout.contains("ok 127.0.36.12"),
        "the live primary ran it:\n{}",
        run.stdout
    );
    assert_eq!(
        f.nodes.node("127.0.36.12").sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'after_failover'"
        ),
        "1"
    );
}

#[test]
fn applying_the_same_commit_twice_changes_nothing() {
    let f = Fleet::new(&["127.0.37.11"]);
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: twice, password: 'Twice.Pass' }",
    );
    let c = f.commit(&v, "twice");
    ok(&f.apply(&[]));
    let p = f.primary();
    let commits = || {
        p.sql("postgres", "SELECT sum(xact_commit) FROM pg_stat_database")
            .parse::<i64>()
            .unwrap()
    };
    let before = commits();
    let run = f.apply(&[]);
    ok(&run);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let after = commits();
    assert!(after - before <= 2, "the second apply sent no statements ({before} -> {after} commits, the probes' own included)");
    let runs = f.note(&c)["runs"].clone();
    assert_eq!(runs.as_array().unwrap().len(), 2);
    assert_eq!(runs[1]["result"], "no-change", "{runs:#}");
}

#[test]
fn hostile_values_are_applied_as_data() {
    let f = Fleet::new(&["127.0.38.11"]);
    let mut v = f.inventory();
    let hostile = "q'uo\"te; DROP ROLE postgres; --\n$(touch /tmp/pwned) ünï";
    let users = v["all"]["children"]["pg-t"]["vars"]["pg_users"]
        .as_sequence_mut()
        .unwrap();
    users.push(serde_yaml_ng::Value::Mapping(
        [
            ("name".into(), "odd_user".into()),
            ("password".into(), hostile.into()),
            ("comment".into(), hostile.into()),
        ]
        .into_iter()
        .collect(),
    ));
    let c = f.commit(&v, "hostile");
    let run = f.apply(&[]);
    ok(&run);
    let p = f.primary();
    p.login("odd_user", hostile, "postgres")
        .expect("the hostile password is the password");
    assert_eq!(p.sql("postgres", "SELECT shobj_description(oid, 'pg_authid') = $$q'uo\"te; DROP ROLE postgres; --\n$(touch /tmp/pwned) ünï$$ FROM pg_roles WHERE rolname = 'odd_user'"), "t");
    assert!(!std::path::Path::new("/tmp/pwned").exists());
    // the password (also the comment here) appears nowhere: not in the note, stdout or stderr
    let all = f.note(&c).to_string() + &run.stdout + &run.stderr;
    assert!(
        !all.contains(hostile) && !all.contains("DROP ROLE postgres"),
        "{all}"
    );
    for s in SECRETS {
        assert!(!all.contains(s), "{s} leaked");
    }
}

#[test]
fn an_unknown_host_key_is_refused_and_nothing_is_applied() {
    let f = Fleet::new(&["127.0.39.11"]);
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: never, password: 'Never.Pass' }",
    );
    f.commit(&v, "never");
    std::fs::write(f.nodes.known_hosts(), "").unwrap();
    let run = f.apply(&[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("Host key verification failed"),
        "a clear error:\n{}",
        run.stdout
    );
    assert_eq!(
        f.primary().sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'never'"
        ),
        "0"
    );
}
