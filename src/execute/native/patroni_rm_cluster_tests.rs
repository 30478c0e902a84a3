//! Unit tests of the pure parts of a cluster's removal: safeguard, flags, DCS prefix, waves.

use super::*;

fn inv(text: &str) -> Inventory {
    let files = crate::inventory::InventoryFiles::single("pigsty.yml", text);
    crate::inventory::load(&files, "t").expect("inventory")
}

fn pg(cluster_vars: &str, first: &str) -> Inventory {
    inv(&format!(
        "all:\n  children:\n    pg-test:\n      hosts:\n        10.0.0.1: {{ pg_seq: 1, pg_role: primary{first} }}\n        10.0.0.2: {{ pg_seq: 2, pg_role: replica }}\n      vars: {{ pg_cluster: pg-test{cluster_vars} }}\n"
    ))
}

#[test]
fn safeguard_on_the_cluster_or_any_member_names_them() {
    let none = pg("", "");
    assert!(guarded(&none, &none.model.pgsql["pg-test"]).is_empty());
    let off = pg(", pg_safeguard: false", "");
    assert!(guarded(&off, &off.model.pgsql["pg-test"]).is_empty());
    let all = pg(", pg_safeguard: true", "");
    assert_eq!(
        guarded(&all, &all.model.pgsql["pg-test"]),
        ["pg-test-1 @ 10.0.0.1", "pg-test-2 @ 10.0.0.2"]
    );
    // One member only, and Ansible's `| bool` spellings: a host's `yes` guards it.
    let one = pg("", ", pg_safeguard: 'yes'");
    assert_eq!(
        guarded(&one, &one.model.pgsql["pg-test"]),
        ["pg-test-1 @ 10.0.0.1"]
    );
    // The host's value wins over the cluster's.
    let over = pg(", pg_safeguard: true", ", pg_safeguard: false");
    assert_eq!(
        guarded(&over, &over.model.pgsql["pg-test"]),
        ["pg-test-2 @ 10.0.0.2"]
    );
}

#[test]
fn flags_default_and_read_as_ansible_bools() {
    let i = pg(", pg_rm_data: 'no'", ", pg_rm_pkg: 0");
    assert!(!flag(&i, "10.0.0.2", "pg_rm_data", true));
    assert!(flag(&i, "10.0.0.2", "pg_rm_backup", true), "default");
    assert!(!flag(&i, "10.0.0.1", "pg_rm_pkg", true));
    assert!(!flag(&i, "10.9.9.9", "pg_safeguard", false), "unknown host");
    let c = &i.model.pgsql["pg-test"];
    assert_eq!(
        leftovers(&i, c),
        "pg_rm_pkg: false, packages kept; pg_rm_backup: pgitops does not provision pgBackRest natively; any backup repository is left as it is"
    );
}

#[test]
fn prefix_is_the_cluster_dir_and_refuses_what_pigsty_refuses() {
    assert_eq!(dcs_prefix("/pg", "pg-test").unwrap(), "/pg/pg-test/");
    assert_eq!(dcs_prefix("/pg/", "pg-test").unwrap(), "/pg/pg-test/");
    assert_eq!(
        dcs_prefix("/service", "pg-meta").unwrap(),
        "/service/pg-meta/"
    );
    for bad in ["", "root", "pg/test", "pg test", "*"] {
        assert!(dcs_prefix("/pg", bad).is_err(), "{bad:?}");
    }
}

#[test]
fn replicas_first_then_the_live_leader_and_plain_members_left_out() {
    let m = |v: &[(&str, Now)]| -> Vec<(String, Now)> {
        v.iter().map(|(h, n)| (h.to_string(), n.clone())).collect()
    };
    let leader = Now::Patroni { leader: true };
    let replica = Now::Patroni { leader: false };
    // After a failover the live leader is not the declared primary: it goes last.
    let live = m(&[
        ("a", replica.clone()),
        ("b", leader.clone()),
        ("c", replica.clone()),
    ]);
    assert_eq!(
        waves(&live, Some("a")),
        (vec!["a".to_string(), "c".into()], vec!["b".to_string()])
    );
    // No live leader (stopped, or a second run): the declared primary goes last.
    let gone = m(&[("a", Now::Empty), ("b", Now::Ours)]);
    assert_eq!(
        waves(&gone, Some("a")),
        (vec!["b".to_string()], vec!["a".to_string()])
    );
    // A PostgreSQL outside Patroni is never stopped.
    let plain = m(&[("a", Now::Plain), ("b", replica)]);
    assert_eq!(waves(&plain, Some("a")), (vec!["b".to_string()], vec![]));
    assert_eq!(
        summary(&plain),
        "1 of 2 members stopped (replicas first, then the leader), 1 PostgreSQL outside Patroni left alone"
    );
    assert_eq!(summary(&gone[..1]), "no member under Patroni was found");
}
