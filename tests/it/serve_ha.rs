//! `[ha]` on real parts: a 3-member etcd cluster (Debian's etcd) on 127.0.77.1-3, one PostgreSQL
//! node with sshd on 127.0.77.11, and two `pgitops serve` instances `a` and `b` sharing one remote
//! and one `[ha]` table (lease TTL 3 s, poll 2 s).
//!
//! 1. `a` leads and applies the base; `b` stays a standby and opens no SSH connection.
//! 2. A commit adds 40 users and drops (approved by trailer) a database pgitops created; `a` is
//!    killed with SIGKILL once the first users exist. `b` takes over within TTL + one poll, all
//!    40 users exist, the drop ran exactly once (PostgreSQL's statement log), and the notes name
//!    the instance and term that applied each commit.
//! 3. `a` comes back as a standby; `b` drops a second database and is killed right after the
//!    DROP: `a` takes over and never drops it again (the journal is shared through etcd).
//! 4. `b` comes back as a standby; `a` is paused (SIGSTOP) past its TTL, `b` takes over, `a` is
//!    resumed (SIGCONT): it logs that it lost the lease and applies nothing further — the next
//!    commit's note names `b` only.
//! 5. `b` is paused mid-apply of 40 more users; `a` takes over and finishes; `b` is resumed: it
//!    opens no connection to PostgreSQL (`log_connections`) and pushes no note.
//! 6. `a` gets SIGTERM: it resigns, and `b` takes over at once (before a lease could lapse).
//!
//! A second test (etcd on 127.0.77.21-23, the node on 127.0.77.31) adds `[ha]` to a service that
//! ran alone: its local state becomes the shared one, nothing is applied twice.

use std::time::{Duration, Instant};

use crate::support::etcd::Etcd;
use crate::support::fleet::{has_database, has_role, push, Fleet};
use crate::support::ha_service::{appliers, HaPair};

const NODE: &str = "127.0.77.11";
const ETCD: [&str; 3] = ["127.0.77.1", "127.0.77.2", "127.0.77.3"];
const TTL: u64 = 3;
const POLL: u64 = 2;

fn count(node: &crate::support::nodes::Node, like: &str) -> usize {
    let sql = format!("SELECT count(*) FROM pg_roles WHERE rolname LIKE '{like}'");
    node.sql("postgres", &sql).parse().unwrap()
}

