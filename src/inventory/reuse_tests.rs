//! Which clusters two revisions share the work of, and that sharing never changes a result.

use super::*;
use crate::inventory::{chunks, load, load_pair, Inventory, InventoryFiles};

/// Cluster `i`: two members; `bad` gives it two primaries (an error of its cluster checks).
fn cluster(i: usize, bad: bool) -> String {
    let second = if bad { "primary" } else { "replica" };
    format!(
        "    pg-c{i}:\n      hosts:\n        127.0.{i}.1: {{ pg_seq: 1, pg_role: primary }}\n        127.0.{i}.2: {{ pg_seq: 2, pg_role: {second} }}\n      vars:\n        pg_cluster: pg-c{i}\n        pg_users: [ {{ name: u{i}, connlimit: 5 }} ]\n        pg_databases: [ {{ name: d{i}, owner: u{i} }} ]\n"
    )
}

/// An inventory of `clusters` (index, bad) and `all.vars` lines.
fn inventory(clusters: &[(usize, bool)], vars: &str) -> String {
    let mut s = String::from("all:\n  children:\n");
    for (i, bad) in clusters {
        s.push_str(&cluster(*i, *bad));
    }
    s.push_str("  vars:\n    admin_ip: 127.0.0.10\n");
    s.push_str(vars);
    s
}

/// The clusters `Same` shares between `a` and `b` parsed together.
fn shared(a: &str, b: &str) -> Vec<String> {
    let parsed = chunks::parse_all(&[("pigsty.yml", a), ("pigsty.yml", b)]);
    assert_eq!(parsed.joined, 2, "both files split");
    let trees: Vec<Tree> = parsed
        .files
        .into_iter()
        .map(|v| {
            let mut t = Tree::from_shared_document("pigsty.yml", v.unwrap(), parsed.shared.clone());
            t.resolve();
            t
        })
        .collect();
    let same = Same::new(&trees[0], &trees[1]);
    same.names().into_iter().map(String::from).collect()
}

#[test]
fn only_clusters_that_read_the_same_are_shared() {
    let a = inventory(
        &[(1, false), (2, false), (3, false)],
        "    pg_version: 16\n",
    );
    // One cluster changed: the others are shared.
    let b = a.replace("name: u2, connlimit: 5", "name: u2, connlimit: 6");
    assert_eq!(shared(&a, &b), ["pg-c1", "pg-c3"]);
    // A change in `all.vars` reaches every cluster: none is shared.
    let c = a.replace("pg_version: 16", "pg_version: 17");
    assert_eq!(shared(&a, &c), Vec::<String>::new());
    // Nothing changed but a cluster moved (other lines around it): still shared.
    let d = inventory(
        &[(4, false), (1, false), (2, false), (3, false)],
        "    pg_version: 16\n",
    );
    assert_eq!(shared(&a, &d), ["pg-c1", "pg-c2", "pg-c3"]);
}

/// Loads `a` and `b` as a pair and each alone: the same inventories, diagnostics and positions.
fn pair_is_whole(a: &str, b: &str) -> (Inventory, Inventory) {
    let (fa, fb) = (
        InventoryFiles::single("pigsty.yml", a),
        InventoryFiles::single("pigsty.yml", b),
    );
    let (pa, pb) = load_pair((&fa, "old"), (&fb, "new"));
    let (wa, wb) = (load(&fa, "old"), load(&fb, "new"));
    assert_eq!(format!("{pa:?}"), format!("{wa:?}"));
    assert_eq!(format!("{pb:?}"), format!("{wb:?}"));
    (pa.unwrap(), pb.unwrap())
}

fn errors(inv: &Inventory) -> Vec<String> {
    inv.errors().map(|d| d.to_string()).collect()
}

#[test]
fn a_shared_cluster_error_is_located_in_each_revision() {
    // pg-c2 is the same in both (shared), but two clusters are inserted before it in the new one.
    let a = inventory(&[(1, false), (2, true)], "");
    let b = inventory(&[(5, false), (6, false), (1, false), (2, true)], "");
    assert_eq!(shared(&a, &b), ["pg-c1", "pg-c2"]);
    let (old, new) = pair_is_whole(&a, &b);
    let line_of = |text: &str| {
        1 + text
            .lines()
            .position(|l| l.contains("pg_cluster: pg-c2"))
            .expect("listed")
    };
    let (eo, en) = (errors(&old), errors(&new));
    assert_eq!(eo.len(), 1, "{eo:?}");
    assert_eq!(en.len(), 1, "{en:?}");
    assert!(
        eo[0].contains("exactly one member with `pg_role: primary`"),
        "{eo:?}"
    );
    let (lo, ln) = (line_of(&a), line_of(&b));
    assert!(ln > lo);
    assert!(
        eo[0].starts_with(&format!("pigsty.yml:{lo}:")),
        "old at pg_cluster's line: {eo:?}"
    );
    assert!(
        en[0].starts_with(&format!("pigsty.yml:{ln}:")),
        "new at its own line: {en:?}"
    );
}

#[test]
fn a_change_in_all_vars_is_checked_in_every_cluster() {
    // The clusters are the same text in both; the new `all.vars` makes every one invalid.
    let a = inventory(&[(1, false), (2, false)], "");
    let b = inventory(&[(1, false), (2, false)], "    pg_default_roles: [ 1 ]\n");
    assert_eq!(shared(&a, &b), Vec::<String>::new());
    let (old, new) = pair_is_whole(&a, &b);
    assert!(old.is_valid(), "{:?}", errors(&old));
    let en = errors(&new);
    assert!(!en.is_empty(), "the new all.vars is refused");
    // Users read from the cluster's own vars are still there in both models.
    for inv in [&old, &new] {
        assert_eq!(inv.model.pgsql["pg-c1"].users[0].name, "u1");
        assert_eq!(inv.model.pgsql["pg-c2"].databases[0].name, "d2");
    }
}
