//! Tests of `inventory::ansible`.
use super::*;
use crate::inventory::yaml::parse;

fn tree(text: &str) -> Tree {
    let v = parse("pigsty.yml", text).unwrap();
    let mut t = Tree::from_document("pigsty.yml", v);
    t.resolve();
    t
}

fn get<'a>(t: &'a Tree, host: &str, var: &str) -> &'a Value {
    &t.hosts[host].vars.get(var).unwrap().value
}

#[test]
fn same_depth_groups_merge_alphabetically_and_host_wins() {
    let t = tree(
        "all:\n  vars: { pg_conf: all.yml, a: 0 }\n  children:\n    pg-meta:\n      hosts: { 10.0.0.1: { pg_seq: 1 } }\n      vars: { pg_conf: meta.yml, b: meta }\n    infra:\n      hosts: { 10.0.0.1: { infra_seq: 1, b: host } }\n      vars: { pg_conf: infra.yml, node_tune: oltp }\n",
    );
    assert_eq!(
        get(&t, "10.0.0.1", "pg_conf"),
        &Value::from("meta.yml"),
        "p > i alphabetically"
    );
    assert_eq!(
        get(&t, "10.0.0.1", "node_tune"),
        &Value::from("oltp"),
        "infra vars reach pg hosts"
    );
    assert_eq!(
        get(&t, "10.0.0.1", "b"),
        &Value::from("host"),
        "host beats group"
    );
    assert_eq!(get(&t, "10.0.0.1", "a"), &Value::from(0));
    assert_eq!(t.hosts["10.0.0.1"].groups, vec!["pg-meta", "infra"]);
}

#[test]
fn child_group_beats_parent_and_lists_replace() {
    let t = tree(
        "all:\n  vars: { pg_hba_rules: [1, 2] }\n  children:\n    zz:\n      vars: { x: parent, pg_hba_rules: [3] }\n      children:\n        aa:\n          hosts: { 10.0.0.2: }\n          vars: { x: child }\n",
    );
    assert_eq!(get(&t, "10.0.0.2", "x"), &Value::from("child"));
    assert_eq!(t.groups["aa"].depth, 2);
    let rules = get(&t, "10.0.0.2", "pg_hba_rules").as_sequence().unwrap();
    assert_eq!(rules.len(), 1, "a group list replaces, never merges");
}

#[test]
fn group_priority_overrides_name_order() {
    let t = tree(
        "all:\n  children:\n    a:\n      hosts: { h: }\n      vars: { v: a, ansible_group_priority: 10 }\n    b:\n      hosts: { h: }\n      vars: { v: b }\n",
    );
    assert_eq!(get(&t, "h", "v"), &Value::from("a"));
}

#[test]
fn conflicting_host_vars_are_flagged() {
    let t = tree(
        "all:\n  children:\n    a: { hosts: { h: { x: 1 } } }\n    b: { hosts: { h: { x: 2 } } }\n",
    );
    assert_eq!(get(&t, "h", "x"), &Value::from(2));
    assert!(t
        .diags
        .iter()
        .any(|d| d.severity == Severity::Warning && d.message.contains("`x`")));
}

#[test]
fn structure_errors_are_reported() {
    let t = tree("all:\n  children:\n    a: { hosts: [1, 2] }\n    b: { hostz: {} }\n");
    assert_eq!(
        t.diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count(),
        2,
        "{:?}",
        t.diags
    );
}

#[test]
fn keys_before_all_a_bom_and_odd_keys_never_panic() {
    let d = "x-defaults: &d { pg_version: 15 }\nungrouped:\n  hosts: { 10.0.0.9: }\nall:\n  children:\n    pg-a:\n      hosts: { 10.0.0.2: { pg_seq: 1 } }\n      vars: { <<: *d, pg_cluster: pg-a }\n";
    let t = tree(d);
    assert_eq!(get(&t, "10.0.0.2", "pg_version"), &Value::from(15));
    assert!(t.hosts.contains_key("10.0.0.9"));
    assert!(t.groups["all"].children.contains(&"ungrouped".to_string()));
    // `x-defaults` is read as a group, as Ansible does; its unknown key is an error.
    assert!(
        t.diags.iter().any(|d| d.message.contains("x-defaults")),
        "{:?}",
        t.diags
    );
    let flow = tree("{[a, b]: 1, all: { hosts: { h: } }}\n");
    assert!(flow
        .diags
        .iter()
        .any(|d| d.message.contains("top-level key")));
    let none = tree("ungrouped:\n  hosts: { h: }\n");
    assert!(none
        .diags
        .iter()
        .any(|d| d.message.contains("root key `all`")));
    let bom =
        crate::inventory::InventoryFiles::single("pigsty.yml", "\u{feff}all:\n  hosts: { h: }\n");
    let t = tree(&bom.main.text);
    assert!(
        t.hosts.contains_key("h") && t.diags.is_empty(),
        "{:?}",
        t.diags
    );
}