fn drops(f: &Fleet, name: &str) -> Vec<String> {
    let log = std::fs::read_to_string(f.primary().dir.join("pg.log")).unwrap();
    log.lines()
        .filter(|l| l.contains("statement: DROP DATABASE") && l.contains(name))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_standby_takes_over_a_killed_leader_and_a_paused_leader_is_fenced() {
    let etcd = Etcd::start(&ETCD);
    let f = Fleet::new(&[NODE]);
    let p = f.primary();
    p.sql(
        "postgres",
        "ALTER SYSTEM SET log_statement = 'ddl'; ALTER SYSTEM SET log_connections = on; SELECT pg_reload_conf();",
    );
    let mut v = f.inventory();
    push(&mut v, "pg_databases", "{ name: doomed }");
    push(&mut v, "pg_databases", "{ name: doomed2 }");
    let base = f.commit(&v, "base");
    let mut ha = HaPair::new(&f, &etcd, &["a", "b"], TTL, POLL);
    ha.push(&f);
    let long = Duration::from_secs(60);

    // 1. a leads and applies; b is a standby without SSH
    ha.start(0);
    ha.instances[0].wait_log("leader (term", 1, long);
    ha.start(1);
    ha.instances[1].wait_log("standby, leader is a", 1, long);
    let note = ha.note_with(&base, "success", long);
    let first = appliers(&note);
    assert_eq!(first.len(), 1, "{note:#}");
    assert_eq!(first[0].0, "a", "{note:#}");
    assert!(has_database(p, "doomed") && has_database(p, "doomed2"));
    assert_eq!(etcd.get("/pgitops/ha-test/leader").as_deref(), Some("a"));
    let b_ctl = ha.instances[1].state.path().join("ctl");
    let b_sockets = std::fs::read_dir(&b_ctl).map(|d| d.count()).unwrap_or(0);
    assert_eq!(b_sockets, 0, "the standby opened no SSH master");

    // 2. 40 users and an approved drop; a is killed mid-apply
    for i in 0..40 {
        let user = format!("{{ name: ha_{i}, password: 'Ha.Pass.{i}' }}");
        push(&mut v, "pg_users", &user);
    }
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][0]["state"] = "absent".into();
    let change = f.commit(
        &v,
        "40 users and a drop\n\nPgitops-Approve: pg-t/database/doomed/drop\n",
    );
    ha.push(&f);
    let t = Instant::now();
    while count(p, "ha\\_%") < 3 {
        assert!(t.elapsed() < long, "a started no user\n{}", ha.logs());
        std::thread::sleep(Duration::from_millis(10));
    }
    ha.instances[0].kill9();
    let (users_at_kill, dropped_at_kill) = (count(p, "ha\\_%"), !has_database(p, "doomed"));
    let took = ha.instances[1].wait_log("leader (term", 1, Duration::from_secs(TTL + POLL + 10));
    println!(
        "takeover after kill -9: {:.2} s (lease TTL {TTL} s, poll {POLL} s); at the kill {users_at_kill}/40 users existed, the drop had {}run",
        took.as_secs_f64(),
        if dropped_at_kill { "" } else { "not " }
    );
    assert!(
        took <= Duration::from_secs(TTL + POLL),
        "takeover within TTL + one poll: {took:?}\n{}",
        ha.logs()
    );
    assert!(
        users_at_kill < 40,
        "killed mid-apply ({users_at_kill} users)"
    );
    let note = ha.note_with(&change, "success", long);
    let second = appliers(&note);
    assert!(!second.is_empty(), "{note:#}");
    assert!(
        second.iter().all(|(n, t)| n == "b" && *t > first[0].1),
        "only b, in a later term, recorded the change: {second:?}\n{note:#}"
    );
    assert_eq!(count(p, "ha\\_%"), 40);
    assert!(!has_database(p, "doomed"));
    assert_eq!(drops(&f, "doomed").len(), 1, "{:#?}", drops(&f, "doomed"));

    // 3. a is back as a standby; b drops a second database and is killed right after the DROP:
    //    a takes over and does not drop again (the shared journal)
    ha.start(0);
    ha.instances[0].wait_log("standby, leader is b", 1, long);
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][1]["state"] = "absent".into();
    let change2 = f.commit(
        &v,
        "drop doomed2\n\nPgitops-Approve: pg-t/database/doomed2/drop\n",
    );
    ha.push(&f);
    let t = Instant::now();
    while has_database(p, "doomed2") {
        assert!(t.elapsed() < long, "b did not drop doomed2\n{}", ha.logs());
    }
    ha.instances[1].kill9();
    let noted_at_kill = ha.note(&change2).is_some_and(|n| n["status"] == "success");
    let took = ha.instances[0].wait_log("leader (term", 2, Duration::from_secs(TTL + POLL + 10));
    println!(
        "takeover after kill -9 right after a DROP: {:.2} s; b had {}pushed its note",
        took.as_secs_f64(),
        if noted_at_kill { "" } else { "not " }
    );
    let note = ha.note_with(&change2, "success", long);
    assert_eq!(drops(&f, "doomed2").len(), 1, "{note:#}");
    let third = appliers(&note);
    let drop = note["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["clusters"][0]["actions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|a| a["id"] == "pg-t/database/doomed2/drop")
        .expect("the drop in the note");
    if !noted_at_kill {
        assert!(
            third.iter().all(|(n, t)| n == "a" && *t > second[0].1),
            "{third:?}\n{note:#}"
        );
        let said = drop.to_string();
        assert!(
            said.contains("journal") || said.contains("already dropped"),
            "a did not run the drop again: {drop:#}"
        );
    }

    // 4. b is back as a standby; a is paused past its TTL, b takes over, a resumes fenced
    ha.start(1);
    ha.instances[1].wait_log("standby, leader is a", 1, long);
    ha.instances[0].signal(libc::SIGSTOP);
    let took = ha.instances[1].wait_log("leader (term", 2, Duration::from_secs(TTL + POLL + 10));
    println!(
        "takeover after SIGSTOP: {:.2} s (lease TTL {TTL} s, poll {POLL} s)",
        took.as_secs_f64()
    );
    assert!(
        took <= Duration::from_secs(TTL + POLL),
        "{took:?}\n{}",
        ha.logs()
    );
    let a_before = ha.instances[0].log().len();
    ha.instances[0].signal(libc::SIGCONT);
    ha.instances[0].wait_log("lost the leader lease", 1, Duration::from_secs(10));
    push(
        &mut v,
        "pg_users",
        "{ name: ha_after_pause, password: 'Ha.After.Pause' }",
    );
    let last = f.commit(&v, "a user after the pause");
    ha.push(&f);
    let note = ha.note_with(&last, "success", long);
    let last_by = appliers(&note);
    let a_term = third.iter().map(|(_, t)| *t).max().unwrap_or(0);
    assert!(
        !last_by.is_empty() && last_by.iter().all(|(n, t)| n == "b" && *t > a_term),
        "only the new leader b recorded it: {last_by:?}\n{note:#}"
    );
    assert!(has_role(p, "ha_after_pause"));
    std::thread::sleep(Duration::from_secs(POLL + 1));
    let resumed = ha.instances[0].log()[a_before..].to_string();
    assert!(
        !resumed.contains("reconciled"),
        "the resumed a applied nothing:\n{resumed}"
    );
    assert_eq!(etcd.get("/pgitops/ha-test/leader").as_deref(), Some("b"));

    // 5. b is paused mid-apply (40 more users), a takes over and finishes; b resumes: it opens
    //    no further connection to PostgreSQL and publishes nothing
    for i in 0..40 {
        let user = format!("{{ name: ha3_{i}, password: 'Ha3.Pass.{i}' }}");
        push(&mut v, "pg_users", &user);
    }
    let fifth = f.commit(&v, "40 more users");
    ha.push(&f);
    let t = Instant::now();
    while count(p, "ha3\\_%") < 3 {
        assert!(t.elapsed() < long, "b started no user\n{}", ha.logs());
        std::thread::sleep(Duration::from_millis(10));
    }
    ha.instances[1].signal(libc::SIGSTOP);
    let paused_at = count(p, "ha3\\_%");
    ha.instances[0].wait_log("leader (term", 3, Duration::from_secs(TTL + POLL + 10));
    let note = ha.note_with(&fifth, "success", long);
    let fifth_by = appliers(&note);
    assert!(
        !fifth_by.is_empty() && fifth_by.iter().all(|(n, _)| n == "a"),
        "{fifth_by:?}\n{note:#}"
    );
    assert_eq!(count(p, "ha3\\_%"), 40);
    let pg_log = f.primary().dir.join("pg.log");
    let quiet_from = std::fs::read_to_string(&pg_log).unwrap().len();
    let b_before = ha.instances[1].log().len();
    ha.instances[1].signal(libc::SIGCONT);
    ha.instances[1].wait_log("lost the leader lease (term", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(POLL + 1));
    let after = std::fs::read_to_string(&pg_log).unwrap()[quiet_from..].to_string();
    let connections: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("connection received"))
        .collect();
    let resumed = ha.instances[1].log()[b_before..].to_string();
    println!(
        "paused b mid-apply at {paused_at}/40 users; after SIGCONT: {} connections to PostgreSQL, {} actions refused by the fence",
        connections.len(),
        resumed.matches("not run").count()
    );
    assert!(
        connections.is_empty(),
        "the resumed b reached PostgreSQL:\n{after}\n{resumed}"
    );
    assert!(
        resumed.contains("lost the leader lease") && !resumed.contains("reconciled"),
        "{resumed}"
    );
    assert!(
        resumed.contains("results not recorded: sharing the state"),
        "the deposed b's state write was refused by etcd's guard:\n{resumed}"
    );
    let still = appliers(&ha.note(&fifth).unwrap());
    assert!(
        still.iter().all(|(n, _)| n == "a"),
        "b pushed nothing: {still:?}"
    );

    // 6. SIGTERM: a resigns and b takes over at once, well before a lease would lapse
    ha.instances[1].wait_log("standby, leader is a", 2, long);
    ha.instances[0].signal(libc::SIGTERM);
    let took = ha.instances[1].wait_log("leader (term", 3, Duration::from_secs(TTL + POLL + 10));
    println!(
        "takeover after SIGTERM (resign): {:.2} s",
        took.as_secs_f64()
    );
    let status = ha.instances[0].child.take().unwrap().wait().unwrap();
    assert!(status.success(), "a stopped cleanly: {status:?}");
    assert!(ha.instances[0].log().contains("resigned the leader lease"));
    assert!(
        took < Duration::from_secs(TTL),
        "resigned, not lapsed: {took:?}"
    );

    // The shared state in etcd: the last applied commit, and one journal entry per drop.
    let state: serde_json::Value =
        serde_json::from_str(&etcd.get("/pgitops/ha-test/state").unwrap()).unwrap();
    assert_eq!(
        state["clusters"]["pg-t"]["last_applied"], fifth,
        "{state:#}"
    );
    let (_, keys) = etcd.ctl(&[
        "get",
        "--prefix",
        "--keys-only",
        "/pgitops/ha-test/journal/",
    ]);
    let keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().any(|k| k.contains(&change)), "{keys:?}");
    assert!(keys.iter().any(|k| k.contains(&change2)), "{keys:?}");
}

