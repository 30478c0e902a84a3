//! Tests of the leader watch's pure parts: the view of a cluster from Patroni's leader, when it
//! is a change worth reporting, and the message that suggests the commit recording it.

use super::*;
use crate::inventory::Inventory;

fn inv() -> Inventory {
    crate::inventory::load(
        &crate::inventory::InventoryFiles::single(
            "pigsty.yml",
            "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.11: { pg_seq: 1, pg_role: primary }\n        10.0.0.12: { pg_seq: 2, pg_role: replica }\n      vars: { pg_cluster: pg-test }\n",
        ),
        "t",
    )
    .expect("inventory")
}

#[test]
fn a_leader_other_than_the_declared_primary_is_reported_with_the_commit_that_records_it() {
    let inv = inv();
    let c = &inv.model.pgsql["pg-test"];
    let v = view(c, "pg-test-2", "abc", 1_700_000_000).unwrap();
    assert!(!v.matches);
    assert_eq!(
        (v.leader_host.as_str(), v.declared.as_str()),
        ("10.0.0.12", "10.0.0.11")
    );
    assert_eq!(
        v.message,
        "pg-test: Patroni's leader is 10.0.0.12 (pg-test-2), the inventory declares 10.0.0.11 (pg-test-1) primary (a failover or a switchover outside pgitops); commit `pg_role: primary` on 10.0.0.12 (and `replica` on 10.0.0.11) to record it; pgitops never switches back by itself"
    );
    let o = v.observation("pg-test");
    assert_eq!(
        (o.leader.as_str(), o.declared.as_str(), o.at),
        (
            "10.0.0.12 (pg-test-2)",
            "10.0.0.11 (pg-test-1)",
            1_700_000_000
        )
    );
    let stranger = view(c, "pg-test-9", "abc", 1).unwrap();
    assert!(
        stranger
            .message
            .contains("pg-test-9 (not a member in the inventory)")
            && stranger.message.contains("add pg-test-9 to the inventory"),
        "{}",
        stranger.message
    );
}

#[test]
fn only_a_change_is_reported_and_a_first_matching_view_is_silent() {
    let inv = inv();
    let c = &inv.model.pgsql["pg-test"];
    let ok = view(c, "pg-test-1", "abc", 1).unwrap();
    assert!(ok.matches);
    assert!(ok
        .message
        .contains("the leader is the declared primary again"));
    assert!(
        !changed(None, &ok),
        "a first view that matches says nothing"
    );
    let moved = view(c, "pg-test-2", "abc", 2).unwrap();
    assert!(changed(None, &moved));
    assert!(changed(Some(&ok), &moved));
    let later = view(c, "pg-test-2", "def", 3).unwrap();
    assert!(
        !changed(Some(&moved), &later),
        "the same leader on the next tick"
    );
    assert!(changed(Some(&moved), &ok), "back to the declared primary");
}

#[test]
fn the_view_survives_a_round_trip_through_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Leaders::load(dir.path()), Leaders::default());
    let inv = inv();
    let mut l = Leaders::default();
    let v = view(&inv.model.pgsql["pg-test"], "pg-test-2", "abc", 5).unwrap();
    l.clusters.insert("pg-test".into(), v);
    l.save(dir.path()).unwrap();
    assert_eq!(Leaders::load(dir.path()), l);
    std::fs::write(path(dir.path()), "not json").unwrap();
    assert_eq!(Leaders::load(dir.path()), Leaders::default());
}
