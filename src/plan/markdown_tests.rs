//! The Markdown plan from real inventories: what a reviewer must see (held trailers, manual
//! reasons), what must never show (passwords), markup that inventory values cannot break, and
//! the size limit honoured without cutting an action.

use std::collections::BTreeSet;

use super::*;
use crate::inventory::{load, Diagnostic, Inventory, InventoryFiles};
use crate::plan::output::Report;

fn inv(clusters: &str) -> Inventory {
    let text = format!("all:\n  vars: {{ admin_ip: 127.0.0.1 }}\n  children:\n{clusters}");
    let inv = load(&InventoryFiles::single("pigsty.yml", &text), "r").expect("parses");
    assert!(inv.is_valid(), "{:#?}", inv.diagnostics);
    inv
}

fn cluster(name: &str, ip: &str, vars: &str) -> String {
    format!(
        "    {name}:\n      hosts: {{ {ip}: {{ pg_seq: 1, pg_role: primary }} }}\n      vars:\n        pg_cluster: {name}\n{vars}"
    )
}

/// The document for old → new, with `approved` action ids and objects pgitops created.
fn doc(
    old: &Inventory,
    new: &Inventory,
    approved: &[&str],
    created: &[&str],
    max: usize,
) -> String {
    let diff = crate::diff::diff(old, new);
    let approved: BTreeSet<String> = approved.iter().map(|s| s.to_string()).collect();
    let created: BTreeSet<String> = created.iter().map(|s| s.to_string()).collect();
    let plan = crate::plan::build(&diff, old, new, &approved, &created);
    let r = Report {
        from: "aaaaaaaaaaaaaaaa",
        to: "bbbbbbbbbbbbbbbb",
        diff: &diff,
        plan: &plan,
        errors: &[],
        warnings: &[],
    };
    markdown(&r, &["Intro line.".to_string()], max, "`the note`")
}

#[test]
fn held_drop_shows_its_trailer_and_an_approved_one_does_not() {
    let db = "        pg_databases: [ { name: meta2 } ]\n";
    let old = inv(&cluster("pg-meta", "127.0.80.11", db));
    let new = inv(&cluster(
        "pg-meta",
        "127.0.80.11",
        "        pg_databases: [ { name: meta2, state: absent } ]\n",
    ));
    let id = "pg-meta/database/meta2/drop";
    let held = doc(&old, &new, &[], &[], GITHUB_COMMENT_LIMIT);
    assert!(
        held.contains("1 destructive action(s) need approval"),
        "{held}"
    );
    assert!(
        held.contains(&format!("```text\nPgitops-Approve: {id}\n```")),
        "{held}"
    );
    assert!(held.contains("held until approved"), "{held}");
    let approved = doc(&old, &new, &[id], &[], GITHUB_COMMENT_LIMIT);
    assert!(!approved.contains("need approval"), "{approved}");
    assert!(approved.contains("— approved"), "{approved}");
}

#[test]
fn passwords_never_show_and_hostile_names_stay_inside_code() {
    let old = inv(&cluster("pg-a", "127.0.80.11", "        pg_users: []\n"));
    let users = "        pg_users: [ { name: app, password: Sup3rS3cret, comment: \"```</details> <b>x</b>\" } ]\n";
    let new = inv(&cluster("pg-a", "127.0.80.11", users));
    let d = doc(&old, &new, &[], &[], GITHUB_COMMENT_LIMIT);
    assert!(!d.contains("Sup3rS3cret"), "{d}");
    // The comment sits in a fenced block longer than the backtick run inside it.
    assert!(d.contains("````diff\n"), "{d}");
    let fenced = d.split("````diff\n").nth(1).expect("a diff block");
    let (inside, _) = fenced.split_once("````").expect("closed");
    assert!(inside.contains("```</details> <b>x</b>"), "{d}");
    assert_eq!(
        d.matches("\n<details>").count(),
        d.matches("\n</details>\n").count()
    );
}

#[test]
fn a_plan_over_the_limit_leaves_out_whole_clusters_and_says_where_the_rest_is() {
    let many = |users: &str| {
        (0..200)
            .map(|i| {
                cluster(
                    &format!("pg-c{i:03}"),
                    &format!("127.0.81.{}", i % 250 + 1),
                    &format!("        pg_users: [ {users} ]\n"),
                )
            })
            .collect::<String>()
    };
    let old = inv(&many(""));
    let new = inv(&many(
        "{ name: app, connlimit: 5, comment: a longer comment here }",
    ));
    let whole = doc(&old, &new, &[], &[], usize::MAX);
    let max = 20_000;
    assert!(whole.chars().count() > max);
    let cut = doc(&old, &new, &[], &[], max);
    assert!(cut.chars().count() <= max, "{}", cut.chars().count());
    assert!(cut.contains("more section(s) left out"), "{cut}");
    assert!(cut.contains("The full plan: `the note`"));
    // The summary table is whole; every action that is shown is whole.
    assert!(cut.contains("| `pg-c199` |"), "the table is whole");
    assert_eq!(
        cut.matches("<details>").count(),
        cut.matches("</details>").count()
    );
    assert!(cut.matches("<details>").count() > 10);
}

#[test]
fn errors_say_nothing_would_apply_and_no_change_says_so() {
    let old = inv(&cluster("pg-a", "127.0.80.11", ""));
    let same = doc(&old, &old, &[], &[], GITHUB_COMMENT_LIMIT);
    assert!(same.contains("No changes"), "{same}");
    let bad = load(
        &InventoryFiles::single("pigsty.yml", "all:\n  children: [\n"),
        "r",
    );
    let errors: Vec<Diagnostic> = match bad {
        Err(e) => e,
        Ok(i) => i.errors().cloned().collect(),
    };
    assert!(!errors.is_empty());
    let (diff, plan) = (crate::diff::Diff::default(), crate::plan::Plan::default());
    let r = Report {
        from: "a",
        to: "b",
        diff: &diff,
        plan: &plan,
        errors: &errors,
        warnings: &[],
    };
    let d = markdown(&r, &[], GITHUB_COMMENT_LIMIT, "x");
    assert!(d.contains("nothing would be applied"), "{d}");
    assert!(d.contains("pigsty.yml:"), "{d}");
    assert_eq!(
        Summary::of(&r).line(),
        "the inventory has 1 error(s): nothing would apply"
    );
}

#[test]
fn a_cut_inside_a_code_block_closes_it() {
    assert_eq!(open_fence("a\n```text\nPgitops-Approve: x"), Some("```"));
    assert_eq!(open_fence("a\n````diff\n```\nb"), Some("````"));
    assert_eq!(open_fence("```text\nx\n```\nafter"), None);
}

#[test]
fn code_spans_and_fences_outgrow_the_backticks_inside() {
    assert_eq!(code("a"), "`a`");
    assert_eq!(code("a`b"), "``a`b``");
    assert_eq!(code("`a"), "`` `a ``");
    assert_eq!(code("x\ny"), "`x⏎y`");
    assert!(fence("", "```\nx").starts_with("````\n"));
}
