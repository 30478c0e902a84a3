//! Issue 8: two database drops in two clusters in one apply are both journaled correctly. The
//! clusters run at the same time, so their journal entries are written concurrently; each must
//! end up complete (started once, dropped, done) and no temporary file may be left behind.
//! Real nodes: one independent primary per cluster on 127.0.51.11 and 127.0.52.11.

use serde_yaml_ng::Value;

use crate::support::fleet::{has_database, ok, Fleet};
use crate::support::yaml;

const A: &str = "127.0.51.11";
const B: &str = "127.0.52.11";

/// Clusters `pg-a` (on A) and `pg-b` (on B), each with a database `x` in `state`.
fn inventory(f: &Fleet, state: &str) -> Value {
    let mut v = f.inventory();
    let template = v["all"]["children"]["pg-t"].clone();
    let children = v["all"]["children"].as_mapping_mut().unwrap();
    children.remove("pg-t");
    for (name, ip) in [("pg-a", A), ("pg-b", B)] {
        let mut group = template.clone();
        group["hosts"] = yaml(&format!("{{ {ip}: {{ pg_seq: 1, pg_role: primary }} }}"));
        group["vars"]["pg_cluster"] = name.into();
        group["vars"]["pg_databases"] = yaml(&format!("[ {{ name: x, state: {state} }} ]"));
        children.insert(name.into(), group);
    }
    v
}

#[test]
fn two_database_drops_in_two_clusters_are_both_journaled() {
    let f = Fleet::independent(&[A, B]);
    f.commit(&inventory(&f, "create"), "a database x in pg-a and in pg-b");
    ok(&f.apply(&[]));
    let (a, b) = (f.nodes.node(A), f.nodes.node(B));
    assert!(has_database(a, "x") && has_database(b, "x"));

    let actions = ["pg-a/database/x/drop", "pg-b/database/x/drop"];
    let message = format!(
        "drop x in both clusters\n\nPgitops-Approve: {}\nPgitops-Approve: {}\n",
        actions[0], actions[1]
    );
    let commit = f.commit(&inventory(&f, "absent"), &message);
    let run = f.apply(&[]);
    ok(&run);
    assert!(!has_database(a, "x"), "pg-a dropped x\n{}", run.stdout);
    assert!(!has_database(b, "x"), "pg-b dropped x\n{}", run.stdout);

    // The journal of that commit: one complete entry per drop, nothing else.
    let dir = f.repo.path().join(".git/pgitops/journal").join(&commit);
    let mut entries: Vec<serde_json::Value> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            assert_eq!(
                path.extension().and_then(|x| x.to_str()),
                Some("json"),
                "only entries in the journal, no temporary file: {}",
                path.display()
            );
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
        })
        .collect();
    entries.sort_by(|x, y| x["action"].as_str().cmp(&y["action"].as_str()));
    assert_eq!(entries.len(), 2, "{entries:#?}");
    for (entry, action) in entries.iter().zip(actions) {
        assert_eq!(entry["action"], action, "{entries:#?}");
        assert_eq!(entry["started"], 1, "{entry:#}");
        assert_eq!(
            entry["steps"],
            serde_json::json!(["dropped", "done"]),
            "{entry:#}"
        );
    }

    // The note records both drops as applied.
    let note = f.note(&commit);
    let applied: Vec<&str> = note["runs"][0]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["actions"].as_array().unwrap())
        .filter(|a| a["status"] == "applied")
        .filter_map(|a| a["id"].as_str())
        .collect();
    for action in actions {
        assert!(applied.contains(&action), "{note:#}");
    }

    // Applying again runs nothing twice.
    ok(&f.apply(&[]));
    let again = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(again, 2);
}
