//! `pgitops apply` per instance and its safety on real nodes: HBA, parameters, the live
//! primary after a failover, idempotency, hostile values, host keys, the local executor.

use crate::support::fleet::{has_database, has_role, ok, push, Fleet};
use crate::support::SECRETS;

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
    push(&mut v, "pg_hba_rules", "{ user: nobody, db: all, addr: 127.0.0.9/32, auth: deny, role: replica, title: 'replicas only' }");
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
    // ...rendered for its live role: a `role: replica` rule is active there and off on the primary
    let line = |text: &str| {
        text.lines()
            .skip_while(|l| !l.contains("replicas only"))
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    assert!(line(&replica_hba).starts_with("host"), "{replica_hba}");
    assert!(line(&std::fs::read_to_string(p.hba_file()).unwrap()).starts_with('#'));
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
        run.stdout.contains("pending restart: shared_buffers")
            && run
                .stdout
                .contains("not under Patroni: pgitops does not restart it"),
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
    assert!(has_role(f.nodes.node("127.0.36.12"), "after_failover"));
    assert!(
        run.stdout
            .contains("the inventory declares 127.0.36.11 primary: a failover happened"),
        "the failover is reported:\n{}",
        run.stdout
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
    // a first apply leaves its SSH master up for the next run...
    f.commit(&v, "base");
    ok(&f.apply(&[]));
    push(
        &mut v,
        "pg_users",
        "{ name: never, password: 'Never.Pass' }",
    );
    f.commit(&v, "never");
    // ...but with the host's key gone from known_hosts it is not resumed: the host is refused
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

#[test]
fn the_local_executor_runs_the_same_steps_without_ssh() {
    let f = Fleet::new(&["127.0.40.11"]);
    let node = f.primary();
    let mut v = f.inventory();
    // on this machine the node's files are at their real paths
    let data = node.data_dir().to_string_lossy().to_string();
    v["all"]["children"]["pg-t"]["hosts"]["127.0.40.11"]["pg_data"] = data.as_str().into();
    // ... except pgbouncer's: /etc/pgbouncer here is this machine's own, never to be written
    v["all"]["children"]["pg-t"]["hosts"]["127.0.40.11"]["pgbouncer_enabled"] = false.into();
    push(
        &mut v,
        "pg_users",
        "{ name: local_user, password: 'Local.Pass' }",
    );
    f.commit(&v, "local");
    let socket = node.socket_dir().to_string_lossy().to_string();
    let run = crate::support::pgitops(
        f.repo.path(),
        &["apply", "--local", "--socket-dir", &socket],
    );
    ok(&run);
    node.login("local_user", "Local.Pass", "postgres")
        .expect("created by the local executor");
    assert!(
        std::fs::read_to_string(node.hba_file())
            .unwrap()
            .contains("test clients"),
        "HBA written locally"
    );
}

#[test]
fn a_resync_repairs_drift_and_never_drops() {
    let f = Fleet::new(&["127.0.56.11"]);
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: drifter, password: 'Drift.Pass', connlimit: 3 }",
    );
    push(&mut v, "pg_databases", "{ name: gone_db, state: absent }");
    f.commit(
        &v,
        "drifter\n\nPgitops-Approve: pg-t/database/gone_db/drop\n",
    );
    ok(&f.apply(&[]));
    let p = f.primary();
    // drift behind pgitops' back: the user is dropped, a database is created by hand
    p.sql("postgres", "DROP ROLE drifter; CREATE DATABASE gone_db;");
    assert!(
        f.apply(&[]).stdout.contains("no-change"),
        "a plain apply sees no diff"
    );
    let run = f.apply(&["--resync"]);
    ok(&run);
    p.login("drifter", "Drift.Pass", "postgres")
        .expect("the resync re-created the user");
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'drifter'"
        ),
        "3"
    );
    assert!(has_database(p, "gone_db"), "a resync never drops");
}
