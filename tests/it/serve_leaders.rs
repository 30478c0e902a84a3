//! The service's leader watch on HA nodes: `pgitops serve` with `[schedule] leaders` every
//! second builds a 2-member `pg-test` from a pushed commit; a switchover made by hand through
//! Patroni's REST API (as a failover would move the leader) is reported within seconds — the
//! gauge `pgitops_cluster_leader_declared` 0, a `failover:` line in `pgitops status` (text and
//! JSON) with the commit that records it, one observation in the note of the last applied
//! commit, one warning in the log — and never switched back. A commit that declares the new
//! leader brings the gauge back to 1 and drops the line.

use std::time::{Duration, Instant};

use crate::support::fleet::Fleet;
use crate::support::patroni::{leader, switch_by_hand, PG_TEST_VARS};
use crate::support::pgitops;
use crate::support::service::Service;

const PG: [&str; 2] = ["127.0.74.11", "127.0.74.12"];

/// etcd on the first node, `pg-test` on `PG` with `PG[primary]` its declared primary.
fn inventory(primary: usize) -> String {
    let role = |i: usize| if i == primary { "primary" } else { "replica" };
    format!(
        "all:\n  vars: {{ admin_ip: 127.0.0.1 }}\n  children:\n    etcd:\n      hosts: {{ {}: {{ etcd_seq: 1 }} }}\n      vars: {{ etcd_cluster: etcd }}\n    pg-test:\n      hosts:\n        {}: {{ pg_seq: 1, pg_role: {} }}\n        {}: {{ pg_seq: 2, pg_role: {} }}\n      vars:\n{}",
        PG[0], PG[0], role(0), PG[1], role(1), PG_TEST_VARS
    )
}

/// Waits up to `within` until `/metrics` has `line`; panics with the last text.
fn metric(svc: &Service, line: &str, within: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let text = svc.get("/metrics");
        if text.lines().any(|l| l == line) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < within,
            "no {line} within {within:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status_json(svc: &Service) -> serde_json::Value {
    let mirror = svc.state.path().join("mirror.git");
    let state = svc.state.path().to_str().unwrap();
    let run = pgitops(
        &mirror,
        &["--state-dir", state, "status", "--output", "json"],
    );
    serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("status: {}", run.stdout))
}

fn observations(svc: &Service, commit: &str) -> Vec<serde_json::Value> {
    let note = svc.note(commit).unwrap_or_default();
    note["observations"].as_array().cloned().unwrap_or_default()
}

/// The observations in the note the service pushed for `commit`, once there are any (10 s).
fn await_observations(svc: &Service, commit: &str) -> Vec<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        let obs = observations(svc, commit);
        if !obs.is_empty() || t0.elapsed() > Duration::from_secs(10) {
            return obs;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `pg-test`'s entry in `pgitops status --output json`.
fn pg_test_status(svc: &Service) -> serde_json::Value {
    let json = status_json(svc);
    let all = json.as_array().unwrap();
    let c = all.iter().find(|c| c["cluster"] == "pg-test");
    c.cloned()
        .unwrap_or_else(|| panic!("no pg-test in {json:#}"))
}

#[test]
fn a_leader_moved_behind_pgitops_back_is_reported_and_never_switched_back() {
    let fleet = Fleet::ha(&PG);
    let log = tempfile::NamedTempFile::new().unwrap();
    let err = log.reopen().unwrap();
    let svc = Service::start_prepared(
        &fleet,
        "[schedule]\nleaders = \"* * * * * *\"\n",
        &[("PGITOPS_LOG", "pgitops=info")],
        |cmd| {
            cmd.stderr(err);
        },
    );
    let base = fleet
        .repo
        .commit_inventory(&inventory(0), "etcd and pg-test");
    svc.push(&fleet);
    let note = svc.note_with_status(&base, "success", Duration::from_secs(150));
    assert!(note["observations"].is_null(), "{note:#}");
    let line = |v: u8| format!("pgitops_cluster_leader_declared{{cluster=\"pg-test\"}} {v}");
    metric(&svc, &line(1), Duration::from_secs(10));
    assert_eq!(leader(PG[1]), "pg-test-1");

    // The leader moves behind pgitops' back.
    let moved = Instant::now();
    switch_by_hand(PG[0], "pg-test-1", "pg-test-2");
    let switched = moved.elapsed();
    assert_eq!(leader(PG[0]), "pg-test-2");
    metric(&svc, &line(0), Duration::from_secs(10));
    eprintln!(
        "switchover by hand returned after {switched:?}; gauge 0 {:?} after the request",
        moved.elapsed()
    );
    let suggestion = "commit `pg_role: primary` on 127.0.74.12 (and `replica` on 127.0.74.11) to record it; pgitops never switches back by itself";
    let text = svc.status().stdout;
    assert!(
        text.contains("    failover: pg-test: Patroni's leader is 127.0.74.12 (pg-test-2), the inventory declares 127.0.74.11 (pg-test-1) primary")
            && text.contains(suggestion),
        "{text}"
    );
    let json = pg_test_status(&svc);
    let f = &json["failover"];
    assert_eq!(
        (
            &f["leader"],
            &f["leader_host"],
            &f["declared"],
            &f["commit"]
        ),
        (
            &"pg-test-2".into(),
            &"127.0.74.12".into(),
            &"127.0.74.11".into(),
            &base.as_str().into()
        ),
        "{json:#}"
    );
    let obs = await_observations(&svc, &base);
    assert_eq!(obs.len(), 1, "{obs:?}");
    assert_eq!(
        (&obs[0]["cluster"], &obs[0]["leader"], &obs[0]["declared"]),
        (
            &"pg-test".into(),
            &"127.0.74.12 (pg-test-2)".into(),
            &"127.0.74.11 (pg-test-1)".into()
        )
    );
    assert!(obs[0]["message"].as_str().unwrap().contains(suggestion));
    let note = svc.note(&base).unwrap();
    assert_eq!(note["status"], "success", "the rest of the note is kept");
    assert!(!note["runs"].as_array().unwrap().is_empty());

    // Further ticks: nothing is switched back, nothing is reported twice.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(leader(PG[0]), "pg-test-2", "the watch never switches back");
    assert_eq!(leader(PG[1]), "pg-test-2");
    assert_eq!(observations(&svc, &base).len(), 1);
    let logged = std::fs::read_to_string(log.path()).unwrap();
    let warnings = logged
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(suggestion))
        .count();
    assert_eq!(warnings, 1, "one warning per change:\n{logged}");
    eprintln!("{}", logged.lines().find(|l| l.contains("WARN")).unwrap());
    assert!(moved.elapsed() > Duration::from_secs(3));

    // The inventory records it: the member that leads is declared, nothing is switched, the
    // gauge is 1 again and status drops the line.
    let record = fleet
        .repo
        .commit_inventory(&inventory(1), "pg-test: .12 leads");
    svc.push(&fleet);
    let note = svc.note_with_status(&record, "success", Duration::from_secs(90));
    assert!(note.to_string().contains("already leads"), "{note:#}");
    metric(&svc, &line(1), Duration::from_secs(10));
    assert_eq!(leader(PG[0]), "pg-test-2");
    let text = svc.status().stdout;
    assert!(!text.contains("failover:"), "{text}");
    assert!(pg_test_status(&svc)["failover"].is_null());
    let again = await_observations(&svc, &record);
    assert!(
        again.len() == 1
            && again[0]["message"]
                .as_str()
                .unwrap()
                .contains("the leader is the declared primary again"),
        "{again:?}"
    );
}
