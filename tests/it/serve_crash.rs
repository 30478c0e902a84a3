//! Crash safety: `kill -9` of the service at ten pseudo-random points of an apply that creates
//! users and drops a database; after each restart it converges, the notes end correct, and the
//! database was dropped exactly once (counted in PostgreSQL's own statement log).

use std::time::Duration;

use crate::support::fleet::{has_database, push, Fleet};
use crate::support::service::Service;

#[test]
fn kill_9_at_random_points_converges_without_repeating_a_drop() {
    let f = Fleet::new(&["127.0.80.11"]);
    let p = f.primary();
    p.sql(
        "postgres",
        "ALTER SYSTEM SET log_statement = 'ddl'; SELECT pg_reload_conf();",
    );
    let mut v = f.inventory();
    push(&mut v, "pg_databases", "{ name: doomed }");
    let mut svc = Service::applied(&f, &v);
    for i in 0..40 {
        push(
            &mut v,
            "pg_users",
            &format!("{{ name: crash_{i}, password: 'Crash.{i}' }}"),
        );
    }
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][0]["state"] = "absent".into();
    let change = f.commit(
        &v,
        "users and a drop\n\nPgitops-Approve: pg-t/database/doomed/drop\n",
    );
    svc.push(&f);
    // ten kills at pseudo-random points (a fixed-seed LCG: reproducible), each followed by a restart
    let mut seed: u64 = 0x5eed;
    for _ in 0..10 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(50 + (seed >> 33) % 700));
        svc.crash_and_restart();
    }
    let note = svc.final_note(&change);
    assert_eq!(note["status"], "success", "{note:#}");
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'crash_%'"
        ),
        "40"
    );
    assert!(!has_database(p, "doomed"));
    let log = std::fs::read_to_string(f.primary().dir.join("pg.log")).unwrap();
    let drops = log
        .lines()
        .filter(|l| l.contains("statement: DROP DATABASE") && l.contains("doomed"))
        .count();
    assert_eq!(
        drops,
        1,
        "the drop ran exactly once:\n{}",
        log.lines()
            .filter(|l| l.contains("DROP"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
