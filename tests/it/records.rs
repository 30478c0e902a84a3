//! `pgitops status`, `history` and `approve` on a real fleet: a held drop shows in the status,
//! `approve` releases it for the next apply, and the history lists every run from the notes.

use crate::support::fleet::{ok, push, Fleet};
use crate::support::pgitops;

#[test]
fn status_shows_a_held_drop_and_approve_releases_it() {
    let f = Fleet::new(&["127.0.41.11"]);
    let mut v = f.inventory();
    push(&mut v, "pg_databases", "{ name: scratch }");
    f.commit(&v, "add scratch");
    ok(&f.apply(&[]));
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][0]["state"] = "absent".into();
    f.commit(&v, "drop scratch");
    ok(&f.apply(&[]));
    let status = pgitops(f.repo.path(), &["status", "--output", "json"]).json();
    let pg = status
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == "pg-t")
        .unwrap()
        .clone();
    assert_eq!(pg["state"], "awaiting-approval", "{status:#}");
    assert_eq!(
        pg["awaiting_approval"],
        serde_json::json!(["pg-t/database/scratch/drop"])
    );
    let text = pgitops(f.repo.path(), &["status"]).stdout;
    assert!(
        text.contains("awaiting approval: pg-t/database/scratch/drop"),
        "{text}"
    );

    let run = pgitops(
        f.repo.path(),
        &["approve", "HEAD", "pg-t/database/scratch/drop"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("approved: pg-t/database/scratch/drop"),
        "{}",
        run.stdout
    );
    ok(&f.apply(&[]));
    assert_eq!(
        f.primary().sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'scratch'"
        ),
        "0"
    );
    let status = pgitops(f.repo.path(), &["status", "--output", "json"]).json();
    assert_eq!(
        status
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["cluster"] == "pg-t")
            .unwrap()["state"],
        "in-sync"
    );

    let history = pgitops(
        f.repo.path(),
        &["history", "--cluster", "pg-t", "--output", "json"],
    )
    .json();
    let results: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["success", "held", "success"],
        "newest first: {history:#}"
    );
}