/// A service that ran alone gets `[ha]`: as the first leader it shares its local state, so the
/// next commit is planned from what it applied alone (nothing is applied twice).
#[test]
fn the_first_leader_shares_the_state_of_a_service_that_ran_alone() {
    let etcd = Etcd::start(&["127.0.77.21", "127.0.77.22", "127.0.77.23"]);
    let f = Fleet::new(&["127.0.77.31"]);
    let p = f.primary();
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: alone, password: 'Alone.Pass' }",
    );
    let base = f.commit(&v, "applied alone");
    let mut ha = HaPair::new(&f, &etcd, &["solo"], TTL, POLL);
    let long = Duration::from_secs(60);
    ha.instances[0].ha_table(false);
    ha.push(&f);
    ha.start(0);
    let note = ha.note_with(&base, "success", long);
    assert_eq!(
        appliers(&note),
        vec![("?".to_string(), -1)],
        "no instance alone: {note:#}"
    );
    assert!(has_role(p, "alone"));
    ha.instances[0].stop();

    ha.instances[0].ha_table(true);
    ha.start(0);
    ha.instances[0].wait_log("leader (term", 1, long);
    push(
        &mut v,
        "pg_users",
        "{ name: shared, password: 'Shared.Pass' }",
    );
    let next = f.commit(&v, "applied as leader");
    ha.push(&f);
    let note = ha.note_with(&next, "success", long);
    assert_eq!(appliers(&note)[0].0, "solo", "{note:#}");
    assert_eq!(
        note["runs"][0]["from"], base,
        "planned from the state kept alone: {note:#}"
    );
    let ids: Vec<&str> = note["runs"][0]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["actions"].as_array().unwrap())
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, ["pg-t/user/shared/create"], "{note:#}");
    let state: serde_json::Value =
        serde_json::from_str(&etcd.get("/pgitops/ha-test/state").unwrap()).unwrap();
    assert_eq!(state["clusters"]["pg-t"]["last_applied"], next, "{state:#}");
}
