//! Tests of shared loads against a real Git repository: a plan made with kept loads is the plan
//! made without them, a kept revision is not loaded again, and a commit that leaves the
//! inventory alone is loaded once, its diagnostics still naming each revision.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use git2::{Oid, Repository, Signature};

use super::*;
use crate::ops::plan::plan_between;
use crate::ops::RepoOptions;
use crate::source::Repo;

const BASE: &str = "all:\n  children:\n    pg-test:\n      hosts:\n        127.0.0.11: { pg_seq: 1, pg_role: primary }\n      vars:\n        pg_cluster: pg-test\n        pg_users:\n          - { name: dbuser_a, connlimit: 5 }\n          - { name: dbuser_b, connlimit: 5 }\n  vars:\n    admin_ip: 127.0.0.1\n    pg_version: 15\n";

/// Commits `files` (path, text) on top of HEAD.
fn commit(repo: &Repository, files: &[(&str, &str)]) -> Oid {
    let sig = Signature::now("t", "t@localhost").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let mut tb = repo
        .treebuilder(parent.as_ref().map(|p| p.tree().unwrap()).as_ref())
        .unwrap();
    for (path, text) in files {
        let blob = repo.blob(text.as_bytes()).unwrap();
        tb.insert(path, blob, 0o100644).unwrap();
    }
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &parents)
        .unwrap()
}

fn plan(dir: &Path, from: Oid, to: Oid, cache: Option<&LoadCache>) -> crate::ops::plan::PlanRun {
    let opts = RepoOptions {
        repo: dir.to_path_buf(),
        inventory: "pigsty.yml".into(),
        state_dir: None,
        ..Default::default()
    };
    let repo = Repo::open(dir).unwrap();
    let to = repo.commit(&to.to_string()).unwrap();
    let from = from.to_string();
    plan_between(&repo, &opts, Some(&from), &to, &BTreeSet::new(), cache).unwrap()
}

fn ids(run: &crate::ops::plan::PlanRun) -> Vec<String> {
    run.plan.actions.iter().map(|a| a.id.clone()).collect()
}

#[test]
fn kept_loads_give_the_same_plan_and_are_not_loaded_again() {
    let dir = tempfile::tempdir().unwrap();
    let git = Repository::init(dir.path()).unwrap();
    let a = commit(&git, &[("pigsty.yml", BASE)]);
    let b = commit(
        &git,
        &[(
            "pigsty.yml",
            &BASE.replace("dbuser_b, connlimit: 5", "dbuser_b, connlimit: 9"),
        )],
    );
    let c = commit(
        &git,
        &[(
            "pigsty.yml",
            &BASE.replace("dbuser_a, connlimit: 5", "dbuser_a, connlimit: 7"),
        )],
    );
    let cache = LoadCache::new(2);
    let plain = plan(dir.path(), a, b, None);
    let cached = plan(dir.path(), a, b, Some(&cache));
    assert_eq!(ids(&plain), ["pg-test/user/dbuser_b/update"]);
    assert_eq!(ids(&plain), ids(&cached));
    assert_eq!(cache.len(), 2);
    // The next commit: B comes from the cache (the very same load), only C is loaded.
    let kept_b = cached.inventories.as_ref().unwrap().1.clone();
    let next = plan(dir.path(), b, c, Some(&cache));
    let (old, _) = next.inventories.as_ref().unwrap();
    assert!(Arc::ptr_eq(old, &kept_b), "B was loaded again");
    assert_eq!(
        ids(&next),
        [
            "pg-test/user/dbuser_a/update",
            "pg-test/user/dbuser_b/update"
        ]
    );
    assert_eq!(ids(&next), ids(&plan(dir.path(), b, c, None)));
    // A was the least recently used: forgotten.
    assert!(cache.get(&a.to_string(), "pigsty.yml").is_none());
    assert!(cache.get(&c.to_string(), "pigsty.yml").is_some());
}

#[test]
fn an_untouched_inventory_is_loaded_once_and_each_revision_keeps_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let git = Repository::init(dir.path()).unwrap();
    let broken = BASE.replace("admin_ip: 127.0.0.1", "admin_ip: nowhere");
    let a = commit(&git, &[("pigsty.yml", &broken)]);
    let b = commit(&git, &[("README.md", "docs only\n")]);
    let run = plan(dir.path(), a, b, None);
    let revisions: Vec<&str> = run.errors.iter().map(|e| e.revision.as_str()).collect();
    let (a, b) = (a.to_string(), b.to_string());
    assert_eq!(revisions, [a.as_str(), b.as_str()], "{:?}", run.errors);
    assert!(run.plan.actions.is_empty());
    // Fixed, then another commit elsewhere: one load serves both sides, nothing to do.
    let fixed = commit(&git, &[("pigsty.yml", BASE)]);
    let docs = commit(&git, &[("README.md", "more docs\n")]);
    let run = plan(dir.path(), fixed, docs, None);
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let (old, new) = run.inventories.as_ref().unwrap();
    assert!(Arc::ptr_eq(old, new), "the same files were loaded twice");
    assert!(run.diff.is_empty() && run.plan.actions.is_empty());
}

#[test]
fn the_cache_forgets_the_least_recently_used() {
    let cache = LoadCache::new(2);
    let load = |rev: &str| -> Shared { Ok(Arc::new(crate::inventory::Inventory::empty(rev))) };
    cache.put("a", "pigsty.yml", &load("a"));
    cache.put("b", "pigsty.yml", &load("b"));
    assert!(cache.get("a", "pigsty.yml").is_some()); // a is now the most recent
    cache.put("c", "pigsty.yml", &load("c"));
    assert!(cache.get("b", "pigsty.yml").is_none());
    assert!(cache.get("a", "pigsty.yml").is_some());
    assert!(cache.get("a", "other/").is_none(), "keyed by location too");
    assert_eq!(cache.len(), 2);
}
